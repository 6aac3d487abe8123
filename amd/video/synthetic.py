"""A synthetic surveillance clip with ground truth: the renderer's pedestrians walking across a scene.

Used by the tests and the benchmark (no real footage can be shipped). Each person walks in a
straight line at constant speed, seen from the side they walk to, cycling through a few rendered
poses (the gait); people lower in the frame are nearer and drawn in front. The ground truth gives,
for every frame, the box of every person that is on screen.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from amd.synth import parts as P
from amd.synth.cameras import make_cameras, make_scene
from amd.synth.identities import sample_identities
from amd.synth.render import render_person


@dataclass(frozen=True)
class Walker:
    """One person's path: enters at ``first_frame`` at ``(x0, y)`` and moves ``speed`` pixels per frame.

    ``x0`` and ``y`` are the top-left corner of the sprite; ``speed`` is negative for right-to-left.
    """

    pid: int
    first_frame: int
    x0: float
    y: float
    speed: float


@dataclass(frozen=True)
class GroundTruthBox:
    """Where person ``pid`` is in frame ``frame``: the tight box of its visible pixels (x, y, w, h)."""

    frame: int
    pid: int
    x: int
    y: int
    w: int
    h: int
    #: Fraction of the person's pixels not hidden by nearer people or the frame border.
    visible: float


@dataclass(frozen=True)
class SyntheticClip:
    path: str
    fps: float
    frames: int
    size: tuple[int, int]
    walkers: tuple[Walker, ...]
    truth: tuple[GroundTruthBox, ...]

    def boxes(self, frame: int) -> list[GroundTruthBox]:
        return [b for b in self.truth if b.frame == frame]


def default_walkers(frames: int, size: tuple[int, int], sprite: tuple[int, int]) -> tuple[Walker, ...]:
    """Three people: two who cross paths in the middle of the clip, and one who enters later."""
    h, w = size
    sh, sw = sprite
    speed = (w + sw) / max(1, frames - 1)
    y_far = max(0.0, h - sh - 0.16 * h)
    y_near = max(0.0, h - sh - 0.02 * h)
    return (
        Walker(1, 0, -0.3 * sw, y_far, speed),
        Walker(2, 0, w - 0.7 * sw, y_near, -speed),
        Walker(3, frames // 3, -0.3 * sw, (y_far + y_near) / 2, 1.6 * speed),
    )


def make_clip(
    path: str | os.PathLike[str],
    frames: int = 80,
    size: tuple[int, int] = (240, 360),
    sprite: tuple[int, int] = (176, 88),
    fps: float = 10.0,
    walkers: tuple[Walker, ...] | None = None,
    poses: int = 4,
    seed: int = 0,
) -> SyntheticClip:
    """Write an MJPG ``.avi`` clip of pedestrians walking across a scene, and return its ground truth.

    Args:
        path: Output file (``.avi``).
        frames: Number of frames.
        size: Frame (H, W).
        sprite: Size (H, W) each person is rendered at; the person fills about 90 % of its height.
        fps: Frame rate written in the file.
        walkers: Paths; default :func:`default_walkers`.
        poses: Rendered poses per person, cycled every two frames.
        seed: Seed of the identities, scene and poses.
    """
    rng = np.random.default_rng(seed)
    h, w = size
    sh, sw = sprite
    walkers = walkers if walkers is not None else default_walkers(frames, size, sprite)
    people = sample_identities(len(walkers), rng)
    cam = make_cameras(1, sprite, rng)[0]
    cam = dataclasses.replace(cam, scale=(0.9, 0.9), occlusion_rate=0.0)
    scene = make_scene(rng, cam.scene_kind, h, w).astype(np.uint8)
    sprites: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}
    for walker, ident in zip(walkers, people, strict=True):
        view = "right" if walker.speed > 0 else "left"
        sprites[walker.pid] = []
        for _ in range(poses):
            crop = render_person(ident, cam, view, rng, sprite, effects=False, occlusion=False)
            sprites[walker.pid].append((crop.image, P.person_mask(crop.labels)))

    out = Path(path)
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    if not writer.isOpened():
        raise OSError(f"{out}: OpenCV cannot write an MJPG video here")
    truth: list[GroundTruthBox] = []
    try:
        for t in range(frames):
            frame = scene.copy()
            owner = np.zeros((h, w), dtype=np.int32)
            # Far (higher on screen) first, so that nearer people cover them.
            on = [wk for wk in walkers if t >= wk.first_frame]
            areas: dict[int, int] = {}
            for wk in sorted(on, key=lambda k: k.y):
                image, mask = sprites[wk.pid][((t - wk.first_frame) // 2) % poses]
                x = int(round(wk.x0 + wk.speed * (t - wk.first_frame)))
                y = int(round(wk.y))
                areas[wk.pid] = int(mask.sum())
                x1, y1, x2, y2 = max(0, x), max(0, y), min(w, x + sw), min(h, y + sh)
                if x2 <= x1 or y2 <= y1:
                    continue
                m = mask[y1 - y : y2 - y, x1 - x : x2 - x]
                frame[y1:y2, x1:x2][m] = image[y1 - y : y2 - y, x1 - x : x2 - x][m][:, ::-1]
                owner[y1:y2, x1:x2][m] = wk.pid
            for pid, area in areas.items():
                ys, xs = np.nonzero(owner == pid)
                if len(xs) == 0:
                    continue
                truth.append(
                    GroundTruthBox(
                        t,
                        pid,
                        int(xs.min()),
                        int(ys.min()),
                        int(xs.max() - xs.min() + 1),
                        int(ys.max() - ys.min() + 1),
                        len(xs) / max(1, area),
                    )
                )
            writer.write(frame)
    finally:
        writer.release()
    return SyntheticClip(str(out), float(fps), frames, size, tuple(walkers), tuple(truth))
