"""Content-addressed image store: originals byte for byte under their SHA-256, thumbnails made once.

Paths fan out on the first two byte pairs of the hash (``images/ab/cd/abcd....jpg``), so that no
folder grows past a few thousand entries even with millions of crops. Every file is written to a
temporary name in its final folder and renamed into place, so a reader (or a later run after a
crash) sees either the whole file or nothing.

Which images are accepted (:func:`inspect_image`): JPEG, PNG, BMP, GIF, TIFF, WebP and PPM, fully
decodable, at most :data:`MAX_PIXELS` pixels. CMYK, 16-bit, alpha and palette images are valid
images: they are stored unchanged, and only their thumbnail (and the pixels handed to a model) is
converted to 8-bit RGB, by :func:`imaging.to_rgb` as the engine converts them.
"""

from __future__ import annotations

import io
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from db.errors import ImageRefused
from imaging import FORMATS, MAX_PIXELS, to_rgb


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: The process's umask, read once at import: reading it means setting it, which is not safe while other
#: threads create files.
_UMASK = _read_umask()


def make_shareable(path: str | os.PathLike[str]) -> None:
    """Give a file made by :func:`tempfile.mkstemp` (owner-only) the mode a plainly created file has.

    Files renamed into place from a temporary file would otherwise stay readable by their owner only, unlike
    every other file the user makes (a PDF report, say); the umask decides, as it does for those.
    """
    os.chmod(path, 0o666 & ~_UMASK)


#: File extension of the originals of each format (:data:`imaging.FORMATS`).
EXTENSIONS: dict[str, str] = {
    "JPEG": "jpg",
    "PNG": "png",
    "BMP": "bmp",
    "GIF": "gif",
    "TIFF": "tif",
    "WEBP": "webp",
    "PPM": "ppm",
}
#: Largest file read; guards memory against a huge non-image file handed in by mistake.
MAX_FILE_BYTES = 256 * 1024 * 1024
#: Thumbnails fit in this box (width, height): the 1:2 shape of a person crop.
THUMB_SIZE = (64, 128)
THUMB_QUALITY = 85


@dataclass(frozen=True)
class ImageFacts:
    """What :func:`inspect_image` learnt about a valid image."""

    width: int
    height: int
    format: str
    mode: str


def inspect_image(data: bytes, max_pixels: int = MAX_PIXELS) -> tuple[Image.Image, ImageFacts]:
    """Decode ``data`` completely, or say why it cannot be imported.

    Args:
        data: The file's bytes.
        max_pixels: Refuse images with more pixels (decompression bombs) before decoding them.

    Returns:
        The decoded image (first frame) and its facts.

    Raises:
        ImageRefused: Empty, not an image, an unsupported format, too large, corrupt or truncated.
    """
    if not data:
        raise ImageRefused("empty file (0 bytes)")
    with warnings.catch_warnings():
        # Pillow only warns below twice its own limit; a warning is a refusal here.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data), formats=FORMATS)
        except UnidentifiedImageError:
            raise ImageRefused("not an image, or not a supported format") from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise ImageRefused(f"image too large (over {max_pixels:,} pixels)") from None
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise ImageRefused(f"corrupt image header: {exc}") from None
        width, height = image.size
        if width <= 0 or height <= 0:
            raise ImageRefused(f"image has no pixels ({width}x{height})")
        if width * height > max_pixels:
            raise ImageRefused(f"image too large: {width}x{height} pixels (limit {max_pixels:,})")
        try:
            image.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise ImageRefused(f"image too large: {width}x{height} pixels") from None
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise ImageRefused(f"corrupt or truncated image: {exc}") from None
    return image, ImageFacts(width=width, height=height, format=str(image.format), mode=image.mode)


class ImageStore:
    """Originals and thumbnails of a workspace, addressed by SHA-256.

    Args:
        root: The workspace folder; files go under ``root/images`` and ``root/thumbs``.
        fsync: Flush every file to disk before it is renamed into place. A killed program never
            needs it (the operating system keeps written pages); it protects against power cuts
            at the cost of a disk flush per file.
    """

    def __init__(self, root: str | os.PathLike[str], fsync: bool = False) -> None:
        self.root = Path(root)
        self.images_dir = self.root / "images"
        self.thumbs_dir = self.root / "thumbs"
        self.fsync = fsync

    @staticmethod
    def _fan(sha256: str) -> Path:
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise ValueError(f"not a SHA-256 hex digest: {sha256!r}")
        return Path(sha256[:2], sha256[2:4])

    def original_path(self, sha256: str, fmt: str) -> Path:
        """Where the original of ``sha256`` in Pillow format ``fmt`` lives."""
        ext = EXTENSIONS.get(fmt.upper(), fmt.lower())
        return self.images_dir / self._fan(sha256) / f"{sha256}.{ext}"

    def thumbnail_path(self, sha256: str) -> Path:
        return self.thumbs_dir / self._fan(sha256) / f"{sha256}.jpg"

    def _write_atomic(self, path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                if self.fsync:
                    fh.flush()
                    os.fsync(fh.fileno())
            make_shareable(tmp)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def put_original(self, data: bytes, sha256: str, fmt: str) -> Path:
        """Store ``data`` (whose hash the caller computed) unless an intact copy is already there."""
        path = self.original_path(sha256, fmt)
        try:
            if path.stat().st_size == len(data):
                return path
        except FileNotFoundError:
            pass
        self._write_atomic(path, data)
        return path

    def put_thumbnail(self, sha256: str, image: Image.Image) -> Path:
        """Make the thumbnail of a decoded image unless it exists."""
        path = self.thumbnail_path(sha256)
        if path.exists():
            return path
        self._write_atomic(path, make_thumbnail(image))
        return path

    def thumbnail(self, sha256: str, fmt: str) -> Path:
        """The thumbnail's path, made from the original first if it is missing."""
        path = self.thumbnail_path(sha256)
        if not path.exists():
            self.put_thumbnail(sha256, self.open(sha256, fmt))
        return path

    def read(self, sha256: str, fmt: str) -> bytes:
        return self.original_path(sha256, fmt).read_bytes()

    def open(self, sha256: str, fmt: str) -> Image.Image:
        """The decoded original (as stored: any mode)."""
        with Image.open(self.original_path(sha256, fmt), formats=FORMATS) as image:
            image.load()
            return image

    def open_rgb(self, sha256: str, fmt: str) -> Image.Image:
        """The original as 8-bit RGB, the form models take."""
        return to_rgb(self.open(sha256, fmt))

    def orphans(self, known: set[str]) -> list[Path]:
        """Originals whose hash is not in ``known`` (left by a run killed before its commit)."""
        if not self.images_dir.exists():
            return []
        return sorted(p for p in self.images_dir.glob("*/*/*") if p.is_file() and p.stem not in known)

    def temporary_files(self) -> list[Path]:
        """Temporary files left by a killed writer; safe to delete when no ingest runs."""
        out: list[Path] = []
        for base in (self.images_dir, self.thumbs_dir):
            if base.exists():
                out.extend(p for p in base.glob("*/*/.tmp-*") if p.is_file())
        return sorted(out)


def make_thumbnail(image: Image.Image) -> bytes:
    """JPEG bytes of ``image`` fitted into :data:`THUMB_SIZE`, as 8-bit RGB (or greyscale)."""
    thumb = image if image.mode == "L" else to_rgb(image)
    if thumb.width > THUMB_SIZE[0] or thumb.height > THUMB_SIZE[1]:
        thumb = thumb.copy()
        thumb.thumbnail(THUMB_SIZE, Image.Resampling.BILINEAR, reducing_gap=2.0)
    buf = io.BytesIO()
    thumb.save(buf, "JPEG", quality=THUMB_QUALITY)
    return buf.getvalue()
