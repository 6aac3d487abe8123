"""Editing cases in the store: fields, order, removal, annotations, deletion, and the audit of each."""

from __future__ import annotations

import pytest

from db.errors import NotFoundError, StoreError
from tests.cases.conftest import CaseSetup


def test_update_fields_moves_the_modified_time_and_audits(filed: CaseSetup) -> None:
    cases = filed.ws.cases
    before = cases.get(filed.case_id)
    after = cases.update(filed.case_id, reference="2026/0999", analyst=None, status="closed")
    assert (after.reference, after.analyst, after.status, after.title) == (
        "2026/0999",
        None,
        "closed",
        before.title,
    )
    assert after.updated_at > before.updated_at
    event = filed.ws.audit.list(action="case.update")[-1]
    assert event.details["changes"]["reference"] == {"from": "2026/0413", "to": "2026/0999"}
    assert set(event.details["changes"]) == {"reference", "analyst", "status"}
    with pytest.raises(StoreError, match="status must be one of"):
        cases.update(filed.case_id, status="archived")
    with pytest.raises(StoreError, match="needs a title"):
        cases.update(filed.case_id, title="  ")
    listed = {c.id: c for c in cases.list()}[filed.case_id]
    assert listed.item_count == 2 and listed.items == ()


def test_move_and_remove_items_keep_positions_dense(filed: CaseSetup) -> None:
    cases = filed.ws.cases
    first, second = filed.item_ids
    third = cases.add_item(filed.case_id, filed.crop_ids[0], filed.crop_ids[3])
    case = cases.move_item(third.id, 0)
    assert [i.id for i in case.items] == [third.id, first, second]
    assert [i.position for i in case.items] == [0, 1, 2]
    with pytest.raises(StoreError, match="outside the case"):
        cases.move_item(first, 3)
    removed = cases.remove_item(first)
    assert removed.verdict == "match" and len(removed.annotations) == 3
    case = cases.get(filed.case_id)
    assert [(i.id, i.position) for i in case.items] == [(third.id, 0), (second, 1)]
    assert filed.ws.audit.list(action="case.move_item")[-1].details == {
        "case_id": filed.case_id,
        "from": 2,
        "to": 0,
    }
    assert filed.ws.audit.list(action="case.remove_item")[-1].details["annotations"] == 3
    with pytest.raises(NotFoundError):
        cases.get_item(first)


def test_annotations_are_checked_edited_and_deleted_with_their_previous_values(filed: CaseSetup) -> None:
    cases = filed.ws.cases
    item = cases.get_item(filed.item_ids[0])
    rect = item.annotations[0]
    moved = cases.update_annotation(
        rect.id, geometry={"x": 20, "y": 16, "w": 30, "h": 48}, label="red jacket"
    )
    assert moved.geometry["x"] == 20 and moved.label == "red jacket" and moved.updated_at is not None
    event = filed.ws.audit.list(action="case.annotation_update")[-1]
    assert event.details["previous"] == {"geometry": {"x": 16, "y": 16, "w": 32, "h": 48}, "label": "jacket"}
    gone = cases.delete_annotation(rect.id)
    assert gone.label == "red jacket"
    assert [a.kind for a in cases.get_item(item.id).annotations] == ["arrow", "text"]
    with pytest.raises(StoreError, match="kind must be one of"):
        cases.add_annotation(item.id, "query", "circle", {"x": 1})
    with pytest.raises(StoreError, match="missing h"):
        cases.add_annotation(item.id, "query", "rect", {"x": 1, "y": 2, "w": 3})
    with pytest.raises(StoreError, match="finite number"):
        cases.add_annotation(item.id, "query", "arrow", {"x1": 1, "y1": 2, "x2": float("nan"), "y2": 0})
    with pytest.raises(StoreError, match="needs its text"):
        cases.add_annotation(item.id, "gallery", "text", {"x": 1, "y": 2})


def test_audit_trail_and_delete(filed: CaseSetup) -> None:
    cases = filed.ws.cases
    cases.record_export(filed.case_id, "/somewhere/x.amdcase", "00" * 32, "amdcase")
    trail = [e.action for e in cases.audit_trail(filed.case_id)]
    assert trail[:2] == ["case.create", "case.add_item"] and trail[-1] == "case.export"
    assert "case.export" not in [e.action for e in cases.audit_trail(filed.case_id, exports=False)]
    other = cases.create("Other")
    assert [e.action for e in cases.audit_trail(other.id)] == ["case.create"]
    cases.delete(filed.case_id)
    with pytest.raises(NotFoundError):
        cases.get(filed.case_id)
    assert filed.ws.crops.count() == 4
    assert filed.ws.audit.list(action="case.delete")[-1].details["items"] == 2
