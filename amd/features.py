"""Batched feature extraction over dataset records."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader

from amd.data.records import Record
from amd.data.torch_dataset import ReidImageDataset
from amd.data.transforms import build_transforms


def record_loader(
    records: Sequence[Record], size: tuple[int, int], batch_size: int = 64, workers: int = 0
) -> DataLoader:
    """An ordered, eval-transform loader over ``records`` (workers use the spawn start method)."""
    ds = ReidImageDataset(records, build_transforms(size, train=False))
    kwargs = {"multiprocessing_context": "spawn", "persistent_workers": False} if workers > 0 else {}
    return DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=workers, **kwargs)


@torch.inference_mode()
def extract(
    forward: Callable[[Tensor], Tensor],
    records: Sequence[Record],
    size: tuple[int, int],
    device: torch.device | str = "cpu",
    batch_size: int = 64,
    workers: int = 0,
) -> np.ndarray:
    """Apply ``forward`` (images (B, 3, H, W) -> (B, ...)) to every record, in order.

    Returns:
        float32 array (N, ...) on the CPU.
    """
    if not records:
        return np.zeros((0,), dtype=np.float32)
    device = torch.device(device)
    out: list[np.ndarray] = []
    for batch in record_loader(records, size, batch_size, workers):
        images = batch["image"].to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
        out.append(forward(images).float().cpu().numpy())
    return np.concatenate(out, axis=0)
