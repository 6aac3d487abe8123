"""Inference copies with folded batch norms, and the fast extraction path that uses them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from amd.data.records import Record
from amd.data.transforms import build_transforms
from amd.features import extract, extract_outputs
from amd.inference import fuse_conv_bn, inference_copy
from amd.models import build_target


def _randomise_batch_norms(model: nn.Module) -> None:
    gen = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=gen) * 0.4 - 0.2)
            m.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=gen) + 0.5)
            m.bias.data.copy_(torch.rand(n, generator=gen) * 0.2 - 0.1)


def test_folded_copy_gives_the_same_embeddings_and_leaves_the_model_alone() -> None:
    torch.manual_seed(0)
    model = build_target("resnet18").eval()
    _randomise_batch_norms(model)
    x = torch.randn(3, 3, 64, 32)
    fast = inference_copy(model, x[:2])
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fast.modules())
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == 20  # the original keeps its own
    with torch.inference_mode():
        expected = model(x)
        got = fast(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


class _NormFirst(nn.Module):
    """A conv registered before a batch norm that is applied to the *input*: folding would be wrong."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)
        self.bn = nn.BatchNorm2d(3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.bn(x))


def test_a_module_that_folding_would_change_is_copied_unfolded() -> None:
    model = _NormFirst().eval()
    _randomise_batch_norms(model)
    assert fuse_conv_bn(_NormFirst().eval()) == 1  # the structural rule alone would fold it ...
    fast = inference_copy(model, torch.randn(2, 3, 8, 4))
    assert isinstance(fast.bn, nn.BatchNorm2d)  # ... but the probe check keeps the unfolded copy
    x = torch.randn(2, 3, 8, 4)
    with torch.inference_mode():
        torch.testing.assert_close(fast(x), model(x))


def test_extract_matches_a_plain_loop(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    records = []
    for i in range(5):
        path = tmp_path / f"{i}.png"
        Image.fromarray(rng.integers(0, 256, (40 + 4 * i, 20, 3), dtype=np.uint8)).save(path)
        records.append(Record(str(path), i + 1, 1, np.zeros(0, dtype=np.int8)))
    torch.manual_seed(0)
    model = build_target("resnet18").eval()
    _randomise_batch_norms(model)
    transform = build_transforms((64, 32), train=False)
    with torch.no_grad():
        plain = model(torch.stack([transform(Image.open(r.path).convert("RGB")) for r in records])).numpy()
    fast = extract(model, records, (64, 32), batch_size=2)
    np.testing.assert_allclose(fast, plain, rtol=1e-4, atol=1e-4)
    first, second = extract_outputs(lambda x: (model(x), model(x)[:, :3]), records, (64, 32), batch_size=3)
    np.testing.assert_allclose(first, plain, rtol=1e-4, atol=1e-4)
    assert second.shape == (5, 3)
    assert extract(model, [], (64, 32)).shape == (0,) and extract_outputs(model, [], (64, 32)) == ()
