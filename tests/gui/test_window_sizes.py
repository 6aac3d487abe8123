"""The main window fits a small screen: its minimum width, the wrapping filter bar, the docks' button grids,
the compare page beside the docks."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, QRect, Qt
from PySide6.QtWidgets import QPushButton, QWidget

from gui.qt_util import FlowLayout


def rect_in(widget: QWidget, ancestor: QWidget) -> QRect:
    return QRect(widget.mapTo(ancestor, QPoint(0, 0)), widget.size())


def assert_apart(rects: list[QRect]) -> None:
    for i, a in enumerate(rects):
        for b in rects[i + 1 :]:
            assert not a.intersects(b), (a, b)


def show_docks(window) -> None:
    for dock in (window.identity_dock, window.results_dock, window.cases_dock):
        dock.show()


def settle(qtbot, window, width: int, height: int) -> None:
    window.resize(width, height)
    qtbot.waitUntil(lambda: window.width() == width, timeout=5000)
    qtbot.wait(50)  # the layouts run on posted events


def filter_groups(window) -> list[QWidget]:
    bar = window.gallery.filter_bar
    layout = bar.layout()
    assert isinstance(layout, FlowLayout)
    return [layout.itemAt(i).widget() for i in range(layout.count())]


def test_the_window_fits_a_1024_pixel_screen_with_every_dock_shown(qtbot, window) -> None:
    show_docks(window)
    assert window.minimumSizeHint().width() <= 1024
    for dock, most in ((window.identity_dock, 200), (window.cases_dock, 260), (window.results_dock, 260)):
        assert dock.minimumSizeHint().width() <= most, dock.objectName()
    settle(qtbot, window, 1024, 640)
    gallery = window.gallery
    groups = filter_groups(window)
    rects = [rect_in(g, gallery) for g in groups]
    # Every filter is inside the gallery, at its full width, and none covers another: the bar wrapped.
    assert all(gallery.rect().contains(r) for r in rects), rects
    assert all(g.width() >= g.minimumSizeHint().width() for g in groups)
    assert_apart(rects)
    assert len({r.top() for r in rects}) >= 2
    assert rect_in(gallery.view, gallery).top() >= max(r.bottom() for r in rects)
    for box in (gallery.camera_box, gallery.identity_box, gallery.attribute_box, gallery.source_box):
        assert box.width() >= box.minimumSizeHint().width()


def test_the_filter_bar_is_one_row_when_there_is_room(qtbot, window) -> None:
    for dock in (window.identity_dock, window.results_dock, window.cases_dock):
        dock.hide()
    settle(qtbot, window, 1400, 900)
    rects = [rect_in(g, window.gallery) for g in filter_groups(window)]
    assert len({r.center().y() for r in rects}) == 1
    assert_apart(rects)


def test_dock_buttons_form_a_grid_that_keeps_their_text(qtbot, window) -> None:
    show_docks(window)
    window.cases_dock.raise_()
    settle(qtbot, window, 1024, 640)
    for dock, widget in ((window.identity_dock, window.identities), (window.cases_dock, window.case_panel)):
        for width in (dock.minimumSizeHint().width(), 320):
            window.resizeDocks([dock], [width], Qt.Orientation.Horizontal)
            qtbot.wait(50)
            buttons = [b for b in widget.findChildren(QPushButton) if b.isVisible()]
            assert len(buttons) == (7 if widget is window.identities else 8)
            rects = [rect_in(b, widget) for b in buttons]
            assert_apart(rects)
            assert all(widget.rect().contains(r) for r in rects), (dock.objectName(), width)
            # No text is cut: each button is at least as wide as its text needs.
            assert all(b.width() >= b.sizeHint().width() for b in buttons), dock.objectName()


def test_the_placeholder_says_why_the_gallery_is_empty(qtbot, window, settings) -> None:
    from gui.main_window import MainWindow

    view = window.gallery.view
    # The remembered filters are applied when the workspace's choices arrive: after that, filters hold.
    qtbot.waitUntil(lambda: not window._restore_filters, timeout=10000)
    assert view.placeholder_text() == ""  # crops are shown
    gallery = window.gallery
    gallery.identity_box.setCurrentIndex(gallery.identity_box.findData(-1))  # "Unlabelled": none here
    qtbot.waitUntil(lambda: not window.gallery_model.loading, timeout=10000)
    assert window.gallery_model.rowCount() == 0
    assert view.placeholder_text() == "No crops match the filters."
    gallery.identity_box.setCurrentIndex(0)
    qtbot.waitUntil(lambda: window.gallery_model.rowCount() == 24, timeout=10000)
    assert view.placeholder_text() == ""

    empty = MainWindow(settings, Path(settings.fileName()).parent)
    qtbot.addWidget(empty)
    assert empty.gallery.view.placeholder_text().startswith("No workspace open.")


@pytest.mark.parametrize(("width", "height"), [(1280, 800), (1024, 640)])
def test_the_compare_page_fits_beside_the_docks_at_their_first_start_widths(qtbot, window, width, height):
    show_docks(window)
    settle(qtbot, window, width, height)
    window.size_docks()
    qtbot.wait(50)
    # The docks leave the comparison more than half of a small screen.
    right = window.results_dock.width()
    assert window.identity_dock.width() <= width * 0.16 and right <= max(width * 0.26, 290)
    compare, page = window.compare, window.compare_page
    model = window.gallery_model
    with qtbot.waitSignal(compare.explained, timeout=30000):
        window.compare_paths(window._path(model.crop(0)), window._path(model.crop(5)))
    qtbot.wait(50)
    assert compare.minimumSizeHint().width() <= 580
    assert not page.horizontalScrollBar().isVisible()
    assert compare.width() <= page.viewport().width()
    # The figures pane is on screen whole: chart, figures, table and verdict buttons.
    view = QRect(QPoint(0, 0), page.viewport().size())
    for widget in (compare.chart, compare.reading_label, compare.predicted, compare.verdict_box):
        assert view.contains(rect_in(widget, page.viewport())), widget
    assert compare.chart.width() >= compare.chart.minimumSizeHint().width()
    assert not compare.predicted.horizontalScrollBar().isVisible()
    buttons = compare.verdict_buttons.buttons()
    assert_apart([rect_in(b, compare) for b in buttons])
    assert all(b.width() >= b.sizeHint().width() for b in buttons)
    assert all(compare.verdict_box.rect().contains(rect_in(b, compare.verdict_box)) for b in buttons)
