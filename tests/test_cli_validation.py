"""Bad command-line input: one ``error:`` line, exit status 2, and nothing done, lost or left half-made."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from cli.main import main
from tests.db.imagefactory import write_jpegs
from tests.test_cli import _main

NO_GPU = pytest.mark.skipif(
    __import__("torch").cuda.is_available(), reason="checks the message of a machine without a GPU"
)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    """Run a command in this process; (exit status, stderr). An argparse refusal is an exit status too."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, capsys.readouterr().err


def _one_error_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


# ---------------------------------------------------------------------- the last-resort handler


def test_an_unexpected_error_is_one_line_with_a_hint_and_the_traceback_on_request(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import cli.audit

    def broken(args: object) -> int:
        raise ValueError("the cache\nis inconsistent")

    monkeypatch.setattr(cli.audit, "run", broken)
    code, err = _run(capsys, "audit", tmp_path)
    assert code == 2
    line = _one_error_line(err)
    assert line.startswith("error: unexpected ValueError: the cache is inconsistent; rerun with --traceback")
    assert "AMD_TRACEBACK=1" in line
    # The flag works after the subcommand too, and the last line still says what happened.
    code, err = _run(capsys, "audit", tmp_path, "--traceback")
    assert code == 2 and "Traceback (most recent call last)" in err and 'raise ValueError("the cache' in err
    assert err.strip().splitlines()[-1] == "error: unexpected ValueError: the cache is inconsistent"
    monkeypatch.setenv("AMD_TRACEBACK", "1")
    code, err = _run(capsys, "audit", tmp_path)
    assert code == 2 and "Traceback (most recent call last)" in err


def test_operating_system_and_database_errors_name_the_file_or_the_driver_message(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import sqlite3

    from sqlalchemy.exc import OperationalError

    import cli.audit

    def full_disk(args: object) -> int:
        raise OSError(28, "No space left on device", str(tmp_path / "audit.csv"))

    monkeypatch.setattr(cli.audit, "run", full_disk)
    code, err = _run(capsys, "audit", tmp_path)
    assert (code, _one_error_line(err)) == (2, f"error: {tmp_path / 'audit.csv'}: No space left on device")

    def locked(args: object) -> int:
        raise OperationalError("INSERT INTO x", {}, sqlite3.OperationalError("disk I/O error"))

    monkeypatch.setattr(cli.audit, "run", locked)
    code, err = _run(capsys, "audit", tmp_path)
    line = _one_error_line(err)
    assert code == 2 and line.startswith("error: database error (OperationalError): disk I/O error;")
    assert "INSERT" not in line and "sqlalche.me" not in line


def test_a_bad_option_is_one_line_that_points_at_help(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _run(capsys, "ingest", "ws", "a.jpg", "--format", "bogus")
    assert code == 2
    line = _one_error_line(err)
    assert line.startswith("error: --format: invalid choice: 'bogus'")
    assert line.endswith("(see main.py ingest --help)") and "usage:" not in err


# ---------------------------------------------------------------------- batch sizes and other numbers


@pytest.mark.parametrize("size", ["-1", "0"])
def test_batch_sizes_below_one_are_refused_before_anything_is_made(
    size: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    images = write_jpegs(tmp_path / "crops", 2)
    code, err = _run(capsys, "ingest", tmp_path / "ws", *images, "--batch-size", size)
    assert code == 2
    assert _one_error_line(err) == (
        f"error: --batch-size must be a whole number of at least 1, got '{size}' (see main.py ingest --help)"
    )
    assert not (tmp_path / "ws").exists()
    code, err = _run(capsys, "index", tmp_path / "ws", "--model", "m.pt", "--batch-size", size)
    assert code == 2 and "--batch-size must be a whole number of at least 1" in _one_error_line(err)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train-target", "--size", "0x0"], "--size must have both sides from 16 to 2048 pixels, got '0x0'"),
        (["distill", "--target", "t.pt", "--size", "99999x99999"],
         "--size must have both sides from 16 to 2048 pixels, got '99999x99999'"),
        (["train-target", "--lr", "nan"], "--lr must be a number above 0 and at most 1, got nan"),
        (["train-target", "--lr", "-1"], "--lr must be a number above 0 and at most 1, got -1.0"),
        (["train-target", "--lr", "inf"], "--lr must be a number above 0 and at most 1, got inf"),
        (["train-target", "--workers", "-1"], "--workers must be a whole number from 0 to 64, got -1"),
        (["train-target", "--label-smoothing", "2"],
         "--label-smoothing must be a number of at least 0 and below 1, got 2.0"),
        (["train-target", "--warmup-epochs", "-1"],
         "--warmup-epochs must be a whole number from 0 to 10000, got -1"),
        (["train-target", "--epochs", "0"], "--epochs must be a whole number from 1 to 10000, got 0"),
        (["distill", "--target", "t.pt", "--epochs", "-1"],
         "--epochs must be a whole number from 1 to 10000, got -1"),
        (["evaluate", "--target", "t.pt", "--json", "o.json", "--max-pairs", "-5"],
         "--max-pairs must be a whole number of at least 1, got '-5'"),
        (["evaluate", "--target", "t.pt", "--json", "o.json", "--max-pairs", "0"],
         "--max-pairs must be a whole number of at least 1, got '0'"),
        (["evaluate", "--target", "t.pt", "--json", "o.json", "--workers", "-1"],
         "--workers must be a whole number from 0 to 64, got '-1'"),
        (["choose-foreground", "--target", "t.pt", "--interpreter", "i.pt", "--out", "o.pt", "--min-gain", "nan"],
         "--min-gain must be a number from 0 to 1, got 'nan'"),
        (["choose-foreground", "--target", "t.pt", "--interpreter", "i.pt", "--out", "o.pt", "--min-gain", "-1"],
         "--min-gain must be a number from 0 to 1, got '-1'"),
    ],
)  # fmt: skip
def test_numbers_out_of_range_are_refused_with_the_range(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "model.pt"
    extra = ["--out", str(out)] if argv[0] in ("train-target", "distill") else []
    code, err = _run(capsys, argv[0], "--data", tmp_path / "data", *argv[1:], *extra)
    assert code == 2
    assert _one_error_line(err).startswith(f"error: {message}")
    assert not out.exists() and not (tmp_path / "model_run").exists()


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"epochs": "many"}, "configuration key 'epochs' must be a whole number, got 'many'"),
        ({"lr": "fast"}, "configuration key 'lr' must be a number, got 'fast'"),
        ({"amp": "yes"}, "configuration key 'amp' must be true or false, got 'yes'"),
        ({"size": [0, 0]}, "configuration key 'size' must have both sides from 16 to 2048 pixels, got 0x0"),
        ({"epochs": 0}, "configuration key 'epochs' must be a whole number from 1 to 10000, got 0"),
        ({"learning_rate": 1}, "unknown configuration key(s) ['learning_rate'] for TargetTrainConfig"),
    ],
)
def test_config_file_values_are_checked_and_the_key_named(
    settings: dict, message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"data": str(tmp_path / "data"), **settings}))
    code, err = _run(capsys, "train-target", "--config", path, "--out", tmp_path / "t.pt")
    assert (code, _one_error_line(err)) == (2, f"error: {path}: {message}")


# ---------------------------------------------------------------------- output paths, checked first


def test_training_refuses_an_output_folder_before_it_trains(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    code, err = _run(capsys, "train-target", "--data", tmp_path / "data", "--out", folder, "--device", "cpu")
    assert (code, _one_error_line(err)) == (
        2, f"error: --out {folder}: is a folder; give the name of a file to write"
    )  # fmt: skip
    assert list(tmp_path.iterdir()) == [folder] and not any(folder.iterdir())  # no run folder, nothing read
    run_file = tmp_path / "run_here"
    run_file.write_text("not a folder")
    code, err = _run(capsys, "train-target", "--data", tmp_path / "data", "--out", tmp_path / "t.pt",
                     "--run-dir", run_file, "--device", "cpu")  # fmt: skip
    assert (code, _one_error_line(err)) == (2, f"error: --run-dir {run_file}: is a file, not a folder")


@pytest.mark.parametrize(
    ("argv", "option"),
    [
        (["evaluate", "--data", "d", "--target", "t.pt", "--device", "cpu", "--json", "{dir}"], "--json"),
        (["explain", "a.png", "b.png", "--target", "t.pt", "--interpreter", "i.pt", "--json", "{dir}"], "--json"),
        (["explain", "a.png", "b.png", "--target", "t.pt", "--interpreter", "i.pt", "--json", "{file}",
          "--overlay", "{dir}"], "--overlay"),
        (["explain", "a.png", "b.png", "--target", "t.pt", "--interpreter", "i.pt", "--json", "{file}",
          "--maps", "{dir}"], "--maps"),
        (["case", "save", "{ws}", "1", "{dir}"], "the case file"),
        (["case", "export", "c.amdcase", "--html", "{dir}"], "--html"),
        (["audit", "{ws}", "--export", "{dir}"], "--export"),
        (["export-onnx", "--target", "t.pt", "--out", "{dir}"], "--out"),
    ],
)  # fmt: skip
def test_output_folders_are_refused_before_any_work(
    argv: list[str], option: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    names = {"{dir}": str(folder), "{file}": str(tmp_path / "e.json"), "{ws}": str(tmp_path / "ws")}
    code, err = _run(capsys, *(names.get(a, a) for a in argv))
    assert code == 2
    assert _one_error_line(err) == f"error: {option} {folder}: is a folder; give the name of a file to write"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_an_output_where_no_file_can_be_made_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, err = _run(capsys, "explain", "a.png", "b.png", "--target", "t.pt", "--interpreter", "i.pt",
                     "--json", tmp_path / "e.json", "--maps", "/proc/x.npz")  # fmt: skip
    assert code == 2 and _one_error_line(err).startswith(
        "error: --maps /proc/x.npz: cannot create a file in /proc"
    )
    blocker = tmp_path / "plain.txt"
    blocker.write_text("x")
    code, err = _run(capsys, "explain", "a.png", "b.png", "--target", "t.pt", "--interpreter", "i.pt",
                     "--json", blocker / "sub" / "e.json")  # fmt: skip
    assert (code, _one_error_line(err)) == (
        2, f"error: --json {blocker / 'sub' / 'e.json'}: {blocker} is a file, not a folder"
    )  # fmt: skip
    code, err = _run(capsys, "explain", "a.png", "b.png", "--target", "t.pt", "--interpreter", "i.pt",
                     "--json", tmp_path / "same", "--maps", tmp_path / "same")  # fmt: skip
    assert code == 2 and "--json and --maps name the same file" in _one_error_line(err)


def test_ingest_checks_its_report_path_first_and_creates_a_missing_folder(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    images = [*write_jpegs(tmp_path / "crops", 2), tmp_path / "crops" / "missing.jpg"]
    folder = tmp_path / "reports"
    folder.mkdir()
    code, err = _run(capsys, "ingest", tmp_path / "ws", *images, "--refused-report", folder)
    assert code == 2 and "--refused-report" in _one_error_line(err) and not (tmp_path / "ws").exists()
    report = tmp_path / "new" / "sub" / "refused.csv"
    code, _ = _run(capsys, "ingest", tmp_path / "ws", *images, "--refused-report", report)
    assert code == 1  # one file refused, the others imported
    assert report.read_text(encoding="utf-8").splitlines()[1].startswith(str(images[2]))
    assert sorted(p.name for p in report.parent.iterdir()) == ["refused.csv"]  # no temporary file left


# ---------------------------------------------------------------------- devices


@pytest.mark.parametrize(
    "argv",
    [
        ["explain", "a.png", "b.png", "--target", "t.pt", "--interpreter", "i.pt", "--json", "o.json"],
        ["search", "ws", "--model", "m.pt", "--query", "1"],
        ["index", "ws", "--model", "m.pt"],
        ["train-target", "--data", "d"],
        ["evaluate", "--data", "d", "--target", "t.pt", "--json", "o.json"],
    ],
)
def test_a_device_that_is_not_one_is_refused_by_every_command(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = _run(capsys, *argv, "--device", "banana")
    assert code == 2
    assert _one_error_line(err).startswith(
        "error: --device: 'banana' is not a device: use auto, cpu, cuda or cuda:N"
    )


@NO_GPU
@pytest.mark.parametrize(
    "argv",
    [
        ["explain", "a.png", "b.png", "--target", "t.pt", "--interpreter", "i.pt", "--json", "{tmp}/o.json"],
        ["search", "{tmp}/ws", "--model", "m.pt", "--query", "1"],
        ["index", "{tmp}/ws", "--model", "m.pt"],
        ["train-target", "--data", "d", "--out", "{tmp}/t.pt"],
    ],
)
@pytest.mark.parametrize("device", ["cuda", "cuda:1"])
def test_a_gpu_on_a_machine_without_one_gets_the_same_clear_message(
    argv: list[str], device: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, err = _run(capsys, *(a.replace("{tmp}", str(tmp_path)) for a in argv), "--device", device)
    assert (code, _one_error_line(err)) == (
        2, f"error: device '{device}' was asked for but no CUDA GPU is available; use --device cpu"
    )  # fmt: skip
    assert list(tmp_path.iterdir()) == []


def test_a_gpu_number_beyond_the_machine_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from amd.errors import AmdError
    from cli.checks import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_device("cuda:0") == "cuda:0" and resolve_device(None) == "cuda"
    with pytest.raises(
        AmdError, match=r"'cuda:1' was asked for but this machine has 1 CUDA GPU\(s\) \(cuda:0\)"
    ):
        resolve_device("cuda:1")


# ---------------------------------------------------------------------- workspaces: database URL, read-only


def test_a_bad_database_url_leaves_no_workspace_behind(tmp_path: Path) -> None:
    images = write_jpegs(tmp_path / "crops", 1)
    ws = tmp_path / "ws"
    out = _main("ingest", str(ws), str(images[0]), "--db-url", "garbage")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip() == (
        "error: 'garbage' is not a database URL "
        "(e.g. postgresql+psycopg://user@host/database or sqlite:////path/to/file.db)"
    )
    assert not ws.exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--db-url", "postgresql+psycopg://ann:secret@127.0.0.1:1/amd"], "cannot open the database"),
        (["--db-url", "mysql://ann@db.example/amd"], "must be SQLite or PostgreSQL, not mysql"),
        (["--format", "market1501"], "error: "),
        (["--format", "csv", "--schema", "bogus"], "error: "),
    ],
)
def test_a_failed_creation_leaves_the_folder_as_it_was(
    extra: list[str], message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    crops = tmp_path / "crops"
    write_jpegs(crops, 2)
    if "csv" in extra:
        (crops / "index.csv").write_text("path,identity,camera\ncrop_00000.jpg,a,c1\n")
    empty = tmp_path / "empty"
    empty.mkdir()
    for ws in (tmp_path / "new", empty):
        code, err = _run(capsys, "ingest", ws, crops, *extra)
        line = _one_error_line(err)
        assert code == 2 and message in line and "secret" not in line
    assert not (tmp_path / "new").exists() and list(empty.iterdir()) == []


def test_an_existing_workspace_that_fails_to_open_is_kept(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    images = write_jpegs(tmp_path / "crops", 1)
    ws = tmp_path / "ws"
    assert _run(capsys, "ingest", ws, *images)[0] == 0
    before = sorted(p.name for p in ws.iterdir())
    code, err = _run(capsys, "ingest", ws, *images, "--db-url", "postgresql+psycopg://ann@127.0.0.1:1/amd")
    assert code == 2 and "cannot open the database" in _one_error_line(err)
    assert sorted(p.name for p in ws.iterdir()) == before
    assert json.loads((ws / "workspace.json").read_text())["database_url"] is None
    assert _run(capsys, "case", "list", ws)[0] == 0


def test_case_list_says_when_a_workspace_has_no_cases(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    assert _run(capsys, "ingest", ws, *write_jpegs(tmp_path / "crops", 1))[0] == 0
    assert main(["case", "list", str(ws)]) == 0
    assert capsys.readouterr().out.strip() == f"{ws}: no cases yet (the GUI's case panel or `case import` adds them)"


def test_a_read_only_workspace_is_refused_naming_the_file(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import cli.jobs

    images = write_jpegs(tmp_path / "crops", 1)
    ws = tmp_path / "ws"
    assert _run(capsys, "ingest", ws, *images)[0] == 0
    real_access = os.access
    # The tests may run as root, whom permissions do not stop: the check is given the answer instead.
    monkeypatch.setattr(
        cli.jobs.os, "access", lambda p, m: Path(p).name != "workspace.db" and real_access(p, m)
    )
    code, err = _run(capsys, "case", "list", ws)
    line = _one_error_line(err)
    assert code == 2 and line.startswith(f"error: {ws / 'workspace.db'} is read-only for this user")
    monkeypatch.setattr(cli.jobs.os, "access", lambda p, m: Path(p) != ws and real_access(p, m))
    code, err = _run(capsys, "ingest", ws, *images)
    assert code == 2 and _one_error_line(err).startswith(f"error: the workspace folder {ws} is read-only")


def test_a_workspace_in_a_folder_that_cannot_be_written_is_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import cli.checks

    images = write_jpegs(tmp_path / "crops", 1)

    def refused(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(cli.checks.tempfile, "mkstemp", refused)
    code, err = _run(capsys, "ingest", tmp_path / "locked" / "ws", *images)
    assert (code, _one_error_line(err)) == (
        2, f"error: workspace {tmp_path / 'locked' / 'ws'}: cannot create a file in {tmp_path} (permission denied)"
    )  # fmt: skip
    assert not (tmp_path / "locked").exists()


# ---------------------------------------------------------------------- search with another model file


def test_search_with_a_namesake_model_file_says_which_file_indexed_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import torch

    from amd.models import build_target, save_target

    files = []
    for seed, folder in ((0, "a"), (1, "b")):
        torch.manual_seed(seed)
        files.append(tmp_path / folder / "target.pt")
        files[-1].parent.mkdir()
        digest = save_target(files[-1], build_target("mobilenetv2").eval(), (64, 32))
        files[-1] = (files[-1], digest)
    (a, a_hash), (b, b_hash) = files
    ws = tmp_path / "ws"
    assert _run(capsys, "ingest", ws, *write_jpegs(tmp_path / "crops", 3))[0] == 0
    assert _run(capsys, "index", ws, "--model", a, "--device", "cpu")[0] == 0
    code, err = _run(capsys, "search", ws, "--model", b, "--query", "1", "--device", "cpu")
    line = _one_error_line(err)
    assert code == 2
    assert line.startswith(
        f"error: the workspace has an index for a model named 'target', but made with another file "
        f"(SHA-256 {a_hash[:12]}..., {a}); this file (SHA-256 {b_hash[:12]}...) is a different model"
    )
    assert "main.py index WORKSPACE --model FILE" in line


# ---------------------------------------------------------------------- importing a case twice


def test_importing_the_same_case_file_twice_is_refused_unless_forced(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from cases.archive import save_case
    from db.workspace import Workspace
    from tests.cases.conftest import build_case

    with Workspace.create(tmp_path / "source") as ws:
        setup = build_case(ws, tmp_path / "images")
        save_case(ws, setup.case_id, tmp_path / "robbery.amdcase")
    other = tmp_path / "other"
    Workspace.create(other).close()
    assert _run(capsys, "case", "import", other, tmp_path / "robbery.amdcase")[0] == 0
    capsys.readouterr()
    code, err = _run(capsys, "case", "import", other, tmp_path / "robbery.amdcase")
    assert (code, _one_error_line(err)) == (
        2,
        f"error: {other} already holds an identical case: case 1 ('Robbery <b>12</b>', reference 2026/0413, "
        "2 comparisons with the same crops, verdicts and notes); nothing was imported. Give --force to import "
        "another copy",
    )
    with Workspace.open(other) as ws:
        assert len(ws.cases.list()) == 1
    assert _run(capsys, "case", "import", other, tmp_path / "robbery.amdcase", "--force")[0] == 0
    with Workspace.open(other) as ws:
        assert [c.id for c in ws.cases.list()] == [1, 2]
