"""Areas of interest: protected-area polygons and their buffer zones.

Reads the user's layers (I/O at the top of the module), repairs geometry, and builds for each
protected area its two monitored zones in the area's own UTM projection:

* ``inside``: the protected area itself;
* ``buffer``: the official buffer zone (or a ring of ``buffer_m`` metres) minus every
  protected area, so that no ground is counted twice.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyproj
import shapely
from shapely.geometry.base import BaseGeometry
from shapely.ops import transform

from .config import AreasConfig
from .errors import InputError

ZONE_INSIDE = "inside"
ZONE_BUFFER = "buffer"


def read_layer(path: Path, what: str) -> gpd.GeoDataFrame:
    """Read a vector layer, with an error that names the file when it cannot be used."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: {what} file not found")
    try:
        frame = gpd.read_file(path)
    except Exception as err:  # pyogrio raises several unrelated types for corrupt files
        raise InputError(f"{path}: cannot read {what} layer: {err}") from None
    if frame.crs is None:
        raise InputError(f"{path}: {what} layer has no coordinate reference system")
    frame = frame[frame.geometry.notna() & ~frame.geometry.is_empty]
    if frame.empty:
        raise InputError(f"{path}: {what} layer has no features with a geometry")
    return frame


def repair(geometry: BaseGeometry) -> BaseGeometry:
    """Return a valid polygonal geometry (make_valid, keep only the polygon parts)."""
    fixed = shapely.make_valid(geometry)
    if fixed.geom_type in ("Polygon", "MultiPolygon"):
        return fixed
    parts = [g for g in getattr(fixed, "geoms", [fixed]) if g.geom_type in ("Polygon", "MultiPolygon")]
    return shapely.union_all(parts) if parts else shapely.Polygon()


def utm_epsg(lon: float, lat: float) -> int:
    """EPSG code of the WGS84 UTM zone that holds (lon, lat)."""
    zone = int((lon + 180.0) // 6.0) % 60 + 1
    return (32700 if lat < 0 else 32600) + zone


def _require_field(frame: gpd.GeoDataFrame, field: str, path: Path, key: str) -> None:
    if field not in frame.columns:
        available = ", ".join(c for c in frame.columns if c != "geometry")
        raise InputError(f"{path}: field {field!r} (areas.{key}) not found; fields are: {available}")


def load_zones(config: AreasConfig) -> gpd.GeoDataFrame:
    """Read the areas (and buffer) layers and return the monitored zones.

    Returns
    -------
    GeoDataFrame in EPSG:4326 with columns ``area_id``, ``area_name``, ``zone``
    (``inside``/``buffer``), ``utm_epsg`` (the area's projection for all pixel work) and
    ``geometry``; one row per area and zone.
    """
    areas = read_layer(config.path, "areas")
    _require_field(areas, config.id_field, config.path, "id_field")
    has_names = config.name_field in areas.columns
    areas = areas.to_crs(4326)
    cores = pd.DataFrame({
        "area_id": areas[config.id_field].astype(str),
        "area_name": areas[config.name_field].astype(str) if has_names else areas[config.id_field].astype(str),
        "geometry": [repair(g) for g in areas.geometry],
    })
    cores = gpd.GeoDataFrame(cores, geometry="geometry", crs=4326)
    cores = cores.dissolve(by="area_id", aggfunc="first", as_index=False)

    buffers = None
    if config.buffer_zones is not None:
        layer = read_layer(config.buffer_zones, "buffer zones")
        _require_field(layer, config.id_field, config.buffer_zones, "id_field")
        layer = layer.to_crs(4326)
        layer = gpd.GeoDataFrame(
            {"area_id": layer[config.id_field].astype(str), "geometry": [repair(g) for g in layer.geometry]},
            geometry="geometry", crs=4326,
        ).dissolve(by="area_id", as_index=False)
        unknown = sorted(set(layer.area_id) - set(cores.area_id))
        if unknown:
            raise InputError(
                f"{config.buffer_zones}: buffer zones for areas not in {config.path}: {', '.join(unknown)}"
            )
        buffers = dict(zip(layer.area_id, layer.geometry))
    return build_zones(cores, buffers, config.buffer_m)


def build_zones(cores: gpd.GeoDataFrame, buffers: dict | None, buffer_m: float) -> gpd.GeoDataFrame:
    """Pure geometry: cores (EPSG:4326, ``area_id``, ``area_name``) to inside/buffer zones."""
    all_cores = shapely.union_all(list(cores.geometry))
    rows = []
    for core in cores.itertuples(index=False):
        centroid = core.geometry.representative_point()
        epsg = utm_epsg(centroid.x, centroid.y)
        to_utm = pyproj.Transformer.from_crs(4326, epsg, always_xy=True).transform
        to_wgs = pyproj.Transformer.from_crs(epsg, 4326, always_xy=True).transform
        rows.append((core.area_id, core.area_name, ZONE_INSIDE, epsg, core.geometry))
        if buffers is not None:
            ring = buffers.get(core.area_id)
        elif buffer_m > 0:
            core_utm = transform(to_utm, core.geometry)
            ring = transform(to_wgs, core_utm.buffer(buffer_m))
        else:
            ring = None
        if ring is not None:
            ring = repair(ring.difference(all_cores))
            if not ring.is_empty:
                rows.append((core.area_id, core.area_name, ZONE_BUFFER, epsg, ring))
    return gpd.GeoDataFrame(
        rows, columns=["area_id", "area_name", "zone", "utm_epsg", "geometry"], geometry="geometry", crs=4326
    )

