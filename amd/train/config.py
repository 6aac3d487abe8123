"""Typed, versioned configurations of the training jobs (plain dataclasses, no torch import).

They load from JSON, are overridden from the command line (``cli.config_args``), and are saved
resolved in every run folder and checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
import math
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from amd.errors import AmdError


@dataclass(frozen=True, kw_only=True)
class RunSettings:
    """How a training job runs, whatever it trains (fields are keyword-only so that each job's own
    required fields can come first).

    ``eval_every`` counts epochs; ``max_steps`` > 0 stops early (smoke runs); ``run_dir`` holds the
    resumable state and the logs (default: next to ``out``).
    """

    seed: int = 0
    device: str = "auto"
    workers: int = 0
    amp: bool = True
    eval_every: int = 5
    log_every: int = 10
    out: str = "model.pt"
    run_dir: str | None = None
    resume: bool = True
    max_steps: int = 0
    version: int = 1

    def resolved_run_dir(self) -> Path:
        out = Path(self.out)
        return Path(self.run_dir) if self.run_dir else out.with_name(out.stem + "_run")


@dataclass(frozen=True)
class TargetTrainConfig(RunSettings):
    """Everything a target training run depends on; saved in the run folder and in the checkpoint.

    ``size`` is (height, width). ``pretrained`` is an ImageNet state dict file for the backbone
    (nothing is downloaded). ``eval_every`` counts epochs; ``max_steps`` > 0 stops early (smoke runs).
    After ``warmup_epochs`` the learning rate stays at ``lr`` (``lr_schedule`` ``constant``) or decays along a
    half cosine to 1 % of it at the last epoch (``cosine``).
    """

    data: str
    format: str = "market1501"
    arch: str = "resnet18"
    size: tuple[int, int] = (256, 128)
    epochs: int = 30
    p: int = 8
    k: int = 4
    lr: float = 3.5e-4
    weight_decay: float = 5e-4
    warmup_epochs: int = 5
    lr_schedule: str = "constant"
    classifier: str = "linear"
    label_smoothing: float = 0.1
    triplet_weight: float = 1.0
    triplet_margin: float = 0.3
    pretrained: str | None = None
    out: str = field(default="target.pt", kw_only=True)


@dataclass(frozen=True)
class DistillConfig(RunSettings):
    """Everything a distillation run depends on; saved in the run folder and in the checkpoint.

    Defaults follow the paper's schedule (Adam, lr 1e-4, weight decay 5e-4, warm-up from 0.01x over
    10 epochs, 6 identities x 4 images, loss 1.0 * L_md + 10 * L_prior); ``lr_schedule`` ``cosine``
    decays the rate after the warm-up as for the target. ``size`` defaults to the
    target's input size. ``map_mode`` is ``faithful`` (the paper) or ``localising``; the localising mode
    takes a map ``normalisation`` (``mean`` or ``softmax``), a learned ``location_prior`` and the
    ``pooled_classifier``, which then
    replaces the auxiliary classifier and is trained with the same loss and weight (``aux_weight``).
    The location prior learns at ``location_lr_scale`` times the learning rate. ``map_source``
    ``evidence`` (or ``head+evidence``) takes the maps from the per-cell evidence classifier, trained with
    weight ``evidence_weight`` at ``evidence_lr_scale`` times the learning rate, with a hidden per-cell layer
    of ``evidence_hidden`` channels when above 0 and its smooth maximum over the cells at
    ``evidence_temperature`` (1: log mean exp; below 1 nearer the mean), which ``evidence_temperatures``
    (``"NAME=T,NAME=T"``, NAME an attribute or its group) sets apart for some attributes; ``map_floor`` above 0 gives every localising mask a learned
    floor starting at that value (the maps shown keep their contrast); ``pinned`` keeps each map's peak
    where the evidence puts it and lets the head scale the map and dim its other cells. With
    ``evidence_cache`` above 0, a run that starts (not one that resumes) first trains the evidence classifier
    and the prior in its scores on cached features of that many augmented copies of the training crops, for
    ``evidence_cache_epochs`` passes over them (:mod:`amd.train.evidence_cache`); an ``evidence_weight`` of 0
    then keeps them as they are while the distillation fits the rest. ``start_from`` names an interpreter of
    the same target whose fitting weights start the run.
    """

    data: str
    target: str
    format: str = "market1501"
    size: tuple[int, int] | None = None
    epochs: int = 60
    p: int = 6
    k: int = 4
    lr: float = 1e-4
    weight_decay: float = 5e-4
    warmup_epochs: int = 10
    lr_schedule: str = "constant"
    split: str = "layer2"
    map_mode: str = "faithful"
    md_weight: float = 1.0
    prior_weight: float = 10.0
    colour_prior: bool = False
    aux_classifier: bool = True
    aux_weight: float = 1.0
    normalisation: str = "mean"
    pooled_classifier: bool = False
    location_prior: bool = False
    location_lr_scale: float = 100.0
    pooled_features: str = "final"
    start_from: str | None = None
    map_source: str = "head"
    evidence_weight: float = 1.0
    evidence_lr_scale: float = 20.0
    evidence_hidden: int = 0
    evidence_temperature: float = 1.0
    evidence_temperatures: str = ""
    map_floor: float = 0.0
    evidence_cache: int = 0
    evidence_cache_epochs: int = 8
    out: str = field(default="interpreter.pt", kw_only=True)


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """A dataclass config as plain JSON-able data (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


class ConfigValueError(AmdError):
    """A configuration value of the wrong type or out of range.

    Attributes:
        key: The field's name (``epochs``).
        problem: What is wrong, as ``"must be ..., got ..."``.
    """

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"configuration key {key!r} {problem}")
        self.key = key
        self.problem = problem


@dataclass(frozen=True)
class Bounds:
    """The range of a numeric setting: ``minimum``/``maximum`` inclusive, ``above``/``below`` exclusive."""

    minimum: float | None = None
    maximum: float | None = None
    above: float | None = None
    below: float | None = None

    def describe(self, whole: bool) -> str:
        noun = "a whole number" if whole else "a number"
        if self.minimum is not None and self.maximum is not None:
            return f"{noun} from {self.minimum:g} to {self.maximum:g}"
        parts = []
        if self.minimum is not None:
            parts.append(f"at least {self.minimum:g}")
        if self.above is not None:
            parts.append(f"above {self.above:g}")
        if self.maximum is not None:
            parts.append(f"at most {self.maximum:g}")
        if self.below is not None:
            parts.append(f"below {self.below:g}")
        if not parts:
            return noun
        return f"{noun} {'of ' if parts[0].startswith('at ') else ''}" + " and ".join(parts)

    def contains(self, value: float) -> bool:
        return math.isfinite(value) and not (
            (self.minimum is not None and value < self.minimum)
            or (self.maximum is not None and value > self.maximum)
            or (self.above is not None and value <= self.above)
            or (self.below is not None and value >= self.below)
        )


#: The allowed values of the numeric settings, as the training panel's form allows them where it has the
#: field. A run with 0 epochs, a learning rate that is not a positive finite number or a label smoothing of
#: 2 would "finish" with a model that learnt nothing, or fail after the data are loaded.
BOUNDS: dict[str, Bounds] = {
    # RunSettings
    "seed": Bounds(minimum=0),
    "workers": Bounds(minimum=0, maximum=64),
    "eval_every": Bounds(minimum=1),
    "log_every": Bounds(minimum=1),
    "max_steps": Bounds(minimum=0),
    # shared by both jobs
    "epochs": Bounds(minimum=1, maximum=10000),
    "p": Bounds(minimum=2, maximum=256),
    "k": Bounds(minimum=2, maximum=64),
    "lr": Bounds(above=0, maximum=1),
    "weight_decay": Bounds(minimum=0, maximum=1),
    "warmup_epochs": Bounds(minimum=0, maximum=10000),
    # target
    "label_smoothing": Bounds(minimum=0, below=1),
    "triplet_weight": Bounds(minimum=0, maximum=100),
    "triplet_margin": Bounds(minimum=0, maximum=100),
    # interpreter
    "md_weight": Bounds(above=0, maximum=1000),
    "prior_weight": Bounds(minimum=0, maximum=1000),
    "aux_weight": Bounds(minimum=0, maximum=1000),
    "location_lr_scale": Bounds(above=0, maximum=10000),
    "evidence_weight": Bounds(minimum=0, maximum=1000),
    "evidence_lr_scale": Bounds(above=0, maximum=10000),
    "evidence_hidden": Bounds(minimum=0, maximum=4096),
    "evidence_temperature": Bounds(above=0, maximum=1000),
    "map_floor": Bounds(minimum=0, below=1),
    "evidence_cache": Bounds(minimum=0, maximum=1000),
    "evidence_cache_epochs": Bounds(minimum=1, maximum=10000),
}

#: Sides of an input size (HEIGHT, WIDTH), in pixels. The backbones run from 8 pixels up; 16 keeps a
#: usable feature map, and above 2048 a training batch no longer fits a workstation's memory.
SIZE_BOUNDS = Bounds(minimum=16, maximum=2048)


def size_problem(size: tuple[int, int]) -> str | None:
    """What is wrong with an input size (HEIGHT, WIDTH) as ``"must have ..."``, or ``None`` (:data:`SIZE_BOUNDS`)."""
    if all(SIZE_BOUNDS.contains(v) for v in size):
        return None
    return f"must have both sides from {SIZE_BOUNDS.minimum:g} to {SIZE_BOUNDS.maximum:g} pixels"


def check_config(cfg: Any) -> None:
    """Refuse a config whose numbers are out of range (see :data:`BOUNDS` and :data:`SIZE_BOUNDS`).

    Raises:
        ConfigValueError: The first value out of range, with its key and the range.
    """
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if f.name == "size" and value is not None and (problem := size_problem(value)) is not None:
            raise ConfigValueError(f.name, f"{problem}, got {'x'.join(str(v) for v in value)}")
        bounds = BOUNDS.get(f.name)
        if bounds is not None and not isinstance(value, bool) and isinstance(value, (int, float)):
            if not bounds.contains(value):
                raise ConfigValueError(
                    f.name, f"must be {bounds.describe(isinstance(value, int))}, got {value!r}"
                )


def _typed(name: str, hint: Any, value: Any) -> Any:
    """``value`` as the field's type, or :class:`ConfigValueError` naming the key and the type wanted."""
    text = str(hint)
    if value is None:
        if "None" in text:
            return None
        raise ConfigValueError(name, "must be given a value, got null")
    if "tuple" in text:
        if (
            isinstance(value, (list, tuple))
            and len(value) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        ):
            return tuple(value)
        raise ConfigValueError(name, f"must be [HEIGHT, WIDTH] in whole pixels, got {value!r}")
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigValueError(name, f"must be true or false, got {value!r}")
    if "int" in text and "float" not in text:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigValueError(name, f"must be a whole number, got {value!r}")
    if "float" in text:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigValueError(name, f"must be a number, got {value!r}")
    if isinstance(value, str):
        return value
    raise ConfigValueError(name, f"must be text, got {value!r}")


def config_from_dict(cls: type, data: Mapping[str, Any]) -> Any:
    """Rebuild a config dataclass; unknown keys are refused, each value is checked against its field's type
    (a whole number for an int, text for a str ...), tuple fields restored.

    Raises:
        AmdError: An unknown key.
        ConfigValueError: A value of the wrong type (its range is :func:`check_config`'s to check).
    """
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise AmdError(f"unknown configuration key(s) {unknown} for {cls.__name__}")
    hints = typing.get_type_hints(cls)
    values = {key: _typed(key, hints[key], value) for key, value in data.items()}
    return cls(**values)
