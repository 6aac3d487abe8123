"""Person detectors behind one small interface.

- :class:`HogDetector`: OpenCV's built-in HOG + linear SVM pedestrian detector (Dalal & Triggs). It
  ships inside OpenCV, so nothing is downloaded; it finds upright people about 100 pixels tall or
  more (``upscale`` enlarges small frames first) and is slow on large frames.
- :class:`OnnxDetector`: a detector model file the user supplies, run by OpenCV's DNN module. It reads
  the common YOLO output layouts: ``(1, 4 + C, N)`` (YOLOv8 and later: box, class scores) and
  ``(1, N, 5 + C)`` (YOLOv5: box, objectness, class scores), boxes as centre x, centre y, width,
  height in input pixels; the input is the letterboxed RGB frame scaled to [0, 1].

Every detector returns :class:`Detection` boxes in frame pixels, already cleared of duplicates by
non-maximum suppression.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import cv2
import numpy as np

from amd.video import VideoError

ONNX_LAYOUTS = ("auto", "yolov8", "yolov5")


@dataclass(frozen=True)
class Detection:
    """A person box in frame pixels: top-left ``(x, y)``, width ``w``, height ``h``, and a score."""

    x: float
    y: float
    w: float
    h: float
    score: float

    @property
    def xyxy(self) -> tuple[float, float, float, float]:
        return (self.x, self.y, self.x + self.w, self.y + self.h)


@runtime_checkable
class Detector(Protocol):
    """Finds people in a frame.

    Attributes:
        name: Short description for logs and the audit trail.
    """

    name: str

    def detect(self, image: np.ndarray) -> list[Detection]:
        """People in ``image``, BGR uint8 (H, W, 3), boxes clipped to the frame."""
        ...


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> list[int]:
    """Indices of the boxes kept by greedy non-maximum suppression, best score first.

    Args:
        boxes: float (N, 4) as x, y, w, h.
        scores: float (N,).
        iou_threshold: A box overlapping a kept one by more than this IoU is dropped.
    """
    if len(boxes) == 0:
        return []
    x1, y1 = boxes[:, 0], boxes[:, 1]
    x2, y2 = x1 + boxes[:, 2], y1 + boxes[:, 3]
    area = np.maximum(boxes[:, 2], 0) * np.maximum(boxes[:, 3], 0)
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while len(order):
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        iw = np.clip(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0, None)
        ih = np.clip(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0, None)
        inter = iw * ih
        iou = inter / np.maximum(area[i] + area[rest] - inter, 1e-9)
        order = rest[iou <= iou_threshold]
    return keep


def _clip(
    x: float, y: float, w: float, h: float, width: int, height: int
) -> tuple[float, float, float, float]:
    x1, y1 = max(0.0, x), max(0.0, y)
    x2, y2 = min(float(width), x + w), min(float(height), y + h)
    return x1, y1, max(0.0, x2 - x1), max(0.0, y2 - y1)


def _to_detections(
    boxes: np.ndarray, scores: np.ndarray, shape: tuple[int, ...], iou: float, min_size: float
) -> list[Detection]:
    height, width = shape[:2]
    out: list[Detection] = []
    for i in nms(boxes, scores, iou):
        x, y, w, h = _clip(*(float(v) for v in boxes[i]), width, height)
        if w >= min_size and h >= min_size:
            out.append(Detection(x, y, w, h, float(scores[i])))
    return out


class HogDetector:
    """OpenCV's default HOG people detector.

    Args:
        hit_threshold: Minimum SVM margin of a window (OpenCV's default 0; negative finds more people
            and more false boxes).
        group_threshold: A box is kept only where more than this many windows agree (OpenCV's
            default 2; 0 keeps single windows, which non-maximum suppression then merges).
        upscale: Enlarge the frame by this factor before detecting (HOG's window is 64 x 128, so
            people shorter than about 100 pixels need it); boxes are given in the original frame.
        win_stride: Step of the sliding window in pixels (bigger is faster and coarser).
        scale: Ratio between the pyramid levels.
        iou_threshold: Non-maximum suppression overlap.
    """

    def __init__(
        self,
        hit_threshold: float = 0.0,
        group_threshold: int = 2,
        upscale: float = 1.0,
        win_stride: int = 8,
        scale: float = 1.05,
        iou_threshold: float = 0.45,
    ) -> None:
        if upscale <= 0:
            raise ValueError("upscale must be positive")
        self.hog = cv2.HOGDescriptor()
        self.hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
        self.hit_threshold = hit_threshold
        self.group_threshold = group_threshold
        self.upscale = upscale
        self.win_stride = (win_stride, win_stride)
        self.scale = scale
        self.iou_threshold = iou_threshold
        self.name = f"opencv-hog(hit={hit_threshold:g}, group={group_threshold}, upscale={upscale:g})"

    def detect(self, image: np.ndarray) -> list[Detection]:
        img = image
        if self.upscale != 1.0:
            img = cv2.resize(image, None, fx=self.upscale, fy=self.upscale, interpolation=cv2.INTER_LINEAR)
        rects, weights = self.hog.detectMultiScale(
            img,
            hitThreshold=self.hit_threshold,
            winStride=self.win_stride,
            padding=(8, 8),
            scale=self.scale,
            groupThreshold=self.group_threshold,
        )
        if len(rects) == 0:
            return []
        boxes = np.asarray(rects, dtype=np.float64).reshape(-1, 4) / self.upscale
        scores = np.asarray(weights, dtype=np.float64).reshape(-1)
        return _to_detections(boxes, scores, image.shape, self.iou_threshold, min_size=8)


def letterbox(image: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, float, tuple[float, float]]:
    """Resize ``image`` into ``size`` (H, W) keeping its aspect ratio, padded with grey.

    Returns:
        The (H, W, 3) image, the scale applied, and the (x, y) padding before the image.
    """
    h, w = image.shape[:2]
    th, tw = size
    s = min(th / h, tw / w)
    nh, nw = max(1, round(h * s)), max(1, round(w * s))
    resized = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
    out = np.full((th, tw, 3), 114, dtype=np.uint8)
    px, py = (tw - nw) // 2, (th - nh) // 2
    out[py : py + nh, px : px + nw] = resized
    return out, s, (float(px), float(py))


def decode_yolo(
    output: np.ndarray,
    layout: str = "auto",
    person_class: int = 0,
    score_threshold: float = 0.4,
) -> tuple[np.ndarray, np.ndarray]:
    """Person boxes and scores from a raw YOLO output, in the network's input pixels.

    Args:
        output: ``(1, 4 + C, N)`` / ``(4 + C, N)`` for ``yolov8``; ``(1, N, 5 + C)`` / ``(N, 5 + C)``
            for ``yolov5``. ``auto`` tells them apart by shape: the axis with fewer entries holds the
            box and the scores; 85 or 6 entries (80 or 1 classes and an objectness) mean ``yolov5``.
        layout: ``auto``, ``yolov8`` or ``yolov5``.
        person_class: Index of the person class.
        score_threshold: Minimum person score.

    Returns:
        Boxes float (K, 4) as x, y, w, h, and scores float (K,).

    Raises:
        VideoError: The output has a shape no supported layout has.
    """
    if layout not in ONNX_LAYOUTS:
        raise VideoError(f"unknown detector output layout {layout!r} (expected one of {ONNX_LAYOUTS})")
    out = np.asarray(output, dtype=np.float32)
    if out.ndim == 3 and out.shape[0] == 1:
        out = out[0]
    if out.ndim != 2:
        raise VideoError(
            f"the detector's output has shape {tuple(output.shape)}, not (1, N, 5 + C) or (1, 4 + C, N)"
        )
    # Rows become detections, columns the box and scores. Real models have far more candidate boxes
    # than values per box, which tells the layouts apart when none is named.
    if layout == "yolov8" or (layout == "auto" and out.shape[0] < out.shape[1]):
        out = out.T
    cols = out.shape[1]
    if layout == "auto":
        layout = "yolov5" if cols in (85, 6) else "yolov8"
    first_class = 5 if layout == "yolov5" else 4
    if cols <= first_class + person_class:
        raise VideoError(
            f"the detector's output has {cols} values per box: too few for class {person_class} of a {layout} layout"
        )
    scores = out[:, first_class + person_class]
    if layout == "yolov5":
        scores = scores * out[:, 4]
    keep = scores >= score_threshold
    rows, scores = out[keep], scores[keep]
    boxes = np.stack(
        [rows[:, 0] - rows[:, 2] / 2, rows[:, 1] - rows[:, 3] / 2, rows[:, 2], rows[:, 3]], axis=1
    )
    return boxes.astype(np.float64), scores.astype(np.float64)


class OnnxDetector:
    """A person detector read from an ONNX file (YOLO-style output), run by OpenCV's DNN module.

    Args:
        path: The ``.onnx`` file.
        input_size: Network input (H, W); default 640 x 640.
        layout: Output layout, see :func:`decode_yolo`.
        person_class: Index of the person class among the model's classes (0 for COCO models).
        score_threshold: Minimum person score.
        iou_threshold: Non-maximum suppression overlap.

    Raises:
        VideoError: The file is missing or OpenCV cannot read it as an ONNX network.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        input_size: tuple[int, int] = (640, 640),
        layout: str = "auto",
        person_class: int = 0,
        score_threshold: float = 0.4,
        iou_threshold: float = 0.45,
    ) -> None:
        p = Path(path)
        if not p.is_file():
            raise VideoError(f"{p}: no such detector model file")
        if layout not in ONNX_LAYOUTS:
            raise VideoError(f"unknown detector output layout {layout!r} (expected one of {ONNX_LAYOUTS})")
        try:
            self.net = cv2.dnn.readNetFromONNX(str(p))
        except cv2.error as exc:
            first = str(exc).strip().splitlines()[-1] if str(exc).strip() else "unreadable"
            raise VideoError(f"{p}: not an ONNX network OpenCV can run ({first})") from None
        if self.net.empty():
            raise VideoError(f"{p}: not an ONNX network OpenCV can run (empty network)")
        self.input_size = input_size
        self.layout = layout
        self.person_class = person_class
        self.score_threshold = score_threshold
        self.iou_threshold = iou_threshold
        self.name = f"onnx({p.name})"

    def detect(self, image: np.ndarray) -> list[Detection]:
        boxed, s, (px, py) = letterbox(image, self.input_size)
        blob = cv2.dnn.blobFromImage(boxed, 1 / 255.0, swapRB=True)
        self.net.setInput(blob)
        try:
            output = self.net.forward()
        except cv2.error as exc:
            raise VideoError(
                f"the detector model failed on a frame: {str(exc).strip().splitlines()[-1]}"
            ) from None
        boxes, scores = decode_yolo(output, self.layout, self.person_class, self.score_threshold)
        if len(boxes):
            boxes[:, 0] = (boxes[:, 0] - px) / s
            boxes[:, 1] = (boxes[:, 1] - py) / s
            boxes[:, 2:] /= s
        return _to_detections(boxes, scores, image.shape, self.iou_threshold, min_size=4)


def build_detector(model: str | None = None, **options: object) -> Detector:
    """OpenCV's HOG detector, or an :class:`OnnxDetector` when ``model`` names an ONNX file."""
    if model is None:
        hog = ("upscale", "hit_threshold", "group_threshold")
        return HogDetector(**{k: v for k, v in options.items() if k in hog})  # type: ignore[arg-type]
    return OnnxDetector(model, **{k: v for k, v in options.items() if k in ("layout", "score_threshold")})  # type: ignore[arg-type]


def boxes_array(detections: Sequence[Detection]) -> np.ndarray:
    """float (N, 4) x, y, w, h of ``detections``."""
    if not detections:
        return np.zeros((0, 4), dtype=np.float64)
    return np.array([[d.x, d.y, d.w, d.h] for d in detections], dtype=np.float64)
