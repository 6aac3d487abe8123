"""``ingest-video``: detect and track people in surveillance video and file the tracks in a workspace."""

from __future__ import annotations

import argparse
import sys

from cli.checks import DEVICE_CHOICES, device_arg

NAME = "ingest-video"
HELP = (
    "Detect and track the people in video files and file each track as crops (camera, time, frame, box) "
    "and a provisional identity; resumable."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("workspace", help="workspace folder (created when missing or empty)")
    parser.add_argument("videos", nargs="+", metavar="VIDEO", help="video files (anything OpenCV decodes)")
    parser.add_argument("--camera", required=True, help="camera name of the crops")
    parser.add_argument(
        "--start",
        metavar="TIME",
        help="time of the first frame, ISO 8601 (default: a date and time in the file name, else the "
        "file's modification time less its duration); with several videos, the time of the first one's "
        "first frame, the others following it back to back",
    )
    parser.add_argument(
        "--every", type=int, default=1, metavar="N", help="process every N-th frame (default 1)"
    )
    parser.add_argument(
        "--target",
        metavar="FILE",
        help="target ReID model for the appearance of tracks (default: the workspace's newest registered "
        "target model, else the bundled demo model)",
    )
    parser.add_argument(
        "--detector",
        metavar="FILE",
        help="person detector as an ONNX file (YOLO-style output; default: OpenCV's built-in HOG detector)",
    )
    parser.add_argument(
        "--detector-layout",
        default="auto",
        choices=("auto", "yolov8", "yolov5"),
        help="output layout of --detector",
    )
    parser.add_argument(
        "--upscale",
        type=float,
        default=1.0,
        help="enlarge frames by this factor before the HOG detector (people under about 100 px need it)",
    )
    parser.add_argument(
        "--hog-hit-threshold",
        type=float,
        metavar="T",
        help="smallest SVM margin of a window the HOG detector keeps (default 0, OpenCV's; below 0 finds "
        "more people and more false boxes, above 0 fewer of both)",
    )
    parser.add_argument(
        "--hog-group-threshold",
        type=int,
        metavar="N",
        help="the HOG detector reports a person only where more than N of its windows agree (default 2, "
        "OpenCV's; 0 keeps single windows, higher drops isolated false boxes and some real people)",
    )
    parser.add_argument(
        "--crops-per-track", type=int, default=3, metavar="K", help="crops filed per track (default 3)"
    )
    parser.add_argument(
        "--device",
        type=device_arg,
        help=f"{DEVICE_CHOICES} for the target model (default auto: cuda when available)",
    )
    parser.add_argument(
        "--db-url", metavar="URL", help="database of a new workspace (default: SQLite in the folder)"
    )
    parser.epilog = (
        "Ctrl+C stops after the current frame: the tracks that ended are filed and the next run resumes "
        "where this one stopped (a second Ctrl+C aborts at once; the database stays consistent). A video "
        "filed completely is skipped. Exit status: 0 when every video was filed, 1 when some were refused, "
        "130 when stopped."
    )


def run(args: argparse.Namespace) -> int:
    import signal
    from datetime import timedelta
    from pathlib import Path

    from tqdm import tqdm

    from amd.errors import AmdError
    from amd.video import VideoError
    from amd.video.detect import HogDetector, OnnxDetector
    from amd.video.source import probe
    from cli import jobs
    from cli.checks import resolve_device
    from cli.video_jobs import VideoJobProgress, default_target, ingest_video, make_embed_fn
    from db.ingest import parse_time
    from db.sightings import video_fingerprint, video_progress

    if args.every < 1:
        raise AmdError("--every must be at least 1")
    if args.crops_per_track < 1:
        raise AmdError("--crops-per-track must be at least 1")
    device = resolve_device(args.device)
    if args.start is not None and parse_time(args.start) is None:
        raise AmdError(f"--start {args.start!r} is not an ISO 8601 time (for example 2024-03-14T08:15:00)")
    hog_options = {
        name: value
        for name, value in (
            ("hit_threshold", args.hog_hit_threshold),
            ("group_threshold", args.hog_group_threshold),
        )
        if value is not None
    }
    if args.hog_group_threshold is not None and args.hog_group_threshold < 0:
        raise AmdError("--hog-group-threshold must be 0 or more")
    if args.detector:
        if hog_options:
            raise AmdError(
                "--hog-hit-threshold and --hog-group-threshold set the built-in HOG detector; "
                "they do not apply to a --detector model"
            )
        detector = OnnxDetector(args.detector, layout=args.detector_layout)
    else:
        detector = HogDetector(upscale=args.upscale, **hog_options)
    ws = jobs.open_workspace(args.workspace, create=True, url=args.db_url)
    stop = {"requested": False}

    def on_sigint(signum: int, frame: object) -> None:
        if stop["requested"]:
            raise KeyboardInterrupt
        stop["requested"] = True
        print("\nstopping after the current frame (Ctrl+C again to abort)", file=sys.stderr)

    previous_handler = signal.signal(signal.SIGINT, on_sigint)
    refused = 0
    try:
        # Refuse undecodable files and skip filed ones before loading the model (seconds on a CPU).
        todo = []
        for path in args.videos:
            try:
                probe(path)
            except VideoError as exc:
                refused += 1
                print(f"refused: {exc}")
                continue
            done = video_progress(ws, video_fingerprint(path))
            if done is not None and done.done:
                print(f"skipped {path}: already filed ({done.tracks} tracks, {done.crops} crops)")
                continue
            todo.append(path)
        if todo:
            target = args.target or default_target(ws)
            embed = make_embed_fn(jobs.load_embedder(str(target), device))
            print(f"detector: {detector.name}; appearance: {Path(target).name}", file=sys.stderr)
        start = args.start
        for path in todo:
            if stop["requested"]:
                break
            with tqdm(unit="frame", desc=Path(path).name, file=sys.stderr, dynamic_ncols=True) as bar:

                def on_progress(p: VideoJobProgress) -> None:
                    if p.frame_count is not None:
                        bar.total = p.frame_count
                    bar.update(p.frame + 1 - bar.n)
                    bar.set_postfix(
                        fps=f"{p.fps:.1f}", open=p.tracks_open, tracks=p.tracks_filed, refresh=False
                    )

                summary = ingest_video(
                    ws,
                    path,
                    args.camera,
                    detector,
                    embed,
                    start=start,
                    every=args.every,
                    crops_per_track=args.crops_per_track,
                    on_progress=on_progress,
                    should_stop=lambda: stop["requested"],
                )
            if summary.status == "refused":
                refused += 1
                print(f"refused: {summary.reason}")
                continue
            if summary.status == "skipped":
                print(f"skipped {path}: {summary.reason}")
                continue
            when = summary.start_time.isoformat() if summary.start_time else "?"
            resumed = f", resumed at frame {summary.resumed_from}" if summary.resumed_from else ""
            print(
                f"{summary.status} {path}: {summary.tracks} tracks, {summary.crops} crops, camera "
                f"{summary.camera!r}, first frame at {when} ({summary.start_source}){resumed}; "
                f"{summary.frames} frames in {summary.seconds:.1f} s ({summary.fps:.1f} frames/s)"
            )
            if summary.reason:
                print(f"  note: {summary.reason}")
            if args.start is not None and summary.start_time is not None:
                # The next file of a recording continues where this one ends.
                info = probe(path)
                start = (summary.start_time + timedelta(seconds=info.duration_s or 0.0)).isoformat()
    finally:
        signal.signal(signal.SIGINT, previous_handler)
        ws.close()
    if stop["requested"]:
        print("stopped: run the same command again to resume", file=sys.stderr)
        return 130
    return 1 if refused else 0
