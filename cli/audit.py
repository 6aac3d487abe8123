"""``audit``: show or export a workspace's audit log."""

from __future__ import annotations

import argparse

from cli.checks import positive_int

NAME = "audit"
HELP = "Show a workspace's audit log (who did what, when, to which ids), or export it as JSON lines or CSV."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("workspace", help="workspace folder")
    parser.add_argument("--action", help="only events of this action (e.g. search, case.verdict)")
    parser.add_argument(
        "--limit", type=positive_int, default=50, help="show the newest N events, at least 1 (default 50)"
    )
    parser.add_argument("--export", metavar="FILE", help="write every event to FILE (.jsonl or .csv)")


def run(args: argparse.Namespace) -> int:
    import json

    from amd.errors import AmdError
    from cli import jobs
    from cli.checks import check_output_file

    if args.export:
        out = check_output_file(args.export, "--export")
        if out.suffix.lower() not in ("", ".jsonl", ".csv"):
            raise AmdError(f"--export {args.export}: write .jsonl (JSON lines) or .csv, not {out.suffix}")
    ws = jobs.open_workspace(args.workspace)
    try:
        if args.export:
            out.parent.mkdir(parents=True, exist_ok=True)
            n = ws.audit.export(out)
            print(f"exported {n} events to {args.export}")
            return 0
        events = ws.audit.list(action=args.action, limit=args.limit, newest_first=True)[::-1]
    finally:
        ws.close()
    for ev in events:
        ids = ",".join(str(i) for i in ev.entity_ids[:10]) + ("..." if len(ev.entity_ids) > 10 else "")
        details = json.dumps(ev.details, sort_keys=True) if ev.details else ""
        print(
            f"{ev.id:>6} {ev.at.isoformat(timespec='seconds')} {ev.actor}@{ev.host or '?'} {ev.action} "
            f"{ev.entity or ''}[{ids}] {details}"
        )
    return 0
