"""The import direction of the packages, checked on the source: amd/ and db/ stay headless and apart."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

QT = {"PySide6", "shiboken6", "pyqtgraph", "gui"}
FORBIDDEN = {
    "amd": QT | {"sqlalchemy", "alembic", "db", "cli"},
    "db": QT | {"torch", "torchvision", "amd", "cli"},
    "cli": {"PySide6", "shiboken6", "pyqtgraph"},
    "cases": QT | {"cli"},
    "imaging": QT | {"torch", "torchvision", "sqlalchemy", "alembic", "amd", "db", "cases", "cli"},
}


def _imports(path: Path) -> list[tuple[int, str, bool]]:
    """(line, top-level module, at module level?) of every import in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    top_level = {id(node) for node in tree.body}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        out.extend((node.lineno, n.split(".")[0], id(node) in top_level) for n in names)
    return out


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_does_not_import_forbidden_layers(package: str) -> None:
    bad = [
        f"{path.relative_to(REPO)}:{line} imports {module}"
        for path in sorted((REPO / package).rglob("*.py"))
        for line, module, _ in _imports(path)
        if module in FORBIDDEN[package]
    ]
    assert not bad, "layering broken:\n" + "\n".join(bad)


def test_entry_point_imports_gui_lazily() -> None:
    for path in [REPO / "main.py", *sorted((REPO / "cli").rglob("*.py"))]:
        eager = [m for _, m, top in _imports(path) if top and m in {"gui", "torch", "sqlalchemy", "PySide6"}]
        assert not eager, f"{path.relative_to(REPO)} imports {eager} at module level"


def test_help_works_without_heavy_imports() -> None:
    code = (
        "import sys, runpy; sys.argv = ['main.py', '--help']\n"
        "try:\n    runpy.run_path('main.py', run_name='__main__')\nexcept SystemExit:\n    pass\n"
        "heavy = sorted(m for m in ('torch', 'PySide6', 'sqlalchemy') if m in sys.modules)\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "synth" in out.stdout and "HEAVY []" in out.stdout
