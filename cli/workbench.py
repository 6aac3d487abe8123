"""A workspace opened for interactive work: its models, search, explanations, verdicts and identities.

Qt-free, so that the desktop application, a headless command and a test call the same code. Every
method may block (database, model forward) and is meant to run on a worker thread; the models are
loaded on first use, once, under a lock, so that two workers asking at the same time share one copy.
Identity changes return what they replaced, so that a caller can undo them with :func:`restore`.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from db.errors import NotFoundError, StoreError
from db.records import CaseItemInfo, CropInfo, IdentityInfo, ModelInfo
from db.workspace import Workspace

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

    from amd.explain import Explainer, Explanation, TopShare
    from db.index import Embedder, IndexSummary
    from db.ingest import IngestSummary

#: Title of the case that keeps verdicts given outside any named case.
UNFILED_CASE = "Unfiled"
#: The verdict words of the comparison view -> the store's.
VERDICT_CODES = {
    "match": "match",
    "no match": "no_match",
    "no_match": "no_match",
    "inconclusive": "inconclusive",
}

Progress = Callable[[int, int, str], None]
Stop = Callable[[], bool]


@dataclass(frozen=True)
class ModelPair:
    """The models a workspace is worked with.

    Attributes:
        target: The registered target (ReID) model, or ``None`` when none is usable.
        interpreter: The registered interpreter distilled from ``target``, or ``None``.
        problem: Why a model is missing, in words for the user ("" when both are there).
    """

    target: ModelInfo | None
    interpreter: ModelInfo | None
    problem: str = ""


@dataclass(frozen=True)
class DeletedIdentity:
    """An identity removed from the store, with what :func:`undelete` needs to bring it back.

    Attributes:
        identity: The record as it was (``crop_count``: crops that were unlabelled with it).
        crop_ids: Those crops.
    """

    identity: IdentityInfo
    crop_ids: tuple[int, ...]


@dataclass(frozen=True)
class ResultRow:
    """One ranked search result with its crop record (for the thumbnail and the captions)."""

    rank: int
    distance: float
    crop: CropInfo


def default_device() -> str:
    """``cuda`` when a GPU is usable, else ``cpu``."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def register_checkpoint(ws: Workspace, path: str | Path, info: Any, name: str | None = None) -> ModelInfo:
    """Register one checkpoint file (``info``: its :class:`amd.models.CheckpointInfo`) under its hash.

    A target is described by its backbone and embedding size, an interpreter by its map mode; ``name``
    defaults to the checkpoint's own name.
    """
    arch = info.architecture
    target = info.kind == "target"
    return ws.models.register(
        kind=info.kind,
        name=name or info.name,
        file_hash=info.sha256,
        architecture=str(arch.get("backbone" if target else "map_mode") or "") or None,
        attribute_schema=info.schema.to_dict() if info.schema is not None else None,
        dim=int(arch["embedding_dim"]) if target and "embedding_dim" in arch else None,
        metrics=dict(info.metrics) or None,
        file_path=str(Path(path).resolve()),
    )


def register_models(ws: Workspace, target_path: str | Path, interpreter_path: str | Path | None) -> ModelPair:
    """Register a target (and its interpreter) in the workspace by their files' hashes.

    Raises:
        amd.models.checkpoint.CheckpointError: A file is not a usable checkpoint, or the interpreter was
            distilled from another target.
    """
    from amd.errors import AmdError
    from amd.models import read_info

    info = read_info(target_path)
    if info.kind != "target":
        raise AmdError(f"{target_path} is {info.kind!r} checkpoint, not a target model")
    target = register_checkpoint(ws, target_path, info)
    interpreter = None
    if interpreter_path is not None:
        iinfo = read_info(interpreter_path)
        if iinfo.kind != "interpreter":
            raise AmdError(f"{interpreter_path} is {iinfo.kind!r} checkpoint, not an interpreter")
        if iinfo.target_sha256 != info.sha256:
            raise AmdError(f"{interpreter_path} was distilled from another target model than {target_path}")
        interpreter = register_checkpoint(ws, interpreter_path, iinfo)
    return ModelPair(target, interpreter)


def find_models(ws: Workspace, prefer: tuple[str, str | None] | None = None) -> ModelPair:
    """The models to work with: the preferred pair when it is still usable, else the newest.

    The newest is the newest registered target whose file is present, with the newest interpreter bound
    to it. An interpreter belongs to a target when its checkpoint names the target file's hash.

    Args:
        ws: The workspace.
        prefer: The file hashes of a target and its interpreter chosen before (see :func:`select_models`);
            ignored when the target is gone. An interpreter that is gone (or ``None``) is replaced by the
            newest one bound to the target.
    """
    from amd.models import read_info

    if prefer is not None and prefer[0]:
        try:
            return select_models(ws, prefer[0], prefer[1])
        except StoreError:
            if prefer[1] is not None:
                try:
                    return select_models(ws, prefer[0], None, bind_newest=True)
                except StoreError:
                    pass
    targets = [m for m in reversed(ws.models.list("target")) if m.file_path and Path(m.file_path).is_file()]
    if not targets:
        known = ws.models.list("target")
        if known:
            return ModelPair(
                None, None, f"the model file of {known[-1].name!r} is missing ({known[-1].file_path})"
            )
        return ModelPair(None, None, "no model is registered in this workspace")
    interpreters = [
        m for m in reversed(ws.models.list("interpreter")) if m.file_path and Path(m.file_path).is_file()
    ]
    for target in targets:
        for interp in interpreters:
            try:
                if read_info(interp.file_path).target_sha256 == target.file_hash:
                    return ModelPair(target, interp)
            except Exception:  # an unreadable interpreter file is skipped, the others may do
                continue
    return ModelPair(targets[0], None, f"no interpreter for {targets[0].name!r} is registered")


@dataclass(frozen=True)
class ModelChoice:
    """A target with one of its interpreters (or none), as the model chooser lists them.

    Attributes:
        target: The registered target.
        interpreter: An interpreter bound to it, or ``None`` (the row of a target without one).
        input_size: (H, W) the target was trained at, or ``None`` when its file cannot be read.
        indexed: Crops whose target vectors are stored.
        predicted: Crops whose attribute predictions by ``interpreter`` are stored.
        problem: Why the pair cannot be used ("" when it can).
    """

    target: ModelInfo
    interpreter: ModelInfo | None
    input_size: tuple[int, int] | None
    indexed: int
    predicted: int
    problem: str = ""

    @property
    def key(self) -> tuple[str, str | None]:
        """The file hashes that name the pair (see :func:`select_models`)."""
        return self.target.file_hash, self.interpreter.file_hash if self.interpreter else None

    @property
    def usable(self) -> bool:
        return not self.problem


_INFO_CACHE: dict[tuple[str, int, int], Any] = {}
_INFO_LOCK = threading.Lock()


def _checkpoint_info(path: str) -> Any:
    """A checkpoint's metadata, read once per file version (reading it loads the whole file)."""
    from amd.models import read_info

    stat = Path(path).stat()
    key = (str(Path(path).resolve()), stat.st_mtime_ns, stat.st_size)
    with _INFO_LOCK:
        if key in _INFO_CACHE:
            return _INFO_CACHE[key]
    info = read_info(path)
    with _INFO_LOCK:
        _INFO_CACHE[key] = info
    return info


def _present(model: ModelInfo) -> bool:
    return bool(model.file_path) and Path(str(model.file_path)).is_file()


def model_choices(ws: Workspace) -> list[ModelChoice]:
    """Every registered target with each interpreter bound to it, newest target first.

    A target without a usable interpreter gets one row with ``interpreter=None``. Reads the checkpoints'
    metadata (once per file), so it belongs on a worker.
    """
    bound: dict[str, list[ModelInfo]] = {}
    for interp in reversed(ws.models.list("interpreter")):
        if not _present(interp):
            continue
        try:
            target_hash = _checkpoint_info(str(interp.file_path)).target_sha256
        except Exception:  # an unreadable interpreter file cannot be offered
            continue
        bound.setdefault(str(target_hash), []).append(interp)
    choices: list[ModelChoice] = []
    for target in reversed(ws.models.list("target")):
        indexed = ws.embeddings.count(target.id)
        size, problem = None, ""
        if not _present(target):
            problem = f"the model file is missing ({target.file_path})"
        else:
            try:
                size = tuple(_checkpoint_info(str(target.file_path)).input_size)
            except Exception as exc:  # the reason is shown in the row
                problem = str(exc)
        interps = bound.get(target.file_hash, []) if not problem else []
        for interp in interps:
            choices.append(
                ModelChoice(target, interp, size, indexed, ws.embeddings.count(interp.id), problem)
            )
        if not interps:
            choices.append(ModelChoice(target, None, size, indexed, 0, problem))
    return choices


def select_models(
    ws: Workspace, target_hash: str, interpreter_hash: str | None, bind_newest: bool = False
) -> ModelPair:
    """The registered target and interpreter with these file hashes, checked to be usable together.

    Args:
        ws: The workspace.
        target_hash: SHA-256 of the target's file.
        interpreter_hash: SHA-256 of the interpreter's file, or ``None`` for the target alone.
        bind_newest: With ``interpreter_hash=None``, take the newest interpreter bound to the target.

    Raises:
        StoreError: A model is not registered, its file is missing, or the interpreter was distilled from
            another target.
    """
    by_hash = {m.file_hash: m for m in ws.models.list()}
    target = by_hash.get(target_hash)
    if target is None or target.kind != "target":
        raise StoreError(
            f"no target model with SHA-256 {target_hash[:12]}... is registered in this workspace"
        )
    if not _present(target):
        raise StoreError(f"the model file of {target.name!r} is missing ({target.file_path})")
    if interpreter_hash is None:
        if bind_newest:
            for choice in model_choices(ws):
                if choice.target.id == target.id and choice.interpreter is not None:
                    return ModelPair(target, choice.interpreter)
        return ModelPair(target, None, f"no interpreter for {target.name!r} is chosen")
    interpreter = by_hash.get(interpreter_hash)
    if interpreter is None or interpreter.kind != "interpreter":
        raise StoreError(
            f"no interpreter with SHA-256 {interpreter_hash[:12]}... is registered in this workspace"
        )
    if not _present(interpreter):
        raise StoreError(f"the model file of {interpreter.name!r} is missing ({interpreter.file_path})")
    try:
        belongs = _checkpoint_info(str(interpreter.file_path)).target_sha256 == target.file_hash
    except Exception as exc:
        raise StoreError(f"{interpreter.file_path}: {exc}") from None
    if not belongs:
        raise StoreError(f"{interpreter.name!r} was distilled from another target model than {target.name!r}")
    return ModelPair(target, interpreter)


def pair_for_model(ws: Workspace, model: ModelInfo) -> ModelPair:
    """The pair to use for a newly registered model: a target with its newest interpreter, or an
    interpreter with the target it was distilled from.

    Raises:
        StoreError: See :func:`select_models`.
    """
    if model.kind == "target":
        return select_models(ws, model.file_hash, None, bind_newest=True)
    if not _present(model):
        raise StoreError(f"the model file of {model.name!r} is missing ({model.file_path})")
    try:
        target_hash = _checkpoint_info(str(model.file_path)).target_sha256
    except Exception as exc:
        raise StoreError(f"{model.file_path}: {exc}") from None
    return select_models(ws, str(target_hash), model.file_hash)


def import_models(
    ws: Workspace, target_path: str | Path | None, interpreter_path: str | Path | None = None
) -> ModelPair:
    """Check model files completely, then register them (nothing is registered when one is refused).

    Both files are loaded on the CPU, so that a file whose weights do not fit its declared architecture
    is refused now rather than at the first search. Without ``target_path``, the interpreter's target
    must be registered already.

    Raises:
        amd.errors.AmdError: A file is refused; the engine's message says why.
        StoreError: No file is given, or the interpreter's target is not registered.
    """
    from amd.models import load_interpreter, load_target, read_info

    if not target_path and not interpreter_path:
        raise StoreError("choose a target model file (and optionally its interpreter)")
    if not target_path:
        iinfo = read_info(str(interpreter_path))
        known = [m for m in ws.models.list("target") if m.file_hash == iinfo.target_sha256 and _present(m)]
        if iinfo.kind != "interpreter" or not known:
            if iinfo.kind != "interpreter":
                raise StoreError(f"{interpreter_path} is a {iinfo.kind} model: choose it as the target")
            raise StoreError(
                f"{interpreter_path} was distilled from a target model that is not registered in this "
                "workspace: choose that target file too"
            )
        target_path = str(known[-1].file_path)
    target, info = load_target(target_path)
    if interpreter_path:
        load_interpreter(interpreter_path, target, info.sha256)
    del target
    return register_models(ws, target_path, interpreter_path or None)


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


class AttributePredictor:
    """The interpreter's attribute classifier in the shape of a :class:`db.index.Embedder`.

    Its "vectors" are the (M,) attribute probabilities of each crop in the schema's order, so that
    :func:`db.index.index_missing` stores them as the interpreter's embeddings (batched, resumable), and
    :meth:`db.repositories.CropRepository.predicted_ids` filters crops by them.

    Args:
        explainer: The loaded target and interpreter.
        interpreter: The interpreter's record (its file hash names the model in the store).
    """

    def __init__(self, explainer: Explainer, interpreter: ModelInfo) -> None:
        self.explainer = explainer
        self.name = interpreter.name
        self.model_hash = interpreter.file_hash
        self.dim = len(explainer.names)

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        """(N, M) float32 probabilities of N crops."""
        return self.explainer.predict_attributes(images)


class Workbench:
    """An open workspace with its models, loaded lazily and shared between worker threads.

    Args:
        ws: The open workspace (closed by :meth:`close`).
        models: The models to work with (see :func:`find_models`).
        device: ``cpu`` or ``cuda``; default CUDA when available (decided when a model loads).
    """

    def __init__(self, ws: Workspace, models: ModelPair, device: str | None = None) -> None:
        self.ws = ws
        self.models = models
        self._device = device
        self._lock = threading.Lock()
        self._embedder: Embedder | None = None
        self._explainer: Explainer | None = None
        self._threshold: tuple[float | None, str] | None = None

    @classmethod
    def open(
        cls,
        root: str | Path,
        create: bool = False,
        device: str | None = None,
        prefer: tuple[str, str | None] | None = None,
    ) -> Workbench:
        """Open the workspace in ``root`` and find its models (``prefer``: see :func:`find_models`)."""
        ws = Workspace.open(root, create=create)
        try:
            return cls(ws, find_models(ws, prefer), device)
        except BaseException:
            ws.close()
            raise

    def close(self) -> None:
        self.ws.close()

    @property
    def root(self) -> Path:
        return self.ws.root

    @property
    def device(self) -> str:
        if self._device is None:
            self._device = default_device()
        return self._device

    # ------------------------------------------------------------------ models

    def require_target(self) -> ModelInfo:
        if self.models.target is None:
            raise StoreError(f"cannot search: {self.models.problem}")
        return self.models.target

    def embedder(self) -> Embedder:
        """The target model as an embedder (loaded on first use)."""
        target = self.require_target()
        with self._lock:
            if self._embedder is None:
                from amd.embedding import load_embedder

                self._embedder = load_embedder(target.file_path, device=self.device)
            return self._embedder

    def explainer(self) -> Explainer:
        """The target with its interpreter (loaded on first use)."""
        target = self.require_target()
        if self.models.interpreter is None:
            raise StoreError(f"cannot explain: {self.models.problem}")
        with self._lock:
            if self._explainer is None:
                from amd.explain import Explainer

                self._explainer = Explainer.from_files(
                    target.file_path, self.models.interpreter.file_path, device=self.device
                )
            return self._explainer

    def warm_up(self) -> str:
        """Load the models now (on a worker, so that the first comparison is quick); returns the device."""
        if self.models.target is not None:
            self.embedder()
        if self.models.interpreter is not None:
            self.explainer()
        return self.device

    def use_models(self, models: ModelPair) -> str:
        """Work with other models from now on; returns the device.

        The new models are loaded before they replace the old ones, so that a job running meanwhile
        finishes with the models it started with and a refused file leaves everything as it was.

        Raises:
            amd.errors.AmdError: A model file cannot be loaded.
        """
        embedder = explainer = None
        if models.target is not None:
            from amd.embedding import load_embedder

            embedder = load_embedder(models.target.file_path, device=self.device)
            if models.interpreter is not None:
                from amd.explain import Explainer

                explainer = Explainer.from_files(
                    models.target.file_path, models.interpreter.file_path, device=self.device
                )
        with self._lock:
            self.models = models
            self._embedder, self._explainer = embedder, explainer
            self._threshold = None
        return self.device

    def explain(self, path_a: str, path_b: str) -> Explanation:
        """The explanation of two crops given as image files."""
        return self.explainer().explain(path_a, path_b)

    # ------------------------------------------------------------------ crops and images

    def image_path(self, crop: CropInfo) -> Path:
        return self.ws.images.original_path(crop.sha256, crop.format)

    def path_of_sha256(self, sha256: str) -> str:
        """The stored original of the crop with this SHA-256."""
        crop = self.ws.crops.by_sha256(sha256)
        if crop is None:
            raise NotFoundError(f"no crop with SHA-256 {sha256[:12]}... in this workspace")
        return str(self.image_path(crop))

    def crop_for_file(self, path: str | Path) -> CropInfo:
        """The workspace's crop with this file's content, importing the file when it is new.

        Raises:
            StoreError: The file cannot be imported (the reason is in the message).
        """
        stored = self.ws.crops.by_sha256(file_sha256(path))
        if stored is not None:
            return stored
        summary = self.ingest([str(path)])
        if not summary.crop_ids:
            reason = summary.refused[0].reason if summary.refused else "not imported"
            raise StoreError(f"{path}: {reason}")
        return self.ws.crops.get(summary.crop_ids[0])

    def ingest(
        self, paths: Sequence[str], on_progress: Progress | None = None, should_stop: Stop | None = None
    ) -> IngestSummary:
        """Import files, folders or dataset layouts (see :func:`cli.jobs.ingest_items`)."""
        from cli.jobs import ingest_items
        from db.ingest import IngestProgress, ingest

        items, refused = ingest_items(list(paths))

        def progress(p: IngestProgress) -> None:
            if on_progress is not None:
                on_progress(
                    p.done, p.total, f"importing: {p.added} new, {p.duplicates} known, {p.refused} refused"
                )

        return ingest(self.ws, items, refused=refused, on_progress=progress, should_stop=should_stop)

    # ------------------------------------------------------------------ index and search

    def index(
        self, on_progress: Progress | None = None, should_stop: Stop | None = None, predict: bool = True
    ) -> IndexSummary:
        """Embed the crops the target has not indexed yet (batched, resumable).

        Args:
            on_progress: ``(done, total, message)`` after every batch.
            should_stop: Polled between batches.
            predict: Then also store the interpreter's attribute predictions of the crops that have none
                (:meth:`predict_attributes`), for the gallery's filter by predicted attribute.

        Returns:
            The target's summary (the predictions' is :meth:`predict_attributes`' to give).
        """
        from db.index import IndexProgress, IndexSummary, index_missing

        target = self.require_target()
        if not self.ws.embeddings.missing_crop_ids(target.id):
            # Nothing to do: no model load and no audit entry for an index that is complete.
            summary = IndexSummary(target.id, 0, (), False, 0.0)
        else:
            if on_progress is not None:
                on_progress(0, 0, f"loading {target.name}")
            embedder = self.embedder()

            def progress(p: IndexProgress) -> None:
                if on_progress is not None:
                    on_progress(p.done, p.total, f"indexing with {target.name}")

            summary = index_missing(
                self.ws,
                embedder,
                file_path=target.file_path,
                on_progress=progress,
                should_stop=should_stop,
            )
        if predict and not summary.cancelled and not (should_stop is not None and should_stop()):
            predicted = self.predict_attributes(on_progress, should_stop)
            if predicted is not None and predicted.cancelled:
                return replace(summary, cancelled=True)
        return summary

    def predict_attributes(
        self, on_progress: Progress | None = None, should_stop: Stop | None = None
    ) -> IndexSummary | None:
        """Store the interpreter's attribute probabilities of every crop that has none yet.

        They are kept as the interpreter's vectors in the embeddings table (one float16 probability per
        attribute of its schema), batched and resumable like the target's index.

        Returns:
            What was stored, or ``None`` when there is no interpreter or it has no attribute classifier.
        """
        from db.index import IndexProgress, IndexSummary, index_missing

        interpreter = self.models.interpreter
        if self.models.target is None or interpreter is None:
            return None
        if not self.ws.embeddings.missing_crop_ids(interpreter.id):
            return IndexSummary(interpreter.id, 0, (), False, 0.0)
        if on_progress is not None:
            on_progress(0, 0, f"loading {interpreter.name}")
        explainer = self.explainer()
        if not explainer.predicts_attributes:
            return None

        def progress(p: IndexProgress) -> None:
            if on_progress is not None:
                on_progress(p.done, p.total, "predicting attributes")

        return index_missing(
            self.ws,
            AttributePredictor(explainer, interpreter),
            kind="interpreter",
            file_path=interpreter.file_path,
            on_progress=progress,
            should_stop=should_stop,
        )

    def predictions_available(self) -> bool:
        """Whether the interpreter's attribute predictions are stored for at least one crop."""
        interpreter = self.models.interpreter
        return interpreter is not None and self.ws.embeddings.count(interpreter.id) > 0

    def search(
        self,
        query: str | int,
        top: int = 20,
        camera: str | None = None,
        on_progress: Progress | None = None,
        should_stop: Stop | None = None,
    ) -> list[ResultRow]:
        """Index what is missing, then rank the indexed crops by distance to a crop id or an image file.

        Returns:
            Up to ``top`` rows in increasing distance; empty when cancelled.
        """
        from cli.jobs import search

        # The search needs the target's vectors only: predicting attributes is left to an explicit index.
        summary = self.index(on_progress, should_stop, predict=False)
        if summary.cancelled or (should_stop is not None and should_stop()):
            return []

        def rows(done: int, total: int) -> None:
            if on_progress is not None:
                on_progress(done, total, "loading the feature cache")

        hits = search(
            self.ws, self.embedder(), str(query), top=top, camera=camera, device=self.device, on_progress=rows
        )
        crops = self.ws.crops.get_many([h.crop_id for h in hits])
        return [ResultRow(h.rank, h.distance, c) for h, c in zip(hits, crops, strict=True)]

    def largest_shares(
        self,
        query: str | int,
        crops: Sequence[CropInfo],
        count: int = 3,
        chunk: int = 16,
        should_stop: Stop | None = None,
    ) -> list[tuple[TopShare, ...]]:
        """Why each result is where it is (:meth:`amd.explain.Explainer.largest_shares`) for a query given
        as for :meth:`search`, a crop id or an image file.

        Raises:
            StoreError: There is no interpreter to explain with.
        """
        from cli.jobs import largest_shares

        return largest_shares(self.ws, self.explainer(), query, crops, count, chunk, should_stop)

    def threshold(self, max_crops: int = 2000) -> tuple[float | None, str]:
        """A same/different distance threshold at the equal error rate of the labelled indexed crops.

        Pairs of crops of one identity are "same", pairs of two identities "different"; the threshold is
        where the share of same pairs above it equals the share of different pairs below it.

        Returns:
            ``(threshold, how it was found)``; ``(None, why not)`` when there are too few labels.
        """
        if self._threshold is not None:
            return self._threshold
        import numpy as np

        from db.features import load_features

        target = self.models.target
        if target is None:
            return None, self.models.problem
        feats = load_features(self.ws, target.id)
        if len(feats) == 0:
            return None, "the workspace is not indexed yet"
        rng = np.random.default_rng(0)
        rows = np.arange(len(feats))
        if len(rows) > max_crops:
            rows = np.sort(rng.choice(rows, size=max_crops, replace=False))
        crops = self.ws.crops.get_many([int(i) for i in feats.crop_ids[rows]])
        ids = np.array([c.identity_id if c.identity_id is not None else -1 for c in crops])
        keep = ids >= 0
        rows, ids = rows[keep], ids[keep]
        if len(np.unique(ids)) < 2 or len(ids) == len(np.unique(ids)):
            return None, "too few labelled crops to calibrate a threshold"
        x = np.asarray(feats.vectors[rows], dtype=np.float32)
        sq = (x * x).sum(1)
        d = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2 * x @ x.T, 0.0))
        upper = np.triu_indices(len(ids), k=1)
        same = (ids[:, None] == ids[None, :])[upper]
        dist = d[upper]
        pos, neg = np.sort(dist[same]), np.sort(dist[~same])
        candidates = np.unique(np.quantile(dist, np.linspace(0.005, 0.995, 199)))
        frr = 1.0 - np.searchsorted(pos, candidates, side="left") / len(pos)
        far = np.searchsorted(neg, candidates, side="left") / len(neg)
        best = int(np.argmin(np.abs(frr - far)))
        value = float(candidates[best])
        how = (
            f"equal error rate {100 * (frr[best] + far[best]) / 2:.1f}% on {len(pos)} same and "
            f"{len(neg)} different labelled pairs"
        )
        self._threshold = (value, how)
        return self._threshold

    # ------------------------------------------------------------------ verdicts

    def unfiled_case_id(self) -> int:
        for case in self.ws.cases.list():
            if case.title == UNFILED_CASE:
                return case.id
        return self.ws.cases.create(UNFILED_CASE, "Verdicts given outside a named case").id

    def record_verdict(
        self,
        path_a: str,
        path_b: str,
        verdict: str | None,
        notes: str,
        explanation: Explanation | None = None,
        case_id: int | None = None,
    ) -> CaseItemInfo:
        """Keep the analyst's verdict and notes with the pair, as an item of a case.

        Files that are not in the workspace yet are imported first, so that the pair can be referred
        to. The pair's item in the case (default: the "Unfiled" case) is reused when it exists.
        """
        from cases.snapshot import explanation_snapshot

        code = VERDICT_CODES.get(verdict) if verdict is not None else None
        if verdict is not None and code is None:
            raise StoreError(f"unknown verdict {verdict!r}")
        a, b = self.crop_for_file(path_a), self.crop_for_file(path_b)
        case_id = self.unfiled_case_id() if case_id is None else case_id
        item = next(
            (
                i
                for i in self.ws.cases.get(case_id).items
                if {i.query_crop_id, i.gallery_crop_id} == {a.id, b.id}
            ),
            None,
        )
        if item is None:
            item = self.ws.cases.add_item(
                case_id,
                a.id,
                b.id,
                distance=None if explanation is None else float(explanation.distance),
                explanation=None if explanation is None else explanation_snapshot(explanation),
                model_id=self.models.target.id if self.models.target else None,
                interpreter_id=self.models.interpreter.id if self.models.interpreter else None,
            )
        return self.ws.cases.set_verdict(item.id, code, notes)

    def verdict_of(self, path_a: str, path_b: str) -> CaseItemInfo | None:
        """The Unfiled case's item for this pair of stored crops, or ``None``."""
        a = self.ws.crops.by_sha256(file_sha256(path_a))
        b = self.ws.crops.by_sha256(file_sha256(path_b))
        if a is None or b is None:
            return None
        for case in self.ws.cases.list():
            if case.title == UNFILED_CASE:
                for item in self.ws.cases.get(case.id).items:
                    if {item.query_crop_id, item.gallery_crop_id} == {a.id, b.id}:
                        return item
        return None


# ---------------------------------------------------------------------- identities (each change audited by the store)


def assign(ws: Workspace, crop_ids: Sequence[int], identity_id: int | None) -> dict[int, int | None]:
    """Put crops under an identity (``None``: unlabelled).

    Returns:
        The previous identity of each crop that changed, for :func:`restore`.
    """
    before = {c.id: c.identity_id for c in ws.crops.get_many(list(crop_ids))}
    ws.crops.set_identity(list(crop_ids), identity_id)
    return {cid: old for cid, old in before.items() if old != identity_id}


def restore(ws: Workspace, previous: dict[int, int | None]) -> None:
    """Give crops back the identities that :func:`assign` replaced."""
    groups: dict[int | None, list[int]] = {}
    for crop_id, identity_id in previous.items():
        groups.setdefault(identity_id, []).append(crop_id)
    for identity_id, crop_ids in groups.items():
        ws.crops.set_identity(crop_ids, identity_id)


def identity_named(ws: Workspace, name: str) -> IdentityInfo:
    """The identity called ``name``, created when there is none."""
    return ws.identities.by_name(name.strip()) or ws.identities.create(name)


def delete_identity(ws: Workspace, identity_id: int) -> DeletedIdentity:
    """Delete an identity; its crops become unlabelled. :func:`undelete` brings both back."""
    identity, crop_ids = ws.identities.delete(identity_id)
    return DeletedIdentity(identity, crop_ids)


def drop_emptied(ws: Workspace, identity_ids: Iterable[int | None]) -> list[DeletedIdentity]:
    """Delete those of the identities that no crop is under any more (after an assign, merge or split).

    Returns:
        What was deleted, for :func:`undelete`.
    """
    deleted: list[DeletedIdentity] = []
    for identity_id in sorted({i for i in identity_ids if i is not None}):
        try:
            gone = ws.identities.delete(identity_id, if_empty=True)
        except NotFoundError:  # deleted by someone else meanwhile: nothing to drop
            continue
        if gone is not None:
            deleted.append(DeletedIdentity(*gone))
    return deleted


def undelete(ws: Workspace, deleted: Sequence[DeletedIdentity]) -> dict[int, int]:
    """Restore deleted identities with their names and crops (last deleted first).

    Returns:
        The id each one has now, by its old id: the same, unless a newer identity had taken the old one
        (see :meth:`db.repositories.IdentityRepository.restore`).
    """
    ids: dict[int, int] = {}
    for item in reversed(deleted):
        ids[item.identity.id] = ws.identities.restore(item.identity, item.crop_ids).id
    return ids


def merge(ws: Workspace, source_id: int, into_id: int) -> dict[int, int | None]:
    """Move every crop of identity ``source_id`` to ``into_id``; returns what :func:`restore` needs."""
    if source_id == into_id:
        raise StoreError("an identity cannot be merged into itself")
    return assign(ws, ws.crops.ids(identity_id=source_id), into_id)
