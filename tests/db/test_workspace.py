"""Opening and creating workspaces; SQLite configuration."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import text

from db.errors import WorkspaceError
from db.workspace import Workspace


def test_create_lays_out_the_folder_and_reopens(tmp_path: Path) -> None:
    root = tmp_path / "new"
    with Workspace.create(root) as ws:
        assert ws.dialect == "sqlite"
    assert json.loads((root / "workspace.json").read_text()) == {
        "format": "amd-workspace",
        "version": 1,
        "database_url": None,
    }
    assert (root / "workspace.db").is_file()
    with Workspace.open(root) as ws:
        assert ws.crops.count() == 0


def test_refuses_missing_and_foreign_folders(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError, match="no workspace at"):
        Workspace.open(tmp_path / "missing")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "letter.txt").write_text("hello")
    with pytest.raises(WorkspaceError, match="is not a workspace"):
        Workspace.open(tmp_path / "docs", create=True)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "workspace.json").write_text("{not json")
    with pytest.raises(WorkspaceError, match="cannot be read"):
        Workspace.open(tmp_path / "bad")
    (tmp_path / "future").mkdir()
    (tmp_path / "future" / "workspace.json").write_text('{"format": "amd-workspace", "version": 99}')
    with pytest.raises(WorkspaceError, match="newer than this program"):
        Workspace.open(tmp_path / "future")


def test_an_empty_existing_folder_can_become_a_workspace(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    Workspace.create(tmp_path / "empty").close()
    assert (tmp_path / "empty" / "workspace.json").exists()


def test_sqlite_pragmas(sqlite_ws: Workspace) -> None:
    with sqlite_ws.reading() as s:
        assert s.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert s.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert s.execute(text("PRAGMA busy_timeout")).scalar() == 30000


def test_database_url_is_remembered_and_password_hidden(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    Workspace.create(tmp_path / "ws", url=url).close()
    assert json.loads((tmp_path / "ws" / "workspace.json").read_text())["database_url"] == url
    with Workspace.open(tmp_path / "ws") as ws:
        assert str(ws.url) == url
    assert (tmp_path / "elsewhere.db").exists() and not (tmp_path / "ws" / "workspace.db").exists()
    ws = Workspace.__new__(Workspace)
    from sqlalchemy.engine import make_url

    ws.root, ws.url = tmp_path, make_url("postgresql+psycopg://ann:secret@db.example/amd")
    assert "secret" not in repr(ws) and "***" in repr(ws)


def test_foreign_keys_are_enforced(ws: Workspace) -> None:
    from sqlalchemy.exc import IntegrityError

    from db.models import Crop

    with pytest.raises(IntegrityError):
        with ws.writing() as s:
            s.add(Crop(sha256="0" * 64, width=1, height=1, format="PNG", mode="L", byte_size=1,
                       source_path="x", camera_id=12345))  # fmt: skip
