"""Importing files and folders: bad input, duplicates, metadata, killed runs and two writers."""

from __future__ import annotations

import builtins
import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from db.check import check_workspace
from db.errors import WorkspaceBusyError
from db.ingest import IngestItem, ingest, parse_time, scan_paths
from db.workspace import Workspace
from tests.db.imagefactory import image_bytes, person_image, png_bomb, write_jpegs

REPO = Path(__file__).resolve().parents[2]
# Runs one command module directly, so these tests depend on no other command being present.
DRIVER = (
    "import argparse, importlib, sys; m = importlib.import_module(sys.argv[1]); "
    "p = argparse.ArgumentParser(); m.add_arguments(p); sys.exit(m.run(p.parse_args(sys.argv[2:])))"
)


def run_command(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", DRIVER, *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _bad_folder(root: Path) -> dict[str, str]:
    """Write one file of each awkward kind; returns file name -> expected refusal (or 'ok')."""
    root.mkdir(parents=True)
    (root / "sub" / "deeper").mkdir(parents=True)
    files = {
        "good.jpg": (image_bytes(person_image(1)), "ok"),
        "sub/deeper/good2.png": (image_bytes(person_image(2), "PNG"), "ok"),
        "cmyk.jpg": (image_bytes(person_image(3, mode="CMYK")), "ok"),
        "sixteen.png": (image_bytes(person_image(4, mode="I;16"), "PNG"), "ok"),
        "alpha.png": (image_bytes(person_image(5, mode="RGBA"), "PNG"), "ok"),
        "palette.gif": (image_bytes(person_image(6, mode="P"), "GIF"), "ok"),
        "zero.jpg": (b"", "empty file (0 bytes)"),
        "notes.txt": (b"hello", "not an image, or not a supported format"),
        "truncated.jpg": (image_bytes(person_image(7))[:700], "corrupt or truncated image"),
        "bomb.png": (png_bomb(), "image too large"),
        "unreadable.jpg": (image_bytes(person_image(8)), "unreadable: permission denied"),
    }
    for name, (data, _) in files.items():
        (root / name).write_bytes(data)
    (root / ".hidden.jpg").write_bytes(image_bytes(person_image(9)))
    return {name: expected for name, (_, expected) in files.items()}


def test_folder_ingest_reports_each_bad_file_and_imports_the_rest(
    ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = _bad_folder(tmp_path / "in")
    unreadable = str(tmp_path / "in" / "unreadable.jpg")
    if os.geteuid() == 0:
        # Root reads any file whatever its mode, so the permission error is simulated.
        def fake_open(path: object, *args: object, **kwargs: object) -> object:
            if str(path) == unreadable:
                raise PermissionError(13, "Permission denied", path)
            return builtins.open(path, *args, **kwargs)  # type: ignore[call-overload]

        monkeypatch.setattr("db.ingest.open", fake_open, raising=False)
    else:
        os.chmod(unreadable, 0)
    items, missing = scan_paths([tmp_path / "in", tmp_path / "absent"], camera="cam-a")
    assert len(items) == 11 and missing[0].reason == "no such file or folder"
    summary = ingest(ws, items, refused=missing, batch_size=4)

    reasons = {Path(r.path).name: r.reason for r in summary.refused}
    bad = {n.rsplit("/", 1)[-1]: e for n, e in expected.items() if e != "ok"}
    assert set(reasons) == set(bad) | {"absent"}
    for name, reason in bad.items():
        assert reasons[name].startswith(reason), (name, reasons[name])
    assert (summary.added, summary.duplicates, len(summary.refused)) == (6, 0, 6)
    crops = ws.crops.page(limit=100)
    assert sorted(Path(c.source_path).name for c in crops) == sorted(
        ["good.jpg", "good2.png", "cmyk.jpg", "sixteen.png", "alpha.png", "palette.gif"]
    )
    assert {c.mode for c in crops} == {"RGB", "CMYK", "I;16", "RGBA", "P"}
    assert {c.camera for c in crops} == {"cam-a"}
    for c in crops:
        original = ws.images.original_path(c.sha256, c.format)
        assert hashlib.sha256(original.read_bytes()).hexdigest() == c.sha256
        assert ws.images.thumbnail_path(c.sha256).is_file()
    (finish,) = ws.audit.list(action="ingest.finish")
    assert finish.details is not None
    assert (finish.details["added"], finish.details["refused"], finish.details["files"]) == (6, 6, 12)
    assert sorted(i for e in ws.audit.list(action="crop.ingest") for i in e.entity_ids) == sorted(
        c.id for c in crops
    )


def test_the_same_image_twice_is_one_crop(ws: Workspace, tmp_path: Path) -> None:
    paths = write_jpegs(tmp_path / "a", 5)
    (tmp_path / "copy.jpg").write_bytes(paths[0].read_bytes())
    items, _ = scan_paths([tmp_path / "a", tmp_path / "copy.jpg"])
    first = ingest(ws, items)
    assert (first.added, first.duplicates) == (5, 1)
    again = ingest(ws, items)
    assert (again.added, again.duplicates, again.refused) == (0, 6, ())
    assert ws.crops.count() == 5


def test_metadata_identity_camera_time(ws: Workspace, tmp_path: Path) -> None:
    (p,) = write_jpegs(tmp_path, 1)
    item = IngestItem(
        str(p),
        camera="c3",
        identity="suspect A",
        frame=42,
        time_text="2024-05-01T10:20:30+02:00",
        split="query",
        attributes={"schema": "s", "values": {"hat": 1}},
        identity_attributes={"schema": "s", "values": {"hat": 1, "bag": -1}},
    )
    summary = ingest(ws, [item])
    crop = ws.crops.get(summary.crop_ids[0])
    assert (crop.camera, crop.identity, crop.frame, crop.split) == ("c3", "suspect A", 42, "query")
    assert crop.captured_at is not None and crop.captured_at.isoformat() == "2024-05-01T08:20:30+00:00"
    assert crop.time_text == "2024-05-01T10:20:30+02:00"
    assert ws.identities.by_name("suspect A").attributes == {"schema": "s", "values": {"hat": 1, "bag": -1}}
    assert parse_time("yesterday") is None


def test_cancel_stops_between_batches_and_keeps_what_was_committed(ws: Workspace, tmp_path: Path) -> None:
    items, _ = scan_paths([d.parent for d in write_jpegs(tmp_path / "in", 10)][:1])
    calls = iter([False, False, True])
    summary = ingest(ws, items, batch_size=3, should_stop=lambda: next(calls))
    assert summary.cancelled and summary.added == 6 and ws.crops.count() == 6
    rest = ingest(ws, items, batch_size=3)
    assert (rest.added, rest.duplicates) == (4, 6)


def test_busy_workspace_gives_a_clear_message(tmp_path: Path) -> None:
    Workspace.create(tmp_path / "ws").close()
    (p,) = write_jpegs(tmp_path / "in", 1)
    holder = sqlite3.connect(tmp_path / "ws" / "workspace.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with Workspace.open(tmp_path / "ws", busy_timeout_s=0.3) as ws:
            t0 = time.monotonic()
            with pytest.raises(WorkspaceBusyError, match="the workspace is busy: another program"):
                ingest(ws, [IngestItem(str(p))])
            assert time.monotonic() - t0 < 5
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def _check_consistent(root: Path) -> tuple[int, int]:
    """Every crop row has its original (with the right hash) and thumbnail; returns (rows, orphan files)."""
    with Workspace.open(root) as ws:
        crops = ws.crops.page(limit=10_000)
        for c in crops:
            data = ws.images.original_path(c.sha256, c.format).read_bytes()
            assert hashlib.sha256(data).hexdigest() == c.sha256
            assert ws.images.thumbnail_path(c.sha256).is_file()
        assert len({c.sha256 for c in crops}) == len(crops)
        with ws.reading() as s:
            assert s.execute(text("PRAGMA integrity_check")).scalar() == "ok"
        report = check_workspace(ws, verify_hashes=True, remove_temporary=True)
        assert report.ok and report.crops == len(crops) and report.missing_thumbnails == ()
        assert check_workspace(ws).temporary_files == ()
        return len(crops), len(report.orphan_files)


def test_killed_ingest_leaves_a_consistent_workspace_and_a_rerun_completes(tmp_path: Path) -> None:
    n = 600
    write_jpegs(tmp_path / "in", n)
    ws_root = tmp_path / "ws"
    Workspace.create(ws_root).close()
    db = ws_root / "workspace.db"
    proc = run_command("cli.ingest", str(ws_root), str(tmp_path / "in"), "--batch-size", "8")
    committed = 0
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
                committed = conn.execute("SELECT count(*) FROM crops").fetchone()[0]
            if committed >= 80:
                break
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "the import finished before it could be killed"
    rows, orphans = _check_consistent(ws_root)
    assert 80 <= rows < n
    rerun = run_command("cli.ingest", str(ws_root), str(tmp_path / "in"))
    out, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err
    assert f"added {n - rows}, duplicates {rows}, refused 0" in out
    assert _check_consistent(ws_root) == (n, 0)


def test_two_programs_ingesting_at_once_both_succeed(tmp_path: Path) -> None:
    shared = write_jpegs(tmp_path / "shared", 100, start=10_000)
    write_jpegs(tmp_path / "a", 250, start=0)
    write_jpegs(tmp_path / "b", 250, start=5_000)
    Workspace.create(tmp_path / "ws").close()
    procs = [
        run_command(
            "cli.ingest", str(tmp_path / "ws"), str(tmp_path / d), str(shared[0].parent), "--batch-size", "16"
        )
        for d in ("a", "b")
    ]
    outs = [p.communicate(timeout=180) for p in procs]
    added = 0
    for p, (out, err) in zip(procs, outs, strict=True):
        if p.returncode == 2:
            assert "the workspace is busy" in err
            continue
        assert p.returncode == 0, err
        line = next(x for x in out.splitlines() if x.startswith("added"))
        a, d = (int(t.split()[1]) for t in line.split(",")[:2])
        assert a + d == 350
        added += a
    assert added == 600
    assert _check_consistent(tmp_path / "ws") == (600, 0)


def test_two_writers_on_any_backend_count_every_file_once(ws: Workspace, tmp_path: Path) -> None:
    import threading

    shared = write_jpegs(tmp_path / "shared", 60, start=20_000)
    own = [write_jpegs(tmp_path / d, 60, start=s) for d, s in (("a", 0), ("b", 3_000))]
    results = []
    errors: list[BaseException] = []

    def work(paths: list[Path]) -> None:
        try:
            with Workspace.open(ws.root) as other:
                items = [IngestItem(str(p), camera="shared") for p in paths]
                results.append(ingest(other, items, batch_size=7))
        except BaseException as exc:  # reported below, a thread cannot raise into the test
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(paths + shared,)) for paths in own]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert sorted(r.added + r.duplicates for r in results) == [120, 120]
    assert sum(r.added for r in results) == 180 and ws.crops.count() == 180
    assert [c.name for c in ws.cameras.list()] == ["shared"]
