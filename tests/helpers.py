"""Shared test helpers."""

from __future__ import annotations

import numpy as np
import xarray as xr


def assert_numpy_dask_equal(func, data: xr.Dataset, chunks: dict, skip=()) -> None:
    """``func`` gives the same numbers on numpy-backed and dask-backed input (NaN equal NaN)."""
    eager = func(data)
    lazy = func(data.chunk(chunks))
    assert lazy.chunks is not None, "the dask path stayed lazy"
    lazy = lazy.compute()
    if isinstance(eager, xr.Dataset):
        for name in eager.data_vars:
            if name not in skip:
                np.testing.assert_array_equal(eager[name].values, lazy[name].values)
    else:
        np.testing.assert_array_equal(eager.values, lazy.values)
