"""Small Qt helpers: conversions between numpy arrays and Qt images, a list-backed table model, a wrapping
layout."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, QPoint, QRect, QSize, Qt
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QLayout, QLayoutItem, QStyle, QWidget


def rgb_to_qimage(array: np.ndarray) -> QImage:
    """(H, W, 3) uint8 RGB -> QImage (a deep copy: the array may be freed afterwards)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    if array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) array, got {array.shape}")
    h, w, _ = array.shape
    return QImage(array.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def rgb_to_pixmap(array: np.ndarray) -> QPixmap:
    return QPixmap.fromImage(rgb_to_qimage(array))


def qimage_to_rgb(image: QImage) -> np.ndarray:
    """QImage -> (H, W, 3) uint8 RGB copy."""
    image = image.convertToFormat(QImage.Format.Format_RGB888)
    h, w = image.height(), image.width()
    buf = np.frombuffer(image.constBits(), dtype=np.uint8, count=image.sizeInBytes())
    return buf.reshape(h, image.bytesPerLine())[:, : 3 * w].reshape(h, w, 3).copy()


class ListTableModel(QAbstractTableModel):
    """A flat table over a Python list: one row per element, one column per header.

    Subclasses set ``HEADERS`` and implement ``data``; the rows live in ``self.rows`` and are replaced
    with :meth:`set_rows` (a model reset).
    """

    HEADERS: tuple[str, ...] = ()

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.rows: list[Any] = []

    def set_rows(self, rows: Sequence[Any]) -> None:
        self.beginResetModel()
        self.rows = list(rows)
        self.endResetModel()

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.HEADERS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.HEADERS[section]
        return None


class FlowLayout(QLayout):
    """Lays its items out left to right and starts a new row when the next one does not fit.

    A bar of controls laid out this way needs only the width of its widest item, so it never sets the
    window's minimum width; on a wide window it is one row.

    Args:
        parent: The widget the layout manages, if any.
        uniform: Lay the items out as a grid of equal cells that fill each row (a button bar): as many
            columns as fit, balanced so that the rows hold about as many items each.
    """

    def __init__(self, parent: QWidget | None = None, uniform: bool = False) -> None:
        super().__init__(parent)
        self.uniform = uniform
        self._items: list[QLayoutItem] = []

    def addItem(self, item: QLayoutItem) -> None:
        self._items.append(item)

    def count(self) -> int:
        return len(self._items)

    def itemAt(self, index: int) -> QLayoutItem | None:
        return self._items[index] if 0 <= index < len(self._items) else None

    def takeAt(self, index: int) -> QLayoutItem | None:
        return self._items.pop(index) if 0 <= index < len(self._items) else None

    def expandingDirections(self) -> Qt.Orientation:
        return Qt.Orientation(0)

    def hasHeightForWidth(self) -> bool:
        return True

    def heightForWidth(self, width: int) -> int:
        return self._arrange(QRect(0, 0, width, 0), apply=False)

    def setGeometry(self, rect: QRect) -> None:
        super().setGeometry(rect)
        self._arrange(rect, apply=True)

    def sizeHint(self) -> QSize:
        visible = self._visible()
        m = self.contentsMargins()
        gap = self._gap()
        width = sum(i.sizeHint().width() for i in visible) + gap * max(len(visible) - 1, 0)
        height = max((i.sizeHint().height() for i in visible), default=0)
        return QSize(width + m.left() + m.right(), height + m.top() + m.bottom())

    def minimumSize(self) -> QSize:
        visible = self._visible()
        m = self.contentsMargins()
        if self.uniform:
            width = max((i.sizeHint().width() for i in visible), default=0)
        else:
            width = max((i.minimumSize().width() for i in visible), default=0)
        height = max((i.minimumSize().height() for i in visible), default=0)
        return QSize(width + m.left() + m.right(), height + m.top() + m.bottom())

    def _visible(self) -> list[QLayoutItem]:
        return [i for i in self._items if not i.isEmpty()]

    def _gap(self) -> int:
        gap = self.spacing()
        if gap < 0:
            style = self.parentWidget().style() if self.parentWidget() else None
            gap = style.pixelMetric(QStyle.PixelMetric.PM_LayoutHorizontalSpacing) if style else 6
        return max(gap, 0)

    def _arrange(self, rect: QRect, apply: bool) -> int:
        """Place the items in ``rect`` (or only measure when not ``apply``); the height they take."""
        m = self.contentsMargins()
        area = rect.adjusted(m.left(), m.top(), -m.right(), -m.bottom())
        gap = self._gap()
        visible = self._visible()
        if not visible:
            return 0
        if self.uniform:
            cell = max(i.sizeHint().width() for i in visible)
            fits = max(1, min(len(visible), (area.width() + gap) // (cell + gap)))
            rows = -(-len(visible) // fits)
            columns = -(-len(visible) // rows)
            width = max(1, (area.width() - gap * (columns - 1)) // columns)
            height = max(i.sizeHint().height() for i in visible)
            if apply:
                for n, item in enumerate(visible):
                    row, col = divmod(n, columns)
                    x = area.x() + col * (width + gap)
                    item.setGeometry(QRect(x, area.y() + row * (height + gap), width, height))
            return rows * height + (rows - 1) * gap + m.top() + m.bottom()
        rows: list[list[tuple[QLayoutItem, int]]] = [[]]
        x = area.x()
        for item in visible:
            # An item wider than the whole row gets the row, down to its minimum.
            width = max(min(item.sizeHint().width(), area.width()), item.minimumSize().width())
            if rows[-1] and x + width > area.x() + area.width():
                rows.append([])
                x = area.x()
            rows[-1].append((item, width))
            x += width + gap
        y = area.y()
        for row in rows:
            height = max(item.sizeHint().height() for item, _ in row)
            x = area.x()
            for item, width in row:
                if apply:
                    # Items shorter than their row (a check box beside combo boxes) sit in its middle.
                    h = min(item.sizeHint().height(), height)
                    item.setGeometry(QRect(QPoint(x, y + (height - h) // 2), QSize(width, h)))
                x += width + gap
            y += height + gap
        return y - gap - area.y() + m.top() + m.bottom()
