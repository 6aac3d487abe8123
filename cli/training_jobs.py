"""Training runs kept in a workspace: the form, its checks, run bookkeeping, data export, registration.

Qt-free, so that the training panel and the tests share it. A run lives in two places: a row of the
workspace's ``training_runs`` table (kind, status, configuration, metrics, folder) and a folder
``WS/training/<name>/`` holding the model file, the resumable state (``state/last.pt``), the
configuration, the JSON-lines log and, for a run on the workspace's own labelled crops, the exported
CSV layout (``data/``). The row's ``config`` is ``{"job": <resolved config>, "dataset": {...},
"form": {...}}``; its ``metrics`` are ``{"epoch", "iteration", "max_epochs", "history", "final",
"paused", "error"}`` as far as known.

Pause and cancel go through :class:`RunControl`, whose ``should_stop`` the trainer polls after every
step: a paused run waits there (weights, optimiser and data position stay in memory), a cancelled one
stops and can be resumed from its last finished epoch. Heavy modules (torch through the engine) are
imported inside the functions that need them.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from amd.train.config import BOUNDS, SIZE_BOUNDS, Bounds

if TYPE_CHECKING:
    import numpy as np

    from db.records import ModelInfo, RunInfo
    from db.workspace import Workspace

KINDS = ("target", "interpreter")
#: Dataset sources of the form: a folder in one of the engine's layouts, or the workspace's labelled crops.
FORMATS = ("market1501", "duke", "csv", "workspace")
FORMAT_LABELS = {
    "market1501": "Market-1501 folder",
    "duke": "DukeMTMC-reID folder",
    "csv": "CSV layout folder",
    "workspace": "identities labelled in this workspace",
}
DEVICES = ("auto", "cpu", "cuda")
RUNS_FOLDER = "training"
#: Statuses (as listed) of a run that can be continued from its checkpoint.
RESUMABLE = ("running", "paused", "interrupted", "cancelled")
#: Share of the labelled identities held out for evaluation when the workspace's crops are exported.
HOLDOUT = 0.25
#: Readable names of the evaluation figures.
METRIC_LABELS = {
    "mAP": "mAP",
    "rank1": "Rank-1",
    "rank5": "Rank-5",
    "rank10": "Rank-10",
    "mINP": "mINP",
    "x_map_e": "X-mAP_e",
    "x_map_c": "X-mAP_c",
    "adre": "ADRE (%)",
    "target_mAP": "target mAP",
    "target_rank1": "target Rank-1",
    "target_rank5": "target Rank-5",
    "target_rank10": "target Rank-10",
    "target_mINP": "target mINP",
    "interpreter_mAP": "interpreter mAP",
    "interpreter_rank1": "interpreter Rank-1",
    "interpreter_rank5": "interpreter Rank-5",
}


class TrainingFormError(ValueError):
    """The form has invalid fields; ``errors`` maps each field to its reason."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors = dict(errors)
        super().__init__("; ".join(f"{k}: {v}" for k, v in self.errors.items()))


# ---------------------------------------------------------------------- the form


@dataclass(frozen=True)
class TrainingForm:
    """What the user typed, as text: checked by :func:`validate_form`, turned into a config by
    :func:`form_to_config`.

    ``size`` is ``HEIGHTxWIDTH`` (blank for an interpreter: the target's size). ``target`` is the target
    model file an interpreter is distilled from. ``triplet_weight`` and ``label_smoothing`` weigh a
    target's losses (the identity loss has weight 1); ``md_weight``, ``prior_weight`` and ``aux_weight``
    weigh an interpreter's.
    """

    kind: str = "target"
    data: str = ""
    format: str = "market1501"
    arch: str = "resnet18"
    size: str = "256x128"
    target: str = ""
    map_mode: str = "faithful"
    epochs: str = "30"
    p: str = "8"
    k: str = "4"
    lr: str = "0.00035"
    triplet_weight: str = "1.0"
    label_smoothing: str = "0.1"
    md_weight: str = "1.0"
    prior_weight: str = "10.0"
    aux_weight: str = "1.0"
    eval_every: str = "5"
    log_every: str = "10"
    workers: str = "0"
    device: str = "auto"


def form_defaults(kind: str) -> TrainingForm:
    """The form's defaults for a kind: those of the job's config (:mod:`amd.train.config`)."""
    if kind == "interpreter":
        return TrainingForm(kind="interpreter", size="", epochs="60", p="6", k="4", lr="0.0001")
    return TrainingForm()


def backbones() -> tuple[str, ...]:
    from amd.models import BACKBONES

    return tuple(BACKBONES)


def map_modes() -> tuple[str, ...]:
    from amd.models import MAP_MODES

    return tuple(MAP_MODES)


def parse_size(text: str) -> tuple[int, int]:
    """``"256x128"`` -> (256, 128), each side within :data:`amd.train.config.SIZE_BOUNDS` as on the command
    line; raises ValueError with the reason."""
    parts = text.lower().replace(" ", "").split("x")
    try:
        h, w = (int(v) for v in parts)
    except ValueError:
        raise ValueError("write it as HEIGHTxWIDTH, e.g. 256x128") from None
    if not (SIZE_BOUNDS.contains(h) and SIZE_BOUNDS.contains(w)):
        raise ValueError(
            f"height and width must be between {SIZE_BOUNDS.minimum:g} and {SIZE_BOUNDS.maximum:g}"
        )
    return h, w


def _ends(bounds: Bounds) -> tuple[float | None, bool, float | None, bool]:
    """The lower and upper end of ``bounds``, each with whether it is excluded."""
    lo, lo_open = (bounds.above, True) if bounds.above is not None else (bounds.minimum, False)
    hi, hi_open = (bounds.below, True) if bounds.below is not None else (bounds.maximum, False)
    return lo, lo_open, hi, hi_open


def _range_text(bounds: Bounds, whole: bool) -> str:
    """``bounds`` in the form's words: "between 2 and 256" for whole numbers, "in (0, 1]" for others."""
    lo, lo_open, hi, hi_open = _ends(bounds)
    if lo is not None and hi is not None:
        if whole and not (lo_open or hi_open):
            return f"between {lo:g} and {hi:g}"
        return f"in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
    if lo is not None:
        return f"{'above' if lo_open else 'at least'} {lo:g}"
    if hi is not None:
        return f"{'below' if hi_open else 'at most'} {hi:g}"
    return "a number"


def _int(text: str, name: str) -> int:
    """The form's field ``name`` as a whole number within the command line's range (:data:`BOUNDS`)."""
    try:
        value = int(str(text).strip())
    except ValueError:
        raise ValueError("must be a whole number") from None
    try:
        inside = BOUNDS[name].contains(value)
    except OverflowError:  # more digits than a float holds
        raise ValueError("is far too large") from None
    if not inside:
        raise ValueError(f"must be {_range_text(BOUNDS[name], whole=True)}")
    return value


def _float(text: str, name: str) -> float:
    """The form's field ``name`` as a number within the command line's range (:data:`BOUNDS`)."""
    try:
        value = float(str(text).strip())
    except ValueError:
        raise ValueError("must be a number") from None
    if not BOUNDS[name].contains(value):
        raise ValueError(f"must be {_range_text(BOUNDS[name], whole=False)}")
    return value


def check_data_folder(path: str, fmt: str) -> str:
    """Why ``path`` cannot be a dataset in layout ``fmt`` ("" when it looks usable; cheap file checks only)."""
    if not path.strip():
        return "choose the dataset folder"
    root = Path(path).expanduser()
    if not root.is_dir():
        return "folder not found"
    if fmt in ("market1501", "duke") and not (root / "bounding_box_train").is_dir():
        return "no bounding_box_train folder: not a Market-1501 / Duke layout"
    if fmt == "csv" and not (root / "index.csv").is_file():
        return "no index.csv: not a CSV layout"
    return ""


def validate_form(
    form: TrainingForm, labelled_identities: int | None = None, cuda_available: bool = False
) -> dict[str, str]:
    """Every invalid field of the form with its reason (empty when the form can start a run).

    Args:
        form: The form.
        labelled_identities: Identities with crops in the open workspace (``None``: no workspace), for
            the "identities labelled in this workspace" source.
        cuda_available: Whether a CUDA device can be used.
    """
    errors: dict[str, str] = {}

    def check(name: str, fn: Callable[[], object]) -> None:
        try:
            fn()
        except ValueError as exc:
            errors[name] = str(exc)

    if form.kind not in KINDS:
        errors["kind"] = f"must be one of {', '.join(KINDS)}"
    if form.format not in FORMATS:
        errors["format"] = f"must be one of {', '.join(FORMATS)}"
    elif form.format == "workspace":
        if labelled_identities is None:
            errors["data"] = "open a workspace first"
        elif labelled_identities < 2:
            errors["data"] = f"{labelled_identities} labelled identities in the workspace; 2 or more needed"
    else:
        reason = check_data_folder(form.data, form.format)
        if reason:
            errors["data"] = reason
    if form.kind == "target" and form.arch not in backbones():
        errors["arch"] = f"must be one of {', '.join(backbones())}"
    if form.kind == "target" or form.size.strip():
        check("size", lambda: parse_size(form.size))
    if form.kind == "interpreter":
        if not form.target.strip():
            errors["target"] = "choose the target model to explain"
        elif not Path(form.target).expanduser().is_file():
            errors["target"] = "file not found"
        if form.map_mode not in map_modes():
            errors["map_mode"] = f"must be one of {', '.join(map_modes())}"
    # The command line's ranges (amd.train.config.BOUNDS): a run set up in either is accepted by the other.
    weights = ("triplet_weight", "label_smoothing") if form.kind == "target" else (
        "md_weight", "prior_weight", "aux_weight"
    )  # fmt: skip
    for name in ("epochs", "p", "k", "eval_every", "log_every", "workers"):
        check(name, lambda name=name: _int(getattr(form, name), name))
    for name in ("lr", *weights):
        check(name, lambda name=name: _float(getattr(form, name), name))
    if form.device not in DEVICES:
        errors["device"] = f"must be one of {', '.join(DEVICES)}"
    elif form.device == "cuda" and not cuda_available:
        errors["device"] = "no CUDA GPU is available"
    return errors


def form_to_config(form: TrainingForm, data: str, fmt: str, out: str, run_dir: str) -> Any:
    """The job's config (:class:`TargetTrainConfig` or :class:`DistillConfig`) for a valid form."""
    from amd.train.config import DistillConfig, TargetTrainConfig

    shared = dict(
        data=data,
        format=fmt,
        epochs=int(form.epochs),
        p=int(form.p),
        k=int(form.k),
        lr=float(form.lr),
        eval_every=int(form.eval_every),
        log_every=int(form.log_every),
        workers=int(form.workers),
        device=form.device,
        out=out,
        run_dir=run_dir,
        resume=True,
    )
    if form.kind == "target":
        return TargetTrainConfig(
            arch=form.arch,
            size=parse_size(form.size),
            triplet_weight=float(form.triplet_weight),
            label_smoothing=float(form.label_smoothing),
            **shared,
        )
    return DistillConfig(
        target=str(Path(form.target).expanduser().resolve()),
        size=parse_size(form.size) if form.size.strip() else None,
        map_mode=form.map_mode,
        md_weight=float(form.md_weight),
        prior_weight=float(form.prior_weight),
        aux_weight=float(form.aux_weight),
        **shared,
    )


# ---------------------------------------------------------------------- exporting the workspace's labels


@dataclass(frozen=True)
class ExportSummary:
    """The CSV layout written from a workspace's labelled crops.

    Attributes:
        folder: The layout's folder (``index.csv``, ``export.json``).
        schema: The attribute schema's name, or ``None`` when no attributes were written.
        train, query, gallery: Crops in each split.
        identities: Identities written; ``held_out`` of them are for evaluation only.
        skipped: Labelled crops left out because they have no attributes (interpreters need them).
    """

    folder: str
    schema: str | None
    train: int
    query: int
    gallery: int
    identities: int
    held_out: int
    skipped: int


def _labelled_crops(ws: Workspace, page: int = 2000) -> list[Any]:
    crops, offset = [], 0
    while True:
        rows = ws.crops.page(offset=offset, limit=page)
        crops.extend(c for c in rows if c.identity_id is not None)
        if len(rows) < page:
            return crops
        offset += page


def export_workspace_dataset(
    ws: Workspace,
    folder: str | Path,
    need_attributes: bool,
    holdout: float = HOLDOUT,
    seed: int = 0,
) -> ExportSummary:
    """Write the workspace's labelled crops as a CSV layout that :func:`amd.data.load.load_dataset` reads.

    Image paths point into the workspace's image store (nothing is copied). Identities are split, not
    crops: a ``holdout`` share of the identities seen by two or more cameras (chosen from ``seed``) is
    kept for evaluation, one query crop each and the rest in the gallery; the others are for training.
    With fewer than 4 identities nothing is held out (the run is then not evaluated). Attributes come
    from the crop, else from its identity; the most common schema among them is used.

    Args:
        ws: The workspace.
        folder: Where to write (created).
        need_attributes: Interpreters: crops without attributes are left out and counted.
        holdout: Share of identities for evaluation.
        seed: Chooses the held-out identities.

    Raises:
        amd.errors.AmdError: Fewer than 2 usable identities.
    """
    from amd.errors import AmdError

    folder = Path(folder)
    identities = {i.id: i for i in ws.identities.list()}
    crops = _labelled_crops(ws)

    def attributes_of(crop: Any) -> Mapping[str, Any] | None:
        attrs = crop.attributes or (
            identities[crop.identity_id].attributes if crop.identity_id in identities else None
        )
        return attrs if attrs and isinstance(attrs.get("values"), Mapping) and attrs["values"] else None

    labelled = [attributes_of(c) for c in crops]
    schema_names = Counter(str(a.get("schema") or "") for a in labelled if a is not None)
    schema_name: str | None = None
    names: list[str] = []
    if schema_names:
        schema_name = schema_names.most_common(1)[0][0] or "workspace"
        try:
            from amd.schema import load_schema

            names = list(load_schema(schema_name).names)
        except Exception:  # not a built-in or file schema: the names found in the labels define it
            for a in labelled:
                if a is not None and str(a.get("schema") or "workspace") == schema_name:
                    names.extend(n for n in a["values"] if n not in names)
    rows: list[tuple[Any, dict[str, Any] | None]] = []
    skipped = 0
    for crop, attrs in zip(crops, labelled, strict=True):
        values = None
        if attrs is not None and names and all(n in attrs["values"] for n in names):
            values = {n: attrs["values"][n] for n in names}
        if need_attributes and values is None:
            skipped += 1
            continue
        rows.append((crop, values))
    write_attributes = bool(names) and all(v is not None for _, v in rows)
    if need_attributes and not write_attributes:
        raise AmdError("no labelled crop of the workspace has attribute labels; an interpreter needs them")
    by_identity: dict[int, list[Any]] = {}
    for crop, _ in rows:
        by_identity.setdefault(crop.identity_id, []).append(crop)
    if len(by_identity) < 2:
        what = "with attribute labels " if need_attributes else ""
        raise AmdError(
            f"the workspace has {len(by_identity)} labelled identities {what}; training needs 2 or more"
        )
    eligible = sorted(i for i, cs in by_identity.items() if len({c.camera_id for c in cs}) >= 2)
    n_test = 0
    if len(by_identity) >= 4:
        n_test = min(len(eligible), max(1, round(holdout * len(by_identity))), len(by_identity) - 2)
    held_out = set(random.Random(seed).sample(eligible, n_test)) if n_test else set()
    query_ids = {min(c.id for c in by_identity[i]) for i in held_out}

    folder.mkdir(parents=True, exist_ok=True)
    counts = Counter()
    header = ["path", "identity", "camera", "split", *(names if write_attributes else [])]
    tmp = folder / "index.csv.tmp"
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for crop, values in rows:
            split = "train"
            if crop.identity_id in held_out:
                split = "query" if crop.id in query_ids else "gallery"
            counts[split] += 1
            path = ws.images.original_path(crop.sha256, crop.format).resolve()
            line = [str(path), crop.identity_id, crop.camera_id or 0, split]
            if write_attributes:
                line += [1 if int(values[n]) > 0 else -1 for n in names]
            writer.writerow(line)
    os.replace(tmp, folder / "index.csv")
    summary = ExportSummary(
        folder=str(folder),
        schema=schema_name if write_attributes else None,
        train=counts["train"],
        query=counts["query"],
        gallery=counts["gallery"],
        identities=len(by_identity),
        held_out=len(held_out),
        skipped=skipped,
    )
    (folder / "export.json").write_text(json.dumps(dataclasses.asdict(summary), indent=2) + "\n", "utf-8")
    return summary


def load_exported_dataset(folder: str | Path) -> Any:
    """The :class:`~amd.data.records.Dataset` of a layout written by :func:`export_workspace_dataset`."""
    from amd.data.csv_layout import load_csv_dataset
    from amd.schema import schema_from_names

    folder = Path(folder)
    meta = json.loads((folder / "export.json").read_text("utf-8"))
    schema = meta.get("schema")
    if schema is not None:
        try:
            from amd.schema import load_schema

            schema = load_schema(schema)
        except Exception:  # a schema known only from the labels: its names are the index's columns
            with (folder / "index.csv").open(newline="", encoding="utf-8") as fh:
                header = next(csv.reader(fh))
            schema = schema_from_names(header[4:], name=schema)
    return load_csv_dataset(folder, schema=schema)


# ---------------------------------------------------------------------- runs


class RunControl:
    """Pause, continue and cancel a running job from another thread.

    ``should_stop`` is what the trainer polls after every step: while paused it blocks there (the run
    keeps all its state), and it returns True once the run is cancelled (cancelling also ends a pause).
    ``on_pause(paused)`` is called from the training thread when a pause starts and ends.
    """

    def __init__(self) -> None:
        self._cancel = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self.on_pause: Callable[[bool], None] | None = None
        self.paused_s = 0.0

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def cancel(self) -> None:
        self._cancel.set()
        self._running.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def should_stop(self) -> bool:
        if not self._running.is_set() and not self._cancel.is_set():
            start = time.monotonic()
            if self.on_pause is not None:
                self.on_pause(True)
            while not self._running.wait(0.1):
                pass
            self.paused_s += time.monotonic() - start
            if self.on_pause is not None:
                self.on_pause(False)
        return self._cancel.is_set()


@dataclass(frozen=True)
class RunRow:
    """A run as the panel lists it.

    ``status`` is the stored one, except ``paused`` (a live run waiting) and ``interrupted`` (stored as
    running, but no program of this session runs it: the program was closed or killed).
    """

    id: int
    kind: str
    status: str
    name: str
    created: str
    epochs: str
    metrics: str
    folder: str
    resumable: bool
    registered: bool
    model_file: str | None


def _run_classes(kind: str) -> type:
    from amd.train.config import DistillConfig, TargetTrainConfig

    return TargetTrainConfig if kind == "target" else DistillConfig


def run_config(run: RunInfo) -> Any:
    """The job config stored with a run."""
    from amd.train.config import config_from_dict

    return config_from_dict(_run_classes(run.kind), dict(run.config["job"]))


def checkpoint_path(run: RunInfo) -> Path | None:
    """The run's resumable state file, or ``None`` when the run's config is unreadable."""
    job = (run.config or {}).get("job") or {}
    if not job.get("run_dir"):
        return None
    return Path(job["run_dir"]) / "last.pt"


def _display_status(run: RunInfo, live: Sequence[int]) -> str:
    if run.status == "running" and run.id not in live:
        return "interrupted"
    if run.status == "running" and (run.metrics or {}).get("paused"):
        return "paused"
    return run.status


def _short_metrics(metrics: Mapping[str, Any]) -> str:
    wanted = ("mAP", "rank1", "x_map_e", "x_map_c", "adre")
    shown = [
        f"{METRIC_LABELS[k]} {metrics[k]:.3g}" for k in wanted if isinstance(metrics.get(k), int | float)
    ]
    return ", ".join(shown)


def list_runs(ws: Workspace, live: Sequence[int] = ()) -> list[RunRow]:
    """The workspace's runs, newest first. ``live`` are the ids this program is running now."""
    out = []
    for run in reversed(ws.runs.list()):
        metrics = run.metrics or {}
        status = _display_status(run, live)
        ckpt = checkpoint_path(run)
        job = (run.config or {}).get("job") or {}
        max_epochs = metrics.get("max_epochs") or job.get("epochs") or "?"
        history = metrics.get("history") or []
        last = metrics.get("final") or (history[-1] if history else {})
        out.append(
            RunRow(
                id=run.id,
                kind=run.kind,
                status=status,
                name=Path(run.output_dir).name if run.output_dir else f"run {run.id}",
                created=run.created_at.strftime("%Y-%m-%d %H:%M"),
                epochs=f"{metrics.get('epoch', 0)}/{max_epochs}",
                metrics=_short_metrics(last),
                folder=run.output_dir or "",
                resumable=status in RESUMABLE and run.id not in live and ckpt is not None and ckpt.is_file(),
                registered=run.model_id is not None,
                model_file=job.get("out") if job.get("out") and Path(job["out"]).is_file() else None,
            )
        )
    return out


def create_run(
    ws: Workspace, form: TrainingForm, labelled_identities: int | None = None, cuda_available: bool = False
) -> RunInfo:
    """Check the form, make the run's folder and record the run (status ``queued``).

    Raises:
        TrainingFormError: The form is invalid.
    """
    errors = validate_form(form, labelled_identities, cuda_available)
    if errors:
        raise TrainingFormError(errors)
    base = ws.root / RUNS_FOLDER
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    n = 0
    while True:
        name = f"{stamp}-{form.kind}" + (f"-{n}" if n else "")
        folder = base / name
        try:
            folder.mkdir(parents=True)
            break
        except FileExistsError:
            n += 1
    if form.format == "workspace":
        data, fmt = str(folder / "data"), "csv"
    else:
        data, fmt = str(Path(form.data).expanduser().resolve()), form.format
    out = folder / ("target.pt" if form.kind == "target" else "interpreter.pt")
    cfg = form_to_config(form, data, fmt, str(out), str(folder / "state"))
    from amd.train.config import config_to_dict

    target_model_id = None
    if form.kind == "interpreter":
        wanted = str(Path(cfg.target))
        target_model_id = next(
            (
                m.id
                for m in ws.models.list("target")
                if m.file_path and str(Path(m.file_path).resolve()) == wanted
            ),
            None,
        )
    config = {
        "job": config_to_dict(cfg),
        "dataset": {"source": "workspace" if form.format == "workspace" else "folder", "format": fmt},
        "form": dataclasses.asdict(form),
    }
    return ws.runs.create(form.kind, config=config, target_model_id=target_model_id, output_dir=str(folder))


@dataclass(frozen=True)
class RunOutcome:
    """How :func:`execute_run` ended: the run's record afterwards and the trainer's result."""

    run: RunInfo
    stopped: bool
    epochs_done: int
    metrics: dict[str, float]
    out: str | None


def execute_run(
    ws: Workspace,
    run_id: int,
    control: RunControl | None = None,
    on_event: Callable[[Mapping[str, Any]], None] | None = None,
    on_log: Callable[[str], None] | None = None,
) -> RunOutcome:
    """Start or resume a recorded run and keep its record up to date; returns when it ends or stops.

    Events (``start``, ``step``, ``eval``; see :mod:`amd.train.hooks`) go to ``on_event`` from the calling
    thread. The record's metrics are updated at every evaluation and pause; its status becomes
    ``running``, then ``finished``, ``cancelled`` or ``failed`` (with the reason in ``metrics["error"]``).

    Raises:
        amd.errors.AmdError: The data, the target model or the configuration cannot be used (the run is
            then marked failed).
    """
    control = control or RunControl()
    run = ws.runs.get(run_id)
    if run.config is None or "job" not in run.config:
        from amd.errors import AmdError

        raise AmdError(f"training run {run_id} has no stored configuration")
    cfg = run_config(run)
    log = on_log or (lambda text: None)
    metrics: dict[str, Any] = dict(run.metrics or {})
    metrics.pop("error", None)
    metrics["paused"] = False
    lock = threading.Lock()

    def save(status: str | None = None) -> RunInfo:
        with lock:
            return ws.runs.update(run_id, status=status, metrics=json.loads(json.dumps(metrics)))

    def paused(flag: bool) -> None:
        metrics["paused"] = flag
        save()
        log("paused" if flag else "continuing")

    control.on_pause = paused
    try:
        dataset = None
        if run.config["dataset"].get("source") == "workspace":
            folder = Path(cfg.data)
            if not (folder / "export.json").is_file():
                log("exporting the workspace's labelled crops")
                summary = export_workspace_dataset(
                    ws, folder, need_attributes=run.kind == "interpreter", seed=cfg.seed
                )
                log(
                    f"{summary.identities} identities ({summary.held_out} held out for evaluation): "
                    f"{summary.train} training, {summary.query} query, {summary.gallery} gallery crops"
                    + (f"; {summary.skipped} crops without attributes left out" if summary.skipped else "")
                )
            dataset = load_exported_dataset(folder)
        save("running")
        if control.cancelled:
            metrics["paused"] = False
            return RunOutcome(save("cancelled"), True, int(metrics.get("epoch", 0)), {}, None)

        def event(e: Mapping[str, Any]) -> None:
            kind = e.get("type")
            if kind == "start":
                metrics.update(max_epochs=e["max_epochs"], epoch=e["epoch"], iteration=e["iteration"])
                save()
            elif kind == "step":
                metrics.update(epoch=e["epoch"], iteration=e["iteration"] + 1)
            elif kind == "eval":
                metrics.update(epoch=e["epoch"], iteration=e["iteration"])
                metrics["history"] = [*metrics.get("history", []), {"epoch": e["epoch"], **e["metrics"]}]
                save()
            if on_event is not None:
                on_event(e)

        if run.kind == "target":
            from amd.train.target import train_target

            result = train_target(cfg, on_event=event, should_stop=control.should_stop, dataset=dataset)
        else:
            from amd.train.distill import distill

            result = distill(cfg, on_event=event, should_stop=control.should_stop, dataset=dataset)
    except BaseException as exc:
        metrics["paused"] = False
        metrics["error"] = str(exc) or type(exc).__name__
        save("failed")
        raise
    metrics.update(epoch=result.epochs_done, history=result.history, paused=False)
    if not result.stopped:
        metrics["final"] = result.metrics
    record = save("cancelled" if result.stopped else "finished")
    return RunOutcome(record, result.stopped, result.epochs_done, dict(result.metrics), result.out)


def read_log(run: RunInfo) -> list[dict[str, Any]]:
    """The run's logged events, as a resumed run sees them: a step or evaluation logged again after a
    resumption replaces the earlier one of the same iteration."""
    job = (run.config or {}).get("job") or {}
    path = Path(job.get("run_dir") or "") / "log.jsonl"
    if not job.get("run_dir") or not path.is_file():
        return []
    keyed: dict[tuple[str, int], dict[str, Any]] = {}
    for line in path.read_text("utf-8").splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:  # a line cut short by a crash
            continue
        if event.get("type") in ("step", "eval"):
            keyed[(event["type"], int(event["iteration"]))] = event
    return [keyed[k] for k in sorted(keyed, key=lambda k: (k[1], k[0] == "eval"))]


# ---------------------------------------------------------------------- progress, results, registration


@dataclass
class RunProgress:
    """Epoch, iteration, throughput and ETA of a live run, from its events (no clock of its own).

    ``update(event, now)`` takes ``start`` and ``step`` events; ``now`` is a monotonic time in seconds.
    The ETA extrapolates the steps done since the start of this session, paused time excluded.
    """

    max_epochs: int = 0
    iters_per_epoch: int = 0
    epoch: int = 0
    iteration: int = 0
    images_per_s: float = 0.0
    start_iteration: int = 0
    start_time: float | None = None
    paused_s: float = 0.0
    last_time: float | None = None

    @property
    def total(self) -> int:
        return self.max_epochs * self.iters_per_epoch

    def update(self, event: Mapping[str, Any], now: float) -> None:
        if event.get("type") == "start":
            self.max_epochs = int(event["max_epochs"])
            self.iters_per_epoch = int(event["iters_per_epoch"])
            self.epoch = int(event["epoch"])
            self.iteration = self.start_iteration = int(event["iteration"])
            self.start_time = now
        elif event.get("type") == "step":
            self.epoch = int(event["epoch"])
            self.iteration = int(event["iteration"]) + 1
            rate = float(event.get("images_per_s", 0.0))
            self.images_per_s = rate if self.images_per_s == 0 else 0.7 * self.images_per_s + 0.3 * rate
            self.last_time = now
            if self.start_time is None:
                self.start_time, self.start_iteration = now, self.iteration - 1

    def eta_s(self) -> float | None:
        done = self.iteration - self.start_iteration
        if self.start_time is None or self.last_time is None or done <= 0 or not self.total:
            return None
        elapsed = max(self.last_time - self.start_time - self.paused_s, 1e-6)
        return max(self.total - self.iteration, 0) * elapsed / done

    def text(self) -> str:
        epoch = min(self.epoch + 1, self.max_epochs) if self.max_epochs else self.epoch + 1
        parts = [f"epoch {epoch}/{self.max_epochs or '?'}", f"iteration {self.iteration}/{self.total or '?'}"]
        parts.append(f"{self.images_per_s:.0f} images/s")
        eta = self.eta_s()
        parts.append(f"ETA {format_duration(eta)}" if eta is not None else "ETA -")
        return " · ".join(parts)


def format_duration(seconds: float) -> str:
    """``3725`` -> ``1 h 02 min``; ``75`` -> ``1 min 15 s``; ``9`` -> ``9 s``."""
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    if s >= 60:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s} s"


def evaluation_rows(history: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """The evaluation table: a header (metric, then one column per evaluated epoch) and its rows."""
    if not history:
        return ["metric"], []
    keys: list[str] = []
    for h in history:
        keys.extend(k for k in h if k != "epoch" and k not in keys)
    order = [k for k in METRIC_LABELS if k in keys] + [k for k in keys if k not in METRIC_LABELS]
    header = ["metric", *(f"epoch {h.get('epoch', '?')}" for h in history)]
    rows = []
    for key in order:
        cells = [f"{h[key]:.4g}" if isinstance(h.get(key), int | float) else "-" for h in history]
        rows.append([METRIC_LABELS.get(key, key), *cells])
    return header, rows


@dataclass(frozen=True)
class SamplePair:
    """The explanation of one validation pair, for the panel.

    ``top`` holds the three attributes with the largest shares as (label, share); ``overlay_a`` and
    ``overlay_b`` are the crops (H, W, 3) uint8 with the top attribute's map blended in.
    """

    path_a: str
    path_b: str
    same: bool
    distance: float
    top: tuple[tuple[str, float], ...]
    overlay_a: np.ndarray = field(repr=False, compare=False)
    overlay_b: np.ndarray = field(repr=False, compare=False)

    def text(self) -> str:
        pair = "same person" if self.same else "different persons"
        tops = ", ".join(f"{label} {share:.0%}" for label, share in self.top)
        return f"{pair}, distance {self.distance:.3f}: {tops}"


def _run_dataset(run: RunInfo) -> Any:
    cfg = run_config(run)
    if run.config["dataset"].get("source") == "workspace":
        return load_exported_dataset(cfg.data)
    from amd.data.load import load_dataset

    return load_dataset(cfg.data, cfg.format, require_attributes=run.kind == "interpreter")


def validation_pairs(dataset: Any, count: int) -> list[tuple[Any, Any, bool]]:
    """Up to ``count`` pairs (record a, record b, same identity) from the held-out split (or the training
    split when there is none), alternating same-person pairs across cameras and different-person pairs."""
    queries = list(dataset.query) or list(dataset.train)
    gallery = list(dataset.gallery) or list(dataset.train)
    pairs: list[tuple[Any, Any, bool]] = []
    for q in queries:
        if len(pairs) >= count:
            break
        same = next((g for g in gallery if g.pid == q.pid and g.camid != q.camid and g.path != q.path), None)
        other = next((g for g in gallery if g.pid != q.pid and g.pid > 0), None)
        for g, flag in ((same, True), (other, False)):
            if g is not None and len(pairs) < count:
                pairs.append((q, g, flag))
    return pairs


def sample_explanations(run: RunInfo, count: int = 4, device: str = "cpu") -> list[SamplePair]:
    """Explain a few validation pairs with a finished interpreter run's model (top-3 attributes, overlays)."""
    import numpy as np

    from amd.data.images import read_rgb
    from amd.errors import AmdError
    from amd.explain import Explainer, maps_at
    from amd.visual import blend, normalise_pair

    if run.kind != "interpreter":
        raise AmdError("sample explanations need an interpreter run")
    cfg = run_config(run)
    if not Path(cfg.out).is_file():
        raise AmdError(f"the run has not written its interpreter yet ({cfg.out})")
    explainer = Explainer.from_files(cfg.target, cfg.out, device=device)
    out = []
    for a, b, same in validation_pairs(_run_dataset(run), count):
        e = explainer.explain(a.path, b.path)
        order = e.order()
        top = tuple((e.labels[i], float(e.shares[i])) for i in order[:3])
        img_a, img_b = np.asarray(read_rgb(a.path)), np.asarray(read_rgb(b.path))
        map_a, map_b = normalise_pair(maps_at(e.maps_a[[order[0]]], *img_a.shape[:2])[0],
                                      maps_at(e.maps_b[[order[0]]], *img_b.shape[:2])[0])  # fmt: skip
        out.append(
            SamplePair(
                a.path,
                b.path,
                same,
                float(e.distance),
                top,
                blend(img_a, map_a, 0.6),
                blend(img_b, map_b, 0.6),
            )
        )
    return out


def register_run(ws: Workspace, run_id: int) -> ModelInfo:
    """Register a finished run's model in the workspace (and, for an interpreter, its target), so that
    indexing, search and comparison can use it. Registering twice returns the same record.

    Raises:
        amd.errors.AmdError: The run has not written its model, or the file is not usable.
    """
    from amd.errors import AmdError
    from amd.models import read_info
    from cli.workbench import register_checkpoint, register_models

    run = ws.runs.get(run_id)
    cfg = run_config(run)
    if run.status != "finished" or not Path(cfg.out).is_file():
        raise AmdError(f"training run {run_id} has not finished, so it has no model to register")
    target_path = cfg.out if run.kind == "target" else cfg.target
    info = read_info(cfg.out)
    label = Path(run.output_dir).name if run.output_dir else f"run {run_id}"
    arch = cfg.arch if run.kind == "target" else info.architecture.get("map_mode")
    if run.kind != "target":
        pair = register_models(ws, target_path, None)
        if info.target_sha256 != pair.target.file_hash:
            raise AmdError(f"{cfg.out} was distilled from another target model than {target_path}")
    model = register_checkpoint(ws, cfg.out, info, name=f"{label} ({arch})")
    ws.runs.update(run_id, model_id=model.id)
    return model
