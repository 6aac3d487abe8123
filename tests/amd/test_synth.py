"""The synthetic pedestrian renderer and its Market-1501 writer."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from PIL import Image

from amd.data.market import load_market1501
from amd.schema import load_schema
from amd.synth import parts as P
from amd.synth.cameras import VIEWS, make_cameras
from amd.synth.identities import load_joint_table, sample_identities
from amd.synth.render import part_colours, render_person
from amd.synth.writer import SynthConfig, SynthError, parse_size, read_images_csv, write_dataset

NAME = re.compile(r"^(\d{4})_c(\d)s(\d)_(\d{6})_(\d{2})\.jpg$")
CFG = SynthConfig(train_ids=6, test_ids=6, per_id=5, cameras=3, seed=11, distractors=4)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    out = tmp_path_factory.mktemp("synth") / "ds"
    return out, write_dataset(out, CFG)


@pytest.fixture(scope="module")
def identities(dataset) -> dict[int, dict]:
    out, _ = dataset
    return {i["pid"]: i for i in json.loads((out / "identities.json").read_text())}


def test_layout_parses_as_market_and_loads(dataset) -> None:
    out, summary = dataset
    names = {
        f: sorted(p.name for p in (out / f).iterdir())
        for f in ("bounding_box_train", "query", "bounding_box_test")
    }
    for folder, files in names.items():
        for name in files:
            m = NAME.match(name)
            assert m, f"{folder}/{name}"
            assert 1 <= int(m.group(2)) <= CFG.cameras
    ds = load_market1501(out)
    assert len(ds.train) == 6 * 5 == summary.images["train"]
    assert len(ds.query) + len(ds.gallery) == 6 * 5 + 4
    assert {r.pid for r in ds.train} == set(range(1, 7))
    assert {r.pid for r in ds.query} == set(range(7, 13))
    assert {r.pid for r in ds.gallery} == set(range(7, 13)) | {0}
    assert sum(r.pid == 0 for r in ds.gallery) == 4


def test_attribute_file_reads_like_the_published_one(dataset, identities) -> None:
    out, _ = dataset
    top = scipy.io.loadmat(out / "market_attribute.mat")["market_attribute"][0, 0]
    fields = load_joint_table().fields
    for split, pids in (("train", range(1, 7)), ("test", range(7, 13))):
        s = top[split][0, 0]
        assert set(s.dtype.names) == {*fields, "image_index"}
        assert s["gender"].dtype == np.uint8 and s["gender"].shape == (1, 6)
        assert [str(v[0]) for v in s["image_index"].ravel()] == [f"{p:04d}" for p in pids]
        for name in fields:
            assert s[name].ravel().tolist() == [identities[p]["codes"][name] for p in pids]
        assert set(s["age"].ravel().tolist()) <= {1, 2, 3, 4}


def test_attributes_round_trip_through_the_market_loader(dataset, identities) -> None:
    out, _ = dataset
    ds = load_market1501(out)
    names = load_schema("market1501").names
    assert len(names) == 26 and "age" not in names
    checked = 0
    for rec in ds.train + ds.query + ds.gallery:
        if rec.pid == 0:
            assert (rec.attributes == -1).all()
            continue
        codes = identities[rec.pid]["codes"]
        assert rec.attributes.tolist() == [1 if codes[n] == 2 else -1 for n in names]
        checked += 1
    assert checked == 60


def test_query_gallery_protocol(dataset) -> None:
    out, _ = dataset
    ds = load_market1501(out)
    for pid in range(7, 13):
        queries = [r for r in ds.query if r.pid == pid]
        gallery = [r for r in ds.gallery if r.pid == pid]
        cams = {r.camid for r in queries + gallery}
        assert len(cams) >= 2
        # One query per camera that saw the identity, and a gallery match from another camera for each.
        assert sorted(r.camid for r in queries) == sorted(cams)
        for q in queries:
            assert any(g.camid != q.camid for g in gallery)
    rows = read_images_csv(out)
    assert {r["split"] for r in rows if r["pid"] == 0} == {"gallery"}
    assert len({r["path"] for r in rows}) == len(rows) == 64


def test_written_masks_match_manifest_and_attributes(dataset, identities) -> None:
    out, _ = dataset
    manifest = json.loads((out / "parts.json").read_text())
    assert manifest["attributes"]["backpack"]["parts"] == [P.BACKPACK]
    assert manifest["attributes"]["upred"]["parts"] == [P.TORSO, P.SLEEVES]
    assert set(manifest["attributes"]) == set(load_joint_table().fields)
    seen = {name: [0, 0] for name in ("backpack", "bag", "handbag", "hat")}
    part = {"backpack": P.BACKPACK, "bag": P.BAG, "handbag": P.HANDBAG, "hat": P.HAT}
    for row in read_images_csv(out):
        labels = np.asarray(Image.open(out / row["mask"]))
        assert labels.shape == (128, 64) and labels.dtype == np.uint8
        assert set(np.unique(labels).tolist()) <= {*P.PART_NAMES}
        assert (labels == P.OCCLUDER).any() == (row["occluder"] != "")
        if row["pid"] == 0:
            continue
        for name, p in part.items():
            has = identities[row["pid"]]["codes"][name] == 2
            present = bool((labels == p).any())
            assert not present or has, f"{row['path']}: {name} drawn for an identity without it"
            if has:
                seen[name][0] += present
                seen[name][1] += 1
    for name, (present, total) in seen.items():
        if total:
            assert present / total >= 0.6, (name, present, total)


def _coverage_pair(ident, cam, view, seed, part_field: str, occlusion: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel coverage of the parts painted from ``part_field`` (exact), and the label map."""
    black = (0, 0, 0)
    fields = ["upper_rgb", "sleeve_rgb", "lower_rgb", "skin_rgb", "hair_rgb", "shoe_rgb", "hat_rgb",
              "backpack_rgb", "bag_rgb", "handbag_rgb"]  # fmt: skip
    dark = replace(ident, look=replace(ident.look, **dict.fromkeys(fields, black)))
    lit = replace(ident, look=replace(dark.look, **{part_field: (255, 255, 255)}))
    kw = dict(effects=False, shading=False, occlusion=occlusion)
    a = render_person(lit, cam, view, np.random.default_rng(seed), **kw)
    b = render_person(dark, cam, view, np.random.default_rng(seed), **kw)
    assert np.array_equal(a.labels, b.labels)
    cover = (a.image.astype(np.float64) - b.image).mean(axis=2) / 255.0
    return np.round(cover * 4) / 4, a.labels


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_each_mask_lies_on_the_pixels_drawn_for_its_part(seed: int) -> None:
    rng = np.random.default_rng(seed)
    cams = make_cameras(2, (128, 64), rng)
    # Identities with every carried object, so that each part appears.
    idents = [
        i for i in sample_identities(400, rng) if i.has("backpack") or i.has("bag") or i.has("handbag")
    ][:4]
    groups = {
        "upper_rgb": {P.TORSO}, "sleeve_rgb": {P.SLEEVES}, "lower_rgb": {P.LOWER}, "skin_rgb": {P.HEAD, P.ARMS, P.LEGS},
        "hair_rgb": {P.HAIR}, "shoe_rgb": {P.SHOES}, "backpack_rgb": {P.BACKPACK}, "bag_rgb": {P.BAG},
        "handbag_rgb": {P.HANDBAG}, "hat_rgb": {P.HAT},
    }  # fmt: skip
    checked: set[str] = set()
    for k, ident in enumerate(idents):
        view = VIEWS[(k + seed) % 4]
        for field, ids in groups.items():
            cover, labels = _coverage_pair(
                ident, cams[k % 2], view, 100 * seed + k, field, occlusion=k % 2 == 0
            )
            in_mask = np.isin(labels, list(ids))
            assert (cover[~in_mask] <= 0.5).all(), field
            if not in_mask.any():
                continue
            checked.add(field)
            # The majority rule: a pixel labelled with the part is at least a quarter covered by it
            # (half, bar 4-way ties), and a pixel more than half covered by the part carries its label.
            assert (cover[in_mask] >= 0.25).all(), field
            assert (cover[in_mask] >= 0.5).mean() >= 0.98, field
            assert in_mask[cover > 0.5].all(), field
    assert len(checked) >= 7, checked


def test_flat_render_paints_each_part_in_its_colour() -> None:
    rng = np.random.default_rng(5)
    cam = make_cameras(2, (128, 64), rng)[0]
    ident = sample_identities(1, rng)[0]
    crop = render_person(ident, cam, "front", np.random.default_rng(0), effects=False, shading=False)
    colours = part_colours(ident.look)
    lab = crop.labels
    inner = np.zeros_like(lab, dtype=bool)
    c = lab[1:-1, 1:-1]
    inner[1:-1, 1:-1] = (
        (c == lab[:-2, 1:-1]) & (c == lab[2:, 1:-1]) & (c == lab[1:-1, :-2]) & (c == lab[1:-1, 2:])
    )
    for p in np.unique(lab):
        if p not in P.PERSON_PARTS:
            continue
        m = inner & (lab == p)
        diff = np.abs(crop.image[m].astype(int) - colours[int(p)]).max(axis=1)
        assert (diff <= 1).mean() >= 0.97, P.PART_NAMES[int(p)]


def test_same_identity_looks_alike_but_never_identical() -> None:
    rng = np.random.default_rng(3)
    cams = make_cameras(3, (128, 64), rng)
    ident = sample_identities(1, rng)[0]
    a = render_person(ident, cams[0], "front", np.random.default_rng(1))
    b = render_person(ident, cams[1], "front", np.random.default_rng(2))
    assert not np.array_equal(a.image, b.image)
    again = render_person(ident, cams[0], "front", np.random.default_rng(1))
    assert np.array_equal(a.image, again.image) and np.array_equal(a.labels, again.labels)
    # Torso colour stays close across cameras (in the clean render) but shading and framing change.
    ta = render_person(ident, cams[0], "back", np.random.default_rng(4), effects=False)
    tb = render_person(ident, cams[1], "back", np.random.default_rng(5), effects=False)
    mean_a = ta.image[ta.labels == P.TORSO].mean(axis=0)
    mean_b = tb.image[tb.labels == P.TORSO].mean(axis=0)
    assert np.abs(mean_a - mean_b).max() < 40


def test_same_seed_writes_identical_files(tmp_path: Path) -> None:
    cfg = SynthConfig(train_ids=2, test_ids=2, per_id=4, cameras=2, seed=4, distractors=1)
    a, b, c = (write_dataset(tmp_path / n, replace(cfg, seed=s)) for n, s in (("a", 4), ("b", 4), ("c", 5)))
    files_a = sorted(p.relative_to(a.out_dir) for p in Path(a.out_dir).rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b.out_dir) for p in Path(b.out_dir).rglob("*") if p.is_file())
    # 17 crops and their masks, the attribute file and four manifests.
    assert files_a == files_b and len(files_a) == 2 * 17 + 5
    for rel in files_a:
        assert (Path(a.out_dir) / rel).read_bytes() == (Path(b.out_dir) / rel).read_bytes(), rel
    other = Path(c.out_dir)
    assert (other / "identities.json").read_bytes() != (Path(a.out_dir) / "identities.json").read_bytes()
    assert {p.name for p in other.rglob("*.jpg")} != {p.name for p in Path(a.out_dir).rglob("*.jpg")}


def test_progress_and_cancel(tmp_path: Path) -> None:
    cfg = SynthConfig(train_ids=2, test_ids=2, per_id=4, cameras=2, seed=0)
    calls: list[tuple[int, int]] = []
    summary = write_dataset(tmp_path / "full", cfg, on_progress=lambda d, t: calls.append((d, t)))
    assert calls == [(i, 16) for i in range(1, 17)] and summary.written == 16 and not summary.cancelled

    done: list[int] = []
    summary = write_dataset(tmp_path / "cut", cfg, on_progress=lambda d, t: done.append(d),
                            should_stop=lambda: len(done) >= 5)  # fmt: skip
    assert summary.cancelled and summary.written == 5
    assert len(list((tmp_path / "cut").rglob("*.jpg"))) == 5
    assert not (tmp_path / "cut" / "market_attribute.mat").exists()


def test_bad_inputs_get_messages_naming_the_problem(tmp_path: Path) -> None:
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    cfg = SynthConfig(train_ids=1, test_ids=1, per_id=4, cameras=2)
    with pytest.raises(SynthError, match=re.escape(f"{busy}: folder is not empty")):
        write_dataset(busy, cfg)
    write_dataset(busy, cfg, overwrite=True)
    assert (busy / "notes.txt").read_text() == "mine" and (busy / "market_attribute.mat").exists()
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(SynthError, match="exists and is not a folder"):
        write_dataset(a_file, cfg)
    with pytest.raises(SynthError, match=r"size '12y' must be HEIGHTxWIDTH"):
        parse_size("12y")
    assert parse_size("256x128") == (256, 128)
    for bad, msg in (
        (dict(cameras=12), "cameras must be 2..9"),
        (dict(per_id=3), "per-id must be at least 4"),
        (dict(train_ids=0, test_ids=0), "need at least one identity"),
        (dict(train_ids=9000, test_ids=1000), "at most 9999 identities"),
        (dict(height=4), "out of range"),
    ):
        with pytest.raises(SynthError, match=msg):
            write_dataset(tmp_path / "new", replace(cfg, **bad))


def test_command_line_reports_bad_input_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from cli.main import main

    assert main(["synth", str(tmp_path / "x"), "--size", "big"]) == 2
    assert capsys.readouterr().err.strip() == "error: size 'big' must be HEIGHTxWIDTH, e.g. 128x64"
    out = tmp_path / "ok"
    code = main(["synth", str(out), "--train-ids", "2", "--test-ids", "2", "--per-id", "4", "--cameras", "2",
                 "--contact-sheet", str(tmp_path / "sheet.png"), "--json"])  # fmt: skip
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["written"] == 16 and report["images"] == {"train": 8, "query": report["images"]["query"],
                                                            "gallery": 8 - report["images"]["query"]}  # fmt: skip
    sheet = np.asarray(Image.open(tmp_path / "sheet.png"))
    # Four identities in one row of crops plus one row of their masks, enlarged twice.
    assert sheet.shape == (2 * 2 * (128 + 2), 2 * 8 * (64 + 2), 3)


def test_identities_follow_the_joint_distribution() -> None:
    table = load_joint_table()
    rates = table.rates()
    n = 2000
    for lookalikes in (0.0, 0.3):
        idents = sample_identities(n, np.random.default_rng(123), lookalike_rate=lookalikes)
        for name in table.fields:
            got = np.mean([(i.codes[name] >= 3) if name == "age" else (i.codes[name] == 2) for i in idents])
            p = rates[name]
            assert abs(got - p) <= 4 * np.sqrt(p * (1 - p) / n) + 0.005, (name, got, p, lookalikes)
    idents = sample_identities(n, np.random.default_rng(7))
    rows = {tuple(int(c) for c in r) for r in table.codes}
    assert all(tuple(i.codes[f] for f in table.fields) in rows for i in idents)
    # A joint rate: women in a skirt or dress.
    w = table.counts / table.counts.sum()
    col = {f: j for j, f in enumerate(table.fields)}
    expected = w[(table.codes[:, col["gender"]] == 2) & (table.codes[:, col["clothes"]] == 1)].sum()
    got = np.mean([i.codes["gender"] == 2 and i.codes["clothes"] == 1 for i in idents])
    assert abs(got - expected) <= 4 * np.sqrt(expected * (1 - expected) / n)


def test_looks_follow_the_codes() -> None:
    idents = sample_identities(300, np.random.default_rng(9), lookalike_rate=0.2)
    twins = [i for i in idents if i.twin_of is not None]
    assert 30 <= len(twins) <= 90
    for t in twins:
        src = idents[t.twin_of - 1]
        assert t.codes == src.codes and t.look.upper_colour == src.look.upper_colour
        assert t.look.upper_rgb != src.look.upper_rgb or t.look.lower_rgb != src.look.lower_rgb
    for i in idents:
        named = [
            c
            for c in ("black", "blue", "gray", "green", "purple", "red", "white", "yellow")
            if i.has("up" + c)
        ]
        words = i.look.upper_colour.split("+")
        assert (words[0].startswith("other:") and not named) or sorted(words) == sorted(named)
        assert i.look.skirt == (i.codes["clothes"] == 1)
        assert (i.look.sleeve_end < 0.3) == i.has("up")
