"""The case panel, driven like an analyst: make a case, file compared pairs, reopen, annotate, save, import."""

from __future__ import annotations

import zipfile
from types import SimpleNamespace

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QFileDialog, QMessageBox, QPushButton, QToolButton

from gui.widgets.chart import format_distance


def wait_for_writes(qtbot, window) -> None:
    """Wait until the writer has been idle across two event-loop turns (a result may queue another write)."""
    pool = window.writer.runner.pool
    for _ in range(2):
        qtbot.waitUntil(lambda: pool.activeThreadCount() == 0, timeout=15000)
        qtbot.wait(100)  # let the queued results reach the window
    qtbot.waitUntil(lambda: pool.activeThreadCount() == 0, timeout=15000)


def compare(qtbot, window, i: int, j: int):
    model = window.gallery_model
    # The first explanation of a window loads the models on a low-priority worker: slow on a busy machine.
    with qtbot.waitSignal(window.compare.explained, timeout=120000):
        window.compare_paths(window._path(model.crop(i)), window._path(model.crop(j)))
    return window.compare.explanation


def wait_for_case(qtbot, panel, title: str):
    """Wait until the panel's current case is titled ``title`` and its items are listed; return that case.

    ``items_loaded`` alone does not say it: a reload that began before the change may answer first.
    """

    def shown() -> bool:
        case = panel.current_case()
        return (
            case is not None
            and case.title == title
            and panel.contents is not None
            and panel.contents.case.id == case.id
        )

    qtbot.waitUntil(shown, timeout=15000)
    return panel.current_case()


def wait_for_items(qtbot, panel, case_id: int, item_ids: list[int]) -> None:
    """Wait until the panel lists exactly ``item_ids``, in that order, as the items of case ``case_id``.

    The case list must count them too: a reload that began before the last change may answer first,
    and a reload may read the case list before a change and its items after it.
    """

    def shown() -> bool:
        case = panel.current_case()
        return (
            case is not None
            and case.id == case_id
            and case.item_count == len(item_ids)
            and panel.contents is not None
            and panel.contents.case.id == case_id
            and [r.item.id for r in panel.item_model.rows] == item_ids
        )

    qtbot.waitUntil(shown, timeout=15000)


def wait_for_filing(qtbot, window, case_id: int) -> None:
    """Wait until the pair in the compare view is filed in ``case_id`` and the panel lists the case's items."""
    qtbot.waitUntil(lambda: window.compare.case_item is not None, timeout=15000)
    stored = [it.id for it in window.bench.ws.cases.get(case_id).items]
    wait_for_items(qtbot, window.case_panel, case_id, stored)


def make_case(qtbot, window, title: str = "Station robbery"):
    panel = window.case_panel
    panel.create_case(title, "2026/0413", "J. Analyst", "Two cameras at the station")
    case = wait_for_case(qtbot, panel, title)
    assert case is not None and case.title == title
    return case


def file_pair(qtbot, window, case_id: int, i: int, j: int, verdict: str | None = None, notes: str = ""):
    explanation = compare(qtbot, window, i, j)
    if verdict is not None:
        window.compare.verdict_buttons.button(
            ("match", "no match", "inconclusive").index(verdict)
        ).setChecked(True)
    window.compare.notes.setPlainText(notes)
    window.case_panel.file_pair(window.compare, case_id)
    wait_for_filing(qtbot, window, case_id)
    return explanation


@pytest.fixture()
def panel(window):
    window.cases_dock.show()
    window.cases_dock.raise_()
    return window.case_panel


def test_new_case_from_the_dialog_is_listed_with_its_fields(qtbot, window, panel):
    dialog = panel.new_case()
    assert dialog.analyst_edit.text() == (window.bench.ws.actor or "")
    ok = dialog.buttons.button(dialog.buttons.StandardButton.Ok)
    assert not ok.isEnabled()  # a case needs a title
    dialog.title_edit.setText("Parking garage")
    dialog.reference_edit.setText("REF-17")
    dialog.analyst_edit.setText("K. Lee")
    ok.click()
    wait_for_case(qtbot, panel, "Parking garage")
    model = panel.case_model
    row = model.row_of(panel.current_id)
    cells = [model.index(row, c).data() for c in range(5)]
    assert cells[:4] == ["Parking garage", "REF-17", "K. Lee", "0"]
    assert window.bench.ws.cases.get(panel.current_id).reference == "REF-17"


def test_add_to_case_files_the_pair_with_its_distance_verdict_and_notes(qtbot, window, panel):
    case = make_case(qtbot, window)
    explanation = compare(qtbot, window, 0, 5)
    window.compare.notes.setPlainText("same red jacket")
    window.compare.verdict_buttons.button(0).setChecked(True)
    with qtbot.waitSignal(window.compare.add_to_case_requested):
        window.compare.add_to_case.click()
    dialog = panel.dialog
    assert dialog.objectName() == "add_to_case_dialog"
    assert dialog.case_box.currentData() == case.id  # the panel's current case is offered first
    dialog.accept()
    wait_for_filing(qtbot, window, case.id)
    assert panel.item_model.rowCount() == 1
    assert panel.item_model.index(0, 2).data() == format_distance(explanation.distance)
    assert panel.item_model.index(0, 3).data() == "Match"
    assert "same red jacket" in panel.item_model.index(0, 4).data()
    assert panel.case_model.index(panel.case_model.row_of(case.id), 3).data() == "1"
    stored = window.bench.ws.cases.get(case.id).items[0]
    assert stored.verdict == "match" and stored.notes == "same red jacket"
    assert stored.explanation["distance"] == pytest.approx(explanation.distance)
    # The compare view now holds the filed item: it can be annotated.
    assert window.compare.case_item.id == stored.id
    assert window.compare.views[0].editable
    assert "item 1" in window.compare.case_label.text()


def test_a_new_case_can_be_made_while_adding(qtbot, window, panel):
    compare(qtbot, window, 1, 6)
    dialog = panel.add_pair(window.compare)
    dialog.case_box.setCurrentIndex(dialog.case_box.findData(dialog.NEW))
    assert not dialog.new_fields.isHidden()
    dialog.title_edit.setText("Made while filing")
    dialog.accept()
    qtbot.waitUntil(lambda: window.compare.case_item is not None, timeout=15000)
    wait_for_filing(qtbot, window, window.compare.case_item.case_id)
    assert panel.current_case().title == "Made while filing"
    assert panel.item_model.rowCount() == 1


def test_the_case_list_keeps_room_for_the_title_and_counts_items_in_words(qtbot, window, panel):
    title = "Bank robbery at Main Street branch, 14 March, suspect tracking across six cameras"
    case = make_case(qtbot, window, title)
    file_pair(qtbot, window, case.id, 0, 5)
    qtbot.waitUntil(lambda: panel.current_case().item_count == 1, timeout=15000)
    compare(qtbot, window, 1, 6)
    dialog = panel.add_pair(window.compare)
    assert dialog.case_box.itemText(dialog.case_box.findData(case.id)) == f"{title} (2026/0413): 1 item"
    dialog.reject()

    view, header = panel.case_view, panel.case_view.horizontalHeader()
    for width in (240, 300, 520):
        window.resizeDocks([window.cases_dock], [width], Qt.Orientation.Horizontal)
        qtbot.waitUntil(lambda w=width: abs(window.cases_dock.width() - w) <= 2, timeout=5000)
        qtbot.wait(50)
        room = view.viewport().width()
        shown = [c for c in range(5) if not header.isSectionHidden(c)]
        # The title keeps at least its share; the columns fit without a horizontal scroll bar.
        assert header.sectionSize(0) >= panel.TITLE_SHARE * room - 1, width
        assert sum(header.sectionSize(c) for c in shown) <= room
        # Items and Modified are always shown in full; the reference and analyst only when there is room.
        for col in (3, 4):
            assert col in shown and header.sectionSize(col) >= view.sizeHintForColumn(col)
        if width == 520:
            assert shown == [0, 1, 2, 3, 4]
    assert header.isSectionHidden(2) is False
    row = panel.case_model.row_of(case.id)
    tip = panel.case_model.index(row, 0).data(Qt.ItemDataRole.ToolTipRole)
    assert title in tip and "reference: 2026/0413" in tip and "analyst: J. Analyst" in tip
    assert panel.case_model.index(row, 4).data(Qt.ItemDataRole.ToolTipRole).startswith("modified 20")
    # "Case file" is a push button with its menu: the arrow has its own room beside the text.
    assert isinstance(panel.file_button, QPushButton) and panel.file_button.menu() is panel.file_menu
    assert panel.file_button.width() >= panel.file_button.sizeHint().width()


def test_reopened_item_shows_the_snapshot_without_running_a_model(qtbot, window, panel, monkeypatch):
    case = make_case(qtbot, window)
    explanation = file_pair(qtbot, window, case.id, 2, 9, verdict="no match", notes="different shoes")
    item = window.bench.ws.cases.get(case.id).items[0]
    compare(qtbot, window, 3, 4)  # something else on screen; the item is closed
    assert window.compare.case_item is None and window.compare.notes.toPlainText() == ""

    def no_model(*_a, **_k):
        raise AssertionError("reopening an item must not run the models")

    monkeypatch.setattr(window.bench, "explain", no_model)
    panel.item_view.selectRow(0)
    with qtbot.waitSignal(panel.item_opened, timeout=15000):
        panel.open_button.click()
    view = window.compare
    assert window.tabs.currentWidget() is window.compare_page
    assert view.chart.bar_count() == len(explanation.names) == 26
    assert view.distance_label.text() == format_distance(item.explanation["distance"])
    assert view.distance_label.text() == format_distance(explanation.distance)
    assert view.verdict() == "no match"
    assert view.notes.toPlainText() == "different shoes"
    assert view.case_item.id == item.id
    # The overlays come from the snapshot's maps, at each crop's own size.
    assert view.explanation.maps_a.shape[1:] == view.views[0].image.shape[:2]
    # A verdict given now goes to the item, not to the Unfiled case.
    view.set_verdict("inconclusive")
    wait_for_writes(qtbot, window)
    assert window.bench.ws.cases.get_item(item.id).verdict == "inconclusive"


def drag(view, start: QPoint, end: QPoint) -> None:
    QTest.mousePress(view, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, start)
    QTest.mouseMove(view, QPoint((start.x() + end.x()) // 2, (start.y() + end.y()) // 2))
    QTest.mouseMove(view, end)
    QTest.mouseRelease(view, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, end)


def test_a_drawn_rectangle_is_stored_in_crop_pixels_and_undo_redo_follow(qtbot, window, panel):
    case = make_case(qtbot, window)
    file_pair(qtbot, window, case.id, 0, 5)
    item_id = window.compare.case_item.id
    ws = window.bench.ws
    view = window.compare.views[0]
    window.compare.findChild(QToolButton, "tool_rect").click()
    assert view.tool == "rect"
    s = view.scale()
    assert s > 1  # the crop is shown enlarged
    start, end = view.to_widget(4, 10), view.to_widget(24, 40)
    drag(view, start.toPoint(), end.toPoint())
    wait_for_writes(qtbot, window)
    stored = ws.cases.get_item(item_id).annotations
    assert len(stored) == 1 and stored[0].kind == "rect" and stored[0].side == "query"
    g = stored[0].geometry
    # Widget pixels were turned back into crop pixels (within one screen pixel).
    assert g["x"] == pytest.approx(4, abs=1.5 / s + 0.1) and g["y"] == pytest.approx(10, abs=1.5 / s + 0.1)
    assert g["w"] == pytest.approx(20, abs=3 / s + 0.2) and g["h"] == pytest.approx(30, abs=3 / s + 0.2)
    assert len(view.shapes) == 1

    # The shape stays on the same crop pixels when the view is resized.
    window.resize(1000, 700)
    qtbot.wait(50)
    corner = view.to_widget(g["x"], g["y"])
    assert view.shape_at(corner) is not None and view.scale() != s

    assert window.undo_stack.undoText() == "draw a rectangle"
    redo = next(a for a in window.findChildren(QAction) if "Redo" in a.text())
    assert QKeySequence("Ctrl+Shift+Z") in redo.shortcuts()
    window.undo_stack.undo()
    wait_for_writes(qtbot, window)
    assert ws.cases.get_item(item_id).annotations == () and view.shapes == []
    window.undo_stack.redo()
    wait_for_writes(qtbot, window)
    again = ws.cases.get_item(item_id).annotations
    assert len(again) == 1 and again[0].geometry == g
    assert ws.audit.count("case.annotation_delete") == 1 and ws.audit.count("case.annotate") == 2


def test_escape_while_drawing_drops_the_shape_and_leaves_the_windows_job_alone(qtbot, window, panel):
    case = make_case(qtbot, window)
    file_pair(qtbot, window, case.id, 0, 5)
    item_id = window.compare.case_item.id
    view = window.compare.views[0]
    window.compare.findChild(QToolButton, "tool_rect").click()
    cancelled: list[bool] = []
    window.progress.current = lambda: SimpleNamespace(cancel=lambda: cancelled.append(True))
    start, end = view.to_widget(4, 10).toPoint(), view.to_widget(24, 40).toPoint()
    QTest.mousePress(view, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, start)
    QTest.mouseMove(view, end)
    # Escape belongs to the drawing here, not to the window's "Cancel the current job".
    QTest.keyClick(view, Qt.Key.Key_Escape)
    QTest.mouseRelease(view, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, end)
    wait_for_writes(qtbot, window)
    assert view.shapes == [] and window.bench.ws.cases.get_item(item_id).annotations == ()
    assert cancelled == []
    # Without a shape in hand, Escape is the window's again.
    QTest.keyClick(view, Qt.Key.Key_Escape)
    assert cancelled == [True]


def test_shapes_can_be_moved_relabelled_and_deleted_with_undo(qtbot, window, panel):
    case = make_case(qtbot, window)
    file_pair(qtbot, window, case.id, 0, 5)
    item_id = window.compare.case_item.id
    ws = window.bench.ws
    editor = window.compare.annotations
    arrow = editor.add("gallery", "arrow", {"x1": 2, "y1": 2, "x2": 20, "y2": 30}, label="bag")
    text = editor.add("query", "text", {"x": 3, "y": 50}, label="logo")
    wait_for_writes(qtbot, window)
    assert {a.kind for a in ws.cases.get_item(item_id).annotations} == {"arrow", "text"}

    # Drag the arrow with the select tool: it moves by the same crop pixels.
    gallery = window.compare.views[1]
    editor.set_tool("select")
    grab = gallery.to_widget(11, 16)
    s = gallery.scale()
    drag(gallery, grab.toPoint(), (grab + (gallery.to_widget(5, 0) - gallery.to_widget(0, 0))).toPoint())
    wait_for_writes(qtbot, window)
    moved = next(a for a in ws.cases.get_item(item_id).annotations if a.kind == "arrow")
    assert moved.geometry["x1"] == pytest.approx(7, abs=1 / s + 0.1)
    assert moved.geometry["y2"] == pytest.approx(30, abs=1 / s + 0.1)

    editor.relabel(text.key, "logo on the chest")
    wait_for_writes(qtbot, window)
    assert {a.label for a in ws.cases.get_item(item_id).annotations} == {"bag", "logo on the chest"}

    gallery.select(arrow.key)
    gallery.setFocus()
    QTest.keyClick(gallery, Qt.Key.Key_Delete)
    wait_for_writes(qtbot, window)
    assert [a.kind for a in ws.cases.get_item(item_id).annotations] == ["text"]
    window.undo_stack.undo()  # the delete
    window.undo_stack.undo()  # the label
    window.undo_stack.undo()  # the move
    wait_for_writes(qtbot, window)
    now = {a.kind: a for a in ws.cases.get_item(item_id).annotations}
    assert now["arrow"].geometry == {"x1": 2, "y1": 2, "x2": 20, "y2": 30}
    assert now["text"].label == "logo"


def test_items_are_reordered_and_removed(qtbot, window, panel):
    case = make_case(qtbot, window)
    for i, j in ((0, 5), (1, 6), (2, 7)):
        file_pair(qtbot, window, case.id, i, j)
    ws = window.bench.ws
    ids = [it.id for it in ws.cases.get(case.id).items]
    assert panel.item_model.rowCount() == 3

    panel.item_view.selectRow(2)
    assert not panel.down_button.isEnabled() and panel.up_button.isEnabled()
    panel.up_button.click()
    wait_for_items(qtbot, panel, case.id, [ids[0], ids[2], ids[1]])
    assert [it.id for it in ws.cases.get(case.id).items] == [ids[0], ids[2], ids[1]]
    assert panel.selected_row().item.id == ids[2]  # the moved item stays selected
    assert [panel.item_model.index(r, 0).data() for r in range(3)] == ["1", "2", "3"]

    panel.item_view.selectRow(0)
    box = panel.remove_item()
    assert "item 1" in box.text()
    box.button(QMessageBox.StandardButton.Yes).click()
    wait_for_items(qtbot, panel, case.id, [ids[2], ids[1]])
    assert [it.id for it in ws.cases.get(case.id).items] == [ids[2], ids[1]]
    assert panel.item_model.rowCount() == 2
    assert panel.case_model.index(panel.case_model.row_of(case.id), 3).data() == "2"


def test_a_case_is_saved_and_imported_into_another_workspace(qtbot, window, panel, tmp_path, monkeypatch):
    case = make_case(qtbot, window, "Saved case")
    file_pair(qtbot, window, case.id, 0, 5, verdict="match", notes="same person")
    window.compare.annotations.add("query", "rect", {"x": 2, "y": 3, "w": 10, "h": 12}, label="face")
    wait_for_writes(qtbot, window)
    target = tmp_path / "out" / "saved"
    target.parent.mkdir()
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), CASE_FILTER))
    with qtbot.waitSignal(panel.case_saved, timeout=60000) as saved:
        panel.save_case_file()
    path = saved.args[0].path
    assert path.name == "saved.amdcase" and path.is_file()  # the suffix is added

    # Another, empty workspace in the same window.
    other = tmp_path / "other"
    with qtbot.waitSignal(window.workspace_opened, timeout=30000):
        window.open_workspace(str(other), create=True)
    qtbot.waitUntil(lambda: panel.case_model.rowCount() == 0, timeout=5000)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(path), CASE_FILTER))
    with qtbot.waitSignal(panel.case_imported, timeout=60000):
        panel.import_case_file()
    qtbot.waitUntil(lambda: panel.item_model.rowCount() == 1, timeout=15000)
    assert panel.current_case().title == "Saved case" and panel.current_case().reference == "2026/0413"
    assert panel.item_model.index(0, 3).data() == "Match"
    ws = window.bench.ws
    assert ws.crops.count() == 2  # the crops came with the file
    item = ws.cases.get(panel.current_id).items[0]
    assert [(a.kind, a.label) for a in item.annotations] == [("rect", "face")]
    # The same file again: not imported, the panel selects the case it already holds and offers a copy.
    first = panel.current_id
    panel.current_id = None
    panel.import_case_file()
    qtbot.waitUntil(lambda: panel.confirm_box is not None and panel.confirm_box.isVisible(), timeout=30000)
    assert f"this workspace already holds an identical case: case {first} ('Saved case'" in panel.confirm_box.text()
    assert len(ws.cases.list()) == 1 and panel.current_id == first
    with qtbot.waitSignal(panel.case_imported, timeout=60000):
        panel.confirm_box.button(QMessageBox.StandardButton.Yes).click()
    assert [c.title for c in ws.cases.list()] == ["Saved case", "Saved case"]
    panel.current_id = first
    panel.reload()
    # The copy, shown until now, has one item too: wait for the first case's own.
    wait_for_items(qtbot, panel, first, [it.id for it in ws.cases.get(first).items])
    # And it opens in the compare view like any item.
    panel.item_view.selectRow(0)
    with qtbot.waitSignal(panel.item_opened, timeout=15000):
        panel.open_item()
    assert window.compare.chart.bar_count() == 26
    assert len(window.compare.views[0].shapes) == 1

    with qtbot.waitSignal(panel.case_verified, timeout=30000) as verified:
        panel.verify_case_file(str(path))
    assert verified.args[0].ok
    assert "is intact" in panel.last_message.text()


def test_a_tampered_case_file_is_refused_with_the_reason(qtbot, window, panel, tmp_path, monkeypatch):
    case = make_case(qtbot, window, "To be tampered")
    file_pair(qtbot, window, case.id, 0, 5, notes="original notes")
    good = tmp_path / "good.amdcase"
    with qtbot.waitSignal(panel.case_saved, timeout=60000):
        panel.save_case_file(str(good))
    bad = tmp_path / "bad.amdcase"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bad, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith("explanation.json"):
                data = data.replace(b'"distance"', b'"distance" ', 1)
            dst.writestr(info, data)
    before = len(window.bench.ws.cases.list())
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(bad), CASE_FILTER))
    panel.import_case_file()
    qtbot.waitUntil(lambda: panel.last_message is not None, timeout=30000)
    text = panel.last_message.text()
    # The reason in words, as the command line gives it, not an exception's class name.
    assert text.startswith(f"{bad}: refused: ") and "was changed: its SHA-256 does not match" in text
    assert len(window.bench.ws.cases.list()) == before  # nothing was imported

    with qtbot.waitSignal(panel.case_verified, timeout=30000) as verified:
        panel.verify_case_file(str(bad))
    assert not verified.args[0].ok
    assert "NOT intact" in panel.last_message.text()


def test_reports_are_exported_for_the_current_case(qtbot, window, panel, tmp_path):
    case = make_case(qtbot, window, "Report case")
    explanation = file_pair(qtbot, window, case.id, 0, 5, verdict="match")
    out = tmp_path / "report.html"
    with qtbot.waitSignal(panel.report_exported, timeout=60000):
        panel.export_report("html", str(out))
    html = out.read_text(encoding="utf-8")
    assert "Report case" in html and f"{explanation.distance:.4f}" in html
    assert window.bench.ws.audit.count("case.export") == 1


CASE_FILTER = "Case files (*.amdcase)"
