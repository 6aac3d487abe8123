"""Set up the project's virtual environment and run the application or the tests.

    python3 scripts/dev.py run [ARGS...]     # the application (python main.py ARGS...)
    python3 scripts/dev.py test [PYTEST...]  # lint, layering contracts and the whole test suite

Needs nothing but Python 3.10+. The first call creates ``.venv/`` at the project root and installs
the project with its dependencies; later calls reinstall only when ``pyproject.toml`` changed.
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")


def _say(message: str) -> None:
    print(f"[dev] {message}", flush=True)


def ensure_venv(extras: str) -> None:
    """Create the virtual environment and install the project (editable) with ``extras``."""
    if sys.version_info < (3, 10):  # noqa: UP036 - this script runs on whatever python3 the machine has
        sys.exit(f"Python 3.10 or newer is needed, this is {sys.version.split()[0]}")
    if not PYTHON.exists():
        _say(f"creating the virtual environment in {VENV}")
        venv.EnvBuilder(with_pip=True).create(VENV)
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + extras.encode()).hexdigest()[:16]
    stamp = VENV / f".installed-{digest}"
    if stamp.exists():
        return
    target = f".[{extras}]" if extras else "."
    _say(f"installing the project and its dependencies ({target}); the first time takes a few minutes")
    subprocess.run(
        [str(PYTHON), "-m", "pip", "install", "--disable-pip-version-check", "-q", "-e", target],
        cwd=ROOT,
        check=True,
    )
    for old in VENV.glob(".installed-*"):
        old.unlink()
    stamp.touch()


def ensure_postgres() -> None:
    """Install Debian's PostgreSQL server when it is missing, so that the store is tested against it.

    Only attempted as root on a Debian-like system; elsewhere the PostgreSQL tests skip with a reason.
    """
    if glob.glob("/usr/lib/postgresql/*/bin/initdb") or shutil.which("initdb"):
        return
    if os.environ.get("AMD_SKIP_POSTGRES_INSTALL") or not shutil.which("apt-get"):
        return
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        _say("PostgreSQL is not installed and this is not root: the PostgreSQL tests will skip")
        return
    _say("installing Debian's PostgreSQL server for the store tests")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    quiet = {"stdout": subprocess.DEVNULL, "env": env}
    if subprocess.run(["apt-get", "install", "-y", "-q", "postgresql"], **quiet).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], **quiet)
        if subprocess.run(["apt-get", "install", "-y", "-q", "postgresql"], **quiet).returncode != 0:
            _say("could not install PostgreSQL: the PostgreSQL tests will skip")


def run_app(args: list[str]) -> int:
    ensure_venv("")
    return subprocess.call([str(PYTHON), str(ROOT / "main.py"), *args], cwd=ROOT)


def run_tests(args: list[str]) -> int:
    ensure_venv("dev")
    ensure_postgres()
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONDONTWRITEBYTECODE="1")
    checks = [
        ("lint", [str(BIN / "ruff"), "check", "."]),
        ("layering contracts", [str(BIN / "lint-imports"), "--no-cache"]),
        ("tests", [str(PYTHON), "-m", "pytest", *args]),
    ]
    failed = []
    # Every check runs even when an earlier one fails, so that one run shows every problem.
    for name, cmd in checks:
        _say(f"{name}: {' '.join(Path(c).name if i == 0 else c for i, c in enumerate(cmd))}")
        code = subprocess.call(cmd, cwd=ROOT, env=env)
        if code != 0:
            _say(f"{name} failed (exit status {code})")
            failed.append(code)
    if failed:
        _say(f"{len(failed)} of {len(checks)} checks failed")
        return failed[0]
    _say("all checks passed")
    return 0


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in ("run", "test", "setup"):
        print(__doc__)
        return 2
    command, rest = sys.argv[1], sys.argv[2:]
    if command == "setup":
        ensure_venv("dev")
        return 0
    return run_app(rest) if command == "run" else run_tests(rest)


if __name__ == "__main__":
    sys.exit(main())
