"""Backbones, the target model and the interpreter on tiny CPU inputs (64x32 crops, 4x2 maps)."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
import torch
import torchvision

from amd.errors import AmdError
from amd.losses import (
    amd_loss,
    attribute_classification_loss,
    batch_hard_triplet_loss,
    circle_softmax_loss,
    cross_entropy_label_smoothing,
)
from amd.models import BACKBONES, Interpreter, ReIDModel, build_backbone, build_target, phi
from amd.models.backbones import PretrainedWeightsError, load_pretrained
from amd.models.interpreter import build_interpreter

H, W = 64, 32


@pytest.fixture(scope="module")
def target() -> ReIDModel:
    torch.manual_seed(0)
    model = build_target("resnet18", num_classes=4).eval()
    # Random BNNeck statistics, so that masking changes the embedding in a non-trivial way.
    model.bnneck.running_mean.uniform_(0.0, 0.5)
    model.bnneck.running_var.uniform_(0.5, 2.0)
    return model


@pytest.fixture
def images() -> torch.Tensor:
    torch.manual_seed(1)
    return torch.randn(4, 3, H, W)


# ------------------------------------------------------------------------------------------ backbones


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "mobilenetv2"])
def test_backbone_stages_and_last_stride(name):
    backbone = build_backbone(name).eval()
    x = torch.randn(1, 3, H, W)
    with torch.no_grad():
        out = backbone(x)
        shared = backbone(x, end="layer2")
        rest = backbone(shared, start="layer3")
    # Stride 16 overall (the last stage keeps stride 1): 64x32 -> 4x2.
    assert out.shape == (1, backbone.out_channels, H // 16, W // 16)
    assert shared.shape[1] == backbone.stage_channels["layer2"]
    torch.testing.assert_close(rest, out)
    expected = {"resnet18": 512, "resnet34": 512, "resnet50": 2048, "resnet101": 2048, "mobilenetv2": 1280}
    assert backbone.out_channels == expected[name]


@pytest.mark.parametrize("name", ["resnet34", "resnet101"])
def test_deep_resnets_keep_stride_one_in_layer4(name):
    # Built on the meta device: no memory, no initialisation cost, the structure only.
    with torch.device("meta"):
        backbone = build_backbone(name)
    block = backbone.stages["layer4"][0]
    strides = {conv.stride for conv in block.modules() if isinstance(conv, torch.nn.Conv2d)}
    assert strides == {(1, 1)}
    assert backbone.out_channels == (512 if name == "resnet34" else 2048)
    assert name in BACKBONES


def test_unknown_backbone_is_refused():
    with pytest.raises(AmdError, match="unknown backbone 'vgg'"):
        build_backbone("vgg")


def test_resnet_weights_from_a_torchvision_file(tmp_path):
    net = torchvision.models.resnet18()
    path = tmp_path / "resnet18-imagenet.pth"
    torch.save(net.state_dict(), path)
    backbone = build_backbone("resnet18", pretrained_path=path)
    torch.testing.assert_close(backbone.stages["stem"].conv1.weight, net.conv1.weight)
    torch.testing.assert_close(backbone.stages["layer4"][1].bn2.running_var, net.layer4[1].bn2.running_var)
    report = backbone.pretrained_report
    assert report is not None and report.missing == ()
    assert set(report.unexpected) == {"fc.weight", "fc.bias"}


def _flat_mobilenet_state(features: torch.nn.Module, prefix: str) -> dict[str, torch.Tensor]:
    """A features-only state dict in the flat block layout (conv, bn, relu6, dw conv, bn, relu6, conv, bn)."""
    nested_to_flat = {"0.0": "0", "0.1": "1", "1.0": "3", "1.1": "4", "2": "6", "3": "7"}
    block1 = {"0.0": "0", "0.1": "1", "1": "3", "2": "4"}
    out = {}
    for key, value in features.state_dict().items():
        index, rest = key.split(".", 1)
        if 1 <= int(index) <= 17:
            for nested, flat in sorted(
                (block1 if index == "1" else nested_to_flat).items(), key=lambda kv: -len(kv[0])
            ):
                if rest.startswith(f"conv.{nested}."):
                    rest = f"conv.{flat}." + rest[len(f"conv.{nested}.") :]
                    break
        out[f"{prefix}{index}.{rest}"] = value
    return out


@pytest.mark.parametrize("layout", ["torchvision", "flat", "flat-no-prefix"])
def test_mobilenet_weights_in_every_layout(tmp_path, layout):
    reference = torchvision.models.mobilenet_v2()
    if layout == "torchvision":
        state = reference.state_dict()
    else:
        state = _flat_mobilenet_state(reference.features, "" if layout == "flat-no-prefix" else "features.")
    path = tmp_path / "weights.pt"
    torch.save(state, path)
    backbone = build_backbone("mobilenetv2", pretrained_path=path)
    assert backbone.pretrained_report.missing == ()
    own = getattr(backbone.stages["layer4"], "17").conv[1][0].weight
    torch.testing.assert_close(own, reference.features[17].conv[1][0].weight)
    torch.testing.assert_close(
        backbone.stages["stem"][1].conv[1].weight, reference.features[1].conv[1].weight
    )
    expected_unused = {"classifier.1.weight", "classifier.1.bias"} if layout == "torchvision" else set()
    assert set(backbone.pretrained_report.unexpected) == expected_unused


def test_pretrained_file_of_another_architecture_is_refused(tmp_path):
    path = tmp_path / "resnet18.pth"
    torch.save(torchvision.models.resnet18().state_dict(), path)
    with pytest.raises(PretrainedWeightsError, match="none of its .* tensors fit backbone mobilenetv2"):
        build_backbone("mobilenetv2", pretrained_path=path)
    path50 = tmp_path / "resnet50.pth"
    torch.save(
        {"conv1.weight": torch.zeros(64, 3, 7, 7), "layer1.0.conv1.weight": torch.zeros(64, 64, 1, 1)}, path50
    )
    with pytest.raises(PretrainedWeightsError, match="layer1.0.conv1.weight has shape"):
        build_backbone("resnet18", pretrained_path=path50)


def test_pretrained_partial_file_reports_missing(tmp_path, caplog):
    state = {
        k: v for k, v in torchvision.models.resnet18().state_dict().items() if not k.startswith("layer4")
    }
    path = tmp_path / "partial.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, path)
    backbone = build_backbone("resnet18")
    with caplog.at_level(logging.WARNING):
        report = load_pretrained(backbone, path)
    assert report.missing and all(k.startswith("stages.layer4.") for k in report.missing)
    assert "not in the file" in caplog.text


def test_unreadable_pretrained_file(tmp_path):
    path = tmp_path / "junk.pth"
    path.write_bytes(b"not weights at all")
    with pytest.raises(PretrainedWeightsError, match=r"junk\.pth: not a PyTorch weights file$"):
        build_backbone("resnet18", pretrained_path=path)


# --------------------------------------------------------------------------------------------- target


def test_target_modes_and_head(target, images):
    with torch.no_grad():
        f = target(images)
        fmap = target.feature_map(images)
        assert f.shape == (4, 512) and fmap.shape == (4, 512, 4, 2)
        torch.testing.assert_close(target.head(fmap), f)
    assert target.pool.p.item() == 3.0
    assert not target.bnneck.bias.requires_grad and target.bnneck.weight.requires_grad
    target.train()
    try:
        out = target(images)
    finally:
        target.eval()
    assert out.logits.shape == (4, 4) and out.pooled.shape == (4, 512) and out.embedding.shape == (4, 512)


def test_masked_head_equals_one_head_per_mask(target, images):
    torch.manual_seed(2)
    with torch.no_grad():
        fmap = target.feature_map(images)
        masks = torch.rand(4, 3, 4, 2) * 2 + 0.05
        batched = target.masked_head(fmap, masks)
        one_by_one = torch.stack([target.head(fmap * masks[:, m : m + 1]) for m in range(3)], dim=1)
        ones = target.masked_head(fmap, torch.ones(4, 2, 4, 2))
    torch.testing.assert_close(batched, one_by_one, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(ones[:, 1], target.head(fmap), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("classifier", ["linear", "cosine"])
def test_target_loss_falls(classifier):
    torch.manual_seed(3)
    model = build_target("resnet18", num_classes=2, classifier=classifier).train()
    x = torch.randn(4, 3, H // 2, W // 2)
    labels = torch.tensor([0, 0, 1, 1])
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)

    def loss_fn() -> torch.Tensor:
        out = model(x)
        if classifier == "linear":
            cls = cross_entropy_label_smoothing(out.logits, labels)
        else:
            cls = circle_softmax_loss(out.logits, labels, scale=16.0)
        return cls + batch_hard_triplet_loss(out.pooled, labels)

    with torch.no_grad():
        first = loss_fn()
    for _ in range(3):
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        opt.step()
    with torch.no_grad():
        assert loss_fn().item() < 0.7 * first.item()


def test_build_target_from_architecture_dict(target):
    rebuilt = build_target(target.architecture())
    assert rebuilt.architecture() == target.architecture()
    with pytest.raises(AmdError, match="unknown classifier"):
        build_target("resnet18", num_classes=3, classifier="arcface")


# ------------------------------------------------------------------------------------------------ phi


def test_phi_values_and_continuity():
    z = torch.tensor([-1.0, 0.0, 3.0, -1e-6, 1e-6], dtype=torch.float64)
    expected = torch.tensor([torch.e**-1, 1.0, 2.0, 1.0, 1.0], dtype=torch.float64)
    torch.testing.assert_close(phi(z), expected, rtol=1e-6, atol=1e-6)


def test_phi_gradient_finite_at_extremes():
    z = torch.tensor([-1e4, -50.0, 0.0, 50.0, 1e30], requires_grad=True)
    phi(z).sum().backward()
    assert torch.isfinite(z.grad).all()
    assert torch.all(phi(z.detach()) >= 0)


def test_phi_gradient_at_zero_lets_an_untrained_head_learn():
    # The head starts at Z = 0 exactly; a zero gradient there would freeze it for ever.
    z = torch.zeros(3, requires_grad=True)
    phi(z).sum().backward()
    torch.testing.assert_close(z.grad, torch.full((3,), 0.5))


# ---------------------------------------------------------------------------------------- interpreter


@pytest.mark.parametrize("map_mode", ["faithful", "localising"])
def test_untrained_interpreter_gives_full_distance_per_attribute(target, images, map_mode):
    interpreter = Interpreter(target, num_attributes=3, map_mode=map_mode).eval()
    with torch.no_grad():
        out = interpreter(images)
    assert out.maps.shape == (4, 3, 4, 2)
    assert out.attribute_embeddings.shape == (4, 3, 512)
    assert out.attribute_logits is None
    assert torch.all(out.maps == 1.0)
    with torch.no_grad():
        torch.testing.assert_close(out.embedding, target(images))
    for m in range(3):
        torch.testing.assert_close(out.attribute_embeddings[:, m], out.embedding, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("split", ["stem", "layer1", "layer3"])
def test_interpreter_split_points(target, images, split):
    interpreter = Interpreter(target, num_attributes=2, split=split).eval()
    with torch.no_grad():
        out = interpreter(images)
    assert out.maps.shape == (4, 2, 4, 2)
    expected_stages = {"stem": 4, "layer1": 3, "layer3": 1}[split]
    assert len(interpreter.late) == expected_stages


def test_interpreter_refuses_bad_options(target):
    with pytest.raises(AmdError, match="unknown split point 'layer4'"):
        Interpreter(target, num_attributes=2, split="layer4")
    with pytest.raises(AmdError, match="unknown map mode"):
        Interpreter(target, num_attributes=2, map_mode="sharp")


def test_interpreter_keeps_target_frozen_and_in_eval(target):
    interpreter = Interpreter(target, num_attributes=2, aux_classifier=True)
    interpreter.train()
    assert not target.training and interpreter.late.training
    assert not any(p.requires_grad for p in target.parameters())
    assert all(p.requires_grad for p in interpreter.own_parameters())
    own = interpreter.own_state_dict()
    assert own and not any(k.startswith("target.") for k in own)
    assert any(k.startswith("aux_fc.") for k in own)


def _pk_attrs() -> torch.Tensor:
    # 4 identities x 2 images, M = 3: pairs with N = 0 (same identity), 1, 2 and 3.
    ids = torch.tensor([[1, 1, 1], [-1, 1, 1], [-1, -1, 1], [-1, -1, -1]], dtype=torch.float32)
    return ids.repeat_interleave(2, dim=0)


@pytest.mark.parametrize("map_mode", ["faithful", "localising"])
def test_distillation_loss_falls_and_target_unchanged(target, map_mode):
    torch.manual_seed(4)
    x = torch.randn(8, 3, H, W)
    attrs = _pk_attrs()
    # Branching after layer3 keeps the trainable copy small (layer4 only), so the test stays fast.
    interpreter = Interpreter(
        target, num_attributes=3, split="layer3", map_mode=map_mode, aux_classifier=True
    )
    interpreter.train()
    before = {k: v.clone() for k, v in target.state_dict().items()}
    opt = torch.optim.Adam(interpreter.own_parameters(), lr=3e-4)
    rates = torch.full((3,), 0.5)

    def losses() -> tuple[torch.Tensor, torch.Tensor]:
        out = interpreter(x)
        md, prior = amd_loss(out.embedding, out.attribute_embeddings, attrs)
        return md + 10 * prior, attribute_classification_loss(out.attribute_logits, attrs, rates)

    with torch.no_grad():
        first_amd, first_aux = losses()
    # At the start A = 1: the distillation term is 0 and the uniform shares violate the prior.
    assert first_amd.item() > 1.0
    for _ in range(5):
        opt.zero_grad()
        amd, aux = losses()
        (amd + aux).backward()
        opt.step()
    with torch.no_grad():
        last_amd, last_aux = losses()
    assert last_amd.item() < 0.8 * first_amd.item()
    assert last_aux.item() < first_aux.item()
    for key, value in target.state_dict().items():
        assert torch.equal(value, before[key]), key
    if map_mode == "localising":
        with torch.no_grad():
            maps = interpreter.eval()(x).maps
        torch.testing.assert_close(maps.mean(dim=(2, 3)), torch.ones(8, 3), rtol=1e-5, atol=1e-5)


def test_interpreter_on_the_light_backbone():
    torch.manual_seed(5)
    model = build_target("mobilenetv2").eval()
    interpreter = Interpreter(model, num_attributes=2).eval()
    with torch.no_grad():
        out = interpreter(torch.randn(2, 3, H, W))
    assert out.maps.shape == (2, 2, 4, 2) and out.attribute_embeddings.shape == (2, 2, 1280)


# --------------------------------------------------------------- softmax maps and the pooled classifier


def test_softmax_maps_are_scaled_distributions(target, images):
    interpreter = Interpreter(target, num_attributes=3, map_mode="localising", normalisation="softmax").eval()
    with torch.no_grad():
        interpreter.decompose[-1].weight.normal_(std=0.5)
        out = interpreter(images)
    b, m, h, w = out.maps.shape
    z = interpreter.decompose(interpreter.late(target.backbone(images, end="layer2")))
    expected = torch.softmax(z.flatten(2), dim=2).view(b, m, h, w) * (h * w)
    torch.testing.assert_close(out.maps, expected.detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out.maps.mean(dim=(2, 3)), torch.ones(b, m), rtol=1e-5, atol=1e-5)
    assert out.maps.amax(dim=(2, 3)).min() > 1.0  # no longer flat


def test_pooled_classifier_pools_features_with_each_map(target, images):
    interpreter = Interpreter(
        target, num_attributes=2, map_mode="localising", normalisation="softmax", pooled_classifier=True
    ).eval()
    with torch.no_grad():
        interpreter.pooled_weight.normal_()
        interpreter.pooled_bias.copy_(torch.tensor([0.5, -1.0]))
        # Map 0 puts all of its weight on cell (0, 0), map 1 on cell (3, 1).
        interpreter.decompose[-1].weight.zero_()
        fmap = target.backbone(images)
        out_maps = torch.full((4, 2, 4, 2), 1e-9)
        out_maps[:, 0, 0, 0] = 8.0
        out_maps[:, 1, 3, 1] = 8.0
        logits = interpreter.pooled_logits(fmap, out_maps)
    by_hand = torch.stack(
        [
            fmap[:, :, 0, 0] @ interpreter.pooled_weight[0] + 0.5,
            fmap[:, :, 3, 1] @ interpreter.pooled_weight[1] - 1.0,
        ],
        dim=1,
    )
    torch.testing.assert_close(logits, by_hand, rtol=1e-4, atol=1e-4)
    assert interpreter.has_aux_classifier and interpreter.has_pooled_classifier
    assert interpreter.architecture()["pooled_classifier"] is True


def test_pooled_classifier_moves_the_map_onto_the_evidence():
    """The attribute is a bright patch in the top quarter of the image: the map must go there."""
    torch.manual_seed(7)
    model = build_target("resnet18").eval()
    interpreter = Interpreter(
        model, num_attributes=1, split="layer3", map_mode="localising", normalisation="softmax",
        pooled_classifier=True, pooled_features="local",
    )  # fmt: skip
    out, attrs = _train_on_a_bright_patch(interpreter, "attribute_logits", lr=2e-3, steps=15)
    maps = out.maps[attrs[:, 0] > 0, 0]  # (4, 4, 2)
    top = maps[:, :2].sum(dim=(1, 2)) / maps.sum(dim=(1, 2))
    assert top.mean().item() > 0.75  # from 0.5 for a flat map


def _train_on_a_bright_patch(interpreter: Interpreter, logits: str, lr: float, steps: int):
    """Train one attribute's classifier (the output field ``logits``) on crops where it is a bright patch.

    The patch lies in the top quarter of the 4 crops with the attribute (cells of rows 0-1).

    Returns:
        The trained interpreter's output in eval mode, and the (8, 1) attribute labels.
    """
    x = torch.randn(8, 3, H, W) * 0.1
    attrs = torch.tensor([1.0, -1.0]).repeat(4).unsqueeze(1)
    x[attrs[:, 0] > 0, :, 4:20, 8:24] += 3.0
    opt = torch.optim.Adam(interpreter.own_parameters(), lr=lr)
    interpreter.train()
    for _ in range(steps):
        opt.zero_grad()
        out = interpreter(x)
        attribute_classification_loss(getattr(out, logits), attrs, torch.full((1,), 0.5)).backward()
        opt.step()
    with torch.no_grad():
        return interpreter.eval()(x), attrs


def test_location_prior_and_local_features(target, images):
    interpreter = Interpreter(
        target, num_attributes=2, map_mode="localising", normalisation="softmax", pooled_classifier=True,
        location_prior=True, pooled_features="local",
    ).eval()  # fmt: skip
    arch = interpreter.architecture()
    assert arch["location_prior"] is True and arch["pooled_features"] == "local"
    with torch.no_grad():
        # The prior alone (no image-dependent part yet) decides the map: all weight on the top row.
        interpreter.location_logits.fill_(-20.0)
        interpreter.location_logits[:, :4, :] = 20.0  # top quarter of the 16 x 8 prior grid
        out = interpreter(images)
        torch.testing.assert_close(out.embedding, target(images))
    assert out.maps.shape == (4, 2, 4, 2)
    # Resized to the 4 x 2 grid, the top quarter of the prior is the first row.
    top_share = out.maps[:, :, 0].sum(dim=2) / out.maps.sum(dim=(2, 3))
    assert top_share.min().item() > 0.9
    assert out.attribute_logits.shape == (4, 2)


def test_interpreter_refuses_mixed_options(target):
    with pytest.raises(AmdError, match="not both"):
        Interpreter(target, 2, map_mode="localising", aux_classifier=True, pooled_classifier=True)
    with pytest.raises(AmdError, match="belong to the localising mode"):
        Interpreter(target, 2, map_mode="faithful", normalisation="softmax")
    with pytest.raises(AmdError, match="unknown map normalisation"):
        Interpreter(target, 2, map_mode="localising", normalisation="max")
    with pytest.raises(AmdError, match="unknown pooled features"):
        Interpreter(target, 2, map_mode="localising", pooled_classifier=True, pooled_features="early")
    with pytest.raises(AmdError, match="belong to the localising mode"):
        Interpreter(target, 2, location_prior=True)


def test_warm_start_copies_fitting_weights(target):
    torch.manual_seed(9)
    source = Interpreter(target, num_attributes=3, map_mode="localising", aux_classifier=True)
    with torch.no_grad():
        source.decompose[-1].weight.normal_()
    variant = Interpreter(
        target, num_attributes=3, map_mode="localising", normalisation="softmax", pooled_classifier=True
    )
    copied = variant.warm_start(source.own_state_dict())
    assert "decompose.3.weight" in copied and not any(k.startswith(("aux_", "pooled_")) for k in copied)
    torch.testing.assert_close(variant.decompose[-1].weight, source.decompose[-1].weight)
    other = Interpreter(target, num_attributes=5, map_mode="localising")
    with pytest.raises(AmdError, match="none of the given"):
        other.warm_start({"decompose.3.weight": torch.zeros(1)})


def standardise_by_hand(scores: torch.Tensor) -> torch.Tensor:
    centred = scores - scores.mean(dim=(2, 3), keepdim=True)
    return centred / (centred.pow(2).mean(dim=(2, 3), keepdim=True).sqrt() + 1e-4)


def test_evidence_maps_by_hand(target, images):
    interpreter = Interpreter(
        target, num_attributes=2, map_mode="localising", normalisation="softmax", map_source="evidence",
        aux_classifier=False,
    ).eval()  # fmt: skip
    assert interpreter.late is None and interpreter.decompose is None
    scores = torch.zeros(1, 2, 2, 2)
    scores[0, 0] = torch.tensor([[0.0, 0.0], [0.0, math.log(5.0)]])  # log mean exp = log(8 / 4) = log 2
    scores[0, 1] = 3.0
    torch.testing.assert_close(interpreter.evidence_logits(scores), torch.tensor([[math.log(2.0), 3.0]]))
    with torch.no_grad():
        interpreter.sharpness.copy_(torch.tensor([math.log(2.0), 0.0]))
        out = interpreter(images)
        local = target.backbone(images, end="layer3")
        s = interpreter.evidence(local)
    torch.testing.assert_close(out.evidence_logits, torch.logsumexp(s.flatten(2), 2) - math.log(8))
    assert out.attribute_logits is out.evidence_logits  # no auxiliary classifier: the evidence predicts
    sharp = standardise_by_hand(s) * torch.tensor([2.0, 1.0]).view(1, 2, 1, 1)
    by_hand = torch.softmax(sharp.flatten(2), dim=2).view_as(s) * 8
    torch.testing.assert_close(out.maps, by_hand)
    torch.testing.assert_close(out.embedding, target(images))
    assert interpreter.architecture()["map_source"] == "evidence"
    rebuilt = build_interpreter(target, interpreter.architecture())
    assert rebuilt.map_source == "evidence" and rebuilt.decompose is None
    both = Interpreter(
        target, 2, map_mode="localising", map_source="head+evidence", aux_classifier=True
    ).eval()
    out = both(images)
    assert out.attribute_logits is not out.evidence_logits and out.evidence_logits.shape == (4, 2)


def test_evidence_temperature_by_hand(target, images):
    """(1 / T) log mean exp(T S): T = 1/2 on scores 0, 0, 0, 2 log 3 gives 2 log((3 + 3) / 4) = 2 log 1.5."""
    soft = Interpreter(
        target, 2, map_mode="localising", normalisation="softmax", map_source="evidence", evidence_temperature=0.5
    ).eval()
    scores = torch.zeros(1, 2, 2, 2)
    scores[0, 0, 1, 1] = 2 * math.log(3.0)
    scores[0, 1] = -1.5  # a constant map's logit is its value at any temperature
    torch.testing.assert_close(soft.evidence_logits(scores), torch.tensor([[2 * math.log(1.5), -1.5]]))
    # Softer than T = 1 (log((1 + 1 + 1 + 9) / 4) = log 3), harder than the mean (2 log 3 / 4).
    plain = Interpreter(target, 2, map_mode="localising", normalisation="softmax", map_source="evidence").eval()
    assert math.log(3.0) > 2 * math.log(1.5) > 2 * math.log(3.0) / 4
    torch.testing.assert_close(plain.evidence_logits(scores)[0, 0], torch.tensor(math.log(3.0)))
    rebuilt = build_interpreter(target, soft.architecture())
    assert rebuilt.evidence_temperature == 0.5
    torch.testing.assert_close(rebuilt.evidence_logits(scores), soft.evidence_logits(scores))
    # Checkpoints written before the option rebuild with T = 1.
    older = {k: v for k, v in plain.architecture().items() if k != "evidence_temperature"}
    assert build_interpreter(target, older).evidence_temperature == 1.0
    with torch.no_grad():
        soft.load_state_dict(plain.state_dict())
        # The temperature changes the logits the evidence classifier learns from, never the maps themselves.
        torch.testing.assert_close(soft(images).maps, plain(images).maps)
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(AmdError, match="evidence temperature"):
            Interpreter(target, 2, map_mode="localising", map_source="evidence", evidence_temperature=bad)
    with pytest.raises(AmdError, match="evidence temperature"):
        Interpreter(target, 2, evidence_temperature=0.5)  # faithful maps from the head have no evidence


def test_evidence_temperature_per_attribute(target, images):
    """T = (1/2, 1) on scores 0, 0, 0, 2 log 3: attribute 0 gives 2 log 1.5, attribute 1 log 3 (T = 1)."""
    mixed = Interpreter(
        target, 2, map_mode="localising", map_source="evidence", evidence_temperature=(0.5, 1.0)
    ).eval()
    scores = torch.zeros(1, 2, 2, 2)
    scores[0, :, 1, 1] = 2 * math.log(3.0)
    torch.testing.assert_close(mixed.evidence_logits(scores), torch.tensor([[2 * math.log(1.5), math.log(3.0)]]))
    # Stored as a list, rebuilt the same; equal values collapse to the single number older files hold.
    assert mixed.architecture()["evidence_temperature"] == [0.5, 1.0]
    rebuilt = build_interpreter(target, mixed.architecture())
    assert rebuilt.evidence_temperature == (0.5, 1.0)
    torch.testing.assert_close(rebuilt.evidence_logits(scores), mixed.evidence_logits(scores))
    same = Interpreter(target, 2, map_mode="localising", map_source="evidence", evidence_temperature=[0.25, 0.25])
    assert same.architecture()["evidence_temperature"] == 0.25
    # A numpy scalar is one value for every attribute, not a sequence to unpack.
    numpy_scalar = Interpreter(
        target, 2, map_mode="localising", map_source="evidence", evidence_temperature=np.float32(0.5)
    )
    assert numpy_scalar.evidence_temperature == 0.5
    with pytest.raises(AmdError, match="one per attribute"):
        Interpreter(target, 2, map_mode="localising", map_source="evidence", evidence_temperature=(0.5, 1.0, 1.0))
    with pytest.raises(AmdError, match="finite value above 0"):
        Interpreter(target, 2, map_mode="localising", map_source="evidence", evidence_temperature=(0.5, 0.0))
    with pytest.raises(AmdError, match="belongs to maps from evidence"):
        Interpreter(target, 2, evidence_temperature=(1.0, 0.5))


def test_distillation_sets_the_sharpness_not_the_place(target, images):
    interpreter = Interpreter(
        target, 3, map_mode="localising", normalisation="softmax", map_source="evidence"
    )
    out = interpreter(images)
    attrs = torch.tensor([[1.0, -1.0, 1.0], [1.0, 1.0, -1.0], [-1.0, -1.0, 1.0], [1.0, -1.0, -1.0]])
    md, prior = amd_loss(out.embedding, out.attribute_embeddings, attrs)
    (md + prior).backward()
    assert all(p.grad is None or p.grad.abs().max() == 0 for p in interpreter.evidence.parameters())
    assert interpreter.sharpness.grad is not None and interpreter.log_gain.grad is not None


def test_evidence_classifier_moves_the_map_onto_the_evidence():
    """Trained only to classify the attribute, the evidence map of a crop that has it peaks on it."""
    torch.manual_seed(7)
    model = build_target("resnet18").eval()
    interpreter = Interpreter(
        model, num_attributes=1, map_mode="localising", normalisation="softmax", map_source="evidence"
    )
    out, attrs = _train_on_a_bright_patch(interpreter, "evidence_logits", lr=1e-2, steps=30)
    maps = out.maps[attrs[:, 0] > 0, 0]  # (4, 4, 2)
    top = maps[:, :2].sum(dim=(1, 2)) / maps.sum(dim=(1, 2))
    assert top.mean().item() > 0.75  # from 0.5 for a flat map
    assert out.evidence_logits[attrs[:, 0] > 0].min() > out.evidence_logits[attrs[:, 0] < 0].max()


def test_evidence_maps_are_refused_outside_the_localising_mode(target):
    with pytest.raises(AmdError, match="belong to the localising mode"):
        Interpreter(target, 2, map_mode="faithful", map_source="evidence")
    with pytest.raises(AmdError, match="unknown map source"):
        Interpreter(target, 2, map_mode="localising", map_source="cam")


def test_pinned_maps_keep_the_evidence_peak(target, images):
    """With ``pinned`` maps the head scales each map and dims cells, but the peak stays the evidence's."""
    interpreter = Interpreter(
        target, 3, map_mode="localising", normalisation="softmax", map_source="pinned",
        evidence_hidden=8, aux_classifier=False,
    ).eval()  # fmt: skip
    torch.manual_seed(3)
    with torch.no_grad():
        interpreter.decompose[-1].weight.normal_(std=2.0)  # a head strong enough to move a summed map
        out = interpreter(images)
        scores = interpreter.evidence(target.backbone(images, end="layer3"))
        head = interpreter.decompose(interpreter.late(target.backbone(images, end="layer2")))
        summed = interpreter._normalise(standardise_by_hand(scores) + head)[0]
    peak = scores.flatten(2).argmax(2, keepdim=True)
    at_peak = head.flatten(2).gather(2, peak)
    z = standardise_by_hand(scores) + torch.clamp(head.flatten(2) - at_peak, max=0).view_as(head)
    by_hand = torch.softmax(z.flatten(2), dim=2).view_as(z) * 8 * phi(at_peak).unsqueeze(3)
    torch.testing.assert_close(out.maps, by_hand)
    assert (summed.flatten(2).argmax(2, keepdim=True) != peak).any()  # the head alone would move peaks
    torch.testing.assert_close(out.maps.flatten(2).argmax(2, keepdim=True), peak)
    assert phi(at_peak).std().item() > 0.05  # the amplitudes differ per image and attribute
    gains = interpreter.gains().view(1, 3, 1, 1)
    torch.testing.assert_close(target.masked_head(target.backbone(images), out.maps * gains),
                               out.attribute_embeddings)  # fmt: skip
    # The distillation trains the head, and still not the evidence classifier.
    interpreter.train()
    out = interpreter(images)
    attrs = torch.tensor([[1.0, -1.0, 1.0], [1.0, 1.0, -1.0], [-1.0, -1.0, 1.0], [1.0, -1.0, -1.0]])
    md, prior = amd_loss(out.embedding, out.attribute_embeddings, attrs)
    (md + prior).backward()
    assert interpreter.decompose[-1].weight.grad.abs().max() > 0
    assert all(p.grad is None or p.grad.abs().max() == 0 for p in interpreter.evidence.parameters())


def test_evidence_classifier_with_a_hidden_layer_and_a_prior(target, images):
    interpreter = Interpreter(
        target, 2, map_mode="localising", normalisation="softmax", map_source="evidence", evidence_hidden=16,
        location_prior=True, aux_classifier=False,
    ).eval()  # fmt: skip
    assert [type(m).__name__ for m in interpreter.evidence] == [
        "BatchNorm2d", "Conv2d", "BatchNorm2d", "ReLU", "Conv2d"
    ]  # fmt: skip
    assert interpreter.evidence[1].out_channels == 16 and interpreter.evidence[-1].out_channels == 2
    with torch.no_grad():
        interpreter.location_logits.zero_()
        interpreter.location_logits[0, :8] = 2.0  # the top half of the crop, for attribute 0
        out = interpreter(images)
        scores = interpreter.evidence(target.backbone(images, end="layer3"))
    with_prior = scores.clone()
    with_prior[:, 0, :2] += 2.0  # the 16 x 8 prior resized to the 4 x 2 grid
    torch.testing.assert_close(out.evidence_logits, torch.logsumexp(with_prior.flatten(2), 2) - math.log(8))
    shape = torch.softmax(standardise_by_hand(with_prior).flatten(2), dim=2).view_as(scores) * 8
    torch.testing.assert_close(out.maps, shape)
    # The prior learns from the evidence loss.
    interpreter.train()
    out = interpreter(images)
    attribute_classification_loss(
        out.evidence_logits, torch.tensor([[1.0, -1.0]] * 4), torch.tensor([0.5, 0.5])
    ).backward()
    assert interpreter.location_logits.grad.abs().max() > 0
    rebuilt = build_interpreter(target, interpreter.architecture())
    assert rebuilt.evidence_hidden == 16
    rebuilt.load_own_state_dict(interpreter.own_state_dict())
    with pytest.raises(AmdError, match="hidden width"):
        Interpreter(target, 2, map_mode="localising", evidence_hidden=16)


def test_map_floor_keeps_the_peak_and_learns(target, images):
    """A floor e mixes each mask with a constant, (1 - e) Â + e (same peak, mean 1); maps stay Â, e learns."""
    plain = Interpreter(
        target, 3, map_mode="localising", normalisation="softmax", map_source="pinned", aux_classifier=False
    ).eval()  # fmt: skip
    floored = Interpreter(
        target, 3, map_mode="localising", normalisation="softmax", map_source="pinned", aux_classifier=False,
        map_floor=0.25,
    ).eval()  # fmt: skip
    torch.manual_seed(5)
    with torch.no_grad():
        plain.decompose[-1].weight.normal_(std=2.0)
        plain.evidence[-1].weight.normal_(std=1.0)
        floored.warm_start(plain.own_state_dict())
        torch.testing.assert_close(floored.floors(), torch.full((3,), 0.25))
        floored.floor_logit[1] = 0.0  # e = 1/2 for attribute 1
        a = plain(images)
        b = floored(images)
    e = torch.tensor([0.25, 0.5, 0.25]).view(1, 3, 1, 1)
    # The maps shown are the plain ones: the floor lives in the masks only, so the maps keep their contrast.
    torch.testing.assert_close(b.maps, a.maps)
    # Plain pinned maps have mean phi(H_p), their scale; the masks keep that mean and the peak.
    amplitude = a.maps.mean(dim=(2, 3), keepdim=True)
    masks = ((1 - e) * a.maps / amplitude + e) * amplitude
    torch.testing.assert_close(masks.flatten(2).argmax(2), a.maps.flatten(2).argmax(2))
    torch.testing.assert_close(masks.mean(dim=(2, 3)), a.maps.mean(dim=(2, 3)))
    fmap = target.backbone(images)
    torch.testing.assert_close(
        target.masked_head(fmap, masks * floored.gains().view(1, 3, 1, 1)), b.attribute_embeddings
    )
    unfloored = target.masked_head(fmap, b.maps * floored.gains().view(1, 3, 1, 1))
    assert not torch.allclose(unfloored, b.attribute_embeddings)
    _, attention_masks = floored.attention(target.backbone(images, end=floored.split))
    torch.testing.assert_close(attention_masks, masks * floored.gains().view(1, 3, 1, 1))
    # The floor is trained by the distillation losses and survives a rebuild from the checkpoint's description.
    floored.train()
    out = floored(images)
    attrs = torch.tensor([[1.0, -1.0, 1.0], [1.0, 1.0, -1.0], [-1.0, -1.0, 1.0], [1.0, -1.0, -1.0]])
    sum(amd_loss(out.embedding, out.attribute_embeddings, attrs)).backward()
    assert floored.floor_logit.grad.abs().max() > 0
    rebuilt = build_interpreter(target, floored.architecture())
    rebuilt.load_own_state_dict(floored.own_state_dict())
    torch.testing.assert_close(rebuilt.floors(), floored.floors())
    assert build_interpreter(target, plain.architecture()).floor_logit is None
    for bad in (-0.1, 1.0):
        with pytest.raises(AmdError, match="floor"):
            Interpreter(target, 3, map_mode="localising", map_floor=bad)
    with pytest.raises(AmdError, match="floor"):
        Interpreter(target, 3, map_floor=0.2)


def test_foreground_weights_lean_a_map_towards_the_target_pooling_by_hand(target, images):
    interpreter = Interpreter(
        target, num_attributes=2, map_mode="localising", normalisation="softmax", map_source="evidence"
    ).eval()
    with torch.no_grad():
        interpreter.sharpness.copy_(torch.tensor([math.log(2.0), 0.0]))
        plain = interpreter(images)
        interpreter.set_foreground_weights([0.0, 1.5])
        leaned = interpreter(images)
        local = target.backbone(images, end="layer3")
        s = interpreter.evidence(local)
        fmap = target.backbone(local, start="layer4")
    # gamma = 0 leaves attribute 0's map exactly as it was; attribute 1's is built by hand.
    assert torch.equal(leaned.maps[:, 0], plain.maps[:, 0])
    log_w = fmap.clamp(min=1e-6).pow(target.pool.p).mean(dim=1, keepdim=True).log()
    centred = log_w - log_w.mean(dim=(2, 3), keepdim=True)
    z = standardise_by_hand(standardise_by_hand(s[:, 1:]) + 1.5 * centred)
    by_hand = torch.softmax(z.flatten(2), dim=2).view_as(z) * 8
    torch.testing.assert_close(leaned.maps[:, 1:], by_hand, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(leaned.maps[:, 1], plain.maps[:, 1], atol=1e-3)
    # Training is untouched: the evidence logits and the embedding do not move.
    torch.testing.assert_close(leaned.evidence_logits, plain.evidence_logits)
    torch.testing.assert_close(leaned.embedding, plain.embedding)
    # evidence_cells gives what the leaned maps peak at; attention() gives the forward's maps.
    z_cells, c_cells = interpreter.evidence_cells(images)
    torch.testing.assert_close(z_cells, standardise_by_hand(s), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(c_cells, centred, rtol=1e-4, atol=1e-4)
    peaks = (z_cells[:, 1] + 1.5 * c_cells[:, 0]).flatten(1).argmax(dim=1)
    assert torch.equal(peaks, leaned.maps[:, 1].flatten(1).argmax(dim=1))
    with torch.no_grad():
        maps, _ = interpreter.attention(target.backbone(images, end=interpreter.split))
    torch.testing.assert_close(maps, leaned.maps)
    # The weights live in the architecture, not in the state dict, and survive a rebuild.
    assert interpreter.architecture()["foreground_weights"] == [0.0, 1.5]
    assert not any("foreground" in k for k in interpreter.own_state_dict())
    rebuilt = build_interpreter(target, interpreter.architecture())
    rebuilt.load_state_dict(interpreter.state_dict())
    torch.testing.assert_close(rebuilt.eval()(images).maps, leaned.maps)
    interpreter.set_foreground_weights([0.0, 0.0])  # all zeros: none
    assert interpreter.foreground is None and interpreter.architecture()["foreground_weights"] is None


def test_foreground_weights_are_refused_when_they_cannot_apply(target):
    evidence = Interpreter(target, 2, map_mode="localising", map_source="evidence")
    for bad in ([1.0], [0.5, -1.0], [float("nan"), 0.0]):
        with pytest.raises(AmdError, match="2 finite values >= 0"):
            evidence.set_foreground_weights(bad)
    with pytest.raises(AmdError, match="maps have none"):
        Interpreter(target, 2, map_mode="localising", foreground_weights=[1.0, 0.0])
    with pytest.raises(AmdError, match="do not come from an evidence"):
        Interpreter(target, 2, map_mode="localising").evidence_cells(torch.zeros(1, 3, H, W))
