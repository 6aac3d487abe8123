"""Where the maps point: faithful vs localising interpreter vs fixed-map baseline vs ground-truth ceiling.

On a synthetic dataset (ground-truth part masks), for each variant: the pointing game per attribute group
and overall, the deletion test (mean change of the target distance when the top attribute's region is
hidden vs a random region of the same area, and how often the top region wins), and for the two
interpreters ADRE and X-mAP_e / X-mAP_c next to their pointing score. See :mod:`amd.pointing` for the
exact definitions.

    python bench/bench_explanations.py --data DIR --target T.pt --faithful F.pt --localising L.pt [--json OUT]
    python bench/bench_explanations.py --quick     # renders data and distils both variants here, briefly

It trains nothing unless ``--quick`` is given. ``--quick`` renders a small synthetic dataset (unless --data
is given), trains a small target (unless --target is given) and distils both interpreters for a few
epochs, so that the benchmark runs end to end in minutes; its figures show the pipeline, not what the
method reaches with real training.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from amd.data.load import load_dataset  # noqa: E402
from amd.evaluate import explanation_metrics  # noqa: E402
from amd.models import load_interpreter, load_target  # noqa: E402
from amd.pointing import has_masks, synthetic_scores  # noqa: E402

#: Groups with a goal: pointing >= 0.70 each with 16 x 8 maps, and above the fixed map.
GOAL_GROUPS = ("hat", "backpack", "bag", "handbag", "upper colour", "lower colour")
GOAL = 0.70


def quick_models(work: Path, data: Path | None, target: Path | None, epochs: int) -> tuple[Path, Path, Path, Path]:
    """Render data, train a target and distil both variants briefly (only what was not given)."""
    from amd.synth.writer import SynthConfig, write_dataset
    from amd.train.config import DistillConfig, TargetTrainConfig
    from amd.train.distill import distill
    from amd.train.target import train_target

    if data is None:
        data = work / "synth"
        print(f"quick: rendering 30 + 20 identities at 128x64 into {data}", flush=True)
        write_dataset(data, SynthConfig(train_ids=30, test_ids=20, per_id=6, cameras=4, height=128, width=64,
                                        seed=11))  # fmt: skip
    if target is None:
        target = work / "target.pt"
        print(f"quick: training a resnet18 target from scratch for {2 * epochs} epochs", flush=True)
        started = time.perf_counter()
        train_target(TargetTrainConfig(data=str(data), arch="resnet18", size=(128, 64), epochs=2 * epochs,
                                       warmup_epochs=1, eval_every=100, out=str(target), device="cpu"))  # fmt: skip
        print(f"quick: target trained in {time.perf_counter() - started:.0f} s", flush=True)
    out = []
    for mode in ("faithful", "localising"):
        path = work / f"{mode}.pt"
        print(f"quick: distilling the {mode} interpreter for {epochs} epochs", flush=True)
        started = time.perf_counter()
        # The localising variant is the shipped recipe's first step: maps from the per-cell evidence classifier.
        extra = dict(normalisation="softmax", map_source="evidence", aux_classifier=False, lr=1e-3,
                     evidence_lr_scale=10.0) if mode == "localising" else dict(lr=3e-4)  # fmt: skip
        distill(DistillConfig(data=str(data), target=str(target), epochs=epochs, warmup_epochs=1, map_mode=mode,
                              eval_every=100, out=str(path), device="cpu", **extra))  # fmt: skip
        print(f"quick: {mode} interpreter distilled in {time.perf_counter() - started:.0f} s", flush=True)
        out.append(path)
    return data, target, out[0], out[1]


def table(results: dict, explanation: dict) -> str:
    """The side-by-side table as text."""
    variants = [k for k in results if k != "grid"]
    groups = list(next(iter(results[v]["pointing"] for v in variants)))
    width = max(14, *(len(v) + 2 for v in variants))
    labels = {g: f"  {g} ({results[variants[0]]['trials'][g]})" if g in results[variants[0]]["trials"]
              else f"  {g}" for g in groups}  # fmt: skip
    first = max(20, *(len(t) + 2 for t in labels.values()))
    lines = ["pointing game (trials)".ljust(first) + "".join(v.rjust(width) for v in variants)]

    def row(label: str, values: list[str]) -> None:
        lines.append(label.ljust(first) + "".join(v.rjust(width) for v in values))

    for g in groups:
        row(labels[g], [f"{results[v]['pointing'].get(g, float('nan')):.3f}" for v in variants])
    lines.append("deletion test")
    row("  top region", [f"{results[v]['deletion']['top']:.4f}" for v in variants])
    row("  random region", [f"{results[v]['deletion']['random']:.4f}" for v in variants])
    row("  top wins", [f"{100 * results[v]['deletion']['top_beats_random']:.0f} %" for v in variants])
    lines.append("explanation")
    for key, label in (("adre", "  ADRE %"), ("x_map_e", "  X-mAP_e"), ("x_map_c", "  X-mAP_c")):
        row(label, [f"{explanation[v][key]:.3f}" if v in explanation else "-" for v in variants])
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, help="synthetic dataset folder (with masks/ and parts.json)")
    parser.add_argument("--target", type=Path, help="target model file")
    parser.add_argument("--faithful", type=Path, help="faithful interpreter file (optional)")
    parser.add_argument("--localising", type=Path, help="localising interpreter file")
    parser.add_argument("--quick", action="store_true", help="render / train / distil what is missing, briefly")
    parser.add_argument("--epochs", type=int, default=4, help="distillation epochs of --quick (default 4)")
    parser.add_argument("--work", type=Path, help="folder for --quick's data and models (default: temporary)")
    parser.add_argument("--max-pairs", type=int, default=200, help="deletion-test pairs (default 200)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = parser.parse_args()

    started = time.perf_counter()
    if args.quick:
        work = args.work or Path(tempfile.mkdtemp(prefix="bench_explanations_"))
        work.mkdir(parents=True, exist_ok=True)
        print("QUICK MODE: the interpreters are distilled here for a few epochs; the figures below show the "
              "benchmark running end to end, not what fully trained models reach.", flush=True)  # fmt: skip
        args.data, args.target, args.faithful, args.localising = quick_models(
            work, args.data, args.target, args.epochs
        )
    missing = [n for n in ("data", "target", "localising") if getattr(args, n) is None]
    if missing:
        parser.error("give " + ", ".join("--" + n for n in missing) + " (or --quick)")
    if not has_masks(args.data):
        parser.error(f"{args.data} has no masks/ and parts.json (render it with `python main.py synth`)")

    target, target_info = load_target(args.target, device=args.device)
    size = tuple(target_info.input_size)
    interpreters = {}
    for name, path in (("faithful", args.faithful), ("localising", args.localising)):
        if path is None:
            continue  # only the localising interpreter is required
        interpreters[name], info = load_interpreter(path, target, target_info.sha256, device=args.device)
        if interpreters[name].map_mode != name:
            print(f"note: {path} is a {interpreters[name].map_mode} interpreter, shown as '{name}'")
    dataset = load_dataset(args.data, "market1501")
    print(f"data {args.data}: {len(dataset.train)} training, {len(dataset.query)} query, "
          f"{len(dataset.gallery)} gallery crops; input {size[0]}x{size[1]}", flush=True)  # fmt: skip

    explanation = {}
    for name, interpreter in interpreters.items():
        explanation[name] = explanation_metrics(interpreter, dataset, size, args.device)
    results = synthetic_scores(args.data, dataset, target, interpreters, size, args.device,
                               max_pairs=args.max_pairs, reference="localising",
                               on_progress=lambda m: print(m + " ...", flush=True))  # fmt: skip
    h, w = results["grid"]
    print(f"\nmaps on a {h}x{w} grid; target mAP {explanation['localising']['target_mAP']:.3f}, "
          f"rank-1 {explanation['localising']['target_rank1']:.3f}")  # fmt: skip
    print(table(results, explanation))
    loc, fixed = results["localising"]["pointing"], results["fixed map"]["pointing"]
    beats = [g for g in GOAL_GROUPS if g in loc and loc[g] > fixed.get(g, 0.0)]
    reached = [g for g in GOAL_GROUPS if g in loc and loc[g] >= GOAL]
    print(f"\nlocalising above the fixed map in {len(beats)}/{len(GOAL_GROUPS)} goal groups ({', '.join(beats)}); "
          f">= {GOAL:.2f} in {len(reached)}/{len(GOAL_GROUPS)} ({', '.join(reached)})")  # fmt: skip
    if "faithful" in explanation:
        d_xe = explanation["localising"]["x_map_e"] - explanation["faithful"]["x_map_e"]
        d_adre = explanation["localising"]["adre"] - explanation["faithful"]["adre"]
        print(f"localising vs faithful: X-mAP_e {100 * d_xe:+.1f} points, ADRE {d_adre:+.2f} points")
    print(f"total {time.perf_counter() - started:.0f} s")
    if args.json:
        args.json.write_text(json.dumps({"synthetic": results, "explanation": explanation}, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
