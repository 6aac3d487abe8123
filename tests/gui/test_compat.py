"""The binding defect guarded against in gui.compat: a long session must not abort the interpreter."""

from __future__ import annotations

import os
import subprocess
import sys
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
