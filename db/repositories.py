"""Repositories: the store's query and update API, returning frozen records (:mod:`db.records`).

Each method is one unit of work in its own session, so callers on any thread get plain values
and never a live row. Changes that matter to an investigation (identity changes, model
registration, verdicts, exports) write their audit event in the same transaction.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
from sqlalchemy import Select, func, select, update
from sqlalchemy import delete as sql_delete
from sqlalchemy.orm import Session, selectinload

from db.audit import event_info
from db.errors import ImageRefused, NotFoundError, StoreError
from db.models import (
    ANNOTATION_KINDS,
    CASE_STATUSES,
    MODEL_KINDS,
    RUN_STATUSES,
    SIDES,
    VERDICTS,
    Annotation,
    AuditEvent,
    Camera,
    Case,
    CaseItem,
    Crop,
    Embedding,
    Identity,
    Model,
    TrainingRun,
    utcnow,
)
from db.records import (
    AnnotationInfo,
    AuditEventInfo,
    CameraInfo,
    CaseImport,
    CaseInfo,
    CaseItemInfo,
    CropInfo,
    IdentityInfo,
    ImportedModel,
    ModelInfo,
    RunInfo,
)

if TYPE_CHECKING:
    from db.workspace import Workspace

_T = TypeVar("_T")

#: Vectors are stored as little-endian float16: half the bytes of float32, and far more precision
#: than the distances between ReID embeddings need.
VECTOR_DTYPE = np.dtype("<f2")


def _chunks(values: Sequence[_T], size: int = 500) -> Iterable[Sequence[_T]]:
    # Keeps IN (...) lists under SQLite's bound-parameter limit.
    for i in range(0, len(values), size):
        yield values[i : i + size]


class _Repository:
    def __init__(self, ws: Workspace) -> None:
        self._ws = ws


# ---------------------------------------------------------------------- cameras and identities


def _camera_info(row: Camera, count: int | None = None) -> CameraInfo:
    return CameraInfo(id=row.id, name=row.name, description=row.description, crop_count=count)


def _identity_info(row: Identity, count: int | None = None) -> IdentityInfo:
    return IdentityInfo(
        id=row.id, name=row.name, attributes=row.attributes, notes=row.notes, crop_count=count
    )


def get_or_create_ids(
    session: Session, model: type[Camera] | type[Identity], names: Iterable[str]
) -> dict[str, int]:
    """Ids of the cameras or identities called ``names``, creating the missing ones.

    Safe against another program creating the same name at the same moment: the insert skips
    names that exist by then, and the ids are read back afterwards.
    """
    wanted = sorted(set(names))
    if not wanted:
        return {}
    found: dict[str, int] = {}
    for part in _chunks(wanted):
        found.update(session.execute(select(model.name, model.id).where(model.name.in_(part))).all())
    missing = [n for n in wanted if n not in found]
    if missing:
        insert_ignore(session, model, [{"name": n, "created_at": utcnow()} for n in missing], ["name"])
        for part in _chunks(missing):
            found.update(session.execute(select(model.name, model.id).where(model.name.in_(part))).all())
    return found


def insert_ignore(
    session: Session,
    model: type[Any],
    rows: list[dict[str, Any]],
    keys: list[str],
    returning: Sequence[Any] = (),
) -> list[tuple[Any, ...]]:
    """INSERT rows, skipping those that collide on the unique ``keys`` (SQLite and PostgreSQL).

    Returns:
        The ``returning`` columns of the rows actually inserted (empty when none are asked for).
    """
    if not rows:
        return []
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    elif dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        raise StoreError(f"database backend {dialect!r} is not supported (SQLite or PostgreSQL)")
    stmt = insert(model).on_conflict_do_nothing(index_elements=keys)
    if not returning:
        session.execute(stmt, rows)
        return []
    return [tuple(r) for r in session.execute(stmt.returning(*returning), rows)]


class CameraRepository(_Repository):
    def list(self) -> list[CameraInfo]:
        """Every camera with its number of crops, by name."""
        counts = select(Crop.camera_id, func.count().label("n")).group_by(Crop.camera_id).subquery()
        stmt = (
            select(Camera, func.coalesce(counts.c.n, 0))
            .outerjoin(counts, counts.c.camera_id == Camera.id)
            .order_by(Camera.name)
        )
        with self._ws.reading() as s:
            return [_camera_info(row, int(n)) for row, n in s.execute(stmt)]

    def by_name(self, name: str) -> CameraInfo | None:
        with self._ws.reading() as s:
            row = s.scalar(select(Camera).where(Camera.name == name))
            return _camera_info(row) if row else None

    def get_or_create(self, name: str) -> CameraInfo:
        with self._ws.writing() as s:
            cid = get_or_create_ids(s, Camera, [name])[name]
            return _camera_info(s.get_one(Camera, cid))


class IdentityRepository(_Repository):
    def list(self, offset: int = 0, limit: int | None = None) -> list[IdentityInfo]:
        """Identities with their number of crops, by name."""
        counts = select(Crop.identity_id, func.count().label("n")).group_by(Crop.identity_id).subquery()
        stmt = (
            select(Identity, func.coalesce(counts.c.n, 0))
            .outerjoin(counts, counts.c.identity_id == Identity.id)
            .order_by(Identity.name)
            .offset(offset)
        )
        if limit is not None:
            stmt = stmt.limit(limit)
        with self._ws.reading() as s:
            return [_identity_info(row, int(n)) for row, n in s.execute(stmt)]

    def get(self, identity_id: int) -> IdentityInfo:
        with self._ws.reading() as s:
            row = s.get(Identity, identity_id)
            if row is None:
                raise NotFoundError(f"no identity with id {identity_id}")
            return _identity_info(row)

    def by_name(self, name: str) -> IdentityInfo | None:
        with self._ws.reading() as s:
            row = s.scalar(select(Identity).where(Identity.name == name))
            return _identity_info(row) if row else None

    def create(
        self, name: str, attributes: dict[str, Any] | None = None, notes: str | None = None
    ) -> IdentityInfo:
        """Create an identity; raises :class:`StoreError` when the name is taken."""
        name = name.strip()
        if not name:
            raise StoreError("an identity needs a name")
        with self._ws.writing() as s:
            if s.scalar(select(Identity.id).where(Identity.name == name)) is not None:
                raise StoreError(f"an identity called {name!r} exists already")
            row = Identity(name=name, attributes=attributes, notes=notes)
            s.add(row)
            s.flush()
            self._ws.audit.add(s, "identity.create", "identity", [row.id], {"name": name})
            return _identity_info(row)

    def rename(self, identity_id: int, new_name: str) -> IdentityInfo:
        new_name = new_name.strip()
        if not new_name:
            raise StoreError("an identity needs a name")
        with self._ws.writing() as s:
            row = s.get(Identity, identity_id)
            if row is None:
                raise NotFoundError(f"no identity with id {identity_id}")
            taken = s.scalar(select(Identity.id).where(Identity.name == new_name, Identity.id != identity_id))
            if taken is not None:
                raise StoreError(f"an identity called {new_name!r} exists already")
            old = row.name
            row.name = new_name
            self._ws.audit.add(s, "identity.rename", "identity", [identity_id], {"from": old, "to": new_name})
            s.flush()
            return _identity_info(row)

    def delete(
        self, identity_id: int, *, if_empty: bool = False
    ) -> tuple[IdentityInfo, tuple[int, ...]] | None:
        """Delete an identity; its crops become unlabelled in the same transaction (audited).

        Args:
            identity_id: The identity.
            if_empty: Delete it only when no crop is under it (``None`` is returned otherwise).

        Returns:
            The deleted record (``crop_count``: how many crops were unlabelled) and the ids of those crops,
            which :meth:`restore` needs to undo the deletion.
        """
        with self._ws.writing() as s:
            row = s.get(Identity, identity_id)
            if row is None:
                raise NotFoundError(f"no identity with id {identity_id}")
            crops = list(s.scalars(select(Crop).where(Crop.identity_id == identity_id).order_by(Crop.id)))
            if crops and if_empty:
                return None
            crop_ids = tuple(c.id for c in crops)
            # Explicitly, not through the foreign key's ON DELETE SET NULL: the change is the same on a
            # backend that does not enforce foreign keys, and the audit event lists the crops.
            for crop in crops:
                crop.identity_id = None
            info = IdentityInfo(
                id=row.id, name=row.name, attributes=row.attributes, notes=row.notes, crop_count=len(crop_ids)
            )
            s.flush()
            s.delete(row)
            self._ws.audit.add(
                s,
                "identity.delete",
                "identity",
                [identity_id],
                {
                    "name": info.name,
                    "attributes": info.attributes,
                    "notes": info.notes,
                    "crops": list(crop_ids),
                },
            )
            return info, crop_ids

    def restore(self, identity: IdentityInfo, crop_ids: Sequence[int] = ()) -> IdentityInfo:
        """Bring a deleted identity back with its name, attributes, notes and crops (the undo of :meth:`delete`).

        It gets its old id back when that is free; SQLite hands the highest id out again, so an identity
        created since may hold it, and then the restored one gets a new id (the returned record has it).

        Raises:
            StoreError: Another identity has taken the name.
        """
        with self._ws.writing() as s:
            if s.scalar(select(Identity.id).where(Identity.name == identity.name)) is not None:
                raise StoreError(f"an identity called {identity.name!r} exists already: cannot restore it")
            same_id = s.get(Identity, identity.id) is None
            row = Identity(
                id=identity.id if same_id else None,
                name=identity.name,
                attributes=identity.attributes,
                notes=identity.notes,
            )
            s.add(row)
            s.flush()
            restored: list[int] = []
            for part in _chunks(list(crop_ids)):
                for crop in s.scalars(select(Crop).where(Crop.id.in_(part))):
                    crop.identity_id = row.id
                    restored.append(crop.id)
            self._ws.audit.add(
                s,
                "identity.restore",
                "identity",
                [row.id],
                {"name": row.name, "previous_id": identity.id, "crops": sorted(restored)},
            )
            s.flush()
            return _identity_info(row, len(restored))

    def set_attributes(self, identity_id: int, attributes: dict[str, Any] | None) -> IdentityInfo:
        with self._ws.writing() as s:
            row = s.get(Identity, identity_id)
            if row is None:
                raise NotFoundError(f"no identity with id {identity_id}")
            old = row.attributes
            row.attributes = attributes
            self._ws.audit.add(
                s, "identity.attributes", "identity", [identity_id], {"from": old, "to": attributes}
            )
            s.flush()
            return _identity_info(row)


# ---------------------------------------------------------------------- crops


def _crop_query() -> Select[tuple[Crop, str | None, str | None]]:
    return (
        select(Crop, Camera.name, Identity.name)
        .outerjoin(Camera, Crop.camera_id == Camera.id)
        .outerjoin(Identity, Crop.identity_id == Identity.id)
    )


def _crop_info(row: Crop, camera: str | None, identity: str | None) -> CropInfo:
    box = (row.bbox_x, row.bbox_y, row.bbox_w, row.bbox_h)
    return CropInfo(
        id=row.id,
        sha256=row.sha256,
        width=row.width,
        height=row.height,
        format=row.format,
        mode=row.mode,
        byte_size=row.byte_size,
        camera_id=row.camera_id,
        camera=camera,
        identity_id=row.identity_id,
        identity=identity,
        frame=row.frame,
        captured_at=row.captured_at,
        time_text=row.time_text,
        source_path=row.source_path,
        split=row.split,
        attributes=row.attributes,
        created_at=row.created_at,
        box=None if any(v is None for v in box) else box,  # type: ignore[arg-type]
    )


class CropRepository(_Repository):
    @staticmethod
    def _filter(
        stmt: Any, camera_id: int | None, identity_id: int | None, split: str | None, unlabelled: bool
    ) -> Any:
        if camera_id is not None:
            stmt = stmt.where(Crop.camera_id == camera_id)
        if identity_id is not None:
            stmt = stmt.where(Crop.identity_id == identity_id)
        if split is not None:
            stmt = stmt.where(Crop.split == split)
        if unlabelled:
            stmt = stmt.where(Crop.identity_id.is_(None))
        return stmt

    def count(
        self,
        camera_id: int | None = None,
        identity_id: int | None = None,
        split: str | None = None,
        unlabelled: bool = False,
    ) -> int:
        stmt = self._filter(select(func.count()).select_from(Crop), camera_id, identity_id, split, unlabelled)
        with self._ws.reading() as s:
            return int(s.scalar(stmt) or 0)

    def page(
        self,
        offset: int = 0,
        limit: int = 100,
        camera_id: int | None = None,
        identity_id: int | None = None,
        split: str | None = None,
        unlabelled: bool = False,
    ) -> list[CropInfo]:
        """One page of crops in id (import) order, for a virtualised gallery view."""
        stmt = self._filter(_crop_query(), camera_id, identity_id, split, unlabelled)
        stmt = stmt.order_by(Crop.id).offset(offset).limit(limit)
        with self._ws.reading() as s:
            return [_crop_info(*row) for row in s.execute(stmt)]

    def get(self, crop_id: int) -> CropInfo:
        with self._ws.reading() as s:
            row = s.execute(_crop_query().where(Crop.id == crop_id)).first()
        if row is None:
            raise NotFoundError(f"no crop with id {crop_id}")
        return _crop_info(*row)

    def get_many(self, crop_ids: Sequence[int]) -> list[CropInfo]:
        """The crops with these ids, in the order given; raises when one is missing."""
        found: dict[int, CropInfo] = {}
        with self._ws.reading() as s:
            for part in _chunks(list(crop_ids)):
                for row in s.execute(_crop_query().where(Crop.id.in_(part))):
                    found[row[0].id] = _crop_info(*row)
        missing = [i for i in crop_ids if i not in found]
        if missing:
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            raise NotFoundError(f"no crop with id {missing[0]}{more}")
        return [found[i] for i in crop_ids]

    def by_sha256(self, sha256: str) -> CropInfo | None:
        with self._ws.reading() as s:
            row = s.execute(_crop_query().where(Crop.sha256 == sha256)).first()
        return _crop_info(*row) if row else None

    def ids(
        self,
        camera_id: int | None = None,
        identity_id: int | None = None,
        split: str | None = None,
        unlabelled: bool = False,
    ) -> list[int]:
        """Crop ids in order, optionally filtered (for restricting a search)."""
        stmt = self._filter(select(Crop.id), camera_id, identity_id, split, unlabelled).order_by(Crop.id)
        with self._ws.reading() as s:
            return list(s.scalars(stmt))

    def predicted_ids(
        self,
        model_id: int,
        attribute: str,
        threshold: float = 0.5,
        camera_id: int | None = None,
        identity_id: int | None = None,
        unlabelled: bool = False,
    ) -> list[int]:
        """Crops that an interpreter predicts to have ``attribute`` (probability >= ``threshold``), in id order.

        The predictions are the interpreter's stored vectors (one probability per attribute of its schema,
        see :meth:`EmbeddingRepository.add`); crops it has not predicted yet are left out.

        Args:
            model_id: The interpreter.
            attribute: An attribute name of the interpreter's schema.
            threshold: The probability from which a crop counts as having the attribute.
            camera_id, identity_id, unlabelled: The filters of :meth:`page`.

        Raises:
            NotFoundError: No such model.
            StoreError: The model has no attribute schema, or the schema has no such attribute.
        """
        position = _attribute_position(self._ws.models.get(model_id), attribute)
        stmt = (
            select(Embedding.crop_id, Embedding.vector)
            .join(Crop, Crop.id == Embedding.crop_id)
            .where(Embedding.model_id == model_id)
        )
        stmt = self._filter(stmt, camera_id, identity_id, None, unlabelled).order_by(Embedding.crop_id)
        ids: list[int] = []
        with self._ws.reading() as s:
            result = s.execute(stmt)
            while rows := result.fetchmany(4096):
                crop_ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
                width = len(rows[0][1]) // VECTOR_DTYPE.itemsize
                if position >= width:
                    raise StoreError(
                        f"the stored predictions have {width} values, attribute {attribute!r} is number "
                        f"{position + 1} of the model's schema"
                    )
                probs = np.frombuffer(b"".join(r[1] for r in rows), dtype=VECTOR_DTYPE).reshape(len(rows), -1)
                ids.extend(int(i) for i in crop_ids[probs[:, position] >= threshold])
        return ids

    def all_sha256(self) -> set[str]:
        with self._ws.reading() as s:
            return set(s.scalars(select(Crop.sha256)))

    def set_identity(self, crop_ids: Sequence[int], identity_id: int | None) -> int:
        """Assign the crops to an identity (``None``: unlabelled). Returns how many changed."""
        with self._ws.writing() as s:
            if identity_id is not None and s.get(Identity, identity_id) is None:
                raise NotFoundError(f"no identity with id {identity_id}")
            changed: list[int] = []
            before: dict[int, int | None] = {}
            seen: set[int] = set()
            for part in _chunks(list(crop_ids)):
                for row in s.scalars(select(Crop).where(Crop.id.in_(part))):
                    seen.add(row.id)
                    if row.identity_id != identity_id:
                        before[row.id] = row.identity_id
                        row.identity_id = identity_id
                        changed.append(row.id)
            missing = set(crop_ids) - seen
            if missing:
                raise NotFoundError(f"no crop with id {min(missing)}")
            if changed:
                self._ws.audit.add(
                    s,
                    "crop.identity",
                    "crop",
                    changed,
                    {"identity_id": identity_id, "previous": {str(k): v for k, v in before.items()}},
                )
            return len(changed)


# ---------------------------------------------------------------------- models and embeddings


def _model_info(row: Model) -> ModelInfo:
    return ModelInfo(
        id=row.id,
        kind=row.kind,
        name=row.name,
        architecture=row.architecture,
        attribute_schema=row.attribute_schema,
        file_hash=row.file_hash,
        file_path=row.file_path,
        dim=row.dim,
        metrics=row.metrics,
        created_at=row.created_at,
    )


def _attribute_position(model: ModelInfo, attribute: str) -> int:
    names = [a.get("name") for a in (model.attribute_schema or {}).get("attributes", [])]
    if not names:
        raise StoreError(f"model {model.name!r} has no attribute schema: it predicts no attributes")
    if attribute not in names:
        raise StoreError(f"model {model.name!r} has no attribute {attribute!r} (it has {', '.join(names)})")
    return names.index(attribute)


class ModelRepository(_Repository):
    def register(
        self,
        kind: str,
        name: str,
        file_hash: str,
        architecture: str | None = None,
        attribute_schema: dict[str, Any] | None = None,
        dim: int | None = None,
        metrics: dict[str, Any] | None = None,
        file_path: str | None = None,
    ) -> ModelInfo:
        """Register a model by its file's hash; registering the same file again returns the first record."""
        if kind not in MODEL_KINDS:
            raise StoreError(f"model kind must be one of {MODEL_KINDS}, not {kind!r}")
        with self._ws.writing() as s:
            row = s.scalar(select(Model).where(Model.file_hash == file_hash))
            if row is not None:
                return _model_info(row)
            row = Model(
                kind=kind,
                name=name,
                file_hash=file_hash,
                architecture=architecture,
                attribute_schema=attribute_schema,
                dim=dim,
                metrics=metrics,
                file_path=file_path,
            )
            s.add(row)
            s.flush()
            self._ws.audit.add(
                s, "model.register", "model", [row.id], {"name": name, "kind": kind, "file_hash": file_hash}
            )
            return _model_info(row)

    def get(self, model_id: int) -> ModelInfo:
        with self._ws.reading() as s:
            row = s.get(Model, model_id)
            if row is None:
                raise NotFoundError(f"no model with id {model_id}")
            return _model_info(row)

    def by_hash(self, file_hash: str) -> ModelInfo | None:
        with self._ws.reading() as s:
            row = s.scalar(select(Model).where(Model.file_hash == file_hash))
            return _model_info(row) if row else None

    def list(self, kind: str | None = None) -> list[ModelInfo]:
        stmt = select(Model).order_by(Model.id)
        if kind is not None:
            stmt = stmt.where(Model.kind == kind)
        with self._ws.reading() as s:
            return [_model_info(row) for row in s.scalars(stmt)]

    def set_metrics(self, model_id: int, metrics: dict[str, Any]) -> ModelInfo:
        with self._ws.writing() as s:
            row = s.get(Model, model_id)
            if row is None:
                raise NotFoundError(f"no model with id {model_id}")
            row.metrics = metrics
            s.flush()
            return _model_info(row)


class EmbeddingRepository(_Repository):
    def count(self, model_id: int) -> int:
        with self._ws.reading() as s:
            return int(s.scalar(select(func.count()).where(Embedding.model_id == model_id)) or 0)

    def missing_crop_ids(self, model_id: int, crop_ids: Sequence[int] | None = None) -> list[int]:
        """Crops (all, or those given) that have no embedding under the model yet, in id order."""
        done = select(Embedding.crop_id).where(Embedding.model_id == model_id)
        stmt = select(Crop.id).where(Crop.id.not_in(done)).order_by(Crop.id)
        with self._ws.reading() as s:
            missing = list(s.scalars(stmt))
        if crop_ids is not None:
            wanted = set(crop_ids)
            missing = [i for i in missing if i in wanted]
        return missing

    @staticmethod
    def encode(vector: np.ndarray) -> bytes:
        return np.ascontiguousarray(vector, dtype=VECTOR_DTYPE).tobytes()

    @staticmethod
    def decode(blob: bytes) -> np.ndarray:
        return np.frombuffer(blob, dtype=VECTOR_DTYPE)

    def add(self, session: Session, model_id: int, crop_ids: Sequence[int], vectors: np.ndarray) -> None:
        """Store ``vectors`` (N, D) for ``crop_ids`` inside the caller's unit of work.

        An embedding that exists already (another program indexing at the same time) is kept.
        """
        if vectors.ndim != 2 or vectors.shape[0] != len(crop_ids):
            raise ValueError(f"expected ({len(crop_ids)}, D) vectors, got {vectors.shape}")
        now = utcnow()
        rows = [
            {"crop_id": int(c), "model_id": model_id, "vector": self.encode(v), "created_at": now}
            for c, v in zip(crop_ids, vectors, strict=True)
        ]
        insert_ignore(session, Embedding, rows, ["crop_id", "model_id"])

    def vectors(self, model_id: int, crop_ids: Sequence[int]) -> dict[int, np.ndarray]:
        """The stored vectors (float16) of the given crops that have one."""
        out: dict[int, np.ndarray] = {}
        with self._ws.reading() as s:
            for part in _chunks(list(crop_ids)):
                stmt = select(Embedding.crop_id, Embedding.vector).where(
                    Embedding.model_id == model_id, Embedding.crop_id.in_(part)
                )
                for crop_id, blob in s.execute(stmt):
                    out[crop_id] = self.decode(blob)
        return out


# ---------------------------------------------------------------------- training runs


def _run_info(row: TrainingRun) -> RunInfo:
    return RunInfo(
        id=row.id,
        kind=row.kind,
        status=row.status,
        model_id=row.model_id,
        target_model_id=row.target_model_id,
        config=row.config,
        metrics=row.metrics,
        output_dir=row.output_dir,
        started_at=row.started_at,
        finished_at=row.finished_at,
        created_at=row.created_at,
    )


class RunRepository(_Repository):
    def create(
        self,
        kind: str,
        config: dict[str, Any] | None = None,
        target_model_id: int | None = None,
        output_dir: str | None = None,
    ) -> RunInfo:
        if kind not in MODEL_KINDS:
            raise StoreError(f"run kind must be one of {MODEL_KINDS}, not {kind!r}")
        with self._ws.writing() as s:
            row = TrainingRun(
                kind=kind, config=config, target_model_id=target_model_id, output_dir=output_dir
            )
            s.add(row)
            s.flush()
            return _run_info(row)

    def update(
        self,
        run_id: int,
        status: str | None = None,
        metrics: dict[str, Any] | None = None,
        model_id: int | None = None,
    ) -> RunInfo:
        """Move a run along: ``running`` stamps the start, a final status stamps the end."""
        if status is not None and status not in RUN_STATUSES:
            raise StoreError(f"run status must be one of {RUN_STATUSES}, not {status!r}")
        with self._ws.writing() as s:
            row = s.get(TrainingRun, run_id)
            if row is None:
                raise NotFoundError(f"no training run with id {run_id}")
            if status is not None:
                row.status = status
                if status == "running" and row.started_at is None:
                    row.started_at = utcnow()
                if status in ("finished", "failed", "cancelled"):
                    row.finished_at = utcnow()
            if metrics is not None:
                row.metrics = metrics
            if model_id is not None:
                row.model_id = model_id
            s.flush()
            return _run_info(row)

    def get(self, run_id: int) -> RunInfo:
        with self._ws.reading() as s:
            row = s.get(TrainingRun, run_id)
            if row is None:
                raise NotFoundError(f"no training run with id {run_id}")
            return _run_info(row)

    def list(self) -> list[RunInfo]:
        with self._ws.reading() as s:
            return [_run_info(row) for row in s.scalars(select(TrainingRun).order_by(TrainingRun.id))]


# ---------------------------------------------------------------------- cases

#: Default of the update methods' keyword arguments: leave that field as it is (``None`` clears it).
_KEEP: Any = object()


def _annotation_info(row: Annotation) -> AnnotationInfo:
    return AnnotationInfo(
        id=row.id,
        case_item_id=row.case_item_id,
        side=row.side,
        kind=row.kind,
        geometry=row.geometry,
        label=row.label,
        color=row.color,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _item_info(row: CaseItem, annotations: Iterable[Annotation] = ()) -> CaseItemInfo:
    return CaseItemInfo(
        id=row.id,
        case_id=row.case_id,
        position=row.position,
        query_crop_id=row.query_crop_id,
        gallery_crop_id=row.gallery_crop_id,
        model_id=row.model_id,
        interpreter_id=row.interpreter_id,
        distance=row.distance,
        explanation=row.explanation,
        verdict=row.verdict,
        notes=row.notes,
        annotations=tuple(_annotation_info(a) for a in annotations),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _case_info(row: Case, items: tuple[CaseItemInfo, ...] = (), item_count: int | None = None) -> CaseInfo:
    return CaseInfo(
        id=row.id,
        title=row.title,
        description=row.description,
        status=row.status,
        created_by=row.created_by,
        items=items,
        created_at=row.created_at,
        updated_at=row.updated_at,
        reference=row.reference,
        analyst=row.analyst,
        item_count=len(items) if item_count is None else item_count,
    )


def _load_case(s: Session, case_id: int) -> CaseInfo:
    row = s.scalar(
        select(Case)
        .where(Case.id == case_id)
        .options(selectinload(Case.items).selectinload(CaseItem.annotations))
        .execution_options(populate_existing=True)
    )
    if row is None:
        raise NotFoundError(f"no case with id {case_id}")
    return _case_info(row, tuple(_item_info(item, item.annotations) for item in row.items))


def _touch(s: Session, case_id: int) -> None:
    """Move the case's modified time: a change to an item or an annotation is a change to the case."""
    s.execute(update(Case).where(Case.id == case_id).values(updated_at=utcnow()))


def _text(value: str | None, what: str, limit: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise StoreError(f"the {what} must be text, not {type(value).__name__}")
    value = value.strip()
    if len(value) > limit:
        raise StoreError(f"the {what} is too long ({len(value)} characters, at most {limit})")
    return value or None


def _check_annotation(side: str, kind: str, geometry: Any, label: str | None) -> dict[str, Any]:
    """The annotation's geometry if side, kind and geometry fit together; else a :class:`StoreError`."""
    if side not in SIDES:
        raise StoreError(f"an annotation's side must be one of {SIDES}, not {side!r}")
    keys = ANNOTATION_KINDS.get(kind)
    if keys is None:
        raise StoreError(f"an annotation's kind must be one of {tuple(ANNOTATION_KINDS)}, not {kind!r}")
    if not isinstance(geometry, dict):
        raise StoreError(f"a {kind} annotation needs its geometry as a mapping of {', '.join(keys)}")
    missing = [k for k in keys if k not in geometry]
    if missing:
        raise StoreError(f"a {kind} annotation needs {', '.join(keys)} (missing {', '.join(missing)})")
    for k in keys:
        v = geometry[k]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise StoreError(f"annotation coordinate {k!r} must be a finite number, not {v!r}")
    if kind in ("rect",) and (geometry["w"] < 0 or geometry["h"] < 0):
        raise StoreError("a rectangle's width and height cannot be negative")
    if kind == "text" and not (label or "").strip():
        raise StoreError("a text annotation needs its text (the label)")
    return dict(geometry)


class CaseRepository(_Repository):
    """Cases, their compared pairs (items) and the annotations drawn on them.

    Every change is audited in its own transaction (actions ``case.create``, ``case.update``,
    ``case.delete``, ``case.add_item``, ``case.remove_item``, ``case.move_item``, ``case.verdict``,
    ``case.annotate``, ``case.annotation_update``, ``case.annotation_delete``, ``case.import``,
    ``case.export``); the details hold the previous values, so that a caller can undo a change by
    applying them back. Changes to items and annotations move the case's modified time.
    """

    def create(
        self,
        title: str,
        description: str | None = None,
        reference: str | None = None,
        analyst: str | None = None,
    ) -> CaseInfo:
        """A new, empty, open case; ``analyst`` defaults to the workspace's actor."""
        title = _text(title, "title", 300) or ""
        if not title:
            raise StoreError("a case needs a title")
        reference = _text(reference, "reference", 100)
        analyst = _text(analyst, "analyst", 200)
        with self._ws.writing() as s:
            row = Case(
                title=title,
                description=description,
                reference=reference,
                analyst=analyst if analyst is not None else self._ws.actor,
                created_by=self._ws.actor,
            )
            s.add(row)
            s.flush()
            self._ws.audit.add(
                s, "case.create", "case", [row.id], {"title": row.title, "reference": row.reference}
            )
            return _case_info(row, (), 0)

    def get(self, case_id: int) -> CaseInfo:
        """The case with its items (in position order) and their annotations, loaded in one unit of work."""
        with self._ws.reading() as s:
            return _load_case(s, case_id)

    def get_item(self, item_id: int) -> CaseItemInfo:
        """One item with its annotations."""
        with self._ws.reading() as s:
            row = s.scalar(
                select(CaseItem).where(CaseItem.id == item_id).options(selectinload(CaseItem.annotations))
            )
            if row is None:
                raise NotFoundError(f"no case item with id {item_id}")
            return _item_info(row, row.annotations)

    def list(self) -> list[CaseInfo]:
        """Every case with its number of items but without the items (open one with :meth:`get`)."""
        counts = select(CaseItem.case_id, func.count().label("n")).group_by(CaseItem.case_id).subquery()
        stmt = (
            select(Case, func.coalesce(counts.c.n, 0))
            .outerjoin(counts, counts.c.case_id == Case.id)
            .order_by(Case.id)
        )
        with self._ws.reading() as s:
            return [_case_info(row, (), int(n)) for row, n in s.execute(stmt)]

    def update(
        self,
        case_id: int,
        *,
        title: str = _KEEP,
        description: str | None = _KEEP,
        reference: str | None = _KEEP,
        analyst: str | None = _KEEP,
        status: str = _KEEP,
    ) -> CaseInfo:
        """Change the fields given (``None`` clears an optional one); returns the whole case.

        The audit event ``case.update`` holds each changed field's previous and new value.
        """
        wanted: dict[str, Any] = {}
        if title is not _KEEP:
            wanted["title"] = _text(title, "title", 300)
            if not wanted["title"]:
                raise StoreError("a case needs a title")
        if description is not _KEEP:
            wanted["description"] = description if description is None else str(description)
        if reference is not _KEEP:
            wanted["reference"] = _text(reference, "reference", 100)
        if analyst is not _KEEP:
            wanted["analyst"] = _text(analyst, "analyst", 200)
        if status is not _KEEP:
            if status not in CASE_STATUSES:
                raise StoreError(f"a case's status must be one of {CASE_STATUSES}, not {status!r}")
            wanted["status"] = status
        with self._ws.writing() as s:
            row = s.get(Case, case_id)
            if row is None:
                raise NotFoundError(f"no case with id {case_id}")
            changes = {
                k: {"from": getattr(row, k), "to": v} for k, v in wanted.items() if getattr(row, k) != v
            }
            if changes:
                for k, change in changes.items():
                    setattr(row, k, change["to"])
                row.updated_at = utcnow()
                self._ws.audit.add(s, "case.update", "case", [case_id], {"changes": changes})
                s.flush()
            return _load_case(s, case_id)

    def delete(self, case_id: int) -> None:
        """Delete a case with its items and annotations; the crops stay in the workspace."""
        with self._ws.writing() as s:
            row = s.get(Case, case_id)
            if row is None:
                raise NotFoundError(f"no case with id {case_id}")
            n = s.scalar(select(func.count()).where(CaseItem.case_id == case_id)) or 0
            details = {"title": row.title, "reference": row.reference, "items": int(n)}
            s.expunge(row)
            s.execute(sql_delete(Case).where(Case.id == case_id))
            self._ws.audit.add(s, "case.delete", "case", [case_id], details)

    def add_item(
        self,
        case_id: int,
        query_crop_id: int,
        gallery_crop_id: int,
        distance: float | None = None,
        explanation: dict[str, Any] | None = None,
        model_id: int | None = None,
        interpreter_id: int | None = None,
    ) -> CaseItemInfo:
        """File a compared pair at the end of the case.

        Args:
            explanation: The snapshot of the explanation as shown (see ``cases.snapshot``).
        """
        with self._ws.writing() as s:
            if s.get(Case, case_id) is None:
                raise NotFoundError(f"no case with id {case_id}")
            for crop_id in (query_crop_id, gallery_crop_id):
                if s.get(Crop, crop_id) is None:
                    raise NotFoundError(f"no crop with id {crop_id}")
            last = s.scalar(select(func.max(CaseItem.position)).where(CaseItem.case_id == case_id))
            row = CaseItem(
                case_id=case_id,
                position=0 if last is None else int(last) + 1,
                query_crop_id=query_crop_id,
                gallery_crop_id=gallery_crop_id,
                distance=distance,
                explanation=explanation,
                model_id=model_id,
                interpreter_id=interpreter_id,
            )
            s.add(row)
            s.flush()
            _touch(s, case_id)
            self._ws.audit.add(
                s,
                "case.add_item",
                "case_item",
                [row.id],
                {"case_id": case_id, "query_crop_id": query_crop_id, "gallery_crop_id": gallery_crop_id},
            )
            return _item_info(row)

    def remove_item(self, item_id: int) -> CaseItemInfo:
        """Take an item (and its annotations) out of its case; the others close the gap.

        Returns:
            The removed item as it was, annotations included.
        """
        with self._ws.writing() as s:
            row = s.scalar(
                select(CaseItem).where(CaseItem.id == item_id).options(selectinload(CaseItem.annotations))
            )
            if row is None:
                raise NotFoundError(f"no case item with id {item_id}")
            removed = _item_info(row, row.annotations)
            # A bulk DELETE lets the database cascade to the annotations (the ORM would detach them).
            s.expunge(row)
            s.execute(sql_delete(CaseItem).where(CaseItem.id == item_id))
            rest = s.scalars(
                select(CaseItem).where(CaseItem.case_id == removed.case_id).order_by(CaseItem.position)
            ).all()
            for i, other in enumerate(rest):
                other.position = i
            _touch(s, removed.case_id)
            self._ws.audit.add(
                s,
                "case.remove_item",
                "case_item",
                [item_id],
                {
                    "case_id": removed.case_id,
                    "position": removed.position,
                    "query_crop_id": removed.query_crop_id,
                    "gallery_crop_id": removed.gallery_crop_id,
                    "verdict": removed.verdict,
                    "notes": removed.notes,
                    "annotations": len(removed.annotations),
                },
            )
            return removed

    def move_item(self, item_id: int, position: int) -> CaseInfo:
        """Move an item to ``position`` (0-based) in its case, shifting the others; returns the case."""
        with self._ws.writing() as s:
            row = s.get(CaseItem, item_id)
            if row is None:
                raise NotFoundError(f"no case item with id {item_id}")
            items = list(
                s.scalars(
                    select(CaseItem)
                    .where(CaseItem.case_id == row.case_id)
                    .order_by(CaseItem.position, CaseItem.id)
                )
            )
            if not 0 <= position < len(items):
                raise StoreError(f"position {position} is outside the case (0 to {len(items) - 1})")
            previous = items.index(row)
            items.insert(position, items.pop(previous))
            for i, item in enumerate(items):
                item.position = i
            if previous != position:
                _touch(s, row.case_id)
                self._ws.audit.add(
                    s,
                    "case.move_item",
                    "case_item",
                    [item_id],
                    {"case_id": row.case_id, "from": previous, "to": position},
                )
            s.flush()
            return _load_case(s, row.case_id)

    def set_verdict(self, item_id: int, verdict: str | None, notes: str | None = None) -> CaseItemInfo:
        """Record the analyst's verdict (``match``, ``no_match``, ``inconclusive`` or ``None``).

        ``notes`` replaces the item's notes when given (``None`` keeps them).
        """
        if verdict is not None and verdict not in VERDICTS:
            raise StoreError(f"verdict must be one of {VERDICTS}, not {verdict!r}")
        with self._ws.writing() as s:
            row = s.get(CaseItem, item_id)
            if row is None:
                raise NotFoundError(f"no case item with id {item_id}")
            previous, previous_notes = row.verdict, row.notes
            row.verdict = verdict
            if notes is not None:
                row.notes = notes
            s.flush()
            _touch(s, row.case_id)
            self._ws.audit.add(
                s,
                "case.verdict",
                "case_item",
                [item_id],
                {
                    "case_id": row.case_id,
                    "verdict": verdict,
                    "previous": previous,
                    "notes": notes,
                    "previous_notes": previous_notes if notes is not None else None,
                },
            )
            annotations = s.scalars(
                select(Annotation).where(Annotation.case_item_id == item_id).order_by(Annotation.id)
            )
            return _item_info(row, annotations)

    def add_annotation(
        self,
        item_id: int,
        side: str,
        kind: str,
        geometry: dict[str, Any],
        label: str | None = None,
        color: str | None = None,
    ) -> AnnotationInfo:
        """Pin a shape on one crop of an item.

        Args:
            side: ``query`` or ``gallery``: which crop.
            kind: ``rect`` (``x, y, w, h``), ``arrow`` (``x1, y1, x2, y2``: tail to head) or ``text``
                (``x, y``: top-left of the label, which is the text).
            geometry: Pixel coordinates of the original crop.
            label: Caption (the text of a ``text`` annotation).
            color: Any CSS/Qt colour name or ``#rrggbb``; ``None`` uses the report's default.
        """
        geometry = _check_annotation(side, kind, geometry, label)
        with self._ws.writing() as s:
            item = s.get(CaseItem, item_id)
            if item is None:
                raise NotFoundError(f"no case item with id {item_id}")
            row = Annotation(
                case_item_id=item_id, side=side, kind=kind, geometry=geometry, label=label, color=color
            )
            s.add(row)
            s.flush()
            _touch(s, item.case_id)
            self._ws.audit.add(
                s,
                "case.annotate",
                "annotation",
                [row.id],
                {"case_item_id": item_id, "case_id": item.case_id, "kind": kind, "side": side},
            )
            return _annotation_info(row)

    def update_annotation(
        self,
        annotation_id: int,
        *,
        side: str = _KEEP,
        kind: str = _KEEP,
        geometry: dict[str, Any] = _KEEP,
        label: str | None = _KEEP,
        color: str | None = _KEEP,
    ) -> AnnotationInfo:
        """Change the fields given; the audit event keeps the previous values (for undo)."""
        with self._ws.writing() as s:
            row = s.get(Annotation, annotation_id)
            if row is None:
                raise NotFoundError(f"no annotation with id {annotation_id}")
            new = {
                "side": row.side if side is _KEEP else side,
                "kind": row.kind if kind is _KEEP else kind,
                "geometry": row.geometry if geometry is _KEEP else geometry,
                "label": row.label if label is _KEEP else label,
                "color": row.color if color is _KEEP else color,
            }
            new["geometry"] = _check_annotation(new["side"], new["kind"], new["geometry"], new["label"])
            previous = {k: getattr(row, k) for k, v in new.items() if getattr(row, k) != v}
            if previous:
                for k in previous:
                    setattr(row, k, new[k])
                row.updated_at = utcnow()
                item = s.get_one(CaseItem, row.case_item_id)
                _touch(s, item.case_id)
                self._ws.audit.add(
                    s,
                    "case.annotation_update",
                    "annotation",
                    [annotation_id],
                    {
                        "case_item_id": row.case_item_id,
                        "case_id": item.case_id,
                        "previous": previous,
                        "changes": {k: new[k] for k in previous},
                    },
                )
                s.flush()
            return _annotation_info(row)

    def delete_annotation(self, annotation_id: int) -> AnnotationInfo:
        """Delete an annotation; returns it as it was (add it again to undo)."""
        with self._ws.writing() as s:
            row = s.get(Annotation, annotation_id)
            if row is None:
                raise NotFoundError(f"no annotation with id {annotation_id}")
            info = _annotation_info(row)
            item = s.get_one(CaseItem, row.case_item_id)
            s.delete(row)
            _touch(s, item.case_id)
            self._ws.audit.add(
                s,
                "case.annotation_delete",
                "annotation",
                [annotation_id],
                {
                    "case_item_id": info.case_item_id,
                    "case_id": item.case_id,
                    "side": info.side,
                    "kind": info.kind,
                    "geometry": info.geometry,
                    "label": info.label,
                    "color": info.color,
                },
            )
            return info

    def audit_trail(self, case_id: int, exports: bool = True) -> list[AuditEventInfo]:
        """The audit events about this case, its items and their annotations, in the order written.

        Args:
            exports: Include ``case.export`` events (saving a case file leaves them out, so that
                saving the same case twice writes the same trail).
        """
        with self._ws.reading() as s:
            if s.get(Case, case_id) is None:
                raise NotFoundError(f"no case with id {case_id}")
            item_ids = set(s.scalars(select(CaseItem.id).where(CaseItem.case_id == case_id)))
            rows = s.scalars(
                select(AuditEvent).where(AuditEvent.action.like("case.%")).order_by(AuditEvent.id)
            ).all()
            events = [event_info(r) for r in rows]
        out = []
        for ev in events:
            if not exports and ev.action == "case.export":
                continue
            details = ev.details or {}
            if ev.entity == "case":
                mine = case_id in ev.entity_ids
            elif "case_id" in details:
                mine = details["case_id"] == case_id
            elif ev.entity == "case_item":
                mine = bool(item_ids.intersection(ev.entity_ids))
            else:
                mine = details.get("case_item_id") in item_ids
            if mine:
                out.append(ev)
        return out

    def record_export(self, case_id: int, path: str, sha256: str, fmt: str) -> None:
        """Log that a case was exported (case file, HTML or PDF report)."""
        self._ws.audit.record(
            "case.export", "case", [case_id], {"path": path, "sha256": sha256, "format": fmt}
        )

    def import_case(self, data: CaseImport) -> CaseInfo:
        """Create a case from a case file's content; its crops come with it.

        Crops already in the workspace (same SHA-256) are reused; new ones are checked like any
        import and stored byte for byte, files first and rows after (as :mod:`db.ingest` does).
        Their camera names are kept, their identities are not (identity names belong to the
        workspace that gave them). Models the workspace does not know are registered by hash
        without a file, so that every item keeps its provenance. The case, its items and
        annotations, the new crops and models, and the ``case.import`` event are one transaction.

        Raises:
            StoreError: The data is inconsistent (a crop whose bytes do not match its hash, an
                item naming a crop the import lacks, a bad verdict or annotation) or a crop is
                not a usable image.
        """
        from db.imagestore import inspect_image
        from db.ingest import parse_time  # db.ingest imports this module

        title = _text(data.title, "title", 300)
        if not title:
            raise StoreError("the imported case has no title")
        if data.status not in CASE_STATUSES:
            raise StoreError(f"a case's status must be one of {CASE_STATUSES}, not {data.status!r}")
        crops = {c.sha256: c for c in data.crops}
        for c in data.crops:
            if hashlib.sha256(c.data).hexdigest() != c.sha256:
                raise StoreError(f"the crop {c.sha256[:12]}... does not match its SHA-256")
        for n, item in enumerate(data.items, 1):
            for sha in (item.query_sha256, item.gallery_sha256):
                if sha not in crops:
                    raise StoreError(f"item {n} names a crop the import does not carry ({sha[:12]}...)")
            if item.verdict is not None and item.verdict not in VERDICTS:
                raise StoreError(f"item {n}: verdict must be one of {VERDICTS}, not {item.verdict!r}")
            for a in item.annotations:
                _check_annotation(a.side, a.kind, a.geometry, a.label)
        with self._ws.reading() as s:
            known = set(s.scalars(select(Crop.sha256).where(Crop.sha256.in_(list(crops)))))
        new_rows: list[dict[str, Any]] = []
        cameras: set[str] = set()
        for c in data.crops:
            if c.sha256 in known:
                continue
            try:
                image, facts = inspect_image(c.data)
            except ImageRefused as exc:
                raise StoreError(f"the crop {c.sha256[:12]}... cannot be stored: {exc.reason}") from None
            # Files first, rows after: a kill in between leaves only an orphan file (db.ingest).
            self._ws.images.put_original(c.data, c.sha256, facts.format)
            self._ws.images.put_thumbnail(c.sha256, image)
            if c.camera:
                cameras.add(c.camera)
            new_rows.append(
                {
                    "sha256": c.sha256,
                    "width": facts.width,
                    "height": facts.height,
                    "format": facts.format,
                    "mode": facts.mode,
                    "byte_size": len(c.data),
                    "camera": c.camera,
                    "frame": c.frame,
                    "captured_at": parse_time(c.time_text),
                    "time_text": c.time_text,
                    "source_path": c.source_path,
                    "split": None,
                    "attributes": None,
                }
            )
        with self._ws.writing() as s:
            camera_ids = get_or_create_ids(s, Camera, cameras)
            now = utcnow()
            rows = [
                {**{k: v for k, v in r.items() if k != "camera"}, "camera_id": camera_ids.get(r["camera"]),
                 "created_at": now}
                for r in new_rows
            ]  # fmt: skip
            inserted = [
                i for _, i in insert_ignore(s, Crop, rows, ["sha256"], returning=(Crop.sha256, Crop.id))
            ]
            if inserted:
                self._ws.audit.add(
                    s, "crop.ingest", "crop", inserted, {"count": len(inserted), "source": "case"}
                )
            crop_ids: dict[str, int] = {}
            for part in _chunks(list(crops)):
                crop_ids.update(s.execute(select(Crop.sha256, Crop.id).where(Crop.sha256.in_(part))).all())
            model_ids: dict[str, int] = {}

            def model_id(m: ImportedModel | None) -> int | None:
                if m is None:
                    return None
                if m.file_hash not in model_ids:
                    row = s.scalar(select(Model).where(Model.file_hash == m.file_hash))
                    if row is None:
                        if m.kind not in MODEL_KINDS:
                            raise StoreError(f"model kind must be one of {MODEL_KINDS}, not {m.kind!r}")
                        row = Model(
                            kind=m.kind,
                            name=m.name,
                            file_hash=m.file_hash,
                            architecture=m.architecture,
                            attribute_schema=m.attribute_schema,
                            metrics=m.metrics,
                        )
                        s.add(row)
                        s.flush()
                        self._ws.audit.add(
                            s,
                            "model.register",
                            "model",
                            [row.id],
                            {"name": m.name, "kind": m.kind, "file_hash": m.file_hash, "source": "case"},
                        )
                    model_ids[m.file_hash] = row.id
                return model_ids[m.file_hash]

            case = Case(
                title=title,
                description=data.description,
                reference=_text(data.reference, "reference", 100),
                analyst=_text(data.analyst, "analyst", 200),
                status=data.status,
                created_by=self._ws.actor,
            )
            s.add(case)
            s.flush()
            for position, item in enumerate(data.items):
                row = CaseItem(
                    case_id=case.id,
                    position=position,
                    query_crop_id=crop_ids[item.query_sha256],
                    gallery_crop_id=crop_ids[item.gallery_sha256],
                    distance=item.distance,
                    explanation=item.explanation,
                    verdict=item.verdict,
                    notes=item.notes,
                    model_id=model_id(item.model),
                    interpreter_id=model_id(item.interpreter),
                )
                s.add(row)
                s.flush()
                for a in item.annotations:
                    s.add(
                        Annotation(
                            case_item_id=row.id,
                            side=a.side,
                            kind=a.kind,
                            geometry=dict(a.geometry),
                            label=a.label,
                            color=a.color,
                        )
                    )
            self._ws.audit.add(
                s,
                "case.import",
                "case",
                [case.id],
                {
                    **data.source,
                    "title": title,
                    "items": len(data.items),
                    "crops_added": len(inserted),
                    "crops_known": len(crops) - len(inserted),
                },
            )
            s.flush()
            return _load_case(s, case.id)
