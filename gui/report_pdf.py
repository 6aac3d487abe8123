"""The PDF report of a case, drawn with Qt's PDF writer: a cover page, then one page per comparison.

Same content as the HTML report (:mod:`cases.report`): case data on the cover with a summary of
the comparisons; per comparison both crops with their annotations, the overlays of the largest
contributors, the contribution chart, the component table, verdict, notes, annotations, the models'
provenance and hashes and the pair's audit events. A comparison that does not fit its page goes on
over the next. Text is real PDF text (searchable, copyable). Works without a display: a headless
Qt application is started when none runs.

Pictures that carry text (the annotated crops and the chart) are drawn by :mod:`cases.render` at
the size they take on the page, one picture pixel per device pixel, with their text sized in
points; no text of the report is smaller than :data:`MIN_TEXT_PT` when printed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from PIL import Image
from PySide6.QtCore import QMarginsF, QRectF
from PySide6.QtGui import (
    QColor,
    QFont,
    QGuiApplication,
    QImage,
    QPageLayout,
    QPageSize,
    QPainter,
    QPdfWriter,
    QPen,
    QTextOption,
)

from cases import render
from cases.document import AuditEntry, CaseDocument, CropEntry, ItemEntry, ModelEntry
from cases.report import (
    PREDICTED_NOTE,
    SHAPE_TEXT,
    SIDE_TEXT,
    TABLE_ROWS,
    VERDICT_TEXT,
    cover_rows,
    crop_text,
    gap_text,
    model_text,
    predicted_text,
    when,
)

#: Device pixels per inch of the page (pictures are placed at this resolution).
DPI = 150
MARGIN_MM = 15.0
#: The smallest text of the report, in points as printed (captions, audit tables, the chart's legend).
MIN_TEXT_PT = 7.5
#: Annotation labels on the crops, in points as printed.
LABEL_PT = 8.5
#: Height of the two crops on the page in device pixels (less when two wide crops need it).
CROP_HEIGHT = 440
#: Height of the overlay pictures in device pixels (they carry no text, so they may be scaled).
OVERLAY_HEIGHT = 170


def pt_px(points: float) -> float:
    """Device pixels of a length in points at :data:`DPI`."""
    return points * DPI / 72.0


def _ensure_app() -> None:
    if QGuiApplication.instance() is None:
        if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
            os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        _ensure_app.app = QGuiApplication([])  # type: ignore[attr-defined]  # kept alive for the process


def _image(data: bytes) -> QImage:
    img = QImage()
    img.loadFromData(data)
    return img


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"


class _Pages:
    """A top-to-bottom cursor over the pages: writes blocks and turns the page when one does not fit."""

    def __init__(self, writer: QPdfWriter, painter: QPainter) -> None:
        self.writer = writer
        self.p = painter
        rect = writer.pageLayout().paintRectPixels(writer.resolution())
        self.width = float(rect.width())
        self.height = float(rect.height())
        self.y = 0.0
        self.page = 1

    def new_page(self) -> None:
        self.writer.newPage()
        self.page += 1
        self.y = 0.0

    def fits(self, h: float) -> None:
        if self.y + h > self.height and self.y > 0:
            self.new_page()

    def font(self, size: float, bold: bool = False, mono: bool = False) -> QFont:
        f = QFont("DejaVu Sans Mono" if mono else "DejaVu Sans")
        f.setPointSizeF(size)
        f.setBold(bold)
        self.p.setFont(f)
        return f

    @staticmethod
    def option() -> QTextOption:
        """Left-aligned text that wraps between words, and inside a word only where the word alone
        is wider than its box (a hash), so that one long token does not break every other word."""
        o = QTextOption()
        o.setWrapMode(QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere)
        return o

    def measure(self, text: str, width: float) -> float:
        """Height of ``text`` wrapped in ``width`` pixels with the current font."""
        return self.p.boundingRect(QRectF(0, 0, width, 1e6), text, self.option()).height()

    def text(
        self,
        text: str,
        size: float = 9.5,
        bold: bool = False,
        mono: bool = False,
        x: float = 0.0,
        gap: float = 6.0,
    ) -> None:
        self.font(size, bold, mono)
        w = self.width - x
        height = self.measure(text, w)
        if height > self.height - self.y:
            # Long text (notes) is split into lines, and a paragraph longer than a page into halves,
            # so that it can go on over the next page.
            lines = text.splitlines()
            words = text.split(" ")
            if len(lines) > 1:
                parts = lines
            elif height > self.height and len(words) > 1:
                parts = [" ".join(words[: len(words) // 2]), " ".join(words[len(words) // 2 :])]
            else:
                parts = []
            if parts:
                for part in parts:
                    self.text(part, size, bold, mono, x, 0.0)
                self.y += gap
                return
        self.fits(height)
        self.p.setPen(QColor(20, 20, 20))
        self.p.drawText(QRectF(x, self.y, w, height + 2), text, self.option())
        self.y += height + gap

    def heading(self, text: str, size: float = 13.0, keep: float = 60.0) -> None:
        """A section heading with a rule under it, kept on one page with ``keep`` pixels of what follows."""
        self.font(size, True)
        self.fits(8 + self.measure(text, self.width) + 14 + keep)
        self.y += 8
        self.text(text, size, bold=True, gap=4)
        self.p.setPen(QPen(QColor(60, 60, 60), 2))
        self.p.drawLine(0, int(self.y), int(self.width), int(self.y))
        self.y += 10

    def table_start(self, rows: list[list[str]], widths: list[float], size: float = 8.5) -> float:
        """Height of a table's header with its first row (what is kept together on a page)."""
        return sum(self._row_height(row, widths, size, r == 0) for r, row in enumerate(rows[:2]))

    def table(
        self, rows: list[list[str]], widths: list[float], size: float = 8.5, header: bool = True
    ) -> None:
        """Rows of cells; ``widths`` are fractions of the page width.

        The header row goes on a page only with the first row under it, and repeats on every page
        the table goes on over.
        """
        for r, row in enumerate(rows):
            h = self._row_height(row, widths, size, header and r == 0)
            if header and r == 0 and len(rows) > 1:
                h += self._row_height(rows[1], widths, size, False)
            if self.y + h > self.height and self.y > 0:
                self.new_page()
                if header and r > 0:
                    self._row(rows[0], widths, size, True)
            self._row(row, widths, size, header and r == 0)
        self.y += 8

    def _row_height(self, row: list[str], widths: list[float], size: float, bold: bool) -> float:
        self.font(size, bold)
        return max(self.measure(cell, w * self.width - 8) for cell, w in zip(row, widths, strict=True)) + 8

    def _row(self, row: list[str], widths: list[float], size: float, bold: bool) -> None:
        h = self._row_height(row, widths, size, bold)
        x = 0.0
        for cell, w in zip(row, widths, strict=True):
            c = w * self.width
            if bold:
                self.p.fillRect(QRectF(x, self.y, c, h), QColor(235, 235, 235))
            self.p.setPen(QPen(QColor(180, 180, 180), 1))
            self.p.drawRect(QRectF(x, self.y, c, h))
            self.p.setPen(QColor(20, 20, 20))
            self.p.drawText(QRectF(x + 4, self.y + 4, c - 8, h), cell, self.option())
            x += c
        self.y += h

    def images(
        self,
        pictures: list[tuple[QImage, str]],
        height: float | None = None,
        gap: float = 24.0,
        caption_width: float = 150.0,
    ) -> list[QRectF]:
        """Pictures side by side, each with a caption under it; returns where each was drawn.

        Args:
            pictures: The pictures and their captions.
            height: Height to draw them at in pixels; ``None`` draws each at its own size (one
                picture pixel per device pixel, for pictures with text in them).
            gap: Space between two pictures.
            caption_width: Least width of a caption (a caption may be wider than its picture).
        """
        self.font(MIN_TEXT_PT)
        sizes = [
            (img.width(), img.height())
            if height is None
            else (img.width() * height / max(1, img.height()), height)
            for img, _ in pictures
        ]
        tallest = max((h for _, h in sizes), default=0.0)
        boxes = [max(w, caption_width if c else w) for (w, _), (_, c) in zip(sizes, pictures, strict=True)]
        caption_h = max(
            (self.measure(c, b) for (_, c), b in zip(pictures, boxes, strict=True) if c), default=0.0
        )
        self.fits(tallest + caption_h + 10)
        x = 0.0
        drawn = []
        for (img, caption), (w, h), box in zip(pictures, sizes, boxes, strict=True):
            rect = QRectF(x, self.y, w, h)
            self.p.drawImage(rect, img)
            drawn.append(rect)
            if caption:
                self.p.setPen(QColor(80, 80, 80))
                self.p.drawText(QRectF(x, self.y + tallest + 4, box, caption_h + 2), caption, self.option())
            x += box + gap
        self.y += tallest + caption_h + 14
        return drawn


def _model_row(title: str, m: ModelEntry | None) -> list[str]:
    if m is None:
        return [title, "not recorded", ""]
    return [title, model_text(m), m.file_hash]


def _audit_rows(events: tuple[AuditEntry, ...]) -> list[list[str]]:
    rows = [["When", "Who", "Action", "Details"]]
    for ev in events:
        details = json.dumps(ev.details, sort_keys=True, ensure_ascii=False) if ev.details else ""
        rows.append([when(ev.at, seconds=True), f"{ev.actor}@{ev.host or '?'}", ev.action, details[:400]])
    return rows


def _cover(pages: _Pages, doc: CaseDocument) -> None:
    c = doc.case
    pages.text("Case report", 11, gap=2)
    pages.text(c.title, 22, bold=True, gap=14)
    pages.table([[k, v] for k, v in cover_rows(doc)], [0.25, 0.75], size=9.5, header=False)
    pages.heading("Description", 11)
    pages.text(c.description or "No description.")
    rows = [["#", "Verdict", "Distance", "Largest contributor", "Notes"]]
    for it in doc.items:
        d = it.data
        rows.append(
            [
                str(it.number),
                VERDICT_TEXT.get(it.verdict, str(it.verdict)),
                _num(d.distance if d else it.distance),
                d.labels[d.order()[0]] if d else "–",
                (it.notes or "")[:120],
            ]
        )
    widths = [0.06, 0.14, 0.12, 0.24, 0.44]
    pages.heading("Comparisons", 11, keep=pages.table_start(rows, widths))
    pages.table(rows, widths)


def crop_pictures(doc: CaseDocument, item: ItemEntry, width: float, gap: float) -> list[tuple[QImage, str]]:
    """Both crops with their annotations, drawn at the size they take on the page.

    They are :data:`CROP_HEIGHT` pixels high, less when both side by side with ``gap`` between
    them would be wider than ``width``; annotation labels are :data:`LABEL_PT` points high.
    """
    rgbs: list[tuple[str, CropEntry, np.ndarray]] = [
        (side, crop, render.decode_rgb(doc.crop_bytes(crop)))
        for side, crop in (("query", item.query), ("gallery", item.gallery))
    ]
    aspects = sum(rgb.shape[1] / max(1, rgb.shape[0]) for _, _, rgb in rgbs)
    height = min(float(CROP_HEIGHT), (width - gap * (len(rgbs) - 1)) / max(aspects, 1e-6))
    out = []
    for side, crop, rgb in rgbs:
        picture = render.annotated(
            rgb,
            item.annotations_on(side),
            scale=height / max(1, rgb.shape[0]),
            label_px=round(pt_px(LABEL_PT)),
        )
        out.append((_image(render.png_bytes(picture)), crop_text(side, crop)))
    return out


def overlay_pair(query_png: bytes, gallery_png: bytes, height: int = OVERLAY_HEIGHT, gap: int = 8) -> QImage:
    """An attribute's overlays on crop A and crop B side by side, ``height`` pixels high."""
    parts = []
    for data in (query_png, gallery_png):
        img = Image.fromarray(render.decode_rgb(data))
        parts.append(
            img.resize((max(1, round(img.width * height / img.height)), height), Image.Resampling.BICUBIC)
        )
    out = Image.new("RGB", (sum(p.width for p in parts) + gap, height), "white")
    out.paste(parts[0], (0, 0))
    out.paste(parts[1], (parts[0].width + gap, 0))
    return _image(render.png_bytes(out))


def chart_picture(item: ItemEntry, width: float) -> QImage | None:
    """The contribution chart ``width`` pixels wide, its smallest text :data:`MIN_TEXT_PT` points high."""
    if item.data is None:
        return None
    scale = pt_px(MIN_TEXT_PT) / min(render.CHART_FONT_PX)
    return _image(render.png_bytes(render.chart(item.data, top=TABLE_ROWS, width=int(width), scale=scale)))


def _comparison(pages: _Pages, doc: CaseDocument, item: ItemEntry) -> None:
    pages.new_page()
    pages.text(f"Comparison {item.number} of {len(doc.items)}", 16, bold=True, gap=2)
    pages.text(f"Verdict: {VERDICT_TEXT.get(item.verdict, str(item.verdict))}", 12, bold=True, gap=10)
    gap = 40.0
    pages.images(crop_pictures(doc, item, pages.width, gap), gap=gap, caption_width=300.0)
    data = item.data
    if data is not None:
        pages.text(
            f"Target distance {_num(data.distance)}   Sum of components {_num(data.sum_of_components)}   "
            f"Gap {gap_text(data)}",
            10,
            bold=True,
        )
        pairs = [
            (
                overlay_pair(doc.members[o.query_member], doc.members[o.gallery_member]),
                f"{o.label} ({render.percent(float(data.shares[o.index]))})",
            )
            for o in item.overlays
        ]
        if pairs:
            pages.images(pairs, gap=30, caption_width=0)
        chart = chart_picture(item, pages.width)
        if chart is not None:
            pages.images([(chart, "")])
        rows = [["Attribute", "d_m", "Component", "Share", "Crop A", "Crop B"]]
        for i in data.order()[:TABLE_ROWS]:
            rows.append(
                [
                    data.labels[i],
                    _num(float(data.attribute_distances[i])),
                    _num(float(data.components[i])),
                    render.percent(float(data.shares[i])),
                    predicted_text(None if data.predicted_query is None else float(data.predicted_query[i])),
                    predicted_text(
                        None if data.predicted_gallery is None else float(data.predicted_gallery[i])
                    ),
                ]
            )
        pages.table(rows, [0.3, 0.14, 0.14, 0.12, 0.15, 0.15])
        if data.predicted_query is not None:
            pages.text(PREDICTED_NOTE, MIN_TEXT_PT)
    elif item.distance is not None:
        pages.text(f"Target distance {_num(item.distance)} (filed without an explanation).")
    pages.heading("Notes", 11)
    pages.text(item.notes or "No notes.")
    if item.annotations:
        rows = [["Crop", "Shape", "Label", "Position (pixels)"]]
        for a in item.annotations:
            where = ", ".join(
                f"{k}={v:g}" for k, v in sorted(a.geometry.items()) if isinstance(v, (int, float))
            )
            rows.append(
                [SIDE_TEXT.get(a.side, a.side), SHAPE_TEXT.get(a.kind, a.kind), a.label or "–", where]
            )
        widths = [0.18, 0.14, 0.36, 0.32]
        pages.heading("Annotations", 11, keep=pages.table_start(rows, widths))
        pages.table(rows, widths)
    else:
        pages.heading("Annotations", 11)
        pages.text("No annotations.")
    rows = [
        ["", "Model", "SHA-256"],
        _model_row("Target", item.model),
        _model_row("Interpreter", item.interpreter),
    ]
    widths = [0.14, 0.44, 0.42]
    pages.heading("Models", 11, keep=pages.table_start(rows, widths))
    pages.table(rows, widths)
    events = doc.item_audit(item)
    if events:
        rows = _audit_rows(events)
        widths = [0.24, 0.16, 0.16, 0.44]
        pages.heading("Audit excerpt", 11, keep=pages.table_start(rows, widths, MIN_TEXT_PT))
        pages.table(rows, widths, size=MIN_TEXT_PT)
    else:
        pages.heading("Audit excerpt", 11)
        pages.text("No events.")


def page_writer(path: str | os.PathLike[str]) -> QPdfWriter:
    """A PDF writer of A4 pages with the report's margins, at :data:`DPI` device pixels per inch."""
    writer = QPdfWriter(str(path))
    writer.setResolution(DPI)
    writer.setPageLayout(
        QPageLayout(
            QPageSize(QPageSize.PageSizeId.A4),
            QPageLayout.Orientation.Portrait,
            QMarginsF(MARGIN_MM, MARGIN_MM, MARGIN_MM, MARGIN_MM),
            QPageLayout.Unit.Millimeter,
        )
    )
    return writer


def export_pdf(doc: CaseDocument, out_path: str | os.PathLike[str]) -> Path:
    """Write the PDF report of an opened case file to ``out_path`` (atomically); returns the path."""
    _ensure_app()
    path = Path(out_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        writer = page_writer(tmp)
        writer.setTitle(f"Case report: {doc.case.title}")
        writer.setCreator(f"amd-workbench {doc.app_version}")
        painter = QPainter()
        if not painter.begin(writer):
            raise OSError(f"{path}: cannot be written")
        try:
            pages = _Pages(writer, painter)
            _cover(pages, doc)
            for item in doc.items:
                _comparison(pages, doc, item)
            pages.new_page()
            pages.heading("Audit trail of the case")
            pages.table(_audit_rows(doc.audit), [0.24, 0.16, 0.16, 0.44], size=MIN_TEXT_PT)
        finally:
            painter.end()
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
