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

:class:`GuiThreadCollector` keeps Python's cyclic garbage collector off the worker threads. A collection
runs on whichever thread happens to allocate when a threshold is crossed; when that is a job thread and
the garbage holds Qt wrappers (a closed dialog, a replaced model), their C++ objects are destroyed on the
wrong thread and the process can crash. While a collector is installed, automatic collection is off and
a timer on the GUI thread collects with the interpreter's own thresholds instead.
"""

from __future__ import annotations

import ctypes
import gc
import sys

from PySide6.QtCore import QObject, QTimer

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


class GuiThreadCollector(QObject):
    """Runs the cyclic garbage collector on the GUI thread only, for as long as it is installed.

    Automatic collection is switched off while at least one collector is installed (a main window
    installs one and releases it when it closes). Every ``interval_ms`` the GUI thread runs the
    collection the interpreter would have run: generation 0 once its count passes the first
    threshold, the older generations when theirs pass too. Reference counting frees everything not
    in a cycle at once, as before; only cycles wait for the next tick.

    Args:
        parent: Owner of the timer; must live on the GUI thread.
        interval_ms: How often the counts are checked.
    """

    _installed = 0

    def __init__(self, parent: QObject | None = None, interval_ms: int = 250) -> None:
        super().__init__(parent)
        if GuiThreadCollector._installed == 0:
            gc.disable()
        GuiThreadCollector._installed += 1
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.collect_due)
        self._timer.start()

    @property
    def active(self) -> bool:
        return self._timer.isActive()

    def collect_due(self) -> int:
        """Collect the generations whose counts have passed their thresholds; the objects found unreachable."""
        counts, thresholds = gc.get_count(), gc.get_threshold()
        if counts[0] <= thresholds[0]:
            return 0
        generation = 0
        for older in (1, 2):
            if counts[older] > thresholds[older]:
                generation = older
        return gc.collect(generation)

    def release(self) -> None:
        """Stop; the last collector to go collects once and gives collection back to the interpreter."""
        if not self._timer.isActive():
            return
        self._timer.stop()
        GuiThreadCollector._installed -= 1
        if GuiThreadCollector._installed == 0:
            gc.collect()
            gc.enable()
