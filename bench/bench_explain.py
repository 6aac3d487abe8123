"""Speed of explanations and of feature extraction, against plain baselines run in the same process.

1. Explaining one query against its top 50 (``Explainer.explain_many``: one interpreter forward per image)
   against a plain target forward of the same 51 images (decode, resize, one eval-mode forward under
   ``torch.no_grad``). Goal: at most 2x. The ratio against an optimised target forward (folded batch
   norms, channels-last) is printed too.
2. Feature extraction throughput of ``amd.features.extract`` and ``amd.embedding.TargetEmbedder``
   against a plain eval-mode batch loop over the same model (decode one by one, stack, forward under
   ``torch.no_grad``). Goal: at least 1.5x.
3. Which fraction of this machine's matrix-multiply peak (a large float32 ``torch.mm``, measured here)
   the extraction reaches, from the model's multiply-accumulate count.

    python bench/bench_explain.py [--target T.pt --interpreter I.pt] [--arch resnet18] [--size 256x128]
                                  [--n 256] [--repeats 3]

Without model files it saves an untrained ResNet-18 target and a localising interpreter with the
auxiliary classifier (weights do not change the speed). The explainer is built from the files, as the
application builds it. The crops are synthetic pedestrians rendered at
the input size into a temporary folder.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from amd.data.load import load_dataset  # noqa: E402
from amd.data.torch_dataset import read_rgb  # noqa: E402
from amd.data.transforms import build_transforms, parse_size  # noqa: E402
from amd.embedding import TargetEmbedder  # noqa: E402
from amd.explain import Explainer  # noqa: E402
from amd.features import extract  # noqa: E402
from amd.inference import inference_copy  # noqa: E402
from amd.models import Interpreter, build_target, load_target, save_interpreter, save_target  # noqa: E402
from amd.schema import load_schema  # noqa: E402


def best_time(fn: Callable[[], object], repeats: int) -> float:
    """The fastest of ``repeats`` runs after one warm-up run (the least disturbed by other processes)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def macs_per_image(model: nn.Module, size: tuple[int, int]) -> int:
    """Multiply-accumulates of convolutions and linear layers for one image."""
    total = 0

    def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
            total += output.numel() * k
        elif isinstance(module, nn.Linear):
            total += output.numel() * module.in_features

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    try:
        with torch.inference_mode():
            model(torch.zeros(1, 3, *size))
    finally:
        for h in handles:
            h.remove()
    return total


def matmul_peak(n: int = 2048, repeats: int = 5) -> float:
    """float32 GFLOP/s of an n x n x n ``torch.mm``."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    seconds = best_time(lambda: torch.mm(a, b), repeats)
    return 2 * n**3 / seconds / 1e9


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", type=Path, help="target model file (with --interpreter)")
    parser.add_argument("--interpreter", type=Path, help="interpreter file")
    parser.add_argument("--arch", default="resnet18", help="backbone without files (default resnet18)")
    parser.add_argument("--size", default="256x128", help="input size without files (default 256x128)")
    parser.add_argument("--n", type=int, default=256, help="crops for the throughput test (default 256)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench_explain_"))
    if args.target and args.interpreter:
        target_path, interpreter_path = args.target, args.interpreter
        described = f"{args.target.name} + {args.interpreter.name}"
    else:
        torch.manual_seed(0)
        schema = load_schema("market1501")
        model = build_target(args.arch).eval()
        target_path, interpreter_path = work / "target.pt", work / "interpreter.pt"
        digest = save_target(target_path, model, parse_size(args.size))
        interp = Interpreter(model, len(schema), map_mode="localising", aux_classifier=True).eval()
        save_interpreter(interpreter_path, interp, parse_size(args.size), schema, digest)
        described = f"untrained {args.arch} + localising interpreter with the auxiliary classifier"
    # The explainer as the application builds it (from the files); the baselines use the plain target.
    explainer = Explainer.from_files(target_path, interpreter_path)
    plain_target, info = load_target(target_path)
    size = tuple(info.input_size)
    print(f"models: {described}; input {size[0]}x{size[1]}; torch threads {torch.get_num_threads()}")

    from amd.synth.writer import SynthConfig, write_dataset

    folder = work / "synth"
    per_id = 8
    write_dataset(folder, SynthConfig(train_ids=max(7, -(-args.n // per_id)), test_ids=0, per_id=per_id,
                                      cameras=4, height=size[0], width=size[1], seed=0, masks=False))  # fmt: skip
    records = load_dataset(folder, "market1501").train[: args.n]
    paths = [r.path for r in records]
    transform = build_transforms(size, train=False)

    # 1. one query against its top 50
    query, top50 = paths[0], paths[1:51]

    def plain_forward(model: nn.Module, channels_last: bool = False) -> Callable[[], torch.Tensor]:
        def run() -> torch.Tensor:
            batch = torch.stack([transform(read_rgb(p)) for p in [query, *top50]])
            if channels_last:
                batch = batch.contiguous(memory_format=torch.channels_last)
            with torch.no_grad():
                return model(batch)

        return run

    t_explain = best_time(lambda: explainer.explain_many(query, top50), args.repeats)
    t_plain = best_time(plain_forward(plain_target), args.repeats)
    fast_target = inference_copy(plain_target, torch.randn(2, 3, *size))
    t_fast = best_time(plain_forward(fast_target, channels_last=True), args.repeats)
    ratio = t_explain / t_plain
    print("\n1. one query against its top 50 (51 images)")
    print(f"   explain_many          {t_explain * 1000:8.0f} ms")
    print(f"   plain target forward  {t_plain * 1000:8.0f} ms   ratio {ratio:.2f}x (goal <= 2x: "
          f"{'met' if ratio <= 2 else 'NOT met'})")  # fmt: skip
    print(f"   optimised target      {t_fast * 1000:8.0f} ms   ratio {t_explain / t_fast:.2f}x")

    # 2. throughput
    def plain_loop() -> None:
        with torch.no_grad():
            for s in range(0, len(records), args.batch_size):
                plain_target(torch.stack([transform(read_rgb(p)) for p in paths[s : s + args.batch_size]]))

    embedder = TargetEmbedder(plain_target, "bench", "-", size)
    t_loop = best_time(plain_loop, args.repeats)
    t_extract = best_time(lambda: extract(plain_target, records, size, batch_size=args.batch_size), args.repeats)
    t_embed = best_time(lambda: embedder.embed(paths, batch_size=args.batch_size), args.repeats)
    n = len(records)
    print(f"\n2. feature extraction, {n} crops, batches of {args.batch_size}")
    print(f"   plain eval loop       {n / t_loop:8.1f} crops/s")
    for name, t in (("amd.features.extract", t_extract), ("TargetEmbedder.embed", t_embed)):
        speedup = t_loop / t
        print(f"   {name:21s} {n / t:8.1f} crops/s   {speedup:.2f}x (goal >= 1.5x: "
              f"{'met' if speedup >= 1.5 else 'NOT met'})")  # fmt: skip

    # 3. share of the matrix-multiply peak
    peak = matmul_peak()
    macs = macs_per_image(plain_target, size)
    print(f"\n3. matrix-multiply peak (2048^3 float32 torch.mm): {peak:.1f} GFLOP/s")
    print(f"   target: {macs / 1e9:.2f} GMAC per crop")
    for name, t in (("plain eval loop", t_loop), ("amd.features.extract", t_extract),
                    ("TargetEmbedder.embed", t_embed)):  # fmt: skip
        achieved = 2 * macs * n / t / 1e9
        print(f"   {name:21s} {achieved:8.1f} GFLOP/s = {100 * achieved / peak:5.1f} % of the peak")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
