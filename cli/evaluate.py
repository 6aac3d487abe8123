"""``main.py evaluate``: retrieval and explanation figures of a target model and its interpreter."""

from __future__ import annotations

import argparse

from cli.checks import DEVICE_CHOICES, device_arg, positive_int, workers_int

NAME = "evaluate"
HELP = (
    "Evaluate a target model (Rank-k, mAP, mINP) and its interpreter (retrieval, X-mAP, ADRE, re-weighting) "
    "under the Market-1501 protocol; on synthetic data also where the maps point."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, metavar="DIR", help="dataset folder")
    parser.add_argument("--format", default="market1501", help="market1501, duke or csv (default market1501)")
    parser.add_argument("--target", required=True, metavar="FILE", help="target model file")
    parser.add_argument("--interpreter", metavar="FILE", help="interpreter distilled from the target")
    parser.add_argument("--json", required=True, metavar="OUT", help="write the figures as JSON")
    parser.add_argument(
        "--synthetic", action="store_true",
        help="also score the maps against the ground-truth parts (pointing game, deletion test) of a "
        "synthetic dataset (needs masks/ and parts.json, and --interpreter)",
    )  # fmt: skip
    parser.add_argument(
        "--max-pairs", type=positive_int, default=200,
        help="pairs in the deletion test of --synthetic, at least 1 (default 200)",
    )  # fmt: skip
    parser.add_argument("--device", type=device_arg, default="auto", help=f"{DEVICE_CHOICES} (default auto)")
    parser.add_argument(
        "--workers", type=workers_int, default=0, help="decoding processes, 0..64 (default 0)"
    )


def _print_figures(figures: dict) -> None:
    for section, values in figures.items():
        if not isinstance(values, dict):
            continue
        flat = {k: v for k, v in values.items() if isinstance(v, (int, float))}
        print(f"{section}: " + ", ".join(f"{k} {v:.4g}" for k, v in flat.items()))


def run(args: argparse.Namespace) -> int:
    import json
    import sys

    from amd.data.load import load_dataset
    from amd.errors import AmdError
    from amd.evaluate import evaluate_models
    from amd.models import load_pair, load_target
    from cli import checks
    from cli.explain import write_atomically

    if args.synthetic and not args.interpreter:
        raise AmdError("--synthetic scores an interpreter's maps: give --interpreter too")
    checks.check_output_file(args.json, "--json")
    device = checks.resolve_device(args.device)
    if args.interpreter:
        interpreter, target_info, _ = load_pair(args.target, args.interpreter, device=device)
        target = interpreter.target
    else:
        interpreter = None
        target, target_info = load_target(args.target, device=device)
    dataset = load_dataset(args.data, args.format, require_attributes=interpreter is not None)
    if not dataset.query or not dataset.gallery:
        raise AmdError(f"{args.data}: no query or gallery images to evaluate on")
    size = tuple(target_info.input_size)

    def say(message: str) -> None:
        print(message + " ...", file=sys.stderr, flush=True)

    figures = evaluate_models(dataset, target, size, interpreter, device, args.workers, on_progress=say)
    if args.synthetic:
        from amd.pointing import has_masks, synthetic_scores

        if not has_masks(args.data):
            raise AmdError(f"{args.data}: no synthetic ground truth (masks/ and parts.json) to score maps with")
        name = f"{interpreter.map_mode} interpreter"
        figures["synthetic"] = synthetic_scores(args.data, dataset, target, {name: interpreter}, size, device,
                                                args.workers, max_pairs=args.max_pairs, on_progress=say)  # fmt: skip
    write_atomically(args.json, lambda p: p.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8"))
    _print_figures(figures)
    if "synthetic" in figures:
        for variant, scores in figures["synthetic"].items():
            if isinstance(scores, dict):
                point = ", ".join(f"{g} {v:.2f}" for g, v in scores["pointing"].items())
                dele = scores["deletion"]
                print(f"pointing [{variant}]: {point}; deletion top {dele['top']:.4f} vs random "
                      f"{dele['random']:.4f} (top wins {100 * dele['top_beats_random']:.0f} %)")  # fmt: skip
    print(f"wrote {args.json}")
    return 0
