"""Consistency check of a workspace: database rows against the files of the image store."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select

from db.models import Crop

if TYPE_CHECKING:
    from db.workspace import Workspace


@dataclass(frozen=True)
class CheckReport:
    """What :func:`check_workspace` found.

    Attributes:
        crops: Crop rows checked.
        missing_originals: Crops whose original file is gone (the only serious finding).
        corrupt_originals: Crops whose original no longer hashes to its name (with ``verify_hashes``).
        missing_thumbnails: Crops without a thumbnail (remade on demand).
        orphan_files: Originals with no row, left by an interrupted import; importing again adopts them.
        temporary_files: Half-written files of a killed writer.
    """

    crops: int
    missing_originals: tuple[int, ...]
    corrupt_originals: tuple[int, ...]
    missing_thumbnails: tuple[int, ...]
    orphan_files: tuple[str, ...]
    temporary_files: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """No crop lacks its original or has a damaged one."""
        return not self.missing_originals and not self.corrupt_originals


def check_workspace(
    ws: Workspace, verify_hashes: bool = False, remove_temporary: bool = False
) -> CheckReport:
    """Compare every crop row with the image store.

    Args:
        ws: The workspace.
        verify_hashes: Also re-hash every original (reads every file).
        remove_temporary: Delete the temporary files of killed writers. Only safe while no import
            runs on the workspace.
    """
    with ws.reading() as s:
        rows = s.execute(select(Crop.id, Crop.sha256, Crop.format).order_by(Crop.id)).all()
    missing, corrupt, no_thumb = [], [], []
    for crop_id, sha, fmt in rows:
        path = ws.images.original_path(sha, fmt)
        if not path.is_file():
            missing.append(crop_id)
            continue
        if verify_hashes and hashlib.sha256(path.read_bytes()).hexdigest() != sha:
            corrupt.append(crop_id)
        if not ws.images.thumbnail_path(sha).is_file():
            no_thumb.append(crop_id)
    orphans = ws.images.orphans({sha for _, sha, _ in rows})
    temporary = ws.images.temporary_files()
    if remove_temporary:
        for p in temporary:
            p.unlink(missing_ok=True)
    return CheckReport(
        crops=len(rows),
        missing_originals=tuple(missing),
        corrupt_originals=tuple(corrupt),
        missing_thumbnails=tuple(no_thumb),
        orphan_files=tuple(str(p) for p in orphans),
        temporary_files=tuple(str(p) for p in temporary),
    )
