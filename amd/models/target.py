"""The target re-identification model whose distances the interpreter explains.

backbone -> feature map F (B, C, h, w) -> GeM pooling (learnable p, init 3) -> BNNeck (BatchNorm1d with
its bias frozen at 0) -> embedding f (B, C). The distance explained is the plain Euclidean distance
||f(x) - f(y)||_2. During training an identity classifier sits on the embedding: a linear layer without
bias (cross-entropy with label smoothing) or a cosine classifier (circle softmax).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from amd.errors import AmdError
from amd.models.backbones import Backbone, build_backbone

#: Classifier kinds: ``"linear"`` gives logits for cross-entropy, ``"cosine"`` gives cosine similarities
#: for circle softmax.
CLASSIFIERS: tuple[str, ...] = ("linear", "cosine")


class TargetOutput(NamedTuple):
    """What the target returns in training mode.

    Attributes:
        logits: (B, K) identity logits, or cosine similarities for the cosine classifier.
        pooled: (B, C) GeM-pooled features before the BNNeck (the usual input of a triplet loss).
        embedding: (B, C) the embedding after the BNNeck.
    """

    logits: Tensor
    pooled: Tensor
    embedding: Tensor


class GeM(nn.Module):
    """Generalised-mean pooling ((1/hw) sum x^p)^(1/p) with a learnable exponent p.

    Args:
        p: Initial exponent (3 is the usual choice; 1 is average pooling, large p approaches max pooling).
        eps: Inputs are clamped to at least ``eps`` so that the power and its gradient are defined.
    """

    def __init__(self, p: float = 3.0, eps: float = 1e-6) -> None:
        super().__init__()
        self.p = nn.Parameter(torch.tensor(float(p)))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, h, w) -> (B, C)."""
        # Powers of activations overflow float16, so the pooling always runs in float32.
        with torch.autocast(device_type=x.device.type, enabled=False):
            x = x.float()
            return x.clamp(min=self.eps).pow(self.p).mean(dim=(2, 3)).pow(1.0 / self.p)

    def cell_weights(self, x: Tensor) -> Tensor:
        """(B, C, h, w) -> (B, 1, h, w): the mean over channels of clamp(x, eps)^p, each cell's weight in the pool."""
        with torch.autocast(device_type=x.device.type, enabled=False):
            return x.float().clamp(min=self.eps).pow(self.p).mean(dim=1, keepdim=True)

    def forward_masked(self, x: Tensor, masks: Tensor) -> Tensor:
        """GeM of ``x`` multiplied by each of M masks, without materialising the M products.

        Because the masks are positive, clamp(x * a, eps)^p equals clamp(x, eps)^p * a^p wherever
        x >= eps / a, so the M pooled vectors come from one batched matrix product
        (B, C, hw) @ (B, hw, M). Where x < eps the two differ by less than eps^p per element; with all masks
        equal to 1 the result is exactly the unmasked GeM up to the order of the float sums.

        Args:
            x: Feature maps (B, C, h, w), non-negative (they follow a ReLU).
            masks: Positive masks (B, M, h, w).

        Returns:
            (B, M, C) pooled features.
        """
        with torch.autocast(device_type=x.device.type, enabled=False):
            x = x.float()
            masks = masks.float()
            b, c, h, w = x.shape
            xp = x.clamp(min=self.eps).pow(self.p).reshape(b, c, h * w)
            mp = masks.pow(self.p).reshape(b, masks.shape[1], h * w).transpose(1, 2)
            pooled = torch.bmm(xp, mp) / (h * w)
            # The same floor as the unmasked GeM keeps the 1/p root's gradient finite when a mask is ~0.
            pooled = pooled.clamp(min=self.eps**3).pow(1.0 / self.p)
            return pooled.transpose(1, 2)


class CosineClassifier(nn.Module):
    """Cosine similarities between normalised features and normalised class weights: (B, C) -> (B, K)."""

    def __init__(self, in_features: int, num_classes: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_classes, in_features))
        nn.init.normal_(self.weight, std=0.01)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(F.normalize(x, dim=1), F.normalize(self.weight, dim=1))


class ReIDModel(nn.Module):
    """Backbone + GeM + BNNeck (+ identity classifier).

    Args:
        backbone: A staged backbone from :func:`~amd.models.backbones.build_backbone`.
        num_classes: Training identities K; 0 builds no classifier (inference only).
        classifier: One of :data:`CLASSIFIERS`.
        gem_p: Initial GeM exponent.

    In eval mode ``forward`` returns the embedding (B, D) with D = C; in training mode a
    :class:`TargetOutput`.
    """

    def __init__(
        self, backbone: Backbone, num_classes: int = 0, classifier: str = "linear", gem_p: float = 3.0
    ) -> None:
        super().__init__()
        if classifier not in CLASSIFIERS:
            raise AmdError(f"unknown classifier {classifier!r} (choose one of {', '.join(CLASSIFIERS)})")
        self.backbone = backbone
        self.embedding_dim = backbone.out_channels
        self.num_classes = int(num_classes)
        self.classifier_kind = classifier
        self.pool = GeM(p=gem_p)
        self.bnneck = nn.BatchNorm1d(self.embedding_dim)
        nn.init.ones_(self.bnneck.weight)
        nn.init.zeros_(self.bnneck.bias)
        # BNNeck: a bias would shift every embedding alike and only slow down the classifier's training.
        self.bnneck.bias.requires_grad_(False)
        self.classifier: nn.Module | None
        if self.num_classes > 0:
            if classifier == "linear":
                self.classifier = nn.Linear(self.embedding_dim, self.num_classes, bias=False)
                nn.init.normal_(self.classifier.weight, std=0.001)
            else:
                self.classifier = CosineClassifier(self.embedding_dim, self.num_classes)
        else:
            self.classifier = None

    def feature_map(self, x: Tensor) -> Tensor:
        """Images (B, 3, H, W) -> feature map F (B, C, H/16, W/16)."""
        return self.backbone(x)

    def pooled(self, fmap: Tensor) -> Tensor:
        """GeM pooling of a feature map: (B, C, h, w) -> (B, C)."""
        return self.pool(fmap)

    def head(self, fmap: Tensor) -> Tensor:
        """GeM + BNNeck on any feature map: (B, C, h, w) -> embedding (B, D)."""
        return self.bnneck(self.pool(fmap))

    def masked_head(self, fmap: Tensor, masks: Tensor) -> Tensor:
        """The head applied to ``fmap`` multiplied by each mask: f_m = head(F * A_m).

        Used by the interpreter with this model frozen in eval mode, so the BNNeck applies its running
        statistics to every (image, mask) pair independently.

        Args:
            fmap: Feature maps F (B, C, h, w).
            masks: Positive masks A (B, M, h, w).

        Returns:
            Per-mask embeddings (B, M, D).
        """
        pooled = self.pool.forward_masked(fmap, masks)
        b, m, c = pooled.shape
        return self.bnneck(pooled.reshape(b * m, c)).reshape(b, m, c)

    def forward(self, x: Tensor) -> Tensor | TargetOutput:
        """Images (B, 3, H, W) -> embedding (B, D) in eval mode, :class:`TargetOutput` in training mode."""
        pooled = self.pool(self.backbone(x))
        embedding = self.bnneck(pooled)
        if not self.training:
            return embedding
        if self.classifier is None:
            raise AmdError("this target model has no identity classifier (built with num_classes=0)")
        return TargetOutput(self.classifier(embedding), pooled, embedding)

    def architecture(self) -> dict[str, Any]:
        """Plain description from which :func:`build_target` rebuilds this model (stored in checkpoints)."""
        return {
            "type": "target",
            "backbone": self.backbone.name,
            "embedding_dim": self.embedding_dim,
            "num_classes": self.num_classes,
            "classifier": self.classifier_kind,
            "pooling": "gem",
        }


def build_target(
    architecture: Mapping[str, Any] | str,
    num_classes: int = 0,
    classifier: str = "linear",
    pretrained_path: str | Path | None = None,
) -> ReIDModel:
    """Build a target model from a backbone name or from :meth:`ReIDModel.architecture`'s description.

    Args:
        architecture: A backbone name (``"resnet50"``) or an architecture dict (its ``num_classes`` and
            ``classifier`` override the keyword arguments).
        num_classes: Training identities (0 for inference only).
        classifier: One of :data:`CLASSIFIERS`.
        pretrained_path: ImageNet weights for the backbone (see :func:`build_backbone`).
    """
    if isinstance(architecture, str):
        arch: Mapping[str, Any] = {"backbone": architecture}
    else:
        arch = architecture
        if arch.get("type", "target") != "target":
            raise AmdError(f"architecture of type {arch.get('type')!r} is not a target model")
        if arch.get("pooling", "gem") != "gem":
            raise AmdError(f"unsupported pooling {arch.get('pooling')!r}")
    backbone = build_backbone(str(arch.get("backbone")), pretrained_path=pretrained_path)
    model = ReIDModel(
        backbone,
        num_classes=int(arch.get("num_classes", num_classes)),
        classifier=str(arch.get("classifier", classifier)),
    )
    expected_dim = arch.get("embedding_dim")
    if expected_dim is not None and int(expected_dim) != model.embedding_dim:
        raise AmdError(
            f"architecture says embedding_dim {expected_dim}, backbone gives {model.embedding_dim}"
        )
    return model
