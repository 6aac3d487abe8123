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


def test_even_share_text_and_dashed_line() -> None:
    from PIL import Image, ImageDraw

    from amd.visual import EVEN_COLOUR, dashed_vline, even_share_text

    assert even_share_text(26) == "even share 1/26 = 3.8%"
    assert even_share_text(4, space=" ") == "even share 1/4 = 25.0 %"
    assert even_share_text(0) == "even share"
    image = Image.new("RGB", (5, 20), "white")
    dashed_vline(ImageDraw.Draw(image), 2, 0, 19, dash=4)
    column = np.all(np.asarray(image)[:, 2] == EVEN_COLOUR, axis=1)
    # Dashes of 4 pixels, gaps of 4: rows 0-3, 8-11, 16-19; nothing in the other columns.
    assert np.flatnonzero(column).tolist() == [0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19]
    assert np.asarray(image)[:, [0, 1, 3, 4]].min() == 255
