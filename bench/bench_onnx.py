"""CPU feature extraction: ONNX Runtime against the folded, channels-last PyTorch copy.

Both run the same target model on the same batches of random images (the decoding of crops is left out,
it is the same for both); the figure is images per second, and the ratio ONNX Runtime / PyTorch. The
PyTorch side is what :func:`amd.features.extract` runs (batch norms folded, channels-last, inference
mode); the ONNX side is :class:`amd.onnx_export.OnnxForward` on the exported graph.

    python bench/bench_onnx.py [--backbone mobilenetv2] [--size 256x128] [--batch 32] [--batches 5]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _rate(forward, batch: torch.Tensor, batches: int) -> float:
    forward(batch)  # warm-up: both pick their kernels on the first call
    start = time.perf_counter()
    for _ in range(batches):
        forward(batch)
    return batches * batch.shape[0] / (time.perf_counter() - start)


def main() -> None:
    from amd.inference import inference_copy
    from amd.models import build_target
    from amd.onnx_export import OnnxForward, export_onnx

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backbone", default="mobilenetv2", help="target backbone (default mobilenetv2)")
    parser.add_argument("--size", default="256x128", help="input size HxW")
    parser.add_argument("--batch", type=int, default=32, help="images per forward")
    parser.add_argument("--batches", type=int, default=5, help="timed forwards of each")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="CPU threads of both")
    args = parser.parse_args()
    h, w = (int(v) for v in args.size.split("x"))
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = build_target(args.backbone).eval()
    batch = torch.randn(args.batch, 3, h, w)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "target.onnx"
        report = export_onnx(model, path, (h, w))
        ort_forward = OnnxForward(path, threads=args.threads)
        ort_rate = _rate(ort_forward, batch, args.batches)
    with torch.inference_mode():
        channels_last = batch.contiguous(memory_format=torch.channels_last)
        folded = inference_copy(model, channels_last[:2])
        torch_rate = _rate(folded, channels_last, args.batches)
    print(f"{args.backbone} at {h}x{w}, batch {args.batch}, {args.threads} threads (CPU)")
    print(f"onnx export check: max |onnxruntime - torch| = {report.max_abs_diff:.2g}")
    print(f"torch (folded, channels-last): {torch_rate:8.1f} images/s")
    print(f"onnxruntime:                   {ort_rate:8.1f} images/s")
    print(f"ratio onnxruntime / torch:     {ort_rate / torch_rate:8.2f}")


if __name__ == "__main__":
    main()
