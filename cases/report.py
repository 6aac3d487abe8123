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
from pathlib import Path

from cases import render
from cases.document import AuditEntry, CaseDocument, ItemEntry, ModelEntry

VERDICT_TEXT = {"match": "Match", "no_match": "No match", "inconclusive": "Inconclusive", None: "No verdict"}
#: Rows of the component table (all attributes are in the case file's explanation JSON).
TABLE_ROWS = 12

_CSS = """
body{font-family:"DejaVu Sans",Arial,sans-serif;margin:2em auto;max-width:60em;color:#1b1b1b;line-height:1.35}
h1{margin-bottom:.2em} h2{border-bottom:2px solid #444;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.6em 0} td,th{border:1px solid #bbb;padding:.25em .6em;text-align:left}
th{background:#eee} td.num{text-align:right;font-variant-numeric:tabular-nums}
.pair{display:flex;gap:1.5em;flex-wrap:wrap;align-items:flex-start}
.pair figure{margin:0} figcaption{font-size:.85em;color:#555;max-width:16em;overflow-wrap:anywhere}
.notes{white-space:pre-wrap;border-left:4px solid #999;padding:.3em .8em;background:#f6f6f6}
.hash{font-family:"DejaVu Sans Mono",monospace;font-size:.85em;overflow-wrap:anywhere}
.verdict{font-weight:bold} section.comparison{page-break-before:always}
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
    return (
        f"{side.capitalize()}: camera {_e(c.camera)}, identity {_e(c.identity)}, {c.width}×{c.height}, "
        f'SHA-256 <span class="hash">{_e(c.sha256)}</span>'
    )


def _model_rows(title: str, m: ModelEntry | None) -> str:
    if m is None:
        return f"<tr><th>{_e(title)}</th><td colspan=3>not recorded</td></tr>"
    schema = (m.attribute_schema or {}).get("name")
    return (
        f"<tr><th>{_e(title)}</th><td>{_e(m.name)} ({_e(m.architecture)}, schema {_e(schema)}, registered "
        f'{_e(m.registered_at)})</td><td class="hash">{_e(m.file_hash)}</td></tr>'
    )


def _audit_table(events: tuple[AuditEntry, ...]) -> str:
    if not events:
        return "<p>No events.</p>"
    rows = "".join(
        f"<tr><td>{_e(ev.at)}</td><td>{_e(ev.actor)}@{_e(ev.host)}</td><td>{_e(ev.action)}</td>"
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
                    ("Gap", f"{100 * data.gap:.2f} %"),
                ]
            )
        )
        if item.overlays:
            out.append('<h3>Where the largest contributors are</h3><div class="pair">')
            for o in item.overlays:
                out.append(
                    f"<figure>{_img(doc.members[o.query_member], f'{o.label} on the query crop', width=96)}"
                    f"{_img(doc.members[o.gallery_member], f'{o.label} on the gallery crop', width=96)}"
                    f"<figcaption>{_e(o.label)}: share {100 * float(data.shares[o.index]):.1f} %</figcaption>"
                    "</figure>"
                )
            out.append("</div>")
        if item.chart_member:
            out.append(
                f"<h3>Contributions</h3><p>{_img(doc.members[item.chart_member], 'contribution chart')}</p>"
            )
        rows = []
        for i in data.order()[:TABLE_ROWS]:
            pq = "–" if data.predicted_query is None else f"{float(data.predicted_query[i]):.2f}"
            pg = "–" if data.predicted_gallery is None else f"{float(data.predicted_gallery[i]):.2f}"
            rows.append(
                f"<tr><td>{_e(data.labels[i])}</td><td class=num>{_num(float(data.attribute_distances[i]))}</td>"
                f"<td class=num>{_num(float(data.components[i]))}</td>"
                f"<td class=num>{100 * float(data.shares[i]):.1f} %</td><td class=num>{pq}</td><td class=num>{pg}</td></tr>"
            )
        out.append(
            "<table><tr><th>Attribute</th><th>d<sub>m</sub></th><th>Component</th><th>Share</th>"
            "<th>Predicted (query)</th><th>Predicted (gallery)</th></tr>" + "".join(rows) + "</table>"
        )
    elif item.distance is not None:
        out.append(f"<p>Target distance {_num(item.distance)} (filed without an explanation).</p>")
    out.append("<h3>Notes</h3>")
    out.append(f'<div class="notes">{_e(item.notes)}</div>' if item.notes else "<p>No notes.</p>")
    out.append("<h3>Annotations</h3>")
    if item.annotations:
        rows = "".join(
            f"<tr><td>{_e(a.side)}</td><td>{_e(a.kind)}</td><td>{_e(a.label)}</td>"
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
        _fields(
            [
                ("Reference", c.reference),
                ("Analyst", c.analyst),
                ("Status", c.status),
                ("Created", f"{c.created_at or '–'} by {c.created_by or '–'}"),
                ("Modified", c.updated_at),
                ("Comparisons", len(doc.items)),
                ("Case file", f"{Path(doc.path).name} (format {doc.format_version}, saved {doc.saved_at})"),
                ("Case file SHA-256", doc.sha256),
                ("Program", f"amd-workbench {doc.app_version}"),
            ]
        ),
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
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
