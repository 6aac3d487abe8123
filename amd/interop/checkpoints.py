"""Target models trained by torchreid or fast-reid, imported onto :class:`~amd.models.target.ReIDModel`.

Both code bases train a torchvision-style ResNet (conv1/bn1, ``layerN.i.convK`` / ``bnK`` /
``downsample``) followed by a pooling and, for fast-reid, a BNNeck; our target is the same thing
with named stages, so an import renames tensors and sets the head:

- **torchreid** (``torchreid.models.resnet50`` and the other plain ResNets): keys ``conv1.weight``,
  ``layer4.2.bn3.running_var``, ``classifier.weight`` / ``bias``; global average pooling, last stride 2,
  and no BNNeck: the test-time feature is the pooled vector. The import sets GeM to p = 1 (average
  pooling) and the BNNeck to the identity.
- **fast-reid** (``Baseline`` with a ResNet backbone: the BoT "bagtricks" and SBS configs without
  non-local or IBN blocks): keys ``backbone.layer1.0.conv1.weight``, ``heads.pool_layer.p`` (learnable GeM,
  SBS), ``heads.bottleneck.0.*`` (BNNeck), ``heads.weight`` (classifier); stem max pooling without padding
  in ceil mode, last stride 1. Its ``NECK_FEAT`` setting picks the feature before or after the BNNeck;
  by default the import follows the published configs: ``before`` with average pooling (BoT), ``after``
  with learnable GeM (SBS).

The strides and the pooling are settings of the source code base, not tensors, so they are arguments
with the source's defaults. Every tensor of the file is accounted for: mapped, left out for a stated
reason (the identity classifier of the source's training set), or checked (fast-reid's pixel mean and
std); any other tensor, a missing one or a wrong shape refuses the import with their names.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from amd.errors import AmdError
from amd.models.checkpoint import file_sha256, save_target
from amd.models.target import ReIDModel, build_target

#: Source code bases an import understands.
FORMATS: tuple[str, ...] = ("torchreid", "fastreid")
#: Which feature the source used at test time: the pooled vector or the BNNeck's output.
NECK_FEATS: tuple[str, ...] = ("before", "after")
#: Pooling of the source: ``auto`` reads it from the file (a learnable GeM exponent means GeM).
POOLINGS: tuple[str, ...] = ("auto", "avg", "gem")

#: ImageNet normalisation on 0..255 pixels, which fast-reid stores as ``pixel_mean`` / ``pixel_std``;
#: ours is the same on 0..1 pixels.
_IMAGENET_MEAN_255 = (0.485 * 255, 0.456 * 255, 0.406 * 255)
_IMAGENET_STD_255 = (0.229 * 255, 0.224 * 255, 0.225 * 255)

#: (blocks per stage, bottleneck?) -> ResNet depth.
_DEPTHS: dict[tuple[tuple[int, ...], bool], str] = {
    ((2, 2, 2, 2), False): "resnet18",
    ((3, 4, 6, 3), False): "resnet34",
    ((3, 4, 6, 3), True): "resnet50",
    ((3, 4, 23, 3), True): "resnet101",
}

_BLOCK_KEY = re.compile(r"^layer([1-4])\.(\d+)\.")

#: Patterns of tensors that belong to parts our model does not have, with what they are.
_UNSUPPORTED_HINTS: tuple[tuple[str, str], ...] = (
    (r"(^|\.)NL_\d", "non-local blocks (fast-reid WITH_NL, e.g. the zoo's SBS configs) are not supported"),
    (r"\.(IN|BN)\.", "IBN blocks (resnet50_ibn_a, WITH_IBN) are not supported"),
    (r"\.se\.", "squeeze-and-excitation blocks are not supported"),
    (r"^fc\.", "a reduction layer after the pooling (torchreid resnet50_fc512) is not supported"),
)


class ModelImportError(AmdError):
    """A checkpoint of another code base cannot be imported (the message names the tensors at fault)."""


@dataclass(frozen=True)
class ImportReport:
    """What an import did with every tensor of the source file.

    Attributes:
        source: The file (or a description of the state dict).
        format: One of :data:`FORMATS`.
        backbone: Our backbone name (a layout variant such as ``resnet50-s32`` where the source needs it).
        pooling: ``"avg"`` or ``"gem"``.
        gem_p: The GeM exponent set (1 for average pooling).
        neck_feat: ``"before"`` (BNNeck set to the identity) or ``"after"``.
        mapped: Number of source tensors copied into the model.
        left_out: Source tensors deliberately not imported, each with the reason.
        checked: Source tensors compared with our fixed settings (they matched).
        num_classes: Identities of the source's classifier (0 when it had none); not imported.
    """

    source: str
    format: str
    backbone: str
    pooling: str
    gem_p: float
    neck_feat: str
    mapped: int
    left_out: tuple[tuple[str, str], ...] = ()
    checked: tuple[str, ...] = ()
    num_classes: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def lines(self) -> list[str]:
        """A readable account, one line per fact."""
        out = [
            f"{self.source}: {self.format} checkpoint imported as {self.backbone} "
            f"({self.mapped} tensors mapped)",
            f"pooling {self.pooling} (GeM p = {self.gem_p:.4g}), test-time feature {self.neck_feat} the BNNeck",
        ]
        for key in self.checked:
            out.append(f"checked: {key} matches the workbench's input normalisation")
        for key, reason in self.left_out:
            out.append(f"left out: {key} ({reason})")
        return out

    def to_dict(self) -> dict[str, Any]:
        """Plain data for a checkpoint's metadata."""
        return {
            "format": self.format,
            "source": Path(self.source).name,
            "backbone": self.backbone,
            "pooling": self.pooling,
            "gem_p": self.gem_p,
            "neck_feat": self.neck_feat,
            "mapped": self.mapped,
            "left_out": [key for key, _ in self.left_out],
            "num_classes": self.num_classes,
            **self.extra,
        }


def read_state_dict(path: str | Path) -> dict[str, Tensor]:
    """Read the weights of a torchreid or fast-reid checkpoint file safely.

    Accepts a bare state dict or the training scripts' wrappers (``{"state_dict": ...}`` from torchreid,
    ``{"model": ...}`` from fast-reid) and strips DataParallel's ``module.`` prefix. Nothing but tensors
    and plain data is unpickled (numpy scalars, which torchreid stores as its rank-1 figure, are allowed).

    Raises:
        ModelImportError: Missing, unreadable or not a state dict.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelImportError(f"{path}: no such checkpoint file")
    import numpy as np

    # torchreid's save_checkpoint stores its rank-1 figure as a numpy scalar; these reconstruct plain
    # numbers only.
    allowed = [np.dtype, type(np.dtype("float32")), type(np.dtype("float64"))]
    scalar = getattr(getattr(np, "_core", np).multiarray, "scalar", None) or np.core.multiarray.scalar
    allowed.append(scalar)
    try:
        with torch.serialization.safe_globals(allowed):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any failure to unpickle means the same thing to the user
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise ModelImportError(
            f"{path}: cannot read it as a PyTorch checkpoint of weights ({type(exc).__name__}: {first})"
        ) from None
    for key in ("state_dict", "model"):
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    if not isinstance(obj, Mapping) or not obj:
        raise ModelImportError(f"{path}: not a state dict (no tensors under 'state_dict' or 'model')")
    bad = [k for k, v in obj.items() if not isinstance(v, Tensor)]
    if bad:
        raise ModelImportError(
            f"{path}: not a state dict of tensors ({bad[0]!r} is a {type(obj[bad[0]]).__name__})"
        )
    return {(k[len("module.") :] if k.startswith("module.") else k): v for k, v in obj.items()}


def _depth(keys: list[str], where: str) -> str:
    blocks: dict[int, set[int]] = {1: set(), 2: set(), 3: set(), 4: set()}
    bottleneck = False
    for key in keys:
        m = _BLOCK_KEY.match(key)
        if m:
            blocks[int(m.group(1))].add(int(m.group(2)))
            bottleneck = bottleneck or ".conv3." in key
    counts = tuple(len(v) for v in blocks.values())
    depth = _DEPTHS.get((counts, bottleneck))
    if depth is None:
        raise ModelImportError(
            f"{where}: not a ResNet-18/34/50/101 backbone (blocks per stage {counts}, "
            f"{'bottleneck' if bottleneck else 'basic'} blocks)"
        )
    return depth


def _unsupported_message(keys: list[str]) -> str:
    hints = []
    for pattern, hint in _UNSUPPORTED_HINTS:
        if any(re.search(pattern, k) for k in keys) and hint not in hints:
            hints.append(hint)
    return f"; {'; '.join(hints)}" if hints else ""


def _name_list(keys: list[str], limit: int = 12) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def import_state_dict(
    state: Mapping[str, Tensor],
    fmt: str,
    *,
    pooling: str = "auto",
    gem_p: float | None = None,
    neck_feat: str | None = None,
    last_stride: int | None = None,
    source: str = "<state dict>",
) -> tuple[ReIDModel, ImportReport]:
    """Build our target model from a torchreid or fast-reid state dict.

    Args:
        state: The source's tensors (``module.`` prefixes already stripped).
        fmt: One of :data:`FORMATS`.
        pooling: One of :data:`POOLINGS`. ``auto``: GeM with the file's exponent when it has one
            (fast-reid's ``heads.pool_layer.p``), else average pooling. ``gem`` without an exponent in the
            file is fast-reid's fixed ``GeneralizedMeanPooling`` with ``gem_p``.
        gem_p: Exponent of a fixed GeM (3 when not given); only with ``pooling="gem"`` and no exponent in
            the file, and refused elsewhere, where it would do nothing.
        neck_feat: One of :data:`NECK_FEATS`; ``None`` takes the source's default (torchreid has no BNNeck:
            ``before``; fast-reid: ``before`` with average pooling as in its BoT configs, ``after`` with GeM
            as in its SBS configs).
        last_stride: Stride of the last stage (torchreid's ``resnet50``: 2, fast-reid's default: 1).
        source: Name used in messages.

    Returns:
        ``(model, report)``: the model in eval mode, with no identity classifier.

    Raises:
        ModelImportError: Unknown format or option, a tensor with no place in our model (named), a tensor
            our model needs that the file lacks (named), or a shape that does not fit.
    """
    if fmt not in FORMATS:
        raise ModelImportError(f"unknown checkpoint format {fmt!r} (choose one of {', '.join(FORMATS)})")
    if pooling not in POOLINGS:
        raise ModelImportError(f"unknown pooling {pooling!r} (choose one of {', '.join(POOLINGS)})")
    if neck_feat is not None and neck_feat not in NECK_FEATS:
        raise ModelImportError(f"unknown neck feature {neck_feat!r} (choose one of {', '.join(NECK_FEATS)})")
    if last_stride is None:
        last_stride = 2 if fmt == "torchreid" else 1
    if last_stride not in (1, 2):
        raise ModelImportError(f"the last stride must be 1 or 2, not {last_stride}")
    if gem_p is not None and (not math.isfinite(gem_p) or gem_p <= 0):
        raise ModelImportError(f"the GeM exponent must be a positive number, not {gem_p}")

    backbone_src: dict[str, str] = {}  # backbone key (torchvision naming) -> source key
    head: dict[str, str] = {}  # "p", "bn.weight", ... -> source key
    left_out: list[tuple[str, str]] = []
    checked: list[str] = []
    unknown: list[str] = []
    num_classes = 0
    for key in state:
        if fmt == "torchreid":
            if key.startswith(("conv1.", "bn1.", "layer1.", "layer2.", "layer3.", "layer4.")):
                backbone_src[key] = key
            elif key.startswith("classifier."):
                left_out.append((key, "identity classifier of the source's training set"))
                num_classes = int(state[key].shape[0])
            else:
                unknown.append(key)
            continue
        if key.startswith("backbone."):
            inner = key[len("backbone.") :]
            if inner.startswith(("conv1.", "bn1.", "layer1.", "layer2.", "layer3.", "layer4.")):
                backbone_src[inner] = key
            else:
                unknown.append(key)
        elif key == "heads.pool_layer.p":
            head["p"] = key
        elif key.startswith(("heads.bottleneck.0.", "heads.bnneck.")):
            head["bn." + key.rsplit(".", 1)[1]] = key
        elif key in ("heads.weight", "heads.classifier.weight", "heads.classifier.bias"):
            left_out.append((key, "identity classifier of the source's training set"))
            if key != "heads.classifier.bias":
                num_classes = int(state[key].shape[0])
        elif key in ("pixel_mean", "pixel_std"):
            expected = torch.tensor(_IMAGENET_MEAN_255 if key == "pixel_mean" else _IMAGENET_STD_255)
            value = state[key].flatten().float()
            if value.shape != expected.shape or not torch.allclose(value, expected, atol=0.05):
                raise ModelImportError(
                    f"{source}: {key} is {[round(v, 3) for v in value.tolist()]}, but the workbench normalises "
                    f"its inputs with ImageNet's {[round(v, 3) for v in expected.tolist()]} (on 0..255): "
                    "features would not match"
                )
            checked.append(key)
        else:
            unknown.append(key)
    if not backbone_src:
        prefix = "backbone." if fmt == "fastreid" else ""
        other = "torchreid" if fmt == "fastreid" else "fastreid"
        looks_other = any(k.startswith("conv1." if fmt == "fastreid" else "backbone.conv1.") for k in state)
        hint = f" (it looks like a {other} checkpoint)" if looks_other else ""
        raise ModelImportError(
            f"{source}: no ResNet tensors ({prefix}conv1.weight, {prefix}layer1.0.conv1.weight, ...): "
            f"not a {fmt} ResNet checkpoint{hint}"
        )
    if unknown:
        raise ModelImportError(
            f"{source}: {len(unknown)} tensors of the {fmt} checkpoint have no place in the workbench's model: "
            f"{_name_list(unknown)}{_unsupported_message(unknown)}"
        )

    depth = _depth(list(backbone_src), source)
    variant = depth + ("-fastreid" if fmt == "fastreid" else "") + ("-s32" if last_stride == 2 else "")
    model = build_target(variant)
    own = model.state_dict()
    new_state: dict[str, Tensor] = {}
    wrong: list[str] = []
    missing: list[str] = []
    for key in own:
        if not key.startswith("backbone."):
            continue
        inner = key[len("backbone.stages.") :]
        stage, rest = inner.split(".", 1)
        tv_key = rest if stage == "stem" else inner
        src = backbone_src.pop(tv_key, None)
        if src is None:
            missing.append(("backbone." if fmt == "fastreid" else "") + tv_key)
            continue
        if state[src].shape != own[key].shape:
            wrong.append(f"{src} {tuple(state[src].shape)} (expected {tuple(own[key].shape)})")
            continue
        new_state[key] = state[src]
    if backbone_src:
        extra = list(backbone_src.values())
        raise ModelImportError(
            f"{source}: {len(extra)} backbone tensors have no place in a {depth}: {_name_list(extra)}"
            f"{_unsupported_message(extra)}"
        )
    if missing:
        raise ModelImportError(
            f"{source}: the checkpoint lacks {len(missing)} tensors of a {depth}: {_name_list(missing)}"
            f"{_unsupported_message(list(state))}"
        )
    if wrong:
        raise ModelImportError(f"{source}: tensors of the wrong shape: {_name_list(wrong, 5)}")
    mapped = len(new_state)

    # Pooling.
    if "p" in head:
        if pooling == "avg":
            raise ModelImportError(
                f"{source}: the file has a learnt GeM exponent ({head['p']}), so its pooling is GeM, not avg"
            )
        p = float(state[head["p"]].flatten()[0])
        if gem_p is not None:
            raise ModelImportError(
                f"{source}: the file has a learnt GeM exponent ({p:.4g}), so a fixed exponent ({gem_p:g}) "
                "cannot be set"
            )
        pool_name = "gem"
        mapped += 1
    elif pooling == "gem":
        p, pool_name = float(3.0 if gem_p is None else gem_p), "gem"
    else:
        if gem_p is not None:
            raise ModelImportError(
                f"{source}: a fixed GeM exponent ({gem_p:g}) needs GeM pooling (pooling 'gem'); this import "
                "pools by average"
            )
        p, pool_name = 1.0, "avg"
    new_state["pool.p"] = torch.tensor(p, dtype=own["pool.p"].dtype)

    # BNNeck.
    bn_keys = [k for k in head if k.startswith("bn.")]
    if neck_feat is None:
        neck_feat = "after" if (fmt == "fastreid" and pool_name == "gem" and bn_keys) else "before"
    dim = model.embedding_dim
    if neck_feat == "after":
        if fmt == "torchreid" or not bn_keys:
            raise ModelImportError(
                f"{source}: the feature after the BNNeck was asked for, but the checkpoint has no BNNeck "
                "(heads.bottleneck.0.*)"
            )
        needed = ("weight", "bias", "running_mean", "running_var")
        absent = [n for n in needed if f"bn.{n}" not in head]
        if absent:
            raise ModelImportError(f"{source}: the BNNeck lacks {', '.join(absent)}")
        for name in (*needed, "num_batches_tracked"):
            if f"bn.{name}" not in head:
                continue
            value = state[head[f"bn.{name}"]]
            if value.shape != own[f"bnneck.{name}"].shape:
                raise ModelImportError(
                    f"{source}: {head[f'bn.{name}']} has shape {tuple(value.shape)}, the backbone gives "
                    f"{dim} channels"
                )
            new_state[f"bnneck.{name}"] = value
            mapped += 1
    else:
        for name in bn_keys:
            left_out.append((head[name], "BNNeck not used: the test-time feature is taken before it"))
        # The identity in eval mode: (x - 0) / sqrt(1 + eps) * sqrt(1 + eps) + 0.
        eps = model.bnneck.eps
        new_state["bnneck.weight"] = torch.full((dim,), math.sqrt(1.0 + eps))
        new_state["bnneck.bias"] = torch.zeros(dim)
        new_state["bnneck.running_mean"] = torch.zeros(dim)
        new_state["bnneck.running_var"] = torch.ones(dim)
    new_state.setdefault("bnneck.num_batches_tracked", torch.tensor(0, dtype=torch.long))
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in new_state.items()}, strict=True)
    report = ImportReport(
        source=source,
        format=fmt,
        backbone=variant,
        pooling=pool_name,
        gem_p=p,
        neck_feat=neck_feat,
        mapped=mapped,
        left_out=tuple(left_out),
        checked=tuple(checked),
        num_classes=num_classes,
        extra={"last_stride": last_stride},
    )
    return model.eval(), report


def import_checkpoint(path: str | Path, fmt: str, **options: Any) -> tuple[ReIDModel, ImportReport]:
    """Read a torchreid or fast-reid checkpoint file and import it (see :func:`import_state_dict`)."""
    state = read_state_dict(path)
    model, report = import_state_dict(state, fmt, source=str(path), **options)
    extra = dict(report.extra)
    extra["source_sha256"] = file_sha256(path)
    return model, replace(report, extra=extra)


def save_imported(
    path: str | Path, model: ReIDModel, report: ImportReport, input_size: tuple[int, int], half: bool = False
) -> str:
    """Write an imported model as a target checkpoint of the workbench, with the import's account.

    Returns:
        The SHA-256 of the written file.
    """
    return save_target(
        path,
        model,
        input_size,
        extra={"imported": report.to_dict()},
        include_classifier=False,
        half=half,
    )
