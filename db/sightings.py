"""File person tracks found in a video as crops and provisional identities, with resumable progress.

The store side of video ingestion (the engine side is :mod:`amd.video`; ``cli/video_jobs.py`` joins
them). It takes crops as encoded image bytes, so it needs neither OpenCV nor torch.

One call of :func:`store_tracks` is one unit of work: the tracks' crops (camera, capture time, frame
number and box in the frame, source video), one identity per new track, and a ``video.progress``
audit event that says where a later run may resume. The image files are written before the
transaction, as in :mod:`db.ingest`, so a crop row never exists without its file; an interrupted run
loses at most the tracks of the step it was storing, and a re-run resumes from the last stored
progress event.

Each track becomes an identity named ``Track N (camera)``. The schema has no "provisional" flag on
identities, so the identity's notes say that it is provisional (an unconfirmed track) and the audit
event of its creation carries ``provisional: true``; renaming, merging or splitting it is the
analyst's confirmation.

A track whose crops are all in the workspace already (the same frames cut the same way, seen again
by a resumed run) is not filed twice; one whose crops are partly known joins the identity of the
known ones.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from db.errors import ImageRefused
from db.imagestore import inspect_image
from db.models import AuditEvent, Camera, Crop, Identity, utcnow
from db.repositories import get_or_create_ids, insert_ignore

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from db.workspace import Workspace

PROGRESS_ACTION = "video.progress"
PROVISIONAL_NOTE = "Provisional identity: one person track found in a video, not yet confirmed by an analyst."
_TRACK_NAME = re.compile(r"^Track (\d+)(?: #\d+)? \((.*)\)$")
_FINGERPRINT_CHUNK = 4 << 20


def video_fingerprint(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a video's size, first 4 MiB and last 4 MiB: identifies a file without reading it all.

    Surveillance exports are large; the size and both ends tell two recordings apart (the ends hold
    the container's header and index) at a fixed cost.
    """
    p = Path(path)
    size = p.stat().st_size
    h = hashlib.sha256(str(size).encode())
    with open(p, "rb") as fh:
        h.update(fh.read(_FINGERPRINT_CHUNK))
        if size > _FINGERPRINT_CHUNK:
            fh.seek(max(_FINGERPRINT_CHUNK, size - _FINGERPRINT_CHUNK))
            h.update(fh.read(_FINGERPRINT_CHUNK))
    return h.hexdigest()


@dataclass(frozen=True)
class SightingCrop:
    """One crop of a track, encoded.

    Attributes:
        data: The encoded image (JPEG or PNG bytes).
        frame: Frame number in the video.
        captured_at: Capture time (UTC, timezone-aware).
        box: (x, y, w, h) of the crop in the frame.
    """

    data: bytes
    frame: int
    captured_at: datetime
    box: tuple[int, int, int, int]


@dataclass(frozen=True)
class TrackSighting:
    """A track to file: its number within the video, its crops and its extent."""

    number: int
    first_frame: int
    last_frame: int
    hits: int
    crops: tuple[SightingCrop, ...]


@dataclass(frozen=True)
class VideoProgress:
    """Where the ingestion of one video stands (the latest ``video.progress`` event for its fingerprint).

    Attributes:
        fingerprint: :func:`video_fingerprint` of the file.
        path: The file when the event was written.
        camera: Camera name.
        next_frame: First frame not yet processed.
        resume_frame: Frame a resumed run starts from (the first frame of the tracks still open).
        next_track: Number the next track gets.
        every: Frame step of the run.
        done: The whole video was processed.
        tracks: Tracks filed so far (all runs).
        crops: Crops filed so far (all runs).
    """

    fingerprint: str
    path: str
    camera: str
    next_frame: int
    resume_frame: int
    next_track: int
    every: int
    done: bool
    tracks: int
    crops: int

    def to_details(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class StoredStep:
    """What one :func:`store_tracks` call wrote.

    Attributes:
        tracks: Tracks that added crops (new identities or joined to known ones).
        identities: Ids of the identities created for new tracks.
        crop_ids: Ids of the crops added.
        duplicates: Crops already in the workspace.
        refused: Crops whose bytes were not a usable image, with the reason.
    """

    tracks: int
    identities: tuple[int, ...]
    crop_ids: tuple[int, ...]
    duplicates: int
    refused: tuple[str, ...]


def video_progress(ws: Workspace, fingerprint: str) -> VideoProgress | None:
    """The latest progress recorded for the video with ``fingerprint``, or ``None`` when it is new."""
    with ws.reading() as s:
        rows = s.scalars(
            select(AuditEvent.details)
            .where(AuditEvent.action == PROGRESS_ACTION)
            .order_by(AuditEvent.id.desc())
        )
        for details in rows:
            if details and details.get("fingerprint") == fingerprint:
                fields = VideoProgress.__dataclass_fields__
                return VideoProgress(**{k: details[k] for k in fields if k in details})
    return None


def next_track_number(ws: Workspace, camera: str) -> int:
    """One more than the highest ``Track N (camera)`` identity of ``camera`` (1 when there is none)."""
    highest = 0
    with ws.reading() as s:
        for name in s.scalars(select(Identity.name).where(Identity.name.like("Track %"))):
            m = _TRACK_NAME.match(name)
            if m and m.group(2) == camera:
                highest = max(highest, int(m.group(1)))
    return highest + 1


def _free_name(s: Session, base_number: int, camera: str) -> str:
    name = f"Track {base_number} ({camera})"
    k = 2
    while s.scalar(select(Identity.id).where(Identity.name == name)) is not None:
        # Another run filed this number on the same camera meanwhile: keep both apart.
        name = f"Track {base_number} #{k} ({camera})"
        k += 1
    return name


def store_tracks(
    ws: Workspace,
    tracks: list[TrackSighting],
    progress: VideoProgress,
    *,
    video_path: str,
) -> StoredStep:
    """File ``tracks`` and record ``progress`` in one transaction (image files first).

    Args:
        ws: The open workspace.
        tracks: Tracks that ended since the previous call.
        progress: The resume point after these tracks (its ``tracks`` and ``crops`` counts are the
            caller's running totals before this call; the stored event adds this call's).
        video_path: The video file, kept as each crop's source.

    Returns:
        What was written.
    """
    source = str(Path(video_path).absolute())
    refused: list[str] = []
    prepared: list[tuple[TrackSighting, list[dict[str, Any]]]] = []
    for track in tracks:
        rows: list[dict[str, Any]] = []
        seen: set[str] = set()
        for c in track.crops:
            sha = hashlib.sha256(c.data).hexdigest()
            if sha in seen:
                continue
            try:
                image, facts = inspect_image(c.data)
            except ImageRefused as exc:
                refused.append(f"track {track.number}, frame {c.frame}: {exc.reason}")
                continue
            seen.add(sha)
            ws.images.put_original(c.data, sha, facts.format)
            ws.images.put_thumbnail(sha, image)
            x, y, w, h = (int(v) for v in c.box)
            rows.append(
                {
                    "sha256": sha,
                    "width": facts.width,
                    "height": facts.height,
                    "format": facts.format,
                    "mode": facts.mode,
                    "byte_size": len(c.data),
                    "frame": int(c.frame),
                    "captured_at": c.captured_at,
                    "time_text": c.captured_at.isoformat(),
                    "source_path": source,
                    "bbox_x": x,
                    "bbox_y": y,
                    "bbox_w": w,
                    "bbox_h": h,
                }
            )
        prepared.append((track, rows))

    new_identities: list[int] = []
    new_crops: list[int] = []
    duplicates = 0
    filed = 0
    with ws.writing() as s:
        camera_id = get_or_create_ids(s, Camera, [progress.camera])[progress.camera]
        now = utcnow()
        for track, rows in prepared:
            if not rows:
                continue
            shas = [r["sha256"] for r in rows]
            known = dict(s.execute(select(Crop.sha256, Crop.identity_id).where(Crop.sha256.in_(shas))).all())
            fresh = [r for r in rows if r["sha256"] not in known]
            duplicates += len(rows) - len(fresh)
            if not fresh:
                continue
            identity_id = next((i for i in known.values() if i is not None), None)
            if identity_id is None:
                name = _free_name(s, track.number, progress.camera)
                ident = Identity(name=name, notes=PROVISIONAL_NOTE)
                s.add(ident)
                s.flush()
                identity_id = ident.id
                new_identities.append(ident.id)
                ws.audit.add(
                    s,
                    "identity.create",
                    "identity",
                    [ident.id],
                    {
                        "name": name,
                        "provisional": True,
                        "video": source,
                        "track": track.number,
                        "first_frame": track.first_frame,
                        "last_frame": track.last_frame,
                        "detections": track.hits,
                    },
                )
            for r in fresh:
                r["camera_id"] = camera_id
                r["identity_id"] = identity_id
                r["created_at"] = now
            inserted = dict(insert_ignore(s, Crop, fresh, ["sha256"], returning=(Crop.sha256, Crop.id)))
            ids = [inserted[r["sha256"]] for r in fresh if r["sha256"] in inserted]
            duplicates += len(fresh) - len(ids)
            new_crops.extend(ids)
            filed += 1
        if new_crops:
            ws.audit.add(s, "crop.ingest", "crop", new_crops, {"count": len(new_crops), "video": source})
        details = progress.to_details()
        details["tracks"] = progress.tracks + filed
        details["crops"] = progress.crops + len(new_crops)
        details["path"] = source
        ws.audit.add(s, PROGRESS_ACTION, "video", [], details)
    return StoredStep(filed, tuple(new_identities), tuple(new_crops), duplicates, tuple(refused))
