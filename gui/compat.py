"""Work-arounds for defects of the Qt binding that the application cannot otherwise avoid.

PySide6 6.12.0 on CPython 3.11 drops one reference to ``None`` each time C++ calls a Python override
that returns ``None`` (``paintEvent``, ``data()`` for a role it does not answer, any slot), and one to
``True`` each time Python code calls ``Signal.emit``. CPython before 3.12 counts references to these
singletons like any object, so after some ten thousand such calls (a few minutes of scrolling, or one
long job reporting progress) the count reaches zero and the interpreter aborts with "none_dealloc" or
"bool_dealloc". CPython 3.12 made them immortal (PEP 683) and ignores the lost references.

:func:`make_singletons_immortal` gives the same protection on older interpreters: it adds 2**40
references to ``None``, ``True`` and ``False``, which no run can use up. They are never freed anyway
(freeing them is the fatal error), so nothing else changes.
"""

from __future__ import annotations

import ctypes
import gc
import sys

_SPARE_REFERENCES = 1 << 40
_done = False


def make_singletons_immortal() -> bool:
    """Protect ``None``, ``True`` and ``False`` from lost references; True when it was needed."""
    global _done
    if _done or sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return False
    for singleton in (None, True, False):
        # ob_refcnt is the first field of every CPython object header.
        ctypes.c_ssize_t.from_address(id(singleton)).value += _SPARE_REFERENCES
    _done = True
    return True


def freeze_heap() -> None:
    """Exclude every object alive now from future full garbage collections.

    A full collection walks every container object, and once torch, SQLAlchemy and Qt are imported
    there are millions: each one stops all threads, the UI thread included, for half a second and more.
    The modules, classes and models loaded so far live as long as the program, so freezing them costs
    nothing; objects made later are collected as usual, and frozen ones are still freed by reference
    counting when they are released. Called after start-up and after each model load.
    """
    gc.freeze()
