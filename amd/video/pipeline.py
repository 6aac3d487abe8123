"""The frame loop: decode, detect, embed, track, and keep a few good crops per track.

:func:`track_video` is a generator. It yields a :class:`VideoStep` every few processed frames with
the progress (frames per second, ETA), the tracks that ended since the previous step (each with its
best crops), and a resume point. A caller that stores the tracks of a step together with its resume
point can stop at any step and later call :func:`track_video` again from that point: tracks still
open at the step restart from their first frame, and tracks that had already ended before it are
not reported twice (``skip_ended_before``).

Crop quality: a crop is *clean* when no other detection covers more than ``max_occlusion`` of it and
it does not touch the frame border (a person cut off by the border); among clean crops (or among
all, when a track has none) the sharpest win, by the variance of the Laplacian of the crop scaled to
a common height, spread over the track's duration.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from amd.video.detect import Detection, Detector, boxes_array
from amd.video.source import VideoSource
from amd.video.track import Tracker

#: Maps RGB crops, uint8 (h, w, 3) each, to appearance vectors float (N, D).
EmbedFn = Callable[[Sequence[np.ndarray]], np.ndarray]

_SHARPNESS_HEIGHT = 128


def sharpness(image: np.ndarray) -> float:
    """Variance of the Laplacian of ``image`` (RGB or BGR uint8 (h, w, 3)) scaled to a height of 128 px.

    Scaling first makes crops of different sizes comparable; a blurred or motion-smeared crop scores low.
    """
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
    h, w = gray.shape[:2]
    if h == 0 or w == 0:
        return 0.0
    s = _SHARPNESS_HEIGHT / h
    gray = cv2.resize(gray, (max(1, round(w * s)), _SHARPNESS_HEIGHT), interpolation=cv2.INTER_AREA)
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())


def occlusion(boxes: np.ndarray) -> np.ndarray:
    """For each box (N, 4: x, y, w, h), the largest fraction of its area that another box covers; float (N,)."""
    n = len(boxes)
    out = np.zeros(n)
    if n < 2:
        return out
    x1, y1 = boxes[:, 0], boxes[:, 1]
    x2, y2 = x1 + boxes[:, 2], y1 + boxes[:, 3]
    iw = np.clip(np.minimum(x2[:, None], x2[None]) - np.maximum(x1[:, None], x1[None]), 0, None)
    ih = np.clip(np.minimum(y2[:, None], y2[None]) - np.maximum(y1[:, None], y1[None]), 0, None)
    inter = iw * ih
    np.fill_diagonal(inter, 0)
    area = np.maximum(boxes[:, 2] * boxes[:, 3], 1e-9)
    return (inter / area[:, None]).max(axis=1)


@dataclass(frozen=True)
class CropCandidate:
    """One crop of a track.

    Attributes:
        frame: Frame number.
        time_s: Seconds from the start of the video.
        box: (x, y, w, h) in frame pixels, integers.
        image: RGB uint8 (h, w, 3).
        sharpness: See :func:`sharpness`.
        occlusion: Largest fraction of the box covered by another detection.
        at_border: The box touches the frame border.
        score: Detector score.
    """

    frame: int
    time_s: float
    box: tuple[int, int, int, int]
    image: np.ndarray = field(repr=False)
    sharpness: float
    occlusion: float
    at_border: bool
    score: float

    def clean(self, max_occlusion: float) -> bool:
        return self.occlusion <= max_occlusion and not self.at_border


def select_crops(candidates: Sequence[CropCandidate], k: int, max_occlusion: float) -> list[CropCandidate]:
    """The ``k`` best crops of a track, in frame order.

    Clean crops come before the others; within each kind the sharper first. Picks are spread over
    the track: a crop closer than ``span / (2 k)`` frames to an earlier pick is taken only when
    nothing else is left.
    """
    if not candidates or k <= 0:
        return []
    ranked = sorted(candidates, key=lambda c: (not c.clean(max_occlusion), -c.sharpness, c.frame))
    frames = [c.frame for c in candidates]
    gap = (max(frames) - min(frames)) / (2 * k)
    picked: list[CropCandidate] = []
    for c in ranked:
        if len(picked) == k:
            break
        if all(abs(c.frame - p.frame) > gap for p in picked):
            picked.append(c)
    for c in ranked:
        if len(picked) == k:
            break
        if c not in picked:
            picked.append(c)
    return sorted(picked, key=lambda c: c.frame)


@dataclass(frozen=True)
class FinishedTrack:
    """A track that ended, with its chosen crops.

    Attributes:
        track_id: Number of the track within the video (1, 2, ...).
        first_frame: First frame with a detection.
        last_frame: Last frame with a detection.
        ended_at: Frame at which the tracker closed it (one past the last processed frame at the end).
        hits: Detections in the track.
        crops: The chosen crops, in frame order.
    """

    track_id: int
    first_frame: int
    last_frame: int
    ended_at: int
    hits: int
    crops: tuple[CropCandidate, ...]


@dataclass(frozen=True)
class VideoStep:
    """Progress of :func:`track_video` and what it found since the previous step.

    Attributes:
        frame: Last frame processed.
        next_frame: Frame the loop reads next.
        frame_count: Frames in the file, when known.
        processed: Frames processed in this call.
        detections: Detections in this call.
        fps: Processed frames per second in this call.
        eta_s: Seconds left, when the frame count is known.
        finished: Tracks that ended since the previous step.
        open_tracks: Tracks still open.
        resume_frame: Frame to restart from so that every open track is seen again from its start.
        next_track_id: Number the next track gets.
        done: The end of the video was reached (every track is finished).
    """

    frame: int
    next_frame: int
    frame_count: int | None
    processed: int
    detections: int
    fps: float
    eta_s: float | None
    finished: tuple[FinishedTrack, ...]
    open_tracks: int
    resume_frame: int
    next_track_id: int
    done: bool


@dataclass
class _Pool:
    """The crop candidates of one open track, bounded in number."""

    items: list[CropCandidate] = field(default_factory=list)

    def add(self, c: CropCandidate, limit: int, max_occlusion: float) -> None:
        self.items.append(c)
        if len(self.items) > 2 * limit:
            # Keep the better half, but always the newest, so that late views still compete.
            newest = self.items[-1]
            ranked = sorted(self.items[:-1], key=lambda x: (not x.clean(max_occlusion), -x.sharpness))
            self.items = sorted(ranked[: limit - 1] + [newest], key=lambda x: x.frame)


def track_video(
    source: VideoSource,
    detector: Detector,
    embed: EmbedFn | None = None,
    *,
    every: int = 1,
    start_frame: int = 0,
    first_track_id: int = 1,
    skip_ended_before: int = 0,
    crops_per_track: int = 3,
    max_occlusion: float = 0.2,
    min_hits: int = 3,
    max_age_s: float = 1.5,
    min_box_height: int = 32,
    step_frames: int = 10,
    tracker: Tracker | None = None,
) -> Iterator[VideoStep]:
    """Detect and track people through ``source``, yielding a :class:`VideoStep` every ``step_frames``.

    Args:
        source: The open video.
        detector: Finds people in a frame.
        embed: Appearance vectors of RGB crops (the target ReID model); ``None`` tracks by motion and
            overlap alone.
        every: Process every ``every``-th frame.
        start_frame: First frame to process (a resume point).
        first_track_id: Number of the first new track.
        skip_ended_before: Tracks that end before this frame are not reported (they were stored by a
            previous run that stopped at a step with ``next_frame`` equal to it).
        crops_per_track: Crops chosen per track.
        max_occlusion: Largest covered fraction of a clean crop.
        min_hits: Tracks with fewer detections are dropped (also the confirmation length).
        max_age_s: Seconds a track survives without a detection.
        min_box_height: Smaller detections are ignored (too few pixels to identify anyone).
        step_frames: Processed frames between steps.
        tracker: A preconfigured tracker (its ``max_age``, ``n_init`` and ``next_id`` are used as they are).
    """
    info = source.info
    if tracker is None:
        max_age = max(1, round(max_age_s * info.fps / every))
        tracker = Tracker(max_age=max_age, n_init=min_hits, first_id=first_track_id)
    pool_limit = max(4, 4 * crops_per_track)
    pools: dict[int, _Pool] = {}
    hits: dict[int, int] = {}
    firsts: dict[int, int] = {}
    finished: list[FinishedTrack] = []
    processed = detections_total = 0
    started = time.perf_counter()
    last = start_frame - every
    height, width = info.height, info.width

    def finish(tracks: list, ended_at: int) -> None:
        for t in tracks:
            pool = pools.pop(t.track_id, _Pool())
            n = hits.pop(t.track_id, 0)
            firsts.pop(t.track_id, None)
            if t.hits < min_hits or ended_at < skip_ended_before:
                continue
            chosen = select_crops(pool.items, crops_per_track, max_occlusion)
            finished.append(
                FinishedTrack(t.track_id, t.first_frame, t.last_frame, ended_at, n, tuple(chosen))
            )

    def step(done: bool) -> VideoStep:
        elapsed = max(time.perf_counter() - started, 1e-9)
        fps = processed / elapsed
        next_frame = last + every
        eta = None
        if info.frame_count is not None and fps > 0:
            eta = max(0, info.frame_count - next_frame) / every / fps
        open_firsts = [t.first_frame for t in tracker.tracks]
        out = VideoStep(
            frame=last,
            next_frame=next_frame,
            frame_count=info.frame_count,
            processed=processed,
            detections=detections_total,
            fps=fps,
            eta_s=0.0 if done else eta,
            finished=tuple(finished),
            open_tracks=len(tracker.tracks),
            resume_frame=min(open_firsts, default=next_frame),
            next_track_id=tracker.next_id,
            done=done,
        )
        finished.clear()
        return out

    for frame in source.frames(start=start_frame, every=every):
        dets: list[Detection] = [d for d in detector.detect(frame.image) if d.h >= min_box_height]
        boxes = boxes_array(dets)
        rgb = cv2.cvtColor(frame.image, cv2.COLOR_BGR2RGB)
        ints = [
            (int(round(d.x)), int(round(d.y)), max(1, int(round(d.w))), max(1, int(round(d.h)))) for d in dets
        ]
        crops = [rgb[y : y + h, x : x + w] for x, y, w, h in ints]
        feats = None
        if embed is not None and crops:
            feats = np.asarray(embed(crops), dtype=np.float32)
        assignments = tracker.update(frame.index, boxes, feats)
        covered = occlusion(boxes)
        for a in assignments:
            tid = a.track_id
            hits[tid] = hits.get(tid, 0) + 1
            firsts.setdefault(tid, frame.index)
            x, y, w, h = ints[a.detection]
            image = np.ascontiguousarray(crops[a.detection])
            cand = CropCandidate(
                frame=frame.index,
                time_s=frame.time_s,
                box=(x, y, w, h),
                image=image,
                sharpness=sharpness(image),
                occlusion=float(covered[a.detection]),
                at_border=x <= 1 or y <= 1 or x + w >= width - 1 or y + h >= height - 1,
                score=dets[a.detection].score,
            )
            pools.setdefault(tid, _Pool()).add(cand, pool_limit, max_occlusion)
        # Tentative tracks dropped by the tracker leave their pools behind: clear them.
        alive = {t.track_id for t in tracker.tracks}
        finish(tracker.pop_finished(), frame.index)
        for tid in [t for t in pools if t not in alive]:
            pools.pop(tid, None)
            hits.pop(tid, None)
            firsts.pop(tid, None)
        processed += 1
        detections_total += len(dets)
        last = frame.index
        if processed % step_frames == 0:
            yield step(done=False)
    finish(tracker.close(), last + every)
    yield step(done=True)
