"""Database URLs are checked before a workspace is written, and a failed creation leaves nothing behind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from db.errors import WorkspaceError
from db.workspace import Workspace, parse_database_url


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("garbage", r"'garbage' is not a database URL \(e\.g\. postgresql\+psycopg://"),
        ("foo://ann@db.example/amd", r"unknown kind of database 'foo'"),
        (
            "mysql://ann:secret@db.example/amd",
            r"'mysql://ann:\*\*\*@db\.example/amd': .* SQLite or PostgreSQL",
        ),
    ],
)
def test_unusable_urls_are_refused_before_anything_is_written(url: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError, match=message):
        parse_database_url(url)
    with pytest.raises(WorkspaceError, match=message):
        Workspace.create(tmp_path / "ws", url=url)
    assert list(tmp_path.iterdir()) == []


def test_a_database_that_cannot_be_opened_takes_the_new_workspace_away(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'missing' / 'folder' / 'amd.db'}"
    with pytest.raises(WorkspaceError, match="cannot open the database"):
        Workspace.create(tmp_path / "ws", url=url)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(WorkspaceError, match="cannot open the database"):
        Workspace.create(empty, url=url)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"] and list(empty.iterdir()) == []


def test_an_existing_workspace_that_fails_to_open_is_left_alone(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    Workspace.create(root).close()
    config = json.loads((root / "workspace.json").read_text())
    config["database_url"] = f"sqlite:///{tmp_path / 'gone' / 'amd.db'}"
    (root / "workspace.json").write_text(json.dumps(config))
    before = sorted(p.name for p in root.iterdir())
    with pytest.raises(WorkspaceError, match="cannot open the database"):
        Workspace.open(root, create=True)
    with pytest.raises(WorkspaceError, match="not a database URL"):
        Workspace.open(root, url="garbage")
    assert sorted(p.name for p in root.iterdir()) == before
    assert json.loads((root / "workspace.json").read_text()) == config


def test_a_damaged_database_file_is_refused_with_the_reason_and_left_alone(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    Workspace.create(root).close()
    (root / "workspace.db").write_bytes(b"this is not a database " * 64)
    with pytest.raises(WorkspaceError) as refused:
        Workspace.open(root)
    message = str(refused.value)
    assert message.startswith(f"cannot open the database sqlite:///{root / 'workspace.db'}: file is not a database")
    assert "damaged or is not a SQLite database" in message and "sqlalche.me" not in message
    assert (root / "workspace.db").read_bytes() == b"this is not a database " * 64
