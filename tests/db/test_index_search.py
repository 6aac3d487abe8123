"""Indexing with an embedder, the feature cache, search, and the index/search/ingest commands."""

from __future__ import annotations

import importlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cli import jobs
from db.check import check_workspace
from db.features import load_features
from db.index import Embedder, index_missing
from db.ingest import IngestItem, ingest
from db.workspace import Workspace
from tests.db.imagefactory import HistogramEmbedder, image_bytes, person_image

PEOPLE = 5
VIEWS = 4


def _people(ws: Workspace, tmp_path: Path) -> list[int]:
    """PEOPLE identities x VIEWS crops each; the views of one person differ by slight noise."""
    folder = tmp_path / "people"
    folder.mkdir()
    items = []
    for p in range(PEOPLE):
        base = np.asarray(person_image(100 + p), dtype=np.int16)
        for v in range(VIEWS):
            noise = np.random.default_rng(1000 * p + v).integers(-6, 7, base.shape)
            img = np.clip(base + noise, 0, 255).astype(np.uint8)
            path = folder / f"p{p}_v{v}.png"
            path.write_bytes(image_bytes(Image.fromarray(img), "PNG"))
            items.append(IngestItem(str(path), camera=f"cam{v % 2}", identity=f"person {p}"))
    return list(ingest(ws, items).crop_ids)


def test_index_computes_only_what_is_missing_and_resumes(ws: Workspace, tmp_path: Path) -> None:
    ids = _people(ws, tmp_path)
    emb = HistogramEmbedder()
    assert isinstance(emb, Embedder)
    stops = iter([False, False, True])
    first = index_missing(ws, emb, batch_size=4, should_stop=lambda: next(stops))
    assert first.cancelled and first.computed == 8
    second = index_missing(ws, emb, batch_size=4)
    assert (second.computed, second.cancelled, second.failed) == (12, False, ())
    assert index_missing(ws, emb).computed == 0
    assert ws.embeddings.count(second.model_id) == len(ids)
    model = ws.models.get(second.model_id)
    assert (model.name, model.dim, model.file_hash) == ("histogram", emb.dim, emb.model_hash)


def test_a_crop_whose_file_vanished_is_reported(ws: Workspace, tmp_path: Path) -> None:
    ids = _people(ws, tmp_path)
    gone = ws.crops.get(ids[3])
    ws.images.original_path(gone.sha256, gone.format).unlink()
    summary = index_missing(ws, HistogramEmbedder())
    assert summary.computed == len(ids) - 1
    assert [f[0] for f in summary.failed] == [ids[3]] and "unreadable" in summary.failed[0][1]
    report = check_workspace(ws)
    assert (report.ok, report.missing_originals, report.crops) == (False, (ids[3],), len(ids))


def test_feature_cache_appends_and_rebuilds(ws: Workspace, tmp_path: Path) -> None:
    ids = _people(ws, tmp_path)
    emb = HistogramEmbedder()
    summary = index_missing(ws, emb, crop_ids=ids[:10])
    feats = load_features(ws, summary.model_id)
    assert feats.crop_ids.tolist() == ids[:10] and feats.vectors.dtype == np.float16
    stored = ws.embeddings.vectors(summary.model_id, ids[:10])
    assert np.array_equal(np.asarray(feats.vectors), np.stack([stored[i] for i in ids[:10]]))
    assert np.allclose(feats.sq_norms, (np.asarray(feats.vectors, np.float32) ** 2).sum(1), rtol=1e-5)
    folder = next((ws.root / "features").iterdir())
    vec_file = folder / "vectors.f16"
    inode = vec_file.stat().st_ino
    index_missing(ws, emb)
    feats = load_features(ws, summary.model_id)
    assert feats.crop_ids.tolist() == ids and vec_file.stat().st_ino == inode  # appended in place
    assert json.loads((folder / "manifest.json").read_text())["rows"] == len(ids)
    # Deleting a crop removes its embedding (cascade): the cache notices and rebuilds.
    from db.models import Crop

    with ws.writing() as s:
        s.delete(s.get(Crop, ids[0]))
    feats = load_features(ws, summary.model_id)
    assert feats.crop_ids.tolist() == ids[1:]
    # A crash that left extra bytes after the manifest's rows is repaired on the next append.
    with vec_file.open("ab") as fh:
        fh.write(b"\0" * 1000)
    assert load_features(ws, summary.model_id).crop_ids.tolist() == ids[1:]


def test_search_finds_the_same_person_first(ws: Workspace, tmp_path: Path) -> None:
    ids = _people(ws, tmp_path)
    emb = HistogramEmbedder()
    index_missing(ws, emb)
    hits = jobs.search(ws, emb, str(ids[0]), top=3, device="cpu")
    first = [h.crop_id for h in hits]
    assert [h.rank for h in hits] == [1, 2, 3]
    assert ids[0] not in [h.crop_id for h in hits]
    assert {h.identity for h in hits} == {"person 0"}
    assert all(a.distance <= b.distance for a, b in zip(hits, hits[1:], strict=False))
    # Camera filter, re-ranking, and a query image that is not in the workspace.
    hits = jobs.search(ws, emb, str(ids[0]), top=5, camera="cam1", rerank=True, device="cpu")
    assert (
        {h.camera for h in hits} == {"cam1"} and hits[0].identity == "person 0" and hits[0].score is not None
    )
    outside = tmp_path / "outside.png"
    outside.write_bytes((tmp_path / "people" / "p3_v2.png").read_bytes())
    hits = jobs.search(ws, emb, str(outside), top=1, device="cpu")
    assert hits[0].identity == "person 3" and hits[0].distance == pytest.approx(0.0, abs=1e-3)
    (ev,) = ws.audit.list(action="search")[:1]
    assert ev.details["query"] == ids[0] and list(ev.entity_ids) == first


def test_search_without_index_is_a_clear_error(ws: Workspace, tmp_path: Path) -> None:
    _people(ws, tmp_path)
    from db.errors import StoreError

    with pytest.raises(StoreError, match="run the index command first"):
        jobs.search(ws, HistogramEmbedder(), "1")


def _command(name: str, argv: list[str]) -> int:
    """Run a command through the real entry point, which turns user errors into exit status 2."""
    from cli.main import main

    return main([importlib.import_module(name).NAME, *argv])


def test_ingest_index_search_commands(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    ws_root = tmp_path / "ws"
    with Workspace.create(ws_root) as ws:
        _people(ws, tmp_path)
    (tmp_path / "more").mkdir()
    (tmp_path / "more" / "broken.jpg").write_bytes(b"\xff\xd8\xff")
    assert _command("cli.ingest", [str(ws_root), str(tmp_path / "more"), str(tmp_path / "people")]) == 1
    out = capsys.readouterr().out
    assert "added 0, duplicates 20, refused 1 (of 21 files" in out and "broken.jpg: " in out

    emb = HistogramEmbedder()
    monkeypatch.setattr(jobs, "load_embedder", lambda path, device=None: emb)
    model = tmp_path / "model.pt"
    model.write_bytes(b"weights")
    assert _command("cli.index", [str(ws_root), "--model", str(model), "--device", "cpu"]) == 0
    assert "computed 20, failed 0, indexed 20 crops of dimension 48" in capsys.readouterr().out
    assert _command("cli.search", [str(ws_root), "--model", str(model), "--query", "1", "--top", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["rank", "crop", "distance"] and len(lines) == 3
    assert lines[1].split()[:2] == ["1", lines[1].split()[1]] and "person 0" in lines[1]
    assert _command("cli.search", [str(ws_root), "--model", str(model), "--query", "nope.jpg"]) == 2
    assert "neither a crop id nor an image file" in capsys.readouterr().err
    assert _command("cli.audit", [str(ws_root), "--action", "search"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert " search crop[" in line and '"top": 2' in line
    assert _command("cli.audit", [str(ws_root), "--export", str(tmp_path / "audit.csv")]) == 0
    assert capsys.readouterr().out.startswith("exported ")
    assert _command("cli.audit", [str(tmp_path / "nowhere")]) == 2
    assert "no workspace at" in capsys.readouterr().err


def test_market_layout_ingest_keeps_identities_cameras_frames_attributes(
    tmp_path: Path, annotations_dir: Path
) -> None:
    root = tmp_path / "Market-1501"
    names = {
        "bounding_box_train": [
            "0002_c1s1_000451_03.jpg",
            "0002_c2s1_000301_01.jpg",
            "0007_c3s1_001201_02.jpg",
        ],
        "query": ["0001_c1s1_001051_00.jpg"],
        "bounding_box_test": ["0001_c2s1_000301_01.jpg", "0000_c1s1_000001_01.jpg", "-1_c1s1_000002_01.jpg"],
    }
    for n, (folder, files) in enumerate(names.items()):
        (root / folder).mkdir(parents=True)
        for i, name in enumerate(files):
            (root / folder / name).write_bytes(image_bytes(person_image(10 * n + i)))
    shutil.copy(annotations_dir / "market_attribute.mat", root)
    assert jobs.detect_layout(root) == "market1501"
    items, refused = jobs.ingest_items([str(root)])
    assert refused == [] and len(items) == 6  # junk (-1) is skipped by the loader
    with Workspace.create(tmp_path / "ws") as ws:
        ingest(ws, items)
        crops = {Path(c.source_path).name: c for c in ws.crops.page()}
        c = crops["0002_c2s1_000301_01.jpg"]
        assert (c.identity, c.camera, c.frame, c.split) == ("market1501/0002", "market1501/c2", 301, "train")
        assert crops["0000_c1s1_000001_01.jpg"].identity is None  # distractor
        assert crops["0001_c1s1_001051_00.jpg"].split == "query"
        attrs = ws.identities.by_name("market1501/0002").attributes
        assert (
            attrs["schema"] == "market1501"
            and attrs["values"]["upred"] == 1
            and attrs["values"]["hair"] == -1
        )


def test_csv_layout_keeps_the_names_of_its_index(tmp_path: Path) -> None:
    root = tmp_path / "mine"
    root.mkdir()
    for i in range(3):
        (root / f"img{i}.jpg").write_bytes(image_bytes(person_image(i)))
    (root / "index.csv").write_text(
        "path,identity,camera,timestamp,split,hat\n"
        "img0.jpg,alice,lobby,2024-01-02T03:04:05,query,1\n"
        "img1.jpg,bob,garage,,gallery,0\n"
        "img2.jpg,alice,garage,,gallery,yes\n"
    )
    items, _ = jobs.ingest_items([str(root)])
    with Workspace.create(tmp_path / "ws") as ws:
        ingest(ws, items)
        crops = {Path(c.source_path).name: c for c in ws.crops.page()}
    assert (crops["img0.jpg"].identity, crops["img0.jpg"].camera, crops["img0.jpg"].split) == (
        "alice",
        "lobby",
        "query",
    )
    assert crops["img0.jpg"].captured_at.isoformat() == "2024-01-02T03:04:05+00:00"
    assert crops["img1.jpg"].attributes["values"] == {"hat": -1}
    assert crops["img2.jpg"].identity == "alice"
