"""Spectral indices: one pure function each, for numpy- or dask-backed xarray objects.

Inputs are surface reflectance (unitless, about 0–1; NaN = nodata); outputs are float32 in
[-1, 1], NaN where an input is NaN or the denominator is zero.
"""

from __future__ import annotations

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


def compute_indices(data: xr.Dataset) -> xr.Dataset:
    """Every index the change and scar stages use, from a reflectance dataset."""
    return xr.Dataset({
        "ndvi": ndvi(data["nir"], data["red"]),
        "nbr": nbr(data["nir"], data["swir22"]),
        "ndmi": ndmi(data["nir"], data["swir16"]),
        "mndwi": mndwi(data["green"], data["swir16"]),
        "bsi": bsi(data["blue"], data["red"], data["nir"], data["swir16"]),
    })
