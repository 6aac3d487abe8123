from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from amd.data.sampler import PKSampler
from amd.train.hooks import EvalHook, JsonLinesWriter, ResumeCheckpointHook, StopHook, WriterHook
from amd.train.loop import Trainer, TrainingError, lr_factor, warmup_constant


class _Points(Dataset):
    """Noisy 2-D points around 6 class centres; the noise is drawn per item from the global RNG."""

    def __init__(self) -> None:
        g = torch.Generator().manual_seed(0)
        self.centres = torch.randn(6, 2, generator=g) * 3
        self.labels = [i % 6 for i in range(60)]

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict:
        y = self.labels[i]
        return {"x": self.centres[y] + 0.3 * torch.randn(2), "label": y}


def _make(seed: int = 3, lr: float = 0.05, hooks=()) -> Trainer:
    torch.manual_seed(seed)
    ds = _Points()
    model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 6))
    loader = DataLoader(ds, batch_sampler=PKSampler(ds.labels, p=3, k=4, seed=seed))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup_constant(2))

    def step(batch):
        loss = nn.functional.cross_entropy(model(batch["x"]), batch["label"])
        return loss, {"ce": loss}, len(batch["label"])

    return Trainer(model, opt, loader, step, max_epochs=6, scheduler=sched, hooks=list(hooks), seed=seed)


def _accuracy(trainer: Trainer) -> dict[str, float]:
    ds = _Points()
    x = torch.stack([ds.centres[y] for y in ds.labels])
    with torch.no_grad():
        pred = trainer.model(x).argmax(1)
    return {"accuracy": float((pred == torch.tensor(ds.labels)).float().mean())}


def test_loss_falls_and_writers_log_every_step(tmp_path: Path) -> None:
    writer = JsonLinesWriter(tmp_path / "log.jsonl")
    trainer = _make(hooks=[WriterHook([writer]), EvalHook(_accuracy, [writer], period=3)])
    trainer.train()
    events = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    steps = [e for e in events if e["type"] == "step"]
    evals = [e for e in events if e["type"] == "eval"]
    assert len(steps) == 6 * 2 == trainer.state.iteration  # 6 identities // P=3 -> 2 batches per epoch
    assert [e["epoch"] for e in evals] == [3, 6]
    first, last = steps[0]["losses"]["ce"], steps[-1]["losses"]["ce"]
    assert last < 0.5 * first
    assert evals[-1]["metrics"]["accuracy"] >= 0.8
    assert [h["epoch"] for h in trainer.state.history] == [3, 6]
    # Warm-up: the learning rate grows linearly over the first two epochs, then stays.
    assert steps[0]["lr"] == pytest.approx(0.05 * 0.01) and steps[-1]["lr"] == pytest.approx(0.05)


def test_resumed_run_ends_with_the_same_weights(tmp_path: Path) -> None:
    straight = _make()
    straight.train()

    ckpt = tmp_path / "last.pt"
    first = _make(hooks=[ResumeCheckpointHook(ckpt, period=1)])
    first.state.max_epochs = 2  # "interrupted" after two epochs
    first.train()
    resumed = _make(seed=3)
    # A different global RNG state before resuming must not matter.
    torch.manual_seed(12345)
    resumed.load_state_dict(torch.load(ckpt, weights_only=True)["trainer"])
    assert resumed.state.epoch == 2
    resumed.train()
    for a, b in zip(straight.model.state_dict().values(), resumed.model.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_stop_hook_stops_after_the_current_step() -> None:
    calls = {"n": 0}

    def should_stop() -> bool:
        calls["n"] += 1
        return calls["n"] >= 3

    trainer = _make(hooks=[StopHook(should_stop)])
    state = trainer.train()
    assert state.iteration == 3 and state.stop_requested and state.stop_reason == "cancelled"
    assert state.epoch == 1  # stopped inside the second epoch


def test_non_finite_loss_is_refused_with_its_position() -> None:
    trainer = _make(lr=1.0)
    trainer.step_fn = lambda batch: (
        torch.tensor(float("nan"), requires_grad=True),
        {"ce": torch.tensor(0.0)},
        1,
    )
    with pytest.raises(TrainingError, match=r"non-finite loss at epoch 1, iteration 1"):
        trainer.train()


def test_learning_rate_factors_by_hand() -> None:
    constant = lr_factor("constant", 2, 10)
    assert [constant(e) for e in (0, 1, 2, 9)] == pytest.approx([0.01, 0.505, 1.0, 1.0])
    cosine = lr_factor("cosine", 2, 10)
    # Warm-up as before, then 0.01 + 0.99 * (1 + cos(pi * (e - 2) / 8)) / 2.
    assert [cosine(e) for e in (0, 1, 2, 6, 10, 12)] == pytest.approx([0.01, 0.505, 1.0, 0.505, 0.01, 0.01])
    assert lr_factor("cosine", 0, 4)(2) == pytest.approx(0.505)
