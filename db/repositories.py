"""Repositories: the store's query and update API, returning frozen records (:mod:`db.records`).

Each method is one unit of work in its own session, so callers on any thread get plain values
and never a live row. Changes that matter to an investigation (identity changes, model
registration, verdicts, exports) write their audit event in the same transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, selectinload

from db.errors import NotFoundError, StoreError
from db.models import (
    MODEL_KINDS,
    RUN_STATUSES,
    SIDES,
    VERDICTS,
    Annotation,
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
    CameraInfo,
    CaseInfo,
    CaseItemInfo,
    CropInfo,
    IdentityInfo,
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
        self, camera_id: int | None = None, identity_id: int | None = None, split: str | None = None
    ) -> list[int]:
        """Crop ids in order, optionally filtered (for restricting a search)."""
        stmt = self._filter(select(Crop.id), camera_id, identity_id, split, False).order_by(Crop.id)
        with self._ws.reading() as s:
            return list(s.scalars(stmt))

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


class CaseRepository(_Repository):
    def create(self, title: str, description: str | None = None) -> CaseInfo:
        if not title.strip():
            raise StoreError("a case needs a title")
        with self._ws.writing() as s:
            row = Case(title=title.strip(), description=description, created_by=self._ws.actor)
            s.add(row)
            s.flush()
            self._ws.audit.add(s, "case.create", "case", [row.id], {"title": row.title})
            return CaseInfo(
                id=row.id,
                title=row.title,
                description=row.description,
                status=row.status,
                created_by=row.created_by,
                items=(),
                created_at=row.created_at,
                updated_at=row.updated_at,
            )

    def get(self, case_id: int) -> CaseInfo:
        """The case with its items and their annotations, loaded eagerly in one unit of work."""
        with self._ws.reading() as s:
            row = s.scalar(
                select(Case)
                .where(Case.id == case_id)
                .options(selectinload(Case.items).selectinload(CaseItem.annotations))
            )
            if row is None:
                raise NotFoundError(f"no case with id {case_id}")
            return CaseInfo(
                id=row.id,
                title=row.title,
                description=row.description,
                status=row.status,
                created_by=row.created_by,
                items=tuple(_item_info(item, item.annotations) for item in row.items),
                created_at=row.created_at,
                updated_at=row.updated_at,
            )

    def list(self) -> list[CaseInfo]:
        """Every case, without items (open one with :meth:`get`)."""
        with self._ws.reading() as s:
            return [
                CaseInfo(
                    id=r.id,
                    title=r.title,
                    description=r.description,
                    status=r.status,
                    created_by=r.created_by,
                    items=(),
                    created_at=r.created_at,
                    updated_at=r.updated_at,
                )
                for r in s.scalars(select(Case).order_by(Case.id))
            ]

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
        with self._ws.writing() as s:
            if s.get(Case, case_id) is None:
                raise NotFoundError(f"no case with id {case_id}")
            for crop_id in (query_crop_id, gallery_crop_id):
                if s.get(Crop, crop_id) is None:
                    raise NotFoundError(f"no crop with id {crop_id}")
            position = s.scalar(select(func.count()).where(CaseItem.case_id == case_id)) or 0
            row = CaseItem(
                case_id=case_id,
                position=int(position),
                query_crop_id=query_crop_id,
                gallery_crop_id=gallery_crop_id,
                distance=distance,
                explanation=explanation,
                model_id=model_id,
                interpreter_id=interpreter_id,
            )
            s.add(row)
            s.flush()
            self._ws.audit.add(
                s,
                "case.add_item",
                "case_item",
                [row.id],
                {"case_id": case_id, "query_crop_id": query_crop_id, "gallery_crop_id": gallery_crop_id},
            )
            return _item_info(row)

    def set_verdict(self, item_id: int, verdict: str | None, notes: str | None = None) -> CaseItemInfo:
        """Record the analyst's verdict (``match``, ``no_match``, ``inconclusive`` or ``None``)."""
        if verdict is not None and verdict not in VERDICTS:
            raise StoreError(f"verdict must be one of {VERDICTS}, not {verdict!r}")
        with self._ws.writing() as s:
            row = s.get(CaseItem, item_id)
            if row is None:
                raise NotFoundError(f"no case item with id {item_id}")
            previous = row.verdict
            row.verdict = verdict
            if notes is not None:
                row.notes = notes
            s.flush()
            self._ws.audit.add(
                s,
                "case.verdict",
                "case_item",
                [item_id],
                {"case_id": row.case_id, "verdict": verdict, "previous": previous, "notes": notes},
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
        if side not in SIDES:
            raise StoreError(f"side must be one of {SIDES}, not {side!r}")
        with self._ws.writing() as s:
            if s.get(CaseItem, item_id) is None:
                raise NotFoundError(f"no case item with id {item_id}")
            row = Annotation(
                case_item_id=item_id, side=side, kind=kind, geometry=geometry, label=label, color=color
            )
            s.add(row)
            s.flush()
            self._ws.audit.add(
                s, "case.annotate", "annotation", [row.id], {"case_item_id": item_id, "kind": kind}
            )
            return _annotation_info(row)

    def record_export(self, case_id: int, path: str, sha256: str, fmt: str) -> None:
        """Log that a case was exported (case file, HTML or PDF report)."""
        self._ws.audit.record(
            "case.export", "case", [case_id], {"path": path, "sha256": sha256, "format": fmt}
        )
