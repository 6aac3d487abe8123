"""Draw one synthetic pedestrian crop and its part label map.

The person is painted part by part, back to front, at ``SUPERSAMPLE`` times the output size into
two 8-bit layers: a label layer (the part id of each sub-pixel, see :mod:`amd.synth.parts`) and a
shade layer (folds, far limbs, face details). Colours come from the label layer through the
identity's palette, so each part's pixels are by construction exactly the pixels of its label. The
layers are then averaged down (smooth edges), composited over the camera's scene and passed
through the camera (light, colour cast, contrast, blur, noise). A pixel of the output label map
takes the label that covers most of its sub-pixels.

Body coordinates are fractions of the person's height ``hp``: x to the image's right from the body
axis, y down from the top of the head (feet at about 0.97).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from amd.synth import parts as P
from amd.synth.cameras import VIEWS, Camera, apply_camera, background
from amd.synth.identities import RGB, Appearance, Identity

SUPERSAMPLE = 2
_BASE_SHADE = 200  # shade layer value meaning "lit as the part's colour"
_FAR = 160  # limbs on the far side of the body
# Occluder sub-parts have their own colours while drawing and become parts.OCCLUDER afterwards.
_OCC_A, _OCC_B, _OCC_C, _OCC_D = 251, 252, 253, 254

Point = tuple[float, float]

_OCCLUDER_LUT = np.arange(256, dtype=np.uint8)
_OCCLUDER_LUT[_OCC_A:] = P.OCCLUDER


@dataclass(frozen=True)
class Crop:
    """One rendered crop.

    Attributes:
        image: The camera's picture, uint8 (H, W, 3).
        labels: Part label map, uint8 (H, W): the part visible at each pixel (see :mod:`amd.synth.parts`).
        view: One of ``front``, ``back``, ``left``, ``right`` (where the person faces, seen from the camera).
        occluded: Fraction of the person's pixels hidden by the occluder, 0..1.
        occluder: Kind of occluder, or ``None``.
        scale: Person height as a fraction of the crop height.
    """

    image: np.ndarray
    labels: np.ndarray
    view: str
    occluded: float
    occluder: str | None
    scale: float


class _Canvas:
    """Two layers drawn together: part labels and shading."""

    def __init__(self, size: tuple[int, int], hp: float, cx: float, top: float, mirror: int = 1) -> None:
        h, w = size
        self.lab = Image.new("L", (w, h), 0)
        self.shd = Image.new("L", (w, h), _BASE_SHADE)
        self.dl = ImageDraw.Draw(self.lab)
        self.ds = ImageDraw.Draw(self.shd)
        self.hp, self.cx, self.top, self.mirror = hp, cx, top, mirror

    def pt(self, p: Point) -> Point:
        return (self.cx + self.mirror * p[0] * self.hp, self.top + p[1] * self.hp)

    def poly(self, pts: list[Point], part: int, shade: int = _BASE_SHADE) -> None:
        xy = [self.pt(p) for p in pts]
        self.dl.polygon(xy, fill=part)
        self.ds.polygon(xy, fill=shade)

    def _box(self, c: Point, rx: float, ry: float) -> list[float]:
        x, y = self.pt(c)
        return [x - rx * self.hp, y - ry * self.hp, x + rx * self.hp, y + ry * self.hp]

    def ellipse(self, c: Point, rx: float, ry: float, part: int, shade: int = _BASE_SHADE) -> None:
        box = self._box(c, rx, ry)
        self.dl.ellipse(box, fill=part)
        self.ds.ellipse(box, fill=shade)

    def cap(self, c: Point, rx: float, ry: float, part: int, shade: int = _BASE_SHADE) -> None:
        """Upper half of an ellipse (symmetric, so mirroring needs no change of angles)."""
        box = self._box(c, rx, ry)
        self.dl.chord(box, 180, 360, fill=part)
        self.ds.chord(box, 180, 360, fill=shade)

    def rrect(
        self, x0: float, y0: float, x1: float, y1: float, r: float, part: int, shade: int = _BASE_SHADE
    ) -> None:
        a, b = self.pt((x0, y0)), self.pt((x1, y1))
        box = [min(a[0], b[0]), min(a[1], b[1]), max(a[0], b[0]), max(a[1], b[1])]
        rad = max(1, int(r * self.hp))
        self.dl.rounded_rectangle(box, radius=rad, fill=part)
        self.ds.rounded_rectangle(box, radius=rad, fill=shade)

    def limb(self, p0: Point, p1: Point, r0: float, r1: float, part: int, shade: int = _BASE_SHADE) -> None:
        """A tapered segment with round ends."""
        (x0, y0), (x1, y1) = self.pt(p0), self.pt(p1)
        dx, dy = x1 - x0, y1 - y0
        n = math.hypot(dx, dy) or 1.0
        nx, ny = -dy / n, dx / n
        a, b = r0 * self.hp, r1 * self.hp
        quad = [(x0 + nx * a, y0 + ny * a), (x1 + nx * b, y1 + ny * b), (x1 - nx * b, y1 - ny * b),
                (x0 - nx * a, y0 - ny * a)]  # fmt: skip
        for d in (self.dl, self.ds):
            fill = part if d is self.dl else shade
            d.polygon(quad, fill=fill)
            d.ellipse([x0 - a, y0 - a, x0 + a, y0 + a], fill=fill)
            d.ellipse([x1 - b, y1 - b, x1 + b, y1 + b], fill=fill)

    def chain(
        self,
        pts: tuple[Point, Point, Point],
        radii: Sequence[float],
        u: float,
        part: int,
        shade: int = _BASE_SHADE,
    ) -> None:
        """The two-segment limb ``pts`` from its start to the fraction ``u`` of its length (0.5 = the joint)."""
        if u <= 0:
            return
        end, r_end = _along(pts, radii, u)
        if u <= 0.5:
            self.limb(pts[0], end, radii[0], r_end, part, shade)
        else:
            self.limb(pts[0], pts[1], radii[0], radii[1], part, shade)
            self.limb(pts[1], end, radii[1], r_end, part, shade)

    def mark(self, c: Point, rx: float, ry: float, shade: int) -> None:
        """A detail that changes only the shading (eyes, pockets)."""
        self.ds.ellipse(self._box(c, rx, ry), fill=shade)

    def mark_line(self, p0: Point, p1: Point, width: float, shade: int) -> None:
        self.ds.line([self.pt(p0), self.pt(p1)], fill=shade, width=max(1, int(width * self.hp)))


def _along(pts: tuple[Point, Point, Point], radii: Sequence[float], u: float) -> tuple[Point, float]:
    u = min(1.0, max(0.0, u))
    if u <= 0.5:
        t, a, b, ra, rb = u / 0.5, pts[0], pts[1], radii[0], radii[1]
    else:
        t, a, b, ra, rb = (u - 0.5) / 0.5, pts[1], pts[2], radii[1], radii[2]
    return (a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t), ra + (rb - ra) * t


@dataclass
class _Pose:
    """Per-crop body: the identity's proportions with small changes, and the walking phase."""

    sw: float  # half shoulder width
    hw: float  # half hip width
    ww: float  # half waist width
    hs: float  # head scale
    lw: float  # leg width factor
    phase: float
    amp: float
    hair_front: bool
    look: Appearance


_SHOULDER_Y = 0.19
_HIP_Y = 0.5
_ANKLE_Y = 0.945
_LEG_RADII = (0.05, 0.037, 0.025)
_ARM_RADII = (0.031, 0.026, 0.021)


def _garment_u(end_y: float, start_y: float, stop_y: float) -> float:
    """Fraction along a limb that a garment ending at height ``end_y`` covers (standing pose)."""
    return (end_y - start_y) / (stop_y - start_y)


def _draw_arm(cv: _Canvas, pose: _Pose, pts: tuple[Point, Point, Point], shade: int) -> None:
    lk = pose.look
    radii = tuple(r * pose.lw**0.5 for r in _ARM_RADII)
    cv.chain(pts, radii, 1.0, P.ARMS, shade)
    hand, _ = _along(pts, radii, 1.0)
    cv.ellipse((hand[0], hand[1] + 0.014), 0.02, 0.022, P.ARMS, shade)
    u = _garment_u(lk.sleeve_end, _SHOULDER_Y, 0.455)
    cv.chain(pts, tuple(r + 0.006 for r in radii), u, P.SLEEVES, shade)


def _draw_leg(
    cv: _Canvas, pose: _Pose, pts: tuple[Point, Point, Point], shade: int, shoe_dx: float, shoe_rx: float
) -> None:
    lk = pose.look
    radii = tuple(r * pose.lw for r in _LEG_RADII)
    cv.chain(pts, radii, 1.0, P.LEGS, shade)
    if not lk.skirt:
        u = _garment_u(lk.lower_end, _HIP_Y, _ANKLE_Y)
        cv.chain(pts, (radii[0] + 0.008, radii[1] + 0.007, radii[2] + 0.006), u, P.LOWER, shade)
    ankle = pts[2]
    cv.ellipse((ankle[0] + shoe_dx, ankle[1] + 0.022), shoe_rx, 0.02, P.SHOES, shade)


def _draw_pelvis(cv: _Canvas, pose: _Pose, side_view: bool) -> None:
    if side_view:
        cv.poly(
            [(-0.062, 0.45), (0.062, 0.45), (0.07, 0.53), (0.02, 0.57), (-0.05, 0.57), (-0.07, 0.53)], P.LOWER
        )
    else:
        cv.poly([(-pose.ww - 0.006, 0.45), (pose.ww + 0.006, 0.45), (pose.hw + 0.004, 0.52), (0.015, 0.575),
                 (-0.015, 0.575), (-pose.hw - 0.004, 0.52)], P.LOWER)  # fmt: skip


def _draw_skirt(cv: _Canvas, pose: _Pose, side_view: bool) -> None:
    lk = pose.look
    flare = 0.02 + 0.2 * (lk.lower_end - _HIP_Y)
    sway = 0.015 * math.sin(pose.phase) * pose.amp
    if side_view:
        cv.poly([(-0.062, 0.45), (0.062, 0.45), (0.07 + flare + sway, lk.lower_end),
                 (-0.075 - flare + sway, lk.lower_end)], P.LOWER)  # fmt: skip
    else:
        w = pose.hw + flare
        cv.poly([(-pose.ww - 0.004, 0.45), (pose.ww + 0.004, 0.45), (w + sway, lk.lower_end),
                 (-w + sway, lk.lower_end)], P.LOWER)  # fmt: skip
        cv.mark_line((0.0, 0.47), (sway, lk.lower_end), 0.004, 185)


def _torso_marks(cv: _Canvas, pose: _Pose, front: bool, side_view: bool) -> None:
    lk = pose.look
    pattern = lk.upper_pattern
    if pattern == "zip" and front:
        cv.mark_line((0.0, 0.17), (0.0, lk.upper_end), 0.006, 150)
    elif pattern == "hem":
        x = 0.07 if side_view else pose.hw + 0.005
        cv.poly(
            [(-x, lk.upper_end - 0.03), (x, lk.upper_end - 0.03), (x, lk.upper_end), (-x, lk.upper_end)],
            P.TORSO,
            160,
        )
    elif pattern == "collar" and front and not side_view:
        cv.poly([(-0.035, 0.158), (0.035, 0.158), (0.0, 0.215)], P.TORSO, 240)


def _head(cv: _Canvas, pose: _Pose, view: str) -> None:
    hs = pose.hs
    c = (0.004 if view in ("left", "right") else 0.0, 0.068 * hs)
    cv.ellipse(c, 0.05 * hs, 0.068 * hs, P.HEAD)
    if view == "front":
        for s in (-1, 1):
            cv.mark((s * 0.018 * hs, 0.072 * hs), 0.006 * hs, 0.004 * hs, 95)
        cv.mark((0.0, 0.108 * hs), 0.012 * hs, 0.003 * hs, 165)
    elif view in ("left", "right"):
        cv.ellipse((0.05 * hs, 0.08 * hs), 0.012 * hs, 0.012 * hs, P.HEAD)
        cv.mark((0.032 * hs, 0.072 * hs), 0.005 * hs, 0.004 * hs, 95)


def _hair(cv: _Canvas, pose: _Pose, view: str, long_hair: bool) -> None:
    lk, hs = pose.look, pose.hs
    v = lk.hair_volume
    if view == "back":
        cv.ellipse((0.0, 0.062 * hs), 0.055 * hs * v, 0.066 * hs, P.HAIR)
        if long_hair:
            cv.rrect(-0.062 * v * hs, 0.05, 0.062 * v * hs, lk.hair_end, 0.03, P.HAIR)
        return
    if view == "front":
        cv.cap((0.0, 0.052 * hs), 0.056 * hs * v, 0.057 * hs, P.HAIR)
        if long_hair and pose.hair_front:
            for s in (-1, 1):
                cv.poly([(s * 0.03 * hs, 0.06), (s * 0.058 * hs * v, 0.05), (s * 0.068 * v, lk.hair_end),
                         (s * 0.036, lk.hair_end - 0.01)], P.HAIR)  # fmt: skip
        return
    cv.cap((0.0, 0.055 * hs), 0.058 * hs * v, 0.06 * hs, P.HAIR)
    cv.ellipse((-0.016 * hs, 0.066 * hs), 0.042 * hs * v, 0.058 * hs, P.HAIR)
    if long_hair:
        cv.poly(
            [(-0.058 * hs * v, 0.05), (-0.01, 0.05), (-0.028, lk.hair_end), (-0.072 * v, lk.hair_end)], P.HAIR
        )


def _hat(cv: _Canvas, pose: _Pose, view: str) -> None:
    lk, hs = pose.look, pose.hs
    side = view in ("left", "right")
    if lk.hat_style == "cap":
        cv.cap((0.0, 0.05 * hs), 0.058 * hs, 0.058 * hs, P.HAT)
        if view == "front":
            cv.ellipse((0.0, 0.05 * hs), 0.05 * hs, 0.011 * hs, P.HAT, 165)
        elif side:
            cv.limb((0.02 * hs, 0.047 * hs), (0.09 * hs, 0.053 * hs), 0.008 * hs, 0.006 * hs, P.HAT, 170)
    elif lk.hat_style == "beanie":
        cv.cap((0.0, 0.058 * hs), 0.058 * hs, 0.064 * hs, P.HAT)
        cv.rrect(-0.058 * hs, 0.046 * hs, 0.058 * hs, 0.06 * hs, 0.004, P.HAT, 175)
    else:
        cv.cap((0.0, 0.04 * hs), 0.047 * hs, 0.05 * hs, P.HAT)
        cv.ellipse((0.0, 0.04 * hs), 0.09 * hs, 0.014 * hs, P.HAT, 185)


def _draw_front_back(cv: _Canvas, ident: Identity, pose: _Pose, back: bool) -> None:
    lk = pose.look
    s = math.sin(pose.phase) * pose.amp
    sw, hw, ww = pose.sw, pose.hw, pose.ww
    long_hair = ident.has("hair")
    # Image side of the person's own right hand: left in a front view, right in a back view.
    own = 1 if back else -1
    legs = {}
    for k in (-1, 1):
        lift = 0.035 * max(0.0, k * s)
        legs[k] = ((k * 0.047, _HIP_Y), (k * 0.05, 0.72 - 0.5 * lift), (k * 0.052, _ANKLE_Y - lift))
    arms = {}
    for k in (-1, 1):
        fwd = max(0.0, -k * s)
        arms[k] = ((k * (sw - 0.018), _SHOULDER_Y), (k * (sw + 0.012), 0.33 - 0.02 * fwd),
                   (k * (sw + 0.006 - 0.02 * fwd), 0.455 - 0.06 * fwd))  # fmt: skip

    if ident.has("backpack") and not back:
        b = lk.backpack_size
        cv.rrect(-0.7 * sw * b, 0.15, 0.7 * sw * b, 0.17 + 0.25 * b, 0.02, P.BACKPACK)
    if long_hair and not back:
        cv.rrect(
            -0.062 * lk.hair_volume * pose.hs,
            0.04,
            0.062 * lk.hair_volume * pose.hs,
            lk.hair_end,
            0.03,
            P.HAIR,
        )
    for k in (-1, 1):
        _draw_leg(cv, pose, legs[k], _BASE_SHADE, 0.0, 0.033)
    if not lk.skirt:
        _draw_pelvis(cv, pose, side_view=False)
    else:
        _draw_skirt(cv, pose, side_view=False)
    cv.poly([(-0.024, 0.1), (0.024, 0.1), (0.026, 0.18), (-0.026, 0.18)], P.HEAD)
    cv.poly([(-0.03, 0.155), (-(sw - 0.025), 0.16), (-sw, 0.185), (-(sw - 0.008), 0.26), (-ww, 0.4),
             (-(hw + 0.006), lk.upper_end), (hw + 0.006, lk.upper_end), (ww, 0.4), (sw - 0.008, 0.26),
             (sw, 0.185), (sw - 0.025, 0.16), (0.03, 0.155)], P.TORSO)  # fmt: skip
    _torso_marks(cv, pose, front=not back, side_view=False)
    if not back:
        cv.poly([(-0.026, 0.152), (0.026, 0.152), (0.0, 0.185)], P.HEAD)
    if ident.has("backpack"):
        b = lk.backpack_size
        if back:
            cv.rrect(-0.7 * sw * b, 0.17, 0.7 * sw * b, 0.17 + 0.25 * b, 0.025, P.BACKPACK)
            cv.rrect(-0.5 * sw * b, 0.29 * b, 0.5 * sw * b, 0.16 + 0.24 * b, 0.015, P.BACKPACK, 175)
        else:
            for k in (-1, 1):
                cv.limb((k * 0.5 * sw, 0.163), (k * 0.56 * sw, 0.34), 0.011, 0.011, P.BACKPACK)
    bag_k = lk.bag_side * (-own)
    if ident.has("bag"):
        cv.limb((-bag_k * 0.55 * sw, 0.162), (bag_k * (hw + 0.02), 0.47), 0.008, 0.008, P.BAG)
        cv.rrect(bag_k * (hw - 0.01), 0.45, bag_k * (hw + 0.075), 0.565, 0.012, P.BAG)
    for k in (-1, 1):
        _draw_arm(cv, pose, arms[k], _BASE_SHADE)
    if ident.has("handbag"):
        k = lk.handbag_side * (-own)
        hand = arms[k][2]
        _handbag(cv, (hand[0] + k * 0.012, hand[1] + 0.03))
    _head(cv, pose, "back" if back else "front")
    _hair(cv, pose, "back" if back else "front", long_hair)
    if ident.has("hat"):
        _hat(cv, pose, "back" if back else "front")


def _handbag(cv: _Canvas, top: Point) -> None:
    x, y = top
    cv.limb((x - 0.02, y + 0.015), (x, y - 0.012), 0.005, 0.005, P.HANDBAG)
    cv.limb((x + 0.02, y + 0.015), (x, y - 0.012), 0.005, 0.005, P.HANDBAG)
    cv.rrect(x - 0.042, y + 0.012, x + 0.042, y + 0.085, 0.01, P.HANDBAG)


def _side_legs(pose: _Pose) -> tuple[dict[int, tuple[Point, Point, Point]], float]:
    """Both legs in a side view, and the vertical shift that puts the lower foot on the ground."""
    a = 0.42 * pose.amp
    legs = {}
    for k in (-1, 1):  # -1 far leg, +1 near leg
        alpha = k * a * math.sin(pose.phase)
        flex = 0.55 * pose.amp * max(0.0, k * math.cos(pose.phase))
        hip = (-0.004, _HIP_Y)
        knee = (hip[0] + 0.235 * math.sin(alpha), hip[1] + 0.235 * math.cos(alpha))
        beta = alpha - flex
        ankle = (knee[0] + 0.225 * math.sin(beta), knee[1] + 0.225 * math.cos(beta))
        legs[k] = (hip, knee, ankle)
    lowest = max(legs[k][2][1] for k in legs)
    return legs, _ANKLE_Y - lowest


def _side_arms(pose: _Pose) -> dict[int, tuple[Point, Point, Point]]:
    arms = {}
    for k in (-1, 1):
        gamma = -k * 0.38 * pose.amp * math.sin(pose.phase)
        delta = 0.15 + 0.5 * max(0.0, gamma)
        sh = (-0.004, _SHOULDER_Y)
        el = (sh[0] + 0.14 * math.sin(gamma), sh[1] + 0.14 * math.cos(gamma))
        wr = (el[0] + 0.125 * math.sin(gamma + delta), el[1] + 0.125 * math.cos(gamma + delta))
        arms[k] = (sh, el, wr)
    return arms


def _draw_side(cv: _Canvas, ident: Identity, pose: _Pose) -> None:
    lk = pose.look
    long_hair = ident.has("hair")
    legs, dy = _side_legs(pose)
    cv.top += dy * cv.hp
    arms = _side_arms(pose)
    depth = 0.066 if ident.female else 0.064
    # In a "right" view the person's left side faces the camera; own-side items flip with the view.
    near_side = -1 if cv.mirror == 1 else 1

    if ident.has("handbag") and lk.handbag_side != near_side:
        _draw_arm(cv, pose, arms[-1], _FAR)
        hand = arms[-1][2]
        _handbag(cv, (hand[0], hand[1] + 0.03))
    else:
        _draw_arm(cv, pose, arms[-1], _FAR)
    _draw_leg(cv, pose, legs[-1], _FAR, 0.026, 0.046)
    if ident.has("backpack"):
        b = lk.backpack_size
        cv.rrect(-depth - 0.085 * b, 0.17, -depth + 0.02, 0.17 + 0.25 * b, 0.025, P.BACKPACK)
        cv.rrect(-depth - 0.085 * b, 0.27, -depth - 0.03, 0.16 + 0.24 * b, 0.012, P.BACKPACK, 175)
    if ident.has("bag") and lk.bag_side != near_side:
        cv.rrect(-0.03, 0.45, 0.06, 0.56, 0.012, P.BAG, _FAR)
    cv.poly([(-0.022, 0.1), (0.02, 0.1), (0.024, 0.18), (-0.026, 0.18)], P.HEAD)
    cv.poly([(-0.03, 0.148), (-depth, 0.18), (-depth + 0.004, 0.3), (-depth + 0.01, 0.4),
             (-depth - 0.004, lk.upper_end), (depth + 0.004, lk.upper_end), (depth - 0.006, 0.4),
             (depth + (0.008 if ident.female else 0.0), 0.27), (depth - 0.012, 0.18), (0.022, 0.152)],
            P.TORSO)  # fmt: skip
    _torso_marks(cv, pose, front=False, side_view=True)
    _draw_leg(cv, pose, legs[1], _BASE_SHADE, 0.026, 0.046)
    if not lk.skirt:
        _draw_pelvis(cv, pose, side_view=True)
        # The near thigh shows in front of the hips.
        cv.chain(
            legs[1],
            tuple(r * pose.lw + 0.008 for r in _LEG_RADII),
            min(0.45, _garment_u(lk.lower_end, _HIP_Y, _ANKLE_Y)),
            P.LOWER,
        )
    else:
        _draw_skirt(cv, pose, side_view=True)
    if ident.has("backpack"):
        cv.limb((0.01, 0.16), (0.035, 0.3), 0.01, 0.01, P.BACKPACK)
    if ident.has("bag"):
        cv.limb((-0.01, 0.158), (0.012, 0.46), 0.008, 0.008, P.BAG)
        if lk.bag_side == near_side:
            cv.rrect(-0.035, 0.45, 0.055, 0.565, 0.012, P.BAG)
    _draw_arm(cv, pose, arms[1], _BASE_SHADE + 5)
    if ident.has("handbag") and lk.handbag_side == near_side:
        hand = arms[1][2]
        _handbag(cv, (hand[0], hand[1] + 0.03))
    _head(cv, pose, "right")
    _hair(cv, pose, "right", long_hair)
    if ident.has("hat"):
        _hat(cv, pose, "right")


def _occluder(cv: _Canvas, kind: str, rng: np.random.Generator, size: tuple[int, int]) -> dict[int, RGB]:
    """Draw a foreground object over the person; returns the colours of its sub-parts."""
    h, w = size
    dl, ds = cv.dl, cv.ds

    def both(fn: str, box, part: int, shade: int = _BASE_SHADE, **kw) -> None:
        getattr(dl, fn)(box, fill=part, **kw)
        getattr(ds, fn)(box, fill=shade, **kw)

    def rgb(*choices: RGB) -> RGB:
        base = np.asarray(choices[int(rng.integers(len(choices)))], dtype=np.float64)
        r, g, b = (int(c) for c in np.clip(base * rng.uniform(0.85, 1.15), 0, 255))
        return (r, g, b)

    if kind == "pole":
        # Occluders are placed over the body: one that misses the person only clutters the scene.
        x = cv.cx + rng.uniform(-0.3, 0.3) * w
        half = rng.uniform(0.035, 0.08) * w
        both("rectangle", [x - half, 0, x + half, h], _OCC_D)
        ds.rectangle([x - half * 0.4, 0, x - half * 0.1, h], fill=235)
        return {_OCC_D: rgb((120, 124, 128), (50, 80, 60), (200, 170, 40), (70, 70, 75))}
    if kind == "bin":
        bw = rng.uniform(0.35, 0.65) * w
        x = cv.cx + rng.uniform(-0.55, 0.55) * w - bw / 2
        top = h * (1 - rng.uniform(0.18, 0.36))
        both("rounded_rectangle", [x, top, x + bw, h + 10], _OCC_D, radius=int(bw * 0.15))
        ds.rectangle([x, top + 0.1 * (h - top), x + bw, top + 0.16 * (h - top)], fill=160)
        return {_OCC_D: rgb((60, 110, 70), (90, 95, 100), (40, 80, 140), (210, 120, 40))}
    if kind == "car":
        left = rng.random() < 0.5
        reach = rng.uniform(0.3, 0.6) * w
        top = h * (1 - rng.uniform(0.25, 0.42))
        box = [-w, top, reach, h + 40] if left else [w - reach, top, 2 * w, h + 40]
        both("rounded_rectangle", box, _OCC_D, radius=int(0.12 * h))
        ds.rectangle([box[0], top + 0.25 * (h - top), box[2], top + 0.3 * (h - top)], fill=235)
        return {_OCC_D: rgb((30, 30, 35), (200, 200, 205), (140, 20, 25), (40, 60, 110), (150, 150, 150))}
    if kind == "railing":
        y = rng.uniform(0.5, 0.7) * h
        t = max(2, int(0.018 * h))
        both("rectangle", [0, y, w, y + t], _OCC_D)
        both("rectangle", [0, y + 0.12 * h, w, y + 0.12 * h + t // 2 + 1], _OCC_D, 180)
        x = rng.uniform(0, 0.3) * w
        while x < w:
            both("rectangle", [x, y, x + t, h], _OCC_D, 190)
            x += rng.uniform(0.35, 0.6) * w
        return {_OCC_D: rgb((150, 155, 160), (230, 230, 225), (60, 60, 60))}
    if kind == "bush":
        n = int(rng.integers(3, 6))
        top = h * (1 - rng.uniform(0.2, 0.34))
        for _ in range(n):
            cx = rng.uniform(-0.1, 1.1) * w
            r = rng.uniform(0.18, 0.35) * w
            both(
                "ellipse",
                [cx - r, top + rng.uniform(0, 0.1) * h, cx + r, h + r],
                _OCC_D,
                int(rng.integers(150, 230)),
            )
        return {_OCC_D: rgb((50, 100, 45), (70, 120, 60), (40, 80, 40))}
    # Another pedestrian passing in front, closer to the camera, cut by the crop's edge.
    left = rng.random() < 0.5
    scale = rng.uniform(1.05, 1.3) * cv.hp
    cx = (rng.uniform(0.0, 0.22) if left else rng.uniform(0.78, 1.0)) * w
    top = cv.top - rng.uniform(0.0, 0.15) * cv.hp
    half = 0.15 * scale
    both("ellipse", [cx - 0.05 * scale, top, cx + 0.05 * scale, top + 0.14 * scale], _OCC_C)
    both(
        "rounded_rectangle",
        [cx - 0.06 * scale, top + 0.48 * scale, cx + 0.06 * scale, top + 1.0 * scale],
        _OCC_B,
        radius=int(0.03 * scale),
    )
    both(
        "rounded_rectangle",
        [cx - half, top + 0.15 * scale, cx + half, top + 0.55 * scale],
        _OCC_A,
        radius=int(0.04 * scale),
    )
    return {
        _OCC_A: rgb(
            (30, 30, 30), (200, 40, 40), (230, 230, 230), (40, 70, 140), (120, 120, 120), (90, 120, 60)
        ),
        _OCC_B: rgb((30, 30, 40), (40, 50, 90), (110, 110, 110), (160, 140, 110)),
        _OCC_C: rgb((220, 180, 150), (180, 130, 100), (30, 25, 25)),
    }


def _palette(look: Appearance, jitter: np.ndarray | None) -> np.ndarray:
    pal = np.zeros((256, 3), dtype=np.float32)
    colours = {
        P.HEAD: look.skin_rgb, P.HAIR: look.hair_rgb, P.HAT: look.hat_rgb, P.TORSO: look.upper_rgb,
        P.SLEEVES: look.sleeve_rgb, P.ARMS: look.skin_rgb, P.LOWER: look.lower_rgb, P.LEGS: look.skin_rgb,
        P.SHOES: look.shoe_rgb, P.BACKPACK: look.backpack_rgb, P.BAG: look.bag_rgb, P.HANDBAG: look.handbag_rgb,
    }  # fmt: skip
    for part, rgb in colours.items():
        pal[part] = rgb
    if jitter is not None:
        pal[1 : P.HANDBAG + 1] *= jitter[:, None]
    return pal


def part_colours(look: Appearance) -> dict[int, RGB]:
    """The flat colour of each person part (what a render with ``shading=False`` paints)."""
    pal = _palette(look, None)
    return {p: (int(pal[p, 0]), int(pal[p, 1]), int(pal[p, 2])) for p in P.PERSON_PARTS}


def _majority(lab: np.ndarray, ss: int) -> np.ndarray:
    """Label covering most of each ss x ss block (ties go to the first sub-pixel in raster order)."""
    if ss == 2:
        # The general rule below, unrolled: a label seen twice wins unless an earlier one is too.
        a, b, c, d = lab[0::2, 0::2], lab[0::2, 1::2], lab[1::2, 0::2], lab[1::2, 1::2]
        a_wins = (a == b) | (a == c) | (a == d)
        b_wins = (b == c) | (b == d)
        c_wins = c == d
        return np.where(a_wins, a, np.where(b_wins, b, np.where(c_wins, c, a)))
    subs = np.stack([lab[i::ss, j::ss] for i in range(ss) for j in range(ss)])
    counts = (subs[:, None] == subs[None, :]).sum(axis=1)
    best = counts.argmax(axis=0)
    return np.take_along_axis(subs, best[None], axis=0)[0]


def _down(a: np.ndarray, ss: int) -> np.ndarray:
    out = a[0::ss, 0::ss].astype(np.float32)
    for i in range(ss):
        for j in range(ss):
            if i or j:
                out += a[i::ss, j::ss]
    return out * np.float32(1.0 / (ss * ss))


def render_person(
    identity: Identity,
    camera: Camera,
    view: str,
    rng: np.random.Generator,
    size: tuple[int, int] = (128, 64),
    *,
    effects: bool = True,
    shading: bool = True,
    occlusion: bool | None = None,
) -> Crop:
    """Render one crop of ``identity`` seen by ``camera``.

    The random draws do not depend on ``effects`` or ``shading``, so the same generator state
    gives the same person, pose, framing and occluder with or without them.

    Args:
        identity: Who to draw.
        camera: Scene and imaging conditions.
        view: One of :data:`amd.synth.cameras.VIEWS`.
        rng: Random generator for pose, framing, occlusion and noise.
        size: Output (H, W).
        effects: Apply the camera (light, colour cast, contrast, blur, noise); False gives the clean
            composite.
        shading: Shade the body (round limbs, far side, folds, per-crop colour change); False paints
            each part in its flat colour (:func:`part_colours`).
        occlusion: Force an occluder on (True) or off (False); ``None`` follows the camera's rate.

    Returns:
        The crop with its part label map.
    """
    if view not in VIEWS:
        raise ValueError(f"unknown view {view!r} (expected one of {VIEWS})")
    h, w = size
    ss = SUPERSAMPLE
    sh, sw = h * ss, w * ss
    lk = identity.look
    scale = float(rng.uniform(*camera.scale))
    hp = scale * sh
    top = (sh - hp) * rng.uniform(0.3, 0.75)
    cx = sw * (0.5 + rng.uniform(-0.07, 0.07))
    side_view = view in ("left", "right")
    cv = _Canvas((sh, sw), hp, cx, top, mirror=-1 if view == "left" else 1)
    j = rng.uniform(-0.035, 0.035, 4)
    sw_ = lk.shoulder * (1 + j[0])
    hw_ = lk.hip * (1 + j[1])
    pose = _Pose(
        sw=sw_, hw=hw_, ww=min(sw_, hw_) * (0.8 if identity.female else 0.9) * (1 + j[2]), hs=lk.head * (1 + 0.5 * j[3]),
        lw=lk.leg_width, phase=float(rng.uniform(0, 2 * math.pi)), amp=lk.stride * float(rng.uniform(0.6, 1.15)),
        hair_front=bool(rng.random() < 0.5), look=lk,
    )  # fmt: skip
    colour_jitter = rng.uniform(0.95, 1.05, P.HANDBAG).astype(np.float32)
    light_vec = rng.uniform(-0.04, 0.04)
    bg = background(camera, rng, size)
    if side_view:
        _draw_side(cv, identity, pose)
    else:
        _draw_front_back(cv, identity, pose, back=view == "back")
    # Shadow of the person on the ground, drawn into the background before compositing.
    feet_y = (cv.top + 0.975 * hp) / ss
    yy = (np.arange(h, dtype=np.float32)[:, None] - feet_y) / max(1.0, 0.03 * hp / ss)
    xx = (np.arange(w, dtype=np.float32)[None, :] - cx / ss) / max(1.0, 0.16 * hp / ss)
    bg *= (1 - 0.35 * np.exp(-(xx * xx + yy * yy)))[..., None]

    use_occ = rng.random() < camera.occlusion_rate if occlusion is None else occlusion
    occ_kind = camera.occluders[int(rng.integers(len(camera.occluders)))]
    occ_colours: dict[int, RGB] = {}
    occluder = None
    occluded = 0.0
    if use_occ:
        before = np.asarray(cv.lab)
        visible_before = np.count_nonzero((before >= P.HEAD) & (before <= P.HANDBAG))
        occ_colours = _occluder(cv, occ_kind, rng, (sh, sw))
        occluder = occ_kind
        after = np.asarray(cv.lab)
        visible_after = np.count_nonzero((after >= P.HEAD) & (after <= P.HANDBAG))
        occluded = 1.0 - visible_after / max(1, visible_before)
    lab = np.asarray(cv.lab)

    pal = _palette(lk, colour_jitter if shading else None)
    for k, rgb in occ_colours.items():
        pal[k] = rgb
    col = pal[lab]
    if shading:
        xs = (np.arange(sw, dtype=np.float32) - cx - camera.light_side * 0.06 * hp) / (0.17 * hp)
        across = np.clip(1.07 - 0.32 * xs * xs, 0.62, 1.1)
        down = np.linspace(1.04 + light_vec, 0.9, sh, dtype=np.float32) * np.float32(1.0 / _BASE_SHADE)
        shade = np.asarray(cv.shd, dtype=np.float32) * (down[:, None] * across[None, :])
        if lk.upper_pattern == "stripes":
            period = max(2, int(0.022 * hp))
            rows = np.where((np.arange(sh) // period) % 2 == 0, 1.0, 0.78).astype(np.float32)
            shade = np.where(lab == P.TORSO, shade * rows[:, None], shade)
        col *= shade[..., None]
        np.minimum(col, 255, out=col)
    alpha = _down((lab > 0).astype(np.float32), ss)
    image = _down(col, ss) + bg * (1 - alpha)[..., None]
    if occluder is not None:
        lab = _OCCLUDER_LUT[lab]
    labels = _majority(lab, ss)
    out = apply_camera(image, camera, rng, enabled=effects)
    return Crop(image=out, labels=labels, view=view, occluded=float(occluded), occluder=occluder, scale=scale)
