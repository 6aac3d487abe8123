"""Errors of case files and explanation snapshots, with messages meant for the user."""

from __future__ import annotations

from db.errors import StoreError


class CaseFileError(StoreError):
    """A case file cannot be written, or is refused on opening (damaged, tampered, hostile, too new)."""


class SnapshotError(StoreError):
    """An explanation snapshot is malformed."""
