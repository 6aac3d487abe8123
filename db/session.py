"""The session class of every workspace, with the ORM-side guard of the audit log."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from db.errors import AuditViolation
from db.models import AuditEvent


class WorkspaceSession(Session):
    """A session on a workspace database. Refuses to flush a changed or deleted audit event."""


@event.listens_for(WorkspaceSession, "before_flush")
def _refuse_audit_changes(session: Session, flush_context: Any, instances: Any) -> None:
    # The database triggers refuse the same; this guard also covers backends without them and
    # fails before any SQL is sent.
    for obj in session.deleted:
        if isinstance(obj, AuditEvent):
            raise AuditViolation("audit events are append-only: they cannot be deleted")
    for obj in session.dirty:
        if isinstance(obj, AuditEvent) and session.is_modified(obj):
            raise AuditViolation("audit events are append-only: they cannot be changed")
