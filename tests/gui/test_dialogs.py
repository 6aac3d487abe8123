"""Message boxes: non-blocking, and wide enough that a summary of one line per file keeps its lines."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QMessageBox

from gui.dialogs import MAX_TEXT_WIDTH, show_message


def _label(box: QMessageBox) -> QLabel:
    label = box.findChild(QLabel, "qt_msgbox_label")
    assert label is not None
    return label


def test_each_line_of_a_summary_fits_on_one_row(qtbot) -> None:
    lines = [
        "lobby_20240314_081500.avi: stopped: 2 tracks, 6 crops on camera 'lobby' (20 frames, 5.1 frames/s)",
        "lobby_20240314_081500.avi: drop it again to resume",
    ]
    box = show_message(None, "Ingest video", "\n".join(lines))
    qtbot.addWidget(box)
    qtbot.waitExposed(box)
    label = _label(box)
    metrics = label.fontMetrics()
    longest = max(metrics.horizontalAdvance(line) for line in lines)
    assert longest < MAX_TEXT_WIDTH
    # Laid out at the width of its longest line, so no line wraps: the text is as tall as its lines.
    assert label.width() >= longest
    assert label.height() < 3.5 * metrics.lineSpacing()


def test_a_very_long_line_wraps_at_the_cap(qtbot) -> None:
    text = "a refused file: " + "very long reason " * 40
    box = show_message(None, "Import", text)
    qtbot.addWidget(box)
    qtbot.waitExposed(box)
    label = _label(box)
    assert label.minimumWidth() == MAX_TEXT_WIDTH
    assert label.height() > 3 * label.fontMetrics().lineSpacing()
