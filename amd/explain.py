"""Per-pair explanations: how much each attribute contributes to the distance of two crops, and where.

Typical use::

    explainer = Explainer.from_files("target.pt", "interpreter.pt")
    e = explainer.explain("query.jpg", "candidate.jpg")
    for i in e.order():
        print(e.labels[i], e.components[i], e.shares[i])

Every image is run through the interpreter once (the same pass gives the target embedding, the maps and
the per-attribute embeddings), so explaining a query against k gallery crops costs k + 1 forwards.

The maps come at each crop's own size, up to :data:`MAX_MAP_SIDE` pixels on the longer side: a larger crop
gets maps of its shape scaled down to that side (:func:`map_size`), which bounds their memory to
M x 1024 x 1024 float32 values per crop (4 MiB per attribute) whatever the image. :func:`maps_at` brings
maps to any other size.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from amd.errors import AmdError
from amd.inference import inference_copy
from amd.models.checkpoint import load_pair
from amd.models.inputs import ImageLike, ImageWarning, Transform, eval_transform, load_batch, shape_problem
from amd.models.interpreter import Interpreter, InterpreterOutput
from amd.models.target import ReIDModel
from amd.schema import AttributeSchema

#: Maps are computed at the crop's own size up to this many pixels on its longer side (see the module
#: docstring); person crops, even from 1080p video, rarely reach it.
MAX_MAP_SIDE = 1024


def map_size(height: int, width: int, max_side: int = MAX_MAP_SIDE) -> tuple[int, int]:
    """The (height, width) of a crop's maps: the crop's own, or scaled to ``max_side`` on the longer side."""
    longer = max(height, width)
    if longer <= max_side:
        return height, width
    scale = max_side / longer
    return max(1, round(height * scale)), max(1, round(width * scale))


def maps_at(maps: np.ndarray, height: int, width: int) -> np.ndarray:
    """Maps (M, h, w) resampled bilinearly to (M, height, width) float32, e.g. onto a crop larger than them."""
    maps = np.asarray(maps, dtype=np.float32)
    if maps.shape[1:] == (height, width):
        return maps
    out = F.interpolate(torch.from_numpy(np.ascontiguousarray(maps))[None], size=(height, width),
                        mode="bilinear", align_corners=False)  # fmt: skip
    return out[0].numpy()


#: One of a pair's largest shares: (attribute label, share of the distance, whether the two crops differ
#: on it; ``None`` without an attribute classifier).
TopShare = tuple[str, float, bool | None]


@dataclass(frozen=True)
class Explanation:
    """The explanation of one pair (a, b); arrays are read-only and in the schema's order.

    Attributes:
        names: Attribute identifiers (M,).
        labels: Readable attribute labels (M,).
        distance: The target's distance d = ||f(a) - f(b)||.
        attribute_distances: (M,) d_m = ||f_m(a) - f_m(b)||.
        components: (M,) d_m / M; they add up to approximately ``distance``.
        shares: (M,) d_m / sum_k d_k (each share a fraction of the whole; 1/M each when all d_m are 0).
        maps_a: (M, H_a, W_a) float32 attention maps upsampled to crop a's own size (raw values, not
            rescaled: 1 is neutral for faithful maps, the spatial mean for localising maps). For a crop
            longer than :data:`MAX_MAP_SIDE` pixels on a side, (H_a, W_a) is its size scaled down to that
            side (:func:`map_size`; :func:`maps_at` resamples them to the crop).
        maps_b: (M, H_b, W_b) the same for crop b.
        predicted_a: (M,) attribute probabilities of a from the auxiliary classifier, or ``None``.
        predicted_b: (M,) the same for b, or ``None``.
        gap: (sum components - distance) / distance (0 when the distance is 0).
        size_a: Crop a's own (height, width), or ``None`` when not recorded.
        size_b: The same for crop b.
    """

    names: tuple[str, ...]
    labels: tuple[str, ...]
    distance: float
    attribute_distances: np.ndarray = field(compare=False, repr=False)
    components: np.ndarray = field(compare=False, repr=False)
    shares: np.ndarray = field(compare=False, repr=False)
    maps_a: np.ndarray = field(compare=False, repr=False)
    maps_b: np.ndarray = field(compare=False, repr=False)
    predicted_a: np.ndarray | None = field(default=None, compare=False, repr=False)
    predicted_b: np.ndarray | None = field(default=None, compare=False, repr=False)
    gap: float = 0.0
    size_a: tuple[int, int] | None = field(default=None, compare=False, repr=False)
    size_b: tuple[int, int] | None = field(default=None, compare=False, repr=False)

    def order(self) -> list[int]:
        """Attribute positions sorted by share, largest first (ties keep schema order)."""
        return [int(i) for i in np.argsort(-self.shares, kind="stable")]

    @property
    def differing(self) -> np.ndarray | None:
        """(M,) bool: the attribute classifier gives the two crops different answers (one at 0.5 or more,
        the other under); ``None`` without a classifier."""
        if self.predicted_a is None or self.predicted_b is None:
            return None
        return (np.asarray(self.predicted_a) >= 0.5) != (np.asarray(self.predicted_b) >= 0.5)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON: distance, gap and the attributes sorted by share."""
        return {
            "distance": self.distance,
            "sum_of_components": float(self.components.sum()),
            "gap": self.gap,
            "attributes": [
                {
                    "name": self.names[i],
                    "label": self.labels[i],
                    "distance": float(self.attribute_distances[i]),
                    "component": float(self.components[i]),
                    "share": float(self.shares[i]),
                }
                for i in self.order()
            ],
        }


@dataclass(frozen=True)
class _Analysis:
    """One image's pass through the interpreter."""

    embedding: np.ndarray  # (D,) float64
    attribute_embeddings: np.ndarray  # (M, D) float64
    maps: np.ndarray  # (M, H, W) at the crop's size, at most MAX_MAP_SIDE on a side
    predicted: np.ndarray | None  # (M,)
    size: tuple[int, int]  # the crop's own (height, width)


def _readonly(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


class Explainer:
    """Explains target distances with an interpreter.

    Args:
        target: The target model (the interpreter's own target).
        interpreter: The interpreter distilled from it.
        transform: PIL image -> (3, H, W) tensor; default: resize to ``input_size`` and normalise.
        device: Where the models run.
        schema: Attribute names and labels (default: ``attr0``, ``attr1``, ...).
        input_size: (H, W) for the default transform.
        batch_size: Images per forward when explaining many.

    Crops are decoded on a small thread pool and the interpreter runs in inference mode with the
    channels-last memory layout.
    """

    def __init__(
        self,
        target: ReIDModel,
        interpreter: Interpreter,
        transform: Transform | None = None,
        device: str | torch.device = "cpu",
        schema: AttributeSchema | None = None,
        input_size: tuple[int, int] = (256, 128),
        batch_size: int = 32,
    ) -> None:
        if interpreter.target is not target:
            raise AmdError("the interpreter was not built on this target model")
        if schema is not None and len(schema) != interpreter.num_attributes:
            raise AmdError(
                f"schema has {len(schema)} attributes, the interpreter {interpreter.num_attributes}"
            )
        self.device = torch.device(device)
        self.target = target
        # Channels-last is the layout the CPU's convolutions prefer; converting in place keeps the caller's
        # interpreter object (and any hooks on it) the one that runs.
        self.interpreter = interpreter.to(self.device).eval().to(memory_format=torch.channels_last)
        self.transform = transform if transform is not None else eval_transform(input_size)
        self.input_size = tuple(input_size)
        self.batch_size = int(batch_size)
        self.workers = max(1, min(4, os.cpu_count() or 1))
        m = interpreter.num_attributes
        self.names = schema.names if schema is not None else tuple(f"attr{i}" for i in range(m))
        self.labels = schema.labels if schema is not None else self.names
        self.schema = schema

    @classmethod
    def from_files(
        cls, target_path: str | Path, interpreter_path: str | Path, device: str | torch.device = "cpu"
    ) -> Explainer:
        """Load a target and its interpreter; refuses an interpreter distilled from another target.

        The explainer owns the loaded models, so it runs them with their batch norms folded into the
        convolutions (:func:`amd.inference.inference_copy`, checked against the loaded models on a probe
        batch): the same numbers, fewer passes over the activations.

        Raises:
            amd.models.checkpoint.CheckpointError: A file cannot be used (the message says why).
        """
        interpreter, target_info, info = load_pair(target_path, interpreter_path, device=device)
        size = tuple(info.input_size or target_info.input_size)
        probe = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(0)).to(device)
        interpreter = inference_copy(interpreter, probe)
        return cls(
            interpreter.target,
            interpreter,
            device=device,
            schema=info.schema,
            input_size=size,
        )

    @torch.inference_mode()
    def _analyse(self, images: Sequence[ImageLike]) -> list[_Analysis]:
        out: list[_Analysis] = []
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            for start in range(0, len(images), self.batch_size):
                batch, sizes = load_batch(images[start : start + self.batch_size], self.transform, pool)
                batch = batch.to(self.device).contiguous(memory_format=torch.channels_last)
                out.extend(self._results(self.interpreter(batch), sizes))
        return out

    def _warn_about_shapes(self, images: Sequence[ImageLike], analyses: Sequence[_Analysis]) -> None:
        """Warn, at the caller of the public method, about crops too small or too distorted for the model."""
        for k, (image, analysis) in enumerate(zip(images, analyses, strict=True)):
            problem = shape_problem(*analysis.size, self.input_size)
            if problem is not None:
                name = str(image) if isinstance(image, (str, Path)) else f"image {k + 1}"
                warnings.warn(f"{name}: {problem}", ImageWarning, stacklevel=3)

    def _results(self, result: InterpreterOutput, sizes: list[tuple[int, int]]) -> list[_Analysis]:
        """Per-image analyses of one interpreter output, maps upsampled to each crop's own size (capped)."""
        out: list[_Analysis] = []
        probs = torch.sigmoid(result.attribute_logits) if result.attribute_logits is not None else None
        for i, (h, w) in enumerate(sizes):
            maps = F.interpolate(
                result.maps[i : i + 1].float(), size=map_size(h, w), mode="bilinear", align_corners=False
            )
            out.append(
                _Analysis(
                    embedding=result.embedding[i].double().cpu().numpy(),
                    attribute_embeddings=result.attribute_embeddings[i].double().cpu().numpy(),
                    maps=_readonly(maps[0].cpu().numpy()),
                    predicted=None if probs is None else _readonly(probs[i].float().cpu().numpy()),
                    size=(h, w),
                )
            )
        return out

    def _pair(self, a: _Analysis, b: _Analysis) -> Explanation:
        m = len(self.names)
        distance = float(np.linalg.norm(a.embedding - b.embedding))
        d_m = np.linalg.norm(a.attribute_embeddings - b.attribute_embeddings, axis=1)
        total = float(d_m.sum())
        shares = d_m / total if total > 0 else np.full(m, 1.0 / m)
        components = d_m / m
        gap = (float(components.sum()) - distance) / distance if distance > 0 else 0.0
        return Explanation(
            names=tuple(self.names),
            labels=tuple(self.labels),
            distance=distance,
            attribute_distances=_readonly(d_m),
            components=_readonly(components),
            shares=_readonly(shares),
            maps_a=a.maps,
            maps_b=b.maps,
            predicted_a=a.predicted,
            predicted_b=b.predicted,
            gap=gap,
            size_a=a.size,
            size_b=b.size,
        )

    def explain(self, a: ImageLike, b: ImageLike) -> Explanation:
        """Explain the distance between two crops (paths, PIL images or uint8 arrays).

        Warns:
            ImageWarning: A crop is smaller than an eighth of the model's input, or its shape is more than
                4 times off the input's (:func:`amd.models.inputs.shape_problem`); it is still explained.

        Raises:
            amd.models.inputs.ImageInputError: A crop cannot be read, has no pixels, or has more than
                :data:`amd.data.images.MAX_PIXELS` pixels.
        """
        first, second = analyses = self._analyse([a, b])
        self._warn_about_shapes([a, b], analyses)
        return self._pair(first, second)

    def explain_many(self, query: ImageLike, gallery: Sequence[ImageLike]) -> list[Explanation]:
        """Explain a query against each gallery crop, with one forward per image (k + 1 in all).

        Warns and raises as :meth:`explain`.
        """
        analyses = self._analyse([query, *gallery])
        self._warn_about_shapes([query, *gallery], analyses)
        return [self._pair(analyses[0], other) for other in analyses[1:]]

    def largest_shares(
        self,
        query: ImageLike,
        gallery: Sequence[ImageLike],
        count: int = 3,
        chunk: int = 16,
        should_stop: Callable[[], bool] | None = None,
    ) -> list[tuple[TopShare, ...]]:
        """Why each gallery crop is as far from the query as it is: the ``count`` attributes with the
        largest shares of that distance, as ``(label, share, differing)``, largest first, one tuple per
        crop (``differing`` as in :attr:`Explanation.differing`, ``None`` without a classifier).

        The crops are explained ``chunk`` at a time, one forward per image (the query's with the first
        chunk), and only the figures are kept, not every pair's maps. ``should_stop`` is polled between
        chunks; the crops explained until then are returned.

        Warns and raises as :meth:`explain`.
        """
        out: list[tuple[TopShare, ...]] = []
        first: _Analysis | None = None
        for start in range(0, len(gallery), chunk):
            if should_stop is not None and should_stop():
                break
            images = list(gallery[start : start + chunk])
            if first is None:
                images.insert(0, query)
            analyses = self._analyse(images)
            self._warn_about_shapes(images, analyses)
            if first is None:
                first, analyses = analyses[0], analyses[1:]
            for other in analyses:
                e = self._pair(first, other)
                differ = e.differing
                out.append(
                    tuple(
                        (e.labels[i], float(e.shares[i]), None if differ is None else bool(differ[i]))
                        for i in e.order()[:count]
                    )
                )
        return out

    @property
    def predicts_attributes(self) -> bool:
        """Whether the interpreter has an attribute classifier (:meth:`predict_attributes` works)."""
        return bool(self.interpreter.has_aux_classifier)

    @torch.inference_mode()
    def predict_attributes(self, images: Sequence[ImageLike]) -> np.ndarray:
        """Attribute probabilities of crops from the interpreter's classifier, without the maps' upsampling.

        Returns:
            float32 array (N, M) in the schema's order; (0, M) for no images.

        Raises:
            AmdError: The interpreter has no attribute classifier.
        """
        images = list(images)
        m = len(self.names)
        out: list[np.ndarray] = []
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            for start in range(0, len(images), self.batch_size):
                batch, _ = load_batch(images[start : start + self.batch_size], self.transform, pool)
                batch = batch.to(self.device).contiguous(memory_format=torch.channels_last)
                logits = self.interpreter(batch).attribute_logits
                if logits is None:
                    raise AmdError("this interpreter has no attribute classifier: it predicts no attributes")
                out.append(torch.sigmoid(logits).float().cpu().numpy())
        return np.concatenate(out, axis=0) if out else np.zeros((0, m), dtype=np.float32)

    def maps(self, image: ImageLike) -> np.ndarray:
        """The attention maps (M, H, W) of one crop at its own size (at most :data:`MAX_MAP_SIDE` a side)."""
        analyses = self._analyse([image])
        self._warn_about_shapes([image], analyses)
        return analyses[0].maps

    @torch.inference_mode()
    def embed(self, batch: Tensor) -> Tensor:
        """Target embeddings (B, D) of a preprocessed batch (B, 3, H, W)."""
        return self.target(batch.to(self.device))
