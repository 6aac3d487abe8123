"""``export-onnx``: write a target model, or an interpreter with its target, as an ONNX file."""

from __future__ import annotations

import argparse

NAME = "export-onnx"
HELP = "Export a target model (or an interpreter with its target) to ONNX, checked against PyTorch."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target", required=True, metavar="FILE", help="target model file")
    parser.add_argument(
        "--interpreter",
        metavar="FILE",
        help="interpreter file distilled from the target: the graph then also gives the attribute maps, "
        "per-attribute embeddings and attribute logits",
    )
    parser.add_argument("--out", required=True, metavar="OUT.onnx", help="ONNX file to write")


def run(args: argparse.Namespace) -> int:
    from amd.models import load_pair, load_target
    from amd.onnx_export import export_onnx
    from cli.checks import check_output_file

    check_output_file(args.out, "--out")
    if args.interpreter:
        interpreter, target_info, info = load_pair(args.target, args.interpreter)
        model = interpreter
        metadata = {
            "amd.target_sha256": target_info.sha256,
            "amd.interpreter_sha256": info.sha256,
            "amd.attributes": ",".join(info.schema.names) if info.schema is not None else "",
        }
    else:
        model, info = load_target(args.target)
        metadata = {"amd.target_sha256": info.sha256}
    report = export_onnx(model, args.out, info.input_size, metadata=metadata)
    h, w = report.input_size
    print(
        f"wrote {report.path} ({report.kind}, {report.size_bytes / 1e6:.1f} MB): input images (batch, 3, {h}, {w}), "
        f"outputs {', '.join(report.outputs)}; onnxruntime matches PyTorch within {report.max_abs_diff:.2g}"
    )
    return 0
