"""Dropping a video on the gallery: the camera question, the job with progress, and the filed tracks."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import pytest

from amd.video.synthetic import SyntheticClip, make_clip
from db.sightings import video_fingerprint, video_progress
from gui.identities import list_identities

_spec = importlib.util.spec_from_file_location(
    "video_helpers", Path(__file__).parent.parent / "amd" / "test_video.py"
)
assert _spec is not None and _spec.loader is not None
_helpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_helpers)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> SyntheticClip:
    return make_clip(tmp_path_factory.mktemp("video") / "lobby_20240314_081500.avi", frames=40, seed=5)


def _wait_for_summary(qtbot, window) -> None:
    """Until the job's summary box (or an error box) is up; a failed job fails the test with its message."""
    window.last_error = None
    done = lambda: getattr(window, "last_video_box", None) is not None or window.last_error is not None  # noqa: E731
    qtbot.waitUntil(done, timeout=240000)
    assert window.last_error is None, window.last_error.text()


def _wait_idle(qtbot, window) -> None:
    """Until no job of the window runs (the window closes after the test; no worker may outlive it)."""
    pools = (window.runner.pool, window.io.pool, window.writer.runner.pool)
    qtbot.waitUntil(lambda: all(p.activeThreadCount() == 0 for p in pools), timeout=60000)


def test_a_dropped_video_is_tracked_and_filed_as_provisional_identities(
    qtbot, window, clip: SyntheticClip, drop_files, monkeypatch, tmp_path: Path
) -> None:
    from gui import video_ingest
    from gui.gallery import crop_tooltip

    asked: list[tuple[list[str], list[str]]] = []

    def answer(parent, paths, cameras):
        asked.append(([Path(p).name for p in paths], list(cameras)))
        return "lobby"

    monkeypatch.setattr(video_ingest, "ask_camera", answer)
    # HOG finds too few of the small synthetic people to count on: the drawn boxes stand in for it.
    monkeypatch.setattr(video_ingest, "default_detector", lambda: _helpers.GroundTruthDetector(clip))
    image = tmp_path / "extra.png"
    from PIL import Image

    Image.new("RGB", (32, 64), (200, 40, 40)).save(image)

    drop_files(window.gallery.view.viewport(), [clip.path, image])
    # The image went to the ordinary import, the video to the tracker, with the camera asked once.
    assert asked and asked[0][0] == ["lobby_20240314_081500.avi"]
    assert len(asked) == 1 and len(asked[0][1]) == 3  # the workspace's three cameras are offered
    job = window.runner.running(video_ingest.JOB_KEY)
    assert job is not None
    messages: list[tuple[int, int, str]] = []
    job.signals.progress_changed.connect(lambda d, t, m: messages.append((d, t, m)))
    _wait_for_summary(qtbot, window)

    text = window.last_video_box.text()
    assert "lobby_20240314_081500.avi: filed: 3 tracks, 9 crops on camera 'lobby' (40 frames" in text
    assert messages and messages[-1][:2] == (40, 40)
    assert "frames/s" in messages[-1][2] and "s left" in messages[-1][2]

    # The gallery and the identity list show the new crops and tracks (and the imported image).
    count = window.gallery_model.rowCount
    qtbot.waitUntil(lambda: count() == 24 + 9 + 1, timeout=10000)
    names = lambda: sorted(i.name for i in window.identities.identities if i.name.startswith("Track"))  # noqa: E731
    qtbot.waitUntil(lambda: len(names()) == 3, timeout=10000)
    assert names() == ["Track 1 (lobby)", "Track 2 (lobby)", "Track 3 (lobby)"]

    # Each track holds one person, and every crop knows its frame, box and time.
    ws = window.bench.ws
    people = []
    for ident in (i for i in window.identities.identities if i.name.startswith("Track")):
        crops = ws.crops.get_many(ws.crops.ids(identity_id=ident.id))
        assert len(crops) == 3
        owners = {_helpers.truth_pid(clip, c.frame, c.box) for c in crops}
        assert len(owners) == 1, f"{ident.name} mixes people {owners}"
        people.append(owners.pop())
        for c in crops:
            assert c.camera == "lobby" and (c.width, c.height) == c.box[2:]
            # The start time comes from the file name: 08:15:00 plus the frame time at 10 frames/s.
            assert c.time_text.startswith("2024-03-14T08:15:0")
            assert c.captured_at.second * 10 + c.captured_at.microsecond // 100_000 == c.frame
            x, y, w, h = c.box
            assert f"frame {c.frame}, box {w}x{h} at ({x}, {y})" in crop_tooltip(c)
    assert sorted(people) == [1, 2, 3]
    # A crop imported as an image has no box in a frame, and its tooltip says none.
    imported = ws.crops.by_sha256(hashlib.sha256(image.read_bytes()).hexdigest())
    assert imported is not None and imported.box is None
    assert not [line for line in crop_tooltip(imported).splitlines() if line.startswith("frame ")]

    # The same video again is known by its content: nothing is filed twice.
    window.last_video_box = None
    window.ingest_video_files([clip.path])
    _wait_for_summary(qtbot, window)
    assert "skipped: already filed (3 tracks, 9 crops)" in window.last_video_box.text()
    assert ws.crops.count() == 24 + 9 + 1
    _wait_idle(qtbot, window)


class _CancelAt:
    """Wraps a detector and cancels the job when it reaches a frame (as the Cancel button would)."""

    name = "ground truth, cancelling"

    def __init__(self, inner, frame: int) -> None:
        self.inner, self.frame, self.job = inner, frame, None
        self.index = 0

    def detect(self, image):
        if self.index == self.frame and self.job is not None:
            self.job.cancel()
        self.index += 1
        return self.inner.detect(image)


def test_cancel_files_what_ended_and_a_second_drop_resumes(
    qtbot, window, clip: SyntheticClip, monkeypatch, tmp_path: Path
) -> None:
    from gui import video_ingest

    monkeypatch.setattr(video_ingest, "ask_camera", lambda parent, paths, cameras: "lobby")
    cancelling = _CancelAt(_helpers.GroundTruthDetector(clip), frame=15)
    monkeypatch.setattr(video_ingest, "default_detector", lambda: cancelling)
    later = tmp_path / "lobby_20240314_091500.avi"
    later.write_bytes(Path(clip.path).read_bytes())
    window.last_video_box = None
    cancelling.job = window.ingest_video_files([clip.path, str(later)])
    assert cancelling.job is not None
    _wait_for_summary(qtbot, window)
    progress = video_progress(window.bench.ws, video_fingerprint(clip.path))
    # Steps are 10 frames: the cancel seen at frame 15 stops the run after frame 19.
    assert progress is not None and not progress.done and progress.next_frame == 20
    stopped_at = progress.crops
    # The cancelled job still says what it filed, and which video it never began.
    lines = window.last_video_box.text().splitlines()
    tracks = len([i for i in list_identities(window.bench.ws) if i.name.startswith("Track")])
    assert lines[0].startswith(
        f"lobby_20240314_081500.avi: stopped: {tracks} track{'s' * (tracks != 1)}, "
        f"{stopped_at} crop{'s' * (stopped_at != 1)} on camera 'lobby' (20 frames, "
    )
    assert "lobby_20240314_081500.avi: drop it again to resume" in lines
    assert "lobby_20240314_091500.avi: not begun: cancelled before it; drop it again to file it" in lines
    assert window.statusBar().currentMessage() == lines[0]
    # The summary comes just before the job ends; a second drop is refused until it has.
    qtbot.waitUntil(lambda: window.runner.running(video_ingest.JOB_KEY) is None, timeout=60000)

    monkeypatch.setattr(video_ingest, "default_detector", lambda: _helpers.GroundTruthDetector(clip))
    window.last_video_box = None
    window.ingest_video_files([clip.path])
    _wait_for_summary(qtbot, window)
    text = window.last_video_box.text()
    # Tracks still open at the stop are tracked again from their first frame (0 here: two people
    # walk through the whole clip), the ones filed before are not filed twice.
    resumed = f"resumed at frame {progress.resume_frame}, " if progress.resume_frame else ""
    assert f"lobby_20240314_081500.avi: {resumed}filed: " in text
    assert f"{9 - stopped_at} crops on camera 'lobby'" in text
    assert window.bench.ws.crops.count() == 24 + 9
    # Three tracks in all (the resumed run numbers the tracks it starts again after the stopped run's).
    tracks = [i for i in list_identities(window.bench.ws) if i.name.startswith("Track")]
    assert len(tracks) == 3 and all(i.name.endswith(" (lobby)") and i.crop_count == 3 for i in tracks)
    _wait_idle(qtbot, window)


def test_a_cancelled_camera_question_starts_nothing(qtbot, window, clip: SyntheticClip, monkeypatch) -> None:
    from gui import video_ingest

    monkeypatch.setattr(video_ingest, "ask_camera", lambda parent, paths, cameras: None)
    assert window.ingest_video_files([clip.path]) is None
    assert window.runner.running(video_ingest.JOB_KEY) is None
    _wait_idle(qtbot, window)


def test_drop_helpers_split_videos_and_suggest_a_camera(tmp_path: Path) -> None:
    from gui.video_ingest import NOT_BEGUN, split_drop, suggested_camera, summary_text

    video = tmp_path / "Gate-2_20240314_081500.mp4"
    video.write_bytes(b"not checked here")
    folder = tmp_path / "crops"
    folder.mkdir()
    assert split_drop([str(video), str(folder), str(tmp_path / "a.jpg")]) == (
        [str(video)],
        [str(folder), str(tmp_path / "a.jpg")],
    )
    assert suggested_camera([video]) == "Gate-2"
    assert suggested_camera([tmp_path / "2024-03-14T08-15-00.avi"]) == "camera 1"
    from cli.video_jobs import VideoSummary

    text = summary_text(
        [
            VideoSummary("/v/a.avi", "done", camera="gate", frames=120, fps=4.25, tracks=1, crops=3),
            VideoSummary("/v/b.avi", "refused", reason="/v/b.avi: the file is empty"),
            VideoSummary("/v/c.avi", "cancelled", camera="gate", resumed_from=50, frames=30, fps=3.0),
            VideoSummary("/v/d.avi", "cancelled", NOT_BEGUN, camera="gate"),
        ]
    )
    assert text.splitlines() == [
        "a.avi: filed: 1 track, 3 crops on camera 'gate' (120 frames, 4.2 frames/s)",
        "b.avi: refused: the file is empty",
        "c.avi: resumed at frame 50, stopped: 0 tracks, 0 crops on camera 'gate' (30 frames, 3.0 frames/s)",
        "c.avi: drop it again to resume",
        "d.avi: not begun: cancelled before it; drop it again to file it",
        "Each track is a provisional identity: confirm, rename, merge or split it.",
    ]
    assert summary_text([]) == "No video was filed."
