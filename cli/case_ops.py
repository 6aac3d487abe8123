"""Case work behind the desktop application's case panel: listing, filing, reopening, annotating, files.

Qt-free, so that the case panel, the headless ``case`` command and the tests call the same code. Every
function may block (database, image decoding, zip writing) and is meant to run on a worker thread; the
ones that change the store are meant for the window's single writer thread, which runs them in the
order they were made (undo relies on that).

An annotation drawn in the compare view is known to the store only once its ``add`` has run on the
writer thread, so the view refers to it through an :class:`AnnotationHandle` whose ``id`` that thread
fills in; later changes of the same annotation (move, relabel, delete, undo) run on the same thread
after it and read the id there.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from db.errors import StoreError

if TYPE_CHECKING:
    from amd.explain import Explanation
    from cases.archive import DuplicateCase, SavedCase, VerifyReport
    from cases.document import CaseDocument
    from cli.workbench import Workbench
    from db.records import AnnotationInfo, CaseInfo, CaseItemInfo, CropInfo
    from db.workspace import Workspace

#: Report formats of :func:`export_report`.
REPORT_FORMATS = ("html", "pdf")


@dataclass(frozen=True)
class ItemRow:
    """One item of a case as the panel lists it.

    Attributes:
        item: The item (verdict, notes, distance, annotations).
        number: Its place in the case, from 1.
        query: The query (A) crop's record.
        gallery: The gallery (B) crop's record.
    """

    item: CaseItemInfo
    number: int
    query: CropInfo
    gallery: CropInfo


@dataclass(frozen=True)
class CaseContents:
    """A case with its items, ready to be listed."""

    case: CaseInfo
    rows: tuple[ItemRow, ...]


@dataclass(frozen=True)
class OpenedItem:
    """A filed pair as the compare view shows it again, without running a model.

    Attributes:
        item: The item as stored.
        case: The case it belongs to (without its items).
        path_query: The stored original of the query (A) crop.
        path_gallery: The stored original of the gallery (B) crop.
        explanation: The explanation rebuilt from the item's snapshot (maps at the crops' sizes), or
            ``None`` when the pair was filed without one.
    """

    item: CaseItemInfo
    case: CaseInfo
    path_query: str
    path_gallery: str
    explanation: Explanation | None


class AnnotationHandle:
    """Refers to an annotation before and after the store has given it an id.

    ``id`` is written and read on the writer thread only (see the module's docstring).
    """

    __slots__ = ("id",)

    def __init__(self, annotation_id: int | None = None) -> None:
        self.id = annotation_id

    def require(self) -> int:
        if self.id is None:
            raise StoreError("this annotation was never stored (its case item may have been removed)")
        return self.id


# ---------------------------------------------------------------------- reading


def list_cases(ws: Workspace) -> list[CaseInfo]:
    """Every case of the workspace with its item count, oldest first."""
    return ws.cases.list()


def case_contents(ws: Workspace, case_id: int) -> CaseContents:
    """A case with its items in order and both crop records of each (one query for all crops)."""
    case = ws.cases.get(case_id)
    crop_ids = sorted({i for it in case.items for i in (it.query_crop_id, it.gallery_crop_id)})
    crops = {c.id: c for c in ws.crops.get_many(crop_ids)}
    rows = tuple(
        ItemRow(it, n, crops[it.query_crop_id], crops[it.gallery_crop_id])
        for n, it in enumerate(case.items, 1)
    )
    return CaseContents(case, rows)


def open_item(ws: Workspace, item_id: int) -> OpenedItem:
    """A filed pair with its crops' files and its explanation rebuilt from the snapshot.

    Raises:
        NotFoundError: No such item.
        SnapshotError: The item's snapshot is malformed.
    """
    from cases.snapshot import decode_snapshot

    item = ws.cases.get_item(item_id)
    case = next(c for c in ws.cases.list() if c.id == item.case_id)
    query, gallery = ws.crops.get_many([item.query_crop_id, item.gallery_crop_id])
    explanation = None
    if item.explanation is not None:
        data = decode_snapshot(item.explanation)
        explanation = data.to_explanation((query.height, query.width), (gallery.height, gallery.width))
    return OpenedItem(
        item,
        case,
        str(ws.images.original_path(query.sha256, query.format)),
        str(ws.images.original_path(gallery.sha256, gallery.format)),
        explanation,
    )


# ---------------------------------------------------------------------- changing (writer thread)


def create_case(
    ws: Workspace, title: str, reference: str | None, analyst: str | None, description: str | None
) -> CaseInfo:
    """A new case; empty optional fields are left unset."""
    return ws.cases.create(
        title, description=description or None, reference=reference or None, analyst=analyst or None
    )


def update_case(
    ws: Workspace,
    case_id: int,
    title: str,
    reference: str | None,
    analyst: str | None,
    description: str | None,
) -> CaseInfo:
    """Change a case's fields (an empty optional field is cleared)."""
    return ws.cases.update(
        case_id,
        title=title,
        reference=reference or None,
        analyst=analyst or None,
        description=description or None,
    )


def file_pair(
    bench: Workbench,
    case_id: int,
    path_a: str,
    path_b: str,
    verdict: str | None,
    notes: str,
    explanation: Explanation | None,
) -> CaseItemInfo:
    """File a compared pair in a case with its explanation snapshot, verdict and notes.

    Files from outside the workspace are imported first; a pair the case holds already is updated
    (verdict and notes) instead of being filed twice.
    """
    return bench.record_verdict(path_a, path_b, verdict, notes, explanation, case_id=case_id)


def set_item_verdict(ws: Workspace, item_id: int, verdict: str | None, notes: str) -> CaseItemInfo:
    """Record the verdict (a word of the compare view, or ``None``) and the notes of an item."""
    from cli.workbench import VERDICT_CODES

    code = VERDICT_CODES.get(verdict) if verdict is not None else None
    if verdict is not None and code is None:
        raise StoreError(f"unknown verdict {verdict!r}")
    return ws.cases.set_verdict(item_id, code, notes)


def add_annotation(
    ws: Workspace,
    item_id: int,
    handle: AnnotationHandle,
    side: str,
    kind: str,
    geometry: dict[str, float],
    label: str | None,
    color: str | None,
) -> AnnotationInfo:
    """Store an annotation of an item and give its handle the new id."""
    info = ws.cases.add_annotation(item_id, side, kind, dict(geometry), label=label, color=color)
    handle.id = info.id
    return info


def update_annotation(ws: Workspace, handle: AnnotationHandle, changes: dict[str, Any]) -> AnnotationInfo:
    """Change the fields given in ``changes`` (``geometry``, ``label``, ``color``) of a stored annotation."""
    return ws.cases.update_annotation(handle.require(), **changes)


def delete_annotation(ws: Workspace, handle: AnnotationHandle) -> AnnotationInfo:
    """Delete a stored annotation; the handle forgets its id (adding it again gives a new one)."""
    info = ws.cases.delete_annotation(handle.require())
    handle.id = None
    return info


# ---------------------------------------------------------------------- case files and reports


def save_case_file(ws: Workspace, case_id: int, path: str | os.PathLike[str]) -> SavedCase:
    """Save a case as one ``.amdcase`` file (atomically; see :func:`cases.archive.save_case`)."""
    from cases.archive import save_case

    return save_case(ws, case_id, path)


def verify_case_file(path: str | os.PathLike[str]) -> VerifyReport:
    """Check a case file completely (every hash, the layout, hostile members)."""
    from cases.archive import verify_case

    return verify_case(path)


def import_case_file(ws: Workspace, path: str | os.PathLike[str], force: bool = False) -> CaseInfo | DuplicateCase:
    """Verify a case file and import it as a new case of the workspace (its crops come with it).

    Unless ``force``, a file whose case the workspace already holds (same title, reference, pairs, verdicts
    and notes) is not imported: the result is then a :class:`cases.archive.DuplicateCase` naming that case.

    Raises:
        CaseFileError: The file is refused; the message names the file and every problem.
    """
    from cases.archive import DuplicateCase, identical_case, import_case, open_case

    if not force:
        twin = identical_case(ws, open_case(path))
        if twin is not None:
            return DuplicateCase(Path(path), twin)
    return import_case(ws, path)


def case_document(ws: Workspace, case_id: int) -> CaseDocument:
    """A workspace's case as an opened case file, for the reports.

    The case is written to a temporary ``.amdcase`` file and opened from it, so that a report of the
    workspace shows exactly what a saved file would (and goes through the same checks). That file is
    gone when the report is made, so the document names no file and no hash (``path`` and ``sha256``
    are ``None``) but the workspace it came from. Nothing is logged: the export itself is, by
    :func:`export_report`.
    """
    from dataclasses import replace
    from datetime import datetime, timezone

    from cases.archive import build_members, open_case, write_archive

    case = ws.cases.get(case_id)
    manifest, members = build_members(ws, case)
    manifest["saved_at"] = datetime.now(timezone.utc).isoformat()
    manifest["saved_by"] = ws.actor
    with tempfile.TemporaryDirectory(prefix="amd-case-") as folder:
        path = Path(folder) / f"case-{case_id}.amdcase"
        write_archive(path, manifest, members)
        doc = open_case(path)
    return replace(doc, path=None, sha256=None, workspace=str(ws.root))


def export_report(ws: Workspace, case_id: int, path: str | os.PathLike[str], fmt: str) -> Path:
    """Write the HTML or PDF report of a workspace's case (atomically) and log the export.

    Raises:
        StoreError: ``fmt`` is not one of :data:`REPORT_FORMATS`.
        CaseFileError: A crop's original is missing or damaged.
        OSError: The destination cannot be written.
    """
    import hashlib

    if fmt not in REPORT_FORMATS:
        raise StoreError(f"a report is {' or '.join(REPORT_FORMATS)}, not {fmt!r}")
    doc = case_document(ws, case_id)
    if fmt == "html":
        from cases.report import export_html

        out = export_html(doc, path)
    else:
        from gui.report_pdf import export_pdf

        out = export_pdf(doc, path)
    ws.cases.record_export(
        case_id, str(Path(out).resolve()), hashlib.sha256(out.read_bytes()).hexdigest(), fmt
    )
    return out
