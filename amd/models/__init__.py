"""Models of the AMD engine: staged backbones, the target re-identification model, the interpreter,
and their checkpoint files."""

from __future__ import annotations

from amd.models.backbones import (
    BACKBONES,
    STAGES,
    Backbone,
    PretrainedReport,
    build_backbone,
    hub_weights_path,
)
from amd.models.checkpoint import (
    CheckpointError,
    CheckpointInfo,
    file_sha256,
    load_interpreter,
    load_pair,
    load_target,
    read_checkpoint,
    read_info,
    save_interpreter,
    save_target,
)
from amd.models.interpreter import (
    MAP_MODES,
    SPLIT_POINTS,
    Interpreter,
    InterpreterOutput,
    build_interpreter,
    phi,
)
from amd.models.target import GeM, ReIDModel, TargetOutput, build_target

__all__ = [
    "BACKBONES",
    "MAP_MODES",
    "SPLIT_POINTS",
    "STAGES",
    "Backbone",
    "CheckpointError",
    "CheckpointInfo",
    "GeM",
    "Interpreter",
    "InterpreterOutput",
    "PretrainedReport",
    "ReIDModel",
    "TargetOutput",
    "build_backbone",
    "build_interpreter",
    "build_target",
    "file_sha256",
    "hub_weights_path",
    "load_interpreter",
    "load_pair",
    "load_target",
    "phi",
    "read_checkpoint",
    "read_info",
    "save_interpreter",
    "save_target",
]
