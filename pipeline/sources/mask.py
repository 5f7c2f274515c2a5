"""Clear-sky masks: which pixel of which look can be trusted.

Pure functions over xarray/dask arrays (no I/O, no ``.compute()``), and their numpy twins
for chips (``*_clear_pixels``). Each source profile names the rule of its mask band.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy import ndimage

from ..model import BANDS

# Sentinel-2 Scene Classification (SCL) classes.
SCL_NODATA, SCL_SATURATED, SCL_DARK, SCL_SHADOW = 0, 1, 2, 3
SCL_VEGETATION, SCL_BARE, SCL_WATER, SCL_UNCLASSIFIED = 4, 5, 6, 7
SCL_CLOUD_MEDIUM, SCL_CLOUD_HIGH, SCL_CIRRUS, SCL_SNOW = 8, 9, 10, 11
SCL_CLEAR = (SCL_VEGETATION, SCL_BARE, SCL_WATER, SCL_UNCLASSIFIED)
SCL_CLOUDY = (SCL_SHADOW, SCL_CLOUD_MEDIUM, SCL_CLOUD_HIGH, SCL_CIRRUS)

# Landsat Collection 2 QA_PIXEL bits (USGS Landsat 8-9 C2 L2 Science Product Guide, table 6-3).
QA_FILL, QA_DILATED_CLOUD, QA_CIRRUS, QA_CLOUD, QA_SHADOW, QA_SNOW = 0, 1, 2, 3, 4, 5
QA_DROP_BITS = (QA_FILL, QA_DILATED_CLOUD, QA_CIRRUS, QA_CLOUD, QA_SHADOW, QA_SNOW)
QA_CLOUDY_BITS = (QA_DILATED_CLOUD, QA_CIRRUS, QA_CLOUD, QA_SHADOW)


def _disk(radius_px: int) -> np.ndarray:
    r = int(radius_px)
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    return (xx * xx + yy * yy) <= r * r


def _grow(mask: np.ndarray, radius_px: int) -> np.ndarray:
    """Dilate a (time, y, x) boolean mask in y and x only, by the disk of ``radius_px``
    (:func:`_disk`; outside the array counts as False).

    The same pixels as ``ndimage.binary_dilation`` with that disk, a fifth of its cost: the
    disk is a stack of row segments, so the mask is grown along x once per distinct segment
    width (a running maximum) and each grown copy is OR-ed in at its row offsets."""
    if radius_px <= 0 or not mask.any():   # nothing to grow (most windows away from edges and clouds)
        return mask
    r = int(radius_px)
    rows = mask.shape[1]
    flags = mask.view(np.uint8) if mask.dtype == bool else mask.astype(np.uint8)
    grown = np.zeros(mask.shape, dtype=bool)
    along_x = {}
    for dy, width in zip(range(-r, r + 1), _disk(r).sum(axis=1)):
        half = int(width) // 2
        if half not in along_x:
            along_x[half] = ndimage.maximum_filter1d(flags, 2 * half + 1, axis=2, mode="constant", cval=0).view(bool)
        wide = along_x[half]
        if abs(dy) >= rows:
            continue
        # grown[:, y] |= wide[:, y + dy]
        if dy >= 0:
            grown[:, : rows - dy] |= wide[:, dy:]
        else:
            grown[:, -dy:] |= wide[:, : rows + dy]
    return grown


def _grow_lazy(mask: xr.DataArray, radius_px: int) -> xr.DataArray:
    """Dilate across chunk borders: dask's map_overlap gives each block a halo of the radius."""
    if radius_px <= 0:
        return mask
    data = mask.data
    if hasattr(data, "map_overlap"):
        grown = data.map_overlap(
            _grow, depth={0: 0, 1: radius_px, 2: radius_px}, boundary="none", radius_px=radius_px, dtype=bool
        )
    else:
        grown = _grow(np.asarray(data), radius_px)
    return mask.copy(data=grown)


def _clear(
    data: xr.Dataset,
    mask_valid: xr.DataArray,
    keep: xr.DataArray,
    flagged: xr.DataArray | None,
    resolution_m: float,
    cloud_buffer_m: float,
    nodata_edge_m: float,
) -> xr.DataArray:
    """The rule every source shares: looks the mask band ``keep``s, away from its ``flagged``
    clouds grown by ``cloud_buffer_m`` and from nodata (mask band or any reflectance band)
    grown by ``nodata_edge_m``."""
    valid = mask_valid
    for band in BANDS:
        valid = valid & data[band].notnull()
    clear = keep & ~_grow_lazy(~valid, int(round(nodata_edge_m / resolution_m)))
    if flagged is not None:
        clear = clear & ~_grow_lazy(flagged, int(round(cloud_buffer_m / resolution_m)))
    return clear.rename("clear")


def _classes_in(classes: xr.DataArray, wanted: tuple[int, ...]) -> xr.DataArray:
    """``classes.isin(wanted)``; for uint8 classes by a lookup table (a third of the cost)."""
    if classes.dtype != np.uint8:
        return classes.isin(wanted)
    table = np.zeros(256, dtype=bool)
    table[list(wanted)] = True
    data = classes.data
    looked_up = data.map_blocks(table.take, dtype=bool) if hasattr(data, "map_blocks") else table.take(data)
    return classes.copy(data=looked_up)


def scl_clear(
    data: xr.Dataset, resolution_m: float, cloud_buffer_m: float = 30.0, nodata_edge_m: float = 20.0
) -> xr.DataArray:
    """Clear-pixel mask from a Sentinel-2 SCL band and the reflectance bands.

    Parameters
    ----------
    data
        Dataset with dims (time, y, x): reflectance bands (NaN = nodata) and ``scl`` (uint8).
    resolution_m
        Pixel size, metres, to turn the buffers into pixels.
    cloud_buffer_m
        Cloud, cirrus and shadow flags are grown by this distance: SCL misses soft cloud edges.
    nodata_edge_m
        Pixels this close to nodata are dropped: swath edges carry corrupted values.

    Returns
    -------
    Boolean DataArray (time, y, x): True where the look sees the ground clearly.
    """
    scl = data["scl"]
    return _clear(data, scl != SCL_NODATA, _classes_in(scl, SCL_CLEAR), _classes_in(scl, SCL_CLOUDY),
                  resolution_m, cloud_buffer_m, nodata_edge_m)


def _bits(bit_numbers) -> int:
    return int(sum(1 << b for b in bit_numbers))


def qa_pixel_clear(
    data: xr.Dataset, resolution_m: float, cloud_buffer_m: float = 0.0, nodata_edge_m: float = 20.0
) -> xr.DataArray:
    """Clear-pixel mask from a Landsat Collection 2 ``QA_PIXEL`` band and the reflectance bands.

    Parameters
    ----------
    data
        Dataset with dims (time, y, x): reflectance bands (NaN = nodata) and ``qa_pixel`` (uint16
        bit flags; pixels outside the scene carry the fill bit).
    resolution_m
        Pixel size, metres.
    cloud_buffer_m
        Cloud, dilated-cloud, cirrus and shadow flags are grown by this distance (0 = none).
        USGS already dilates clouds by a few pixels (bit 1), so a small value is enough.
    nodata_edge_m
        Pixels this close to nodata are dropped.

    Returns
    -------
    Boolean DataArray (time, y, x): True where no fill, cloud, cirrus, shadow or snow bit is
    set, away from (grown) clouds and nodata.
    """
    qa = data["qa_pixel"].astype("uint16")
    return _clear(data, (qa & (1 << QA_FILL)) == 0, (qa & _bits(QA_DROP_BITS)) == 0,
                  (qa & _bits(QA_CLOUDY_BITS)) != 0, resolution_m, cloud_buffer_m, nodata_edge_m)


def all_valid_clear(data: xr.Dataset, resolution_m: float, nodata_edge_m: float = 20.0) -> xr.DataArray:
    """Clear mask for cloud-free composites without a mask band: every valid pixel is clear."""
    valid = data[BANDS[0]].notnull()
    return _clear(data, valid, valid, None, resolution_m, 0.0, nodata_edge_m)


def scl_clear_pixels(scl: np.ndarray) -> np.ndarray:
    """Numpy: SCL values (NaN = nodata) -> True where the class is clear (vegetation, bare, water, unclassified)."""
    return np.isin(scl, SCL_CLEAR)


def qa_pixel_clear_pixels(qa: np.ndarray) -> np.ndarray:
    """Numpy: QA_PIXEL values (NaN = fill) -> True where no fill, cloud, cirrus, shadow or snow bit is set."""
    bits = np.nan_to_num(np.asarray(qa, dtype="float64"), nan=1).astype("uint16")
    return (bits & _bits(QA_DROP_BITS)) == 0
