from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from amd.errors import SchemaError
from amd.schema import GROUPS, AttributeSchema, load_schema

MARKET = ("backpack bag clothes down downblack downblue downbrown downgray downgreen downpink downpurple "
          "downwhite downyellow gender hair handbag hat up upblack upblue upgray upgreen uppurple upred "
          "upwhite upyellow").split()  # fmt: skip
DUKE = ("backpack bag boots downblack downblue downbrown downgray downgreen downred downwhite gender handbag "
        "hat shoes top upblack upblue upbrown upgray upgreen uppurple upred upwhite").split()  # fmt: skip


def test_builtin_schemas_have_the_reference_order_and_labels() -> None:
    market, duke = load_schema("market1501"), load_schema("duke")
    assert list(market.names) == MARKET and list(duke.names) == DUKE
    assert market["hair"].label == "long hair" and market["hair"].negative == "short hair"
    assert market["upred"].label == "upper: red" and market["upred"].group == "upper colour"
    assert market["up"].label == "short sleeves" and market["gender"].label == "female"
    assert duke["downgray"].label == "lower: grey"
    assert set(market.group_indices()) == {"person", "clothing", "carried", "upper colour", "lower colour"}
    assert all(a.group in GROUPS for a in duke)


def test_positive_rates_come_from_the_training_identities(annotations_dir: Path) -> None:
    import scipy.io

    train = scipy.io.loadmat(annotations_dir / "market_attribute.mat")["market_attribute"][0, 0]["train"][
        0, 0
    ]
    schema = load_schema("market1501")
    expected = np.array([(train[n].ravel() == 2).mean() for n in schema.names])
    np.testing.assert_allclose(schema.positive_rates(), expected, atol=5e-5)
    assert 0.0 < schema["backpack"].positive_rate < 0.5


def test_describe_and_round_trip(tmp_path: Path) -> None:
    schema = load_schema("market1501")
    vector = -np.ones(len(schema))
    vector[schema.index("hat")] = 1
    words = schema.describe(vector)
    assert words[schema.index("hat")] == "hat" and words[schema.index("hair")] == "short hair"
    path = tmp_path / "s.json"
    schema.save_json(path)
    assert load_schema(path) == schema


def test_custom_csv_schema(tmp_path: Path) -> None:
    path = tmp_path / "mine.csv"
    path.write_text(
        "name,label,negative,group,positive_rate\nmask,face mask,no mask,clothing,0.2\numbrella,,,carried,\n"
    )
    schema = load_schema(path)
    assert schema.name == "mine" and schema.names == ("mask", "umbrella")
    assert schema["umbrella"].label == "umbrella" and schema["umbrella"].negative == "no umbrella"
    np.testing.assert_allclose(schema.positive_rates(), [0.2, 0.5])


@pytest.mark.parametrize(
    ("suffix", "content", "message"),
    [
        (".json", "{not json", r"not valid JSON \(line 1"),
        (".json", '{"attributes": []}', "'attributes' must be a non-empty list"),
        (".json", '{"attributes": [{"label": "x"}]}', "attribute 1: missing or empty 'name'"),
        (".json", '{"attributes": [{"name": "a"}, {"name": "a"}]}', "attribute 'a' appears twice"),
        (".json", '{"attributes": [{"name": "a", "group": "weather"}]}', "unknown group 'weather'"),
        (
            ".json",
            '{"attributes": [{"name": "a", "positive_rate": 2}]}',
            r"positive_rate 2.0 outside \[0, 1\]",
        ),
        (".csv", "label,group\nx,person\n", "must have a 'name' column"),
        (".csv", "name\nbad name\n", "must be letters, digits"),
        (".yaml", "name: x", r"must end in \.json or \.csv"),
    ],
)
def test_malformed_schema_files_are_refused(tmp_path: Path, suffix: str, content: str, message: str) -> None:
    path = tmp_path / f"schema{suffix}"
    path.write_text(content)
    with pytest.raises(SchemaError, match=message):
        load_schema(path)


def test_unknown_schema_and_attribute() -> None:
    with pytest.raises(SchemaError, match="no such schema file"):
        load_schema("nonexistent")
    with pytest.raises(SchemaError, match="has no attribute 'wings'"):
        load_schema("duke").index("wings")
    with pytest.raises(SchemaError):
        AttributeSchema(name="x", attributes=())


def test_schema_json_is_as_shipped() -> None:
    from amd.resources import resource_path

    data = json.loads(resource_path("schemas", "market1501.json").read_text())
    assert data["version"] == 1 and len(data["attributes"]) == 26
