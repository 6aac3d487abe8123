"""The audit log is append-only, readable and exportable."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from db.errors import AuditViolation
from db.models import AuditEvent
from db.workspace import Workspace


def test_events_are_recorded_with_who_when_what(ws: Workspace) -> None:
    ws.audit.record("search", "crop", [3, 1], {"top": 5})
    (ev,) = ws.audit.list()
    assert (ev.actor, ev.action, ev.entity, ev.entity_ids, ev.details) == (
        "tester",
        "search",
        "crop",
        (3, 1),
        {"top": 5},
    )
    assert ev.at.tzinfo is not None and ev.host


@pytest.mark.parametrize(
    "statement", ["UPDATE audit_events SET actor = 'mallory'", "DELETE FROM audit_events"]
)
def test_database_refuses_update_and_delete(ws: Workspace, statement: str) -> None:
    ws.audit.record("case.verdict", "case_item", [1], {"verdict": "match"})
    with pytest.raises(DBAPIError, match="append-only"):
        with ws.engine.begin() as conn:
            conn.execute(text(statement))
    (ev,) = ws.audit.list()
    assert ev.actor == "tester"


def test_postgresql_refuses_truncate(pg_database: str, tmp_path: Path) -> None:
    with Workspace.create(tmp_path / "ws", url=pg_database) as ws:
        ws.audit.record("x")
        with pytest.raises(DBAPIError, match="append-only"):
            with ws.engine.begin() as conn:
                conn.execute(text("TRUNCATE audit_events"))
        assert ws.audit.count() == 1


def test_orm_refuses_changes_before_any_sql(ws: Workspace) -> None:
    ws.audit.record("model.register", "model", [1])
    with pytest.raises(AuditViolation, match="cannot be changed"):
        with ws.writing() as s:
            s.scalars(select(AuditEvent)).one().actor = "mallory"
    with pytest.raises(AuditViolation, match="cannot be deleted"):
        with ws.writing() as s:
            s.delete(s.scalars(select(AuditEvent)).one())
    assert [e.actor for e in ws.audit.list()] == ["tester"]


def test_export_jsonl_and_csv(ws: Workspace, tmp_path: Path) -> None:
    ws.audit.record("a", "crop", [1, 2], {"k": "v"})
    ws.audit.record("b")
    assert ws.audit.export(tmp_path / "log.jsonl") == 2
    lines = [json.loads(x) for x in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [(x["action"], x["entity_ids"], x["details"]) for x in lines] == [
        ("a", [1, 2], {"k": "v"}),
        ("b", [], None),
    ]
    assert ws.audit.export(tmp_path / "log.csv") == 2
    rows = list(csv.DictReader((tmp_path / "log.csv").open()))
    assert [(r["action"], r["entity_ids"], r["details"]) for r in rows] == [
        ("a", "1 2", '{"k": "v"}'),
        ("b", "", ""),
    ]
    assert ws.audit.count() == 2 and ws.audit.count("a") == 1
    assert [e.action for e in ws.audit.list(newest_first=True, limit=1)] == ["b"]
