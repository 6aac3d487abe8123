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

from amd.visual import blend, dashed_vline, even_share_text, normalise_pair, text_on_clear_band
from cases.snapshot import ExplanationData
from imaging import to_rgb

#: Bars of the chart: attributes the two crops differ in, those they share, and bars of a pair
#: without predicted attributes. The same colours as the compare view's chart.
DIFFERING = (231, 111, 81)
COMMON = (42, 157, 143)
UNKNOWN = (120, 144, 176)
#: The chart legend's words (the compare view's legend).
DIFFERING_TEXT = "differing"
COMMON_TEXT = "common (predicted attributes)"
#: Text sizes of the chart in pixels at ``scale`` 1: title, bar labels, legend (the smallest).
CHART_FONT_PX = (14, 13, 12)
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
    """(H, W, 3) uint8 RGB of an encoded crop of any mode (see :func:`imaging.to_rgb`)."""
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


def percent(share: float) -> str:
    """A share as the compare view writes it: ``0.0656`` -> ``"6.6%"``."""
    return f"{100 * share:.1f}%"


def chart(data: ExplanationData, top: int = 12, width: int = 640, scale: float = 1.0) -> Image.Image:
    """Horizontal bar chart of the largest components, sorted by share.

    Each bar is labelled with the attribute, its component and its share; bars are coloured by
    whether the crops' predicted attributes differ (:data:`DIFFERING`) or agree (:data:`COMMON`).
    A dashed line marks the even share, the sum of the components over M (where every bar would end
    if the distance were split evenly over the attributes).

    Args:
        data: The decoded explanation.
        top: How many bars (the largest shares).
        width: Width of the picture in pixels.
        scale: Size of text, bars and margins relative to the default (text of
            :data:`CHART_FONT_PX` pixels times ``scale``), so that a picture drawn at a known size can
            have text of a known size.
    """

    def px(value: float) -> int:
        return max(1, round(value * scale))

    title_font, label_font, legend_font = (font(px(size)) for size in CHART_FONT_PX)
    order = data.order()[:top]
    row, pad, label_w, value_w = px(26), px(10), px(190), px(150)
    title_h = px(30)
    height = title_h + row * len(order) + 2 * pad + px(22)
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    draw.text(
        (pad, pad),
        f"Contribution to the distance {data.distance:.4f} (sum of components {data.sum_of_components:.4f})",
        fill=(20, 20, 20),
        font=title_font,
    )
    bar_x0 = pad + label_w
    bar_max = width - bar_x0 - value_w - pad
    biggest = max((float(data.components[i]) for i in order), default=0.0) or 1.0
    count = len(data.components)
    if order:
        # Behind the bars and their figures, which hide it where they cross it.
        even = float(np.sum(data.components)) / count
        top_y = title_h + pad
        dashed_vline(draw, bar_x0 + round(bar_max * even / biggest), top_y, top_y + row * len(order), width=px(1))
    for k, i in enumerate(order):
        y = title_h + pad + k * row
        label = data.labels[i]
        while draw.textlength(label, font=label_font) > label_w - px(8) and len(label) > 4:
            label = label[:-2] + "…"
        draw.text((pad, y + px(5)), label, fill=(30, 30, 30), font=label_font)
        differs = data.differs(i)
        colour = UNKNOWN if differs is None else DIFFERING if differs else COMMON
        length = max(1, round(bar_max * float(data.components[i]) / biggest))
        draw.rectangle((bar_x0, y + px(4), bar_x0 + length, y + row - px(4)), fill=colour)
        text_on_clear_band(
            draw,
            (bar_x0 + length + px(6), y + px(5)),
            f"{float(data.components[i]):.4f} ({percent(float(data.shares[i]))})",
            label_font,
            (30, 30, 30),
            (y, y + row - 1),
            margin=px(3),
        )
    y = height - pad - px(14)
    x = pad
    if data.predicted_query is not None:
        for colour, text in ((DIFFERING, DIFFERING_TEXT), (COMMON, COMMON_TEXT)):
            draw.rectangle((x, y + px(2), x + px(12), y + px(12)), fill=colour)
            draw.text((x + px(18), y), text, fill=(30, 30, 30), font=legend_font)
            x += px(18) + round(draw.textlength(text, font=legend_font)) + px(24)
    if order:
        dashed_vline(draw, x + px(6), y, y + px(14), width=px(1), dash=px(3))
        draw.text((x + px(18), y), even_share_text(count), fill=(30, 30, 30), font=legend_font)
    return img


def _colour(name: str | None) -> tuple[int, int, int]:
    try:
        return ImageColor.getrgb(name or ANNOTATION_COLOUR)[:3]
    except ValueError:
        return ImageColor.getrgb(ANNOTATION_COLOUR)[:3]


def _fit_label(
    draw: ImageDraw.ImageDraw, text: str, f: ImageFont.ImageFont | ImageFont.FreeTypeFont, width: float
) -> str:
    """``text`` broken into lines at spaces so that each fits ``width`` pixels where it can."""
    lines: list[str] = []
    for word in text.split():
        if lines and draw.textlength(f"{lines[-1]} {word}", font=f) <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return "\n".join(lines) or text


def annotated(
    rgb: np.ndarray, annotations: Sequence[Any], scale: float = 3, label_px: int | None = None
) -> Image.Image:
    """The crop enlarged ``scale`` times with its annotations drawn on it.

    Args:
        rgb: (H, W, 3) uint8 crop.
        annotations: Objects with ``kind``, ``geometry``, ``label`` and ``color`` (crop pixel units):
            ``rect`` (x, y, w, h), ``arrow`` (x1, y1, x2, y2, head at the second point), ``text`` (x, y).
        scale: Enlargement, so that lines and labels stay legible on small crops.
        label_px: Size of the labels' text in pixels of the result (by default it grows with
            ``scale``). A label too wide for the picture is moved left and broken into lines.
    """
    h, w = rgb.shape[:2]
    img = Image.fromarray(rgb).resize(
        (max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BICUBIC
    )
    draw = ImageDraw.Draw(img)
    line = max(2, round(scale))
    size = label_px or max(11, round(4 * scale + 2))
    f = font(size)
    for a in annotations:
        g = a.geometry
        colour = _colour(a.color)
        if a.kind == "rect":
            box = (g["x"] * scale, g["y"] * scale, (g["x"] + g["w"]) * scale, (g["y"] + g["h"]) * scale)
            draw.rectangle(box, outline=colour, width=line)
            anchor = (box[0] + 2, max(0, box[1] - size - 6))
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
            text = _fit_label(draw, a.label, f, img.width - 6)
            box = draw.multiline_textbbox((0, 0), text, font=f)
            x = max(3.0, min(anchor[0], img.width - 3 - (box[2] - box[0])))
            box = draw.multiline_textbbox((x, anchor[1]), text, font=f)
            draw.rectangle((box[0] - 2, box[1] - 1, box[2] + 2, box[3] + 1), fill=(0, 0, 0))
            draw.multiline_text((x, anchor[1]), text, fill=colour, font=f)
    return img
