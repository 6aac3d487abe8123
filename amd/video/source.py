"""Open a video file with OpenCV, check that it can be used, and iterate its frames.

A file is refused (:class:`~amd.video.VideoError`) when it is missing, empty, not a video OpenCV can
decode (unknown container or codec, corrupt header) or when its first frame cannot be read. A file
that breaks off later (truncated recording) is read up to the break: :attr:`VideoSource.frames_read`
then stays below :attr:`VideoInfo.frame_count`, and callers report it.

Frame times are ``index / fps``: surveillance recorders write constant frame rates, and the index is
what the store keeps next to the time.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from amd.video import VideoError

#: File name endings offered by file dialogs and folder scans; any file OpenCV decodes is accepted.
VIDEO_SUFFIXES = (
    ".avi",
    ".mp4",
    ".m4v",
    ".mov",
    ".mkv",
    ".mpg",
    ".mpeg",
    ".ts",
    ".webm",
    ".wmv",
    ".flv",
    ".asf",
)


@dataclass(frozen=True)
class VideoInfo:
    """What OpenCV reports about a video.

    Attributes:
        path: The file.
        width: Frame width in pixels.
        height: Frame height in pixels.
        fps: Frames per second.
        frame_count: Number of frames the container announces, or ``None`` when it does not say.
        codec: FourCC of the stream ("MJPG", "avc1", ...), or ``""`` when unknown.
    """

    path: str
    width: int
    height: int
    fps: float
    frame_count: int | None
    codec: str

    @property
    def duration_s(self) -> float | None:
        """Length in seconds, when the frame count is known."""
        return None if self.frame_count is None else self.frame_count / self.fps


@dataclass(frozen=True)
class Frame:
    """One decoded frame.

    Attributes:
        index: 0-based frame number in the file.
        time_s: Seconds from the start of the file (``index / fps``).
        image: BGR uint8 (H, W, 3), as OpenCV decodes it.
    """

    index: int
    time_s: float
    image: np.ndarray


def _fourcc(value: float) -> str:
    code = int(value)
    text = "".join(chr((code >> (8 * i)) & 0xFF) for i in range(4))
    return text if text.isprintable() and text.strip() else ""


class VideoSource:
    """An open, validated video file.

    Args:
        path: The video file.

    Raises:
        VideoError: The file is missing, empty, undecodable, or its first frame cannot be read.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        p = Path(path)
        if not p.exists():
            raise VideoError(f"{p}: no such file")
        if not p.is_file():
            raise VideoError(f"{p}: not a regular file")
        if p.stat().st_size == 0:
            raise VideoError(f"{p}: the file is empty")
        if not os.access(p, os.R_OK):
            raise VideoError(f"{p}: unreadable (permission denied)")
        self.path = str(p)
        self._cap = cv2.VideoCapture(self.path)
        if not self._cap.isOpened():
            self._cap.release()
            raise VideoError(
                f"{p}: not a video that can be decoded (unknown container or codec, or a corrupt file)"
            )
        fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        width = int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH) or 0)
        height = int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
        count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        codec = _fourcc(self._cap.get(cv2.CAP_PROP_FOURCC) or 0)
        ok, first = self._cap.read()
        if not ok or first is None or first.size == 0:
            self._cap.release()
            raise VideoError(f"{p}: no frame can be decoded (corrupt or unsupported stream)")
        if not np.isfinite(fps) or fps <= 0 or fps > 1000:
            self._cap.release()
            raise VideoError(
                f"{p}: the file gives no usable frame rate ({fps:g}), so frame times are unknown"
            )
        if width <= 0 or height <= 0:
            height, width = first.shape[:2]
        self.info = VideoInfo(
            path=self.path,
            width=width,
            height=height,
            fps=fps,
            frame_count=count if count > 0 else None,
            codec=codec,
        )
        self._first: np.ndarray | None = first
        self._next = 1  # index of the frame the capture returns next
        self.frames_read = 1

    def close(self) -> None:
        self._cap.release()

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _seek(self, index: int) -> None:
        """Position the capture so that the next grab returns frame ``index``."""
        if index == self._next:
            return
        if index > self._next and index - self._next <= 64:
            while self._next < index and self._cap.grab():
                self._next += 1
            return
        # A container seek is fast but not exact for every codec: check where it landed, and fall
        # back to reading from the start when it is off.
        if (
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, index)
            and int(self._cap.get(cv2.CAP_PROP_POS_FRAMES)) == index
        ):
            self._next = index
            return
        self._cap.release()
        self._cap = cv2.VideoCapture(self.path)
        self._next = 0
        while self._next < index and self._cap.grab():
            self._next += 1

    def frames(self, start: int = 0, every: int = 1) -> Iterator[Frame]:
        """Frames ``start``, ``start + every``, ... up to the end of the file (or the first undecodable frame).

        Skipped frames are only grabbed (not converted), which is cheaper than reading them.
        """
        if every < 1:
            raise ValueError("every must be at least 1")
        if start < 0:
            raise ValueError("start must not be negative")
        fps = self.info.fps
        index = start
        if index == 0 and self._first is not None:
            first, self._first = self._first, None
            yield Frame(0, 0.0, first)
            index = every
        self._first = None
        self._seek(index)
        while True:
            while self._next < index:
                if not self._cap.grab():
                    return
                self._next += 1
            ok, image = self._cap.read()
            if not ok or image is None:
                return
            self._next += 1
            self.frames_read = max(self.frames_read, self._next)
            yield Frame(index, index / fps, image)
            index += every


def probe(path: str | os.PathLike[str]) -> VideoInfo:
    """Open and validate ``path`` and return what it holds (raises :class:`~amd.video.VideoError`)."""
    with VideoSource(path) as src:
        return src.info
