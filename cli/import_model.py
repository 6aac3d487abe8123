"""``import-model``: turn a torchreid or fast-reid checkpoint into a target model of the workbench."""

from __future__ import annotations

import argparse

from cli.checks import parse_size

NAME = "import-model"
HELP = "Import a torchreid or fast-reid ResNet checkpoint as a target model file of the workbench."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="the source checkpoint (.pth / .pth.tar)")
    parser.add_argument(
        "--format", required=True, choices=("torchreid", "fastreid"), help="code base that wrote it"
    )
    parser.add_argument("--out", required=True, metavar="OUT.pt", help="target model file to write")
    parser.add_argument(
        "--size",
        type=parse_size,
        default=(256, 128),
        metavar="HxW",
        help="input size the model was trained at (256x128)",
    )
    parser.add_argument(
        "--last-stride",
        type=int,
        choices=(1, 2),
        help="stride of the last stage (default: 2 for torchreid's resnet50, 1 for fast-reid)",
    )
    parser.add_argument(
        "--pooling",
        choices=("auto", "avg", "gem"),
        default="auto",
        help="pooling of the source (auto: GeM when the file holds a learnt exponent, else average)",
    )
    parser.add_argument(
        "--gem-p",
        type=float,
        default=None,
        help="exponent of a fixed GeM, 3 by default (with --pooling gem, for a file without a learnt one)",
    )
    parser.add_argument(
        "--neck-feat",
        choices=("before", "after"),
        help="test-time feature before or after the BNNeck (default: the source's published configs)",
    )
    parser.add_argument("--half", action="store_true", help="store the weights as float16 (half the size)")


def run(args: argparse.Namespace) -> int:
    from amd.interop import import_checkpoint, save_imported
    from cli.checks import check_output_file

    check_output_file(args.out, "--out")
    model, report = import_checkpoint(
        args.file,
        args.format,
        pooling=args.pooling,
        gem_p=args.gem_p,
        neck_feat=args.neck_feat,
        last_stride=args.last_stride,
    )
    sha = save_imported(args.out, model, report, args.size, half=args.half)
    for line in report.lines():
        print(line)
    print(
        f"wrote {args.out} (input {args.size[0]}x{args.size[1]}, {model.embedding_dim}-d features, sha256 {sha[:12]})"
    )
    return 0
