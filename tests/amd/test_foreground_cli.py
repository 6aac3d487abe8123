"""The ``choose-foreground`` command: weights chosen on a render with masks, written into the interpreter."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from amd.models import Interpreter, build_target, load_pair, save_interpreter, save_target

SIZE = (64, 32)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from amd.data.load import load_dataset
    from amd.synth.writer import SynthConfig, write_dataset

    folder = tmp_path_factory.mktemp("foreground_cli")
    data = folder / "render"
    write_dataset(data, SynthConfig(train_ids=2, test_ids=4, per_id=4, cameras=2, height=64, width=32, seed=9))
    schema = load_dataset(data, "market1501").schema
    torch.manual_seed(2)
    target = build_target("resnet18").eval()
    digest = save_target(folder / "target.pt", target, SIZE)
    evidence = Interpreter(target, len(schema), map_mode="localising", map_source="evidence", location_prior=True)
    with torch.no_grad():
        evidence.evidence[-1].weight.normal_(std=0.5)
    save_interpreter(folder / "evidence.pt", evidence.eval(), SIZE, schema, digest, half=True)
    head = Interpreter(target, len(schema), map_mode="localising")
    save_interpreter(folder / "head.pt", head.eval(), SIZE, schema, digest)
    return {"folder": folder, "data": data, "target": folder / "target.pt", "evidence": folder / "evidence.pt",
            "head": folder / "head.pt"}  # fmt: skip


def _run(files: dict[str, Path], interpreter: str, data: Path, out: Path, *extra: str) -> int:
    from cli.main import main

    return main(["choose-foreground", "--data", str(data), "--target", str(files["target"]), "--interpreter",
                 str(files[interpreter]), "--out", str(out), "--device", "cpu", *extra])  # fmt: skip


def test_choose_foreground_writes_the_interpreter_with_its_weights(files, capsys) -> None:
    import json

    out = files["folder"] / "leaned.pt"
    assert _run(files, "evidence", files["data"], out, "--json", str(files["folder"] / "c.json")) == 0
    printed = capsys.readouterr().out
    assert printed.splitlines()[0].split()[:3] == ["group", "trials", "0"] and "gender" in printed
    choice = json.loads((files["folder"] / "c.json").read_text())
    interpreter, _, info = load_pair(files["target"], out)
    weights = info.architecture["foreground_weights"]
    expected = {g: w for g, w in choice["chosen"].items() if w > 0}
    assert (weights is None) == (not expected)
    assert set(choice["hits"]) >= {"gender", "hat", "upper colour"} and len(choice["grid"]) == 7
    # Same weights as the original otherwise, stored in float16 like it.
    original, _, original_info = load_pair(files["target"], files["evidence"])
    for (k, a), b in zip(original.own_state_dict().items(), interpreter.own_state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    assert info.target_sha256 == original_info.target_sha256 and info.extra["foreground_render"]["seed"] == 9
    assert info.half and original_info.half
    assert out.stat().st_size < files["evidence"].stat().st_size * 1.2


def test_choose_foreground_refuses_head_maps_and_renders_without_masks(files, capsys) -> None:
    assert _run(files, "head", files["data"], files["folder"] / "x.pt") == 2
    err = capsys.readouterr().err
    # Refused with the reason before any crop is read or run through the model.
    assert "do not come from an evidence classifier" in err and "--map-source" in err
    assert "evidence of" not in err and "masks" not in err
    plain = files["folder"] / "plain"
    (plain / "bounding_box_train").mkdir(parents=True)
    for sub in ("query", "bounding_box_test", "bounding_box_train"):
        (plain / sub).mkdir(exist_ok=True)
        for src in (files["data"] / sub).glob("*.jpg"):
            (plain / sub / src.name).write_bytes(src.read_bytes())
    (plain / "market_attribute.mat").write_bytes((files["data"] / "market_attribute.mat").read_bytes())
    assert _run(files, "evidence", plain, files["folder"] / "y.pt") == 2
    assert "no part masks" in capsys.readouterr().err
    assert not (files["folder"] / "x.pt").exists() and not (files["folder"] / "y.pt").exists()
