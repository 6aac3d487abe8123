"""Filing dropped video files from the GUI: the job the main window starts on a worker.

The work itself is :func:`cli.video_jobs.ingest_video` (Qt-free, shared with ``ingest-video``);
this module adapts it to the worker contract of :mod:`gui.workers` (``on_progress(done, total,
message)`` and ``should_stop()``) and opens the workspace on the worker thread (one session per
thread). Cancelling files the tracks that ended and keeps the resume point; dropping the same video
again resumes it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from amd.video.source import VIDEO_SUFFIXES
from gui.workers import Job, JobRunner

if TYPE_CHECKING:
    from cli.video_jobs import VideoJobProgress, VideoSummary

JOB_KEY = "ingest-video"


def is_video_file(path: str | Path) -> bool:
    """True for a file whose name ends like a video (the drop handler sends these here, images to ``ingest``)."""
    p = Path(path)
    return p.suffix.lower() in VIDEO_SUFFIXES and p.is_file()


def ingest_videos(
    workspace: str | Path,
    paths: Sequence[str | Path],
    camera: str,
    target: str | None = None,
    *,
    on_progress: Callable[[int, int, str], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> list[VideoSummary]:
    """Detect, track and file the people of ``paths`` into the workspace at ``workspace``.

    Runs on a worker thread. Progress is per frame of the current video, with its name, the frame
    rate and the time left in the message.

    Returns:
        One summary per video (``done``, ``cancelled``, ``skipped`` or ``refused`` with the reason).
    """
    from amd.video.detect import HogDetector
    from cli import jobs
    from cli.video_jobs import default_target, ingest_video, make_embed_fn
    from db.workspace import Workspace

    ws = Workspace.open(workspace)
    try:
        model = target or default_target(ws)
        embed = make_embed_fn(jobs.load_embedder(str(model)))
        detector = HogDetector()
        out: list[VideoSummary] = []
        for i, path in enumerate(paths):
            if should_stop is not None and should_stop():
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
) -> Job:
    """Start :func:`ingest_videos` on ``runner`` under :data:`JOB_KEY` and return the job.

    Connect ``job.signals.progress_changed`` to the status bar, ``succeeded`` to a summary (a list of
    :class:`~cli.video_jobs.VideoSummary`) and a gallery refresh, and ``failed`` to an error dialog.
    """
    job = Job(ingest_videos, str(workspace), [str(p) for p in paths], camera, target, name="Ingest video")
    return runner.start(JOB_KEY, job)


def summary_text(summaries: Sequence[VideoSummary]) -> str:
    """A few lines for the message box shown when the job ends."""
    lines = []
    for s in summaries:
        name = Path(s.path).name
        if s.status in ("refused", "skipped"):
            lines.append(f"{name}: {s.status}: {s.reason}")
        else:
            state = "filed" if s.status == "done" else "stopped (drop it again to resume)"
            lines.append(f"{name}: {state}: {s.tracks} tracks, {s.crops} crops on camera {s.camera!r}")
    return "\n".join(lines)
