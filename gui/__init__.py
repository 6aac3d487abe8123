"""The PySide6 desktop application: the only package that imports Qt."""

from gui.compat import make_singletons_immortal

# Before any Qt object exists: see gui.compat for the binding defect this guards against.
make_singletons_immortal()
