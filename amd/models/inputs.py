"""Turning what users hand in (paths, PIL images, uint8 arrays) into model input batches."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from amd.data.images import ImageReadError, ImageWarning, read_rgb, rgb_image
from amd.data.transforms import build_transforms
from amd.errors import AmdError

#: An image as accepted by the explainer and the embedder: a file path, a PIL image, or a uint8 array
#: (H, W, 3) RGB or (H, W) grey.
ImageLike = str | Path | Image.Image | np.ndarray

Transform = Callable[[Image.Image], Tensor]

__all__ = [
    "ImageInputError",
    "ImageLike",
    "ImageWarning",
    "Transform",
    "eval_transform",
    "load_batch",
    "preprocess",
    "shape_problem",
    "to_rgb",
]


class ImageInputError(AmdError):
    """An image cannot be read or is not a person crop in a supported form."""


def to_rgb(image: ImageLike) -> Image.Image:
    """Decode or convert ``image`` to an 8-bit RGB PIL image.

    Files are opened by :func:`amd.data.images.open_image` (supported formats, at most
    :data:`~amd.data.images.MAX_PIXELS` pixels) and every image is converted by
    :func:`amd.data.images.rgb_image` (16-bit greyscale scaled, transparency flattened, CMYK converted).

    Raises:
        ImageInputError: Unreadable or too large file, an image without pixels, or an array that is not
            uint8 (H, W) / (H, W, 3|4).
    """
    if isinstance(image, Image.Image):
        rgb = _convert(image, "image")
    elif isinstance(image, np.ndarray):
        if (
            image.dtype != np.uint8
            or image.ndim not in (2, 3)
            or (image.ndim == 3 and image.shape[2] not in (3, 4))
        ):
            raise ImageInputError(
                f"an image array must be uint8 (H, W), (H, W, 3) or (H, W, 4), got {image.dtype} {image.shape}"
            )
        if image.shape[0] == 0 or image.shape[1] == 0:
            raise ImageInputError(f"the image array has no pixels (shape {image.shape})")
        rgb = _convert(Image.fromarray(np.ascontiguousarray(image)), "image array")
    elif isinstance(image, (str, Path)):
        try:
            rgb = read_rgb(image)
        except ImageReadError as exc:
            raise ImageInputError(str(exc)) from None
    else:
        raise ImageInputError(
            f"unsupported image type {type(image).__name__} (use a path, a PIL image or an array)"
        )
    if rgb.width == 0 or rgb.height == 0:
        raise ImageInputError(f"{_name(image)}: the image has no pixels ({rgb.width}x{rgb.height})")
    return rgb


def _convert(image: Image.Image, name: str) -> Image.Image:
    try:
        return rgb_image(image, name)
    except ImageReadError as exc:
        raise ImageInputError(str(exc)) from None


def _name(image: ImageLike) -> str:
    return str(image) if isinstance(image, (str, Path)) else "image"


#: A crop side smaller than the model's input side divided by this is mostly upscaling blur.
MAX_UPSCALE = 8
#: A crop whose height-to-width ratio differs from the model input's by more than this factor is squeezed
#: out of a person's shape by the resize.
MAX_DISTORTION = 4.0


def shape_problem(height: int, width: int, input_size: tuple[int, int]) -> str | None:
    """Why a crop of this size is unlikely to give a meaningful result, or ``None`` when it is fine.

    Every crop is resized to the model's input size (H, W), so any size *works*; but a crop smaller than
    W / :data:`MAX_UPSCALE` x H / :data:`MAX_UPSCALE` (16x32 pixels, width x height, for a 256x128 input)
    carries too few pixels for its attributes, and one whose shape is more than :data:`MAX_DISTORTION` times
    wider or taller than the input's (for 256x128: wider than 1:1 x 2, or taller than 8:1) is distorted
    beyond a person's shape by the resize.

    Args:
        height: The crop's height in pixels.
        width: Its width.
        input_size: The model's input (H, W).
    """
    in_h, in_w = input_size
    problems = []
    min_h, min_w = max(1, in_h // MAX_UPSCALE), max(1, in_w // MAX_UPSCALE)
    if height < min_h or width < min_w:
        problems.append(f"smaller than {min_w}x{min_h}")
    distortion = (height / width) / (in_h / in_w)
    if distortion < 1 / MAX_DISTORTION:
        problems.append(
            f"{_times(1 / distortion)} times wider for its height than the model's {in_w}x{in_h} input"
        )
    elif distortion > MAX_DISTORTION:
        problems.append(
            f"{_times(distortion)} times taller for its width than the model's {in_w}x{in_h} input"
        )
    if not problems:
        return None
    return (
        f"{width}x{height} pixels (width x height) is {' and '.join(problems)}; the model sees it resized "
        "to its input, so its explanation may mean little"
    )


def _times(x: float) -> str:
    return f"{x:.1f}" if x < 10 else f"{x:,.0f}"


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
