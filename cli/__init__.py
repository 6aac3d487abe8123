"""Headless commands behind ``python main.py SUBCOMMAND``.

Each command is a module with ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``.
Command modules import only the standard library (and :mod:`cli.checks`, which is made of it) at
module level, so that ``--help`` is instant and works on a machine with no display; the engine, the
store and the GUI are imported inside ``run``. Work that needs both the engine and the store lives in Qt-free modules that the GUI
calls too.
"""

from __future__ import annotations

#: Command modules, in the order ``--help`` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "cli.synth",
    "cli.dataset_info",
    "cli.train_target",
    "cli.distill",
    "cli.evaluate",
    "cli.explain",
    "cli.foreground",
    "cli.ingest",
    "cli.ingest_video",
    "cli.index",
    "cli.search",
    "cli.audit",
    "cli.case",
    "cli.demo",
    "cli.import_model",
    "cli.export_onnx",
)
