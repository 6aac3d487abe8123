"""``search``: rank a workspace's indexed crops by distance to a query crop or image."""

from __future__ import annotations

import argparse

from cli.checks import DEVICE_CHOICES, device_arg, positive_int

NAME = "search"
HELP = "Rank a workspace's indexed crops by distance to a query crop id or image file."
#: Width of the largest-shares column ("upper: black 6.4%, lower: grey 5.8%").
SHARES_WIDTH = 44


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
        "--interpreter",
        metavar="FILE",
        help="an interpreter distilled from --model: each result also names the two attributes that carry "
        "most of its distance to the query",
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
    explainer = None
    if args.interpreter:
        from amd.explain import Explainer

        # Loaded before the search: an interpreter of another target is refused at once.
        explainer = Explainer.from_files(args.model, args.interpreter, device=device)
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
        if explainer is not None:
            crops = ws.crops.get_many([h.crop_id for h in hits])
            shares = jobs.largest_shares(ws, explainer, args.query, crops, count=2)
        else:
            shares = None
    finally:
        ws.close()
    from amd.visual import top_share_text

    score = f"{'rerank':>9}" if args.rerank else ""
    why = f"{'largest shares':<{SHARES_WIDTH}} " if shares is not None else ""
    print(f"{'rank':>4} {'crop':>8} {'distance':>10}{score}  {'identity':<20} {'camera':<16} {why}source")
    for i, h in enumerate(hits):
        extra = f" {h.score:8.4f}" if h.score is not None else ""
        if shares is not None:
            text = ", ".join(top_share_text(*share) for share in shares[i])
            extra_why = f"{text:<{SHARES_WIDTH}} "
        else:
            extra_why = ""
        print(
            f"{h.rank:>4} {h.crop_id:>8} {h.distance:>10.4f}{extra}  {h.identity or '-':<20} "
            f"{h.camera or '-':<16} {extra_why}{h.source_path}"
        )
    return 0
