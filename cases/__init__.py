"""Case files: annotated comparisons saved as one verified ``.amdcase`` file and exported as reports.

Qt-free (numpy, Pillow and the store), so that the desktop application, the ``case`` command and
the tests call the same code:

- :mod:`cases.snapshot`: the explanation of a pair as kept with a case item (numbers, predicted
  attributes, compact attention maps) and its decoded form.
- :mod:`cases.render`: overlays, contribution charts and annotated crops as PNG pictures.
- :mod:`cases.archive`: :func:`~cases.archive.save_case`, :func:`~cases.archive.verify_case`,
  :func:`~cases.archive.open_case` and :func:`~cases.archive.import_case`.
- :mod:`cases.document`: the frozen records an opened case file is made of.
- :mod:`cases.report`: :func:`~cases.report.export_html` (the PDF export lives in ``gui.report_pdf``).
"""

from __future__ import annotations
