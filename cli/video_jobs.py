"""Ingest surveillance video into a workspace: the engine's tracker joined to the store.

Qt-free, written once for ``python main.py ingest-video`` and the GUI (which runs
:func:`ingest_video` on a worker with ``on_progress`` and ``should_stop``). OpenCV and torch are
imported inside the functions.

A video is identified by :func:`db.sightings.video_fingerprint`, so a renamed or moved file resumes
where it stopped and a finished one is skipped.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from db.ingest import parse_time
from db.sightings import (
    SightingCrop,
    TrackSighting,
    VideoProgress,
    next_track_number,
    store_tracks,
    video_fingerprint,
    video_progress,
)

if TYPE_CHECKING:
    import numpy as np

    from amd.video.detect import Detector
    from amd.video.pipeline import FinishedTrack, VideoStep
    from db.workspace import Workspace

#: Seconds between commits while tracks keep ending (a kill loses at most this much work).
COMMIT_INTERVAL_S = 10.0
_NAME_TIME = re.compile(r"(?<!\d)(\d{4})-?(\d{2})-?(\d{2})[T_\- ]?(\d{2})[:\-]?(\d{2})[:\-]?(\d{2})(?!\d)")


@dataclass(frozen=True)
class VideoJobProgress:
    """Progress of one video for a progress bar: frames done of the total, rate and time left."""

    path: str
    frame: int
    frame_count: int | None
    fps: float
    eta_s: float | None
    tracks_open: int
    tracks_filed: int
    crops_added: int


@dataclass(frozen=True)
class VideoSummary:
    """What :func:`ingest_video` did with one file.

    Attributes:
        path: The video.
        status: ``done`` (the whole video is filed), ``cancelled`` (stopped; run again to resume),
            ``skipped`` (filed by an earlier run) or ``refused`` (see ``reason``).
        reason: Why the file was refused, or a note (a truncated file, a camera taken from the record).
        camera: Camera name the crops were filed under.
        start_time: Time of frame 0 (UTC).
        start_source: Where ``start_time`` came from: ``option``, ``file name`` or ``file time``.
        resumed_from: Frame the run started from (0 for a fresh start).
        frames: Frames processed in this run.
        fps: Processed frames per second in this run.
        tracks: Tracks filed in this run (each a provisional identity, or joined to a known one).
        identities: Ids of the identities created in this run.
        crops: Crops added in this run.
        seconds: Wall time.
    """

    path: str
    status: str
    reason: str = ""
    camera: str = ""
    start_time: datetime | None = None
    start_source: str = ""
    resumed_from: int = 0
    frames: int = 0
    fps: float = 0.0
    tracks: int = 0
    identities: tuple[int, ...] = ()
    crops: int = 0
    seconds: float = 0.0


def start_time_for(path: str, start: str | None, duration_s: float | None) -> tuple[datetime, str]:
    """The wall-clock time of a video's first frame, and where it came from.

    In order: ``start`` (ISO 8601; a time without zone is UTC), a date and time in the file name
    (``cam1_20240314_081500.avi``, ``2024-03-14T08-15-00.mp4``; taken as UTC), or the file's
    modification time less the video's duration (recorders close a file when its last frame is written).

    Raises:
        ValueError: ``start`` is given but is not an ISO 8601 time.
    """
    if start is not None:
        parsed = parse_time(start)
        if parsed is None:
            raise ValueError(f"--start {start!r} is not an ISO 8601 time (for example 2024-03-14T08:15:00)")
        return parsed, "option"
    m = _NAME_TIME.search(Path(path).stem)
    if m:
        try:
            return datetime(*(int(g) for g in m.groups()), tzinfo=timezone.utc), "file name"
        except ValueError:
            pass
    mtime = datetime.fromtimestamp(Path(path).stat().st_mtime, tz=timezone.utc)
    return mtime - timedelta(seconds=duration_s or 0.0), "file time"


def default_target(ws: Workspace) -> str:
    """The newest registered target model whose file is still there, else the bundled demo target."""
    from amd.resources import resource_path

    for model in reversed(ws.models.list("target")):
        if model.file_path and Path(model.file_path).is_file():
            return model.file_path
    return str(resource_path("models", "demo_target.pt"))


def make_embed_fn(embedder: object, batch_size: int = 32) -> Callable[[Sequence[np.ndarray]], np.ndarray]:
    """Appearance vectors of RGB crops from an engine embedder (``embed(images) -> (N, D)``)."""

    def embed(crops: Sequence[np.ndarray]) -> np.ndarray:
        return embedder.embed(list(crops), batch_size=batch_size)  # type: ignore[attr-defined]

    return embed


def _encode(track: FinishedTrack, start: datetime, quality: int) -> TrackSighting:
    import cv2

    crops = []
    for c in track.crops:
        ok, buf = cv2.imencode(
            ".jpg", cv2.cvtColor(c.image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
        )
        if not ok:
            continue
        crops.append(SightingCrop(buf.tobytes(), c.frame, start + timedelta(seconds=c.time_s), c.box))
    return TrackSighting(track.track_id, track.first_frame, track.last_frame, track.hits, tuple(crops))


def ingest_video(
    ws: Workspace,
    path: str,
    camera: str,
    detector: Detector,
    embed: Callable[[Sequence[np.ndarray]], np.ndarray] | None,
    *,
    start: str | None = None,
    every: int = 1,
    crops_per_track: int = 3,
    jpeg_quality: int = 95,
    on_progress: Callable[[VideoJobProgress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> VideoSummary:
    """Detect and track the people in one video and file every track as crops and a provisional identity.

    Args:
        ws: The open workspace.
        path: The video file.
        camera: Camera name of the crops (a resumed video keeps the camera of its first run).
        detector: Person detector (:mod:`amd.video.detect`).
        embed: Appearance vectors of RGB crops, normally the target model's (:func:`make_embed_fn`);
            ``None`` tracks by motion and overlap alone.
        start: Time of the first frame (ISO 8601); default from the file name or the file time.
        every: Process every ``every``-th frame (a resumed video keeps the step of its first run).
        crops_per_track: Crops filed per track.
        jpeg_quality: Quality of the stored crops.
        on_progress: Called every few processed frames.
        should_stop: Polled every few frames; true files what has ended so far, records the resume
            point and returns with status ``cancelled``.

    Returns:
        The summary. A file that cannot be decoded is not an exception: it comes back ``refused``
        with the reason.

    Raises:
        ValueError: ``start`` is not an ISO 8601 time, or ``every`` is below 1.
        WorkspaceBusyError: Another program kept the database locked past the busy timeout.
    """
    from amd.video import VideoError
    from amd.video.pipeline import track_video
    from amd.video.source import VideoSource

    if every < 1:
        raise ValueError("--every must be at least 1")
    began = time.perf_counter()
    try:
        source = VideoSource(path)
    except VideoError as exc:
        return VideoSummary(path, "refused", reason=str(exc), camera=camera)
    with source:
        info = source.info
        start_time, start_source = start_time_for(path, start, info.duration_s)
        fingerprint = video_fingerprint(path)
        previous = video_progress(ws, fingerprint)
        note = ""
        if previous is not None and previous.done:
            return VideoSummary(
                path,
                "skipped",
                reason=f"already filed ({previous.tracks} tracks, {previous.crops} crops)",
                camera=previous.camera,
            )
        if previous is not None:
            if previous.camera != camera:
                note = f"resumed under camera {previous.camera!r}, the camera of the first run"
            camera, every = previous.camera, previous.every
            resume, skip_before, first_track = previous.resume_frame, previous.next_frame, previous.next_track
            tracks_total, crops_total = previous.tracks, previous.crops
        else:
            resume, skip_before, first_track = 0, 0, next_track_number(ws, camera)
            tracks_total = crops_total = 0

        pending: list[FinishedTrack] = []
        identities: list[int] = []
        filed = added = 0
        last_commit = time.perf_counter()
        step: VideoStep | None = None

        def commit(s: VideoStep) -> None:
            nonlocal filed, added, tracks_total, crops_total, last_commit
            progress = VideoProgress(
                fingerprint=fingerprint,
                path=path,
                camera=camera,
                next_frame=s.next_frame,
                resume_frame=s.resume_frame,
                next_track=s.next_track_id,
                every=every,
                done=s.done,
                tracks=tracks_total,
                crops=crops_total,
            )
            sightings = [_encode(t, start_time, jpeg_quality) for t in pending]
            stored = store_tracks(ws, sightings, progress, video_path=path)
            n_tracks = stored.tracks
            identities.extend(stored.identities)
            filed += n_tracks
            added += len(stored.crop_ids)
            tracks_total += n_tracks
            crops_total += len(stored.crop_ids)
            pending.clear()
            last_commit = time.perf_counter()

        status = "done"
        for step in track_video(
            source,
            detector,
            embed,
            every=every,
            start_frame=resume,
            first_track_id=first_track,
            skip_ended_before=skip_before,
            crops_per_track=crops_per_track,
        ):
            pending.extend(step.finished)
            stop = should_stop is not None and should_stop() and not step.done
            if step.done or stop or (pending and time.perf_counter() - last_commit >= COMMIT_INTERVAL_S):
                commit(step)
            if on_progress is not None:
                on_progress(
                    VideoJobProgress(
                        path,
                        step.frame,
                        step.frame_count,
                        step.fps,
                        step.eta_s,
                        step.open_tracks,
                        filed,
                        added,
                    )
                )
            if stop:
                status = "cancelled"
                break
        if (
            step is not None
            and step.done
            and info.frame_count is not None
            and source.frames_read < info.frame_count
        ):
            note = "; ".join(
                n
                for n in (note, f"the file breaks off at frame {source.frames_read} of {info.frame_count}")
                if n
            )
    return VideoSummary(
        path,
        status,
        reason=note,
        camera=camera,
        start_time=start_time,
        start_source=start_source,
        resumed_from=resume,
        frames=step.processed if step is not None else 0,
        fps=step.fps if step is not None else 0.0,
        tracks=filed,
        identities=tuple(identities),
        crops=added,
        seconds=time.perf_counter() - began,
    )
