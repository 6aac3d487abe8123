"""Horizontal bar chart of the per-attribute components of a distance (pyqtgraph)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, Signal
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import QVBoxLayout, QWidget

DIFFER_COLOUR = QColor(231, 111, 81)
COMMON_COLOUR = QColor(42, 157, 143)
UNKNOWN_COLOUR = QColor(120, 144, 176)
SELECTED_PEN = pg.mkPen(QColor(20, 20, 20), width=2)


class ContributionChartWidget(QWidget):
    """Bars of c_m = d_m / M sorted by share (largest on top), labelled with readable names.

    Differing attributes (the two crops disagree on it) and common ones are coloured apart; clicking
    a bar emits :attr:`attribute_clicked` with the attribute's position in the schema.
    """

    attribute_clicked = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plot = pg.PlotWidget(background="w")
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        self.plot.showGrid(x=True, y=False, alpha=0.25)
        self.plot.setLabel("bottom", "component d_m / M")
        self.plot.getAxis("bottom").enableAutoSIPrefix(False)
        font = QFont()
        font.setPointSize(9)
        for axis in ("left", "bottom"):
            self.plot.getAxis(axis).setStyle(tickFont=font)
            self.plot.getAxis(axis).setTextPen(pg.mkPen(QColor(40, 40, 40)))
        # One bar item, created once and updated with setOpts (pyqtgraph's cheap path).
        self.bars = pg.BarGraphItem(x0=[], y=[], height=0.7, width=[], brushes=[])
        self.plot.addItem(self.bars)
        self.plot.scene().sigMouseClicked.connect(self._on_scene_clicked)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot)
        self.order = np.zeros(0, dtype=int)
        self.labels: list[str] = []
        self.values = np.zeros(0)
        self.shares = np.zeros(0)
        self.selected: int | None = None
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
        # Largest share on top: the y axis grows upwards, so the largest gets the largest y.
        self.order = np.argsort(self.shares, kind="stable")
        self._redraw()

    def clear(self) -> None:
        self.set_data([], [], [], None)

    def select(self, index: int | None) -> None:
        """Outline the bar of attribute ``index`` (schema position)."""
        self.selected = index
        self._redraw()

    def bar_count(self) -> int:
        return len(self.values)

    def colour_of(self, index: int) -> QColor:
        if self._differ is None:
            return UNKNOWN_COLOUR
        return DIFFER_COLOUR if self._differ[index] else COMMON_COLOUR

    def _redraw(self) -> None:
        n = len(self.order)
        ys = np.arange(n, dtype=float)
        widths = self.values[self.order] if n else np.zeros(0)
        brushes = [pg.mkBrush(self.colour_of(int(i))) for i in self.order]
        pens = [SELECTED_PEN if int(i) == self.selected else pg.mkPen(None) for i in self.order]
        if n:
            self.bars.setOpts(x0=np.zeros(n), y=ys, width=widths, height=0.7, brushes=brushes, pens=pens)
        else:
            # pyqtgraph needs at least one pen to size an empty item; a single pen is accepted.
            self.bars.setOpts(
                x0=ys, y=ys, width=widths, height=0.7, brushes=None, pens=None, pen=pg.mkPen(None)
            )
        ticks = [
            (float(y), f"{self.labels[int(i)]}  {100 * self.shares[int(i)]:.1f}%")
            for y, i in zip(ys, self.order, strict=True)
        ]
        self.plot.getAxis("left").setTicks([ticks])
        top = float(widths.max()) if n else 1.0
        self.plot.setXRange(0, top * 1.05 if top > 0 else 1.0, padding=0)
        self.plot.setYRange(-0.6, max(n - 0.4, 0.4), padding=0)

    # -- interaction ----------------------------------------------------------------------------------------
    def index_at(self, view_point: QPointF) -> int | None:
        """Schema position of the bar under a point in view coordinates, or ``None``."""
        row = int(round(view_point.y()))
        if 0 <= row < len(self.order) and abs(view_point.y() - row) <= 0.35 and view_point.x() >= 0:
            return int(self.order[row])
        return None

    def _on_scene_clicked(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            return
        vb = self.plot.getPlotItem().vb
        if not vb.sceneBoundingRect().contains(event.scenePos()):
            return
        index = self.index_at(vb.mapSceneToView(event.scenePos()))
        if index is not None:
            self.attribute_clicked.emit(index)

    def bar_scene_pos(self, index: int) -> QPointF:
        """Scene position of the middle of attribute ``index``'s bar (for tests and tooltips)."""
        row = int(np.flatnonzero(self.order == index)[0])
        width = max(float(self.values[index]), 1e-9)
        return self.plot.getPlotItem().vb.mapViewToScene(QPointF(width / 2, row))
