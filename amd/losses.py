"""Losses: the AMD distillation and attribute prior losses, and those that train a target model.

All are pure functions of tensors. The AMD losses follow the paper (Chen et al., ICCV 2021) over a batch of B
images and M attributes:

- d (B, B): the target's Euclidean distances, d_m (B, B, M): the per-attribute distances;
- shares p_m = d_m / sum_k d_k, with every share of a pair taken as 1/M on the diagonal (and for a pair
  whose attribute distances are all zero);
- s_m = (1 - a_i,m a_j,m) / 2 in {0, 1} marks the attributes on which the two identities differ, N = sum s_m,
  tau = sqrt(N / M).

Every mean runs over all B x B ordered pairs, the diagonal included (where the terms are 0): this matches
the reference implementation, and the normalisation matters for the balance between the terms.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

#: Squared distances at or below this are treated as 0 (their root's gradient would be unbounded).
_SQ_EPS = 1e-12


class AmdLosses(NamedTuple):
    """The two AMD terms as scalar tensors, without their weights (1 and 10 in the paper)."""

    distillation: Tensor
    prior: Tensor


class PriorTerms(NamedTuple):
    """The parts of the attribute prior loss (scalars): L_prior = dsum + 10 d + ssum + 10 s (+ colour)."""

    dsum: Tensor
    d: Tensor
    ssum: Tensor
    s: Tensor


def _safe_sqrt(sq: Tensor) -> Tensor:
    # The masked input keeps sqrt's backward finite at 0: where the mask is off, the gradient is exactly 0.
    positive = sq > _SQ_EPS
    return torch.where(positive, sq.clamp(min=_SQ_EPS).sqrt(), torch.zeros_like(sq))


def _squared_distances(x: Tensor) -> Tensor:
    """Squared Euclidean distances between rows, batched: (..., B, D) -> (..., B, B), diagonal exactly 0."""
    # Distances do not change under translation; centring shrinks the norms and with them the
    # cancellation error of |x|^2 + |y|^2 - 2 x.y.
    x = x.float()
    x = x - x.mean(dim=-2, keepdim=True)
    norms = (x * x).sum(dim=-1)
    sq = norms.unsqueeze(-1) + norms.unsqueeze(-2) - 2.0 * (x @ x.transpose(-1, -2))
    eye = torch.eye(x.shape[-2], dtype=torch.bool, device=x.device)
    return sq.clamp(min=0.0).masked_fill(eye, 0.0)


def pairwise_distances(f: Tensor) -> Tensor:
    """Euclidean (not squared) distances between embeddings.

    Args:
        f: Embeddings (B, D).

    Returns:
        (B, B) distances; the diagonal is exactly 0 and the gradient is finite (0) at coincident points.
    """
    return _safe_sqrt(_squared_distances(f))


def attribute_distances(f_m: Tensor) -> Tensor:
    """Per-attribute Euclidean distances.

    Args:
        f_m: Per-attribute embeddings (B, M, D).

    Returns:
        (B, B, M) distances d_m,ij = ||f_m(x_i) - f_m(x_j)||_2.
    """
    sq = _squared_distances(f_m.transpose(0, 1))
    return _safe_sqrt(sq).permute(1, 2, 0)


def _off_diagonal(b: int, device: torch.device) -> Tensor:
    return ~torch.eye(b, dtype=torch.bool, device=device)


def attribute_shares(d_m: Tensor) -> Tensor:
    """Shares p_m = d_m / sum_k d_k of each pair's attribute distances.

    Args:
        d_m: (B, B, M) attribute distances.

    Returns:
        (B, B, M) shares; 1/M on the diagonal and wherever all M distances are 0.
    """
    m = d_m.shape[-1]
    total = d_m.sum(dim=-1, keepdim=True)
    defined = (total > 0) & _off_diagonal(d_m.shape[0], d_m.device).unsqueeze(-1)
    uniform = torch.full_like(d_m, 1.0 / m)
    return torch.where(defined, d_m / torch.where(defined, total, torch.ones_like(total)), uniform)


def metric_distillation_loss(d: Tensor, d_m: Tensor) -> Tensor:
    """L_md = mean_ij | d_ij - (1/M) sum_m d_m,ij |, with d detached and the diagonal taken as 0.

    Args:
        d: (B, B) target distances (no gradient flows into them).
        d_m: (B, B, M) attribute distances.

    Returns:
        Scalar, the mean over all B x B ordered pairs.
    """
    gap = (d.detach() - d_m.mean(dim=-1)).abs()
    gap = gap * _off_diagonal(d.shape[0], d.device)
    return gap.mean()


def differing_attributes(attrs: Tensor) -> Tensor:
    """s_m,ij = (1 - a_i,m a_j,m) / 2: 1 where identities i and j differ in attribute m.

    Args:
        attrs: (B, M) attribute vectors in {-1, +1}.

    Returns:
        (B, B, M) float tensor of 0 and 1.
    """
    a = attrs.float()
    return (1.0 - a.unsqueeze(1) * a.unsqueeze(0)) / 2.0


def prior_lambda(n: Tensor, m: int) -> Tensor:
    """lambda(N) = 0.5 ln(a / b), a = (M - N') sqrt(N'/M) + 0.004, b = N' (1 - sqrt(N'/M)) + 0.001.

    N' = clamp(N, 0, M - 0.1). exp(-lambda) tau / N and exp(lambda) (1 - tau) / (M - N) then both equal
    t(N) = sqrt(sqrt(N/M) (1 - sqrt(N/M)) / (N (M - N))) up to the small constants, which also give
    exp(lambda) = 2 at N = 0 (common attributes of identical vectors may take at most 2/M each).
    """
    nc = n.clamp(min=0.0, max=m - 0.1)
    root = torch.sqrt(nc / m)
    a = (m - nc) * root + 0.004
    b = nc * (1.0 - root) + 0.001
    return 0.5 * torch.log(a / b)


def attribute_prior_terms(d_m: Tensor, attrs: Tensor) -> PriorTerms:
    """The four terms of the attribute prior loss.

    - dsum = mean ReLU(tau - sum_m s_m p_m): the differing attributes together carry at least tau;
    - ssum = mean ReLU(sum_m (1 - s_m) p_m - (1 - tau)): the common ones at most 1 - tau;
    - d = mean sum_m ReLU(exp(-lambda) s_m tau / max(N, 1e-6) - p_m): each differing one at least t(N);
    - s = mean sum_m ReLU((1 - s_m) p_m - exp(lambda) (1 - tau) / max(M - N, 1e-6)): each common one
      at most t(N) (at most 2/M when nothing differs).

    Args:
        d_m: (B, B, M) attribute distances.
        attrs: (B, M) attribute vectors in {-1, +1}.

    Returns:
        :class:`PriorTerms` of scalars, each a mean over all B x B ordered pairs.
    """
    m = d_m.shape[-1]
    p = attribute_shares(d_m)
    s = differing_attributes(attrs).to(p.dtype)
    n = s.sum(dim=-1)
    tau = torch.sqrt(n / m)
    lam = prior_lambda(n, m)
    dsum = F.relu(tau - (s * p).sum(dim=-1)).mean()
    ssum = F.relu(((1.0 - s) * p).sum(dim=-1) - (1.0 - tau)).mean()
    lower = (torch.exp(-lam) * tau / n.clamp(min=1e-6)).unsqueeze(-1)
    upper = (torch.exp(lam) * (1.0 - tau) / (m - n).clamp(min=1e-6)).unsqueeze(-1)
    d_term = F.relu(s * lower - p).sum(dim=-1).mean()
    s_term = F.relu((1.0 - s) * p - upper).sum(dim=-1).mean()
    return PriorTerms(dsum, d_term, ssum, s_term)


def colour_prior_loss(
    d_m: Tensor, attrs: Tensor, colour_groups: Sequence[Sequence[int]], ratio: float = 0.3
) -> Tensor:
    """Optional colour term: a colour absent from both persons carries little of the distance.

    Within each colour group (say the upper-body colours), for a pair, the colours present in at least one
    of the two persons are "present" and the others "absent"; every absent colour's share is pushed below
    ``ratio`` times the mean share of the present ones: sum_absent ReLU(p_m - ratio * mean_present p).

    Args:
        d_m: (B, B, M) attribute distances.
        attrs: (B, M) attribute vectors in {-1, +1}.
        colour_groups: Lists of attribute positions, one list per group.
        ratio: The bound relative to the present colours' mean share.

    Returns:
        Scalar, summed over groups and averaged over all B x B ordered pairs (0 on the diagonal).
    """
    p = attribute_shares(d_m)
    positive = attrs > 0
    present_any = positive.unsqueeze(1) | positive.unsqueeze(0)
    total = p.new_zeros(p.shape[:2])
    for group in colour_groups:
        idx = torch.as_tensor(list(group), dtype=torch.long, device=p.device)
        if idx.numel() == 0:
            continue
        pg = p.index_select(-1, idx)
        present = present_any.index_select(-1, idx).to(p.dtype)
        count = present.sum(dim=-1)
        mean_present = (pg * present).sum(dim=-1) / count.clamp(min=1.0)
        excess = F.relu(pg - ratio * mean_present.unsqueeze(-1)) * (1.0 - present)
        total = total + excess.sum(dim=-1) * (count > 0)
    total = total * _off_diagonal(p.shape[0], p.device)
    return total.mean()


def attribute_prior_loss(
    d_m: Tensor, attrs: Tensor, colour_groups: Sequence[Sequence[int]] | None = None
) -> Tensor:
    """L_prior = L_dsum + 10 L_d + L_ssum + 10 L_s (+ the colour term when ``colour_groups`` is given).

    Args:
        d_m: (B, B, M) attribute distances.
        attrs: (B, M) attribute vectors in {-1, +1}.
        colour_groups: Optional colour groups for :func:`colour_prior_loss`.

    Returns:
        Scalar.
    """
    t = attribute_prior_terms(d_m, attrs)
    loss = t.dsum + 10.0 * t.d + t.ssum + 10.0 * t.s
    if colour_groups:
        loss = loss + colour_prior_loss(d_m, attrs, colour_groups)
    return loss


def amd_loss(
    f: Tensor, f_m: Tensor, attrs: Tensor, colour_groups: Sequence[Sequence[int]] | None = None
) -> AmdLosses:
    """The two AMD terms from embeddings.

    Args:
        f: (B, D) target embeddings (detached inside: the target is not trained).
        f_m: (B, M, D) per-attribute embeddings.
        attrs: (B, M) attribute vectors in {-1, +1}.
        colour_groups: Optional colour groups added to the prior (see :func:`colour_prior_loss`).

    Returns:
        :class:`AmdLosses` (distillation, prior), unweighted; the paper trains on 1.0 * L_md + 10 * L_prior.
    """
    d = pairwise_distances(f.detach())
    d_m = attribute_distances(f_m)
    return AmdLosses(metric_distillation_loss(d, d_m), attribute_prior_loss(d_m, attrs, colour_groups))


def attribute_classification_loss(logits: Tensor, attrs: Tensor, positive_rates: Tensor) -> Tensor:
    """Binary cross-entropy weighted against attribute imbalance (the auxiliary classifier's loss).

    Positives weigh exp(1 - r_m), negatives exp(r_m), r_m the positive rate among training identities.

    Args:
        logits: (B, M).
        attrs: (B, M) in {-1, +1}.
        positive_rates: (M,) in [0, 1].

    Returns:
        Scalar, the mean over B x M.
    """
    target = (attrs.to(logits.dtype) > 0).to(logits.dtype)
    r = positive_rates.to(device=logits.device, dtype=logits.dtype).unsqueeze(0)
    weight = target * torch.exp(1.0 - r) + (1.0 - target) * torch.exp(r)
    return F.binary_cross_entropy_with_logits(logits, target, weight=weight)


# -------------------------------------------------------------------------------- target model losses


def cross_entropy_label_smoothing(logits: Tensor, labels: Tensor, epsilon: float = 0.1) -> Tensor:
    """Cross-entropy against (1 - epsilon) one-hot + epsilon / K uniform targets.

    Args:
        logits: (B, K).
        labels: (B,) class indices.
        epsilon: Smoothing.
    """
    return F.cross_entropy(logits.float(), labels, label_smoothing=epsilon)


def circle_softmax_loss(cosine: Tensor, labels: Tensor, scale: float = 64.0, margin: float = 0.35) -> Tensor:
    """Circle loss in its softmax (classification) form (Sun et al., CVPR 2020).

    With s_p the cosine to the true class and s_n to the others: alpha_p = ReLU(1 + m - s_p),
    alpha_n = ReLU(s_n + m); logits scale * alpha_p (s_p - (1 - m)) and scale * alpha_n (s_n - m), then
    cross-entropy. The weights alpha are not differentiated (they only re-weight each similarity).

    Args:
        cosine: (B, K) cosine similarities (from a cosine classifier).
        labels: (B,) class indices.
        scale: Scale gamma.
        margin: Relaxation m.
    """
    cosine = cosine.float()
    one_hot = F.one_hot(labels, cosine.shape[1]).to(torch.bool)
    alpha_p = F.relu(1.0 + margin - cosine.detach())
    alpha_n = F.relu(cosine.detach() + margin)
    logits_p = scale * alpha_p * (cosine - (1.0 - margin))
    logits_n = scale * alpha_n * (cosine - margin)
    return F.cross_entropy(torch.where(one_hot, logits_p, logits_n), labels)


def batch_hard_triplet_loss(features: Tensor, labels: Tensor, margin: float | None = 0.3) -> Tensor:
    """Batch-hard triplet loss (Hermans et al., 2017) on Euclidean distances.

    For each anchor: its farthest positive and its nearest negative;
    ReLU(d_ap - d_an + margin), or the soft margin softplus(d_ap - d_an) when ``margin`` is ``None``.
    Anchors without a positive or without a negative in the batch are left out.

    Args:
        features: (B, D).
        labels: (B,) identities.
        margin: Margin, or ``None`` for the soft margin.
    """
    dist = pairwise_distances(features)
    same = labels.unsqueeze(0) == labels.unsqueeze(1)
    positive = same & _off_diagonal(len(labels), labels.device)
    negative = ~same
    valid = positive.any(dim=1) & negative.any(dim=1)
    if not bool(valid.any()):
        return features.sum() * 0.0
    hardest_pos = torch.where(positive, dist, torch.full_like(dist, -torch.inf)).amax(dim=1)
    hardest_neg = torch.where(negative, dist, torch.full_like(dist, torch.inf)).amin(dim=1)
    gap = (hardest_pos - hardest_neg)[valid]
    if margin is None:
        return F.softplus(gap).mean()
    return F.relu(gap + margin).mean()
