"""The workspace store: database, content-addressed images, ingest, audit log and feature cache.

Never imports Qt or torch: work that needs a model receives it through the small
:class:`db.index.Embedder` protocol.
"""

from __future__ import annotations
