"""Top-k retrieval over a gallery matrix, processed in chunks, and k-reciprocal re-ranking.

The gallery can be far larger than memory allows to expand (1,000,000 x 2048 float16 is 4 GB, and a
query batch x gallery distance matrix in float32 would be larger still). :func:`topk` walks it in
chunks of rows and keeps only a running top list per query, so memory stays at one chunk plus
``Q x k`` values. The distance is the plain Euclidean distance ``||q - g||_2``.

Float16 galleries on a CPU are scored with torch's half-precision matrix-vector kernel, which reads
the stored halves directly (converting 4 GB to float32 first costs ten times more than the product
itself). Its rounding is then removed: the best ``shortlist`` candidates of each query are re-scored
exactly in float32, so the returned distances and order are exact unless more than ``shortlist - k``
gallery rows sit within the half-precision rounding (about 1e-3 relative) of the k-th distance. On
CUDA, and for float32 galleries, every chunk is scored exactly.

:func:`search` is the entry point for callers: the same arguments and answer as :func:`topk`, plus a
``backend``. ``"exact"`` is :func:`topk`; ``"faiss-flat"``, ``"faiss-ivf"`` and ``"faiss-ivfpq"`` go through a
faiss index (:mod:`amd.faiss_index`, cached in ``index_cache``); ``"auto"`` picks by the number of rows
searched (:func:`amd.faiss_index.choose_backend`: exact below 250,000 rows or on CUDA, IVF-Flat while its
float32 copy fits in 2 GiB, IVF-PQ beyond).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    from amd.faiss_index import IndexParams

#: Rows per chunk: large enough to amortise per-call overhead, small enough to stay in cache.
DEFAULT_CHUNK = 16384
#: Half-precision scores are kept below this magnitude (float16 overflows at 65504).
_F16_SAFE = 16384.0


def _device(device: str | torch.device | None) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _as_tensor(array: Any) -> torch.Tensor:
    if isinstance(array, torch.Tensor):
        return array
    arr = np.asarray(array)
    if not arr.flags.writeable:
        # Read-only memory maps are only read here; torch warns because it cannot promise that.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return torch.from_numpy(arr)
    return torch.from_numpy(arr)


def _rows(gallery: Any, rows: np.ndarray | None, start: int, stop: int) -> Any:
    if rows is None:
        return gallery[start:stop]
    return gallery[rows[start:stop]]


def _checked(queries: Any, gallery: Any, rows: Any) -> tuple[torch.Tensor, np.ndarray | None, int]:
    """Queries as a float32 (Q, D) tensor, ``rows`` as int64 indices and the number of rows searched.

    Raises:
        ValueError: The gallery is not (G, D) for the queries' dimension D.
    """
    q = _as_tensor(queries).to(dtype=torch.float32)
    if q.ndim == 1:
        q = q[None, :]
    if gallery.ndim != 2 or gallery.shape[1] != q.shape[1]:
        raise ValueError(
            f"gallery of shape {tuple(gallery.shape)} does not match queries of dimension {q.shape[1]}"
        )
    if rows is not None:
        rows = np.asarray(rows, dtype=np.int64)
    return q, rows, gallery.shape[0] if rows is None else len(rows)


def _merge(
    best_d: torch.Tensor | None, best_i: torch.Tensor | None, d: torch.Tensor, i: torch.Tensor, keep: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Keep the ``keep`` smallest of the running list and a chunk's candidates, per query."""
    if best_d is not None and best_i is not None:
        d = torch.cat([best_d, d], dim=1)
        i = torch.cat([best_i, i], dim=1)
    keep = min(keep, d.shape[1])
    top_d, pos = torch.topk(d, keep, dim=1, largest=False, sorted=False)
    return top_d, torch.gather(i, 1, pos)


def topk(
    queries: Any,
    gallery: Any,
    k: int,
    *,
    rows: np.ndarray | None = None,
    gallery_sq_norms: Any | None = None,
    chunk_size: int = DEFAULT_CHUNK,
    device: str | torch.device | None = None,
    shortlist: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest gallery rows of each query, by Euclidean distance.

    Args:
        queries: (Q, D) or (D,) float array or tensor.
        gallery: (G, D) float16 or float32 array (a ``np.memmap`` works and is read chunk by chunk) or tensor.
        k: How many neighbours per query; fewer come back when fewer rows are searched.
        rows: Restrict the search to these gallery row indices (e.g. one camera's crops).
        gallery_sq_norms: (G,) squared row norms, if cached; computed per chunk otherwise (slower).
        chunk_size: Gallery rows per step.
        device: ``"cpu"``, ``"cuda"``...; default CUDA when available.
        shortlist: Candidates per query re-scored exactly on the half-precision path
            (default ``2k + 64``).

    Returns:
        ``(distances, indices)``: float32 (Q, k') ascending and int64 (Q, k') gallery row indices,
        with ``k' = min(k, rows searched)``.
    """
    dev = _device(device)
    q, rows, n = _checked(queries, gallery, rows)
    q = q.to(dev)
    nq = q.shape[0]
    if n == 0 or k <= 0:
        return np.zeros((nq, 0), np.float32), np.zeros((nq, 0), np.int64)
    k = min(k, n)
    half = str(getattr(gallery, "dtype", "")).endswith("float16") and dev.type == "cpu"
    keep = min(n, shortlist or 2 * k + 64) if half else k
    norms = None if gallery_sq_norms is None else _as_tensor(gallery_sq_norms)
    q_norm = q.norm(dim=1)

    best_d: torch.Tensor | None = None
    best_i: torch.Tensor | None = None
    with torch.inference_mode():
        for start in range(0, n, chunk_size):
            stop = min(start + chunk_size, n)
            chunk = _as_tensor(_rows(gallery, rows, start, stop)).to(dev)
            index = (
                torch.arange(start, stop, device=dev)
                if rows is None
                else torch.from_numpy(rows[start:stop]).to(dev)
            )
            if norms is not None:
                gg = (
                    (norms[start:stop] if rows is None else norms[torch.from_numpy(rows[start:stop])])
                    .to(dev)
                    .float()
                )
            else:
                gg = torch.linalg.vector_norm(chunk, dim=1, dtype=torch.float32) ** 2
            if half:
                # Scale each query so that no half-precision product can overflow.
                g_max = float(gg.max().sqrt()) or 1.0
                scale = torch.clamp(_F16_SAFE / (q_norm * g_max + 1e-12), max=1.0)
                dots = (chunk @ (q * scale[:, None]).half().T).float().T / scale[:, None]
            else:
                dots = q @ chunk.float().T
            # ||q||^2 is the same for every row of a query, so it is left out of the ranking.
            d = gg[None, :] - 2.0 * dots
            best_d, best_i = _merge(best_d, best_i, d, index.expand(nq, -1), keep)

    assert best_d is not None and best_i is not None
    if half:
        cand = best_i.cpu().numpy()
        exact = torch.empty(cand.shape, dtype=torch.float32)
        for j in range(nq):
            g = _as_tensor(np.asarray(gallery[np.sort(cand[j])])).float()
            order = np.argsort(np.argsort(cand[j]))
            exact[j] = (g - q[j].cpu()).norm(dim=1)[torch.from_numpy(order)]
        dist, pos = torch.topk(exact, k, dim=1, largest=False, sorted=True)
        idx = torch.gather(torch.from_numpy(cand), 1, pos)
        return dist.numpy(), idx.numpy()
    sq = torch.clamp(best_d + (q_norm**2)[:, None], min=0.0)
    dist, pos = torch.topk(sq, k, dim=1, largest=False, sorted=True)
    idx = torch.gather(best_i, 1, pos)
    return dist.sqrt().cpu().numpy(), idx.cpu().numpy()


def resolve_backend(backend: str, n: int, dim: int, device: str | torch.device | None = None) -> str:
    """The backend :func:`search` uses for ``n`` rows of dimension ``dim``: ``backend`` itself, or what
    ``"auto"`` stands for.

    Raises:
        ValueError: ``backend`` is not one of :data:`amd.faiss_index.BACKENDS`.
    """
    from amd.faiss_index import BACKENDS, choose_backend

    if backend not in BACKENDS:
        raise ValueError(f"unknown search backend {backend!r}; expected one of {', '.join(BACKENDS)}")
    if backend != "auto":
        return backend
    return choose_backend(n, dim, _device(device))


def search(
    queries: Any,
    gallery: Any,
    k: int,
    *,
    backend: str = "auto",
    rows: np.ndarray | None = None,
    gallery_sq_norms: Any | None = None,
    index_cache: str | Path | None = None,
    index_params: IndexParams | None = None,
    chunk_size: int = DEFAULT_CHUNK,
    device: str | torch.device | None = None,
    shortlist: int | None = None,
    on_index_progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest gallery rows of each query by Euclidean distance, exactly or through faiss.

    Args:
        queries: (Q, D) or (D,) float array or tensor.
        gallery: (G, D) float16 or float32 array, memory map or tensor.
        k: Neighbours per query.
        backend: ``"auto"``, ``"exact"``, ``"faiss-flat"``, ``"faiss-ivf"`` or ``"faiss-ivfpq"`` (see the
            module docstring; :func:`resolve_backend` tells what ``"auto"`` picks).
        rows: Restrict the search to these gallery row indices.
        gallery_sq_norms: (G,) squared row norms, if cached (exact backend).
        index_cache: Folder where trained faiss indexes of this gallery are kept and looked up; ``None``
            keeps them in memory only.
        index_params: nlist / nprobe / m / nbits / refine of the IVF backends.
        chunk_size: Gallery rows per step (exact backend).
        device: ``"cpu"``, ``"cuda"``... (faiss backends run on the CPU).
        shortlist: See :func:`topk` (exact backend).
        on_index_progress: Called with (rows added, rows) while a faiss index is built.

    Returns:
        ``(distances, indices)``: float32 (Q, k') ascending and int64 (Q, k') gallery row indices,
        ``k' = min(k, rows searched)``; the distances are exact whatever the backend. An IVF search that
        finds fewer than ``k'`` rows pads with ``inf`` and ``-1``.

    Raises:
        ValueError: Unknown backend, or shapes that do not match.
        amd.faiss_index.FaissIndexError: IVF parameters out of range.
    """
    q, rows, n = _checked(queries, gallery, rows)
    chosen = resolve_backend(backend, n, int(gallery.shape[1]), device)
    if chosen == "exact" or n == 0 or k <= 0:
        return topk(
            q,
            gallery,
            k,
            rows=rows,
            gallery_sq_norms=gallery_sq_norms,
            chunk_size=chunk_size,
            device=device,
            shortlist=shortlist,
        )
    from amd.faiss_index import faiss_topk

    return faiss_topk(
        q.cpu().contiguous(),
        gallery,
        min(k, n),
        chosen,
        rows=rows,
        params=index_params,
        cache_dir=index_cache,
        on_progress=on_index_progress,
    )


def _k_reciprocal(rank: np.ndarray, i: int, k: int) -> np.ndarray:
    """Members of ``i``'s k nearest that also have ``i`` among their k nearest (self included)."""
    forward = rank[i, : k + 1]
    backward = rank[forward, : k + 1]
    return forward[(backward == i).any(axis=1)]


def k_reciprocal_distance(
    features: np.ndarray, k1: int = 20, k2: int = 6, lambda_value: float = 0.3
) -> np.ndarray:
    """Re-ranked distances from row 0 (the query) to rows 1..n-1, by k-reciprocal encoding.

    Zhong et al., "Re-ranking Person Re-identification with k-reciprocal Encoding" (CVPR 2017):
    each item is encoded by its (expanded) k-reciprocal neighbours, weighted by a Gaussian of the
    distance; the Jaccard distance of the encodings is blended with the original distance.

    Args:
        features: (n, D) the query first, then its candidates.
        k1: Neighbourhood size of the reciprocal sets (clamped to n - 1).
        k2: Neighbours averaged in the local query expansion (clamped to n).
        lambda_value: Weight of the original distance in the blend.

    Returns:
        (n - 1,) re-ranked distances of the candidates, in their input order.
    """
    x = np.asarray(features, dtype=np.float64)
    n = x.shape[0]
    k1 = max(1, min(k1, n - 1))
    k2 = max(1, min(k2, n))
    sq = (x * x).sum(1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * x @ x.T, 0.0)
    np.fill_diagonal(d2, 0.0)
    original = d2 / np.maximum(d2.max(axis=1, keepdims=True), 1e-12)
    rank = np.argsort(original, axis=1, kind="stable")

    v = np.zeros((n, n))
    half_k = max(1, int(round(k1 / 2)))
    for i in range(n):
        recip = _k_reciprocal(rank, i, k1)
        expanded = recip
        for j in recip:
            cand = _k_reciprocal(rank, int(j), half_k)
            # A neighbour's own reciprocal set joins when it mostly agrees with i's.
            if len(np.intersect1d(cand, recip)) > 2.0 / 3.0 * len(cand):
                expanded = np.union1d(expanded, cand)
        weights = np.exp(-original[i, expanded])
        v[i, expanded] = weights / weights.sum()
    if k2 > 1:
        v = v[rank[:, :k2]].mean(axis=1)
    shared = np.minimum(v[0][None, :], v[1:]).sum(axis=1)
    jaccard = 1.0 - shared / np.maximum(2.0 - shared, 1e-12)
    return (1.0 - lambda_value) * jaccard + lambda_value * original[0, 1:]


def rerank_top(
    query: Any,
    gallery: Any,
    indices: np.ndarray,
    distances: np.ndarray,
    k1: int = 20,
    k2: int = 6,
    lambda_value: float = 0.3,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Re-order a query's top candidates by k-reciprocal re-ranking.

    Args:
        query: (D,) the query vector.
        gallery: (G, D) the gallery (only the candidates' rows are read).
        indices: (N,) candidate row indices, e.g. from :func:`topk`.
        distances: (N,) their Euclidean distances.

    Returns:
        ``(distances, indices, scores)`` re-ordered by the re-ranked score (ascending): the original
        Euclidean distances, the row indices and the re-ranked scores.
    """
    indices = np.asarray(indices, dtype=np.int64)
    if len(indices) < 2:
        return np.asarray(distances, np.float32), indices, np.asarray(distances, np.float64)
    feats = np.vstack(
        [np.asarray(query, np.float32)[None, :], np.asarray(gallery[np.sort(indices)], np.float32)]
    )
    # Rows were read in sorted order (fast on a memory map); put them back in candidate order.
    back = np.argsort(np.argsort(indices))
    feats = np.vstack([feats[:1], feats[1:][back]])
    scores = k_reciprocal_distance(feats, k1, k2, lambda_value)
    order = np.argsort(scores, kind="stable")
    return np.asarray(distances, np.float32)[order], indices[order], scores[order]
