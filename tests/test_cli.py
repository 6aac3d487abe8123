from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from amd.errors import AmdError
from amd.train.config import DistillConfig, TargetTrainConfig
from cli.config_args import add_config_arguments, config_from_args

REPO = Path(__file__).resolve().parent.parent


def _parse(cls, argv, required=()):
    parser = argparse.ArgumentParser()
    add_config_arguments(parser, cls, required)
    return config_from_args(cls, parser.parse_args(argv), required)


def test_options_override_the_file_which_overrides_defaults(tmp_path: Path) -> None:
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps({"data": "/d", "epochs": 7, "lr": 0.001, "size": [128, 64], "version": 1}))
    cfg = _parse(TargetTrainConfig, ["--config", str(path), "--epochs", "9", "--amp", "no"])
    assert (cfg.data, cfg.epochs, cfg.lr, cfg.size, cfg.amp) == ("/d", 9, 0.001, (128, 64), False)
    assert cfg.arch == "resnet18" and cfg.p == 8  # defaults kept


def test_size_and_required_options() -> None:
    cfg = _parse(
        DistillConfig, ["--data", "x", "--target", "t.pt", "--size", "256x128", "--map-mode", "localising"]
    )
    assert cfg.size == (256, 128) and cfg.map_mode == "localising"
    with pytest.raises(AmdError, match="missing required option"):
        _parse(DistillConfig, ["--data", "x"], required=("data", "target"))
    with pytest.raises(SystemExit):
        _parse(DistillConfig, ["--size", "256"])


def test_unknown_key_in_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps({"data": "/d", "learning_rate": 1}))
    with pytest.raises(AmdError, match=r"unknown configuration key\(s\) \['learning_rate'\]"):
        _parse(TargetTrainConfig, ["--config", str(path)])


def _main(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "main.py", *args], cwd=REPO, capture_output=True, text=True, timeout=120
    )


def test_help_lists_the_subcommands() -> None:
    out = _main("--help")
    assert out.returncode == 0
    for command in ("synth", "dataset-info", "train-target", "distill"):
        assert command in out.stdout


def test_user_errors_are_one_line_without_traceback(tmp_path: Path) -> None:
    out = _main("dataset-info", str(tmp_path / "missing"), "--format", "market1501")
    assert out.returncode == 2
    assert out.stderr.strip() == f"error: {tmp_path / 'missing'}: dataset folder not found"
