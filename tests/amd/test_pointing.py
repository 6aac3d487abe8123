"""Pointing game and deletion test against ground-truth parts, on hand-made maps and masks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from amd.errors import AmdError, DatasetError
from amd.pointing import (
    GroundTruth,
    attribute_parts,
    cell_coverage,
    cell_index,
    deletion_pairs,
    deletion_test,
    fixed_maps,
    ground_truth,
    hide_cells,
    peak_cell,
    pointing_game,
    pointing_groups,
    shifted_region,
    top_cells,
)
from amd.schema import load_schema


def test_cells_partition_the_crop_by_pixel_centres() -> None:
    # 10 pixels on 4 cells: centres 0.5..9.5 times 0.4 -> 0.2, 0.6, 1.0, 1.4, 1.8, 2.2, 2.6, 3.0, 3.4, 3.8
    assert cell_index(10, 4).tolist() == [0, 0, 1, 1, 1, 2, 2, 3, 3, 3]
    mask = np.zeros((8, 4), dtype=bool)
    mask[0, 0] = True  # one of the 4 pixels of cell (0, 0) on a 4 x 2 grid
    mask[7, :] = True  # half of cells (3, 0) and (3, 1)
    expected = np.zeros((4, 2))
    expected[0, 0], expected[3, 0], expected[3, 1] = 0.25, 0.5, 0.5
    np.testing.assert_allclose(cell_coverage(mask, (4, 2)), expected)


def test_peak_is_the_tied_cell_nearest_to_the_ties_centroid() -> None:
    single = np.zeros((4, 2))
    single[2, 1] = 5.0
    assert peak_cell(single) == (2, 1)
    # Three tied cells in column 0 (rows 0, 1, 2): centroid row 1 -> the middle one.
    column = np.zeros((4, 2))
    column[:3, 0] = 1.0
    column[1, 0] = 0.995  # within 1 % of the range (0..1) below the maximum: still a candidate
    assert peak_cell(column) == (1, 0)
    column[1, 0] = 0.98  # now outside: candidates rows 0 and 2, centroid row 1, equal distances -> row 0
    assert peak_cell(column) == (0, 0)
    # A constant map: every cell ties; the 4 x 2 centroid (1.5, 0.5) is equidistant from the four central
    # cells, and the first in raster order wins.
    assert peak_cell(np.ones((4, 2))) == (1, 0)


def _truth() -> GroundTruth:
    # Two crops, two attributes on a 2 x 2 grid. Attribute 0 lives in the top-left cell, attribute 1 in
    # the bottom row. Crop 1 lacks attribute 1 (it does not count there).
    cov = np.zeros((2, 2, 2, 2))
    cov[:, 0, 0, 0] = 1.0
    cov[:, 1, 1, :] = 0.5
    counts = np.array([[True, True], [True, False]])
    return GroundTruth(cov, counts, ())


def test_pointing_game_counts_hits_per_attribute_and_group() -> None:
    truth = _truth()
    maps = np.zeros((2, 2, 2, 2))
    maps[0, 0, 0, 0] = 1.0  # hit
    maps[1, 0, 1, 1] = 1.0  # miss
    maps[0, 1, 1, 0] = 1.0  # hit
    maps[1, 1, 0, 1] = 1.0  # does not count
    res = pointing_game(maps, truth, ["a", "b"])
    assert res.hits.tolist() == [1, 1] and res.trials.tolist() == [2, 1]
    assert res.as_dict() == pytest.approx({"a": 0.5, "b": 1.0, "overall": 0.75})
    pooled = pointing_game(maps, truth, ["g", "g"])
    assert pooled.groups == {"g": (2, 3)} and pooled.overall == pytest.approx(2 / 3)


def test_fixed_maps_average_coverage_where_the_attribute_counts() -> None:
    truth = _truth()
    truth.coverage[1, 0, 0, 1] = 1.0  # crop 1 also covers the top-right cell with attribute 0
    fixed = fixed_maps(truth)
    np.testing.assert_allclose(fixed[0], [[1.0, 0.5], [0.0, 0.0]])
    np.testing.assert_allclose(fixed[1], [[0.0, 0.0], [0.5, 0.5]])  # crop 1 does not count for it
    # One fixed map for every crop: attribute 0's peak (0, 0) hits both crops.
    assert pointing_game(fixed, truth, ["a", "b"]).hits.tolist() == [2, 1]


def test_ground_truth_reads_masks_and_counts_present_visible_attributes(tmp_path: Path) -> None:
    from PIL import Image

    from amd.data.records import Record

    folder = tmp_path / "masks" / "query"
    folder.mkdir(parents=True)
    mask = np.zeros((8, 4), dtype=np.uint8)
    mask[0:2, 0:2] = 3  # a hat in the top-left cell of a 4 x 2 grid
    mask[4:8, :] = 7  # lower clothing in the bottom half
    Image.fromarray(mask, mode="L").save(folder / "0001_c1s1_000001_01.png")
    rec = Record(str(tmp_path / "query" / "0001_c1s1_000001_01.jpg"), 1, 1, np.array([1, -1, 1], dtype=np.int8))
    truth = ground_truth(tmp_path, [rec], [(3,), (7,), (10,)], (4, 2))
    assert truth.counts.tolist() == [[True, False, False]]  # present + visible; absent; present but hidden
    np.testing.assert_allclose(truth.coverage[0, 0], [[1, 0], [0, 0], [0, 0], [0, 0]])
    np.testing.assert_allclose(truth.coverage[0, 1], [[0, 0], [0, 0], [1, 1], [1, 1]])


def test_market_schema_pools_colours_and_names_single_groups() -> None:
    groups = pointing_groups(load_schema("market1501"))
    assert {"hat", "backpack", "bag", "handbag", "upper colour", "lower colour", "sleeves"} <= set(groups)
    assert groups.count("upper colour") == 8 and groups.count("lower colour") == 9


def test_hide_cells_fills_exactly_the_cell_pixels_with_the_image_mean() -> None:
    images = torch.arange(2 * 3 * 8 * 4, dtype=torch.float32).reshape(2, 3, 8, 4)
    cells = np.zeros((2, 4, 2), dtype=bool)
    cells[0, 0, 0] = True  # pixels rows 0-1, cols 0-1 of image 0
    out = hide_cells(images, cells)
    mean = images[0].mean(dim=(1, 2))
    for c in range(3):
        assert torch.allclose(out[0, c, :2, :2], mean[c].expand(2, 2))
    changed = (out != images).sum().item()
    assert changed == 3 * 4 and torch.equal(out[1], images[1])
    assert top_cells(np.array([[1.0, 3.0], [3.0, 0.0]]), 2).tolist() == [[False, True], [True, False]]


def test_deletion_moves_the_distance_where_the_map_points() -> None:
    # The "model" embeds the mean of the top-left quarter: hiding it moves the distance, hiding anything
    # else cannot (the fill is the image mean, so only the quarter's own pixels matter).
    def embed(x: torch.Tensor) -> torch.Tensor:
        return x[:, :, :4, :2].mean(dim=(2, 3))

    gen = torch.Generator().manual_seed(0)
    a = torch.rand(6, 3, 8, 4, generator=gen)
    b = torch.rand(6, 3, 8, 4, generator=gen) + 1.0
    good = np.zeros((6, 4, 2))
    good[:, 0:2, 0] = 1.0  # the map marks the top-left quarter (cells (0, 0) and (1, 0))
    res = deletion_test(embed, a, b, good, good, area=0.25, seed=0)
    assert res.pairs == 6 and res.top > res.random and res.top_beats_random >= 0.5
    bad = np.zeros((6, 4, 2))
    bad[:, 2:4, 1] = 1.0  # marks the bottom-right: changes nothing
    miss = deletion_test(embed, a, b, bad, bad, area=0.25, seed=0)
    assert miss.top == pytest.approx(0.0, abs=1e-6) and miss.top_beats_random == 0.0


def test_random_region_is_the_top_region_shifted() -> None:
    rng = np.random.default_rng(0)
    cells = np.zeros((4, 2), dtype=bool)
    cells[0:2, 0] = True
    seen = set()
    for _ in range(40):
        moved = shifted_region(cells, rng)
        assert moved.sum() == 2 and not np.array_equal(moved, cells)
        # Same shape: a vertical pair of cells in one column (rows wrap around).
        col = int(np.flatnonzero(moved.any(axis=0))[0])
        rows = np.flatnonzero(moved[:, col])
        assert moved[:, 1 - col].sum() == 0 and (rows[1] - rows[0]) % 4 in (1, 3)
        seen.add(moved.tobytes())
    assert len(seen) == 7  # every distinct placement but the original
    full = np.ones((4, 2), dtype=bool)
    assert np.array_equal(shifted_region(full, rng), full)


def test_deletion_pairs_take_the_nearest_other_identity() -> None:
    d = np.array([[0.1, 0.5, 0.3], [0.2, 0.4, 0.9]])
    rows, cols = deletion_pairs(d, np.array([1, 2]), np.array([1, 2, 3]))
    assert rows.tolist() == [0, 1] and cols.tolist() == [2, 0]


class _ScriptedEvidence:
    """Stands in for an evidence interpreter: returns given (z, c) cells batch by batch, in order."""

    def __init__(self, z: np.ndarray, c: np.ndarray) -> None:
        self.z, self.c, self.seen = torch.from_numpy(z), torch.from_numpy(c), 0
        self.evidence = torch.nn.Identity()  # what tells an interpreter whose maps come from evidence

    def evidence_cells(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n = images.shape[0]
        out = self.z[self.seen : self.seen + n], self.c[self.seen : self.seen + n]
        self.seen += n
        return out


def test_choose_foreground_weights_picks_the_smallest_gamma_that_moves_a_group_onto_its_part(tmp_path) -> None:
    from amd.data.load import load_dataset
    from amd.pointing import FOREGROUND_GRID, choose_foreground_weights
    from amd.synth.writer import SynthConfig, write_dataset

    write_dataset(tmp_path, SynthConfig(train_ids=4, test_ids=6, per_id=4, cameras=2, height=64, width=32, seed=5))
    dataset = load_dataset(tmp_path, "market1501")
    schema = dataset.schema
    records = (*dataset.query, *dataset.gallery)
    names, cells = schema.names, (4, 2)
    truth = ground_truth(tmp_path, records, attribute_parts(tmp_path, names), cells)
    person = ground_truth(tmp_path, records, [tuple(range(1, 13))], cells).coverage[:, 0]
    n, m = len(records), len(names)
    g = names.index("gender")
    # Every map peaks on its part (value 5) except gender's, which peaks on a background cell (1) and
    # has 0.4 on its part. c is +1 on gender's part cell and -1 on that background cell, so gender moves
    # onto its part once 0.4 + gamma > 1 - gamma, that is from gamma 0.5 in the grid on.
    z = np.full((n, m, *cells), -1.0, dtype=np.float32)
    c = np.zeros((n, 1, *cells), dtype=np.float32)
    gender_trials = 0
    for i in range(n):
        for j in range(m):
            if truth.coverage[i, j].max() > 0:
                z[i, j].flat[np.argmax(truth.coverage[i, j])] = 5.0
        background = np.flatnonzero(person[i].ravel() == 0)
        if truth.counts[i, g] and background.size:
            gender_trials += 1
            part = np.argmax(truth.coverage[i, g])
            z[i, g] = -1.0
            z[i, g].flat[background[0]] = 1.0
            z[i, g].flat[part] = 0.4
            c[i, 0].flat[part], c[i, 0].flat[background[0]] = 1.0, -1.0
    assert gender_trials >= 2
    size = (64, 32)
    choice = choose_foreground_weights(_ScriptedEvidence(z, c), tmp_path, records, schema, size, min_hits=1,
                                       batch=7)  # fmt: skip
    assert choice.grid == FOREGROUND_GRID
    gender = choice.hits["gender"]
    assert gender[0] == choice.trials["gender"] - gender_trials  # the scripted crops miss without gamma
    first = FOREGROUND_GRID.index(0.5)
    assert gender[:first] == [gender[0]] * first
    assert gender[first:] == [choice.trials["gender"]] * (len(FOREGROUND_GRID) - first)
    assert choice.chosen["gender"] == 0.5 and choice.weights[g] == 0.5
    assert all(w == 0 for j, w in enumerate(choice.weights) if j != g)
    line = choice.table().splitlines()[list(choice.hits).index("gender") + 1].split()
    assert line[2 + first] == "1.000*" and line.count("1.000*") == 1  # scores per gamma, the chosen marked
    # A gain below the least number of hits keeps the group at 0.
    strict = choose_foreground_weights(_ScriptedEvidence(z, c), tmp_path, records, schema, size,
                                       min_hits=gender_trials + 1)  # fmt: skip
    assert strict.chosen["gender"] == 0.0 and not strict.weights.any()
    with pytest.raises(DatasetError, match="no part masks"):
        choose_foreground_weights(_ScriptedEvidence(z, c), tmp_path / "query", records, schema, size)


def test_choose_foreground_weights_refuses_maps_without_evidence_before_reading_anything(tmp_path) -> None:
    from types import SimpleNamespace

    from amd.pointing import choose_foreground_weights

    # tmp_path has no masks and there are no crops: the interpreter is refused before either is looked at.
    with pytest.raises(AmdError, match="do not come from an evidence classifier"):
        choose_foreground_weights(SimpleNamespace(evidence=None), tmp_path, [], load_schema("market1501"), (64, 32))
    with pytest.raises(DatasetError, match="no part masks"):
        choose_foreground_weights(SimpleNamespace(evidence=torch.nn.Identity()), tmp_path, [],
                                  load_schema("market1501"), (64, 32))  # fmt: skip
