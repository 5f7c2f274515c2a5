"""Per-pixel medians over time of several layers that share one mask: the change test's hot loop.

:func:`nanmedians` gives, for every layer, the numbers of
``np.nanmedian(np.where(keep, layer, nan), axis=0)`` (for an even count the mean of the two
middle values, in the layer's dtype; NaN where no finite value is kept), in one compiled pass
over the pixels: each pixel's kept looks are gathered once and insertion-sorted per layer
(a few dozen looks at most), instead of a masked copy and a full sort per layer. On 9 looks
it is an order of magnitude faster than the sort-based numpy version it replaces.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def _medians(values: tuple, keep: np.ndarray, out: np.ndarray) -> None:  # pragma: no cover - compiled
    """values: tuple of (time, pixels) arrays, keep (time, pixels) bool -> out (layers, pixels)."""
    n_layers = len(values)
    n_looks, n_pixels = keep.shape
    kept = np.empty(n_looks, np.int64)
    buffer = np.empty(n_looks, out.dtype)
    for p in range(n_pixels):
        n_kept = 0
        for t in range(n_looks):
            if keep[t, p]:
                kept[n_kept] = t
                n_kept += 1
        for layer in range(n_layers):
            count = 0
            for i in range(n_kept):
                value = values[layer][kept[i], p]
                if value != value:  # NaN: nodata inside a kept look
                    continue
                j = count
                while j > 0 and buffer[j - 1] > value:
                    buffer[j] = buffer[j - 1]
                    j -= 1
                buffer[j] = value
                count += 1
            if count == 0:
                out[layer, p] = np.nan
            else:
                out[layer, p] = (buffer[(count - 1) // 2] + buffer[count // 2]) / 2


def nanmedians(layers: list[np.ndarray], keep: np.ndarray) -> list[np.ndarray]:
    """Median over axis 0 (time) of each layer's kept, finite values; NaN where there is none.

    ``layers``: arrays of one shape (time, ...) and one floating dtype; ``keep``: bool, same
    shape. Returns one array of shape ``(...)`` per layer, in the layers' dtype.
    """
    if not layers:
        return []
    shape = np.shape(layers[0])
    dtype = np.result_type(*layers)
    if not np.issubdtype(dtype, np.floating):
        dtype = np.dtype(np.float64)
    if any(np.shape(layer) != shape for layer in layers) or np.shape(keep) != shape:
        raise ValueError(f"nanmedians: layers and keep must share one shape, got {[np.shape(x) for x in layers]}"
                         f" and {np.shape(keep)}")
    n_looks = shape[0]
    # (time, pixels) views where the layers are contiguous already (dask blocks usually are)
    values = tuple(np.ascontiguousarray(layer, dtype=dtype).reshape(n_looks, -1) for layer in layers)
    out = np.empty((len(layers), values[0].shape[1]), dtype=dtype)
    _medians(values, np.ascontiguousarray(keep, dtype=bool).reshape(n_looks, -1), out)
    return [row.reshape(shape[1:]) for row in out]
