"""The ``explain`` command: JSON, maps and picture of one pair, from model files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from amd.explain import Explainer
from amd.models import Interpreter, build_target, save_interpreter, save_target
from amd.schema import schema_from_names

SIZE = (64, 32)
NAMES = ["hat", "backpack", "upred", "downblue"]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("explain_cli")
    torch.manual_seed(1)
    target = build_target("resnet18").eval()
    digest = save_target(folder / "target.pt", target, SIZE)
    interpreter = Interpreter(target, len(NAMES), map_mode="localising", aux_classifier=True)
    with torch.no_grad():
        interpreter.decompose[-1].weight.normal_(std=0.5)
    save_interpreter(folder / "interpreter.pt", interpreter.eval(), SIZE, schema_from_names(NAMES), digest)
    rng = np.random.default_rng(0)
    for name, (h, w) in (("a.png", (60, 30)), ("b.png", (90, 40))):
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(folder / name)
    return {"folder": folder, "target": folder / "target.pt", "interpreter": folder / "interpreter.pt",
            "a": folder / "a.png", "b": folder / "b.png"}  # fmt: skip


def test_explain_writes_json_maps_and_picture(files, capsys) -> None:
    from cli.main import main

    out = files["folder"] / "out"
    code = main(["explain", "--target", str(files["target"]), "--interpreter", str(files["interpreter"]),
                 str(files["a"]), str(files["b"]), "--json", str(out / "e.json"), "--maps", str(out / "maps"),
                 "--overlay", str(out / "e.png")])  # fmt: skip
    assert code == 0
    data = json.loads((out / "e.json").read_text())
    expected = Explainer.from_files(files["target"], files["interpreter"]).explain(files["a"], files["b"])
    assert data["distance"] == pytest.approx(expected.distance, rel=1e-5)
    assert data["gap"] == pytest.approx(expected.gap, rel=1e-4, abs=1e-6)
    shares = [a["share"] for a in data["attributes"]]
    assert shares == sorted(shares, reverse=True) and sum(shares) == pytest.approx(1.0)
    assert {a["name"] for a in data["attributes"]} == set(NAMES)
    by_name = {a["name"]: a for a in data["attributes"]}
    for i, name in enumerate(NAMES):
        assert by_name[name]["component"] == pytest.approx(expected.components[i], rel=1e-5)
        assert set(by_name[name]) >= {"name", "label", "component", "share"}
    assert sum(a["component"] for a in data["attributes"]) == pytest.approx(data["distance"] * (1 + data["gap"]))
    # --maps without ".npz" is written under exactly that name; maps at each crop's size, schema order.
    with np.load(out / "maps") as maps:
        assert maps["maps_a"].shape == (4, 60, 30) and maps["maps_b"].shape == (4, 90, 40)
        np.testing.assert_allclose(maps["maps_b"], expected.maps_b, rtol=1e-5)
    with Image.open(out / "e.png") as picture:
        assert picture.format == "PNG" and picture.height >= 256 and picture.width > 2 * 128
    assert "distance" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["e.json", "e.png", "maps"]  # no temporary files left


def test_explainer_from_files_folds_without_changing_the_numbers(files) -> None:
    from amd.models import load_pair

    interpreter, info, _ = load_pair(files["target"], files["interpreter"])
    plain = Explainer(interpreter.target, interpreter, input_size=SIZE).explain(files["a"], files["b"])
    folded = Explainer.from_files(files["target"], files["interpreter"])
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.interpreter.modules())
    e = folded.explain(files["a"], files["b"])
    assert e.distance == pytest.approx(plain.distance, rel=1e-4)
    np.testing.assert_allclose(e.components, plain.components, rtol=1e-4)
    np.testing.assert_allclose(e.maps_a, plain.maps_a, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(e.predicted_b, plain.predicted_b, rtol=1e-4, atol=1e-5)


def test_pair_figure_outlines_the_top_attributes_in_their_colours(files) -> None:
    from amd.figures import CROP_HEIGHT, render_pair_figure
    from amd.visual import EVEN_COLOUR, TOP_COLOURS

    e = Explainer.from_files(files["target"], files["interpreter"]).explain(files["a"], files["b"])
    picture = np.asarray(render_pair_figure(e, files["a"], files["b"]))
    assert picture.shape[0] >= CROP_HEIGHT and picture.shape[2] == 3
    colours = {tuple(c) for c in picture.reshape(-1, 3)}
    assert all(c in colours for c in TOP_COLOURS)  # outlines, legend swatches and bars
    # The dashed even-share line: at 1/M of the share scale, whose full length is the largest share's bar.
    first = np.all(picture == TOP_COLOURS[0], axis=2)
    runs = [(int(np.flatnonzero(row).min()), int(np.flatnonzero(row).max())) for row in first if row.any()]
    start, end = max(runs, key=lambda r: r[1] - r[0])  # the first bar, the longest run of its colour
    counts = np.all(picture == EVEN_COLOUR, axis=2).sum(axis=0)
    expected = start + (end - start) * (1 / len(e.shares)) / float(e.shares.max())
    assert abs(int(np.argmax(counts)) - expected) <= 1.5 and counts.max() >= 20


def test_explain_refuses_a_foreign_interpreter(files, tmp_path: Path, capsys) -> None:
    from cli.main import main

    other = build_target("resnet18").eval()
    save_target(tmp_path / "other.pt", other, SIZE)
    code = main(["explain", "--target", str(tmp_path / "other.pt"), "--interpreter", str(files["interpreter"]),
                 str(files["a"]), str(files["b"]), "--json", str(tmp_path / "e.json")])  # fmt: skip
    assert code == 2 and "distilled from another target" in capsys.readouterr().err
    assert not (tmp_path / "e.json").exists()
