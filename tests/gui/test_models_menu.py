"""The Models menu: choose the registered pair to work with, import model files, keep the choice."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import shiboken6
import torch
from PySide6.QtWidgets import QMessageBox

from cli import workbench as wb
from gui.widgets.chart import format_distance

SIZE = (64, 32)  # the input size of the fixtures' tiny models


@pytest.fixture(scope="module")
def second_models(tmp_path_factory) -> dict[str, Path]:
    """Another tiny target (other weights) and its interpreter: distances differ from the first pair's."""
    from amd.models import Interpreter, build_target, save_interpreter, save_target
    from amd.schema import load_schema

    folder = tmp_path_factory.mktemp("second")
    torch.manual_seed(7)
    target = build_target("resnet18").eval()
    target_hash = save_target(folder / "second_target.pt", target, SIZE, extra={"name": "second target"})
    schema = load_schema("market1501")
    interpreter = Interpreter(target, len(schema), map_mode="localising", aux_classifier=True)
    torch.nn.init.normal_(interpreter.decompose[-1].weight, std=0.5)
    save_interpreter(
        folder / "second_interpreter.pt",
        interpreter,
        SIZE,
        schema,
        target_hash,
        extra={"name": "second interpreter"},
    )
    return {"target": folder / "second_target.pt", "interpreter": folder / "second_interpreter.pt"}


def crop_paths(window, i: int, j: int) -> tuple[str, str]:
    model = window.gallery_model
    return window._path(model.crop(i)), window._path(model.crop(j))


def compare(qtbot, window, a: str, b: str) -> float:
    with qtbot.waitSignal(window.compare.explained, timeout=30000):
        window.compare_paths(a, b)
    return float(window.compare.explanation.distance)


def open_use_model_dialog(qtbot, window):
    window.show_models_dialog()
    qtbot.waitUntil(lambda: getattr(window, "models_dialog", None) is not None, timeout=15000)
    dialog = window.models_dialog
    qtbot.waitUntil(dialog.isVisible, timeout=5000)
    return dialog


def test_use_model_dialog_switches_the_status_bar_and_the_distance(
    qtbot, window, tiny_models, second_models, tmp_path
):
    from amd.explain import Explainer

    wb.register_models(window.bench.ws, second_models["target"], second_models["interpreter"])
    a, b = crop_paths(window, 0, 5)
    first = compare(qtbot, window, a, b)
    assert window.model_label.text() == "model: tiny target + tiny interpreter"

    dialog = open_use_model_dialog(qtbot, window)
    rows = dialog.model.choices
    # Newest target first; the pair in use is marked and preselected.
    assert [(c.target.name, c.interpreter.name) for c in rows] == [
        ("second target", "second interpreter"),
        ("tiny target", "tiny interpreter"),
    ]
    assert dialog.selected().target.name == "tiny target"
    text = dialog.model.index(1, 0).data()
    assert text.startswith("\u25b6 ") and "tiny target" in text
    assert dialog.model.index(1, 3).data() == f"{SIZE[0]}x{SIZE[1]}"
    # The demo workspace is indexed with the first target (and its predictions), not yet with the second.
    assert dialog.model.index(1, 6).data() == "24 (24 predicted)"
    assert dialog.model.index(0, 6).data() == "0 (0 predicted)"
    dialog.grab().save(str(tmp_path / "use_model_dialog.png"))
    if os.environ.get("AMD_SCREENSHOT_DIR"):
        dialog.grab().save(str(Path(os.environ["AMD_SCREENSHOT_DIR"]) / "use_model_dialog.png"))

    assert dialog.select(rows[0].target.file_hash, rows[0].interpreter.file_hash)
    with qtbot.waitSignal(window.models_changed, timeout=30000):
        with qtbot.waitSignal(window.compare.explained, timeout=30000):
            dialog.use_button.click()
    assert window.model_label.text() == "model: second target + second interpreter"
    assert window.bench.models.target.name == "second target"
    expected = Explainer.from_files(second_models["target"], second_models["interpreter"]).explain(a, b)
    second = float(window.compare.explanation.distance)
    assert second == pytest.approx(float(expected.distance), rel=1e-4)
    assert abs(second - first) > 1e-3
    assert window.compare.distance_label.text() == format_distance(expected.distance)
    assert window.remembered_models(window.bench.root) == (
        rows[0].target.file_hash,
        rows[0].interpreter.file_hash,
    )


def test_a_refused_model_file_shows_the_reason_and_registers_nothing(
    qtbot, window, tiny_models, second_models, tmp_path
):
    ws = window.bench.ws
    before = [m.id for m in ws.models.list()]
    bare = tmp_path / "weights.pt"
    torch.save({"conv.weight": torch.zeros(2, 2)}, bare)

    dialog = window.show_import_model_dialog()
    qtbot.waitUntil(dialog.isVisible, timeout=5000)
    dialog.target_edit.setText(str(bare))
    dialog.import_button.click()
    qtbot.waitUntil(lambda: "not a checkpoint of this tool" in dialog.error_label.text(), timeout=15000)
    assert "bare state dict" in dialog.error_label.text()
    assert dialog.isVisible() and dialog.import_button.isEnabled()

    # A good target with an interpreter of another target: refused as a whole, the target is not kept.
    dialog.target_edit.setText(str(second_models["target"]))
    dialog.interpreter_edit.setText(str(tiny_models["interpreter"]))
    dialog.import_button.click()
    qtbot.waitUntil(lambda: "distilled from another target" in dialog.error_label.text(), timeout=15000)
    assert [m.id for m in ws.models.list()] == before
    assert window.model_label.text() == "model: tiny target + tiny interpreter"


def test_an_imported_model_is_offered_and_used(qtbot, window, second_models):
    dialog = window.show_import_model_dialog()
    dialog.target_edit.setText(str(second_models["target"]))
    dialog.interpreter_edit.setText(str(second_models["interpreter"]))
    dialog.import_button.click()
    qtbot.waitUntil(lambda: getattr(window, "switch_model_box", None) is not None, timeout=30000)
    box = window.switch_model_box
    qtbot.waitUntil(lambda: not shiboken6.isValid(dialog), timeout=5000)  # accepted and deleted on close
    assert "second interpreter" in box.text()
    names = {m.name for m in window.bench.ws.models.list()}
    assert {"second target", "second interpreter"} <= names
    with qtbot.waitSignal(window.models_changed, timeout=30000):
        box.button(QMessageBox.StandardButton.Yes).click()
    assert window.model_label.text() == "model: second target + second interpreter"


def test_a_model_registered_by_the_training_panel_is_offered(qtbot, window, second_models):
    pair = wb.register_models(window.bench.ws, second_models["target"], None)
    window.show_training_panel()
    training = window.training_window
    training.model_registered.emit(pair.target)
    qtbot.waitUntil(lambda: getattr(window, "switch_model_box", None) is not None, timeout=5000)
    assert "'second target'" in window.switch_model_box.text()
    with qtbot.waitSignal(window.models_changed, timeout=30000):
        window.switch_model_box.button(QMessageBox.StandardButton.Yes).click()
    # A target without an interpreter: search works, the status bar says what is missing.
    assert window.model_label.text() == "model: second target + no interpreter"
    training.close()


def test_the_chosen_model_is_used_after_a_restart(qtbot, window, workspace, settings, second_models):
    from gui.main_window import MainWindow, workspace_key

    pair = wb.register_models(window.bench.ws, second_models["target"], second_models["interpreter"])
    # Registered after the tiny pair, the second pair is the newest: choose the older one explicitly.
    tiny = next(c for c in wb.model_choices(window.bench.ws) if c.target.name == "tiny target")
    with qtbot.waitSignal(window.models_changed, timeout=30000):
        window.use_models(tiny.target.file_hash, tiny.interpreter.file_hash)
    window.close()

    again = MainWindow(settings, Path(os.environ["AMD_WORKBENCH_HOME"]))
    qtbot.addWidget(again)
    with qtbot.waitSignal(again.workspace_opened, timeout=30000):
        again.start()  # the last workspace, with the models chosen for it
    assert again.model_label.text() == "model: tiny target + tiny interpreter"

    # Without a remembered choice the newest pair is used, as before.
    settings.remove(f"{workspace_key(workspace)}/models")
    again.close()
    third = MainWindow(settings, Path(os.environ["AMD_WORKBENCH_HOME"]))
    qtbot.addWidget(third)
    with qtbot.waitSignal(third.workspace_opened, timeout=30000):
        third.start()
    assert third.bench.models.target.id == pair.target.id
    third.close()


def test_select_models_refuses_an_interpreter_of_another_target(workspace, tiny_models, second_models):
    bench = wb.Workbench.open(workspace)
    try:
        second = wb.register_models(bench.ws, second_models["target"], second_models["interpreter"])
        tiny = bench.models
        with pytest.raises(Exception, match="distilled from another target model"):
            wb.select_models(bench.ws, second.target.file_hash, tiny.interpreter.file_hash)
        with pytest.raises(Exception, match="no target model with SHA-256"):
            wb.select_models(bench.ws, "0" * 64, None)
        # A remembered pair whose interpreter is gone falls back to the target's newest interpreter.
        found = wb.find_models(bench.ws, (tiny.target.file_hash, "f" * 64))
        assert (found.target.id, found.interpreter.id) == (tiny.target.id, tiny.interpreter.id)
    finally:
        bench.close()


def test_use_model_dialog_fits_the_screen_and_each_cell_has_its_full_text_as_tooltip(
    qtbot, window, monkeypatch
) -> None:
    from PySide6.QtCore import Qt

    dialog = open_use_model_dialog(qtbot, window)
    screen = dialog.screen().availableGeometry()
    assert dialog.width() <= screen.width()
    header = dialog.view.horizontalHeader()
    assert header.length() <= dialog.view.viewport().width()  # no column pushed out of sight
    model = dialog.model
    for col in range(model.columnCount()):
        shown = model.index(0, col).data().removeprefix("\u25b6 ")
        tip = model.index(0, col).data(Qt.ItemDataRole.ToolTipRole)
        # The figures are one per line in the cell, on one line in the tooltip.
        assert shown.replace("\n", " · ") in tip or col == 6, (col, shown, tip)
    tip = model.index(0, 6).data(Qt.ItemDataRole.ToolTipRole)
    assert tip == "24 crops indexed with this target, 24 with the interpreter's attribute predictions"
    assert str(window.bench.ws.models.list("target")[0].file_path) in model.index(0, 0).data(
        Qt.ItemDataRole.ToolTipRole
    )

    # On a small screen the dialog opens no wider than the screen's free area; the columns give way.
    from types import SimpleNamespace

    from PySide6.QtCore import QRect

    from gui.models_dialog import UseModelDialog

    natural = header.length()
    small = QRect(0, 0, natural * 3 // 4, 600)
    monkeypatch.setattr(window, "screen", lambda: SimpleNamespace(availableGeometry=lambda: small))
    narrow = UseModelDialog(model.choices, None, window)
    qtbot.addWidget(narrow)
    assert narrow.width() <= small.width()
    assert narrow.view.horizontalHeader().length() <= narrow.width()


def test_columns_too_wide_for_the_dialog_give_way_widest_first() -> None:
    from gui.models_dialog import fit_widths

    assert fit_widths([300, 100, 200], 700) == [300, 100, 200]
    assert fit_widths([300, 100, 200], 450) == [175, 100, 175]
    assert fit_widths([300, 100, 200], 200) == [66, 66, 66]
    assert sum(fit_widths([500, 80, 240, 60, 310], 900)) <= 900
