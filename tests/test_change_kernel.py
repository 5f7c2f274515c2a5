"""The change test's per-pixel median: one sort along time, the very numbers np.nanmedian gives."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from pipeline.change import _nanmedian


def _reference(values: np.ndarray, keep: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(np.where(keep, values, np.nan), axis=0)


@pytest.mark.parametrize("looks", [1, 2, 3, 8, 9, 24])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_median_is_bit_for_bit_nanmedian(looks, dtype):
    rng = np.random.default_rng(looks)
    values = rng.standard_normal((looks, 40, 30)).astype(dtype)
    values[rng.random(values.shape) < 0.05] = np.nan      # nodata inside kept looks
    keep = rng.random(values.shape) < 0.6
    keep[:, :5, :5] = False                                # pixels with no kept look: NaN
    got = _nanmedian(values, keep)
    assert got.dtype == dtype
    np.testing.assert_array_equal(got, _reference(values, keep))
    assert np.isnan(got[:5, :5]).all()


def test_median_of_an_even_count_is_the_mean_of_the_middle_two():
    values = np.array([[4.0], [1.0], [3.0], [2.0]], np.float32)[:, :, None]
    assert _nanmedian(values, np.ones_like(values, bool))[0, 0] == 2.5
