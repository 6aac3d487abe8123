"""Typed, versioned configurations of the training jobs (plain dataclasses, no torch import).

They load from JSON, are overridden from the command line (``cli.config_args``), and are saved
resolved in every run folder and checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
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


def config_from_dict(cls: type, data: Mapping[str, Any]) -> Any:
    """Rebuild a config dataclass; unknown keys are refused, tuple fields restored."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise AmdError(f"unknown configuration key(s) {unknown} for {cls.__name__}")
    values = dict(data)
    if "size" in values and values["size"] is not None:
        values["size"] = tuple(values["size"])
    return cls(**values)
