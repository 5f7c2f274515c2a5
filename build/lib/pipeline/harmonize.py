"""Sentinel-2 and Landsat in one time series: cross-sensor band adjustment and fusion.

Pure functions over xarray (numpy or dask): no I/O, no ``.compute()``.

Sentinel-2 MSI reflectance is brought to the Landsat 8 OLI reference with the bandpass
adjustment of the Harmonized Landsat Sentinel-2 product: OLI = slope × MSI + intercept, per
band, from Claverie, M., Ju, J., Masek, J. G., Dungan, J. L., Vermote, E. F., Roger, J.-C.,
Skakun, S. V. and Justice, C. (2018), "The Harmonized Landsat and Sentinel-2 surface
reflectance data set", Remote Sensing of Environment 219, 145–161,
doi:10.1016/j.rse.2018.09.002 (coefficients as published in the HLS v1.4 user guide,
table "MSI to OLI bandpass adjustment"). The NIR coefficient was fitted for MSI band 8A;
the pipeline's ``nir`` is the broad band 8, whose difference to 8A is small next to the
change thresholds (an NDVI drop of 0.2).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from .ingest import REFLECTANCE_BANDS, Observations

MSI_TO_OLI: dict[str, tuple[float, float]] = {
    "blue": (0.9778, -0.004),
    "green": (1.0053, -0.0009),
    "red": (0.9765, 0.0009),
    "nir": (0.9983, -0.0001),
    "swir16": (0.9987, -0.0011),
    "swir22": (1.003, -0.0012),
}
"""Band -> (slope, intercept): OLI-equivalent reflectance from Sentinel-2 MSI (Claverie et al. 2018)."""


def msi_to_oli(data: xr.Dataset) -> xr.Dataset:
    """Sentinel-2 MSI reflectance bands adjusted to Landsat 8 OLI (unitless; NaN stays NaN)."""
    out = data.copy()
    for band, (slope, intercept) in MSI_TO_OLI.items():
        out[band] = (data[band] * np.float32(slope) + np.float32(intercept)).astype("float32")
    return out


def fuse(parts: Sequence[tuple[Observations, xr.DataArray]]) -> tuple[Observations, xr.DataArray]:
    """Concatenate loads of several sources (same grid) into one time series, ordered by time.

    Parameters
    ----------
    parts
        (observations, clear mask) per source group, every one on the same GeoBox; the clear
        mask is boolean (time, y, x).

    Returns
    -------
    The fused observations (reflectance bands only, no mask band) and clear mask. When the
    parts mix Sentinel-2 and Landsat, Sentinel-2 looks are adjusted to OLI (:func:`msi_to_oli`);
    a single part is returned unchanged.
    """
    if len(parts) == 1:
        return parts[0]
    sensors = {obs.data.attrs.get("sensor") for obs, _ in parts}
    datasets, clears, items, platforms = [], [], [], []
    for obs, clear in parts:
        data = obs.data[list(REFLECTANCE_BANDS)]
        if len(sensors) > 1 and obs.data.attrs.get("sensor") == "sentinel-2":
            data = msi_to_oli(data)
        datasets.append(data)
        clears.append(clear)
        items.extend(obs.items_by_time)
        platforms.extend(obs.sensors_by_time)
    data = xr.concat(datasets, dim="time", join="exact", combine_attrs="drop")
    clear = xr.concat(clears, dim="time", join="exact")
    order = np.argsort(data["time"].values, kind="stable")
    data = data.isel(time=order)
    data.attrs.update(sensor="+".join(sorted(s for s in sensors if s)), mask_band="")
    fused = Observations(
        data=data,
        items_by_time=tuple(items[i] for i in order),
        sensors_by_time=tuple(platforms[i] for i in order),
    )
    return fused, clear.isel(time=order)
