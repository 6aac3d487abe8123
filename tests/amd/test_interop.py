"""Importing torchreid and fast-reid checkpoints: our features equal a reference forward of their models.

The state dicts are built here with the key names and shapes of the published architectures
(torchreid ``models/resnet.py``: ``ResNet(block=Bottleneck, layers=[3, 4, 6, 3], last_stride=2)`` with
a ``classifier``; fast-reid ``Baseline`` = ``backbone`` (``build_resnet_backbone``) + ``heads``
(``EmbeddingHead``: ``pool_layer``, ``bottleneck.0``, ``weight``)), and the reference forwards are
functional re-statements of those architectures, independent of our backbone code.
"""

from __future__ import annotations

import argparse

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from amd.interop import ModelImportError, import_checkpoint, import_state_dict
from amd.models import load_target

LAYERS_R50 = (3, 4, 6, 3)
NUM_CLASSES = 7


def resnet_shapes(prefix: str = "", layers: tuple[int, ...] = LAYERS_R50) -> dict[str, tuple[int, ...]]:
    """Key -> shape of a bottleneck ResNet with torchvision / torchreid / fast-reid names."""
    shapes: dict[str, tuple[int, ...]] = {}

    def bn(name: str, c: int) -> None:
        for p in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{prefix}{name}.{p}"] = (c,)
        shapes[f"{prefix}{name}.num_batches_tracked"] = ()

    shapes[f"{prefix}conv1.weight"] = (64, 3, 7, 7)
    bn("bn1", 64)
    inplanes = 64
    for stage, (blocks, planes) in enumerate(zip(layers, (64, 128, 256, 512), strict=True), start=1):
        for i in range(blocks):
            p = f"layer{stage}.{i}"
            shapes[f"{prefix}{p}.conv1.weight"] = (planes, inplanes, 1, 1)
            bn(f"{p}.bn1", planes)
            shapes[f"{prefix}{p}.conv2.weight"] = (planes, planes, 3, 3)
            bn(f"{p}.bn2", planes)
            shapes[f"{prefix}{p}.conv3.weight"] = (planes * 4, planes, 1, 1)
            bn(f"{p}.bn3", planes * 4)
            if i == 0:
                shapes[f"{prefix}{p}.downsample.0.weight"] = (planes * 4, inplanes, 1, 1)
                bn(f"{p}.downsample.1", planes * 4)
            inplanes = planes * 4
    return shapes


def random_state(shapes: dict[str, tuple[int, ...]], seed: int = 0) -> dict[str, Tensor]:
    """Random weights that keep activations in range through 50 layers (He-scaled convs, BN near 1)."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in shapes.items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(100, dtype=torch.long)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=g) + 0.5
        elif key.endswith("running_mean"):
            state[key] = torch.randn(shape, generator=g) * 0.1
        elif len(shape) == 4:
            fan_in = shape[1] * shape[2] * shape[3]
            state[key] = torch.randn(shape, generator=g) * (2.0 / fan_in) ** 0.5
        elif key.endswith(".weight") and len(shape) == 1:
            state[key] = torch.rand(shape, generator=g) * 0.5 + 0.5
        elif len(shape) == 1:
            state[key] = torch.randn(shape, generator=g) * 0.1
        else:
            state[key] = torch.randn(shape, generator=g) * 0.01
    return state


def reference_resnet(
    sd: dict[str, Tensor], x: Tensor, prefix: str, last_stride: int, fastreid_stem: bool
) -> Tensor:
    """Bottleneck ResNet (stride on the 3x3 conv) as in torchreid and fast-reid."""

    def bn(t: Tensor, name: str) -> Tensor:
        p = prefix + name
        return F.batch_norm(
            t, sd[p + ".running_mean"], sd[p + ".running_var"], sd[p + ".weight"], sd[p + ".bias"]
        )

    x = F.relu(bn(F.conv2d(x, sd[prefix + "conv1.weight"], stride=2, padding=3), "bn1"))
    if fastreid_stem:
        x = F.max_pool2d(x, kernel_size=3, stride=2, padding=0, ceil_mode=True)
    else:
        x = F.max_pool2d(x, kernel_size=3, stride=2, padding=1)
    for stage, stride in ((1, 1), (2, 2), (3, 2), (4, last_stride)):
        i = 0
        while f"{prefix}layer{stage}.{i}.conv1.weight" in sd:
            p = f"layer{stage}.{i}."
            s = stride if i == 0 else 1
            out = F.relu(bn(F.conv2d(x, sd[prefix + p + "conv1.weight"]), p + "bn1"))
            out = F.relu(bn(F.conv2d(out, sd[prefix + p + "conv2.weight"], stride=s, padding=1), p + "bn2"))
            out = bn(F.conv2d(out, sd[prefix + p + "conv3.weight"]), p + "bn3")
            if f"{prefix}{p}downsample.0.weight" in sd:
                x = bn(F.conv2d(x, sd[prefix + p + "downsample.0.weight"], stride=s), p + "downsample.1")
            x = F.relu(out + x)
            i += 1
    return x


def torchreid_reference(sd: dict[str, Tensor], x: Tensor) -> Tensor:
    """torchreid ``resnet50`` in eval mode: global average pooling of the stride-32 map, no BNNeck."""
    fmap = reference_resnet(sd, x, "", last_stride=2, fastreid_stem=False)
    return F.adaptive_avg_pool2d(fmap, 1).flatten(1)


def fastreid_reference(sd: dict[str, Tensor], x: Tensor, neck_feat: str) -> Tensor:
    """fast-reid ``Baseline`` in eval mode: GeM-P (or average) pooling, BNNeck, NECK_FEAT."""
    fmap = reference_resnet(sd, x, "backbone.", last_stride=1, fastreid_stem=True)
    if "heads.pool_layer.p" in sd:
        p = sd["heads.pool_layer.p"]
        pooled = F.adaptive_avg_pool2d(fmap.clamp(min=1e-6).pow(p), 1).pow(1.0 / p)
    else:
        pooled = F.adaptive_avg_pool2d(fmap, 1)
    pooled = pooled.flatten(1)
    if neck_feat == "before":
        return pooled
    b = "heads.bottleneck.0."
    return F.batch_norm(
        pooled, sd[b + "running_mean"], sd[b + "running_var"], sd[b + "weight"], sd[b + "bias"]
    )


def torchreid_state(seed: int = 0) -> dict[str, Tensor]:
    shapes = resnet_shapes()
    shapes["classifier.weight"] = (NUM_CLASSES, 2048)
    shapes["classifier.bias"] = (NUM_CLASSES,)
    return random_state(shapes, seed)


def fastreid_state(gem: bool, seed: int = 1) -> dict[str, Tensor]:
    shapes = resnet_shapes("backbone.")
    for p in ("weight", "bias", "running_mean", "running_var"):
        shapes[f"heads.bottleneck.0.{p}"] = (2048,)
    shapes["heads.bottleneck.0.num_batches_tracked"] = ()
    shapes["heads.weight"] = (NUM_CLASSES, 2048)
    state = random_state(shapes, seed)
    state["heads.bottleneck.0.bias"] = torch.zeros(2048)  # fast-reid freezes the BNNeck bias at 0
    if gem:
        state["heads.pool_layer.p"] = torch.tensor([3.2])
    return state


@pytest.fixture(scope="module")
def images() -> Tensor:
    return torch.randn(3, 3, 64, 32, generator=torch.Generator().manual_seed(5))


def _assert_close(ours: Tensor, ref: Tensor) -> None:
    assert ours.shape == ref.shape
    scale = ref.abs().max().item()
    assert scale > 1e-3  # the random network did not collapse to zeros
    assert (ours - ref).abs().max().item() <= 1e-4 * scale


def test_torchreid_resnet50_features_equal_reference(images: Tensor, tmp_path) -> None:
    sd = torchreid_state()
    path = tmp_path / "model.pth.tar"
    torch.save({"state_dict": {f"module.{k}": v for k, v in sd.items()}, "epoch": 60, "rank1": 0.9}, path)
    model, report = import_checkpoint(path, "torchreid")
    assert report.backbone == "resnet50-s32"
    assert (report.pooling, report.gem_p, report.neck_feat) == ("avg", 1.0, "before")
    assert report.mapped == len(sd) - 2
    assert [k for k, _ in report.left_out] == ["classifier.weight", "classifier.bias"]
    assert report.num_classes == NUM_CLASSES
    with torch.no_grad():
        ours = model(images)
        ref = torchreid_reference(sd, images)
    _assert_close(ours, ref)


@pytest.mark.parametrize("gem", [False, True], ids=["bot-avg", "sbs-gem"])
def test_fastreid_features_equal_reference(images: Tensor, gem: bool) -> None:
    sd = fastreid_state(gem)
    model, report = import_state_dict(sd, "fastreid")
    # The published configs: BoT (average pooling) tests before the BNNeck, SBS (GeM-P) after it.
    expected_neck = "after" if gem else "before"
    assert report.backbone == "resnet50-fastreid"
    assert report.neck_feat == expected_neck
    assert report.pooling == ("gem" if gem else "avg")
    assert report.gem_p == pytest.approx(3.2 if gem else 1.0)
    with torch.no_grad():
        ours = model(images)
        ref = fastreid_reference(sd, images, expected_neck)
    _assert_close(ours, ref)
    # The other neck feature on request.
    other = "before" if gem else "after"
    model2, report2 = import_state_dict(sd, "fastreid", neck_feat=other)
    assert report2.neck_feat == other
    with torch.no_grad():
        _assert_close(model2(images), fastreid_reference(sd, images, other))


def test_fastreid_stem_matters(images: Tensor) -> None:
    """The reference differs from a torchvision stem, so the equality above really tests the layout."""
    sd = fastreid_state(gem=False)
    with torch.no_grad():
        a = reference_resnet(sd, images, "backbone.", 1, fastreid_stem=True)
        b = reference_resnet(sd, images, "backbone.", 1, fastreid_stem=False)
    assert (a - b).abs().max().item() > 1e-2 * a.abs().max().item()


def test_unmapped_tensors_are_named() -> None:
    sd = fastreid_state(gem=True)
    sd["backbone.NL_2.0.g.weight"] = torch.zeros(256, 512, 1, 1)
    sd["backbone.NL_2.0.W.0.weight"] = torch.zeros(512, 256, 1, 1)
    with pytest.raises(ModelImportError) as err:
        import_state_dict(sd, "fastreid", source="sbs.pth")
    text = str(err.value)
    assert "2 tensors" in text
    assert "backbone.NL_2.0.g.weight" in text and "backbone.NL_2.0.W.0.weight" in text
    assert "non-local" in text

    tr = torchreid_state()
    for k in ("fc.0.weight", "fc.0.bias"):
        tr[k] = torch.zeros(512, 2048) if k.endswith("weight") else torch.zeros(512)
    with pytest.raises(ModelImportError, match=r"fc\.0\.weight, fc\.0\.bias.*resnet50_fc512"):
        import_state_dict(tr, "torchreid")


def test_missing_and_misshapen_tensors_are_named() -> None:
    sd = torchreid_state()
    del sd["layer3.2.bn2.running_var"]
    with pytest.raises(ModelImportError, match=r"lacks 1 tensors of a resnet50: layer3\.2\.bn2\.running_var"):
        import_state_dict(sd, "torchreid")
    sd = torchreid_state()
    sd["layer1.0.conv2.weight"] = torch.zeros(64, 64, 1, 1)
    with pytest.raises(
        ModelImportError, match=r"layer1\.0\.conv2\.weight \(64, 64, 1, 1\) \(expected \(64, 64, 3, 3\)\)"
    ):
        import_state_dict(sd, "torchreid")
    with pytest.raises(ModelImportError, match="no ResNet tensors.*it looks like a torchreid checkpoint"):
        import_state_dict(sd, "fastreid")


def test_fastreid_pixel_normalisation_is_checked() -> None:
    sd = fastreid_state(gem=False)
    sd["pixel_mean"] = torch.tensor([123.675, 116.28, 103.53]).view(1, 3, 1, 1)
    sd["pixel_std"] = torch.tensor([58.395, 57.12, 57.375]).view(1, 3, 1, 1)
    _, report = import_state_dict(sd, "fastreid")
    assert report.checked == ("pixel_mean", "pixel_std")
    sd["pixel_mean"] = torch.tensor([127.5, 127.5, 127.5]).view(1, 3, 1, 1)
    with pytest.raises(ModelImportError, match="pixel_mean is \\[127.5, 127.5, 127.5\\]"):
        import_state_dict(sd, "fastreid")


def test_bad_files_are_refused(tmp_path) -> None:
    with pytest.raises(ModelImportError, match="no such checkpoint file"):
        import_checkpoint(tmp_path / "nope.pth", "torchreid")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelImportError, match="cannot read it as a PyTorch checkpoint"):
        import_checkpoint(junk, "torchreid")
    with pytest.raises(ModelImportError, match="unknown checkpoint format 'timm'"):
        import_state_dict(torchreid_state(), "timm")


def test_import_model_command_writes_a_loadable_target(images: Tensor, tmp_path, capsys) -> None:
    from cli import import_model

    sd = fastreid_state(gem=True)
    src = tmp_path / "model_final.pth"
    torch.save({"model": sd, "iteration": 100}, src)
    out = tmp_path / "imported.pt"
    parser = argparse.ArgumentParser()
    import_model.add_arguments(parser)
    args = parser.parse_args([str(src), "--format", "fastreid", "--out", str(out), "--size", "64x32"])
    assert import_model.run(args) == 0
    printed = capsys.readouterr().out
    assert "left out: heads.weight (identity classifier" in printed
    model, info = load_target(out)
    assert info.architecture["backbone"] == "resnet50-fastreid"
    assert info.input_size == (64, 32)
    assert info.extra["imported"]["format"] == "fastreid"
    with torch.no_grad():
        _assert_close(model(images), fastreid_reference(sd, images, "after"))


def test_a_fixed_gem_exponent_is_refused_where_it_would_do_nothing() -> None:
    bot, sbs = fastreid_state(False), fastreid_state(True)
    # Average pooling (BoT, pooling auto): an exponent alone would be dropped without a word.
    with pytest.raises(ModelImportError, match=r"fixed GeM exponent \(4\) needs GeM pooling"):
        import_state_dict(bot, "fastreid", gem_p=4.0)
    # A learnt exponent (SBS) is the file's own; a fixed one cannot replace it.
    with pytest.raises(ModelImportError, match=r"learnt GeM exponent \(3\.2\), so a fixed exponent \(4\)"):
        import_state_dict(sbs, "fastreid", pooling="gem", gem_p=4.0)
    # Where it applies it is used, and 3 is the default.
    assert import_state_dict(bot, "fastreid", pooling="gem", gem_p=4.0)[1].gem_p == pytest.approx(4.0)
    assert import_state_dict(bot, "fastreid", pooling="gem")[1].gem_p == pytest.approx(3.0)
