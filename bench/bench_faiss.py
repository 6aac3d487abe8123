"""faiss flat, IVF-Flat and IVF-PQ against the exact chunked search: recall@k and latency per query.

The gallery is clustered like re-identification embeddings (identities of about 50 crops around random
centres, plus noise), float16 and memory-mapped, as the workspace's feature cache is. Queries are new
points around the same centres. The exact search (:func:`amd.search.topk`, one query at a time, cached
squared norms) gives the reference top 100 and the baseline latency; each faiss backend is then built
(its build time is reported apart) and asked the same queries one at a time through
:func:`amd.search.search`, with k = 100. Recall@k is the share of the exact top k found in the backend's
top k; the ratio is the exact search's median latency over the backend's.

    python bench/bench_faiss.py [--n 1000000] [--dim 2048] [--queries 100] [--nprobe N] [--m M]

The default size needs about 4 GB for the gallery and 8 GB for each float32 index (flat, IVF-Flat); use
``--n`` / ``--dim`` for a smaller run, and ``--skip flat`` to leave one out.
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def make_gallery(path: Path, n: int, dim: int, seed: int = 0) -> np.ndarray:
    """(n, dim) float16 clustered vectors written to ``path``; returns the centres (float32)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((max(10, n // 50), dim), dtype=np.float32)
    mm = np.lib.format.open_memmap(path, mode="w+", dtype=np.float16, shape=(n, dim))
    step = 32768
    for s in range(0, n, step):
        m = min(step, n - s)
        noise = rng.standard_normal((m, dim), dtype=np.float32)
        noise *= 0.4
        noise += centres[rng.integers(len(centres), size=m)]
        mm[s : s + m] = noise
    mm.flush()
    del mm
    return centres


def _ms(times: list[float]) -> tuple[float, float]:
    a = np.asarray(times) * 1000
    return float(np.median(a)), float(np.percentile(a, 95))


def recall_at(truth: np.ndarray, got: np.ndarray, k: int) -> float:
    return float(np.mean([len(set(t[:k]) & set(g[:k])) / k for t, g in zip(truth, got, strict=True)]))


def main() -> int:
    import torch

    from amd.faiss_index import IndexParams, clear_memory_cache, get_index
    from amd.search import search, topk

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000, help="gallery rows (default 1,000,000)")
    ap.add_argument("--dim", type=int, default=2048, help="dimension (default 2048)")
    ap.add_argument("--queries", type=int, default=100, help="queries, each searched alone (default 100)")
    ap.add_argument("--nlist", type=int, help="IVF cells (default: power of two nearest sqrt(n))")
    ap.add_argument("--nprobe", type=int, help="cells visited per query (default nlist / 8)")
    ap.add_argument("--m", type=int, help="PQ sub-quantizers (default: see amd.faiss_index.default_m)")
    ap.add_argument("--nbits", type=int, default=8, help="bits per PQ code (default 8)")
    ap.add_argument("--refine", type=int, default=4, help="IVF-PQ candidates re-ranked exactly, x k")
    ap.add_argument("--train-size", type=int, help="rows sampled to train IVF / PQ")
    ap.add_argument(
        "--skip", nargs="*", default=[], choices=["flat", "ivf", "ivfpq"], help="backends left out"
    )
    ap.add_argument("--data", type=Path, help="reuse (or create) this .npy gallery")
    args = ap.parse_args()
    k_max = 100

    with tempfile.TemporaryDirectory() as tmp:
        data = args.data or Path(tmp) / "gallery.npy"
        t0 = time.perf_counter()
        rng = np.random.default_rng(1)
        if data.exists():
            g = np.load(data, mmap_mode="r")
            centres = np.asarray(g[rng.integers(len(g), size=args.queries)], np.float32)
        else:
            centres = make_gallery(data, args.n, args.dim)
            g = np.load(data, mmap_mode="r")
        n, dim = g.shape
        make_s = time.perf_counter() - t0
        q = centres[rng.integers(len(centres), size=args.queries)]
        q = (q + 0.4 * rng.standard_normal(q.shape)).astype(np.float32)
        norms = np.empty(n, np.float32)
        for s in range(0, n, 65536):
            part = np.asarray(g[s : s + 65536], np.float32)
            norms[s : s + 65536] = np.einsum("ij,ij->i", part, part)
        print(
            f"gallery: {n:,} x {dim} float16 clustered ({n * dim * 2 / 1024**3:.2f} GiB), made in {make_s:.0f} s"
        )
        print(f"{args.queries} queries, each searched alone, k = {k_max}, {torch.get_num_threads()} threads")

        topk(q[0], g, k_max, gallery_sq_norms=norms, device="cpu")  # warm-up
        times, truth = [], []
        for row in q:
            t = time.perf_counter()
            _, i = topk(row, g, k_max, gallery_sq_norms=norms, device="cpu")
            times.append(time.perf_counter() - t)
            truth.append(i[0])
        truth_a = np.asarray(truth)
        exact_med, exact_p95 = _ms(times)
        header = f"{'backend':<12} {'build s':>8} {'index GiB':>9} {'R@1':>6} {'R@10':>6} {'R@100':>6} "
        print(header + f"{'median ms':>10} {'p95 ms':>8} {'x exact':>8}")
        print(
            f"{'exact':<12} {'-':>8} {'-':>9} {1:6.3f} {1:6.3f} {1:6.3f} {exact_med:10.1f} {exact_p95:8.1f} {1:8.2f}"
        )

        params = IndexParams(
            nlist=args.nlist, nprobe=args.nprobe, m=args.m, nbits=args.nbits, refine=args.refine,
            train_size=args.train_size,
        )  # fmt: skip
        for short in ("flat", "ivf", "ivfpq"):
            if short in args.skip:
                continue
            backend = f"faiss-{short}"
            t = time.perf_counter()
            index = get_index(g, backend, params)
            build_s = time.perf_counter() - t
            p = index.params
            size_gib = _index_bytes(index.index) / 1024**3
            search(q[0], g, k_max, backend=backend, index_params=params)  # warm-up
            times, got = [], []
            for row in q:
                t = time.perf_counter()
                _, i = search(row, g, k_max, backend=backend, index_params=params)
                times.append(time.perf_counter() - t)
                got.append(i[0])
            got_a = np.asarray(got)
            med, p95 = _ms(times)
            r = [recall_at(truth_a, got_a, k) for k in (1, 10, 100)]
            print(
                f"{backend:<12} {build_s:8.1f} {size_gib:9.2f} {r[0]:6.3f} {r[1]:6.3f} {r[2]:6.3f} "
                f"{med:10.1f} {p95:8.1f} {exact_med / med:8.2f}"
            )
            if short != "flat":
                extra = f", m {p.m}, nbits {p.nbits}, refine {p.refine}" if short == "ivfpq" else ""
                print(f"{'':<12} nlist {p.nlist}, nprobe {p.nprobe}, trained on {p.train_size:,} rows{extra}")
            del index
            clear_memory_cache()
            gc.collect()
        del g
    return 0


def _index_bytes(index: object) -> int:
    """Bytes of the vectors or codes an index holds (what grows with the gallery)."""
    import faiss

    inner = faiss.downcast_index(index)
    if isinstance(inner, faiss.IndexFlat):
        return int(inner.ntotal) * int(inner.d) * 4
    invlists = inner.invlists
    return int(inner.ntotal) * (int(invlists.code_size) + 8)


if __name__ == "__main__":
    raise SystemExit(main())
