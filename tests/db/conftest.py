"""Store fixtures: a fresh workspace per test, on SQLite and on a real PostgreSQL server.

The PostgreSQL server is started once per test session from Debian's binaries
(``/usr/lib/postgresql/*/bin``), in a temporary data directory, on a free loopback port, as the
``postgres`` user when the tests run as root (the server refuses to run as root). Set
``AMD_TEST_POSTGRES_URL`` to use an existing server instead (a database per test is created
there), and ``AMD_REQUIRE_POSTGRES=1`` to turn a missing server into a failure rather than a skip.
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from db.workspace import Workspace

_db_counter = itertools.count()


def _pg_bin() -> Path | None:
    env = os.environ.get("AMD_PG_BIN")
    candidates = [Path(env)] if env else []
    candidates += sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )[::-1]
    which = shutil.which("initdb")
    if which:
        candidates.append(Path(which).resolve().parent)
    for c in candidates:
        if (c / "initdb").is_file() and (c / "pg_ctl").is_file():
            return c
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _PgServer:
    """A throwaway PostgreSQL cluster; ``url`` points at its ``postgres`` database."""

    def __init__(self) -> None:
        self.bin = _pg_bin()
        if self.bin is None:
            raise RuntimeError("no PostgreSQL server binaries (apt-get install -y postgresql)")
        self.user: str | None = None
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            import pwd

            try:
                pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError(
                    "running as root and there is no 'postgres' user to run the server"
                ) from None
            self.user = "postgres"
        self.dir = Path(tempfile.mkdtemp(prefix="amd-pg-"))
        if self.user:
            shutil.chown(self.dir, self.user)
        self.port = _free_port()
        self.data = self.dir / "data"
        self._run([str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "amd", "-E", "UTF8",
                   "--no-sync", "--no-instructions"])  # fmt: skip
        opts = (
            f"-k {self.dir} -p {self.port} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off"
        )
        self._run([str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", opts, "-l", str(self.dir / "log"),
                   "-w", "-t", "60", "start"])  # fmt: skip
        self.url = f"postgresql+psycopg://amd@127.0.0.1:{self.port}/postgres"

    def _run(self, cmd: list[str]) -> None:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, user=self.user, cwd=self.dir)
        if out.returncode != 0:
            log = self.dir / "log"
            detail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{Path(cmd[0]).name} failed: {out.stderr.strip()} {detail}")

    def stop(self) -> None:
        try:
            self._run([str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"])
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """URL of a PostgreSQL server's maintenance database; skips (visibly) when none can be had."""
    require = os.environ.get("AMD_REQUIRE_POSTGRES") == "1"

    def unavailable(reason: str) -> None:
        if require:
            pytest.fail(f"PostgreSQL required (AMD_REQUIRE_POSTGRES=1) but unavailable: {reason}")
        pytest.skip(f"PostgreSQL unavailable: {reason}")

    try:
        import psycopg  # noqa: F401
    except ImportError:
        unavailable("the psycopg driver is not installed (pip install 'psycopg[binary]')")
    external = os.environ.get("AMD_TEST_POSTGRES_URL")
    if external:
        from sqlalchemy import create_engine
        from sqlalchemy.exc import OperationalError

        engine = create_engine(external)
        try:
            with engine.connect():
                pass
        except OperationalError as exc:
            unavailable(f"cannot connect to AMD_TEST_POSTGRES_URL: {str(exc.orig).strip().splitlines()[0]}")
        finally:
            engine.dispose()
        yield external
        return
    try:
        server = _PgServer()
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        unavailable(str(exc))
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture()
def pg_database(pg_url: str) -> Iterator[str]:
    """URL of a new, empty database on the test server, dropped afterwards."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"amd_test_{os.getpid()}_{next(_db_counter)}"
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(pg_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str | None:
    """The database URL of the backend under test (``None`` means the workspace's own SQLite file)."""
    if request.param == "sqlite":
        return None
    return request.getfixturevalue("pg_database")


@pytest.fixture()
def ws(tmp_path: Path, backend: str | None) -> Iterator[Workspace]:
    """A new workspace on each backend."""
    workspace = Workspace.create(tmp_path / "ws", url=backend, actor="tester")
    try:
        yield workspace
    finally:
        workspace.close()


@pytest.fixture()
def sqlite_ws(tmp_path: Path) -> Iterator[Workspace]:
    """A new workspace on its SQLite file (for SQLite-specific behaviour)."""
    workspace = Workspace.create(tmp_path / "ws", actor="tester")
    try:
        yield workspace
    finally:
        workspace.close()
