from __future__ import annotations

import numpy as np
import pytest

from amd.visual import COLOUR_MAPS, TOP_COLOURS, blend, colourise, lookup_table, normalise_pair, top_regions


def test_lookup_tables_run_from_first_to_last_stop() -> None:
    for name in COLOUR_MAPS:
        table = lookup_table(name)
        assert table.shape == (256, 3) and table.dtype == np.uint8
    inferno = lookup_table("inferno")
    assert tuple(inferno[0]) == (0, 0, 5) and tuple(inferno[-1]) == (252, 255, 163)
    with pytest.raises(ValueError, match="unknown colour map"):
        lookup_table("rainbow")


def test_pair_normalisation_keeps_relative_brightness() -> None:
    a, b = np.full((2, 2), 2.0), np.array([[1.0, 3.0], [1.0, 1.0]])
    na, nb = normalise_pair(a, b)
    np.testing.assert_allclose(na, 0.5)
    np.testing.assert_allclose(nb, [[0.0, 1.0], [0.0, 0.0]])
    za, zb = normalise_pair(np.ones((2, 2)), np.ones((2, 2)))
    assert za.max() == 0 and zb.max() == 0


def test_blend_is_opaque_only_where_the_map_is_hot() -> None:
    image = np.full((4, 2, 3), 100, dtype=np.uint8)
    m = np.zeros((4, 2))
    m[0, 0] = 1.0
    out = blend(image, m, opacity=1.0, name="inferno")
    assert tuple(out[0, 0]) == tuple(colourise(np.ones((1, 1)), "inferno")[0, 0])  # full opacity at the peak
    # Cold pixels: 25 % of the opacity, towards the coldest colour (0, 0, 5).
    assert tuple(out[1, 1]) == (75, 75, 76)
    with pytest.raises(ValueError, match="map of shape"):
        blend(image, np.zeros((2, 2)))


def test_top_regions_tint_each_maps_strongest_part() -> None:
    image = np.zeros((10, 10, 3), dtype=np.uint8)
    first = np.zeros((10, 10))
    first[:3, :] = 1.0  # top rows
    second = np.zeros((10, 10))
    second[-3:, :] = 1.0  # bottom rows
    out = top_regions(image, [first, second], opacity=1.0, quantile=0.75)
    assert tuple(out[1, 5]) == TOP_COLOURS[0]
    assert tuple(out[8, 5]) == TOP_COLOURS[1]
    assert tuple(out[5, 5]) == (0, 0, 0)
