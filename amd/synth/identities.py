"""Synthetic identities: Market-1501 attribute codes drawn from the real joint distribution, plus looks.

An identity is a row of the bundled table ``resources/synth/market_joint.json`` (every distinct
identity-level attribute combination of Market-1501 with its count), drawn with probability
proportional to its count, dressed with colours and a body that follow the codes. Colours vary in
shade from one identity to the next, so two "red" identities differ a little; look-alikes (a copy
of an earlier identity's codes and colour families with fresh shades and body) make retrieval hard.

Codes follow ``market_attribute.mat``: 1 = no / first option, 2 = yes / second option; ``age`` is
1..4 (young, teenager, adult, old). ``gender`` 1 male, 2 female; ``hair`` 1 short, 2 long; ``up``
1 long sleeves, 2 short; ``down`` 1 long lower-body clothing, 2 short; ``clothes`` 1 dress/skirt,
2 pants.
"""

from __future__ import annotations

import colorsys
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from pathlib import Path

import numpy as np

from amd.errors import AmdError
from amd.resources import resource_path

RGB = tuple[int, int, int]

UPPER_COLOURS: tuple[str, ...] = ("black", "blue", "gray", "green", "purple", "red", "white", "yellow")
LOWER_COLOURS: tuple[str, ...] = (
    "black",
    "blue",
    "brown",
    "gray",
    "green",
    "pink",
    "purple",
    "white",
    "yellow",
)

# Anchor shades per colour word; an identity takes one anchor and moves it a little in HSV. The
# "other" families dress identities whose annotation names no colour of the list (about a tenth of
# Market-1501), with colours that the list does not name.
_FAMILIES: dict[str, tuple[RGB, ...]] = {
    "black": ((26, 26, 28), (38, 35, 40), (22, 26, 36), (45, 42, 40)),
    "blue": ((28, 48, 110), (50, 90, 170), (95, 140, 200), (26, 34, 72), (60, 105, 150)),
    "gray": ((112, 112, 114), (150, 150, 148), (82, 84, 90), (178, 174, 168), (128, 124, 116)),
    "green": ((40, 100, 52), (72, 142, 72), (92, 112, 52), (32, 72, 52), (110, 160, 120)),
    "purple": ((92, 52, 122), (132, 82, 162), (70, 32, 92), (150, 110, 180)),
    "red": ((172, 30, 36), (202, 52, 50), (130, 22, 32), (222, 74, 84)),
    "white": ((236, 236, 232), (246, 242, 234), (222, 226, 232)),
    "yellow": ((226, 196, 42), (240, 222, 92), (202, 162, 32), (232, 206, 130)),
    "brown": ((110, 74, 44), (150, 110, 72), (88, 60, 40), (172, 138, 98)),
    "pink": ((232, 150, 172), (242, 182, 192), (202, 100, 142)),
    "orange": ((226, 122, 40), (240, 150, 70)),
    "beige": ((206, 186, 148), (218, 200, 170)),
    "teal": ((30, 120, 125), (60, 150, 150)),
}
_OTHER_UPPER = ("brown", "orange", "beige", "pink", "teal")
_OTHER_LOWER = ("red", "orange", "beige", "teal")

_SKIN: tuple[RGB, ...] = (
    (238, 200, 170), (228, 184, 150), (214, 168, 130), (196, 146, 108),
    (170, 118, 84), (132, 90, 64), (96, 64, 46),
)  # fmt: skip
_SKIN_WEIGHTS = (0.18, 0.24, 0.22, 0.16, 0.1, 0.06, 0.04)
_HAIR: tuple[RGB, ...] = ((20, 18, 18), (44, 32, 26), (82, 56, 36), (168, 136, 86), (112, 52, 30))
_HAIR_WEIGHTS = (0.55, 0.22, 0.12, 0.07, 0.04)
_GREY_HAIR: tuple[RGB, ...] = ((150, 148, 146), (196, 194, 190), (96, 94, 92))
_SHOES: tuple[RGB, ...] = (
    (24, 24, 26), (230, 230, 226), (120, 120, 124), (96, 66, 42), (40, 46, 80), (170, 40, 40), (200, 180, 150),
)  # fmt: skip
_SHOE_WEIGHTS = (0.4, 0.25, 0.1, 0.1, 0.07, 0.03, 0.05)
_CARRIED: tuple[RGB, ...] = (
    (24, 24, 28), (40, 46, 82), (110, 110, 114), (150, 36, 40), (96, 64, 40), (60, 96, 60),
    (200, 170, 120), (230, 228, 222), (210, 120, 160), (60, 120, 170),
)  # fmt: skip
_CARRIED_WEIGHTS = (0.3, 0.15, 0.12, 0.07, 0.1, 0.05, 0.08, 0.05, 0.04, 0.04)

UPPER_PATTERNS = ("plain", "stripes", "zip", "hem", "collar")
_UPPER_PATTERN_WEIGHTS = (0.5, 0.1, 0.18, 0.12, 0.1)
HAT_STYLES = ("cap", "beanie", "brim")


@dataclass(frozen=True)
class JointTable:
    """The joint distribution of identity attributes.

    Attributes:
        fields: The 27 attribute names, alphabetical, ``age`` included.
        codes: Codes, uint8 (R, 27).
        counts: Number of Market-1501 identities with each row, int64 (R,).
    """

    fields: tuple[str, ...]
    codes: np.ndarray
    counts: np.ndarray

    def rates(self) -> dict[str, float]:
        """Fraction of identities with code 2 for each binary attribute (``age``: fraction of code >= 3)."""
        w = self.counts / self.counts.sum()
        out = {}
        for j, name in enumerate(self.fields):
            hit = self.codes[:, j] >= 3 if name == "age" else self.codes[:, j] == 2
            out[name] = float(w[hit].sum())
        return out


@lru_cache(maxsize=4)
def load_joint_table(path: str | None = None) -> JointTable:
    """Read the joint attribute table (default: the bundled Market-1501 one).

    Raises:
        AmdError: The file is missing or malformed; the message names the file.
    """
    p = Path(path) if path is not None else resource_path("synth", "market_joint.json")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AmdError(f"{p}: cannot read the joint attribute table ({exc})") from None
    try:
        fields = tuple(str(f) for f in data["fields"])
        rows = data["rows"]
        codes = np.array([r["codes"] for r in rows], dtype=np.int64)
        counts = np.array([r["count"] for r in rows], dtype=np.int64)
    except (KeyError, TypeError, ValueError) as exc:
        raise AmdError(
            f"{p}: expected {{'fields': [...], 'rows': [{{'codes': [...], 'count': n}}]}} ({exc})"
        ) from None
    needed = {"age", "gender", "hair", "up", "down", "clothes", "hat", "backpack", "bag", "handbag"}
    if codes.ndim != 2 or codes.shape[1] != len(fields) or not needed <= set(fields):
        raise AmdError(f"{p}: rows must have one code per field and the fields must include {sorted(needed)}")
    if (counts <= 0).any() or codes.min() < 1 or codes.max() > 4:
        raise AmdError(f"{p}: counts must be positive and codes in 1..4")
    return JointTable(fields=fields, codes=codes.astype(np.uint8), counts=counts)


@dataclass(frozen=True)
class Appearance:
    """How an identity looks; every colour is RGB in 0..255.

    Lengths are fractions of the person's height measured from the top of the head.
    """

    upper_colour: str
    upper_rgb: RGB
    sleeve_rgb: RGB
    lower_colour: str
    lower_rgb: RGB
    skin_rgb: RGB
    hair_rgb: RGB
    shoe_rgb: RGB
    hat_rgb: RGB
    backpack_rgb: RGB
    bag_rgb: RGB
    handbag_rgb: RGB
    skirt: bool
    upper_pattern: str
    hat_style: str
    hair_end: float
    hair_volume: float
    sleeve_end: float
    lower_end: float
    upper_end: float
    shoulder: float
    hip: float
    head: float
    leg_width: float
    backpack_size: float
    bag_side: int
    handbag_side: int
    stride: float


@dataclass(frozen=True)
class Identity:
    """A synthetic person.

    Attributes:
        pid: Identity number (1-based; 0 is reserved for distractors).
        codes: Attribute name -> code as in ``market_attribute.mat`` (27 names, ``age`` included).
        look: Colours and body.
        twin_of: The identity whose codes and colour families this one copies, or ``None``.
    """

    pid: int
    codes: Mapping[str, int]
    look: Appearance
    twin_of: int | None = field(default=None)

    def has(self, name: str) -> bool:
        return self.codes.get(name, 1) == 2

    @property
    def female(self) -> bool:
        return self.codes["gender"] == 2

    def vector(self, names: Sequence[str]) -> np.ndarray:
        """Attribute vector in {-1, +1}, int8 (len(names),), in the order of ``names``."""
        return np.array([1 if self.codes[n] == 2 else -1 for n in names], dtype=np.int8)

    def to_dict(self) -> dict:
        return {
            "pid": self.pid,
            "codes": dict(self.codes),
            "twin_of": self.twin_of,
            "look": asdict(self.look),
        }


def _clip_rgb(rgb: Sequence[float]) -> RGB:
    r, g, b = (int(round(min(255.0, max(0.0, c)))) for c in rgb)
    return (r, g, b)


def shade(rgb: RGB, rng: np.random.Generator, hue: float, sat: float, val: float) -> RGB:
    """``rgb`` moved by random amounts up to ``hue`` (turns), ``sat`` and ``val`` (relative) in HSV."""
    h, s, v = colorsys.rgb_to_hsv(*(c / 255.0 for c in rgb))
    h = (h + rng.uniform(-hue, hue)) % 1.0
    s = min(1.0, max(0.0, s * (1.0 + rng.uniform(-sat, sat))))
    v = min(1.0, max(0.0, v * (1.0 + rng.uniform(-val, val))))
    return _clip_rgb([255.0 * c for c in colorsys.hsv_to_rgb(h, s, v)])


def _pick(rng: np.random.Generator, items: Sequence, weights: Sequence[float] | None = None):
    if weights is None:
        return items[int(rng.integers(len(items)))]
    p = np.asarray(weights, dtype=np.float64)
    return items[int(rng.choice(len(items), p=p / p.sum()))]


def _family_shade(family: str, rng: np.random.Generator) -> RGB:
    base = _pick(rng, _FAMILIES[family])
    if family in ("black", "white", "gray"):
        # Achromatic colours keep a low saturation, or "white" would turn pastel.
        return shade(base, rng, 0.02, 0.3, 0.08)
    return shade(base, rng, 0.025, 0.15, 0.14)


def _garment_colours(
    codes: Mapping[str, int],
    prefix: str,
    words: Sequence[str],
    other: Sequence[str],
    rng: np.random.Generator,
) -> tuple[str, str | None]:
    named = [w for w in words if codes.get(prefix + w, 1) == 2]
    if not named:
        return "other:" + _pick(rng, other), None
    order = [named[i] for i in rng.permutation(len(named))]
    return order[0], (order[1] if len(order) > 1 else None)


def _family_of(colour: str) -> str:
    return colour.split(":", 1)[-1]


def sample_appearance(codes: Mapping[str, int], rng: np.random.Generator) -> Appearance:
    """Colours and body for attribute ``codes``."""
    female = codes["gender"] == 2
    age = int(codes["age"])
    upper, upper2 = _garment_colours(codes, "up", UPPER_COLOURS, _OTHER_UPPER, rng)
    lower, _ = _garment_colours(codes, "down", LOWER_COLOURS, _OTHER_LOWER, rng)
    upper_rgb = _family_shade(_family_of(upper), rng)
    # Two annotated upper colours: the second one dresses the sleeves.
    sleeve_rgb = _family_shade(upper2, rng) if upper2 else upper_rgb
    lower_rgb = _family_shade(_family_of(lower), rng)
    if age == 4 and rng.random() < 0.7:
        hair = shade(_pick(rng, _GREY_HAIR), rng, 0.0, 0.1, 0.1)
    else:
        hair = shade(_pick(rng, _HAIR, _HAIR_WEIGHTS), rng, 0.01, 0.1, 0.15)
    long_hair = codes["hair"] == 2
    short_sleeves = codes["up"] == 2
    short_lower = codes["down"] == 2
    skirt = codes["clothes"] == 1
    if skirt:
        lower_end = rng.uniform(0.64, 0.72) if short_lower else rng.uniform(0.8, 0.9)
    else:
        lower_end = rng.uniform(0.6, 0.68) if short_lower else 0.95
    young = age <= 2
    return Appearance(
        upper_colour=upper if upper2 is None else f"{upper}+{upper2}",
        upper_rgb=upper_rgb,
        sleeve_rgb=sleeve_rgb,
        lower_colour=lower,
        lower_rgb=lower_rgb,
        skin_rgb=shade(_pick(rng, _SKIN, _SKIN_WEIGHTS), rng, 0.01, 0.08, 0.06),
        hair_rgb=hair,
        shoe_rgb=shade(_pick(rng, _SHOES, _SHOE_WEIGHTS), rng, 0.02, 0.15, 0.12),
        hat_rgb=_family_shade(
            _pick(rng, ("black", "white", "gray", "blue", "red", "beige", "brown", "yellow")), rng
        ),
        backpack_rgb=shade(_pick(rng, _CARRIED, _CARRIED_WEIGHTS), rng, 0.02, 0.15, 0.12),
        bag_rgb=shade(_pick(rng, _CARRIED, _CARRIED_WEIGHTS), rng, 0.02, 0.15, 0.12),
        handbag_rgb=shade(_pick(rng, _CARRIED, _CARRIED_WEIGHTS), rng, 0.02, 0.15, 0.12),
        skirt=bool(skirt),
        upper_pattern=_pick(rng, UPPER_PATTERNS, _UPPER_PATTERN_WEIGHTS),
        hat_style=_pick(rng, HAT_STYLES, (0.5, 0.3, 0.2)),
        hair_end=float(rng.uniform(0.2, 0.34) if long_hair else rng.uniform(0.075, 0.1)),
        hair_volume=float(rng.uniform(0.9, 1.2) if long_hair else rng.uniform(0.92, 1.05)),
        sleeve_end=float(rng.uniform(0.24, 0.29) if short_sleeves else rng.uniform(0.43, 0.46)),
        lower_end=float(lower_end),
        upper_end=float(rng.uniform(0.47, 0.53)),
        shoulder=float(rng.uniform(0.105, 0.12) if female else rng.uniform(0.12, 0.14))
        * (0.92 if young else 1.0),
        hip=float(rng.uniform(0.1, 0.118) if female else rng.uniform(0.092, 0.108)),
        head=float(rng.uniform(1.04, 1.12) if young else rng.uniform(0.95, 1.04)),
        leg_width=float(rng.uniform(0.85, 1.0) if female else rng.uniform(0.95, 1.15)),
        backpack_size=float(rng.uniform(0.85, 1.2)),
        bag_side=int(rng.choice((-1, 1))),
        handbag_side=int(rng.choice((-1, 1))),
        stride=float(rng.uniform(0.7, 1.2)),
    )


def _twin_look(src: Appearance, codes: Mapping[str, int], rng: np.random.Generator) -> Appearance:
    """A look-alike: same colour words and garment cut, every shade moved slightly, a new body."""
    fresh = sample_appearance(codes, rng)

    def near(rgb: RGB) -> RGB:
        return shade(rgb, rng, 0.015, 0.1, 0.1)

    return replace(
        fresh,
        upper_colour=src.upper_colour,
        upper_rgb=near(src.upper_rgb),
        sleeve_rgb=near(src.sleeve_rgb),
        lower_colour=src.lower_colour,
        lower_rgb=near(src.lower_rgb),
        upper_pattern=src.upper_pattern if rng.random() < 0.6 else fresh.upper_pattern,
        hat_style=src.hat_style,
        hat_rgb=near(src.hat_rgb),
        backpack_rgb=near(src.backpack_rgb),
        bag_rgb=near(src.bag_rgb),
        handbag_rgb=near(src.handbag_rgb),
    )


def sample_identities(
    n: int,
    rng: np.random.Generator,
    *,
    first_pid: int = 1,
    lookalike_rate: float = 0.0,
    table: JointTable | None = None,
) -> list[Identity]:
    """Draw ``n`` identities from the joint attribute distribution.

    Args:
        n: Number of identities.
        rng: Random generator; the result depends only on its state.
        first_pid: Identity number of the first one; the rest follow consecutively.
        lookalike_rate: Probability that an identity copies the codes and colour families of an
            earlier one of this draw (with new shades and body) instead of drawing its own.
        table: Joint distribution; default the bundled Market-1501 table.

    Returns:
        ``n`` identities with pids ``first_pid .. first_pid + n - 1``.
    """
    table = table or load_joint_table()
    p = table.counts / table.counts.sum()
    rows = rng.choice(len(p), size=n, p=p)
    out: list[Identity] = []
    for i, row in enumerate(rows):
        pid = first_pid + i
        if out and rng.random() < lookalike_rate:
            src = out[int(rng.integers(len(out)))]
            out.append(Identity(pid, dict(src.codes), _twin_look(src.look, src.codes, rng), twin_of=src.pid))
            continue
        codes = {f: int(c) for f, c in zip(table.fields, table.codes[row], strict=True)}
        out.append(Identity(pid, codes, sample_appearance(codes, rng)))
    return out
