"""The explained side-by-side comparison of two crops, with the annotations of an open case item.

A comparison is either live (two crops explained by the models) or a case item reopened from its
snapshot (no model runs). While a case item is open, the analyst can pin rectangles, arrows and text
on either crop (see :mod:`gui.widgets.annotations`); changing either crop closes the item.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QKeySequence, QShortcut, QUndoStack
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSlider,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from amd.errors import AmdError
from amd.visual import COLOUR_MAPS, TOP_COLOURS, blend, even_share_text, normalise_pair, top_regions
from gui.qt_util import FlowLayout
from gui.widgets.annotations import COLOURS, AnnotatedCropViewWidget, AnnotationEditor
from gui.widgets.chart import (
    COMMON_COLOUR,
    DIFFER_COLOUR,
    EVEN_COLOUR,
    MUTED_COLOUR,
    ContributionChartWidget,
    format_distance,
)
from gui.workers import Job, JobRunner, guarded

VERDICTS: tuple[str, ...] = ("match", "no match", "inconclusive")


def load_rgb(path: str) -> np.ndarray:
    """Decode an image file to (H, W, 3) uint8 (used for the two crops on screen only)."""
    from amd.data.images import read_rgb

    return np.asarray(read_rgb(path))


def _reading(probability: float) -> str:
    return f"{'yes' if probability >= 0.5 else 'no'}  {100 * probability:.0f}%"


def _swatch(colour: QColor) -> str:
    """A coloured square for rich-text legends."""
    return f"<span style='color:{colour.name()}; font-size:large'>&#9632;</span>"


def _entry(html: str) -> str:
    """One legend entry, kept on one line: a narrow legend wraps between entries, never inside one."""
    return f"<span style='white-space:nowrap'>{html}</span>"


def _even_mark(count: int) -> str:
    """The legend entry of the chart's dashed even-share line."""
    mark = f"<span style='color:{EVEN_COLOUR.name()}; font-weight:bold'>&#9478;</span>"
    return _entry(f"{mark} {even_share_text(count)}")


#: The top-3 mode's colours (first, second, third attribute), as drawn on the crops.
TOP_QCOLOURS: tuple[QColor, ...] = tuple(QColor(*rgb) for rgb in TOP_COLOURS)


class CompareWidget(QWidget):
    """Two drop targets, their overlays, the contribution chart, the figures and the verdict.

    Args:
        explain: ``explain(path_a, path_b) -> Explanation`` (runs on a worker thread).
        resolve: Maps a drop (``"crop"``, sha256) or (``"file"``, path) to an image path.
        runner: The job runner of the window.
        threshold: Distance below which the pair reads as "same person", or ``None``.

    Signals:
        explained(explanation): a new explanation is on screen.
        verdict_changed(verdict, notes): the analyst set a verdict.
        add_to_case_requested(): the analyst wants this comparison in a case.
        item_closed(item, verdict, notes): the case item on screen is being left, with the verdict
            (``None`` when none) and the notes shown for it at that moment.
    """

    explained = Signal(object)
    verdict_changed = Signal(str, str)
    add_to_case_requested = Signal()
    item_closed = Signal(object, object, str)

    def __init__(
        self,
        explain: Callable[[str, str], Any],
        resolve: Callable[[str, str], str],
        runner: JobRunner,
        threshold: float | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._explain, self._resolve, self.runner = explain, resolve, runner
        self.threshold = threshold
        self.paths: list[str | None] = [None, None]
        self.explanation: Any = None
        self.selected: int | None = None
        self.job: Job | None = None

        self.views = [
            AnnotatedCropViewWidget("query", "Drop crop A here"),
            AnnotatedCropViewWidget("gallery", "Drop crop B here"),
        ]
        for side, view in enumerate(self.views):
            view.dropped.connect(lambda kind, value, s=side: self.set_crop(s, self._resolve(kind, value)))
        self.case_item: Any = None
        self.case_title = ""
        self.annotations = AnnotationEditor(self.views, self)
        self.annotations.changed.connect(self._on_annotations_changed)

        self.attribute_box = QComboBox()
        self.attribute_box.setMinimumContentsLength(12)
        self.attribute_box.currentIndexChanged.connect(self._on_attribute_box_changed)
        self.cmap_box = QComboBox()
        self.cmap_box.addItems(COLOUR_MAPS)
        self.cmap_box.currentIndexChanged.connect(self._refresh_overlays)
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(60)
        self.opacity.valueChanged.connect(self._refresh_overlays)
        self.top3 = QCheckBox("Top 3")
        self.top3.setToolTip(
            "Outline where the three attributes with the largest shares are strongest, each in its own "
            "colour (Opacity sets the tint). Choosing an attribute goes back to its own map."
        )
        self.top3.toggled.connect(self._on_top3_toggled)
        # Which colour is which attribute in the top-3 mode (hidden otherwise).
        self.top3_legend = QLabel()
        self.top3_legend.setObjectName("top3_legend")
        self.top3_legend.setWordWrap(True)
        self.top3_legend.setVisible(False)

        crops = QWidget()
        grid = QGridLayout(crops)
        grid.setContentsMargins(0, 0, 4, 0)
        grid.addWidget(self.views[0], 0, 0)
        grid.addWidget(self.views[1], 0, 1)
        # Two rows, so that the slider keeps a usable width when the crops' pane is narrow.
        self.opacity.setMinimumWidth(70)
        controls = QGridLayout()
        controls.addWidget(QLabel("Attribute"), 0, 0)
        controls.addWidget(self.attribute_box, 0, 1)
        controls.addWidget(self.top3, 0, 2)
        self.cmap_label = QLabel("Colours")
        controls.addWidget(self.cmap_label, 1, 0)
        colours = QHBoxLayout()
        colours.addWidget(self.cmap_box)
        colours.addSpacing(12)
        colours.addWidget(QLabel("Opacity"))
        colours.addWidget(self.opacity, 1)
        controls.addLayout(colours, 1, 1, 1, 2)
        controls.setColumnStretch(1, 1)
        grid.addLayout(controls, 1, 0, 1, 2)
        grid.addWidget(self.top3_legend, 2, 0, 1, 2)
        grid.addWidget(self._annotation_bar(), 3, 0, 1, 2)

        self.chart = ContributionChartWidget()
        self.chart.attribute_clicked.connect(self._on_attribute_chosen)
        self.chart_legend = QLabel()
        self.chart_legend.setWordWrap(True)
        self.distance_label = QLabel("-")
        self.sum_label = QLabel("-")
        self.gap_label = QLabel("-")
        self.reading_label = QLabel("-")
        self.reading_label.setWordWrap(True)
        self.status_label = QLabel("Drop two crops to compare them.")
        self.status_label.setWordWrap(True)
        figures = QFormLayout()
        figures.addRow("Target distance", self.distance_label)
        figures.addRow("Sum of components", self.sum_label)
        figures.addRow("Gap", self.gap_label)
        figures.addRow("Reading", self.reading_label)

        self.predicted = QTableWidget(0, 3)
        self.predicted.setHorizontalHeaderLabels(["Attribute", "Crop A", "Crop B"])
        self.predicted.verticalHeader().setVisible(False)
        self.predicted.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.predicted.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.predicted.setWordWrap(False)
        self.predicted.verticalHeader().setDefaultSectionSize(self.predicted.fontMetrics().height() + 6)
        for col in (1, 2):
            self.predicted.horizontalHeader().setSectionResizeMode(
                col, QHeaderView.ResizeMode.ResizeToContents
            )

        verdict_box = QGroupBox("Verdict")
        self.verdict_box = verdict_box
        self.shortcuts: list[QShortcut] = []
        self.verdict_buttons = QButtonGroup(self)
        # A grid of equal buttons: one row when the pane is wide enough, else two.
        verdict_bar = QWidget()
        row = FlowLayout(verdict_bar, uniform=True)
        row.setContentsMargins(0, 0, 0, 0)
        for i, (text, key) in enumerate((("Match", "1"), ("No match", "2"), ("Inconclusive", "3"))):
            button = QPushButton(f"{text}  [{key}]")
            button.setCheckable(True)
            self.verdict_buttons.addButton(button, i)
            row.addWidget(button)
            self.shortcuts.append(
                QShortcut(QKeySequence(key), self, activated=lambda i=i: self.set_verdict(VERDICTS[i]))
            )
        self.verdict_buttons.idClicked.connect(lambda i: self.set_verdict(VERDICTS[i]))
        self.notes = QPlainTextEdit()
        self.notes.setPlaceholderText("Notes on this pair")
        self.notes.setMaximumHeight(70)
        self.add_to_case = QPushButton("Add to case")
        self.add_to_case.clicked.connect(self.add_to_case_requested)
        vb = QVBoxLayout(verdict_box)
        vb.addWidget(verdict_bar)
        vb.addWidget(self.notes)
        vb.addWidget(self.add_to_case)
        self._update_pair_controls()

        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(4, 0, 0, 0)
        rl.addWidget(self.status_label)
        rl.addWidget(self.chart, 4)
        rl.addWidget(self.chart_legend)
        rl.addLayout(figures)
        rl.addWidget(self.predicted, 2)
        rl.addWidget(verdict_box)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(crops)
        splitter.addWidget(right)
        self._show_top3()
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        # The right pane's size hint (chart and table) would otherwise squeeze the crops.
        splitter.setSizes([560, 440])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(splitter)
        self.splitter = splitter

    def _annotation_bar(self) -> QWidget:
        """Tools to annotate the crops of the open case item, and which item that is."""
        # The tools wrap onto a second row when the crops' pane is narrow.
        tools = QWidget()
        row = FlowLayout(tools)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(QLabel("Annotate"))
        self.tool_buttons = QButtonGroup(self)
        for tool, text, tip in (
            (
                "select",
                "Select",
                "Pick a shape: drag it to move it, double-click to edit its text, Delete removes it",
            ),
            ("rect", "Rectangle", "Drag on a crop to frame a region"),
            ("arrow", "Arrow", "Drag from the tail to the point shown"),
            ("text", "Text", "Click on a crop where the text should go"),
        ):
            button = QToolButton()
            button.setText(text)
            button.setToolTip(tip)
            button.setCheckable(True)
            button.setObjectName(f"tool_{tool}")
            button.setChecked(tool == "select")
            button.clicked.connect(lambda _c=False, t=tool: self.annotations.set_tool(t))
            self.tool_buttons.addButton(button)
            row.addWidget(button)
        self.colour_box = QComboBox()
        for name, value in COLOURS:
            self.colour_box.addItem(name, value)
            self.colour_box.setItemData(
                self.colour_box.count() - 1, QColor(value), Qt.ItemDataRole.DecorationRole
            )
        self.colour_box.currentIndexChanged.connect(
            lambda i: setattr(self.annotations, "colour", self.colour_box.itemData(i))
        )
        row.addWidget(self.colour_box)
        self.delete_shape_button = QToolButton()
        self.delete_shape_button.setText("Delete")
        self.delete_shape_button.setToolTip("Delete the selected shape (Delete key)")
        self.delete_shape_button.clicked.connect(self.annotations.delete_selected)
        row.addWidget(self.delete_shape_button)
        # Its own row: a case title is free text and would squeeze the tools.
        self.case_label = QLabel()
        self.case_label.setWordWrap(True)
        bar = QWidget()
        box = QVBoxLayout(bar)
        box.setContentsMargins(0, 2, 0, 0)
        box.addWidget(tools)
        box.addWidget(self.case_label)
        self._on_annotations_changed()
        return bar

    def bind_store(self, undo_stack: QUndoStack, submit: Callable[..., Any]) -> None:
        """Where annotation changes go: an undo stack, and a writer's ``submit(fn, *args)``."""
        self.annotations.bind(undo_stack, submit)

    def _on_annotations_changed(self) -> None:
        editable = self.annotations.editable
        for button in self.tool_buttons.buttons():
            button.setEnabled(editable)
        self.colour_box.setEnabled(editable)
        self.delete_shape_button.setEnabled(editable)
        if self.case_item is None:
            self.case_label.setText("<i>Add the pair to a case to annotate it.</i>")
        else:
            n = len(self.annotations.shapes)
            self.case_label.setText(
                f"Case <b>{self.case_title}</b>, item {self.case_item.position + 1}: "
                f"{n} annotation{'s' * (n != 1)}"
            )

    # -- case items -----------------------------------------------------------------------------------------
    def bind_item(self, item: Any, case_title: str) -> None:
        """This comparison is now case item ``item`` (a ``CaseItemInfo``): its annotations become editable."""
        self.case_item, self.case_title = item, case_title
        self.annotations.load(item.id, item.annotations)
        self._update_pair_controls()

    def close_item(self) -> None:
        """The comparison is no longer a case item (its shapes leave the crops)."""
        if self.case_item is not None:
            self.item_closed.emit(self.case_item, self.verdict(), self.notes.toPlainText())
        self.case_item, self.case_title = None, ""
        self.annotations.load(None)
        self._update_pair_controls()

    def show_item(self, opened: Any) -> None:
        """Show a filed pair again (a ``cli.case_ops.OpenedItem``): crops, explanation, verdict, notes, shapes.

        The explanation comes from the item's snapshot; no model runs.
        """
        if self.job is not None:
            self.job.cancel()
        if self.case_item is not None:
            self.close_item()  # before its notes are replaced, so that they can be saved
        images = []
        for path in (opened.path_query, opened.path_gallery):
            try:
                images.append(load_rgb(path))
            except (OSError, AmdError) as exc:
                self.status_label.setText(f"Cannot show the filed pair: {exc}")
                return
        self.paths = [opened.path_query, opened.path_gallery]
        for side, (view, rgb) in enumerate(zip(self.views, images, strict=True)):
            view.set_image(rgb, caption=f"{'AB'[side]}: {rgb.shape[1]}x{rgb.shape[0]}")
        self._set_explanation(opened.explanation)
        item = opened.item
        self.status_label.setText(
            "" if opened.explanation is not None else "This pair was filed without an explanation."
        )
        self._show_verdict(item.verdict)
        self.notes.setPlainText(item.notes or "")
        self.bind_item(item, opened.case.title)

    def pair_shown(self) -> bool:
        """Whether both crops are on screen (a verdict needs a pair)."""
        return all(self.paths) and all(view.image is not None for view in self.views)

    def _update_pair_controls(self) -> None:
        """Verdict, notes and "Add to case" work on a pair: off until one is shown, and say why."""
        shown = self.pair_shown()
        for widget in (*self.verdict_buttons.buttons(), self.notes):
            widget.setEnabled(shown)
        for shortcut in self.shortcuts:
            shortcut.setEnabled(shown)
        self.verdict_box.setToolTip("" if shown else "Compare two crops first: drop one on each side.")
        ready = shown and self.explanation is not None
        self.add_to_case.setEnabled(ready)
        if self.case_item is not None:
            # The pair is filed already: the button saves its verdict and notes with that item.
            self.add_to_case.setText("Update case item")
            self.add_to_case.setToolTip(
                f"Save the verdict and notes with item {self.case_item.position + 1} of case "
                f"'{self.case_title}'"
            )
        else:
            self.add_to_case.setText("Add to case")
            self.add_to_case.setToolTip(
                "File this pair, with its explanation, verdict and notes, in a case"
                if ready
                else "Compare two crops first (and wait for the explanation)."
            )

    def _show_verdict(self, code: str | None) -> None:
        words = {"match": "match", "no_match": "no match", "inconclusive": "inconclusive"}
        word = words.get(code or "")
        # Unchecking every button of an exclusive group needs the group non-exclusive for a moment.
        self.verdict_buttons.setExclusive(False)
        for i, button in enumerate(self.verdict_buttons.buttons()):
            button.setChecked(word is not None and VERDICTS[i] == word)
        self.verdict_buttons.setExclusive(True)

    # -- inputs ---------------------------------------------------------------------------------------------
    def set_crop(self, side: int, path: str) -> None:
        """Put an image on side 0 (A) or 1 (B); explains the pair once both sides are filled."""
        if self.case_item is not None:
            self.close_item()
            self._show_verdict(None)
            self.notes.clear()
        try:
            rgb = load_rgb(path)
        except (OSError, AmdError) as exc:
            # That side is left empty: an explanation needs two crops that can be read, and one of the
            # pair shown before, still being worked out, is no longer wanted.
            running = self.runner.running("compare")
            if running is not None:
                running.supersede()
            self.paths[side] = None
            self.views[side].set_image(None)
            self._set_explanation(None)
            self.status_label.setText(f"Cannot show crop {'AB'[side]}: {exc}")
            return
        self.paths[side] = path
        self.views[side].set_image(rgb, caption=f"{'AB'[side]}: {rgb.shape[1]}x{rgb.shape[0]}")
        self._set_explanation(None)
        if all(self.paths):
            self.run_explain()

    def set_pair(self, path_a: str, path_b: str) -> None:
        self.paths = [None, None]
        self.set_crop(0, path_a)
        self.set_crop(1, path_b)

    def run_explain(self) -> None:
        a, b = self.paths
        if not (a and b):
            return
        self.status_label.setText("Explaining...")
        self.job = Job(self._explain, a, b, name="explain")
        self.job.signals.succeeded.connect(self._on_explained)
        self.job.signals.failed.connect(
            guarded(self, lambda msg: self.status_label.setText(f"Could not explain: {msg}"))
        )
        self.runner.start("compare", self.job)

    # -- output ---------------------------------------------------------------------------------------------
    def _on_explained(self, explanation: Any) -> None:
        self._set_explanation(explanation)
        self.status_label.setText("")
        self.explained.emit(explanation)

    def labels(self) -> list[str]:
        e = self.explanation
        return list(getattr(e, "labels", None) or e.names) if e is not None else []

    def differ(self) -> np.ndarray | None:
        return self.explanation.differing if self.explanation is not None else None

    def _set_explanation(self, e: Any) -> None:
        self.explanation = e
        self.attribute_box.blockSignals(True)
        self.attribute_box.clear()
        if e is None:
            self.chart.clear()
            for label in (self.distance_label, self.sum_label, self.gap_label, self.reading_label):
                label.setText("-")
            self.predicted.setRowCount(0)
            self.selected = None
            self.attribute_box.blockSignals(False)
            self._update_pair_controls()
            self._show_top3()
            return
        labels = self.labels()
        shares = np.asarray(e.shares, dtype=float)
        order = np.argsort(-shares, kind="stable")
        self._update_pair_controls()
        for i in order:
            self.attribute_box.addItem(f"{labels[i]} ({100 * shares[i]:.1f}%)", int(i))
        self.attribute_box.blockSignals(False)
        self.chart.set_data(labels, e.components, shares, self.differ())
        distance, total = self.shown_figures()
        self.distance_label.setText(format_distance(distance))
        self.sum_label.setText(format_distance(total))
        # The gap shown is the difference of the two figures shown, so that the three agree on screen.
        self.gap_label.setText(f"{format_distance(total - distance + 0.0, sign=True)} ({100 * e.gap:+.2f}%)")
        self.reading_label.setText(self.reading(e.distance))
        self._fill_predicted()
        self._show_top3()
        self.select_attribute(int(order[0]))

    def shown_figures(self) -> tuple[float, float]:
        """Target distance and sum of components rounded as shown (see :func:`format_distance`)."""
        e = self.explanation
        return float(format_distance(e.distance)), float(format_distance(float(np.sum(e.components))))

    def reading(self, distance: float) -> str:
        if self.threshold is None:
            return "no threshold set for this model"
        same = distance < self.threshold
        word = "likely the same person" if same else "likely different persons"
        shown, limit = format_distance(distance), format_distance(self.threshold)
        if shown == limit:
            # Both round alike: "<" between two equal numbers would read as a mistake.
            return f"{word}, at the threshold (distance and threshold {shown})"
        return f"{word} (distance {shown} {'<' if same else '>='} threshold {limit})"

    def _fill_predicted(self) -> None:
        e = self.explanation
        if e.predicted_a is None or e.predicted_b is None:
            self.predicted.setRowCount(1)
            self.predicted.setItem(0, 0, QTableWidgetItem("no attribute classifier in this interpreter"))
            return
        labels = self.labels()
        pa, pb = np.asarray(e.predicted_a), np.asarray(e.predicted_b)
        self.predicted.setRowCount(len(labels))
        for row, label in enumerate(labels):
            agree = (pa[row] >= 0.5) == (pb[row] >= 0.5)
            # The yes/no reading is what "agree" compares; the percentage says how sure each side is.
            cells = [f"{'=' if agree else '≠'}  {label}", _reading(pa[row]), _reading(pb[row])]
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if col == 0:
                    # A long name is elided in a narrow pane: the tooltip has it whole.
                    item.setToolTip(label)
                if not agree:
                    item.setForeground(QColor(DIFFER_COLOUR).darker(130))
                self.predicted.setItem(row, col, item)

    def select_attribute(self, index: int) -> None:
        """Show attribute ``index`` (schema position) on both crops and outline its bar."""
        if self.explanation is None:
            return
        self.selected = index
        self.chart.select(index)
        pos = self.attribute_box.findData(index)
        if pos >= 0 and pos != self.attribute_box.currentIndex():
            self.attribute_box.blockSignals(True)
            self.attribute_box.setCurrentIndex(pos)
            self.attribute_box.blockSignals(False)
        self._refresh_overlays()

    def _on_attribute_box_changed(self, pos: int) -> None:
        data = self.attribute_box.itemData(pos)
        if data is not None:
            self._on_attribute_chosen(int(data))

    def _on_attribute_chosen(self, index: int) -> None:
        """The analyst picked an attribute (bar or list): show its own map, also when Top 3 was on."""
        if self.top3.isChecked():
            self.top3.setChecked(False)
        self.select_attribute(index)

    def top_attributes(self) -> list[int]:
        """Schema positions of the (up to) three largest shares, in the order of the top-3 colours."""
        if self.explanation is None:
            return []
        return self.explanation.order()[:3]

    def _on_top3_toggled(self, _checked: bool) -> None:
        self._show_top3()
        self._refresh_overlays()

    def _show_top3(self) -> None:
        """Legends, chart colours and controls of the mode on screen (one map, or the top 3)."""
        top3 = self.top3.isChecked()
        # The top-3 outlines have their own colours: the colour map does not apply (the opacity does).
        self.cmap_box.setEnabled(not top3)
        self.cmap_label.setEnabled(not top3)
        self.cmap_box.setToolTip(
            "The top-3 mode uses its own colours (see the legend)" if top3 else "Colour map of the overlay"
        )
        top = self.top_attributes() if top3 else []
        labels = self.labels()
        self.chart.set_marks({i: TOP_QCOLOURS[k] for k, i in enumerate(top)} if top else None)
        if top:
            shares = self.explanation.shares
            self.top3_legend.setText(
                "&nbsp;&nbsp; ".join(
                    _entry(f"{_swatch(TOP_QCOLOURS[k])} {labels[i]} ({100 * shares[i]:.1f}%)")
                    for k, i in enumerate(top)
                )
            )
            self.chart_legend.setText(
                _entry(f"{''.join(_swatch(c) for c in TOP_QCOLOURS[: len(top)])} the three largest,")
                + f" as on the crops &nbsp; {_entry(f'{_swatch(MUTED_COLOUR)} the others')} &nbsp; {_even_mark(len(labels))}"
            )
        else:
            self.top3_legend.clear()
            self.chart_legend.setText(
                f"{_entry(f'{_swatch(DIFFER_COLOUR)} differing')} &nbsp; "
                f"{_entry(f'{_swatch(COMMON_COLOUR)} common (predicted attributes)')}"
                + (f" &nbsp; {_even_mark(len(labels))}" if labels else "")
            )
        self.top3_legend.setVisible(bool(top))

    def overlay_images(self) -> list[np.ndarray] | None:
        """The two pictures currently painted (crops with their overlays), or ``None`` before an explanation."""
        e = self.explanation
        if e is None or self.selected is None or any(v.image is None for v in self.views):
            return None
        from amd.explain import maps_at

        opacity = self.opacity.value() / 100.0
        images = [v.image for v in self.views]
        if self.top3.isChecked():
            top = self.top_attributes()
            out = []
            for image, maps in zip(images, (e.maps_a, e.maps_b), strict=True):
                maps = maps_at(maps[top], *image.shape[:2])
                normed = [(m - m.min()) / max(float(np.ptp(m)), 1e-12) for m in maps]
                out.append(top_regions(image, normed, opacity))
            return out
        # Maps of a crop longer than amd.explain.MAX_MAP_SIDE are smaller than the crop.
        a, b = normalise_pair(*(maps_at(m[[self.selected]], *image.shape[:2])[0]
                                for m, image in zip((e.maps_a, e.maps_b), images, strict=True)))  # fmt: skip
        cmap = self.cmap_box.currentText()
        return [blend(images[0], a, opacity, cmap), blend(images[1], b, opacity, cmap)]

    def _refresh_overlays(self) -> None:
        pictures = self.overlay_images()
        if pictures is None:
            return
        for view, picture in zip(self.views, pictures, strict=True):
            view.show_rgb(picture)

    # -- verdict --------------------------------------------------------------------------------------------
    def set_verdict(self, verdict: str) -> None:
        if verdict not in VERDICTS:
            raise ValueError(f"unknown verdict {verdict!r}")
        if not self.pair_shown():
            self.status_label.setText("Compare two crops first: a verdict is about a pair.")
            return
        self.verdict_buttons.button(VERDICTS.index(verdict)).setChecked(True)
        self.verdict_changed.emit(verdict, self.notes.toPlainText())

    def verdict(self) -> str | None:
        checked = self.verdict_buttons.checkedId()
        return VERDICTS[checked] if checked >= 0 else None
