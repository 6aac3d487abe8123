"""Evaluation metrics, pure numpy: retrieval (CMC, mAP, mINP) and explanation quality (X-mAP, ADRE).

Retrieval follows the Market-1501 protocol (see :func:`evaluate_retrieval`). The explanation metrics
follow the AMD paper: over query x gallery pairs with ground-truth attribute vectors,

- X-mAP_e ranks the attributes of each pair by share, descending, with the differing attributes relevant;
- X-mAP_c ranks them ascending with the common attributes relevant; for a pair whose M attributes are all
  common it ranks descending and counts every share above 2/M as wrong (irrelevant);
- ADRE is the mean of |d - (1/M) sum_m d_m| / d x 100 (in percent).

Ties in a ranking keep the attributes' schema order. :func:`evaluate_explanations` computes all of them
from embeddings in chunks of queries, never holding a Q x G x M array.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "ExplanationAccumulator",
    "ExplanationResult",
    "RetrievalResult",
    "adre",
    "euclidean_distances",
    "evaluate_explanations",
    "evaluate_retrieval",
    "protocol_pair_filter",
    "x_map_c",
    "x_map_e",
]


@dataclass(frozen=True)
class RetrievalResult:
    """Retrieval figures, fractions in [0, 1].

    Attributes:
        cmc: (max_rank,) cmc[k - 1] is Rank-k, the fraction of queries with a true match in the top k.
        mAP: Mean average precision.
        mINP: Mean inverse negative penalty (Ye et al., 2021): mean of num_matches / rank of the last match.
        num_queries: Queries given.
        num_valid: Queries with at least one valid match, over which the means run.
    """

    cmc: np.ndarray = field(repr=False)
    mAP: float
    mINP: float
    num_queries: int
    num_valid: int

    def rank(self, k: int) -> float:
        """Rank-k accuracy (k >= 1)."""
        return float(self.cmc[min(k, len(self.cmc)) - 1])

    def as_dict(self, ranks: tuple[int, ...] = (1, 5, 10)) -> dict[str, float]:
        out = {f"rank{k}": self.rank(k) for k in ranks}
        out.update(mAP=self.mAP, mINP=self.mINP)
        return out


def evaluate_retrieval(
    distmat: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray,
    g_camids: np.ndarray,
    max_rank: int = 50,
    chunk_size: int = 256,
) -> RetrievalResult:
    """CMC, mAP and mINP under the Market-1501 protocol.

    For each query, gallery entries with the query's identity *and* the query's camera are removed before
    ranking (they would be trivial matches), and so are junk entries (identity -1). Distractors (identity
    0 in Market-1501) stay as negatives. Queries left with no true match are skipped; the means run over
    the remaining ones. Ties in distance keep gallery order (stable sort).

    Args:
        distmat: (Q, G) distances, smaller is more similar.
        q_pids, g_pids: (Q,), (G,) identities.
        q_camids, g_camids: (Q,), (G,) cameras.
        max_rank: Length of the CMC curve.
        chunk_size: Queries sorted at a time (bounds memory to chunk_size x G indices).

    Returns:
        A :class:`RetrievalResult`; all zeros when no query has a valid match.
    """
    distmat = np.asarray(distmat)
    q_pids, g_pids = np.asarray(q_pids), np.asarray(g_pids)
    q_camids, g_camids = np.asarray(q_camids), np.asarray(g_camids)
    num_q, num_g = distmat.shape
    if q_pids.shape != (num_q,) or q_camids.shape != (num_q,):
        raise ValueError(f"query ids/cameras must have shape ({num_q},)")
    if g_pids.shape != (num_g,) or g_camids.shape != (num_g,):
        raise ValueError(f"gallery ids/cameras must have shape ({num_g},)")
    cmc_sum = np.zeros(max_rank, dtype=np.float64)
    ap_sum = 0.0
    inp_sum = 0.0
    num_valid = 0
    for start in range(0, num_q, chunk_size):
        stop = min(start + chunk_size, num_q)
        order = np.argsort(distmat[start:stop], axis=1, kind="stable")
        for row, qi in enumerate(range(start, stop)):
            idx = order[row]
            keep = ~((g_pids[idx] == q_pids[qi]) & (g_camids[idx] == q_camids[qi]))
            keep &= g_pids[idx] != -1
            matches = g_pids[idx][keep] == q_pids[qi]
            num_rel = int(matches.sum())
            if num_rel == 0:
                continue
            num_valid += 1
            hits = np.flatnonzero(matches)
            first = hits[0]
            if first < max_rank:
                cmc_sum[first:] += 1.0
            precision_at_hits = np.arange(1, num_rel + 1) / (hits + 1.0)
            ap_sum += float(precision_at_hits.mean())
            inp_sum += num_rel / (hits[-1] + 1.0)
    if num_valid == 0:
        return RetrievalResult(np.zeros(max_rank), 0.0, 0.0, num_q, 0)
    return RetrievalResult(cmc_sum / num_valid, ap_sum / num_valid, inp_sum / num_valid, num_q, num_valid)


# ------------------------------------------------------------------------------- explanation metrics


def _average_precision_rows(scores: np.ndarray, relevant: np.ndarray) -> np.ndarray:
    """AP of each row's ranking by descending score; rows with nothing relevant give NaN.

    Args:
        scores: (P, M) ranking scores (higher first; ties keep column order).
        relevant: (P, M) bool.

    Returns:
        (P,) average precision.
    """
    order = np.argsort(-scores, axis=1, kind="stable")
    rel = np.take_along_axis(relevant, order, axis=1).astype(np.float64)
    hits = np.cumsum(rel, axis=1)
    precision = hits / np.arange(1, scores.shape[1] + 1)
    count = rel.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (precision * rel).sum(axis=1) / count


def _explanation_ap(shares: np.ndarray, differ: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-pair AP for X-mAP_e and X-mAP_c (NaN where a pair does not count).

    Args:
        shares: (P, M) shares of the distance.
        differ: (P, M) bool, True where the two identities differ.
    """
    m = shares.shape[1]
    ap_e = _average_precision_rows(shares, differ)
    ap_c = _average_precision_rows(-shares, ~differ)
    all_common = ~differ.any(axis=1)
    if all_common.any():
        # Nothing differs: the shares should stay near 1/M; ranked descending, any above 2/M is wrong.
        s = shares[all_common]
        ap_c[all_common] = _average_precision_rows(s, s <= 2.0 / m)
    return ap_e, ap_c


def _shares(d_m: np.ndarray) -> np.ndarray:
    total = d_m.sum(axis=-1, keepdims=True)
    m = d_m.shape[-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, d_m / np.where(total > 0, total, 1.0), 1.0 / m)


def x_map_e(shares: np.ndarray, differ: np.ndarray) -> float:
    """X-mAP_e: mean AP of the differing attributes ranked by descending share.

    Args:
        shares: (P, M) shares of each pair's distance (or attribute distances: only the order matters).
        differ: (P, M) bool, True where the pair's identities differ in the attribute.

    Returns:
        The mean over pairs with at least one differing attribute (NaN when there is none).
    """
    ap_e, _ = _explanation_ap(np.asarray(shares, dtype=np.float64), np.asarray(differ, dtype=bool))
    return float(np.nanmean(ap_e)) if np.isfinite(ap_e).any() else float("nan")


def x_map_c(shares: np.ndarray, differ: np.ndarray) -> float:
    """X-mAP_c: mean AP of the common attributes ranked by ascending share.

    A pair whose attributes are all common is ranked by descending share, every share above 2/M counting
    as wrong. ``shares`` must be real shares (summing to 1 per pair) for that rule.

    Args:
        shares: (P, M) shares of each pair's distance.
        differ: (P, M) bool.

    Returns:
        The mean over pairs with at least one common attribute (NaN when there is none).
    """
    _, ap_c = _explanation_ap(np.asarray(shares, dtype=np.float64), np.asarray(differ, dtype=bool))
    return float(np.nanmean(ap_c)) if np.isfinite(ap_c).any() else float("nan")


def adre(distance: np.ndarray, attribute_distances: np.ndarray) -> float:
    """Average distance reconstruction error, in percent: mean |d - (1/M) sum_m d_m| / d x 100.

    Args:
        distance: (P,) target distances.
        attribute_distances: (P, M).

    Returns:
        The mean over pairs with d > 0 (NaN when there is none).
    """
    d = np.asarray(distance, dtype=np.float64)
    d_m = np.asarray(attribute_distances, dtype=np.float64)
    valid = d > 0
    if not valid.any():
        return float("nan")
    return float(np.mean(np.abs(d[valid] - d_m[valid].mean(axis=1)) / d[valid]) * 100.0)


class ExplanationAccumulator:
    """Running sums of the explanation metrics over batches of pairs (reduce on the fly)."""

    def __init__(self) -> None:
        self.ap_e_sum = 0.0
        self.ap_e_count = 0
        self.ap_c_sum = 0.0
        self.ap_c_count = 0
        self.re_sum = 0.0
        self.re_count = 0

    def update(self, distance: np.ndarray, attribute_distances: np.ndarray, differ: np.ndarray) -> None:
        """Add pairs.

        Args:
            distance: (P,) target distances.
            attribute_distances: (P, M).
            differ: (P, M) bool.
        """
        d = np.asarray(distance, dtype=np.float64)
        d_m = np.asarray(attribute_distances, dtype=np.float64)
        ap_e, ap_c = _explanation_ap(_shares(d_m), np.asarray(differ, dtype=bool))
        finite_e, finite_c = np.isfinite(ap_e), np.isfinite(ap_c)
        self.ap_e_sum += float(ap_e[finite_e].sum())
        self.ap_e_count += int(finite_e.sum())
        self.ap_c_sum += float(ap_c[finite_c].sum())
        self.ap_c_count += int(finite_c.sum())
        valid = d > 0
        self.re_sum += float((np.abs(d[valid] - d_m[valid].mean(axis=1)) / d[valid]).sum())
        self.re_count += int(valid.sum())

    @property
    def x_map_e(self) -> float:
        return self.ap_e_sum / self.ap_e_count if self.ap_e_count else float("nan")

    @property
    def x_map_c(self) -> float:
        return self.ap_c_sum / self.ap_c_count if self.ap_c_count else float("nan")

    @property
    def adre(self) -> float:
        return 100.0 * self.re_sum / self.re_count if self.re_count else float("nan")


@dataclass(frozen=True)
class ExplanationResult:
    """Explanation figures and the two distance matrices for retrieval.

    Attributes:
        x_map_e: Fraction in [0, 1].
        x_map_c: Fraction in [0, 1].
        adre: Percent.
        num_pairs: Pairs evaluated.
        target_distmat: (Q, G) float32 target distances d.
        interpreter_distmat: (Q, G) float32 interpreter distances sum_m d_m.
    """

    x_map_e: float
    x_map_c: float
    adre: float
    num_pairs: int
    target_distmat: np.ndarray = field(repr=False)
    interpreter_distmat: np.ndarray = field(repr=False)

    def as_dict(self) -> dict[str, float]:
        return {"x_map_e": self.x_map_e, "x_map_c": self.x_map_c, "adre": self.adre}


def euclidean_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances between rows, batched over leading axes: (..., P, D), (..., R, D) -> (..., P, R)."""
    a = np.asarray(a, dtype=np.float32)
    b = np.asarray(b, dtype=np.float32)
    sq = (
        np.einsum("...pd,...pd->...p", a, a)[..., :, None]
        + np.einsum("...rd,...rd->...r", b, b)[..., None, :]
        - 2.0 * (a @ np.swapaxes(b, -1, -2))
    )
    return np.sqrt(np.maximum(sq, 0.0))


def evaluate_explanations(
    q_embeddings: np.ndarray,
    g_embeddings: np.ndarray,
    q_attribute_embeddings: np.ndarray,
    g_attribute_embeddings: np.ndarray,
    q_attrs: np.ndarray,
    g_attrs: np.ndarray,
    pair_filter: Callable[[slice], np.ndarray] | None = None,
    chunk_size: int = 64,
) -> ExplanationResult:
    """X-mAP_e, X-mAP_c and ADRE over all query x gallery pairs, plus both distance matrices.

    Per-attribute distances are computed for ``chunk_size`` queries at a time, (M, chunk, G), reduced into
    the metrics and into sum_m d_m, then dropped: memory stays near chunk_size x G x M floats (64 x 15,913
    x 26 float32 is 106 MB) instead of Q x G x M.

    Args:
        q_embeddings: (Q, D) target embeddings of the queries.
        g_embeddings: (G, D) of the gallery.
        q_attribute_embeddings: (Q, M, D) per-attribute embeddings.
        g_attribute_embeddings: (G, M, D).
        q_attrs: (Q, M) ground-truth attribute vectors in {-1, +1}.
        g_attrs: (G, M).
        pair_filter: Optional function of a query slice returning a (chunk, G) bool mask of the pairs to
            count (for instance to drop the protocol's same-identity same-camera pairs); the distance
            matrices are filled for all pairs regardless.
        chunk_size: Queries per chunk.
    """
    q_emb = np.asarray(q_embeddings, dtype=np.float32)
    g_emb = np.asarray(g_embeddings, dtype=np.float32)
    g_att = np.ascontiguousarray(np.swapaxes(np.asarray(g_attribute_embeddings, dtype=np.float32), 0, 1))
    q_att_all = np.asarray(q_attribute_embeddings, dtype=np.float32)
    q_attrs = np.asarray(q_attrs)
    g_pos = np.asarray(g_attrs) > 0
    num_q, num_g = q_emb.shape[0], g_emb.shape[0]
    target = np.empty((num_q, num_g), dtype=np.float32)
    interp = np.empty((num_q, num_g), dtype=np.float32)
    acc = ExplanationAccumulator()
    pairs = 0
    for start in range(0, num_q, chunk_size):
        rows = slice(start, min(start + chunk_size, num_q))
        d = euclidean_distances(q_emb[rows], g_emb)
        q_att = np.ascontiguousarray(np.swapaxes(q_att_all[rows], 0, 1))
        d_m = euclidean_distances(q_att, g_att)  # (M, chunk, G)
        target[rows] = d
        interp[rows] = d_m.sum(axis=0)
        differ = (q_attrs[rows] > 0)[:, None, :] != g_pos[None, :, :]  # (chunk, G, M)
        d_m = np.moveaxis(d_m, 0, -1)
        if pair_filter is not None:
            keep = np.asarray(pair_filter(rows), dtype=bool)
            acc.update(d[keep], d_m[keep], differ[keep])
            pairs += int(keep.sum())
        else:
            m = d_m.shape[-1]
            acc.update(d.reshape(-1), d_m.reshape(-1, m), differ.reshape(-1, m))
            pairs += d.size
    return ExplanationResult(acc.x_map_e, acc.x_map_c, acc.adre, pairs, target, interp)


def protocol_pair_filter(
    q_pids: np.ndarray, g_pids: np.ndarray, q_camids: np.ndarray, g_camids: np.ndarray
) -> Callable[[slice], np.ndarray]:
    """A ``pair_filter`` for :func:`evaluate_explanations` that drops the pairs the Market-1501 protocol
    removes from retrieval (same identity and same camera, or a junk gallery entry with identity -1)."""
    q_pids, g_pids = np.asarray(q_pids), np.asarray(g_pids)
    q_camids, g_camids = np.asarray(q_camids), np.asarray(g_camids)

    def keep(rows: slice) -> np.ndarray:
        same = (q_pids[rows, None] == g_pids[None, :]) & (q_camids[rows, None] == g_camids[None, :])
        return ~same & (g_pids[None, :] != -1)

    return keep
