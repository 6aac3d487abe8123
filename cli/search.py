"""``search``: rank a workspace's indexed crops by distance to a query crop or image."""

from __future__ import annotations

import argparse

from cli.checks import DEVICE_CHOICES, device_arg, positive_int

NAME = "search"
HELP = "Rank a workspace's indexed crops by distance to a query crop id or image file."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("workspace", help="workspace folder")
    parser.add_argument(
        "--model", required=True, metavar="FILE", help="model file the workspace was indexed with"
    )
    parser.add_argument(
        "--query", required=True, metavar="CROP_ID_OR_IMAGE", help="a crop id or an image file"
    )
    parser.add_argument(
        "--top", type=positive_int, default=10, metavar="K", help="number of results, at least 1 (default 10)"
    )
    parser.add_argument("--camera", help="only crops of this camera")
    parser.add_argument(
        "--rerank", action="store_true", help="re-rank the top candidates by k-reciprocal neighbours"
    )
    parser.add_argument(
        "--device", type=device_arg, help=f"{DEVICE_CHOICES} (default auto: cuda when available)"
    )
    parser.add_argument(
        "--backend",
        choices=("auto", "exact", "faiss-flat", "faiss-ivf", "faiss-ivfpq"),
        default="auto",
        help="auto (default): exact below 250,000 crops or on CUDA, faiss IVF above, IVF-PQ when a float32 "
        "copy would pass 2 GiB; exact: chunked exact search; faiss-*: a faiss index, cached in the workspace",
    )
    parser.add_argument(
        "--nprobe",
        type=positive_int,
        metavar="N",
        help="IVF cells visited per query, at least 1 (default: an eighth of them)",
    )


def run(args: argparse.Namespace) -> int:
    from cli import jobs
    from cli.checks import resolve_device

    device = resolve_device(args.device)
    embedder = jobs.load_embedder(args.model, device)
    ws = jobs.open_workspace(args.workspace)
    try:
        hits = jobs.search(
            ws,
            embedder,
            args.query,
            top=args.top,
            camera=args.camera,
            rerank=args.rerank,
            device=device,
            backend=args.backend,
            nprobe=args.nprobe,
        )
    finally:
        ws.close()
    score = f"{'rerank':>9}" if args.rerank else ""
    print(f"{'rank':>4} {'crop':>8} {'distance':>10}{score}  {'identity':<20} {'camera':<16} source")
    for h in hits:
        extra = f" {h.score:8.4f}" if h.score is not None else ""
        print(
            f"{h.rank:>4} {h.crop_id:>8} {h.distance:>10.4f}{extra}  {h.identity or '-':<20} "
            f"{h.camera or '-':<16} {h.source_path}"
        )
    return 0
