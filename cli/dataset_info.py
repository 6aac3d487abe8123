"""``main.py dataset-info``: check a dataset folder and summarise it."""

from __future__ import annotations

import argparse

NAME = "dataset-info"
HELP = (
    "Check a dataset (Market-1501, DukeMTMC-reID or CSV layout): print its splits and attribute rates, and "
    "list the images that cannot be decoded (exit status 1 when there are any)."
)
#: Unreadable images listed in the text report (the JSON lists all).
LISTED = 20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("root", help="dataset folder")
    parser.add_argument("--format", default="market1501", choices=("market1501", "duke", "csv"))
    parser.add_argument(
        "--schema", default=None, help="attribute schema: market1501, duke or a JSON/CSV file"
    )
    parser.add_argument("--attributes", default=None, help="attribute file, if not at its usual place")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument(
        "--no-image-check", action="store_true",
        help="do not decode every image (faster on large datasets: decoding takes about 0.6 ms per 256x128 crop)",
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    import json
    import sys
    import warnings

    import numpy as np

    from amd.data.images import ImageWarning
    from amd.data.load import load_dataset

    def notice(done: int, total: int) -> None:
        # Only large datasets take long enough to deserve a word; the first call comes after 256 images.
        if done <= 256 and total >= 10_000:
            print(f"decoding {total:,} images to check them ...", file=sys.stderr, flush=True)

    with warnings.catch_warnings():
        # The images left out are listed below, in full, rather than in the loader's one-line warning.
        warnings.simplefilter("ignore", ImageWarning)
        ds = load_dataset(args.root, args.format, schema=args.schema, attributes=args.attributes,
                          check_images=not args.no_image_check, on_progress=notice)  # fmt: skip
    summary = ds.summary()
    rates = {}
    if ds.schema is not None and ds.train:
        train = np.stack([r.attributes for r in ds.train])
        rates = {a.label: round(float((train[:, i] == 1).mean()), 4) for i, a in enumerate(ds.schema)}
    status = 1 if ds.unreadable else 0
    if args.json:
        data = {"name": ds.name, "splits": summary, "positive_image_rates": rates,
                "images_checked": not args.no_image_check,
                "unreadable": [{"path": p, "reason": r} for p, r in ds.unreadable]}  # fmt: skip
        print(json.dumps(data, indent=2))
        return status
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
    if args.no_image_check:
        print("  images not decoded (--no-image-check)")
    elif ds.unreadable:
        count = len(ds.unreadable)
        print(f"  {count} image{'s' if count != 1 else ''} cannot be decoded (left out of the splits above):")
        for path, reason in ds.unreadable[:LISTED]:
            print(f"    {path}: {reason}")
        if count > LISTED:
            print(f"    and {count - LISTED} more (--json lists them all)")
    else:
        print("  every image decodes")
    return status
