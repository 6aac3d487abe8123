"""Embedders: the small protocol through which the workspace store turns crops into vectors.

The store never imports torch; it holds an object with ``name``, ``model_hash``, ``dim``, ``input_size``
and ``embed(images) -> float32 (N, D)``. :func:`load_embedder` builds one from a target checkpoint.

On the CPU the forward can run through ONNX Runtime instead of PyTorch (:func:`cpu_forward`, the
``runtime`` argument): ``"torch"`` (the default) runs the folded, channels-last PyTorch copy; ``"onnx"``
runs the exported graph; ``"auto"`` times both once per checkpoint and keeps the faster. The ONNX file
(checked against PyTorch within 1e-4 when written) and the choice are cached in a folder keyed by the
checkpoint's SHA-256, so only the first use pays the export and the timing (seconds for a ResNet-50). The
default stays ``"torch"``: on this project's reference CPUs ONNX Runtime was only about 1.1x faster, which a
first-use export does not repay for a small gallery.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor

from amd.inference import inference_copy
from amd.models.checkpoint import CheckpointInfo, load_target
from amd.models.inputs import ImageLike, Transform, eval_transform, preprocess
from amd.models.target import ReIDModel

#: Values of the ``runtime`` argument.
RUNTIMES = ("torch", "onnx", "auto")
#: Batch of the one-off timing of ``runtime="auto"``.
_TIMING_BATCH = 16


def default_onnx_cache() -> Path:
    """Where ONNX exports are cached when the caller names no folder: ``<temp dir>/amd-onnx``."""
    return Path(tempfile.gettempdir()) / "amd-onnx"


def cpu_forward(
    model: ReIDModel,
    input_size: tuple[int, int],
    model_hash: str,
    runtime: str = "auto",
    cache_dir: str | Path | None = None,
) -> tuple[Callable[[Tensor], Tensor], str]:
    """The CPU forward images (B, 3, H, W) -> embeddings (B, D) for ``runtime``.

    Args:
        model: The target, in eval mode.
        input_size: (H, W).
        model_hash: SHA-256 of the checkpoint; names the cached files ``<hash>.onnx`` and ``<hash>.json``.
        runtime: ``"torch"``: the folded, channels-last PyTorch copy. ``"onnx"``: ONNX Runtime on the
            exported graph (exported once, then read from the cache). ``"auto"``: the faster of the two,
            timed once by :func:`amd.onnx_export.fastest_cpu_forward` with this process's thread count,
            the choice kept in ``<hash>.json`` (timed again when the thread count changes).
        cache_dir: Folder of the cached files (default :func:`default_onnx_cache`).

    Returns:
        ``(forward, name)``, ``name`` being ``"torch"`` or ``"onnxruntime"``.

    Raises:
        ValueError: Unknown runtime.
        amd.onnx_export.OnnxError: The export failed or does not match PyTorch.
    """
    from amd.onnx_export import OnnxForward, export_onnx, fastest_cpu_forward

    if runtime not in RUNTIMES:
        raise ValueError(f"unknown runtime {runtime!r}; expected one of {', '.join(RUNTIMES)}")
    model = model.cpu().eval()
    h, w = (int(v) for v in input_size)
    probe = torch.randn(2, 3, h, w, generator=torch.Generator().manual_seed(0))
    if runtime == "torch":
        return inference_copy(model, probe.contiguous(memory_format=torch.channels_last)), "torch"
    folder = Path(cache_dir) if cache_dir is not None else default_onnx_cache()
    onnx_path = folder / f"{model_hash}.onnx"
    choice_path = folder / f"{model_hash}.json"
    threads = torch.get_num_threads()
    if runtime == "auto":
        choice = _read_choice(choice_path)
        if choice is None or choice.get("threads") != threads:
            _, name, seconds = fastest_cpu_forward(model, (h, w), batch_size=_TIMING_BATCH)
            choice = {
                "runtime": name,
                "threads": threads,
                "seconds_per_batch": seconds,
                "batch": _TIMING_BATCH,
            }
            folder.mkdir(parents=True, exist_ok=True)
            tmp = folder / f".{model_hash}.{os.getpid()}.json.tmp"
            tmp.write_text(json.dumps(choice))
            os.replace(tmp, choice_path)
        if choice["runtime"] != "onnxruntime":
            return cpu_forward(model, (h, w), model_hash, "torch")
    if not onnx_path.is_file():
        export_onnx(model, onnx_path, (h, w), metadata={"amd.model_hash": model_hash})
    return OnnxForward(onnx_path), "onnxruntime"


def _read_choice(path: Path) -> dict | None:
    try:
        choice = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return choice if isinstance(choice, dict) and choice.get("runtime") in ("torch", "onnxruntime") else None


@runtime_checkable
class Embedder(Protocol):
    """Maps crops to vectors; the distances between vectors are the target's Euclidean distances."""

    name: str
    model_hash: str
    dim: int
    input_size: tuple[int, int]

    def embed(self, images: Sequence[ImageLike], batch_size: int = 64) -> np.ndarray: ...


class TargetEmbedder:
    """Embeds crops with a target model: inference mode, eval mode, channels-last memory layout, batch
    norms folded into the convolutions (:func:`amd.inference.inference_copy`).

    Decoding runs on a small thread pool and overlaps the forward of the previous batch.

    Args:
        model: The target model.
        name: Display name.
        model_hash: SHA-256 of the checkpoint file.
        input_size: (H, W).
        device: Where the model runs.
        transform: PIL image -> (3, H, W) tensor; default: resize and normalise.
        workers: Decoding threads (default: up to 4, at most the number of CPUs).
        runtime: ``"torch"``, ``"onnx"`` or ``"auto"`` on the CPU (see :func:`cpu_forward`; other devices
            always run PyTorch).
        onnx_cache: Folder of the cached ONNX export and runtime choice (default
            :func:`default_onnx_cache`).

    Attributes:
        runtime: What runs the forward: ``"torch"`` or ``"onnxruntime"``.
    """

    def __init__(
        self,
        model: ReIDModel,
        name: str,
        model_hash: str,
        input_size: tuple[int, int],
        device: str | torch.device = "cpu",
        transform: Transform | None = None,
        workers: int | None = None,
        runtime: str = "torch",
        onnx_cache: str | Path | None = None,
    ) -> None:
        if runtime not in RUNTIMES:
            raise ValueError(f"unknown runtime {runtime!r}; expected one of {', '.join(RUNTIMES)}")
        self.device = torch.device(device)
        self.name = name
        self.model_hash = model_hash
        self.dim = int(model.embedding_dim)
        self.input_size = (int(input_size[0]), int(input_size[1]))
        # A private copy with the batch norms folded into the convolutions (checked against the model on a
        # probe batch): the caller's model is left as it is.
        probe = torch.randn(2, 3, *self.input_size, generator=torch.Generator().manual_seed(0))
        self.runtime = "torch"
        self.model: Callable[[Tensor], Tensor]
        if runtime != "torch" and self.device.type == "cpu":
            self.model, self.runtime = cpu_forward(model, self.input_size, model_hash, runtime, onnx_cache)
        else:
            self.model = inference_copy(model.to(self.device).eval(), probe.to(self.device))
        self.transform = transform if transform is not None else eval_transform(self.input_size)
        self.workers = workers if workers is not None else max(1, min(4, os.cpu_count() or 1))

    @torch.inference_mode()
    def _forward(self, batch: Tensor) -> np.ndarray:
        batch = batch.to(self.device, non_blocking=True).contiguous(memory_format=torch.channels_last)
        return self.model(batch).float().cpu().numpy()

    def embed(self, images: Sequence[ImageLike], batch_size: int = 64) -> np.ndarray:
        """Embeddings of crops (paths, PIL images or uint8 arrays).

        Returns:
            float32 array (N, D) in the order of ``images``; (0, D) for no images.
        """
        images = list(images)
        if not images:
            return np.zeros((0, self.dim), dtype=np.float32)
        chunks = [images[i : i + batch_size] for i in range(0, len(images), batch_size)]
        out: list[np.ndarray] = []
        with ThreadPoolExecutor(max_workers=self.workers) as pool:

            def submit(chunk: list[ImageLike]) -> list[Future]:
                return [pool.submit(preprocess, image, self.transform) for image in chunk]

            # The pool decodes batch i + 1 while batch i runs through the model.
            pending = submit(chunks[0])
            for i in range(len(chunks)):
                batch = torch.stack([future.result()[0] for future in pending])
                if i + 1 < len(chunks):
                    pending = submit(chunks[i + 1])
                out.append(self._forward(batch))
        return np.concatenate(out, axis=0).astype(np.float32, copy=False)


def load_embedder(
    path: str | Path,
    device: str | torch.device = "cpu",
    runtime: str = "torch",
    onnx_cache: str | Path | None = None,
) -> TargetEmbedder:
    """An embedder from a target checkpoint (``runtime``, ``onnx_cache``: see :class:`TargetEmbedder`).

    Raises:
        amd.models.checkpoint.CheckpointError: The file cannot be used (for instance, it is an interpreter).
    """
    model, info = load_target(path, device=device)
    return embedder_from_model(model, info, device=device, runtime=runtime, onnx_cache=onnx_cache)


def embedder_from_model(
    model: ReIDModel,
    info: CheckpointInfo,
    device: str | torch.device = "cpu",
    runtime: str = "torch",
    onnx_cache: str | Path | None = None,
) -> TargetEmbedder:
    """An embedder for an already loaded target model and its checkpoint metadata."""
    return TargetEmbedder(
        model,
        name=info.name,
        model_hash=info.sha256,
        input_size=info.input_size,
        device=device,
        runtime=runtime,
        onnx_cache=onnx_cache,
    )
