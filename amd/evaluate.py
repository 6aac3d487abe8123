"""Evaluation of a target model and its interpreter on a dataset, shared by the trainers,
the ``evaluate`` command and the benchmarks.

- Retrieval of the target (Rank-1/5/10, mAP, mINP) and of the interpreter's distance sum_m d_m
  (Rank-1/5, mAP) under the Market-1501 protocol (:func:`amd.metrics.evaluate_retrieval`).
- Explanation quality: X-mAP_e, X-mAP_c and ADRE over the query x gallery pairs the protocol keeps.
- Re-weighting, the method's accuracy by-product: d' = (1 + beta * w) * d, where w is the sum of the
  shares of the attributes judged to differ, the query's known attributes against the gallery crop's
  attributes predicted by the interpreter's auxiliary classifier. beta is chosen on a validation split
  carved from the *training* identities (:func:`validation_split`), never on the test split.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from amd.data.records import Dataset, Record
from amd.features import extract, extract_outputs
from amd.inference import inference_copy
from amd.metrics import (
    euclidean_distances,
    evaluate_explanations,
    evaluate_retrieval,
    protocol_pair_filter,
)
from amd.models.interpreter import Interpreter

#: Re-weighting strengths tried on the validation split.
BETAS: tuple[float, ...] = (0.0, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0)

#: Keys of the figures each section of :func:`evaluate_models` reports.
TARGET_KEYS = ("rank1", "rank5", "rank10", "mAP", "mINP")
INTERPRETER_KEYS = ("rank1", "rank5", "mAP")
EXPLANATION_KEYS = ("x_map_e", "x_map_c", "adre")


def ids_and_cameras(records: Sequence[Record]) -> tuple[np.ndarray, np.ndarray]:
    """(N,) identities and (N,) cameras of ``records``."""
    return np.array([r.pid for r in records], dtype=np.int64), np.array([r.camid for r in records], dtype=np.int64)


@dataclass(frozen=True)
class InterpreterFeatures:
    """One interpreter pass over N crops.

    Attributes:
        embedding: (N, D) target embeddings f.
        attribute_embeddings: (N, M, D) per-attribute embeddings f_m.
        probabilities: (N, M) attribute probabilities of the auxiliary classifier, or ``None``.
        maps: (N, M, h, w) the maps at the model's resolution, or ``None`` when not asked for.
    """

    embedding: np.ndarray
    attribute_embeddings: np.ndarray
    probabilities: np.ndarray | None
    maps: np.ndarray | None = None


def interpreter_features(
    interpreter: Interpreter,
    records: Sequence[Record],
    size: tuple[int, int],
    device: torch.device | str = "cpu",
    workers: int = 0,
    with_maps: bool = False,
    fold: bool = True,
) -> InterpreterFeatures:
    """Run the interpreter over ``records`` (one forward per crop, in order).

    Args:
        interpreter: The interpreter.
        records: The crops.
        size: Input size (H, W).
        device: Where it runs.
        workers: Decoding processes.
        with_maps: Also return the maps.
        fold: Run an eval-mode interpreter as a folded, channels-last copy (:func:`fast_copy`); pass False
            for one that already is.
    """
    if not records:
        raise ValueError("no records to run the interpreter on")
    model = fast_copy(interpreter, size, device) if fold and not interpreter.training else interpreter

    def forward(x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = model(x)
        extra = [] if out.attribute_logits is None else [torch.sigmoid(out.attribute_logits)]
        if with_maps:
            extra.append(out.maps)
        return (out.embedding, out.attribute_embeddings, *extra)

    arrays = list(extract_outputs(forward, records, size, device, workers=workers))
    maps = arrays.pop() if with_maps else None
    probs = arrays[2] if interpreter.has_aux_classifier else None
    return InterpreterFeatures(arrays[0], arrays[1], probs, maps)


def fast_copy(interpreter: Interpreter, size: tuple[int, int], device: torch.device | str = "cpu") -> Interpreter:
    """A folded, channels-last copy of an eval-mode interpreter, checked on a random probe batch."""
    probe = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(0)).to(device)
    return inference_copy(interpreter, probe)


def retrieval_metrics(
    embed: Callable[[torch.Tensor], torch.Tensor],
    dataset: Dataset,
    size: tuple[int, int],
    device: torch.device | str,
    workers: int = 0,
) -> dict[str, float]:
    """Rank-1/5/10, mAP and mINP of ``embed`` on the dataset's query and gallery."""
    q = extract(embed, dataset.query, size, device, workers=workers)
    g = extract(embed, dataset.gallery, size, device, workers=workers)
    qp, qc = ids_and_cameras(dataset.query)
    gp, gc = ids_and_cameras(dataset.gallery)
    return evaluate_retrieval(euclidean_distances(q, g), qp, gp, qc, gc).as_dict()


def _explanation_figures(
    q: InterpreterFeatures, g: InterpreterFeatures, query: Sequence[Record], gallery: Sequence[Record]
) -> tuple[dict[str, float], np.ndarray]:
    """Target and interpreter retrieval plus the explanation metrics; also the (Q, G) target distances."""
    qp, qc = ids_and_cameras(query)
    gp, gc = ids_and_cameras(gallery)
    res = evaluate_explanations(
        q.embedding, g.embedding, q.attribute_embeddings, g.attribute_embeddings,
        np.stack([r.attributes for r in query]), np.stack([r.attributes for r in gallery]),
        pair_filter=protocol_pair_filter(qp, gp, qc, gc),
    )  # fmt: skip
    target = evaluate_retrieval(res.target_distmat, qp, gp, qc, gc)
    interp = evaluate_retrieval(res.interpreter_distmat, qp, gp, qc, gc)
    out = res.as_dict()
    out.update({f"target_{k}": v for k, v in target.as_dict().items()})
    out.update({f"interpreter_{k}": v for k, v in interp.as_dict((1, 5)).items() if k != "mINP"})
    return out, res.target_distmat


def explanation_metrics(
    interpreter: Interpreter,
    dataset: Dataset,
    size: tuple[int, int],
    device: torch.device | str,
    workers: int = 0,
) -> dict[str, float]:
    """Target and interpreter retrieval plus X-mAP_e, X-mAP_c and ADRE over the query x gallery pairs.

    Keys: ``x_map_e``, ``x_map_c``, ``adre``, ``target_rank1`` ... ``target_mINP``, ``interpreter_rank1``,
    ``interpreter_rank5``, ``interpreter_mAP``.
    """
    model = fast_copy(interpreter, size, device)
    q = interpreter_features(model, dataset.query, size, device, workers, fold=False)
    g = interpreter_features(model, dataset.gallery, size, device, workers, fold=False)
    figures, _ = _explanation_figures(q, g, dataset.query, dataset.gallery)
    return figures


# ------------------------------------------------------------------------------------------ re-weighting


def differing_share(
    q_attribute_embeddings: np.ndarray,
    g_attribute_embeddings: np.ndarray,
    q_attributes: np.ndarray,
    g_attributes: np.ndarray,
    chunk_size: int = 64,
) -> np.ndarray:
    """w: for each query x gallery pair, the summed share of the attributes judged to differ.

    w_ij = sum_m [q_im != g_jm] * d_m,ij / sum_k d_k,ij (1/M per attribute when every d_m is 0), with
    d_m,ij = ||f_m(q_i) - f_m(g_j)||. Computed ``chunk_size`` queries at a time (never Q x G x M at once).

    Args:
        q_attribute_embeddings: (Q, M, D).
        g_attribute_embeddings: (G, M, D).
        q_attributes: (Q, M) bool (or {-1, +1}; positive means present): the queries' known attributes.
        g_attributes: (G, M) bool (or {-1, +1}): the gallery's judged (predicted) attributes.
        chunk_size: Queries per chunk.

    Returns:
        (Q, G) float32 in [0, 1].
    """
    q_att = np.asarray(q_attribute_embeddings, dtype=np.float32)
    g_att = np.ascontiguousarray(np.swapaxes(np.asarray(g_attribute_embeddings, dtype=np.float32), 0, 1))
    q_pos = np.asarray(q_attributes) > 0
    g_pos = np.asarray(g_attributes) > 0
    num_q, num_g, m = q_att.shape[0], g_att.shape[1], q_att.shape[1]
    out = np.empty((num_q, num_g), dtype=np.float32)
    for start in range(0, num_q, chunk_size):
        rows = slice(start, min(start + chunk_size, num_q))
        d_m = euclidean_distances(np.ascontiguousarray(np.swapaxes(q_att[rows], 0, 1)), g_att)  # (M, c, G)
        total = d_m.sum(axis=0)
        differ = q_pos[rows].T[:, :, None] != g_pos.T[:, None, :]  # (M, c, G)
        judged = (d_m * differ).sum(axis=0)
        even = differ.sum(axis=0) / m
        out[rows] = np.where(total > 0, judged / np.where(total > 0, total, 1.0), even)
    return out


def reweight(distances: np.ndarray, w: np.ndarray, beta: float) -> np.ndarray:
    """d' = (1 + beta * w) * d (element-wise, same shape)."""
    return (1.0 + beta * np.asarray(w)) * np.asarray(distances)


def validation_split(
    train: Sequence[Record], fraction: float = 0.2, min_identities: int = 4, seed: int = 0
) -> tuple[tuple[Record, ...], tuple[Record, ...]]:
    """A query / gallery split over some training identities, laid out like the test protocol.

    Identities seen by at least two cameras are eligible; ``fraction`` of them (at least ``min_identities``,
    chosen with ``seed``) give, for each camera, their first crop as a query and the rest to the gallery.

    Returns:
        ``(query, gallery)``; both empty when fewer than two identities are eligible.
    """
    by_pid: dict[int, list[Record]] = {}
    for r in train:
        if r.pid > 0:
            by_pid.setdefault(r.pid, []).append(r)
    eligible = sorted(pid for pid, recs in by_pid.items() if len({r.camid for r in recs}) >= 2)
    if len(eligible) < 2:
        return (), ()
    count = min(len(eligible), max(min_identities, round(fraction * len(eligible))))
    chosen = sorted(np.random.default_rng(seed).choice(eligible, size=count, replace=False).tolist())
    query: list[Record] = []
    gallery: list[Record] = []
    for pid in chosen:
        seen: set[int] = set()
        for r in sorted(by_pid[pid], key=lambda r: r.path):
            (gallery if r.camid in seen else query).append(r)
            seen.add(r.camid)
    return tuple(query), tuple(gallery)


@dataclass(frozen=True)
class BetaChoice:
    """The re-weighting strength picked on the validation split.

    Attributes:
        beta: The chosen strength (0 when re-weighting did not help there).
        scores: beta -> validation mAP.
    """

    beta: float
    scores: dict[float, float]


def choose_beta(
    distances: np.ndarray,
    w: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray,
    g_camids: np.ndarray,
    betas: Sequence[float] = BETAS,
) -> BetaChoice:
    """The beta of ``betas`` with the best validation mAP (ties go to the smaller beta, so 0 wins a tie)."""
    scores = {
        float(b): evaluate_retrieval(reweight(distances, w, b), q_pids, g_pids, q_camids, g_camids).mAP
        for b in betas
    }
    best = max(scores.values())
    beta = min(b for b, s in scores.items() if s >= best - 1e-12)
    return BetaChoice(beta, scores)


# ------------------------------------------------------------------------------------------ everything


def _pick(figures: dict[str, float], prefix: str, keys: Sequence[str]) -> dict[str, float]:
    return {k: float(figures[prefix + k]) for k in keys}


def evaluate_models(
    dataset: Dataset,
    target: torch.nn.Module,
    size: tuple[int, int],
    interpreter: Interpreter | None = None,
    device: torch.device | str = "cpu",
    workers: int = 0,
    betas: Sequence[float] = BETAS,
    on_progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Every figure of the ``evaluate`` command.

    Args:
        dataset: Query and gallery (and, for re-weighting, training records with attributes).
        target: The target model (eval mode); when an interpreter is given it must be its target.
        size: Input size (H, W).
        interpreter: Optional interpreter.
        device: Where the models run.
        workers: Decoding processes.
        betas: Re-weighting strengths tried on the validation split.
        on_progress: Receives a short message before each stage.

    Returns:
        ``{"target": {rank1, rank5, rank10, mAP, mINP}}``, and with an interpreter also ``"interpreter"``
        {rank1, rank5, mAP} and ``"explanation"`` {x_map_e, x_map_c, adre} (fractions, ADRE in percent);
        with an auxiliary classifier and a usable validation split ``"target_reweighted"`` (the target's
        figures after re-weighting, with ``beta`` and the validation mAP per beta).
    """
    say = on_progress or (lambda message: None)
    if interpreter is None:
        say("target retrieval")
        figures = retrieval_metrics(target, dataset, size, device, workers)
        return {"target": {k: float(figures[k]) for k in TARGET_KEYS}}

    say("interpreter pass over the query and the gallery")
    interpreter = fast_copy(interpreter, size, device)  # folded once for every pass below
    q = interpreter_features(interpreter, dataset.query, size, device, workers, fold=False)
    g = interpreter_features(interpreter, dataset.gallery, size, device, workers, fold=False)
    figures, target_distances = _explanation_figures(q, g, dataset.query, dataset.gallery)
    out: dict[str, Any] = {
        "target": _pick(figures, "target_", TARGET_KEYS),
        "interpreter": _pick(figures, "interpreter_", INTERPRETER_KEYS),
        "explanation": {k: float(figures[k]) for k in EXPLANATION_KEYS},
    }
    val_q, val_g = validation_split(dataset.train)
    if not interpreter.has_aux_classifier or not val_q or dataset.schema is None:
        return out

    say("choosing the re-weighting strength on a validation split of the training identities")
    vq = interpreter_features(interpreter, val_q, size, device, workers, fold=False)
    vg = interpreter_features(interpreter, val_g, size, device, workers, fold=False)
    vqp, vqc = ids_and_cameras(val_q)
    vgp, vgc = ids_and_cameras(val_g)
    w_val = differing_share(vq.attribute_embeddings, vg.attribute_embeddings,
                            np.stack([r.attributes for r in val_q]), vg.probabilities > 0.5)  # fmt: skip
    choice = choose_beta(euclidean_distances(vq.embedding, vg.embedding), w_val, vqp, vgp, vqc, vgc, betas)

    say(f"re-weighting the test distances with beta {choice.beta:g}")
    w = differing_share(q.attribute_embeddings, g.attribute_embeddings,
                        np.stack([r.attributes for r in dataset.query]), g.probabilities > 0.5)  # fmt: skip
    qp, qc = ids_and_cameras(dataset.query)
    gp, gc = ids_and_cameras(dataset.gallery)
    res = evaluate_retrieval(reweight(target_distances, w, choice.beta), qp, gp, qc, gc)
    out["target_reweighted"] = {
        **{k: float(v) for k, v in res.as_dict().items()},
        "beta": choice.beta,
        "validation_mAP": {f"{b:g}": float(s) for b, s in choice.scores.items()},
        "validation_identities": len({r.pid for r in val_q}),
    }
    return out
