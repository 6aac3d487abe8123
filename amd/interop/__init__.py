"""Interoperability with other re-identification code bases: imported checkpoints and ONNX export."""

from __future__ import annotations

from amd.interop.checkpoints import (
    FORMATS,
    NECK_FEATS,
    POOLINGS,
    ImportReport,
    ModelImportError,
    import_checkpoint,
    import_state_dict,
    read_state_dict,
    save_imported,
)

__all__ = [
    "FORMATS",
    "NECK_FEATS",
    "POOLINGS",
    "ModelImportError",
    "ImportReport",
    "import_checkpoint",
    "import_state_dict",
    "read_state_dict",
    "save_imported",
]
