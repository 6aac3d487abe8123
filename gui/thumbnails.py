"""Thumbnails decoded off the UI thread, newest request first, kept in a small LRU cache."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QImage, QPixmap

from gui.workers import Job, JobRunner, guarded

#: Requests beyond this many are dropped, oldest first: they are for crops scrolled past long ago.
MAX_PENDING = 600
BATCH = 48


def decode_thumbnails(
    requests: list[tuple[str, str]], path_of: Callable[[str, str], str]
) -> dict[str, QImage]:
    """Decode thumbnail files into QImages (QImage, unlike QPixmap, may be made on any thread)."""
    out: dict[str, QImage] = {}
    for sha256, fmt in requests:
        try:
            image = QImage(str(path_of(sha256, fmt)))
        except (OSError, ValueError):
            image = QImage()
        out[sha256] = image
    return out


class ThumbnailLoader(QObject):
    """Hands out cached thumbnails and loads the missing ones on a worker, one batch at a time.

    Args:
        runner: Runs the decoding jobs.
        path_of: ``(sha256, format) -> thumbnail file`` (may create the file; runs on the worker).
        capacity: Thumbnails kept in memory.

    Signals:
        loaded(list): the SHA-256s of a batch just decoded (their :meth:`get` now returns a pixmap).
    """

    loaded = Signal(list)

    def __init__(
        self, runner: JobRunner, path_of: Callable[[str, str], str], capacity: int = 4000, parent=None
    ) -> None:
        super().__init__(parent)
        self.runner = runner
        self.path_of = path_of
        self.capacity = capacity
        self._cache: OrderedDict[str, QPixmap] = OrderedDict()
        self._pending: OrderedDict[str, str] = OrderedDict()
        self._job: Job | None = None
        self._generation = 0

    def get(self, sha256: str, fmt: str) -> QPixmap | None:
        """The thumbnail when cached; else ``None`` and a load is queued."""
        pixmap = self._cache.get(sha256)
        if pixmap is not None:
            self._cache.move_to_end(sha256)
            return pixmap
        self._pending[sha256] = fmt
        self._pending.move_to_end(sha256)
        while len(self._pending) > MAX_PENDING:
            self._pending.popitem(last=False)
        self._schedule()
        return None

    def clear(self, path_of: Callable[[str, str], str] | None = None) -> None:
        """Forget everything (another workspace); results of a job in flight are ignored."""
        self._generation += 1
        self._cache.clear()
        self._pending.clear()
        if path_of is not None:
            self.path_of = path_of
        if self._job is not None:
            self._job.cancel()
        self._job = None

    def busy(self) -> bool:
        return self._job is not None or bool(self._pending)

    def _schedule(self) -> None:
        if self._job is not None or not self._pending:
            return
        # Newest first: they are the crops on screen now.
        batch = []
        while self._pending and len(batch) < BATCH:
            batch.append(self._pending.popitem(last=True))
        job = Job(decode_thumbnails, batch, self.path_of, name="thumbnails")
        generation = self._generation
        job.signals.succeeded.connect(guarded(self, lambda images, g=generation: self._on_decoded(images, g)))
        job.signals.finished.connect(guarded(self, lambda j=job: self._on_job_finished(j)))
        self._job = job
        self.runner.start(f"thumbnails-{id(self)}", job)

    def _on_decoded(self, images: dict[str, QImage], generation: int) -> None:
        if generation != self._generation:
            return
        for sha256, image in images.items():
            self._cache[sha256] = QPixmap.fromImage(image) if not image.isNull() else QPixmap()
            self._cache.move_to_end(sha256)
        while len(self._cache) > self.capacity:
            self._cache.popitem(last=False)
        self.loaded.emit(list(images))

    def _on_job_finished(self, job: Job) -> None:
        if self._job is job:
            self._job = None
        self._schedule()
