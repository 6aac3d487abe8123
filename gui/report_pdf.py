"""The PDF report of a case, drawn with Qt's PDF writer: a cover page, then one page per comparison.

Same content as the HTML report (:mod:`cases.report`): case data on the cover with a summary of
the comparisons; per comparison both crops with their annotations, the overlays of the largest
contributors, the contribution chart, the component table, verdict, notes, annotations, the models'
provenance and hashes and the pair's audit events. A comparison that does not fit its page goes on
over the next. Text is real PDF text (searchable, copyable). Works without a display: a headless
Qt application is started when none runs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from PySide6.QtCore import QMarginsF, QRectF, Qt
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
)

from cases import render
from cases.document import AuditEntry, CaseDocument, ItemEntry, ModelEntry
from cases.report import TABLE_ROWS, VERDICT_TEXT

#: Device pixels per inch of the page (pictures are placed at this resolution).
DPI = 150
MARGIN_MM = 15.0


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
        flags = int(Qt.TextFlag.TextWordWrap) | int(Qt.AlignmentFlag.AlignLeft)
        bound = self.p.boundingRect(QRectF(x, 0, w, 1e6), flags, text)
        if bound.height() > self.height - self.y:
            # Long text (notes) is split into lines so that it can go on over the next page.
            for line in text.splitlines() or [""]:
                self.text(line, size, bold, mono, x, 0.0)
            self.y += gap
            return
        self.fits(bound.height())
        self.p.setPen(QColor(20, 20, 20))
        self.p.drawText(QRectF(x, self.y, w, bound.height() + 2), flags, text)
        self.y += bound.height() + gap

    def heading(self, text: str, size: float = 13.0) -> None:
        self.fits(90)
        self.y += 8
        self.text(text, size, bold=True, gap=4)
        self.p.setPen(QPen(QColor(60, 60, 60), 2))
        self.p.drawLine(0, int(self.y), int(self.width), int(self.y))
        self.y += 10

    def table(
        self, rows: list[list[str]], widths: list[float], size: float = 8.5, header: bool = True
    ) -> None:
        """Rows of cells; ``widths`` are fractions of the page width. A header row repeats on a new page."""
        for r, row in enumerate(rows):
            h = self._row_height(row, widths, size, header and r == 0)
            if self.y + h > self.height and self.y > 0:
                self.new_page()
                if header and r > 0:
                    self._row(rows[0], widths, size, True)
            self._row(row, widths, size, header and r == 0)
        self.y += 8

    @staticmethod
    def _flags(cell: str) -> int:
        # Hashes and other long tokens have no space to break at: let them wrap anywhere.
        long_token = any(len(t) > 24 for t in cell.split())
        wrap = Qt.TextFlag.TextWrapAnywhere if long_token else Qt.TextFlag.TextWordWrap
        return int(wrap) | int(Qt.AlignmentFlag.AlignLeft)

    def _row_height(self, row: list[str], widths: list[float], size: float, bold: bool) -> float:
        self.font(size, bold)
        heights = [
            self.p.boundingRect(QRectF(0, 0, w * self.width - 8, 1e6), self._flags(cell), cell).height()
            for cell, w in zip(row, widths, strict=True)
        ]
        return max(heights) + 8

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
            self.p.drawText(QRectF(x + 4, self.y + 4, c - 8, h), self._flags(cell), cell)
            x += c
        self.y += h

    def images(self, pictures: list[tuple[QImage, str]], height: float, gap: float = 24.0) -> None:
        """Pictures side by side at ``height`` pixels, each with a caption under it."""
        self.font(7.5)
        flags = int(Qt.TextFlag.TextWordWrap) | int(Qt.AlignmentFlag.AlignLeft)
        widths = [img.width() * height / max(1, img.height()) for img, _ in pictures]
        caption_h = max(
            (
                self.p.boundingRect(QRectF(0, 0, max(w, 150), 1e6), flags, c).height()
                for (_, c), w in zip(pictures, widths, strict=True)
            ),
            default=0,
        )
        self.fits(height + caption_h + 10)
        x = 0.0
        for (img, caption), w in zip(pictures, widths, strict=True):
            self.p.drawImage(QRectF(x, self.y, w, height), img)
            self.p.setPen(QColor(80, 80, 80))
            self.p.drawText(QRectF(x, self.y + height + 4, max(w, 150), caption_h + 2), flags, caption)
            x += max(w, 150 if caption else w) + gap
        self.y += height + caption_h + 14


def _model_row(title: str, m: ModelEntry | None) -> list[str]:
    if m is None:
        return [title, "not recorded", ""]
    schema = (m.attribute_schema or {}).get("name") or "–"
    return [
        title,
        f"{m.name} ({m.architecture or '–'}, schema {schema}, registered {m.registered_at or '–'})",
        m.file_hash,
    ]


def _audit_rows(events: tuple[AuditEntry, ...]) -> list[list[str]]:
    rows = [["When (UTC)", "Who", "Action", "Details"]]
    for ev in events:
        details = json.dumps(ev.details, sort_keys=True, ensure_ascii=False) if ev.details else ""
        rows.append([ev.at[:19].replace("T", " "), f"{ev.actor}@{ev.host or '?'}", ev.action, details[:400]])
    return rows


def _cover(pages: _Pages, doc: CaseDocument) -> None:
    c = doc.case
    pages.text("Case report", 11, gap=2)
    pages.text(c.title, 22, bold=True, gap=14)
    pages.table(
        [
            ["Reference", c.reference or "–"],
            ["Analyst", c.analyst or "–"],
            ["Status", c.status],
            ["Created", f"{c.created_at or '–'} by {c.created_by or '–'}"],
            ["Modified", c.updated_at or "–"],
            ["Comparisons", str(len(doc.items))],
            ["Case file", f"{Path(doc.path).name} (format {doc.format_version}, saved {doc.saved_at})"],
            ["Case file SHA-256", doc.sha256],
            ["Program", f"amd-workbench {doc.app_version}"],
        ],
        [0.25, 0.75],
        size=9.5,
        header=False,
    )
    pages.heading("Description", 11)
    pages.text(c.description or "No description.")
    pages.heading("Comparisons", 11)
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
    pages.table(rows, [0.06, 0.14, 0.12, 0.24, 0.44])


def _comparison(pages: _Pages, doc: CaseDocument, item: ItemEntry) -> None:
    pages.new_page()
    pages.text(f"Comparison {item.number} of {len(doc.items)}", 16, bold=True, gap=2)
    pages.text(f"Verdict: {VERDICT_TEXT.get(item.verdict, str(item.verdict))}", 12, bold=True, gap=10)
    crops = []
    for side, crop in (("query", item.query), ("gallery", item.gallery)):
        picture = render.annotated(render.decode_rgb(doc.crop_bytes(crop)), item.annotations_on(side))
        caption = f"{side.capitalize()}: camera {crop.camera or '–'}, identity {crop.identity or '–'}"
        crops.append((_image(render.png_bytes(picture)), caption))
    data = item.data
    pairs = []
    for o in item.overlays:
        pairs.append((_image(doc.members[o.query_member]), f"{o.label} (query)"))
        pairs.append((_image(doc.members[o.gallery_member]), "(gallery)"))
    pages.images(crops, 300)
    if data is not None:
        pages.text(
            f"Target distance {_num(data.distance)}   sum of components {_num(data.sum_of_components)}   "
            f"gap {100 * data.gap:.2f} %",
            10,
            bold=True,
        )
        if pairs:
            pages.images(pairs, 170, gap=10)
        if item.chart_member:
            chart = _image(doc.members[item.chart_member])
            pages.images([(chart, "")], min(300.0, chart.height() * pages.width * 0.75 / chart.width()))
        rows = [["Attribute", "d_m", "Component", "Share", "Pred. query", "Pred. gallery"]]
        for i in data.order()[:TABLE_ROWS]:
            rows.append(
                [
                    data.labels[i],
                    _num(float(data.attribute_distances[i])),
                    _num(float(data.components[i])),
                    f"{100 * float(data.shares[i]):.1f} %",
                    "–" if data.predicted_query is None else f"{float(data.predicted_query[i]):.2f}",
                    "–" if data.predicted_gallery is None else f"{float(data.predicted_gallery[i]):.2f}",
                ]
            )
        pages.table(rows, [0.3, 0.14, 0.14, 0.12, 0.15, 0.15])
    elif item.distance is not None:
        pages.text(f"Target distance {_num(item.distance)} (filed without an explanation).")
    pages.heading("Notes", 11)
    pages.text(item.notes or "No notes.")
    pages.heading("Annotations", 11)
    if item.annotations:
        rows = [["Crop", "Shape", "Label", "Position (pixels)"]]
        for a in item.annotations:
            where = ", ".join(
                f"{k}={v:g}" for k, v in sorted(a.geometry.items()) if isinstance(v, (int, float))
            )
            rows.append([a.side, a.kind, a.label or "–", where])
        pages.table(rows, [0.15, 0.15, 0.35, 0.35])
    else:
        pages.text("No annotations.")
    pages.heading("Models", 11)
    pages.table(
        [
            ["", "Model", "SHA-256"],
            _model_row("Target", item.model),
            _model_row("Interpreter", item.interpreter),
        ],
        [0.14, 0.44, 0.42],
    )
    pages.fits(160)
    pages.heading("Audit excerpt", 11)
    events = doc.item_audit(item)
    if events:
        pages.table(_audit_rows(events), [0.24, 0.16, 0.16, 0.44], size=7.5)
    else:
        pages.text("No events.")


def export_pdf(doc: CaseDocument, out_path: str | os.PathLike[str]) -> Path:
    """Write the PDF report of an opened case file to ``out_path`` (atomically); returns the path."""
    _ensure_app()
    path = Path(out_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        writer = QPdfWriter(str(tmp))
        writer.setResolution(DPI)
        writer.setTitle(f"Case report: {doc.case.title}")
        writer.setCreator(f"amd-workbench {doc.app_version}")
        writer.setPageLayout(
            QPageLayout(
                QPageSize(QPageSize.PageSizeId.A4),
                QPageLayout.Orientation.Portrait,
                QMarginsF(MARGIN_MM, MARGIN_MM, MARGIN_MM, MARGIN_MM),
                QPageLayout.Unit.Millimeter,
            )
        )
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
            pages.table(_audit_rows(doc.audit), [0.24, 0.16, 0.16, 0.44], size=7.5)
        finally:
            painter.end()
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
