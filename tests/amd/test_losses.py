"""The AMD losses against values worked out by hand (B = 2..3, M = 3)."""

from __future__ import annotations

import math

import pytest
import torch

from amd.losses import (
    amd_loss,
    attribute_classification_loss,
    attribute_distances,
    attribute_prior_loss,
    attribute_prior_terms,
    attribute_shares,
    batch_hard_triplet_loss,
    circle_softmax_loss,
    colour_prior_loss,
    cross_entropy_label_smoothing,
    differing_attributes,
    metric_distillation_loss,
    pairwise_distances,
    prior_lambda,
)

M = 3


def pair_tensor(values: list[float]) -> torch.Tensor:
    """(2, 2, M) attribute distances of a symmetric pair with ``values`` off the diagonal."""
    d_m = torch.zeros(2, 2, M, dtype=torch.float64)
    d_m[0, 1] = torch.tensor(values, dtype=torch.float64)
    d_m[1, 0] = d_m[0, 1]
    return d_m


def attrs(*rows: list[int]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float64)


# ----------------------------------------------------------------------------------------- distances


def test_pairwise_distances_are_euclidean_not_squared():
    f = torch.tensor([[0.0, 0.0], [3.0, 4.0], [6.0, 8.0]])
    expected = torch.tensor([[0.0, 5.0, 10.0], [5.0, 0.0, 5.0], [10.0, 5.0, 0.0]])
    torch.testing.assert_close(pairwise_distances(f), expected)


def test_attribute_distances_per_attribute():
    # Image 1 is 3, 6 and 9 units away from image 0 in attributes 0, 1, 2.
    f_m = torch.zeros(2, M, 4)
    f_m[1, :, 0] = torch.tensor([3.0, 6.0, 9.0])
    d_m = attribute_distances(f_m)
    assert d_m.shape == (2, 2, M)
    torch.testing.assert_close(d_m[0, 1], torch.tensor([3.0, 6.0, 9.0]))
    torch.testing.assert_close(d_m[1, 0], torch.tensor([3.0, 6.0, 9.0]))
    assert torch.all(d_m[0, 0] == 0) and torch.all(d_m[1, 1] == 0)


def test_gradients_finite_with_identical_embeddings():
    f = torch.ones(4, 8, requires_grad=True)
    f_m = torch.ones(4, M, 8, requires_grad=True)
    a = attrs([1, 1, 1], [1, -1, 1], [-1, -1, -1], [1, 1, 1])
    md, prior = amd_loss(f, f_m, a)
    (md + 10 * prior).backward()
    assert torch.isfinite(f_m.grad).all()
    assert torch.isfinite(md) and torch.isfinite(prior)
    d = pairwise_distances(f)
    d.sum().backward()
    assert torch.isfinite(f.grad).all()


# ------------------------------------------------------------------------------------- distillation


def test_metric_distillation_by_hand():
    d = torch.tensor([[0.0, 6.0], [6.0, 0.0]])
    d_m = pair_tensor([3.0, 6.0, 12.0]).float()
    # mean_m d_m = 21 / 3 = 7, |6 - 7| = 1 on both ordered off-diagonal pairs, 0 on the diagonal:
    # (0 + 1 + 1 + 0) / 4 = 0.5
    assert metric_distillation_loss(d, d_m).item() == pytest.approx(0.5)


def test_metric_distillation_ignores_the_diagonal_and_detaches_d():
    d = torch.tensor([[0.0, 6.0], [6.0, 0.0]], requires_grad=True)
    d_m = pair_tensor([3.0, 6.0, 12.0]).float()
    d_m[0, 0] = torch.tensor([5.0, 5.0, 5.0])  # nonsense on the diagonal must not count
    d_m.requires_grad_(True)
    loss = metric_distillation_loss(d, d_m)
    assert loss.item() == pytest.approx(0.5)
    loss.backward()
    assert d.grad is None
    # d(loss)/d(d_m,01,k) = sign(7 - 6) / (3 * 4)
    torch.testing.assert_close(d_m.grad[0, 1], torch.full((M,), 1.0 / 12.0))
    assert torch.all(d_m.grad[0, 0] == 0)


def test_amd_loss_distillation_zero_when_components_add_up():
    f = torch.tensor([[0.0, 0.0], [3.0, 4.0]])  # d = 5
    f_m = torch.zeros(2, M, 2)
    f_m[1, :, 0] = torch.tensor([3.0, 6.0, 6.0])  # mean 5
    md, _ = amd_loss(f, f_m, attrs([1, 1, 1], [1, 1, 1]).float())
    assert md.item() == pytest.approx(0.0, abs=1e-6)
    f_m[1, :, 0] = torch.tensor([3.0, 6.0, 9.0])  # mean 6: |5 - 6| on 2 of 4 ordered pairs
    md, _ = amd_loss(f, f_m, attrs([1, 1, 1], [1, 1, 1]).float())
    assert md.item() == pytest.approx(0.5, rel=1e-6)


# ------------------------------------------------------------------------------------------- shares


def test_shares_diagonal_uniform():
    p = attribute_shares(pair_tensor([1.0, 1.0, 2.0]))
    torch.testing.assert_close(p[0, 1], torch.tensor([0.25, 0.25, 0.5], dtype=torch.float64))
    torch.testing.assert_close(p[0, 0], torch.full((M,), 1 / 3, dtype=torch.float64))


def test_differing_attributes():
    s = differing_attributes(attrs([1, -1, 1], [1, 1, -1]))
    torch.testing.assert_close(s[0, 1], torch.tensor([0.0, 1.0, 1.0]))
    assert torch.all(s[0, 0] == 0)


# ----------------------------------------------------------------------------------------- the prior


def test_lambda_at_zero_gives_bound_two_over_m():
    # N' = 0: a = 0.004, b = 0.001, lambda = 0.5 ln 4 = ln 2, so exp(lambda) = 2.
    lam = prior_lambda(torch.tensor(0.0, dtype=torch.float64), M)
    assert lam.item() == pytest.approx(math.log(2.0))


def test_prior_n_zero_by_hand():
    """Identical attribute vectors (N = 0, tau = 0): only the per-attribute upper bound 2/M acts."""
    d_m = pair_tensor([1.0, 1.0, 8.0])  # shares 0.1, 0.1, 0.8
    a = attrs([1, -1, 1], [1, -1, 1])
    t = attribute_prior_terms(d_m, a)
    # L_dsum: ReLU(0 - 0) = 0; L_ssum: ReLU(1 - (1 - 0)) = 0; L_d: no differing attribute.
    assert t.dsum.item() == 0.0 and t.ssum.item() == 0.0 and t.d.item() == 0.0
    # L_s: exp(lambda) (1 - 0) / (3 - 0) = 2/3; only 0.8 exceeds it: 0.8 - 2/3 = 0.133333 on each of the
    # two ordered off-diagonal pairs, 0 on the diagonal (shares 1/3 < 2/3): mean = 2 * 0.133333 / 4.
    expected_s = 2 * (0.8 - 2 / 3) / 4
    assert t.s.item() == pytest.approx(expected_s)
    assert attribute_prior_loss(d_m, a).item() == pytest.approx(10 * expected_s)


def test_prior_n_equals_m_by_hand():
    """All attributes differ (N = M = 3, tau = 1): only the per-attribute lower bound acts."""
    d_m = pair_tensor([1.0, 1.0, 8.0])  # shares 0.1, 0.1, 0.8
    a = attrs([1, 1, 1], [-1, -1, -1])
    t = attribute_prior_terms(d_m, a)
    # N' = 2.9: a = 0.1 sqrt(2.9/3) + 0.004 = 0.102319, b = 2.9 (1 - sqrt(2.9/3)) + 0.001 = 0.049743,
    # lambda = 0.5 ln(2.056958) = 0.360614, exp(-lambda) = 0.697248; lower bound 0.697248 * 1 / 3 = 0.232416.
    root = math.sqrt(2.9 / 3)
    lam = 0.5 * math.log((0.1 * root + 0.004) / (2.9 * (1 - root) + 0.001))
    assert lam == pytest.approx(0.360614, abs=1e-6)
    lower = math.exp(-lam) / 3
    assert lower == pytest.approx(0.232416, abs=1e-6)
    # Two attributes below it: 2 * (0.232416 - 0.1) per off-diagonal pair, 2 of the 4 ordered pairs.
    expected_d = 2 * 2 * (lower - 0.1) / 4
    assert t.d.item() == pytest.approx(expected_d)
    # L_dsum: ReLU(1 - 1) = 0, L_ssum: ReLU(0 - 0) = 0, L_s: no common attribute.
    assert t.dsum.item() == pytest.approx(0.0, abs=1e-12)
    assert t.ssum.item() == 0.0 and t.s.item() == 0.0
    assert attribute_prior_loss(d_m, a).item() == pytest.approx(10 * expected_d)


def test_prior_n_one_by_hand():
    """One differing attribute of three (N = 1, tau = sqrt(1/3) = 0.577350)."""
    d_m = pair_tensor([2.0, 3.0, 5.0])  # shares 0.2, 0.3, 0.5
    a = attrs([1, 1, -1], [-1, 1, -1])  # differ in attribute 0 only
    t = attribute_prior_terms(d_m, a)
    tau = math.sqrt(1 / 3)
    # L_dsum per pair: ReLU(0.577350 - 0.2) = 0.377350; L_ssum: ReLU(0.8 - 0.422650) = 0.377350.
    assert t.dsum.item() == pytest.approx(2 * (tau - 0.2) / 4)
    assert t.ssum.item() == pytest.approx(2 * (0.8 - (1 - tau)) / 4)
    # lambda(1): a = 2 * 0.577350 + 0.004 = 1.158700, b = 1 * 0.422650 + 0.001 = 0.423650,
    # lambda = 0.5 ln(2.735044) = 0.503074.
    lam = 0.5 * math.log((2 * tau + 0.004) / ((1 - tau) + 0.001))
    assert lam == pytest.approx(0.503074, abs=1e-6)
    lower = math.exp(-lam) * tau / 1  # 0.349106, close to t(1) = sqrt(0.57735 * 0.42265 / 2) = 0.349297
    upper = math.exp(lam) * (1 - tau) / 2  # 0.349488
    assert lower == pytest.approx(0.349106, abs=1e-6) and upper == pytest.approx(0.349488, abs=1e-6)
    # L_d: the differing attribute holds 0.2 < 0.349106; L_s: of the common ones only 0.5 > 0.349488.
    assert t.d.item() == pytest.approx(2 * (lower - 0.2) / 4)
    assert t.s.item() == pytest.approx(2 * (0.5 - upper) / 4)
    total = 2 * ((tau - 0.2) + 10 * (lower - 0.2) + (0.8 - (1 - tau)) + 10 * (0.5 - upper)) / 4
    assert total == pytest.approx(1.875438, abs=1e-6)
    assert attribute_prior_loss(d_m, a).item() == pytest.approx(total)


def test_prior_satisfied_gives_zero():
    # N = 1 with the differing attribute holding 0.6 and the common ones 0.2 each: every bound holds.
    d_m = pair_tensor([3.0, 1.0, 1.0])
    a = attrs([1, 1, -1], [-1, 1, -1])
    assert attribute_prior_loss(d_m, a).item() == pytest.approx(0.0, abs=1e-12)


def test_prior_mixed_batch_matches_pairwise_sum():
    """B = 3 with pairs of N = 1, 3 and 2: the batch loss is the sum of per-pair values over 9 entries."""
    a = attrs([1, 1, 1], [-1, 1, 1], [-1, -1, -1])
    d_m = torch.zeros(3, 3, M, dtype=torch.float64)
    values = {(0, 1): [2.0, 3.0, 5.0], (0, 2): [1.0, 1.0, 8.0], (1, 2): [1.0, 2.0, 1.0]}
    for (i, j), v in values.items():
        d_m[i, j] = d_m[j, i] = torch.tensor(v, dtype=torch.float64)

    def per_pair(p: list[float], s: list[int]) -> float:
        n = sum(s)
        tau = math.sqrt(n / M)
        nc = min(max(n, 0), M - 0.1)
        lam = 0.5 * math.log(((M - nc) * math.sqrt(nc / M) + 0.004) / (nc * (1 - math.sqrt(nc / M)) + 0.001))
        dsum = max(tau - sum(pm * sm for pm, sm in zip(p, s, strict=True)), 0)
        ssum = max(sum(pm * (1 - sm) for pm, sm in zip(p, s, strict=True)) - (1 - tau), 0)
        ld = sum(max(math.exp(-lam) * sm * tau / max(n, 1e-6) - pm, 0) for pm, sm in zip(p, s, strict=True))
        ls = sum(
            max((1 - sm) * pm - math.exp(lam) * (1 - tau) / max(M - n, 1e-6), 0)
            for pm, sm in zip(p, s, strict=True)
        )
        return dsum + 10 * ld + ssum + 10 * ls

    diffs = {(0, 1): [1, 0, 0], (0, 2): [1, 1, 1], (1, 2): [0, 1, 1]}
    expected = 0.0
    for key, v in values.items():
        shares = [x / sum(v) for x in v]
        expected += 2 * per_pair(shares, diffs[key])  # both orders of the pair
    expected /= 9
    assert attribute_prior_loss(d_m, a).item() == pytest.approx(expected)


def test_colour_term_by_hand():
    # Group {0, 1, 2} of colours; person 0 wears colour 0, person 1 colour 1; colour 2 is absent from both.
    a = attrs([1, -1, -1], [-1, 1, -1])
    d_m = pair_tensor([2.0, 2.0, 6.0])  # shares 0.2, 0.2, 0.6
    # Bound for the absent colour: 0.3 * mean(0.2, 0.2) = 0.06; excess 0.6 - 0.06 = 0.54 per pair, 2 of 4.
    loss = colour_prior_loss(d_m, a, [[0, 1, 2]])
    assert loss.item() == pytest.approx(2 * 0.54 / 4)
    with_colour = attribute_prior_loss(d_m, a, colour_groups=[[0, 1, 2]])
    assert with_colour.item() == pytest.approx(attribute_prior_loss(d_m, a).item() + 2 * 0.54 / 4)


# ------------------------------------------------------------------------------- classifier losses


def test_attribute_classification_weights_by_hand():
    logits = torch.zeros(1, 2)
    a = torch.tensor([[1.0, -1.0]])
    rates = torch.tensor([0.25, 0.25])
    # Both BCE values are ln 2; weights exp(1 - 0.25) for the positive, exp(0.25) for the negative.
    expected = math.log(2) * (math.exp(0.75) + math.exp(0.25)) / 2
    assert attribute_classification_loss(logits, a, rates).item() == pytest.approx(expected, rel=1e-6)


def test_cross_entropy_label_smoothing_by_hand():
    logits = torch.tensor([[0.0, 0.0]])
    # Uniform logits: every class has log-probability ln(1/2), so the loss is ln 2 for any smoothing.
    assert cross_entropy_label_smoothing(logits, torch.tensor([0])).item() == pytest.approx(math.log(2))
    logits = torch.tensor([[math.log(3.0), 0.0]])  # p = (0.75, 0.25)
    expected = -(0.95 * math.log(0.75) + 0.05 * math.log(0.25))
    assert cross_entropy_label_smoothing(logits, torch.tensor([0]), 0.1).item() == pytest.approx(expected)


def test_circle_softmax_by_hand():
    cos = torch.tensor([[0.5, 0.2]])
    s, m = 1.0, 0.25
    # positive: alpha_p = 1.25 - 0.5 = 0.75, logit 0.75 * (0.5 - 0.75) = -0.1875
    # negative: alpha_n = 0.2 + 0.25 = 0.45, logit 0.45 * (0.2 - 0.25) = -0.0225
    lp, ln = -0.1875, -0.0225
    expected = -lp + math.log(math.exp(lp) + math.exp(ln))
    assert circle_softmax_loss(cos, torch.tensor([0]), scale=s, margin=m).item() == pytest.approx(expected)


def test_batch_hard_triplet_by_hand():
    # 1-D points: identity 0 at 0 and 1, identity 1 at 3 and 5.
    f = torch.tensor([[0.0], [1.0], [3.0], [5.0]])
    labels = torch.tensor([0, 0, 1, 1])
    # anchor 0: pos 1, neg 3 -> 1 - 3 + 0.3 < 0; anchor 1: pos 1, neg 2 -> 0 (ReLU(-0.7));
    # anchor 3@3: pos 2, neg 2 -> 0.3; anchor 5: pos 2, neg 4 -> 0.  Mean = 0.3 / 4.
    assert batch_hard_triplet_loss(f, labels, margin=0.3).item() == pytest.approx(0.075)
    soft = batch_hard_triplet_loss(f, labels, margin=None).item()
    expected = sum(math.log1p(math.exp(g)) for g in (1 - 3, 1 - 2, 2 - 2, 2 - 4)) / 4
    assert soft == pytest.approx(expected, rel=1e-5)
