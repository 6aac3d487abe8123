"""Do the maps point at the right place? Scoring attention maps against the synthetic ground-truth parts.

The synthetic pedestrians (:mod:`amd.synth`) come with a part label map per crop
(``masks/<folder>/<stem>.png``, uint8 part ids) and ``parts.json`` saying which parts show each attribute.
Two tests use them:

**Pointing game.** Maps live on the model's grid of h x w cells (16 x 8 for a 256 x 128 input). The crop
(H x W pixels, the mask's size) is divided into the same grid: pixel (r, c) belongs to cell
(floor((r + 0.5) * h / H), floor((c + 0.5) * w / W)), so the cells' regions partition the crop (the crop
is stretched to the input size, so the proportions are the same as on the input). For one map, the
*peak* is tie-robust: the cells whose value is within 1 % of the map's range below its maximum
(value >= max - 0.01 * (max - min); every cell for a constant map) are the candidates, and the peak is
the candidate nearest to their centroid (in cell units; equal distances go to the first in raster
order). The map *hits* when the peak cell's region holds at least one pixel of one of the attribute's
parts. A (crop, attribute) trial counts when the crop's identity has the attribute (label +1) and at
least one pixel of its parts is visible. Scores are hits / trials per attribute, pooled per group
(hat, backpack, bag, handbag, hair, sleeves, lower type, clothes, gender, upper colour, lower colour: the
colour attributes pool by colour group), and "overall" is the mean over the groups, each group counting
once.

**Deletion test.** For a pair (a, b) and the attribute with the largest share, the ``area`` fraction of
cells where that attribute's map is highest is hidden in both crops (filled with each image's mean
colour, in the normalised input space); the change |d' - d| of the target distance is compared with
hiding a random region of the same area and shape: the same cells moved by a random cyclic shift
(rows and columns wrap around; the shift is drawn among those that do not give back the same cells).
Scattered random cells would cut across many parts at once and make an unfair control; a shifted copy
differs from the top region only in where it lies. A map that marks where the distance comes from moves
it more.

Two references put the interpreters' scores in context, both at the model's map resolution:
the *fixed-map baseline* (for each attribute, the average over the training crops that count for it of the
fraction of each cell covered by the attribute's parts: one map for every image) and the *ground-truth
ceiling* (that fraction for the crop itself; on a crop that lacks the attribute it is zero everywhere, and
the deletion test then hides the first cells in raster order, the top of the crop).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from amd.data.records import Dataset, Record
from amd.errors import AmdError, DatasetError
from amd.evaluate import ids_and_cameras, interpreter_features
from amd.inference import inference_copy
from amd.metrics import euclidean_distances
from amd.models.inputs import eval_transform, load_batch
from amd.schema import AttributeSchema

MANIFEST = "parts.json"
MASKS = "masks"
#: Candidates of the tie-robust peak: within this fraction of the map's range below its maximum.
PEAK_TOLERANCE = 0.01
#: Schema groups whose attributes are pooled into one pointing group; other attributes are their own group.
POOLED_GROUPS = ("upper colour", "lower colour")
#: Readable pointing-group names of single attributes.
GROUP_NAMES = {"up": "sleeves", "down": "lower type"}


def has_masks(root: str | Path) -> bool:
    """True when ``root`` holds synthetic ground truth (``parts.json`` and ``masks/``)."""
    root = Path(root)
    return (root / MANIFEST).is_file() and (root / MASKS).is_dir()


def attribute_parts(root: str | Path, names: Sequence[str]) -> list[tuple[int, ...]]:
    """For each attribute in ``names``, the part ids that show it (from ``parts.json``).

    Raises:
        DatasetError: No readable manifest, or an attribute it does not list.
    """
    path = Path(root) / MANIFEST
    try:
        listed = json.loads(path.read_text(encoding="utf-8"))["attributes"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DatasetError(f"{path}: cannot read the part manifest ({exc})") from None
    missing = [n for n in names if n not in listed]
    if missing:
        raise DatasetError(f"{path}: no parts listed for attribute(s) {missing}")
    return [tuple(int(p) for p in listed[n]["parts"]) for n in names]


def mask_path(root: str | Path, record: Record) -> Path:
    """Where the part label map of a crop lives: ``root/masks/<crop's folder>/<crop's stem>.png``."""
    path = Path(record.path)
    return Path(root) / MASKS / path.parent.name / (path.stem + ".png")


def load_mask(path: str | Path) -> np.ndarray:
    """A part label map, uint8 (H, W) of part ids.

    Raises:
        DatasetError: The file is missing or unreadable.
    """
    try:
        with Image.open(path) as img:
            if img.mode not in ("P", "L"):
                raise ValueError(f"mode {img.mode}, expected a palette or grey label map")
            return np.asarray(img, dtype=np.uint8).copy()
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: cannot read the part mask ({exc})") from None


def pointing_groups(schema: AttributeSchema) -> list[str]:
    """The pointing group of each attribute, in schema order."""
    out = []
    for a in schema:
        out.append(a.group if a.group in POOLED_GROUPS else GROUP_NAMES.get(a.name, a.name))
    return out


# ------------------------------------------------------------------------------------------ geometry


def cell_index(length: int, cells: int) -> np.ndarray:
    """(length,) cell of each pixel along one axis: floor((i + 0.5) * cells / length)."""
    return np.minimum(((np.arange(length) + 0.5) * cells / length).astype(np.int64), cells - 1)


def cell_coverage(mask: np.ndarray, cells: tuple[int, int]) -> np.ndarray:
    """Fraction of each cell's pixels that are in ``mask``.

    Args:
        mask: (H, W) bool.
        cells: (h, w) grid.

    Returns:
        (h, w) float64 in [0, 1]; a cell with no pixel (a grid finer than the crop) gets 0.
    """
    h, w = cells
    rows = cell_index(mask.shape[0], h)
    cols = cell_index(mask.shape[1], w)
    flat = rows[:, None] * w + cols[None, :]
    hits = np.bincount(flat.ravel(), weights=mask.ravel().astype(np.float64), minlength=h * w)
    sizes = np.bincount(flat.ravel(), minlength=h * w)
    return np.divide(hits, sizes, out=np.zeros(h * w), where=sizes > 0).reshape(h, w)


def peak_cell(values: np.ndarray, tolerance: float = PEAK_TOLERANCE) -> tuple[int, int]:
    """The tie-robust peak of a map (see the module docstring).

    Args:
        values: (h, w) map.
        tolerance: Fraction of the map's range below its maximum within which cells tie.

    Returns:
        (row, column) of the peak cell.
    """
    v = np.asarray(values, dtype=np.float64)
    hi, lo = float(v.max()), float(v.min())
    rows, cols = np.nonzero(v >= hi - tolerance * (hi - lo))
    cy, cx = rows.mean(), cols.mean()
    k = int(np.argmin((rows - cy) ** 2 + (cols - cx) ** 2))  # argmin keeps the first (raster order)
    return int(rows[k]), int(cols[k])


# ------------------------------------------------------------------------------------------ pointing game


@dataclass(frozen=True)
class PointingResult:
    """Pointing-game scores.

    Attributes:
        hits: (M,) hits per attribute.
        trials: (M,) counted (crop, attribute) trials per attribute.
        groups: Group name -> (hits, trials), in order of first appearance in the schema.
    """

    hits: np.ndarray
    trials: np.ndarray
    groups: dict[str, tuple[int, int]]

    def group_scores(self) -> dict[str, float]:
        """Group -> hits / trials (groups without trials are left out)."""
        return {g: h / n for g, (h, n) in self.groups.items() if n > 0}

    @property
    def overall(self) -> float:
        """Mean of the group scores (NaN without any trial)."""
        scores = list(self.group_scores().values())
        return float(np.mean(scores)) if scores else float("nan")

    def as_dict(self) -> dict[str, float]:
        return {**self.group_scores(), "overall": self.overall}


@dataclass(frozen=True)
class GroundTruth:
    """What the pointing game needs of N crops: the part coverage of each attribute and the labels.

    Attributes:
        coverage: (N, M, h, w) fraction of each cell covered by each attribute's parts.
        counts: (N, M) bool, True where the trial counts (attribute present and its parts visible).
        masks: The N part label maps (H_n, W_n).
    """

    coverage: np.ndarray
    counts: np.ndarray
    masks: tuple[np.ndarray, ...]


def ground_truth(
    root: str | Path,
    records: Sequence[Record],
    parts: Sequence[tuple[int, ...]],
    cells: tuple[int, int],
) -> GroundTruth:
    """Read the masks of ``records`` and measure each attribute's parts on the grid ``cells``."""
    masks = tuple(load_mask(mask_path(root, r)) for r in records)
    n, m = len(records), len(parts)
    coverage = np.zeros((n, m, *cells))
    counts = np.zeros((n, m), dtype=bool)
    lookup = [np.isin(np.arange(256), p) for p in parts]
    for i, (rec, mask) in enumerate(zip(records, masks, strict=True)):
        for j in range(m):
            on = lookup[j][mask]
            if on.any():
                coverage[i, j] = cell_coverage(on, cells)
                counts[i, j] = rec.attributes[j] > 0
    return GroundTruth(coverage, counts, masks)


def pointing_game(
    maps: np.ndarray, truth: GroundTruth, groups: Sequence[str], tolerance: float = PEAK_TOLERANCE
) -> PointingResult:
    """Score maps against the ground truth.

    Args:
        maps: (N, M, h, w) maps on the model's grid, or (M, h, w) one map per attribute for every crop
            (the fixed-map baseline).
        truth: From :func:`ground_truth` on the same grid.
        groups: (M,) pointing group of each attribute.
        tolerance: See :func:`peak_cell`.
    """
    n, m = truth.counts.shape
    hits = np.zeros(m, dtype=np.int64)
    peaks = [peak_cell(maps[j], tolerance) for j in range(m)] if maps.ndim == 3 else None
    for i, j in zip(*np.nonzero(truth.counts), strict=True):
        r, c = peaks[j] if peaks is not None else peak_cell(maps[i, j], tolerance)
        hits[j] += bool(truth.coverage[i, j, r, c] > 0)
    trials = truth.counts.sum(axis=0).astype(np.int64)
    pooled: dict[str, tuple[int, int]] = {}
    for j, g in enumerate(groups):
        h0, n0 = pooled.get(g, (0, 0))
        pooled[g] = (h0 + int(hits[j]), n0 + int(trials[j]))
    return PointingResult(hits, trials, pooled)


def fixed_maps(truth: GroundTruth) -> np.ndarray:
    """The fixed-map baseline: per attribute, the mean coverage over the crops where it counts.

    Returns:
        (M, h, w); zeros for an attribute that never counts.
    """
    weights = truth.counts.astype(np.float64)
    total = weights.sum(axis=0)
    summed = np.einsum("nm,nmhw->mhw", weights, truth.coverage)
    return np.divide(summed, total[:, None, None], out=np.zeros_like(summed), where=total[:, None, None] > 0)


# ------------------------------------------------------------------------------------------ deletion test


@dataclass(frozen=True)
class DeletionResult:
    """Deletion test over P pairs.

    Attributes:
        top: Mean |d' - d| after hiding the top attribute's highest-map cells.
        random: Mean |d' - d| after hiding the same region shifted to a random place.
        top_beats_random: Fraction of pairs where hiding the top region moved the distance more.
        pairs: P.
        area: Fraction of the cells hidden.
    """

    top: float
    random: float
    top_beats_random: float
    pairs: int
    area: float

    def as_dict(self) -> dict[str, float]:
        return {"top": self.top, "random": self.random, "top_beats_random": self.top_beats_random,
                "pairs": self.pairs, "area": self.area}  # fmt: skip


def top_cells(values: np.ndarray, count: int) -> np.ndarray:
    """(h, w) bool: the ``count`` cells of highest value (equal values keep raster order)."""
    flat = np.asarray(values, dtype=np.float64).ravel()
    keep = np.zeros(flat.size, dtype=bool)
    keep[np.argsort(-flat, kind="stable")[:count]] = True
    return keep.reshape(values.shape)


def shifted_region(cells: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The region ``cells`` (h, w) bool moved by a random cyclic shift that does not give it back unchanged.

    A region invariant under every shift (nothing or everything) is returned as it is.
    """
    h, w = cells.shape
    shifts = [(dy, dx) for dy in range(h) for dx in range(w)
              if (dy or dx) and not np.array_equal(np.roll(cells, (dy, dx), axis=(0, 1)), cells)]  # fmt: skip
    if not shifts:
        return cells.copy()
    dy, dx = shifts[int(rng.integers(len(shifts)))]
    return np.roll(cells, (dy, dx), axis=(0, 1))


def hide_cells(images: torch.Tensor, cells: np.ndarray) -> torch.Tensor:
    """Fill the pixels of the chosen cells with each image's mean colour.

    Args:
        images: (B, 3, H, W) normalised input batch.
        cells: (B, h, w) bool cells to hide, on the input's grid (see the module docstring).

    Returns:
        A new (B, 3, H, W) tensor.
    """
    b, _, height, width = images.shape
    rows = torch.as_tensor(cell_index(height, cells.shape[1]), device=images.device)
    cols = torch.as_tensor(cell_index(width, cells.shape[2]), device=images.device)
    grid = torch.as_tensor(cells, device=images.device)
    pixels = grid[:, rows][:, :, cols]  # (B, H, W)
    mean = images.mean(dim=(2, 3), keepdim=True).expand_as(images)
    return torch.where(pixels[:, None], mean, images)


@torch.inference_mode()
def deletion_test(
    embed: Callable[[torch.Tensor], torch.Tensor],
    images_a: torch.Tensor,
    images_b: torch.Tensor,
    maps_a: np.ndarray,
    maps_b: np.ndarray,
    area: float = 0.125,
    seed: int = 0,
    batch_size: int = 16,
) -> DeletionResult:
    """Hide the top attribute's region in both crops of each pair versus a random region of the same area.

    Args:
        embed: Target model: images (B, 3, H, W) -> embeddings (B, D).
        images_a: (P, 3, H, W) first crops, normalised.
        images_b: (P, 3, H, W) second crops.
        maps_a: (P, h, w) the top attribute's map on each first crop (model grid).
        maps_b: (P, h, w) the same on each second crop.
        area: Fraction of the cells hidden (at least one cell).
        seed: Seed of the random regions.
        batch_size: Pairs per forward (each forward runs 6 images per pair).
    """
    p = images_a.shape[0]
    if p == 0:
        return DeletionResult(float("nan"), float("nan"), float("nan"), 0, area)
    h, w = maps_a.shape[1:]
    count = max(1, round(area * h * w))
    rng = np.random.default_rng(seed)

    top_a = np.stack([top_cells(m, count) for m in maps_a])
    top_b = np.stack([top_cells(m, count) for m in maps_b])
    rand_a = np.stack([shifted_region(t, rng) for t in top_a])
    rand_b = np.stack([shifted_region(t, rng) for t in top_b])
    changes: list[np.ndarray] = []
    for s in range(0, p, batch_size):
        sl = slice(s, min(s + batch_size, p))
        a, b = images_a[sl], images_b[sl]
        # One forward for the six versions of the slice: originals, top regions hidden, random hidden.
        batch = torch.cat([a, b, hide_cells(a, top_a[sl]), hide_cells(b, top_b[sl]),
                           hide_cells(a, rand_a[sl]), hide_cells(b, rand_b[sl])])  # fmt: skip
        f = embed(batch.contiguous(memory_format=torch.channels_last)).double().reshape(6, len(a), -1)
        d = torch.linalg.norm(f[0::2] - f[1::2], dim=2)  # (3, n): original, top hidden, random hidden
        changes.append((d[1:] - d[0]).abs().cpu().numpy())
    top, rand = np.concatenate(changes, axis=1)
    return DeletionResult(float(top.mean()), float(rand.mean()), float((top > rand).mean()), p, area)


# ------------------------------------------------------------------------------------------ the benchmark


def deletion_pairs(target_distances: np.ndarray, q_pids: np.ndarray, g_pids: np.ndarray,
                   limit: int = 200) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Each query with its nearest gallery crop of another identity (the look-alike an analyst checks).

    Args:
        target_distances: (Q, G).
        q_pids: (Q,).
        g_pids: (G,).
        limit: At most this many pairs (the first queries).

    Returns:
        (query indices (P,), gallery indices (P,)).
    """
    d = np.where(q_pids[:, None] == g_pids[None, :], np.inf, target_distances)
    rows = np.flatnonzero(np.isfinite(d).any(axis=1))[:limit]
    return rows, np.argmin(d[rows], axis=1)


def synthetic_scores(
    root: str | Path,
    dataset: Dataset,
    target: torch.nn.Module,
    interpreters: Mapping[str, Any],
    size: tuple[int, int],
    device: torch.device | str = "cpu",
    workers: int = 0,
    max_pairs: int = 200,
    area: float = 0.125,
    reference: str | None = None,
    on_progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Pointing game and deletion test for interpreters, the fixed-map baseline and the ground-truth ceiling.

    Args:
        root: The synthetic dataset folder (with ``masks/`` and ``parts.json``).
        dataset: The dataset loaded from ``root``.
        target: The target model shared by the interpreters.
        interpreters: Name -> interpreter; they must have the same map grid.
        size: Input size (H, W).
        device: Where the models run.
        workers: Decoding processes.
        max_pairs: Deletion pairs (each query with its nearest other identity).
        area: Fraction of cells hidden in the deletion test.
        reference: Interpreter whose top attribute per pair the baseline and the ceiling use for the
            deletion test (they have no shares of their own); default the last one given.
        on_progress: Receives a short message before each stage.

    Returns:
        ``{variant: {"pointing": {group: score, ..., "overall"}, "deletion": {...}}}`` for each
        interpreter and for ``"fixed map"`` and ``"ground truth"``; ``"grid"``: [h, w].
    """
    say = on_progress or (lambda message: None)
    if dataset.schema is None:
        raise DatasetError(f"{root}: the pointing game needs attribute labels")
    if not interpreters:
        raise ValueError("give at least one interpreter")
    names = dataset.schema.names
    parts = attribute_parts(root, names)
    groups = pointing_groups(dataset.schema)
    test = (*dataset.query, *dataset.gallery)
    nq = len(dataset.query)

    variants: dict[str, np.ndarray] = {}
    shares: dict[str, np.ndarray] = {}
    embeddings = None
    rows = cols = None
    for name, interpreter in interpreters.items():
        say(f"maps of '{name}' on {len(test)} test crops")
        feats = interpreter_features(interpreter, test, size, device, workers, with_maps=True)
        variants[name] = feats.maps
        if embeddings is None:
            embeddings = feats.embedding
            qp, _ = ids_and_cameras(dataset.query)
            gp, _ = ids_and_cameras(dataset.gallery)
            rows, cols = deletion_pairs(euclidean_distances(embeddings[:nq], embeddings[nq:]), qp, gp, max_pairs)
        a, b = feats.attribute_embeddings[rows], feats.attribute_embeddings[nq + cols]
        shares[name] = np.linalg.norm(a - b, axis=2)  # (P, M): only the arg-max is used
    cells = tuple(next(iter(variants.values())).shape[2:])
    if any(v.shape[2:] != cells for v in variants.values()):
        raise ValueError("the interpreters' maps are on different grids")

    say("reading the ground-truth masks")
    truth = ground_truth(root, test, parts, cells)
    train_truth = ground_truth(root, dataset.train, parts, cells)
    variants["fixed map"] = fixed_maps(train_truth)
    variants["ground truth"] = truth.coverage
    ref = reference if reference is not None else list(interpreters)[-1]
    shares["fixed map"] = shares["ground truth"] = shares[ref]

    say(f"deletion test on {len(rows)} pairs")
    transform = eval_transform(size)
    images_a, _ = load_batch([test[i].path for i in rows], transform)
    images_b, _ = load_batch([test[nq + j].path for j in cols], transform)
    images_a, images_b = images_a.to(device), images_b.to(device)
    fast_target = inference_copy(target, images_a[:2])
    out: dict[str, Any] = {"grid": list(cells)}
    for name, maps in variants.items():
        point = pointing_game(maps, truth, groups)
        top = np.argmax(shares[name], axis=1)
        if maps.ndim == 3:
            ma, mb = maps[top], maps[top]
        else:
            ma, mb = maps[rows, top], maps[nq + cols, top]
        deletion = deletion_test(fast_target, images_a, images_b, ma, mb, area=area)
        out[name] = {"pointing": point.as_dict(), "deletion": deletion.as_dict(),
                     "trials": {g: n for g, (_, n) in point.groups.items()}}  # fmt: skip
    return out


# ------------------------------------------------------------------------------------------ foreground weights

#: Foreground weights gamma tried by :func:`choose_foreground_weights`.
FOREGROUND_GRID: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0)


@dataclass(frozen=True)
class ForegroundChoice:
    """Foreground weights chosen per pointing group (see :func:`choose_foreground_weights`).

    Attributes:
        weights: (M,) gamma of each attribute (its group's).
        grid: The values tried.
        hits: Group -> hits for each value of ``grid``.
        trials: Group -> counted trials.
        chosen: Group -> the chosen gamma.
    """

    weights: np.ndarray
    grid: tuple[float, ...]
    hits: dict[str, list[int]]
    trials: dict[str, int]
    chosen: dict[str, float]

    def table(self) -> str:
        """The pointing score of every group for every value tried, the chosen one marked with ``*``."""
        head = f"{'group':14s} {'trials':>6s} " + " ".join(f"{g:>7g}" for g in self.grid)
        lines = [head]
        for group, hits in self.hits.items():
            n = self.trials[group]
            marks = ["*" if g == self.chosen[group] else " " for g in self.grid]
            cells = [(f"{h / n:.3f}{mark}" if n else "-").rjust(7) for h, mark in zip(hits, marks, strict=True)]
            lines.append(f"{group:14s} {n:6d} " + " ".join(cells))
        return "\n".join(lines)


def require_evidence_maps(interpreter: Any, source: str | None = None) -> None:
    """Refuse an interpreter whose maps do not come from an evidence classifier (foreground weights lean
    only such maps); ``source`` (its file) opens the message when given.

    Raises:
        AmdError: No evidence classifier.
    """
    if getattr(interpreter, "evidence", None) is None:
        whose = f"{source}: its maps" if source else "this interpreter's maps"
        raise AmdError(
            f"{whose} do not come from an evidence classifier (distil with --map-source evidence or pinned); "
            "foreground weights lean only such maps"
        )


def choose_foreground_weights(
    interpreter: Any,
    root: str | Path,
    records: Sequence[Record],
    schema: AttributeSchema,
    size: tuple[int, int],
    device: torch.device | str = "cpu",
    grid: Sequence[float] = FOREGROUND_GRID,
    min_gain: float = 0.01,
    min_hits: int = 5,
    batch: int = 64,
    on_progress: Callable[[str], None] | None = None,
) -> ForegroundChoice:
    """Choose an evidence interpreter's foreground weights on synthetic crops with part masks.

    For every value gamma of ``grid`` and every pointing group, count the pointing-game hits of maps leaned
    towards the target's pooling by gamma (:class:`amd.models.Interpreter`'s ``foreground_weights``). A group
    keeps 0 unless some gamma gains at least ``min_hits`` hits and ``min_gain`` of its trials over 0; then it
    gets the smallest gamma with the most hits. The crops should be a render that neither the models' training
    nor their test used (a third seed), so that the choice does not flatter either.

    Args:
        interpreter: An interpreter whose maps come from evidence (``map_source`` ``"evidence"``,
            ``"head+evidence"`` or ``"pinned"``).
        root: The synthetic dataset folder (``masks/`` and ``parts.json``).
        records: Its crops to score.
        schema: The attribute schema (the interpreter's order).
        size: Input size (H, W).
        device: Where the model runs.
        grid: The values tried (0 among them).
        min_gain: Least gain, as a fraction of a group's trials, for a non-zero choice.
        min_hits: Least gain in hits for a non-zero choice.
        batch: Crops per forward.
        on_progress: Receives a short message before each stage.

    Raises:
        DatasetError: No masks under ``root``, or no crop to score.
        AmdError: The interpreter's maps do not come from evidence.
    """
    say = on_progress or (lambda message: None)
    require_evidence_maps(interpreter)
    values = tuple(float(g) for g in grid)
    if 0.0 not in values or any(g < 0 for g in values):
        raise ValueError("the grid must hold 0 and no negative value")
    if not has_masks(root):
        raise DatasetError(f"{root}: no part masks (parts.json and masks/); render one with `main.py synth`")
    if not records:
        raise DatasetError(f"{root}: no crops to choose foreground weights on")
    names = schema.names
    groups = pointing_groups(schema)
    parts = attribute_parts(root, names)
    transform = eval_transform(size)
    say(f"evidence of {len(records)} crops")
    zs, cs = [], []
    for i in range(0, len(records), batch):
        images, _ = load_batch([r.path for r in records[i : i + batch]], transform)
        z, c = interpreter.evidence_cells(images.to(device))
        zs.append(z.cpu().numpy())
        cs.append(c.cpu().numpy())
    z, c = np.concatenate(zs), np.concatenate(cs)
    say("reading the ground-truth masks")
    truth = ground_truth(root, records, parts, tuple(z.shape[2:]))
    hits: dict[str, list[int]] = {}
    trials: dict[str, int] = {}
    for gamma in values:
        result = pointing_game(z + gamma * c if gamma else z, truth, groups)
        for group, (h, n) in result.groups.items():
            hits.setdefault(group, []).append(h)
            trials[group] = n
    chosen: dict[str, float] = {}
    for group, counts in hits.items():
        best = max(counts)
        gain = best - counts[values.index(0.0)]
        enough = gain >= min_hits and gain >= min_gain * trials[group]
        chosen[group] = min(g for g, h in zip(values, counts, strict=True) if h == best) if enough else 0.0
    weights = np.array([chosen[g] for g in groups], dtype=np.float64)
    return ForegroundChoice(weights, values, hits, trials, chosen)
