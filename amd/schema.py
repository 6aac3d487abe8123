"""Attribute schemas: which binary attributes a model explains, in which order, and how to name them.

A schema is data, not code. The built-in schemas (Market-1501 and DukeMTMC-reID) live as JSON
files under ``resources/schemas/``; users load their own from JSON or CSV.

JSON layout::

    {"name": "market1501", "version": 1,
     "attributes": [{"name": "backpack", "label": "backpack", "negative": "no backpack",
                     "group": "carried", "positive_rate": 0.19}, ...]}

CSV layout: a header row with ``name`` and optionally ``label``, ``negative``, ``group``,
``positive_rate``; one attribute per row, in the model's order.

An attribute vector is a sequence of M values in {-1, +1}, in schema order; +1 means the
attribute's ``label`` holds ("long hair"), -1 that its ``negative`` holds ("short hair").
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from amd.errors import SchemaError
from amd.resources import resource_path

#: The groups that attributes fall into; the GUI colours and filters by group.
GROUPS: tuple[str, ...] = ("person", "clothing", "carried", "upper colour", "lower colour", "other")

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")

BUILTIN_SCHEMAS: tuple[str, ...] = ("market1501", "duke")


@dataclass(frozen=True)
class Attribute:
    """One binary attribute.

    Attributes:
        name: Identifier used in annotation files (``"hair"``).
        label: What +1 means, readable (``"long hair"``).
        negative: What -1 means, readable (``"short hair"``).
        group: One of :data:`GROUPS`.
        positive_rate: Fraction of training identities with +1, or ``None`` when unknown.
    """

    name: str
    label: str
    negative: str
    group: str = "other"
    positive_rate: float | None = None


@dataclass(frozen=True)
class AttributeSchema:
    """An ordered set of attributes; the order is the order of the model's outputs."""

    name: str
    attributes: tuple[Attribute, ...]
    version: int = 1
    _index: Mapping[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _validate(self.name, self.attributes, source=f"schema {self.name!r}")
        object.__setattr__(self, "_index", {a.name: i for i, a in enumerate(self.attributes)})

    def __len__(self) -> int:
        return len(self.attributes)

    def __iter__(self):
        return iter(self.attributes)

    def __getitem__(self, key: int | str) -> Attribute:
        if isinstance(key, str):
            return self.attributes[self.index(key)]
        return self.attributes[key]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.attributes)

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(a.label for a in self.attributes)

    def index(self, name: str) -> int:
        """Position of attribute ``name``; raises :class:`SchemaError` for an unknown name."""
        try:
            return self._index[name]
        except KeyError:
            raise SchemaError(f"schema {self.name!r} has no attribute {name!r}") from None

    def group_indices(self) -> dict[str, list[int]]:
        """Map each group present in the schema to the positions of its attributes."""
        out: dict[str, list[int]] = {}
        for i, a in enumerate(self.attributes):
            out.setdefault(a.group, []).append(i)
        return out

    def positive_rates(self, default: float = 0.5) -> np.ndarray:
        """Positive rates as a float array (M,); unknown rates become ``default``."""
        return np.array(
            [default if a.positive_rate is None else a.positive_rate for a in self.attributes],
            dtype=np.float64,
        )

    def describe(self, vector: Sequence[float]) -> list[str]:
        """Readable words for an attribute vector in {-1, +1}: the label or the negative of each."""
        if len(vector) != len(self):
            raise SchemaError(f"vector of length {len(vector)} for schema {self.name!r} of {len(self)}")
        return [a.label if v > 0 else a.negative for a, v in zip(self.attributes, vector, strict=True)]

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "version": self.version,
            "attributes": [
                {
                    "name": a.name,
                    "label": a.label,
                    "negative": a.negative,
                    "group": a.group,
                    "positive_rate": a.positive_rate,
                }
                for a in self.attributes
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping, source: str = "schema") -> AttributeSchema:
        """Build a schema from its JSON form; every problem is reported with ``source``."""
        if not isinstance(data, Mapping):
            raise SchemaError(f"{source}: expected a JSON object, got {type(data).__name__}")
        items = data.get("attributes")
        if not isinstance(items, list) or not items:
            raise SchemaError(f"{source}: 'attributes' must be a non-empty list")
        version = data.get("version", 1)
        if not isinstance(version, int) or version < 1:
            raise SchemaError(f"{source}: 'version' must be a positive integer")
        attrs = [
            _attribute_from_mapping(item, f"{source}, attribute {i + 1}") for i, item in enumerate(items)
        ]
        name = data.get("name", "custom")
        if not isinstance(name, str) or not name:
            raise SchemaError(f"{source}: 'name' must be a non-empty string")
        _validate(name, attrs, source)
        return cls(name=name, attributes=tuple(attrs), version=version)

    def save_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")


def _attribute_from_mapping(item: object, where: str) -> Attribute:
    if not isinstance(item, Mapping):
        raise SchemaError(f"{where}: expected an object with at least a 'name'")
    name = item.get("name")
    if not isinstance(name, str) or not name.strip():
        raise SchemaError(f"{where}: missing or empty 'name'")
    name = name.strip()
    label = item.get("label") or name
    negative = item.get("negative") or f"no {label}"
    group = item.get("group") or "other"
    for key, value in (("label", label), ("negative", negative), ("group", group)):
        if not isinstance(value, str):
            raise SchemaError(f"{where} ({name}): '{key}' must be a string")
    rate = item.get("positive_rate")
    if rate is not None and rate != "":
        try:
            rate = float(rate)
        except (TypeError, ValueError):
            raise SchemaError(f"{where} ({name}): positive_rate {rate!r} is not a number") from None
    else:
        rate = None
    return Attribute(name=name, label=label, negative=negative, group=group, positive_rate=rate)


def _validate(name: str, attributes: Iterable[Attribute], source: str) -> None:
    attributes = list(attributes)
    if not attributes:
        raise SchemaError(f"{source}: a schema needs at least one attribute")
    seen: set[str] = set()
    for a in attributes:
        if not _NAME_RE.match(a.name):
            raise SchemaError(f"{source}: attribute name {a.name!r} must be letters, digits, '_' or '-'")
        if a.name in seen:
            raise SchemaError(f"{source}: attribute {a.name!r} appears twice")
        seen.add(a.name)
        if a.group not in GROUPS:
            raise SchemaError(
                f"{source}: attribute {a.name!r} has unknown group {a.group!r} (use one of {GROUPS})"
            )
        if a.positive_rate is not None and not 0.0 <= a.positive_rate <= 1.0:
            raise SchemaError(
                f"{source}: attribute {a.name!r} has positive_rate {a.positive_rate} outside [0, 1]"
            )


def load_schema(spec: str | Path) -> AttributeSchema:
    """Load a schema by built-in name (``"market1501"``, ``"duke"``) or from a JSON or CSV file.

    Raises:
        SchemaError: The file is missing, unreadable or malformed; the message names the file.
    """
    key = str(spec)
    if key in BUILTIN_SCHEMAS:
        return load_schema(resource_path("schemas", f"{key}.json"))
    path = Path(spec)
    if not path.is_file():
        raise SchemaError(f"{path}: no such schema file (built-in schemas: {', '.join(BUILTIN_SCHEMAS)})")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SchemaError(f"{path}: cannot read schema file ({exc})") from None
    suffix = path.suffix.lower()
    if suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SchemaError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
        return AttributeSchema.from_dict(data, source=str(path))
    if suffix == ".csv":
        return _schema_from_csv(text, path)
    raise SchemaError(f"{path}: a schema file must end in .json or .csv")


def _schema_from_csv(text: str, path: Path) -> AttributeSchema:
    rows = list(csv.DictReader(text.splitlines()))
    if not rows:
        raise SchemaError(f"{path}: empty CSV (expected a header with 'name' and one row per attribute)")
    header = [h.strip() for h in (rows[0].keys())]
    if "name" not in header:
        raise SchemaError(f"{path}: the CSV header must have a 'name' column, found {header}")
    items = [{(k or "").strip(): (v or "").strip() for k, v in row.items()} for row in rows]
    return AttributeSchema.from_dict({"name": path.stem, "attributes": items}, source=str(path))


def schema_from_names(names: Sequence[str], name: str = "custom") -> AttributeSchema:
    """A schema with default labels for attribute columns found in a CSV dataset."""
    return AttributeSchema.from_dict({"name": name, "attributes": [{"name": n} for n in names]}, source=name)
