"""A crop shown large, with its overlay, that accepts drops of files and of crops from the workspace."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QMimeData, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QDragEnterEvent, QDropEvent, QPainter, QPaintEvent, QPixmap
from PySide6.QtWidgets import QFrame, QSizePolicy, QWidget

from gui.qt_util import rgb_to_pixmap

#: MIME type of crops dragged inside the application: the payload is the crop's SHA-256, ASCII.
CROP_MIME = "application/x-amd-crop"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def crop_mime(sha256: str) -> QMimeData:
    """Drag data of one crop of the workspace (one per drag: each comparison side takes one)."""
    mime = QMimeData()
    mime.setData(CROP_MIME, sha256.encode("ascii"))
    mime.setText(sha256)
    return mime


def drop_payload(mime: QMimeData) -> tuple[str, str] | None:
    """``("crop", sha256)`` or ``("file", path)`` for a usable drop, else ``None``."""
    if mime.hasFormat(CROP_MIME):
        return "crop", bytes(mime.data(CROP_MIME).data()).decode("ascii")
    if mime.hasUrls():
        for url in mime.urls():
            path = url.toLocalFile()
            if path.lower().endswith(IMAGE_SUFFIXES):
                return "file", path
    return None


class CropViewWidget(QFrame):
    """Paints a crop scaled to fit (aspect kept, centred) and the overlay on top of it.

    Signals:
        dropped(kind, value): a crop (``"crop"``, sha256) or an image file (``"file"``, path) was dropped.
    """

    dropped = Signal(str, str)

    def __init__(self, placeholder: str = "Drop a crop here", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAcceptDrops(True)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setMinimumSize(QSize(120, 260))
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.placeholder = placeholder
        self.caption = ""
        self._image: np.ndarray | None = None
        self._pixmap: QPixmap | None = None
        self._drag_hover = False

    def set_image(self, rgb: np.ndarray | None, caption: str = "") -> None:
        self._image = None if rgb is None else np.ascontiguousarray(rgb)
        self.caption = caption
        self._pixmap = None if rgb is None else rgb_to_pixmap(self._image)
        self.update()

    def show_rgb(self, rgb: np.ndarray) -> None:
        """Replace what is painted (the crop with an overlay) without changing the crop itself."""
        self._pixmap = rgb_to_pixmap(rgb)
        self.update()

    @property
    def image(self) -> np.ndarray | None:
        return self._image

    def image_rect(self) -> QRectF:
        """Where the crop is painted, in widget coordinates (aspect kept, centred)."""
        if self._pixmap is None:
            return QRectF()
        area = QRectF(self.contentsRect()).adjusted(6, 6, -6, -24)
        pw, ph = self._pixmap.width(), self._pixmap.height()
        scale = min(area.width() / pw, area.height() / ph)
        w, h = pw * scale, ph * scale
        return QRectF(area.x() + (area.width() - w) / 2, area.y() + (area.height() - h) / 2, w, h)

    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        painter = QPainter(self)
        if self._drag_hover:
            painter.fillRect(self.contentsRect(), QColor(42, 157, 143, 40))
        if self._pixmap is None:
            painter.setPen(QColor(110, 110, 110))
            painter.drawText(self.contentsRect(), Qt.AlignmentFlag.AlignCenter, self.placeholder)
        else:
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
            painter.drawPixmap(self.image_rect(), self._pixmap, QRectF(self._pixmap.rect()))
            painter.setPen(QColor(50, 50, 50))
            text_rect = self.contentsRect().adjusted(4, 0, -4, -4)
            painter.drawText(
                text_rect, Qt.AlignmentFlag.AlignBottom | Qt.AlignmentFlag.AlignHCenter, self.caption
            )
        painter.end()

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if drop_payload(event.mimeData()) is not None:
            self._drag_hover = True
            self.update()
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragLeaveEvent(self, event) -> None:
        self._drag_hover = False
        self.update()

    def dropEvent(self, event: QDropEvent) -> None:
        self._drag_hover = False
        self.update()
        payload = drop_payload(event.mimeData())
        if payload is None:
            event.ignore()
            return
        event.acceptProposedAction()
        self.dropped.emit(*payload)
