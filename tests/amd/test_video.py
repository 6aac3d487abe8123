"""Video engine: decoding and refusals, detectors, crop quality, and tracking a synthetic clip."""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from amd.video import VideoError
from amd.video.detect import Detection, HogDetector, OnnxDetector, decode_yolo, letterbox, nms
from amd.video.pipeline import CropCandidate, occlusion, select_crops, sharpness, track_video
from amd.video.source import VideoSource, probe
from amd.video.synthetic import SyntheticClip, make_clip
from amd.video.track import Tracker, iou_matrix


class GroundTruthDetector:
    """Returns the boxes the clip was drawn with, recognising each frame by its decoded pixels."""

    name = "ground truth"

    def __init__(self, clip: SyntheticClip, min_visible: float = 0.5) -> None:
        self.by_hash: dict[str, int] = {}
        with VideoSource(clip.path) as src:
            for f in src.frames():
                self.by_hash[hashlib.sha1(f.image.tobytes()).hexdigest()] = f.index
        self.clip = clip
        self.min_visible = min_visible

    def detect(self, image: np.ndarray) -> list[Detection]:
        index = self.by_hash[hashlib.sha1(image.tobytes()).hexdigest()]
        return [
            Detection(b.x, b.y, b.w, b.h, 1.0)
            for b in self.clip.boxes(index)
            if b.visible >= self.min_visible
        ]


def colour_embed(crops: list[np.ndarray]) -> np.ndarray:
    """A cheap appearance vector: 4x4x4 colour histogram of the upper and lower halves."""
    out = []
    for c in crops:
        h = c.shape[0]
        parts = [c[: h // 2], c[h // 2 :]]
        hist = [
            np.histogramdd(p.reshape(-1, 3), bins=(4, 4, 4), range=[(0, 256)] * 3)[0].ravel() for p in parts
        ]
        v = np.concatenate(hist)
        out.append(v / max(np.linalg.norm(v), 1e-9))
    return np.array(out, dtype=np.float32)


def truth_pid(clip: SyntheticClip, frame: int, box: tuple[int, int, int, int]) -> int:
    """The person whose ground-truth box is ``box`` in ``frame``."""
    for b in clip.boxes(frame):
        if (b.x, b.y, b.w, b.h) == box:
            return b.pid
    raise AssertionError(f"no ground-truth box {box} in frame {frame}")


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> SyntheticClip:
    return make_clip(tmp_path_factory.mktemp("video") / "clip.avi", frames=72, seed=3)


def test_synthetic_clip_decodes_with_its_frame_rate_and_count(clip: SyntheticClip) -> None:
    info = probe(clip.path)
    assert (info.width, info.height, info.fps, info.frame_count, info.codec) == (360, 240, 10.0, 72, "MJPG")
    with VideoSource(clip.path) as src:
        frames = list(src.frames(start=5, every=10))
    assert [f.index for f in frames] == [5, 15, 25, 35, 45, 55, 65]
    assert frames[1].time_s == pytest.approx(1.5)
    assert frames[0].image.shape == (240, 360, 3)
    # Three people, the third entering a third of the way in.
    assert {b.pid for b in clip.truth} == {1, 2, 3}
    assert min(b.frame for b in clip.truth if b.pid == 3) == 24


def test_bad_files_are_refused_with_the_reason(tmp_path: Path) -> None:
    empty = tmp_path / "empty.avi"
    empty.write_bytes(b"")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    with pytest.raises(VideoError, match="empty"):
        VideoSource(empty)
    with pytest.raises(VideoError, match="not a video that can be decoded"):
        VideoSource(junk)
    with pytest.raises(VideoError, match="no such file"):
        VideoSource(tmp_path / "missing.avi")
    with pytest.raises(VideoError, match="not a regular file"):
        VideoSource(tmp_path)


def test_truncated_file_is_read_up_to_the_break(clip: SyntheticClip, tmp_path: Path) -> None:
    data = Path(clip.path).read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 2])
    with VideoSource(cut) as src:
        n = sum(1 for _ in src.frames())
    assert 10 < n < 72


def test_tracks_of_a_synthetic_clip_hold_one_person_each(clip: SyntheticClip) -> None:
    with VideoSource(clip.path) as src:
        steps = list(track_video(src, GroundTruthDetector(clip), colour_embed, crops_per_track=4))
    assert steps[-1].done and steps[-1].processed == 72
    tracks = [t for s in steps for t in s.finished]
    assert len(tracks) == 3
    pids = []
    for t in tracks:
        assert len(t.crops) == 4
        owners = {truth_pid(clip, c.frame, c.box) for c in t.crops}
        assert len(owners) == 1, f"track {t.track_id} mixes people {owners}"
        pids.append(owners.pop())
        frames = [c.frame for c in t.crops]
        assert frames == sorted(frames) and min(np.diff(frames)) > 1
        assert all(c.time_s == pytest.approx(c.frame / 10.0) for c in t.crops)
    assert sorted(pids) == [1, 2, 3]


def test_hog_finds_synthetic_pedestrians(clip: SyntheticClip) -> None:
    detector = HogDetector(hit_threshold=-0.3, group_threshold=1)
    found = total = hits = boxes = 0
    with VideoSource(clip.path) as src:
        for f in src.frames(every=6):
            dets = detector.detect(f.image)
            truth = [b for b in clip.boxes(f.index) if b.visible > 0.6]
            t = np.array([[b.x, b.y, b.w, b.h] for b in truth], dtype=float).reshape(-1, 4)
            d = np.array([[x.x, x.y, x.w, x.h] for x in dets], dtype=float).reshape(-1, 4)
            iou = iou_matrix(t, d)
            total += len(truth)
            found += int((iou.max(axis=1, initial=0) > 0.3).sum())
            boxes += len(dets)
            hits += int((iou.max(axis=0, initial=0) > 0.3).sum()) if len(truth) else 0
    # Measured: about 60 % of the people found, about 3 in 4 boxes on a person.
    assert total >= 25
    assert found / total >= 0.4
    assert hits / max(boxes, 1) >= 0.5


def test_nms_keeps_the_best_of_overlapping_boxes() -> None:
    boxes = np.array([[0, 0, 10, 20], [1, 1, 10, 20], [50, 0, 10, 20]], dtype=float)
    assert nms(boxes, np.array([0.5, 0.9, 0.1]), 0.5) == [1, 2]


def test_decode_yolo_reads_both_layouts() -> None:
    # YOLOv8: (1, 4 + C, N) with 2 classes; one person, one car, one weak person.
    v8 = np.zeros((1, 6, 3), dtype=np.float32)
    v8[0, :, 0] = [100, 200, 40, 120, 0.9, 0.1]
    v8[0, :, 1] = [300, 200, 80, 40, 0.1, 0.95]
    v8[0, :, 2] = [10, 10, 5, 5, 0.2, 0.0]
    boxes, scores = decode_yolo(v8, "yolov8")
    np.testing.assert_allclose(boxes, [[80, 140, 40, 120]])
    np.testing.assert_allclose(scores, [0.9], rtol=1e-6)
    # YOLOv5: (1, N, 5 + C) with objectness; 80 classes -> 85 columns, found by "auto" (N > 85).
    v5 = np.zeros((1, 200, 85), dtype=np.float32)
    v5[0, 0, :6] = [64, 64, 20, 60, 0.8, 0.75]
    v5[0, 1, :6] = [64, 64, 20, 60, 0.3, 0.9]
    boxes, scores = decode_yolo(v5)
    np.testing.assert_allclose(boxes, [[54, 34, 20, 60]])
    np.testing.assert_allclose(scores, [0.6], rtol=1e-6)
    with pytest.raises(VideoError, match="shape"):
        decode_yolo(np.zeros((2, 3, 4, 5)))


def test_letterbox_keeps_the_aspect_ratio() -> None:
    out, s, (px, py) = letterbox(np.zeros((240, 360, 3), np.uint8), (640, 640))
    assert out.shape == (640, 640, 3)
    assert s == pytest.approx(640 / 360)
    assert (px, py) == (0.0, float((640 - round(240 * s)) // 2))


def test_onnx_detector_refuses_a_file_that_is_no_network(tmp_path: Path) -> None:
    bad = tmp_path / "detector.onnx"
    bad.write_bytes(b"not a protobuf at all" * 10)
    with pytest.raises(VideoError, match="not an ONNX network"):
        OnnxDetector(bad)
    with pytest.raises(VideoError, match="no such detector model file"):
        OnnxDetector(tmp_path / "missing.onnx")


def test_onnx_detector_runs_an_exported_model(tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    import torch

    class Fixed(torch.nn.Module):
        """Always one person box at the centre of the 320 x 320 input (YOLOv8 layout, 1 class)."""

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            box = torch.tensor([[160.0], [160.0], [40.0], [120.0], [0.9]])
            return (box + 0 * x.mean()).unsqueeze(0)

    path = tmp_path / "fixed.onnx"
    torch.onnx.export(Fixed(), torch.zeros(1, 3, 320, 320), str(path), dynamo=False)
    det = OnnxDetector(path, input_size=(320, 320), layout="yolov8")
    (d,) = det.detect(np.zeros((160, 320, 3), np.uint8))  # letterboxed with 80 px above and below
    assert (d.x, d.y, d.w, d.h) == pytest.approx((140, 20, 40, 120))


def test_sharpness_and_occlusion() -> None:
    rng = np.random.default_rng(0)
    sharp = rng.integers(0, 256, (128, 64, 3), dtype=np.uint8)
    blurred = cv2.GaussianBlur(sharp, (0, 0), 3)
    assert sharpness(sharp) > 10 * sharpness(blurred)
    cover = occlusion(np.array([[0, 0, 10, 10], [5, 0, 10, 10], [100, 100, 5, 5]], dtype=float))
    np.testing.assert_allclose(cover, [0.5, 0.5, 0.0])


def _cand(frame: int, sharp: float, occl: float = 0.0, border: bool = False) -> CropCandidate:
    return CropCandidate(
        frame, frame / 10, (0, 0, 4, 8), np.zeros((8, 4, 3), np.uint8), sharp, occl, border, 1.0
    )


def test_select_crops_prefers_clean_sharp_and_spread_crops() -> None:
    cands = [
        _cand(0, 100),
        _cand(1, 99),  # as sharp as frame 0 but right next to it
        _cand(10, 50),
        _cand(20, 500, occl=0.6),  # sharpest, but half hidden
        _cand(30, 400, border=True),  # cut off by the frame border
        _cand(40, 30),
    ]
    assert [c.frame for c in select_crops(cands, 3, max_occlusion=0.2)] == [0, 10, 40]
    # With nothing clean left, the occluded ones are taken.
    assert [c.frame for c in select_crops(cands[3:5], 2, max_occlusion=0.2)] == [20, 30]


def test_tracker_confirms_after_n_hits_and_ends_after_max_age() -> None:
    tracker = Tracker(max_age=2, n_init=3)
    box = np.array([[10.0, 10.0, 20.0, 60.0]])
    for f in range(4):
        (a,) = tracker.update(f, box + [2 * f, 0, 0, 0])
        assert a.track_id == 1
        assert a.confirmed == (f >= 2)
    for f in range(4, 7):
        assert tracker.update(f, np.zeros((0, 4))) == []
    (done,) = tracker.pop_finished()
    assert (done.track_id, done.first_frame, done.last_frame, done.hits) == (1, 0, 3, 4)
    # A tentative track that misses a frame is dropped without being reported.
    tracker.update(7, box)
    tracker.update(8, np.zeros((0, 4)))
    assert tracker.close() == [] and tracker.tracks == []
