"""Contact sheets: a grid of written crops (and a row of their part masks) to look at a dataset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from amd.synth.parts import colourise
from amd.synth.writer import read_images_csv


def pick_for_sheet(rows: list[dict], count: int) -> list[dict]:
    """Up to ``count`` crops of different identities, cycling through the cameras.

    Args:
        rows: Rows of ``images.csv``.
        count: How many crops.

    Returns:
        The chosen rows, one per identity, distractors excluded.
    """
    by_pid: dict[int, list[dict]] = {}
    for r in rows:
        if r["pid"] > 0:
            by_pid.setdefault(r["pid"], []).append(r)
    cameras = sorted({r["camera"] for r in rows})
    chosen = []
    for k, pid in enumerate(sorted(by_pid)):
        if len(chosen) == count:
            break
        want = cameras[k % len(cameras)]
        own = by_pid[pid]
        chosen.append(next((r for r in own if r["camera"] == want), own[k % len(own)]))
    return chosen


def contact_sheet(
    images: list[np.ndarray],
    masks: list[np.ndarray] | None = None,
    cols: int = 8,
    zoom: int = 2,
    gap: int = 2,
) -> np.ndarray:
    """Tile crops in rows of ``cols``; the coloured masks of the first row follow it as a second row.

    Args:
        images: Crops, each uint8 (H, W, 3), all the same size.
        masks: Part label maps of the crops, uint8 (H, W), or ``None`` for no mask row.
        cols: Crops per row.
        zoom: Enlargement (nearest neighbour, so pixels stay visible).
        gap: Pixels between tiles, before enlargement.

    Returns:
        The sheet, uint8 (rows * (H + gap) * zoom, cols * (W + gap) * zoom, 3).
    """
    if not images:
        raise ValueError("no crops for the contact sheet")
    h, w = images[0].shape[:2]
    tiles: list[list[np.ndarray]] = [images[i : i + cols] for i in range(0, len(images), cols)]
    if masks:
        tiles.insert(1, [colourise(m) for m in masks[:cols]])
    sheet = np.full((len(tiles) * (h + gap), cols * (w + gap), 3), 255, dtype=np.uint8)
    for r, row in enumerate(tiles):
        for c, tile in enumerate(row):
            y, x = r * (h + gap), c * (w + gap)
            sheet[y : y + h, x : x + w] = tile
    return np.repeat(np.repeat(sheet, zoom, axis=0), zoom, axis=1)


def write_contact_sheet(
    out_dir: str | Path, path: str | Path, rows: int = 6, cols: int = 8, zoom: int = 2
) -> Path:
    """Write a contact sheet PNG of a written synthetic dataset.

    Args:
        out_dir: The dataset folder (with ``images.csv``).
        path: PNG to write.
        rows: Rows of crops.
        cols: Crops per row.
        zoom: Enlargement.

    Returns:
        The path written.
    """
    out = Path(out_dir)
    chosen = pick_for_sheet(read_images_csv(out), rows * cols)
    images = [np.asarray(Image.open(out / r["path"]).convert("RGB")) for r in chosen]
    masks = [np.asarray(Image.open(out / r["mask"])) for r in chosen[:cols] if r["mask"]]
    sheet = contact_sheet(images, masks if len(masks) == min(cols, len(chosen)) else None, cols, zoom)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(sheet).save(path)
    return path
