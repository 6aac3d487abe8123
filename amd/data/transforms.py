"""Image transforms for training and inference (PIL image -> normalised float tensor (3, H, W))."""

from __future__ import annotations

from collections.abc import Callable

import torchvision.transforms as T

#: ImageNet statistics, which every backbone's pretrained weights expect.
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def parse_size(text: str) -> tuple[int, int]:
    """Parse ``"256x128"`` into (height, width); raises ValueError with the expected form."""
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"size {text!r} must look like HEIGHTxWIDTH, e.g. 256x128") from None
    if h < 16 or w < 16:
        raise ValueError(f"size {text!r} is too small (at least 16x16)")
    return h, w


def build_transforms(
    size: tuple[int, int],
    train: bool,
    flip_p: float = 0.5,
    pad: int = 10,
    erasing_p: float = 0.5,
) -> Callable:
    """The standard ReID pipeline.

    Args:
        size: (height, width) of the network input.
        train: Add the augmentations: horizontal flip, pad + random crop back to ``size``, and
            random erasing (applied after normalisation, so erased pixels become the mean colour).
        flip_p: Probability of a horizontal flip.
        pad: Padding in pixels before the random crop.
        erasing_p: Probability of random erasing.

    Returns:
        A callable mapping a PIL RGB image to a float tensor (3, H, W).
    """
    steps: list[Callable] = [T.Resize(size, interpolation=T.InterpolationMode.BILINEAR, antialias=True)]
    if train:
        steps += [T.RandomHorizontalFlip(flip_p), T.Pad(pad, padding_mode="edge"), T.RandomCrop(size)]
    steps += [T.ToTensor(), T.Normalize(MEAN, STD)]
    if train and erasing_p > 0:
        steps.append(T.RandomErasing(p=erasing_p, value=0))
    return T.Compose(steps)
