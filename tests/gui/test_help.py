"""The Help menu: the keyboard shortcut list (read from the window's menus and widgets) and the About box."""

from __future__ import annotations

from pathlib import Path

import torch
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence, QUndoCommand
from PySide6.QtWidgets import QApplication

import amd
from cli.workbench import file_sha256
from gui.help import about_rows, about_text


def native(keys: str | QKeySequence.StandardKey | Qt.Key) -> str:
    return QKeySequence(keys).toString(QKeySequence.SequenceFormat.NativeText)


def shown_rows(dialog) -> dict[str, dict[str, str]]:
    """What the shortcut list shows: {group: {action: keys}}, read from its tree."""
    tree = dialog.tree
    rows: dict[str, dict[str, str]] = {}
    for i in range(tree.topLevelItemCount()):
        head = tree.topLevelItem(i)
        rows[head.text(0)] = {head.child(j).text(0): head.child(j).text(1) for j in range(head.childCount())}
    return rows


def test_help_is_the_last_menu_with_shortcuts_on_f1_and_about(window) -> None:
    titles = [a.text() for a in window.menuBar().actions()]
    assert titles[-1] == "&Help" and titles.count("&Help") == 1
    help_menu = window.help_menu
    assert [a.text() for a in help_menu.menu.actions() if not a.isSeparator()] == [
        "&Keyboard shortcuts",
        "&About AMD Workbench",
    ]
    assert help_menu.shortcuts_action.shortcut() == QKeySequence(Qt.Key.Key_F1)


def test_the_shortcut_list_names_each_action_by_its_menu(qtbot, window) -> None:
    # Undo's menu text names the command it would undo; the list keeps calling it Undo.
    window.undo_stack.push(QUndoCommand("merge into Person A"))
    assert window.undo_stack.createUndoAction(window).text() == "Undo merge into Person A"
    window.help_menu.shortcuts_action.trigger()
    dialog = window.help_menu.shortcuts_dialog
    qtbot.waitUntil(dialog.isVisible, timeout=5000)
    assert not dialog.isModal() and dialog.windowModality() == Qt.WindowModality.NonModal
    rows = shown_rows(dialog)
    assert rows["Query"]["Search with the selected crop"] == native("Ctrl+F")
    assert rows["Models"]["Use model"] == native("Ctrl+M")
    assert rows["Edit"]["Undo"] == native(QKeySequence.StandardKey.Undo)
    assert rows["Edit"]["Redo"].split(", ")[0] == native("Ctrl+Shift+Z")
    assert rows["View"] == {"Gallery": native("Ctrl+1"), "Compare": native("Ctrl+2")}
    assert rows["Cases"]["Case panel"] == native("Ctrl+3")
    assert rows["Help"]["Keyboard shortcuts"].split(", ")[0] == native("F1")
    # Keys held by the widgets themselves, under the part of the window they work in.
    enter = f"{native(Qt.Key.Key_Return)}, {native(Qt.Key.Key_Enter)}"
    assert rows["In the Compare tab"] == {
        "Match": "1",
        "No match": "2",
        "Inconclusive": "3",
        # Keys the crop views handle themselves, once for both crops.
        "Delete the selected annotation": f"{native(Qt.Key.Key_Delete)}, {native(Qt.Key.Key_Backspace)}",
        "Drop the annotation being drawn or moved": native(Qt.Key.Key_Escape),
    }
    assert list(rows["In the Identities panel"].values()) == [native(QKeySequence.StandardKey.Delete)]
    assert next(iter(rows["In the Identities panel"])).startswith("Delete the selected identities")
    assert rows["In the Gallery tab"] == {"Compare the two selected crops": enter}
    assert rows["In the Results panel"] == {"Compare the query with the selected result": enter}
    # Actions without a key are not listed, menus without any are left out.
    assert "Import a folder" not in rows["File"] and "Training" not in rows
    # Groups follow the menu bar, then the window's parts.
    assert list(rows)[:3] == ["File", "Edit", "Query"]
    assert set(list(rows)[-4:]) == {
        "In the Identities panel",
        "In the Compare tab",
        "In the Gallery tab",
        "In the Results panel",
    }
    # Every row is readable in full: the dialog is at least as wide as its longest name and keys.
    tree = dialog.tree
    assert tree.columnWidth(0) >= tree.sizeHintForColumn(0)
    assert dialog.width() >= tree.sizeHintForColumn(0) + tree.sizeHintForColumn(1)


def test_the_shortcut_list_follows_the_menus(qtbot, window) -> None:
    dialog = window.help_menu.show_shortcuts()
    assert "Export a test" not in shown_rows(dialog).get("Models", {})
    action = QAction("&Export a test...", window)
    action.setShortcut(QKeySequence("Ctrl+Alt+K"))
    models = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Models")
    models.addAction(action)
    again = window.help_menu.show_shortcuts()
    assert again is dialog and shown_rows(dialog)["Models"]["Export a test"] == native("Ctrl+Alt+K")


def test_about_names_versions_workspace_and_models_and_copies(qtbot, window, workspace, tiny_models) -> None:
    qtbot.waitUntil(lambda: window.device_label.text() != "device: loading...", timeout=30000)
    window.help_menu.about_action.trigger()
    dialog = window.help_menu.about_dialog
    qtbot.waitUntil(dialog.isVisible, timeout=5000)
    assert not dialog.isModal()
    text = dialog.text
    target_hash = file_sha256(tiny_models["target"])[:12]
    interpreter_hash = file_sha256(tiny_models["interpreter"])[:12]
    for expected in (
        f"AMD Workbench {amd.__version__}",
        "Attribute-guided Metric Distillation (ICCV 2021)",
        f"PyTorch:      {torch.__version__}",
        f"Workspace:    {workspace}",
        "Database:     SQLite",
        "Device:       CPU",
        "Target model: tiny target",
        str(tiny_models["target"]),
        f"SHA-256 {target_hash}",
        "Interpreter:  tiny interpreter",
        f"SHA-256 {interpreter_hash}",
    ):
        assert expected in text, expected
    # What the dialog shows is the same, and can be selected.
    shown = dialog.browser.toPlainText()
    assert str(workspace) in shown and "tiny target" in shown and torch.__version__ in shown
    assert dialog.browser.textInteractionFlags() & Qt.TextInteractionFlag.TextSelectableByMouse
    QApplication.clipboard().clear()
    qtbot.mouseClick(dialog.copy_button, Qt.MouseButton.LeftButton)
    assert QApplication.clipboard().text() == text
    assert dialog.copy_button.text() == "Copied"


def test_about_without_a_workspace() -> None:
    rows = dict(about_rows(None, None))
    assert rows["Workspace"] == "none open" and rows["Device"].startswith("-")
    assert "Target model" not in rows
    assert about_text(list(rows.items())).splitlines()[0] == "AMD Workbench"


def test_about_a_workspace_on_postgresql() -> None:
    class Url:
        @staticmethod
        def get_backend_name() -> str:
            return "postgresql"

    class Ws:
        url = Url()

    class Models:
        target = None
        interpreter = None
        problem = "no target model is registered"

    class Bench:
        ws = Ws()
        root = Path("/data/cases/ws")
        models = Models()

    rows = dict(about_rows(Bench(), "cpu"))
    assert rows["Database"] == "PostgreSQL" and rows["Workspace"] == str(Path("/data/cases/ws"))
    assert rows["Target model"] == "none (no target model is registered)" and rows["Device"] == "CPU"
