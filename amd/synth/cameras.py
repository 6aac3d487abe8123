"""Synthetic cameras: a scene behind the people, and what the camera does to the picture.

Each camera has its own scene (a wide background strip from which every crop takes a window), its
own light level, colour cast, contrast, blur, sensor noise, JPEG quality, preferred viewpoints,
framing and rate of occlusion. The same person therefore looks alike but never identical from one
camera to the next.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

VIEWS: tuple[str, ...] = ("front", "back", "left", "right")
SCENES: tuple[str, ...] = ("street", "campus", "corridor", "plaza", "parking")
OCCLUDERS: tuple[str, ...] = ("pole", "bin", "car", "person", "railing", "bush")


@dataclass(frozen=True, eq=False)
class Camera:
    """One camera of a synthetic dataset.

    Attributes:
        cid: Camera number, 1-based as in Market-1501 file names.
        scene_kind: One of :data:`SCENES`.
        scene: Background strip, uint8 (H + 2 * pad, S, 3) with S several crop widths; crops take a
            random window of (H, W).
        pad: Vertical margin of ``scene`` that lets a window move up and down.
        gain: Light level (multiplies linear intensities).
        cast: Per-channel colour gains, float (3,).
        gamma: Contrast curve exponent applied to [0, 1] intensities.
        blur: Gaussian blur radius at output resolution, in pixels.
        noise: Standard deviation of the sensor noise, in 8-bit levels.
        jpeg_quality: Quality of the written JPEG files.
        view_p: Probabilities of the views in :data:`VIEWS`, float (4,).
        scale: (min, max) person height as a fraction of the crop height.
        occlusion_rate: Probability that a crop has a foreground occluder.
        occluders: Occluder kinds this camera's scene has (subset of :data:`OCCLUDERS`).
        light_side: Where the light comes from across the body, -1 (left) .. 1 (right).
    """

    cid: int
    scene_kind: str
    scene: np.ndarray
    pad: int
    gain: float
    cast: np.ndarray
    gamma: float
    blur: float
    noise: float
    jpeg_quality: int
    view_p: np.ndarray
    scale: tuple[float, float]
    occlusion_rate: float
    occluders: tuple[str, ...]
    light_side: float

    def describe(self) -> dict:
        return {
            "camera": self.cid,
            "scene": self.scene_kind,
            "gain": round(self.gain, 3),
            "cast": [round(float(c), 3) for c in self.cast],
            "gamma": round(self.gamma, 3),
            "blur": round(self.blur, 3),
            "noise": round(self.noise, 2),
            "jpeg_quality": self.jpeg_quality,
            "view_p": dict(zip(VIEWS, [round(float(p), 3) for p in self.view_p], strict=True)),
            "scale": [round(s, 3) for s in self.scale],
            "occlusion_rate": round(self.occlusion_rate, 3),
            "occluders": list(self.occluders),
        }


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cell: int) -> np.ndarray:
    """Low-frequency noise in [0, 1], float32 (h, w): random values on a coarse grid, upsampled smoothly."""
    gh, gw = max(2, h // cell + 2), max(2, w // cell + 2)
    small = Image.fromarray((rng.random((gh, gw)) * 255).astype(np.uint8))
    return np.asarray(small.resize((w, h), Image.BICUBIC), dtype=np.float32) / 255.0


def _jitter(rgb: tuple[int, int, int], rng: np.random.Generator, amount: float = 0.15) -> np.ndarray:
    return np.clip(np.asarray(rgb, dtype=np.float32) * (1 + rng.uniform(-amount, amount, 3)), 0, 255)


def _vertical_gradient(top: np.ndarray, bottom: np.ndarray, h: int, w: int) -> np.ndarray:
    t = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    return np.broadcast_to(top * (1 - t) + bottom * t, (h, w, 3)).copy()


def _floor(rng: np.random.Generator, h: int, w: int, base: np.ndarray, kind: str) -> np.ndarray:
    """Ground texture seen at a grazing angle: lines get denser toward the horizon."""
    img = _vertical_gradient(base * 0.85, base * 1.1, h, w)
    img *= (0.85 + 0.3 * _smooth_noise(rng, h, w, 12))[..., None]
    pil = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(pil)
    line = tuple(int(c) for c in np.clip(base * rng.uniform(0.55, 0.8), 0, 255))
    if kind in ("tiles", "bricks"):
        y, step = 1.0, 2.0
        while y < h:
            draw.line([(0, int(y)), (w, int(y))], fill=line, width=1)
            step *= 1.35
            y += step
        vp = w * rng.uniform(0.3, 0.7)
        spacing = rng.uniform(6, 14) if kind == "tiles" else rng.uniform(3, 6)
        for x in np.arange(-3 * w, 4 * w, spacing * 4):
            draw.line([(vp + (x - vp) * 0.15, 0), (x, h)], fill=line, width=1)
    elif kind == "asphalt":
        for _ in range(int(rng.integers(1, 4))):
            x = rng.uniform(0, w)
            colour = (220, 220, 210) if rng.random() < 0.7 else (220, 190, 60)
            draw.polygon([(x, 0), (x + 3, 0), (x + 12, h), (x + 4, h)], fill=colour)
    arr = np.asarray(pil, dtype=np.float32)
    return arr + rng.normal(0, 4, arr.shape).astype(np.float32)


def _facade(rng: np.random.Generator, h: int, w: int, kind: str) -> np.ndarray:
    """Upper part of a scene: buildings, trees, an indoor wall or parked cars."""
    if kind == "campus":
        sky = _vertical_gradient(_jitter((170, 200, 230), rng), _jitter((210, 220, 230), rng), h, w)
        leaves = _smooth_noise(rng, h, w, 5)
        # A soft edge between leaves and sky: a hard threshold looks like camouflage print.
        cover = np.clip((leaves + 0.3 * _smooth_noise(rng, h, w, 2) - rng.uniform(0.35, 0.55)) * 5, 0, 1)[
            ..., None
        ]
        green = _jitter((60, 100, 50), rng, 0.25) * (0.6 + 0.6 * _smooth_noise(rng, h, w, 3))[..., None]
        img = cover * green + (1 - cover) * sky
        pil = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
        draw = ImageDraw.Draw(pil)
        for x in rng.uniform(0, w, int(w / 40) + 1):
            trunk = tuple(int(c) for c in _jitter((70, 55, 40), rng))
            draw.rectangle([x, h * rng.uniform(0.3, 0.6), x + rng.uniform(2, 5), h], fill=trunk)
        return np.asarray(pil, dtype=np.float32)
    if kind == "corridor":
        wall = _jitter(((225, 220, 205), (200, 210, 215), (230, 225, 230))[int(rng.integers(3))], rng, 0.08)
        img = _vertical_gradient(wall * 1.05, wall * 0.9, h, w)
        pil = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
        draw = ImageDraw.Draw(pil)
        x = rng.uniform(0, 30)
        while x < w:
            width = rng.uniform(14, 30)
            if rng.random() < 0.5:
                door = tuple(
                    int(c) for c in _jitter((120, 90, 60) if rng.random() < 0.5 else (150, 160, 170), rng)
                )
                draw.rectangle([x, h * 0.2, x + width, h], fill=door)
            else:
                panel = tuple(int(c) for c in wall * 0.85)
                draw.line([(x, 0), (x, h)], fill=panel, width=1)
            x += width + rng.uniform(10, 50)
        light = tuple(int(c) for c in np.clip(wall * 1.2, 0, 255))
        draw.rectangle([0, 0, w, max(1, int(h * 0.05))], fill=light)
        return np.asarray(pil, dtype=np.float32)
    wall = _jitter(((170, 160, 150), (190, 180, 165), (140, 140, 145), (200, 190, 185), (160, 110, 90))
                   [int(rng.integers(5))], rng, 0.1)  # fmt: skip
    img = _vertical_gradient(wall * 1.05, wall * 0.9, h, w)
    img *= (0.9 + 0.2 * _smooth_noise(rng, h, w, 6))[..., None]
    pil = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(pil)
    if kind in ("street", "plaza"):
        # Shop fronts and windows at irregular intervals.
        x = rng.uniform(0, 20)
        while x < w:
            width = rng.uniform(10, 28)
            glass = tuple(int(c) for c in _jitter((70, 85, 100), rng, 0.3))
            top = h * rng.uniform(0.05, 0.5)
            draw.rectangle([x, top, x + width, top + h * rng.uniform(0.15, 0.45)], fill=glass)
            if rng.random() < 0.3:
                sign = tuple(int(c) for c in rng.integers(40, 250, 3))
                draw.rectangle([x, max(0, top - 6), x + width, top - 2], fill=sign)
            x += width + rng.uniform(4, 24)
    else:
        # Parking: rounded car bodies in the back row.
        x = rng.uniform(-10, 10)
        while x < w:
            width = rng.uniform(30, 45)
            body = tuple(int(c) for c in rng.integers(30, 230, 3))
            top = h * rng.uniform(0.45, 0.65)
            draw.rounded_rectangle([x, top, x + width, h + 4], radius=6, fill=body)
            draw.rectangle([x + 6, top + 2, x + width - 6, top + 7], fill=(60, 70, 80))
            x += width + rng.uniform(2, 15)
    return np.asarray(pil, dtype=np.float32)


def make_scene(rng: np.random.Generator, kind: str, height: int, width: int) -> np.ndarray:
    """A background strip for one camera.

    Args:
        rng: Random generator.
        kind: One of :data:`SCENES`.
        height: Strip height (crop height plus margins).
        width: Strip width (several crop widths).

    Returns:
        uint8 (height, width, 3).
    """
    horizon = int(height * rng.uniform(0.35, 0.62))
    floor_kind = {"street": "tiles", "campus": "bricks", "corridor": "polished", "plaza": "tiles",
                  "parking": "asphalt"}[kind]  # fmt: skip
    floor_base = {
        "tiles": _jitter((150, 150, 145), rng, 0.2),
        "bricks": _jitter((150, 95, 80), rng, 0.2) if rng.random() < 0.6 else _jitter((150, 150, 140), rng),
        "polished": _jitter((190, 185, 175), rng, 0.1),
        "asphalt": _jitter((85, 85, 88), rng, 0.15),
    }[floor_kind]
    top = _facade(rng, horizon, width, kind)
    bottom = _floor(rng, height - horizon, width, floor_base, floor_kind)
    img = np.concatenate([top, bottom], axis=0)
    pil = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    # The background is out of focus compared with the person the detector locked on.
    return np.asarray(pil.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 1.2))))


def make_cameras(n: int, size: tuple[int, int], rng: np.random.Generator) -> list[Camera]:
    """Draw ``n`` cameras with distinct scenes and imaging conditions.

    Args:
        n: Number of cameras.
        size: Crop size (H, W) at output resolution.
        rng: Random generator.

    Returns:
        Cameras numbered 1..n.
    """
    h, w = size
    kinds = [SCENES[i] for i in rng.permutation(len(SCENES))]
    cams = []
    for i in range(n):
        kind = kinds[i % len(kinds)]
        pad = max(2, h // 8)
        scene = make_scene(rng, kind, h + 2 * pad, w * 8)
        view_p = 0.5 * rng.dirichlet(np.full(4, 1.5)) + 0.5 * np.full(4, 0.25)
        occluders = {
            "street": ("pole", "bin", "person"),
            "campus": ("bush", "person", "pole"),
            "corridor": ("person", "bin"),
            "plaza": ("person", "railing", "pole"),
            "parking": ("car", "pole", "person"),
        }[kind]
        cast = np.array([1.0, 1.0, 1.0]) + rng.normal(0, 0.07, 3)
        lo = rng.uniform(0.76, 0.86)
        cams.append(
            Camera(
                cid=i + 1,
                scene_kind=kind,
                scene=scene,
                pad=pad,
                gain=float(rng.uniform(0.7, 1.2)),
                cast=(cast / cast.mean()).astype(np.float32),
                gamma=float(rng.uniform(0.85, 1.2)),
                blur=float(rng.uniform(0.0, 0.9)),
                noise=float(rng.uniform(1.5, 6.0)),
                jpeg_quality=int(rng.integers(72, 96)),
                view_p=view_p / view_p.sum(),
                scale=(float(lo), float(min(0.96, lo + rng.uniform(0.06, 0.12)))),
                occlusion_rate=float(rng.uniform(0.12, 0.4)),
                occluders=occluders,
                light_side=float(rng.uniform(-1, 1)),
            )
        )
    return cams


def background(camera: Camera, rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """A window of the camera's scene for one crop, float32 (H, W, 3) in 0..255."""
    h, w = size
    sh, sw = camera.scene.shape[:2]
    x0 = int(rng.integers(0, sw - w + 1))
    y0 = int(rng.integers(0, sh - h + 1))
    win = camera.scene[y0 : y0 + h, x0 : x0 + w].astype(np.float32)
    # Light changes a little over the day.
    return win * np.float32(rng.uniform(0.92, 1.08))


def apply_camera(
    image: np.ndarray, camera: Camera, rng: np.random.Generator, enabled: bool = True
) -> np.ndarray:
    """Light, colour cast, contrast, blur and sensor noise of ``camera``.

    Args:
        image: Scene with the person, float32 (H, W, 3) in 0..255.
        camera: The camera.
        rng: Random generator; consumed the same way whether or not ``enabled``.
        enabled: When False, only converts to uint8 (the clean render).

    Returns:
        uint8 (H, W, 3).
    """
    h, w = image.shape[:2]
    gain = camera.gain * rng.uniform(0.9, 1.1)
    blur = max(0.0, camera.blur + rng.uniform(-0.2, 0.2))
    n = h * w * 3
    bank = _noise_bank(n)
    start = int(rng.integers(0, bank.size - n + 1))
    out = np.clip(image + 0.5, 0, 255).astype(np.uint8)
    if not enabled:
        return out
    # Contrast, light and colour cast as one 256-entry table per channel, applied by Pillow.
    levels = (np.arange(256, dtype=np.float64) / 255.0) ** camera.gamma * 255.0 * gain
    table = np.clip(levels[None, :] * camera.cast[:, None] + 0.5, 0, 255).astype(np.uint8)
    pil = Image.fromarray(out).point(table.ravel().tolist())
    if blur > 0.15:
        pil = pil.filter(ImageFilter.GaussianBlur(blur))
    noisy = np.asarray(pil, dtype=np.float32) + bank[start : start + n].reshape(h, w, 3) * np.float32(
        camera.noise
    )
    return np.clip(noisy + 0.5, 0, 255).astype(np.uint8)


_BANKS: dict[int, np.ndarray] = {}


def _noise_bank(n: int) -> np.ndarray:
    """Fixed standard-normal samples; each crop reads a random window (cheaper than fresh samples).

    The bank depends only on the crop size, so outputs stay a function of the crop's generator alone.
    """
    need = max(4 * n, 1 << 20)
    if need not in _BANKS:
        _BANKS[need] = np.random.default_rng(need).standard_normal(need, dtype=np.float32)
    return _BANKS[need]
