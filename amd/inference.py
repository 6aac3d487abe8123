"""Faster inference copies of the engine's models: batch norms folded into their convolutions, channels-last.

At inference a BatchNorm2d right after a convolution is an affine map per channel, so it can be folded into
the convolution's weights and bias: one pass over the activations instead of two. Together with the
channels-last memory layout (which the CPU's oneDNN convolutions prefer) this is what makes
:func:`amd.features.extract` and :class:`amd.embedding.TargetEmbedder` faster than a plain eval-mode loop.

The folding relies on the convention of torchvision's ResNets and MobileNetV2, whose every convolution is
registered right before the batch norm applied to its output. :func:`inference_copy` checks the folded copy
against the original on a probe batch and returns the unfolded copy when they disagree, so a module
written otherwise is never silently changed.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn
from torch.nn.utils.fusion import fuse_conv_bn_eval


def fuse_conv_bn(module: nn.Module) -> int:
    """Fold every BatchNorm2d registered right after a Conv2d (same parent) into it, in place.

    The module must be in eval mode (running statistics are folded). Each folded batch norm becomes an
    ``nn.Identity``.

    Returns:
        The number of folded pairs.
    """
    folded = 0
    for parent in module.modules():
        names = list(parent._modules)
        for first, second in zip(names, names[1:], strict=False):
            conv, bn = parent._modules[first], parent._modules[second]
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d) and bn.track_running_stats:
                parent._modules[first] = fuse_conv_bn_eval(conv, bn)
                parent._modules[second] = nn.Identity()
                folded += 1
    return folded


def _outputs(value: object) -> list[Tensor]:
    if isinstance(value, Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in _outputs(v)]
    return []


def inference_copy(module: nn.Module, probe: Tensor, rtol: float = 1e-3, atol: float = 1e-4) -> nn.Module:
    """An eval-mode, channels-last copy of ``module`` with its batch norms folded (the original is untouched).

    Args:
        module: A model (its forward takes an image batch).
        probe: An example input (B, 3, H, W) on the module's device, used to check the folded copy.
        rtol: Relative tolerance of the check, against the largest output magnitude.
        atol: Absolute tolerance of the check.

    Returns:
        The folded copy, or an unfolded channels-last copy when folding changed the outputs.
    """
    # no_grad rather than inference mode: the copy's parameters must stay ordinary tensors (a caller may
    # fine-tune or edit them later). In eval mode a forward changes nothing, so the module itself is the
    # reference (no second copy).
    with torch.no_grad():
        return _checked_copy(module, probe, rtol, atol)


def _checked_copy(module: nn.Module, probe: Tensor, rtol: float, atol: float) -> nn.Module:
    original = module if not module.training else copy.deepcopy(module).eval()
    fused = copy.deepcopy(original).eval()
    probe = probe.contiguous(memory_format=torch.channels_last)
    if fuse_conv_bn(fused):
        fused = fused.to(memory_format=torch.channels_last)
        expected = _outputs(original(probe))
        got = _outputs(fused(probe))
        ok = len(expected) == len(got) and all(
            torch.allclose(g.float(), e.float(), rtol=0.0, atol=atol + rtol * float(e.abs().max()))
            for g, e in zip(got, expected, strict=True)
        )
        if ok:
            return fused
    return copy.deepcopy(original).eval().to(memory_format=torch.channels_last)
