"""What the target trainer and the distillation trainer share: config plumbing, loaders, the run driver."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import DataLoader

from amd.data.records import Record, relabel
from amd.data.sampler import PKSampler
from amd.data.torch_dataset import ReidImageDataset
from amd.data.transforms import build_transforms
from amd.errors import AmdError
from amd.train.config import config_to_dict
from amd.train.hooks import (
    ConsoleWriter,
    EvalHook,
    JsonLinesWriter,
    MaxStepsHook,
    MetricWriter,
    ResumeCheckpointHook,
    StopHook,
    WriterHook,
)
from amd.train.loop import HookBase, Trainer

#: Keys of a config that may change between an interrupted run and its resumption.
RESUMABLE_CHANGES = frozenset(
    {"epochs", "device", "workers", "out", "run_dir", "resume", "max_steps", "log_every"}
)


def train_loader(
    records: Sequence[Record], size: tuple[int, int], p: int, k: int, seed: int, workers: int
) -> tuple[DataLoader, dict[int, int]]:
    """A P x K loader over the training records, with identity labels 0..K-1."""
    label_map = relabel(records)
    ds = ReidImageDataset(records, build_transforms(size, train=True), label_map)
    try:
        sampler = PKSampler(ds.pids, p=p, k=k, seed=seed)
    except ValueError as exc:
        raise AmdError(f"cannot build P x K batches: {exc}") from None
    # DataLoader workers started from a process that may run Qt threads must not fork.
    kwargs = {"multiprocessing_context": "spawn", "persistent_workers": True} if workers > 0 else {}
    return DataLoader(ds, batch_sampler=sampler, num_workers=workers, **kwargs), label_map


class _CallbackWriter:
    """Forwards events to a callable (the GUI's live chart, a test)."""

    def __init__(self, fn: Callable[[Mapping[str, Any]], None]) -> None:
        self.fn = fn

    def write(self, event: Mapping[str, Any]) -> None:
        self.fn(event)

    def close(self) -> None:
        pass


@dataclass(frozen=True)
class TrainResult:
    """How a training job ended.

    Attributes:
        out: The model file written, or ``None`` when the run stopped before its end.
        epochs_done: Completed epochs.
        stopped: True when cancelled (resume continues from ``run_dir/last.pt``).
        metrics: The last evaluation's figures.
        history: Every evaluation, in order.
        run_dir: Folder of the resumable state, the config and the JSON-lines log.
    """

    out: str | None
    epochs_done: int
    stopped: bool
    metrics: dict[str, float]
    history: list[dict[str, Any]]
    run_dir: str


def _defaults(cfg: Any) -> dict[str, Any]:
    """The default of each field of the config dataclass ``cfg`` that has one, as JSON-able data."""
    out = {}
    for f in dataclasses.fields(cfg):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
    return json.loads(json.dumps(out))


def drive(
    trainer: Trainer,
    cfg: Any,
    evaluate: Callable[[Trainer], Mapping[str, float]] | None,
    save: Callable[[dict[str, float]], None],
    on_event: Callable[[Mapping[str, Any]], None] | None,
    should_stop: Callable[[], bool] | None,
    console: bool,
) -> TrainResult:
    """Resume when possible, attach the standard hooks, run, close the writers, and save the model.

    Args:
        trainer: The loop, built by the job.
        cfg: The job's config (a :class:`~amd.train.config.RunSettings`).
        evaluate: Evaluation every ``cfg.eval_every`` epochs, or ``None`` without query/gallery data.
        save: Writes the model to ``cfg.out`` given the last evaluation's figures; called only when the
            run reached its end.
        on_event, should_stop, console: See the jobs' functions. ``on_event`` first receives a ``start``
            event (``epoch``, ``iteration``, ``max_epochs``, ``iters_per_epoch``: where a resumed run begins).
    """
    run_dir = cfg.resolved_run_dir()
    run_dir.mkdir(parents=True, exist_ok=True)
    config = config_to_dict(cfg)
    last = run_dir / "last.pt"
    if cfg.resume and last.is_file():
        saved = torch.load(last, weights_only=True, map_location="cpu")
        # A setting added since the run was saved counts as its default.
        saved_config = {**_defaults(cfg), **saved.get("config", {})}
        old = {k: v for k, v in saved_config.items() if k not in RESUMABLE_CHANGES}
        new = {k: v for k, v in config.items() if k not in RESUMABLE_CHANGES}
        if old != new:
            changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
            raise AmdError(
                f"{run_dir} holds a run with another configuration (differs in {changed}); "
                "start without resuming or use another run folder"
            )
        try:
            trainer.load_state_dict(saved["trainer"])
        except (KeyError, RuntimeError, ValueError) as exc:
            raise AmdError(
                f"{run_dir} holds a run whose saved state does not fit this model or optimiser "
                f"(written by another version?): {exc}; start without resuming or use another run folder"
            ) from exc
    (run_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n")

    if on_event is not None:
        # The live view needs the run's extent and, for a resumed run, where it starts again.
        st = trainer.state
        on_event({"type": "start", "epoch": st.epoch, "iteration": st.iteration, "max_epochs": st.max_epochs,
                  "iters_per_epoch": st.iters_per_epoch})  # fmt: skip
    writers: list[MetricWriter] = [JsonLinesWriter(run_dir / "log.jsonl")]
    if console:
        total = trainer.state.max_epochs * max(trainer.state.iters_per_epoch, 1)
        writers.append(ConsoleWriter(total, initial=trainer.state.iteration))
    if on_event is not None:
        writers.append(_CallbackWriter(on_event))
    hooks: list[HookBase] = [WriterHook(writers, period=cfg.log_every)]
    if evaluate is not None:
        hooks.append(EvalHook(evaluate, writers, period=cfg.eval_every))
    hooks.append(ResumeCheckpointHook(last, period=1, extra={"config": config}))
    if should_stop is not None:
        hooks.append(StopHook(should_stop))
    if cfg.max_steps:
        hooks.append(MaxStepsHook(cfg.max_steps))
    trainer.hooks = hooks + trainer.hooks
    try:
        state = trainer.train()
    finally:
        for w in writers:
            w.close()
    history = list(state.history)
    metrics = {k: v for k, v in (history[-1] if history else {}).items() if k != "epoch"}
    if state.stop_requested:
        return TrainResult(None, state.epoch, True, metrics, history, str(run_dir))
    save(metrics)
    return TrainResult(cfg.out, state.epoch, False, metrics, history, str(run_dir))
