"""Filing dropped video files from the GUI: the camera question and the job the main window starts.

A video dropped on the gallery (:func:`split_drop` tells videos from images) asks for its camera
(:func:`ask_camera`), then runs :func:`ingest_videos` on a worker. The work itself is
:func:`cli.video_jobs.ingest_video` (Qt-free, shared with ``ingest-video``); this module adapts it to
the worker contract of :mod:`gui.workers` (``on_progress(done, total, message)`` and
``should_stop()``) and opens the workspace on the worker thread (one session per thread). Cancelling
files the tracks that ended and keeps the resume point; dropping the same video again resumes it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtWidgets import QInputDialog, QWidget

from amd.video.source import VIDEO_SUFFIXES
from gui.workers import Job, JobRunner

if TYPE_CHECKING:
    from amd.video.detect import Detector
    from cli.video_jobs import VideoJobProgress, VideoSummary

JOB_KEY = "ingest-video"
#: Reason of a video that a cancel stopped before it began.
NOT_BEGUN = "not begun: cancelled before it"
#: A date and time in a file name (``cam1_20240314_081500``), left out of the suggested camera name.
_NAME_TIME = re.compile(r"\d{4}-?\d{2}-?\d{2}([T_\- ]?\d{2}[:\-]?\d{2}[:\-]?\d{2})?")


def is_video_file(path: str | Path) -> bool:
    """True for a file whose name ends like a video (the drop handler sends these here, images to ``ingest``)."""
    p = Path(path)
    return p.suffix.lower() in VIDEO_SUFFIXES and p.is_file()


def split_drop(paths: Sequence[str]) -> tuple[list[str], list[str]]:
    """Dropped paths as (video files, everything else): videos are tracked, the rest imported as images."""
    videos = [p for p in paths if is_video_file(p)]
    return videos, [p for p in paths if p not in videos]


def suggested_camera(paths: Sequence[str | Path]) -> str:
    """A camera name from the first video's file name, less any date and time in it (``cam1`` for
    ``cam1_20240314_081500.avi``); ``camera 1`` when nothing is left."""
    stem = _NAME_TIME.sub("", Path(paths[0]).stem) if paths else ""
    return stem.strip(" _-.") or "camera 1"


def ask_camera(parent: QWidget | None, paths: Sequence[str | Path], cameras: Sequence[str]) -> str | None:
    """Ask which camera recorded the dropped videos; ``None`` when the user cancels or leaves it empty.

    The choices are a name taken from the file name, then the workspace's cameras; any name may be typed.
    """
    guess = suggested_camera(paths)
    options = [guess] + [c for c in cameras if c != guess]
    what = Path(paths[0]).name if len(paths) == 1 else f"the {len(paths)} videos"
    name, ok = QInputDialog.getItem(parent, "Ingest video", f"Camera that recorded {what}:", options, 0, True)
    name = name.strip() if ok else ""
    return name or None


def default_detector() -> Detector:
    """The person detector of dropped videos: OpenCV's HOG detector with the command's defaults."""
    from amd.video.detect import HogDetector

    return HogDetector()


def ingest_videos(
    workspace: str | Path,
    paths: Sequence[str | Path],
    camera: str,
    target: str | None = None,
    detector: Detector | None = None,
    *,
    on_progress: Callable[[int, int, str], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> list[VideoSummary]:
    """Detect, track and file the people of ``paths`` into the workspace at ``workspace``.

    Runs on a worker thread. Progress is per frame of the current video, with its name, the frame
    rate and the time left in the message.

    Args:
        workspace: The workspace folder (opened here, on the worker's thread).
        paths: The video files.
        camera: Camera name of the crops.
        target: Target model file for the tracks' appearance; default the workspace's newest target.
        detector: Person detector; default :func:`default_detector`.

    Returns:
        One summary per video (``done``, ``cancelled``, ``skipped`` or ``refused`` with the reason);
        after a cancel, the videos not begun are listed as ``cancelled`` with no frame processed.
    """
    from cli import jobs
    from cli.video_jobs import VideoSummary, default_target, ingest_video, make_embed_fn
    from db.workspace import Workspace

    ws = Workspace.open(workspace)
    try:
        model = target or default_target(ws)
        embed = make_embed_fn(jobs.load_embedder(str(model)))
        if detector is None:
            detector = default_detector()
        out: list[VideoSummary] = []
        for i, path in enumerate(paths):
            if should_stop is not None and should_stop():
                out.extend(VideoSummary(str(p), "cancelled", NOT_BEGUN, camera=camera) for p in paths[i:])
                break
            name = Path(path).name
            prefix = f"{name} ({i + 1}/{len(paths)})" if len(paths) > 1 else name

            def report(p: VideoJobProgress, prefix: str = prefix) -> None:
                if on_progress is None:
                    return
                eta = f", {p.eta_s:.0f} s left" if p.eta_s is not None else ""
                message = f"{prefix}: {p.fps:.1f} frames/s{eta}, {p.tracks_filed} tracks filed"
                on_progress(p.frame + 1, p.frame_count or 0, message)

            out.append(
                ingest_video(
                    ws, str(path), camera, detector, embed, on_progress=report, should_stop=should_stop
                )
            )
        return out
    finally:
        ws.close()


def start_video_ingest(
    runner: JobRunner,
    workspace: str | Path,
    paths: Sequence[str | Path],
    camera: str,
    target: str | None = None,
    detector: Detector | None = None,
) -> Job:
    """Start :func:`ingest_videos` on ``runner`` under :data:`JOB_KEY` and return the job.

    Connect ``job.signals.progress_changed`` to the status bar, ``succeeded`` to a summary (a list of
    :class:`~cli.video_jobs.VideoSummary`; sent after a cancel too, with the tracks that ended filed),
    ``finished`` to a gallery refresh, and ``failed`` to an error dialog.
    """
    # Cancelled, the job still returns its summaries: what was filed before the stop, what is left.
    job = Job(
        ingest_videos,
        str(workspace),
        [str(p) for p in paths],
        camera,
        target,
        detector if detector is not None else default_detector(),
        name="Ingest video",
        partial_result=True,
    )
    return runner.start(JOB_KEY, job)


def summary_text(summaries: Sequence[VideoSummary]) -> str:
    """A few lines for the message box shown when the job ends (also after a cancel)."""
    if not summaries:
        return "No video was filed."
    lines = []
    for s in summaries:
        name = Path(s.path).name
        if s.status in ("refused", "skipped"):
            reason = s.reason.removeprefix(f"{s.path}: ")
            lines.append(f"{name}: {s.status}: {reason}")
            continue
        if s.reason == NOT_BEGUN:
            lines.append(f"{name}: {NOT_BEGUN}; drop it again to file it")
            continue
        state = "filed" if s.status == "done" else "stopped"
        if s.resumed_from:
            state = f"resumed at frame {s.resumed_from}, {state}"
        tracks = f"{s.tracks} track{'s' * (s.tracks != 1)}"
        crops = f"{s.crops} crop{'s' * (s.crops != 1)}"
        lines.append(
            f"{name}: {state}: {tracks}, {crops} on camera {s.camera!r} "
            f"({s.frames} frames, {s.fps:.1f} frames/s)"
        )
        if s.reason:
            lines.append(f"{name}: {s.reason}")
        if s.status == "cancelled":
            lines.append(f"{name}: drop it again to resume")
    if any(s.tracks for s in summaries):
        lines.append("Each track is a provisional identity: confirm, rename, merge or split it.")
    return "\n".join(lines)
