"""An inter-process lock on a file, for work that two programs must not do at once.

Used around schema migrations and feature-cache updates. ``flock`` on POSIX, ``msvcrt.locking``
on Windows; the operating system drops the lock when the holder dies, so a killed process never
leaves a stale lock behind.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from types import TracebackType

from db.errors import WorkspaceBusyError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]
    import msvcrt


class FileLock:
    """An exclusive lock held on ``path`` (created if missing).

    Args:
        path: The lock file.
        timeout_s: Give up with :class:`WorkspaceBusyError` after this many seconds.
        what: Words for the error message ("the workspace schema").
    """

    def __init__(
        self, path: str | os.PathLike[str], timeout_s: float = 60.0, what: str = "the workspace"
    ) -> None:
        self.path = Path(path)
        self.timeout_s = timeout_s
        self.what = what
        self._fd: int | None = None

    def _try(self, fd: int) -> bool:
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            else:
                msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        deadline = time.monotonic() + self.timeout_s
        delay = 0.005
        while not self._try(fd):
            if time.monotonic() >= deadline:
                os.close(fd)
                raise WorkspaceBusyError(
                    f"{self.what} is busy: another program has held it for more than {self.timeout_s:.0f} s"
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.2)
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_UN)
            else:
                msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        finally:
            os.close(fd)

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()
