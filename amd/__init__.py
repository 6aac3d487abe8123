"""The AMD engine: attribute schemas, datasets, synthetic pedestrians and (later) models.

This package depends on PyTorch and numpy only; it never imports Qt, SQLAlchemy or the
workspace store, so that every piece of it runs headless and in tests.
"""

from __future__ import annotations

__version__ = "0.1.0"
