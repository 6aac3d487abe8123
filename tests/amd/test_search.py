"""Chunked top-k search and k-reciprocal re-ranking, against brute force."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from amd.search import k_reciprocal_distance, rerank_top, topk


def _brute(q: np.ndarray, g: np.ndarray) -> np.ndarray:
    return np.sqrt(((q[:, None, :].astype(np.float64) - g[None].astype(np.float64)) ** 2).sum(-1))


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.standard_normal((4, 32)).astype(np.float32), rng.standard_normal((3000, 32)).astype(np.float16)


@pytest.mark.parametrize("chunk", [7, 97, 1000, 5000])
@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_topk_equals_brute_force(data, chunk: int, dtype: type) -> None:
    q, g = data
    g = g.astype(dtype)
    full = _brute(q, g)
    d, i = topk(q, g, 7, chunk_size=chunk, device="cpu")
    assert i.shape == (4, 7) and i.dtype == np.int64 and d.dtype == np.float32
    assert np.array_equal(i, np.argsort(full, axis=1, kind="stable")[:, :7])
    assert np.allclose(d, np.take_along_axis(full, i, 1), atol=1e-4)


def test_cached_norms_rows_subset_and_short_gallery(data) -> None:
    q, g = data
    norms = (g.astype(np.float32) ** 2).sum(1)
    rows = np.arange(5, 3000, 13)
    d, i = topk(q[0], g, 4, rows=rows, gallery_sq_norms=norms, chunk_size=50)
    full = _brute(q[:1], g)[0]
    assert i[0].tolist() == rows[np.argsort(full[rows])[:4]].tolist()
    d, i = topk(q[:2], g[:3], 10)
    assert i.shape == (2, 3) and sorted(i[0].tolist()) == [0, 1, 2]
    assert topk(q, g, 5, rows=np.array([], dtype=np.int64))[1].shape == (4, 0)
    with pytest.raises(ValueError, match="does not match"):
        topk(q[:, :8], g, 3)


def test_large_values_do_not_overflow_half_precision() -> None:
    rng = np.random.default_rng(1)
    g = (rng.standard_normal((500, 64)) * 200).astype(np.float16)
    q = (rng.standard_normal((1, 64)) * 200).astype(np.float32)
    d, i = topk(q, g, 3, chunk_size=128)
    full = _brute(q, g)[0]
    assert i[0].tolist() == np.argsort(full)[:3].tolist() and np.isfinite(d).all()


def test_never_reads_more_than_a_chunk_at_once(data) -> None:
    q, g = data
    seen: list[int] = []

    class Recording:
        dtype = g.dtype
        shape = g.shape
        ndim = 2

        def __getitem__(self, key):
            part = g[key]
            seen.append(len(part))
            return part

    topk(q, Recording(), 5, chunk_size=256)
    assert max(seen) <= 256 and sum(seen[: int(np.ceil(3000 / 256))]) == 3000


def test_tensor_input_and_torch_gallery(data) -> None:
    q, g = data
    d1, i1 = topk(torch.from_numpy(q), torch.from_numpy(g.astype(np.float32)), 5, chunk_size=700)
    d2, i2 = topk(q, g.astype(np.float32), 5)
    assert np.array_equal(i1, i2) and np.allclose(d1, d2)


def test_k_reciprocal_reranking_prefers_mutual_neighbours() -> None:
    # Query at the origin. Rows 1-3: a tight cluster (the same person) just beyond row 4, an impostor
    # that is the plain nearest neighbour but whose own nearest neighbours are its cluster (rows 5-7):
    # the query is not among the impostor's neighbours, so the impostor is not a reciprocal neighbour.
    pts = np.array(
        [[0.0, 0.0], [1.0, 0.0], [1.1, 0.05], [1.1, -0.05],
         [-0.95, 0.0], [-1.6, 0.0], [-1.65, 0.05], [-1.65, -0.05]]
    )  # fmt: skip
    plain = np.linalg.norm(pts[1:] - pts[0], axis=1)
    assert np.argmin(plain) + 1 == 4
    scores = k_reciprocal_distance(pts, k1=3, k2=1, lambda_value=0.0)
    assert scores.shape == (7,) and np.all((scores >= 0) & (scores <= 1))
    assert scores[3] == pytest.approx(1.0)  # the impostor shares no reciprocal neighbour with the query
    d, idx, sc = rerank_top(pts[0], pts, np.arange(1, 8), plain, k1=3, k2=1, lambda_value=0.0)
    assert sorted(idx[:3].tolist()) == [1, 2, 3] and np.all(np.diff(sc) >= 0)
    assert d.tolist() == plain[idx - 1].astype(np.float32).tolist()


def test_rerank_with_full_weight_on_the_original_distance_keeps_the_order() -> None:
    rng = np.random.default_rng(3)
    g = rng.standard_normal((40, 8)).astype(np.float32)
    q = rng.standard_normal(8).astype(np.float32)
    d, i = topk(q, g, 20)
    _, idx, _ = rerank_top(q, g, i[0], d[0], lambda_value=1.0)
    assert idx.tolist() == i[0].tolist()
