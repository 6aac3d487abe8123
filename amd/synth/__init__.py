"""Synthetic pedestrians with known attributes and part masks, written as a Market-1501 dataset.

Typical use::

    from amd.synth import SynthConfig, write_dataset
    summary = write_dataset("data/synth", SynthConfig(train_ids=200, test_ids=200, per_id=8, seed=0))

or, for single crops, :func:`sample_identities`, :func:`make_cameras` and :func:`render_person`.
"""

from __future__ import annotations

from amd.synth.cameras import VIEWS, Camera, make_cameras
from amd.synth.identities import Appearance, Identity, JointTable, load_joint_table, sample_identities
from amd.synth.parts import ATTRIBUTE_PARTS, OCCLUDER, PART_NAMES, person_mask
from amd.synth.render import Crop, part_colours, render_person
from amd.synth.writer import SynthConfig, SynthError, SynthSummary, parse_size, plan_dataset, write_dataset

__all__ = [
    "ATTRIBUTE_PARTS",
    "OCCLUDER",
    "PART_NAMES",
    "VIEWS",
    "Appearance",
    "Camera",
    "Crop",
    "Identity",
    "JointTable",
    "SynthConfig",
    "SynthError",
    "SynthSummary",
    "load_joint_table",
    "make_cameras",
    "parse_size",
    "part_colours",
    "person_mask",
    "plan_dataset",
    "render_person",
    "sample_identities",
    "write_dataset",
]
