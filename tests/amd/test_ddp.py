"""Distributed training on the CPU: two gloo processes give the weights of one process with the same
effective batch, and the distributed P x K sampler splits each epoch into disjoint shares."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import numpy as np
import torch
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from amd.data.sampler import PKSampler
from amd.train import distributed
from amd.train.loop import HookBase, Trainer

P, K, WORLD, EPOCHS = 2, 3, 2, 3
IDENTITIES, PER_ID, DIM = 12, 5, 16


class Points(Dataset):
    """IDENTITIES clusters of PER_ID points in DIM dimensions; each item is a dict like the image datasets'."""

    def __init__(self) -> None:
        g = torch.Generator().manual_seed(0)
        centres = torch.randn(IDENTITIES, DIM, generator=g) * 2
        self.labels = torch.arange(IDENTITIES).repeat_interleave(PER_ID)
        self.x = centres[self.labels] + torch.randn(len(self.labels), DIM, generator=g)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"image": self.x[i], "label": self.labels[i]}


class StopAt(HookBase):
    """Requests a stop on rank 0 only: every rank must leave the loop at the same step."""

    def __init__(self, step: int) -> None:
        self.step = step

    def after_step(self, trainer: Trainer, result) -> None:
        if result.iteration + 1 >= self.step:
            trainer.request_stop("max steps")


class Losses(HookBase):
    def __init__(self) -> None:
        self.values: list[float] = []

    def after_step(self, trainer: Trainer, result) -> None:
        self.values.append(result.losses["total"])


def _train(
    p: int, rank: int, world: int, stop_at: int | None = None
) -> tuple[dict[str, torch.Tensor], list[float], int]:
    ds = Points()
    sampler = PKSampler(ds.labels.tolist(), p, K, seed=7, rank=rank, world_size=world)
    loader = DataLoader(ds, batch_sampler=sampler)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(DIM, 32), nn.ReLU(), nn.Linear(32, IDENTITIES))
    net = nn.parallel.DistributedDataParallel(model) if world > 1 else model
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

    def step(batch):
        logits = net(batch["image"])
        loss = F.cross_entropy(logits, batch["label"])
        return loss, {"ce": loss}, len(batch["label"])

    losses = Losses()
    hooks: list[HookBase] = [losses] + ([StopAt(stop_at)] if stop_at else [])
    trainer = Trainer(net, optimizer, loader, step, EPOCHS, hooks=hooks, seed=3)
    state = trainer.train()
    weights = {k: v.detach().clone() for k, v in trainer.state_dict()["model"].items()}
    return weights, losses.values, state.iteration


def _worker(rank: int, world: int, out: str, stop_at: int | None) -> None:
    torch.set_num_threads(1)
    # A file rendezvous: no port to find free, and no rank serves the others' store.
    torch.distributed.init_process_group(
        "gloo", init_method=f"file://{out}/rendezvous", rank=rank, world_size=world
    )
    try:
        weights, losses, iterations = _train(P, rank, world, stop_at)
    except BaseException:
        distributed.leave(wait=False)
        raise
    torch.save({"weights": weights, "losses": losses, "iterations": iterations}, f"{out}/rank{rank}.pt")
    distributed.leave()
    _exit_worker()


def _exit_worker() -> None:
    """End a spawned worker the way a forked one ends: at once, without the interpreter's teardown.

    What the test checks is on disk by now; the C++ runtime's exit-time destructors, which can abort a
    process that has used the gloo backend, have nothing left to tell it.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _spawn(tmp_path: Path, stop_at: int | None = None) -> list[dict]:
    mp.spawn(_worker, args=(WORLD, str(tmp_path), stop_at), nprocs=WORLD, join=True)
    return [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]


def test_distributed_sampler_splits_each_epoch_into_disjoint_shares() -> None:
    pids = Points().labels.tolist()
    whole = PKSampler(pids, P * WORLD, K, seed=7)
    ranks = [PKSampler(pids, P, K, seed=7, rank=r, world_size=WORLD) for r in range(WORLD)]
    for epoch in (0, 1):
        for s in (whole, *ranks):
            s.set_epoch(epoch)
        shares = [list(s) for s in ranks]
        assert [len(b) for b in shares] == [len(whole)] * WORLD == [IDENTITIES // (P * WORLD)] * WORLD
        for step, batch in enumerate(whole):
            parts = [shares[r][step] for r in range(WORLD)]
            # The ranks' batches of one step are the single process's batch, in rank order ...
            assert sum(parts, []) == batch
            # ... and they hold different identities.
            ids = [{pids[i] for i in part} for part in parts]
            assert len(ids[0] & ids[1]) == 0 and all(len(s) == P for s in ids)
    assert len(np.unique([pids[i] for b in shares[0] for i in b])) == P * len(shares[0])


def test_two_gloo_processes_equal_one_process_with_the_same_effective_batch(tmp_path: Path) -> None:
    single, single_losses, single_iters = _train(P * WORLD, 0, 1)
    results = _spawn(tmp_path)
    assert single_iters == EPOCHS * (IDENTITIES // (P * WORLD))
    for r in results:
        assert r["iterations"] == single_iters
        for key, value in single.items():
            assert torch.allclose(r["weights"][key], value, atol=1e-5), key
    # The hooks (writers, checkpoints) ran on rank 0 only.
    assert len(results[0]["losses"]) == single_iters and results[1]["losses"] == []
    assert single_losses[-1] < single_losses[0]


def test_a_stop_on_rank_zero_stops_every_rank(tmp_path: Path) -> None:
    results = _spawn(tmp_path, stop_at=4)
    assert [r["iterations"] for r in results] == [4, 4]


def _target_worker(rank: int, world: int, port: int, data: str, out: str) -> None:
    from amd.train.config import TargetTrainConfig
    from amd.train.target import train_target

    # What torchrun puts in each process's environment.
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    cfg = TargetTrainConfig(data=data, arch="resnet18", size=(64, 32), epochs=2, p=3, k=2, warmup_epochs=0,
                            eval_every=10, out=f"{out}/target.pt", device="cpu")  # fmt: skip
    result = train_target(cfg)
    state = {"epochs": result.epochs_done, "in_group": torch.distributed.is_initialized()}
    torch.save(state, f"{out}/state{rank}.pt")
    _exit_worker()


def test_target_training_under_torchrun_leaves_the_group_on_every_rank(tmp_path: Path) -> None:
    from amd.models import load_target
    from amd.synth.writer import SynthConfig, write_dataset

    data = tmp_path / "data"
    write_dataset(
        data, SynthConfig(train_ids=6, test_ids=4, per_id=4, cameras=2, height=64, width=32, seed=3)
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_target_worker, args=(WORLD, port, str(data), str(tmp_path)), nprocs=WORLD, join=True)
    states = [torch.load(tmp_path / f"state{r}.pt", weights_only=True) for r in range(WORLD)]
    # Both ranks ran both epochs and left the process group before returning; rank 0 wrote the model.
    assert states == [{"epochs": 2, "in_group": False}] * WORLD
    _, info = load_target(tmp_path / "target.pt")
    assert info.input_size == (64, 32)
