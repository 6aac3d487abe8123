"""Jobs that need both the engine and the store, written once for the commands and the GUI.

Qt-free: progress goes through ``on_progress`` callables and cancellation through
``should_stop``; the GUI runs these functions on worker threads. Heavy modules (torch through the
engine) are imported inside the functions that need them.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from db.errors import ImageRefused, NotFoundError, StoreError
from db.ingest import IngestItem, Refusal, scan_paths
from db.workspace import Workspace

if TYPE_CHECKING:
    from amd.data.records import Dataset
    from amd.explain import Explainer, TopShare
    from db.index import Embedder
    from db.records import CropInfo

LAYOUTS = ("auto", "folder", "market1501", "duke", "csv")
_SPLIT_FOLDERS = ("bounding_box_train", "bounding_box_test", "query")
_DUKE_NAME = re.compile(r"^-?\d+_c\d+_f\d+$")


def load_embedder(path: str, device: str | None = None) -> Embedder:
    """The engine's embedder for a model file, on ``device`` (default CUDA when available)."""
    import torch

    from amd.embedding import load_embedder as _load

    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return _load(path, device=device)


def open_workspace(path: str, create: bool = False, url: str | None = None) -> Workspace:
    """Open (or create, when ``create`` and the folder is new or empty) a workspace.

    A workspace whose SQLite database or folder this user cannot write is refused at once, naming the file
    to fix: SQLite keeps its journal beside the database even for reading, so such a workspace would fail
    at the first query with "attempt to write a readonly database". A new workspace's folder must be
    creatable.

    Raises:
        StoreError: The workspace cannot be opened or created; the message says why.
        amd.errors.AmdError: The new workspace's folder cannot be created.
    """
    root = Path(path).expanduser()
    config = root / "workspace.json"
    if not config.is_file():
        if create and not (root.is_dir() and any(root.iterdir())):
            from cli.checks import check_output_folder

            check_output_folder(root, "workspace")
    else:
        _check_writable(root)
    return Workspace.open(path, url=url, create=create)


def _check_writable(root: Path) -> None:
    """Refuse a workspace whose SQLite files or folder this user cannot write (see :func:`open_workspace`)."""
    db = root / "workspace.db"
    if not db.is_file():
        return  # the database is elsewhere (a server, or a URL of the workspace's)
    advice = "ask for write permission, or work on a copy of the workspace"
    for f in (db, root / "workspace.db-wal", root / "workspace.db-shm"):
        if f.exists() and not os.access(f, os.R_OK | os.W_OK):
            raise StoreError(
                f"{f} is read-only for this user: a workspace opens only with write access to its database "
                f"files, even to be read (SQLite keeps a journal beside the database); {advice}"
            )
    if not os.access(root, os.W_OK | os.X_OK):
        raise StoreError(
            f"the workspace folder {root} is read-only for this user: SQLite creates its journal files "
            f"(workspace.db-wal, workspace.db-shm) there, even when the workspace is only read; {advice}"
        )


def detect_layout(path: Path) -> str:
    """``market1501``, ``duke``, ``csv`` or ``folder`` for a path given to ``ingest``."""
    if not path.is_dir():
        return "folder"
    if all((path / f).is_dir() for f in _SPLIT_FOLDERS):
        for folder in _SPLIT_FOLDERS:
            for entry in sorted((path / folder).iterdir()):
                if entry.suffix.lower() in (".jpg", ".jpeg", ".png"):
                    return "duke" if _DUKE_NAME.match(entry.stem) else "market1501"
        return "market1501"
    if (path / "index.csv").is_file():
        return "csv"
    return "folder"


def _attribute_dict(dataset: Dataset, vector: Any) -> dict[str, Any] | None:
    if dataset.schema is None or vector is None or len(vector) == 0:
        return None
    return {
        "schema": dataset.schema.name,
        "values": {n: int(v) for n, v in zip(dataset.schema.names, vector, strict=True)},
    }


def dataset_items(
    root: Path,
    layout: str,
    camera: str | None = None,
    identity: str | None = None,
    csv_path: str | None = None,
    schema: str | None = None,
) -> list[IngestItem]:
    """Import items for a Market-1501, DukeMTMC-reID or CSV layout, with its metadata.

    Identities and cameras of the benchmark layouts are named ``market1501/0002`` and
    ``market1501/c1`` (numbers repeat across datasets but are different people and cameras);
    distractors (identity 0) stay unlabelled. CSV layouts keep the names their index gives.
    Attributes go on the identity for the benchmark layouts (they are per identity there) and on
    the crop for CSV rows. ``camera`` and ``identity``, when given, override the layout's.

    Raises:
        DatasetError: The layout cannot be read (from the engine's loaders).
    """
    from amd.data.csv_layout import load_csv_dataset
    from amd.data.market import load_duke, load_market1501

    if layout == "csv":
        dataset = load_csv_dataset(root, csv_path=csv_path, schema=schema)
        names = _csv_names(root, Path(csv_path) if csv_path else root / "index.csv")
    elif layout in ("market1501", "duke"):
        loader = load_market1501 if layout == "market1501" else load_duke
        dataset = loader(root, schema=schema, require_attributes=False)
        names = {}
    else:
        raise ValueError(f"not a dataset layout: {layout!r}")

    items = []
    for split in ("train", "query", "gallery"):
        for rec in dataset.split(split):
            if layout == "csv":
                cam_name, pid_name = names.get(str(Path(rec.path).resolve()), (str(rec.camid), str(rec.pid)))
                attrs, id_attrs = _attribute_dict(dataset, rec.attributes), None
            else:
                cam_name, pid_name = f"{dataset.name}/c{rec.camid}", f"{dataset.name}/{rec.pid:04d}"
                attrs, id_attrs = None, _attribute_dict(dataset, rec.attributes)
            if rec.pid == 0:
                pid_name, id_attrs = None, None
            items.append(
                IngestItem(
                    path=rec.path,
                    camera=camera or cam_name,
                    identity=identity or pid_name,
                    frame=rec.frame if rec.frame >= 0 else None,
                    time_text=rec.timestamp,
                    split=split,
                    attributes=attrs,
                    identity_attributes=id_attrs if not identity else None,
                )
            )
    return items


def _csv_names(root: Path, index: Path) -> dict[str, tuple[str, str]]:
    """Resolved image path -> (camera, identity) exactly as the index writes them."""
    out = {}
    with index.open(newline="", encoding="utf-8-sig") as fh:
        for row in csv.DictReader(fh):
            p = Path(row.get("path") or "")
            p = p if p.is_absolute() else root / p
            out[str(p.resolve())] = ((row.get("camera") or "").strip(), (row.get("identity") or "").strip())
    return out


def ingest_items(
    paths: Sequence[str],
    layout: str = "auto",
    camera: str | None = None,
    identity: str | None = None,
    csv_path: str | None = None,
    schema: str | None = None,
) -> tuple[list[IngestItem], list[Refusal]]:
    """Everything ``paths`` stands for (files, folders, dataset layouts) as import items."""
    if layout not in LAYOUTS:
        raise StoreError(f"unknown layout {layout!r} (one of {', '.join(LAYOUTS)})")
    items: list[IngestItem] = []
    refused: list[Refusal] = []
    for raw in paths:
        path = Path(raw)
        kind = detect_layout(path) if layout == "auto" else layout
        if kind == "folder" or not path.exists():
            more, bad = scan_paths([path], camera=camera, identity=identity)
            items.extend(more)
            refused.extend(bad)
        else:
            items.extend(dataset_items(path, kind, camera, identity, csv_path, schema))
    return items, refused


# ---------------------------------------------------------------------- search


@dataclass(frozen=True)
class SearchHit:
    """One ranked result."""

    rank: int
    crop_id: int
    distance: float
    identity: str | None
    camera: str | None
    source_path: str
    #: The k-reciprocal re-ranked score when re-ranking was asked for (lower is closer).
    score: float | None = None


def query_crop_id(query: str | int) -> int | None:
    """The stored crop a search query names (a crop id, unless a file of that name exists), else ``None``
    (an image file)."""
    if isinstance(query, int):
        return query
    return int(query) if query.isdigit() and not Path(query).exists() else None


def largest_shares(
    ws: Workspace,
    explainer: Explainer,
    query: str | int,
    crops: Sequence[CropInfo],
    count: int = 3,
    chunk: int = 16,
    should_stop: Callable[[], bool] | None = None,
) -> list[tuple[TopShare, ...]]:
    """Why each of ``crops`` is as far from a search query (a crop id or an image file, as for
    :func:`search`) as it is: :meth:`amd.explain.Explainer.largest_shares` on the stored images."""
    crop_id = query_crop_id(query)
    if crop_id is not None:
        crop = ws.crops.get(crop_id)
        source = str(ws.images.original_path(crop.sha256, crop.format))
    else:
        source = str(query)
    paths = [str(ws.images.original_path(c.sha256, c.format)) for c in crops]
    return explainer.largest_shares(source, paths, count=count, chunk=chunk, should_stop=should_stop)


def _query_vector(ws: Workspace, embedder: Embedder, model_id: int, query: str) -> tuple[Any, int | None]:
    """The query's vector (float32, (D,)) and its crop id when the query is a stored crop."""
    import numpy as np

    from db.imagestore import inspect_image
    from imaging import to_rgb

    crop_id = query_crop_id(query)
    if crop_id is not None:
        crop = ws.crops.get(crop_id)
        stored = ws.embeddings.vectors(model_id, [crop.id])
        if crop.id in stored:
            return stored[crop.id].astype(np.float32), crop.id
        image = ws.images.open_rgb(crop.sha256, crop.format)
        return np.asarray(embedder.embed([image]), dtype=np.float32)[0], crop.id
    path = Path(query)
    if not path.is_file():
        raise NotFoundError(f"query {query!r} is neither a crop id nor an image file")
    try:
        image, _ = inspect_image(path.read_bytes())
    except ImageRefused as exc:
        raise StoreError(f"query image {path}: {exc.reason}") from None
    return np.asarray(embedder.embed([to_rgb(image)]), dtype=np.float32)[0], None


def _no_index_message(ws: Workspace, embedder: Embedder) -> str:
    """Why ``embedder`` cannot search the workspace; names the indexed model files of the same name."""
    namesakes = [
        m
        for m in ws.models.list("target")
        if m.name == embedder.name and m.file_hash != embedder.model_hash and ws.embeddings.count(m.id) > 0
    ]
    how = "main.py index WORKSPACE --model FILE"
    if not namesakes:
        return f"the workspace has no index for model {embedder.name!r}; run the index command first ({how})"
    other = ", ".join(
        f"SHA-256 {m.file_hash[:12]}..." + (f", {m.file_path}" if m.file_path else "") for m in namesakes
    )
    return (
        f"the workspace has an index for a model named {embedder.name!r}, but made with another file "
        f"({other}); this file (SHA-256 {embedder.model_hash[:12]}...) is a different model: search with that file, or "
        f"run the index command first with this one ({how})"
    )


def search(
    ws: Workspace,
    embedder: Embedder,
    query: str,
    top: int = 10,
    camera: str | None = None,
    rerank: bool = False,
    device: str | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    backend: str = "auto",
    nprobe: int | None = None,
) -> list[SearchHit]:
    """Rank the workspace's indexed crops by distance to a query crop id or image file.

    The query crop itself is left out of its own results. The search is logged (``search``).

    Args:
        ws: The workspace.
        embedder: The model (it must have indexed the workspace: see :func:`db.index.index_missing`).
        query: A crop id, or the path of an image file (embedded, not imported).
        top: How many results.
        camera: Only crops of this camera.
        rerank: Re-rank the top candidates by k-reciprocal neighbours.
        device: ``cpu``, ``cuda``; default CUDA when available.
        on_progress: Called with (rows done, rows) while the feature cache is refreshed (and while a
            faiss index is built).
        backend: ``auto``, ``exact``, ``faiss-flat``, ``faiss-ivf`` or ``faiss-ivfpq`` (see
            :func:`amd.search.search`); trained indexes are kept in the feature cache's ``faiss`` folder.
        nprobe: IVF cells visited per query (default: an eighth of them).
    """
    import numpy as np

    from amd.faiss_index import IndexParams
    from amd.search import rerank_top, resolve_backend
    from amd.search import search as search_gallery
    from db.features import cache_dir, load_features

    model = ws.models.by_hash(embedder.model_hash)
    if model is None or ws.embeddings.count(model.id) == 0:
        raise StoreError(_no_index_message(ws, embedder))
    feats = load_features(ws, model.id, on_progress=on_progress)
    qvec, query_crop = _query_vector(ws, embedder, model.id, query)
    rows = None
    if camera is not None:
        cam = ws.cameras.by_name(camera)
        if cam is None:
            raise NotFoundError(f"no camera called {camera!r}")
        wanted = np.asarray(ws.crops.ids(camera_id=cam.id), dtype=np.int64)
        rows = np.flatnonzero(np.isin(feats.crop_ids, wanted))
    if query_crop is not None:
        own = np.flatnonzero(feats.crop_ids == query_crop)
        base = rows if rows is not None else np.arange(len(feats.crop_ids))
        rows = np.setdiff1d(base, own, assume_unique=True) if len(own) else rows
    want = top if not rerank else max(top, 50)
    searched = len(feats) if rows is None else len(rows)
    used = resolve_backend(backend, searched, feats.dim, device)
    dist, idx = search_gallery(
        qvec[None, :],
        feats.vectors,
        want,
        backend=used,
        rows=rows,
        gallery_sq_norms=feats.sq_norms,
        index_cache=cache_dir(ws, model.id) / "faiss",
        index_params=IndexParams(nprobe=nprobe),
        device=device,
        on_index_progress=on_progress,
    )
    dist, idx = dist[0], idx[0]
    keep = idx >= 0
    dist, idx = dist[keep], idx[keep]
    scores: list[float | None] = [None] * len(idx)
    if rerank and len(idx) > 1:
        dist, idx, reranked = rerank_top(qvec, feats.vectors, idx, dist)
        scores = [float(x) for x in reranked]
    dist, idx = dist[:top], idx[:top]
    crop_ids = [int(feats.crop_ids[i]) for i in idx]
    infos = ws.crops.get_many(crop_ids)
    hits = [
        SearchHit(
            rank=r + 1,
            crop_id=c.id,
            distance=float(d),
            identity=c.identity,
            camera=c.camera,
            source_path=c.source_path,
            score=sc,
        )
        for r, (c, d, sc) in enumerate(zip(infos, dist, scores[:top], strict=True))
    ]
    ws.audit.record(
        "search",
        "crop",
        crop_ids,
        {
            "query": query if query_crop is None else int(query_crop),
            "model_id": model.id,
            "top": top,
            "camera": camera,
            "rerank": rerank,
            "backend": used,
            "distances": [round(h.distance, 6) for h in hits],
        },
    )
    return hits
