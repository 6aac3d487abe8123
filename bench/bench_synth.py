"""Synthetic pedestrian throughput: rendered 128x64 crops written as JPEG + part-mask PNG, one process.

Baseline, measured in the same run: the I/O floor, i.e. encoding and saving a same-size JPEG and
mask PNG per crop with no rendering. The ratio says what share of the floor's rate the renderer
keeps. The goal is at least 100 crops/s.

    python bench/bench_synth.py [--n 1200] [--size 128x64] [--dir FOLDER]

Both measurements write to the same folder (default: a new temporary folder), so file-system costs
weigh on both alike.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from amd.synth.parts import flat_palette  # noqa: E402
from amd.synth.writer import SynthConfig, parse_size, write_dataset  # noqa: E402

GOAL = 100.0


def io_floor(folder: Path, n: int, size: tuple[int, int]) -> float:
    """Seconds to encode and save ``n`` crop-sized JPEGs and palette PNG masks without rendering."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    h, w = size
    # Smooth content with some noise, so the JPEG encoder does about as much work as on a real crop.
    base = np.linspace(40, 200, h * w * 3, dtype=np.float32).reshape(h, w, 3)
    images = [np.clip(base + rng.normal(0, 4, base.shape), 0, 255).astype(np.uint8) for _ in range(8)]
    labels = np.zeros((h, w), dtype=np.uint8)
    labels[h // 8 : h - h // 16, w // 4 : 3 * w // 4] = 4
    palette = flat_palette()
    t0 = time.perf_counter()
    for i in range(n):
        Image.fromarray(images[i % 8]).save(folder / f"{i:05d}.jpg", quality=85)
        mask = Image.frombytes("P", (w, h), labels.tobytes())
        mask.putpalette(palette)
        mask.save(folder / f"{i:05d}.png", compress_level=1)
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1200, help="number of crops (rounded to whole identities)")
    ap.add_argument("--size", default="128x64", help="crop size HEIGHTxWIDTH")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--dir", default=None, help="write under this folder instead of the system's temporary folder"
    )
    args = ap.parse_args()
    size = parse_size(args.size)
    if args.dir is not None:
        Path(args.dir).mkdir(parents=True, exist_ok=True)  # made if missing, like the commands' output folders
    per_id = 8
    ids = max(2, args.n // per_id)
    cfg = SynthConfig(
        train_ids=ids // 2, test_ids=ids - ids // 2, per_id=per_id, cameras=6,
        height=size[0], width=size[1], seed=args.seed,
    )  # fmt: skip
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        floor_s = io_floor(Path(tmp) / "floor", cfg.total_crops, size)
        t0 = time.perf_counter()
        summary = write_dataset(Path(tmp) / "synth", cfg)
        total_s = time.perf_counter() - t0

    n = summary.written
    floor_rate = n / floor_s
    rate = summary.crops_per_second
    print(f"crops: {n} at {size[0]}x{size[1]}, {cfg.cameras} cameras, one process")
    print(f"baseline I/O floor (JPEG + mask PNG, no rendering): {floor_s:7.3f} s  {floor_rate:8.0f} crops/s")
    print(f"synth render + write                             : {summary.seconds:7.3f} s  {rate:8.0f} crops/s")
    print(f"whole job incl. identities, cameras and manifests : {total_s:7.3f} s  {n / total_s:8.0f} crops/s")
    print(f"ratio synth/floor rate: {rate / floor_rate:.3f} (floor is {floor_rate / rate:.1f}x faster)")
    ok = rate >= GOAL
    print(f"goal >= {GOAL:.0f} crops/s: {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
