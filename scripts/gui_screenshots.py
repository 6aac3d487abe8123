"""Screenshots of the workbench for the documentation: main window, results and comparison.

    xvfb-run -s "-screen 0 1600x1000x24" python scripts/gui_screenshots.py WORKSPACE [--out docs]

Opens a copy of WORKSPACE (which must be indexed with a target and an interpreter, with the interpreter's
attribute predictions stored; ``main.py demo FOLDER`` makes one), filters the gallery by a predicted
attribute, runs a search with one of the crops shown, compares the query with its best result, files three
compared pairs in a case and annotates the first, and saves ``gui_main.png``, ``gui_results.png``,
``gui_compare.png`` and ``gui_cases.png`` at 1600x1000. The workspace itself is left as it was. Runs
offscreen when no display is set.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def wait_until(app, condition, timeout_s: float = 120.0) -> None:
    end = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > end:
            raise TimeoutError("the window did not get there in time")
        app.processEvents()
        time.sleep(0.01)


def settle(app, seconds: float = 0.5) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workspace")
    parser.add_argument("--out", default=str(ROOT / "docs"))
    parser.add_argument("--crop", type=int, default=1, help="row of the gallery used as the query")
    parser.add_argument(
        "--predicted",
        default="backpack",
        metavar="ATTRIBUTE",
        help="filter the gallery by this predicted attribute (default backpack; '' for no filter)",
    )
    args = parser.parse_args()
    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("AMD_WORKBENCH_HOME", tempfile.mkdtemp(prefix="amd-shots-"))

    from gui.app import create_application, make_settings

    app = create_application(["screenshots"])
    from gui.main_window import MainWindow

    window = MainWindow(make_settings(), Path(os.environ["AMD_WORKBENCH_HOME"]))
    window.resize(1600, 1000)
    window.show()
    opened: list[str] = []
    window.workspace_opened.connect(opened.append)
    # The case made for the last picture goes into a copy, not into the analyst's workspace.
    copy = Path(tempfile.mkdtemp(prefix="amd-shots-ws-")) / Path(args.workspace).resolve().name
    shutil.copytree(args.workspace, copy)
    window.open_workspace(str(copy))
    wait_until(app, lambda: opened)
    model = window.gallery_model
    wait_until(app, lambda: model.rowCount() > 0 and model.crop(args.crop) is not None)
    wait_until(app, lambda: window.device_label.text() not in ("device: loading...",))
    if args.predicted:
        gallery = window.gallery
        wait_until(app, lambda: gallery.source_box.model().item(1).isEnabled())
        wait_until(app, lambda: gallery.attribute_box.findData(args.predicted) > 0)
        if not gallery.show_predicted(args.predicted):
            raise SystemExit(f"cannot filter by the predicted attribute {args.predicted!r}")
        settle(app)
        wait_until(app, lambda: model.rowCount() > args.crop and model.crop(args.crop) is not None)
    window.gallery.view.setCurrentIndex(model.index(args.crop))
    wait_until(app, lambda: not window.thumbnails.busy())
    settle(app, 1.0)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    window.results_dock.hide()
    settle(app)
    window.grab().save(str(out / "gui_main.png"))

    done: list[list] = []
    window.results_explained.connect(done.append)
    window.search_crop(model.crop(args.crop))
    wait_until(app, lambda: done)
    wait_until(app, lambda: not window.thumbnails.busy())
    settle(app, 1.0)
    window.grab().save(str(out / "gui_results.png"))

    explained: list = []
    window.compare.explained.connect(explained.append)
    window.results.view.selectRow(0)
    window.results.compare_requested.emit(window.results.current_crop())
    wait_until(app, lambda: explained)
    settle(app, 1.0)
    window.grab().save(str(out / "gui_compare.png"))

    file_case(app, window, model.crop(args.crop))
    window.grab().save(str(out / "gui_cases.png"))
    names = ", ".join(str(out / f"gui_{n}.png") for n in ("main", "results", "compare", "cases"))
    print(f"saved {names}")
    window.close()
    shutil.rmtree(copy.parent, ignore_errors=True)
    return 0


def file_case(app, window, query) -> None:
    """File three comparisons of ``query`` in a new case (a match, a mismatch, an undecided pair), open the
    first and pin four annotations on it, with the case panel in front."""
    panel = window.case_panel
    window.cases_dock.show()
    window.cases_dock.raise_()
    title = "Station platform, 14 May"
    panel.create_case(
        title,
        "2026/0413",
        "J. Analyst",
        "Is the person with the black top on camera 5 the one seen on camera 3?",
    )
    wait_until(app, lambda: panel.current_case() is not None and panel.current_case().title == title)
    case_id = panel.current_case().id
    rows = [r.crop for r in window.results.model.rows if r.crop.id != query.id]
    same = [c for c in rows if c.identity_id == query.identity_id]
    other = [c for c in rows if c.identity_id != query.identity_id]
    pairs = [
        (same[0], "match", "same top and trousers, backpack on both"),
        (other[0], "no match", "different hair, no backpack"),
        (same[-1] if len(same) > 1 else other[1], "inconclusive", "side view, face not visible"),
    ]
    for crop, verdict, notes in pairs:
        explained: list = []
        window.compare.explained.connect(explained.append)
        window.compare_paths(window._path(query), window._path(crop))
        wait_until(app, lambda done=explained: done)
        window.compare.explained.disconnect(explained.append)
        window.compare.verdict_buttons.button(
            ("match", "no match", "inconclusive").index(verdict)
        ).setChecked(True)
        window.compare.notes.setPlainText(notes)
        filed = len(window.bench.ws.cases.get(case_id).items) + 1
        panel.file_pair(window.compare, case_id)
        wait_until(app, lambda n=filed: len(window.bench.ws.cases.get(case_id).items) == n)
        wait_until(app, lambda n=filed: len(panel.item_model.rows) == n)
    first = window.bench.ws.cases.get(case_id).items[0].id
    panel.select_item(first)
    panel.open_item(first)
    wait_until(app, lambda: window.compare.case_item is not None and window.compare.case_item.id == first)
    editor = window.compare.annotations
    w, h = query.width, query.height
    editor.add("query", "rect", {"x": 0.2 * w, "y": 0.27 * h, "w": 0.6 * w, "h": 0.25 * h}, label="black top")
    editor.add(
        "gallery", "rect", {"x": 0.2 * w, "y": 0.27 * h, "w": 0.6 * w, "h": 0.25 * h}, label="black top"
    )
    editor.add(
        "gallery", "arrow", {"x1": 0.9 * w, "y1": 0.15 * h, "x2": 0.55 * w, "y2": 0.32 * h}, label="strap"
    )
    editor.add("query", "text", {"x": 0.1 * w, "y": 0.9 * h}, label="same shoes")
    wait_until(app, lambda: len(window.bench.ws.cases.get_item(first).annotations) == 4)
    wait_until(app, lambda: not window.thumbnails.busy())
    settle(app, 1.5)


if __name__ == "__main__":
    raise SystemExit(main())
