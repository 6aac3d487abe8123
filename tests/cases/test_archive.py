"""Case files: round trip, deterministic manifest, atomic save, and refusal of every hostile file."""

from __future__ import annotations

import io
import json
import stat
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

from cases import archive
from cases.archive import Limits, import_case, open_case, save_case, verify_case
from cases.errors import CaseFileError
from cases.snapshot import decode_snapshot, explanation_snapshot
from db.workspace import Workspace
from tests.cases.conftest import ATTRIBUTE_DISTANCES, CaseSetup, fake_explanation


def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist()}


def _rewrite(
    src: Path, dst: Path, change: dict[str, bytes | None], infos: dict[str, zipfile.ZipInfo] | None = None
) -> None:
    """Copy a case file, replacing (bytes) or dropping (None) members, keeping the manifest as it is."""
    members = _members(src)
    for name, data in change.items():
        if data is None:
            members.pop(name, None)
        else:
            members[name] = data
    with zipfile.ZipFile(dst, "w") as zf:
        for name, data in members.items():
            zf.writestr((infos or {}).get(name, zipfile.ZipInfo(name)), data)


def _refused(path: Path, words: str, limits: Limits = archive.DEFAULT_LIMITS) -> None:
    report = verify_case(path, limits)
    assert not report.ok
    assert any(words in p for p in report.problems), report.problems
    with pytest.raises(CaseFileError, match="refused"):
        open_case(path, limits)


@pytest.fixture()
def saved(filed: CaseSetup, tmp_path: Path) -> Path:
    path = tmp_path / "out" / "robbery.amdcase"
    save_case(filed.ws, filed.case_id, path)
    return path


def test_snapshot_keeps_numbers_predictions_and_maps_compactly() -> None:
    e = fake_explanation()
    snap = explanation_snapshot(e)
    assert len(json.dumps(snap)) < 40_000
    data = decode_snapshot(json.loads(json.dumps(snap)))
    assert data.names[1] == "hair" and data.labels[3] == "upper: red"
    np.testing.assert_allclose(data.attribute_distances, ATTRIBUTE_DISTANCES)
    np.testing.assert_allclose(data.components, ATTRIBUTE_DISTANCES / 5)
    np.testing.assert_allclose(data.shares.sum(), 1.0)
    assert data.order()[:2] == [1, 3]
    np.testing.assert_allclose(data.predicted_gallery, [0.8, 0.2, 0.2, 0.1, 0.4], atol=1e-6)
    assert data.maps_query.shape == (5, 64, 32)
    # Upsampled back to the crop, the map differs from the original by a few percent of its range at most.
    back = data.map_at("query", 2, (128, 64))
    span = e.maps_a[2].max() - e.maps_a[2].min()
    assert np.abs(back - e.maps_a[2]).max() < 0.05 * span


@pytest.mark.slow
def test_snapshot_reopens_as_an_explanation_for_the_compare_view() -> None:
    e = fake_explanation(size_b=(120, 50))
    again = decode_snapshot(explanation_snapshot(e)).to_explanation((128, 64), (120, 50))
    assert again.maps_a.shape == (5, 128, 64) and again.maps_b.shape == (5, 120, 50)
    assert again.order() == [1, 3, 0, 4, 2]
    np.testing.assert_allclose(again.components, e.components)
    assert again.distance == pytest.approx(1.25)


def test_round_trip_keeps_the_case(filed: CaseSetup, saved: Path) -> None:
    doc = open_case(saved)
    case = filed.ws.cases.get(filed.case_id)
    assert doc.case.title == "Robbery <b>12</b>" and doc.case.reference == "2026/0413"
    assert doc.case.analyst == "A. Analyst" and doc.format_version == 1
    assert [i.verdict for i in doc.items] == ["match", "no_match"]
    assert doc.items[0].notes == "same red jacket, different bag"
    assert [(a.side, a.kind, a.label) for a in doc.items[0].annotations] == [
        ("query", "rect", "jacket"),
        ("gallery", "arrow", None),
        ("gallery", "text", "bag <script>"),
    ]
    assert doc.items[0].annotations[0].geometry == {"x": 16, "y": 16, "w": 32, "h": 48}
    assert doc.items[0].explanation == case.items[0].explanation
    assert doc.items[0].model.name == "demo target" and doc.items[0].interpreter.file_hash == "cd" * 32
    crop = filed.ws.crops.get(filed.crop_ids[0])
    assert doc.crop_bytes(doc.items[0].query) == filed.ws.images.read(crop.sha256, crop.format)
    assert len(doc.items[0].overlays) == 3 and doc.items[0].overlays[0].label == "long hair"
    actions = [ev.action for ev in doc.audit]
    assert actions[0] == "case.create" and actions.count("case.annotate") == 3
    assert "case.export" not in actions
    # The save itself is in the workspace's log.
    assert filed.ws.audit.list(action="case.export")[-1].details["format"] == "amdcase"


def test_manifest_is_deterministic_apart_from_its_time(filed: CaseSetup, tmp_path: Path) -> None:
    a, b = tmp_path / "a.amdcase", tmp_path / "b.amdcase"
    save_case(filed.ws, filed.case_id, a)
    save_case(filed.ws, filed.case_id, b)
    ma, mb = _members(a), _members(b)
    assert list(ma) == list(mb) and list(ma)[0] == "manifest.json"
    assert list(ma)[1:] == sorted(list(ma)[1:])
    ja, jb = json.loads(ma.pop("manifest.json")), json.loads(mb.pop("manifest.json"))
    assert ja.pop("saved_at") != "" and jb.pop("saved_at") != ""
    assert ja == jb
    assert ma == mb
    with zipfile.ZipFile(a) as zf:
        assert {i.date_time for i in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_a_crash_during_saving_leaves_the_previous_file(
    filed: CaseSetup, saved: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = saved.read_bytes()
    real = zipfile.ZipFile.writestr
    calls = {"n": 0}

    def failing(self: zipfile.ZipFile, info: object, data: object, *a: object, **k: object) -> None:
        calls["n"] += 1
        if calls["n"] == 5:
            raise OSError("disk full")
        real(self, info, data, *a, **k)

    monkeypatch.setattr(zipfile.ZipFile, "writestr", failing)
    filed.ws.cases.update(filed.case_id, title="changed")
    with pytest.raises(OSError, match="disk full"):
        save_case(filed.ws, filed.case_id, saved)
    assert saved.read_bytes() == before
    assert sorted(p.name for p in saved.parent.iterdir()) == [saved.name]


def test_import_into_another_workspace_brings_the_crops(
    filed: CaseSetup, saved: Path, tmp_path: Path
) -> None:
    other = Workspace.create(tmp_path / "other", actor="colleague")
    try:
        case = import_case(other, saved)
        assert case.title == "Robbery <b>12</b>" and case.reference == "2026/0413"
        assert case.item_count == 2 and [i.verdict for i in case.items] == ["match", "no_match"]
        assert [a.label for a in case.items[0].annotations] == ["jacket", None, "bag <script>"]
        assert other.crops.count() == 4
        for item in case.items:
            for cid in (item.query_crop_id, item.gallery_crop_id):
                c = other.crops.get(cid)
                assert other.images.original_path(c.sha256, c.format).is_file()
                assert c.camera in ("c1", "c2") and c.identity is None
        assert {m.file_hash for m in other.models.list()} == {"ab" * 32, "cd" * 32}
        event = other.audit.list(action="case.import")[-1]
        assert event.details["crops_added"] == 4 and event.details["items"] == 2
        assert [e["action"] for e in event.details["source_audit"]][0] == "case.create"
        # Importing again reuses the crops (same SHA-256) and makes a second case.
        again = import_case(other, saved)
        assert again.id != case.id and other.crops.count() == 4
        assert other.audit.list(action="case.import")[-1].details["crops_known"] == 4
        # Only the workspace folder was written to.
        assert sorted(p.name for p in saved.parent.iterdir()) == [saved.name]
    finally:
        other.close()


def test_intact_file_verifies(saved: Path) -> None:
    report = verify_case(saved)
    assert report.ok and report.problems == () and report.items == 2 and report.members == 21


def test_tampered_member_is_refused(saved: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.amdcase"
    name = "items/001/explanation.json"
    data = json.loads(_members(saved)[name])
    data["distance"] = 0.5
    _rewrite(saved, bad, {name: json.dumps(data).encode()})
    _refused(bad, f"member {name!r} was changed")


def test_tampered_crop_is_refused(saved: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.amdcase"
    name = next(n for n in _members(saved) if n.startswith("crops/"))
    _rewrite(saved, bad, {name: _members(saved)[name][:-10] + b"\0" * 10})
    _refused(bad, "SHA-256 does not match")


def test_missing_and_extra_members_are_refused(saved: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.amdcase"
    _rewrite(saved, bad, {"items/002/chart.png": None, "items/002/extra.txt": b"hello"})
    report = verify_case(bad)
    assert not report.ok
    assert "member 'items/002/chart.png' is listed in the manifest but missing" in report.problems
    assert "member 'items/002/extra.txt' is not listed in the manifest" in report.problems


def test_truncated_file_and_non_zip_are_refused(saved: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.amdcase"
    cut.write_bytes(saved.read_bytes()[: saved.stat().st_size // 2])
    _refused(cut, "truncated")
    text = tmp_path / "text.amdcase"
    text.write_text("just some text")
    _refused(text, "not a zip archive")
    with pytest.raises(CaseFileError, match="no such file"):
        verify_case(tmp_path / "nothing.amdcase")


def test_bad_and_missing_manifest_are_refused(saved: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.amdcase"
    _rewrite(saved, bad, {"manifest.json": b"{not json"})
    _refused(bad, "not valid JSON")
    _rewrite(saved, bad, {"manifest.json": None})
    _refused(bad, "no manifest.json")
    _rewrite(saved, bad, {"manifest.json": json.dumps({"format": "something else"}).encode()})
    _refused(bad, "does not describe a case file")


def test_newer_format_is_refused(saved: Path, tmp_path: Path) -> None:
    manifest = json.loads(_members(saved)["manifest.json"])
    manifest["format_version"] = 2
    newer = tmp_path / "newer.amdcase"
    _rewrite(saved, newer, {"manifest.json": json.dumps(manifest).encode()})
    _refused(newer, "newer version of the program (case file format 2; this one reads up to 1)")


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("/etc/passwd", "absolute path"),
        ("C:/evil.txt", "absolute path"),
        ("../../evil.txt", "climbs out"),
        ("crops/../../evil.txt", "climbs out"),
        ("crops\\evil.txt", "backslash"),
        ("crops/", "folder entry"),
    ],
)
def test_hostile_member_names_are_refused(saved: Path, tmp_path: Path, name: str, words: str) -> None:
    bad = tmp_path / "bad.amdcase"
    _rewrite(saved, bad, {})
    with zipfile.ZipFile(bad, "a") as zf:
        zf.writestr(zipfile.ZipInfo(name), b"x")
    _refused(bad, words)


def test_symbolic_link_member_is_refused(saved: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.amdcase"
    info = zipfile.ZipInfo("crops/link")
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    _rewrite(saved, bad, {"crops/link": b"/etc/passwd"}, {"crops/link": info})
    _refused(bad, "symbolic link")


def test_duplicate_member_is_refused(saved: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.amdcase"
    _rewrite(saved, bad, {})
    with warnings.catch_warnings(), zipfile.ZipFile(bad, "a") as zf:
        warnings.simplefilter("ignore")
        zf.writestr("items/001/chart.png", b"second")
    _refused(bad, "appears twice")


def test_zip_bomb_is_refused_by_its_ratio(saved: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bomb.amdcase"
    _rewrite(saved, bad, {})
    with zipfile.ZipFile(bad, "a", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("bomb.bin", b"\0" * (8 * 1024 * 1024))
    _refused(bad, "a zip bomb")


def test_too_many_and_too_large_members_are_refused(saved: Path) -> None:
    _refused(saved, "too many members", Limits(max_members=10))
    _refused(saved, "is too large", Limits(max_member_bytes=1000))
    _refused(saved, "the file is larger than 50,000 bytes", Limits(max_total_bytes=50_000))


def test_member_larger_than_it_claims_is_stopped_while_reading(saved: Path, tmp_path: Path) -> None:
    # Declared size patched down in the central directory: the stream is cut at the cap, then refused.
    raw = bytearray(saved.read_bytes())
    with zipfile.ZipFile(io.BytesIO(bytes(raw))) as zf:
        info = zf.getinfo("items/001/explanation.json")
    cd = raw.rfind(b"PK\x01\x02" + bytes(raw[raw.find(b"PK\x01\x02") + 4 : raw.find(b"PK\x01\x02") + 4]))
    assert cd >= 0
    entry = raw.find(b"items/001/explanation.json", raw.find(b"PK\x01\x02")) - 46
    assert raw[entry : entry + 4] == b"PK\x01\x02"
    raw[entry + 24 : entry + 28] = (100).to_bytes(4, "little")  # uncompressed size
    bad = tmp_path / "liar.amdcase"
    bad.write_bytes(bytes(raw))
    assert info.file_size > 100
    report = verify_case(bad)
    assert not report.ok and any("items/001/explanation.json" in p for p in report.problems)


def test_case_files_and_html_reports_get_the_mode_the_umask_gives(
    filed: CaseSetup, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both are written to an owner-only temporary file first; once in place they are shared like a PDF."""
    from cases.report import export_html
    from db import imagestore

    monkeypatch.setattr(imagestore, "_UMASK", 0o022)
    case = save_case(filed.ws, filed.case_id, tmp_path / "c.amdcase").path
    report = export_html(open_case(case), tmp_path / "r.html")
    assert stat.S_IMODE(case.stat().st_mode) == 0o644
    assert stat.S_IMODE(report.stat().st_mode) == 0o644
