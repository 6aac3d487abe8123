"""The explainer's limits: the pixel limit on files, bounded maps for huge crops, warnings for odd crop shapes."""

from __future__ import annotations

import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from amd.data.images import ImageWarning, check_image
from amd.explain import MAX_MAP_SIDE, Explainer, map_size, maps_at
from amd.models import Interpreter, build_target, save_interpreter, save_target
from amd.models.inputs import ImageInputError
from amd.schema import schema_from_names

SIZE = (64, 32)


def _png_header(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims ``width`` x ``height`` (no pixel data: it must be refused on the header)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))
    return path


@pytest.fixture(scope="module")
def explainer(tmp_path_factory) -> Explainer:
    folder = tmp_path_factory.mktemp("limits")
    torch.manual_seed(0)
    target = build_target("resnet18").eval()
    target_hash = save_target(folder / "target.pt", target, SIZE)
    schema = schema_from_names(["hat", "backpack"], name="tiny")
    save_interpreter(
        folder / "interpreter.pt", Interpreter(target, num_attributes=2), SIZE, schema, target_hash
    )
    return Explainer.from_files(folder / "target.pt", folder / "interpreter.pt")


def _crop(path: Path, h: int, w: int) -> Path:
    Image.fromarray(np.random.default_rng(h * w).integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
    return path


def test_files_over_the_pixel_limit_are_refused_with_their_size(explainer, tmp_path: Path) -> None:
    crop = _crop(tmp_path / "crop.png", 64, 32)
    big = _png_header(tmp_path / "big.png", 10_000, 5_001)
    with pytest.raises(ImageInputError, match=r"big\.png: image too large: 10000x5001 pixels "
                       r"\(50,010,000; the limit is 50,000,000\)"):  # fmt: skip
        explainer.explain(big, crop)
    # Past twice Pillow's own limit Pillow refuses first; the message still gives the size and our limit.
    bomb = _png_header(tmp_path / "bomb.png", 20_000, 10_000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Pillow's DecompressionBombWarning must not escape
        with pytest.raises(ImageInputError, match=r"bomb\.png: image too large \(200,000,000 pixels; "
                           r"the limit is 50,000,000\)"):  # fmt: skip
            explainer.explain(crop, bomb)
    assert check_image(big) == "image too large: 10000x5001 pixels (50,010,000; the limit is 50,000,000)"
    # Just under the limit, the header is accepted (this one then fails for lack of pixel data).
    assert "truncated or corrupt" in check_image(_png_header(tmp_path / "ok.png", 10_000, 5_000))


def test_map_size_keeps_normal_crops_and_caps_the_longer_side() -> None:
    assert MAX_MAP_SIDE == 1024
    assert map_size(256, 128) == (256, 128)
    assert map_size(1024, 1024) == (1024, 1024)
    assert map_size(10_000, 5_000) == (1024, 512)
    assert map_size(2_000, 7_000) == (293, 1024)
    assert map_size(4_000, 2) == (1024, 1)


def test_maps_are_at_the_crop_size_up_to_the_cap(explainer, tmp_path: Path) -> None:
    normal = _crop(tmp_path / "normal.png", 70, 30)
    large = _crop(tmp_path / "large.png", 1_500, 700)
    e = explainer.explain(normal, large)
    assert e.maps_a.shape == (2, 70, 30) and e.size_a == (70, 30)
    assert e.maps_b.shape == (2, 1024, 478) and e.size_b == (1_500, 700)
    assert e.maps_b.dtype == np.float32 and e.maps_b.nbytes == 2 * 1024 * 478 * 4
    full = maps_at(e.maps_b, 1_500, 700)
    assert full.shape == (2, 1_500, 700) and full.dtype == np.float32
    np.testing.assert_allclose(full.mean(axis=(1, 2)), e.maps_b.mean(axis=(1, 2)), rtol=1e-3)
    np.testing.assert_array_equal(maps_at(e.maps_a, 70, 30), e.maps_a)  # already at that size: unchanged


def test_odd_crop_shapes_are_explained_with_a_warning(explainer, tmp_path: Path) -> None:
    normal = _crop(tmp_path / "normal.png", 64, 32)
    one = _crop(tmp_path / "one.png", 1, 1)
    wide = _crop(tmp_path / "wide.png", 2, 4000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        explainer.explain(normal, _crop(tmp_path / "square.png", 40, 40))
    with pytest.warns(ImageWarning) as caught:
        e = explainer.explain(one, wide)
    messages = [str(w.message) for w in caught]
    assert messages == [
        f"{one}: 1x1 pixels (width x height) is smaller than 4x8; the model sees it resized to its input, "
        "so its explanation may mean little",
        f"{wide}: 4000x2 pixels (width x height) is smaller than 4x8 and 4,000 times wider for its height than the model's 32x64 "
        "input; the model sees it resized to its input, so its explanation may mean little",
    ]
    assert caught[0].filename == __file__  # reported where explain was called
    assert e.maps_a.shape == (2, 1, 1) and e.maps_b.shape == (2, 1, 1024)
    assert np.isfinite(e.distance) and np.isfinite(e.shares).all()
    with pytest.warns(ImageWarning, match=r"^image 2: 2x600 pixels"):
        explainer.explain_many(np.zeros((64, 32, 3), np.uint8), [np.zeros((600, 2, 3), np.uint8)])
