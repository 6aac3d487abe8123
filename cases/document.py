"""An opened case file as frozen records: what :func:`cases.archive.open_case` returns.

Everything here was checked when the file was opened (every member's SHA-256, the manifest's
layout); the member bytes are held in memory, so a document outlives the file it came from.
Times are ISO 8601 strings as written in the manifest.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from cases.snapshot import ExplanationData, decode_snapshot


@dataclass(frozen=True)
class CropEntry:
    """One crop carried by the case file (``member`` holds the original, byte for byte)."""

    sha256: str
    member: str
    format: str
    width: int
    height: int
    camera: str | None
    identity: str | None
    source_path: str | None
    time_text: str | None
    frame: int | None


@dataclass(frozen=True)
class ModelEntry:
    """A model's provenance; ``file_hash`` (SHA-256 of its checkpoint) identifies its exact version."""

    kind: str
    name: str
    file_hash: str
    architecture: str | None
    attribute_schema: dict[str, Any] | None
    metrics: dict[str, Any] | None
    registered_at: str | None


@dataclass(frozen=True)
class AnnotationEntry:
    """A shape on one crop, in the crop's pixel coordinates (see ``db.models.ANNOTATION_KINDS``)."""

    side: str
    kind: str
    geometry: dict[str, Any]
    label: str | None
    color: str | None
    created_at: str | None
    updated_at: str | None


@dataclass(frozen=True)
class OverlayEntry:
    """The overlay pictures of one attribute (the largest contributors are drawn)."""

    index: int
    label: str
    query_member: str
    gallery_member: str


@dataclass(frozen=True)
class ItemEntry:
    """One compared pair of the case, numbered from 1 in the case's order.

    ``explanation`` is the raw snapshot (see :mod:`cases.snapshot`), ``data`` its decoded form.
    """

    number: int
    source_id: int | None
    query: CropEntry
    gallery: CropEntry
    distance: float | None
    explanation: dict[str, Any] | None = field(repr=False)
    verdict: str | None
    notes: str | None
    annotations: tuple[AnnotationEntry, ...]
    model: ModelEntry | None
    interpreter: ModelEntry | None
    created_at: str | None
    updated_at: str | None
    explanation_member: str | None
    chart_member: str | None
    overlays: tuple[OverlayEntry, ...]

    @cached_property
    def data(self) -> ExplanationData | None:
        """The decoded explanation, or ``None`` when the pair was filed without one."""
        return None if self.explanation is None else decode_snapshot(self.explanation)

    def annotations_on(self, side: str) -> tuple[AnnotationEntry, ...]:
        return tuple(a for a in self.annotations if a.side == side)


@dataclass(frozen=True)
class CaseEntry:
    source_id: int | None
    title: str
    description: str | None
    reference: str | None
    analyst: str | None
    status: str
    created_by: str | None
    created_at: str | None
    updated_at: str | None


@dataclass(frozen=True)
class AuditEntry:
    """One event of the case's audit trail, as the saving workspace recorded it."""

    id: int
    at: str
    actor: str
    host: str | None
    action: str
    entity: str | None
    entity_ids: tuple[int, ...]
    details: dict[str, Any] | None


@dataclass(frozen=True)
class CaseDocument:
    """An opened, verified case file, or a workspace's case read for a report.

    Attributes:
        path: The file it was read from; ``None`` for a workspace's case that was not read from a
            saved case file (see ``workspace``).
        sha256: SHA-256 of the whole file; ``None`` when ``path`` is.
        format_version: The case file layout version.
        app_version: Version of the program that saved it.
        saved_at: When it was saved (ISO 8601); for a workspace's case, when it was read.
        saved_by: Who saved it.
        case: The case's own fields.
        items: The compared pairs, in order.
        models: Every model the items name.
        audit: The case's audit trail (without exports).
        members: Member name -> bytes (read-only view).
        workspace: The workspace folder a case was read from without a saved case file, else ``None``.
    """

    path: str | None
    sha256: str | None
    format_version: int
    app_version: str
    saved_at: str
    saved_by: str | None
    case: CaseEntry
    items: tuple[ItemEntry, ...]
    models: tuple[ModelEntry, ...]
    audit: tuple[AuditEntry, ...]
    members: Mapping[str, bytes] = field(repr=False, compare=False)
    workspace: str | None = None

    def crop_bytes(self, crop: CropEntry) -> bytes:
        """The original bytes of a crop."""
        return self.members[crop.member]

    def item_audit(self, item: ItemEntry) -> tuple[AuditEntry, ...]:
        """The trail's events about one item and its annotations."""
        if item.source_id is None:
            return ()
        out = []
        for ev in self.audit:
            details = ev.details or {}
            if (ev.entity == "case_item" and item.source_id in ev.entity_ids) or details.get(
                "case_item_id"
            ) == item.source_id:
                out.append(ev)
        return tuple(out)
