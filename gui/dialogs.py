"""Message dialogs that never block the event loop (workers keep reporting while one is open)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QMessageBox, QWidget

#: Widest a message's text is laid out before it wraps, in pixels. QMessageBox wraps at about 500
#: pixels, which breaks summaries of one line per file in the middle of their figures.
MAX_TEXT_WIDTH = 760


def show_message(
    parent: QWidget | None,
    title: str,
    text: str,
    details: str | None = None,
    icon: QMessageBox.Icon = QMessageBox.Icon.Information,
) -> QMessageBox:
    """Open a window-modal message box and return at once; it deletes itself when closed."""
    box = QMessageBox(icon, title, text, QMessageBox.StandardButton.Ok, parent)
    box.setObjectName("message")
    _fit_lines(box, text)
    if details:
        box.setDetailedText(details)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
    box.open()
    return box


def show_error(parent: QWidget | None, title: str, text: str, details: str | None = None) -> QMessageBox:
    """A user error: what went wrong in words, never a traceback (that goes in ``details`` for bugs)."""
    return show_message(parent, title, text, details, QMessageBox.Icon.Warning)


def _fit_lines(box: QMessageBox, text: str) -> None:
    """Widen the box so that each line of ``text`` fits on one row, up to :data:`MAX_TEXT_WIDTH`."""
    label = box.findChild(QLabel, "qt_msgbox_label")
    if label is None:
        return
    metrics = label.fontMetrics()
    widest = max((metrics.horizontalAdvance(line) for line in text.splitlines()), default=0)
    label.setMinimumWidth(min(widest + metrics.averageCharWidth(), MAX_TEXT_WIDTH))
