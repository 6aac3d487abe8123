"""Multi-object tracking by motion, overlap and appearance (in the manner of SORT / Deep SORT).

Each track keeps a constant-velocity Kalman filter over the box (centre x, centre y, aspect ratio
w / h, height) and a gallery of its last appearance vectors (the ReID embeddings of the target model,
L2-normalised). Per frame:

1. every track predicts its box;
2. tracks and detections are matched by the Hungarian method on a cost that mixes the appearance
   distance (smallest cosine distance to the track's gallery) and the box overlap (1 - IoU with the
   prediction); a pair is not allowed when the detection lies outside the filter's 95 % gate, or
   when it looks unlike the track (cosine distance above ``max_cosine``) and barely overlaps it;
3. tracks left over that were seen in the previous frame get a second chance on overlap alone (a
   person whose look changes as they turn);
4. new detections start tentative tracks, confirmed after ``n_init`` consecutive hits; a tentative
   track that misses a frame is dropped, a confirmed one after ``max_age`` missed frames.

A track that ends (or is still open when :meth:`Tracker.close` is called) is reported once in
:meth:`Tracker.pop_finished` if it was confirmed.

The filter follows the usual Deep SORT noise model (position noise proportional to the box height).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

#: 95 % quantile of the chi-square distribution with 4 degrees of freedom (the gate of a 4-d measurement).
CHI2_95_4D = 9.4877
_INF = 1e5


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of ``a`` (N, 4) with every box of ``b`` (M, 4), boxes as x, y, w, h; float (N, M)."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    ax1, ay1, ax2, ay2 = a[:, 0:1], a[:, 1:2], a[:, 0:1] + a[:, 2:3], a[:, 1:2] + a[:, 3:4]
    bx1, by1, bx2, by2 = b[:, 0], b[:, 1], b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    iw = np.clip(np.minimum(ax2, bx2) - np.maximum(ax1, bx1), 0, None)
    ih = np.clip(np.minimum(ay2, by2) - np.maximum(ay1, by1), 0, None)
    inter = iw * ih
    union = a[:, 2:3] * a[:, 3:4] + b[:, 2] * b[:, 3] - inter
    return inter / np.maximum(union, 1e-9)


class KalmanBox:
    """Constant-velocity Kalman filter over (cx, cy, w / h, h) and their velocities."""

    _pos_weight = 1.0 / 20
    _vel_weight = 1.0 / 160

    def __init__(self, box: np.ndarray) -> None:
        z = self.to_measurement(box)
        self.mean = np.concatenate([z, np.zeros(4)])
        h = z[3]
        std = np.array(
            [2 * self._pos_weight * h, 2 * self._pos_weight * h, 1e-2, 2 * self._pos_weight * h]
            + [10 * self._vel_weight * h, 10 * self._vel_weight * h, 1e-5, 10 * self._vel_weight * h]
        )
        self.cov = np.diag(std**2)
        self._F = np.eye(8)
        self._F[:4, 4:] = np.eye(4)
        self._H = np.eye(4, 8)

    @staticmethod
    def to_measurement(box: np.ndarray) -> np.ndarray:
        x, y, w, h = (float(v) for v in box)
        h = max(h, 1e-3)
        return np.array([x + w / 2, y + h / 2, w / h, h])

    def box(self) -> np.ndarray:
        """The current estimate as x, y, w, h."""
        cx, cy, a, h = self.mean[:4]
        h = max(h, 1e-3)
        w = a * h
        return np.array([cx - w / 2, cy - h / 2, w, h])

    def predict(self) -> None:
        h = self.mean[3]
        std = np.array(
            [self._pos_weight * h, self._pos_weight * h, 1e-2, self._pos_weight * h]
            + [self._vel_weight * h, self._vel_weight * h, 1e-5, self._vel_weight * h]
        )
        self.mean = self._F @ self.mean
        self.cov = self._F @ self.cov @ self._F.T + np.diag(std**2)

    def _projected(self) -> tuple[np.ndarray, np.ndarray]:
        h = self.mean[3]
        r = np.diag(np.array([self._pos_weight * h, self._pos_weight * h, 1e-1, self._pos_weight * h]) ** 2)
        return self._H @ self.mean, self._H @ self.cov @ self._H.T + r

    def gating_distance(self, boxes: np.ndarray) -> np.ndarray:
        """Squared Mahalanobis distance of each box (N, 4) from the predicted measurement; float (N,)."""
        mean, cov = self._projected()
        z = np.array([self.to_measurement(b) for b in boxes]) - mean
        return np.einsum("ni,ij,nj->n", z, np.linalg.inv(cov), z)

    def update(self, box: np.ndarray) -> None:
        mean, cov = self._projected()
        gain = self.cov @ self._H.T @ np.linalg.inv(cov)
        self.mean = self.mean + gain @ (self.to_measurement(box) - mean)
        self.cov = self.cov - gain @ cov @ gain.T


@dataclass
class Track:
    """One tracked person.

    Attributes:
        track_id: Number given when the track started (1, 2, ... within one tracker).
        first_frame: Frame of the first detection.
        last_frame: Frame of the latest detection.
        hits: Detections matched so far.
        confirmed: Seen in ``n_init`` consecutive frames.
        misses: Frames since the latest detection.
    """

    track_id: int
    kf: KalmanBox
    first_frame: int
    last_frame: int
    hits: int = 1
    confirmed: bool = False
    misses: int = 0
    features: list[np.ndarray] = field(default_factory=list, repr=False)

    def appearance_distance(self, feats: np.ndarray) -> np.ndarray:
        """Smallest cosine distance of each of ``feats`` (N, D, unit length) to this track's gallery."""
        if not self.features:
            return np.zeros(len(feats))
        gallery = np.stack(self.features)
        return np.clip(1.0 - (feats @ gallery.T).max(axis=1), 0.0, 2.0)


@dataclass(frozen=True)
class Assignment:
    """Detection ``detection`` (index in the frame's list) belongs to track ``track_id``."""

    track_id: int
    detection: int
    confirmed: bool


class Tracker:
    """Links per-frame detections into tracks.

    Args:
        max_age: Missed frames (of those processed) after which a confirmed track ends.
        n_init: Consecutive hits that confirm a track.
        max_cosine: Appearance distance above which a detection is only matched to a track it overlaps.
        min_iou: Overlap with the prediction that allows a match despite a changed appearance.
        appearance_weight: Weight of the appearance distance in the matching cost (the rest is 1 - IoU).
        budget: Appearance vectors kept per track.
        first_id: Number of the first track.
    """

    def __init__(
        self,
        max_age: int = 30,
        n_init: int = 3,
        max_cosine: float = 0.3,
        min_iou: float = 0.3,
        appearance_weight: float = 0.6,
        budget: int = 30,
        first_id: int = 1,
    ) -> None:
        self.max_age = max_age
        self.n_init = n_init
        self.max_cosine = max_cosine
        self.min_iou = min_iou
        self.appearance_weight = appearance_weight
        self.budget = budget
        self.next_id = first_id
        self.tracks: list[Track] = []
        self._finished: list[Track] = []

    def _cost(self, tracks: list[Track], boxes: np.ndarray, feats: np.ndarray | None) -> np.ndarray:
        predicted = np.array([t.kf.box() for t in tracks])
        overlap = iou_matrix(predicted, boxes)
        cost = np.empty((len(tracks), len(boxes)))
        for i, t in enumerate(tracks):
            gate = t.kf.gating_distance(boxes) > CHI2_95_4D
            if feats is not None and t.features:
                app = t.appearance_distance(feats)
                row = self.appearance_weight * app + (1 - self.appearance_weight) * (1 - overlap[i])
                unlike = (app > self.max_cosine) & (overlap[i] < self.min_iou)
            else:
                row = 1 - overlap[i]
                unlike = overlap[i] < self.min_iou
            row[gate | unlike] = _INF
            cost[i] = row
        return cost

    @staticmethod
    def _solve(cost: np.ndarray) -> list[tuple[int, int]]:
        if cost.size == 0:
            return []
        rows, cols = linear_sum_assignment(cost)
        return [(int(r), int(c)) for r, c in zip(rows, cols, strict=True) if cost[r, c] < _INF]

    def update(self, frame: int, boxes: np.ndarray, features: np.ndarray | None = None) -> list[Assignment]:
        """Advance one (processed) frame.

        Args:
            frame: Frame number.
            boxes: float (N, 4) detections as x, y, w, h.
            features: float (N, D) appearance vectors of the detections, or ``None`` (overlap only).

        Returns:
            The track of every detection (a new track for an unmatched one).
        """
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        feats = None
        if features is not None and len(boxes):
            f = np.asarray(features, dtype=np.float64).reshape(len(boxes), -1)
            feats = f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)
        for t in self.tracks:
            t.kf.predict()

        # Confirmed tracks pick first, so that a new tentative track cannot steal a known person.
        confirmed = [t for t in self.tracks if t.confirmed]
        tentative = [t for t in self.tracks if not t.confirmed]
        free = list(range(len(boxes)))
        matched: dict[int, Track] = {}
        for group in (confirmed, tentative):
            if not group or not free:
                continue
            cost = self._cost(group, boxes[free], None if feats is None else feats[free])
            for r, c in self._solve(cost):
                matched[free[c]] = group[r]
            free = [d for d in free if d not in matched]
        # Second chance on overlap alone for tracks seen in the previous frame.
        recent = [t for t in self.tracks if t not in matched.values() and t.misses == 0]
        if recent and free:
            predicted = np.array([t.kf.box() for t in recent])
            cost = 1 - iou_matrix(predicted, boxes[free])
            cost[cost > 1 - self.min_iou] = _INF
            for r, c in self._solve(cost):
                matched[free[c]] = recent[r]
            free = [d for d in free if d not in matched]

        for d, t in matched.items():
            t.kf.update(boxes[d])
            t.last_frame = frame
            t.hits += 1
            t.misses = 0
            if feats is not None:
                t.features.append(feats[d])
                del t.features[: -self.budget]
            if not t.confirmed and t.hits >= self.n_init:
                t.confirmed = True
        updated = set(map(id, matched.values()))
        alive: list[Track] = []
        for t in self.tracks:
            if id(t) not in updated:
                t.misses += 1
                if not t.confirmed or t.misses > self.max_age:
                    if t.confirmed:
                        self._finished.append(t)
                    continue
            alive.append(t)
        for d in free:
            t = Track(self.next_id, KalmanBox(boxes[d]), first_frame=frame, last_frame=frame)
            if feats is not None:
                t.features.append(feats[d])
            if self.n_init <= 1:
                t.confirmed = True
            self.next_id += 1
            alive.append(t)
            matched[d] = t
        self.tracks = alive
        return [Assignment(t.track_id, d, t.confirmed) for d, t in sorted(matched.items())]

    def pop_finished(self) -> list[Track]:
        """Confirmed tracks that ended since the last call."""
        out, self._finished = self._finished, []
        return out

    def close(self) -> list[Track]:
        """End every open track; returns the confirmed ones (with any not yet popped)."""
        self._finished.extend(t for t in self.tracks if t.confirmed)
        self.tracks = []
        return self.pop_finished()
