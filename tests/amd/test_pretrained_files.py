"""Pretrained weights files that cannot be used are refused in our words, never with advice to unpickle them."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

from amd.models import build_target
from amd.models.backbones import PretrainedWeightsError, build_backbone


def _refusal(path: Path) -> str:
    with pytest.raises(PretrainedWeightsError) as info:
        build_backbone("resnet18", pretrained_path=path)
    message = str(info.value)
    # PyTorch's own text for a refused pickle advises weights_only=False, which would run the file's code.
    assert "weights_only" not in message and "False" not in message and "torch.load" not in message
    return message


def test_each_unusable_file_gets_its_own_message(tmp_path: Path) -> None:
    text = tmp_path / "notes.pt"
    text.write_text("cos\nsystem\n(S'echo hi'\ntR.\n")
    assert _refusal(text) == f"{text}: not a PyTorch weights file"

    objects = tmp_path / "objects.pt"
    torch.save({"model": torch.nn.Linear(2, 2)}, objects)  # a pickled module, not a state dict
    assert _refusal(objects) == (
        f"{objects}: not a state dict of tensors: the file holds Python objects other than tensors and plain "
        "data, which are never loaded from a file because loading them can run code"
    )

    old = tmp_path / "old.pkl"
    old.write_bytes(pickle.dumps({"w": pickle.PickleBuffer}, protocol=4))
    assert _refusal(old) == f"{old}: not a PyTorch state dict (a pickle file that cannot be loaded safely)"

    good = tmp_path / "good.pt"
    torch.save({"w": torch.zeros(2)}, good)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:200])
    assert _refusal(truncated) == (
        f"{truncated}: the weights file is truncated or corrupt (an incomplete PyTorch archive)"
    )

    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    assert _refusal(empty) == f"{empty}: the file is empty (truncated download or interrupted copy?)"
    assert _refusal(tmp_path) == f"{tmp_path}: a folder, not a weights file"
    assert _refusal(tmp_path / "missing.pt") == f"{tmp_path / 'missing.pt'}: no such weights file"


def test_the_target_builder_passes_the_message_on(tmp_path: Path) -> None:
    text = tmp_path / "readme.pt"
    text.write_text("These weights are on the project page.\n")
    with pytest.raises(PretrainedWeightsError, match=r"readme\.pt: not a PyTorch weights file$"):
        build_target("resnet18", pretrained_path=text)
