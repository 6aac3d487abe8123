"""Embedders: the small protocol through which the workspace store turns crops into vectors.

The store never imports torch; it holds an object with ``name``, ``model_hash``, ``dim``, ``input_size``
and ``embed(images) -> float32 (N, D)``. :func:`load_embedder` builds one from a target checkpoint.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
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
    ) -> None:
        self.device = torch.device(device)
        self.name = name
        self.model_hash = model_hash
        self.dim = int(model.embedding_dim)
        self.input_size = (int(input_size[0]), int(input_size[1]))
        # A private copy with the batch norms folded into the convolutions (checked against the model on a
        # probe batch): the caller's model is left as it is.
        probe = torch.randn(2, 3, *self.input_size, generator=torch.Generator().manual_seed(0))
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


def load_embedder(path: str | Path, device: str | torch.device = "cpu") -> TargetEmbedder:
    """An embedder from a target checkpoint.

    Raises:
        amd.models.checkpoint.CheckpointError: The file cannot be used (for instance, it is an interpreter).
    """
    model, info = load_target(path, device=device)
    return embedder_from_model(model, info, device=device)


def embedder_from_model(
    model: ReIDModel, info: CheckpointInfo, device: str | torch.device = "cpu"
) -> TargetEmbedder:
    """An embedder for an already loaded target model and its checkpoint metadata."""
    return TargetEmbedder(
        model, name=info.name, model_hash=info.sha256, input_size=info.input_size, device=device
    )
