"""Pictures of a compared pair drawn with Pillow: overlays, the contribution chart, annotated crops.

Shared by the case files (their overlay and chart members) and both reports. PNG output carries
no time stamp, so the same input always gives the same bytes.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np
from PIL import Image, ImageColor, ImageDraw, ImageFont

from amd.visual import blend, normalise_pair
from cases.snapshot import ExplanationData

#: Bars of the chart: attributes the two crops differ in, and those they share (the GUI's colours).
DIFFERING = (230, 111, 81)
COMMON = (70, 130, 180)
UNKNOWN = (120, 120, 120)
#: Colour of annotations drawn without one.
ANNOTATION_COLOUR = "#ffd400"


@lru_cache(maxsize=8)
def font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """Pillow's bundled font at ``size`` pixels (the same on every machine)."""
    return ImageFont.load_default(size)


def png_bytes(image: Image.Image | np.ndarray) -> bytes:
    """PNG bytes of a PIL image or an (H, W, 3) uint8 array."""
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    buf = io.BytesIO()
    image.save(buf, "PNG", optimize=False, compress_level=6)
    return buf.getvalue()


def decode_rgb(data: bytes) -> np.ndarray:
    """(H, W, 3) uint8 RGB of an encoded crop of any mode (see :func:`db.imagestore.to_rgb`)."""
    from db.imagestore import to_rgb

    with Image.open(io.BytesIO(data)) as img:
        img.load()
        return np.asarray(to_rgb(img), dtype=np.uint8)


def overlays(
    query: np.ndarray,
    gallery: np.ndarray,
    data: ExplanationData,
    index: int,
    colour_map: str = "inferno",
    opacity: float = 0.5,
) -> tuple[np.ndarray, np.ndarray]:
    """Attribute ``index``'s attention on both crops, on one common scale (as the compare view shows it).

    Args:
        query: (H_q, W_q, 3) uint8 query crop.
        gallery: (H_g, W_g, 3) uint8 gallery crop.
        data: The decoded snapshot (must have maps).

    Returns:
        The two blended crops, (H_q, W_q, 3) and (H_g, W_g, 3) uint8.
    """
    a = data.map_at("query", index, query.shape[:2])
    b = data.map_at("gallery", index, gallery.shape[:2])
    a01, b01 = normalise_pair(a, b)
    return blend(query, a01, opacity, colour_map), blend(gallery, b01, opacity, colour_map)


def chart(data: ExplanationData, top: int = 12, width: int = 640) -> Image.Image:
    """Horizontal bar chart of the largest components, sorted by share.

    Each bar is labelled with the attribute, its component and its share; bars are coloured by
    whether the crops' predicted attributes differ (:data:`DIFFERING`) or agree (:data:`COMMON`).
    """
    order = data.order()[:top]
    row, pad, label_w, value_w = 26, 10, 190, 150
    title_h = 30
    height = title_h + row * len(order) + 2 * pad + 22
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    draw.text(
        (pad, pad),
        f"Contribution to the distance {data.distance:.4f} (sum of components {data.sum_of_components:.4f})",
        fill=(20, 20, 20),
        font=font(14),
    )
    bar_x0 = pad + label_w
    bar_max = width - bar_x0 - value_w - pad
    biggest = max((float(data.components[i]) for i in order), default=0.0) or 1.0
    for k, i in enumerate(order):
        y = title_h + pad + k * row
        label = data.labels[i]
        while draw.textlength(label, font=font(13)) > label_w - 8 and len(label) > 4:
            label = label[:-2] + "…"
        draw.text((pad, y + 5), label, fill=(30, 30, 30), font=font(13))
        differs = data.differs(i)
        colour = UNKNOWN if differs is None else DIFFERING if differs else COMMON
        length = max(1, round(bar_max * float(data.components[i]) / biggest))
        draw.rectangle((bar_x0, y + 4, bar_x0 + length, y + row - 4), fill=colour)
        draw.text(
            (bar_x0 + length + 6, y + 5),
            f"{float(data.components[i]):.4f} ({100 * float(data.shares[i]):.1f} %)",
            fill=(30, 30, 30),
            font=font(13),
        )
    y = height - pad - 14
    if data.predicted_query is not None:
        draw.rectangle((pad, y + 2, pad + 12, y + 12), fill=DIFFERING)
        draw.text((pad + 18, y), "attribute differs", fill=(30, 30, 30), font=font(12))
        draw.rectangle((pad + 150, y + 2, pad + 162, y + 12), fill=COMMON)
        draw.text((pad + 168, y), "attribute in common", fill=(30, 30, 30), font=font(12))
    return img


def _colour(name: str | None) -> tuple[int, int, int]:
    try:
        return ImageColor.getrgb(name or ANNOTATION_COLOUR)[:3]
    except ValueError:
        return ImageColor.getrgb(ANNOTATION_COLOUR)[:3]


def annotated(rgb: np.ndarray, annotations: Sequence[Any], scale: int = 3) -> Image.Image:
    """The crop enlarged ``scale`` times with its annotations drawn on it.

    Args:
        rgb: (H, W, 3) uint8 crop.
        annotations: Objects with ``kind``, ``geometry``, ``label`` and ``color`` (crop pixel units):
            ``rect`` (x, y, w, h), ``arrow`` (x1, y1, x2, y2, head at the second point), ``text`` (x, y).
        scale: Enlargement, so that lines and labels stay legible on small crops.
    """
    h, w = rgb.shape[:2]
    img = Image.fromarray(rgb).resize((w * scale, h * scale), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(img)
    line = max(2, scale)
    f = font(max(11, 4 * scale + 2))
    for a in annotations:
        g = a.geometry
        colour = _colour(a.color)
        if a.kind == "rect":
            box = (g["x"] * scale, g["y"] * scale, (g["x"] + g["w"]) * scale, (g["y"] + g["h"]) * scale)
            draw.rectangle(box, outline=colour, width=line)
            anchor = (box[0] + 2, max(0, box[1] - getattr(f, "size", 12) - 6))
        elif a.kind == "arrow":
            x1, y1, x2, y2 = (g[k] * scale for k in ("x1", "y1", "x2", "y2"))
            draw.line((x1, y1, x2, y2), fill=colour, width=line)
            angle = np.arctan2(y2 - y1, x2 - x1)
            head = 4 * line
            for side in (-0.45, 0.45):
                draw.line(
                    (x2, y2, x2 - head * np.cos(angle + side), y2 - head * np.sin(angle + side)),
                    fill=colour,
                    width=line,
                )
            anchor = (x1 + 2, y1 + 2)
        elif a.kind == "text":
            anchor = (g["x"] * scale, g["y"] * scale)
        else:
            continue
        if a.label:
            box = draw.textbbox(anchor, a.label, font=f)
            draw.rectangle((box[0] - 2, box[1] - 1, box[2] + 2, box[3] + 1), fill=(0, 0, 0))
            draw.text(anchor, a.label, fill=colour, font=f)
    return img
