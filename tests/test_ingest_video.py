"""Filing video tracks in a workspace: crops with camera, time, frame and box; cancel, resume, refusals."""

from __future__ import annotations

import importlib.util
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from amd.video.synthetic import SyntheticClip, make_clip
from cli.main import main
from cli.video_jobs import ingest_video, make_embed_fn, start_time_for
from db.models import AuditEvent, Crop, Identity
from db.sightings import PROGRESS_ACTION, PROVISIONAL_NOTE, video_fingerprint, video_progress
from db.workspace import Workspace

_spec = importlib.util.spec_from_file_location(
    "video_helpers", Path(__file__).parent / "amd" / "test_video.py"
)
assert _spec is not None and _spec.loader is not None
_helpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_helpers)
GroundTruthDetector = _helpers.GroundTruthDetector

START = "2024-03-14T08:15:00+00:00"


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> SyntheticClip:
    return make_clip(tmp_path_factory.mktemp("video") / "cam1.avi", frames=60, seed=5)


@pytest.fixture(scope="module")
def embed():
    """The bundled demo target model, as the command uses it by default."""
    from amd.embedding import load_embedder
    from amd.resources import resource_path

    return make_embed_fn(load_embedder(resource_path("models", "demo_target.pt")))


def _tracks(ws: Workspace) -> dict[str, list[Crop]]:
    with ws.reading() as s:
        rows = s.execute(select(Identity.name, Crop).join(Crop, Crop.identity_id == Identity.id)).all()
    out: dict[str, list[Crop]] = {}
    for name, crop in rows:
        out.setdefault(name, []).append(crop)
    return out


def _check_pure(clip: SyntheticClip, tracks: dict[str, list[Crop]]) -> list[int]:
    people = []
    for name, crops in tracks.items():
        owners = {_helpers.truth_pid(clip, c.frame, (c.bbox_x, c.bbox_y, c.bbox_w, c.bbox_h)) for c in crops}
        assert len(owners) == 1, f"{name} mixes people {owners}"
        people.append(owners.pop())
    return sorted(people)


def test_tracks_become_provisional_identities_with_timed_crops(
    tmp_path: Path, clip: SyntheticClip, embed
) -> None:
    ws = Workspace.create(tmp_path / "ws")
    try:
        seen = []
        summary = ingest_video(
            ws, clip.path, "cam1", GroundTruthDetector(clip), embed, start=START, on_progress=seen.append
        )
        assert (summary.status, summary.tracks, summary.crops, summary.frames) == ("done", 3, 9, 60)
        assert summary.start_source == "option"
        assert seen and seen[-1].frame == 59 and seen[-1].fps > 0
        tracks = _tracks(ws)
        assert sorted(tracks) == ["Track 1 (cam1)", "Track 2 (cam1)", "Track 3 (cam1)"]
        assert _check_pure(clip, tracks) == [1, 2, 3]
        t0 = datetime(2024, 3, 14, 8, 15, tzinfo=timezone.utc)
        for crops in tracks.values():
            for c in crops:
                assert c.captured_at == t0 + timedelta(seconds=c.frame / 10.0)
                assert c.time_text == c.captured_at.isoformat()
                assert c.source_path == str(Path(clip.path).absolute())
                assert (c.width, c.height) == (c.bbox_w, c.bbox_h)
        with ws.reading() as s:
            notes = set(s.scalars(select(Identity.notes)))
            created = [
                e.details for e in s.scalars(select(AuditEvent).where(AuditEvent.action == "identity.create"))
            ]
        assert notes == {PROVISIONAL_NOTE}
        assert all(d["provisional"] for d in created) and len(created) == 3
        progress = video_progress(ws, video_fingerprint(clip.path))
        assert progress is not None and progress.done and (progress.tracks, progress.crops) == (3, 9)
        # A second run finds the video filed and adds nothing.
        again = ingest_video(ws, clip.path, "cam1", GroundTruthDetector(clip), embed, start=START)
        assert again.status == "skipped" and "3 tracks, 9 crops" in again.reason
        assert ws.crops.count() == 9
    finally:
        ws.close()


def test_a_cancelled_run_resumes_without_filing_anything_twice(
    tmp_path: Path, clip: SyntheticClip, embed
) -> None:
    ws = Workspace.create(tmp_path / "ws")
    try:
        calls = {"n": 0}

        def stop_after_four_steps() -> bool:
            calls["n"] += 1
            return calls["n"] >= 4

        first = ingest_video(
            ws,
            clip.path,
            "cam1",
            GroundTruthDetector(clip),
            embed,
            start=START,
            should_stop=stop_after_four_steps,
        )
        assert first.status == "cancelled" and first.frames == 40
        progress = video_progress(ws, video_fingerprint(clip.path))
        assert progress is not None and not progress.done and progress.next_frame == 40
        assert progress.resume_frame <= 40
        second = ingest_video(ws, clip.path, "cam1", GroundTruthDetector(clip), embed, start=START)
        assert second.status == "done" and second.resumed_from == progress.resume_frame
        tracks = _tracks(ws)
        assert len(tracks) == 3
        assert _check_pure(clip, tracks) == [1, 2, 3]
        assert first.tracks + second.tracks == 3
        with ws.reading() as s:
            events = s.scalars(select(AuditEvent).where(AuditEvent.action == PROGRESS_ACTION)).all()
        assert events[-1].details["done"] and events[-1].details["tracks"] == 3
    finally:
        ws.close()


def test_start_time_from_option_file_name_or_file_time(tmp_path: Path) -> None:
    named = tmp_path / "lobby_20240314_081500.avi"
    named.write_bytes(b"x")
    plain = tmp_path / "clip.avi"
    plain.write_bytes(b"x")
    assert start_time_for(str(named), None, 60.0) == (
        datetime(2024, 3, 14, 8, 15, tzinfo=timezone.utc),
        "file name",
    )
    assert start_time_for(str(named), "2024-01-02T03:04:05", None)[0] == datetime(
        2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc
    )
    mtime = datetime.fromtimestamp(plain.stat().st_mtime, tz=timezone.utc)
    assert start_time_for(str(plain), None, 60.0) == (mtime - timedelta(seconds=60), "file time")
    with pytest.raises(ValueError, match="ISO 8601"):
        start_time_for(str(plain), "yesterday", None)


def test_command_refuses_a_corrupt_video_before_loading_a_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    junk = tmp_path / "broken.mp4"
    junk.write_bytes(np.random.default_rng(1).integers(0, 256, 20_000, dtype=np.uint8).tobytes())
    empty = tmp_path / "empty.avi"
    empty.write_bytes(b"")
    code = main(["ingest-video", str(tmp_path / "ws"), str(junk), str(empty), "--camera", "lobby"])
    out = capsys.readouterr().out
    assert code == 1
    assert (
        f"refused: {junk}: not a video that can be decoded (unknown container or codec, or a corrupt file)"
        in out
    )
    assert f"refused: {empty}: the file is empty" in out
    assert main(["ingest-video", str(tmp_path / "ws"), str(junk), "--camera", "c", "--start", "noon"]) == 2


def test_command_sets_the_hog_thresholds_and_refuses_them_with_an_onnx_detector(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    short = make_clip(tmp_path / "short.avi", frames=12, seed=2)
    ws = str(tmp_path / "ws")
    args = ["ingest-video", ws, short.path, "--camera", "c", "--start", START]
    code = main([*args, "--hog-hit-threshold", "0.5", "--hog-group-threshold", "3"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "detector: opencv-hog(hit=0.5, group=3, upscale=1)" in captured.err
    assert f"done {short.path}: " in captured.out and "12 frames in" in captured.out

    assert main([*args, "--hog-group-threshold", "-1"]) == 2
    assert "error: --hog-group-threshold must be 0 or more" in capsys.readouterr().err
    model = tmp_path / "det.onnx"
    model.write_bytes(b"not read")
    assert main([*args, "--detector", str(model), "--hog-hit-threshold", "0.2"]) == 2
    assert "do not apply to a --detector model" in capsys.readouterr().err
