"""Hooks of the training loop: resumable checkpoints, evaluation, metric writers, cancellation."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from amd.models.checkpoint import atomic_torch_save
from amd.train.loop import HookBase, StepResult, Trainer


class MetricWriter(Protocol):
    """Receives events: ``{"type": "step", ...losses}`` and ``{"type": "eval", ...metrics}``."""

    def write(self, event: Mapping[str, Any]) -> None: ...

    def close(self) -> None: ...


class JsonLinesWriter:
    """Appends one JSON object per event to a file (flushed at once, so a crash loses nothing)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = self.path.open("a", encoding="utf-8")

    def write(self, event: Mapping[str, Any]) -> None:
        self._fh.write(json.dumps(dict(event), sort_keys=True) + "\n")
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()


class ConsoleWriter:
    """A tqdm progress bar over all steps of the run, with the latest losses and throughput."""

    def __init__(self, total_steps: int, initial: int = 0, stream=None) -> None:
        from tqdm import tqdm

        self._bar = tqdm(
            total=total_steps, initial=initial, unit="it", file=stream or sys.stderr, dynamic_ncols=True
        )

    def write(self, event: Mapping[str, Any]) -> None:
        if event["type"] == "step":
            self._bar.update(event["iteration"] + 1 - self._bar.n)
            shown = {k: f"{v:.3g}" for k, v in event["losses"].items()}
            shown["img/s"] = f"{event['images_per_s']:.0f}"
            self._bar.set_postfix(shown, refresh=False)
        elif event["type"] == "eval":
            metrics = ", ".join(f"{k} {v:.4g}" for k, v in event["metrics"].items())
            self._bar.write(f"epoch {event['epoch']}: {metrics}")

    def close(self) -> None:
        self._bar.close()


class WriterHook(HookBase):
    """Sends every ``period``-th step (and the last of each epoch) to the writers.

    The writers are closed by whoever made them: other hooks (evaluation) still write after this one.
    """

    def __init__(self, writers: Sequence[MetricWriter], period: int = 1) -> None:
        self.writers = list(writers)
        self.period = max(1, period)

    def after_step(self, trainer: Trainer, result: StepResult) -> None:
        last_of_epoch = (
            trainer.state.iters_per_epoch and (result.iteration + 1) % trainer.state.iters_per_epoch == 0
        )
        if result.iteration % self.period == 0 or last_of_epoch:
            event = {
                "type": "step",
                "epoch": result.epoch,
                "iteration": result.iteration,
                "losses": dict(result.losses),
                "lr": result.lr,
                "images_per_s": result.images_per_s,
                "time": time.time(),
            }
            for w in self.writers:
                w.write(event)


class EvalHook(HookBase):
    """Runs ``evaluate(trainer) -> {metric: value}`` every ``period`` epochs and at the end.

    Results go to the writers and to ``trainer.state.history`` (kept in checkpoints).
    """

    def __init__(
        self,
        evaluate: Callable[[Trainer], Mapping[str, float]],
        writers: Sequence[MetricWriter] = (),
        period: int = 1,
    ) -> None:
        self.evaluate = evaluate
        self.writers = list(writers)
        self.period = max(1, period)

    def _run(self, trainer: Trainer) -> None:
        metrics = {k: float(v) for k, v in self.evaluate(trainer).items()}
        trainer.state.history.append({"epoch": trainer.state.epoch, **metrics})
        event = {
            "type": "eval",
            "epoch": trainer.state.epoch,
            "iteration": trainer.state.iteration,
            "metrics": metrics,
        }
        for w in self.writers:
            w.write(event)

    def after_epoch(self, trainer: Trainer) -> None:
        st = trainer.state
        if st.epoch % self.period == 0 and st.epoch < st.max_epochs:
            self._run(trainer)

    def after_train(self, trainer: Trainer) -> None:
        st = trainer.state
        if st.epoch == st.max_epochs and not st.stop_requested:
            self._run(trainer)


class ResumeCheckpointHook(HookBase):
    """Saves the whole training state to ``path`` every ``period`` epochs and after the last one.

    A run stopped in the middle of an epoch resumes from the last state saved, at the start of that epoch.

    ``extra`` is added to the saved dict (the resolved config, the schema, ...), so that a resumed
    run can check that it continues the same job.
    """

    def __init__(self, path: str | Path, period: int = 1, extra: Mapping[str, Any] | None = None) -> None:
        self.path = Path(path)
        self.period = max(1, period)
        self.extra = dict(extra or {})

    def save(self, trainer: Trainer) -> None:
        atomic_torch_save({**self.extra, "trainer": trainer.state_dict()}, self.path)

    def after_epoch(self, trainer: Trainer) -> None:
        st = trainer.state
        if st.epoch % self.period == 0 or st.epoch == st.max_epochs:
            self.save(trainer)


class StopHook(HookBase):
    """Stops the run after the current step when ``should_stop()`` turns true (the cancel button)."""

    def __init__(self, should_stop: Callable[[], bool]) -> None:
        self.should_stop = should_stop

    def after_step(self, trainer: Trainer, result: StepResult) -> None:
        if self.should_stop():
            trainer.request_stop("cancelled")


class MaxStepsHook(HookBase):
    """Stops after a fixed number of steps in total (for smoke runs and tests)."""

    def __init__(self, max_steps: int) -> None:
        self.max_steps = max_steps

    def after_step(self, trainer: Trainer, result: StepResult) -> None:
        if trainer.state.iteration >= self.max_steps:
            trainer.request_stop(f"reached {self.max_steps} steps")
