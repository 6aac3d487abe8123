"""What the reports look like: text sizes, pictures drawn at their size, the cover's source, wording."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from cases import render
from cases.archive import open_case, save_case
from cases.report import cover_rows, crop_text, export_html, when
from cases.snapshot import decode_snapshot, explanation_snapshot
from cli import case_ops
from tests.cases.conftest import CaseSetup, fake_explanation

HEX64 = re.compile(r"\b[0-9a-f]{64}\b")


def _matrix(values: list[float]) -> np.ndarray:
    a, b, c, d, e, f = (float(v) for v in values)
    return np.array([[a, b, 0.0], [c, d, 0.0], [e, f, 1.0]])


def _page_contents(reader, page) -> tuple[list[float], list[tuple[int, int, float, float]]]:
    """Text sizes in points and images as (pixel width, pixel height, drawn width, drawn height in points)."""
    ctm = np.eye(3)
    stack: list[np.ndarray] = []
    tm = np.eye(3)
    size = 0.0
    texts: list[float] = []
    images: list[tuple[int, int, float, float]] = []
    xobjects = page["/Resources"].get("/XObject", {})
    for operands, op in page.get_contents().operations:
        if op == b"q":
            stack.append(ctm)
        elif op == b"Q":
            ctm = stack.pop()
        elif op == b"cm":
            ctm = _matrix(operands) @ ctm
        elif op == b"BT":
            tm = np.eye(3)
        elif op == b"Tm":
            tm = _matrix(operands)
        elif op == b"Tf":
            size = float(operands[1])
        elif op in (b"Tj", b"TJ"):
            m = tm @ ctm
            texts.append(size * float(np.hypot(m[1, 0], m[1, 1])))
        elif op == b"Do":
            x = xobjects[operands[0]].get_object()
            if x.get("/Subtype") == "/Image":
                images.append(
                    (
                        int(x["/Width"]),
                        int(x["/Height"]),
                        float(np.hypot(ctm[0, 0], ctm[0, 1])),
                        float(np.hypot(ctm[1, 0], ctm[1, 1])),
                    )
                )
    return texts, images


def _words(html: str) -> str:
    """The text of an HTML fragment, words separated by one space."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def _pdf_text(path: Path) -> list[str]:
    """Each page's text, its ligatures ("ﬁ") written out."""
    from pypdf import PdfReader

    return [
        " ".join(unicodedata.normalize("NFKC", p.extract_text()).split()) for p in PdfReader(str(path)).pages
    ]


@pytest.fixture()
def case_file(filed: CaseSetup, tmp_path: Path) -> Path:
    path = tmp_path / "robbery.amdcase"
    save_case(filed.ws, filed.case_id, path)
    return path


def test_every_text_of_the_pdf_is_at_least_7_points_and_pictures_are_drawn_at_their_size(
    case_file: Path, tmp_path: Path, qapp: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pypdf import PdfReader

    from gui import report_pdf

    # Text drawn into the pictures (annotation labels, the chart) is sized by render.font, in pixels.
    picture_fonts: list[int] = []
    original = render.font

    def spy(size: int):
        picture_fonts.append(size)
        return original(size)

    monkeypatch.setattr(render, "font", spy)
    out = report_pdf.export_pdf(open_case(case_file), tmp_path / "report.pdf")
    reader = PdfReader(str(out))
    sizes: list[float] = []
    images: list[tuple[int, int, float, float]] = []
    for page in reader.pages:
        t, i = _page_contents(reader, page)
        sizes += t
        images += i
    assert sizes and min(sizes) >= 7.0, sorted(set(round(s, 2) for s in sizes))[:5]
    # Crops (2 per comparison), overlay pairs (3 per comparison) and charts (1 per comparison).
    assert len(images) == 2 * (2 + 3 + 1)
    to_px = report_pdf.DPI / 72.0
    for width, height, drawn_w, drawn_h in images:
        # One picture pixel per device pixel: the picture is neither shrunk nor enlarged on the page.
        assert abs(drawn_w * to_px - width) <= 1 and abs(drawn_h * to_px - height) <= 1
    assert picture_fonts and min(picture_fonts) * 72.0 / report_pdf.DPI >= 7.0
    # The widest picture, the chart, spans the page (A4 is 510 pt wide between the margins).
    assert max(w for w, *_ in images) * 72.0 / report_pdf.DPI > 480


def test_crop_labels_and_chart_text_are_sized_for_the_drawn_picture(
    case_file: Path, qapp: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gui import report_pdf

    doc = open_case(case_file)
    item = doc.items[0]
    used: list[int] = []
    original = render.font
    monkeypatch.setattr(render, "font", lambda size: used.append(size) or original(size))
    crops = report_pdf.crop_pictures(doc, item, width=1000.0, gap=40.0)
    # The crops (64x128 here) are drawn CROP_HEIGHT pixels high, twice as wide as a 300 px crop drawn
    # before, and the label text is LABEL_PT points high relative to that height.
    assert [img.height() for img, _ in crops] == [report_pdf.CROP_HEIGHT] * 2
    label_px = max(used)
    assert label_px * 72.0 / report_pdf.DPI == pytest.approx(report_pdf.LABEL_PT, abs=0.3)
    assert label_px / crops[0][0].height() > 0.035  # the label is a legible part of the crop
    used.clear()
    chart = report_pdf.chart_picture(item, 1000.0)
    assert chart is not None and chart.width() == 1000
    assert min(used) * 72.0 / report_pdf.DPI >= report_pdf.MIN_TEXT_PT - 0.3
    # Two wide crops shrink together so that both fit the width.
    narrow = report_pdf.crop_pictures(doc, item, width=200.0, gap=40.0)
    assert sum(img.width() for img, _ in narrow) + 40 <= 200 + 1


def test_a_report_of_a_workspace_case_names_no_file_and_no_hash(
    filed: CaseSetup, tmp_path: Path, qapp: object
) -> None:
    doc = case_ops.case_document(filed.ws, filed.case_id)
    assert doc.path is None and doc.sha256 is None and doc.workspace == str(filed.ws.root)
    html = case_ops.export_report(filed.ws, filed.case_id, tmp_path / "r.html", "html")
    pdf = case_ops.export_report(filed.ws, filed.case_id, tmp_path / "r.pdf", "pdf")
    text = html.read_text(encoding="utf-8")
    cover_html = _words(text[text.index('<section class="cover">') : text.index("</section>")])
    cover_pdf = _pdf_text(pdf)[0]
    for cover in (cover_html, cover_pdf):
        assert "not saved as a case file" in cover and "Made from the workspace ws on" in cover
        assert "amdcase" not in cover and "Case file SHA-256" not in cover
        assert not HEX64.search(cover)


def test_a_report_of_a_case_file_names_and_hashes_that_file(
    case_file: Path, tmp_path: Path, qapp: object
) -> None:
    from gui.report_pdf import export_pdf

    digest = hashlib.sha256(case_file.read_bytes()).hexdigest()
    doc = open_case(case_file)
    text = export_html(doc, tmp_path / "r.html").read_text(encoding="utf-8")
    cover_html = text[text.index('<section class="cover">') : text.index("</section>")]
    cover_pdf = _pdf_text(export_pdf(doc, tmp_path / "r.pdf"))[0]
    for cover in (cover_html, cover_pdf):
        assert "robbery.amdcase (format 1, saved " in cover
        # In the PDF a hash wider than its cell is broken over two lines, which reads back with a space.
        assert "".join(cover.split()).count(digest) == 1
        assert "not saved" not in cover
    assert HEX64.findall(cover_html) == [digest]


def test_times_are_shown_in_utc_minutes_and_a_missing_author_is_left_out(
    case_file: Path, tmp_path: Path
) -> None:
    assert when("2026-12-07T13:42:34.770127+00:00") == "2026-12-07 13:42 UTC"
    assert when("2026-12-07T15:42:34+02:00") == "2026-12-07 13:42 UTC"
    assert when("2026-12-07 13:42:34.5") == "2026-12-07 13:42 UTC"  # the store's naive UTC
    assert when("2026-12-07T13:42:34Z", seconds=True) == "2026-12-07 13:42:34 UTC"
    assert when(None) == "–" and when("yesterday") == "yesterday"
    doc = open_case(case_file)
    text = export_html(doc, tmp_path / "r.html").read_text(encoding="utf-8")
    assert not re.search(r"\d{2}:\d{2}:\d{2}\.\d", text)  # no raw ISO times with fractions
    assert not re.search(r"\dT\d{2}:", text)
    minute = r"\d{4}-\d\d-\d\d \d\d:\d\d UTC"
    assert re.fullmatch(minute + " by tester", dict(cover_rows(doc))["Created"])
    anonymous = replace(doc, case=replace(doc.case, created_by=None))
    assert re.fullmatch(minute, dict(cover_rows(anonymous))["Created"])  # no "by –"


def test_a_camera_named_camera_is_not_called_camera_twice() -> None:
    from cases.document import CropEntry

    def crop(camera: str | None, identity: str | None) -> CropEntry:
        return CropEntry("0" * 64, "m", "JPEG", 64, 128, camera, identity, None, None, None)

    assert crop_text("query", crop("Camera 1", "Demo 0001")) == "Crop A (query): Camera 1, identity Demo 0001"
    assert crop_text("gallery", crop("c2", None)) == "Crop B (gallery): camera c2, identity –"


def _draw(path: Path, draw) -> list[str]:
    from PySide6.QtGui import QPainter

    from gui import report_pdf

    writer = report_pdf.page_writer(path)
    painter = QPainter()
    assert painter.begin(writer)
    try:
        pages = report_pdf._Pages(writer, painter)
        draw(pages)
    finally:
        painter.end()
    from pypdf import PdfReader

    # Lines of each page, words separated by one space.
    return [
        "\n".join(" ".join(line.split()) for line in p.extract_text().splitlines())
        for p in PdfReader(str(path)).pages
    ]


def test_table_cells_wrap_between_words_and_break_only_a_token_too_long_for_the_cell(
    tmp_path: Path, qapp: object
) -> None:
    token = "0123456789abcdef" * 4
    cell = f"demo target; architecture mobilenetv2, registered 2026-12-07 13:35 UTC {token}"
    (text,) = _draw(tmp_path / "t.pdf", lambda pages: pages.table([["Model"], [cell]], [0.2]))
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    words = cell.split()[:-1]
    # Every word is whole on one line (none is split as "mobilenetv / 2" or "13 / :35") ...
    flat = " ".join(lines)
    for word in words:
        assert any(word in line.split() for line in lines), (word, lines)
    # ... while the hash, wider than the cell, is broken over lines and kept complete.
    assert token not in lines and token in flat.replace(" ", "")
    assert sum(1 for line in lines if line and set(line) <= set("0123456789abcdef")) >= 2


def test_a_table_header_is_not_left_alone_at_the_bottom_of_a_page(tmp_path: Path, qapp: object) -> None:
    rows = [["Crop", "Shape", "Label"], ["Crop A (query)", "Rectangle", "jacket"]]

    def draw(pages) -> None:
        header = pages._row_height(rows[0], [0.3, 0.3, 0.4], 8.5, True)
        # Room for the header but not for the header with its first row.
        pages.y = pages.height - header - 2
        pages.text("Above the table", gap=0)
        pages.y = pages.height - header - 2
        pages.table(rows, [0.3, 0.3, 0.4])

    first, second = _draw(tmp_path / "h.pdf", draw)
    assert "Above the table" in first and "Shape" not in first
    assert "Shape" in second and "Rectangle" in second


def test_reports_use_the_compare_views_colours_words_and_numbers(
    case_file: Path, tmp_path: Path, qapp: object
) -> None:
    from PySide6.QtGui import QColor

    from gui.widgets import chart as gui_chart

    assert QColor(*render.COMMON) == gui_chart.COMMON_COLOUR
    assert QColor(*render.DIFFERING) == gui_chart.DIFFER_COLOUR
    assert QColor(*render.UNKNOWN) == gui_chart.UNKNOWN_COLOUR
    # The chart's bars: "upper: red" and "long hair" differ (0.7/0.1, 0.8/0.2), the rest are common.
    data = decode_snapshot(explanation_snapshot(fake_explanation()))
    pixels = np.asarray(render.chart(data)).reshape(-1, 3)
    counts = {c: int(np.all(pixels == c, axis=1).sum()) for c in (render.DIFFERING, render.COMMON)}
    assert counts[render.DIFFERING] > 1000 and counts[render.COMMON] > 1000
    assert not np.all(pixels == (70, 130, 180), axis=1).any()
    text = export_html(open_case(case_file), tmp_path / "r.html").read_text(encoding="utf-8")
    # Shares as the compare view writes them ("40.0%"), the same numbers for the same pair.
    e = fake_explanation()
    for share in e.shares:
        assert f"{100 * share:.1f}%" in text
    assert " %" not in text
    # Predicted attributes as the compare view's "Crop A / Crop B" columns show them.
    assert "<th>Crop A</th><th>Crop B</th>" in text
    assert "yes 90%" in text and "no 20%" in text and "Pred." not in text


def _dashed_column(pixels: np.ndarray, colour: tuple[int, int, int]) -> tuple[int, int]:
    """(x, count) of the column holding the most pixels of ``colour``."""
    counts = np.all(pixels == colour, axis=2).sum(axis=0)
    return int(np.argmax(counts)), int(counts.max())


def test_report_chart_marks_the_even_share_between_the_bars() -> None:
    from amd.visual import EVEN_COLOUR

    data = decode_snapshot(explanation_snapshot(fake_explanation()))
    pixels = np.asarray(render.chart(data))
    x, count = _dashed_column(pixels, EVEN_COLOUR)
    bars = np.all(pixels == render.DIFFERING, axis=2) | np.all(pixels == render.COMMON, axis=2)
    bars[bars.sum(axis=1) < 40] = False  # the legend's two small swatches are not bars
    columns = np.flatnonzero(bars.any(axis=0))
    start = int(columns.min())
    # The longest bar is the largest component; the line stands at the mean component on the same scale.
    end = int(columns.max())
    components = np.asarray(data.components)
    expected = start + (end - start) * components.mean() / components.max()
    assert abs(x - expected) <= 1.5 and count >= 20
    # Components 0.16, 0.48, 0.08, 0.32, 0.16: two bars end right of the line, three left of it.
    ends = [int(np.flatnonzero(row).max()) for row in bars if row.any()]
    assert len({e for e in ends if e > x}) == 2

