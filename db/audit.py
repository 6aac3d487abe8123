"""The append-only audit log: who did what, when, to which ids.

Events are written in the same transaction as the change they describe, so the log and the data
can never disagree (a rolled-back change leaves no event, a committed one always has its event).
Nothing updates or deletes an event: the database refuses it (triggers from the migrations on
SQLite and PostgreSQL) and so does the ORM (:mod:`db.session`), for
backends without triggers.

Actions recorded by the store: ``crop.ingest``, ``ingest.finish``, ``crop.identity``,
``identity.create``, ``identity.rename``, ``identity.attributes``, ``identity.delete``,
``identity.restore``, ``model.register``, ``index.finish``,
``search``, ``case.create``, ``case.update``, ``case.delete``, ``case.add_item``, ``case.remove_item``,
``case.move_item``, ``case.verdict``, ``case.annotate``, ``case.annotation_update``,
``case.annotation_delete``, ``case.import``, ``case.export``.
"""

from __future__ import annotations

import csv
import getpass
import json
import os
import socket
from collections.abc import Iterable, Iterator
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.models import AuditEvent
from db.records import AuditEventInfo

if TYPE_CHECKING:
    from db.workspace import Workspace


@lru_cache(maxsize=1)
def _default_actor() -> tuple[str, str]:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = f"uid:{os.getuid()}" if hasattr(os, "getuid") else "unknown"
    return user, socket.gethostname()


def event_info(row: AuditEvent) -> AuditEventInfo:
    """The frozen record of an audit row."""
    return AuditEventInfo(
        id=row.id,
        at=row.at,
        actor=row.actor,
        host=row.host,
        action=row.action,
        entity=row.entity,
        entity_ids=tuple(row.entity_ids or ()),
        details=row.details,
    )


class AuditLog:
    """Reading, writing and exporting a workspace's audit events."""

    def __init__(self, ws: Workspace) -> None:
        self._ws = ws

    def add(
        self,
        session: Session,
        action: str,
        entity: str | None = None,
        ids: Iterable[int] = (),
        details: dict[str, Any] | None = None,
    ) -> None:
        """Append an event inside the caller's unit of work (committed with it)."""
        user, host = _default_actor()
        session.add(
            AuditEvent(
                actor=self._ws.actor or user,
                host=host,
                action=action,
                entity=entity,
                entity_ids=[int(i) for i in ids],
                details=details,
            )
        )

    def record(
        self,
        action: str,
        entity: str | None = None,
        ids: Iterable[int] = (),
        details: dict[str, Any] | None = None,
    ) -> None:
        """Append an event in a unit of work of its own (for actions that change nothing else)."""
        with self._ws.writing() as session:
            self.add(session, action, entity, ids, details)

    def count(self, action: str | None = None) -> int:
        stmt = select(func.count()).select_from(AuditEvent)
        if action is not None:
            stmt = stmt.where(AuditEvent.action == action)
        with self._ws.reading() as session:
            return int(session.scalar(stmt) or 0)

    def list(
        self,
        action: str | None = None,
        since: datetime | None = None,
        limit: int | None = None,
        offset: int = 0,
        newest_first: bool = False,
    ) -> list[AuditEventInfo]:
        """Events in the order they were written (or the reverse), optionally filtered."""
        stmt = select(AuditEvent)
        if action is not None:
            stmt = stmt.where(AuditEvent.action == action)
        if since is not None:
            stmt = stmt.where(AuditEvent.at >= since)
        stmt = stmt.order_by(AuditEvent.id.desc() if newest_first else AuditEvent.id).offset(offset)
        if limit is not None:
            stmt = stmt.limit(limit)
        with self._ws.reading() as session:
            return [event_info(row) for row in session.scalars(stmt)]

    def iter_all(self, batch: int = 1000) -> Iterator[AuditEventInfo]:
        """Every event in order, read in batches (each in its own short unit of work)."""
        last = 0
        while True:
            with self._ws.reading() as session:
                rows = session.scalars(
                    select(AuditEvent).where(AuditEvent.id > last).order_by(AuditEvent.id).limit(batch)
                ).all()
                infos = [event_info(row) for row in rows]
            if not infos:
                return
            yield from infos
            last = infos[-1].id

    def export(self, path: str | os.PathLike[str], fmt: str | None = None) -> int:
        """Write every event to ``path`` as JSON lines (``.jsonl``) or CSV (``.csv``).

        Returns:
            The number of events written.
        """
        path = Path(path)
        fmt = (fmt or path.suffix.lstrip(".") or "jsonl").lower()
        if fmt not in ("jsonl", "csv"):
            raise ValueError(f"unknown audit export format {fmt!r} (jsonl or csv)")
        tmp = path.with_name(path.name + ".tmp")
        n = 0
        with tmp.open("w", encoding="utf-8", newline="") as fh:
            if fmt == "jsonl":
                for ev in self.iter_all():
                    fh.write(json.dumps(ev.as_json(), sort_keys=True) + "\n")
                    n += 1
            else:
                writer = csv.writer(fh)
                writer.writerow(["id", "at", "actor", "host", "action", "entity", "entity_ids", "details"])
                for ev in self.iter_all():
                    d = ev.as_json()
                    writer.writerow(
                        [
                            d["id"],
                            d["at"],
                            d["actor"],
                            d["host"],
                            d["action"],
                            d["entity"],
                            " ".join(str(i) for i in d["entity_ids"]),
                            json.dumps(d["details"], sort_keys=True) if d["details"] is not None else "",
                        ]
                    )
                    n += 1
        os.replace(tmp, path)
        return n
