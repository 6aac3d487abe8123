"""``main.py choose-foreground``: lean an evidence interpreter's maps towards where the target pools."""

from __future__ import annotations

import argparse

from cli.checks import DEVICE_CHOICES, device_arg, number

NAME = "choose-foreground"
HELP = (
    "Choose per attribute group how far an evidence interpreter's maps lean towards the cells its target "
    "pools most from, on a synthetic render with part masks, and write the interpreter with them."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data", required=True, metavar="DIR",
        help="synthetic dataset with masks/ and parts.json, rendered with a seed that neither training nor "
        "testing used (main.py synth DIR --seed N)",
    )  # fmt: skip
    parser.add_argument("--target", required=True, metavar="FILE", help="target model file")
    parser.add_argument("--interpreter", required=True, metavar="FILE", help="interpreter distilled from it")
    parser.add_argument("--out", required=True, metavar="FILE", help="write the interpreter with the weights")
    parser.add_argument(
        "--min-gain", type=number(minimum=0, maximum=1), default=0.01,
        help="least gain in a group's pointing score for a non-zero weight, 0..1 (default 0.01)",
    )  # fmt: skip
    parser.add_argument("--json", metavar="OUT", help="also write the scores of every weight tried as JSON")
    parser.add_argument("--device", type=device_arg, default="auto", help=f"{DEVICE_CHOICES} (default auto)")


def render_description(data: str) -> object:
    """What the weights were chosen on: the render's configuration when it has one, else the folder's name."""
    import json
    from pathlib import Path

    try:
        return json.loads((Path(data) / "synth.json").read_text(encoding="utf-8"))["config"]
    except (OSError, ValueError, KeyError, TypeError):
        return Path(data).name


def run(args: argparse.Namespace) -> int:
    import json
    import sys

    from amd.data.load import load_dataset
    from amd.errors import AmdError
    from amd.models import load_pair, save_interpreter
    from amd.pointing import choose_foreground_weights, require_evidence_maps
    from cli import checks
    from cli.explain import write_atomically

    checks.check_outputs((args.out, "--out"), (args.json, "--json"))
    device = checks.resolve_device(args.device)
    interpreter, target_info, info = load_pair(args.target, args.interpreter, device=device)
    interpreter = interpreter.float().eval()
    require_evidence_maps(interpreter, str(args.interpreter))  # before the crops are read
    dataset = load_dataset(args.data, "market1501", require_attributes=True)
    if dataset.schema is None or dataset.schema.names != info.schema.names:
        found = dataset.schema.names if dataset.schema is not None else None
        raise AmdError(f"{args.data}: its attributes {found} are not the interpreter's {info.schema.names}")

    def say(message: str) -> None:
        print(message + " ...", file=sys.stderr, flush=True)

    records = (*dataset.train, *dataset.query, *dataset.gallery)
    choice = choose_foreground_weights(interpreter, args.data, records, info.schema, tuple(info.input_size),
                                       device, min_gain=args.min_gain, on_progress=say)  # fmt: skip
    print(choice.table())
    interpreter.set_foreground_weights(choice.weights.tolist())
    extra = {**info.extra, "foreground_render": render_description(args.data)}
    save_interpreter(args.out, interpreter, tuple(info.input_size), info.schema, target_info.sha256,
                     config=info.config, metrics=info.metrics, extra=extra, half=info.half)  # fmt: skip
    leaned = {g: w for g, w in choice.chosen.items() if w > 0}
    print(f"wrote {args.out}; foreground weights: {leaned or 'none (every group points best without)'}")
    if args.json:
        out = {"grid": list(choice.grid), "trials": choice.trials, "hits": choice.hits, "chosen": choice.chosen}
        write_atomically(args.json, lambda p: p.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8"))
    return 0
