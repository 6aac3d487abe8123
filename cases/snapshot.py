"""The explanation of a compared pair as a case keeps it: plain JSON data, enough to redraw everything.

A snapshot is what the analyst saw, frozen at the moment the pair was filed: the target distance,
one component and share per attribute, the attribute names and labels, the predicted attributes of
both crops, and the attention maps. Reports and case files draw overlays and charts from it
without the models.

Layout (format ``amd-explanation``, version 1)::

    {"format": "amd-explanation", "version": 1,
     "distance": d, "sum_of_components": s, "gap": g,
     "attributes": [{"index": m, "name": ..., "label": ..., "distance": d_m, "component": c_m,
                     "share": p_m, "predicted_query": q_m | null, "predicted_gallery": q_m | null},
                    ...],                  # sorted by share, largest first (index: schema order)
     "maps": {"encoding": "uint8-zlib-base64",
              "query": {"shape": [M, h, w], "crop_size": [H, W], "data": "..."},
              "gallery": {...}, "low": [M], "high": [M]}}

Maps are stored compactly: each crop's maps are area-averaged down to fit :data:`MAP_BOX`
(64 x 32; the interpreter's own maps are 16 x 8 cells, so nothing visible is lost) and quantised to
uint8 per attribute over both crops (``low``/``high`` give that attribute's range), which keeps the
common scale that pair overlays use. A snapshot of 26 attributes takes about 30 KB.

Snapshots written before this layout (``distance``, ``sum_of_components``, ``gap`` and
``attributes`` only) decode too, without maps and predictions.
"""

from __future__ import annotations

import base64
import math
import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from cases.errors import SnapshotError
from db.models import SIDES

if TYPE_CHECKING:
    from amd.explain import Explanation

FORMAT = "amd-explanation"
VERSION = 1
#: Largest stored map size (height, width).
MAP_BOX = (64, 32)


def _shrink(maps: np.ndarray) -> np.ndarray:
    """(M, H, W) -> (M, h, w) float32, area-averaged to fit :data:`MAP_BOX`."""
    m, h, w = maps.shape
    scale = min(1.0, MAP_BOX[0] / h, MAP_BOX[1] / w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    if size == (w, h):
        return np.asarray(maps, dtype=np.float32)
    out = [
        np.asarray(Image.fromarray(np.asarray(x, dtype=np.float32), "F").resize(size, Image.Resampling.BOX))
        for x in maps
    ]
    return np.stack(out).astype(np.float32)


def _optional(values: np.ndarray | None, i: int) -> float | None:
    return None if values is None else float(values[i])


def explanation_snapshot(e: Explanation) -> dict[str, Any]:
    """The snapshot (JSON-ready dict) of an :class:`amd.explain.Explanation`; crop a is the query side."""
    m = len(e.names)
    order = [int(i) for i in np.argsort(-np.asarray(e.shares), kind="stable")]
    small = {"query": _shrink(np.asarray(e.maps_a)), "gallery": _shrink(np.asarray(e.maps_b))}
    low = np.minimum(small["query"].reshape(m, -1).min(1), small["gallery"].reshape(m, -1).min(1))
    high = np.maximum(small["query"].reshape(m, -1).max(1), small["gallery"].reshape(m, -1).max(1))
    span = np.where(high - low > 1e-12, high - low, 1.0)
    maps: dict[str, Any] = {"encoding": "uint8-zlib-base64", "low": low.tolist(), "high": high.tolist()}
    sizes = {"query": getattr(e, "size_a", None), "gallery": getattr(e, "size_b", None)}
    for side, full in (("query", e.maps_a), ("gallery", e.maps_b)):
        q = np.round((small[side] - low[:, None, None]) / span[:, None, None] * 255.0)
        q = np.clip(q, 0, 255).astype(np.uint8)
        maps[side] = {
            "shape": list(q.shape),
            # The crop's own size; its maps are smaller when it is longer than amd.explain.MAX_MAP_SIDE.
            "crop_size": [int(v) for v in (sizes[side] or full.shape[1:])],
            "data": base64.b64encode(zlib.compress(q.tobytes(), 9)).decode("ascii"),
        }
    return {
        "format": FORMAT,
        "version": VERSION,
        "distance": float(e.distance),
        "sum_of_components": float(np.sum(e.components)),
        "gap": float(e.gap),
        "attributes": [
            {
                "index": i,
                "name": e.names[i],
                "label": e.labels[i],
                "distance": float(e.attribute_distances[i]),
                "component": float(e.components[i]),
                "share": float(e.shares[i]),
                "predicted_query": _optional(e.predicted_a, i),
                "predicted_gallery": _optional(e.predicted_b, i),
            }
            for i in order
        ],
        "maps": maps,
    }


@dataclass(frozen=True)
class ExplanationData:
    """A decoded snapshot; arrays are in schema order and read-only.

    Attributes:
        names: Attribute identifiers (M,).
        labels: Readable labels (M,).
        distance: The target distance.
        sum_of_components: Sum of the components as recorded.
        gap: (sum of components - distance) / distance.
        attribute_distances: (M,) d_m.
        components: (M,) d_m / M.
        shares: (M,) d_m / sum d_k.
        predicted_query: (M,) attribute probabilities of the query crop, or ``None``.
        predicted_gallery: (M,) the same for the gallery crop, or ``None``.
        maps_query: (M, h, w) stored maps of the query crop (raw units), or ``None``.
        maps_gallery: (M, h, w) the same for the gallery crop, or ``None``.
        crop_size_query: (H, W) of the query crop the maps were made at, or ``None``.
        crop_size_gallery: The same for the gallery crop.
    """

    names: tuple[str, ...]
    labels: tuple[str, ...]
    distance: float
    sum_of_components: float
    gap: float
    attribute_distances: np.ndarray = field(repr=False, compare=False)
    components: np.ndarray = field(repr=False, compare=False)
    shares: np.ndarray = field(repr=False, compare=False)
    predicted_query: np.ndarray | None = field(default=None, repr=False, compare=False)
    predicted_gallery: np.ndarray | None = field(default=None, repr=False, compare=False)
    maps_query: np.ndarray | None = field(default=None, repr=False, compare=False)
    maps_gallery: np.ndarray | None = field(default=None, repr=False, compare=False)
    crop_size_query: tuple[int, int] | None = None
    crop_size_gallery: tuple[int, int] | None = None

    @property
    def has_maps(self) -> bool:
        return self.maps_query is not None and self.maps_gallery is not None

    def order(self) -> list[int]:
        """Attribute positions by share, largest first (ties keep schema order)."""
        return [int(i) for i in np.argsort(-self.shares, kind="stable")]

    def differs(self, i: int) -> bool | None:
        """Whether the two crops' predicted attribute ``i`` falls on opposite sides of 0.5 (``None``: unknown)."""
        if self.predicted_query is None or self.predicted_gallery is None:
            return None
        return bool((self.predicted_query[i] >= 0.5) != (self.predicted_gallery[i] >= 0.5))

    def map_at(self, side: str, i: int, size: tuple[int, int]) -> np.ndarray:
        """Attribute ``i``'s map of ``side`` upsampled (bilinear) to ``size`` = (H, W), float32 raw units."""
        maps = self.maps_query if side == "query" else self.maps_gallery
        if maps is None:
            raise SnapshotError("this explanation was recorded without attention maps")
        img = Image.fromarray(np.ascontiguousarray(maps[i], dtype=np.float32), "F")
        return np.asarray(img.resize((size[1], size[0]), Image.Resampling.BILINEAR), dtype=np.float32)

    def to_explanation(
        self, size_query: tuple[int, int] | None = None, size_gallery: tuple[int, int] | None = None
    ) -> Explanation:
        """An :class:`amd.explain.Explanation` for the compare view, maps at the crops' sizes (H, W).

        Without maps in the snapshot, the maps are flat (every attribute everywhere alike).
        """
        from amd.explain import Explanation

        m = len(self.names)

        def full(side: str, size: tuple[int, int] | None) -> np.ndarray:
            size = size or (self.crop_size_query if side == "query" else self.crop_size_gallery) or (128, 64)
            if not self.has_maps:
                return _frozen(np.ones((m, *size), dtype=np.float32))
            return _frozen(np.stack([self.map_at(side, i, size) for i in range(m)]))

        return Explanation(
            names=self.names,
            labels=self.labels,
            distance=self.distance,
            attribute_distances=self.attribute_distances,
            components=self.components,
            shares=self.shares,
            maps_a=full("query", size_query),
            maps_b=full("gallery", size_gallery),
            predicted_a=self.predicted_query,
            predicted_b=self.predicted_gallery,
            gap=self.gap,
        )


def _frozen(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SnapshotError(f"explanation: {what} must be a finite number, not {value!r}")
    return float(value)


def _maps(data: Any, m: int) -> tuple[np.ndarray, np.ndarray, tuple[int, int], tuple[int, int]]:
    if not isinstance(data, dict) or data.get("encoding") != "uint8-zlib-base64":
        raise SnapshotError("explanation: unknown map encoding")
    low = np.array([_number(v, "a map range") for v in data.get("low", [])], dtype=np.float32)
    high = np.array([_number(v, "a map range") for v in data.get("high", [])], dtype=np.float32)
    if low.shape != (m,) or high.shape != (m,):
        raise SnapshotError(f"explanation: map ranges for {m} attributes expected")
    out: list[np.ndarray] = []
    sizes: list[tuple[int, int]] = []
    for side in SIDES:
        entry = data.get(side)
        try:
            shape = tuple(int(v) for v in entry["shape"])
            crop = (int(entry["crop_size"][0]), int(entry["crop_size"][1]))
            if len(shape) != 3 or shape[0] != m or not (0 < shape[1] <= 4096 and 0 < shape[2] <= 4096):
                raise ValueError(f"shape {shape}")
            raw = zlib.decompressobj().decompress(
                base64.b64decode(entry["data"], validate=True), m * 4096 * 4096
            )
            q = np.frombuffer(raw, dtype=np.uint8).reshape(shape)
        except (KeyError, TypeError, ValueError, zlib.error) as exc:
            raise SnapshotError(f"explanation: the {side} maps are damaged ({exc})") from None
        span = (high - low)[:, None, None]
        out.append(_frozen(low[:, None, None] + q.astype(np.float32) / 255.0 * span))
        sizes.append(crop)
    return out[0], out[1], sizes[0], sizes[1]


def decode_snapshot(data: dict[str, Any]) -> ExplanationData:
    """Decode a snapshot (this layout or the older one without maps).

    Raises:
        SnapshotError: The data is not a snapshot, or a value is missing or malformed.
    """
    if not isinstance(data, dict):
        raise SnapshotError("explanation: not a mapping")
    version = data.get("version", 0)
    if data.get("format", FORMAT) != FORMAT or not isinstance(version, int):
        raise SnapshotError("explanation: not an explanation snapshot")
    if version > VERSION:
        raise SnapshotError(
            f"explanation: written by a newer version (layout {version}, this one reads {VERSION})"
        )
    attrs = data.get("attributes")
    if not isinstance(attrs, list) or not attrs:
        raise SnapshotError("explanation: no attributes")
    m = len(attrs)
    slots: list[dict[str, Any] | None] = [None] * m
    for k, a in enumerate(attrs):
        if not isinstance(a, dict):
            raise SnapshotError("explanation: an attribute is not a mapping")
        i = a.get("index", k)
        if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < m or slots[i] is not None:
            raise SnapshotError(f"explanation: bad attribute index {i!r}")
        slots[i] = a
    ordered = [a for a in slots if a is not None]

    def column(key: str) -> np.ndarray:
        return _frozen(np.array([_number(a.get(key), key) for a in ordered], dtype=np.float64))

    def predicted(key: str) -> np.ndarray | None:
        values = [a.get(key) for a in ordered]
        if all(v is None for v in values):
            return None
        return _frozen(np.array([_number(v, key) for v in values], dtype=np.float32))

    maps_q = maps_g = size_q = size_g = None
    if data.get("maps") is not None:
        maps_q, maps_g, size_q, size_g = _maps(data["maps"], m)
    return ExplanationData(
        names=tuple(str(a.get("name", "")) for a in ordered),
        labels=tuple(str(a.get("label", a.get("name", ""))) for a in ordered),
        distance=_number(data.get("distance"), "distance"),
        sum_of_components=_number(data.get("sum_of_components", 0.0), "sum_of_components"),
        gap=_number(data.get("gap", 0.0), "gap"),
        attribute_distances=column("distance"),
        components=column("component"),
        shares=column("share"),
        predicted_query=predicted("predicted_query"),
        predicted_gallery=predicted("predicted_gallery"),
        maps_query=maps_q,
        maps_gallery=maps_g,
        crop_size_query=size_q,
        crop_size_gallery=size_g,
    )
