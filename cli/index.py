"""``index``: compute the embeddings a model has not yet made for a workspace's crops.

With ``--interpreter`` the interpreter's attribute predictions of the crops are stored as well (as the
interpreter's vectors), so that the gallery can filter crops by predicted attribute.
"""

from __future__ import annotations

import argparse
import sys

from cli.checks import DEVICE_CHOICES, device_arg, positive_int

NAME = "index"
HELP = "Compute the missing embeddings of a workspace's crops under a model (batched, resumable)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("workspace", help="workspace folder")
    parser.add_argument(
        "--model", required=True, metavar="FILE", help="model file (a target ReID checkpoint)"
    )
    parser.add_argument(
        "--interpreter",
        metavar="FILE",
        help="an interpreter distilled from the model: also store its attribute predictions of the crops",
    )
    parser.add_argument(
        "--batch-size", type=positive_int, default=32, help="images per forward pass, at least 1 (default 32)"
    )
    parser.add_argument(
        "--device", type=device_arg, help=f"{DEVICE_CHOICES} (default auto: cuda when available)"
    )


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from cli import jobs
    from cli.checks import resolve_device
    from db.features import load_features
    from db.index import IndexProgress, index_missing

    device = resolve_device(args.device)
    embedder = jobs.load_embedder(args.model, device)
    ws = jobs.open_workspace(args.workspace)
    predicted = None
    try:
        pair = None
        if args.interpreter:
            from cli.workbench import register_models

            # Registered with their schemas first: the predictions are read by the interpreter's schema.
            pair = register_models(ws, args.model, args.interpreter)
        with tqdm(unit="crop", desc="index", file=sys.stderr) as bar:

            def on_progress(p: IndexProgress) -> None:
                bar.total = p.total
                bar.update(p.done - bar.n)

            summary = index_missing(
                ws, embedder, batch_size=args.batch_size, file_path=str(args.model), on_progress=on_progress
            )
        with tqdm(unit="row", desc="feature cache", file=sys.stderr, leave=False) as bar:

            def on_rows(done: int, total: int) -> None:
                bar.total = total
                bar.update(done - bar.n)

            feats = load_features(ws, summary.model_id, on_progress=on_rows)
        if pair is not None:
            from cli.workbench import Workbench

            bench = Workbench(ws, pair, device)
            with tqdm(unit="crop", desc="attributes", file=sys.stderr) as bar:

                def on_predicted(done: int, total: int, _message: str) -> None:
                    if total:
                        bar.total = total
                        bar.update(done - bar.n)

                predicted = bench.predict_attributes(on_progress=on_predicted)
    finally:
        ws.close()
    print(
        f"model {embedder.name!r} (id {summary.model_id}): computed {summary.computed}, "
        f"failed {len(summary.failed)}, indexed {len(feats)} crops of dimension {feats.dim} "
        f"in {summary.seconds:.1f} s"
    )
    failed = list(summary.failed)
    if args.interpreter:
        if predicted is None:
            print(f"interpreter {args.interpreter}: it has no attribute classifier, nothing predicted")
        else:
            failed += predicted.failed
            print(
                f"attribute predictions: computed {predicted.computed}, failed {len(predicted.failed)} "
                f"in {predicted.seconds:.1f} s"
            )
    for crop_id, reason in failed[:50]:
        print(f"  crop {crop_id}: {reason}")
    return 1 if failed else 0
