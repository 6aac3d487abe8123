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


def test_deleting_an_identity_unlabels_its_crops_and_restoring_brings_both_back(
    ws: Workspace, tmp_path: Path
) -> None:
    ids = _crops(ws, tmp_path)  # p0: ids[0:2], p1: ids[2:4], ids[4:6] unlabelled
    p0 = ws.identities.by_name("p0")
    ws.identities.set_attributes(p0.id, {"schema": "s", "values": {"hat": 1}})
    with pytest.raises(NotFoundError, match="no identity with id 999"):
        ws.identities.delete(999)
    assert ws.identities.delete(p0.id, if_empty=True) is None  # it has crops: kept
    assert ws.identities.by_name("p0") is not None

    deleted, crop_ids = ws.identities.delete(p0.id)
    assert (deleted.name, deleted.crop_count, crop_ids) == ("p0", 2, tuple(ids[0:2]))
    assert ws.identities.by_name("p0") is None
    assert [c.identity_id for c in ws.crops.get_many(ids[0:2])] == [None, None]
    assert ws.crops.count(unlabelled=True) == 4
    event = ws.audit.list(action="identity.delete")[0]
    assert event.entity_ids == (p0.id,) and event.details["crops"] == ids[0:2]
    assert event.details["attributes"] == {"schema": "s", "values": {"hat": 1}}

    restored = ws.identities.restore(deleted, crop_ids)
    assert (restored.id, restored.name, restored.crop_count) == (p0.id, "p0", 2)
    assert ws.identities.get(p0.id).attributes == {"schema": "s", "values": {"hat": 1}}
    assert [c.identity for c in ws.crops.get_many(ids[0:2])] == ["p0", "p0"]
    assert ws.audit.count("identity.restore") == 1
    with pytest.raises(StoreError, match="exists already"):
        ws.identities.restore(deleted, crop_ids)

    p1 = ws.identities.by_name("p1")
    ws.crops.set_identity(ids[2:4], None)  # p1 is empty now
    gone, none = ws.identities.delete(p1.id, if_empty=True)
    assert (gone.name, gone.crop_count, none) == ("p1", 0, ())
    # A new identity may be handed p1's id again (SQLite reuses the highest id): p1 comes back under another.
    other = ws.identities.create("Someone")
    back = ws.identities.restore(gone, ids[2:4])
    assert back.name == "p1" and back.crop_count == 2
    assert back.id != other.id and (back.id == p1.id) == (other.id != p1.id)
    assert {c.identity_id for c in ws.crops.get_many(ids[2:4])} == {back.id}


def test_crops_filter_by_predicted_attribute(ws: Workspace, tmp_path: Path) -> None:
    ids = _crops(ws, tmp_path)  # cameras c1, c2, c1, c2, c1, c2; p0 p0 p1 p1 - -
    schema = {"name": "s", "attributes": [{"name": "hat"}, {"name": "bag"}, {"name": "skirt"}]}
    interp = ws.models.register("interpreter", "interp", "cd" * 32, attribute_schema=schema)
    # hat: 0.9, 0.5 (exactly at the threshold), 0.49, 0.1, 0.7, and crop 6 not predicted yet.
    probs = np.array(
        [[0.9, 0.0, 1.0], [0.5, 0.2, 0.0], [0.49, 0.8, 0.0], [0.1, 0.6, 0.0], [0.7, 0.0, 0.0]],
        dtype=np.float32,
    )
    with ws.writing() as s:
        ws.embeddings.add(s, interp.id, ids[:5], probs)
    assert ws.crops.predicted_ids(interp.id, "hat") == [ids[0], ids[1], ids[4]]
    assert ws.crops.predicted_ids(interp.id, "bag") == [ids[2], ids[3]]
    assert ws.crops.predicted_ids(interp.id, "skirt") == [ids[0]]
    assert ws.crops.predicted_ids(interp.id, "hat", threshold=0.8) == [ids[0]]
    c1 = ws.cameras.by_name("c1")
    assert ws.crops.predicted_ids(interp.id, "hat", camera_id=c1.id) == [ids[0], ids[4]]
    p0 = ws.identities.by_name("p0")
    assert ws.crops.predicted_ids(interp.id, "hat", identity_id=p0.id) == [ids[0], ids[1]]
    assert ws.crops.predicted_ids(interp.id, "hat", unlabelled=True) == [ids[4]]
    with pytest.raises(StoreError, match="no attribute 'age'"):
        ws.crops.predicted_ids(interp.id, "age")
    target = ws.models.register("target", "t", "ef" * 32)
    with pytest.raises(StoreError, match="no attribute schema"):
        ws.crops.predicted_ids(target.id, "hat")
    with pytest.raises(NotFoundError):
        ws.crops.predicted_ids(999, "hat")
    assert ws.crops.ids(unlabelled=True) == ids[4:]
