"""Horizontal bar chart of the per-attribute components of a distance (pyqtgraph)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPoint, QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetricsF
from PySide6.QtWidgets import QMenu, QVBoxLayout, QWidget

from amd.visual import EVEN_COLOUR as VISUAL_EVEN_COLOUR
from amd.visual import even_share_text

DIFFER_COLOUR = QColor(231, 111, 81)
COMMON_COLOUR = QColor(42, 157, 143)
UNKNOWN_COLOUR = QColor(120, 144, 176)
#: The bar that stands for the attributes too small to get a row of their own.
OTHER_COLOUR = QColor(200, 200, 200)
#: Bars that are not marked while some are (the top-3 mode colours only its three).
MUTED_COLOUR = QColor(175, 175, 175)
SELECTED_PEN = pg.mkPen(QColor(20, 20, 20), width=2)
#: The even-share line: where every bar would end if the distance were split evenly over the attributes.
EVEN_COLOUR = QColor(*VISUAL_EVEN_COLOUR)
EVEN_PEN = pg.mkPen(EVEN_COLOUR, width=1.5, style=Qt.PenStyle.DashLine)
#: Space between two rows' labels, in pixels, on top of the label's own height.
ROW_GAP_PX = 3
#: Rows kept however small the chart: the three largest attributes and the rest.
MIN_ROWS = 4
#: Width, in pixels, kept for the bars beside the widest label when the chart is as narrow as it gets.
MIN_BARS_PX = 60
#: What the chart's minimum width makes room for before it has data.
NOMINAL_LABEL = "short lower-body clothing  10.0%"
#: Decimals of every distance the GUI shows. Search reads embeddings stored as float16, a comparison
#: embeds the crops afresh: the two differ by up to about 1e-3 on distances of 20 to 50, which two
#: decimals do not show.
DISTANCE_DECIMALS = 2


def row_text(label: str, share: float) -> str:
    """A row's label as the chart writes it: the attribute (or "other N attributes") and its share."""
    return f"{label}  {100 * share:.1f}%"


def format_distance(value: float, sign: bool = False) -> str:
    """A distance (or a part or difference of one) as the GUI writes it: :data:`DISTANCE_DECIMALS` decimals."""
    return f"{value:{'+' if sign else ''}.{DISTANCE_DECIMALS}f}"


@dataclass(frozen=True)
class ChartRow:
    """One bar of the chart: a single attribute, or the sum of the attributes left out (``members``)."""

    text: str
    component: float
    share: float
    members: tuple[int, ...]

    @property
    def is_other(self) -> bool:
        return len(self.members) != 1


class _BottomAxis(pg.AxisItem):
    """The bottom axis, whose title moves left, under the labels, when the bars are narrower than it.

    Its figures may reach past its ends by half a figure: the "0" under the bars' common start is centred
    on the axis' left end, and pyqtgraph leaves out every figure that does not fit its bounding rectangle.
    """

    #: How far (pixels) the figures may reach past either end of the axis.
    OVERHANG_PX = 15

    def boundingRect(self) -> QRectF:  # noqa: N802
        return super().boundingRect().adjusted(-self.OVERHANG_PX, 0, self.OVERHANG_PX, 0)

    def resizeEvent(self, ev=None) -> None:
        super().resizeEvent(ev)
        if self.label is None:
            return
        right = self.size().width() - self.label.boundingRect().width()
        pos = self.label.pos()
        if pos.x() > right:
            self.label.setPos(right, pos.y())


class ContributionChartWidget(QWidget):
    """Bars of c_m = d_m / M sorted by share (largest on top), labelled with readable names.

    Differing attributes (the two crops disagree on it) and common ones are coloured apart; clicking
    a bar or its label emits :attr:`attribute_clicked` with the attribute's position in the schema.

    A dashed vertical line marks the even share, the sum of the components divided by M: where every
    bar would end if the distance were split evenly, so the attributes that stand out end right of it.

    Every row is at least one label high, so labels never overlap: when the chart is too short for
    all attributes, the largest ones keep their own rows and the rest share one last bar, "other N
    attributes", with their summed share. Its tooltip lists them, and clicking it offers them in a menu.
    """

    attribute_clicked = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plot = pg.PlotWidget(background="w", axisItems={"bottom": _BottomAxis("bottom")})
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        self.plot.showGrid(x=True, y=False, alpha=0.25)
        self.plot.setLabel("bottom", "component d_m / M")
        self.plot.getAxis("bottom").enableAutoSIPrefix(False)
        self.font_ = QFont()
        self.font_.setPointSize(9)
        for axis in ("left", "bottom"):
            self.plot.getAxis(axis).setStyle(tickFont=self.font_)
            self.plot.getAxis(axis).setTextPen(pg.mkPen(QColor(40, 40, 40)))
        # One bar item, created once and updated with setOpts (pyqtgraph's cheap path).
        self.bars = pg.BarGraphItem(x0=[], y=[], height=0.7, width=[], brushes=[])
        self.plot.addItem(self.bars)
        # The sum of the "other" bar when it is longer than the scale (the view clips the bar itself).
        self.off_scale = pg.TextItem("", color=QColor(60, 60, 60), anchor=(1.0, 0.5))
        self.off_scale.setFont(self.font_)
        self.plot.addItem(self.off_scale)
        self.even_line = pg.InfiniteLine(angle=90, movable=False, pen=EVEN_PEN)
        self.even_line.setZValue(10)
        self.even_line.setVisible(False)
        self.plot.addItem(self.even_line)
        self.plot.scene().sigMouseClicked.connect(self._on_scene_clicked)
        self.plot.scene().sigMouseMoved.connect(self._on_scene_mouse_moved)
        self.plot.getPlotItem().vb.sigResized.connect(self._on_view_resized)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot)
        # Room for MIN_ROWS rows above the bottom axis and its title (about 40 px with this font).
        self.setMinimumHeight(
            MIN_ROWS * self.row_height_px() + math.ceil(3 * QFontMetricsF(self.font_).height())
        )
        self.order = np.zeros(0, dtype=int)
        self.labels: list[str] = []
        self.values = np.zeros(0)
        self.shares = np.zeros(0)
        self.selected: int | None = None
        self.marks: dict[int, QColor] = {}
        self.rows: list[ChartRow] = []
        self.other_menu: QMenu | None = None
        self._differ: np.ndarray | None = None

    # -- data -------------------------------------------------------------------------------------------------
    def set_data(
        self,
        labels: Sequence[str],
        components: Sequence[float],
        shares: Sequence[float],
        differ: Sequence[bool] | None = None,
    ) -> None:
        """Show one explanation.

        Args:
            labels: Readable attribute labels in schema order (M).
            components: c_m (M,).
            shares: p_m (M,), used for the order and the percentages.
            differ: (M,) whether the two crops differ in each attribute, or ``None`` when unknown.
        """
        self.labels = list(labels)
        self.values = np.asarray(components, dtype=float)
        self.shares = np.asarray(shares, dtype=float)
        self._differ = None if differ is None else np.asarray(differ, dtype=bool)
        # Largest share first (ties keep schema order), the order the rows are filled in.
        self.order = np.argsort(-self.shares, kind="stable")
        self._redraw()
        self.updateGeometry()

    def clear(self) -> None:
        self.set_data([], [], [], None)

    def select(self, index: int | None) -> None:
        """Outline the bar of attribute ``index`` (schema position)."""
        self.selected = index
        self._redraw()

    def set_marks(self, colours: Mapping[int, QColor] | None) -> None:
        """Paint the bars of some attributes (schema positions) in their own colours, and the others grey.

        ``None`` or an empty mapping goes back to the differing / common colours.
        """
        self.marks = dict(colours or {})
        self._redraw()

    def even_component(self) -> float | None:
        """Where the even-share line stands: the sum of the components over M (``None`` without data)."""
        if not len(self.values):
            return None
        return float(self.values.sum()) / len(self.values)

    def bar_count(self) -> int:
        """Number of attributes shown (some may share the "other" bar)."""
        return len(self.values)

    def colour_of(self, index: int) -> QColor:
        if self.marks:
            return self.marks.get(index, MUTED_COLOUR)
        if self._differ is None:
            return UNKNOWN_COLOUR
        return DIFFER_COLOUR if self._differ[index] else COMMON_COLOUR

    # -- layout -----------------------------------------------------------------------------------------------
    def row_height_px(self) -> int:
        """Height of one row, in pixels: a label and a small gap."""
        return math.ceil(QFontMetricsF(self.font_).height()) + ROW_GAP_PX

    def capacity(self) -> int:
        """How many rows fit in the plot's current height (at least :data:`MIN_ROWS`)."""
        height = self.plot.getPlotItem().vb.height()
        if height <= 0:
            return max(len(self.values), MIN_ROWS)
        return max(MIN_ROWS, int(height // self.row_height_px()))

    def label_texts(self) -> list[str]:
        """The texts the left axis may show for this data, whatever the chart's height.

        The "other" row is counted at its widest (every attribute, 100 %), so that no height needs more.
        """
        texts = [row_text(label, share) for label, share in zip(self.labels, self.shares, strict=True)]
        if len(self.labels) > MIN_ROWS:
            texts.append(row_text(f"other {len(self.labels)} attributes", 1.0))
        return texts or [NOMINAL_LABEL]

    def minimumSizeHint(self) -> QSize:
        """Room for the widest label beside :data:`MIN_BARS_PX` of bars, so that no label is cut."""
        hint = super().minimumSizeHint()
        metrics = QFontMetricsF(self.font_)
        axis = self.plot.getAxis("left")
        label = max(metrics.horizontalAdvance(text) for text in self.label_texts())
        # The axis puts its tick offset between the text and the bars; the frame takes a few pixels more.
        width = math.ceil(label) + axis.style["tickTextOffset"][0] + 8 + MIN_BARS_PX
        return QSize(max(hint.width(), width), hint.height())

    def _layout_rows(self, capacity: int) -> list[ChartRow]:
        """The rows top to bottom: the largest shares, then "other N attributes" when they do not all fit."""
        order = [int(i) for i in self.order]
        keep = order if len(order) <= capacity else order[: capacity - 1]
        rows = [
            ChartRow(
                row_text(self.labels[i], self.shares[i]),
                float(self.values[i]),
                float(self.shares[i]),
                (i,),
            )
            for i in keep
        ]
        rest = tuple(order[len(keep) :])
        if rest:
            share = float(self.shares[list(rest)].sum())
            rows.append(
                ChartRow(
                    row_text(f"other {len(rest)} attributes", share),
                    float(self.values[list(rest)].sum()),
                    share,
                    rest,
                )
            )
        return rows

    def _redraw(self) -> None:
        self.rows = self._layout_rows(self.capacity())
        n = len(self.rows)
        # The first row goes on top: the y axis grows upwards, so row r sits at y = n - 1 - r.
        ys = np.arange(n - 1, -1, -1, dtype=float)
        widths = np.array([row.component for row in self.rows], dtype=float)
        brushes = [
            pg.mkBrush(OTHER_COLOUR if row.is_other else self.colour_of(row.members[0])) for row in self.rows
        ]
        pens = [SELECTED_PEN if self.selected in row.members else pg.mkPen(None) for row in self.rows]
        if n:
            self.bars.setOpts(x0=np.zeros(n), y=ys, width=widths, height=0.7, brushes=brushes, pens=pens)
        else:
            # pyqtgraph needs at least one pen to size an empty item; a single pen is accepted.
            self.bars.setOpts(
                x0=ys, y=ys, width=widths, height=0.7, brushes=None, pens=None, pen=pg.mkPen(None)
            )
        self.plot.getAxis("left").setTicks(
            [[(float(y), row.text) for y, row in zip(ys, self.rows, strict=True)]]
        )
        singles = [row.component for row in self.rows if not row.is_other]
        top = max(singles) if singles else 1.0
        right = top * 1.05 if top > 0 else 1.0
        self.plot.setXRange(0, right, padding=0)
        even = self.even_component()
        self.even_line.setVisible(even is not None)
        if even is not None:
            self.even_line.setValue(even)
            self.even_line.setToolTip(
                f"{even_share_text(len(self.values))}: a bar that ends right of this line carries more "
                "than its even part of the distance"
            )
        self.plot.setYRange(-0.6, max(n - 0.4, 0.4), padding=0)
        other = self.rows[-1] if self.rows and self.rows[-1].is_other else None
        if other is not None and other.component > right:
            self.off_scale.setText(f"sum {format_distance(other.component)} \u25b8")
            self.off_scale.setPos(right, 0.0)
            self.off_scale.setVisible(True)
        else:
            self.off_scale.setVisible(False)

    def _on_view_resized(self, _view=None) -> None:
        if len(self.values) and self._layout_rows(self.capacity()) != self.rows:
            self._redraw()

    # -- interaction ----------------------------------------------------------------------------------------
    def row_at(self, view_y: float) -> int | None:
        """Position in :attr:`rows` of the row at height ``view_y`` (view coordinates), or ``None``."""
        n = len(self.rows)
        y = round(view_y)
        if 0 <= y < n and abs(view_y - y) <= 0.5:
            return n - 1 - int(y)
        return None

    def index_at(self, view_point: QPointF) -> int | None:
        """Schema position of the single attribute's bar under a point in view coordinates, or ``None``."""
        row = self.row_at(view_point.y())
        if row is None or abs(view_point.y() - round(view_point.y())) > 0.35 or view_point.x() < 0:
            return None
        members = self.rows[row].members
        return members[0] if len(members) == 1 else None

    def tooltip(self, row: int) -> str:
        """What hovering row ``row`` says: the attribute's share and component, or the list of the others."""
        r = self.rows[row]
        if not r.is_other:
            label = self.labels[r.members[0]]
            return f"{label}: share {100 * r.share:.1f}%, component {format_distance(r.component)}"
        lines = "<br>".join(row_text(self.labels[i], self.shares[i]) for i in r.members)
        return (
            f"<b>{len(r.members)} attributes with the smallest shares</b> ({100 * r.share:.1f}% together, "
            f"components {format_distance(r.component)}); click to show one:<br>{lines}"
        )

    def _scene_row(self, scene_pos: QPointF, with_labels: bool = True) -> int | None:
        vb = self.plot.getPlotItem().vb
        axis = self.plot.getAxis("left")
        inside = vb.sceneBoundingRect().contains(scene_pos)
        on_label = with_labels and axis.sceneBoundingRect().contains(scene_pos)
        if not (inside or on_label):
            return None
        return self.row_at(vb.mapSceneToView(scene_pos).y())

    def _on_scene_mouse_moved(self, scene_pos: QPointF) -> None:
        row = self._scene_row(scene_pos)
        text = "" if row is None else self.tooltip(row)
        self.bars.setToolTip(text)
        self.plot.getAxis("left").setToolTip(text)

    def _on_scene_clicked(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            return
        row = self._scene_row(event.scenePos())
        if row is None:
            return
        members = self.rows[row].members
        if len(members) == 1:
            self.attribute_clicked.emit(members[0])
        else:
            self.show_other_menu(row, event.screenPos().toPoint())

    def show_other_menu(self, row: int, at: QPoint) -> QMenu:
        """Pop up the attributes of the "other" row; choosing one emits :attr:`attribute_clicked`."""
        if self.other_menu is not None:
            self.other_menu.deleteLater()
        menu = QMenu(self)
        menu.setObjectName("chart_other_menu")
        for i in self.rows[row].members:
            action = menu.addAction(row_text(self.labels[i], self.shares[i]))
            action.setCheckable(True)
            action.setChecked(i == self.selected)
            action.triggered.connect(lambda _checked=False, i=i: self.attribute_clicked.emit(i))
        menu.popup(at)
        self.other_menu = menu
        return menu

    def row_of(self, index: int) -> int:
        """Position in :attr:`rows` of the row that shows attribute ``index``."""
        return next(r for r, row in enumerate(self.rows) if index in row.members)

    def bar_scene_pos(self, index: int) -> QPointF:
        """Scene position of the middle of the bar showing attribute ``index`` (for tests and tooltips)."""
        row = self.row_of(index)
        n = len(self.rows)
        width = max(min(self.rows[row].component, self.plot.viewRange()[0][1]), 1e-9)
        return self.plot.getPlotItem().vb.mapViewToScene(QPointF(width / 2, n - 1 - row))
