"""First start: the demo workspace is built with progress and can be cancelled; later starts reopen it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from PySide6.QtWidgets import QPushButton

from amd.resources import resources_dir


@pytest.fixture()
def resources(tmp_path, monkeypatch, tiny_models) -> Path:
    """A resources folder whose demo models are the tiny test models."""
    folder = tmp_path / "resources"
    for name in ("schemas", "synth"):
        shutil.copytree(resources_dir() / name, folder / name)
    (folder / "models").mkdir()
    for name in ("demo_target.pt", "demo_interpreter.pt"):
        shutil.copy(tiny_models["folder"] / name, folder / "models" / name)
    monkeypatch.setenv("AMD_RESOURCES", str(folder))
    return folder


def make_window(qtbot, settings):
    from gui.main_window import MainWindow

    win = MainWindow(settings, Path(os.environ["AMD_WORKBENCH_HOME"]))
    win.demo_size = (4, 4, 2)
    qtbot.addWidget(win)
    win.show()
    return win


def test_first_start_builds_the_demo_and_the_next_start_reopens_it(qtbot, settings, resources):
    win = make_window(qtbot, settings)
    view = win.gallery.view
    assert view.placeholder_text().startswith("No workspace open")
    said: list[str] = []
    shown = view.set_busy_text
    view.set_busy_text = lambda text: (shown(text), said.append(view.placeholder_text()))
    with qtbot.waitSignal(win.workspace_opened, timeout=60000) as opened:
        win.start()
    # While the demo is built, then opened, the empty gallery says so, not "No workspace open".
    assert said[0].startswith("Building the demo workspace in ") and said[1].startswith("Opening ")
    root = Path(opened.args[0])
    assert root == Path(os.environ["AMD_WORKBENCH_HOME"]) / "demo-workspace"
    qtbot.waitUntil(lambda: win.gallery_model.rowCount() == 16, timeout=10000)
    assert view.busy_text == "" and view.placeholder_text() == ""
    assert win.bench.ws.embeddings.count(win.bench.models.target.id) == 16
    assert "tiny target" in win.model_label.text()
    qtbot.waitUntil(lambda: win.device_label.text() == "device: CPU", timeout=30000)
    assert win.count_label.text() == "16 crops"
    assert settings.value("workspace/last") == str(root)
    win.close()

    again = make_window(qtbot, settings)
    with qtbot.waitSignal(again.workspace_opened, timeout=30000):
        again.start()
    assert not hasattr(again, "demo_dialog")  # opened, not rebuilt
    assert again.recent_menu.actions()[0].text() == str(root)


def test_missing_demo_models_are_named_in_a_dialog(qtbot, settings, tmp_path, monkeypatch):
    empty = tmp_path / "no-models"
    for name in ("schemas", "synth"):
        shutil.copytree(resources_dir() / name, empty / name)
    monkeypatch.setenv("AMD_RESOURCES", str(empty))
    win = make_window(qtbot, settings)
    with qtbot.waitSignal(win.workspace_opened, timeout=60000):
        win.start()
    qtbot.waitUntil(lambda: win.gallery_model.rowCount() == 16, timeout=10000)
    from PySide6.QtWidgets import QMessageBox

    boxes = [b for b in win.findChildren(QMessageBox) if b.isVisible()]
    assert boxes and "demo_target.pt" in boxes[-1].text() and "missing" in boxes[-1].text().lower()
    assert win.model_label.text() == "model: none"


def test_building_the_demo_can_be_cancelled_from_its_progress_dialog(qtbot, settings, resources):
    win = make_window(qtbot, settings)
    win.demo_size = (40, 8, 6)  # long enough to be cancelled half-way
    job = win.build_demo(win.demo_root(), [])
    qtbot.waitUntil(lambda: win.demo_dialog.value() > 0, timeout=30000)
    cancel = next(b for b in win.demo_dialog.findChildren(QPushButton) if b.text() == "Cancel")
    with qtbot.waitSignal(job.signals.finished, timeout=10000):
        cancel.click()
    assert job.cancelled
    qtbot.waitUntil(lambda: getattr(win, "last_message", None) is not None, timeout=5000)
    assert "cancelled" in win.last_message.text()
    assert not win.demo_dialog.isVisible()
    from cli.demo import demo_state

    assert demo_state(win.demo_root()) == "absent"  # stopped while rendering: nothing half-imported
