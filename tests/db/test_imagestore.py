"""Content-addressed originals, thumbnails made once, and what counts as an importable image."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from db.errors import ImageRefused
from db.imagestore import EXTENSIONS, THUMB_SIZE, ImageStore, inspect_image, make_thumbnail
from imaging import FORMATS, to_rgb
from tests.db.imagefactory import image_bytes, person_image, png_bomb


def test_originals_are_kept_byte_for_byte_under_their_hash(tmp_path: Path) -> None:
    store = ImageStore(tmp_path)
    data = image_bytes(person_image(1), "PNG")
    sha = hashlib.sha256(data).hexdigest()
    path = store.put_original(data, sha, "PNG")
    assert path == tmp_path / "images" / sha[:2] / sha[2:4] / f"{sha}.png"
    assert path.read_bytes() == data
    assert store.read(sha, "PNG") == data
    assert not list(path.parent.glob(".tmp-*"))
    with pytest.raises(ValueError):
        store.original_path("../../etc/passwd", "PNG")


def test_thumbnail_is_made_once(tmp_path: Path) -> None:
    store = ImageStore(tmp_path)
    data = image_bytes(person_image(2, size=(200, 400)))
    sha = hashlib.sha256(data).hexdigest()
    store.put_original(data, sha, "JPEG")
    path = store.thumbnail(sha, "JPEG")
    first = path.stat().st_mtime_ns, path.read_bytes()
    assert Image.open(path).size == THUMB_SIZE
    store.put_thumbnail(sha, person_image(3))  # already there: left alone
    assert store.thumbnail(sha, "JPEG") == path
    assert (path.stat().st_mtime_ns, path.read_bytes()) == first


def _i16() -> Image.Image:
    arr = (np.arange(64 * 128, dtype=np.uint16).reshape(128, 64) * 8).astype(np.uint16)
    return Image.fromarray(arr)


@pytest.mark.parametrize(
    ("make", "fmt", "mode"),
    [
        (lambda: person_image(4, mode="CMYK"), "JPEG", "CMYK"),
        (_i16, "PNG", "I;16"),
        (lambda: person_image(5, mode="RGBA"), "PNG", "RGBA"),
        (lambda: person_image(6, mode="P"), "PNG", "P"),
        (lambda: person_image(7, mode="L"), "TIFF", "L"),
    ],
    ids=["cmyk", "16bit", "alpha", "palette", "grey-tiff"],
)
def test_unusual_valid_images_are_accepted_and_converted_only_for_display(make, fmt: str, mode: str) -> None:
    data = image_bytes(make(), fmt)
    image, facts = inspect_image(data)
    assert (facts.format, facts.mode, facts.width, facts.height) == (fmt, mode, 64, 128)
    rgb = to_rgb(image)
    assert rgb.mode == "RGB" and rgb.size == (64, 128)
    thumb = Image.open(io.BytesIO(make_thumbnail(image)))
    assert thumb.format == "JPEG" and thumb.mode in ("RGB", "L")


def test_16_bit_is_scaled_not_clipped() -> None:
    rgb = np.asarray(to_rgb(_i16()))
    assert rgb[0, 0, 0] == 0 and rgb[-1, -1, 0] == round((64 * 128 - 1) * 8 / 65535 * 255)


def test_the_thumbnail_shows_what_the_model_reads(tmp_path: Path) -> None:
    # A float crop with one infinite and one undefined pixel: the store used its own conversion, which
    # turned the whole thumbnail black while the model read the gradient; both now share one.
    from amd.data.images import read_rgb

    values = np.tile(np.linspace(0.0, 1.0, 64, dtype=np.float32), (128, 1))
    values[0, 0], values[0, 1] = np.inf, np.nan
    data = image_bytes(Image.fromarray(values, "F"), "TIFF")
    image, facts = inspect_image(data)
    assert facts.mode == "F"
    store = ImageStore(tmp_path)
    store.put_original(data, "ab" * 32, facts.format)
    thumb = np.asarray(Image.open(store.put_thumbnail("ab" * 32, image)), dtype=np.float64)
    path = tmp_path / "crop.tif"
    path.write_bytes(data)
    model_view = np.asarray(read_rgb(path), dtype=np.float64)
    assert model_view[5, :, 0].tolist() == [round(v * 255) for v in np.linspace(0.0, 1.0, 64)]
    assert model_view[0, 0, 0] == 255 and model_view[0, 1, 0] == 0
    # Equal up to JPEG's loss; the old thumbnail was black (a mean difference of about 128).
    assert np.abs(thumb - model_view).mean() < 2.0
    # Premultiplied grey with alpha was refused by the store's copy ("conversion from La to L").
    assert to_rgb(Image.new("La", (2, 2))).getpixel((0, 0)) == (128, 128, 128)


def test_every_format_opened_has_the_extension_its_originals_are_stored_under() -> None:
    assert set(EXTENSIONS) == set(FORMATS)


def test_transparent_pixels_become_the_neutral_background() -> None:
    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    assert to_rgb(rgba).getpixel((0, 0)) == (128, 128, 128)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty file"),
        (b"name,identity\nx,1\n", "not an image"),
        (image_bytes(person_image(8))[:900], "truncated"),
        (png_bomb(), "too large"),
        (png_bomb(8000, 8000), "too large: 8000x8000"),
    ],
    ids=["zero-byte", "non-image", "truncated", "bomb-huge", "bomb-over-limit"],
)
def test_bad_images_are_refused_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(ImageRefused, match=reason):
        inspect_image(data)


def test_corrupt_png_data_is_refused() -> None:
    data = image_bytes(person_image(9), "PNG")
    bad = data[:80] + bytes(b ^ 0x5A for b in data[80:400]) + data[400:]
    with pytest.raises(ImageRefused, match="corrupt"):
        inspect_image(bad)


def test_formats_outside_the_list_are_refused() -> None:
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n"
    with pytest.raises(ImageRefused, match="not an image"):
        inspect_image(eps)
