from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from amd.data.csv_layout import load_csv_dataset, parse_attribute_value
from amd.errors import DatasetError


def _images(root: Path, names: list[str]) -> None:
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (32, 64), (120, 30, 30)).save(root / name)


def test_index_with_attribute_columns(tmp_path: Path) -> None:
    _images(tmp_path, ["a/1.jpg", "a/2.jpg", "b/1.jpg", "c/1.jpg"])
    (tmp_path / "index.csv").write_text(
        "path,identity,camera,timestamp,split,hat,backpack\n"
        "a/1.jpg,alice,cam2,2024-01-01T10:00:00,train,yes,0\n"
        "a/2.jpg,alice,cam1,,train,yes,0\n"
        "b/1.jpg,bob,cam1,,query,-1,+1\n"
        "c/1.jpg,carol,cam2,,test,false,true\n"
    )
    ds = load_csv_dataset(tmp_path)
    assert ds.schema.names == ("hat", "backpack")
    assert [r.pid for r in ds.train] == [1, 1] and ds.query[0].pid == 2 and ds.gallery[0].pid == 3
    assert [r.camid for r in ds.train] == [2, 1]
    assert ds.train[0].timestamp == "2024-01-01T10:00:00" and ds.train[1].timestamp is None
    np.testing.assert_array_equal(ds.train[0].attributes, [1, -1])
    np.testing.assert_array_equal(ds.query[0].attributes, [-1, 1])
    np.testing.assert_array_equal(ds.gallery[0].attributes, [-1, 1])
    assert Path(ds.train[0].path) == tmp_path / "a/1.jpg"


def test_per_identity_attributes_and_builtin_schema(tmp_path: Path) -> None:
    _images(tmp_path, ["1.jpg", "2.jpg", "3.jpg", "4.jpg"])
    (tmp_path / "index.csv").write_text("path,identity,camera\n1.jpg,7,1\n2.jpg,7,2\n3.jpg,0,1\n4.jpg,-1,1\n")
    from amd.schema import load_schema

    schema = load_schema("market1501")
    values = {n: 0 for n in schema.names} | {"hat": 1, "upred": 1}
    (tmp_path / "attributes.json").write_text(json.dumps({"7": values}))
    ds = load_csv_dataset(tmp_path, schema="market1501")
    assert [r.pid for r in ds.train] == [7, 7, 0]  # junk (-1) skipped
    v = ds.train[0].attributes
    assert v[schema.index("hat")] == 1 and v[schema.index("upred")] == 1 and (v == 1).sum() == 2
    assert (ds.train[2].attributes == -1).all()


def test_unlabelled_data_has_no_schema(tmp_path: Path) -> None:
    _images(tmp_path, ["1.jpg"])
    (tmp_path / "index.csv").write_text("path,identity,camera\n1.jpg,1,1\n")
    ds = load_csv_dataset(tmp_path)
    assert ds.schema is None and ds.train[0].attributes.size == 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("path,identity\n1.jpg,1\n", r"missing column\(s\) \['camera'\]"),
        ("path,identity,camera\nnope.jpg,1,1\n", r"line 2: image .*nope\.jpg not found"),
        ("path,identity,camera,split\n1.jpg,1,1,validation\n", r"line 2: unknown split 'validation'"),
        ("path,identity,camera,hat\n1.jpg,1,1,maybe\n", r"line 2, attribute 'hat': attribute value 'maybe'"),
        ("path,identity,camera,hat\n1.jpg,1,1,1\n1.jpg,2,1,\n", r"line 3: identity '2' has no attributes"),
    ],
)
def test_bad_index_is_explained(tmp_path: Path, content: str, message: str) -> None:
    _images(tmp_path, ["1.jpg"])
    (tmp_path / "index.csv").write_text(content)
    with pytest.raises(DatasetError, match=message):
        load_csv_dataset(tmp_path)


def test_missing_index_and_unknown_column(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"index\.csv: index file not found"):
        load_csv_dataset(tmp_path)
    _images(tmp_path, ["1.jpg"])
    (tmp_path / "index.csv").write_text("path,identity,camera,colour\n1.jpg,1,1,1\n")
    with pytest.raises(DatasetError, match=r"\['colour'\] are neither known columns nor attributes"):
        load_csv_dataset(tmp_path, schema="market1501")


def test_attribute_values() -> None:
    assert [parse_attribute_value(v, "x") for v in ("1", "+1", "yes", "TRUE", "-1", "0", "no", False)] == [
        1, 1, 1, 1, -1, -1, -1, -1,
    ]  # fmt: skip
