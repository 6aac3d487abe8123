"""Ingest throughput: 128x64 JPEG crops into a new SQLite workspace, thumbnails included.

Baseline, measured in the same run on the same files: a plain file copy of every file. The goal is
at least 200 crops/s.

    python bench/bench_ingest.py [--n 3000] [--fsync]
"""

from __future__ import annotations

import argparse
import io
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from db.ingest import ingest, scan_paths  # noqa: E402
from db.workspace import Workspace  # noqa: E402

GOAL = 200.0


def make_crops(folder: Path, n: int) -> list[Path]:
    """``n`` distinct 64 x 128 (width x height) JPEGs, like Market-1501 crops."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        arr = rng.integers(0, 255, (128, 64, 3), dtype=np.uint8)
        arr[16:64, 16:48] = rng.integers(0, 255, 3, dtype=np.uint8)
        arr[64:112, 16:48] = rng.integers(0, 255, 3, dtype=np.uint8)
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, "JPEG", quality=90)
        p = folder / f"{i:04d}_c{i % 6 + 1}s1_{i:06d}_01.jpg"
        p.write_bytes(buf.getvalue())
        paths.append(p)
    return paths


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=3000, help="number of crops")
    ap.add_argument("--fsync", action="store_true", help="flush every stored file to disk")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        paths = make_crops(tmp_path / "in", args.n)
        size = sum(p.stat().st_size for p in paths)

        copy_dir = tmp_path / "copy"
        copy_dir.mkdir()
        t0 = time.perf_counter()
        for p in paths:
            shutil.copyfile(p, copy_dir / p.name)
        copy_s = time.perf_counter() - t0

        ws = Workspace.create(tmp_path / "ws", fsync=args.fsync)
        items, _ = scan_paths([tmp_path / "in"])
        t0 = time.perf_counter()
        summary = ingest(ws, items)
        ingest_s = time.perf_counter() - t0
        thumbs = sum(1 for _ in (ws.root / "thumbs").glob("*/*/*.jpg"))
        ws.close()

    rate = args.n / ingest_s
    print(f"files: {args.n} JPEGs of 64x128 pixels, {size / args.n / 1024:.1f} KiB each")
    print(f"baseline plain copy : {copy_s:7.3f} s  {args.n / copy_s:9.0f} files/s")
    print(
        f"ingest (SQLite)     : {ingest_s:7.3f} s  {rate:9.0f} crops/s  (added {summary.added}, thumbnails {thumbs})"
    )
    print(f"ratio ingest/copy time: {ingest_s / copy_s:.1f}x; fsync={'on' if args.fsync else 'off'}")
    ok = rate >= GOAL and summary.added == args.n and thumbs == args.n
    print(f"goal >= {GOAL:.0f} crops/s: {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
