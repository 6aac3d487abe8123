"""The comparison view, driven like an analyst: drop two images, read the figures, click a bar."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest

from gui.compare import CompareWidget
from gui.qt_util import qimage_to_rgb
from gui.widgets.chart import format_distance
from gui.workers import JobRunner


@pytest.fixture(scope="module")
def explainer(tiny_models):
    from amd.explain import Explainer

    return Explainer.from_files(tiny_models["target"], tiny_models["interpreter"])


@pytest.fixture(scope="module")
def crops(demo_workspace):
    images = sorted((demo_workspace / "images").rglob("*.jpg"))
    return images[0], images[5]


@pytest.fixture()
def compare(qtbot, explainer):
    runner = JobRunner()
    widget = CompareWidget(explainer.explain, lambda kind, value: value, runner, threshold=1.0)
    qtbot.addWidget(widget)
    widget.resize(1200, 800)
    widget.show()
    yield widget
    runner.shutdown()


def test_dropping_two_images_fills_the_chart_and_the_distance(qtbot, compare, explainer, crops, drop_files):
    a, b = crops
    drop_files(compare.views[0], [a])
    assert compare.views[0].image is not None and compare.chart.bar_count() == 0
    with qtbot.waitSignal(compare.explained, timeout=30000):
        drop_files(compare.views[1], [b])
    expected = explainer.explain(str(a), str(b))
    m = len(expected.names)
    assert compare.chart.bar_count() == m == 26
    assert compare.distance_label.text() == format_distance(expected.distance)
    assert compare.sum_label.text() == format_distance(float(np.sum(expected.components)))
    assert compare.predicted.rowCount() == m
    assert "threshold 1.00" in compare.reading_label.text()
    # The bars are sorted by share: the largest is on top and selected first.
    assert compare.selected == int(np.argmax(expected.shares))


def test_clicking_a_bar_shows_that_attributes_overlay(qtbot, compare, crops):
    with qtbot.waitSignal(compare.explained, timeout=30000):
        compare.set_pair(str(crops[0]), str(crops[1]))
    first = compare.selected
    before = qimage_to_rgb(compare.views[0].grab().toImage())
    # The smallest share with a bar of its own, just above the "other" bar when there is one.
    bottom = compare.chart.rows[-1] if not compare.chart.rows[-1].is_other else compare.chart.rows[-2]
    other = bottom.members[0]
    assert other != first
    plot = compare.chart.plot
    point = plot.mapFromScene(compare.chart.bar_scene_pos(other))
    QTest.mouseClick(
        plot.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(point)
    )
    qtbot.waitUntil(lambda: compare.selected == other, timeout=5000)
    assert compare.attribute_box.currentData() == other
    after = qimage_to_rgb(compare.views[0].grab().toImage())
    assert np.abs(after.astype(int) - before.astype(int)).mean() > 0.5
    # The overlay painted is the clicked attribute's map blended on the crop, not another one.
    expected = compare.overlay_images()[0]
    assert expected.shape[:2] == compare.views[0].image.shape[:2]


def test_a_crop_that_cannot_be_read_is_reported_and_leaves_its_side_empty(qtbot, compare, crops, tmp_path):
    with qtbot.waitSignal(compare.explained, timeout=30000):
        compare.set_pair(str(crops[0]), str(crops[1]))
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    compare.set_pair(str(broken), str(crops[1]))  # must not raise out of the slot
    assert compare.status_label.text().startswith(f"Cannot show crop A: {broken}")
    assert compare.paths == [None, str(crops[1])]
    assert compare.views[0].image is None and compare.views[1].image is not None
    # The explanation of the pair shown before is gone, and no new one is started.
    assert compare.explanation is None and compare.chart.bar_count() == 0
    assert compare.distance_label.text() == "-"
    # A readable crop on that side explains the pair again.
    with qtbot.waitSignal(compare.explained, timeout=30000):
        compare.set_crop(0, str(crops[0]))
    assert compare.chart.bar_count() == 26
