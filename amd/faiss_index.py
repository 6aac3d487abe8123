"""faiss indexes over a gallery matrix: exact (flat), IVF-Flat and IVF-PQ, cached on disk and rebuilt when stale.

:func:`amd.search.search` reaches this module when a faiss backend is asked for or chosen by
:func:`choose_backend`. The distance is the same as the exact search's: the Euclidean distance
``||q - g||_2``. faiss returns candidates; their distances are then re-computed exactly in float32 from the
gallery itself, so a result row always carries its true distance whatever index found it:

- ``faiss-flat`` (``IndexFlatL2``): every row is compared; the same neighbours as the exact search.
- ``faiss-ivf`` (``IndexIVFFlat``): rows are grouped in ``nlist`` k-means cells; a query visits the
  ``nprobe`` nearest cells. ``nprobe = nlist`` visits every cell and is exact.
- ``faiss-ivfpq`` (``IndexIVFPQ``): as IVF, but each row is stored as ``m`` codes of ``nbits`` bits
  (``m`` bytes a row at 8 bits, against ``4 * D`` bytes for IVF-Flat). The ``refine * k`` best candidates
  by the compressed distance are re-ranked by their exact distance, which recovers most of what the
  compression loses.

Automatic choice (:func:`choose_backend`): the exact chunked search below :data:`AUTO_EXACT_BELOW` rows (it
needs no index and answers in well under a second there), and on CUDA at any size; above it IVF-Flat while a
float32 copy of the rows searched fits in :data:`AUTO_IVF_MAX_BYTES`, IVF-PQ beyond.

Trained indexes are cached in a folder the caller names (the workspace keeps them next to its feature
matrix) as ``<backend>-<parameters>.faiss`` with a JSON sidecar holding the gallery's fingerprint
(:func:`fingerprint`: shape, dtype, the file's size and modification time, and the content of sampled rows
or, for an in-memory matrix up to :data:`_FULL_HASH_BYTES`, all of it). A sidecar that does not match the
gallery means the matrix changed, and the index is rebuilt. A flat index learns nothing, so it is only kept
in memory.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from amd.errors import AmdError

#: Backends of :func:`amd.search.search`.
BACKENDS = ("auto", "exact", "faiss-flat", "faiss-ivf", "faiss-ivfpq")
#: ``auto`` searches exactly below this many rows.
AUTO_EXACT_BELOW = 250_000
#: ``auto`` uses IVF-Flat while its float32 copy of the rows stays within this size, IVF-PQ beyond.
AUTO_IVF_MAX_BYTES = 2 * 1024**3
#: Rows added to (or read from) the gallery per step while building.
_BUILD_CHUNK = 65536
#: In-memory matrices up to this size are hashed whole for the fingerprint; larger ones are sampled.
_FULL_HASH_BYTES = 8 * 1024**2
#: Rows sampled for the fingerprint of a large or memory-mapped matrix.
_SAMPLE_ROWS = 256
#: Indexes kept in memory between searches (keyed by fingerprint and parameters).
_MEMO_SIZE = 2
_SIDECAR_VERSION = 1


class FaissIndexError(AmdError):
    """A faiss index cannot be built, loaded or searched with the given parameters."""


@dataclass(frozen=True)
class IndexParams:
    """Parameters of the IVF indexes; ``None`` means the default for the gallery's size.

    Attributes:
        nlist: k-means cells (default: the power of two nearest ``sqrt(N)``, at most ``N / 39``).
        nprobe: Cells visited per query (default ``max(1, nlist // 8)``); ``nlist`` is exact.
        m: PQ sub-quantizers; must divide the dimension (default: the largest divisor of ``D`` not above
            ``min(64, D / 16)``).
        nbits: Bits per PQ code (default 8).
        refine: IVF-PQ candidates re-ranked exactly, as a multiple of ``k`` (default 4; 1 turns it off).
        train_size: Rows sampled to train the cells and codebooks (default ``min(N, max(64 * nlist,
            39 * 2**nbits))``).
    """

    nlist: int | None = None
    nprobe: int | None = None
    m: int | None = None
    nbits: int = 8
    refine: int = 4
    train_size: int | None = None

    def resolved(self, n: int, dim: int) -> IndexParams:
        """These parameters with every default filled in for an ``n`` x ``dim`` gallery.

        Raises:
            FaissIndexError: A parameter is out of range.
        """
        nlist = self.nlist if self.nlist is not None else default_nlist(n)
        if nlist < 1 or nlist > max(1, n):
            raise FaissIndexError(f"nlist must be between 1 and the number of rows ({n}), got {nlist}")
        nprobe = self.nprobe if self.nprobe is not None else max(1, nlist // 8)
        if nprobe < 1:
            raise FaissIndexError(f"nprobe must be at least 1, got {nprobe}")
        m = self.m if self.m is not None else default_m(dim)
        if m < 1 or dim % m:
            raise FaissIndexError(f"m must divide the dimension {dim}, got {m}")
        if not 1 <= self.nbits <= 16:
            raise FaissIndexError(f"nbits must be between 1 and 16, got {self.nbits}")
        if self.refine < 1:
            raise FaissIndexError(f"refine must be at least 1, got {self.refine}")
        train = self.train_size if self.train_size is not None else max(64 * nlist, 39 * 2**self.nbits)
        return replace(self, nlist=nlist, nprobe=min(nprobe, nlist), m=m, train_size=max(1, min(n, train)))


def default_nlist(n: int) -> int:
    """The power of two nearest ``sqrt(n)``, kept at most ``n / 39`` (faiss wants 39 training rows a cell)."""
    if n < 39:
        return 1
    nlist = 2 ** round(math.log2(math.sqrt(n)))
    return max(1, min(nlist, n // 39))


def default_m(dim: int) -> int:
    """The largest divisor of ``dim`` not above ``min(64, dim / 16)`` (64 one-byte codes for ``D = 2048``)."""
    cap = max(1, min(64, dim // 16))
    return max(m for m in range(1, cap + 1) if dim % m == 0)


def faiss_available() -> bool:
    try:
        import faiss  # noqa: F401
    except ModuleNotFoundError:
        return False
    return True


def _faiss() -> Any:
    try:
        import faiss
    except ModuleNotFoundError:  # pragma: no cover - a dependency of the project
        raise FaissIndexError("faiss is not installed (pip install faiss-cpu)") from None
    return faiss


def choose_backend(
    n: int, dim: int, device: str | torch.device = "cpu", available: bool | None = None
) -> str:
    """The backend ``auto`` stands for, for ``n`` rows searched of dimension ``dim``.

    The rule: ``exact`` on CUDA, below :data:`AUTO_EXACT_BELOW` rows, or when faiss is missing;
    ``faiss-ivf`` while ``4 * n * dim`` bytes (its float32 copy) is at most :data:`AUTO_IVF_MAX_BYTES`;
    ``faiss-ivfpq`` beyond.
    """
    if available is None:
        available = faiss_available()
    if torch.device(device).type != "cpu" or n < AUTO_EXACT_BELOW or not available:
        return "exact"
    return "faiss-ivf" if 4 * n * dim <= AUTO_IVF_MAX_BYTES else "faiss-ivfpq"


def fingerprint(gallery: Any) -> str:
    """A short hash that changes when the gallery matrix changes.

    It covers the shape and dtype; for a memory-mapped file, the file's size and modification time; and
    the content: all of it for an in-memory matrix up to :data:`_FULL_HASH_BYTES`, otherwise
    :data:`_SAMPLE_ROWS` evenly spaced rows and the last one.
    """
    h = hashlib.blake2b(digest_size=16)
    shape = tuple(int(v) for v in gallery.shape)
    h.update(repr((shape, str(gallery.dtype))).encode())
    filename = getattr(gallery, "filename", None)
    if filename and os.path.exists(filename):
        st = os.stat(filename)
        h.update(repr((st.st_size, st.st_mtime_ns)).encode())
    n = shape[0]
    nbytes = int(np.prod(shape)) * np.dtype(str(gallery.dtype).replace("torch.", "")).itemsize
    if filename is None and nbytes <= _FULL_HASH_BYTES:
        h.update(np.ascontiguousarray(_numpy(gallery)).tobytes())
    elif n:
        sample = np.unique(np.linspace(0, n - 1, min(n, _SAMPLE_ROWS + 1)).astype(np.int64))
        h.update(np.ascontiguousarray(_numpy(gallery[sample])).tobytes())
    return h.hexdigest()


def _numpy(array: Any) -> np.ndarray:
    if isinstance(array, torch.Tensor):
        return array.detach().cpu().numpy()
    return np.asarray(array)


def _float_rows(gallery: Any, start: int, stop: int) -> np.ndarray:
    return np.ascontiguousarray(_numpy(gallery[start:stop]), dtype=np.float32)


@dataclass
class FaissIndex:
    """A built faiss index over a gallery, with what it was built from.

    Attributes:
        backend: ``faiss-flat``, ``faiss-ivf`` or ``faiss-ivfpq``.
        params: The resolved parameters (meaningless for ``faiss-flat``).
        fingerprint: :func:`fingerprint` of the gallery it indexes.
        index: The faiss index (row ``i`` of the gallery has id ``i``).
        loaded: Whether it came from the disk cache rather than being built now.
    """

    backend: str
    params: IndexParams
    fingerprint: str
    index: Any
    loaded: bool = False

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    def search(
        self, queries: np.ndarray, k: int, rows: np.ndarray | None = None, nprobe: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """faiss's own answer: squared distances and ids (Q, k), ``-1`` where fewer rows were found."""
        faiss = _faiss()
        q = np.ascontiguousarray(queries, dtype=np.float32)
        selector = None if rows is None else faiss.IDSelectorBatch(np.ascontiguousarray(rows, dtype=np.int64))
        if self.backend == "faiss-flat":
            params = faiss.SearchParameters(sel=selector) if selector is not None else None
        else:
            probe = int(nprobe or self.params.nprobe or 1)
            params = faiss.SearchParametersIVF(nprobe=min(probe, int(self.params.nlist or 1)))
            if selector is not None:
                params.sel = selector
        d, i = self.index.search(q, int(k), params=params)
        return d, i


def _train_sample(gallery: Any, size: int) -> np.ndarray:
    n = gallery.shape[0]
    if size >= n:
        return _float_rows(gallery, 0, n)
    pick = np.sort(np.random.default_rng(0).choice(n, size, replace=False))
    return np.ascontiguousarray(_numpy(gallery[pick]), dtype=np.float32)


def build_index(
    gallery: Any,
    backend: str,
    params: IndexParams | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> FaissIndex:
    """Build (train and fill) a faiss index over every row of ``gallery``.

    Args:
        gallery: (N, D) float16 or float32 array, memory map or tensor; read in chunks.
        backend: ``faiss-flat``, ``faiss-ivf`` or ``faiss-ivfpq``.
        params: IVF parameters; defaults for the gallery's size.
        on_progress: Called with (rows added, rows) while filling.

    Raises:
        FaissIndexError: Unknown backend, an empty gallery or parameters out of range.
    """
    faiss = _faiss()
    if gallery.ndim != 2:
        raise FaissIndexError(f"the gallery must be a 2-D matrix, got shape {tuple(gallery.shape)}")
    n, dim = (int(v) for v in gallery.shape)
    if n == 0:
        raise FaissIndexError("cannot build an index over an empty gallery")
    resolved = (params or IndexParams()).resolved(n, dim)
    if backend == "faiss-ivfpq" and n < 2**resolved.nbits:
        raise FaissIndexError(
            f"IVF-PQ with nbits={resolved.nbits} learns {2**resolved.nbits} codes per sub-quantizer and needs "
            f"at least as many rows; the gallery has {n}: use another backend (exact, faiss-flat or faiss-ivf), "
            "or from Python a smaller IndexParams.nbits"
        )
    if backend == "faiss-flat":
        index = faiss.IndexFlatL2(dim)
    elif backend in ("faiss-ivf", "faiss-ivfpq"):
        quantizer = faiss.IndexFlatL2(dim)
        if backend == "faiss-ivf":
            index = faiss.IndexIVFFlat(quantizer, dim, resolved.nlist, faiss.METRIC_L2)
        else:
            index = faiss.IndexIVFPQ(quantizer, dim, resolved.nlist, resolved.m, resolved.nbits)
        index.cp.niter = 10
        # faiss's Python constructor keeps ``quantizer`` alive as long as ``index``.
        index.train(_train_sample(gallery, int(resolved.train_size or n)))
    else:
        raise FaissIndexError(f"unknown faiss backend {backend!r}; expected one of {BACKENDS[2:]}")
    for start in range(0, n, _BUILD_CHUNK):
        stop = min(start + _BUILD_CHUNK, n)
        index.add(_float_rows(gallery, start, stop))
        if on_progress is not None:
            on_progress(stop, n)
    return FaissIndex(backend, resolved, fingerprint(gallery), index)


def _cache_name(backend: str, p: IndexParams) -> str:
    if backend == "faiss-ivf":
        return f"{backend}-nlist{p.nlist}"
    return f"{backend}-nlist{p.nlist}-m{p.m}-nbits{p.nbits}"


def _build_key(p: IndexParams) -> tuple[Any, ...]:
    """The parameters that shape the index (``nprobe`` and ``refine`` only matter at search time)."""
    return (p.nlist, p.m, p.nbits, p.train_size)


_memo: OrderedDict[tuple[Any, ...], FaissIndex] = OrderedDict()


def get_index(
    gallery: Any,
    backend: str,
    params: IndexParams | None = None,
    cache_dir: str | Path | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> FaissIndex:
    """The index of ``gallery``: from memory, from ``cache_dir`` when it matches the gallery, else built.

    A trained index built here is written to ``cache_dir`` (temporary name, then renamed) with its sidecar.
    """
    n, dim = (int(v) for v in gallery.shape)
    resolved = (params or IndexParams()).resolved(max(n, 1), dim)
    fp = fingerprint(gallery)
    key = (backend, fp, _build_key(resolved) if backend != "faiss-flat" else None)
    found = _memo.get(key)
    if found is not None:
        _memo.move_to_end(key)
        return replace(found, params=replace(found.params, nprobe=resolved.nprobe, refine=resolved.refine))
    built: FaissIndex | None = None
    folder = Path(cache_dir) if cache_dir is not None and backend != "faiss-flat" else None
    if folder is not None:
        built = _load_cached(folder, backend, resolved, fp)
    if built is None:
        built = build_index(gallery, backend, resolved, on_progress)
        if folder is not None:
            _save_cached(folder, built)
    _memo[key] = built
    while len(_memo) > _MEMO_SIZE:
        _memo.popitem(last=False)
    return built


def clear_memory_cache() -> None:
    """Forget the indexes kept in memory (the disk cache is left as it is)."""
    _memo.clear()


def _load_cached(folder: Path, backend: str, p: IndexParams, fp: str) -> FaissIndex | None:
    name = _cache_name(backend, p)
    index_path, side_path = folder / f"{name}.faiss", folder / f"{name}.json"
    try:
        side = json.loads(side_path.read_text())
    except (OSError, ValueError):
        return None
    if (
        not isinstance(side, dict)
        or side.get("version") != _SIDECAR_VERSION
        or side.get("fingerprint") != fp
        or side.get("backend") != backend
        or tuple(side.get("build", ())) != _build_key(p)
    ):
        return None
    try:
        index = _faiss().read_index(str(index_path))
    except RuntimeError:
        return None  # a damaged file: rebuilt and replaced
    return FaissIndex(backend, p, fp, index, loaded=True)


def _save_cached(folder: Path, built: FaissIndex) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    name = _cache_name(built.backend, built.params)
    tmp = folder / f".{name}.{os.getpid()}.tmp"
    try:
        _faiss().write_index(built.index, str(tmp))
        os.replace(tmp, folder / f"{name}.faiss")
    finally:
        tmp.unlink(missing_ok=True)
    side = {
        "version": _SIDECAR_VERSION,
        "backend": built.backend,
        "fingerprint": built.fingerprint,
        "build": list(_build_key(built.params)),
        "params": asdict(built.params),
        "rows": built.ntotal,
    }
    side_tmp = folder / f".{name}.json.tmp"
    side_tmp.write_text(json.dumps(side))
    os.replace(side_tmp, folder / f"{name}.json")


def exact_rescore(
    queries: torch.Tensor, gallery: Any, candidates: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best of each query's candidates by exact float32 Euclidean distance.

    Args:
        queries: (Q, D) float32 on the CPU.
        gallery: (N, D) matrix the candidate ids index.
        candidates: (Q, C) int64 ids, ``-1`` for none.
        k: Results per query.

    Returns:
        ``(distances, indices)`` (Q, k) ascending; ``inf`` and ``-1`` pad a query with fewer candidates.
    """
    nq = candidates.shape[0]
    dist = np.full((nq, k), np.inf, dtype=np.float32)
    idx = np.full((nq, k), -1, dtype=np.int64)
    valid = candidates >= 0
    uniq = np.unique(candidates[valid])
    if not len(uniq):
        return dist, idx
    # One sorted read of every candidate row (fast on a memory map), then per-query gathers.
    rows = torch.from_numpy(np.ascontiguousarray(_numpy(gallery[uniq]), dtype=np.float32))
    for j in range(nq):
        cand = candidates[j][valid[j]]
        if not len(cand):
            continue
        g = rows[torch.from_numpy(np.searchsorted(uniq, cand))]
        d = (g - queries[j]).norm(dim=1)
        take = min(k, len(cand))
        best, pos = torch.topk(d, take, largest=False, sorted=True)
        dist[j, :take] = best.numpy()
        idx[j, :take] = cand[pos.numpy()]
    return dist, idx


def faiss_topk(
    queries: torch.Tensor,
    gallery: Any,
    k: int,
    backend: str,
    *,
    rows: np.ndarray | None = None,
    params: IndexParams | None = None,
    cache_dir: str | Path | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`amd.search.topk`'s answer through a faiss index (see the module docstring).

    Returns:
        ``(distances, indices)`` float32 and int64 (Q, k) ascending by exact distance; where the index
        finds fewer than ``k`` rows (IVF with few cells visited, or a small ``rows``) the rest is ``inf``
        and ``-1``.
    """
    index = get_index(gallery, backend, params, cache_dir, on_progress)
    p = index.params
    # A few extra candidates absorb float rounding in faiss's distances; IVF-PQ's are re-ranked widely.
    fetch = k * int(p.refine) if backend == "faiss-ivfpq" else k + 16
    fetch = min(fetch, index.ntotal if rows is None else len(rows))
    _, cand = index.search(queries.numpy(), max(1, fetch), rows=rows)
    return exact_rescore(queries, gallery, cand, k)
