"""Chips with a fixed reflectance stretch: forest green, sand bright, the same in every chip."""

from __future__ import annotations

import numpy as np

from pipeline.outputs.stretch import FIXED_STRETCH, apply_stretch, stretch_manifest

FOREST = {"red": 0.024, "green": 0.034, "blue": 0.021, "nir": 0.30, "swir22": 0.05}
SAND = {"red": 0.20, "green": 0.18, "blue": 0.15, "nir": 0.28, "swir22": 0.24}


def chip(share_forest: float, size: int = 20) -> dict[str, np.ndarray]:
    """A chip whose first ``share_forest`` of rows are forest and the rest sand."""
    n = int(round(share_forest * size))
    return {b: np.where(np.arange(size)[:, None] < n, FOREST[b], SAND[b]) * np.ones((size, size)) for b in FOREST}


def show(chip_bands, combo):
    s = FIXED_STRETCH[combo]
    return apply_stretch([chip_bands[b] for b in s.bands], s)


def test_forest_is_green_and_sand_is_bright():
    image = show(chip(0.5), "rgb")
    forest, sand = image[0, 0].astype(int), image[-1, -1].astype(int)
    assert forest[1] > forest[0] and forest[1] > forest[2]  # green dominates
    assert forest.mean() > 60  # not black
    assert sand.min() > 200  # bright
    swir = show(chip(0.5), "swir")
    assert swir[0, 0, 1] > 150 and swir[0, 0, 1] > 2 * swir[0, 0, 0]  # forest green in SWIR false colour too


def test_same_reflectance_same_colour_whatever_the_chip_holds():
    mostly_sand, mostly_forest = show(chip(0.1), "rgb"), show(chip(0.9), "rgb")
    assert (mostly_sand[0, 0] == mostly_forest[0, 0]).all()
    assert (mostly_sand[-1, -1] == mostly_forest[-1, -1]).all()


def test_nodata_is_black_and_the_stretch_is_stated():
    bands = chip(0.5)
    bands["red"][:2] = np.nan
    image = show(bands, "rgb")
    assert (image[:2] == 0).all() and image[2:].max() > 0
    stated = stretch_manifest()
    assert stated["rgb"]["bands"] == ("red", "green", "blue") and stated["rgb"]["high"] == (0.25, 0.20, 0.20)
