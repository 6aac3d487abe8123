"""Plain frozen records the repositories return: safe to hand to the GUI and across threads.

None of them holds a session or a live ORM row, so reading an attribute never runs a query.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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
    """One stored crop; ``camera`` and ``identity`` are names (``None`` when unknown).

    ``frame`` is the frame number in the source video (or the one a dataset's file name gives) and
    ``box`` the crop's place in that frame as ``(x, y, w, h)`` pixels; ``box`` is ``None`` for crops
    that were not cut from a video by ``ingest-video``.
    """

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
    box: tuple[int, int, int, int] | None = None


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
    updated_at: datetime | None = None


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
    """A case; ``items`` is empty in lists (``item_count`` says how many there are).

    ``updated_at`` is the modified time of the case, its items or their annotations.
    """

    id: int
    title: str
    description: str | None
    status: str
    created_by: str | None
    items: tuple[CaseItemInfo, ...]
    created_at: datetime
    updated_at: datetime
    reference: str | None = None
    analyst: str | None = None
    item_count: int = 0


@dataclass(frozen=True)
class ImportedCrop:
    """A crop carried by a case file, to be stored in a workspace (deduplicated by SHA-256)."""

    sha256: str
    data: bytes = field(repr=False)
    camera: str | None = None
    frame: int | None = None
    time_text: str | None = None
    source_path: str = ""


@dataclass(frozen=True)
class ImportedAnnotation:
    side: str
    kind: str
    geometry: dict[str, Any]
    label: str | None = None
    color: str | None = None


@dataclass(frozen=True)
class ImportedModel:
    """Provenance of a model named by a case file (registered without its file when unknown)."""

    kind: str
    name: str
    file_hash: str
    architecture: str | None = None
    attribute_schema: dict[str, Any] | None = None
    metrics: dict[str, Any] | None = None


@dataclass(frozen=True)
class ImportedItem:
    query_sha256: str
    gallery_sha256: str
    distance: float | None
    explanation: dict[str, Any] | None
    verdict: str | None
    notes: str | None
    annotations: tuple[ImportedAnnotation, ...] = ()
    model: ImportedModel | None = None
    interpreter: ImportedModel | None = None


@dataclass(frozen=True)
class CaseImport:
    """Everything :meth:`db.repositories.CaseRepository.import_case` needs, as plain values."""

    title: str
    description: str | None
    reference: str | None
    analyst: str | None
    status: str
    items: tuple[ImportedItem, ...]
    crops: tuple[ImportedCrop, ...]
    #: Where it came from, for the audit log: ``{"file": ..., "sha256": ..., ...}``.
    source: dict[str, Any] = field(default_factory=dict)


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
