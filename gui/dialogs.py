"""Message dialogs that never block the event loop (workers keep reporting while one is open)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QWidget


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
    if details:
        box.setDetailedText(details)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
    box.open()
    return box


def show_error(parent: QWidget | None, title: str, text: str, details: str | None = None) -> QMessageBox:
    """A user error: what went wrong in words, never a traceback (that goes in ``details`` for bugs)."""
    return show_message(parent, title, text, details, QMessageBox.Icon.Warning)
