"""Where would an evidence classifier point? Fast probes on cached features, against the fixed map.

The evidence classifier of a localising interpreter (``map_source="evidence"`` or ``"pinned"``) is a
per-cell classifier on the target's frozen output of the stage before the last, so its training needs no
network pass once those features are known. This benchmark extracts them once (``--copies`` augmented
versions of every training crop, the test crops without augmentation), then trains the interpreter's own
evidence classifier (and location prior) on them for each variant and seed, and scores where its cell
scores peak with the pointing game of :mod:`amd.pointing`. A variant takes seconds instead of the minutes
of a ``distill`` step, so choices such as the loss weighting or the prior can be compared over several
seeds before a real run. The fixed average-part map is the baseline, scored in the same run; with
``--interpreter`` the evidence classifier of a distilled interpreter is scored on the same features too.

    python bench/bench_evidence_probe.py --data DIR --target T.pt [--interpreter I.pt] [--copies 6]
        [--epochs 20 [40 ...]] [--seeds 3] [--validation | --score-on DIR] [--json OUT]

Several ``--epochs`` values train every variant for each. With ``--validation`` the probes are scored on a
validation split of the training identities (:func:`amd.evaluate.validation_split`) instead of the test
crops, and trained (like the fixed map) on the other identities only, so that a setting can be chosen
without looking at the test split. ``--score-on DIR`` scores them on the test crops of another render
instead (the selection render ``choose-foreground`` uses: more crops than a validation split holds).

Variants: ``amd`` (the distillation's weighted cross-entropy, with the location prior, as ``distill``
trains it), ``no prior``, ``balanced`` (positives and negatives weigh 1/2r and 1/2(1 - r), so that each
class counts half). ``--temperatures 1 0.5 0.25`` trains every variant with each evidence temperature (the
smooth maximum (1 / T) log mean exp(T S) of the cell scores, ``distill --evidence-temperature``);
``0.25,hat=1,handbag=1`` sets some attributes or groups apart (``distill --evidence-temperatures``).

``distill`` trains the ``amd`` variant the same way before its image passes when ``evidence_cache`` is
above 0 (:mod:`amd.train.evidence_cache`).

Probes see a fixed set of augmented copies and train in large batches, so their figures differ from those
of a ``distill`` run with the same settings; compare variants with each other and with the baseline.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from amd.data.load import load_dataset  # noqa: E402
from amd.data.transforms import build_transforms  # noqa: E402
from amd.errors import AmdError  # noqa: E402
from amd.evaluate import validation_split  # noqa: E402
from amd.losses import attribute_classification_loss  # noqa: E402
from amd.models import Interpreter, load_pair, load_target  # noqa: E402
from amd.models.inputs import eval_transform  # noqa: E402
from amd.pointing import attribute_parts, fixed_maps, ground_truth, has_masks, pointing_game, pointing_groups  # noqa: E402
from amd.train.distill import evidence_temperatures, identity_positive_rates  # noqa: E402
from amd.train.evidence_cache import cell_scores, local_features  # noqa: E402

VARIANTS = ("amd", "no prior", "balanced")


def train_probe(target, m: int, feats: torch.Tensor, attrs: torch.Tensor, rates: torch.Tensor, variant: str,
                epochs: int, seed: int, lr: float = 1e-2, batch: int = 256,
                pids: np.ndarray | None = None,
                temperature: float | tuple[float, ...] = 1.0) -> Interpreter:  # fmt: skip
    """A fresh evidence interpreter whose evidence classifier (and prior) is trained on cached features."""
    torch.manual_seed(seed)
    interp = Interpreter(target, m, map_mode="localising", normalisation="softmax", map_source="evidence",
                         location_prior=variant != "no prior", evidence_temperature=temperature)  # fmt: skip
    params = list(interp.evidence.parameters())
    groups = [{"params": params}]
    if interp.location_logits is not None:
        groups.append({"params": [interp.location_logits], "weight_decay": 0.0})
    optimizer = torch.optim.Adam(groups, lr=lr, weight_decay=5e-4)
    positive = (attrs > 0).float()
    r = rates.clamp(0.02, 0.98)
    generator = torch.Generator().manual_seed(seed)
    interp.train()
    for _ in range(epochs):
        for idx in batches(len(feats), batch, pids, generator):
            logits = interp.evidence_logits(cell_scores(interp, feats[idx]))
            if variant == "balanced":
                t = positive[idx]
                weight = t * 0.5 / r + (1 - t) * 0.5 / (1 - r)
                loss = F.binary_cross_entropy_with_logits(logits, t, weight=weight)
            else:
                loss = attribute_classification_loss(logits, attrs[idx], rates)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return interp.eval()


def batches(n: int, size: int, pids: np.ndarray | None, generator: torch.Generator) -> list[torch.Tensor]:
    """One epoch of batch indices: shuffled crops, or P x 4 batches (P = size // 4 identities, 4 crops
    each, as ``distill`` samples) when ``pids`` gives each cached crop's identity."""
    order = torch.randperm(n, generator=generator)
    if pids is None:
        return [order[i : i + size] for i in range(0, n, size)]
    by_pid: dict[int, list[int]] = {}
    for i in order.tolist():
        by_pid.setdefault(int(pids[i]), []).append(i)
    chunks = [torch.tensor(v[j : j + 4]) for v in by_pid.values() for j in range(0, len(v) - 3, 4)]
    chunks = [chunks[i] for i in torch.randperm(len(chunks), generator=generator).tolist()]
    per = max(size // 4, 1)
    return [torch.cat(chunks[i : i + per]) for i in range(0, len(chunks), per)]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, required=True, help="synthetic dataset folder (with masks/)")
    parser.add_argument("--target", type=Path, required=True, help="target model file")
    parser.add_argument(
        "--interpreter", type=Path, help="an interpreter with an evidence classifier, scored too"
    )
    parser.add_argument(
        "--copies", type=int, default=6, help="augmented copies of each training crop (default 6)"
    )
    parser.add_argument(
        "--epochs", type=int, nargs="+", default=[20], help="probe epochs over the cached copies (default 20)"
    )
    parser.add_argument("--seeds", type=int, default=3, help="seeds per variant (default 3)")
    parser.add_argument("--batch", type=int, default=256, help="crops per probe step (default 256)")
    parser.add_argument(
        "--pk", action="store_true", help="batches of identities x 4 crops, as distill samples"
    )
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument(
        "--temperatures",
        nargs="+",
        default=["1"],
        help="evidence temperatures (default 1); each a number T or T,NAME=T,... with some attributes or "
        "groups set apart (as distill --evidence-temperatures), e.g. 0.25,hat=1,handbag=1",
    )
    parser.add_argument(
        "--validation",
        action="store_true",
        help="score on a validation split of the training identities, train on the others",
    )
    parser.add_argument(
        "--score-on",
        type=Path,
        help="score on the test crops of another render (with masks) instead of the test split: a selection "
        "render that neither training nor testing uses",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if not has_masks(args.data):
        raise SystemExit(
            f"{args.data}: no ground-truth masks (parts.json and masks/); render a synthetic dataset"
        )
    ds = load_dataset(args.data, "market1501")
    target, info = load_target(args.target)
    target = target.float().eval()
    size = tuple(info.input_size)
    names = ds.schema.names
    m = len(names)
    groups = pointing_groups(ds.schema)
    # Every temperature is resolved before the features are extracted, so that a bad one stops the run at once.
    resolved_temperatures = {}
    for temperature in args.temperatures:
        default, _, overrides = temperature.partition(",")
        try:
            resolved_temperatures[temperature] = evidence_temperatures(float(default), overrides, ds.schema)
        except (ValueError, AmdError) as exc:
            raise SystemExit(f"--temperatures {temperature}: {exc}") from None
    parts = attribute_parts(args.data, names)
    train = ds.train
    test = (*ds.query, *ds.gallery)
    scored_root = args.data
    if args.validation and args.score_on:
        raise SystemExit("choose --validation or --score-on, not both")
    if args.score_on:
        if not has_masks(args.score_on):
            raise SystemExit(f"{args.score_on}: no ground-truth masks (parts.json and masks/)")
        other = load_dataset(args.score_on, "market1501")
        if other.schema is None or other.schema.names != names:
            raise SystemExit(f"{args.score_on}: its attributes differ from those of {args.data}")
        test, scored_root = (*other.query, *other.gallery), args.score_on
        print(f"scored on {len(test)} test crops of {args.score_on}")
    if args.validation:
        query, gallery = validation_split(ds.train)
        if not query:
            raise SystemExit(f"{args.data}: too few training identities for a validation split")
        held = {r.pid for r in query}
        train = tuple(r for r in ds.train if r.pid not in held)
        test = (*query, *gallery)
        print(f"validation split: {len(test)} crops of {len(held)} training identities, "
              f"probes trained on the other {len({r.pid for r in train})}")  # fmt: skip

    start = time.perf_counter()
    extractor = Interpreter(target, m, map_mode="localising", map_source="evidence").eval()
    train_feats = local_features(extractor, train, build_transforms(size, train=True), args.copies)
    test_feats = local_features(extractor, test, eval_transform(size), 1)
    attrs = torch.as_tensor(np.stack([r.attributes for r in train] * args.copies), dtype=torch.float32)
    # The loss weights come from the identities the probes train on, so validation labels stay unseen.
    rates = torch.as_tensor(
        identity_positive_rates(dataclasses.replace(ds, train=train)), dtype=torch.float32
    )
    pids = np.array([r.pid for r in train] * args.copies) if args.pk else None
    cache_s = time.perf_counter() - start
    cells = tuple(test_feats.shape[2:])
    truth = ground_truth(scored_root, test, attribute_parts(scored_root, names), cells)
    print(f"features of {len(train_feats)} training copies and {len(test)} scored crops on a {cells[0]}x{cells[1]} "
          f"grid in {cache_s:.0f} s", flush=True)  # fmt: skip

    results: dict[str, dict[str, float]] = {}
    spread: dict[str, dict[str, float]] = {}
    fixed = pointing_game(fixed_maps(ground_truth(args.data, train, parts, cells)), truth, groups).as_dict()
    results["fixed map"] = fixed
    if args.interpreter:
        interp, _, _ = load_pair(args.target, args.interpreter)
        interp = interp.float().eval()
        if interp.evidence is None:
            raise SystemExit(f"{args.interpreter}: this interpreter has no evidence classifier")
        with torch.no_grad():
            results["interpreter"] = pointing_game(
                cell_scores(interp, test_feats).numpy(), truth, groups
            ).as_dict()
    settings = [(v, e, t) for v in args.variants for e in args.epochs for t in args.temperatures]
    for variant, epochs, temperature in settings:
        name = variant if len(args.epochs) == 1 else f"{variant}, {epochs} ep"
        name += "" if len(args.temperatures) == 1 else f", T {temperature}"
        resolved = resolved_temperatures[temperature]
        runs = []
        t0 = time.perf_counter()
        for seed in range(args.seeds):
            probe = train_probe(
                target, m, train_feats, attrs, rates, variant, epochs, seed, batch=args.batch, pids=pids,
                temperature=resolved,
            )
            with torch.no_grad():
                scores = cell_scores(probe, test_feats).numpy()
            runs.append(pointing_game(scores, truth, groups).as_dict())
        keys = runs[0].keys()
        results[name] = {k: float(np.mean([r[k] for r in runs])) for k in keys}
        spread[name] = {k: float(np.std([r[k] for r in runs])) for k in keys}
        print(f"{name}: {args.seeds} seed(s) in {time.perf_counter() - t0:.0f} s", flush=True)

    columns = list(results)
    print("\npointing game (mean over seeds; +- the spread where more than one)")
    print(f"{'group':<16}" + "".join(f"{c:>18}" for c in columns))
    for key in fixed:
        row = f"{key:<16}"
        for c in columns:
            sd = spread.get(c, {}).get(key)
            cell = f"{results[c][key]:.3f}" + (f" +-{sd:.3f}" if sd is not None and args.seeds > 1 else "")
            row += f"{cell:>18}"
        print(row)
    base = fixed["overall"]
    for c in columns[1:]:
        below = [k for k in fixed if k != "overall" and results[c][k] < fixed[k]]
        print(f"{c}: overall {results[c]['overall'] / base:.3f}x the fixed map; below it in "
              f"{', '.join(below) if below else 'no group'}")  # fmt: skip
    if args.json:
        args.json.write_text(
            json.dumps({"pointing": results, "spread": spread, "cache_seconds": cache_s}, indent=2)
        )
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
