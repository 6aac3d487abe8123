"""Identity-balanced P x K batch sampling for metric learning and distillation."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler


class PKSampler(Sampler[list[int]]):
    """Yields batches of P identities x K images each (a batch sampler for ``DataLoader``).

    Every epoch visits each identity with at least ``min_images`` images once, in a shuffled
    order, in ``len(self)`` batches of ``p`` identities (the last incomplete group is dropped so
    that every batch has exactly ``p * k`` indices). An identity with fewer than ``k`` images is
    sampled with replacement; otherwise its ``k`` images are distinct.

    The order depends only on ``seed`` and the epoch set by :meth:`set_epoch`, so an interrupted
    and resumed run sees the same batches, and several processes can split one epoch: with
    ``world_size`` W, rank r takes batches r, r + W, r + 2W, ... of the epoch's sequence (the tail that
    would leave some rank without a batch is dropped, so every rank runs the same number of steps).
    Because the draws are made in batch order, the W batches of one distributed step together are
    exactly the batch of a single-process sampler with ``p * W`` identities and the same seed.

    Args:
        pids: Identity of every dataset index, (N,).
        p: Identities per batch.
        k: Images per identity.
        seed: Base seed.
        min_images: Identities with fewer images are left out (1 keeps all).
        rank: This process's rank in a distributed run.
        world_size: Number of processes (1: not distributed).
    """

    def __init__(
        self,
        pids: Sequence[int],
        p: int,
        k: int,
        seed: int = 0,
        min_images: int = 1,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if p < 1 or k < 1:
            raise ValueError(f"P and K must be positive, got P={p}, K={k}")
        groups: dict[int, list[int]] = defaultdict(list)
        for index, pid in enumerate(pids):
            groups[int(pid)].append(index)
        self.groups = {pid: idx for pid, idx in sorted(groups.items()) if len(idx) >= min_images}
        if len(self.groups) < p:
            raise ValueError(f"a batch needs {p} identities but the data has {len(self.groups)}")
        self.p, self.k, self.seed, self.epoch = p, k, seed, 0
        self.rank, self.world_size = 0, 1
        self.shard(rank, world_size)

    def shard(self, rank: int, world_size: int) -> None:
        """Make this sampler rank ``rank`` of ``world_size`` processes (see the class docstring)."""
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in a world of {world_size} processes")
        if len(self.groups) // self.p < world_size:
            raise ValueError(
                f"{len(self.groups)} identities make {len(self.groups) // self.p} batches of {self.p}, "
                f"fewer than the {world_size} processes"
            )
        self.rank, self.world_size = rank, world_size

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.groups) // self.p // self.world_size

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng((self.seed, self.epoch))
        pids = list(self.groups)
        order = rng.permutation(len(pids))
        # Every rank draws the whole epoch (the draws are cheap) so that all ranks agree on it.
        for b in range(len(self) * self.world_size):
            batch: list[int] = []
            for j in order[b * self.p : (b + 1) * self.p]:
                indices = self.groups[pids[j]]
                replace = len(indices) < self.k
                batch.extend(int(i) for i in rng.choice(indices, size=self.k, replace=replace))
            if b % self.world_size == self.rank:
                yield batch
