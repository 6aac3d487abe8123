"""One entry point for every dataset layout: ``load_dataset(root, "market1501" | "duke" | "csv")``."""

from __future__ import annotations

from pathlib import Path

from amd.data.records import Dataset
from amd.errors import DatasetError
from amd.schema import AttributeSchema

FORMATS: tuple[str, ...] = ("market1501", "duke", "csv")


def load_dataset(
    root: str | Path,
    fmt: str,
    schema: AttributeSchema | str | None = None,
    attributes: str | Path | None = None,
    require_attributes: bool = True,
) -> Dataset:
    """Load ``root`` in layout ``fmt``.

    Args:
        root: Dataset folder.
        fmt: ``market1501``, ``duke`` or ``csv``.
        schema: Attribute schema (object, built-in name or file); each layout has its default.
        attributes: Attribute file: the ``.mat`` file for Market-1501 / DukeMTMC-reID, the
            per-identity CSV/JSON file for the CSV layout.
        require_attributes: For Market-1501 / DukeMTMC-reID, refuse a dataset without its
            attribute file (default) or load it with empty attribute vectors.
    """
    if fmt == "market1501":
        from amd.data.market import load_market1501

        return load_market1501(root, attributes, schema, require_attributes)
    if fmt == "duke":
        from amd.data.market import load_duke

        return load_duke(root, attributes, schema, require_attributes)
    if fmt == "csv":
        from amd.data.csv_layout import load_csv_dataset

        return load_csv_dataset(root, schema=schema, attributes_path=attributes)
    raise DatasetError(f"unknown dataset format {fmt!r} (use one of {', '.join(FORMATS)})")
