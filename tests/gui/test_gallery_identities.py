"""The gallery's filter by predicted attribute, and deleting identities (and what merges and splits leave)."""

from __future__ import annotations

import numpy as np
from sqlalchemy import delete

from db.models import Embedding
from gui.gallery import CropRole
from gui.identities import AssignCommand, DeleteCommand, MergeCommand


def wait_for_writes(qtbot, window) -> None:
    qtbot.waitUntil(lambda: window.writer.runner.pool.activeThreadCount() == 0, timeout=10000)
    qtbot.wait(50)  # let the queued "written" signal reach the window


def shown_ids(window) -> list[int]:
    model = window.gallery_model
    return [model.index(r).data(CropRole).id for r in range(model.rowCount())]


def wait_for_rows(qtbot, window, count: int) -> None:
    model = window.gallery_model
    qtbot.waitUntil(
        lambda: model.rowCount() == count and all(model.crop(r) is not None for r in range(count)),
        timeout=10000,
    )


def test_the_demo_build_stores_the_interpreters_predictions(window):
    interpreter = window.bench.models.interpreter
    assert interpreter is not None
    vectors = window.bench.ws.embeddings.vectors(interpreter.id, window.bench.ws.crops.ids())
    assert len(vectors) == 24
    stacked = np.stack(list(vectors.values())).astype(np.float32)
    assert stacked.shape == (24, 26) and ((stacked >= 0) & (stacked <= 1)).all()
    # The stored probabilities are the comparison view's predicted attributes (to float16 precision).
    a, b = window.gallery_model.crop(0), window.gallery_model.crop(1)
    explanation = window.bench.explain(window._path(a), window._path(b))
    np.testing.assert_allclose(vectors[a.id].astype(np.float32), explanation.predicted_a, atol=2e-3)
    np.testing.assert_allclose(vectors[b.id].astype(np.float32), explanation.predicted_b, atol=2e-3)


def test_predicted_attribute_filter_shows_exactly_the_crops_at_or_above_one_half(qtbot, window):
    ws, bench = window.bench.ws, window.bench
    interpreter = bench.models.interpreter
    ids = ws.crops.ids()
    hat = [a["name"] for a in interpreter.attribute_schema["attributes"]].index("hat")
    # Replace the predictions by known ones: "hat" is 0.9 on every fourth crop, exactly 0.5 on crop 1,
    # 0.49 on crop 2 and 0.1 elsewhere, so the filter must show crops 0, 4, 8, 12, 16, 20 and 1.
    probs = np.full((24, 26), 0.3, dtype=np.float32)
    probs[:, hat] = 0.1
    probs[0::4, hat] = 0.9
    probs[1, hat] = 0.5
    probs[2, hat] = 0.49
    with ws.writing() as s:
        s.execute(delete(Embedding).where(Embedding.model_id == interpreter.id))
        ws.embeddings.add(s, interpreter.id, ids, probs)
    expected = sorted([ids[i] for i in (0, 4, 8, 12, 16, 20)] + [ids[1]])
    assert len(expected) == 7

    gallery = window.gallery
    window.reload_choices()
    qtbot.waitUntil(lambda: gallery.source_box.model().item(1).isEnabled(), timeout=10000)
    assert gallery.source_box.itemText(1) == "predicted"
    assert gallery.attribute_box.findData("hat") > 0
    assert gallery.show_predicted("hat")
    wait_for_rows(qtbot, window, 7)
    assert shown_ids(window) == expected
    assert gallery.count_label.text() == "7 crops"
    assert window.count_label.text() == "7 crops (filtered)"

    # With a camera as well: the intersection, counted by hand from the crops' cameras.
    camera = ws.crops.get(ids[0]).camera_id
    gallery.camera_box.setCurrentIndex(gallery.camera_box.findData(camera))
    on_camera = [i for i in expected if ws.crops.get(i).camera_id == camera]
    wait_for_rows(qtbot, window, len(on_camera))
    assert shown_ids(window) == on_camera and 0 < len(on_camera) < 7

    # "known" reads the identities' labels instead: the crops of identities labelled with a hat.
    gallery.camera_box.setCurrentIndex(0)
    gallery.source_box.setCurrentIndex(0)
    labelled = [i.id for i in ws.identities.list() if (i.attributes or {}).get("values", {}).get("hat") == 1]
    known = sorted(c for identity in labelled for c in ws.crops.ids(identity_id=identity))
    wait_for_rows(qtbot, window, len(known))
    assert sorted(shown_ids(window)) == known
    assert window.gallery_model.filter.predicted_by is None


def test_predicted_filter_is_offered_only_with_stored_predictions(qtbot, window):
    ws, interpreter = window.bench.ws, window.bench.models.interpreter
    with ws.writing() as s:
        s.execute(delete(Embedding).where(Embedding.model_id == interpreter.id))
    window.reload_choices()

    def predicted():
        return window.gallery.source_box.model().item(1)

    qtbot.waitUntil(lambda: "Index the workspace now" in predicted().toolTip(), timeout=10000)
    assert not predicted().isEnabled()
    assert not window.gallery.show_predicted("hat")
    # Indexing stores the predictions again, and the filter comes back.
    job = window.index_now()
    with qtbot.waitSignal(job.signals.succeeded, timeout=60000):
        pass
    assert ws.embeddings.count(interpreter.id) == 24
    qtbot.waitUntil(lambda: predicted().isEnabled(), timeout=10000)
    assert window.gallery.show_predicted("hat")


def test_delete_identity_unlabels_its_crops_and_undo_restores_it(qtbot, window):
    ws = window.bench.ws
    first = window.gallery_model.crop(0)
    identity = ws.identities.get(first.identity_id)
    crops = ws.crops.ids(identity_id=identity.id)
    assert len(crops) == 4
    qtbot.waitUntil(lambda: len(window.identities.identities) == 6, timeout=10000)
    row = [i.id for i in window.identities.identities].index(identity.id)
    window.identities.list.item(row).setSelected(True)
    window.delete_identities()
    wait_for_writes(qtbot, window)
    assert ws.identities.by_name(identity.name) is None
    assert ws.crops.count(unlabelled=True) == 4
    assert [c.identity for c in ws.crops.get_many(crops)] == [None] * 4
    assert "deleted " + identity.name in window.statusBar().currentMessage()
    qtbot.waitUntil(lambda: len(window.identities.identities) == 5, timeout=10000)
    qtbot.waitUntil(lambda: window.gallery_model.index(0).data() == "unlabelled", timeout=10000)
    event = ws.audit.list(action="identity.delete")[-1]
    assert event.details["name"] == identity.name and event.details["crops"] == crops

    window.undo_stack.undo()
    wait_for_writes(qtbot, window)
    back = ws.identities.by_name(identity.name)
    assert back is not None and back.id == identity.id and back.attributes == identity.attributes
    assert ws.crops.ids(identity_id=identity.id) == crops
    assert ws.audit.count("identity.restore") == 1
    qtbot.waitUntil(lambda: window.gallery_model.index(0).data() == identity.name, timeout=10000)

    window.undo_stack.redo()  # and again
    wait_for_writes(qtbot, window)
    assert ws.identities.by_name(identity.name) is None and ws.crops.count(unlabelled=True) == 4


def test_merge_and_split_leave_no_empty_identity_unless_asked(qtbot, window):
    ws = window.bench.ws
    a, b = window.gallery_model.crop(0), window.gallery_model.crop(5)
    into, source = ws.identities.get(a.identity_id), ws.identities.get(b.identity_id)
    window.undo_stack.push(MergeCommand(window.writer, source, into))
    wait_for_writes(qtbot, window)
    assert ws.identities.by_name(source.name) is None and ws.crops.count(identity_id=into.id) == 8
    assert len(ws.identities.list()) == 5
    window.undo_stack.undo()
    wait_for_writes(qtbot, window)
    assert ws.identities.get(source.id).name == source.name
    assert ws.crops.count(identity_id=source.id) == 4 and ws.crops.count(identity_id=into.id) == 4

    # Splitting every crop off an identity moves them to the new one and drops the old one.
    crops = ws.crops.ids(identity_id=into.id)
    window.undo_stack.push(AssignCommand(window.writer, crops, "Person A"))
    wait_for_writes(qtbot, window)
    person = ws.identities.by_name("Person A")
    assert ws.crops.ids(identity_id=person.id) == crops and ws.identities.by_name(into.name) is None
    window.undo_stack.undo()  # the old identity is back and the new one, empty again, is gone
    wait_for_writes(qtbot, window)
    assert ws.crops.ids(identity_id=into.id) == crops and ws.identities.by_name("Person A") is None

    # Asked to keep them, the emptied identity stays.
    window.keep_empty_action.setChecked(True)
    assert window.settings.value("identities/keep_empty", type=bool) is True
    window.undo_stack.push(AssignCommand(window.writer, crops, "Person A", window._keep_empty()))
    wait_for_writes(qtbot, window)
    kept = ws.identities.by_name(into.name)
    assert kept is not None and ws.crops.count(identity_id=kept.id) == 0
    window.undo_stack.undo()
    wait_for_writes(qtbot, window)
    assert ws.crops.ids(identity_id=into.id) == crops
    # Deleted: the merged one, the split one, and "Person A" when each of the two splits was undone.
    assert ws.audit.count("identity.delete") == 4 and ws.audit.count("identity.restore") == 2


def test_deleting_several_identities_is_one_undo_step(qtbot, window):
    ws = window.bench.ws
    qtbot.waitUntil(lambda: len(window.identities.identities) == 6, timeout=10000)
    chosen = window.identities.identities[:3]
    before = sorted(i.id for i in window.identities.identities)
    window.undo_stack.push(DeleteCommand(window.writer, chosen))
    wait_for_writes(qtbot, window)
    assert len(ws.identities.list()) == 3 and ws.crops.count(unlabelled=True) == 12
    assert window.undo_stack.undoText() == "delete " + ", ".join(i.name for i in chosen)
    window.undo_stack.undo()
    wait_for_writes(qtbot, window)
    assert sorted(i.id for i in ws.identities.list()) == before  # each under its old id
    assert ws.crops.count(unlabelled=True) == 0
    qtbot.waitUntil(lambda: len(window.identities.identities) == 6, timeout=10000)


def test_keyboard_arrows_enter_verdict_keys_and_ctrl_f(qtbot, window):
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    window.activateWindow()
    view = window.gallery.view
    view.setFocus()
    view.setCurrentIndex(window.gallery_model.index(0))
    QTest.keyClick(view, Qt.Key.Key_Right)
    assert view.currentIndex().row() == 1
    QTest.keyClick(view, Qt.Key.Key_Right, Qt.KeyboardModifier.ShiftModifier)  # rows 1 and 2 selected
    assert view.selected_rows() == [1, 2]
    with qtbot.waitSignal(window.compare.explained, timeout=30000):
        QTest.keyClick(view, Qt.Key.Key_Return)
    assert window.tabs.currentWidget() is window.compare_page
    crops = window.gallery_model.crops([1, 2])
    assert window.compare.paths == [window._path(crops[0]), window._path(crops[1])]

    # Typed into the notes, "1" is text; outside them it is the verdict key.
    window.compare.notes.setFocus()
    QTest.keyClicks(window.compare.notes, "seen 1 bag")
    assert window.compare.notes.toPlainText() == "seen 1 bag" and window.compare.verdict() is None
    window.compare.chart.setFocus()
    QTest.keyClick(window.compare.chart, Qt.Key.Key_3)
    assert window.compare.verdict() == "inconclusive"
    wait_for_writes(qtbot, window)
    item = window.bench.verdict_of(*window.compare.paths)
    assert item.verdict == "inconclusive" and item.notes == "seen 1 bag"

    # Ctrl+F searches with the selected gallery crop.
    window.tabs.setCurrentWidget(window.gallery)
    view.setFocus()
    with qtbot.waitSignal(window.search_finished, timeout=30000):
        QTest.keyClick(view, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert window.query == ("crop", crops[0])
    # In the results, arrows move and Enter compares the current one with the query.
    results = window.results.view
    QTest.keyClick(results, Qt.Key.Key_Down)
    assert results.currentIndex().row() == 1
    with qtbot.waitSignal(window.compare.explained, timeout=30000):
        QTest.keyClick(results, Qt.Key.Key_Enter)
    assert window.compare.paths[1] == window._path(window.results.current_crop())


def test_actions_without_a_selection_say_what_to_select_and_change_nothing(qtbot, window):
    assert window.query is None
    window.gallery.view.clearSelection()
    window.identities.list.clearSelection()
    before = [(c.id, c.identity_id) for c in window.bench.ws.crops.get_many(shown_ids(window))]
    hints = {
        window.assign_selection: "select crops in the gallery first",
        window.split_selection: "select the crops to split off in the gallery first",
        window.unlabel_selection: "select the crops to unlabel in the gallery first",
        window.merge_identities: "select two or more identities in the list (the first one is kept)",
        window.rename_identity: "select an identity in the list first",
        window.delete_identities: "select the identities to delete in the list first",
        window.search_selected: "select a crop in the gallery to search with",
        window.compare_selected: "select two crops in the gallery to compare them, or one to compare with the query",
    }
    for action, hint in hints.items():
        window.statusBar().clearMessage()
        action()
        assert window.statusBar().currentMessage() == hint
    assert window.undo_stack.count() == 0
    wait_for_writes(qtbot, window)
    assert [(c.id, c.identity_id) for c in window.bench.ws.crops.get_many(shown_ids(window))] == before
