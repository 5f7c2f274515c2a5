"""Spectral indices: one pure function each, for numpy- or dask-backed xarray objects.

Inputs are surface reflectance (unitless, about 0–1; NaN = nodata); outputs are float32 in
[-1, 1], NaN where an input is NaN or the denominator is zero.
"""

from __future__ import annotations

import numba
import numpy as np
import xarray as xr


def normalized_difference(a: xr.DataArray, b: xr.DataArray) -> xr.DataArray:
    """(a − b) / (a + b), NaN where a + b is zero."""
    total = a + b
    return ((a - b) / total.where(total != 0)).astype("float32")


def ndvi(nir: xr.DataArray, red: xr.DataArray) -> xr.DataArray:
    """Normalized Difference Vegetation Index: green vegetation high, bare soil and water low."""
    return normalized_difference(nir, red).rename("ndvi")


def nbr(nir: xr.DataArray, swir22: xr.DataArray) -> xr.DataArray:
    """Normalized Burn Ratio: falls sharply when canopy is removed and soil exposed."""
    return normalized_difference(nir, swir22).rename("nbr")


def ndmi(nir: xr.DataArray, swir16: xr.DataArray) -> xr.DataArray:
    """Normalized Difference Moisture Index: canopy water content."""
    return normalized_difference(nir, swir16).rename("ndmi")


def mndwi(green: xr.DataArray, swir16: xr.DataArray) -> xr.DataArray:
    """Modified Normalized Difference Water Index (Xu 2006): open water > 0, turbid ponds too."""
    return normalized_difference(green, swir16).rename("mndwi")


def bsi(blue: xr.DataArray, red: xr.DataArray, nir: xr.DataArray, swir16: xr.DataArray) -> xr.DataArray:
    """Bare Soil Index: ((swir16 + red) − (nir + blue)) / ((swir16 + red) + (nir + blue))."""
    return normalized_difference(swir16 + red, nir + blue).rename("bsi")


@numba.njit(cache=True, nogil=True)
def _nd(a, b):
    total = a + b
    if total != 0:
        return (a - b) / total
    return np.float32(np.nan)


@numba.njit(cache=True, nogil=True)
def _all_indices(blue, green, red, nir, swir16, swir22, out):
    for i in range(blue.size):
        b, g, r, n, s1, s2 = blue[i], green[i], red[i], nir[i], swir16[i], swir22[i]
        out[0, i] = _nd(n, r)
        out[1, i] = _nd(n, s2)
        out[2, i] = _nd(n, s1)
        out[3, i] = _nd(g, s1)
        out[4, i] = _nd(s1 + r, n + b)


INDEX_NAMES = ("ndvi", "nbr", "ndmi", "mndwi", "bsi")


def compute_indices(data: xr.Dataset) -> xr.Dataset:
    """Every index the change and scar stages use, from a reflectance dataset (numpy-backed
    float32 bands: in one compiled pass, bit for bit the same values)."""
    bands = [data[b] for b in ("blue", "green", "red", "nir", "swir16", "swir22")]
    if all(isinstance(b.data, np.ndarray) and b.dtype == np.float32 for b in bands):
        shape = bands[0].shape
        flat = [np.ascontiguousarray(b.data).reshape(-1) for b in bands]
        out = np.empty((len(INDEX_NAMES), flat[0].size), dtype=np.float32)
        _all_indices(*flat, out)
        return xr.Dataset({name: bands[0].copy(data=out[k].reshape(shape)).rename(name)
                           for k, name in enumerate(INDEX_NAMES)})
    return xr.Dataset({
        "ndvi": ndvi(data["nir"], data["red"]),
        "nbr": nbr(data["nir"], data["swir22"]),
        "ndmi": ndmi(data["nir"], data["swir16"]),
        "mndwi": mndwi(data["green"], data["swir16"]),
        "bsi": bsi(data["blue"], data["red"], data["nir"], data["swir16"]),
    })
