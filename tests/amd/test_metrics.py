"""Retrieval and explanation metrics against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from amd.metrics import (
    ExplanationAccumulator,
    adre,
    evaluate_explanations,
    evaluate_retrieval,
    protocol_pair_filter,
    x_map_c,
    x_map_e,
)


def retrieval_case():
    # Gallery: g0 pid 1 cam 1, g1 pid 2 cam 2, g2 pid 1 cam 2, g3 pid 3 cam 1, g4 pid 1 cam 3.
    g_pids = np.array([1, 2, 1, 3, 1])
    g_cams = np.array([1, 2, 2, 1, 3])
    # q0: pid 1 cam 1; q1: pid 2 cam 2 (its only match shares its camera); q2: pid 3 cam 2.
    q_pids = np.array([1, 2, 3])
    q_cams = np.array([1, 2, 2])
    distmat = np.array(
        [
            [0.1, 0.2, 0.3, 0.4, 0.5],
            [0.5, 0.1, 0.2, 0.3, 0.4],
            [0.5, 0.4, 0.3, 0.0, 0.2],
        ]
    )
    return distmat, q_pids, g_pids, q_cams, g_cams


def test_retrieval_market_protocol_by_hand():
    result = evaluate_retrieval(*retrieval_case(), max_rank=4)
    # q0: g0 removed (same pid, same camera); ranking g1 (no), g2 (yes), g3 (no), g4 (yes):
    #     AP = (1/2 + 2/4) / 2 = 0.5, first hit at rank 2, INP = 2 matches / position 4 = 0.5.
    # q1: its only match g1 is removed: skipped.
    # q2: g3 first: AP = 1, rank 1, INP = 1.
    assert result.num_queries == 3 and result.num_valid == 2
    assert result.mAP == pytest.approx(0.75)
    assert result.mINP == pytest.approx(0.75)
    np.testing.assert_allclose(result.cmc, [0.5, 1.0, 1.0, 1.0])
    assert result.rank(1) == 0.5 and result.rank(5) == 1.0
    assert result.as_dict()["rank1"] == 0.5


def test_retrieval_junk_and_distractors():
    distmat, q_pids, g_pids, q_cams, g_cams = retrieval_case()
    # A junk entry (pid -1) nearest to q0 is dropped; a distractor (pid 0) stays a negative.
    g_pids = np.append(g_pids, [-1, 0])
    g_cams = np.append(g_cams, [2, 2])
    distmat = np.hstack([distmat, np.array([[0.0, 0.25], [9.0, 9.0], [9.0, 9.0]])])
    result = evaluate_retrieval(distmat, q_pids, g_pids, q_cams, g_cams, max_rank=4)
    # q0 ranking: g1 (no), distractor (no), g2 (yes), g3 (no), g4 (yes): AP = (1/3 + 2/5) / 2.
    assert result.mAP == pytest.approx(((1 / 3 + 2 / 5) / 2 + 1.0) / 2)
    assert result.cmc[0] == 0.5 and result.cmc[1] == 0.5 and result.cmc[2] == 1.0


def test_retrieval_chunking_does_not_change_results():
    rng = np.random.default_rng(0)
    distmat = rng.random((13, 20))
    q_pids, g_pids = rng.integers(0, 4, 13), rng.integers(0, 4, 20)
    q_cams, g_cams = rng.integers(0, 3, 13), rng.integers(0, 3, 20)
    a = evaluate_retrieval(distmat, q_pids, g_pids, q_cams, g_cams, max_rank=5, chunk_size=4)
    b = evaluate_retrieval(distmat, q_pids, g_pids, q_cams, g_cams, max_rank=5, chunk_size=100)
    assert a.mAP == b.mAP and np.array_equal(a.cmc, b.cmc) and a.mINP == b.mINP


def test_retrieval_no_valid_query():
    result = evaluate_retrieval(np.zeros((1, 1)), [1], [1], [1], [1], max_rank=3)
    assert result.num_valid == 0 and result.mAP == 0.0


def test_x_map_e_by_hand():
    shares = np.array([[0.5, 0.3, 0.2], [0.2, 0.3, 0.5], [0.6, 0.3, 0.1]])
    differ = np.array([[False, True, True], [True, True, True], [False, False, False]])
    # Pair 0: descending attr0 (common), attr1 (differs), attr2 (differs): AP = (1/2 + 2/3) / 2 = 0.583333.
    # Pair 1: everything differs: AP = 1. Pair 2: nothing differs: not counted.
    assert x_map_e(shares, differ) == pytest.approx(((1 / 2 + 2 / 3) / 2 + 1.0) / 2)


def test_x_map_c_by_hand_with_the_all_common_rule():
    shares = np.array([[0.5, 0.3, 0.2], [0.7, 0.2, 0.1], [0.4, 0.3, 0.3], [0.2, 0.3, 0.5]])
    differ = np.array([[False, True, True], [False, False, False], [False, False, False], [True, True, True]])
    # Pair 0: ascending attr2, attr1, attr0; the common attr0 is third: AP = 1/3.
    # Pair 1: all common: descending 0.7 (> 2/3, wrong), 0.2, 0.1: AP = (1/2 + 2/3) / 2 = 0.583333.
    # Pair 2: all common and no share above 2/3: AP = 1. Pair 3: nothing common: not counted.
    expected = (1 / 3 + (1 / 2 + 2 / 3) / 2 + 1.0) / 3
    assert x_map_c(shares, differ) == pytest.approx(expected)


def test_adre_by_hand():
    d = np.array([10.0, 5.0, 0.0])
    d_m = np.array([[9.0, 12.0, 12.0], [5.0, 4.0, 6.0], [1.0, 1.0, 1.0]])
    # |10 - 11| / 10 = 0.1, |5 - 5| / 5 = 0; d = 0 is left out: mean 0.05 -> 5 %.
    assert adre(d, d_m) == pytest.approx(5.0)


def test_accumulator_equals_one_shot():
    rng = np.random.default_rng(1)
    d = rng.random(50) + 0.5
    d_m = rng.random((50, 4))
    differ = rng.random((50, 4)) > 0.5
    acc = ExplanationAccumulator()
    for s in (slice(0, 17), slice(17, 50)):
        acc.update(d[s], d_m[s], differ[s])
    shares = d_m / d_m.sum(axis=1, keepdims=True)
    assert acc.x_map_e == pytest.approx(x_map_e(shares, differ))
    assert acc.x_map_c == pytest.approx(x_map_c(shares, differ))
    assert acc.adre == pytest.approx(adre(d, d_m))


@pytest.mark.parametrize("chunk_size", [1, 3, 64])
def test_chunked_evaluator_equals_brute_force(chunk_size):
    rng = np.random.default_rng(2)
    q, g, m, dim = 7, 11, 3, 5
    qe, ge = rng.normal(size=(q, dim)), rng.normal(size=(g, dim))
    qa, ga = rng.normal(size=(q, m, dim)), rng.normal(size=(g, m, dim))
    q_attrs = rng.choice([-1, 1], size=(q, m))
    g_attrs = rng.choice([-1, 1], size=(g, m))
    result = evaluate_explanations(qe, ge, qa, ga, q_attrs, g_attrs, chunk_size=chunk_size)
    # Brute force: the full Q x G x M tensor, which the evaluator never builds.
    d = np.linalg.norm(qe[:, None] - ge[None], axis=-1)
    d_m = np.linalg.norm(qa[:, None] - ga[None], axis=-1)
    differ = q_attrs[:, None, :] != g_attrs[None, :, :]
    shares = d_m / d_m.sum(-1, keepdims=True)
    np.testing.assert_allclose(result.target_distmat, d, rtol=1e-4)
    np.testing.assert_allclose(result.interpreter_distmat, d_m.sum(-1), rtol=1e-4)
    assert result.num_pairs == q * g
    assert result.x_map_e == pytest.approx(x_map_e(shares.reshape(-1, m), differ.reshape(-1, m)), rel=1e-6)
    assert result.x_map_c == pytest.approx(x_map_c(shares.reshape(-1, m), differ.reshape(-1, m)), rel=1e-6)
    assert result.adre == pytest.approx(adre(d.ravel(), d_m.reshape(-1, m)), rel=1e-4)


def test_chunked_evaluator_with_protocol_filter():
    rng = np.random.default_rng(3)
    q, g, m, dim = 4, 6, 2, 3
    qe, ge = rng.normal(size=(q, dim)), rng.normal(size=(g, dim))
    qa, ga = rng.normal(size=(q, m, dim)), rng.normal(size=(g, m, dim))
    q_attrs, g_attrs = rng.choice([-1, 1], size=(q, m)), rng.choice([-1, 1], size=(g, m))
    q_pids, g_pids = np.array([1, 2, 3, 4]), np.array([1, 1, 2, 3, 4, -1])
    q_cams, g_cams = np.array([1, 1, 1, 1]), np.array([1, 2, 1, 2, 2, 2])
    keep = protocol_pair_filter(q_pids, g_pids, q_cams, g_cams)
    result = evaluate_explanations(qe, ge, qa, ga, q_attrs, g_attrs, pair_filter=keep, chunk_size=3)
    # Removed: (q0, g0) and (q1, g2), same pid and camera, and the junk column g5 for every query:
    # 24 - 2 - 4 = 18.
    assert result.num_pairs == 18
    mask = keep(slice(0, q))
    d_m = np.linalg.norm(qa[:, None] - ga[None], axis=-1)[mask]
    differ = (q_attrs[:, None, :] != g_attrs[None, :, :])[mask]
    assert result.x_map_e == pytest.approx(x_map_e(d_m / d_m.sum(-1, keepdims=True), differ), rel=1e-6)
