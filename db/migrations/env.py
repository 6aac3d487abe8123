"""Alembic environment: runs the migrations on the connection the workspace hands over.

Run from the command line (``alembic -c db/alembic.ini ...``), it connects to the URL in
``AMD_DATABASE_URL`` or ``sqlalchemy.url`` instead.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine

from db.models import Base, UTCDateTime

config = context.config
target_metadata = Base.metadata


def _render_item(type_: str, obj: object, autogen_context: object) -> str | bool:
    # Migrations must not import db.models (the models change, old migrations must not), so the
    # UTC decorator is written as the plain column type it stores.
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _configure(**kwargs: object) -> None:
    # Batch mode rewrites ALTER TABLE as copy-and-rename on SQLite, which cannot alter in place.
    context.configure(
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
        render_item=_render_item,
        **kwargs,
    )


def _url() -> str:
    url = os.environ.get("AMD_DATABASE_URL") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("set AMD_DATABASE_URL or sqlalchemy.url to run migrations from the command line")
    return url


def run_offline() -> None:
    _configure(url=_url(), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(_url())
    try:
        with engine.begin() as conn:
            _configure(connection=conn)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
