"""Compute and store the embeddings a model has not yet made for the workspace's crops.

The model comes in through the small :class:`Embedder` protocol, so the store stays free of the
engine: the engine's ``load_embedder`` returns one, and tests use tiny stand-ins.

Indexing is batched and resumable: each batch's vectors are committed in one transaction, so a
cancelled or killed run keeps what it finished and the next run computes only what is missing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from db.records import ModelInfo

if TYPE_CHECKING:
    from PIL import Image

    from db.workspace import Workspace

#: float16 cannot hold larger magnitudes; embeddings beyond it are refused rather than clipped.
F16_MAX = 65504.0


@runtime_checkable
class Embedder(Protocol):
    """Maps person crops to vectors.

    Attributes:
        name: Readable model name.
        model_hash: SHA-256 of the model file; identifies the model in the workspace.
        dim: Length of the vectors.
    """

    name: str
    model_hash: str
    dim: int

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        """(N, dim) float32 vectors of N 8-bit RGB images (any size)."""
        ...


@dataclass(frozen=True)
class IndexProgress:
    done: int
    total: int


@dataclass(frozen=True)
class IndexSummary:
    """What an indexing run did: vectors computed, crops that failed (id, reason), whether it was cancelled."""

    model_id: int
    computed: int
    failed: tuple[tuple[int, str], ...]
    cancelled: bool
    seconds: float


def register_embedder(
    ws: Workspace, embedder: Embedder, kind: str = "target", file_path: str | None = None
) -> ModelInfo:
    """The model record of ``embedder``, registered (and audited) on first use."""
    return ws.models.register(
        kind=kind,
        name=embedder.name,
        file_hash=embedder.model_hash,
        architecture=getattr(embedder, "architecture", None),
        dim=int(embedder.dim),
        file_path=file_path,
    )


def index_missing(
    ws: Workspace,
    embedder: Embedder,
    *,
    batch_size: int = 32,
    crop_ids: Sequence[int] | None = None,
    kind: str = "target",
    file_path: str | None = None,
    on_progress: Callable[[IndexProgress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> IndexSummary:
    """Embed every crop (or those in ``crop_ids``) that has no vector under ``embedder`` yet.

    Args:
        ws: The workspace.
        embedder: The model.
        batch_size: Images per forward pass and per transaction.
        crop_ids: Limit the work to these crops.
        kind: ``target`` or ``interpreter``, for the model record.
        file_path: The model file, for the model record.
        on_progress: Called after every batch.
        should_stop: Polled between batches; true stops after the current batch.
    """
    start = time.perf_counter()
    model = register_embedder(ws, embedder, kind=kind, file_path=file_path)
    todo = ws.embeddings.missing_crop_ids(model.id, crop_ids)
    failed: list[tuple[int, str]] = []
    computed = 0
    cancelled = False
    for b in range(0, len(todo), max(1, batch_size)):
        if should_stop is not None and should_stop():
            cancelled = True
            break
        batch = ws.crops.get_many(todo[b : b + batch_size])
        ids: list[int] = []
        images = []
        for crop in batch:
            try:
                images.append(ws.images.open_rgb(crop.sha256, crop.format))
                ids.append(crop.id)
            except OSError as exc:
                failed.append((crop.id, f"image unreadable: {exc}"))
        if images:
            vectors = np.asarray(embedder.embed(images), dtype=np.float32)
            if vectors.shape != (len(images), embedder.dim):
                raise ValueError(
                    f"embedder {embedder.name!r} returned shape {vectors.shape} for {len(images)} images "
                    f"of dimension {embedder.dim}"
                )
            ok = np.isfinite(vectors).all(axis=1) & (np.abs(vectors).max(axis=1) <= F16_MAX)
            for crop_id in np.asarray(ids)[~ok]:
                failed.append((int(crop_id), "embedding not finite or beyond float16 range"))
            keep = [i for i, good in zip(ids, ok, strict=True) if good]
            if keep:
                with ws.writing() as s:
                    ws.embeddings.add(s, model.id, keep, vectors[ok])
                computed += len(keep)
        if on_progress is not None:
            on_progress(IndexProgress(min(b + batch_size, len(todo)), len(todo)))
    summary = IndexSummary(model.id, computed, tuple(failed), cancelled, time.perf_counter() - start)
    ws.audit.record(
        "index.finish",
        "model",
        [model.id],
        {"computed": computed, "failed": len(failed), "cancelled": cancelled, "pending": len(todo)},
    )
    return summary
