"""``demo``: build the demo workspace (synthetic crops from several cameras, indexed with the demo models).

The desktop application calls :func:`build_demo_workspace` on its first start, on a worker thread; the
command runs the same function headless. Building is resumable: a second call finishes what a
cancelled one left (rendering is seeded, so the same crops come back and the import skips those it has).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from cli.checks import DEVICE_CHOICES, device_arg

NAME = "demo"
HELP = "Build a demo workspace: synthetic crops from several cameras, indexed with the bundled demo models."

DEMO_TARGET = "demo_target.pt"
DEMO_INTERPRETER = "demo_interpreter.pt"
#: Written last: its presence means that every crop of the demo is in the workspace.
MARKER = "demo.json"
#: Written after the crops are indexed with the demo models.
INDEXED_MARKER = ".demo-indexed"
#: Written after the interpreter's attribute predictions of the crops are stored.
PREDICTED_MARKER = ".demo-predicted"
#: Share of the progress bar given to each stage (render, import, index, predict attributes).
_STAGES = (0.30, 0.20, 0.30, 0.20)
_SCALE = 1000


@dataclass(frozen=True)
class DemoSummary:
    """What :func:`build_demo_workspace` did.

    Attributes:
        root: The workspace folder.
        crops: Crops in the workspace.
        indexed: Crops with an embedding under the demo target (0 without models).
        predicted: Crops with stored attribute predictions of the demo interpreter.
        models_registered: Whether the demo models are registered.
        cancelled: The build stopped on request (run it again to finish).
        missing_models: Demo model files that were not found (nothing is indexed then).
    """

    root: str
    crops: int
    indexed: int
    models_registered: bool
    cancelled: bool
    missing_models: tuple[str, ...] = ()
    predicted: int = 0


def demo_model_paths() -> tuple[Path, Path]:
    """Where the bundled demo target and interpreter live."""
    from amd.resources import resources_dir

    folder = resources_dir() / "models"
    return folder / DEMO_TARGET, folder / DEMO_INTERPRETER


def missing_demo_models(target: Path | None = None, interpreter: Path | None = None) -> list[Path]:
    default_target, default_interpreter = demo_model_paths()
    paths = (target or default_target, interpreter or default_interpreter)
    return [p for p in paths if not p.is_file()]


def demo_state(root: str | Path) -> str:
    """``"absent"``, ``"crops"`` (imported, not indexed and predicted) or ``"indexed"``."""
    root = Path(root)
    if not (root / MARKER).is_file():
        return "absent"
    done = (root / INDEXED_MARKER).is_file() and (root / PREDICTED_MARKER).is_file()
    return "indexed" if done else "crops"


def demo_config(identities: int = 40, per_id: int = 8, cameras: int = 6, seed: int = 2026):
    """The synthetic dataset of the demo: ``identities * per_id`` crops at 256x128 from ``cameras`` cameras."""
    from amd.synth import SynthConfig

    return SynthConfig(
        train_ids=0, test_ids=identities, per_id=per_id, cameras=cameras, height=256, width=128,
        seed=seed, masks=False,
    )  # fmt: skip


def build_demo_workspace(
    root: str | Path,
    target_path: str | Path | None = None,
    interpreter_path: str | Path | None = None,
    identities: int = 40,
    per_id: int = 8,
    cameras: int = 6,
    device: str | None = None,
    on_progress: Callable[[int, int, str], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> DemoSummary:
    """Create (or finish) the demo workspace in ``root``.

    Renders ``identities * per_id`` synthetic crops, imports them with their cameras, identities and
    attributes, registers the demo models, indexes the crops with the target and stores the interpreter's
    attribute predictions (for the gallery's filter by predicted attribute). Without the model files
    the crops are still imported and the summary names the missing files; nothing is faked.

    Args:
        root: The workspace folder (new, empty, or a demo workspace to finish).
        target_path: The target model (default: the bundled demo target).
        interpreter_path: Its interpreter (default: the bundled demo interpreter).
        identities: Synthetic persons.
        per_id: Crops per person.
        cameras: Cameras (2..9).
        device: ``cpu`` or ``cuda`` for indexing (default CUDA when available).
        on_progress: ``(done, total, message)`` on a 0..1000 scale over the four stages.
        should_stop: Polled often; true stops at the next safe point.

    Raises:
        amd.errors.AmdError, db.errors.StoreError: A model file or the folder cannot be used.
    """
    from cli.jobs import dataset_items
    from cli.workbench import Workbench, find_models, register_models
    from db.ingest import IngestProgress, ingest
    from db.workspace import Workspace

    def report(stage: int, fraction: float, message: str) -> None:
        if on_progress is not None:
            done = sum(_STAGES[:stage]) + _STAGES[stage] * min(max(fraction, 0.0), 1.0)
            on_progress(int(done * _SCALE), _SCALE, message)

    def stopped() -> bool:
        return should_stop is not None and should_stop()

    default_target, default_interpreter = demo_model_paths()
    target = Path(target_path) if target_path is not None else default_target
    interpreter = Path(interpreter_path) if interpreter_path is not None else default_interpreter
    missing = tuple(str(p) for p in (target, interpreter) if not p.is_file())

    root = Path(root)
    ws = Workspace.open(root, create=True)
    try:
        if not (ws.root / MARKER).is_file():
            with tempfile.TemporaryDirectory(prefix="amd-demo-") as tmp:
                from amd.synth import write_dataset

                cfg = demo_config(identities, per_id, cameras)
                report(0, 0.0, "rendering synthetic pedestrians")
                synth = write_dataset(
                    Path(tmp) / "synth",
                    cfg,
                    on_progress=lambda d, t: report(
                        0, d / max(t, 1), f"rendering synthetic pedestrians {d}/{t}"
                    ),
                    should_stop=should_stop,
                )
                if synth.cancelled:
                    return _summary(ws, None, cancelled=True, missing=missing)
                items = [_rename(item) for item in dataset_items(Path(tmp) / "synth", "market1501")]

                def imported(p: IngestProgress) -> None:
                    report(1, p.done / max(p.total, 1), f"importing crops {p.done}/{p.total}")

                result = ingest(ws, items, on_progress=imported, should_stop=should_stop)
                if result.cancelled:
                    return _summary(ws, None, cancelled=True, missing=missing)
            (ws.root / MARKER).write_text('{"demo": true}\n', encoding="utf-8")
        if missing:
            report(3, 1.0, "demo models missing: the crops are imported but not indexed")
            return _summary(ws, None, cancelled=False, missing=missing)
        report(2, 0.0, "registering the demo models")
        register_models(ws, target, interpreter)
        bench = Workbench(ws, find_models(ws), device)
        summary = bench.index(
            on_progress=lambda d, t, m: report(2, d / t if t else 0.0, f"{m} {d}/{t}" if t else m),
            should_stop=should_stop,
            predict=False,
        )
        cancelled = summary.cancelled or stopped()
        if cancelled:
            return _summary(ws, bench.models.target.id, cancelled=True, missing=())
        (ws.root / INDEXED_MARKER).write_text(bench.models.target.file_hash + "\n", encoding="utf-8")
        predicted = bench.predict_attributes(
            on_progress=lambda d, t, m: report(3, d / t if t else 0.0, f"{m} {d}/{t}" if t else m),
            should_stop=should_stop,
        )
        cancelled = (predicted is not None and predicted.cancelled) or stopped()
        if not cancelled:
            # Also written when the interpreter predicts no attributes: there is nothing left to do then.
            (ws.root / PREDICTED_MARKER).write_text(bench.models.target.file_hash + "\n", encoding="utf-8")
        return _summary(
            ws,
            bench.models.target.id,
            cancelled=cancelled,
            missing=(),
            interpreter_id=bench.models.interpreter.id if bench.models.interpreter else None,
        )
    finally:
        ws.close()


def _rename(item):
    """``market1501/c3`` -> ``Camera 3``; ``market1501/0042`` -> ``Demo 0042`` (readable in the gallery)."""
    camera = f"Camera {item.camera.rsplit('/c', 1)[-1]}" if item.camera else None
    identity = f"Demo {item.identity.rsplit('/', 1)[-1]}" if item.identity else None
    return replace(item, camera=camera, identity=identity)


def _summary(
    ws, model_id: int | None, cancelled: bool, missing: tuple[str, ...], interpreter_id: int | None = None
) -> DemoSummary:
    return DemoSummary(
        root=str(ws.root),
        crops=ws.crops.count(),
        indexed=ws.embeddings.count(model_id) if model_id is not None else 0,
        models_registered=model_id is not None,
        cancelled=cancelled,
        missing_models=missing,
        predicted=ws.embeddings.count(interpreter_id) if interpreter_id is not None else 0,
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("workspace", help="workspace folder (new, empty, or a demo workspace to finish)")
    parser.add_argument("--target", metavar="FILE", help="target model (default: the bundled demo target)")
    parser.add_argument("--interpreter", metavar="FILE", help="interpreter (default: the bundled demo one)")
    parser.add_argument("--identities", type=int, default=40, help="synthetic persons (default 40)")
    parser.add_argument("--per-id", type=int, default=8, help="crops per person (default 8)")
    parser.add_argument("--cameras", type=int, default=6, help="cameras, 2..9 (default 6)")
    parser.add_argument(
        "--device", type=device_arg, help=f"{DEVICE_CHOICES} (default auto: cuda when available)"
    )


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from cli.checks import resolve_device

    device = resolve_device(args.device)
    with tqdm(total=_SCALE, desc="demo", file=sys.stderr, bar_format="{l_bar}{bar}|") as bar:

        def progress(done: int, total: int, message: str) -> None:
            # No refresh of its own: the update below redraws at tqdm's rate, so a log file gets a few
            # lines rather than one per crop.
            bar.set_description_str(message[:60], refresh=False)
            bar.update(done - bar.n)

        # A store error reaches cli.main, which prints it without a traceback.
        summary = build_demo_workspace(
            args.workspace, args.target, args.interpreter, args.identities, args.per_id, args.cameras,
            device, on_progress=progress,
        )  # fmt: skip
    print(
        f"demo workspace {summary.root}: {summary.crops} crops, {summary.indexed} indexed, "
        f"{summary.predicted} with predicted attributes"
    )
    for path in summary.missing_models:
        print(f"  missing model file {path}: the crops are not indexed", file=sys.stderr)
    return 1 if summary.missing_models else 0
