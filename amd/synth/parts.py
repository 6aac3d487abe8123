"""Body parts of the synthetic pedestrians and which parts show which attribute.

A part label map is a uint8 array (H, W): 0 is the background, 1..12 the person's parts as drawn
(the part visible at each pixel, after occlusion), and :data:`OCCLUDER` (255) a foreground object
or another pedestrian hiding part of the person. ``labels > 0`` is therefore *not* the person's
silhouette; use :func:`person_mask`.
"""

from __future__ import annotations

import numpy as np

BACKGROUND = 0
HEAD = 1  # face, ears and neck skin
HAIR = 2
HAT = 3
TORSO = 4  # upper-body garment over the trunk
SLEEVES = 5  # upper-body garment over the arms
ARMS = 6  # arm and hand skin
LOWER = 7  # trousers, shorts or skirt
LEGS = 8  # leg skin
SHOES = 9
BACKPACK = 10  # pack and straps
BAG = 11  # shoulder bag and its strap
HANDBAG = 12
OCCLUDER = 255

#: Part id -> name, for the manifest and legends.
PART_NAMES: dict[int, str] = {
    BACKGROUND: "background",
    HEAD: "head skin",
    HAIR: "hair",
    HAT: "hat",
    TORSO: "torso",
    SLEEVES: "sleeves",
    ARMS: "arm skin",
    LOWER: "lower clothing",
    LEGS: "leg skin",
    SHOES: "shoes",
    BACKPACK: "backpack",
    BAG: "shoulder bag",
    HANDBAG: "handbag",
    OCCLUDER: "occluder",
}

PERSON_PARTS: tuple[int, ...] = tuple(range(HEAD, HANDBAG + 1))

_UPPER_COLOURS = ("upblack", "upblue", "upgray", "upgreen", "uppurple", "upred", "upwhite", "upyellow")
_LOWER_COLOURS = (
    "downblack", "downblue", "downbrown", "downgray", "downgreen",
    "downpink", "downpurple", "downwhite", "downyellow",
)  # fmt: skip

#: Attribute name -> the parts on which the renderer draws its evidence. Gender and age are shown by
#: body shape, hair and face cues (and skirts), so they map to the person's body rather than to one part.
ATTRIBUTE_PARTS: dict[str, tuple[int, ...]] = {
    "age": (HEAD, HAIR, TORSO, LOWER, LEGS),
    "backpack": (BACKPACK,),
    "bag": (BAG,),
    "handbag": (HANDBAG,),
    "hat": (HAT,),
    "hair": (HAIR,),
    "gender": (HEAD, HAIR, TORSO, LOWER, LEGS),
    "up": (SLEEVES, ARMS),
    "down": (LOWER, LEGS),
    "clothes": (LOWER,),
    **{name: (TORSO, SLEEVES) for name in _UPPER_COLOURS},
    **{name: (LOWER,) for name in _LOWER_COLOURS},
}

#: Display colours of the parts for coloured masks (RGB), indexed by part id.
MASK_PALETTE: dict[int, tuple[int, int, int]] = {
    BACKGROUND: (0, 0, 0),
    HEAD: (255, 204, 160),
    HAIR: (120, 70, 20),
    HAT: (255, 0, 255),
    TORSO: (230, 40, 40),
    SLEEVES: (255, 150, 40),
    ARMS: (255, 240, 120),
    LOWER: (40, 90, 230),
    LEGS: (120, 220, 255),
    SHOES: (110, 110, 110),
    BACKPACK: (40, 200, 60),
    BAG: (0, 130, 120),
    HANDBAG: (180, 90, 255),
    OCCLUDER: (255, 255, 255),
}


def person_mask(labels: np.ndarray) -> np.ndarray:
    """Pixels where the person is visible.

    Args:
        labels: Part label map, uint8 (H, W).

    Returns:
        Boolean mask (H, W).
    """
    return (labels >= HEAD) & (labels <= HANDBAG)


def flat_palette() -> list[int]:
    """A 768-entry PNG palette that shows part ids in :data:`MASK_PALETTE` colours."""
    pal = [0] * 768
    for pid, rgb in MASK_PALETTE.items():
        pal[3 * pid : 3 * pid + 3] = rgb
    return pal


def colourise(labels: np.ndarray) -> np.ndarray:
    """RGB rendering of a label map for display, uint8 (H, W, 3)."""
    lut = np.zeros((256, 3), dtype=np.uint8)
    for pid, rgb in MASK_PALETTE.items():
        lut[pid] = rgb
    return lut[labels]


def manifest(attribute_names: tuple[str, ...]) -> dict:
    """The ``parts.json`` content: part names and, for each attribute, the parts that show it."""
    return {
        "version": 1,
        "background": BACKGROUND,
        "occluder": OCCLUDER,
        "parts": {str(k): v for k, v in PART_NAMES.items()},
        "person_parts": list(PERSON_PARTS),
        "attributes": {
            name: {
                "parts": list(ATTRIBUTE_PARTS[name]),
                "part_names": [PART_NAMES[p] for p in ATTRIBUTE_PARTS[name]],
            }
            for name in attribute_names
        },
        "colours": {str(k): list(v) for k, v in MASK_PALETTE.items()},
    }
