"""Turning what users hand in (paths, PIL images, uint8 arrays) into model input batches."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from amd.data.transforms import build_transforms
from amd.errors import AmdError

#: An image as accepted by the explainer and the embedder: a file path, a PIL image, or a uint8 array
#: (H, W, 3) RGB or (H, W) grey.
ImageLike = str | Path | Image.Image | np.ndarray

Transform = Callable[[Image.Image], Tensor]


class ImageInputError(AmdError):
    """An image cannot be read or is not a person crop in a supported form."""


def to_rgb(image: ImageLike) -> Image.Image:
    """Decode or convert ``image`` to an RGB PIL image.

    Raises:
        ImageInputError: Unreadable file, or an array that is not uint8 (H, W) / (H, W, 3|4).
    """
    if isinstance(image, Image.Image):
        return image if image.mode == "RGB" else image.convert("RGB")
    if isinstance(image, np.ndarray):
        if (
            image.dtype != np.uint8
            or image.ndim not in (2, 3)
            or (image.ndim == 3 and image.shape[2] not in (3, 4))
        ):
            raise ImageInputError(
                f"an image array must be uint8 (H, W), (H, W, 3) or (H, W, 4), got {image.dtype} {image.shape}"
            )
        return Image.fromarray(np.ascontiguousarray(image)).convert("RGB")
    if isinstance(image, (str, Path)):
        try:
            with Image.open(image) as img:
                return img.convert("RGB")
        except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as exc:
            raise ImageInputError(f"{image}: cannot read image ({exc})") from None
    raise ImageInputError(
        f"unsupported image type {type(image).__name__} (use a path, a PIL image or an array)"
    )


def eval_transform(input_size: tuple[int, int]) -> Transform:
    """The inference preprocessing: resize to (H, W), to tensor, ImageNet normalisation."""
    return build_transforms(tuple(input_size), train=False)


def preprocess(image: ImageLike, transform: Transform) -> tuple[Tensor, tuple[int, int]]:
    """One image -> ((3, H, W) tensor, the original (height, width))."""
    rgb = to_rgb(image)
    return transform(rgb), (rgb.height, rgb.width)


def load_batch(
    images: Sequence[ImageLike], transform: Transform, executor: Executor | None = None
) -> tuple[Tensor, list[tuple[int, int]]]:
    """Decode and preprocess images into one batch.

    Args:
        images: The images.
        transform: PIL image -> (3, H, W) tensor.
        executor: Decode in parallel on this pool (PIL releases the GIL while decoding and resizing).

    Returns:
        ``(batch, sizes)``: (N, 3, H, W) float tensor and each original image's (height, width).
    """

    def one(image: ImageLike) -> tuple[Tensor, tuple[int, int]]:
        return preprocess(image, transform)

    items = list(executor.map(one, images)) if executor is not None else [one(i) for i in images]
    if not items:
        raise ImageInputError("no images given")
    return torch.stack([t for t, _ in items]), [s for _, s in items]
