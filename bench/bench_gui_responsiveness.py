"""Does the window stay responsive while a model indexes a gallery?

The main window is open on a workspace of N crops (default 5,000) with the gallery on screen; a 10 ms
timer ticks on the UI thread while the window's own "index now" job embeds every crop with a real
model on its worker. The figure is the longest gap between two ticks (goal: under 100 ms), and its
ratio to the same measurement with no job running (baseline, same process, same window, just before).
A third figure scrolls a 100,000-row gallery (records paged in on workers, thumbnails decoded off the
UI thread) and reports its longest gap.

    python bench/bench_gui_responsiveness.py [--crops 5000] [--model FILE] [--scroll-rows 100000]

Without ``--model`` the bundled demo target is used when present, else an untrained ResNet-18 at
128x64 (the cost of a forward is what matters here, not its accuracy).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

GOAL_MS = 100.0


def make_crops(folder: Path, n: int) -> None:
    """N distinct little pedestrian-shaped JPEGs (coloured blocks), fast to write."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        img = np.empty((128, 64, 3), np.uint8)
        img[:] = rng.integers(0, 255, 3)
        img[10:60, 12:52] = rng.integers(0, 255, 3)
        img[60:120, 16:48] = rng.integers(0, 255, 3)
        img[i % 128, :] = 255 - img[i % 128, :]  # every image different, so none is a duplicate
        Image.fromarray(img).save(folder / f"{i:06d}.jpg", quality=90)


def make_model(folder: Path) -> Path:
    import torch

    from amd.models import build_target, save_target

    torch.manual_seed(0)
    path = folder / "resnet18_128x64.pt"
    save_target(path, build_target("resnet18").eval(), (128, 64), extra={"name": "resnet18 (untrained)"})
    return path


class TickMeter:
    """Records the gaps between the ticks of a 10 ms timer on the UI thread."""

    def __init__(self) -> None:
        from PySide6.QtCore import QTimer

        self.timer = QTimer()
        self.timer.setInterval(10)
        self.timer.timeout.connect(self._on_timeout)
        self.gaps: list[float] = []
        self._last = 0.0

    def start(self) -> None:
        self.gaps.clear()
        self._last = time.perf_counter()
        self.timer.start()

    def stop(self) -> list[float]:
        self.timer.stop()
        return list(self.gaps)

    def _on_timeout(self) -> None:
        now = time.perf_counter()
        self.gaps.append((now - self._last) * 1000.0)
        self._last = now


def summary(gaps: list[float]) -> str:
    import numpy as np

    g = np.asarray(gaps)
    return f"max {g.max():7.1f} ms   p99 {np.percentile(g, 99):6.1f} ms   mean {g.mean():5.1f} ms   ticks {len(g)}"


def spin(app, seconds: float, until=None) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end and not (until is not None and until()):
        app.processEvents()
        time.sleep(0.001)


class FakeCrops:
    """A crop repository of ``n`` crops that all show the same stored image (for the scroll figure)."""

    def __init__(self, n: int, template) -> None:
        self.n, self.template = n, template

    def count(self, **_: object) -> int:
        return self.n

    def page(self, offset: int, limit: int, **_: object) -> list:
        from dataclasses import replace

        time.sleep(0.002)  # a real page query on SQLite costs about this much
        return [
            replace(self.template, id=i + 1, sha256=f"{i:064x}")
            for i in range(offset, min(offset + limit, self.n))
        ]


def scroll_figure(app, rows: int, thumbnail: Path, template) -> list[float]:
    """Scroll a gallery of ``rows`` crops from top to bottom, a screen every 20 ms."""
    from types import SimpleNamespace

    from gui.compat import freeze_heap
    from gui.gallery import GalleryModel, GalleryWidget
    from gui.thumbnails import ThumbnailLoader
    from gui.workers import JobRunner

    runner = JobRunner(max_threads=2)
    loader = ThumbnailLoader(runner, lambda sha, fmt: str(thumbnail))
    model = GalleryModel(runner, loader)
    widget = GalleryWidget(model)
    widget.resize(1200, 900)
    widget.show()
    # As the main window does once its workspace and models are loaded.
    freeze_heap()
    model.set_workspace(SimpleNamespace(crops=FakeCrops(rows, template)))
    spin(app, 10, until=lambda: model.rowCount() == rows)
    bar = widget.view.verticalScrollBar()
    # The view lays out large models in batches while idle: scroll once the range is complete.
    from gui.gallery import CELL

    columns = max(1, widget.view.viewport().width() // CELL.width())
    full = -(-rows // columns) * CELL.height() - widget.view.viewport().height()
    spin(app, 60, until=lambda: bar.maximum() >= 0.99 * full)
    meter = TickMeter()
    meter.start()
    steps = 0
    while bar.value() < bar.maximum():
        bar.setValue(bar.value() + widget.view.viewport().height())
        steps += 1
        spin(app, 0.02)
    spin(app, 0.5)
    gaps = meter.stop()
    print(f"  ({steps} screens of {widget.view.viewport().height()} px, {model.rowCount():,} rows)")
    runner.shutdown()
    widget.close()
    return gaps


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crops", type=int, default=5000)
    parser.add_argument("--model", help="target checkpoint (default: the demo target, else ResNet-18)")
    parser.add_argument("--baseline-s", type=float, default=5.0, help="length of the baseline measurement")
    parser.add_argument("--scroll-rows", type=int, default=100_000)
    args = parser.parse_args()

    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from cli.demo import demo_model_paths
    from cli.workbench import register_models
    from db.workspace import Workspace

    app = QApplication.instance() or QApplication(["bench"])
    tmp = Path(tempfile.mkdtemp(prefix="amd-bench-gui-"))
    model = Path(args.model) if args.model else demo_model_paths()[0]
    if not model.is_file():
        model = make_model(tmp)
    print(f"model: {model}")
    t0 = time.perf_counter()
    make_crops(tmp / "crops", max(args.crops, 1))
    from cli.workbench import ModelPair, Workbench

    bench = Workbench(Workspace.open(tmp / "ws", create=True), ModelPair(None, None))
    imported = bench.ingest([str(tmp / "crops")])
    register_models(bench.ws, model, None)
    bench.close()
    print(f"workspace: {imported.added} crops imported in {time.perf_counter() - t0:.1f} s")

    if args.crops > 0:
        from gui.main_window import MainWindow

        window = MainWindow(QSettings(str(tmp / "settings.ini"), QSettings.Format.IniFormat), tmp)
        window.resize(1600, 1000)
        window.show()
        opened: list[str] = []
        window.workspace_opened.connect(opened.append)
        window.open_workspace(str(tmp / "ws"))
        spin(app, 60, until=lambda: bool(opened))
        # Let the start-up work (model loading, first thumbnails) finish before measuring.
        spin(app, 120, until=lambda: window.device_label.text() != "device: loading...")
        spin(app, 30, until=lambda: not window.thumbnails.busy() and not window.runner._jobs)
        spin(app, 1.0)

        meter = TickMeter()
        meter.start()
        spin(app, args.baseline_s)
        baseline = meter.stop()

        done: list[object] = []
        meter.start()
        started = time.perf_counter()
        job = window.index_now()
        job.signals.finished.connect(lambda: done.append(True))
        spin(app, 3600, until=lambda: bool(done))
        seconds = time.perf_counter() - started
        loaded = meter.stop()
        indexed = window.bench.ws.embeddings.count(window.bench.models.target.id)
        window.close()

        import numpy as np

        print(f"\nbaseline (no job)              {summary(baseline)}")
        print(f"indexing {indexed:,} crops ({seconds:.1f} s)  {summary(loaded)}")
        worst, base = float(np.max(loaded)), float(np.max(baseline))
        verdict = "meets" if worst < GOAL_MS else "misses"
        print(
            f"\nlongest gap while indexing: {worst:.1f} ms ({verdict} the {GOAL_MS:.0f} ms goal); "
            f"ratio to the baseline's longest gap: {worst / base:.2f}x"
        )

    if args.scroll_rows:
        with Workspace.open(tmp / "ws") as ws:
            template = ws.crops.page(0, 1)[0]
            thumbnail = ws.images.thumbnail(template.sha256, template.format)
        gaps = scroll_figure(app, args.scroll_rows, thumbnail, template)
        print(f"\nscrolling {args.scroll_rows:,} crops top to bottom: {summary(gaps)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
