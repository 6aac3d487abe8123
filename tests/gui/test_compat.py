"""The binding defects guarded against in gui.compat: a long session must not abort the interpreter, and
no job thread may run a garbage collection."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import threading
import weakref
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# 60,000 emits and 60,000 None-returning overrides: far more lost references than None or True
# start with, so an unguarded interpreter before 3.12 aborts with none_dealloc / bool_dealloc.
PROGRAM = """
import gui
from PySide6.QtCore import QAbstractListModel, QModelIndex, QObject, Qt, Signal
from PySide6.QtWidgets import QApplication

app = QApplication([])

class Emitter(QObject):
    changed = Signal(object)

class Model(QAbstractListModel):
    def rowCount(self, parent=QModelIndex()):
        return 1

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        return None

emitter = Emitter()
emitter.changed.connect(lambda value: None)
model = Model()
index = model.index(0)
for _ in range(60000):
    emitter.changed.emit(None)
    index.data(Qt.ItemDataRole.ToolTipRole)
print("survived")
"""


def test_many_emits_and_none_returning_overrides_do_not_abort_the_interpreter() -> None:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-c", PROGRAM], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "survived" in result.stdout


class _Node:
    pass


def test_a_cycle_dropped_on_a_job_thread_is_collected_by_the_gui_thread(qtbot) -> None:
    from gui.compat import GuiThreadCollector

    assert gc.isenabled()
    collector = GuiThreadCollector(interval_ms=10)
    seen: dict = {}

    def job() -> None:
        node = _Node()
        node.self = node
        seen["ref"] = weakref.ref(node)
        del node
        # Five times the allocations that would make this thread collect generation 0, kept alive so
        # that the count stays past the threshold for the GUI thread to see.
        seen["junk"] = [[] for _ in range(5 * gc.get_threshold()[0])]
        seen["alive on the job thread"] = seen["ref"]() is not None

    try:
        assert not gc.isenabled()
        worker = threading.Thread(target=job)
        worker.start()
        worker.join()
        assert seen["alive on the job thread"]
        qtbot.waitUntil(lambda: seen["ref"]() is None, timeout=5000)
    finally:
        seen.pop("junk", None)
        collector.release()
    assert gc.isenabled() and not collector.active
    collector.release()  # a second release changes nothing
    assert gc.isenabled()


def test_the_main_window_collects_on_its_own_thread_until_it_closes(window) -> None:
    assert window.collector.active and not gc.isenabled()
    window.close()
    assert not window.collector.active and gc.isenabled()
