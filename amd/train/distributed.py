"""Multi-process training with torch.distributed, started by ``torchrun`` (one process per GPU or node slot).

``torchrun --nproc-per-node 4 main.py train-target ...`` sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and
the rendezvous address in each process's environment; :func:`from_environment` joins the process group
(NCCL on CUDA, gloo on the CPU) and says which device the process owns. The target trainer then wraps
its model in ``DistributedDataParallel`` (BatchNorm synchronised across GPUs), gives each rank its share
of the epoch's P x K batches (:meth:`amd.data.sampler.PKSampler.shard`) and writes checkpoints, events
and the final model from rank 0 only. A step of W processes with P identities each is one step of
P x W identities: DDP averages the ranks' gradients, which is the gradient of the mean loss over the
union of their batches for a loss that is a mean over images (cross-entropy; the batch-hard triplet
loss mines within each rank's batch).
"""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in a run.

    Attributes:
        rank: Global rank (0 writes files and reports).
        world_size: Number of processes (1: not distributed).
        local_rank: Rank on this node (the CUDA device index).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def from_environment(device: torch.device) -> tuple[DistContext, torch.device]:
    """Join the process group that ``torchrun`` describes in the environment, if any.

    Args:
        device: The device the configuration asked for; on CUDA each process takes ``cuda:LOCAL_RANK``.

    Returns:
        ``(context, device)``; without ``WORLD_SIZE`` > 1 in the environment, a single-process context
        and ``device`` unchanged.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext(), device
    rank = int(os.environ["RANK"])
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=rank, world_size=world)
    return DistContext(rank, world, local), device


def current() -> DistContext:
    """The context of an already initialised process group (single-process when there is none)."""
    if not (dist.is_available() and dist.is_initialized()):
        return DistContext()
    return DistContext(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def wrap(model: nn.Module, ctx: DistContext, device: torch.device) -> nn.Module:
    """``model`` wrapped in DistributedDataParallel (with synchronised BatchNorm on CUDA), or unchanged.

    On the CPU the BatchNorm layers keep per-process statistics (SyncBatchNorm needs an accelerator).
    """
    if not ctx.enabled:
        return model
    if device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        return nn.parallel.DistributedDataParallel(model, device_ids=[device.index])
    return nn.parallel.DistributedDataParallel(model)


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a DistributedDataParallel wrapper (or ``model`` itself)."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def leave(*, wait: bool = True) -> None:
    """Leave the process group, if this process is in one.

    Args:
        wait: Meet every other rank first (a barrier), so that no rank tears its backend down while another
            still talks to it; pass False on the way out of an error, where the others may never arrive.

    The backend's worker threads are stopped here, while Python is fully alive: a group left to the
    interpreter's shutdown can abort the process on exit. Destroying the group only drops the library's
    own references; a finished run's DistributedDataParallel wrapper caught in a reference cycle still
    holds it, so the cycles are collected here too and the backend goes with them.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return
    if wait:
        dist.barrier()
    dist.destroy_process_group()
    gc.collect()


def any_rank(flag: bool) -> bool:
    """True on every rank when ``flag`` is true on any rank (a stop must stop all ranks at the same step)."""
    ctx = current()
    if not ctx.enabled:
        return flag
    value = torch.tensor([1 if flag else 0], dtype=torch.int32)
    if dist.get_backend() == "nccl":
        value = value.cuda()
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())
