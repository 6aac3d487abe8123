"""Reading image files the one engine-wide way: every Pillow mode to 8-bit RGB, the pixel limit, crop shapes."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from amd.data import images
from amd.data.images import MAX_PIXELS, ImageReadError, open_image, read_rgb, rgb_image
from amd.data.records import Record
from amd.data.torch_dataset import ReidImageDataset
from amd.data.transforms import build_transforms
from amd.models.inputs import ImageInputError, eval_transform, preprocess, shape_problem, to_rgb

SIZE = (64, 32)
# The eval transform normalises with ImageNet's standard deviations; one 8-bit step is 1/255 before it.
STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)


def _grey8(h: int = 48, w: int = 24) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (h, w), dtype=np.uint8)


def test_16_bit_grey_png_gives_the_tensor_of_its_8_bit_version(tmp_path: Path) -> None:
    grey = _grey8()
    # Full-range 16-bit values with noise in the low byte: v16 / 65535 * 255 rounds to within one step of v8.
    low = np.random.default_rng(1).integers(0, 256, grey.shape)
    g16 = np.clip(grey.astype(np.int64) * 257 + low - 128, 0, 65535).astype(np.uint16)
    p8, p16 = tmp_path / "g8.png", tmp_path / "g16.png"
    Image.fromarray(grey).save(p8)
    Image.fromarray(g16).save(p16)
    with Image.open(p16) as probe:
        assert probe.mode in ("I;16", "I")  # the mode Pillow gives a 16-bit greyscale PNG
    transform = eval_transform(SIZE)
    t8, size8 = preprocess(p8, transform)
    t16, size16 = preprocess(p16, transform)
    assert size8 == size16 == (48, 24)
    # Clipped to 255 before, the 16-bit crop was a white page: a mean near 1 after un-normalising.
    diff = ((t16 - t8) * STD).abs().max().item()
    assert diff <= 1 / 255 + 1e-6
    # The same through the training / evaluation dataset.
    ds = ReidImageDataset(
        [Record(str(p), 1, 1, np.zeros(0, np.int8)) for p in (p8, p16)], build_transforms(SIZE, train=False)
    )
    assert ((ds[1]["image"] - ds[0]["image"]) * STD).abs().max().item() <= 1 / 255 + 1e-6


@pytest.mark.parametrize("mode", ["I;16", "I;16B", "I"])
def test_wide_grey_modes_scale_by_their_full_range(mode: str) -> None:
    grey = _grey8()
    values = grey.astype(np.uint32) * 257  # full 16-bit range
    if mode == "I;16B":
        image = Image.frombytes(mode, (grey.shape[1], grey.shape[0]), values.astype(">u2").tobytes())
    elif mode == "I":
        image = Image.fromarray(values.astype(np.int32))
    else:
        image = Image.fromarray(values.astype(np.uint16))
    assert image.mode == mode
    rgb = np.asarray(rgb_image(image))
    assert rgb.shape == (48, 24, 3)
    np.testing.assert_array_equal(rgb[..., 0], grey)
    np.testing.assert_array_equal(rgb[..., 2], grey)


def test_32_bit_grey_with_8_bit_values_is_not_stretched() -> None:
    grey = _grey8()
    rgb = np.asarray(rgb_image(Image.fromarray(grey.astype(np.int32))))
    np.testing.assert_array_equal(rgb[..., 1], grey)


def test_float_grey_is_scaled_by_its_own_range() -> None:
    values = np.array([[0.25, 0.5], [0.75, np.nan]], dtype=np.float32)
    rgb = np.asarray(rgb_image(Image.fromarray(values)))
    assert rgb[..., 0].tolist() == [[0, 128], [255, 0]]


def test_transparency_is_flattened_onto_grey_and_cmyk_palette_bilevel_convert() -> None:
    rgba = Image.new("RGBA", (2, 1), (255, 0, 0, 255))
    rgba.putpixel((1, 0), (255, 0, 0, 0))
    assert np.asarray(rgb_image(rgba)).tolist() == [[[255, 0, 0], [128, 128, 128]]]
    la = Image.new("LA", (1, 1), (200, 0))
    assert rgb_image(la).getpixel((0, 0)) == (128, 128, 128)
    pal = Image.new("P", (2, 1), 0)
    pal.putpalette([10, 20, 30, 40, 50, 60] + [0] * 762)
    pal.putpixel((1, 0), 1)
    pal.info["transparency"] = 1
    assert np.asarray(rgb_image(pal)).tolist() == [[[10, 20, 30], [128, 128, 128]]]
    cmyk = Image.new("CMYK", (1, 1), (0, 255, 255, 0))
    assert rgb_image(cmyk).getpixel((0, 0)) == (255, 0, 0)
    bilevel = Image.new("1", (2, 1), 0)
    bilevel.putpixel((1, 0), 1)
    assert np.asarray(rgb_image(bilevel))[0, :, 0].tolist() == [0, 255]
    for mode in ("La", "RGBa", "PA", "YCbCr", "HSV", "RGBX", "L"):
        assert rgb_image(Image.new(mode, (3, 2))).mode == "RGB", mode


def test_files_in_each_mode_read_as_rgb(tmp_path: Path) -> None:
    grey = _grey8(8, 4)
    made = {
        "p.png": Image.fromarray(grey).convert("P"),
        "la.png": Image.fromarray(grey).convert("LA"),
        "rgba.png": Image.fromarray(grey).convert("RGBA"),
        "cmyk.jpg": Image.fromarray(grey).convert("CMYK"),
        "g16.tif": Image.fromarray(grey.astype(np.uint16) * 257),
        "f.tif": Image.fromarray(grey.astype(np.float32)),
        "one.png": Image.fromarray(grey).convert("1"),
    }
    for name, image in made.items():
        image.save(tmp_path / name)
        rgb = read_rgb(tmp_path / name)
        assert rgb.mode == "RGB" and rgb.size == (4, 8), name
    # Lossless files of the same grey come back as that grey.
    for name in ("p.png", "la.png", "rgba.png", "g16.tif", "f.tif"):
        got = np.asarray(read_rgb(tmp_path / name))[..., 0].astype(int)
        want = grey if name != "f.tif" else np.round((grey - grey.min()) / np.ptp(grey) * 255)
        assert np.abs(got - want).max() <= 1, name


def test_unreadable_files_say_why(tmp_path: Path) -> None:
    empty, text, trunc = tmp_path / "empty.jpg", tmp_path / "text.jpg", tmp_path / "trunc.jpg"
    empty.write_bytes(b"")
    text.write_text("not an image\n")
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 32, 3), dtype=np.uint8)).save(
        tmp_path / "full.jpg"
    )
    full = (tmp_path / "full.jpg").read_bytes()
    trunc.write_bytes(full[: len(full) * 2 // 3])
    cases = {
        empty: "empty file, 0 bytes",
        text: "not an image, or not a supported format",
        trunc: "truncated or corrupt: image file is truncated",
        tmp_path / "missing.jpg": "No such file",
        tmp_path: "Is a directory",
    }
    for path, why in cases.items():
        with pytest.raises(ImageReadError, match=f"^{path}: cannot read image \\(.*{why}"):
            open_image(path)
        with pytest.raises(ImageInputError, match=why):
            to_rgb(path)
    eps = tmp_path / "a.eps"
    eps.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n")
    with pytest.raises(ImageReadError, match="not a supported format"):
        open_image(eps)


def test_one_pixel_limit_for_every_image_opened(tmp_path: Path) -> None:
    assert MAX_PIXELS == 50_000_000
    path = tmp_path / "big.png"
    Image.new("L", (200, 100)).save(path)
    with pytest.raises(
        ImageReadError, match=r"big\.png: image too large: 200x100 pixels \(20,000; the limit is 19,999\)"
    ):
        open_image(path, max_pixels=19_999)
    assert open_image(path, max_pixels=20_000).size == (200, 100)


def test_pillow_bomb_limits_are_reported_as_ours_without_a_printed_warning(
    tmp_path: Path, monkeypatch
) -> None:
    path = tmp_path / "bomb.png"
    Image.new("L", (100, 100)).save(path)
    # Lower Pillow's own limit so that this small file is, to Pillow, a bomb (warning, then error above 2x).
    for limit in (6_000, 4_000):
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # any warning escaping would fail here
            with pytest.raises(ImageReadError, match=r"bomb\.png: image too large"):
                open_image(path, max_pixels=5_000)
    # The process-wide filters are as they were (the lock-guarded catch_warnings restored them).
    assert not any(f[2] is Image.DecompressionBombWarning for f in warnings.filters)


def test_zero_sized_images_are_refused() -> None:
    with pytest.raises(ImageInputError, match="no pixels"):
        to_rgb(np.zeros((0, 5, 3), dtype=np.uint8))
    with pytest.raises(ImageInputError, match="no pixels"):
        to_rgb(Image.new("RGB", (0, 0)))


def test_shape_problem_thresholds() -> None:
    size = (256, 128)
    for ok in [(256, 128), (128, 64), (32, 16), (64, 128), (1020, 128)]:
        assert shape_problem(*ok, size) is None, ok
    tiny = shape_problem(1, 1, size)
    assert tiny is not None and tiny.startswith("1x1 pixels (width x height) is smaller than 16x32;")
    flat = shape_problem(2, 4000, size)
    assert flat is not None and "4000x2 pixels" in flat and "4,000 times wider for its height" in flat
    assert "smaller than 16x32" in flat
    tall = shape_problem(1100, 128, size)
    assert tall is not None and "4.3 times taller for its width than the model's 128x256 input" in tall
    assert shape_problem(63, 128, size) is not None


def test_explainer_inputs_and_dataset_items_share_one_conversion(monkeypatch, tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    Image.new("RGB", (4, 8)).save(path)
    calls: list[str] = []
    real = images.rgb_image

    def spy(image, name="image"):
        calls.append(str(name))
        return real(image, name)

    monkeypatch.setattr(images, "rgb_image", spy)
    to_rgb(path)
    ReidImageDataset([Record(str(path), 1, 1, np.zeros(0, np.int8))], build_transforms(SIZE, train=False))[0]
    assert calls == [str(path), str(path)]
