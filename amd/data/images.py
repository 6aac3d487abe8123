"""Opening image files and turning decoded images into 8-bit RGB: the one place the engine does either.

Every image the engine reads (dataset crops for training and evaluation, the crops handed to the explainer
and the embedder) goes through :func:`open_image` and :func:`rgb_image`, so that all of them follow the
same rules:

- Formats: JPEG, PNG, BMP, GIF, TIFF, WebP and PPM (:data:`FORMATS`); Pillow would also open EPS through
  Ghostscript and other formats that have no business in a crop collection.
- Size: at most :data:`MAX_PIXELS` pixels, checked on the header before any pixel is decoded.
- Modes: 16-bit and 32-bit greyscale is scaled to 8 bits rather than clipped, transparency is flattened
  onto :data:`BACKGROUND`, palettes are expanded, CMYK is converted without a colour profile.

:func:`find_unreadable` decodes a list of files up front (the dataset loaders use it to leave out the crops
that a run would otherwise stop at).
"""

from __future__ import annotations

import os
import re
import threading
import warnings
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from amd.errors import AmdError

#: Formats opened. The list is closed on purpose (see the module docstring).
FORMATS: tuple[str, ...] = ("JPEG", "PNG", "BMP", "GIF", "TIFF", "WEBP", "PPM")
#: Largest image opened, in pixels. Person crops are small; a 50-megapixel frame is already generous, and
#: the workspace's image store refuses larger images at import too.
MAX_PIXELS = 50_000_000
#: Transparent pixels are flattened onto this grey (the image store's thumbnails use the same).
BACKGROUND = (128, 128, 128)

_GREY_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I", "F"})
_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})
_BOMB_PIXELS = re.compile(r"\((\d+) pixels\)")
# warnings.catch_warnings swaps a process-wide filter list; two of our decoding threads entering it at
# once could restore each other's filters. Only the header parse runs under the lock.
_OPEN_LOCK = threading.Lock()


class ImageReadError(AmdError):
    """An image file cannot be decoded, or is larger than :data:`MAX_PIXELS`.

    The message is ``"PATH: cannot read image (REASON)"``, or ``"PATH: REASON"`` for an image too large.

    Attributes:
        path: The file.
        reason: Why, in a few words (``"empty file, 0 bytes"``, ``"truncated or corrupt: ..."``).
    """

    def __init__(self, path: str | os.PathLike[str], reason: str, decoding: bool = True) -> None:
        super().__init__(f"{path}: cannot read image ({reason})" if decoding else f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


class ImageWarning(UserWarning):
    """An image is used but is unlikely to give a meaningful result, or images were left out of a dataset."""


def _too_large(width: int, height: int, max_pixels: int) -> str:
    return f"image too large: {width}x{height} pixels ({width * height:,}; the limit is {max_pixels:,})"


def open_image(path: str | os.PathLike[str], max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Decode an image file completely (first frame), in whatever mode it is stored.

    Args:
        path: The file.
        max_pixels: Refuse images with more pixels, before decoding them.

    Raises:
        ImageReadError: Missing, empty, not an image of a supported format, too large, corrupt or
            truncated; the message names the file and says which.
    """
    try:
        fh = open(path, "rb")  # noqa: SIM115 (closed below, after the pixels are read)
    except OSError as exc:
        raise ImageReadError(path, exc.strerror or str(exc)) from None
    # The file is ours, not Pillow's: closing it leaves the decoded pixels in the image.
    with fh:
        if os.fstat(fh.fileno()).st_size == 0:
            raise ImageReadError(path, "empty file, 0 bytes")
        try:
            with _OPEN_LOCK, warnings.catch_warnings():
                # Pillow warns (and prints) between its own limit and twice it, and raises above. Our
                # limit is lower: the warning is silenced here and the image refused below, with its size.
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                image = Image.open(fh, formats=FORMATS)
        except UnidentifiedImageError:
            raise ImageReadError(path, "not an image, or not a supported format") from None
        except Image.DecompressionBombError as exc:
            found = _BOMB_PIXELS.search(str(exc))
            size = f"{int(found.group(1)):,} pixels; " if found else ""
            raise ImageReadError(
                path, f"image too large ({size}the limit is {max_pixels:,})", False
            ) from None
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise ImageReadError(path, f"truncated or corrupt: {exc}") from None
        width, height = image.size
        if width * height > max_pixels:
            raise ImageReadError(path, _too_large(width, height, max_pixels), False)
        try:
            image.load()
        except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as exc:
            raise ImageReadError(path, f"truncated or corrupt: {exc}") from None
    return image


def rgb_image(image: Image.Image, name: str | os.PathLike[str] = "image") -> Image.Image:
    """An 8-bit RGB version of any image Pillow decodes, for the models.

    16-bit and 32-bit integer greyscale (``I;16``, ``I;16B``, ``I``) is scaled to 8 bits by its full
    range (65535, or 255 for ``I`` images whose values fit in 8 bits); 32-bit float greyscale (``F``) by
    its own minimum and maximum. Transparency (``RGBA``, ``LA``, palettes and greyscale with a transparent
    colour) is flattened onto :data:`BACKGROUND`; palettes are expanded; ``CMYK`` and ``1`` are converted
    by Pillow.

    Args:
        image: The decoded image.
        name: The image's name in an error message (its file).

    Raises:
        ImageReadError: A mode Pillow cannot convert to RGB.
    """
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in _GREY_MODES:
        arr = np.asarray(image, dtype=np.float64)
        if mode == "F":
            finite = arr[np.isfinite(arr)]
            lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
            arr = (np.nan_to_num(arr, nan=lo, posinf=hi, neginf=lo) - lo) / (hi - lo or 1.0) * 255.0
        else:
            full = 65535.0 if mode.startswith("I;16") or (arr.size and arr.max() > 255) else 255.0
            arr = arr / full * 255.0
        return Image.fromarray(np.clip(arr + 0.5, 0, 255).astype(np.uint8), "L").convert("RGB")
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
    try:
        return image.convert("RGB")
    except ValueError as exc:
        raise ImageReadError(name, f"colour mode {mode} cannot be converted to RGB: {exc}") from None


def read_rgb(path: str | os.PathLike[str], max_pixels: int = MAX_PIXELS) -> Image.Image:
    """:func:`open_image` then :func:`rgb_image`: an image file as 8-bit RGB."""
    return rgb_image(open_image(path, max_pixels), path)


def check_image(path: str | os.PathLike[str], max_pixels: int = MAX_PIXELS) -> str | None:
    """Why ``path`` cannot be used as a crop, or ``None`` when it decodes.

    The file is decoded completely: Pillow's ``verify`` checks only PNG checksums and would pass a
    truncated JPEG.
    """
    try:
        read_rgb(path, max_pixels)
    except ImageReadError as exc:
        return exc.reason
    return None


def find_unreadable(
    paths: Iterable[str],
    threads: int | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> dict[str, str]:
    """Decode every file and say which cannot be used.

    Args:
        paths: The files (duplicates are checked once).
        threads: Decoding threads (Pillow releases the GIL while decoding); default up to 4.
        on_progress: Receives (files checked, files in all) every 256 files and at the end.

    Returns:
        ``{path: reason}`` of the files that cannot be decoded, in the order of ``paths``.
    """
    unique = list(dict.fromkeys(str(p) for p in paths))
    if not unique:
        return {}
    workers = threads or max(1, min(4, os.cpu_count() or 1))
    out: dict[str, str] = {}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for i, (path, reason) in enumerate(zip(unique, pool.map(check_image, unique), strict=True), 1):
            if reason is not None:
                out[path] = reason
            if on_progress is not None and (i % 256 == 0 or i == len(unique)):
                on_progress(i, len(unique))
    return out


def describe_unreadable(unreadable: dict[str, str], total: int, shown: int = 5) -> str:
    """One message for images left out: the count, then the first ``shown`` paths with their reasons."""
    items = list(unreadable.items())
    first = "; ".join(f"{Path(p)} ({r})" for p, r in items[:shown])
    more = f"; and {len(items) - shown} more" if len(items) > shown else ""
    count = f"{len(items)} of {total:,} images" if len(items) != 1 else f"1 of {total:,} images"
    return f"{count} cannot be decoded and are left out: {first}{more}"
