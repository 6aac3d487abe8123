"""A workspace: a folder holding the database, the image store, thumbnails and cached features.

Layout::

    WORKSPACE/
      workspace.json      format marker and, for a team, the database URL
      workspace.db        the SQLite database (absent when the URL points at a server)
      images/ab/cd/...    originals, byte for byte, named by SHA-256 (db.imagestore)
      thumbs/ab/cd/...    thumbnails, made once
      features/...        memory-mapped embedding matrices, a cache derived from the database

Opening a workspace upgrades its schema to the newest migration. Units of work run in
``with ws.reading() as s:`` or ``with ws.writing() as s:``: one session per unit of work and per
thread, committed on success and rolled back on error.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import DatabaseError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from db import migrations
from db.errors import WorkspaceBusyError, WorkspaceError
from db.imagestore import ImageStore
from db.locks import FileLock
from db.session import WorkspaceSession

if TYPE_CHECKING:
    from db.audit import AuditLog
    from db.repositories import (
        CameraRepository,
        CaseRepository,
        CropRepository,
        EmbeddingRepository,
        IdentityRepository,
        ModelRepository,
        RunRepository,
    )

CONFIG_FILENAME = "workspace.json"
DB_FILENAME = "workspace.db"
FORMAT_NAME = "amd-workspace"
FORMAT_VERSION = 1
DEFAULT_BUSY_TIMEOUT_S = 30.0


def make_engine(url: str | URL, busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S) -> Engine:
    """An engine for a workspace database, configured for concurrent use by several programs.

    SQLite gets foreign keys, WAL (readers never block the writer and the writer never blocks
    readers), a busy timeout, and explicit transaction control: a session from
    :meth:`Workspace.writing` starts with ``BEGIN IMMEDIATE``, so it waits for the write lock up
    front (within the busy timeout) instead of failing half-way when a read turns into a write.

    Args:
        url: Any SQLAlchemy URL.
        busy_timeout_s: How long a writer waits for another program's write to finish.
    """
    url = make_url(url)
    if url.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)

    engine = create_engine(url, connect_args={"timeout": busy_timeout_s})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, record: Any) -> None:
        # Take transaction control away from the sqlite3 module, which would otherwise issue a
        # deferred BEGIN on its own; the "begin" hook below issues the right one.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
        if url.database not in (None, "", ":memory:"):
            cur.execute("PRAGMA journal_mode=WAL")
            # With WAL, NORMAL survives a crash of the program; only a power cut can lose the
            # last transactions, never corrupt the file.
            cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = "IMMEDIATE" if conn.get_execution_options().get("sqlite_immediate") else "DEFERRED"
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


def _is_busy(exc: OperationalError) -> bool:
    orig = exc.orig
    return isinstance(orig, sqlite3.OperationalError) and (
        "locked" in str(orig).lower() or "busy" in str(orig).lower()
    )


def _busy_message(busy_timeout_s: float) -> str:
    return (
        "the workspace is busy: another program has been writing to it for more than "
        f"{busy_timeout_s:.0f} s; try again when it has finished"
    )


class Workspace:
    """An open workspace. Create with :meth:`open` or :meth:`create`; close with :meth:`close`.

    Attributes:
        root: The workspace folder.
        url: The database URL (password hidden when printed).
        engine: The SQLAlchemy engine.
        images: The content-addressed image store.
        actor: Who the audit log names for changes made through this object.
    """

    def __init__(
        self,
        root: Path,
        url: URL,
        engine: Engine,
        busy_timeout_s: float,
        actor: str | None,
        fsync: bool = False,
    ) -> None:
        self.root = root
        self.url = url
        self.engine = engine
        self.busy_timeout_s = busy_timeout_s
        self.images = ImageStore(root, fsync=fsync)
        self.actor = actor
        self._read = sessionmaker(bind=engine, class_=WorkspaceSession, expire_on_commit=False)
        self._write = sessionmaker(
            bind=engine.execution_options(sqlite_immediate=True),
            class_=WorkspaceSession,
            expire_on_commit=False,
        )

    # ------------------------------------------------------------------ opening

    @classmethod
    def create(cls, root: str | os.PathLike[str], url: str | None = None, **kwargs: Any) -> Workspace:
        """Create a workspace in a new or empty folder (see :meth:`open` for the arguments)."""
        return cls.open(root, url=url, create=True, **kwargs)

    @classmethod
    def open(
        cls,
        root: str | os.PathLike[str],
        url: str | None = None,
        create: bool = False,
        busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S,
        actor: str | None = None,
        fsync: bool = False,
    ) -> Workspace:
        """Open the workspace in ``root``, upgrading its schema to the newest migration.

        Args:
            root: The workspace folder.
            url: Database URL; stored in ``workspace.json`` on creation. Default: SQLite in the folder.
            create: Create the workspace when ``root`` is missing or empty.
            busy_timeout_s: How long a write waits for another program's write.
            actor: Name recorded in the audit log; default the operating-system user.
            fsync: Flush every stored image to disk before its row is committed, so that even a
                power cut cannot leave a row without its file (a killed program never can). About
                three times slower to import.

        Raises:
            WorkspaceError: The folder is not a workspace (and ``create`` is false), is a non-empty
                folder that is not a workspace, its database comes from a newer version, or the database
                URL cannot be used (not a URL, another kind of database, no driver, no connection). A
                workspace being created is removed again when creating it fails.
            WorkspaceBusyError: Another program is migrating the workspace for too long.
        """
        root = Path(root).expanduser().resolve()
        config_path = root / CONFIG_FILENAME
        # A URL is checked before anything is written: a workspace.json holding one that cannot work
        # would make every later command on the folder fail.
        given_url = parse_database_url(url) if url else None
        made: list[Path] = []
        if config_path.is_file():
            config = _read_config(config_path)
        elif create and (not root.exists() or (root.is_dir() and not any(root.iterdir()))):
            made = [root] if not root.exists() else []
            root.mkdir(parents=True, exist_ok=True)
            config = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "database_url": url}
            _write_config(config_path, config)
            made.append(config_path)
        elif root.is_dir() and any(root.iterdir()):
            raise WorkspaceError(f"{root} is not a workspace (no {CONFIG_FILENAME}) and is not empty")
        else:
            raise WorkspaceError(f"no workspace at {root}")
        try:
            db_url = given_url or parse_database_url(
                config.get("database_url") or f"sqlite:///{root / DB_FILENAME}"
            )
            engine = make_engine(db_url, busy_timeout_s)
            ws = cls(root, db_url, engine, busy_timeout_s, actor, fsync)
            try:
                ws._upgrade()
            except BaseException:
                engine.dispose()
                raise
        except BaseException:
            # A workspace that this call began to create is taken away again, so that a failed creation
            # leaves the folder as it was; one that existed before is never touched.
            if made:
                _remove_created(root, made)
            raise
        return ws

    def _upgrade(self) -> None:
        try:
            with self.engine.connect() as conn:
                current = migrations.current_revision(conn)
                conn.rollback()
        except DatabaseError as exc:
            # A driver's message may run over several lines; the user gets one. A SQLite file that is
            # damaged, or not a database at all, gets here too ("file is not a database").
            reason = " ".join(str(exc.orig).split())
            if isinstance(exc.orig, sqlite3.DatabaseError) and not isinstance(
                exc.orig, sqlite3.OperationalError
            ):
                raise WorkspaceError(
                    f"cannot open the database {self.url!r}: {reason}; the file is damaged or is not a "
                    "SQLite database (restore it from a backup; the images under images/ are untouched)"
                ) from exc
            raise WorkspaceError(f"cannot open the database {self.url!r}: {reason}") from exc
        if current == migrations.HEAD:
            return
        if current is not None and current not in migrations.known_revisions():
            raise WorkspaceError(
                f"the workspace database is at schema revision {current!r}, made by a newer version of "
                "this program; upgrade the program to open it"
            )
        # Two programs opening a new workspace at once must not both create the tables: a lock
        # file serialises them on one machine, an advisory lock on a shared server.
        with FileLock(self.root / ".migrate.lock", self.busy_timeout_s, "the workspace schema"):
            with self._begin_write_connection() as conn:
                if conn.dialect.name == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(724001)"))
                if migrations.current_revision(conn) != migrations.HEAD:
                    migrations.upgrade(conn)

    @contextmanager
    def _begin_write_connection(self) -> Iterator[Any]:
        try:
            with self.engine.execution_options(sqlite_immediate=True).begin() as conn:
                yield conn
        except OperationalError as exc:
            if _is_busy(exc):
                raise WorkspaceBusyError(_busy_message(self.busy_timeout_s)) from exc
            raise

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Workspace({str(self.root)!r}, {self.url.render_as_string(hide_password=True)!r})"

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    # ------------------------------------------------------------------ units of work

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A session for a unit of work that only reads."""
        with self._guard(), self._read.begin() as session:
            yield session

    @contextmanager
    def writing(self) -> Iterator[Session]:
        """A session for a unit of work that writes; committed when the block ends without error.

        Raises:
            WorkspaceBusyError: Another program kept the database locked past the busy timeout.
        """
        with self._guard(), self._write.begin() as session:
            yield session

    @contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except OperationalError as exc:
            if _is_busy(exc):
                raise WorkspaceBusyError(_busy_message(self.busy_timeout_s)) from exc
            raise

    # ------------------------------------------------------------------ repositories

    @cached_property
    def audit(self) -> AuditLog:
        from db.audit import AuditLog

        return AuditLog(self)

    @cached_property
    def cameras(self) -> CameraRepository:
        from db.repositories import CameraRepository

        return CameraRepository(self)

    @cached_property
    def identities(self) -> IdentityRepository:
        from db.repositories import IdentityRepository

        return IdentityRepository(self)

    @cached_property
    def crops(self) -> CropRepository:
        from db.repositories import CropRepository

        return CropRepository(self)

    @cached_property
    def models(self) -> ModelRepository:
        from db.repositories import ModelRepository

        return ModelRepository(self)

    @cached_property
    def embeddings(self) -> EmbeddingRepository:
        from db.repositories import EmbeddingRepository

        return EmbeddingRepository(self)

    @cached_property
    def runs(self) -> RunRepository:
        from db.repositories import RunRepository

        return RunRepository(self)

    @cached_property
    def cases(self) -> CaseRepository:
        from db.repositories import CaseRepository

        return CaseRepository(self)


#: Database back ends whose migrations and audit triggers this program ships.
SUPPORTED_DIALECTS = ("sqlite", "postgresql")


def parse_database_url(url: str) -> URL:
    """Check that ``url`` names a database this program can use, before anything is written.

    Raises:
        WorkspaceError: ``url`` is not a URL, names another kind of database, or its driver is not installed.
    """
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    example = "e.g. postgresql+psycopg://user@host/database or sqlite:////path/to/file.db"
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise WorkspaceError(f"{url!r} is not a database URL ({example})") from None
    shown = parsed.render_as_string(hide_password=True)
    try:
        dialect = parsed.get_dialect()
    except NoSuchModuleError:
        raise WorkspaceError(
            f"{shown!r}: unknown kind of database {parsed.drivername!r} ({example})"
        ) from None
    if dialect.name not in SUPPORTED_DIALECTS:
        raise WorkspaceError(
            f"{shown!r}: a workspace database must be SQLite or PostgreSQL, not {dialect.name} ({example})"
        )
    try:
        dialect.import_dbapi()
    except ImportError as exc:
        raise WorkspaceError(
            f"{shown!r}: the database driver is not installed ({exc}); install it or choose another URL"
        ) from None
    return parsed


def _remove_created(root: Path, made: list[Path]) -> None:
    """Remove what creating a workspace in ``root`` wrote: its files, and the folder when it was new."""
    for name in (DB_FILENAME, DB_FILENAME + "-wal", DB_FILENAME + "-shm", ".migrate.lock"):
        (root / name).unlink(missing_ok=True)
    for path in made:
        if path != root:
            path.unlink(missing_ok=True)
    if root in made:
        try:
            root.rmdir()
        except OSError:  # something else was put there meanwhile: leave it
            pass


def _read_config(path: Path) -> dict[str, Any]:
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise WorkspaceError(f"{path} cannot be read: {exc}") from exc
    if not isinstance(config, dict) or config.get("format") != FORMAT_NAME:
        raise WorkspaceError(f"{path} is not a workspace description")
    if not isinstance(config.get("version"), int) or config["version"] > FORMAT_VERSION:
        raise WorkspaceError(
            f"{path}: workspace format {config.get('version')!r} is newer than this program's"
        )
    return config


def _write_config(path: Path, config: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
