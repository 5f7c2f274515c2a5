"""The change test's compiled passes (per-pixel medians, per-look flags) and the scars' labelled
reductions: the very numbers of the numpy and scipy expressions they replace."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import ndimage

from pipeline.change import MIN_SPREAD, ChangeParams, flag_looks, hazy, mining_surface
from pipeline.medians import nanmedians
from pipeline.scars import _label_extremes


def _reference(values: np.ndarray, keep: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(np.where(keep, values, np.nan), axis=0)


@pytest.mark.parametrize("looks", [1, 2, 3, 8, 9, 24])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_medians_are_bit_for_bit_nanmedian(looks, dtype):
    rng = np.random.default_rng(looks)
    layers = [rng.standard_normal((looks, 40, 30)).astype(dtype) for _ in range(3)]
    for values in layers:
        values[rng.random(values.shape) < 0.05] = np.nan      # nodata inside kept looks
    layers[2][:, 7, 7] = 1.5                                  # ties
    keep = rng.random(layers[0].shape) < 0.6
    keep[:, :5, :5] = False                                    # pixels with no kept look: NaN
    got = nanmedians(layers, keep)
    for values, median in zip(layers, got):
        assert median.dtype == dtype and median.shape == (40, 30)
        np.testing.assert_array_equal(median, _reference(values, keep))
        assert np.isnan(median[:5, :5]).all()


def test_median_of_an_even_count_is_the_mean_of_the_middle_two():
    values = np.array([[4.0], [1.0], [3.0], [2.0]], np.float32)[:, :, None]
    (median,) = nanmedians([values], np.ones_like(values, bool))
    assert median[0, 0] == 2.5


def test_non_contiguous_blocks_and_a_mismatched_mask():
    values = np.arange(2 * 6 * 8, dtype=np.float32).reshape(2, 6, 8)[:, ::2, 1::2]   # a strided view
    keep = np.ones(values.shape, bool)
    (median,) = nanmedians([values], keep)
    np.testing.assert_array_equal(median, _reference(values, keep))
    with pytest.raises(ValueError, match="one shape"):
        nanmedians([values], keep[:, :1])


def _numpy_flags(ndvi, nbr, mndwi, blue, red, nir, swir16, base, mon, base_ndvi, base_nbr, base_mndwi, base_blue,
                 base_red, base_swir16, deviation, params, nbr_deviation):
    """The change test's flags written as numpy expressions over whole (time, y, x) arrays."""
    mon = mon & ~hazy(blue, red, swir16, ndvi, mndwi, base_blue, base_red, base_swir16)
    spread = np.fmax(np.nan_to_num(1.4826 * deviation, nan=MIN_SPREAD), MIN_SPREAD)
    nbr_spread = np.fmax(np.nan_to_num(1.4826 * nbr_deviation, nan=MIN_SPREAD), MIN_SPREAD)
    n_base = base.sum(axis=0)
    forest = (n_base > 0) & (base_ndvi >= params.forest_ndvi_min) & (base_mndwi < 0)
    water = (n_base > 0) & (base_mndwi > 0)
    with np.errstate(invalid="ignore"):
        seen_water = np.where(base, mndwi, -np.inf).max(axis=0) > 0
        vegetated = (n_base > 0) & (base_ndvi >= params.vegetated_ndvi_min) & ~seen_water
        threshold = np.maximum(params.ndvi_drop_min, params.drop_sigma * spread)
        dropped = mon & (base_ndvi - ndvi >= threshold)
        grassed = mon & (base_ndvi - ndvi >= threshold * np.float32(params.grass_ndvi_share))
        nbr_fall = base_nbr - nbr
        by_forest = forest & ((dropped & (nbr_fall >= params.nbr_drop_min))
                              | (grassed & (nbr_fall >= np.maximum(params.grass_nbr_drop_min,
                                                                    params.drop_sigma * nbr_spread))))
    by_surface = dropped & vegetated & mining_surface(ndvi, mndwi, blue, red, nir, swir16)
    return mon, (by_forest | by_surface, by_forest, by_surface, forest, water, seen_water & ~forest, n_base)


@pytest.mark.parametrize("looks", [2, 5, 9, 24])
def test_flag_looks_is_the_numpy_rule_exactly(looks):
    """The compiled pass gives the booleans of the numpy expressions, also at float32 ties with
    the thresholds (inputs on a 0.05 grid: NDVI drops of exactly 0.2, MNDWI of exactly 0) and
    with NaN in kept looks."""
    rng = np.random.default_rng(looks)

    def grid(lo, hi, step, shape=(looks, 30, 40)):
        return (np.round(rng.uniform(lo, hi, shape) / step) * step).astype(np.float32)

    ndvi, nbr, mndwi = grid(-0.2, 0.95, 0.05), grid(-0.3, 0.8, 0.05), grid(-0.6, 0.4, 0.05)
    blue, red, nir, swir16 = (grid(0, 0.4, 0.01) for _ in range(4))
    for values in (ndvi, nbr, mndwi, blue, swir16):
        values[rng.random(values.shape) < 0.02] = np.nan
    is_base = np.arange(looks) < max(1, looks // 3)
    clear = rng.random(ndvi.shape) < 0.85
    base, mon = clear & is_base[:, None, None], clear & ~is_base[:, None, None]
    plane = [grid(lo, hi, 0.05, (30, 40)) for lo, hi in ((0.3, 0.95), (0.2, 0.8), (-0.5, 0.3))]
    plane += [grid(0, 0.2, 0.01, (30, 40)) for _ in range(3)] + [grid(0, 0.1, 0.01, (30, 40))]
    plane[0][rng.random((30, 40)) < 0.05] = np.nan
    plane[-1][rng.random((30, 40)) < 0.05] = np.nan                   # no usable spread
    nbr_deviation = grid(0, 0.1, 0.01, (30, 40))
    nbr_deviation[rng.random((30, 40)) < 0.05] = np.nan
    for params in (ChangeParams(), ChangeParams(drop_sigma=1.0, ndvi_drop_min=0.1, nbr_drop_min=0.05),
                   ChangeParams(grass_nbr_drop_min=0.15, grass_ndvi_share=0.25)):
        expected_mon, expected = _numpy_flags(ndvi, nbr, mndwi, blue, red, nir, swir16, base, mon, *plane, params,
                                              nbr_deviation)
        got_mon = mon.copy()
        got = flag_looks(ndvi, nbr, mndwi, blue, red, nir, swir16, base, got_mon, *plane, params, nbr_deviation)
        np.testing.assert_array_equal(got_mon, expected_mon)
        for name, a, b in zip(("flagged", "by_forest", "by_surface", "forest", "water", "water_seen", "n_base"),
                              got, expected):
            np.testing.assert_array_equal(a, b, err_msg=name)
        assert expected[1].any() and expected[2].any() and (expected_mon != mon).any()


@pytest.mark.parametrize("kind", ["float32", "float64", "int64", "int16", "bool"])
def test_label_extremes_are_ndimage_minimum_and_maximum(kind):
    """Per-scar first and last looks and detection paths: ndimage's labelled minimum and maximum,
    NaN and infinities included, from the labelled pixels alone."""
    rng = np.random.default_rng(7)
    for _ in range(40):
        shape = tuple(rng.integers(1, 25, 2))
        labels, n = ndimage.label(rng.random(shape) < 0.5)
        if n == 0:
            continue
        index = np.arange(1, n + 1)
        if kind.startswith("float"):
            values = rng.choice([1.0, 2.0, -3.0, np.nan, np.inf, -np.inf, 0.5], shape).astype(kind)
        elif kind == "bool":
            values = rng.random(shape) < 0.3
        else:
            values = rng.integers(-5, 9, shape).astype(kind)
        for largest, reference in ((True, ndimage.maximum), (False, ndimage.minimum)):
            expected = np.asarray(reference(values, labels, index))
            got = _label_extremes(values, labels, index, largest)
            assert got.dtype == expected.dtype
            np.testing.assert_array_equal(got, expected)
