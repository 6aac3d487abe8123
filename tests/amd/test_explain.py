"""Per-pair explanations and the embedder, from checkpoint files, on tiny crops."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image

from amd.embedding import Embedder, load_embedder
from amd.explain import Explainer
from amd.models import Interpreter, build_target, file_sha256, save_interpreter, save_target
from amd.models.checkpoint import CheckpointError
from amd.models.inputs import ImageInputError, eval_transform
from amd.schema import schema_from_names

SIZE = (64, 32)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("explain")
    torch.manual_seed(0)
    target = build_target("resnet18").eval()
    target.bnneck.running_mean.uniform_(0.0, 0.5)
    target_path = folder / "target.pt"
    target_hash = save_target(target_path, target, SIZE)
    schema = schema_from_names(["hat", "backpack", "upred"], name="tiny")
    interpreter = Interpreter(target, num_attributes=3, aux_classifier=True)
    interp_path = folder / "interpreter.pt"
    save_interpreter(interp_path, interpreter, SIZE, schema, target_hash)
    rng = np.random.default_rng(0)
    crops = []
    for i, (h, w) in enumerate([(40, 20), (70, 30), (64, 32), (50, 25)]):
        path = folder / f"crop{i}.png"
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
        crops.append(path)
    return {"target": target_path, "interpreter": interp_path, "crops": crops}


@pytest.fixture(scope="module")
def explainer(files):
    return Explainer.from_files(files["target"], files["interpreter"])


def test_untrained_interpreter_components_add_up_to_the_distance(explainer, files):
    a, b = files["crops"][:2]
    e = explainer.explain(a, b)
    assert e.names == ("hat", "backpack", "upred")
    assert e.distance > 0
    # A = 1 everywhere: each attribute distance is the full distance, each component d / M.
    np.testing.assert_allclose(e.attribute_distances, e.distance, rtol=1e-4)
    np.testing.assert_allclose(e.components.sum(), e.distance, rtol=1e-4)
    np.testing.assert_allclose(e.shares, 1 / 3, rtol=1e-4)
    assert abs(e.gap) < 1e-4
    assert e.maps_a.shape == (3, 40, 20) and e.maps_b.shape == (3, 70, 30)
    np.testing.assert_allclose(e.maps_a, 1.0, rtol=1e-6)
    assert e.predicted_a.shape == (3,) and np.all((e.predicted_a > 0) & (e.predicted_a < 1))


def test_distance_is_the_targets(explainer, files):
    a, b = files["crops"][:2]
    transform = eval_transform(SIZE)
    batch = torch.stack([transform(Image.open(p).convert("RGB")) for p in (a, b)])
    f = explainer.embed(batch)
    e = explainer.explain(a, b)
    assert e.distance == pytest.approx(torch.linalg.norm(f[0] - f[1]).item(), rel=1e-5)


def test_paths_pil_images_and_arrays_agree(explainer, files):
    a, b = files["crops"][:2]
    by_path = explainer.explain(a, b)
    pil_a = Image.open(a).convert("RGB")
    by_pil = explainer.explain(pil_a, np.asarray(Image.open(b).convert("RGB")))
    assert by_pil.distance == pytest.approx(by_path.distance, rel=1e-6)
    np.testing.assert_allclose(by_pil.attribute_distances, by_path.attribute_distances, rtol=1e-6)


def test_explain_many_runs_one_forward_per_image(explainer, files):
    query, *gallery = files["crops"]
    seen = []
    handle = explainer.interpreter.register_forward_hook(lambda mod, inp, out: seen.append(inp[0].shape[0]))
    try:
        results = explainer.explain_many(query, gallery)
    finally:
        handle.remove()
    assert sum(seen) == len(gallery) + 1
    assert len(results) == 3
    single = explainer.explain(query, gallery[1])
    assert results[1].distance == pytest.approx(single.distance, rel=1e-6)
    assert results[2].maps_b.shape == (3, 50, 25)


def test_largest_shares_are_each_pairs_top_shares_chunk_by_chunk(explainer, files):
    query, *gallery = files["crops"]
    seen = []
    handle = explainer.interpreter.register_forward_hook(lambda mod, inp, out: seen.append(inp[0].shape[0]))
    try:
        tops = explainer.largest_shares(query, gallery, count=2, chunk=2)
    finally:
        handle.remove()
    assert seen == [3, 1]  # the query with the first chunk of two, then the last crop alone
    for top, crop in zip(tops, gallery, strict=True):
        e = explainer.explain(query, crop)
        order = e.order()[:2]
        assert [label for label, _, _ in top] == [e.labels[i] for i in order]
        assert [share for _, share, _ in top] == pytest.approx([e.shares[i] for i in order], abs=1e-6)
        # Whether the crops differ on it: the classifier's answers on either side of 0.5.
        pa, pb = e.predicted_a, e.predicted_b
        assert [differ for _, _, differ in top] == [bool((pa[i] >= 0.5) != (pb[i] >= 0.5)) for i in order]
        assert top[0][1] >= top[1][1]
    # Asked to stop before the second chunk, it gives the first chunk's.
    polls = iter([False, True])
    assert len(explainer.largest_shares(query, gallery, chunk=2, should_stop=lambda: next(polls))) == 2


def test_explanation_is_frozen_and_serialisable(explainer, files):
    e = explainer.explain(*files["crops"][:2])
    with pytest.raises(dataclasses.FrozenInstanceError):
        e.distance = 0.0
    with pytest.raises(ValueError):
        e.shares[0] = 1.0
    data = e.to_dict()
    shares = [item["share"] for item in data["attributes"]]
    assert shares == sorted(shares, reverse=True)
    assert {item["name"] for item in data["attributes"]} == set(e.names)


def test_trained_head_changes_components_and_gap_is_consistent(files):
    explainer = Explainer.from_files(files["target"], files["interpreter"])
    torch.manual_seed(3)
    with torch.no_grad():
        explainer.interpreter.decompose[-1].weight.normal_(std=0.5)
    e = explainer.explain(*files["crops"][:2])
    assert not np.allclose(e.shares, 1 / 3)
    assert e.shares.sum() == pytest.approx(1.0)
    assert e.gap == pytest.approx((e.components.sum() - e.distance) / e.distance)
    assert e.maps_a.min() >= 0 and not np.allclose(e.maps_a, 1.0)


def test_bad_images_are_refused(explainer, tmp_path, files):
    bad = tmp_path / "not_an_image.png"
    bad.write_bytes(b"text")
    with pytest.raises(ImageInputError, match="cannot read image"):
        explainer.explain(bad, files["crops"][0])
    with pytest.raises(ImageInputError, match="uint8"):
        explainer.explain(np.zeros((10, 5, 3), dtype=np.float32), files["crops"][0])


# ------------------------------------------------------------------------------------------ embedder


def test_embedder_from_a_target_file(files, explainer):
    embedder = load_embedder(files["target"])
    assert isinstance(embedder, Embedder)
    assert embedder.model_hash == file_sha256(files["target"])
    assert embedder.dim == 512 and embedder.input_size == SIZE and embedder.name == "target"
    crops = files["crops"]
    mixed = [crops[0], Image.open(crops[1]), np.asarray(Image.open(crops[2]).convert("RGB")), crops[3]]
    vectors = embedder.embed(mixed, batch_size=3)
    assert vectors.shape == (4, 512) and vectors.dtype == np.float32
    np.testing.assert_allclose(embedder.embed(crops, batch_size=64), vectors, rtol=1e-4, atol=1e-5)
    e = explainer.explain(crops[0], crops[1])
    assert float(np.linalg.norm(vectors[0] - vectors[1])) == pytest.approx(e.distance, rel=1e-4)
    assert embedder.embed([]).shape == (0, 512)


def test_embedder_refuses_an_interpreter_file(files):
    with pytest.raises(CheckpointError, match="interpreter checkpoint, not a target"):
        load_embedder(files["interpreter"])
