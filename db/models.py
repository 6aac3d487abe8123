"""The workspace schema: SQLAlchemy 2.0 typed declarative models.

These classes never leave the store: repositories turn rows into frozen dataclasses
(:mod:`db.records`) before handing them to the GUI or another thread. Every relationship is
``lazy="raise"``, so a query the caller did not ask for fails loudly instead of running silently
on the UI thread; repositories load what they need with explicit ``selectinload``.

The schema is changed only through Alembic migrations (``db/migrations``); a test checks that the
migrations produce exactly these tables.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

#: Deterministic constraint names, so that migrations can refer to them on every backend
#: (SQLite's batch mode needs names to drop or alter a constraint).
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

MODEL_KINDS = ("target", "interpreter")
VERDICTS = ("match", "no_match", "inconclusive")
RUN_STATUSES = ("queued", "running", "finished", "failed", "cancelled")
CASE_STATUSES = ("open", "closed")
SIDES = ("query", "gallery")
#: Shapes an analyst can pin on a crop, with the geometry keys each needs (image pixel coordinates).
ANNOTATION_KINDS: dict[str, tuple[str, ...]] = {
    "rect": ("x", "y", "w", "h"),
    "arrow": ("x1", "y1", "x2", "y2"),
    "text": ("x", "y"),
}

# SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend.

    SQLite has no time zone type and returns naive values; this decorator stores UTC and hands
    back aware datetimes, so that comparisons never mix naive and aware values.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(timezone.utc)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dict[str, Any]: JSON, datetime: UTCDateTime}


class Camera(Base):
    __tablename__ = "cameras"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Identity(Base):
    __tablename__ = "identities"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    #: Attribute labels as ``{"schema": name, "values": {attribute: -1 | +1}}``.
    attributes: Mapped[dict[str, Any] | None]
    notes: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Crop(Base):
    """One person image, stored byte for byte in the image store under its SHA-256."""

    __tablename__ = "crops"
    __table_args__ = (
        CheckConstraint("width > 0 AND height > 0", name="positive_size"),
        Index("ix_crops_camera_id", "camera_id"),
        Index("ix_crops_identity_id", "identity_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    width: Mapped[int]
    height: Mapped[int]
    #: Pillow's format name ("JPEG", "PNG", ...); it also gives the stored file's extension.
    format: Mapped[str] = mapped_column(String(16))
    #: Pillow's mode of the original ("RGB", "CMYK", "I;16", "RGBA", "P", ...).
    mode: Mapped[str] = mapped_column(String(16))
    byte_size: Mapped[int] = mapped_column(BigInteger)
    camera_id: Mapped[int | None] = mapped_column(ForeignKey("cameras.id", ondelete="SET NULL"))
    identity_id: Mapped[int | None] = mapped_column(ForeignKey("identities.id", ondelete="SET NULL"))
    frame: Mapped[int | None]
    #: Capture time when it parses as ISO 8601; ``time_text`` keeps the string as given either way.
    captured_at: Mapped[datetime | None]
    time_text: Mapped[str | None] = mapped_column(String(100))
    source_path: Mapped[str] = mapped_column(Text)
    #: Dataset split the crop came from ("train", "query", "gallery"), when a layout says so.
    split: Mapped[str | None] = mapped_column(String(16))
    #: Per-image attribute labels, same layout as :attr:`Identity.attributes`.
    attributes: Mapped[dict[str, Any] | None]
    #: Where a crop cut from a video lies in its frame (``frame``), in frame pixels; ``None`` otherwise.
    bbox_x: Mapped[int | None]
    bbox_y: Mapped[int | None]
    bbox_w: Mapped[int | None]
    bbox_h: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    camera: Mapped[Camera | None] = relationship(lazy="raise")
    identity: Mapped[Identity | None] = relationship(lazy="raise")


class Model(Base):
    """A registered network: a target ReID model or an interpreter, identified by its file's hash."""

    __tablename__ = "models"
    __table_args__ = (CheckConstraint(_in("kind", MODEL_KINDS), name="kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    architecture: Mapped[str | None] = mapped_column(String(100))
    attribute_schema: Mapped[dict[str, Any] | None]
    file_hash: Mapped[str] = mapped_column(String(64), unique=True)
    file_path: Mapped[str | None] = mapped_column(Text)
    dim: Mapped[int | None]
    metrics: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Embedding(Base):
    """The vector of one crop under one model.

    The database holds every vector (float16 bytes, little-endian) so that it stays the single
    source of truth on any backend, inside the same transactions as the crops: nothing can be
    half-written, and a team sharing one PostgreSQL server sees the same vectors. Searching reads a
    memory-mapped matrix that :mod:`db.features` derives from these rows and refreshes
    incrementally; that file is a disposable cache.
    """

    __tablename__ = "embeddings"
    __table_args__ = (
        UniqueConstraint("crop_id", "model_id", name="uq_embeddings_crop_model"),
        Index("ix_embeddings_model_id_id", "model_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    crop_id: Mapped[int] = mapped_column(ForeignKey("crops.id", ondelete="CASCADE"))
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    vector: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TrainingRun(Base):
    __tablename__ = "training_runs"
    __table_args__ = (CheckConstraint(_in("status", RUN_STATUSES), name="status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="queued")
    #: The model the run produced, once registered.
    model_id: Mapped[int | None] = mapped_column(ForeignKey("models.id", ondelete="SET NULL"))
    #: The target model an interpreter run distils.
    target_model_id: Mapped[int | None] = mapped_column(ForeignKey("models.id", ondelete="SET NULL"))
    config: Mapped[dict[str, Any] | None]
    metrics: Mapped[dict[str, Any] | None]
    output_dir: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Case(Base):
    """An investigation: compared pairs with their explanations, verdicts, notes and annotations.

    ``updated_at`` is the case's modified time: the repository moves it on every change to the
    case, its items or their annotations.
    """

    __tablename__ = "cases"
    __table_args__ = (CheckConstraint(_in("status", CASE_STATUSES), name="status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str | None] = mapped_column(Text)
    #: The organisation's own reference number ("2026/0413"), free text.
    reference: Mapped[str | None] = mapped_column(String(100))
    #: The analyst in charge (``created_by`` is who created the record).
    analyst: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="open")
    created_by: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    items: Mapped[list[CaseItem]] = relationship(
        lazy="raise", back_populates="case", order_by="CaseItem.position", passive_deletes=True
    )


class CaseItem(Base):
    """A compared pair with the explanation as it was shown, the verdict and the notes."""

    __tablename__ = "case_items"
    __table_args__ = (
        CheckConstraint(f"verdict IS NULL OR {_in('verdict', VERDICTS)}", name="verdict"),
        Index("ix_case_items_case_id", "case_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(default=0)
    # A crop that is part of a case cannot be deleted (RESTRICT): the case is evidence.
    query_crop_id: Mapped[int] = mapped_column(ForeignKey("crops.id", ondelete="RESTRICT"))
    gallery_crop_id: Mapped[int] = mapped_column(ForeignKey("crops.id", ondelete="RESTRICT"))
    model_id: Mapped[int | None] = mapped_column(ForeignKey("models.id", ondelete="SET NULL"))
    interpreter_id: Mapped[int | None] = mapped_column(ForeignKey("models.id", ondelete="SET NULL"))
    distance: Mapped[float | None] = mapped_column(Float)
    #: The explanation snapshot (``cases.snapshot``): distance, components, shares, attribute names
    #: and labels, predicted attributes and compact attention maps.
    explanation: Mapped[dict[str, Any] | None]
    verdict: Mapped[str | None] = mapped_column(String(16))
    notes: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    case: Mapped[Case] = relationship(lazy="raise", back_populates="items")
    annotations: Mapped[list[Annotation]] = relationship(
        lazy="raise", back_populates="item", order_by="Annotation.id", passive_deletes=True
    )


class Annotation(Base):
    """A shape the analyst drew on one side of a compared pair (image pixel coordinates).

    ``kind`` is one of :data:`ANNOTATION_KINDS`; ``geometry`` holds that kind's keys.
    """

    __tablename__ = "annotations"
    __table_args__ = (
        CheckConstraint(_in("side", SIDES), name="side"),
        Index("ix_annotations_case_item_id", "case_item_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_item_id: Mapped[int] = mapped_column(ForeignKey("case_items.id", ondelete="CASCADE"))
    side: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(32))
    geometry: Mapped[dict[str, Any]]
    label: Mapped[str | None] = mapped_column(Text)
    color: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: When the annotation was last edited (``None``: never).
    updated_at: Mapped[datetime | None]

    item: Mapped[CaseItem] = relationship(lazy="raise", back_populates="annotations")


class AuditEvent(Base):
    """One append-only entry of the audit log.

    The database refuses UPDATE and DELETE on this table (triggers created by the migrations),
    and the ORM refuses to flush a changed or deleted event (:mod:`db.audit`). Entity ids are kept
    as JSON, not foreign keys, so that the log outlives what it talks about.
    """

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_action", "action"), Index("ix_audit_events_at", "at"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(200))
    host: Mapped[str | None] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64))
    entity: Mapped[str | None] = mapped_column(String(32))
    entity_ids: Mapped[list[int] | None] = mapped_column(JSON)
    details: Mapped[dict[str, Any] | None]
