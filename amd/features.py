"""Batched feature extraction over dataset records.

:func:`extract` is the fast path used by evaluation: crops are decoded on a small thread pool while the
previous batch runs through the model (PIL and the tensor transforms release the GIL), the model runs in
inference mode with channels-last inputs, and an eval-mode ``nn.Module`` is replaced by a copy with its
batch norms folded into its convolutions (:func:`amd.inference.inference_copy`, checked against the
original on the first batch).

On the CPU, :func:`extract` can run a target model through ONNX Runtime instead (``runtime="onnx"``, or
``"auto"`` for the faster of the two, timed once; see :func:`amd.embedding.cpu_forward`). The default,
``"torch"``, is unchanged.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from amd.data.records import Record
from amd.data.torch_dataset import ReidImageDataset
from amd.data.transforms import build_transforms
from amd.inference import inference_copy
from amd.models.target import ReIDModel


def record_loader(
    records: Sequence[Record], size: tuple[int, int], batch_size: int = 64, workers: int = 0
) -> DataLoader:
    """An ordered, eval-transform loader over ``records`` (workers use the spawn start method)."""
    ds = ReidImageDataset(records, build_transforms(size, train=False))
    kwargs = {"multiprocessing_context": "spawn", "persistent_workers": False} if workers > 0 else {}
    return DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=workers, **kwargs)


def _threaded_batches(
    records: Sequence[Record], size: tuple[int, int], batch_size: int, threads: int
) -> Iterator[Tensor]:
    """Image batches (B, 3, H, W) in order, the next batch decoding on threads while the caller works."""
    ds = ReidImageDataset(records, build_transforms(size, train=False))
    starts = range(0, len(ds), batch_size)
    with ThreadPoolExecutor(max_workers=threads) as pool:

        def submit(start: int) -> list:
            return [
                pool.submit(lambda i: ds[i]["image"], i)
                for i in range(start, min(start + batch_size, len(ds)))
            ]

        pending = submit(starts[0])
        for k in range(len(starts)):
            images = [f.result() for f in pending]
            if k + 1 < len(starts):
                pending = submit(starts[k + 1])
            yield torch.stack(images)


def _batches(
    records: Sequence[Record], size: tuple[int, int], batch_size: int, workers: int
) -> Iterator[Tensor]:
    if workers > 0:
        for batch in record_loader(records, size, batch_size, workers):
            yield batch["image"]
    else:
        yield from _threaded_batches(records, size, batch_size, max(1, min(4, os.cpu_count() or 1)))


@torch.inference_mode()
def _run(
    forward: Callable[[Tensor], Tensor | Sequence[Tensor]],
    records: Sequence[Record],
    size: tuple[int, int],
    device: torch.device | str,
    batch_size: int,
    workers: int,
) -> tuple[np.ndarray, ...]:
    device = torch.device(device)
    model = None
    out: list[list[np.ndarray]] = []
    for batch in _batches(records, size, batch_size, workers):
        images = batch.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
        if model is None:
            # The first real batch is the probe that checks the folded copy.
            fast = isinstance(forward, nn.Module) and not forward.training
            model = inference_copy(forward, images[:2]) if fast else forward
        outputs = model(images)
        if isinstance(outputs, Tensor):
            outputs = (outputs,)
        if not out:
            out = [[] for _ in outputs]
        for store, value in zip(out, outputs, strict=True):
            store.append(value.float().cpu().numpy())
    return tuple(np.concatenate(parts, axis=0) for parts in out)


def extract_outputs(
    forward: Callable[[Tensor], Sequence[Tensor]],
    records: Sequence[Record],
    size: tuple[int, int],
    device: torch.device | str = "cpu",
    batch_size: int = 64,
    workers: int = 0,
) -> tuple[np.ndarray, ...]:
    """Apply ``forward`` (images (B, 3, H, W) -> several tensors (B, ...)) to every record, in order.

    Args:
        forward: The model or function. An ``nn.Module`` in eval mode runs as a folded, channels-last copy.
        records: The crops.
        size: Input size (H, W).
        device: Where ``forward`` runs.
        batch_size: Crops per forward.
        workers: Decoding processes (0: decoding threads in this process).

    Returns:
        One float32 array (N, ...) per output of ``forward``, on the CPU; ``()`` for no records.
    """
    if not records:
        return ()
    return _run(forward, records, size, device, batch_size, workers)


def state_hash(model: nn.Module) -> str:
    """SHA-256 of a model's parameters and buffers (names, shapes, dtypes and values), in state-dict order."""
    h = hashlib.sha256()
    for name, value in model.state_dict().items():
        t = value.detach().cpu().contiguous()
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype};".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def extract(
    forward: Callable[[Tensor], Tensor],
    records: Sequence[Record],
    size: tuple[int, int],
    device: torch.device | str = "cpu",
    batch_size: int = 64,
    workers: int = 0,
    runtime: str = "torch",
    onnx_cache: str | os.PathLike[str] | None = None,
    model_hash: str | None = None,
) -> np.ndarray:
    """Apply ``forward`` (images (B, 3, H, W) -> (B, ...)) to every record, in order.

    An ``nn.Module`` in eval mode runs as a folded, channels-last copy (see the module docstring).

    Args:
        runtime: ``"torch"``, ``"onnx"`` or ``"auto"``: for a target model on the CPU, which runtime runs
            it (:func:`amd.embedding.cpu_forward`); ignored for other callables and devices.
        onnx_cache: Folder of the cached ONNX export (default: a folder in the temporary directory).
        model_hash: Names the cached export: the checkpoint's SHA-256 (default: :func:`state_hash`).

    Returns:
        float32 array (N, ...) on the CPU.
    """
    if not records:
        return np.zeros((0,), dtype=np.float32)
    if runtime != "torch":
        from amd.embedding import cpu_forward

        if runtime not in ("onnx", "auto"):
            raise ValueError(f"unknown runtime {runtime!r}; expected one of torch, onnx, auto")
        if isinstance(forward, ReIDModel) and torch.device(device).type == "cpu":
            key = model_hash or state_hash(forward)
            forward, _ = cpu_forward(forward.eval(), size, key, runtime, onnx_cache)
    return _run(forward, records, size, device, batch_size, workers)[0]
