"""Screenshots of the workbench for the documentation: main window, results and comparison.

    xvfb-run -s "-screen 0 1600x1000x24" python scripts/gui_screenshots.py WORKSPACE [--out docs]

Opens WORKSPACE (which must be indexed with a target and an interpreter, with the interpreter's attribute
predictions stored), filters the gallery by a predicted attribute, runs a search with one of the crops
shown, compares the query with its best result, and saves ``gui_main.png``, ``gui_results.png`` and
``gui_compare.png`` at 1600x1000. Runs offscreen when no display is set.
"""

from __future__ import annotations

import argparse
import os
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
    window.open_workspace(args.workspace)
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
    window.search_finished.connect(done.append)
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
    print(f"saved {out / 'gui_main.png'}, {out / 'gui_results.png'}, {out / 'gui_compare.png'}")
    window.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
