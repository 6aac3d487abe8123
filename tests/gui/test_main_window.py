"""The main window on a small indexed workspace: search, compare, verdicts, identities and undo."""

from __future__ import annotations

import threading

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from cli.workbench import Workbench
from gui.gallery import CropRole
from gui.identities import AssignCommand, MergeCommand


def wait_for_writes(qtbot, window) -> None:
    qtbot.waitUntil(lambda: window.writer.runner.pool.activeThreadCount() == 0, timeout=10000)
    qtbot.wait(50)  # let the queued "written" signal reach the window


def test_search_lists_k_results_in_distance_order(qtbot, window):
    window.results.top_box.setValue(5)
    query = window.gallery_model.crop(3)
    with qtbot.waitSignal(window.search_finished, timeout=30000):
        window.search_crop(query)
    model = window.results.model
    assert model.rowCount() == 5
    ranks = [model.index(r, 0).data() for r in range(5)]
    distances = [float(model.index(r, 2).data()) for r in range(5)]
    assert ranks == ["1", "2", "3", "4", "5"]
    assert distances == sorted(distances)
    shown = [model.index(r, 0).data(CropRole).id for r in range(5)]
    assert query.id not in shown
    # The same ranking as the headless search of the same workspace.
    expected = window.bench.search(query.id, top=5)
    assert shown == [row.crop.id for row in expected]
    assert window.results.caption.text().startswith("<b>Query</b>: crop")


def test_each_result_says_which_attributes_carry_most_of_its_distance(qtbot, window, monkeypatch):
    from gui import main_window
    from gui.results import SHARES_COLUMN

    monkeypatch.setattr(main_window, "SHARES_LIMIT", 3)
    window.results.top_box.setValue(4)
    query = window.gallery_model.crop(2)
    with qtbot.waitSignal(window.results_explained, timeout=60000):
        window.search_crop(query)
    model = window.results.model
    assert model.headerData(SHARES_COLUMN, Qt.Orientation.Horizontal) == "Top shares"
    assert "\u2260" in model.headerData(SHARES_COLUMN, Qt.Orientation.Horizontal, Qt.ItemDataRole.ToolTipRole)
    for r in range(3):
        result = model.index(r, 0).data(CropRole)
        # The two largest shares of the pair's own explanation, as the compare view would give them.
        e = window.bench.explain(window._path(query), window._path(result))
        top, differ = e.order()[:3], e.differing
        mark = [
            "\u2260 " if differ[i] else "" for i in top
        ]  # the crops differ on it, as in the chart's colours
        text = "\n".join(f"{mark[k]}{e.labels[i]} {100 * e.shares[i]:.1f}%" for k, i in enumerate(top[:2]))
        assert model.index(r, SHARES_COLUMN).data() == text
        tip = model.index(r, SHARES_COLUMN).data(Qt.ItemDataRole.ToolTipRole)
        assert tip.splitlines()[1:4] == [
            f"{e.labels[i]}: {100 * e.shares[i]:.1f}% of the distance"
            + (", and the crops differ on it" * bool(differ[i]))
            for i in top
        ]
    # Past the limit a result is left blank, not explained.
    assert model.index(3, SHARES_COLUMN).data() == ""


def test_largest_shares_stop_between_chunks_with_what_they_have(window):
    crops = [window.gallery_model.crop(r) for r in range(1, 6)]
    query = window.gallery_model.crop(0)
    polls: list[int] = []

    def stop() -> bool:  # asked before each chunk: the second time, stop
        polls.append(1)
        return len(polls) > 1

    shares = window.bench.largest_shares(query.id, crops, count=2, chunk=2, should_stop=stop)
    assert len(shares) == 2 and all(len(top) == 2 for top in shares)
    assert all(a[1] >= b[1] for a, b in shares)  # largest first
    full = window.bench.largest_shares(str(window._path(query)), crops, count=2)
    # A file as the query gives what its crop gives (batches of another size may round differently).
    assert len(full) == 5
    for got, want in zip(full[:2], shares, strict=True):
        assert [(label, differ) for label, _, differ in got] == [(label, differ) for label, _, differ in want]
        assert [share for _, share, _ in got] == pytest.approx([share for _, share, _ in want], abs=1e-6)


def test_enter_on_a_result_compares_it_with_the_query(qtbot, window):
    window.results.top_box.setValue(3)
    with qtbot.waitSignal(window.search_finished, timeout=30000):
        window.search_crop(window.gallery_model.crop(0))
    with qtbot.waitSignal(window.compare.explained, timeout=30000):
        QTest.keyClick(window.results.view, Qt.Key.Key_Return)
    assert window.tabs.currentWidget() is window.compare_page
    assert window.compare.chart.bar_count() == 26
    assert float(window.compare.distance_label.text()) > 0


def test_workers_run_off_the_ui_thread_and_results_arrive_on_it(qtbot, window, monkeypatch, qtlog):
    main = threading.get_ident()
    seen: dict[str, int] = {}
    search = Workbench.search

    def spy(self, *args, **kwargs):
        seen["search"] = threading.get_ident()
        return search(self, *args, **kwargs)

    import gui.thumbnails

    decode = gui.thumbnails.decode_thumbnails

    def decode_spy(*args, **kwargs):
        seen["thumbnails"] = threading.get_ident()
        return decode(*args, **kwargs)

    monkeypatch.setattr(Workbench, "search", spy)
    monkeypatch.setattr(gui.thumbnails, "decode_thumbnails", decode_spy)
    window.thumbnails.clear()
    window.search_finished.connect(lambda rows: seen.setdefault("results", threading.get_ident()))
    with qtbot.waitSignal(window.search_finished, timeout=30000):
        window.search_crop(window.gallery_model.crop(1))
    window.gallery.view.viewport().update()
    qtbot.waitUntil(lambda: "thumbnails" in seen, timeout=10000)
    assert seen["search"] != main and seen["thumbnails"] != main
    assert seen["results"] == main
    # Qt warns when an object is used from a thread it does not belong to; none of that happened.
    bad = [r.message for r in qtlog.records if "thread" in r.message.lower() or "pixmap" in r.message.lower()]
    assert not bad


def test_assign_merge_and_undo_change_the_store_and_the_gallery(qtbot, window):
    ws = window.bench.ws
    model = window.gallery_model
    a, b = model.crop(0), model.crop(5)
    assert a.identity != b.identity
    window.undo_stack.push(AssignCommand(window.writer, [a.id, b.id], "Person A"))
    wait_for_writes(qtbot, window)
    person = ws.identities.by_name("Person A")
    assert [c.identity_id for c in ws.crops.get_many([a.id, b.id])] == [person.id, person.id]
    qtbot.waitUntil(lambda: model.index(0).data() == "Person A", timeout=5000)

    window.undo_stack.undo()
    wait_for_writes(qtbot, window)
    assert [c.identity_id for c in ws.crops.get_many([a.id, b.id])] == [a.identity_id, b.identity_id]
    qtbot.waitUntil(lambda: model.index(0).data() == a.identity, timeout=5000)

    source, into = ws.identities.get(b.identity_id), ws.identities.get(a.identity_id)
    window.undo_stack.push(MergeCommand(window.writer, source, into))
    wait_for_writes(qtbot, window)
    assert ws.crops.count(identity_id=source.id) == 0
    assert ws.crops.count(identity_id=into.id) == 8
    window.undo_stack.undo()
    wait_for_writes(qtbot, window)
    assert ws.crops.count(identity_id=source.id) == 4
    # Every change is in the audit log: assign, its undo, the merge and its undo.
    assert ws.audit.count("crop.identity") >= 4
    assert ws.audit.count("identity.create") >= 1


def test_a_match_verdict_is_kept_with_the_pair_and_offers_one_identity(qtbot, window):
    model = window.gallery_model
    a, b = model.crop(0), model.crop(5)
    with qtbot.waitSignal(window.compare.explained, timeout=30000):
        window.compare_paths(window._path(a), window._path(b))
    window.compare.notes.setPlainText("same jacket, same bag")
    window.compare.set_verdict("match")
    qtbot.waitUntil(lambda: getattr(window, "same_identity_dialog", None) is not None, timeout=10000)
    dialog = window.same_identity_dialog
    dialog.setTextValue("Person B")
    dialog.accept()
    wait_for_writes(qtbot, window)
    ws = window.bench.ws
    person = ws.identities.by_name("Person B")
    assert person is not None
    assert {c.identity_id for c in ws.crops.get_many([a.id, b.id])} == {person.id}
    item = window.bench.verdict_of(window._path(a), window._path(b))
    assert item is not None and item.verdict == "match" and item.notes == "same jacket, same bag"
    assert item.explanation["distance"] > 0

    window.compare.set_verdict("no match")
    wait_for_writes(qtbot, window)
    assert window.bench.verdict_of(window._path(a), window._path(b)).verdict == "no_match"
    assert ws.audit.count("case.verdict") == 2


def test_dropping_files_on_the_gallery_imports_them(qtbot, window, tmp_path, drop_files):
    from PIL import Image

    folder = tmp_path / "drop"
    folder.mkdir()
    for i in range(3):
        Image.new("RGB", (40, 90), (40 * i, 90, 200)).save(folder / f"new{i}.png")
    (folder / "broken.jpg").write_bytes(b"not an image")
    drop_files(window.gallery.view.viewport(), [folder])
    qtbot.waitUntil(lambda: window.gallery_model.rowCount() == 27, timeout=30000)
    qtbot.waitUntil(lambda: getattr(window, "last_import_box", None) is not None, timeout=5000)
    assert "3 new crops imported" in window.last_import_box.text()
    assert "1 refused" in window.last_import_box.text()


def test_a_cancelled_import_says_what_it_kept_and_shows_it(qtbot, window, tmp_path, monkeypatch):
    from PIL import Image

    from cli.jobs import ingest_items
    from db.ingest import ingest

    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(4):
        Image.new("RGB", (40, 90), (60 * i, 30, 90)).save(folder / f"late{i}.png")

    def ingest_one_at_a_time(paths, on_progress=None, should_stop=None):
        items, refused = ingest_items(list(paths))

        def cancel_after_the_first(_progress) -> None:  # the analyst presses Cancel after the first file
            window.runner.running("import").cancel()

        return ingest(window.bench.ws, items, refused=refused, on_progress=cancel_after_the_first,
                      should_stop=should_stop, batch_size=1)  # fmt: skip

    monkeypatch.setattr(window.bench, "ingest", ingest_one_at_a_time)
    before = window.gallery_model.rowCount()
    job = window.import_paths([str(folder)])
    qtbot.waitUntil(lambda: getattr(window, "last_import_box", None) is not None, timeout=30000)
    assert job.cancelled
    text = window.last_import_box.text()
    assert "1 new crop imported" in text and "cancelled: the crops imported so far are kept" in text
    qtbot.waitUntil(lambda: window.gallery_model.rowCount() == before + 1, timeout=10000)


def test_an_image_dropped_on_the_results_becomes_the_query(qtbot, window, drop_files, tmp_path):
    from PIL import Image

    source = window.bench.image_path(window.gallery_model.crop(2))
    query = tmp_path / "query.png"
    Image.open(source).save(query)  # the same person, as a file from outside the workspace
    window.results.top_box.setValue(4)
    with qtbot.waitSignal(window.search_finished, timeout=30000) as finished:
        drop_files(window.results.view.viewport(), [query])
    rows = finished.args[0]
    assert len(rows) == 4 and window.results.model.rowCount() == 4
    assert window.query == ("file", str(query))
    # The stored copy of the same picture is the nearest crop.
    assert rows[0].crop.id == window.gallery_model.crop(2).id
    assert rows[0].distance < 1e-2


def test_the_search_command_names_each_results_largest_shares(demo_workspace, tiny_models, capsys):
    from cli.main import main

    target, interpreter = str(tiny_models["target"]), str(tiny_models["interpreter"])
    argv = ["search", str(demo_workspace), "--model", target, "--query", "3", "--top", "3", "--device", "cpu"]
    assert main([*argv, "--interpreter", interpreter]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "largest shares" in lines[0] and len(lines) == 4
    from amd.explain import Explainer
    from db.workspace import Workspace

    ws = Workspace.open(demo_workspace)

    def path(crop_id: int) -> str:
        crop = ws.crops.get(crop_id)
        return str(ws.images.original_path(crop.sha256, crop.format))

    try:
        explainer = Explainer.from_files(target, interpreter)
        for line in lines[1:]:
            e = explainer.explain(path(3), path(int(line.split()[1])))
            top = e.order()[:2]
            marks = ["\u2260 " if e.differing[i] else "" for i in top]
            assert (
                ", ".join(
                    f"{m}{e.labels[i]} {100 * e.shares[i]:.1f}%" for m, i in zip(marks, top, strict=True)
                )
                in line
            )
    finally:
        ws.close()
    # A target given as the interpreter is refused before the search.
    assert main([*argv, "--interpreter", target]) == 2
    assert "not an interpreter" in capsys.readouterr().err


def test_the_results_are_in_front_of_the_cases_on_a_first_start(qtbot, window):
    # Both docks share one place; the results' hint says how to begin ("Double-click a crop ...").
    assert window.cases_dock in window.tabifiedDockWidgets(window.results_dock)
    qtbot.waitUntil(lambda: not window.results_dock.visibleRegion().isEmpty(), timeout=5000)
    assert window.cases_dock.visibleRegion().isEmpty()
