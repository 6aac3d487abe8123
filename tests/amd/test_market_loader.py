from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from amd.data.market import (
    load_duke,
    load_market1501,
    parse_duke_name,
    parse_market_name,
    read_attribute_file,
)
from amd.errors import DatasetError
from amd.schema import load_schema


def _touch(folder: Path, names: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"")


@pytest.fixture()
def market_root(tmp_path: Path, annotations_dir: Path) -> Path:
    root = tmp_path / "Market-1501"
    _touch(root / "bounding_box_train", ["0002_c1s1_000451_03.jpg", "0002_c2s1_000301_01.jpg",
                                         "0007_c3s1_001201_02.jpg", "Thumbs.db"])  # fmt: skip
    _touch(root / "query", ["0001_c1s1_001051_00.jpg", "0003_c2s1_000111_00.jpg"])
    _touch(root / "bounding_box_test", ["0001_c2s1_000301_01.jpg", "0003_c4s2_010101_02.jpg",
                                        "0000_c1s1_000001_01.jpg", "-1_c1s1_000002_01.jpg"])  # fmt: skip
    shutil.copy(annotations_dir / "market_attribute.mat", root)
    return root


@pytest.fixture()
def duke_root(tmp_path: Path, annotations_dir: Path) -> Path:
    root = tmp_path / "DukeMTMC-reID"
    _touch(root / "bounding_box_train", ["0001_c2_f0046182.jpg", "0008_c1_f0000001.jpg"])
    _touch(root / "query", ["0002_c5_f0044823.jpg"])
    _touch(root / "bounding_box_test", ["0004_c1_f0051351.jpg", "0002_c2_f0047402.jpg"])
    shutil.copy(annotations_dir / "duke_attribute.mat", root)
    return root


def test_real_market_file_has_identities_per_split_in_schema_order(annotations_dir: Path) -> None:
    schema = load_schema("market1501")
    tables = read_attribute_file(annotations_dir / "market_attribute.mat", "market_attribute", schema)
    assert len(tables["train"]) == 751
    assert len(tables["test"]) == 750
    assert not set(tables["train"]) & set(tables["test"])
    assert schema.names == tuple(sorted(schema.names)) and len(schema) == 26 and "age" not in schema.names
    v = tables["train"][2]
    assert v.dtype == np.int8 and v.shape == (26,)
    # 0002 (train): red short-sleeved top, blue short trousers, short hair, male, nothing carried.
    expected = {"upred": 1, "downblue": 1, "up": 1, "down": 1, "clothes": 1, "hair": -1, "gender": -1,
                "backpack": -1, "bag": -1, "upwhite": -1}  # fmt: skip
    assert {n: int(v[schema.index(n)]) for n in expected} == expected
    # 0007 carries a bag and wears white over black.
    w = tables["train"][7]
    assert (w[schema.index("bag")], w[schema.index("upwhite")], w[schema.index("downblack")]) == (1, 1, 1)
    # The test struct lists its fields in another order: 0001 is female, long hair, dress, white/white.
    t = tables["test"][1]
    expected_t = {"gender": 1, "hair": 1, "clothes": -1, "upwhite": 1, "downwhite": 1, "downbrown": -1}
    assert {n: int(t[schema.index(n)]) for n in expected_t} == expected_t
    assert int(tables["test"][3][schema.index("downbrown")]) == 1
    # At most one upper colour per identity; 78 training identities have none marked.
    up = [i for i, a in enumerate(schema) if a.group == "upper colour"]
    rows = np.stack(list(tables["train"].values()))
    per_identity = (rows[:, up] == 1).sum(axis=1)
    assert per_identity.max() == 1 and (per_identity == 0).sum() == 78


def test_real_duke_file(annotations_dir: Path) -> None:
    schema = load_schema("duke")
    tables = read_attribute_file(annotations_dir / "duke_attribute.mat", "duke_attribute", schema)
    assert (len(tables["train"]), len(tables["test"])) == (702, 1110)
    assert len(schema) == 23 and schema.names[0] == "backpack" and schema.names[-1] == "upwhite"
    a, b = tables["train"][1], tables["train"][8]
    # Identity 0370's "top" is 0 (not annotated) in the file: read as -1.
    assert tables["train"][370][schema.index("top")] == -1
    assert (a[schema.index("shoes")], b[schema.index("shoes")]) == (1, -1)
    assert (a[schema.index("top")], b[schema.index("top")]) == (-1, 1)
    t = tables["test"][4]
    assert (t[schema.index("boots")], t[schema.index("bag")], t[schema.index("upwhite")]) == (1, 1, 1)
    assert t[schema.index("handbag")] == -1 and tables["test"][2][schema.index("handbag")] == 1


def test_market_layout(market_root: Path) -> None:
    ds = load_market1501(market_root)
    schema = ds.schema
    assert [(r.pid, r.camid, r.frame) for r in ds.train] == [(2, 1, 451), (2, 2, 301), (7, 3, 1201)]
    assert [r.pid for r in ds.query] == [1, 3]
    # Junk (-1) is skipped; the distractor (0) is kept with every attribute at -1.
    assert sorted(r.pid for r in ds.gallery) == [0, 1, 3]
    distractor = next(r for r in ds.gallery if r.pid == 0)
    assert (distractor.attributes == -1).all()
    assert ds.train[0].attributes[schema.index("upred")] == 1
    assert ds.query[0].attributes[schema.index("gender")] == 1
    assert ds.summary()["gallery"] == {"images": 3, "identities": 3, "cameras": 3}
    assert Path(ds.train[0].path).is_file()


def test_duke_layout(duke_root: Path) -> None:
    ds = load_duke(duke_root)
    assert [(r.pid, r.camid, r.frame) for r in ds.train] == [(1, 2, 46182), (8, 1, 1)]
    assert ds.gallery[0].attributes[ds.schema.index("boots")] in (-1, 1)
    assert ds.query[0].attributes[ds.schema.index("handbag")] == 1


def test_name_parsers() -> None:
    assert parse_market_name("0002_c1s1_000451_03.jpg") == (2, 1, 451)
    assert parse_market_name("-1_c3s2_000001_01.jpg") == (-1, 3, 1)
    assert parse_duke_name("0005_c2_f0046985.jpg") == (5, 2, 46985)
    with pytest.raises(DatasetError, match="does not parse as market1501"):
        parse_market_name("0005_c2_f0046985.jpg")


def test_missing_folder_is_named(market_root: Path) -> None:
    shutil.rmtree(market_root / "query")
    with pytest.raises(DatasetError, match=r"missing folder 'query'"):
        load_market1501(market_root)
    with pytest.raises(DatasetError, match="dataset folder not found"):
        load_market1501(market_root / "nowhere")


def test_unparsable_file_name_is_named(market_root: Path) -> None:
    _touch(market_root / "query", ["person_7.jpg"])
    with pytest.raises(DatasetError, match=r"person_7\.jpg: file name does not parse"):
        load_market1501(market_root)


def test_unreadable_mat_is_refused(market_root: Path) -> None:
    (market_root / "market_attribute.mat").write_bytes(b"MATLAB 5.0 MAT-file, truncated")
    with pytest.raises(DatasetError, match="cannot read MATLAB attribute file"):
        load_market1501(market_root)
    (market_root / "market_attribute.mat").unlink()
    with pytest.raises(DatasetError, match="attribute file not found"):
        load_market1501(market_root)
    ds = load_market1501(market_root, require_attributes=False)
    assert ds.train[0].attributes.size == 0


def test_identity_without_attributes_is_named(market_root: Path) -> None:
    # 0005 is not a training identity of the annotation file.
    _touch(market_root / "bounding_box_train", ["0005_c1s1_000001_01.jpg"])
    with pytest.raises(DatasetError, match=r"0005_c1s1_000001_01\.jpg: identity 0005 has no attributes"):
        load_market1501(market_root)


def test_wrong_attribute_file_is_refused(market_root: Path, annotations_dir: Path) -> None:
    with pytest.raises(DatasetError, match="no struct 'market_attribute'"):
        load_market1501(market_root, attribute_file=annotations_dir / "duke_attribute.mat")


def test_bad_code_is_named(tmp_path: Path) -> None:
    import scipy.io

    schema = load_schema("market1501")
    split = {n: np.full((1, 2), 1, dtype=np.uint8) for n in schema.names}
    split["image_index"] = np.array([["0001", "0002"]], dtype=object)
    bad = dict(split, hat=np.array([[1, 3]], dtype=np.uint8))
    path = tmp_path / "market_attribute.mat"
    scipy.io.savemat(path, {"market_attribute": {"train": bad, "test": split}})
    with pytest.raises(DatasetError, match=r"market_attribute\.train\.hat has code 3 for identity 0002"):
        read_attribute_file(path, "market_attribute", schema)
