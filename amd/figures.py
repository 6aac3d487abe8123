"""A still picture of one explanation: both crops with the top-3 attribute regions and a share chart.

Drawn with PIL and :mod:`amd.visual` only, so that headless commands and reports get the same picture
as the GUI's top-3 mode without Qt.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from amd.explain import Explanation
from amd.models.inputs import ImageLike, to_rgb
from amd.visual import TOP_COLOURS, dashed_vline, even_share_text, text_on_clear_band, top_regions

#: Height of each crop in the picture (crops are scaled up so that the outlines stay visible).
CROP_HEIGHT = 256
_BACKGROUND = (255, 255, 255)
_TEXT = (20, 20, 20)
_MUTED = (110, 110, 110)
_BAR = (150, 160, 175)


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    # Pillow's bundled scalable font needs FreeType; the bitmap fallback is small but still legible.
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):
        return ImageFont.load_default()


def _text_width(draw: ImageDraw.ImageDraw, text: str, font) -> int:
    left, _, right, _ = draw.textbbox((0, 0), text, font=font)
    return int(right - left)


def _scaled_overlay(image: Image.Image, maps: np.ndarray, slots: list[int | None], height: int) -> Image.Image:
    """The crop scaled to ``height`` with attribute regions outlined by :func:`amd.visual.top_regions`.

    Args:
        image: The RGB crop.
        maps: (M, H, W) maps at the crop's own size.
        slots: Attribute positions for the colour slots of :data:`amd.visual.TOP_COLOURS` (first, second,
            third); ``None`` leaves a slot empty, so that one attribute can be drawn in its own colour.
        height: Height of the result in pixels.
    """
    scale = height / image.height
    size = (max(1, round(image.width * scale)), height)
    big = np.asarray(image.resize(size, Image.Resampling.BILINEAR))
    flat = np.zeros((size[1], size[0]), dtype=np.float32)  # a constant map: top_regions draws nothing for it
    # Upsampling the maps with the crop keeps the outlines smooth instead of blocky.
    resized = [
        flat if m is None
        else np.asarray(Image.fromarray(maps[m].astype(np.float32), mode="F").resize(size, Image.Resampling.BILINEAR))
        for m in slots
    ]  # fmt: skip
    return Image.fromarray(top_regions(big, resized, opacity=0.45))


def render_pair_figure(
    explanation: Explanation, image_a: ImageLike, image_b: ImageLike, max_bars: int | None = None
) -> Image.Image:
    """Both crops with the top-3 attribute regions, each attribute on its own, and a chart of every share.

    Layout: the two crops with the three regions together (the first attribute on top), below them one
    small pair of crops per attribute with only its region (regions of different attributes often
    overlap), and on the right a bar per attribute sorted by share, the three drawn in their colours, with a
    dashed line at the even share 1/M (where every bar would end if the distance were split evenly).

    Args:
        explanation: The pair's explanation (maps at each crop's own size).
        image_a: Crop a, as given to the explainer.
        image_b: Crop b.
        max_bars: Show at most this many attributes in the chart (default: all).

    Returns:
        An RGB image.
    """
    order = explanation.order()
    top = order[:3]
    rgb_a, rgb_b = to_rgb(image_a), to_rgb(image_b)
    crop_a = _scaled_overlay(rgb_a, explanation.maps_a, list(top), CROP_HEIGHT)
    crop_b = _scaled_overlay(rgb_b, explanation.maps_b, list(top), CROP_HEIGHT)
    small_h = CROP_HEIGHT // 2
    singles = []
    for k, m in enumerate(top):
        slots: list[int | None] = [None, None, None]
        slots[k] = m
        singles.append((_scaled_overlay(rgb_a, explanation.maps_a, slots, small_h),
                        _scaled_overlay(rgb_b, explanation.maps_b, slots, small_h)))  # fmt: skip
    shown = order if max_bars is None else order[:max_bars]

    small, title = _font(13), _font(17)
    pad, gap, row = 16, 12, 22
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    label_w = max(_text_width(probe, explanation.labels[i], small) for i in shown) + 10
    bar_w, value_w = 220, 60
    chart_w = label_w + bar_w + value_w
    captions = [f"{explanation.labels[m]} {100 * explanation.shares[m]:.1f} %" for m in top]
    slot_w = [
        max(a.width + 4 + b.width, _text_width(probe, c, small) + 17)
        for (a, b), c in zip(singles, captions, strict=True)
    ]
    left_w = max(crop_a.width + gap + crop_b.width, sum(slot_w) + gap * max(len(slot_w) - 1, 0), 300)
    header = 28
    left_h = header + 14 + CROP_HEIGHT + 12 + 20 + small_h
    chart_h = 34 + row * len(shown) + row  # the bars and the even-share caption below them
    width = pad + left_w + 2 * pad + chart_w + pad
    height = pad + max(left_h, chart_h) + pad
    canvas = Image.new("RGB", (width, height), _BACKGROUND)
    draw = ImageDraw.Draw(canvas)

    total = float(explanation.components.sum())
    draw.text((pad, pad), f"distance {explanation.distance:.3f}, components sum to {total:.3f} "
              f"({100 * explanation.gap:+.1f} %)", fill=_TEXT, font=title)  # fmt: skip
    y = pad + header
    draw.text((pad, y - 2), "A", fill=_MUTED, font=small)
    canvas.paste(crop_a, (pad, y + 14))
    draw.text((pad + crop_a.width + gap, y - 2), "B", fill=_MUTED, font=small)
    canvas.paste(crop_b, (pad + crop_a.width + gap, y + 14))

    # One small A | B pair per attribute, captioned with its colour, label and share.
    y += 14 + CROP_HEIGHT + 12
    x = pad
    for colour, caption, (a, b), w in zip(TOP_COLOURS, captions, singles, slot_w, strict=False):
        draw.rectangle((x, y + 3, x + 12, y + 15), fill=colour)
        draw.text((x + 17, y + 1), caption, fill=_TEXT, font=small)
        canvas.paste(a, (x, y + 20))
        canvas.paste(b, (x + a.width + 4, y + 20))
        x += w + gap

    # Right: one bar per attribute, sorted by share; the outlined three in their colours.
    x0 = pad + left_w + 2 * pad
    draw.text((x0, pad), "share of the distance", fill=_TEXT, font=title)
    peak = max(float(explanation.shares[shown[0]]), 1e-12)
    colours = {i: c for c, i in zip(TOP_COLOURS, top, strict=False)}
    y = pad + 34
    m = len(explanation.shares)
    # The even-share line goes behind the bars and their figures, which hide it where they cross it.
    even_x = x0 + label_w + round(bar_w * (1.0 / m) / peak)
    dashed_vline(draw, even_x, y, y + row * len(shown))
    for i in shown:
        share = float(explanation.shares[i])
        label = explanation.labels[i]
        draw.text((x0 + label_w - 10 - _text_width(draw, label, small), y + 3), label, fill=_TEXT, font=small)
        length = max(1, round(bar_w * share / peak))
        draw.rectangle((x0 + label_w, y + 4, x0 + label_w + length, y + row - 4), fill=colours.get(i, _BAR))
        text_on_clear_band(draw, (x0 + label_w + length + 6, y + 3), f"{100 * share:.1f} %", small, _MUTED,
                           (y, y + row - 1), background=_BACKGROUND)  # fmt: skip
        y += row
    dashed_vline(draw, x0 + label_w, y + 4, y + row - 4)
    draw.text((x0 + label_w + 6, y + 3), even_share_text(m, space=" "), fill=_MUTED, font=small)
    return canvas
