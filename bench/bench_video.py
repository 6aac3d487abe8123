"""Video ingestion throughput: frames per second of the whole pipeline on this machine's CPU.

A synthetic clip (the renderer's pedestrians walking across a scene, MJPG) is processed four ways,
in the same run:

- decode alone (the baseline: OpenCV reading every frame);
- decode + HOG detection;
- decode + HOG + target-model embeddings of every detection + tracking + crop selection
  (``amd.video.pipeline.track_video``, the engine part of ``ingest-video``);
- the same filed into a new workspace (``cli.video_jobs.ingest_video``: JPEG crops, thumbnails,
  database rows).

    python bench/bench_video.py [--frames 150] [--size 240x360] [--every 1] [--upscale 1.0]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from amd.embedding import load_embedder  # noqa: E402
from amd.resources import resource_path  # noqa: E402
from amd.video.detect import HogDetector  # noqa: E402
from amd.video.pipeline import track_video  # noqa: E402
from amd.video.source import VideoSource  # noqa: E402
from amd.video.synthetic import make_clip  # noqa: E402
from cli.video_jobs import ingest_video, make_embed_fn  # noqa: E402
from db.workspace import Workspace  # noqa: E402


def _rate(frames: int, seconds: float) -> float:
    return frames / seconds if seconds > 0 else float("inf")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--size", default="240x360", help="frame HxW")
    parser.add_argument("--every", type=int, default=1)
    parser.add_argument("--upscale", type=float, default=1.0)
    args = parser.parse_args()
    h, w = (int(v) for v in args.size.lower().split("x"))
    sprite = (int(h * 0.73), int(h * 0.73) // 2)
    with tempfile.TemporaryDirectory() as tmp:
        clip = make_clip(Path(tmp) / "bench.avi", frames=args.frames, size=(h, w), sprite=sprite)
        t = time.perf_counter()
        with VideoSource(clip.path) as src:
            n = sum(1 for _ in src.frames(every=args.every))
        decode = _rate(n, time.perf_counter() - t)

        detector = HogDetector(upscale=args.upscale)
        t = time.perf_counter()
        boxes = 0
        with VideoSource(clip.path) as src:
            for f in src.frames(every=args.every):
                boxes += len(detector.detect(f.image))
        detect = _rate(n, time.perf_counter() - t)

        embed = make_embed_fn(load_embedder(resource_path("models", "demo_target.pt")))
        t = time.perf_counter()
        with VideoSource(clip.path) as src:
            steps = list(track_video(src, detector, embed, every=args.every))
        pipeline = _rate(n, time.perf_counter() - t)
        tracks = sum(len(s.finished) for s in steps)

        ws = Workspace.create(Path(tmp) / "ws")
        try:
            t = time.perf_counter()
            summary = ingest_video(
                ws, clip.path, "bench", detector, embed, start="2024-01-01T00:00:00", every=args.every
            )
            filed = _rate(n, time.perf_counter() - t)
        finally:
            ws.close()

    print(f"clip: {args.frames} frames of {w}x{h}, every {args.every}, {n} processed, 3 people")
    print(f"decode alone (baseline):        {decode:8.1f} frames/s")
    print(f"decode + HOG:                   {detect:8.1f} frames/s  ({boxes / max(n, 1):.2f} boxes/frame)")
    print(f"+ embeddings + tracking:        {pipeline:8.1f} frames/s  ({tracks} tracks)")
    print(
        f"+ filing in a workspace:        {filed:8.1f} frames/s  ({summary.tracks} tracks, {summary.crops} crops)"
    )
    print(f"whole pipeline / decode alone:  {filed / decode:8.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
