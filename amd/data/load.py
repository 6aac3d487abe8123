"""One entry point for every dataset layout: ``load_dataset(root, "market1501" | "duke" | "csv")``."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable
from pathlib import Path

from amd.data.images import ImageWarning, describe_unreadable, find_unreadable
from amd.data.records import Dataset
from amd.errors import DatasetError
from amd.schema import AttributeSchema

FORMATS: tuple[str, ...] = ("market1501", "duke", "csv")
SPLITS: tuple[str, ...] = ("train", "query", "gallery")


def load_dataset(
    root: str | Path,
    fmt: str,
    schema: AttributeSchema | str | None = None,
    attributes: str | Path | None = None,
    require_attributes: bool = True,
    check_images: bool = True,
    on_progress: Callable[[int, int], None] | None = None,
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
        check_images: Decode every image first and leave out those that cannot be decoded
            (:func:`leave_out_unreadable`), so that a run does not stop at the first one.
        on_progress: Receives (images checked, images in all) while checking.

    Warns:
        ImageWarning: Some images cannot be decoded and were left out (the count and the first paths).

    Raises:
        DatasetError: The dataset cannot be used, or every image of a split cannot be decoded.
    """
    if fmt == "market1501":
        from amd.data.market import load_market1501

        ds = load_market1501(root, attributes, schema, require_attributes)
    elif fmt == "duke":
        from amd.data.market import load_duke

        ds = load_duke(root, attributes, schema, require_attributes)
    elif fmt == "csv":
        from amd.data.csv_layout import load_csv_dataset

        ds = load_csv_dataset(root, schema=schema, attributes_path=attributes)
    else:
        raise DatasetError(f"unknown dataset format {fmt!r} (use one of {', '.join(FORMATS)})")
    return leave_out_unreadable(ds, root, on_progress, stacklevel=3) if check_images else ds


def leave_out_unreadable(
    dataset: Dataset,
    where: str | Path,
    on_progress: Callable[[int, int], None] | None = None,
    stacklevel: int = 2,
) -> Dataset:
    """The dataset without the records whose image cannot be decoded, listed in its ``unreadable``.

    Every image is decoded once (:func:`amd.data.images.find_unreadable`, on a few threads): about
    0.6 ms per 256x128 person crop on two cores. A query or gallery record whose image is left out is simply not part of
    the protocol: queries are matched against the gallery that remains.

    Args:
        dataset: The loaded dataset.
        where: The dataset's folder, for messages.
        on_progress: Receives (images checked, images in all).
        stacklevel: Of the warning (2: the caller of this function).

    Warns:
        ImageWarning: One warning for all the images left out.

    Raises:
        DatasetError: A split that had images has none that can be decoded.
    """
    paths = [r.path for split in SPLITS for r in dataset.split(split)]
    bad = find_unreadable(paths, on_progress=on_progress)
    if not bad:
        return dataset
    kept = {}
    for split in SPLITS:
        records = dataset.split(split)
        kept[split] = tuple(r for r in records if r.path not in bad)
        if records and not kept[split]:
            first = records[0].path
            raise DatasetError(
                f"{where}: none of the {len(records):,} {split} images can be decoded "
                f"(the first, {first}: {bad[first]})"
            )
    warnings.warn(describe_unreadable(bad, len(set(paths))), ImageWarning, stacklevel=stacklevel)
    return dataclasses.replace(dataset, **kept, unreadable=tuple(bad.items()))
