"""Reports (HTML and PDF) and the ``case`` command."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cases.archive import open_case, save_case
from cases.report import export_html
from cli.main import main
from db.workspace import Workspace
from tests.cases.conftest import CaseSetup, build_case

HOSTILE = "<script>alert('x')</script> & <img src=x onerror=alert(1)>"


@pytest.fixture()
def hostile(workspace: Workspace, tmp_path: Path) -> Path:
    setup = build_case(workspace, tmp_path / "images", notes=HOSTILE)
    path = tmp_path / "hostile.amdcase"
    save_case(setup.ws, setup.case_id, path)
    return path


def test_html_report_has_one_section_per_comparison_with_its_numbers(hostile: Path, tmp_path: Path) -> None:
    out = export_html(open_case(hostile), tmp_path / "report.html")
    text = out.read_text(encoding="utf-8")
    assert text.count('<section class="comparison"') == 2
    assert "Comparison 1 of 2" in text and "Comparison 2 of 2" in text
    # distance, components (d_m / 5) and shares of the hand-made explanation
    for number in ("1.2500", "1.2000", "0.4800", "0.3200", "0.1600", "0.0800", "40.0%", "26.7%", "2.4000"):
        assert number in text, number
    assert "2026/0413" in text and "A. Analyst" in text and "ab" * 32 in text
    # Self-contained: every picture inline, no external reference.
    assert text.count('src="data:image/png;base64,') >= 2 * (2 + 6 + 1)
    assert not re.search(r'src="(?!data:)', text) and "http" not in text
    # Hostile strings are shown as text, never as markup.
    assert "<script>" not in text and "onerror=alert(1)>" not in text
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &lt;img" in text
    assert "Robbery &lt;b&gt;12&lt;/b&gt;" in text


def test_pdf_report_has_a_cover_and_a_page_per_comparison(
    hostile: Path, tmp_path: Path, qapp: object
) -> None:
    from pypdf import PdfReader

    from gui.report_pdf import export_pdf

    out = export_pdf(open_case(hostile), tmp_path / "report.pdf")
    pages = [" ".join(p.extract_text().split()) for p in PdfReader(str(out)).pages]
    assert "Robbery <b>12</b>" in pages[0] and "2026/0413" in pages[0]
    starts = [i for i, p in enumerate(pages) if re.search(r"Comparison \d of 2", p)]
    assert len(starts) == 2 and starts[0] == 1
    first = " ".join(pages[starts[0] : starts[1]])
    for number in ("1.2500", "1.2000", "0.4800", "0.3200", "40.0%", "2.4000", "Verdict: Match"):
        assert number in first, number
    assert "alert('x')" in first and "jacket" in first
    assert "Verdict: No match" in pages[starts[1]]
    assert "Audit trail of the case" in pages[-1]


def test_case_command_verifies_exports_saves_imports_and_lists(
    filed: CaseSetup, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ws_dir = str(filed.ws.root)
    out = tmp_path / "cli.amdcase"
    assert main(["case", "save", ws_dir, str(filed.case_id), str(out)]) == 0
    assert main(["case", "verify", str(out)]) == 0
    assert "intact" in capsys.readouterr().out
    html = tmp_path / "r.html"
    assert main(["case", "export", str(out), "--html", str(html)]) == 0
    assert html.read_text(encoding="utf-8").count('<section class="comparison"') == 2
    bad = tmp_path / "bad.amdcase"
    raw = bytearray(out.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    bad.write_bytes(bytes(raw))
    assert main(["case", "verify", str(bad)]) == 1
    assert "NOT intact" in capsys.readouterr().err
    assert main(["case", "export", str(bad), "--html", str(tmp_path / "x.html")]) == 2
    assert "refused" in capsys.readouterr().err and not (tmp_path / "x.html").exists()
    assert main(["case", "verify", str(tmp_path / "missing.amdcase")]) == 2
    other = tmp_path / "other"
    Workspace.create(other).close()
    assert main(["case", "import", str(other), str(out)]) == 0
    assert main(["case", "list", str(other)]) == 0
    listing = capsys.readouterr().out
    assert "2 items" in listing and "2026/0413" in listing and "Robbery <b>12</b>" in listing
