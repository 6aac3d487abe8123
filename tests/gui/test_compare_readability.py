"""What the compare and results views show can be read: chart labels, distances, top-3 legend, controls, labels."""

from __future__ import annotations

import re
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QEvent, QPoint, QPointF, QRect, QRectF, Qt
from PySide6.QtGui import QColor, QFontMetricsF, QHelpEvent, QImage, QPainter
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QToolTip

from amd.explain import Explanation
from amd.schema import load_schema
from amd.visual import TOP_COLOURS
from gui.compare import CompareWidget
from gui.results import ResultsWidget
from gui.thumbnails import ThumbnailLoader
from gui.widgets.annotations import LABEL_MAX_LINES, AnnotatedCropViewWidget, Shape
from gui.widgets.chart import DISTANCE_DECIMALS, MUTED_COLOUR, ContributionChartWidget, format_distance
from gui.workers import JobRunner

M = 26


@pytest.fixture(scope="module")
def labels() -> list[str]:
    schema = load_schema("market1501")
    names = [a.label for a in schema]
    assert len(names) == M
    return names


def _components(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    components = rng.uniform(0.1, 1.5, M)
    return components, components / components.sum()


def _drawn_texts(chart: ContributionChartWidget, side: str) -> list[tuple[QRectF, int, str]]:
    """The figures or labels an axis of the chart draws, as pyqtgraph lays them out."""
    image = QImage(8, 8, QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    try:
        _axis, _ticks, texts = chart.plot.getAxis(side).generateDrawSpecs(painter)
    finally:
        painter.end()
    return texts


def _label_rects(chart: ContributionChartWidget) -> list[tuple[QRectF, str]]:
    """The left axis's labels as pyqtgraph lays them out, each grown to the font's full line height."""
    texts = _drawn_texts(chart, "left")
    height = QFontMetricsF(chart.font_).height()
    rects = []
    for rect, _flags, text in texts:
        centre = rect.center().y()
        rects.append((QRectF(rect.x(), centre - height / 2, rect.width(), height), text))
    return rects


# ---------------------------------------------------------------------------------------------- the chart


def _shown_chart(qtbot, height: int | None = None) -> ContributionChartWidget:
    """A chart 420 pixels wide, ``height`` high (its minimum when None), shown and exposed, still empty."""
    chart = ContributionChartWidget()
    qtbot.addWidget(chart)
    chart.resize(420, height or chart.minimumHeight())
    chart.show()
    qtbot.waitExposed(chart)
    return chart


@pytest.mark.parametrize("height", [None, 240, 400, 800])
def test_chart_labels_never_overlap_and_the_other_bar_completes_the_shares(qtbot, labels, height):
    chart = _shown_chart(qtbot, height)
    height = chart.height()
    components, shares = _components()
    chart.set_data(labels, components, shares, shares > shares.mean())
    # Every row has its label drawn (none dropped by the axis once it has its range), and no two overlap.
    qtbot.waitUntil(lambda: len(_label_rects(chart)) == len(chart.rows) >= 4, timeout=3000)
    texts = _label_rects(chart)
    for i, (a, ta) in enumerate(texts):
        for b, tb in texts[i + 1 :]:
            assert not a.intersects(b), f"{ta!r} overlaps {tb!r} at height {height}"
    # The largest shares keep their rows, in order, from the top.
    order = list(np.argsort(-shares, kind="stable"))
    singles = [r for r in chart.rows if not r.is_other]
    assert [r.members[0] for r in singles] == order[: len(singles)]
    # What the labels say adds up to 100 %, with the "other" bar when there is one.
    percentages = [float(re.search(r"([\d.]+)%$", text).group(1)) for _rect, text in texts]
    assert sum(percentages) == pytest.approx(100.0, abs=0.05 * len(percentages))
    assert sum(r.share for r in chart.rows) == pytest.approx(1.0)
    if len(chart.rows) < M:
        other = chart.rows[-1]
        assert other.is_other and other.text.startswith(f"other {len(other.members)} attributes")
        assert len(singles) + len(other.members) == M
    else:
        assert not any(r.is_other for r in chart.rows)
    if height >= 800:
        assert len(chart.rows) == M


def test_the_bottom_axis_shows_the_zero_the_bars_start_from(qtbot, labels):
    chart = _shown_chart(qtbot, 400)
    components, shares = _components()
    chart.set_data(labels, components, shares, shares > shares.mean())
    qtbot.waitUntil(lambda: len(_drawn_texts(chart, "bottom")) >= 3, timeout=3000)
    figures = {text: rect for rect, _flags, text in _drawn_texts(chart, "bottom")}
    assert "0" in figures, sorted(figures)
    # Centred under the bars' common start, the left end of the view.
    start = chart.plot.getViewBox().mapViewToScene(QPointF(0.0, 0.0)).x()
    zero = chart.plot.getAxis("bottom").mapToScene(figures["0"].center()).x()
    assert zero == pytest.approx(start, abs=1.0)


def test_chart_gives_rows_back_when_taller_and_the_other_bar_lists_its_attributes(qtbot, labels):
    chart = _shown_chart(qtbot, 200)
    components, shares = _components(1)
    chart.set_data(labels, components, shares)
    QApplication.processEvents()
    other = chart.rows[-1]
    assert other.is_other and len(other.members) > 1
    tip = chart.tooltip(len(chart.rows) - 1)
    assert all(labels[i] in tip for i in other.members)
    # Clicking the "other" bar offers its attributes; choosing one asks for that attribute.
    menu = chart.show_other_menu(len(chart.rows) - 1, QPoint(0, 0))
    actions = menu.actions()
    assert [a.text().split("  ")[0] for a in actions] == [labels[i] for i in other.members]
    with qtbot.waitSignal(chart.attribute_clicked, timeout=2000) as signal:
        actions[-1].trigger()
    assert signal.args == [other.members[-1]]
    menu.close()
    chart.resize(420, 900)
    qtbot.waitUntil(lambda: len(chart.rows) == M, timeout=3000)


# ---------------------------------------------------------------------------------------------- compare


def _explanation(labels, distance: float, seed: int = 0) -> Explanation:
    components, shares = _components(seed)
    components = components * distance / components.sum() * 1.01
    rng = np.random.default_rng(seed)
    maps_a = rng.random((M, 8, 4)).repeat(32, axis=1).repeat(32, axis=2)
    maps_b = rng.random((M, 8, 4)).repeat(32, axis=1).repeat(32, axis=2)
    return Explanation(
        names=tuple(f"a{i}" for i in range(M)),
        labels=tuple(labels),
        distance=distance,
        attribute_distances=components * M,
        components=components,
        shares=shares,
        maps_a=maps_a,
        maps_b=maps_b,
        predicted_a=rng.random(M),
        predicted_b=rng.random(M),
        gap=float(components.sum() - distance) / distance,
    )


@pytest.fixture()
def images(tmp_path):
    paths = []
    for n, colour in enumerate(((200, 60, 60), (60, 60, 200))):
        path = tmp_path / f"crop{n}.png"
        Image.new("RGB", (128, 256), colour).save(path)
        paths.append(str(path))
    return paths


@pytest.fixture()
def compare(qtbot, labels):
    runner = JobRunner()
    state = {"distance": 22.4757}
    widget = CompareWidget(
        lambda a, b: _explanation(labels, state["distance"]),
        lambda kind, value: value,
        runner,
        threshold=43.0,
    )
    widget.state = state
    qtbot.addWidget(widget)
    widget.resize(1024, 600)
    widget.show()
    yield widget
    runner.shutdown()


def _show_pair(qtbot, compare, images):
    with qtbot.waitSignal(compare.explained, timeout=10000):
        compare.set_pair(*images)


def test_figures_have_two_decimals_and_the_gap_is_their_difference(qtbot, compare, images):
    _show_pair(qtbot, compare, images)
    e = compare.explanation
    decimals = re.compile(rf"^[+-]?\d+\.\d{{{DISTANCE_DECIMALS}}}\b")
    for label in (compare.distance_label, compare.sum_label, compare.gap_label):
        assert decimals.match(label.text()), label.text()
    assert compare.distance_label.text() == "22.48"
    shown_gap = float(compare.gap_label.text().split()[0])
    assert shown_gap == pytest.approx(
        float(compare.sum_label.text()) - float(compare.distance_label.text()), abs=1e-9
    )
    assert compare.gap_label.text().endswith(f"({100 * e.gap:+.2f}%)")
    assert compare.reading_label.text() == "likely the same person (distance 22.48 < threshold 43.00)"
    # A distance that rounds like the threshold is not written "43.00 < threshold 43.00".
    assert (
        compare.reading(42.999) == "likely the same person, at the threshold (distance and threshold 43.00)"
    )


def test_results_and_compare_write_a_distance_alike(qtbot, window):
    """Search reads float16 vectors and Compare embeds afresh: the difference must stay below what is shown."""
    model = window.gallery_model
    done = []
    window.search_finished.connect(done.append)
    window.search_crop(model.crop(0))
    qtbot.waitUntil(lambda: bool(done), timeout=30000)
    rows = done[-1][:4]
    results = window.results.model
    unit = 10.0**-DISTANCE_DECIMALS
    for r, row in enumerate(rows):
        text = results.data(results.index(r, 2))
        assert text == format_distance(row.distance) and len(text.split(".")[1]) == DISTANCE_DECIMALS
        window.results.view.selectRow(r)
        with qtbot.waitSignal(window.compare.explained, timeout=30000) as signal:
            window.results.compare_requested.emit(window.results.current_crop())
        fresh = signal.args[0].distance
        assert abs(fresh - row.distance) < unit / 4
        # Away from a rounding boundary the two views write the same figure.
        if abs((fresh / unit) % 1 - 0.5) > 0.1:
            assert window.compare.distance_label.text() == text


def _rect_in(widget, ancestor) -> QRect:
    return QRect(widget.mapTo(ancestor, QPoint(0, 0)), widget.size())


def _apart(rects: list[QRect]) -> bool:
    return not any(a.intersects(b) for i, a in enumerate(rects) for b in rects[i + 1 :])


def test_compare_at_its_minimum_width_shows_labels_figures_table_and_buttons(qtbot, compare, images, labels):
    assert compare.minimumSizeHint().width() <= 580
    _show_pair(qtbot, compare, images)
    hint = compare.minimumSizeHint()
    assert hint.width() <= 580
    compare.resize(hint.width(), max(hint.height(), 640))
    qtbot.waitUntil(lambda: compare.width() == hint.width(), timeout=3000)
    qtbot.wait(50)
    chart = compare.chart
    # Every label of the chart is drawn whole, with room left for the bars and the axis title.
    qtbot.waitUntil(lambda: len(_label_rects(chart)) == len(chart.rows), timeout=3000)
    axis = chart.plot.getAxis("left")
    widest = max(QFontMetricsF(chart.font_).horizontalAdvance(row.text) for row in chart.rows)
    assert axis.width() >= widest
    assert chart.plot.getPlotItem().vb.width() >= 50
    bottom = chart.plot.getAxis("bottom")
    title = bottom.label.mapRectToScene(bottom.label.boundingRect())
    assert 0 <= title.left() and title.right() <= chart.plot.sceneRect().right() + 0.5, title
    # The figures pane is as wide as the chart needs; the table needs no sideways scrolling, and a
    # long attribute name is elided with the whole name in its tooltip.
    assert chart.width() >= chart.minimumSizeHint().width()
    assert not compare.predicted.horizontalScrollBar().isVisible()
    tips = [compare.predicted.item(r, 0).toolTip() for r in range(compare.predicted.rowCount())]
    assert tips == labels
    # The verdict buttons and the annotation tools wrap rather than overlap or leave the widget.
    for bar in (compare.verdict_buttons.buttons(), compare.tool_buttons.buttons()):
        rects = [_rect_in(b, compare) for b in bar]
        assert _apart(rects)
        assert all(compare.rect().contains(r) for r in rects)
        assert all(b.width() >= b.sizeHint().width() for b in bar)
    for label in (compare.distance_label, compare.gap_label, compare.reading_label):
        assert compare.rect().contains(_rect_in(label, compare))
        assert label.width() >= min(label.sizeHint().width(), label.minimumSizeHint().width())


# ---------------------------------------------------------------------------------------------- controls


def test_verdict_controls_wait_for_a_pair(qtbot, compare, images):
    buttons = compare.verdict_buttons.buttons()
    assert not any(b.isEnabled() for b in buttons)
    assert not compare.notes.isEnabled() and not compare.add_to_case.isEnabled()
    with qtbot.assertNotEmitted(compare.verdict_changed):
        QTest.keyClick(compare, Qt.Key.Key_1)
        compare.set_verdict("match")
    assert compare.verdict() is None
    assert "Compare two crops first" in compare.status_label.text()
    _show_pair(qtbot, compare, images)
    assert all(b.isEnabled() for b in buttons) and compare.add_to_case.isEnabled()
    with qtbot.waitSignal(compare.verdict_changed, timeout=2000):
        compare.set_verdict("no match")
    assert compare.verdict() == "no match"
    assert compare.add_to_case.text() == "Add to case"
    item = SimpleNamespace(id=7, position=2, annotations=[], verdict=None, notes="")
    compare.bind_item(item, "Main Street")
    assert compare.add_to_case.text() == "Update case item"
    assert "item 3 of case 'Main Street'" in compare.add_to_case.toolTip()
    compare.close_item()
    assert compare.add_to_case.text() == "Add to case"


def test_search_without_a_query_says_what_to_do(qtbot):
    runner = JobRunner()
    try:
        results = ResultsWidget(ThumbnailLoader(runner, lambda sha, fmt: ""))
        qtbot.addWidget(results)
        with qtbot.waitSignal(results.search_requested, timeout=1000):
            results.again.click()
        assert "Pick a query first" in results.caption.text()
        results.set_query("<b>Query</b>: crop 3", None)
        results.again.click()
        assert results.caption.text() == "<b>Query</b>: crop 3"
        results.clear_query()
        assert not results.has_query
    finally:
        runner.shutdown()


# ---------------------------------------------------------------------------------------------- top 3


def test_top3_has_a_legend_marks_its_bars_and_greys_out_the_colour_map(qtbot, compare, images, labels):
    _show_pair(qtbot, compare, images)
    top = compare.top_attributes()
    assert not compare.top3_legend.isVisible() and compare.cmap_box.isEnabled()
    compare.top3.setChecked(True)
    legend = compare.top3_legend
    assert legend.isVisible()
    text = legend.text()
    positions = [text.index(labels[i]) for i in top]
    assert positions == sorted(positions)
    for rgb in TOP_COLOURS:
        assert QColor(*rgb).name() in text
    # The chart paints the three bars in the overlay colours and the rest grey.
    brushes = compare.chart.bars.opts["brushes"]
    for r, row in enumerate(compare.chart.rows):
        colour = brushes[r].color()
        if row.members[0] in top and not row.is_other:
            assert colour == QColor(*TOP_COLOURS[top.index(row.members[0])])
        elif not row.is_other:
            assert colour == MUTED_COLOUR
    # The colour map does nothing in this mode (disabled); the opacity does (enabled).
    before = compare.overlay_images()[0]
    compare.cmap_box.setCurrentIndex((compare.cmap_box.currentIndex() + 1) % compare.cmap_box.count())
    assert np.array_equal(compare.overlay_images()[0], before)
    assert not compare.cmap_box.isEnabled() and compare.opacity.isEnabled()
    compare.opacity.setValue(20)
    assert not np.array_equal(compare.overlay_images()[0], before)
    # Choosing an attribute goes back to its own map.
    compare.attribute_box.setCurrentIndex(compare.attribute_box.count() - 1)
    assert not compare.top3.isChecked() and not legend.isVisible() and compare.cmap_box.isEnabled()
    assert compare.chart.marks == {}


# ---------------------------------------------------------------------------------------------- annotations


def test_long_annotation_text_wraps_inside_the_crop_with_the_whole_text_in_a_tooltip(qtbot):
    view = AnnotatedCropViewWidget("gallery")
    qtbot.addWidget(view)
    view.resize(250, 560)
    view.show()
    qtbot.waitExposed(view)
    view.set_image(np.full((256, 128, 3), 90, dtype=np.uint8))
    text = "logo on the left sleeve visible in both frames"
    long = " ".join(["a long remark about the jacket"] * 8)
    view.set_shapes(
        [
            Shape(1, "gallery", "text", {"x": 10, "y": 100}, text, "#00b4d8"),
            Shape(2, "gallery", "rect", {"x": 5, "y": 150, "w": 40, "h": 40}, long, "#ffd400"),
        ]
    )
    area = view.image_rect()
    metrics = QFontMetricsF(view._label_font())
    for shape in view.shapes:
        rect = view.label_rect(shape)
        assert area.adjusted(-0.5, -0.5, 0.5, 0.5).contains(rect), (rect, area)
        lines = view.label_lines(shape)
        assert all(metrics.horizontalAdvance(line) <= area.width() for line in lines)
    short, cut = view.shapes
    # Wider than the crop: wrapped, every word kept.
    assert len(view.label_lines(short)) > 1 and " ".join(view.label_lines(short)) == text
    # Longer than the lines allowed: the last one ends in an ellipsis.
    lines = view.label_lines(cut)
    assert len(lines) == LABEL_MAX_LINES and lines[-1].endswith("\u2026")
    # Hovering a label shows its whole text.
    for shape in (short, cut):
        centre = view.label_rect(shape).center()
        assert view.label_tooltip(centre) == shape.label
        event = QHelpEvent(QEvent.Type.ToolTip, centre.toPoint(), view.mapToGlobal(centre.toPoint()))
        QApplication.sendEvent(view, event)
        assert QToolTip.text() == shape.label
    assert view.label_tooltip(QPointF(area.right() - 2, area.bottom() - 2)) == ""


def test_chart_marks_the_even_share_and_says_so_in_the_legend(qtbot, compare, images, labels):
    _show_pair(qtbot, compare, images)
    chart, e = compare.chart, compare.explanation
    line = chart.even_line
    # Where every bar would end if the distance were split evenly: the sum of the components over M.
    assert line.isVisible()
    assert line.value() == pytest.approx(float(np.sum(e.components)) / M)
    assert chart.even_component() == pytest.approx(float(np.mean(e.components)))
    longer = [i for i in range(M) if e.components[i] > line.value()]
    assert all(e.shares[i] > 1 / M for i in longer) and 0 < len(longer) < M
    # Inside the view, left of the largest bar.
    assert 0 < line.value() < chart.plot.viewRange()[0][1]
    assert f"even share 1/{M} = {100 / M:.1f}%" in compare.chart_legend.text()
    compare.top3.setChecked(True)
    assert f"even share 1/{M} = {100 / M:.1f}%" in compare.chart_legend.text()
    chart.clear()
    assert not line.isVisible() and chart.even_component() is None
