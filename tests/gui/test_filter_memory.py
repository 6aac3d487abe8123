"""What the workbench keeps for the analyst: the gallery's filters between sessions, and the notes typed
on an open case item (saved a moment after the typing stops, and when the item is left)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from PySide6.QtTest import QTest


def choices_loaded(window) -> bool:
    return window.gallery.camera_box.count() > 1 and window.gallery.identity_box.count() > 2


def reopen(qtbot, settings):
    from gui.main_window import MainWindow

    win = MainWindow(settings, Path(os.environ["AMD_WORKBENCH_HOME"]))
    qtbot.addWidget(win)
    with qtbot.waitSignal(win.workspace_opened, timeout=30000):
        win.start()  # the last workspace
    return win


def test_gallery_filters_are_restored_after_a_restart(qtbot, window, settings):
    gallery = window.gallery
    qtbot.waitUntil(lambda: choices_loaded(window), timeout=10000)
    crop = window.gallery_model.crop(0)
    camera_id, identity_id = crop.camera_id, crop.identity_id
    shown = window.bench.ws.crops.count(camera_id=camera_id, identity_id=identity_id)
    assert 0 < shown < 24
    attribute = gallery.attribute_box.itemData(1)
    gallery.camera_box.setCurrentIndex(gallery.camera_box.findData(camera_id))
    gallery.identity_box.setCurrentIndex(gallery.identity_box.findData(identity_id))
    gallery.group_box.setChecked(True)
    qtbot.waitUntil(lambda: window.count_label.text() == f"{shown} crops (filtered)", timeout=10000)
    window.close()

    again = reopen(qtbot, settings)
    g = again.gallery
    qtbot.waitUntil(lambda: g.camera_box.currentData() == camera_id, timeout=10000)
    assert g.identity_box.currentData() == identity_id
    assert g.group_box.isChecked() and g.attribute_box.currentData() is None
    flt = again.gallery_model.filter
    assert (flt.camera_id, flt.identity_id, flt.group_by_identity) == (camera_id, identity_id, True)
    qtbot.waitUntil(lambda: again.count_label.text() == f"{shown} crops (filtered)", timeout=10000)
    assert again.gallery_model.rowCount() == shown

    # The predicted attribute filter, then back to "all identities": kept the same way.
    qtbot.waitUntil(lambda: g.source_box.model().item(1).isEnabled(), timeout=10000)
    g.identity_box.setCurrentIndex(0)
    g.attribute_box.setCurrentIndex(g.attribute_box.findData(attribute))
    g.source_box.setCurrentIndex(1)
    assert again.gallery_model.filter.predicted_by is not None
    again.close()
    third = reopen(qtbot, settings)
    t = third.gallery
    qtbot.waitUntil(lambda: t.attribute_box.currentData() == attribute, timeout=10000)
    assert t.source_box.currentIndex() == 1 and t.identity_box.currentData() is None
    assert third.gallery_model.filter.predicted_by == third.bench.models.interpreter.id
    third.close()


def test_filters_that_no_longer_exist_are_ignored(qtbot, workspace, settings):
    from gui.main_window import MainWindow, workspace_key

    stale = {"camera": 9999, "identity": 8888, "attribute": "no_such_attribute", "source": "predicted"}
    settings.setValue(f"{workspace_key(workspace)}/gallery_filters", json.dumps(stale))
    settings.setValue("workspace/last", str(workspace))
    win = MainWindow(settings, Path(os.environ["AMD_WORKBENCH_HOME"]))
    qtbot.addWidget(win)
    with qtbot.waitSignal(win.workspace_opened, timeout=30000):
        win.start()
    qtbot.waitUntil(lambda: choices_loaded(win), timeout=10000)
    qtbot.waitUntil(lambda: win.gallery_model.rowCount() == 24, timeout=10000)
    g = win.gallery
    assert g.camera_box.currentIndex() == 0 and g.identity_box.currentIndex() == 0
    assert g.attribute_box.currentIndex() == 0 and not g.group_box.isChecked()
    assert win.count_label.text() == "24 crops"
    win.close()


# ---------------------------------------------------------------------- notes on an open case item


def open_case_item(qtbot, window, i: int, j: int):
    model = window.gallery_model
    with qtbot.waitSignal(window.compare.explained, timeout=30000):
        window.compare_paths(window._path(model.crop(i)), window._path(model.crop(j)))
    panel = window.case_panel
    panel.file_pair(window.compare, None, title="Platform 4")
    # Filed once the view holds the stored item (the panel's reloads may answer before or after that).
    qtbot.waitUntil(lambda: window.compare.case_item is not None, timeout=15000)
    return window.compare.case_item


def stored_notes(window, item_id: int) -> str:
    return window.bench.ws.cases.get_item(item_id).notes or ""


def test_notes_typed_on_an_open_item_are_saved_after_a_pause(qtbot, window):
    item = open_case_item(qtbot, window, 0, 5)
    panel = window.case_panel
    notes = window.compare.notes
    notes.setFocus()
    started = time.monotonic()
    with qtbot.waitSignal(panel.notes_saved, timeout=10000) as saved:
        QTest.keyClicks(notes, "red cap")
        typed = time.monotonic()
        qtbot.wait(300)
        # Still typing (in the debounce window): nothing is written yet.
        assert stored_notes(window, item.id) == ""
        QTest.keyClicks(notes, " at gate B")
    waited = time.monotonic() - typed
    assert saved.args[0].id == item.id and saved.args[0].notes == "red cap at gate B"
    assert stored_notes(window, item.id) == "red cap at gate B"
    assert waited >= panel.NOTES_DELAY_MS / 1000, (waited, time.monotonic() - started)

    # Typed and left at once (another pair compared): saved when the item is closed, not lost.
    QTest.keyClicks(notes, "; left at 10:42")
    with qtbot.waitSignal(panel.notes_saved, timeout=10000):
        window.compare.set_crop(0, window._path(window.gallery_model.crop(7)))
    assert window.compare.case_item is None
    assert stored_notes(window, item.id) == "red cap at gate B; left at 10:42"


def test_a_match_on_an_open_item_offers_one_identity(qtbot, window):
    model = window.gallery_model
    a, b = model.crop(0), model.crop(5)
    assert a.identity_id != b.identity_id
    item = open_case_item(qtbot, window, 0, 5)
    window.compare.set_verdict("match")
    qtbot.waitUntil(lambda: getattr(window, "same_identity_dialog", None) is not None, timeout=10000)
    dialog = window.same_identity_dialog
    assert dialog.isVisible() and dialog.textValue() == a.identity
    assert window.bench.ws.cases.get_item(item.id).verdict == "match"
    dialog.setTextValue("Person Z")
    dialog.accept()
    qtbot.waitUntil(
        lambda: {c.identity for c in window.bench.ws.crops.get_many([a.id, b.id])} == {"Person Z"},
        timeout=10000,
    )
