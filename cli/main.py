"""Entry point: no arguments opens the GUI; a subcommand runs a headless job."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import re
import sys
from collections.abc import Iterator, Sequence

from cli import COMMAND_MODULES

#: Set to 1 (or give ``--traceback``) to see the full traceback of an unexpected error.
TRACEBACK_ENV = "AMD_TRACEBACK"
_HINT = f"rerun with --traceback (or {TRACEBACK_ENV}=1) for the full traceback"


class _Parser(argparse.ArgumentParser):
    """Reports a bad option as one ``error:`` line that points at ``--help`` instead of the whole usage.

    The usage of a training command runs to a screen of options, which buried the one line that says
    what was wrong. An option whose value is out of range reads ``--batch-size must be ...``, as the
    checks made inside the commands do.
    """

    def error(self, message: str) -> None:  # type: ignore[override]
        message = re.sub(
            r"^argument (\S+?): (must )?", lambda m: f"{m[1]} {m[2]}" if m[2] else f"{m[1]}: ", message
        )
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, object]]:
    parser = _Parser(
        prog="main.py",
        description="Explainable person re-identification workbench. "
        "Run without arguments to open the desktop application, or give a subcommand for a headless job.",
        epilog="Exit status: 0 done; 1 done, but some items were refused or failed (the command's help says "
        "which); 2 an error stopped the command (one 'error:' line says why); 3 training was stopped and "
        "can be resumed; 130 interrupted.",
    )
    parser.add_argument(
        "--traceback",
        action="store_true",
        help=f"on an unexpected error, print the full traceback (also with {TRACEBACK_ENV}=1); may be "
        "given after the subcommand too",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    modules: dict[str, object] = {}
    for name in COMMAND_MODULES:
        module = importlib.import_module(name)
        p = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        modules[module.NAME] = module
    return parser, modules


def _run_gui() -> int:
    try:
        gui_app = importlib.import_module("gui.app")
    except ModuleNotFoundError as exc:
        if exc.name != "gui.app":
            raise
        parser, _ = build_parser()
        print("The desktop application is not part of this build yet; the headless commands are:\n")
        parser.print_help()
        return 0
    return gui_app.run()


def _take_traceback_flag(argv: list[str]) -> tuple[list[str], bool]:
    """Remove ``--traceback`` wherever it is (before a ``--``), so that it works after the subcommand too."""
    end = argv.index("--") if "--" in argv else len(argv)
    wanted = "--traceback" in argv[:end]
    return [a for a in argv[:end] if a != "--traceback"] + argv[end:], wanted


@contextlib.contextmanager
def _warnings_as_lines() -> Iterator[None]:
    """Print the engine's warnings about the user's input (an odd image, skipped dataset files) as one
    ``warning:`` line each, like the ``error:`` lines, instead of Python's file:line form with a source line."""
    import warnings

    from amd.data.images import ImageWarning

    default = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):  # type: ignore[no-untyped-def]
        if issubclass(category, ImageWarning):
            print(f"warning: {message}", file=file or sys.stderr)
        else:
            default(message, category, filename, lineno, file, line)

    warnings.showwarning = show
    try:
        yield
    finally:
        if warnings.showwarning is show:
            warnings.showwarning = default


def main(argv: Sequence[str] | None = None) -> int:
    """Run the GUI (no arguments) or one subcommand; returns the exit status (see ``--help``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        return _run_gui()
    argv, traceback_flag = _take_traceback_flag(argv)
    parser, modules = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or a bad option (its error line is printed): a status, like the rest
        return exc.code if isinstance(exc.code, int) else 2
    if args.command is None:
        parser.print_help()
        return 0
    # Imported here so that a user error from any layer is reported without a traceback.
    from amd.errors import AmdError
    from cli.checks import describe_error
    from db.errors import StoreError

    try:
        with _warnings_as_lines():
            return int(modules[args.command].run(args) or 0)
    except (AmdError, StoreError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        # The last resort: an error that no layer turned into a message (a full disk, a file that
        # vanished, a bug). One line, exit status 2 like any failed command (1 means that some items
        # were refused); the traceback is there for whoever needs to find the cause.
        wanted = traceback_flag or os.environ.get(TRACEBACK_ENV, "") not in ("", "0")
        if wanted:
            import traceback

            traceback.print_exc()
        # An operating-system error names its file and reason, which is all a user needs.
        hint = "" if wanted or isinstance(exc, OSError) else f"; {_HINT}"
        print(f"error: {describe_error(exc)}{hint}", file=sys.stderr)
        return 2
