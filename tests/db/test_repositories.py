"""Repositories return frozen records, audit what matters, and never load lazily."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.exc import InvalidRequestError

from db.errors import NotFoundError, StoreError
from db.ingest import IngestItem, ingest
from db.models import Case, Crop
from db.records import CropInfo
from db.workspace import Workspace
from tests.db.imagefactory import write_jpegs


def _crops(ws: Workspace, tmp_path: Path, n: int = 6) -> list[int]:
    paths = write_jpegs(tmp_path / "in", n)
    items = [
        IngestItem(str(p), camera=f"c{i % 2 + 1}", identity=f"p{i // 2}" if i < 4 else None)
        for i, p in enumerate(paths)
    ]
    return list(ingest(ws, items).crop_ids)


def test_crop_records_are_frozen_and_detached(ws: Workspace, tmp_path: Path) -> None:
    ids = _crops(ws, tmp_path)
    crop = ws.crops.get(ids[0])
    assert isinstance(crop, CropInfo) and (crop.camera, crop.identity, crop.width, crop.height) == (
        "c1",
        "p0",
        64,
        128,
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        crop.identity = "someone else"  # type: ignore[misc]
    assert [c.id for c in ws.crops.get_many(ids[::-1])] == ids[::-1]
    with pytest.raises(NotFoundError, match="no crop with id 999"):
        ws.crops.get_many([ids[0], 999])
    assert ws.crops.by_sha256(crop.sha256) == crop


def test_relationships_refuse_to_load_lazily(ws: Workspace, tmp_path: Path) -> None:
    _crops(ws, tmp_path, 1)
    ws.cases.create("c")
    with ws.reading() as s:
        crop = s.scalars(select(Crop)).first()
        with pytest.raises(InvalidRequestError, match="lazy='raise'"):
            _ = crop.camera
        case = s.scalars(select(Case)).first()
        with pytest.raises(InvalidRequestError, match="lazy='raise'"):
            _ = case.items


def test_paging_counting_and_filters(ws: Workspace, tmp_path: Path) -> None:
    ids = _crops(ws, tmp_path)
    assert [c.id for c in ws.crops.page(offset=2, limit=3)] == ids[2:5]
    c1 = ws.cameras.by_name("c1")
    assert ws.crops.count() == 6 and ws.crops.count(camera_id=c1.id) == 3
    assert ws.crops.ids(camera_id=c1.id) == ids[0::2]
    assert ws.crops.count(unlabelled=True) == 2
    assert [(c.name, c.crop_count) for c in ws.cameras.list()] == [("c1", 3), ("c2", 3)]
    assert [(i.name, i.crop_count) for i in ws.identities.list()] == [("p0", 2), ("p1", 2)]


def test_identity_changes_are_audited(ws: Workspace, tmp_path: Path) -> None:
    ids = _crops(ws, tmp_path)
    ann = ws.identities.create("Ann", attributes={"schema": "s", "values": {"hat": 1}})
    with pytest.raises(StoreError, match="exists already"):
        ws.identities.create("Ann")
    assert ws.crops.set_identity(ids[4:], ann.id) == 2
    assert ws.crops.set_identity(ids[4:], ann.id) == 0  # nothing changed, nothing logged
    renamed = ws.identities.rename(ann.id, "Ann B.")
    assert renamed.name == "Ann B." and ws.crops.get(ids[5]).identity == "Ann B."
    ws.identities.set_attributes(ann.id, None)
    actions = [
        (e.action, e.entity_ids)
        for e in ws.audit.list()
        if not e.action.startswith(("crop.ingest", "ingest"))
    ]
    assert actions == [
        ("identity.create", (ann.id,)),
        ("crop.identity", tuple(ids[4:])),
        ("identity.rename", (ann.id,)),
        ("identity.attributes", (ann.id,)),
    ]
    assert ws.audit.list(action="identity.rename")[0].details == {"from": "Ann", "to": "Ann B."}


def test_models_register_once_and_embeddings_round_trip(ws: Workspace, tmp_path: Path) -> None:
    ids = _crops(ws, tmp_path, 3)
    m = ws.models.register(
        "target", "resnet50", "ab" * 32, architecture="resnet50", dim=4, metrics={"mAP": 0.5}
    )
    assert ws.models.register("target", "other name", "ab" * 32).id == m.id
    assert ws.audit.count("model.register") == 1
    with pytest.raises(StoreError, match="kind"):
        ws.models.register("oracle", "x", "cd" * 32)
    vecs = np.array([[1, 2, 3, 4], [0.5, -1, 0, 2]], dtype=np.float32)
    with ws.writing() as s:
        ws.embeddings.add(s, m.id, ids[:2], vecs)
    with ws.writing() as s:  # a second writer of the same (crop, model) keeps the first vector
        ws.embeddings.add(s, m.id, ids[:1], vecs[1:])
    assert ws.embeddings.count(m.id) == 2
    got = ws.embeddings.vectors(m.id, ids)
    assert set(got) == set(ids[:2]) and np.array_equal(got[ids[0]], vecs[0].astype(np.float16))
    assert ws.embeddings.missing_crop_ids(m.id) == ids[2:]


def test_training_runs(ws: Workspace) -> None:
    run = ws.runs.create("interpreter", config={"epochs": 60})
    assert run.status == "queued" and run.started_at is None
    run = ws.runs.update(run.id, status="running")
    assert run.started_at is not None and run.finished_at is None
    m = ws.models.register("interpreter", "amd", "ef" * 32)
    run = ws.runs.update(run.id, status="finished", metrics={"X-mAP_e": 74.3}, model_id=m.id)
    assert (run.status, run.model_id, run.metrics) == ("finished", m.id, {"X-mAP_e": 74.3})
    assert run.finished_at >= run.started_at
    with pytest.raises(StoreError):
        ws.runs.update(run.id, status="exploded")


def test_cases_items_verdicts_annotations(ws: Workspace, tmp_path: Path) -> None:
    ids = _crops(ws, tmp_path, 2)
    case = ws.cases.create("Robbery 12", "platform 3")
    item = ws.cases.add_item(case.id, ids[0], ids[1], distance=12.5, explanation={"components": [1.0, 2.0]})
    ws.cases.add_annotation(item.id, "query", "rect", {"x": 1, "y": 2, "w": 3, "h": 4}, label="bag")
    with pytest.raises(StoreError, match="verdict"):
        ws.cases.set_verdict(item.id, "probably")
    ws.cases.set_verdict(item.id, "match", notes="same shoes")
    full = ws.cases.get(case.id)
    (got,) = full.items
    assert (got.verdict, got.notes, got.distance, got.explanation) == (
        "match",
        "same shoes",
        12.5,
        {"components": [1.0, 2.0]},
    )
    assert [(a.side, a.kind, a.geometry, a.label) for a in got.annotations] == [
        ("query", "rect", {"x": 1, "y": 2, "w": 3, "h": 4}, "bag")
    ]
    ws.cases.record_export(case.id, "/tmp/x.case", "00" * 32, "case")
    assert [e.action for e in ws.audit.list() if e.action.startswith("case")] == [
        "case.create",
        "case.add_item",
        "case.annotate",
        "case.verdict",
        "case.export",
    ]
    assert ws.audit.list(action="case.verdict")[0].details["verdict"] == "match"
    with pytest.raises(NotFoundError):
        ws.cases.get(999)
