"""The change test's per-pixel medians: one compiled pass, the very numbers np.nanmedian gives."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from pipeline.medians import nanmedians


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
