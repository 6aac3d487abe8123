"""``main.py dataset-info``: check a dataset folder and summarise it."""

from __future__ import annotations

import argparse

NAME = "dataset-info"
HELP = "Check a dataset (Market-1501, DukeMTMC-reID or CSV layout) and print its splits and attribute rates."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("root", help="dataset folder")
    parser.add_argument("--format", default="market1501", choices=("market1501", "duke", "csv"))
    parser.add_argument(
        "--schema", default=None, help="attribute schema: market1501, duke or a JSON/CSV file"
    )
    parser.add_argument("--attributes", default=None, help="attribute file, if not at its usual place")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")


def run(args: argparse.Namespace) -> int:
    import json

    import numpy as np

    from amd.data.load import load_dataset

    ds = load_dataset(args.root, args.format, schema=args.schema, attributes=args.attributes)
    summary = ds.summary()
    rates = {}
    if ds.schema is not None and ds.train:
        train = np.stack([r.attributes for r in ds.train])
        rates = {a.label: round(float((train[:, i] == 1).mean()), 4) for i, a in enumerate(ds.schema)}
    if args.json:
        print(json.dumps({"name": ds.name, "splits": summary, "positive_image_rates": rates}, indent=2))
        return 0
    schema = f"{ds.schema.name}, {len(ds.schema)} attributes" if ds.schema else "no attributes"
    print(f"{ds.name} at {args.root} ({schema})")
    for split, s in summary.items():
        print(
            f"  {split:<8} {s['images']:>7} images  {s['identities']:>6} identities  {s['cameras']:>3} cameras"
        )
    if rates:
        print("  share of training images with each attribute:")
        for label, rate in rates.items():
            print(f"    {label:<28} {rate:6.1%}")
    return 0
