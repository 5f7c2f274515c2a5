"""Coarser bands onto a finer, aligned grid: read at their own resolution, then upsample.

Sentinel-2's 20 m bands (SWIR, SCL) on the 10 m analysis grid, or Landsat's 30 m bands on it,
are resampled by GDAL's warper when odc-stac reads them straight onto the grid: about ten times
the cost of reading them (1.8 s against 0.17 s for two SWIR bands of nine looks on a 1400² px
window). When the source grid is aligned with the analysis grid (same CRS, north-up, a source
pixel is a whole number of grid pixels, grid edges on source pixel edges of the finer lattice),
reading the source pixels as they are (odc-stac pastes them, no warp) and upsampling here gives
**the same integers as GDAL's warper**, for bilinear and nearest:

- a grid pixel whose centre lies in a nodata (or missing) source pixel is nodata;
- otherwise bilinear weighs the 2 × 2 source pixels around the centre, leaving out nodata ones
  and renormalising, and rounds half up; nearest takes the source pixel under the centre.

``tests/test_upsample.py`` checks this against odc-stac's warped read on rasters with nodata
holes, at raster edges and at every phase. Anything else (other CRS, rotation, a fractional
ratio, several tiles on one day) is left to odc-stac's warper.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from urllib.parse import urlparse

import numba
import numpy as np
import pystac
from affine import Affine
from odc.geo.geobox import GeoBox


@functools.lru_cache(maxsize=4096)
def _file_grid(path: str) -> GeoBox | None:
    import rasterio

    try:
        with rasterio.open(path) as src:
            if src.crs is None:
                return None
            return GeoBox(src.shape, src.transform, src.crs)
    except rasterio.RasterioIOError:
        return None


def source_grid(item: pystac.Item, key: str, parsed=None) -> GeoBox | None:
    """The pixel grid of the item's asset ``key``: from its STAC projection fields, else from the
    header of a local file; None when neither tells. ``parsed``: the item's
    ``odc.stac.parse_item``, when the caller has it."""
    import odc.stac

    try:
        grid = (parsed or odc.stac.parse_item(item))[key].geobox
    except (KeyError, ValueError, TypeError):
        grid = None
    if grid is not None:
        return grid
    asset = item.assets.get(key)
    if asset is None:
        return None
    href = asset.get_absolute_href() or asset.href
    parsed = urlparse(href)
    if parsed.scheme not in ("", "file"):
        return None
    return _file_grid(parsed.path)


def _integral(value: float, tol: float = 1e-6) -> bool:
    return abs(value - round(value)) <= tol


def lattice_factor(source: GeoBox, grid: GeoBox) -> int | None:
    """k when ``source`` pixels are k × k pixels of ``grid`` (k ≥ 1: 1 is the same lattice) and
    ``grid``'s pixel edges fall on that finer lattice; None otherwise."""
    if source.crs != grid.crs:
        return None
    s, g = source.transform, grid.transform
    if s.b != 0 or s.d != 0 or g.b != 0 or g.d != 0 or s.a <= 0 or s.e >= 0 or g.a <= 0 or g.e >= 0:
        return None
    kx, ky = s.a / g.a, s.e / g.e
    if not (_integral(kx) and _integral(ky)) or round(kx) != round(ky) or round(kx) < 1:
        return None
    if not (_integral((g.c - s.c) / g.a) and _integral((g.f - s.f) / g.e)):
        return None
    return int(round(kx))


def upsample_factor(source: GeoBox, grid: GeoBox) -> int | None:
    """k when ``source`` pixels are k × k pixels of ``grid`` with k ≥ 2 (:func:`lattice_factor`)."""
    k = lattice_factor(source, grid)
    return k if k is not None and k >= 2 else None


def common_lattice(sources: Sequence[GeoBox | None], grid: GeoBox) -> GeoBox | None:
    """One source grid standing for all ``sources`` when each lies on ``grid``'s lattice or can
    be upsampled onto it (:func:`lattice_factor`) and their pixels coincide (same resolution,
    origins a whole number of pixels apart)."""
    if not sources or any(s is None for s in sources):
        return None
    first = sources[0]
    if lattice_factor(first, grid) is None:
        return None
    t0 = first.transform
    for other in sources[1:]:
        t = other.transform
        if other.crs != first.crs or (t.a, t.b, t.d, t.e) != (t0.a, t0.b, t0.d, t0.e):
            return None
        if not (_integral((t.c - t0.c) / t0.a) and _integral((t.f - t0.f) / t0.e)):
            return None
    return first


def source_window(lattice: GeoBox, grid: GeoBox) -> tuple[GeoBox, np.ndarray, np.ndarray]:
    """The source pixels that upsampling onto ``grid`` reads (a box of ``lattice``'s pixels,
    one more on each side than the centres need), and the fractional source column and row of
    each grid pixel's centre in that box (0 = centre of its first pixel)."""
    s, g = lattice.transform, grid.transform
    rows, cols = grid.shape
    u = (g.c + (np.arange(cols) + 0.5) * g.a - s.c) / s.a - 0.5
    v = (g.f + (np.arange(rows) + 0.5) * g.e - s.f) / s.e - 0.5
    c0, c1 = math.floor(u[0]) - 1, math.floor(u[-1]) + 2
    r0, r1 = math.floor(v[0]) - 1, math.floor(v[-1]) + 2
    box = GeoBox((r1 - r0 + 1, c1 - c0 + 1), s * Affine.translation(c0, r0), lattice.crs)
    return box, u - c0, v - r0


@numba.njit(cache=True, nogil=True)
def _taps(pos):  # pragma: no cover - compiled
    """Per grid pixel along one axis: the first of its two source taps, the weight of the second,
    and the source pixel under its centre."""
    first = np.empty(pos.size, np.int64)
    weight = np.empty(pos.size, np.float64)
    centre = np.empty(pos.size, np.int64)
    for i in range(pos.size):
        f = math.floor(pos[i])
        first[i] = int(f)
        weight[i] = pos[i] - f
        centre[i] = int(math.floor(pos[i] + 0.5))
    return first, weight, centre


@numba.njit(cache=True, nogil=True)
def _bilinear(src, u, v, nodata, out):  # pragma: no cover - compiled
    n, h, w = src.shape
    x0s, wxs, cxs = _taps(u)
    y0s, wys, cys = _taps(v)
    for t in range(n):
        for i in range(v.size):
            y0 = y0s[i]
            wy = wys[i]
            cy = cys[i]
            row_ok = 0 <= cy < h
            for j in range(u.size):
                x0 = x0s[j]
                wx = wxs[j]
                cx = cxs[j]
                if not row_ok or cx < 0 or cx >= w or src[t, cy, cx] == nodata:
                    out[t, i, j] = nodata
                    continue
                acc = 0.0
                wsum = 0.0
                for dy in range(2):
                    yy = y0 + dy
                    if yy < 0 or yy >= h:
                        continue
                    wrow = wy if dy else 1.0 - wy
                    for dx in range(2):
                        xx = x0 + dx
                        if xx < 0 or xx >= w:
                            continue
                        value = src[t, yy, xx]
                        if value == nodata:
                            continue
                        weight = wrow * (wx if dx else 1.0 - wx)
                        acc += weight * value
                        wsum += weight
                out[t, i, j] = math.floor(acc / wsum + 0.5)


@numba.njit(cache=True, nogil=True)
def _nearest(src, u, v, nodata, out):  # pragma: no cover - compiled
    n, h, w = src.shape
    for t in range(n):
        for i in range(v.size):
            cy = int(math.floor(v[i] + 0.5))
            for j in range(u.size):
                cx = int(math.floor(u[j] + 0.5))
                if cy < 0 or cy >= h or cx < 0 or cx >= w:
                    out[t, i, j] = nodata
                else:
                    out[t, i, j] = src[t, cy, cx]


def upsample(source: np.ndarray, u: np.ndarray, v: np.ndarray, nodata, method: str) -> np.ndarray:
    """(looks, rows, cols) integer ``source`` pixels onto the grid whose pixel centres lie at
    source columns ``u`` and rows ``v`` (:func:`source_window`), as GDAL's warper would."""
    if method not in ("bilinear", "nearest"):
        raise ValueError(f"upsampling supports bilinear and nearest, not {method!r}")
    if not np.issubdtype(source.dtype, np.integer):
        raise TypeError(f"upsampling takes integer pixels, not {source.dtype}")
    out = np.empty((source.shape[0], v.size, u.size), source.dtype)
    kernel = _bilinear if method == "bilinear" else _nearest
    kernel(np.ascontiguousarray(source), np.ascontiguousarray(u, np.float64), np.ascontiguousarray(v, np.float64),
           source.dtype.type(nodata), out)
    return out
