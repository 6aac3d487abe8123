"""The generic layout for the user's own data: a folder of images and a CSV index.

The index (default ``ROOT/index.csv``) has one row per image:

=========== ======== =====================================================================
column      required meaning
=========== ======== =====================================================================
path        yes      image path, relative to ROOT (or absolute)
identity    yes      identity: an integer, or any name (names get numbers 1, 2, ... in sorted order)
camera      yes      camera: an integer, or any name (numbered the same way)
timestamp   no       free-form time string, kept as is
split       no       ``train``, ``query`` or ``gallery`` (``test`` means gallery); default ``train``
<attribute> no       one column per attribute of the schema: -1/+1, 0/1, no/yes, false/true
=========== ======== =====================================================================

Attributes can instead come per identity, from ``ROOT/attributes.csv`` (an ``identity`` column
and one column per attribute) or ``ROOT/attributes.json`` (``{"identity": {"attr": value}}``).
Identity ``-1`` rows are junk and skipped; identity ``0`` is a distractor (all attributes -1).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from amd.data.records import Dataset, Record
from amd.errors import DatasetError
from amd.schema import AttributeSchema, load_schema, schema_from_names

REQUIRED = ("path", "identity", "camera")
KNOWN = (*REQUIRED, "timestamp", "split")
_TRUE = {"1", "+1", "yes", "true", "y", "t"}
_FALSE = {"-1", "0", "no", "false", "n", "f"}
_SPLITS = {"train": "train", "query": "query", "gallery": "gallery", "test": "gallery"}


def parse_attribute_value(value: object, where: str) -> int:
    """Read one attribute value as -1 or +1; raises :class:`DatasetError` naming ``where``."""
    text = str(value).strip().lower()
    if isinstance(value, bool):
        return 1 if value else -1
    if text in _TRUE:
        return 1
    if text in _FALSE:
        return -1
    raise DatasetError(f"{where}: attribute value {value!r} is not one of -1/+1, 0/1, no/yes, false/true")


def _number_names(values: Iterable[str], what: str, path: Path) -> dict[str, int]:
    """Map identity or camera names to integers: integers stay, other names are numbered 1.. in order."""
    values = sorted(set(values))
    try:
        return {v: int(v) for v in values}
    except ValueError:
        if what == "identity" and any(v in ("-1", "0") for v in values):
            raise DatasetError(
                f"{path}: identities mix numbers and names; use numbers only when -1 (junk) or 0 (distractor) appear"
            ) from None
        return {v: i + 1 for i, v in enumerate(values)}


def _read_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DatasetError(f"{path}: index file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read the file ({exc})") from None
    reader = csv.DictReader(text.splitlines())
    header = [h.strip() for h in (reader.fieldnames or [])]
    rows = [{(k or "").strip(): (v or "").strip() for k, v in row.items() if k is not None} for row in reader]
    return header, rows


def _identity_attributes(
    root: Path, attributes_path: Path | None, schema: AttributeSchema | None
) -> tuple[dict[str, dict[str, str]], list[str]]:
    """Per-identity attribute table {identity name: {attribute: value}} and the attribute names in file order."""
    if attributes_path is None:
        for candidate in (root / "attributes.csv", root / "attributes.json"):
            if candidate.is_file():
                attributes_path = candidate
                break
        else:
            return {}, []
    if attributes_path.suffix.lower() == ".json":
        try:
            data = json.loads(attributes_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DatasetError(f"{attributes_path}: cannot read attribute JSON ({exc})") from None
        if not isinstance(data, Mapping) or not all(isinstance(v, Mapping) for v in data.values()):
            raise DatasetError(f"{attributes_path}: expected an object {{identity: {{attribute: value}}}}")
        names: list[str] = []
        for values in data.values():
            names.extend(n for n in values if n not in names)
        return {str(k): {n: str(v) for n, v in vals.items()} for k, vals in data.items()}, names
    header, rows = _read_rows(attributes_path)
    if "identity" not in header:
        raise DatasetError(f"{attributes_path}: needs an 'identity' column, found {header}")
    names = [h for h in header if h != "identity"]
    return {row["identity"]: row for row in rows}, names


def load_csv_dataset(
    root: str | Path,
    csv_path: str | Path | None = None,
    schema: AttributeSchema | str | None = None,
    attributes_path: str | Path | None = None,
    check_files: bool = True,
) -> Dataset:
    """Load a folder of images indexed by a CSV file.

    Args:
        root: The image folder; relative paths in the index are relative to it.
        csv_path: The index; defaults to ``root/index.csv``.
        schema: The attribute schema (object, built-in name or file). Without one, the attribute
            columns of the index (or of the per-identity file) define a schema in column order.
        attributes_path: Per-identity attributes (CSV or JSON); defaults to ``root/attributes.csv``
            or ``root/attributes.json`` when present.
        check_files: Check that every listed image exists.

    Raises:
        DatasetError: Missing index or column, an unknown split, a missing image, a bad attribute
            value, or an identity with no attributes; the message names the file and line.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: dataset folder not found")
    index = Path(csv_path) if csv_path is not None else root / "index.csv"
    header, rows = _read_rows(index)
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise DatasetError(f"{index}: missing column(s) {missing} (found {header})")
    per_identity, identity_columns = _identity_attributes(
        root, Path(attributes_path) if attributes_path is not None else None, None
    )
    row_columns = [h for h in header if h not in KNOWN]
    if schema is None:
        names = row_columns or identity_columns
        schema_obj = schema_from_names(names, name=index.stem) if names else None
    elif isinstance(schema, AttributeSchema):
        schema_obj = schema
    else:
        schema_obj = load_schema(schema)
    if schema_obj is not None:
        unknown = [c for c in row_columns if c not in schema_obj.names]
        if unknown:
            raise DatasetError(
                f"{index}: column(s) {unknown} are neither known columns nor attributes of the schema"
            )

    pid_of = _number_names((r["identity"] for r in rows), "identity", index)
    cam_of = _number_names((r["camera"] for r in rows), "camera", index)
    splits: dict[str, list[Record]] = {"train": [], "query": [], "gallery": []}
    m = len(schema_obj) if schema_obj is not None else 0
    for line, row in enumerate(rows, start=2):
        where = f"{index}, line {line}"
        if not row.get("path"):
            raise DatasetError(f"{where}: empty path")
        split = _SPLITS.get((row.get("split") or "train").lower())
        if split is None:
            raise DatasetError(f"{where}: unknown split {row.get('split')!r} (train, query or gallery)")
        pid = pid_of[row["identity"]]
        if pid == -1:
            continue
        path = Path(row["path"])
        path = path if path.is_absolute() else root / path
        if check_files and not path.is_file():
            raise DatasetError(f"{where}: image {path} not found")
        attrs = _row_attributes(row, row_columns, per_identity, schema_obj, pid, where) if m else None
        splits[split].append(
            Record(
                path=str(path),
                pid=pid,
                camid=cam_of[row["camera"]],
                attributes=attrs if attrs is not None else np.zeros(0, dtype=np.int8),
                timestamp=row.get("timestamp") or None,
            )
        )
    return Dataset(
        name=index.stem,
        schema=schema_obj,
        train=tuple(splits["train"]),
        query=tuple(splits["query"]),
        gallery=tuple(splits["gallery"]),
    )


def _row_attributes(
    row: Mapping[str, str],
    row_columns: Sequence[str],
    per_identity: Mapping[str, Mapping[str, str]],
    schema: AttributeSchema,
    pid: int,
    where: str,
) -> np.ndarray:
    if pid == 0:
        return np.full(len(schema), -1, dtype=np.int8)
    source: Mapping[str, str] | None = None
    if row_columns and any(row.get(c) for c in row_columns):
        source = row
    elif row["identity"] in per_identity:
        source = per_identity[row["identity"]]
    if source is None:
        raise DatasetError(f"{where}: identity {row['identity']!r} has no attributes")
    values = []
    for name in schema.names:
        if name not in source or source[name] in ("", None):
            raise DatasetError(f"{where}: identity {row['identity']!r} has no value for attribute {name!r}")
        values.append(parse_attribute_value(source[name], f"{where}, attribute {name!r}"))
    return np.array(values, dtype=np.int8)
