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


def chunk_parts(layers: dict, chunk: int, shapes: list[tuple], transform, min_area_ha: float) -> list:
    """What the pipeline's window tasks reduce each chunk of a grid to (its block: the chunk and
    its halo, cut here from whole-grid layers instead of computed from pixels), in raster order."""
    from pipeline.streaming import context_px
    from pipeline.windows import chunk_origins, reduce_block, window_geometry

    shape = layers["confidence"].shape
    halo = context_px(abs(transform.a))
    min_px = min_area_ha / (abs(transform.a * transform.e) / 1e4)
    parts = []
    for r0, rows in chunk_origins(shape[0], chunk):
        for c0, cols in chunk_origins(shape[1], chunk):
            geometry = window_geometry(shape, r0, c0, rows, cols, halo)
            block = {k: v[(..., *geometry.read)] for k, v in layers.items()}
            parts.append(reduce_block(block, geometry, shapes, transform, shape[1], min_px, halo))
    return parts
