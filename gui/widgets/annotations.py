"""Annotations on the compare view's crops: rectangles, arrows and text, drawn, edited, undone and stored.

Shapes are kept in the crop's own pixel coordinates (those of ``db.models.ANNOTATION_KINDS``), and
mapped to the widget each time it paints, so they stay on the same spot of the person whatever the
view's size. :class:`AnnotatedCropViewWidget` draws them and turns mouse gestures into requests;
:class:`AnnotationEditor` turns requests into undoable commands that change what is shown at once and
send the change to the store on the window's writer thread (see :mod:`cli.case_ops`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from PySide6.QtCore import QEvent, QLineF, QObject, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QBrush,
    QColor,
    QFont,
    QFontMetricsF,
    QHelpEvent,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
    QUndoCommand,
    QUndoStack,
)
from PySide6.QtWidgets import QInputDialog, QToolTip, QWidget

from cli import case_ops
from db.models import SIDES
from gui.widgets.crop_view import CropViewWidget

TOOLS = ("select", "rect", "arrow", "text")
#: Colours offered for new shapes (name shown, value stored); the first is the reports' default.
COLOURS: tuple[tuple[str, str], ...] = (
    ("Yellow", "#ffd400"),
    ("Red", "#e63946"),
    ("Cyan", "#00b4d8"),
    ("White", "#ffffff"),
)
#: Grab distance for picking a shape, in screen pixels.
PICK_PX = 6.0
#: Smallest rectangle or arrow kept, in screen pixels (a click is not a shape).
MIN_DRAG_PX = 4.0
#: Lines a label is wrapped to on the crop at most; the last one ends in an ellipsis when the text goes on.
LABEL_MAX_LINES = 3
#: Space around a label's text inside its dark box, in pixels (left and right; top and bottom).
LABEL_PAD_X, LABEL_PAD_Y = 4.0, 2.0

Submit = Callable[..., Any]


@dataclass(frozen=True)
class Shape:
    """One annotation as shown; ``geometry`` is in the crop's pixel coordinates.

    ``key`` names the shape on screen for as long as the view shows its item, across undo and redo;
    ``handle`` carries its id in the store (filled in on the writer thread).
    """

    key: int
    side: str
    kind: str
    geometry: dict[str, float]
    label: str | None = None
    color: str | None = None
    handle: case_ops.AnnotationHandle = field(default_factory=case_ops.AnnotationHandle, compare=False)


def moved(shape: Shape, dx: float, dy: float) -> dict[str, float]:
    """The shape's geometry shifted by (dx, dy) crop pixels."""
    g = dict(shape.geometry)
    for k in g:
        if k in ("x", "x1", "x2"):
            g[k] = round(g[k] + dx, 1)
        elif k in ("y", "y1", "y2"):
            g[k] = round(g[k] + dy, 1)
    return g


def wrap_label(
    text: str, metrics: QFontMetricsF, width: float, max_lines: int = LABEL_MAX_LINES
) -> list[str]:
    """Break ``text`` into lines no wider than ``width`` pixels, word by word.

    A word wider than a line is cut with an ellipsis; when the text needs more than ``max_lines`` lines,
    the last one ends in an ellipsis.
    """
    words = text.split()

    def fit(line: str) -> str:
        return metrics.elidedText(line, Qt.TextElideMode.ElideRight, width)

    if max_lines <= 1:
        return [fit(" ".join(words))] if words else []
    lines: list[str] = []
    line = ""
    for n, word in enumerate(words):
        candidate = f"{line} {word}" if line else word
        if line and metrics.horizontalAdvance(candidate) > width:
            lines.append(fit(line))
            if len(lines) == max_lines - 1:
                # The last line takes the rest of the text, cut to fit.
                lines.append(fit(" ".join(words[n:])))
                return lines
            line = word
        else:
            line = candidate
    if line:
        lines.append(fit(line))
    return lines


def _colour(shape: Shape) -> QColor:
    colour = QColor(shape.color or COLOURS[0][1])
    return colour if colour.isValid() else QColor(COLOURS[0][1])


class AnnotatedCropViewWidget(CropViewWidget):
    """A crop view that paints annotations on the crop and lets the analyst draw and pick them.

    Args:
        side: ``query`` or ``gallery``: which crop of the pair this view shows.

    Signals:
        shape_drawn(str, str, dict): side, kind and geometry of a rectangle or arrow just drawn.
        text_placed(str, float, float): side and crop position where a text annotation should go.
        shape_moved(int, dict): key and new geometry of a shape dragged with the select tool.
        shape_activated(int): a shape was double-clicked (edit its label).
        delete_requested(int): Delete was pressed on the selected shape.
        selection_changed(object): the selected shape's key, or ``None``.
    """

    #: Keys handled in :meth:`keyPressEvent`, for Help > Keyboard shortcuts.
    KEY_HELP = (
        ("Delete the selected annotation", (Qt.Key.Key_Delete, Qt.Key.Key_Backspace)),
        ("Drop the annotation being drawn or moved", (Qt.Key.Key_Escape,)),
    )

    shape_drawn = Signal(str, str, dict)
    text_placed = Signal(str, float, float)
    shape_moved = Signal(int, dict)
    shape_activated = Signal(int)
    delete_requested = Signal(int)
    selection_changed = Signal(object)

    def __init__(
        self, side: str, placeholder: str = "Drop a crop here", parent: QWidget | None = None
    ) -> None:
        super().__init__(placeholder, parent)
        self.side = side
        self.shapes: list[Shape] = []
        self.selected: int | None = None
        self.tool = "select"
        self.editable = False
        self._press: QPointF | None = None
        self._current: QPointF | None = None
        self._grabbed: Shape | None = None
        self.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.setMouseTracking(False)

    # -- state --------------------------------------------------------------------------------------------------
    def set_shapes(self, shapes: Sequence[Shape]) -> None:
        self.shapes = [s for s in shapes if s.side == self.side]
        if self.selected is not None and all(s.key != self.selected for s in self.shapes):
            self.select(None)
        self.update()

    def set_tool(self, tool: str) -> None:
        if tool not in TOOLS:
            raise ValueError(f"unknown tool {tool!r}")
        self.tool = tool
        self.setCursor(Qt.CursorShape.ArrowCursor if tool == "select" else Qt.CursorShape.CrossCursor)

    def select(self, key: int | None) -> None:
        if key != self.selected:
            self.selected = key
            self.selection_changed.emit(key)
            self.update()

    # -- coordinates ----------------------------------------------------------------------------------------------
    def scale(self) -> float:
        """Screen pixels per crop pixel (0 without a crop)."""
        image = self.image
        rect = self.image_rect()
        return 0.0 if image is None or rect.isEmpty() else rect.width() / image.shape[1]

    def to_widget(self, x: float, y: float) -> QPointF:
        r, s = self.image_rect(), self.scale()
        return QPointF(r.x() + x * s, r.y() + y * s)

    def to_crop(self, point: QPointF, clamp: bool = True) -> tuple[float, float]:
        r, s = self.image_rect(), self.scale()
        x, y = (point.x() - r.x()) / s, (point.y() - r.y()) / s
        if clamp and self.image is not None:
            h, w = self.image.shape[:2]
            x, y = min(max(x, 0.0), float(w)), min(max(y, 0.0), float(h))
        return round(x, 1), round(y, 1)

    def _label_font(self) -> QFont:
        font = QFont(self.font())
        font.setPointSizeF(9.5)
        font.setBold(True)
        return font

    def label_lines(self, shape: Shape) -> list[str]:
        """The label as painted: wrapped to the crop's width, and cut with an ellipsis if still too long."""
        if not shape.label:
            return []
        metrics = QFontMetricsF(self._label_font())
        return wrap_label(shape.label, metrics, max(self.image_rect().width() - 2 * LABEL_PAD_X, 1.0))

    def label_rect(self, shape: Shape) -> QRectF | None:
        """Where a shape's label is painted, in widget coordinates."""
        lines = self.label_lines(shape)
        if not lines:
            return None
        g = shape.geometry
        metrics = QFontMetricsF(self._label_font())
        w = max(metrics.horizontalAdvance(line) for line in lines) + 2 * LABEL_PAD_X
        h = metrics.height() * len(lines) + 2 * LABEL_PAD_Y
        area = self.image_rect()
        if shape.kind == "rect":
            corner = self.to_widget(g["x"], g["y"])
            x, y = corner.x(), corner.y() - h - 1
            # A label that would leave the crop's top goes just inside the rectangle instead.
            if y < area.top():
                y = corner.y() + 1
        elif shape.kind == "arrow":
            tail = self.to_widget(g["x1"], g["y1"])
            x, y = tail.x() + 2, tail.y() + 2
        else:
            corner = self.to_widget(g["x"], g["y"])
            x, y = corner.x(), corner.y()
        # Labels stay on the crop (the painting is clipped to it), shifted in from its edges.
        x = max(area.left(), min(x, area.right() - w))
        y = max(area.top(), min(y, area.bottom() - h))
        return QRectF(x, y, w, h)

    def shape_at(self, point: QPointF) -> Shape | None:
        """The topmost shape under a widget point (rectangles by their outline or inside, arrows by the line)."""
        s = self.scale()
        if s <= 0:
            return None
        for shape in reversed(self.shapes):
            label = self.label_rect(shape)
            if label is not None and label.adjusted(-2, -2, 2, 2).contains(point):
                return shape
            g = shape.geometry
            if shape.kind == "rect":
                a, b = self.to_widget(g["x"], g["y"]), self.to_widget(g["x"] + g["w"], g["y"] + g["h"])
                if QRectF(a, b).normalized().adjusted(-PICK_PX, -PICK_PX, PICK_PX, PICK_PX).contains(point):
                    return shape
            elif shape.kind == "arrow":
                a, b = self.to_widget(g["x1"], g["y1"]), self.to_widget(g["x2"], g["y2"])
                if _segment_distance(point, a, b) <= PICK_PX:
                    return shape
        return None

    # -- painting ---------------------------------------------------------------------------------------------------
    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        if self.image is None or self.scale() <= 0:
            return
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setClipRect(self.image_rect().adjusted(-1, -1, 1, 1))
        for shape in self.shapes:
            if self._grabbed is not None and shape.key == self._grabbed.key and self._current is not None:
                shape = replace(shape, geometry=self._drag_geometry(shape))
            self._paint_shape(painter, shape, shape.key == self.selected)
        preview = self._preview()
        if preview is not None:
            self._paint_shape(painter, preview, False)
        painter.end()

    def _paint_shape(self, painter: QPainter, shape: Shape, selected: bool) -> None:
        colour = _colour(shape)
        painter.setPen(QPen(colour, 2.0))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        g = shape.geometry
        bounds: QRectF | None = None
        if shape.kind == "rect":
            bounds = QRectF(self.to_widget(g["x"], g["y"]), self.to_widget(g["x"] + g["w"], g["y"] + g["h"]))
            painter.drawRect(bounds)
        elif shape.kind == "arrow":
            tail, head = self.to_widget(g["x1"], g["y1"]), self.to_widget(g["x2"], g["y2"])
            painter.drawLine(QLineF(tail, head))
            angle = math.atan2(head.y() - tail.y(), head.x() - tail.x())
            size = 11.0
            for turn in (-0.45, 0.45):
                end = QPointF(
                    head.x() - size * math.cos(angle + turn), head.y() - size * math.sin(angle + turn)
                )
                painter.drawLine(QLineF(head, end))
            bounds = QRectF(tail, head).normalized()
        label = self.label_rect(shape)
        if label is not None:
            painter.setFont(self._label_font())
            painter.fillRect(label, QColor(0, 0, 0, 190))
            painter.setPen(colour)
            line_height = QFontMetricsF(self._label_font()).height()
            for n, line in enumerate(self.label_lines(shape)):
                painter.drawText(
                    QRectF(
                        label.x() + LABEL_PAD_X,
                        label.y() + LABEL_PAD_Y + n * line_height,
                        label.width() - 2 * LABEL_PAD_X,
                        line_height,
                    ),
                    Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                    line,
                )
            bounds = label if bounds is None else bounds.united(label)
        if selected and bounds is not None:
            pen = QPen(QColor(255, 255, 255), 1.0, Qt.PenStyle.DashLine)
            painter.setPen(pen)
            painter.setBrush(QBrush(Qt.BrushStyle.NoBrush))
            painter.drawRect(
                bounds.adjusted(-3, -3, 3, 3).intersected(self.image_rect().adjusted(0, 0, -1, -1))
            )

    def _preview(self) -> Shape | None:
        if self._press is None or self._current is None or self._grabbed is not None:
            return None
        geometry = self._drawn_geometry()
        return None if geometry is None else Shape(-1, self.side, self.tool, geometry)

    def _drawn_geometry(self) -> dict[str, float] | None:
        if self._press is None or self._current is None:
            return None
        (x1, y1), (x2, y2) = self.to_crop(self._press), self.to_crop(self._current)
        if self.tool == "rect":
            return {
                "x": min(x1, x2),
                "y": min(y1, y2),
                "w": round(abs(x2 - x1), 1),
                "h": round(abs(y2 - y1), 1),
            }
        if self.tool == "arrow":
            return {"x1": x1, "y1": y1, "x2": x2, "y2": y2}
        return None

    def _drag_geometry(self, shape: Shape) -> dict[str, float]:
        s = self.scale()
        delta = self._current - self._press
        return moved(shape, delta.x() / s, delta.y() / s)

    def label_tooltip(self, point: QPointF) -> str:
        """The whole text of the label under a widget point ("" when none): the crop may show it shortened."""
        for shape in reversed(self.shapes):
            rect = self.label_rect(shape)
            if rect is not None and rect.contains(point):
                return shape.label or ""
        return ""

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ShortcutOverride and isinstance(event, QKeyEvent):
            # The window's own keys (Escape cancels the current job) would take the key first.
            if event.modifiers() == Qt.KeyboardModifier.NoModifier and self._handles_key(event.key()):
                event.accept()
                return True
        if event.type() == QEvent.Type.ToolTip and isinstance(event, QHelpEvent):
            text = self.label_tooltip(QPointF(event.pos()))
            if text:
                QToolTip.showText(event.globalPos(), text, self)
            else:
                QToolTip.hideText()
                event.ignore()
            return True
        return super().event(event)

    # -- mouse and keys ---------------------------------------------------------------------------------------------
    def mousePressEvent(self, event: QMouseEvent) -> None:
        if not self.editable or self.image is None or event.button() != Qt.MouseButton.LeftButton:
            super().mousePressEvent(event)
            return
        point = event.position()
        if self.tool == "text":
            if self.image_rect().contains(point):
                self.text_placed.emit(self.side, *self.to_crop(point))
            return
        if self.tool == "select":
            hit = self.shape_at(point)
            self.select(None if hit is None else hit.key)
            self._grabbed = hit
            self._press = self._current = point if hit is not None else None
            return
        if self.image_rect().contains(point):
            self._press = self._current = point

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._press is not None:
            self._current = event.position()
            self.update()
        else:
            super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._press is None:
            super().mouseReleaseEvent(event)
            return
        self._current = event.position()
        dragged = QLineF(self._press, self._current).length() >= MIN_DRAG_PX
        grabbed = self._grabbed
        geometry = self._drag_geometry(grabbed) if grabbed is not None else self._drawn_geometry()
        self._press = self._current = self._grabbed = None
        self.update()
        if not dragged or geometry is None:
            return
        if grabbed is not None:
            self.shape_moved.emit(grabbed.key, geometry)
        else:
            self.shape_drawn.emit(self.side, self.tool, geometry)

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        hit = self.shape_at(event.position()) if self.editable else None
        if hit is not None:
            self.select(hit.key)
            self.shape_activated.emit(hit.key)
        else:
            super().mouseDoubleClickEvent(event)

    def _handles_key(self, key: int) -> bool:
        """Whether this view acts on ``key`` now: Delete or Backspace with a shape selected, Escape while a
        shape is being drawn or moved."""
        if key in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace):
            return self.editable and self.selected is not None
        return key == Qt.Key.Key_Escape and self._press is not None

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if not self._handles_key(event.key()):
            super().keyPressEvent(event)
        elif event.key() == Qt.Key.Key_Escape:
            self._press = self._current = self._grabbed = None
            self.update()
        elif self.selected is not None:
            self.delete_requested.emit(self.selected)


def _segment_distance(p: QPointF, a: QPointF, b: QPointF) -> float:
    ab = b - a
    length2 = ab.x() ** 2 + ab.y() ** 2
    t = 0.0 if length2 == 0 else max(0.0, min(1.0, QPointF.dotProduct(p - a, ab) / length2))
    closest = a + ab * t
    return math.hypot(p.x() - closest.x(), p.y() - closest.y())


# ---------------------------------------------------------------------- editing with undo


class _AnnotationCommand(QUndoCommand):
    """A change of one shape of one case item: applied on screen at once, in the store on the writer thread.

    When undone or redone while the view shows another item, only the store is changed.
    """

    def __init__(self, editor: AnnotationEditor, text: str) -> None:
        super().__init__(text)
        self.editor = editor
        self.item_id = editor.item_id
        self.submit = editor.submit


class AddAnnotationCommand(_AnnotationCommand):
    def __init__(self, editor: AnnotationEditor, shape: Shape) -> None:
        what = {"rect": "a rectangle", "arrow": "an arrow", "text": "a text"}.get(shape.kind, f"a {shape.kind}")
        super().__init__(editor, f"draw {what}")
        self.shape = shape

    def redo(self) -> None:
        s = self.shape
        self.editor.put(self.item_id, s)
        self.submit(
            case_ops.add_annotation, self.item_id, s.handle, s.side, s.kind, s.geometry, s.label, s.color
        )

    def undo(self) -> None:
        self.editor.drop(self.item_id, self.shape.key)
        self.submit(case_ops.delete_annotation, self.shape.handle)


class DeleteAnnotationCommand(_AnnotationCommand):
    def __init__(self, editor: AnnotationEditor, shape: Shape) -> None:
        super().__init__(editor, f"delete the {shape.kind}")
        self.shape = shape

    def redo(self) -> None:
        self.editor.drop(self.item_id, self.shape.key)
        self.submit(case_ops.delete_annotation, self.shape.handle)

    def undo(self) -> None:
        s = self.shape
        self.editor.put(self.item_id, s)
        self.submit(
            case_ops.add_annotation, self.item_id, s.handle, s.side, s.kind, s.geometry, s.label, s.color
        )


class ChangeAnnotationCommand(_AnnotationCommand):
    """Move a shape or change its label (``before`` and ``after`` differ in geometry or label)."""

    def __init__(self, editor: AnnotationEditor, before: Shape, after: Shape, text: str) -> None:
        super().__init__(editor, text)
        self.before, self.after = before, after

    def _apply(self, shape: Shape) -> None:
        self.editor.put(self.item_id, shape)
        changes = {"geometry": dict(shape.geometry), "label": shape.label}
        self.submit(case_ops.update_annotation, shape.handle, changes)

    def redo(self) -> None:
        self._apply(self.after)

    def undo(self) -> None:
        self._apply(self.before)


class AnnotationEditor(QObject):
    """The annotations of the case item open in the compare view, on both crop views.

    Args:
        views: The query and gallery views.

    Call :meth:`bind` with an undo stack and a store writer's ``submit`` (``submit(fn, *args)`` runs
    ``fn(ws, *args)`` on the writer thread) before annotating; :meth:`load` shows an item's annotations
    and enables editing.

    Signals:
        changed(): the shapes shown changed.
    """

    changed = Signal()

    def __init__(self, views: Sequence[AnnotatedCropViewWidget], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.views = {v.side: v for v in views}
        self.undo_stack: QUndoStack = QUndoStack(self)
        self.submit: Submit | None = None
        self.item_id: int | None = None
        self.shapes: dict[int, Shape] = {}
        self.colour = COLOURS[0][1]
        self._keys = itertools.count(1)
        self.text_dialog: QInputDialog | None = None
        for view in views:
            view.shape_drawn.connect(self._on_shape_drawn)
            view.text_placed.connect(self._on_text_placed)
            view.shape_moved.connect(self._on_shape_moved)
            view.shape_activated.connect(self._on_shape_activated)
            view.delete_requested.connect(self.delete)
            view.selection_changed.connect(lambda key, v=view: self._on_selection_changed(v, key))

    def bind(self, undo_stack: QUndoStack, submit: Submit) -> None:
        self.undo_stack, self.submit = undo_stack, submit
        for view in self.views.values():
            view.editable = self.editable
        self.changed.emit()

    @property
    def editable(self) -> bool:
        return self.item_id is not None and self.submit is not None

    # -- what is shown ------------------------------------------------------------------------------------------------
    def load(self, item_id: int | None, annotations: Sequence[Any] = ()) -> None:
        """Show the stored annotations of item ``item_id`` (``None``: no item, nothing to edit)."""
        self.item_id = item_id
        self.shapes = {}
        for a in annotations:
            key = next(self._keys)
            self.shapes[key] = Shape(
                key, a.side, a.kind, dict(a.geometry), a.label, a.color, case_ops.AnnotationHandle(a.id)
            )
        for view in self.views.values():
            view.editable = self.editable
        self._show()

    def put(self, item_id: int | None, shape: Shape) -> None:
        if item_id == self.item_id:
            self.shapes[shape.key] = shape
            self._show()

    def drop(self, item_id: int | None, key: int) -> None:
        if item_id == self.item_id and self.shapes.pop(key, None) is not None:
            self._show()

    def _show(self) -> None:
        for view in self.views.values():
            view.set_shapes(sorted(self.shapes.values(), key=lambda s: s.key))
        self.changed.emit()

    def selected(self) -> Shape | None:
        for view in self.views.values():
            if view.selected is not None and view.selected in self.shapes:
                return self.shapes[view.selected]
        return None

    def set_tool(self, tool: str) -> None:
        for view in self.views.values():
            view.set_tool(tool)

    # -- changes ------------------------------------------------------------------------------------------------------
    def add(
        self,
        side: str,
        kind: str,
        geometry: dict[str, float],
        label: str | None = None,
        color: str | None = None,
    ) -> Shape | None:
        """Pin a new shape on a crop (undoable); returns it, or ``None`` when no item is open."""
        if not self.editable:
            return None
        if side not in SIDES:
            raise ValueError(f"unknown side {side!r}")
        shape = Shape(next(self._keys), side, kind, dict(geometry), label, color or self.colour)
        self.undo_stack.push(AddAnnotationCommand(self, shape))
        return shape

    def delete(self, key: int) -> None:
        shape = self.shapes.get(key)
        if shape is not None and self.editable:
            self.undo_stack.push(DeleteAnnotationCommand(self, shape))

    def delete_selected(self) -> None:
        shape = self.selected()
        if shape is not None:
            self.delete(shape.key)

    def move(self, key: int, geometry: dict[str, float]) -> None:
        shape = self.shapes.get(key)
        if shape is not None and self.editable and geometry != shape.geometry:
            after = replace(shape, geometry=dict(geometry))
            self.undo_stack.push(ChangeAnnotationCommand(self, shape, after, f"move the {shape.kind}"))

    def relabel(self, key: int, label: str) -> None:
        """Change a shape's label ("" removes it; a text annotation keeps at least one character)."""
        shape = self.shapes.get(key)
        label = label.strip()
        if shape is None or not self.editable or (shape.kind == "text" and not label):
            return
        if (label or None) != shape.label:
            after = replace(shape, label=label or None)
            self.undo_stack.push(ChangeAnnotationCommand(self, shape, after, f"label the {shape.kind}"))

    # -- gestures -----------------------------------------------------------------------------------------------------
    def _on_shape_drawn(self, side: str, kind: str, geometry: dict) -> None:
        self.add(side, kind, geometry)

    def _ask_text(self, title: str, prompt: str, text: str, done: Callable[[str], None]) -> QInputDialog:
        dialog = QInputDialog(next(iter(self.views.values())).window())
        dialog.setObjectName("annotation_text_dialog")
        dialog.setWindowTitle(title)
        dialog.setLabelText(prompt)
        dialog.setTextValue(text)
        dialog.textValueSelected.connect(done)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
        dialog.open()
        self.text_dialog = dialog
        return dialog

    def _on_text_placed(self, side: str, x: float, y: float) -> None:
        def done(text: str) -> None:
            if text.strip():
                self.add(side, "text", {"x": x, "y": y}, label=text.strip())

        self._ask_text("Text annotation", "Text to pin on the crop:", "", done)

    def _on_shape_moved(self, key: int, geometry: dict) -> None:
        self.move(key, geometry)

    def _on_shape_activated(self, key: int) -> None:
        shape = self.shapes.get(key)
        if shape is None:
            return
        what = (
            "Text"
            if shape.kind == "text"
            else f"Caption of the {'rectangle' if shape.kind == 'rect' else 'arrow'}"
        )
        self._ask_text("Edit annotation", f"{what}:", shape.label or "", lambda text: self.relabel(key, text))

    def _on_selection_changed(self, view: AnnotatedCropViewWidget, key: int | None) -> None:
        # One selection across both crops: picking a shape on one side clears the other's.
        if key is not None:
            for other in self.views.values():
                if other is not view:
                    other.select(None)
