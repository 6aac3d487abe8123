"""A training loop with hooks.

The loop owns the order of events; everything else (checkpoints, evaluation, metric writers, the
cancel flag, the NaN guard, a GUI's live chart) is a hook. A step function does the model-specific
work for one batch and returns its loss terms.

Reproducibility: at the start of every epoch the loop seeds Python, numpy and torch from
(seed, epoch), and the P x K sampler draws its batches from the same pair. The state of a run at an
epoch boundary is therefore its weights, its optimiser state and the epoch number, all of which the
checkpoint holds, so a run resumed from an epoch checkpoint on the CPU ends with the same weights as
one that was never interrupted.

Distributed runs (:mod:`amd.train.distributed`): every rank runs the steps; the hooks (writers,
evaluation, checkpoints) run on rank 0 only, and a stop that a hook requests there is shared with all
ranks after the step, so that they leave the loop together.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from amd.errors import AmdError
from amd.train import distributed


class TrainingError(AmdError):
    """Training cannot go on (a non-finite loss, a bad configuration)."""


@dataclass(frozen=True)
class StepResult:
    """One optimisation step, as hooks and writers see it.

    Attributes:
        epoch: 0-based epoch.
        iteration: 0-based global step count (the step just done).
        losses: Loss terms by name (floats); ``"total"`` is what was minimised.
        lr: Learning rate of the first parameter group.
        images_per_s: Throughput of this step.
    """

    epoch: int
    iteration: int
    losses: Mapping[str, float]
    lr: float
    images_per_s: float


@dataclass
class TrainState:
    """What the loop knows; hooks read it and may set ``stop_requested``."""

    epoch: int = 0
    iteration: int = 0
    max_epochs: int = 1
    iters_per_epoch: int = 0
    stop_requested: bool = False
    stop_reason: str = ""
    history: list[dict[str, Any]] = field(default_factory=list)


class HookBase:
    """Override any of these; each receives the trainer."""

    def before_train(self, trainer: Trainer) -> None: ...

    def before_epoch(self, trainer: Trainer) -> None: ...

    def after_step(self, trainer: Trainer, result: StepResult) -> None: ...

    def after_epoch(self, trainer: Trainer) -> None: ...

    def after_train(self, trainer: Trainer) -> None: ...


#: A step function: (batch) -> (total loss to backpropagate, {term: value}, number of images).
StepFn = Callable[[Mapping[str, Tensor]], tuple[Tensor, Mapping[str, Tensor], int]]


def seed_everything(seed: int, epoch: int = 0) -> None:
    """Seed Python, numpy and torch from (seed, epoch)."""
    mixed = (seed * 1_000_003 + epoch) % (2**31)
    random.seed(mixed)
    np.random.seed(mixed)
    torch.manual_seed(mixed)


class Trainer:
    """Runs epochs of ``step_fn`` over ``loader`` and calls the hooks.

    Args:
        model: The module being trained (its ``state_dict`` goes into checkpoints).
        optimizer: Optimiser over the trainable parameters.
        loader: An iterable of batches (dicts of tensors); if its batch sampler has ``set_epoch``
            it is called at each epoch.
        step_fn: Computes the loss of one batch (see :data:`StepFn`).
        max_epochs: Number of epochs.
        scheduler: Optional per-epoch learning-rate scheduler.
        hooks: Hooks, called in order.
        seed: Base seed.
        scaler: ``torch.amp.GradScaler`` for mixed precision on CUDA, or ``None``.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        loader: Iterable[Mapping[str, Tensor]],
        step_fn: StepFn,
        max_epochs: int,
        scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
        hooks: Sequence[HookBase] = (),
        seed: int = 0,
        scaler: torch.amp.GradScaler | None = None,
    ) -> None:
        self.model = model
        self.optimizer = optimizer
        self.loader = loader
        self.step_fn = step_fn
        self.scheduler = scheduler
        self.hooks = list(hooks)
        self.seed = seed
        self.scaler = scaler
        try:
            n = len(loader)  # type: ignore[arg-type]
        except TypeError:
            n = 0
        self.state = TrainState(max_epochs=max_epochs, iters_per_epoch=n)
        self.dist = distributed.current()

    # -- checkpoint state ---------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Weights, optimiser, scheduler and counters: everything needed to resume at an epoch boundary."""
        out: dict[str, Any] = {
            "model": distributed.unwrap(self.model).state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "epoch": self.state.epoch,
            "iteration": self.state.iteration,
            "history": list(self.state.history),
        }
        if self.scheduler is not None:
            out["scheduler"] = self.scheduler.state_dict()
        if self.scaler is not None:
            out["scaler"] = self.scaler.state_dict()
        return out

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        distributed.unwrap(self.model).load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and "scheduler" in state:
            self.scheduler.load_state_dict(state["scheduler"])
        if self.scaler is not None and "scaler" in state:
            self.scaler.load_state_dict(state["scaler"])
        self.state.epoch = int(state["epoch"])
        self.state.iteration = int(state["iteration"])
        self.state.history = list(state.get("history", []))

    # -- the loop ---------------------------------------------------------------------------------------------
    def request_stop(self, reason: str = "cancelled") -> None:
        self.state.stop_requested = True
        self.state.stop_reason = reason

    def _call(self, name: str, *args: Any) -> None:
        if not self.dist.is_main:
            return
        for hook in self.hooks:
            getattr(hook, name)(self, *args)

    def train(self) -> TrainState:
        """Run from ``state.epoch`` to ``max_epochs`` (or until a hook requests a stop)."""
        st = self.state
        self._call("before_train")
        while st.epoch < st.max_epochs and not st.stop_requested:
            seed_everything(self.seed, st.epoch)
            sampler = getattr(self.loader, "batch_sampler", None)
            if hasattr(sampler, "set_epoch"):
                sampler.set_epoch(st.epoch)
            self._call("before_epoch")
            self.model.train()
            for batch in self.loader:
                result = self._step(batch)
                st.iteration += 1
                self._call("after_step", result)
                if self.dist.enabled:
                    st.stop_requested = distributed.any_rank(st.stop_requested)
                if st.stop_requested:
                    break
            if st.stop_requested:
                break
            if self.scheduler is not None:
                self.scheduler.step()
            st.epoch += 1
            self._call("after_epoch")
        self._call("after_train")
        return st

    def _step(self, batch: Mapping[str, Tensor]) -> StepResult:
        start = time.perf_counter()
        total, terms, n_images = self.step_fn(batch)
        if not torch.isfinite(total.detach()):
            bad = {k: float(v) for k, v in terms.items()}
            raise TrainingError(
                f"non-finite loss at epoch {self.state.epoch + 1}, iteration {self.state.iteration + 1}: {bad}; "
                "lower the learning rate or check the data"
            )
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(total).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            total.backward()
            self.optimizer.step()
        elapsed = max(time.perf_counter() - start, 1e-9)
        losses = {k: float(v.detach()) for k, v in terms.items()}
        losses["total"] = float(total.detach())
        return StepResult(
            epoch=self.state.epoch,
            iteration=self.state.iteration,
            losses=losses,
            lr=float(self.optimizer.param_groups[0]["lr"]),
            images_per_s=n_images / elapsed,
        )


#: Learning-rate schedules after the warm-up.
LR_SCHEDULES: tuple[str, ...] = ("constant", "cosine")


def warmup_constant(warmup_epochs: int, start_factor: float = 0.01) -> Callable[[int], float]:
    """Learning-rate factor per epoch: linear from ``start_factor`` to 1 over ``warmup_epochs``, then 1."""
    return lr_factor("constant", warmup_epochs, warmup_epochs, start_factor)


def lr_factor(
    schedule: str, warmup_epochs: int, epochs: int, start_factor: float = 0.01, floor: float = 0.01
) -> Callable[[int], float]:
    """Learning-rate factor per epoch, for ``torch.optim.lr_scheduler.LambdaLR``.

    Linear from ``start_factor`` to 1 over ``warmup_epochs``; then 1 (``"constant"``), or a half cosine
    from 1 at the end of the warm-up down to ``floor`` at epoch ``epochs`` (``"cosine"``).

    Raises:
        AmdError: An unknown schedule.
    """
    if schedule not in LR_SCHEDULES:
        raise AmdError(
            f"unknown learning-rate schedule {schedule!r}; choose one of {', '.join(LR_SCHEDULES)}"
        )
    warmup = max(warmup_epochs, 0)

    def factor(epoch: int) -> float:
        if epoch < warmup:
            return start_factor + (1.0 - start_factor) * epoch / warmup
        if schedule == "constant" or epochs <= warmup:
            return 1.0
        progress = min((epoch - warmup) / (epochs - warmup), 1.0)
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor
