"""Alembic migrations of the workspace schema, configured in code (no ``alembic.ini`` needed).

A workspace upgrades itself to :data:`HEAD` when it opens. To write a new migration after
changing :mod:`db.models`::

    alembic -c db/alembic.ini revision --autogenerate -m "what changed"

then set :data:`HEAD` to the new revision (a test checks that it is the single head).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy.engine import Connection

#: The newest revision. Opening a workspace compares the database's revision with this constant
#: first, so that an up-to-date workspace opens without loading Alembic at all.
HEAD = "0003"

SCRIPT_LOCATION = Path(__file__).resolve().parent


def alembic_config(connection: Connection | None = None, url: str | None = None) -> Config:
    """An Alembic configuration pointing at these migrations.

    Args:
        connection: Run the migrations on this connection (inside the caller's transaction).
        url: Or connect to this database URL.
    """
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(SCRIPT_LOCATION))
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def current_revision(connection: Connection) -> str | None:
    """The revision the database is at, or ``None`` for an empty database."""
    from sqlalchemy import inspect, text

    if not inspect(connection).has_table("alembic_version"):
        return None
    rows = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    return rows[0] if len(rows) == 1 else None


def upgrade(connection: Connection, revision: str = "head") -> None:
    """Apply the migrations up to ``revision`` on ``connection``."""
    from alembic import command

    command.upgrade(alembic_config(connection), revision)


def known_revisions() -> set[str]:
    """Every revision id the migration scripts define."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    return {rev.revision for rev in script.walk_revisions()}
