"""GUI fixtures: tiny models, a small indexed workspace, and a main window on a copy of it.

Qt runs offscreen; the models are untrained (a ResNet-18 target at 64x32 and a localising interpreter
whose maps are made to differ per attribute), which is all the widgets need.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

# Before any test module imports Qt: no display is needed.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

SIZE = (64, 32)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    import torch

    from amd.models import Interpreter, build_target, save_interpreter, save_target
    from amd.schema import load_schema

    folder = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    target = build_target("resnet18").eval()
    target_hash = save_target(folder / "demo_target.pt", target, SIZE, extra={"name": "tiny target"})
    schema = load_schema("market1501")
    interpreter = Interpreter(target, len(schema), map_mode="localising", aux_classifier=True)
    # Random decomposition weights: each attribute gets its own map and share, as a trained one would.
    torch.nn.init.normal_(interpreter.decompose[-1].weight, std=0.5)
    torch.nn.init.normal_(interpreter.aux_fc.weight, std=0.5)
    save_interpreter(
        folder / "demo_interpreter.pt",
        interpreter,
        SIZE,
        schema,
        target_hash,
        extra={"name": "tiny interpreter"},
    )
    return {
        "target": folder / "demo_target.pt",
        "interpreter": folder / "demo_interpreter.pt",
        "folder": folder,
    }


@pytest.fixture(scope="session")
def demo_workspace(tmp_path_factory, tiny_models) -> Path:
    """A small demo workspace (6 persons x 4 crops, 3 cameras), indexed with the tiny target."""
    from cli.demo import build_demo_workspace

    root = tmp_path_factory.mktemp("ws") / "demo"
    summary = build_demo_workspace(
        root,
        tiny_models["target"],
        tiny_models["interpreter"],
        identities=6,
        per_id=4,
        cameras=3,
        device="cpu",
    )
    assert summary.crops == 24 and summary.indexed == 24
    return root


@pytest.fixture()
def workspace(demo_workspace, tmp_path) -> Path:
    """A copy of the demo workspace that a test may change."""
    copy = tmp_path / "ws"
    shutil.copytree(demo_workspace, copy)
    return copy


@pytest.fixture()
def settings(tmp_path, monkeypatch):
    from PySide6.QtCore import QSettings

    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("AMD_WORKBENCH_HOME", str(home))
    return QSettings(str(home / "settings.ini"), QSettings.Format.IniFormat)


@pytest.fixture()
def window(qtbot, workspace, settings):
    """The main window with the workspace copy open."""
    from gui.main_window import MainWindow

    win = MainWindow(settings, Path(os.environ["AMD_WORKBENCH_HOME"]))
    qtbot.addWidget(win)
    win.resize(1400, 900)
    win.show()
    with qtbot.waitSignal(win.workspace_opened, timeout=30000):
        win.open_workspace(str(workspace))
    model = win.gallery_model
    # Rows exist once counted; their records arrive with their page.
    qtbot.waitUntil(lambda: model.rowCount() == 24 and model.crop(0) is not None, timeout=10000)
    return win


@pytest.fixture()
def drop_files():
    """``drop_files(widget, paths)``: a drag-enter and a drop of local files, as the window system sends them."""
    from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
    from PySide6.QtGui import QDragEnterEvent, QDropEvent
    from PySide6.QtWidgets import QApplication

    def drop(widget, paths) -> None:
        mime = QMimeData()
        mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
        centre = QPointF(widget.rect().center())
        buttons, modifiers = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
        enter = QDragEnterEvent(centre, Qt.DropAction.CopyAction, mime, buttons, modifiers)
        QApplication.sendEvent(widget, enter)
        assert enter.isAccepted(), f"{type(widget).__name__} refused the drag"
        QApplication.sendEvent(widget, QDropEvent(centre, Qt.DropAction.CopyAction, mime, buttons, modifiers))

    return drop
