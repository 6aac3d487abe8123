"""The migrations are the schema: one head, no drift from the models, applied when a workspace opens."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text

from db import migrations
from db.errors import WorkspaceError
from db.models import Base
from db.workspace import Workspace


def test_single_head_equals_the_constant_the_workspace_checks() -> None:
    script = ScriptDirectory.from_config(migrations.alembic_config())
    assert script.get_heads() == [migrations.HEAD]
    assert migrations.known_revisions() == {"0001", "0002", "0003"}


def _drift(ws: Workspace) -> list[object]:
    with ws.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(ctx, Base.metadata)


def test_migrated_database_matches_the_models(ws: Workspace) -> None:
    assert _drift(ws) == []
    tables = set(inspect(ws.engine).get_table_names())
    assert tables == set(Base.metadata.tables) | {"alembic_version"}
    with ws.engine.connect() as conn:
        assert migrations.current_revision(conn) == migrations.HEAD


def test_downgrade_to_base_and_upgrade_again(ws: Workspace) -> None:
    with ws.engine.begin() as conn:
        command.downgrade(migrations.alembic_config(conn), "base")
    assert set(inspect(ws.engine).get_table_names()) <= {"alembic_version"}
    with ws.engine.begin() as conn:
        migrations.upgrade(conn)
    assert _drift(ws) == []


def test_opening_upgrades_an_empty_database_and_refuses_a_newer_one(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "ws")
    ws.close()
    db = tmp_path / "ws" / "workspace.db"
    engine = create_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE alembic_version"))
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(text(f"DROP TABLE {table.name}"))
    Workspace.open(tmp_path / "ws").close()  # re-created on open
    assert set(inspect(engine).get_table_names()) == set(Base.metadata.tables) | {"alembic_version"}
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(WorkspaceError, match="newer version"):
        Workspace.open(tmp_path / "ws")
