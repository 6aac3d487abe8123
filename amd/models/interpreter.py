"""The AMD interpreter: attention maps that split a target model's distance into attribute components.

For an image x the interpreter

1. runs the target's frozen stages up to the split point (shared: computed once, no gradient);
2. runs the target's own remaining stages to get the target feature map F (B, C, h, w), frozen;
3. runs its own trainable copy of the remaining stages, then the attribute decomposition head: a 3x3 conv
   (C -> 256, no bias), BatchNorm and ReLU, and a 1x1 conv (256 -> M, no bias), giving Z (B, M, h, w);
4. turns Z into attention maps A_m = phi(Z_m) with phi(z) = exp(z) for z < 0 and sqrt(1 + z) for z >= 0;
5. computes the per-attribute embeddings f_m = head(F * A_m) with the target's frozen GeM + BNNeck.

The last conv starts at zero, so an untrained interpreter has A = 1 everywhere and every f_m equals f.

Two map modes:

- ``"faithful"`` (the paper): the masks are A_m themselves.
- ``"localising"``: each map is normalised over space to mean 1, Â_m, and the mask is g_m * Â_m with a
  learned per-attribute gain g_m = exp(gamma_m) (gamma starts at 0). The gain carries the scale of the
  attribute's distance, the same for every image, so an image can no longer signal an attribute by the
  overall brightness of its map: the map has to say *where* the evidence is. The maps shown to users are
  Â_m; with an untrained head they are 1, and so are the gains. The normalisation is either
  ``"mean"`` (Â_m = A_m / mean_hw(A_m)) or ``"softmax"`` (Â_m = h * w * softmax_hw(Z_m), a distribution
  over the cells scaled to mean 1, which lets one region take nearly all of the weight).

Two optional attribute classifiers predict the attributes of images without labels:

- the auxiliary classifier: its own copy of the remaining stages, average pooling, a linear layer with M
  outputs;
- the pooled classifier (localising mode only): attribute m is predicted from the target's feature map
  pooled with its own map's weights, p_m = sum_hw (Â_m / hw) F, logit_m = <v_m, p_m> + b_m. Training it
  makes each map cover the evidence of its attribute: a map that looks elsewhere pools features that
  cannot tell whether the attribute is there. The target's features are frozen, so they cannot be
  reshaped to carry an attribute everywhere. With ``pooled_features="local"`` the pooled features are
  instead the target's (frozen) output of the stage before the last, resized to the map grid and passed
  through a trainable per-cell layer (1x1 conv, BatchNorm, ReLU): each cell then only describes its own
  neighbourhood, so the map has to find the cells that show the attribute.

An interpreter has at most one of the two.

Where the localising maps come from (``map_source``):

- ``"head"``: the decomposition head above (trained by the distillation losses);
- ``"evidence"``: an attribute classifier that scores every cell on its own. The target's (frozen) output of
  the stage before the last goes through a BatchNorm and a 1x1 conv with M outputs, giving scores S (B, M, h,
  w); attribute m's logit is a smooth maximum of its scores over the cells, log mean_hw exp(S_m) (trained
  with the attribute classification loss). With ``evidence_temperature`` T the smooth maximum is
  (1 / T) log mean_hw exp(T S_m): T = 1 is the default, a T below 1 leans towards the mean over the cells,
  so that a crop's logit rests on all the cells that show the attribute rather than on its single strongest
  one (softer pooling spreads the classifier's evidence over a sleeve rather than the cuff where it shows
  best). T can also be given per attribute: a soft pooling suits what is drawn over a large area, while
  a small item that fills a cell or two (a handbag) is better served by the hard end. A crop that shows an
  attribute must score high somewhere, and
  cells that see little beyond their own neighbourhood can only do so where the attribute is drawn, so the
  peak of S_m lies on the evidence. The map logits are Z_m = t_m * (S_m - mean S_m) / std S_m (over the
  cells) with a learned per-attribute sharpness t_m = exp(tau_m): standardised, the scores say where, and
  t alone says how sharply, however confident the classifier grows. The distillation trains t and the
  gains but cannot move S (it is detached there), so it decides how sharp a map is and how much its
  attribute weighs, never where it looks. This
  interpreter has no copy of the late stages and no head, and predicts attributes with its evidence
  classifier unless it also has the auxiliary one. With ``evidence_hidden`` channels the classifier has a
  hidden per-cell layer (1x1 conv, BatchNorm, ReLU) before its output conv;
- ``"head+evidence"``: the sum of both;
- ``"pinned"``: the evidence fixes where each map peaks and the head shapes the rest. With H the head's
  output and p the cell where the evidence map peaks, Z_m = t_m * standardised S_m + min(H_m - H_m[p], 0)
  and the map is scaled by phi(H_m[p]). No cell can rise above the peak, so the map points where the
  evidence does, while the head still sets, per image, how much the attribute weighs (the scale) and
  which other cells count (it can dim any of them).

A localising interpreter can also give every mask a learned floor (``map_floor``): the mask built from Â_m
becomes (1 - e_m) Â_m + e_m with e_m = sigmoid(rho_m). The peak and the shape stay where they were; a share
e_m of the mask covers the whole crop. Like the gains, the floor is part of the masks only: the maps returned
(and shown to users) are Â_m without it, so they keep their contrast. Features pooled over a few cells vary
between two crops more than features pooled over the whole crop, so sharp masks make sum_m d_m shrink less
than d between close pairs and grow less between distant ones; the floor lets the distillation trade that
against how sharply a component looks at its part.

The localising mode can also learn a location prior: a per-attribute grid of logits (16 x 8, resized to the
map's grid). It starts at 0 and learns, for instance, that a hat is usually near the top of a crop, so that
the image-dependent part only has to say where this person's hat is. With the head alone it is added to Z;
with evidence maps it is added to the cell scores S, so the evidence loss teaches it.

Maps from evidence can also lean towards where the target itself pools (``foreground_weights``, one
gamma_m >= 0 per attribute, 0 by default). With w the target's GeM weight of each cell, the mean over the
channels of F^p (the cells that feed its embedding most: the person, not the background), the map logits
are built from standardise(standardised S_m + gamma_m * c) instead of standardised S_m, where c is log w
centred over the cells. An attribute drawn over the whole person (gender) has evidence nearly as strong on
every cell of the body, and its peak can drift onto a background cell whose colour looks like clothing;
the target's own pooling pulls it back onto the person. An attribute that lies off the body (a handbag)
needs gamma_m = 0. The weights are fixed, not trained: they are chosen per attribute group on labelled
masks of crops that neither training nor testing uses (:func:`amd.pointing.choose_foreground_weights`),
and stored in the checkpoint's architecture.
"""

from __future__ import annotations

import copy
import math
import numbers
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from amd.errors import AmdError
from amd.models.backbones import STAGES, next_stage, stage_range
from amd.models.target import ReIDModel

MAP_MODES: tuple[str, ...] = ("faithful", "localising")

#: Grid (h, w) of the learned location prior, resized to the maps' grid.
PRIOR_GRID: tuple[int, int] = (16, 8)

#: Which features the pooled classifier pools.
POOLED_FEATURES: tuple[str, ...] = ("final", "local")

#: Width of the per-cell layer of the pooled classifier on local features.
LOCAL_CHANNELS = 256

#: Where the localising maps come from (see the module's notes).
MAP_SOURCES: tuple[str, ...] = ("head", "evidence", "head+evidence", "pinned")

#: How the localising mode normalises a map over space.
NORMALISATIONS: tuple[str, ...] = ("mean", "softmax")

#: Stages after which the interpreter may branch off the target (the last stage must be its own).
SPLIT_POINTS: tuple[str, ...] = STAGES[:-1]


def _temperatures(value: float | Sequence[float], num_attributes: int) -> tuple[float, ...]:
    """The evidence temperature of every attribute from one value or one per attribute, each checked."""
    if isinstance(value, numbers.Real):
        values: tuple[float, ...] = (float(value),) * num_attributes
    else:
        try:
            values = tuple(float(v) for v in value)
        except (TypeError, ValueError):
            raise AmdError(f"the evidence temperature must be a number or one per attribute, not {value!r}") from None
        if len(values) != num_attributes:
            raise AmdError(
                f"the evidence temperature needs one value or {num_attributes} (one per attribute), not {len(values)}"
            )
    bad = [t for t in values if not (math.isfinite(t) and t > 0)]
    if bad:
        raise AmdError(f"the evidence temperature must be a finite value above 0, not {bad[0]}")
    return values


def phi(z: Tensor) -> Tensor:
    """phi(z) = exp(z) for z < 0, sqrt(1 + z) for z >= 0: continuous, positive, phi(0) = 1.

    Each branch only sees its own half of the inputs, so neither overflows nor takes the root of a
    negative number, and the gradient stays finite for any z. The halves are selected with ``where``
    rather than ``clamp``: clamp passes no gradient at its bound, and an untrained head sits exactly at
    z = 0, where the gradient must be phi'(0+) = 1/2 for training to start.
    """
    negative_side = z < 0
    zero = torch.zeros_like(z)
    negative = torch.exp(torch.where(negative_side, z, zero))
    positive = torch.sqrt(1.0 + torch.where(negative_side, zero, z))
    return torch.where(negative_side, negative, positive)


def standardise_cells(scores: Tensor, eps: float = 1e-4) -> Tensor:
    """(S - mean) / std over the cells of each map of ``scores`` (B, M, h, w); a flat map stays flat (0)."""
    flat = scores.float().flatten(2)
    mean = flat.mean(dim=2, keepdim=True)
    std = flat.std(dim=2, keepdim=True, unbiased=False)
    return ((flat - mean) / (std + eps)).view_as(scores).to(scores.dtype)


class InterpreterOutput(NamedTuple):
    """What :class:`Interpreter` returns for a batch of B images.

    Attributes:
        embedding: (B, D) the target's embedding f(x).
        maps: (B, M, h, w) the attention maps shown to users (A in faithful mode, Â in localising mode).
        attribute_embeddings: (B, M, D) the per-attribute embeddings f_m(x).
        attribute_logits: (B, M) logits of the auxiliary classifier (else of the evidence classifier), or
            ``None`` without either.
        evidence_logits: (B, M) logits of the evidence classifier (``map_source`` with evidence), or ``None``.
    """

    embedding: Tensor
    maps: Tensor
    attribute_embeddings: Tensor
    attribute_logits: Tensor | None
    evidence_logits: Tensor | None = None


class Interpreter(nn.Module):
    """An AMD interpreter distilled from a frozen target model.

    Args:
        target: The target model. It is frozen in place (``requires_grad`` off) and kept in eval mode,
            whatever mode the interpreter is put in.
        num_attributes: M.
        split: Last stage shared with the target (one of :data:`SPLIT_POINTS`; default after ``layer2``).
        map_mode: One of :data:`MAP_MODES`.
        head_channels: Width of the decomposition head's hidden layer.
        aux_classifier: Build the auxiliary attribute classifier.
        normalisation: ``"mean"`` or ``"softmax"`` (localising mode only, see :data:`NORMALISATIONS`).
        pooled_classifier: Build the attribute classifier that pools the target's features with each
            attribute's map (localising mode only).
        location_prior: Learn a per-attribute location prior (localising mode only).
        pooled_features: ``"final"`` (the target's feature map F) or ``"local"`` (see the module's notes).
        map_source: One of :data:`MAP_SOURCES` (anything but ``"head"`` needs the localising mode).
        evidence_hidden: Width of the evidence classifier's hidden per-cell layer (0: none).
        map_floor: Initial value of a learned per-attribute floor e_m in (0, 1) (localising mode only; 0:
            no floor). Each mask is built from (1 - e_m) Â_m + e_m: the same peak and shape over a
            constant share of the whole crop; the maps returned stay Â_m (see the module's notes).
        foreground_weights: (M,) gamma_m >= 0 leaning each evidence map towards the cells the target pools
            most from (maps from evidence only; ``None`` or all zeros: none; see the module's notes).
        evidence_temperature: T > 0 of the evidence classifier's smooth maximum over the cells, one value
            or M (one per attribute; maps from evidence only; see the module's notes).

    Only the interpreter's own parameters are saved in its checkpoints (:meth:`own_state_dict`).
    """

    def __init__(
        self,
        target: ReIDModel,
        num_attributes: int,
        split: str = "layer2",
        map_mode: str = "faithful",
        head_channels: int = 256,
        aux_classifier: bool = False,
        normalisation: str = "mean",
        pooled_classifier: bool = False,
        location_prior: bool = False,
        pooled_features: str = "final",
        map_source: str = "head",
        evidence_hidden: int = 0,
        map_floor: float = 0.0,
        foreground_weights: Sequence[float] | None = None,
        evidence_temperature: float | Sequence[float] = 1.0,
    ) -> None:
        super().__init__()
        if split not in SPLIT_POINTS:
            raise AmdError(f"unknown split point {split!r} (choose one of {', '.join(SPLIT_POINTS)})")
        if map_mode not in MAP_MODES:
            raise AmdError(f"unknown map mode {map_mode!r} (choose one of {', '.join(MAP_MODES)})")
        if num_attributes < 1:
            raise AmdError("an interpreter needs at least one attribute")
        if normalisation not in NORMALISATIONS:
            raise AmdError(
                f"unknown map normalisation {normalisation!r} (choose one of {', '.join(NORMALISATIONS)})"
            )
        if map_mode != "localising" and (normalisation != "mean" or pooled_classifier or location_prior):
            raise AmdError(
                "the map normalisation, the pooled classifier and the location prior belong to the localising mode"
            )
        if pooled_features not in POOLED_FEATURES:
            raise AmdError(
                f"unknown pooled features {pooled_features!r} (choose one of {', '.join(POOLED_FEATURES)})"
            )
        if map_source not in MAP_SOURCES:
            raise AmdError(f"unknown map source {map_source!r} (choose one of {', '.join(MAP_SOURCES)})")
        if map_mode != "localising" and map_source != "head":
            raise AmdError("maps from the evidence classifier belong to the localising mode")
        if aux_classifier and pooled_classifier:
            raise AmdError("choose the auxiliary or the pooled attribute classifier, not both")
        if evidence_hidden < 0 or (evidence_hidden and map_source == "head"):
            raise AmdError(
                "the evidence classifier's hidden width must be 0 or more, and needs an evidence map source"
            )
        if not 0.0 <= map_floor < 1.0 or (map_floor and map_mode != "localising"):
            raise AmdError("the map floor must lie in [0, 1) and belongs to the localising mode")
        temperatures = _temperatures(evidence_temperature, int(num_attributes))
        if any(t != 1.0 for t in temperatures) and map_source == "head":
            raise AmdError("the evidence temperature belongs to maps from evidence (map source other than head)")
        self.target = target
        self.target.requires_grad_(False)
        self.target.eval()
        self.num_attributes = int(num_attributes)
        self.split = split
        self.map_mode = map_mode
        self.head_channels = int(head_channels)
        self.normalisation = normalisation
        self.late_stages = stage_range(next_stage(split))
        self.map_source = map_source
        backbone = target.backbone
        channels = backbone.out_channels
        self.late: nn.Sequential | None = None
        self.decompose: nn.Sequential | None = None
        if map_source != "evidence":
            # The trainable copy starts from the target's own weights: its features already suit the target's
            # feature map, which is what the maps must select from.
            self.late = nn.Sequential(*(copy.deepcopy(backbone.stages[name]) for name in self.late_stages))
            self.late.requires_grad_(True)
            self.decompose = nn.Sequential(
                nn.Conv2d(channels, self.head_channels, kernel_size=3, padding=1, bias=False),
                nn.BatchNorm2d(self.head_channels),
                nn.ReLU(inplace=True),
                nn.Conv2d(self.head_channels, self.num_attributes, kernel_size=1, bias=False),
            )
            # Z = 0 at the start gives A = phi(0) = 1: every component starts equal to the full distance.
            nn.init.zeros_(self.decompose[-1].weight)
        self.evidence: nn.Sequential | None = None
        self.sharpness: nn.Parameter | None = None
        self.evidence_hidden = int(evidence_hidden)
        # One value when every attribute shares it (as checkpoints store it), else one per attribute.
        self.evidence_temperature: float | tuple[float, ...] = (
            temperatures[0] if len(set(temperatures)) == 1 else temperatures
        )
        if map_source != "head":
            local_in = backbone.stage_channels[STAGES[-2]]
            layers: list[nn.Module] = [nn.BatchNorm2d(local_in)]
            width = local_in
            if self.evidence_hidden:
                # One hidden per-cell layer: still a classifier of each cell on its own, with more capacity.
                layers += [
                    nn.Conv2d(local_in, self.evidence_hidden, kernel_size=1, bias=False),
                    nn.BatchNorm2d(self.evidence_hidden),
                    nn.ReLU(inplace=True),
                ]
                width = self.evidence_hidden
            layers.append(nn.Conv2d(width, self.num_attributes, kernel_size=1))
            self.evidence = nn.Sequential(*layers)
            nn.init.normal_(self.evidence[-1].weight, std=0.01)
            nn.init.zeros_(self.evidence[-1].bias)
            self.sharpness = nn.Parameter(torch.zeros(self.num_attributes))
        self.log_gain = nn.Parameter(torch.zeros(self.num_attributes)) if map_mode == "localising" else None
        self.map_floor = float(map_floor)
        self.floor_logit: nn.Parameter | None = None
        if map_floor > 0:
            self.floor_logit = nn.Parameter(
                torch.full((self.num_attributes,), math.log(map_floor / (1 - map_floor)))
            )
        # A plain (non-persistent) buffer: it follows the model's device, and the checkpoint keeps the values
        # in its architecture, so checkpoints without them still load.
        self.foreground: Tensor | None
        self.register_buffer("foreground", None, persistent=False)
        if foreground_weights is not None:
            self.set_foreground_weights(foreground_weights)
        self.aux_late: nn.Sequential | None = None
        self.aux_fc: nn.Linear | None = None
        if aux_classifier:
            self.aux_late = nn.Sequential(
                *(copy.deepcopy(backbone.stages[name]) for name in self.late_stages)
            )
            self.aux_late.requires_grad_(True)
            self.aux_fc = nn.Linear(channels, self.num_attributes)
            nn.init.normal_(self.aux_fc.weight, std=0.001)
            nn.init.zeros_(self.aux_fc.bias)
        self.pooled_weight: nn.Parameter | None = None
        self.pooled_bias: nn.Parameter | None = None
        self.pooled_features = pooled_features
        self.pooled_local: nn.Sequential | None = None
        if pooled_classifier and pooled_features == "local":
            local_in = backbone.stage_channels[STAGES[-2]]
            self.pooled_local = nn.Sequential(
                nn.Conv2d(local_in, LOCAL_CHANNELS, kernel_size=1, bias=False),
                nn.BatchNorm2d(LOCAL_CHANNELS),
                nn.ReLU(inplace=True),
            )
        if pooled_classifier:
            width = LOCAL_CHANNELS if self.pooled_local is not None else channels
            self.pooled_weight = nn.Parameter(torch.randn(self.num_attributes, width) * 0.001)
            self.pooled_bias = nn.Parameter(torch.zeros(self.num_attributes))
        self.location_logits: nn.Parameter | None = None
        if location_prior:
            self.location_logits = nn.Parameter(torch.zeros(self.num_attributes, *PRIOR_GRID))

    @property
    def has_aux_classifier(self) -> bool:
        """Whether the interpreter predicts attributes (with any of its classifiers)."""
        return self.aux_fc is not None or self.pooled_weight is not None or self.evidence is not None

    @property
    def has_pooled_classifier(self) -> bool:
        return self.pooled_weight is not None

    def train(self, mode: bool = True) -> Interpreter:
        """Set the interpreter's own modules to ``mode``; the target always stays in eval mode, and so does
        a frozen evidence classifier (no parameter requiring gradients), whose batch statistics stay fixed."""
        super().train(mode)
        self.target.eval()
        if self.evidence is not None and not any(p.requires_grad for p in self.evidence.parameters()):
            self.evidence.eval()
        return self

    def own_named_parameters(self) -> Iterator[tuple[str, nn.Parameter]]:
        """The interpreter's own (trainable) parameters, without the target's."""
        for name, param in self.named_parameters():
            if not name.startswith("target."):
                yield name, param

    def own_parameters(self) -> Iterator[nn.Parameter]:
        """The parameters an optimiser should update."""
        for _, param in self.own_named_parameters():
            yield param

    def own_state_dict(self) -> dict[str, Tensor]:
        """The state dict without the target's tensors (those live in the target's checkpoint)."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith("target.")}

    def load_own_state_dict(self, state: Mapping[str, Tensor]) -> None:
        """Load what :meth:`own_state_dict` saved.

        Raises:
            AmdError: A tensor is missing, unexpected or of the wrong shape.
        """
        own = self.own_state_dict()
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own))
        wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
        if missing or unexpected or wrong:
            parts = []
            for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)):
                if keys:
                    parts.append(f"{len(keys)} {label} (e.g. {keys[0]})")
            raise AmdError("interpreter weights do not fit this architecture: " + ", ".join(parts))
        self.load_state_dict(dict(state), strict=False)

    def warm_start(self, state: Mapping[str, Tensor]) -> list[str]:
        """Copy the tensors of another interpreter's own state that fit this one (same name and shape).

        Used to start a variant (another map normalisation, another classifier) from a distilled
        interpreter of the same target instead of from scratch.

        Returns:
            The names of the tensors copied.

        Raises:
            AmdError: Nothing fits (the state belongs to another architecture).
        """
        own = self.own_state_dict()
        fitting = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
        if not fitting:
            raise AmdError("none of the given interpreter's weights fit this interpreter")
        self.load_state_dict(fitting, strict=False)
        return sorted(fitting)

    def architecture(self) -> dict[str, Any]:
        """Plain description from which :func:`build_interpreter` rebuilds this model."""
        return {
            "type": "interpreter",
            "backbone": self.target.backbone.name,
            "embedding_dim": self.target.embedding_dim,
            "num_attributes": self.num_attributes,
            "split": self.split,
            "map_mode": self.map_mode,
            "head_channels": self.head_channels,
            "aux_classifier": self.aux_fc is not None,
            "normalisation": self.normalisation,
            "pooled_classifier": self.has_pooled_classifier,
            "location_prior": self.location_logits is not None,
            "pooled_features": self.pooled_features,
            "map_source": self.map_source,
            "evidence_hidden": self.evidence_hidden,
            "map_floor": self.map_floor,
            "foreground_weights": None if self.foreground is None else [float(g) for g in self.foreground],
            "evidence_temperature": (
                self.evidence_temperature
                if isinstance(self.evidence_temperature, float)
                else list(self.evidence_temperature)
            ),
        }

    def set_foreground_weights(self, weights: Sequence[float] | None) -> None:
        """Set (or with ``None`` clear) the per-attribute foreground weights gamma (see the module's notes).

        Raises:
            AmdError: Not M finite values >= 0, or an interpreter whose maps do not come from evidence.
        """
        if weights is None:
            self.foreground = None
            return
        values = torch.as_tensor([float(g) for g in weights], dtype=torch.float32)
        if values.shape != (self.num_attributes,) or not bool(torch.isfinite(values).all()) or bool((values < 0).any()):
            raise AmdError(f"foreground weights must be {self.num_attributes} finite values >= 0")
        if self.evidence is None:
            raise AmdError("foreground weights lean maps from evidence; this interpreter's maps have none")
        device = self.sharpness.device if self.sharpness is not None else None
        self.foreground = values.to(device) if bool((values > 0).any()) else None

    def pooling_log_weight(self, fmap: Tensor, size: torch.Size | tuple[int, int]) -> Tensor:
        """log w centred over the cells (B, 1, h, w): w the target's GeM weight per cell, mean_c F^p."""
        w = self.target.pool.cell_weights(fmap)
        if w.shape[2:] != tuple(size):
            w = F.adaptive_avg_pool2d(w, tuple(size))
        log_w = torch.log(w.clamp(min=1e-30))
        return log_w - log_w.mean(dim=(2, 3), keepdim=True)

    def gains(self) -> Tensor:
        """Per-attribute gains g (M,) of the localising mode; ones in faithful mode."""
        if self.log_gain is None:
            return torch.ones(self.num_attributes, device=next(self.own_parameters()).device)
        return torch.exp(self.log_gain)

    def floors(self) -> Tensor | None:
        """Per-attribute map floors e (M,) in (0, 1), or ``None`` without them."""
        if self.floor_logit is None:
            return None
        return torch.sigmoid(self.floor_logit)

    def attention(self, shared: Tensor) -> tuple[Tensor, Tensor]:
        """Maps from the output of the shared stages.

        Args:
            shared: (B, C_split, h', w') output of the split stage.

        Returns:
            ``(maps, masks)``, both (B, M, h, w): the maps shown to users and the masks applied to F.
        """
        local = fmap = None
        if self.evidence is not None:
            with torch.no_grad():
                local = self._local_features(shared)
                if self.foreground is not None:
                    fmap = self.target.backbone(local, start=STAGES[-1])
        maps, masks, _ = self._maps(shared, local, fmap)
        return maps, masks

    def _maps(
        self, shared: Tensor, local: Tensor | None, fmap: Tensor | None = None
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        """``(maps, masks, evidence logits or None)`` from the split stage's and the local features.

        ``fmap``, the target's feature map F, is needed only with foreground weights.
        """
        scores = self.cell_scores(local) if self.evidence is not None and local is not None else None
        z, amplitude = self._map_logits(shared, scores, fmap)
        maps, masks = self._normalise(z, amplitude)
        return maps, masks, self.evidence_logits(scores) if scores is not None else None

    def cell_scores(self, local: Tensor) -> Tensor:
        """Cell scores S (B, M, h, w) of the evidence classifier on the local features, the location prior
        included (with evidence maps the prior is part of the scores, so the evidence loss teaches it)."""
        assert self.evidence is not None
        scores = self.evidence(local)
        if self.location_logits is not None:
            scores = scores + self._prior(scores.shape[2:]).to(scores.dtype)
        return scores

    @torch.no_grad()
    def evidence_cells(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Where the evidence maps would peak for any foreground weights: ``(z, c)`` for images (B, 3, H, W).

        z (B, M, h, w) holds the standardised cell scores (the location prior included) and c (B, 1, h, w)
        the centred log of the target's pooling weight; with weights gamma the maps peak where
        z + gamma * c does.

        Raises:
            AmdError: The maps do not come from evidence.
        """
        if self.evidence is None:
            raise AmdError("this interpreter's maps do not come from an evidence classifier")
        local = self._local_features(self.target.backbone(x, end=self.split))
        scores = self.cell_scores(local)
        fmap = self.target.backbone(local, start=STAGES[-1])
        return standardise_cells(scores.float()), self.pooling_log_weight(fmap, scores.shape[2:])

    def _prior(self, size: torch.Size) -> Tensor:
        """The location prior (1, M, h, w) resized to a grid of ``size``."""
        assert self.location_logits is not None
        prior = self.location_logits.unsqueeze(0)
        if prior.shape[2:] != size:
            prior = F.interpolate(prior, size=tuple(size), mode="bilinear", align_corners=False)
        return prior

    def _local_features(self, shared: Tensor) -> Tensor:
        """The target's output of the stage before the last, from the split stage's output."""
        if self.late_stages[0] == STAGES[-1]:
            return shared
        return self.target.backbone(shared, start=self.late_stages[0], end=STAGES[-2])

    def evidence_logits(self, scores: Tensor) -> Tensor:
        """Attribute logits (B, M) of the evidence classifier: (1 / T) log mean_hw exp(T S) of its cell
        scores S, T the evidence temperature."""
        flat = scores.flatten(2).float()
        t: float | Tensor = self.evidence_temperature  # multiplying and dividing by 1.0 is exact
        if not isinstance(t, float):
            t = torch.tensor(t, dtype=flat.dtype, device=flat.device)
            return (torch.logsumexp(flat * t.view(1, -1, 1), dim=2) - math.log(flat.shape[2])) / t
        return (torch.logsumexp(flat * t, dim=2) - math.log(flat.shape[2])) / t

    def _map_logits(
        self, shared: Tensor, scores: Tensor | None, fmap: Tensor | None = None
    ) -> tuple[Tensor, Tensor | None]:
        """``(Z, amplitude)``: the map logits Z (B, M, h, w) and, for pinned maps, their amplitudes (B, M, 1, 1).

        Z holds the head's output and/or the sharpened evidence scores. The location prior is already in the
        evidence scores when there are any; with the head alone it is added here.
        """
        head = None
        if self.decompose is not None and self.late is not None:
            head = self.decompose(self.late(shared))
        if scores is None or self.sharpness is None:
            assert head is not None
            if self.location_logits is not None:
                head = head + self._prior(head.shape[2:]).to(head.dtype)
            return head, None
        # Detached: the distillation sets the sharpness, not the place.
        z = standardise_cells(scores.detach())
        if self.foreground is not None:
            if fmap is None:
                raise AmdError("maps with foreground weights need the target's feature map")
            gamma = self.foreground.view(1, -1, 1, 1)
            leaned = standardise_cells(z.float() + gamma * self.pooling_log_weight(fmap, z.shape[2:]))
            z = torch.where(gamma > 0, leaned, z.float()).to(z.dtype)  # gamma = 0 leaves a map exactly as it was
        z = z * torch.exp(self.sharpness).view(1, -1, 1, 1).to(scores.dtype)
        if head is None:
            return z, None
        if z.shape[2:] != head.shape[2:]:
            z = F.adaptive_avg_pool2d(z, head.shape[2:])
        head = head.to(z.dtype)
        if self.map_source == "head+evidence":
            return z + head, None
        # Pinned: the head's value at the evidence peak H_p scales the map by phi(H_p); elsewhere the head can
        # only lower Z, by min(H - H_p, 0), so no cell rises above the peak and the peak stays where it is.
        flat = head.flatten(2)
        peak = z.flatten(2).argmax(dim=2, keepdim=True)
        at_peak = flat.gather(2, peak)
        z = z + torch.clamp(flat - at_peak, max=0.0).view_as(z)
        return z, phi(at_peak).unsqueeze(3)

    def _normalise(self, z: Tensor, amplitude: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Maps and masks from the map logits Z, each map scaled by its amplitude when there is one."""
        if self.log_gain is None:
            maps = phi(z)
            return maps, maps
        if self.normalisation == "softmax":
            b, m, h, w = z.shape
            maps = torch.softmax(z.flatten(2).float(), dim=2).view(b, m, h, w).to(z.dtype) * (h * w)
        else:
            maps = phi(z)
            maps = maps / maps.mean(dim=(2, 3), keepdim=True)
        weights = maps
        floors = self.floors()
        if floors is not None:
            # Mean 1 before and after: the floor moves weight from the peak to the whole crop. It is part of
            # the masks only; the maps shown keep their full contrast (same peak, same shape).
            floors = floors.view(1, -1, 1, 1).to(maps.dtype)
            weights = (1 - floors) * maps + floors
        if amplitude is not None:
            maps = maps * amplitude.to(maps.dtype)
            weights = weights * amplitude.to(maps.dtype)
        masks = weights * self.gains().view(1, -1, 1, 1).to(maps.dtype)
        return maps, masks

    def pooled_logits(self, fmap: Tensor, maps: Tensor) -> Tensor:
        """Attribute logits (B, M) of the pooled classifier from features (B, C, h, w) and the maps Â (B, M, h, w)."""
        assert self.pooled_weight is not None and self.pooled_bias is not None
        weights = maps / (maps.shape[2] * maps.shape[3])  # each map sums to 1 over its cells
        pooled = torch.einsum("bmhw,bchw->bmc", weights, fmap.to(weights.dtype))
        return (pooled * self.pooled_weight.to(pooled.dtype)).sum(dim=2) + self.pooled_bias.to(pooled.dtype)

    def forward(self, x: Tensor) -> InterpreterOutput:
        """Images (B, 3, H, W) -> :class:`InterpreterOutput` (one pass serves the target and the maps)."""
        target = self.target
        # The frozen part runs without autograd: nothing upstream of the masks needs a gradient.
        local = None
        with torch.no_grad():
            shared = target.backbone(x, end=self.split)
            if self.pooled_local is not None or self.evidence is not None:
                # The stage before the last, kept on the way to F for the pooled or the evidence classifier.
                local = self._local_features(shared)
                fmap = target.backbone(local, start=STAGES[-1])
            else:
                fmap = target.backbone(shared, start=self.late_stages[0])
            embedding = target.head(fmap)
        maps, masks, evidence = self._maps(shared, local, fmap)
        attribute_embeddings = target.masked_head(fmap, masks)
        logits = None
        if self.pooled_weight is not None and self.pooled_bias is not None:
            features = fmap
            if self.pooled_local is not None and local is not None:
                if local.shape[2:] != fmap.shape[2:]:
                    local = F.adaptive_avg_pool2d(local, fmap.shape[2:])
                features = self.pooled_local(local)
            logits = self.pooled_logits(features, maps)
        elif self.aux_fc is not None and self.aux_late is not None:
            pooled = self.aux_late(shared).mean(dim=(2, 3))
            logits = self.aux_fc(pooled)
        elif evidence is not None:
            logits = evidence
        return InterpreterOutput(embedding, maps, attribute_embeddings, logits, evidence)


def build_interpreter(target: ReIDModel, architecture: Mapping[str, Any]) -> Interpreter:
    """Rebuild an interpreter on ``target`` from :meth:`Interpreter.architecture`'s description.

    Raises:
        AmdError: The description is not an interpreter's, or it was made for another backbone.
    """
    if architecture.get("type") != "interpreter":
        raise AmdError(f"architecture of type {architecture.get('type')!r} is not an interpreter")
    if architecture.get("backbone") != target.backbone.name:
        raise AmdError(
            f"interpreter built for a {architecture.get('backbone')} target, "
            f"the target given is a {target.backbone.name}"
        )
    return Interpreter(
        target,
        num_attributes=int(architecture["num_attributes"]),
        split=str(architecture.get("split", "layer2")),
        map_mode=str(architecture.get("map_mode", "faithful")),
        head_channels=int(architecture.get("head_channels", 256)),
        aux_classifier=bool(architecture.get("aux_classifier", False)),
        normalisation=str(architecture.get("normalisation", "mean")),
        pooled_classifier=bool(architecture.get("pooled_classifier", False)),
        location_prior=bool(architecture.get("location_prior", False)),
        pooled_features=str(architecture.get("pooled_features", "final")),
        map_source=str(architecture.get("map_source", "head")),
        evidence_hidden=int(architecture.get("evidence_hidden", 0)),
        map_floor=float(architecture.get("map_floor", 0.0)),
        foreground_weights=architecture.get("foreground_weights"),
        evidence_temperature=architecture.get("evidence_temperature", 1.0),
    )
