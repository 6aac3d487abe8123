"""Checkpoint files: round trips, metadata, atomic writes, and every refusal with its message."""

from __future__ import annotations

import hashlib
import pickle

import numpy as np
import pytest
import torch
import torchvision

from amd.models import Interpreter, build_target
from amd.models.checkpoint import (
    FORMAT_VERSION,
    CheckpointError,
    file_sha256,
    load_interpreter,
    load_pair,
    load_target,
    read_checkpoint,
    read_info,
    save_checkpoint,
    save_interpreter,
    save_target,
)
from amd.schema import schema_from_names

SIZE = (64, 32)


@pytest.fixture(scope="module")
def schema():
    return schema_from_names(["hat", "backpack", "upred"], name="tiny")


@pytest.fixture(scope="module")
def saved(tmp_path_factory, schema):
    """A resnet18 target and a localising interpreter with an auxiliary classifier, saved once."""
    folder = tmp_path_factory.mktemp("ckpt")
    torch.manual_seed(0)
    target = build_target("resnet18", num_classes=5).eval()
    target_path = folder / "target.pt"
    target_hash = save_target(
        target_path, target, SIZE, config={"lr": 3.5e-4, "sizes": (256, 128)}, metrics={"mAP": 0.5}
    )
    interpreter = Interpreter(target, num_attributes=3, map_mode="localising", aux_classifier=True)
    with torch.no_grad():
        interpreter.log_gain.copy_(torch.tensor([0.1, -0.2, 0.3]))
        interpreter.decompose[-1].weight.normal_()
    interp_path = folder / "interpreter.pt"
    save_interpreter(interp_path, interpreter, SIZE, schema, target_hash, metrics={"adre": 2.0})
    return {
        "target": target,
        "interpreter": interpreter,
        "target_path": target_path,
        "interp_path": interp_path,
    }


def test_file_sha256(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"abc")
    assert file_sha256(path) == hashlib.sha256(b"abc").hexdigest()


def test_target_round_trip(saved):
    model, info = load_target(saved["target_path"])
    assert not model.training
    for key, value in saved["target"].state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key
    assert info.kind == "target" and info.input_size == SIZE
    assert info.architecture["backbone"] == "resnet18" and info.architecture["num_classes"] == 5
    assert info.config == {"lr": 3.5e-4, "sizes": [256, 128]} and info.metrics == {"mAP": 0.5}
    assert info.sha256 == file_sha256(saved["target_path"]) and info.format_version == FORMAT_VERSION
    assert info.schema is None and info.name == "target"


def test_interpreter_round_trip(saved, schema):
    interpreter, target_info, info = load_pair(saved["target_path"], saved["interp_path"])
    assert info.kind == "interpreter" and info.schema == schema
    assert info.target_sha256 == target_info.sha256
    assert interpreter.map_mode == "localising" and interpreter.has_aux_classifier
    original = saved["interpreter"].own_state_dict()
    for key, value in interpreter.own_state_dict().items():
        assert torch.equal(value, original[key]), key
    x = torch.randn(2, 3, *SIZE)
    saved["interpreter"].eval()
    with torch.no_grad():
        a, b = interpreter(x), saved["interpreter"](x)
    torch.testing.assert_close(a.attribute_embeddings, b.attribute_embeddings)
    torch.testing.assert_close(a.attribute_logits, b.attribute_logits)


def test_interpreter_with_pooled_classifier_round_trip(tmp_path, saved, schema):
    torch.manual_seed(3)
    interpreter = Interpreter(
        saved["target"], num_attributes=3, map_mode="localising", normalisation="softmax",
        pooled_classifier=True, location_prior=True, pooled_features="local",
    )  # fmt: skip
    with torch.no_grad():
        interpreter.decompose[-1].weight.normal_()
        interpreter.location_logits.normal_()
    path = tmp_path / "pooled.pt"
    target_hash = file_sha256(saved["target_path"])
    save_interpreter(path, interpreter.eval(), SIZE, schema, target_hash)
    loaded, _, info = load_pair(saved["target_path"], path)
    assert info.architecture["pooled_features"] == "local" and loaded.normalisation == "softmax"
    x = torch.randn(2, 3, *SIZE)
    with torch.no_grad():
        a, b = loaded(x), interpreter(x)
    torch.testing.assert_close(a.maps, b.maps)
    torch.testing.assert_close(a.attribute_logits, b.attribute_logits)


def test_interpreter_file_holds_no_target_weights(saved):
    _, state = read_checkpoint(saved["interp_path"])
    assert state and not any(k.startswith("target.") for k in state)


def test_half_precision_and_no_classifier(tmp_path, saved):
    path = tmp_path / "small.pt"
    save_target(path, saved["target"], SIZE, include_classifier=False, half=True)
    full = saved["target_path"].stat().st_size
    assert path.stat().st_size < 0.6 * full
    model, info = load_target(path)
    assert model.classifier is None and info.architecture["num_classes"] == 0
    assert info.half and not read_info(saved["target_path"]).half  # the info says how the weights were stored
    assert model.bnneck.weight.dtype == torch.float32
    x = torch.randn(1, 3, *SIZE)
    with torch.no_grad():
        torch.testing.assert_close(model(x), saved["target"](x), rtol=1e-2, atol=1e-2)


def test_atomic_save_leaves_no_temporary_file(tmp_path, saved):
    path = tmp_path / "t.pt"
    save_target(path, saved["target"], SIZE)
    save_target(path, saved["target"], SIZE)  # overwrite in place
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.pt"]


def test_failed_save_keeps_the_old_file(tmp_path, saved):
    path = tmp_path / "t.pt"
    save_target(path, saved["target"], SIZE)
    before = file_sha256(path)
    with pytest.raises(TypeError, match="not plain data"):
        save_target(path, saved["target"], SIZE, config={"bad": object()})
    assert file_sha256(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.pt"]


# ----------------------------------------------------------------------------------------- refusals


def test_refuses_missing_and_empty_files(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint file"):
        load_target(tmp_path / "nope.pt")
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        load_target(empty)


def test_refuses_a_file_that_is_not_ours(tmp_path):
    junk = tmp_path / "photo.pt"
    # Fixed bytes (a JPEG header and noise): random ones could start like a pickle or a zip by chance.
    junk.write_bytes(
        b"\xff\xd8\xff\xe0" + bytes(np.random.default_rng(0).integers(0, 256, 2000, dtype=np.uint8))
    )
    with pytest.raises(CheckpointError, match=r"not a checkpoint of this tool \(not a PyTorch file\)"):
        load_target(junk)
    bare = tmp_path / "resnet18.pth"
    torch.save(torchvision.models.resnet18().state_dict(), bare)
    with pytest.raises(CheckpointError, match="not a checkpoint of this tool .*bare state dict"):
        load_target(bare)
    legacy = tmp_path / "legacy.pkl"
    legacy.write_bytes(pickle.dumps({"a": 1}, protocol=2))
    with pytest.raises(CheckpointError, match="not a checkpoint of this tool"):
        load_target(legacy)


class Payload:
    """Stands for an arbitrary object a hostile file could carry."""


def test_refuses_pickled_objects(tmp_path):
    path = tmp_path / "objects.pt"
    torch.save({"format": "amd-workbench", "payload": Payload()}, path)
    with pytest.raises(CheckpointError, match="holds Python objects other than weights"):
        load_target(path)


def test_refuses_truncated_file(tmp_path, saved):
    data = saved["target_path"].read_bytes()
    path = tmp_path / "cut.pt"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_target(path)


def test_refuses_newer_format(tmp_path):
    path = tmp_path / "future.pt"
    torch.save({"format": "amd-workbench", "format_version": FORMAT_VERSION + 1}, path)
    with pytest.raises(CheckpointError, match="newer version"):
        load_target(path)


def test_refuses_wrong_kind_and_architecture(saved, tmp_path):
    with pytest.raises(CheckpointError, match="an interpreter checkpoint, not a target"):
        load_target(saved["interp_path"])
    with pytest.raises(CheckpointError, match="a resnet18 target, but a resnet50 was expected"):
        load_target(saved["target_path"], backbone="resnet50")
    # Weights of a resnet18 declared as a resnet34: they do not fit.
    info, state = read_checkpoint(saved["target_path"])
    lying = tmp_path / "lying.pt"
    save_checkpoint(lying, "target", state, {**info.architecture, "backbone": "resnet34"}, SIZE)
    with pytest.raises(CheckpointError, match=r"do not match the declared architecture \(resnet34\)"):
        load_target(lying)


def test_refuses_interpreter_of_another_target(saved, tmp_path):
    torch.manual_seed(1)
    other = build_target("resnet18").eval()
    other_path = tmp_path / "other.pt"
    other_hash = save_target(other_path, other, SIZE)
    with pytest.raises(CheckpointError, match="distilled from another target model"):
        load_interpreter(saved["interp_path"], other, other_hash)
    with pytest.raises(CheckpointError, match="distilled from another target model"):
        load_pair(other_path, saved["interp_path"])


def test_refuses_interpreter_for_another_backbone(saved, tmp_path, schema):
    # The refusal comes before any weight is touched, so a structure-only (meta) model is enough.
    with torch.device("meta"):
        light = build_target("mobilenetv2").eval()
    light_hash = file_sha256(saved["target_path"])  # pretend the hash matches: the backbone still differs
    with pytest.raises(
        CheckpointError, match="built for a resnet18 target, the target given is a mobilenetv2"
    ):
        load_interpreter(saved["interp_path"], light, light_hash)


def test_saved_files_follow_the_umask_not_the_temporary_files_mode(tmp_path, monkeypatch):
    from amd.models import checkpoint

    # The umask is read once, at import (reading it means setting it, unsafe beside other threads).
    monkeypatch.setattr(checkpoint, "_UMASK", 0o022)
    checkpoint.atomic_torch_save({"x": torch.zeros(1)}, tmp_path / "m.pt")
    assert (tmp_path / "m.pt").stat().st_mode & 0o777 == 0o644
    monkeypatch.setattr(checkpoint, "_UMASK", 0o077)
    checkpoint.atomic_torch_save({"x": torch.zeros(1)}, tmp_path / "m.pt")
    assert (tmp_path / "m.pt").stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]  # no temporary file left


def test_numpy_scalars_in_metadata_are_stored_as_plain_numbers(tmp_path, saved):
    import numpy as np

    path = tmp_path / "t.pt"
    # numpy.float64 is a subclass of float: kept as it is, the file would be refused on loading.
    save_target(path, saved["target"], SIZE, metrics={"mINP": np.float64(0.25), "n": np.int64(3), "ok": np.bool_(1)})
    _, info = load_target(path)
    assert info.metrics == {"mINP": 0.25, "n": 3, "ok": True}
    assert [type(v) for v in info.metrics.values()] == [float, int, bool]
