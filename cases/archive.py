"""``.amdcase`` files: one zip holding a case, verified member by member when it is opened.

Layout::

    manifest.json                       versioned JSON manifest (always the first member)
    crops/<sha256>.<ext>                the original crops, byte for byte
    items/<nnn>/explanation.json        the explanation snapshot of item nnn (cases.snapshot)
    items/<nnn>/chart.png               its contribution chart
    items/<nnn>/overlay_<k>_query.png   overlay of the k-th largest contributor on the query crop
    items/<nnn>/overlay_<k>_gallery.png ... and on the gallery crop

The manifest holds the format name and version, the application version, the case's fields, the
items (crops, verdict, notes, annotations, models, member names), the models' names, hashes and
metadata, the case's audit trail, and the SHA-256 and size of every other member. It is written
with sorted keys, members in a fixed order and fixed zip time stamps, so saving the same case twice
gives the same bytes except ``saved_at`` (the only time the manifest takes from the clock).
Exports are left out of the trail for the same reason; the workspace's own log keeps them.

Saving is atomic: the zip is written to a temporary file in the destination folder and renamed
over the destination only when complete, so a crash leaves the previous file as it was.

Opening checks, before anything is used: that the file is a complete zip; the member count, each
member's declared size and compression ratio, and their total (:class:`Limits`); member names (no
absolute paths, drive letters, backslashes, ``..``, duplicates, links or folders); the manifest's
layout and version; that the members are exactly those the manifest lists; and every SHA-256.
Members are read as streams with a cap, so a zip that lies about its sizes cannot exhaust memory.
The hashes detect damage and edits of the members; they are not a signature (someone who rewrites
the manifest too is not detected).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
import stat
import tempfile
import zipfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cases import render
from cases.document import (
    AnnotationEntry,
    AuditEntry,
    CaseDocument,
    CaseEntry,
    CropEntry,
    ItemEntry,
    ModelEntry,
    OverlayEntry,
)
from cases.errors import CaseFileError, SnapshotError
from cases.snapshot import decode_snapshot
from db.imagestore import EXTENSIONS, make_shareable
from db.models import VERDICTS

if TYPE_CHECKING:
    from db.records import CaseInfo, ModelInfo
    from db.workspace import Workspace

FORMAT_NAME = "amd-case"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SUFFIX = ".amdcase"
#: Attributes drawn as overlays per item (the largest contributors).
OVERLAYS_PER_ITEM = 3
#: Fixed time stamp of every member, so that the zip does not depend on the clock.
ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class Limits:
    """What a case file may hold before it is refused as hostile.

    Attributes:
        max_members: Number of members.
        max_member_bytes: Uncompressed size of one member.
        max_manifest_bytes: Uncompressed size of the manifest.
        max_total_bytes: Uncompressed size of all members together.
        max_ratio: Uncompressed / compressed size of a member (zip bombs compress by 1000 and more;
            crops and PNGs barely compress, JSON by 5 to 20).
        ratio_from_bytes: Members smaller than this are not held to ``max_ratio``.
    """

    max_members: int = 10_000
    max_member_bytes: int = 256 * 1024 * 1024
    max_manifest_bytes: int = 32 * 1024 * 1024
    max_total_bytes: int = 2 * 1024 * 1024 * 1024
    max_ratio: float = 100.0
    ratio_from_bytes: int = 64 * 1024


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True)
class SavedCase:
    """What :func:`save_case` wrote."""

    path: Path
    sha256: str
    size: int
    members: int
    items: int


@dataclass(frozen=True)
class VerifyReport:
    """The result of :func:`verify_case`.

    Attributes:
        path: The file checked.
        ok: True only when the file is intact: every check passed.
        problems: What is wrong, one sentence each (empty when ``ok``).
        members: Number of members checked.
        items: Number of compared pairs in the case (0 when the manifest is unreadable).
        format_version: The file's layout version, when the manifest could be read.
        sha256: SHA-256 of the whole file ("" when it could not be read).
    """

    path: str
    ok: bool
    problems: tuple[str, ...]
    members: int = 0
    items: int = 0
    format_version: int | None = None
    sha256: str = ""


# ---------------------------------------------------------------------- saving


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(timezone.utc).isoformat()


def _model_json(m: ModelInfo) -> dict[str, Any]:
    return {
        "kind": m.kind,
        "name": m.name,
        "file_hash": m.file_hash,
        "architecture": m.architecture,
        "attribute_schema": m.attribute_schema,
        "metrics": m.metrics,
        "registered_at": _iso(m.created_at),
    }


def _json_bytes(obj: Any) -> bytes:
    try:
        return (
            json.dumps(obj, sort_keys=True, indent=1, ensure_ascii=False, allow_nan=False) + "\n"
        ).encode()
    except ValueError as exc:  # NaN or infinity somewhere in the data
        raise CaseFileError(f"the case holds a value JSON cannot carry: {exc}") from None


def build_members(
    ws: Workspace, case: CaseInfo, colour_map: str = "inferno", opacity: float = 0.5
) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The manifest (without ``saved_at``/``saved_by``/``members``) and the member bytes of a case."""
    import amd

    crop_ids = sorted({i for it in case.items for i in (it.query_crop_id, it.gallery_crop_id)})
    crops = {c.id: c for c in ws.crops.get_many(crop_ids)}
    members: dict[str, bytes] = {}
    crop_json: dict[str, Any] = {}
    rgb: dict[int, Any] = {}
    for cid in crop_ids:
        c = crops[cid]
        name = f"crops/{c.sha256}.{EXTENSIONS.get(c.format.upper(), 'bin')}"
        try:
            data = ws.images.read(c.sha256, c.format)
        except OSError as exc:
            raise CaseFileError(
                f"the original of crop {cid} is missing from the image store ({exc.strerror or exc})"
            ) from None
        if hashlib.sha256(data).hexdigest() != c.sha256:
            raise CaseFileError(f"the stored original of crop {cid} is damaged (its SHA-256 differs)")
        members[name] = data
        rgb[cid] = render.decode_rgb(data)
        crop_json[c.sha256] = {
            "member": name,
            "format": c.format,
            "width": c.width,
            "height": c.height,
            "camera": c.camera,
            "identity": c.identity,
            "source_path": c.source_path,
            "time_text": c.time_text,
            "frame": c.frame,
        }
    models: dict[str, Any] = {}
    model_cache: dict[int, ModelInfo] = {}

    def model_hash(model_id: int | None) -> str | None:
        if model_id is None:
            return None
        if model_id not in model_cache:
            model_cache[model_id] = ws.models.get(model_id)
            models[model_cache[model_id].file_hash] = _model_json(model_cache[model_id])
        return model_cache[model_id].file_hash

    items = []
    for number, it in enumerate(case.items, 1):
        folder = f"items/{number:03d}"
        q, g = crops[it.query_crop_id], crops[it.gallery_crop_id]
        entry: dict[str, Any] = {
            "number": number,
            "id": it.id,
            "query": q.sha256,
            "gallery": g.sha256,
            "distance": it.distance,
            "verdict": it.verdict,
            "notes": it.notes,
            "model": model_hash(it.model_id),
            "interpreter": model_hash(it.interpreter_id),
            "created_at": _iso(it.created_at),
            "updated_at": _iso(it.updated_at),
            "annotations": [
                {
                    "side": a.side,
                    "kind": a.kind,
                    "geometry": a.geometry,
                    "label": a.label,
                    "color": a.color,
                    "created_at": _iso(a.created_at),
                    "updated_at": _iso(a.updated_at),
                }
                for a in it.annotations
            ],
            "explanation": None,
            "chart": None,
            "overlays": [],
        }
        if it.explanation is not None:
            try:
                data = decode_snapshot(it.explanation)
            except SnapshotError as exc:
                raise CaseFileError(f"item {number}: {exc}") from None
            entry["explanation"] = f"{folder}/explanation.json"
            members[entry["explanation"]] = _json_bytes(it.explanation)
            entry["chart"] = f"{folder}/chart.png"
            members[entry["chart"]] = render.png_bytes(render.chart(data))
            if data.has_maps:
                for k, i in enumerate(data.order()[:OVERLAYS_PER_ITEM], 1):
                    a, b = render.overlays(rgb[q.id], rgb[g.id], data, i, colour_map, opacity)
                    names = (f"{folder}/overlay_{k}_query.png", f"{folder}/overlay_{k}_gallery.png")
                    members[names[0]], members[names[1]] = render.png_bytes(a), render.png_bytes(b)
                    entry["overlays"].append(
                        {"index": i, "label": data.labels[i], "query": names[0], "gallery": names[1]}
                    )
        items.append(entry)
    manifest = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "app": {"name": "amd-workbench", "version": amd.__version__},
        "case": {
            "id": case.id,
            "title": case.title,
            "description": case.description,
            "reference": case.reference,
            "analyst": case.analyst,
            "status": case.status,
            "created_by": case.created_by,
            "created_at": _iso(case.created_at),
            "updated_at": _iso(case.updated_at),
        },
        "crops": crop_json,
        "models": models,
        "items": items,
        "audit": [ev.as_json() for ev in ws.cases.audit_trail(case.id, exports=False)],
    }
    return manifest, members


def _zip_info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
    info.create_system = 3  # Unix, so that the permission bits below mean the same everywhere
    info.external_attr = (stat.S_IFREG | 0o644) << 16
    compressible = name.endswith(".json")
    info.compress_type = zipfile.ZIP_DEFLATED if compressible else zipfile.ZIP_STORED
    return info


def write_archive(
    path: str | os.PathLike[str], manifest: dict[str, Any], members: dict[str, bytes]
) -> SavedCase:
    """Write a case file atomically: a temporary file in the same folder, renamed when complete.

    ``manifest`` gets ``members`` (name -> SHA-256 and size) added; members are written in sorted
    order after the manifest.
    """
    path = Path(path)
    manifest = dict(manifest)
    manifest["members"] = {
        name: {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
        for name, data in sorted(members.items())
    }
    body = _json_bytes(manifest)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w+b") as fh:
            with zipfile.ZipFile(fh, "w") as zf:
                zf.writestr(_zip_info(MANIFEST), body, compresslevel=6)
                for name in sorted(members):
                    zf.writestr(_zip_info(name), members[name], compresslevel=6)
            fh.flush()
            os.fsync(fh.fileno())
            fh.seek(0)
            digest = hashlib.sha256()
            while block := fh.read(1 << 20):
                digest.update(block)
            size = fh.tell()
        make_shareable(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return SavedCase(path, digest.hexdigest(), size, len(members) + 1, len(manifest.get("items", ())))


def save_case(
    ws: Workspace,
    case_id: int,
    path: str | os.PathLike[str],
    colour_map: str = "inferno",
    opacity: float = 0.5,
) -> SavedCase:
    """Save a case of the workspace as one ``.amdcase`` file (atomically) and log the export.

    Args:
        ws: The open workspace.
        case_id: The case to save.
        path: The destination; an existing file is replaced only once the new one is complete.
        colour_map: Colour map of the overlay pictures (see :data:`amd.visual.COLOUR_MAPS`).
        opacity: Opacity of the overlays' hottest pixels.

    Raises:
        NotFoundError: No such case.
        CaseFileError: A crop's original is missing or damaged, or an explanation is malformed.
        OSError: The destination cannot be written.
    """
    case = ws.cases.get(case_id)
    manifest, members = build_members(ws, case, colour_map, opacity)
    manifest["saved_at"] = datetime.now(timezone.utc).isoformat()
    manifest["saved_by"] = ws.actor
    saved = write_archive(path, manifest, members)
    ws.cases.record_export(case_id, str(Path(path).resolve()), saved.sha256, "amdcase")
    return saved


# ---------------------------------------------------------------------- reading and verifying


class _Refused(Exception):
    """A problem that ends the checks (nothing further can be trusted)."""


def _check_name(name: str) -> str | None:
    """Why a member name is unsafe, or ``None``."""
    if not name:
        return "a member has an empty name"
    if "\x00" in name or "\\" in name:
        return f"member {name!r} has a backslash or NUL in its name"
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return f"member {name!r} has an absolute path"
    parts = name.split("/")
    if any(p == ".." for p in parts):
        return f"member {name!r} climbs out of the archive ('..')"
    if name.endswith("/"):
        return f"member {name!r} is a folder entry"
    if any(not _NAME.fullmatch(p) for p in parts):
        return f"member {name!r} has an unexpected name"
    return None


def _read_capped(zf: zipfile.ZipFile, info: zipfile.ZipInfo, cap: int) -> bytes:
    """A member's bytes, refusing more than ``cap`` however large the member claims to be."""
    out = io.BytesIO()
    try:
        with zf.open(info) as fh:
            while block := fh.read(min(1 << 20, cap + 1)):
                out.write(block)
                if out.tell() > cap:
                    raise _Refused(f"member {info.filename!r} holds more than its {cap:,} bytes allowed")
    except zipfile.BadZipFile as exc:
        raise _Refused(f"member {info.filename!r} is damaged ({exc})") from None
    except (OSError, EOFError, ValueError, NotImplementedError, RuntimeError) as exc:
        raise _Refused(f"member {info.filename!r} cannot be read ({exc})") from None
    return out.getvalue()


def _scan(zf: zipfile.ZipFile, limits: Limits) -> dict[str, zipfile.ZipInfo]:
    """Check the zip's directory (no member read yet); fatal problems raise :class:`_Refused`."""
    infos = zf.infolist()
    if len(infos) > limits.max_members:
        raise _Refused(f"too many members ({len(infos):,}, at most {limits.max_members:,})")
    by_name: dict[str, zipfile.ZipInfo] = {}
    folded: set[str] = set()
    total = 0
    for info in infos:
        name = info.filename
        why = _check_name(name)
        if why:
            raise _Refused(why)
        if name in by_name or name.casefold() in folded:
            raise _Refused(f"member {name!r} appears twice")
        mode = info.external_attr >> 16
        if info.create_system == 3 and stat.S_ISLNK(mode):
            raise _Refused(f"member {name!r} is a symbolic link")
        if info.create_system == 3 and stat.S_IFMT(mode) not in (0, stat.S_IFREG):
            raise _Refused(f"member {name!r} is not a regular file")
        if info.flag_bits & 0x1:
            raise _Refused(f"member {name!r} is encrypted")
        cap = limits.max_manifest_bytes if name == MANIFEST else limits.max_member_bytes
        if info.file_size > cap:
            raise _Refused(f"member {name!r} is too large ({info.file_size:,} bytes, at most {cap:,})")
        if info.file_size >= limits.ratio_from_bytes and info.file_size > limits.max_ratio * max(
            1, info.compress_size
        ):
            raise _Refused(
                f"member {name!r} expands {info.file_size / max(1, info.compress_size):,.0f} times "
                f"(at most {limits.max_ratio:g}): a zip bomb"
            )
        total += info.file_size
        if total > limits.max_total_bytes:
            raise _Refused(f"the members add up to more than {limits.max_total_bytes:,} bytes")
        by_name[name] = info
        folded.add(name.casefold())
    if MANIFEST not in by_name:
        raise _Refused("no manifest.json: not a case file")
    return by_name


def _str(v: Any, what: str, optional: bool = True) -> str | None:
    if v is None and optional:
        return None
    if not isinstance(v, str):
        raise _Refused(f"manifest: {what} must be text")
    return v


def _int(v: Any, what: str, optional: bool = True) -> int | None:
    if v is None and optional:
        return None
    if isinstance(v, bool) or not isinstance(v, int):
        raise _Refused(f"manifest: {what} must be an integer")
    return v


def _float(v: Any, what: str) -> float | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise _Refused(f"manifest: {what} must be a finite number")
    return float(v)


def _dict(v: Any, what: str, optional: bool = False) -> dict[str, Any] | None:
    if v is None and optional:
        return None
    if not isinstance(v, dict):
        raise _Refused(f"manifest: {what} must be a mapping")
    return v


def _list(v: Any, what: str) -> list[Any]:
    if not isinstance(v, list):
        raise _Refused(f"manifest: {what} must be a list")
    return v


def _parse_manifest(raw: bytes) -> dict[str, Any]:
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise _Refused(f"the manifest is not valid JSON ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise _Refused("the manifest does not describe a case file")
    version = manifest.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise _Refused("the manifest has no valid format version")
    if version > FORMAT_VERSION:
        raise _Refused(
            f"written by a newer version of the program (case file format {version}; this one reads up to "
            f"{FORMAT_VERSION}); upgrade the program to open it"
        )
    return manifest


def _models(manifest: dict[str, Any]) -> dict[str, ModelEntry]:
    out = {}
    for h, m in sorted(_dict(manifest.get("models"), "models").items()):
        m = _dict(m, f"model {h}")
        out[h] = ModelEntry(
            kind=_str(m.get("kind"), "model kind", False),
            name=_str(m.get("name"), "model name", False),
            file_hash=_str(m.get("file_hash"), "model hash", False),
            architecture=_str(m.get("architecture"), "model architecture"),
            attribute_schema=_dict(m.get("attribute_schema"), "model schema", True),
            metrics=_dict(m.get("metrics"), "model metrics", True),
            registered_at=_str(m.get("registered_at"), "model time"),
        )
        if out[h].file_hash != h:
            raise _Refused(f"manifest: model {h[:12]}... names another hash")
    return out


def _document(path: str, sha256: str, manifest: dict[str, Any], files: dict[str, bytes]) -> CaseDocument:
    """Build the document from a checked manifest; structural problems raise :class:`_Refused`."""
    case = _dict(manifest.get("case"), "case")
    models = _models(manifest)
    crops: dict[str, CropEntry] = {}
    for sha, c in sorted(_dict(manifest.get("crops"), "crops").items()):
        c = _dict(c, f"crop {sha}")
        member = _str(c.get("member"), "crop member", False)
        if member not in files:
            raise _Refused(f"manifest: crop {sha[:12]}... names a missing member {member!r}")
        if hashlib.sha256(files[member]).hexdigest() != sha:
            raise _Refused(f"crop member {member!r} does not hold the crop {sha[:12]}...")
        crops[sha] = CropEntry(
            sha256=sha,
            member=member,
            format=_str(c.get("format"), "crop format", False),
            width=_int(c.get("width"), "crop width", False),
            height=_int(c.get("height"), "crop height", False),
            camera=_str(c.get("camera"), "crop camera"),
            identity=_str(c.get("identity"), "crop identity"),
            source_path=_str(c.get("source_path"), "crop source"),
            time_text=_str(c.get("time_text"), "crop time"),
            frame=_int(c.get("frame"), "crop frame"),
        )

    def member_of(v: Any, what: str) -> str | None:
        name = _str(v, what)
        if name is not None and name not in files:
            raise _Refused(f"manifest: {what} names a missing member {name!r}")
        return name

    def model_of(h: Any) -> ModelEntry | None:
        if h is None:
            return None
        if h not in models:
            raise _Refused(f"manifest: an item names an unknown model {h!r}")
        return models[h]

    items = []
    for n, it in enumerate(_list(manifest.get("items"), "items"), 1):
        it = _dict(it, f"item {n}")
        q, g = it.get("query"), it.get("gallery")
        if q not in crops or g not in crops:
            raise _Refused(f"manifest: item {n} names a crop the file does not carry")
        explanation_member = member_of(it.get("explanation"), f"item {n}'s explanation")
        explanation = None
        if explanation_member is not None:
            try:
                explanation = json.loads(files[explanation_member].decode("utf-8"))
                decode_snapshot(explanation)
            except (UnicodeDecodeError, ValueError) as exc:
                raise _Refused(f"item {n}: the explanation is not valid JSON ({exc})") from None
            except SnapshotError as exc:
                raise _Refused(f"item {n}: {exc}") from None
        annotations = []
        for a in _list(it.get("annotations", []), f"item {n}'s annotations"):
            a = _dict(a, f"an annotation of item {n}")
            annotations.append(
                AnnotationEntry(
                    side=_str(a.get("side"), "annotation side", False),
                    kind=_str(a.get("kind"), "annotation kind", False),
                    geometry=_dict(a.get("geometry"), "annotation geometry"),
                    label=_str(a.get("label"), "annotation label"),
                    color=_str(a.get("color"), "annotation colour"),
                    created_at=_str(a.get("created_at"), "annotation time"),
                    updated_at=_str(a.get("updated_at"), "annotation time"),
                )
            )
        overlays = []
        for o in _list(it.get("overlays", []), f"item {n}'s overlays"):
            o = _dict(o, f"an overlay of item {n}")
            overlays.append(
                OverlayEntry(
                    index=_int(o.get("index"), "overlay attribute", False),
                    label=_str(o.get("label"), "overlay label", False),
                    query_member=member_of(o.get("query"), "an overlay"),
                    gallery_member=member_of(o.get("gallery"), "an overlay"),
                )
            )
        verdict = _str(it.get("verdict"), "verdict")
        if verdict is not None and verdict not in VERDICTS:
            raise _Refused(f"manifest: item {n} has an unknown verdict {verdict!r}")
        items.append(
            ItemEntry(
                number=n,
                source_id=_int(it.get("id"), "item id"),
                query=crops[q],
                gallery=crops[g],
                distance=_float(it.get("distance"), "distance"),
                explanation=explanation,
                verdict=verdict,
                notes=_str(it.get("notes"), "notes"),
                annotations=tuple(annotations),
                model=model_of(it.get("model")),
                interpreter=model_of(it.get("interpreter")),
                created_at=_str(it.get("created_at"), "item time"),
                updated_at=_str(it.get("updated_at"), "item time"),
                explanation_member=explanation_member,
                chart_member=member_of(it.get("chart"), f"item {n}'s chart"),
                overlays=tuple(overlays),
            )
        )
    audit = []
    for ev in _list(manifest.get("audit", []), "audit"):
        ev = _dict(ev, "an audit event")
        ids = _list(ev.get("entity_ids") or [], "audit ids")
        audit.append(
            AuditEntry(
                id=_int(ev.get("id"), "audit id", False),
                at=_str(ev.get("at"), "audit time", False),
                actor=_str(ev.get("actor"), "audit actor", False),
                host=_str(ev.get("host"), "audit host"),
                action=_str(ev.get("action"), "audit action", False),
                entity=_str(ev.get("entity"), "audit entity"),
                entity_ids=tuple(_int(i, "audit id", False) for i in ids),
                details=_dict(ev.get("details"), "audit details", True),
            )
        )
    app = _dict(manifest.get("app"), "app")
    status = _str(case.get("status"), "case status", False)
    if status not in ("open", "closed"):
        raise _Refused(f"manifest: unknown case status {status!r}")
    return CaseDocument(
        path=path,
        sha256=sha256,
        format_version=manifest["format_version"],
        app_version=_str(app.get("version"), "app version", False),
        saved_at=_str(manifest.get("saved_at"), "saved_at", False),
        saved_by=_str(manifest.get("saved_by"), "saved_by"),
        case=CaseEntry(
            source_id=_int(case.get("id"), "case id"),
            title=_str(case.get("title"), "case title", False),
            description=_str(case.get("description"), "case description"),
            reference=_str(case.get("reference"), "case reference"),
            analyst=_str(case.get("analyst"), "case analyst"),
            status=status,
            created_by=_str(case.get("created_by"), "case creator"),
            created_at=_str(case.get("created_at"), "case time"),
            updated_at=_str(case.get("updated_at"), "case time"),
        ),
        items=tuple(items),
        models=tuple(models.values()),
        audit=tuple(audit),
        members=dict(files),
    )


def _load(path: str | os.PathLike[str], limits: Limits) -> tuple[CaseDocument | None, VerifyReport]:
    """Every check of a case file; the document only when all pass."""
    name = str(path)
    p = Path(path)
    if not p.exists():
        raise CaseFileError(f"{name}: no such file")
    if not p.is_file():
        raise CaseFileError(f"{name}: not a file")
    try:
        raw = p.read_bytes() if p.stat().st_size <= limits.max_total_bytes else None
    except OSError as exc:
        raise CaseFileError(f"{name}: cannot be read ({exc.strerror or exc})") from None
    if raw is None:
        return None, VerifyReport(name, False, (f"the file is larger than {limits.max_total_bytes:,} bytes",))
    sha = hashlib.sha256(raw).hexdigest()
    problems: list[str] = []
    count = items = 0
    version: int | None = None
    try:
        try:
            zf = zipfile.ZipFile(io.BytesIO(raw))
        except zipfile.BadZipFile:
            kind = "it is truncated or damaged" if raw[:4] == b"PK\x03\x04" else "not a zip archive"
            raise _Refused(f"not a case file: {kind}") from None
        with zf:
            by_name = _scan(zf, limits)
            count = len(by_name)
            manifest = _parse_manifest(_read_capped(zf, by_name[MANIFEST], limits.max_manifest_bytes))
            version = manifest["format_version"]
            listed = _dict(manifest.get("members"), "members")
            items = len(manifest["items"]) if isinstance(manifest.get("items"), list) else 0
            present = set(by_name) - {MANIFEST}
            for missing in sorted(set(listed) - present):
                problems.append(f"member {missing!r} is listed in the manifest but missing")
            for extra in sorted(present - set(listed)):
                problems.append(f"member {extra!r} is not listed in the manifest")
            files: dict[str, bytes] = {}
            for member in sorted(present & set(listed)):
                entry = _dict(listed[member], f"member {member}")
                data = _read_capped(zf, by_name[member], limits.max_member_bytes)
                if entry.get("size") != len(data) or entry.get("sha256") != hashlib.sha256(data).hexdigest():
                    problems.append(f"member {member!r} was changed: its SHA-256 does not match the manifest")
                    continue
                files[member] = data
            if problems:
                return None, VerifyReport(name, False, tuple(problems), count, items, version, sha)
            doc = _document(name, sha, manifest, files)
    except _Refused as exc:
        problems.append(str(exc))
        return None, VerifyReport(name, False, tuple(problems), count, items, version, sha)
    return doc, VerifyReport(name, True, (), count, len(doc.items), version, sha)


def verify_case(path: str | os.PathLike[str], limits: Limits = DEFAULT_LIMITS) -> VerifyReport:
    """Check a case file completely without using it; ``report.ok`` only for an intact file.

    Raises:
        CaseFileError: The path does not exist or cannot be read at all.
    """
    return _load(path, limits)[1]


def open_case(path: str | os.PathLike[str], limits: Limits = DEFAULT_LIMITS) -> CaseDocument:
    """Open and verify a case file.

    Raises:
        CaseFileError: The file is missing, damaged, tampered with, hostile or from a newer version;
            the message names the file and every problem found.
    """
    doc, report = _load(path, limits)
    if doc is None:
        shown = "; ".join(report.problems[:5])
        more = f" (and {len(report.problems) - 5} more problems)" if len(report.problems) > 5 else ""
        raise CaseFileError(f"{report.path}: refused: {shown}{more}")
    return doc


# ---------------------------------------------------------------------- importing


@dataclass(frozen=True)
class DuplicateCase:
    """A case file whose case the workspace already holds (:func:`identical_case`); nothing was imported.

    Attributes:
        path: The case file.
        case: The workspace's identical case.
    """

    path: Path
    case: CaseInfo

    def message(self, holder: str = "the workspace") -> str:
        """``holder`` already holds an identical case: case N (title, reference, comparisons...)."""
        c = self.case
        return (
            f"{holder} already holds an identical case: case {c.id} ({c.title!r}, reference "
            f"{c.reference or '-'}, {c.item_count} comparisons with the same crops, verdicts and notes)"
        )


def identical_case(ws: Workspace, doc: CaseDocument) -> CaseInfo | None:
    """The workspace's case with the file's title and reference and the same pairs (by crop SHA-256),
    verdicts and notes in the same order, or ``None``.

    A case file imported twice would otherwise give two copies whose verdicts and notes then drift apart,
    and no one could tell which is the case of record.
    """
    wanted = [(i.query.sha256, i.gallery.sha256, i.verdict, i.notes or None) for i in doc.items]
    for listed in ws.cases.list():
        if listed.title != doc.case.title or (listed.reference or None) != (doc.case.reference or None):
            continue
        if listed.item_count != len(wanted):
            continue
        case = ws.cases.get(listed.id)
        ids = {i.query_crop_id for i in case.items} | {i.gallery_crop_id for i in case.items}
        sha = {c.id: c.sha256 for c in ws.crops.get_many(sorted(ids))}
        have = [
            (sha.get(i.query_crop_id), sha.get(i.gallery_crop_id), i.verdict, i.notes or None)
            for i in sorted(case.items, key=lambda i: i.position)
        ]
        if have == wanted:
            return listed
    return None


def import_case(ws: Workspace, path: str | os.PathLike[str], limits: Limits = DEFAULT_LIMITS) -> CaseInfo:
    """Import a verified case file into a workspace as a new case; its crops come with it.

    Crops the workspace has already (same SHA-256) are reused. Nothing is written outside the
    workspace: crops go into its image store under their hashes, everything else into its database.

    Raises:
        CaseFileError: The file is refused (see :func:`open_case`).
        StoreError: A crop cannot be stored.
    """
    from db.records import CaseImport, ImportedAnnotation, ImportedCrop, ImportedItem, ImportedModel

    doc = open_case(path, limits)

    def model(m: ModelEntry | None) -> ImportedModel | None:
        if m is None:
            return None
        return ImportedModel(m.kind, m.name, m.file_hash, m.architecture, m.attribute_schema, m.metrics)

    crops = {}
    for item in doc.items:
        for c in (item.query, item.gallery):
            crops[c.sha256] = ImportedCrop(
                sha256=c.sha256,
                data=doc.crop_bytes(c),
                camera=c.camera,
                frame=c.frame,
                time_text=c.time_text,
                source_path=f"{Path(path).name}:{c.member}",
            )
    data = CaseImport(
        title=doc.case.title,
        description=doc.case.description,
        reference=doc.case.reference,
        analyst=doc.case.analyst,
        status=doc.case.status,
        items=tuple(
            ImportedItem(
                query_sha256=it.query.sha256,
                gallery_sha256=it.gallery.sha256,
                distance=it.distance,
                explanation=it.explanation,
                verdict=it.verdict,
                notes=it.notes,
                annotations=tuple(
                    ImportedAnnotation(a.side, a.kind, a.geometry, a.label, a.color) for a in it.annotations
                ),
                model=model(it.model),
                interpreter=model(it.interpreter),
            )
            for it in doc.items
        ),
        crops=tuple(crops.values()),
        source={
            "file": str(Path(path).resolve()),
            "sha256": doc.sha256,
            "source_case_id": doc.case.source_id,
            "saved_at": doc.saved_at,
            "saved_by": doc.saved_by,
            "app_version": doc.app_version,
            "source_audit": [
                {
                    "id": ev.id,
                    "at": ev.at,
                    "actor": ev.actor,
                    "host": ev.host,
                    "action": ev.action,
                    "entity": ev.entity,
                    "entity_ids": list(ev.entity_ids),
                    "details": ev.details,
                }
                for ev in doc.audit
            ],
        },
    )
    return ws.cases.import_case(data)
