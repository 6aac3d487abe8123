"""Loaders for the Market-1501 and DukeMTMC-reID layouts with their attribute annotation files.

Both layouts have three folders, ``bounding_box_train/`` (training), ``query/`` and
``bounding_box_test/`` (the gallery), and an identity-level attribute file
(``market_attribute.mat`` / ``duke_attribute.mat``) whose ``train`` struct labels the training
identities and whose ``test`` struct labels the query and gallery identities.

File names:

- Market-1501: ``PPPP_cCsS_FFFFFF_BB.jpg`` (identity, camera, sequence, frame, box);
- DukeMTMC-reID: ``PPPP_cC_fFFFFFFF.jpg`` (identity, camera, frame).

Identity -1 marks junk images, which are skipped; identity 0 marks distractors, which are kept
with every attribute at -1. Codes 1 / 2 of the attribute files map to -1 / +1; code 0 (not annotated, two
identities of DukeMTMC-reID's "top") maps to -1.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from amd.data.records import Dataset, Record
from amd.errors import DatasetError
from amd.schema import AttributeSchema, load_schema

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp"})
SPLIT_FOLDERS = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}
#: Which struct of the attribute file labels each split.
ATTRIBUTE_SPLIT = {"train": "train", "query": "test", "gallery": "test"}

MARKET_NAME = re.compile(r"^(-?\d+)_c(\d+)s(\d+)_(\d+)_(\d+)$")
DUKE_NAME = re.compile(r"^(-?\d+)_c(\d+)_f(\d+)$")


@dataclass(frozen=True)
class _Layout:
    name: str
    pattern: re.Pattern[str]
    frame_group: int
    example: str
    attribute_file: str
    mat_key: str
    schema: str


MARKET1501 = _Layout("market1501", MARKET_NAME, 4, "0002_c1s1_000451_03.jpg", "market_attribute.mat",
                     "market_attribute", "market1501")  # fmt: skip
DUKE = _Layout("duke", DUKE_NAME, 3, "0005_c2_f0046985.jpg", "duke_attribute.mat", "duke_attribute", "duke")


def parse_market_name(name: str) -> tuple[int, int, int]:
    """(pid, camid, frame) of a Market-1501 file name; raises :class:`DatasetError` if it does not parse."""
    return _parse(MARKET1501, name)


def parse_duke_name(name: str) -> tuple[int, int, int]:
    """(pid, camid, frame) of a DukeMTMC-reID file name; raises :class:`DatasetError` if it does not parse."""
    return _parse(DUKE, name)


def _parse(layout: _Layout, name: str) -> tuple[int, int, int]:
    m = layout.pattern.match(Path(name).stem)
    if m is None:
        raise DatasetError(
            f"{name}: file name does not parse as {layout.name} (expected e.g. {layout.example})"
        )
    return int(m.group(1)), int(m.group(2)), int(m.group(layout.frame_group))


def read_attribute_file(
    path: str | Path, key: str, schema: AttributeSchema
) -> dict[str, dict[int, np.ndarray]]:
    """Read an identity-level attribute ``.mat`` file.

    Args:
        path: ``market_attribute.mat`` or ``duke_attribute.mat`` (MATLAB v5).
        key: Name of the top-level struct (``"market_attribute"``).
        schema: The attributes to read, in the order of the returned vectors.

    Returns:
        ``{"train": {pid: vector}, "test": {pid: vector}}`` with int8 vectors (M,) in {-1, +1}.
        The two structs list their fields in different orders; vectors follow ``schema``.

    Raises:
        DatasetError: The file is missing or unreadable, or a struct, field or code is wrong.
    """
    import scipy.io

    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: attribute file not found")
    try:
        mat = scipy.io.loadmat(path)
    except Exception as exc:  # scipy raises many types (ValueError, TypeError, MatReadError) for bad files
        raise DatasetError(f"{path}: cannot read MATLAB attribute file ({exc})") from None
    if key not in mat:
        found = [k for k in mat if not k.startswith("__")]
        raise DatasetError(f"{path}: no struct {key!r} (found {found})")
    try:
        top = mat[key][0, 0]
    except (IndexError, TypeError, ValueError):
        raise DatasetError(f"{path}: {key!r} is not a struct") from None
    out: dict[str, dict[int, np.ndarray]] = {}
    for split in ("train", "test"):
        if top.dtype.names is None or split not in top.dtype.names:
            raise DatasetError(f"{path}: struct {key!r} has no {split!r} part")
        out[split] = _read_split(path, f"{key}.{split}", top[split][0, 0], schema)
    return out


def _read_split(path: Path, where: str, struct: np.ndarray, schema: AttributeSchema) -> dict[int, np.ndarray]:
    fields = struct.dtype.names or ()
    if "image_index" not in fields:
        raise DatasetError(f"{path}: {where} has no 'image_index' field")
    try:
        pids = [int(np.asarray(v).ravel()[0]) for v in struct["image_index"].ravel()]
    except (ValueError, IndexError):
        raise DatasetError(
            f"{path}: {where}.image_index holds entries that are not identity numbers"
        ) from None
    missing = [n for n in schema.names if n not in fields]
    if missing:
        raise DatasetError(f"{path}: {where} lacks attribute(s) {missing} of schema {schema.name!r}")
    columns = []
    for name in schema.names:
        codes = np.asarray(struct[name]).ravel()
        if codes.size != len(pids):
            raise DatasetError(f"{path}: {where}.{name} has {codes.size} values for {len(pids)} identities")
        # The published DukeMTMC-reID file leaves two training identities' "top" at 0 (not
        # annotated); they are read as -1 like "no", the reading that keeps them usable.
        bad = ~np.isin(codes, (0, 1, 2))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DatasetError(
                f"{path}: {where}.{name} has code {int(codes[i])} for identity {pids[i]:04d} (expected 1 or 2, or 0 for not annotated)"
            )
        columns.append(np.where(codes == 2, 1, -1).astype(np.int8))
    table = np.stack(columns, axis=1)
    return {pid: table[i] for i, pid in enumerate(pids)}


def _scan(folder: Path, layout: _Layout) -> list[tuple[str, int, int, int]]:
    """(path, pid, camid, frame) of every image in ``folder``, sorted by name."""
    names = sorted(
        e.name for e in os.scandir(folder) if e.is_file() and Path(e.name).suffix.lower() in IMAGE_SUFFIXES
    )
    out, bad = [], []
    for name in names:
        m = layout.pattern.match(Path(name).stem)
        if m is None:
            bad.append(name)
            continue
        out.append((str(folder / name), int(m.group(1)), int(m.group(2)), int(m.group(layout.frame_group))))
    if bad:
        more = f" and {len(bad) - 1} more" if len(bad) > 1 else ""
        raise DatasetError(
            f"{folder / bad[0]}{more}: file name does not parse as {layout.name} "
            f"(expected e.g. {layout.example})"
        )
    return out


def _load(
    layout: _Layout,
    root: str | Path,
    attribute_file: str | Path | None,
    schema: AttributeSchema | str | None,
    require_attributes: bool,
) -> Dataset:
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: dataset folder not found")
    for folder in SPLIT_FOLDERS.values():
        if not (root / folder).is_dir():
            raise DatasetError(
                f"{root}: missing folder {folder!r} (a {layout.name} dataset has "
                f"{', '.join(SPLIT_FOLDERS.values())})"
            )
    if not isinstance(schema, AttributeSchema):
        schema = load_schema(schema or layout.schema)
    mat_path = Path(attribute_file) if attribute_file is not None else root / layout.attribute_file
    tables: Mapping[str, Mapping[int, np.ndarray]] | None
    if mat_path.is_file() or require_attributes:
        tables = read_attribute_file(mat_path, layout.mat_key, schema)
    else:
        tables = None

    splits: dict[str, tuple[Record, ...]] = {}
    for split, folder in SPLIT_FOLDERS.items():
        lookup: Callable[[str, int], np.ndarray]
        if tables is None:
            empty = np.zeros(0, dtype=np.int8)

            def lookup(path: str, pid: int, _empty=empty) -> np.ndarray:
                return _empty
        else:
            table = tables[ATTRIBUTE_SPLIT[split]]

            def lookup(path: str, pid: int, _table=table, _split=split) -> np.ndarray:
                if pid == 0:
                    return np.full(len(schema), -1, dtype=np.int8)
                try:
                    return _table[pid]
                except KeyError:
                    raise DatasetError(
                        f"{path}: identity {pid:04d} has no attributes in {mat_path.name} "
                        f"(struct {ATTRIBUTE_SPLIT[_split]!r})"
                    ) from None

        records = [
            Record(path=p, pid=pid, camid=cam, attributes=lookup(p, pid), frame=frame)
            for p, pid, cam, frame in _scan(root / folder, layout)
            if pid != -1
        ]
        splits[split] = tuple(records)
    return Dataset(name=layout.name, schema=schema, **splits)


def load_market1501(
    root: str | Path,
    attribute_file: str | Path | None = None,
    schema: AttributeSchema | str | None = None,
    require_attributes: bool = True,
) -> Dataset:
    """Load a Market-1501 layout.

    Args:
        root: Folder holding ``bounding_box_train/``, ``query/`` and ``bounding_box_test/``.
        attribute_file: The attribute file; defaults to ``root/market_attribute.mat``.
        schema: Schema (or its name / file) giving the attribute order; default the built-in 26.
        require_attributes: When False and the attribute file is absent, records get empty
            attribute vectors instead of an error.

    Raises:
        DatasetError: Missing folder, unreadable attribute file, a file name that does not parse,
            or an identity with no attributes; the message names the path.
    """
    return _load(MARKET1501, root, attribute_file, schema, require_attributes)


def load_duke(
    root: str | Path,
    attribute_file: str | Path | None = None,
    schema: AttributeSchema | str | None = None,
    require_attributes: bool = True,
) -> Dataset:
    """Load a DukeMTMC-reID layout (``duke_attribute.mat``, 23 attributes); see :func:`load_market1501`."""
    return _load(DUKE, root, attribute_file, schema, require_attributes)
