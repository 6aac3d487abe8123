"""Opening image files and turning decoded images into 8-bit RGB: the one place the engine does either.

Every image the engine reads (dataset crops for training and evaluation, the crops handed to the explainer
and the embedder) goes through :func:`open_image` and :func:`rgb_image`, so that all of them follow the
same rules:

- Formats: JPEG, PNG, BMP, GIF, TIFF, WebP and PPM (:data:`FORMATS`); Pillow would also open EPS through
  Ghostscript and other formats that have no business in a crop collection.
- Size: at most :data:`MAX_PIXELS` pixels, checked on the header before any pixel is decoded.
- Modes: 16-bit and 32-bit greyscale is scaled to 8 bits rather than clipped, transparency is flattened
  onto :data:`BACKGROUND`, palettes are expanded, CMYK is converted without a colour profile
  (:func:`imaging.to_rgb`, which the workspace's thumbnails go through too).

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

from PIL import Image, UnidentifiedImageError

from amd.errors import AmdError
from imaging import BACKGROUND, FORMATS, MAX_PIXELS, to_rgb

__all__ = [
    "BACKGROUND",
    "FORMATS",
    "MAX_PIXELS",
    "ImageReadError",
    "ImageWarning",
    "check_image",
    "describe_unreadable",
    "find_unreadable",
    "open_image",
    "read_rgb",
    "rgb_image",
]

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
    """An 8-bit RGB version of any image Pillow decodes, for the models (:func:`imaging.to_rgb`).

    16-bit and 32-bit greyscale is scaled to 8 bits, transparency flattened onto :data:`BACKGROUND`,
    palettes expanded, ``CMYK`` and ``1`` converted by Pillow: the same conversion as the workspace's
    thumbnails, so that the gallery shows what the model analyses.

    Args:
        image: The decoded image.
        name: The image's name in an error message (its file).

    Raises:
        ImageReadError: A mode Pillow cannot convert to RGB.
    """
    try:
        return to_rgb(image)
    except ValueError as exc:
        raise ImageReadError(name, f"colour mode {image.mode} cannot be converted to RGB: {exc}") from None


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
