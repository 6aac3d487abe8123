"""Import image files into a workspace: validate, store by hash, make thumbnails, record crops.

Order of writes, and why a killed import leaves the workspace consistent:

1. Files are read and hashed; hashes already in the database are counted as duplicates without
   decoding.
2. Each new image is decoded completely (bad ones are refused with a reason), its original is
   written byte for byte and its thumbnail made, each to a temporary name renamed into place.
3. Only then are the batch's rows inserted, with their audit event, in one transaction.

A crop row therefore never exists without its files. A kill between 2 and 3 leaves files with no
row; running the import again finds the file in place, inserts the row, and counts nothing twice
(the SHA-256 is unique in the database). Two programs importing at once serialise their short
write transactions (SQLite waits up to the busy timeout, then reports the workspace busy).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from db.errors import ImageRefused
from db.imagestore import MAX_FILE_BYTES, MAX_PIXELS, inspect_image
from db.models import Camera, Crop, Identity, utcnow
from db.repositories import get_or_create_ids, insert_ignore

if TYPE_CHECKING:
    from db.workspace import Workspace

DEFAULT_BATCH = 128


@dataclass(frozen=True)
class IngestItem:
    """One file to import, with what is known about it.

    Attributes:
        path: The image file.
        camera: Camera name, or ``None``.
        identity: Identity name, or ``None`` (unlabelled).
        frame: Frame number from the file name, when the layout has one.
        time_text: Capture time as given; stored parsed too when it is ISO 8601.
        split: ``train``, ``query`` or ``gallery`` when a dataset layout says so.
        attributes: Per-image labels, ``{"schema": name, "values": {attribute: -1 | +1}}``.
        identity_attributes: Per-identity labels in the same form, set on an identity that has none.
    """

    path: str
    camera: str | None = None
    identity: str | None = None
    frame: int | None = None
    time_text: str | None = None
    split: str | None = None
    attributes: dict[str, Any] | None = None
    identity_attributes: dict[str, Any] | None = None


@dataclass(frozen=True)
class Refusal:
    path: str
    reason: str


@dataclass(frozen=True)
class IngestProgress:
    done: int
    total: int
    added: int
    duplicates: int
    refused: int


@dataclass(frozen=True)
class IngestSummary:
    """What an import did.

    Attributes:
        added: New crops recorded.
        duplicates: Files whose content was already in the workspace (or earlier in this import).
        refused: Files skipped, each with the reason.
        crop_ids: Ids of the new crops, in import order.
        cancelled: The import stopped early on request; what was committed stays.
        seconds: Wall time.
    """

    added: int
    duplicates: int
    refused: tuple[Refusal, ...]
    crop_ids: tuple[int, ...] = field(repr=False)
    cancelled: bool
    seconds: float

    @property
    def total(self) -> int:
        return self.added + self.duplicates + len(self.refused)


def scan_paths(
    paths: Iterable[str | os.PathLike[str]],
    camera: str | None = None,
    identity: str | None = None,
) -> tuple[list[IngestItem], list[Refusal]]:
    """Expand files and folders (recursively, sorted, hidden entries skipped) into import items.

    Returns:
        The items, and refusals for paths that do not exist or are neither files nor folders.
    """
    items: list[IngestItem] = []
    refused: list[Refusal] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for dirpath, dirnames, filenames in os.walk(path):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                for name in sorted(filenames):
                    if not name.startswith("."):
                        items.append(IngestItem(str(Path(dirpath, name)), camera=camera, identity=identity))
        elif path.is_file():
            items.append(IngestItem(str(path), camera=camera, identity=identity))
        elif path.exists() or path.is_symlink():
            refused.append(
                Refusal(str(path), "not a regular file or folder" if path.exists() else "broken link")
            )
        else:
            refused.append(Refusal(str(path), "no such file or folder"))
    return items, refused


def parse_time(text: str | None) -> datetime | None:
    """ISO 8601 time as UTC (a time without zone is taken as UTC), or ``None`` when it does not parse."""
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


@dataclass
class _Pending:
    item: IngestItem
    sha256: str
    data: bytes


@dataclass
class _Ready:
    item: IngestItem
    sha256: str
    row: dict[str, Any]


def _read(item: IngestItem) -> bytes:
    try:
        size = os.path.getsize(item.path)
        if size > MAX_FILE_BYTES:
            raise ImageRefused(f"file too large ({size:,} bytes)")
        with open(item.path, "rb") as fh:
            return fh.read()
    except IsADirectoryError:
        raise ImageRefused("is a folder") from None
    except PermissionError:
        raise ImageRefused("unreadable: permission denied") from None
    except FileNotFoundError:
        raise ImageRefused("no such file") from None
    except OSError as exc:
        raise ImageRefused(f"unreadable: {exc.strerror or exc}") from None


def ingest(
    ws: Workspace,
    items: Sequence[IngestItem],
    *,
    batch_size: int = DEFAULT_BATCH,
    max_pixels: int = MAX_PIXELS,
    on_progress: Callable[[IngestProgress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    refused: Iterable[Refusal] = (),
) -> IngestSummary:
    """Import ``items`` into the workspace in committed batches.

    Args:
        ws: The open workspace.
        items: What to import (see :func:`scan_paths` and the dataset-layout adapters).
        batch_size: Files per transaction: bigger is faster, smaller loses less work to a kill.
        max_pixels: Decompression-bomb limit.
        on_progress: Called after every batch.
        should_stop: Polled between batches; true stops the import after the current batch.
        refused: Refusals found before the import (missing paths), reported with the others.

    Returns:
        The summary; it is also written to the audit log (``ingest.finish``).

    Raises:
        WorkspaceBusyError: Another program kept the database locked past the busy timeout.
    """
    start = time.perf_counter()
    refusals = list(refused)
    files = len(items) + len(refusals)
    added: list[int] = []
    duplicates = 0
    seen: set[str] = set()
    cameras: dict[str, int] = {}
    identities: dict[str, int] = {}
    done = 0
    cancelled = False

    for batch in _batches(items, batch_size):
        if should_stop is not None and should_stop():
            cancelled = True
            break
        pending: list[_Pending] = []
        for item in batch:
            try:
                data = _read(item)
            except ImageRefused as exc:
                refusals.append(Refusal(item.path, exc.reason))
                continue
            sha = hashlib.sha256(data).hexdigest()
            if sha in seen:
                duplicates += 1
                continue
            seen.add(sha)
            pending.append(_Pending(item, sha, data))

        with ws.reading() as s:
            known = set(s.scalars(select(Crop.sha256).where(Crop.sha256.in_([p.sha256 for p in pending]))))
        duplicates += len(known)

        ready: list[_Ready] = []
        for p in pending:
            if p.sha256 in known:
                continue
            try:
                image, facts = inspect_image(p.data, max_pixels=max_pixels)
            except ImageRefused as exc:
                refusals.append(Refusal(p.item.path, exc.reason))
                continue
            # Files first, rows after: see the module docstring.
            ws.images.put_original(p.data, p.sha256, facts.format)
            ws.images.put_thumbnail(p.sha256, image)
            ready.append(_Ready(p.item, p.sha256, _row(p, facts, len(p.data))))

        if ready:
            new_ids, dup = _commit(ws, ready, cameras, identities)
            added.extend(new_ids)
            duplicates += dup
        done += len(batch)
        if on_progress is not None:
            on_progress(IngestProgress(done, len(items), len(added), duplicates, len(refusals)))

    summary = IngestSummary(
        added=len(added),
        duplicates=duplicates,
        refused=tuple(refusals),
        crop_ids=tuple(added),
        cancelled=cancelled,
        seconds=time.perf_counter() - start,
    )
    ws.audit.record(
        "ingest.finish",
        "crop",
        (),
        {
            "files": files,
            "added": summary.added,
            "duplicates": summary.duplicates,
            "refused": len(refusals),
            "refusals": [{"path": r.path, "reason": r.reason} for r in refusals[:100]],
            "cancelled": cancelled,
        },
    )
    return summary


def _batches(items: Sequence[IngestItem], size: int) -> Iterator[Sequence[IngestItem]]:
    for i in range(0, len(items), max(1, size)):
        yield items[i : i + size]


def _row(p: _Pending, facts: Any, size: int) -> dict[str, Any]:
    item = p.item
    return {
        "sha256": p.sha256,
        "width": facts.width,
        "height": facts.height,
        "format": facts.format,
        "mode": facts.mode,
        "byte_size": size,
        "frame": item.frame,
        "captured_at": parse_time(item.time_text),
        "time_text": item.time_text,
        "source_path": str(Path(item.path).absolute()),
        "split": item.split,
        "attributes": item.attributes,
    }


def _commit(
    ws: Workspace, ready: list[_Ready], cameras: dict[str, int], identities: dict[str, int]
) -> tuple[list[int], int]:
    """Insert one batch of crops and its audit event; returns the new ids and late duplicates."""
    with ws.writing() as s:
        cam_names = {r.item.camera for r in ready if r.item.camera and r.item.camera not in cameras}
        cameras.update(get_or_create_ids(s, Camera, cam_names))
        id_names = {r.item.identity for r in ready if r.item.identity and r.item.identity not in identities}
        identities.update(get_or_create_ids(s, Identity, id_names))
        _set_identity_attributes(s, ready, identities)

        rows = []
        now = utcnow()
        for r in ready:
            row = dict(r.row)
            row["camera_id"] = cameras.get(r.item.camera) if r.item.camera else None
            row["identity_id"] = identities.get(r.item.identity) if r.item.identity else None
            row["created_at"] = now
            rows.append(row)
        # Another program may have imported the same image since the duplicate check: the
        # insert skips it and it counts as a duplicate.
        inserted = insert_ignore(s, Crop, rows, ["sha256"], returning=(Crop.sha256, Crop.id))
        ids = dict(inserted)
        shas = [r.sha256 for r in ready]
        new_ids = [ids[sha] for sha in shas if sha in ids]
        if new_ids:
            ws.audit.add(s, "crop.ingest", "crop", new_ids, {"count": len(new_ids)})
    return new_ids, len(ready) - len(new_ids)


def _set_identity_attributes(s: Any, ready: list[_Ready], identities: dict[str, int]) -> None:
    labels = {
        r.item.identity: r.item.identity_attributes
        for r in ready
        if r.item.identity and r.item.identity_attributes
    }
    if not labels:
        return
    ids = {identities[name]: attrs for name, attrs in labels.items()}
    for row in s.scalars(select(Identity).where(Identity.id.in_(list(ids)), Identity.attributes.is_(None))):
        row.attributes = ids[row.id]
