"""The plain records every dataset loader yields."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from amd.schema import AttributeSchema


@dataclass(frozen=True)
class Record:
    """One person crop.

    Attributes:
        path: Image file path (absolute, or as given by the dataset's index).
        pid: Identity; 0 is a distractor (all attributes -1), junk (-1) is never yielded.
        camid: Camera number as in the file name (1-based for Market-1501 and DukeMTMC-reID).
        attributes: Attribute vector in {-1, +1}, int8 array (M,), in the schema's order.
        frame: Frame number when the layout records one, else -1.
        timestamp: Free-form time string from a CSV index, else ``None``.
    """

    path: str
    pid: int
    camid: int
    attributes: np.ndarray = field(compare=False)
    frame: int = -1
    timestamp: str | None = None


@dataclass(frozen=True)
class Dataset:
    """Train, query and gallery records sharing one attribute schema.

    ``schema`` is ``None`` for data without attribute labels; records then carry empty vectors.
    ``unreadable`` lists the (path, reason) of the images left out of the splits because they cannot be
    decoded (see :func:`amd.data.load.load_dataset`).
    """

    name: str
    schema: AttributeSchema | None
    train: tuple[Record, ...]
    query: tuple[Record, ...]
    gallery: tuple[Record, ...]
    unreadable: tuple[tuple[str, str], ...] = ()

    def split(self, name: str) -> tuple[Record, ...]:
        if name not in ("train", "query", "gallery"):
            raise ValueError(f"unknown split {name!r}")
        return getattr(self, name)

    def summary(self) -> dict[str, dict[str, int]]:
        """Images, identities and cameras per split."""
        out = {}
        for split in ("train", "query", "gallery"):
            recs = self.split(split)
            out[split] = {
                "images": len(recs),
                "identities": len({r.pid for r in recs}),
                "cameras": len({r.camid for r in recs}),
            }
        return out


def relabel(records: Sequence[Record]) -> dict[int, int]:
    """Map the identities of ``records`` to contiguous class labels 0..P-1 (sorted by pid)."""
    return {pid: i for i, pid in enumerate(sorted({r.pid for r in records}))}
