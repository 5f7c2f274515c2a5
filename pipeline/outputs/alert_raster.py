"""Alert rasters like Global Forest Watch's: a Cloud-Optimized GeoTIFF per protected area.

For analysts who combine alerts with other layers (``output.formats: [cog]``):
``alert_rasters/<area id>.tif`` (the id made safe as a file name), in the area's UTM zone at the analysis resolution, two bands:

1. ``date``: uint16, days since 2014-12-31 of the alert's ``first_detected`` (GFW's
   integrated-alerts convention: 2015-01-01 is 1); 0 = no alert;
2. ``confidence``: 1 ``low``, 2 ``nominal``, 3 ``high``; 0 = no alert (stored as uint16 too:
   a GeoTIFF has one data type).

Where alerts overlap the earliest detection wins. Each band carries a description, and the
file its encoding as metadata tags (``DATE_EPOCH``, ``CONFIDENCE_CODES``), so it explains
itself in QGIS / ``gdalinfo``. The grid covers the area's alerts plus a margin, snapped to the
pixel grid (a run passes the area's own grid when it has one).

:func:`rasterize_alerts` is pure; :func:`write_cog` does the I/O.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
import rasterio.features
import rasterio.shutil
import shapely
from rasterio.io import MemoryFile
from rasterio.transform import from_origin

from ..files import write_atomic
from .registry import register_writer

DATE_EPOCH = dt.date(2014, 12, 31)
CONFIDENCE_CODES = {"low": 1, "nominal": 2, "high": 3}
MARGIN_M = 500.0
SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]")


def day_number(day: str) -> int:
    """Days since 2014-12-31 of an ISO date (``2015-01-01`` -> 1), within uint16."""
    n = (dt.date.fromisoformat(str(day)[:10]) - DATE_EPOCH).days
    if not 0 < n < 65535:
        raise ValueError(f"date {day} is outside the alert raster's range")
    return n


def day_to_date(n: int) -> str:
    """Inverse of :func:`day_number`."""
    return (DATE_EPOCH + dt.timedelta(days=int(n))).isoformat()


def raster_name(area_id: str) -> str:
    """A file name from an area id that is safe on every filesystem (ids never become paths as is)."""
    name = SAFE_NAME.sub("_", str(area_id)).strip("._") or "area"
    return f"{name[:80]}.tif"


def utm_epsg(lon: float, lat: float) -> int:
    """The WGS84 UTM zone EPSG code of a position."""
    zone = int((lon + 180) // 6) % 60 + 1
    return (32600 if lat >= 0 else 32700) + zone


def grid_for(geometries_utm: list, resolution_m: float, margin_m: float = MARGIN_M) -> tuple[float, ...]:
    """Bounds (minx, miny, maxx, maxy) around the geometries plus a margin, snapped to the pixel grid."""
    minx, miny, maxx, maxy = shapely.union_all(geometries_utm).bounds
    r = resolution_m
    return (np.floor((minx - margin_m) / r) * r, np.floor((miny - margin_m) / r) * r,
            np.ceil((maxx + margin_m) / r) * r, np.ceil((maxy + margin_m) / r) * r)


def rasterize_alerts(geometries_utm: list, first_detected: list[str], confidence: list[str],
                     bounds: tuple[float, ...], resolution_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Date and confidence bands (y, x) of alert polygons on a north-up grid.

    Parameters
    ----------
    geometries_utm
        Alert polygons in the grid's CRS (metres).
    first_detected, confidence
        Per alert: ISO date, ``low``/``nominal``/``high``.
    bounds, resolution_m
        The grid: (minx, miny, maxx, maxy) and pixel size, metres.

    Returns
    -------
    ``date`` uint16 (days since 2014-12-31, 0 = none) and ``confidence`` uint8 (0 = none);
    where alerts overlap, the earliest detection's values.
    """
    minx, miny, maxx, maxy = bounds
    shape = (int(round((maxy - miny) / resolution_m)), int(round((maxx - minx) / resolution_m)))
    transform = from_origin(minx, maxy, resolution_m, resolution_m)
    days = [day_number(d) for d in first_detected]
    codes = [CONFIDENCE_CODES.get(str(c), 0) for c in confidence]
    # burn the latest first, so that the earliest alert overwrites it where they overlap
    order = sorted(range(len(days)), key=lambda i: days[i], reverse=True)
    date = np.zeros(shape, dtype="uint16")
    conf = np.zeros(shape, dtype="uint8")
    if order:
        date = rasterio.features.rasterize([(geometries_utm[i], days[i]) for i in order], out_shape=shape,
                                           transform=transform, fill=0, dtype="uint16")
        conf = rasterio.features.rasterize([(geometries_utm[i], codes[i]) for i in order], out_shape=shape,
                                           transform=transform, fill=0, dtype="uint8")
    return date, conf


def write_cog(path: Path, date: np.ndarray, confidence: np.ndarray, bounds: tuple[float, ...],
              resolution_m: float, epsg: int, tags: dict | None = None) -> Path:
    """A two-band Cloud-Optimized GeoTIFF (DEFLATE, internal tiles and overviews), atomically."""
    profile = {"driver": "GTiff", "width": date.shape[1], "height": date.shape[0], "count": 2,
               "dtype": "uint16", "crs": f"EPSG:{epsg}", "nodata": 0,
               "transform": from_origin(bounds[0], bounds[3], resolution_m, resolution_m)}

    def write(tmp: Path) -> None:
        with MemoryFile() as memory, memory.open(**profile) as dataset:
            dataset.write(date, 1)
            dataset.write(confidence.astype("uint16"), 2)
            dataset.set_band_description(1, "date")
            dataset.set_band_description(2, "confidence")
            dataset.update_tags(1, meaning=f"days since {DATE_EPOCH.isoformat()} of first detection; 0 = no alert")
            dataset.update_tags(2, meaning="1 low, 2 nominal, 3 high; 0 = no alert")
            dataset.update_tags(DATE_EPOCH=DATE_EPOCH.isoformat(),
                                CONFIDENCE_CODES="low=1,nominal=2,high=3", **(tags or {}))
            rasterio.shutil.copy(dataset, str(tmp), driver="COG", compress="DEFLATE", blocksize=256,
                                 overview_resampling="mode")

    return write_atomic(Path(path), write)


def existing_grid(path: Path) -> tuple[int, tuple[float, ...], float] | None:
    """(EPSG, bounds, resolution) of an alert raster already written, or None."""
    if not path.is_file():
        return None
    with rasterio.open(path) as src:
        return int(src.crs.to_epsg()), tuple(src.bounds), float(src.res[0])


def write_alert_rasters(alerts, path: Path, resolution_m: float = 10.0,
                        grids: dict[str, tuple[int, tuple[float, ...]]] | None = None) -> Path:
    """``<path>/<area id>.tif`` for every protected area with alerts; returns ``path``.

    ``alerts``: GeoDataFrame in EPSG:4326. ``grids``: area id -> (EPSG, bounds) of the run's own
    area grids (the batch passes them). Without it an area keeps the grid of its raster already
    in ``path`` (``cec review`` rewrites it so), else gets the UTM zone of its alerts' centroid and
    a grid around them. An area whose alerts are all gone (rejected by an analyst) keeps its
    file, rewritten empty.
    """
    folder = Path(path)
    groups = {str(a): g for a, g in alerts.groupby("protected_area_id", sort=True)} if len(alerts) else {}
    stale = {p.name: p for p in folder.glob("*.tif")} if folder.is_dir() else {}
    for area_id in sorted(groups):
        group = groups[area_id]
        target = folder / raster_name(area_id)
        stale.pop(target.name, None)
        grid = existing_grid(target)
        if grids and area_id in grids:
            (epsg, bounds), res = grids[area_id], resolution_m
        elif grid is not None:
            epsg, bounds, res = grid
        else:
            centre = shapely.union_all(list(group.geometry)).centroid
            epsg, bounds, res = utm_epsg(centre.x, centre.y), None, resolution_m
        utm = list(gpd.GeoSeries(list(group.geometry), crs=4326).to_crs(epsg))
        bounds = bounds or grid_for(utm, res)
        date, conf = rasterize_alerts(utm, list(group["first_detected"]), list(group["confidence"]), bounds, res)
        write_cog(target, date, conf, bounds, res, epsg, tags={"PROTECTED_AREA_ID": area_id})
    for target in stale.values():  # areas without alerts any more
        epsg, bounds, res = existing_grid(target)
        date, conf = rasterize_alerts([], [], [], bounds, res)
        write_cog(target, date, conf, bounds, res, epsg)
    return folder


register_writer("cog", "alert_rasters", write_alert_rasters, run_grids=True)
