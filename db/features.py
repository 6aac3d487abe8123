"""Memory-mapped embedding matrices: a cache derived from the database, refreshed incrementally.

For each model, ``features/<model hash>/`` holds the vectors (float16, row-major), the crop id of
each row, the squared row norms (for fast distance computation) and a manifest recording how many
rows it holds and the last embedding id it includes. Loading compares the manifest with the
database: new embeddings are appended, a deletion (or anything unexpected) triggers a rebuild.
A lock file keeps two programs from updating the same cache at once; the manifest is replaced
last and atomically, so a crash mid-update leaves a cache that the next load repairs.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import func, select

from db.locks import FileLock
from db.models import Embedding
from db.repositories import VECTOR_DTYPE

if TYPE_CHECKING:
    from db.workspace import Workspace

CACHE_VERSION = 1
_BATCH = 4096


@dataclass(frozen=True)
class FeatureMatrix:
    """A model's vectors for search.

    Attributes:
        model_id: The model.
        crop_ids: (N,) int64 crop id of each row.
        vectors: (N, D) float16, memory-mapped read-only.
        sq_norms: (N,) float32 squared norms of the rows.
    """

    model_id: int
    crop_ids: np.ndarray
    vectors: np.ndarray
    sq_norms: np.ndarray

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def __len__(self) -> int:
        return int(self.crop_ids.shape[0])


def cache_dir(ws: Workspace, model_id: int) -> Path:
    model = ws.models.get(model_id)
    return ws.root / "features" / model.file_hash[:16]


def load_features(
    ws: Workspace, model_id: int, on_progress: Callable[[int, int], None] | None = None
) -> FeatureMatrix:
    """The up-to-date feature matrix of a model, updating the cache on disk first when needed."""
    model = ws.models.get(model_id)
    folder = ws.root / "features" / model.file_hash[:16]
    folder.mkdir(parents=True, exist_ok=True)
    with FileLock(folder / ".lock", ws.busy_timeout_s, "the feature cache"):
        manifest = _read_manifest(folder)
        with ws.reading() as s:
            count, max_id = s.execute(
                select(func.count(), func.max(Embedding.id)).where(Embedding.model_id == model_id)
            ).one()
            dim = model.dim
            if dim is None and count:
                dim = (
                    len(s.scalar(select(Embedding.vector).where(Embedding.model_id == model_id).limit(1)))
                    // 2
                )
            consistent = False
            if manifest is not None and manifest.get("dim") == dim and manifest.get("model_id") == model_id:
                covered = s.scalar(
                    select(func.count()).where(
                        Embedding.model_id == model_id, Embedding.id <= manifest["max_embedding_id"]
                    )
                )
                consistent = covered == manifest["rows"]
        max_id = int(max_id or 0)
        dim = int(dim or 0)
        if manifest is None or not consistent:
            manifest = _rebuild(ws, folder, model_id, dim, int(count), on_progress)
        elif max_id > manifest["max_embedding_id"]:
            manifest = _append(ws, folder, manifest, int(count), on_progress)
        return _open(folder, model_id, manifest)


def _read_manifest(folder: Path) -> dict[str, Any] | None:
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("version") != CACHE_VERSION:
        return None
    return manifest


def _write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    tmp = folder / "manifest.json.tmp"
    tmp.write_text(json.dumps(manifest))
    os.replace(tmp, folder / "manifest.json")


def _stream(ws: Workspace, model_id: int, after: int, dim: int, files: dict[str, Any], total: int,
            on_progress: Callable[[int, int], None] | None, done: int) -> tuple[int, int]:  # fmt: skip
    """Append the embeddings with id > ``after`` to the open files; returns (rows, last id)."""
    last = after
    rows = 0
    while True:
        with ws.reading() as s:
            batch = s.execute(
                select(Embedding.id, Embedding.crop_id, Embedding.vector)
                .where(Embedding.model_id == model_id, Embedding.id > last)
                .order_by(Embedding.id)
                .limit(_BATCH)
            ).all()
        if not batch:
            return rows, last
        vecs = np.frombuffer(b"".join(r[2] for r in batch), dtype=VECTOR_DTYPE).reshape(len(batch), dim)
        files["vectors"].write(vecs.astype(np.float16, copy=False).tobytes())
        files["crop_ids"].write(np.asarray([r[1] for r in batch], dtype=np.int64).tobytes())
        files["norms"].write(np.einsum("ij,ij->i", vecs, vecs, dtype=np.float32).tobytes())
        rows += len(batch)
        last = int(batch[-1][0])
        if on_progress is not None:
            on_progress(done + rows, total)


_FILES = {"vectors": "vectors.f16", "crop_ids": "crop_ids.i64", "norms": "norms.f32"}


def _rebuild(
    ws: Workspace,
    folder: Path,
    model_id: int,
    dim: int,
    total: int,
    on_progress: Callable[[int, int], None] | None,
) -> dict[str, Any]:
    (folder / "manifest.json").unlink(missing_ok=True)
    files = {k: (folder / name).open("wb") for k, name in _FILES.items()}
    try:
        rows, last = _stream(ws, model_id, 0, dim, files, total, on_progress, 0)
    finally:
        for fh in files.values():
            fh.close()
    manifest = {
        "version": CACHE_VERSION,
        "model_id": model_id,
        "dim": dim,
        "rows": rows,
        "max_embedding_id": last,
    }
    _write_manifest(folder, manifest)
    return manifest


def _append(
    ws: Workspace,
    folder: Path,
    manifest: dict[str, Any],
    total: int,
    on_progress: Callable[[int, int], None] | None,
) -> dict[str, Any]:
    rows0, dim = int(manifest["rows"]), int(manifest["dim"])
    sizes = {"vectors": rows0 * dim * 2, "crop_ids": rows0 * 8, "norms": rows0 * 4}
    files = {}
    try:
        for k, name in _FILES.items():
            fh = (folder / name).open("r+b")
            # Drop whatever an interrupted append left past the manifest's rows.
            fh.truncate(sizes[k])
            fh.seek(sizes[k])
            files[k] = fh
        rows, last = _stream(
            ws, manifest["model_id"], manifest["max_embedding_id"], dim, files, total, on_progress, rows0
        )
    finally:
        for fh in files.values():
            fh.close()
    manifest = dict(manifest, rows=rows0 + rows, max_embedding_id=last)
    _write_manifest(folder, manifest)
    return manifest


def _open(folder: Path, model_id: int, manifest: dict[str, Any]) -> FeatureMatrix:
    rows, dim = int(manifest["rows"]), int(manifest["dim"])
    if rows == 0:
        return FeatureMatrix(
            model_id, np.zeros(0, np.int64), np.zeros((0, dim), np.float16), np.zeros(0, np.float32)
        )
    vectors = np.memmap(folder / _FILES["vectors"], dtype=np.float16, mode="r", shape=(rows, dim))
    crop_ids = np.fromfile(folder / _FILES["crop_ids"], dtype=np.int64, count=rows)
    norms = np.fromfile(folder / _FILES["norms"], dtype=np.float32, count=rows)
    return FeatureMatrix(model_id, crop_ids, vectors, norms)
