"""Entry point: no arguments opens the GUI; a subcommand runs a headless job."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from cli import COMMAND_MODULES


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, object]]:
    parser = argparse.ArgumentParser(
        prog="main.py",
        description="Explainable person re-identification workbench. "
        "Run without arguments to open the desktop application, or give a subcommand for a headless job.",
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


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        return _run_gui()
    parser, modules = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    # Imported here so that a user error from any layer is reported without a traceback.
    from amd.errors import AmdError
    from db.errors import StoreError

    try:
        return int(modules[args.command].run(args) or 0)
    except (AmdError, StoreError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
