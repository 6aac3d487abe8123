"""Locate files under the project's ``resources/`` folder (schemas, synthetic priors, demo models)."""

from __future__ import annotations

import os
from pathlib import Path

from amd.errors import AmdError

#: Overridable for installed layouts where resources live elsewhere.
_ENV = "AMD_RESOURCES"


def resources_dir() -> Path:
    env = os.environ.get(_ENV)
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent / "resources"


def resource_path(*parts: str) -> Path:
    """Path of a bundled resource; raises :class:`AmdError` naming it when it is missing."""
    path = resources_dir().joinpath(*parts)
    if not path.exists():
        raise AmdError(f"missing resource {path} (is the project checkout complete?)")
    return path
