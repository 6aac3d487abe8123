"""A torch ``Dataset`` over :class:`~amd.data.records.Record` lists."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from PIL import Image
from torch.utils.data import Dataset as TorchDataset

from amd.data import images
from amd.data.records import Record
from amd.errors import DatasetError


def read_rgb(path: str) -> Image.Image:
    """Open an image as 8-bit RGB (:func:`amd.data.images.read_rgb`).

    Raises:
        DatasetError: The file cannot be decoded or is too large; the message names it.
    """
    try:
        return images.read_rgb(path)
    except images.ImageReadError as exc:
        raise DatasetError(str(exc)) from None


class ReidImageDataset(TorchDataset):
    """Items are dicts: ``image`` (3, H, W), ``label`` (class index or pid), ``camid``, ``attributes`` (M,), ``index``.

    Args:
        records: The crops.
        transform: PIL image -> tensor.
        label_map: pid -> class index (see :func:`amd.data.records.relabel`); pids are used as is without it.
    """

    def __init__(
        self,
        records: Sequence[Record],
        transform: Callable[[Image.Image], torch.Tensor],
        label_map: Mapping[int, int] | None = None,
    ) -> None:
        self.records = list(records)
        self.transform = transform
        self.label_map = label_map

    def __len__(self) -> int:
        return len(self.records)

    @property
    def pids(self) -> list[int]:
        return [r.pid for r in self.records]

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | int]:
        rec = self.records[index]
        image = self.transform(read_rgb(rec.path))
        label = self.label_map[rec.pid] if self.label_map is not None else rec.pid
        return {
            "image": image,
            "label": label,
            "camid": rec.camid,
            "attributes": torch.as_tensor(rec.attributes, dtype=torch.float32),
            "index": index,
        }
