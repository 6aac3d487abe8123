"""``main.py synth``: render a synthetic pedestrian dataset in the Market-1501 layout, with part masks."""

from __future__ import annotations

import argparse

NAME = "synth"
HELP = (
    "Render synthetic pedestrians with known attributes and ground-truth part masks, "
    "written as a Market-1501 dataset (crops, market_attribute.mat, masks, manifests)."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "out_dir", metavar="OUT_DIR", help="output folder (created; must be empty unless --overwrite)"
    )
    parser.add_argument("--train-ids", type=int, default=100, help="training identities (default 100)")
    parser.add_argument("--test-ids", type=int, default=100, help="test identities (default 100)")
    parser.add_argument(
        "--per-id", type=int, default=8, help="crops per identity (default 8; at least 4 for test)"
    )
    parser.add_argument("--cameras", type=int, default=6, help="cameras, 2..9 (default 6)")
    parser.add_argument("--size", default="128x64", help="crop size HEIGHTxWIDTH (default 128x64)")
    parser.add_argument(
        "--seed", type=int, default=0, help="random seed; the same seed writes the same files"
    )
    parser.add_argument(
        "--distractors", type=int, default=0, help="gallery crops of identity 0000 (default 0)"
    )
    parser.add_argument(
        "--lookalikes",
        type=float,
        default=0.15,
        help="share of identities copying an earlier one's attributes and colours (default 0.15)",
    )
    parser.add_argument(
        "--occlusion",
        type=float,
        default=1.0,
        help="multiplier of the cameras' occlusion rates; 0 turns occluders off (default 1)",
    )
    parser.add_argument("--no-masks", action="store_true", help="do not write the part masks")
    parser.add_argument(
        "--contact-sheet",
        metavar="PNG",
        default=None,
        help="also write a contact sheet (8x6 crops, 2x, with a row of coloured masks)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a synthetic dataset already in OUT_DIR (other files are kept)",
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")


def run(args: argparse.Namespace) -> int:
    import json

    from tqdm import tqdm

    from amd.synth.writer import SynthConfig, check_out_dir, parse_size, write_dataset

    height, width = parse_size(args.size)
    cfg = SynthConfig(
        train_ids=args.train_ids, test_ids=args.test_ids, per_id=args.per_id, cameras=args.cameras,
        height=height, width=width, seed=args.seed, distractors=args.distractors,
        lookalike_rate=args.lookalikes, occlusion=args.occlusion, masks=not args.no_masks,
    )  # fmt: skip
    cfg.validate()
    check_out_dir(args.out_dir, args.overwrite)
    if args.contact_sheet:
        from cli.checks import check_output_file

        check_output_file(args.contact_sheet, "--contact-sheet")
    with tqdm(total=cfg.total_crops, unit="crop", desc="rendering", disable=args.json) as bar:

        def on_progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        summary = write_dataset(args.out_dir, cfg, on_progress, overwrite=args.overwrite)
    sheet = None
    if args.contact_sheet and not summary.cancelled:
        from amd.synth.sheet import write_contact_sheet

        sheet = write_contact_sheet(args.out_dir, args.contact_sheet, zoom=2)
    if args.json:
        print(json.dumps({**summary.to_dict(), "contact_sheet": str(sheet) if sheet else None}, indent=2))
        return 0
    im = summary.images
    print(f"wrote {summary.written} crops to {summary.out_dir} in {summary.seconds:.1f} s "
          f"({summary.crops_per_second:.0f} crops/s)")  # fmt: skip
    print(f"  train    {im['train']:>7} crops  {summary.identities['train']:>5} identities")
    print(f"  query    {im['query']:>7} crops  {summary.identities['test']:>5} identities")
    print(f"  gallery  {im['gallery']:>7} crops  ({args.distractors} distractors)")
    views = ", ".join(f"{v} {n}" for v, n in summary.per_view.items())
    print(f"  {cfg.cameras} cameras; views: {views}; occluded crops: {summary.occluded_crops}")
    print("  attributes: market_attribute.mat; parts: parts.json, masks/; index: images.csv, identities.json")
    if sheet:
        print(f"  contact sheet: {sheet}")
    return 0
