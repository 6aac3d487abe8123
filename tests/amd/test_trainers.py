"""The target and distillation trainers end to end on a tiny synthetic dataset."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from amd.data.load import load_dataset
from amd.errors import AmdError
from amd.models import load_interpreter, load_target, read_info
from amd.models.inputs import eval_transform, load_batch
from amd.train.config import DistillConfig, TargetTrainConfig
from amd.train.distill import distill, evidence_temperatures, identity_positive_rates
from amd.train.target import train_target


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from amd.synth.writer import SynthConfig, write_dataset

    root = tmp_path_factory.mktemp("synth") / "data"
    write_dataset(
        root, SynthConfig(train_ids=6, test_ids=4, per_id=4, cameras=2, height=64, width=32, seed=3)
    )
    return root


@pytest.fixture(scope="module")
def trained_target(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    out = tmp_path_factory.mktemp("target") / "target.pt"
    cfg = TargetTrainConfig(data=str(tiny_data), arch="resnet18", size=(64, 32), epochs=2, p=3, k=2,
                            warmup_epochs=0, eval_every=1, log_every=1, out=str(out), device="cpu")  # fmt: skip
    return out, train_target(cfg)


def test_target_training_writes_a_loadable_model_and_its_log(trained_target) -> None:
    out, result = trained_target
    assert not result.stopped and result.out == str(out) and result.epochs_done == 2
    assert [h["epoch"] for h in result.history] == [1, 2]
    assert 0.0 <= result.metrics["mAP"] <= 1.0 and set(result.metrics) >= {"rank1", "rank5", "mAP", "mINP"}
    events = [json.loads(line) for line in (Path(result.run_dir) / "log.jsonl").read_text().splitlines()]
    steps = [e for e in events if e["type"] == "step"]
    assert len(steps) == 2 * 2  # 6 identities // P=3 per epoch, every step logged
    assert all(np.isfinite(e["losses"]["total"]) and "triplet" in e["losses"] for e in steps)
    model, info = load_target(out)
    assert info.kind == "target" and info.input_size == (64, 32) and info.config["arch"] == "resnet18"
    assert info.metrics["mAP"] == pytest.approx(result.metrics["mAP"])
    saved = json.loads((Path(result.run_dir) / "config.json").read_text())
    assert saved["epochs"] == 2 and saved["size"] == [64, 32]


def test_distillation_binds_the_interpreter_to_its_target(
    tiny_data: Path, trained_target, tmp_path: Path
) -> None:
    target_path, _ = trained_target
    out = tmp_path / "interp.pt"
    cfg = DistillConfig(data=str(tiny_data), target=str(target_path), epochs=1, p=3, k=2, warmup_epochs=0,
                        eval_every=1, log_every=1, out=str(out), device="cpu", map_mode="localising")  # fmt: skip
    result = distill(cfg)
    assert result.out == str(out)
    m = result.metrics
    assert 0 <= m["x_map_e"] <= 1 and 0 <= m["x_map_c"] <= 1 and m["adre"] >= 0
    # Interpreter retrieval with sum_m d_m is reported beside the target's.
    assert {"target_mAP", "interpreter_mAP", "interpreter_rank1"} <= set(m)
    target, tinfo = load_target(target_path)
    interp, info = load_interpreter(out, target, tinfo.sha256)
    assert info.target_sha256 == tinfo.sha256 and info.architecture["map_mode"] == "localising"
    assert len(info.schema) == 26 and interp.has_aux_classifier


def test_a_pooled_variant_starts_from_an_earlier_interpreter(
    tiny_data: Path, trained_target, tmp_path: Path
) -> None:
    import torch

    from amd.models import read_checkpoint

    target_path, _ = trained_target
    common = dict(data=str(tiny_data), target=str(target_path), epochs=1, p=3, k=2, warmup_epochs=0,
                  eval_every=100, device="cpu", map_mode="localising")  # fmt: skip
    first = tmp_path / "first.pt"
    distill(DistillConfig(**common, out=str(first)))
    variant = tmp_path / "variant.pt"
    # lr 0: the variant keeps exactly what it was started from, and adds its own new parts.
    distill(DistillConfig(**common, lr=0.0, normalisation="softmax", pooled_classifier=True,
                          location_prior=True, start_from=str(first), out=str(variant)))  # fmt: skip
    _, before = read_checkpoint(first)
    info, after = read_checkpoint(variant)
    assert info.architecture["pooled_classifier"] and info.architecture["normalisation"] == "softmax"
    assert not info.architecture["aux_classifier"]  # the pooled classifier replaces it
    assert torch.equal(after["decompose.3.weight"], before["decompose.3.weight"])
    assert "pooled_weight" in after and "aux_fc.weight" not in after
    target, tinfo = load_target(target_path)
    interp, _ = load_interpreter(variant, target, tinfo.sha256)
    assert interp.has_aux_classifier and interp.location_logits is not None
    with pytest.raises(AmdError, match="not an interpreter of the target"):
        distill(DistillConfig(**common, start_from=str(target_path), out=str(tmp_path / "x.pt")))


def localising(data: Path, target: Path, **changes) -> dict:
    """Distillation settings of the demo's localising interpreter, on the tiny dataset."""
    return dict(data=str(data), target=str(target), p=3, k=2, eval_every=100, device="cpu",
                map_mode="localising", normalisation="softmax", aux_classifier=False, location_prior=True,
                location_lr_scale=10.0, **changes)  # fmt: skip


def test_the_demo_recipe_evidence_maps_then_a_pinned_head(
    tiny_data: Path, trained_target, tmp_path: Path
) -> None:
    from amd.models import read_checkpoint

    target_path, _ = trained_target
    common = localising(tiny_data, target_path)
    evidence = tmp_path / "evidence.pt"
    distill(DistillConfig(**common, epochs=4, warmup_epochs=0, lr=1e-3, map_source="evidence",
                          evidence_lr_scale=10.0, evidence_temperature=0.25, evidence_temperatures="handbag=1",
                          log_every=1, out=str(evidence)))  # fmt: skip
    info, state = read_checkpoint(evidence)
    assert info.architecture["map_source"] == "evidence"
    names = load_dataset(tiny_data, "market1501").schema.names
    assert info.architecture["evidence_temperature"] == [1.0 if n == "handbag" else 0.25 for n in names]
    assert not any(k.startswith(("late.", "decompose.", "aux_")) for k in state)  # a few thousand numbers
    assert state["location_logits"].abs().max() > 0  # the evidence loss taught the prior
    steps = [json.loads(line) for line in (tmp_path / "evidence_run" / "log.jsonl").read_text().splitlines()]
    losses = [r["losses"]["evidence"] for r in steps if r.get("type") == "step"]
    assert len(losses) >= 4 and np.mean(losses[-2:]) < np.mean(losses[:2])  # the evidence classifier learns
    pinned = tmp_path / "pinned.pt"
    distill(DistillConfig(**common, epochs=1, warmup_epochs=0, lr=1e-3, map_source="pinned", split="layer3",
                          start_from=str(evidence), out=str(pinned)))  # fmt: skip
    target, tinfo = load_target(target_path)
    interp, _ = load_interpreter(pinned, target, tinfo.sha256)
    assert interp.map_source == "pinned" and interp.has_aux_classifier and interp.aux_fc is None
    assert interp.decompose[-1].weight.abs().max() > 0  # the head learned from 0
    # Whatever the head learned, every map still peaks where its evidence does.
    dataset = load_dataset(tiny_data, "market1501")
    images, _ = load_batch([r.path for r in dataset.query], eval_transform((64, 32)))
    with torch.no_grad():
        out = interp.eval()(images)
        scores = interp.evidence(target.backbone(images, end="layer3"))
        scores = scores + torch.nn.functional.interpolate(
            interp.location_logits.unsqueeze(0), size=scores.shape[2:], mode="bilinear", align_corners=False
        )
    torch.testing.assert_close(out.maps.flatten(2).argmax(2), scores.flatten(2).argmax(2))


def test_cancelled_run_reports_it_and_resume_refuses_another_job(tiny_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "t.pt"
    base = dict(
        data=str(tiny_data), arch="resnet18", size=(64, 32), epochs=3, p=3, k=2, out=str(out), device="cpu"
    )
    calls = {"n": 0}

    def stop_after_epoch() -> bool:
        calls["n"] += 1
        return calls["n"] >= 3  # the third step is the first of epoch 2

    result = train_target(TargetTrainConfig(**base, eval_every=10), should_stop=stop_after_epoch)
    assert result.stopped and result.out is None and result.epochs_done == 1 and not out.exists()
    assert (Path(result.run_dir) / "last.pt").is_file()
    with pytest.raises(AmdError, match=r"holds a run with another configuration \(differs in \['lr'\]\)"):
        train_target(TargetTrainConfig(**base, eval_every=10, lr=1e-2))
    # A saved state that no longer fits (written by another version of the model) is refused by name.
    last = Path(result.run_dir) / "last.pt"
    good = last.read_bytes()
    saved = torch.load(last, weights_only=True)
    groups = saved["trainer"]["optimizer"]["param_groups"]
    groups.append(dict(groups[0]))
    torch.save(saved, last)
    with pytest.raises(AmdError, match="saved state does not fit this model or optimiser"):
        train_target(TargetTrainConfig(**base, eval_every=10))
    # A run saved before a setting existed resumes, the setting taken at its default.
    saved = torch.load(io.BytesIO(good), weights_only=True)
    del saved["config"]["lr_schedule"]
    torch.save(saved, last)
    resumed = train_target(TargetTrainConfig(**base, eval_every=10))
    assert resumed.out == str(out) and resumed.epochs_done == 3
    assert read_info(out).extra["epochs"] == 3


def test_a_cosine_schedule_decays_the_learning_rate_each_epoch(tiny_data: Path, tmp_path: Path) -> None:
    base = dict(data=str(tiny_data), arch="resnet18", size=(64, 32), epochs=3, p=3, k=2, warmup_epochs=0,
                eval_every=10, log_every=1, lr=1e-3, device="cpu")  # fmt: skip
    result = train_target(TargetTrainConfig(**base, lr_schedule="cosine", out=str(tmp_path / "t.pt")))
    steps = [json.loads(line) for line in (Path(result.run_dir) / "log.jsonl").read_text().splitlines()]
    by_epoch = {e["epoch"]: e["lr"] for e in steps if e["type"] == "step"}
    # 0.01 + 0.99 * (1 + cos(pi * e / 3)) / 2 of the rate, for epochs 0, 1 and 2.
    assert by_epoch == pytest.approx({0: 1e-3, 1: 0.7525e-3, 2: 0.2575e-3})
    with pytest.raises(
        AmdError, match="unknown learning-rate schedule 'step'; choose one of constant, cosine"
    ):
        train_target(
            TargetTrainConfig(
                **{**base, "data": "/nonexistent"}, lr_schedule="step", out=str(tmp_path / "x.pt")
            )
        )


def test_evidence_temperatures_by_attribute_and_group(tiny_data: Path) -> None:
    schema = load_dataset(tiny_data, "market1501").schema
    names = schema.names
    assert evidence_temperatures(0.25, "", schema) == 0.25
    assert evidence_temperatures(0.25, "hat=1, handbag=1", schema) == tuple(
        1.0 if n in ("hat", "handbag") else 0.25 for n in names
    )
    # A pointing group ("sleeves" is the attribute "up") and a schema group; an attribute's own name wins.
    values = evidence_temperatures(1.0, "upper colour=0.5,upred=2,sleeves=0.25", schema)
    for n, t in zip(names, values, strict=True):
        expected = 2.0 if n == "upred" else 0.5 if n.startswith("up") and n != "up" else 0.25 if n == "up" else 1.0
        assert t == expected, n
    assert evidence_temperatures(0.5, "gender=0.5", schema) == 0.5  # all equal: one value
    for bad, message in (
        ("hat", "NAME=T"),
        ("hat=warm", "NAME=T"),
        ("cape=1", "no attribute or group 'cape'"),
        ("hat=0", "finite value above 0"),
        ("hat=-1", "finite value above 0"),
        ("hat=inf", "finite value above 0"),
        ("hat=1,handbag=1,hat=0.5", "'hat' is given twice"),
    ):
        with pytest.raises(AmdError, match=message):
            evidence_temperatures(1.0, bad, schema)
    with pytest.raises(AmdError, match="the default, -1.0, must be a finite value above 0"):
        evidence_temperatures(-1.0, "hat=1", schema)


def test_positive_rates_count_identities_not_images(tiny_data: Path) -> None:
    from amd.data.load import load_dataset

    ds = load_dataset(tiny_data, "market1501")
    rates = identity_positive_rates(ds)
    by_pid = {r.pid: r.attributes for r in ds.train}
    expected = (np.stack(list(by_pid.values())) > 0).mean(axis=0)
    np.testing.assert_allclose(rates, expected)
    assert len(by_pid) == 6


def planted_features(
    n: int, channels: int, cell: tuple[int, int], seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Noise features (n, C, 4, 2) where attribute 0 shows as channel 5 lit at ``cell``, labels +-1."""
    g = torch.Generator().manual_seed(seed)
    feats = torch.randn(n, channels, 4, 2, generator=g)
    positive = torch.arange(n) % 2 == 0
    feats[positive, 5, cell[0], cell[1]] += 4.0
    attrs = -torch.ones(n, 3)
    attrs[positive, 0] = 1.0
    return feats.half(), attrs


def test_evidence_fitted_on_cached_features_points_where_the_attribute_is(trained_target) -> None:
    from amd.models import Interpreter
    from amd.train.evidence_cache import cell_scores, fit_evidence

    target_path, _ = trained_target
    target, _ = load_target(target_path)
    interp = Interpreter(target, 3, map_mode="localising", normalisation="softmax", map_source="evidence",
                         location_prior=True)  # fmt: skip
    channels = target.backbone.stage_channels["layer3"]
    feats, attrs = planted_features(512, channels, (2, 1), seed=0)
    rates = torch.tensor([0.5, 0.5, 0.5])
    losses = fit_evidence(
        interp, feats, attrs, rates, epochs=6, lr=1e-2, prior_lr=1e-2, weight_decay=5e-4, batch=32
    )
    assert len(losses) == 6 and losses[-1] < 0.5 * losses[0]
    test, test_attrs = planted_features(200, channels, (2, 1), seed=1)
    with torch.no_grad():
        scores = cell_scores(interp, test)
    peaks = scores[test_attrs[:, 0] > 0, 0].flatten(1).argmax(1)
    assert (peaks == 2 * 2 + 1).float().mean() > 0.95  # row 2, column 1 of a 4x2 grid
    stopped = fit_evidence(interp, feats, attrs, rates, epochs=3, lr=1e-2, prior_lr=1e-2, weight_decay=0.0,
                           should_stop=lambda: True)  # fmt: skip
    assert stopped == []


def test_cached_evidence_then_frozen_while_the_head_fits(
    tiny_data: Path, trained_target, tmp_path: Path
) -> None:
    from amd.models import read_checkpoint

    target_path, _ = trained_target
    common = localising(tiny_data, target_path, evidence_lr_scale=10.0, evidence_weight=0.0, warmup_epochs=0,
                        lr=1e-3)  # fmt: skip
    events: list[dict] = []
    first = tmp_path / "evidence.pt"
    result = distill(DistillConfig(**common, epochs=1, map_source="evidence", evidence_cache=2,
                                   evidence_cache_epochs=4, out=str(first)), on_event=events.append)  # fmt: skip
    passes = [e for e in events if e["type"] == "evidence_cache"]
    assert [e["epoch"] for e in passes] == [1, 2, 3, 4] and passes[-1]["loss"] < passes[0]["loss"]
    assert events.index(passes[-1]) < next(i for i, e in enumerate(events) if e["type"] == "start")
    # The run's log opens with the same four epochs, then the distillation's steps.
    logged = [json.loads(line) for line in (Path(result.run_dir) / "log.jsonl").read_text().splitlines()]
    assert logged[:4] == passes and {e["type"] for e in logged[4:]} >= {"step"}
    _, start = read_checkpoint(first)
    assert start["location_logits"].abs().max() > 0 and start["sharpness"].abs().max() > 0
    pinned = tmp_path / "pinned.pt"
    distill(DistillConfig(**common, epochs=1, map_source="pinned", split="layer3", start_from=str(first),
                          out=str(pinned)))  # fmt: skip
    _, end = read_checkpoint(pinned)
    frozen = [k for k in start if k.startswith("evidence.") or k == "location_logits"]
    assert any(k.endswith("running_mean") for k in frozen)  # batch statistics stay fixed too
    for key in frozen:
        torch.testing.assert_close(end[key], start[key])
    assert not torch.equal(end["log_gain"], start["log_gain"])  # what is not frozen still learns
    with pytest.raises(AmdError, match="evidence_cache trains the evidence classifier"):
        distill(DistillConfig(**{**common, "evidence_weight": 1.0}, epochs=1, map_source="head",
                              evidence_cache=1, out=str(tmp_path / "x.pt")))  # fmt: skip


def test_a_cancel_during_the_cached_fit_stops_before_distilling(
    tiny_data: Path, trained_target, tmp_path: Path
) -> None:
    target_path, _ = trained_target
    cfg = DistillConfig(**localising(tiny_data, target_path, evidence_weight=0.0, warmup_epochs=0), epochs=1,
                        map_source="evidence", evidence_cache=1, evidence_cache_epochs=5,
                        out=str(tmp_path / "i.pt"))  # fmt: skip
    events: list[dict] = []

    def after_two_epochs() -> bool:
        return sum(e["type"] == "evidence_cache" for e in events) >= 2

    result = distill(cfg, on_event=events.append, should_stop=after_two_epochs)
    assert result.stopped and result.out is None and result.epochs_done == 0
    assert [e["epoch"] for e in events] == [1, 2]  # no distillation step ran, no start event
    assert not (tmp_path / "i.pt").exists() and not (Path(result.run_dir) / "last.pt").exists()
    # Started again, the run fits the cache from the beginning and finishes.
    events.clear()
    again = distill(cfg, on_event=events.append)
    assert not again.stopped and (tmp_path / "i.pt").is_file()
    assert [e["epoch"] for e in events if e["type"] == "evidence_cache"] == [1, 2, 3, 4, 5]


def test_an_evidence_cache_too_large_is_refused_before_any_work(
    tiny_data: Path, trained_target, monkeypatch: pytest.MonkeyPatch
) -> None:
    from amd.models import Interpreter
    from amd.train import evidence_cache

    target_path, _ = trained_target
    target, _ = load_target(target_path)
    interp = Interpreter(target, 30, map_mode="localising", map_source="evidence")
    records = load_dataset(tiny_data, "market1501").train
    per_crop = evidence_cache.cache_bytes(interp, (64, 32), 1)
    assert per_crop == 2 * target.backbone.stage_channels["layer3"] * 4 * 2  # float16, a 4x2 grid at 64x32
    monkeypatch.setattr(evidence_cache, "CACHE_LIMIT", per_crop * len(records) * 3)
    monkeypatch.setattr(evidence_cache, "local_features", lambda *a, **k: pytest.fail("extracted"))
    with pytest.raises(AmdError, match=r"5 cached copies of \d+ crops would take .* at most 3 fit"):
        evidence_cache.pretrain_evidence(interp, records, (64, 32), np.full(30, 0.5), copies=5, epochs=1,
                                         lr=1e-2, prior_lr=1e-2, weight_decay=0.0)  # fmt: skip


def test_resolve_device_refuses_an_unknown_name_with_our_message():
    from amd.devices import resolve_device
    from amd.errors import AmdError

    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(AmdError, match="unknown device 'banana'"):
        resolve_device("banana")
