"""Plain frozen records the repositories return: safe to hand to the GUI and across threads.

None of them holds a session or a live ORM row, so reading an attribute never runs a query.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class CameraInfo:
    id: int
    name: str
    description: str | None
    crop_count: int | None = None


@dataclass(frozen=True)
class IdentityInfo:
    id: int
    name: str
    attributes: dict[str, Any] | None
    notes: str | None
    crop_count: int | None = None


@dataclass(frozen=True)
class CropInfo:
    """One stored crop; ``camera`` and ``identity`` are names (``None`` when unknown)."""

    id: int
    sha256: str
    width: int
    height: int
    format: str
    mode: str
    byte_size: int
    camera_id: int | None
    camera: str | None
    identity_id: int | None
    identity: str | None
    frame: int | None
    captured_at: datetime | None
    time_text: str | None
    source_path: str
    split: str | None
    attributes: dict[str, Any] | None
    created_at: datetime


@dataclass(frozen=True)
class ModelInfo:
    id: int
    kind: str
    name: str
    architecture: str | None
    attribute_schema: dict[str, Any] | None
    file_hash: str
    file_path: str | None
    dim: int | None
    metrics: dict[str, Any] | None
    created_at: datetime


@dataclass(frozen=True)
class RunInfo:
    id: int
    kind: str
    status: str
    model_id: int | None
    target_model_id: int | None
    config: dict[str, Any] | None
    metrics: dict[str, Any] | None
    output_dir: str | None
    started_at: datetime | None
    finished_at: datetime | None
    created_at: datetime


@dataclass(frozen=True)
class AnnotationInfo:
    id: int
    case_item_id: int
    side: str
    kind: str
    geometry: dict[str, Any]
    label: str | None
    color: str | None
    created_at: datetime


@dataclass(frozen=True)
class CaseItemInfo:
    id: int
    case_id: int
    position: int
    query_crop_id: int
    gallery_crop_id: int
    model_id: int | None
    interpreter_id: int | None
    distance: float | None
    explanation: dict[str, Any] | None
    verdict: str | None
    notes: str | None
    annotations: tuple[AnnotationInfo, ...]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class CaseInfo:
    id: int
    title: str
    description: str | None
    status: str
    created_by: str | None
    items: tuple[CaseItemInfo, ...]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class AuditEventInfo:
    """One audit entry: who did what, when, to which ids."""

    id: int
    at: datetime
    actor: str
    host: str | None
    action: str
    entity: str | None
    entity_ids: tuple[int, ...]
    details: dict[str, Any] | None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "actor": self.actor,
            "host": self.host,
            "action": self.action,
            "entity": self.entity,
            "entity_ids": list(self.entity_ids),
            "details": self.details,
        }
