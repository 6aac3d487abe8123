"""What a crop image is, and its conversion to 8-bit RGB: shared by the engine, the workspace store and
the reports.

The formats opened (:data:`FORMATS`) and the largest image accepted (:data:`MAX_PIXELS`) are the same
for an import and for a model reading a file, so that no crop a workspace accepts is refused by the
engine later.

A crop is converted when a model reads it (:mod:`amd.data.images`), when its thumbnail is made and its
pixels are handed to an embedder or a report (:mod:`db.imagestore`, :mod:`cases.render`). All of them call
:func:`to_rgb`, so that the gallery shows what the model analyses: a 16-bit or float crop converted one way
for the thumbnail and another for the model would make the analyst judge a different picture.

Only Pillow and numpy are imported here (an import contract keeps it so), so that both the engine and the
store, which must not import each other, can use it.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

__all__ = ["BACKGROUND", "FORMATS", "MAX_PIXELS", "to_rgb"]

#: Formats opened. The list is closed on purpose: Pillow would also open EPS (through Ghostscript) and
#: other formats that have no business in a crop collection.
FORMATS: tuple[str, ...] = ("JPEG", "PNG", "BMP", "GIF", "TIFF", "WEBP", "PPM")
#: Largest image opened, in pixels (a guard against decompression bombs). Person crops are small; a
#: 50-megapixel frame is already generous.
MAX_PIXELS = 50_000_000

#: Transparent pixels are flattened onto this grey, which reads well on light and dark themes.
BACKGROUND = (128, 128, 128)

_GREY_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I", "F"})
_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})


def _grey_to_8bit(image: Image.Image) -> Image.Image:
    """16-bit, 32-bit integer or float greyscale as 8-bit RGB, scaled rather than clipped."""
    arr = np.asarray(image, dtype=np.float64)
    if image.mode == "F":
        # By its own range; NaN goes to the darkest value and infinities to the ends of the range, so that
        # one bad pixel does not turn the whole crop black.
        finite = arr[np.isfinite(arr)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        arr = (np.nan_to_num(arr, nan=lo, posinf=hi, neginf=lo) - lo) / (hi - lo or 1.0) * 255.0
    else:
        # By the full range of 16 bits, or of 8 bits for 32-bit images whose values fit in them.
        full = 65535.0 if image.mode.startswith("I;16") or (arr.size and arr.max() > 255) else 255.0
        arr = arr / full * 255.0
    return Image.fromarray(np.clip(arr + 0.5, 0, 255).astype(np.uint8), "L").convert("RGB")


def to_rgb(image: Image.Image) -> Image.Image:
    """An 8-bit RGB version of any image Pillow decodes.

    16-bit and 32-bit integer greyscale (``I;16``, ``I;16B``, ``I``) is scaled to 8 bits by its full
    range (65535, or 255 for ``I`` images whose values fit in 8 bits); 32-bit float greyscale (``F``) by
    its own finite minimum and maximum. Transparency (``RGBA``, ``LA``, ``La``, palettes and greyscale
    with a transparent colour) is flattened onto :data:`BACKGROUND`; palettes are expanded; ``CMYK`` is
    converted without a colour profile, ``1`` and the other modes by Pillow.

    Raises:
        ValueError: A mode Pillow cannot convert to RGB.
    """
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in _GREY_MODES:
        return _grey_to_8bit(image)
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        mode = image.mode
    elif mode in ("L", "1") and "transparency" in image.info:
        image = image.convert("RGBA")
        mode = "RGBA"
    if mode in _ALPHA_MODES:
        # Pillow converts premultiplied grey (La) only to LA.
        rgba = (image.convert("LA") if mode == "La" else image).convert("RGBA")
        flat = Image.new("RGB", rgba.size, BACKGROUND)
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    if mode == "RGB":
        return image
    return image.convert("RGB")
