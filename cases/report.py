"""The HTML report of a case: one self-contained file (pictures inline), safe to mail or archive.

A cover section with the case's fields and a summary table, then one ``<section
class="comparison">`` per compared pair: both crops with their annotations drawn, the overlays of
the largest contributors, the contribution chart, the table of components, the predicted
attributes, verdict, notes, the annotations listed, the models' provenance and hashes, and the
pair's audit events; the case's whole audit trail closes the report. Every string that came from
a user (titles, notes, labels, file names) is escaped, so a hostile note shows as text.
"""

from __future__ import annotations

import base64
import html
import json
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from cases import render
from cases.document import AuditEntry, CaseDocument, CaseEntry, CropEntry, ItemEntry, ModelEntry
from cases.snapshot import ExplanationData
from db.imagestore import make_shareable

VERDICT_TEXT = {"match": "Match", "no_match": "No match", "inconclusive": "Inconclusive", None: "No verdict"}
#: Rows of the component table (all attributes are in the case file's explanation JSON).
TABLE_ROWS = 12
#: The crops of a pair as the compare view names them.
SIDE_TEXT = {"query": "Crop A (query)", "gallery": "Crop B (gallery)"}
#: Annotation shapes as the compare view's tools name them.
SHAPE_TEXT = {"rect": "Rectangle", "arrow": "Arrow", "text": "Text"}
#: Says what the predicted-attribute columns hold.
PREDICTED_NOTE = (
    "Crop A and Crop B: the interpreter's predicted attribute for each crop (yes at a probability of "
    "50% or more) and its probability."
)


# ---------------------------------------------------------------------- words shared with the PDF report


def when(value: str | None, seconds: bool = False) -> str:
    """An ISO 8601 time as ``2026-12-07 13:42 UTC``, the same wherever the report is read.

    Times without a zone are UTC (as the store writes them); ``None`` gives a dash and text that
    is not a time is returned as it is.
    """
    if not value:
        return "–"
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    if t.tzinfo is not None:
        t = t.astimezone(timezone.utc)
    return t.strftime("%Y-%m-%d %H:%M:%S UTC" if seconds else "%Y-%m-%d %H:%M UTC")


def _named(word: str, value: str | None) -> str:
    """``camera c1``, but ``Camera 1`` when the name already says what it is."""
    if not value:
        return f"{word} –"
    return value if value.lower().startswith(word) else f"{word} {value}"


def crop_text(side: str, crop: CropEntry) -> str:
    """``Crop A (query): Camera 1, identity Demo 0001``."""
    return (
        f"{SIDE_TEXT.get(side, side)}: {_named('camera', crop.camera)}, {_named('identity', crop.identity)}"
    )


def predicted_text(probability: float | None) -> str:
    """A predicted attribute as the compare view shows it: ``yes 99%`` or ``no 7%``."""
    if probability is None:
        return "–"
    return f"{'yes' if probability >= 0.5 else 'no'} {100 * probability:.0f}%"


def gap_text(data: ExplanationData) -> str:
    """Sum of components minus the distance, and that as a share of the distance: ``+2.2955 (+5.28%)``."""
    return f"{data.sum_of_components - data.distance:+.4f} ({100 * data.gap:+.2f}%)"


def model_text(m: ModelEntry) -> str:
    """A model's name and provenance in one line (its hash goes in a column of its own)."""
    schema = (m.attribute_schema or {}).get("name") or "–"
    return (
        f"{m.name}; architecture {m.architecture or '–'}, schema {schema}, registered {when(m.registered_at)}"
    )


def _by(name: str | None) -> str:
    return f" by {name}" if name else ""


def cover_rows(doc: CaseDocument) -> list[tuple[str, str]]:
    """The fields of the report's cover.

    A report made from a case file names the file and gives its SHA-256; one made from a
    workspace's case says that no case file was saved and gives no hash.
    """
    c: CaseEntry = doc.case
    rows = [
        ("Reference", c.reference or "–"),
        ("Analyst", c.analyst or "–"),
        ("Status", c.status),
        ("Created", when(c.created_at) + _by(c.created_by)),
        ("Modified", when(c.updated_at)),
        ("Comparisons", str(len(doc.items))),
    ]
    if doc.path is not None:
        rows.append(
            (
                "Case file",
                f"{Path(doc.path).name} (format {doc.format_version}, saved {when(doc.saved_at)}"
                f"{_by(doc.saved_by)})",
            )
        )
        rows.append(("Case file SHA-256", doc.sha256 or "–"))
    else:
        source = f"the workspace {Path(doc.workspace).name}" if doc.workspace else "a workspace"
        rows.append(("Case file", "not saved as a case file"))
        rows.append(("Made from", f"{source} on {when(doc.saved_at)}"))
    rows.append(("Program", f"amd-workbench {doc.app_version}"))
    return rows


_CSS = """
body{font-family:"DejaVu Sans",Arial,sans-serif;margin:2em auto;max-width:60em;color:#1b1b1b;line-height:1.35}
h1{margin-bottom:.2em} h2{border-bottom:2px solid #444;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.6em 0} td,th{border:1px solid #bbb;padding:.25em .6em;text-align:left}
th{background:#eee} td.num{text-align:right;font-variant-numeric:tabular-nums}
.pair{display:flex;gap:1.5em;flex-wrap:wrap;align-items:flex-start}
.pair figure{margin:0} figcaption{font-size:.85em;color:#555;max-width:16em;overflow-wrap:anywhere}
.notes{white-space:pre-wrap;border-left:4px solid #999;padding:.3em .8em;background:#f6f6f6}
.hash{font-family:"DejaVu Sans Mono",monospace;font-size:.85em;overflow-wrap:anywhere}
.verdict{font-weight:bold} section.comparison{page-break-before:always} .note{font-size:.85em;color:#555}
"""


def _e(value: object) -> str:
    """Escaped text of any value (``None`` shows as a dash)."""
    return "–" if value is None or value == "" else html.escape(str(value), quote=True)


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"


def _img(data: bytes, alt: str, mime: str = "image/png", width: int | None = None) -> str:
    size = f' width="{width}"' if width else ""
    return f'<img src="data:{mime};base64,{base64.b64encode(data).decode("ascii")}" alt="{_e(alt)}"{size}>'


def _fields(rows: list[tuple[str, object]]) -> str:
    body = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def _crop_caption(side: str, item: ItemEntry) -> str:
    c = item.query if side == "query" else item.gallery
    return f'{_e(crop_text(side, c))}, {c.width}×{c.height}, SHA-256 <span class="hash">{_e(c.sha256)}</span>'


def _model_rows(title: str, m: ModelEntry | None) -> str:
    if m is None:
        return f"<tr><th>{_e(title)}</th><td colspan=2>not recorded</td></tr>"
    return f'<tr><th>{_e(title)}</th><td>{_e(model_text(m))}</td><td class="hash">{_e(m.file_hash)}</td></tr>'


def _audit_table(events: tuple[AuditEntry, ...]) -> str:
    if not events:
        return "<p>No events.</p>"
    rows = "".join(
        f"<tr><td>{_e(when(ev.at, seconds=True))}</td><td>{_e(ev.actor)}@{_e(ev.host)}</td><td>{_e(ev.action)}</td>"
        f"<td>{_e(json.dumps(ev.details, sort_keys=True, ensure_ascii=False) if ev.details else '')}</td></tr>"
        for ev in events
    )
    return f"<table><tr><th>When</th><th>Who</th><th>Action</th><th>Details</th></tr>{rows}</table>"


def _item_section(doc: CaseDocument, item: ItemEntry) -> str:
    out = [
        f'<section class="comparison" id="item-{item.number}">',
        f"<h2>Comparison {item.number} of {len(doc.items)}</h2>",
        f'<p class="verdict">Verdict: {_e(VERDICT_TEXT.get(item.verdict, item.verdict))}</p>',
    ]
    out.append('<div class="pair">')
    for side, crop in (("query", item.query), ("gallery", item.gallery)):
        picture = render.annotated(render.decode_rgb(doc.crop_bytes(crop)), item.annotations_on(side))
        out.append(
            f"<figure>{_img(render.png_bytes(picture), f'{side} crop')}"
            f"<figcaption>{_crop_caption(side, item)}</figcaption></figure>"
        )
    out.append("</div>")
    data = item.data
    if data is not None:
        out.append(
            "<h3>Explanation</h3>"
            + _fields(
                [
                    ("Target distance", _num(data.distance)),
                    ("Sum of components", _num(data.sum_of_components)),
                    ("Gap", gap_text(data)),
                ]
            )
        )
        if item.overlays:
            out.append('<h3>Where the largest contributors are</h3><div class="pair">')
            for o in item.overlays:
                out.append(
                    f"<figure>{_img(doc.members[o.query_member], f'{o.label} on the query crop', width=96)}"
                    f"{_img(doc.members[o.gallery_member], f'{o.label} on the gallery crop', width=96)}"
                    f"<figcaption>{_e(o.label)} ({render.percent(float(data.shares[o.index]))})</figcaption>"
                    "</figure>"
                )
            out.append("</div>")
        # Drawn again from the numbers rather than taken from the file's chart member, so that a file
        # saved by an earlier version shows the chart in the compare view's colours and words too.
        chart = render.png_bytes(render.chart(data, top=TABLE_ROWS))
        out.append(f"<h3>Contributions</h3><p>{_img(chart, 'contribution chart')}</p>")
        rows = []
        for i in data.order()[:TABLE_ROWS]:
            pq = predicted_text(None if data.predicted_query is None else float(data.predicted_query[i]))
            pg = predicted_text(None if data.predicted_gallery is None else float(data.predicted_gallery[i]))
            rows.append(
                f"<tr><td>{_e(data.labels[i])}</td><td class=num>{_num(float(data.attribute_distances[i]))}</td>"
                f"<td class=num>{_num(float(data.components[i]))}</td>"
                f"<td class=num>{render.percent(float(data.shares[i]))}</td><td class=num>{pq}</td><td class=num>{pg}</td></tr>"
            )
        out.append(
            "<table><tr><th>Attribute</th><th>d<sub>m</sub></th><th>Component</th><th>Share</th>"
            "<th>Crop A</th><th>Crop B</th></tr>" + "".join(rows) + "</table>"
        )
        if data.predicted_query is not None:
            out.append(f'<p class="note">{_e(PREDICTED_NOTE)}</p>')
    elif item.distance is not None:
        out.append(f"<p>Target distance {_num(item.distance)} (filed without an explanation).</p>")
    out.append("<h3>Notes</h3>")
    out.append(f'<div class="notes">{_e(item.notes)}</div>' if item.notes else "<p>No notes.</p>")
    out.append("<h3>Annotations</h3>")
    if item.annotations:
        rows = "".join(
            f"<tr><td>{_e(SIDE_TEXT.get(a.side, a.side))}</td><td>{_e(SHAPE_TEXT.get(a.kind, a.kind))}</td><td>{_e(a.label)}</td>"
            f"<td>{_e(', '.join(f'{k}={v:g}' for k, v in sorted(a.geometry.items()) if isinstance(v, (int, float))))}</td></tr>"
            for a in item.annotations
        )
        out.append(
            f"<table><tr><th>Crop</th><th>Shape</th><th>Label</th><th>Position (pixels)</th></tr>{rows}</table>"
        )
    else:
        out.append("<p>No annotations.</p>")
    out.append(
        "<h3>Models</h3><table>"
        + _model_rows("Target model", item.model)
        + _model_rows("Interpreter", item.interpreter)
        + "</table>"
    )
    out.append("<h3>Audit excerpt</h3>" + _audit_table(doc.item_audit(item)))
    out.append("</section>")
    return "\n".join(out)


def render_html(doc: CaseDocument) -> str:
    """The report as one HTML string."""
    c = doc.case
    summary = "".join(
        f'<tr><td><a href="#item-{it.number}">{it.number}</a></td><td>{_e(VERDICT_TEXT.get(it.verdict, it.verdict))}</td>'
        f"<td class=num>{_num(it.data.distance if it.data else it.distance)}</td>"
        f"<td>{_e(it.data.labels[it.data.order()[0]] if it.data else None)}</td></tr>"
        for it in doc.items
    )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Case report: {_e(c.title)}</title><style>{_CSS}</style></head><body>",
        '<section class="cover">',
        f"<h1>{_e(c.title)}</h1>",
        _fields(cover_rows(doc)),
        "<h3>Description</h3>",
        f'<div class="notes">{_e(c.description)}</div>' if c.description else "<p>No description.</p>",
        "<h3>Comparisons</h3>",
        "<table><tr><th>#</th><th>Verdict</th><th>Distance</th><th>Largest contributor</th></tr>"
        + summary
        + "</table>",
        "</section>",
    ]
    parts.extend(_item_section(doc, it) for it in doc.items)
    parts.append(
        '<section class="audit"><h2>Audit trail of the case</h2>' + _audit_table(doc.audit) + "</section>"
    )
    parts.append("</body></html>\n")
    return "\n".join(parts)


def export_html(doc: CaseDocument, out_path: str | os.PathLike[str]) -> Path:
    """Write the report to ``out_path`` atomically; returns the path."""
    path = Path(out_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(render_html(doc))
        make_shareable(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
