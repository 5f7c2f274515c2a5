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
from .files import SAFE_NAME_PATTERN, is_safe_name

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
    if frame.crs.is_geographic:
        xmin, ymin, xmax, ymax = (float(v) for v in frame.total_bounds)
        if xmin < -180.0001 or xmax > 360.0001 or ymin < -90.0001 or ymax > 90.0001:
            raise InputError(
                f"{path}: {what} layer says it is in {frame.crs.name} but its coordinates are not lon/lat "
                f"(x {xmin:.6g}..{xmax:.6g}, y {ymin:.6g}..{ymax:.6g}); a GeoJSON without a 'crs' member is read "
                "as WGS84 lon/lat (RFC 7946): reproject the layer to EPSG:4326, or use a GeoPackage"
            )
    return frame


MAX_ID_LENGTH = 128
"""Longest area id (alert ids add the run name and a hash, and must stay one path component)."""
MAX_LISTED = 10
"""Problems listed by name in one message; the rest are counted."""


def _listed(values: list[str]) -> str:
    shown = ", ".join(values[:MAX_LISTED])
    return shown + (f" … and {len(values) - MAX_LISTED} more" if len(values) > MAX_LISTED else "")


def _polygons_only(frame: gpd.GeoDataFrame, path: Path, what: str) -> None:
    kinds = frame.geometry.geom_type
    bad = frame[~kinds.isin(["Polygon", "MultiPolygon"])]
    if len(bad):
        rows = [f"feature {i + 1} ({kind})" for i, kind in zip(_positions(frame, bad), bad.geometry.geom_type)]
        raise InputError(f"{path}: {what} layer must hold polygons; {len(bad)} feature(s) are not: {_listed(rows)}")


def _positions(frame: gpd.GeoDataFrame, subset: gpd.GeoDataFrame) -> list[int]:
    where = {label: i for i, label in enumerate(frame.index)}
    return [where[label] for label in subset.index]


def area_ids(frame: gpd.GeoDataFrame, field: str, path: Path, key: str) -> pd.Series:
    """The id column as strings, refusing null ids and ids that are not safe names.

    Ids name evidence folders and files, so they must never carry a path: letters, digits,
    ``_ . -``, starting with a letter or digit (:data:`pipeline.files.SAFE_NAME_PATTERN`).
    """
    raw = frame[field]
    null = raw.isna()
    if null.any():
        rows = [f"feature {i + 1}" for i in _positions(frame, frame[null])]
        raise InputError(f"{path}: {int(null.sum())} feature(s) have no {field!r} (areas.{key}): {_listed(rows)}")
    ids = raw.map(_id_text)
    bad = sorted({v for v in ids if not is_safe_name(v) or len(v) > MAX_ID_LENGTH})
    if bad:
        raise InputError(
            f"{path}: {len(bad)} {field!r} value(s) (areas.{key}) are not safe ids: {_listed([repr(v) for v in bad])}; "
            f"ids name files and folders, so they must match {SAFE_NAME_PATTERN} and be at most "
            f"{MAX_ID_LENGTH} characters"
        )
    return ids


def _id_text(value) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # WDPAID read as float when the column has gaps
    return str(value)


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
    _polygons_only(areas, config.path, "areas")
    ids = area_ids(areas, config.id_field, config.path, "id_field")
    name_field = config.name_field
    if name_field is not None:
        _require_field(areas, name_field, config.path, "name_field")
    elif "NAME" in areas.columns:
        name_field = "NAME"
    names = ids if name_field is None else areas[name_field].where(areas[name_field].notna(), ids).astype(str)
    areas = areas.to_crs(4326)
    cores = pd.DataFrame({
        "area_id": ids.to_numpy(),
        "area_name": names.to_numpy(),
        "geometry": [repair(g) for g in areas.geometry],
    })
    empty = [f"feature {i + 1} ({aid})" for i, (aid, g) in enumerate(zip(cores.area_id, cores.geometry)) if g.is_empty]
    if empty:
        raise InputError(f"{config.path}: {len(empty)} polygon(s) have no area once repaired: {_listed(empty)}")
    clashes = cores.groupby("area_id")["area_name"].unique()
    clashes = clashes[clashes.map(len) > 1]
    if len(clashes):
        detail = [f"{aid} ({' / '.join(map(str, names))})" for aid, names in clashes.items()]
        raise InputError(
            f"{config.path}: {len(clashes)} id(s) are given to areas with different names, which would merge "
            f"them into one: {_listed(detail)}; give each area its own {config.id_field!r}"
        )
    cores = gpd.GeoDataFrame(cores, geometry="geometry", crs=4326)
    cores = cores.dissolve(by="area_id", aggfunc="first", as_index=False)

    buffers = None
    if config.buffer_zones is not None:
        layer = read_layer(config.buffer_zones, "buffer zones")
        _require_field(layer, config.id_field, config.buffer_zones, "id_field")
        _polygons_only(layer, config.buffer_zones, "buffer zones")
        buffer_ids = area_ids(layer, config.id_field, config.buffer_zones, "id_field")
        layer = layer.to_crs(4326)
        layer = gpd.GeoDataFrame(
            {"area_id": buffer_ids.to_numpy(), "geometry": [repair(g) for g in layer.geometry]},
            geometry="geometry", crs=4326,
        ).dissolve(by="area_id", as_index=False)
        unknown = sorted(set(layer.area_id) - set(cores.area_id))
        if unknown:
            raise InputError(
                f"{config.buffer_zones}: buffer zones for areas not in {config.path}: {_listed(unknown)}"
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

