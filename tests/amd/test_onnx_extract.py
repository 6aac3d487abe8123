"""ONNX Runtime in CPU extraction: the same features as PyTorch within 1e-4, exported once and cached."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from amd import embedding as embedding_module
from amd.data.records import Record
from amd.embedding import cpu_forward, load_embedder
from amd.features import extract, state_hash
from amd.models import build_target, save_target
from amd.onnx_export import OnnxForward

SIZE = (64, 32)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    folder = tmp_path_factory.mktemp("onnx_extract")
    torch.manual_seed(0)
    target = build_target("resnet18").eval()
    with torch.no_grad():
        target.bnneck.running_mean.normal_(0, 0.1)
        target.bnneck.running_var.uniform_(0.5, 1.5)
    path = folder / "target.pt"
    sha = save_target(path, target, SIZE)
    return path, sha


@pytest.fixture(scope="module")
def crops(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("crops")
    rng = np.random.default_rng(0)
    paths = []
    for i in range(5):
        path = folder / f"c{i}.png"
        Image.fromarray(rng.integers(0, 256, (80 + i, 40, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def test_onnx_embedder_equals_torch(checkpoint, crops, tmp_path: Path) -> None:
    path, sha = checkpoint
    torch_emb = load_embedder(path)
    onnx_emb = load_embedder(path, runtime="onnx", onnx_cache=tmp_path)
    assert torch_emb.runtime == "torch" and onnx_emb.runtime == "onnxruntime"
    assert isinstance(onnx_emb.model, OnnxForward)
    assert (tmp_path / f"{sha}.onnx").is_file()
    want = torch_emb.embed(crops, batch_size=2)
    got = onnx_emb.embed(crops, batch_size=2)
    assert got.shape == want.shape == (5, torch_emb.dim) and got.dtype == np.float32
    assert np.abs(got - want).max() <= 1e-4 * max(1.0, np.abs(want).max())


def test_auto_times_once_and_reuses_the_cache(checkpoint, crops, tmp_path: Path, monkeypatch) -> None:
    path, sha = checkpoint
    emb = load_embedder(path, runtime="auto", onnx_cache=tmp_path)
    choice = json.loads((tmp_path / f"{sha}.json").read_text())
    assert choice["runtime"] == emb.runtime and choice["threads"] == torch.get_num_threads()
    assert set(choice["seconds_per_batch"]) == {"torch", "onnxruntime"}
    assert (tmp_path / f"{sha}.onnx").is_file() == (emb.runtime == "onnxruntime")

    import amd.onnx_export

    def no_timing(*args, **kwargs):
        raise AssertionError("timed again although the choice is cached")

    monkeypatch.setattr(amd.onnx_export, "fastest_cpu_forward", no_timing)
    again = load_embedder(path, runtime="auto", onnx_cache=tmp_path)
    assert again.runtime == emb.runtime
    # Forcing the other choice through the cache file: ONNX Runtime is used, and gives the same features.
    (tmp_path / f"{sha}.json").write_text(json.dumps({**choice, "runtime": "onnxruntime"}))
    forced = load_embedder(path, runtime="auto", onnx_cache=tmp_path)
    assert forced.runtime == "onnxruntime"
    want = load_embedder(path).embed(crops)
    assert np.abs(forced.embed(crops) - want).max() <= 1e-4 * max(1.0, np.abs(want).max())


def test_extract_runtime_onnx_equals_torch(checkpoint, crops, tmp_path: Path) -> None:
    from amd.models import load_target

    model, info = load_target(checkpoint[0])
    records = [
        Record(path=str(p), pid=i, camid=0, attributes=np.zeros(0, np.int8)) for i, p in enumerate(crops)
    ]
    want = extract(model, records, SIZE, batch_size=2)
    got = extract(model, records, SIZE, batch_size=2, runtime="onnx", onnx_cache=tmp_path)
    assert got.shape == want.shape == (5, model.embedding_dim)
    assert np.abs(got - want).max() <= 1e-4 * max(1.0, np.abs(want).max())
    # Without a checkpoint hash the export is named by the weights' hash.
    assert (tmp_path / f"{state_hash(model)}.onnx").is_file()
    got2 = extract(model, records, SIZE, runtime="onnx", onnx_cache=tmp_path, model_hash=info.sha256)
    assert np.abs(got2 - want).max() <= 1e-4 * max(1.0, np.abs(want).max())
    assert (tmp_path / f"{info.sha256}.onnx").is_file()


def test_state_hash_follows_the_weights() -> None:
    torch.manual_seed(0)
    a = build_target("resnet18").eval()
    h = state_hash(a)
    assert h == state_hash(a) and len(h) == 64
    with torch.no_grad():
        a.bnneck.running_mean.add_(1.0)
    assert state_hash(a) != h


def test_unknown_runtime_is_refused(checkpoint, crops) -> None:
    with pytest.raises(ValueError, match="unknown runtime 'tensorrt'"):
        load_embedder(checkpoint[0], runtime="tensorrt")
    with pytest.raises(ValueError, match="unknown runtime 'tvm'"):
        cpu_forward(build_target("resnet18").eval(), SIZE, "x", runtime="tvm")
    assert embedding_module.RUNTIMES == ("torch", "onnx", "auto")
