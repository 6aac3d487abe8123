"""Images that cannot be decoded are found when a dataset is loaded, listed once, and left out of their split."""

from __future__ import annotations

import argparse
import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from amd.data.images import ImageWarning, find_unreadable
from amd.data.load import load_dataset
from amd.errors import DatasetError
from amd.evaluate import retrieval_metrics

# Identities of the published attribute file: 2, 7, 10 are training identities, 1, 3, 4 test identities.
TRAIN = ["0002_c1s1_000101_01.jpg", "0002_c2s1_000201_01.jpg", "0007_c1s1_000301_01.jpg",
         "0007_c2s1_000401_01.jpg", "0010_c1s1_000501_01.jpg"]  # fmt: skip
QUERY = ["0001_c1s1_001101_01.jpg", "0003_c1s1_001201_01.jpg", "0004_c1s1_001301_01.jpg"]
GALLERY = ["0001_c2s1_002101_01.jpg", "0003_c2s1_002201_01.jpg", "0004_c2s1_002301_01.jpg",
           "0001_c3s1_002401_01.jpg"]  # fmt: skip


def _crop(path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (32, 16, 3), dtype=np.uint8)).save(path, quality=95)


@pytest.fixture()
def root(tmp_path: Path, annotations_dir: Path) -> Path:
    root = tmp_path / "market"
    for folder, names in (("bounding_box_train", TRAIN), ("query", QUERY), ("bounding_box_test", GALLERY)):
        (root / folder).mkdir(parents=True)
        for i, name in enumerate(names):
            _crop(root / folder / name, int(name[:4]) * 10 + i)
    shutil.copy(annotations_dir / "market_attribute.mat", root)
    return root


def _spoil(root: Path) -> dict[str, Path]:
    """A zero-byte query, a truncated gallery crop and a text file among the training crops."""
    bad = {
        "query": root / "query" / QUERY[0],
        "gallery": root / "bounding_box_test" / GALLERY[1],
        "train": root / "bounding_box_train" / TRAIN[2],
    }
    bad["query"].write_bytes(b"")
    data = bad["gallery"].read_bytes()
    bad["gallery"].write_bytes(data[: len(data) * 2 // 3])
    bad["train"].write_text("this is not a picture\n")
    return bad


def test_undecodable_images_are_listed_once_and_left_out(root: Path) -> None:
    bad = _spoil(root)
    with pytest.warns(ImageWarning) as caught:
        ds = load_dataset(root, "market1501")
    assert len(caught) == 1
    message = str(caught[0].message)
    assert message.startswith("3 of 12 images cannot be decoded and are left out: ")
    assert f"{bad['train']} (not an image, or not a supported format)" in message
    assert f"{bad['query']} (empty file, 0 bytes)" in message
    assert f"{bad['gallery']} (truncated or corrupt: image file is truncated" in message
    # The warning points at the caller of load_dataset (this file), not at the loader.
    assert caught[0].filename == __file__
    assert (len(ds.train), len(ds.query), len(ds.gallery)) == (4, 2, 3)
    kept = {r.path for r in ds.train + ds.query + ds.gallery}
    assert not kept & {str(p) for p in bad.values()}
    assert dict(ds.unreadable) == {
        str(bad["train"]): "not an image, or not a supported format",
        str(bad["query"]): "empty file, 0 bytes",
        str(bad["gallery"]): dict(ds.unreadable)[str(bad["gallery"])],
    }
    assert [r.pid for r in ds.query] == [3, 4] and [r.pid for r in ds.gallery] == [1, 1, 4]


def test_the_protocol_runs_on_what_is_left(root: Path) -> None:
    _spoil(root)
    with pytest.warns(ImageWarning):
        ds = load_dataset(root, "market1501")

    def embed(x):  # the mean colour: each crop is its own random noise, only the alignment matters
        return x.mean(dim=(2, 3))

    figures = retrieval_metrics(embed, ds, (32, 16), "cpu")
    assert 0.0 <= figures["mAP"] <= 1.0 and set(figures) >= {"rank1", "mAP", "mINP"}


def test_a_split_with_no_decodable_image_is_refused(root: Path) -> None:
    for name in QUERY:
        (root / "query" / name).write_bytes(b"")
    with pytest.raises(DatasetError, match=r"market: none of the 3 query images can be decoded \(the first, "
                       r".*0001_c1s1_001101_01\.jpg: empty file, 0 bytes\)"):  # fmt: skip
        load_dataset(root, "market1501")


def test_a_clean_dataset_loads_without_a_warning_and_the_check_can_be_skipped(root: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = load_dataset(root, "market1501")
    assert ds.unreadable == () and len(ds.train) == 5
    _spoil(root)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        unchecked = load_dataset(root, "market1501", check_images=False)
    assert len(unchecked.query) == 3 and unchecked.unreadable == ()


def test_find_unreadable_reports_progress_and_checks_duplicates_once(root: Path) -> None:
    bad = _spoil(root)
    paths = [str(p) for p in sorted(root.glob("*/*.jpg"))]
    seen: list[tuple[int, int]] = []
    found = find_unreadable(paths + paths, on_progress=lambda i, n: seen.append((i, n)))
    assert set(found) == {str(p) for p in bad.values()}
    assert seen == [(12, 12)]


def _dataset_info(root: Path, *extra: str) -> int:
    from cli import dataset_info

    parser = argparse.ArgumentParser()
    dataset_info.add_arguments(parser)
    return dataset_info.run(parser.parse_args([str(root), *extra]))


def test_dataset_info_lists_the_undecodable_images(root: Path, capsys) -> None:
    bad = _spoil(root)
    assert _dataset_info(root) == 1
    out = capsys.readouterr().out
    assert "  train          4 images" in out and "  query          2 images" in out
    assert "  3 images cannot be decoded (left out of the splits above):" in out
    assert f"    {bad['query']}: empty file, 0 bytes" in out
    assert _dataset_info(root, "--json") == 1
    data = json.loads(capsys.readouterr().out)
    assert data["images_checked"] is True
    assert {u["path"] for u in data["unreadable"]} == {str(p) for p in bad.values()}
    assert _dataset_info(root, "--no-image-check") == 0
    out = capsys.readouterr().out
    assert "  query          3 images" in out and "images not decoded (--no-image-check)" in out


def test_dataset_info_says_when_every_image_decodes(root: Path, capsys) -> None:
    assert _dataset_info(root) == 0
    assert capsys.readouterr().out.rstrip().endswith("every image decodes")
