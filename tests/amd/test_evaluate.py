"""Evaluation of a target and its interpreter: re-weighting, the validation split, the synthetic scores,
and the ``evaluate`` command, on a tiny synthetic dataset with untrained models."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from amd.evaluate import (
    choose_beta,
    differing_share,
    evaluate_models,
    reweight,
    validation_split,
)

SIZE = (64, 32)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict:
    from amd.data.load import load_dataset
    from amd.models import Interpreter, build_target, save_interpreter, save_target
    from amd.synth.writer import SynthConfig, write_dataset

    root = tmp_path_factory.mktemp("eval") / "data"
    write_dataset(root, SynthConfig(train_ids=6, test_ids=4, per_id=4, cameras=2, height=64, width=32, seed=3))
    ds = load_dataset(root, "market1501")
    torch.manual_seed(0)
    target = build_target("resnet18").eval()
    target_path = root.parent / "target.pt"
    digest = save_target(target_path, target, SIZE)
    interpreter = Interpreter(target, len(ds.schema), map_mode="localising", aux_classifier=True)
    with torch.no_grad():
        interpreter.decompose[-1].weight.normal_(std=0.3)  # maps and shares that differ between attributes
        interpreter.aux_fc.weight.normal_(std=0.5)
    interp_path = root.parent / "interpreter.pt"
    save_interpreter(interp_path, interpreter.eval(), SIZE, ds.schema, digest)
    return {"root": root, "ds": ds, "target": target, "interpreter": interpreter,
            "target_path": target_path, "interp_path": interp_path}  # fmt: skip


def test_differing_share_matches_a_direct_computation() -> None:
    rng = np.random.default_rng(0)
    q_att, g_att = rng.normal(size=(5, 3, 4)), rng.normal(size=(7, 3, 4))
    q_attrs = rng.choice([-1, 1], size=(5, 3))
    g_pred = rng.random((7, 3)) > 0.5
    w = differing_share(q_att, g_att, q_attrs, g_pred, chunk_size=2)
    for i in range(5):
        for j in range(7):
            d_m = np.linalg.norm(q_att[i] - g_att[j], axis=1)
            differ = (q_attrs[i] > 0) != g_pred[j]
            expected = (d_m * differ).sum() / d_m.sum()
            assert w[i, j] == pytest.approx(expected, rel=1e-5, abs=1e-6)


def test_beta_is_chosen_by_validation_map_and_zero_wins_ties() -> None:
    # One query (identity 1, camera 1); gallery: identity 2 nearest but judged to differ everywhere (w = 1),
    # then the true match (w = 0). Re-weighting with beta >= 0.5 puts the match first.
    d = np.array([[1.0, 1.4]])
    w = np.array([[1.0, 0.0]])
    args = (np.array([1]), np.array([2, 1]), np.array([1]), np.array([2, 2]))
    choice = choose_beta(d, w, *args, betas=(0.0, 0.25, 0.5, 1.0))
    assert choice.scores == pytest.approx({0.0: 0.5, 0.25: 0.5, 0.5: 1.0, 1.0: 1.0})
    assert choice.beta == 0.5
    np.testing.assert_allclose(reweight(d, w, 0.5), [[1.5, 1.4]])
    assert choose_beta(d, np.zeros_like(w), *args, betas=(0.0, 1.0)).beta == 0.0


def test_validation_split_takes_training_identities_only(tiny) -> None:
    ds = tiny["ds"]
    query, gallery = validation_split(ds.train, fraction=0.2, min_identities=4, seed=0)
    train_pids = {r.pid for r in ds.train}
    assert {r.pid for r in query} <= train_pids and len({r.pid for r in query}) == 4
    assert {r.pid for r in gallery} == {r.pid for r in query}
    # One query per (identity, camera); every other crop of those identities in the gallery.
    assert len({(r.pid, r.camid) for r in query}) == len(query)
    assert len(query) + len(gallery) == sum(1 for r in ds.train if r.pid in {q.pid for q in query})
    assert validation_split(ds.train, seed=0) == (query, gallery)


@pytest.fixture(scope="module")
def evaluated(tiny, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str]:
    """The evaluate command run once, with the synthetic scores (every later test reads its JSON)."""
    from cli.main import main

    out = tmp_path_factory.mktemp("figures") / "figures.json"
    code = main(["evaluate", "--data", str(tiny["root"]), "--target", str(tiny["target_path"]),
                 "--interpreter", str(tiny["interp_path"]), "--json", str(out), "--device", "cpu",
                 "--synthetic", "--max-pairs", "4"])  # fmt: skip
    assert code == 0
    return json.loads(out.read_text()), str(out)


def test_evaluate_reports_every_section(tiny, evaluated) -> None:
    figures, _ = evaluated
    assert set(figures["target"]) == {"rank1", "rank5", "rank10", "mAP", "mINP"}
    assert set(figures["interpreter"]) == {"rank1", "rank5", "mAP"}
    assert set(figures["explanation"]) == {"x_map_e", "x_map_c", "adre"}
    for section in ("target", "interpreter"):
        assert all(0.0 <= v <= 1.0 for v in figures[section].values())
    assert figures["explanation"]["adre"] >= 0.0
    # The interpreter's pass gives the target's own embeddings: the same figures as a plain target pass.
    plain = evaluate_models(tiny["ds"], tiny["target"], SIZE)
    assert set(plain) == {"target"}
    assert figures["target"] == pytest.approx(plain["target"], abs=1e-6)


def test_reweighting_reports_the_beta_with_the_best_validation_map(evaluated) -> None:
    rew = evaluated[0]["target_reweighted"]
    scores = {float(b): s for b, s in rew["validation_mAP"].items()}
    best = max(scores.values())
    assert rew["beta"] == min(b for b, s in scores.items() if s >= best - 1e-12)
    assert rew["validation_identities"] == 4
    assert {"rank1", "rank5", "rank10", "mAP", "mINP"} <= set(rew)


def test_synthetic_scores_put_the_ground_truth_at_the_ceiling(evaluated) -> None:
    res = evaluated[0]["synthetic"]
    assert res["grid"] == [4, 2]
    assert set(res) == {"grid", "localising interpreter", "fixed map", "ground truth"}
    truth = res["ground truth"]["pointing"]
    assert truth["overall"] == pytest.approx(1.0)  # the peak of a part's own coverage lies on the part
    for variant in ("localising interpreter", "fixed map"):
        scores = res[variant]["pointing"]
        assert set(scores) == set(truth) and all(0.0 <= v <= 1.0 for v in scores.values())
        deletion = res[variant]["deletion"]
        assert deletion["pairs"] == 4 and deletion["top"] >= 0 and 0 <= deletion["top_beats_random"] <= 1


def test_evaluate_command_refuses_bad_input(tiny, tmp_path: Path, capsys) -> None:
    from cli.main import main

    out = tmp_path / "figures.json"
    assert main(["evaluate", "--data", str(tmp_path / "none"), "--target", str(tiny["target_path"]),
                 "--json", str(out), "--device", "cpu"]) == 2  # fmt: skip
    assert "error:" in capsys.readouterr().err
    assert main(["evaluate", "--data", str(tiny["root"]), "--target", str(tiny["target_path"]),
                 "--json", str(out), "--device", "cpu", "--synthetic"]) == 2  # fmt: skip
    assert "give --interpreter" in capsys.readouterr().err and not out.exists()
