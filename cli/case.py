"""``case``: save, verify, import and export case files (``.amdcase``)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    pass

NAME = "case"
HELP = "Case files: verify one, export it as an HTML or PDF report, save a workspace's case, import one, list cases."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = sub.add_parser("verify", help="check every hash and the layout; exit 0 only for an intact file")
    p.add_argument("casefile")
    p = sub.add_parser("export", help="write the HTML and/or PDF report of a case file")
    p.add_argument("casefile")
    p.add_argument("--html", metavar="OUT", help="self-contained HTML report")
    p.add_argument("--pdf", metavar="OUT", help="PDF report")
    p = sub.add_parser("save", help="save a case of a workspace as a case file")
    p.add_argument("workspace")
    p.add_argument("case_id", type=int)
    p.add_argument("out", help="the .amdcase file to write (replaced atomically)")
    p = sub.add_parser(
        "import",
        help="import a case file into a workspace (its crops come with it); refused when the workspace has "
        "an identical case already, unless --force",
    )
    p.add_argument("workspace")
    p.add_argument("casefile")
    p.add_argument(
        "--force",
        action="store_true",
        help="import even when a case with the same title, reference, pairs, verdicts and notes is there",
    )
    p = sub.add_parser("list", help="list a workspace's cases")
    p.add_argument("workspace")


def run(args: argparse.Namespace) -> int:
    import sys

    if args.action == "verify":
        from cases.archive import verify_case

        report = verify_case(args.casefile)
        if report.ok:
            print(f"{args.casefile}: intact (format {report.format_version}, {report.items} comparisons, "
                  f"{report.members} members, SHA-256 {report.sha256})")  # fmt: skip
            return 0
        print(f"{args.casefile}: NOT intact", file=sys.stderr)
        for problem in report.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 1
    if args.action == "export":
        if not args.html and not args.pdf:
            print("error: give --html OUT and/or --pdf OUT", file=sys.stderr)
            return 2
        from cases.archive import open_case
        from cli.checks import check_outputs

        check_outputs((args.html, "--html"), (args.pdf, "--pdf"))
        doc = open_case(args.casefile)
        if args.html:
            from cases.report import export_html

            print(f"wrote {export_html(doc, args.html)}")
        if args.pdf:
            from gui.report_pdf import export_pdf

            print(f"wrote {export_pdf(doc, args.pdf)}")
        return 0

    from cli import case_ops, jobs

    if args.action == "save":
        from cli.checks import check_output_file

        check_output_file(args.out, "the case file")
    ws = jobs.open_workspace(args.workspace)
    try:
        if args.action == "save":
            from cases.archive import save_case

            saved = save_case(ws, args.case_id, args.out)
            print(
                f"saved case {args.case_id} ({saved.items} comparisons, {saved.size:,} bytes) to {saved.path}"
            )
            print(f"SHA-256 {saved.sha256}")
        elif args.action == "import":
            from cases.archive import DuplicateCase

            result = case_ops.import_case_file(ws, args.casefile, force=args.force)
            if isinstance(result, DuplicateCase):
                print(f"error: {result.message(str(args.workspace))}; nothing was imported. Give --force to "
                      "import another copy", file=sys.stderr)  # fmt: skip
                return 2
            print(
                f"imported {args.casefile} as case {result.id} ({result.title!r}, {result.item_count} comparisons)"
            )
        else:
            cases = ws.cases.list()
            if not cases:
                print(f"{args.workspace}: no cases yet (the GUI's case panel or `case import` adds them)")
            for c in cases:
                print(
                    f"{c.id:>5}  {c.status:<6}  {c.item_count:>3} items  {c.reference or '-':<12}  {c.title}"
                )
    finally:
        ws.close()
    return 0
