"""``ingest``: import image files, folders and dataset layouts into a workspace."""

from __future__ import annotations

import argparse
import sys

from cli.checks import positive_int

NAME = "ingest"
HELP = (
    "Import image files, folders (recursively) and dataset layouts into a workspace, creating it if needed."
)

#: Refusals printed on the terminal; ``--refused-report`` writes all of them.
_SHOWN = 50


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("workspace", help="workspace folder (created when missing or empty)")
    parser.add_argument("paths", nargs="+", metavar="PATH", help="image files, folders or dataset roots")
    parser.add_argument("--camera", help="camera name for every imported crop")
    parser.add_argument("--identity", metavar="NAME", help="identity name for every imported crop")
    parser.add_argument(
        "--format",
        default="auto",
        choices=("auto", "folder", "market1501", "duke", "csv"),
        help="layout of the PATHs (default: detected per path)",
    )
    parser.add_argument("--csv", metavar="FILE", help="index of a csv layout (default ROOT/index.csv)")
    parser.add_argument("--schema", help="attribute schema of a dataset layout (built-in name or file)")
    parser.add_argument(
        "--db-url", metavar="URL", help="database of a new workspace (default: SQLite in the folder)"
    )
    parser.add_argument(
        "--batch-size",
        type=positive_int,
        default=128,
        help="files per committed batch, at least 1 (default 128)",
    )
    parser.add_argument(
        "--refused-report",
        metavar="FILE",
        help="write every refused file and its reason (CSV; its folder is created when missing)",
    )
    parser.epilog = (
        "Exit status: 0 when every file was imported or already present, 1 when some were refused."
    )


def run(args: argparse.Namespace) -> int:
    import csv
    from pathlib import Path

    from tqdm import tqdm

    from cli import jobs
    from cli.checks import check_output_file
    from cli.explain import write_atomically
    from db.ingest import IngestProgress, ingest
    from db.workspace import parse_database_url

    # Everything that can be refused is checked before the workspace is opened, so that a mistake
    # never leaves a new, empty workspace behind (nor one that remembers a database URL that cannot work).
    if args.refused_report:
        check_output_file(args.refused_report, "--refused-report")
    if args.db_url:
        parse_database_url(args.db_url)
    items, refused = jobs.ingest_items(
        args.paths,
        args.format,
        camera=args.camera,
        identity=args.identity,
        csv_path=args.csv,
        schema=args.schema,
    )
    ws = jobs.open_workspace(args.workspace, create=True, url=args.db_url)
    try:
        with tqdm(total=len(items), unit="file", desc="ingest", file=sys.stderr) as bar:

            def on_progress(p: IngestProgress) -> None:
                bar.update(p.done - bar.n)
                bar.set_postfix(added=p.added, dup=p.duplicates, refused=p.refused, refresh=False)

            summary = ingest(ws, items, batch_size=args.batch_size, on_progress=on_progress, refused=refused)
    finally:
        ws.close()
    rate = summary.total / summary.seconds if summary.seconds > 0 else 0.0
    print(
        f"added {summary.added}, duplicates {summary.duplicates}, refused {len(summary.refused)} "
        f"(of {summary.total} files, {summary.seconds:.1f} s, {rate:.0f} files/s)"
    )
    for r in summary.refused[:_SHOWN]:
        print(f"  refused {r.path}: {r.reason}")
    if len(summary.refused) > _SHOWN:
        print(f"  ... and {len(summary.refused) - _SHOWN} more (see --refused-report)")
    if args.refused_report:

        def write(path: Path) -> None:
            with path.open("w", newline="", encoding="utf-8") as fh:
                writer = csv.writer(fh)
                writer.writerow(["path", "reason"])
                writer.writerows((r.path, r.reason) for r in summary.refused)

        write_atomically(args.refused_report, write)
    return 1 if summary.refused else 0
