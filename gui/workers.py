"""Running Qt-free jobs on worker threads.

A job is a plain function that may accept ``on_progress(done, total, message)`` and
``should_stop() -> bool`` keyword arguments (the contract of every long job in ``amd``, ``db`` and
``cli.jobs``). Workers never touch widgets: results, errors and progress reach the UI thread only
through queued signals. Progress is throttled to about 15 updates per second.
"""

from __future__ import annotations

import inspect
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import shiboken6
from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot

PROGRESS_INTERVAL_S = 1 / 15
#: Niceness of the worker threads: when the CPU is short, the UI thread gets it first.
WORKER_NICE = 10


def lower_thread_priority() -> None:
    """Give the calling thread a lower CPU priority (Linux keeps a nice value per thread).

    Threads the job starts (decoding pools, the model's own threads when it makes them) inherit it.
    Elsewhere this does nothing: there, the priority call would change the whole process.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        tid = threading.get_native_id()
        if os.getpriority(os.PRIO_PROCESS, tid) < WORKER_NICE:
            os.setpriority(os.PRIO_PROCESS, tid, WORKER_NICE)
    except OSError:
        pass


def guarded(receiver: QObject, fn: Callable[..., Any]) -> Callable[..., None]:
    """``fn``, made a no-op once ``receiver`` is deleted.

    A job's signals outlive the window that started it: a result queued just before the window closed
    is delivered after, and a plain lambda would then call into a deleted object.
    """

    def call(*args: Any) -> None:
        if shiboken6.isValid(receiver):
            fn(*args)

    return call


class JobSignals(QObject):
    """Signals of one job; they are emitted from the worker thread and delivered queued.

    ``succeeded`` is the exception: the worker hands its result to the thread that made the job, which
    emits ``succeeded`` only if the job still wants it there (:meth:`Job.result_wanted`). Jobs are
    cancelled and replaced on that thread, so a result cannot arrive after its job was replaced by a newer
    one, even when the worker finished just before and its result was still queued.
    """

    progress_changed = Signal(int, int, str)
    succeeded = Signal(object)
    failed = Signal(str)
    finished = Signal()
    #: The worker's result, on its way to :meth:`_deliver`.
    result_ready = Signal(object)

    def __init__(
        self, wanted: Callable[[], bool] = lambda: True, discard: Callable[[Any], None] | None = None
    ) -> None:
        super().__init__()
        self._wanted = wanted
        self._discard = discard
        self.result_ready.connect(self._deliver)

    @Slot(object)
    def _deliver(self, result: object) -> None:
        if self._wanted():
            self.succeeded.emit(result)
        else:
            self.drop(result)

    def drop(self, result: object) -> None:
        """A result that will not be delivered goes to the job's ``discard``, when it has one."""
        if self._discard is not None:
            self._discard(result)


class Job(QRunnable):
    """One call of ``fn`` on the thread pool, cancellable at the job's next ``should_stop`` check.

    A cancelled job delivers no result, unless it was made with ``partial_result=True``: then ``fn``
    returns what it did before it stopped (crops imported so far), and the analyst who pressed Cancel
    is shown that. A job replaced by a newer one (:meth:`JobRunner.start`) never delivers. A result that
    holds resources (an opened workspace) is handed to ``discard`` when it is not delivered.
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        *args: Any,
        name: str = "",
        partial_result: bool = False,
        discard: Callable[[Any], None] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        self.setAutoDelete(False)
        self.fn, self.args, self.kwargs = fn, args, kwargs
        self.name = name or getattr(fn, "__name__", "job")
        self.partial_result = partial_result
        self._cancel = threading.Event()
        self._superseded = threading.Event()
        self.signals = JobSignals(self.result_wanted, discard)
        self._done = threading.Event()
        self._last_progress = 0.0
        try:
            params = inspect.signature(fn).parameters
        except (TypeError, ValueError):
            params = {}
        if "on_progress" in params:
            self.kwargs.setdefault("on_progress", self._report)
        if "should_stop" in params:
            self.kwargs.setdefault("should_stop", self._cancel.is_set)

    def cancel(self) -> None:
        self._cancel.set()

    def supersede(self) -> None:
        """Cancel the job and drop its result, whatever it is: a newer job took its place."""
        self._superseded.set()
        self._cancel.set()

    def result_wanted(self) -> bool:
        """Whether a result of the job should still reach the window."""
        if not self._cancel.is_set():
            return True
        return self.partial_result and not self._superseded.is_set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job has finished (for shutdown and tests); True when it did."""
        return self._done.wait(timeout)

    def _report(self, done: int, total: int, message: str = "") -> None:
        now = time.monotonic()
        if done >= total or now - self._last_progress >= PROGRESS_INTERVAL_S:
            self._last_progress = now
            self.signals.progress_changed.emit(int(done), int(total), str(message))

    def run(self) -> None:
        lower_thread_priority()
        try:
            result = self.fn(*self.args, **self.kwargs)
        except Exception as exc:  # everything must reach the UI as a message, never kill the pool thread
            from amd.errors import AmdError
            from cli.checks import describe_error
            from db.errors import StoreError

            # The errors every layer words for the user (a refused case file is a StoreError too).
            user_error = isinstance(exc, (AmdError, StoreError))
            message = str(exc) if user_error else describe_error(exc)
            self.signals.failed.emit(message)
        else:
            if self.result_wanted():
                self.signals.result_ready.emit(result)
            else:
                self.signals.drop(result)
        finally:
            self._done.set()
            self.signals.finished.emit()


class JobRunner(QObject):
    """Starts jobs on a thread pool; a new job under a key cancels the previous one under that key."""

    def __init__(self, parent: QObject | None = None, max_threads: int = 2) -> None:
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(max_threads)
        self._jobs: dict[str, Job] = {}

    def start(self, key: str, job: Job) -> Job:
        previous = self._jobs.get(key)
        if previous is not None:
            previous.supersede()
        self._jobs[key] = job
        job.signals.finished.connect(guarded(self, lambda k=key, j=job: self._forget(k, j)))
        self.pool.start(job)
        return job

    def _forget(self, key: str, job: Job) -> None:
        if self._jobs.get(key) is job:
            del self._jobs[key]

    def running(self, key: str) -> Job | None:
        return self._jobs.get(key)

    def cancel_all(self) -> None:
        """Stop every job and drop their results (the workspace they worked on is being closed)."""
        for job in list(self._jobs.values()):
            job.supersede()

    def shutdown(self, timeout_ms: int = 5000) -> bool:
        """Ask every job to stop and wait for them; True when all finished in time."""
        self.cancel_all()
        return self.pool.waitForDone(timeout_ms)
