"""Fixtures shared by every test folder."""

from __future__ import annotations

from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent


@pytest.fixture(scope="session")
def annotations_dir() -> Path:
    """The published Market-1501 and DukeMTMC-reID attribute files (read-only copies)."""
    return TESTS / "data" / "annotations"
