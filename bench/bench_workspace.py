"""Opening a workspace of 100,000 crops and reading the first screenful of the gallery.

Measured in a fresh process from interpreter start: import the store, open the workspace (schema
check), count the crops, read the first page of 120 crop records, the camera list, and the 120
thumbnails' bytes. Goal: under 2 s. Baseline, in the same run: the same process start importing
the store and doing nothing else.

    python bench/bench_workspace.py [--crops 100000]
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from db.imagestore import make_thumbnail  # noqa: E402
from db.models import Camera, Crop, Identity  # noqa: E402
from db.workspace import Workspace  # noqa: E402

GOAL_S = 2.0
SCREEN = 120

OPEN = """
import sys, time
t0 = time.perf_counter()
sys.path.insert(0, {repo!r})
from db.workspace import Workspace
t_import = time.perf_counter() - t0
ws = Workspace.open({root!r})
n = ws.crops.count()
page = ws.crops.page(0, {screen})
cams = ws.cameras.list()
thumbs = [ws.images.thumbnail_path(c.sha256).read_bytes() for c in page]
print(n, len(page), len(cams), sum(map(len, thumbs)), t_import, time.perf_counter() - t0)
"""

BASELINE = "import sys, time; t0 = time.perf_counter(); sys.path.insert(0, {repo!r}); import db.workspace; print(time.perf_counter() - t0)"


def build(root: Path, n: int) -> None:
    ws = Workspace.create(root)
    with ws.writing() as s:
        s.add_all([Camera(name=f"c{i}") for i in range(1, 7)])
        s.add_all([Identity(name=f"{i:04d}") for i in range(1, 1502)])
    now = datetime.now(timezone.utc)
    rows = [
        {
            "sha256": hashlib.sha256(str(i).encode()).hexdigest(),
            "width": 64,
            "height": 128,
            "format": "JPEG",
            "mode": "RGB",
            "byte_size": 5000,
            "camera_id": i % 6 + 1,
            "identity_id": i % 1501 + 1,
            "frame": i,
            "source_path": f"/data/market/{i:06d}.jpg",
            "split": "gallery",
            "created_at": now,
        }
        for i in range(n)
    ]
    with ws.writing() as s:
        s.execute(Crop.__table__.insert(), rows)
    thumb = make_thumbnail(Image.new("RGB", (64, 128), (90, 120, 200)))
    for r in rows[:SCREEN]:
        p = ws.images.thumbnail_path(r["sha256"])
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(thumb)
    ws.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--crops", type=int, default=100_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ws"
        t0 = time.perf_counter()
        build(root, args.crops)
        build_s = time.perf_counter() - t0
        base = []
        runs = []
        for _ in range(3):
            t0 = time.perf_counter()
            subprocess.run(
                [sys.executable, "-c", BASELINE.format(repo=str(REPO))], check=True, capture_output=True
            )
            base.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            out = subprocess.run(
                [sys.executable, "-c", OPEN.format(repo=str(REPO), root=str(root), screen=SCREEN)],
                check=True,
                capture_output=True,
                text=True,
            ).stdout.split()
            runs.append((time.perf_counter() - t0, out))
    wall, out = sorted(runs, key=lambda r: r[0])[1]
    n, page, cams, thumb_bytes, t_import, t_inside = out
    base_s = sorted(base)[1]
    print(f"workspace of {int(n):,} crops built in {build_s:.1f} s")
    print(f"baseline: process start + importing the store: {base_s:.2f} s")
    print(
        f"open + count + first {page} records + {cams} cameras + {page} thumbnails ({int(thumb_bytes) / 1024:.0f} KiB): "
        f"{wall:.2f} s wall from process start (imports {float(t_import):.2f} s, in-process total {float(t_inside):.2f} s)"
    )
    print(f"ratio to the baseline: {wall / base_s:.2f}x; the store's own work: {wall - base_s:.2f} s")
    ok = wall < GOAL_S
    print(f"goal < {GOAL_S:.0f} s: {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
