"""ONNX export: onnxruntime's outputs equal PyTorch's within 1e-4, for any batch size; the ORT forward
extracts the same features as the PyTorch path of :func:`amd.features.extract`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from amd.data.records import Record
from amd.features import extract
from amd.models import Interpreter, build_target, save_interpreter, save_target
from amd.onnx_export import OnnxError, OnnxForward, export_onnx, fastest_cpu_forward
from amd.schema import schema_from_names

SIZE = (64, 32)
NAMES = ("backpack", "hat", "long_hair")


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("onnx")
    torch.manual_seed(0)
    target = build_target("resnet18").eval()
    with torch.no_grad():
        # Non-trivial BNNeck statistics, so that the check covers them.
        target.bnneck.running_mean.normal_(0, 0.1)
        target.bnneck.running_var.uniform_(0.5, 1.5)
    target_path = folder / "target.pt"
    sha = save_target(target_path, target, SIZE)
    interpreter = Interpreter(target, len(NAMES), map_mode="localising", aux_classifier=True).eval()
    interp_path = folder / "interpreter.pt"
    save_interpreter(interp_path, interpreter, SIZE, schema_from_names(NAMES), sha)
    return {"folder": folder, "target": target_path, "interpreter": interp_path}


def test_target_export_matches_torch_for_any_batch(files, tmp_path: Path) -> None:
    from amd.models import load_target

    model, info = load_target(files["target"])
    report = export_onnx(model, tmp_path / "t.onnx", info.input_size)
    assert report.outputs == ("embedding",)
    assert report.max_abs_diff <= 1e-4
    forward = OnnxForward(tmp_path / "t.onnx")
    assert forward.input_size == SIZE
    assert forward.metadata["amd.kind"] == "target"
    for batch in (1, 5):
        x = torch.randn(batch, 3, *SIZE)
        with torch.no_grad():
            want = model(x)
        got = forward(x)
        assert got.shape == (batch, 512)
        assert (got - want).abs().max().item() <= 1e-4


def test_export_onnx_command_with_interpreter(files, tmp_path: Path, capsys) -> None:
    from amd.models import load_pair
    from cli.main import main

    out = tmp_path / "pair.onnx"
    code = main(
        [
            "export-onnx",
            "--target",
            str(files["target"]),
            "--interpreter",
            str(files["interpreter"]),
            "--out",
            str(out),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "outputs embedding, maps, attribute_embeddings, attribute_logits" in printed
    interpreter, _, _ = load_pair(files["target"], files["interpreter"])
    forward = OnnxForward(out, outputs="all")
    assert forward.output_names == ("embedding", "maps", "attribute_embeddings", "attribute_logits")
    assert forward.metadata["amd.attributes"] == ",".join(NAMES)
    x = torch.randn(4, 3, *SIZE)
    with torch.no_grad():
        want = interpreter(x)
    got = forward(x)
    assert got[1].shape == (4, len(NAMES), 4, 2)
    want = (want.embedding, want.maps, want.attribute_embeddings, want.attribute_logits)
    for a, b in zip(got, want, strict=True):
        assert a.shape == b.shape
        assert (a - b).abs().max().item() <= 1e-4


def test_ort_forward_extracts_the_same_features(files, tmp_path: Path) -> None:
    from amd.models import load_target

    model, info = load_target(files["target"])
    export_onnx(model, tmp_path / "t.onnx", info.input_size)
    rng = np.random.default_rng(0)
    records = []
    for i in range(5):
        path = tmp_path / f"{i}.png"
        Image.fromarray(rng.integers(0, 255, (SIZE[0], SIZE[1], 3), dtype=np.uint8)).save(path)
        records.append(Record(path=str(path), pid=i, camid=0, attributes=np.zeros(0, dtype=np.int8)))
    a = extract(model, records, SIZE, batch_size=2)
    b = extract(OnnxForward(tmp_path / "t.onnx"), records, SIZE, batch_size=2)
    assert a.shape == b.shape == (5, 512)
    assert np.abs(a - b).max() <= 1e-4

    forward, name, seconds = fastest_cpu_forward(model, SIZE, batch_size=4, repeats=1)
    assert name in ("torch", "onnxruntime")
    assert name == min(seconds, key=seconds.get)
    c = extract(forward, records, SIZE, batch_size=2)
    assert np.abs(a - c).max() <= 1e-4


def test_bad_onnx_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(OnnxError, match="no such ONNX file"):
        OnnxForward(tmp_path / "missing.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(OnnxError, match="not a usable ONNX model"):
        OnnxForward(junk)
    with pytest.raises(OnnxError, match="cannot export a Linear"):
        export_onnx(torch.nn.Linear(2, 2), tmp_path / "x.onnx", SIZE)
