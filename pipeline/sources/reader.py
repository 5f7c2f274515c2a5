"""Source pixels read straight from their files, for grids aligned with the analysis grid.

odc-stac opens every file anew for every window it reads, so a file's compressed blocks are
decoded again for each window that touches them (an area in 512 px chunks over 1024 px COG
blocks decodes each block up to nine times), and plans each read in Python. When an asset's
pixels lie on the analysis grid's lattice (:func:`pipeline.sources.upsample.lattice_factor`),
there is nothing to plan: the window is a rectangle of the file's pixels. :func:`read_box`
reads it from a dataset that stays open in the process, so GDAL's block cache
(``GDAL_CACHEMAX``, bounded) serves the blocks a neighbouring window already decoded.

Open datasets are shared by the threads of a process, each behind its own lock (a GDAL dataset
must not be read by two threads at once), so a block one thread decoded serves the next window
whichever thread reads it. At most :data:`MAX_OPEN` stay open, least recently used closed first;
a local file is reopened when it changes on disk. :func:`close_all` closes them all.
"""

from __future__ import annotations

import math
import os
import threading
from collections import OrderedDict
from urllib.parse import urlparse

import numpy as np
import rasterio
from affine import Affine
from odc.geo.geobox import GeoBox
from rasterio.windows import Window

from .upsample import lattice_factor

MAX_OPEN = 256
"""Datasets kept open in a process: every asset of a window of 36 looks."""

_open: OrderedDict = OrderedDict()          # identity -> (dataset, lock), least recently used first
_open_lock = threading.Lock()


def utm_northing_shift(source_epsg: int | None, epsg: int) -> float | None:
    """Metres to add to a northing in ``source_epsg`` to have it in ``epsg``: 0 for the same CRS,
    ±10 000 000 between the north and south forms of one UTM zone (USGS grids its Landsat
    scenes in the north form everywhere, with negative northings south of the equator); None
    for any other pair."""
    if source_epsg == epsg:
        return 0.0
    if source_epsg is None or source_epsg % 100 != epsg % 100 or not 1 <= epsg % 100 <= 60:
        return None
    kinds = (source_epsg // 100, epsg // 100)
    return {(326, 327): 10_000_000.0, (327, 326): -10_000_000.0}.get(kinds)


def in_crs(grid: GeoBox | None, crs) -> GeoBox | None:
    """``grid`` in ``crs`` when that is the other form (north / south) of its UTM zone: the same
    pixels, their northings shifted; else ``grid`` as it is."""
    if grid is None or grid.crs is None or crs is None or grid.crs == crs:
        return grid
    shift = utm_northing_shift(grid.crs.epsg, crs.epsg)
    if shift is None:
        return grid
    return GeoBox(grid.shape, Affine.translation(0, shift) * grid.transform, crs)


class OffLattice(ValueError):
    """The file's pixels are not where its STAC item says: read it through the warper instead."""


def _identity(href: str) -> tuple:
    """The cache key of ``href``: a local file also by inode, size and modification time, so a
    file rewritten in place is reopened rather than read from a stale handle."""
    parsed = urlparse(href)
    if parsed.scheme in ("", "file"):
        stat = os.stat(parsed.path)
        return (href, stat.st_ino, stat.st_size, stat.st_mtime_ns)
    return (href,)


def _dataset(href: str) -> tuple:
    """(dataset, lock, its pixel grid) of ``href``, opened once per process; hold the lock while
    using the dataset."""
    key = _identity(href)
    with _open_lock:
        entry = _open.get(key)
        if entry is not None:
            _open.move_to_end(key)
            return entry
    dataset = rasterio.open(href)
    grid = GeoBox(dataset.shape, dataset.transform, dataset.crs) if dataset.crs is not None else None
    with _open_lock:
        entry = _open.setdefault(key, (dataset, threading.Lock(), grid))
        if entry[0] is not dataset:         # another thread opened it meanwhile
            dataset.close()
        _evict()
    return entry


def _evict() -> None:
    """Close the least recently used datasets beyond :data:`MAX_OPEN` that no thread is reading."""
    for key in list(_open)[:max(0, len(_open) - MAX_OPEN)]:
        dataset, lock, _ = _open[key]
        if lock.acquire(blocking=False):
            try:
                del _open[key]
                dataset.close()
            finally:
                lock.release()


BLOCK_PX = 1024
"""Block edge assumed for the source COGs (Sentinel-2 on Earth Search and Planetary Computer)."""
CACHE_SHARE_MAX = 0.25
"""The block cache never takes more than this share of the machine's memory."""


def _machine_bytes() -> int:
    import psutil

    return psutil.virtual_memory().total


def gdal_default_cache_bytes(machine_bytes: int | None = None) -> int:
    """GDAL's own bound of its block cache: ``GDAL_CACHEMAX`` (a percentage of the machine's
    memory, megabytes below 100 000, else bytes), by default 5 % of the machine's memory."""
    machine_bytes = machine_bytes or _machine_bytes()
    text = os.environ.get("GDAL_CACHEMAX", "5%").strip()
    try:
        if text.endswith("%"):
            return int(machine_bytes * float(text[:-1]) / 100)
        value = int(text)
        return value * 2**20 if value < 100_000 else value
    except ValueError:
        return int(machine_bytes * 0.05)


def row_band_bytes(width_m: float, looks: int, resolutions_m: list[float], block_px: int = BLOCK_PX,
                   bytes_per_px: int = 2) -> int:
    """Decoded blocks that windows taken in raster order share: for every look and asset, two rows
    of blocks across the area's width (one more block for the misaligned edge)."""
    per_look = sum((math.ceil(width_m / (block_px * res)) + 1) * 2 * block_px**2 * bytes_per_px
                   for res in resolutions_m)
    return int(max(looks, 1) * per_look)


def area_block_bytes(width_m: float, height_m: float, looks: int, resolutions_m: list[float],
                     block_px: int = BLOCK_PX, bytes_per_px: int = 2) -> int:
    """Decoded blocks an area's windows touch over the whole run, for every look and asset (one
    more block each way for the misaligned edges): the most the block cache can fill with."""
    per_look = sum((math.ceil(width_m / (block_px * res)) + 1) * (math.ceil(height_m / (block_px * res)) + 1)
                   * block_px**2 * bytes_per_px for res in resolutions_m)
    return int(max(looks, 1) * per_look)


def block_cache_bytes(need_bytes: int = 0, machine_bytes: int | None = None) -> int:
    """The block cache a run's reads get: what the windows share (``need_bytes``,
    :func:`row_band_bytes`), at least GDAL's default, at most :data:`CACHE_SHARE_MAX` of the
    machine; exactly ``GDAL_CACHEMAX`` when the user set it."""
    machine_bytes = machine_bytes or _machine_bytes()
    default = gdal_default_cache_bytes(machine_bytes)
    if "GDAL_CACHEMAX" in os.environ:
        return default
    return int(min(max(need_bytes, default), CACHE_SHARE_MAX * machine_bytes))


_cache_set = 0


def ensure_block_cache(need_bytes: int) -> None:
    """Raise this process's GDAL block cache to :func:`block_cache_bytes` of ``need_bytes`` (it
    never shrinks during a process: another area's windows may be using it)."""
    global _cache_set
    target = block_cache_bytes(need_bytes)
    with _open_lock:
        if target > _cache_set:
            from rasterio.env import set_gdal_config

            set_gdal_config("GDAL_CACHEMAX", target)
            _cache_set = target


def close_all() -> None:
    """Close every dataset this module keeps open (waits for reads in progress)."""
    with _open_lock:
        while _open:
            _, (dataset, lock, _) = _open.popitem()
            with lock:
                dataset.close()


def read_box(href: str, box: GeoBox, nodata, dtype) -> np.ndarray:
    """The pixels of ``box``, a rectangle of the file's own pixel lattice (same CRS, resolution
    and orientation, origin a whole number of pixels away), as ``dtype``; ``nodata`` where the
    box reaches beyond the file."""
    for _ in range(3):
        src, lock, grid = _dataset(href)
        with lock:
            if not src.closed:      # not closed by an eviction between the lookup and the lock
                return _read_locked(src, grid, href, box, nodata, dtype)
    raise RuntimeError(f"{href}: closed three times while waiting to be read (more than {MAX_OPEN} files in use?)")


def _read_locked(src, grid: GeoBox | None, href: str, box: GeoBox, nodata, dtype) -> np.ndarray:
    grid = in_crs(grid, box.crs)
    if grid is None or lattice_factor(grid, box) != 1:
        raise OffLattice(f"{href}: its pixels ({src.crs}, {tuple(src.transform)[:6]}) are not on the grid's "
                         f"lattice ({box.crs}, {tuple(box.transform)[:6]})")
    s, b = grid.transform, box.transform
    col0, row0 = round((b.c - s.c) / s.a), round((b.f - s.f) / s.e)
    rows, cols = box.shape
    r0, r1 = max(row0, 0), min(row0 + rows, src.height)
    c0, c1 = max(col0, 0), min(col0 + cols, src.width)
    inside = r0 < r1 and c0 < c1
    pixels = src.read(1, window=Window(c0, r0, c1 - c0, r1 - r0)) if inside else None
    if inside and (r1 - r0, c1 - c0) == (rows, cols):
        return pixels.astype(dtype, copy=False)
    out = np.full((rows, cols), nodata, dtype=dtype)
    if inside:
        out[r0 - row0:r1 - row0, c0 - col0:c1 - col0] = pixels
    return out
