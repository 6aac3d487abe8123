"""Attention overlays as pictures: colour maps and blending, in numpy (shared by the GUI, reports and the CLI).

Maps arrive as float arrays (H, W) at the crop's own size. Two crops of a pair are normalised with a
common scale, so that a map that is brighter on one crop than on the other stays so on screen.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# Colour maps as evenly spaced control points (RGB 0..1), interpolated linearly to 256 entries.
_STOPS: dict[str, tuple[tuple[float, float, float], ...]] = {
    "inferno": ((0.0, 0.0, 0.02), (0.16, 0.04, 0.33), (0.4, 0.07, 0.43), (0.63, 0.17, 0.36),
                (0.85, 0.32, 0.2), (0.97, 0.55, 0.04), (0.98, 0.8, 0.25), (0.99, 1.0, 0.64)),
    "viridis": ((0.27, 0.0, 0.33), (0.28, 0.17, 0.48), (0.23, 0.32, 0.55), (0.17, 0.45, 0.56),
                (0.13, 0.57, 0.55), (0.2, 0.69, 0.49), (0.48, 0.82, 0.32), (0.99, 0.91, 0.14)),
    "jet": ((0.0, 0.0, 0.5), (0.0, 0.0, 1.0), (0.0, 0.5, 1.0), (0.0, 1.0, 1.0), (0.5, 1.0, 0.5),
            (1.0, 1.0, 0.0), (1.0, 0.5, 0.0), (1.0, 0.0, 0.0), (0.5, 0.0, 0.0)),
    "hot": ((0.04, 0.0, 0.0), (0.5, 0.0, 0.0), (0.9, 0.2, 0.0), (1.0, 0.6, 0.0), (1.0, 0.9, 0.3),
            (1.0, 1.0, 1.0)),
}  # fmt: skip

COLOUR_MAPS: tuple[str, ...] = tuple(_STOPS)

#: Distinct colours of the top-3 mode (first, second, third attribute); none is a colour of the chart's bars.
TOP_COLOURS: tuple[tuple[int, int, int], ...] = ((230, 57, 70), (69, 123, 215), (244, 162, 97))

#: Colour of the share charts' dashed even-share line (the sum of the components over M: where every bar
#: would end if the distance were split evenly over the attributes).
EVEN_COLOUR: tuple[int, int, int] = (70, 70, 70)


def even_share_text(count: int, space: str = "") -> str:
    """What the even-share line stands for: ``"even share 1/26 = 3.8%"`` (``space`` goes before the %)."""
    return f"even share 1/{count} = {100 / count:.1f}{space}%" if count > 0 else "even share"


#: Written before an attribute on which the two crops of a pair differ.
DIFFERING_MARK = "\u2260 "


def top_share_text(label: str, share: float, differing: bool | None = None) -> str:
    """One of a pair's largest shares in words: ``"upper: black 6.4%"``, marked ``"≠ "`` when the two crops
    differ on the attribute."""
    mark = DIFFERING_MARK if differing else ""
    return f"{mark}{label} {100 * share:.1f}%"


def text_on_clear_band(draw, at: tuple[int, int], text: str, font, fill, band: tuple[int, int], margin: int = 3,
                       background: tuple[int, int, int] = (255, 255, 255)) -> None:  # fmt: skip
    """Draw ``text`` at ``at`` on a ``PIL.ImageDraw`` canvas over a cleared box as wide as the text plus
    ``margin`` and as tall as ``band`` (top, bottom): a line drawn earlier behind a chart row (the dashed
    even share) is hidden there instead of crossing the text."""
    left, _, right, _ = draw.textbbox(at, text, font=font)
    draw.rectangle((left - margin, band[0], right + margin, band[1]), fill=background)
    draw.text(at, text, fill=fill, font=font)


def dashed_vline(draw, x: int, top: int, bottom: int, colour: tuple[int, int, int] = EVEN_COLOUR,
                 width: int = 1, dash: int = 4) -> None:  # fmt: skip
    """A vertical dashed line on a ``PIL.ImageDraw`` canvas from ``top`` to ``bottom`` (dashes and gaps
    ``dash`` pixels long)."""
    for y in range(top, bottom, 2 * dash):
        draw.line((x, y, x, min(y + dash - 1, bottom)), fill=colour, width=width)


def lookup_table(name: str) -> np.ndarray:
    """(256, 3) uint8 colour table of colour map ``name``."""
    if name not in _STOPS:
        raise ValueError(f"unknown colour map {name!r} (choose one of {', '.join(COLOUR_MAPS)})")
    stops = np.array(_STOPS[name], dtype=np.float64)
    x = np.linspace(0.0, 1.0, len(stops))
    t = np.linspace(0.0, 1.0, 256)
    table = np.stack([np.interp(t, x, stops[:, c]) for c in range(3)], axis=1)
    return np.round(table * 255).astype(np.uint8)


def normalise_pair(map_a: np.ndarray, map_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scale two maps to [0, 1] with one common range (min and max over both)."""
    lo = float(min(map_a.min(), map_b.min()))
    hi = float(max(map_a.max(), map_b.max()))
    span = hi - lo
    if span <= 1e-12:
        return np.zeros_like(map_a, dtype=np.float32), np.zeros_like(map_b, dtype=np.float32)
    return ((map_a - lo) / span).astype(np.float32), ((map_b - lo) / span).astype(np.float32)


def colourise(map01: np.ndarray, name: str = "inferno") -> np.ndarray:
    """(H, W) values in [0, 1] -> (H, W, 3) uint8 through colour map ``name``."""
    index = np.clip(np.round(np.asarray(map01) * 255), 0, 255).astype(np.intp)
    return lookup_table(name)[index]


def blend(image: np.ndarray, map01: np.ndarray, opacity: float = 0.5, name: str = "inferno") -> np.ndarray:
    """Overlay a [0, 1] map on an RGB crop.

    The map's own value scales the opacity, so that cold regions leave the crop visible and the
    overlay reads as "where", not as a tinted rectangle.

    Args:
        image: (H, W, 3) uint8.
        map01: (H, W) in [0, 1], the crop's size.
        opacity: Opacity of the hottest pixels, 0..1.
        name: Colour map.

    Returns:
        (H, W, 3) uint8.
    """
    if image.shape[:2] != map01.shape:
        raise ValueError(f"map of shape {map01.shape} for an image of shape {image.shape[:2]}")
    heat = colourise(map01, name).astype(np.float32)
    alpha = (opacity * (0.25 + 0.75 * np.asarray(map01, dtype=np.float32)))[..., None]
    out = image.astype(np.float32) * (1.0 - alpha) + heat * alpha
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def top_regions(
    image: np.ndarray, maps01: Sequence[np.ndarray], opacity: float = 0.5, quantile: float = 0.8
) -> np.ndarray:
    """Outline where each of up to three maps is strongest, each in its own colour (the top-3 mode).

    Each map's region is the part above its ``quantile``; regions are tinted with :data:`TOP_COLOURS`
    and drawn in order, so the first attribute stays on top.
    """
    out = image.astype(np.float32)
    for colour, m in reversed(list(zip(TOP_COLOURS, maps01, strict=False))):
        m = np.asarray(m, dtype=np.float32)
        if m.shape != image.shape[:2]:
            raise ValueError(f"map of shape {m.shape} for an image of shape {image.shape[:2]}")
        if float(m.max() - m.min()) <= 1e-12:
            continue
        region = m >= np.quantile(m, quantile)
        tint = np.array(colour, dtype=np.float32)
        out[region] = out[region] * (1.0 - opacity) + tint * opacity
        edge = region & ~_erode(region)
        out[edge] = tint
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def _erode(mask: np.ndarray) -> np.ndarray:
    """One-pixel binary erosion (4-neighbourhood), borders counted as outside."""
    padded = np.pad(mask, 1, constant_values=False)
    return padded[1:-1, 1:-1] & padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
