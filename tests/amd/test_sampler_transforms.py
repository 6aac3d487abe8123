from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from amd.data.records import Record, relabel
from amd.data.sampler import PKSampler
from amd.data.torch_dataset import ReidImageDataset
from amd.data.transforms import MEAN, STD, build_transforms, parse_size
from amd.errors import DatasetError


def _pids() -> list[int]:
    # 10 identities: identity i has i + 1 images (so 0, 1 and 2 have fewer than K = 4).
    return [pid for pid in range(10) for _ in range(pid + 1)]


def test_pk_batches_have_p_identities_of_k_images() -> None:
    pids = _pids()
    sampler = PKSampler(pids, p=3, k=4, seed=1)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 3  # 10 identities // 3
    seen = set()
    for batch in batches:
        assert len(batch) == 12
        counts = Counter(pids[i] for i in batch)
        assert len(counts) == 3 and set(counts.values()) == {4}
        for pid in counts:
            own = [i for i in batch if pids[i] == pid]
            if pid + 1 >= 4:  # enough images: drawn without replacement
                assert len(set(own)) == 4
        seen |= set(counts)
    assert len(seen) == 9  # every identity at most once per epoch


def test_pk_is_deterministic_per_seed_and_epoch() -> None:
    a, b = PKSampler(_pids(), 2, 2, seed=5), PKSampler(_pids(), 2, 2, seed=5)
    assert list(a) == list(b)
    first = list(a)
    a.set_epoch(1)
    assert list(a) != first
    b.set_epoch(1)
    assert list(a) == list(b)


def test_pk_rejects_too_few_identities() -> None:
    with pytest.raises(ValueError, match="needs 4 identities but the data has 2"):
        PKSampler([1, 1, 2], p=4, k=2)
    assert len(PKSampler(_pids(), p=2, k=2, min_images=5)) == 3  # identities 4..9


def test_transforms_shape_and_normalisation() -> None:
    img = Image.new("RGB", (40, 100), (255, 0, 0))
    test_t = build_transforms((64, 32), train=False)
    x = test_t(img)
    assert x.shape == (3, 64, 32)
    expected = [(1 - MEAN[0]) / STD[0], (0 - MEAN[1]) / STD[1], (0 - MEAN[2]) / STD[2]]
    torch.testing.assert_close(x.mean(dim=(1, 2)), torch.tensor(expected), atol=1e-4, rtol=0)
    torch.manual_seed(0)
    train_t = build_transforms((64, 32), train=True, erasing_p=1.0)
    y = train_t(img)
    assert y.shape == (3, 64, 32)
    # Random erasing wrote zeros (the mean colour after normalisation) on part of the image.
    assert 0 < (y == 0).all(dim=0).float().mean() < 0.5


def test_parse_size() -> None:
    assert parse_size("256x128") == (256, 128)
    with pytest.raises(ValueError, match="HEIGHTxWIDTH"):
        parse_size("256")


def test_dataset_items_and_bad_image(tmp_path: Path) -> None:
    good, bad = tmp_path / "g.jpg", tmp_path / "b.jpg"
    Image.new("RGB", (32, 64), (0, 255, 0)).save(good)
    bad.write_bytes(b"\xff\xd8 not really a jpeg")
    recs = [Record(str(good), 11, 2, np.array([1, -1], dtype=np.int8)), Record(str(bad), 12, 1, np.zeros(2))]
    ds = ReidImageDataset(recs, build_transforms((64, 32), train=False), relabel(recs))
    item = ds[0]
    assert item["image"].shape == (3, 64, 32) and item["label"] == 0 and item["camid"] == 2
    torch.testing.assert_close(item["attributes"], torch.tensor([1.0, -1.0]))
    with pytest.raises(DatasetError, match=r"b\.jpg: cannot read image"):
        ds[1]
