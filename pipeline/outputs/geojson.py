"""RFC 7946 GeoJSON: ``alerts.geojson`` (and ``alerts_new.geojson``, ``alerts_reviewed.geojson``)."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely
from shapely.geometry import mapping

from ..files import write_output_text
from ..model import ALERT_PROPERTIES, overlay_columns
from .registry import register_writer


def _round_coords(obj, ndigits: int = 7):
    if isinstance(obj, (list, tuple)):
        if obj and isinstance(obj[0], (int, float)):
            return [round(float(v), ndigits) for v in obj]
        return [_round_coords(v, ndigits) for v in obj]
    return obj


def rfc7946_geometry(geometry: shapely.Geometry) -> dict:
    """GeoJSON geometry in lon/lat with counter-clockwise exteriors (right-hand rule)."""
    oriented = shapely.orient_polygons(geometry, exterior_cw=False)
    geo = mapping(oriented)
    return {"type": geo["type"], "coordinates": _round_coords(geo["coordinates"])}


def _jsonable(value):
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_jsonable(v) for v in value]
    return value


def to_feature_collection(alerts: gpd.GeoDataFrame) -> dict:
    """An RFC 7946 FeatureCollection (no ``crs`` member; WGS84 lon/lat) of the alerts."""
    if alerts.crs is not None and alerts.crs.to_epsg() != 4326:
        alerts = alerts.to_crs(4326)
    features = []
    for props in alerts.to_dict("records"):
        geometry = props.pop("geometry")
        features.append({
            "type": "Feature",
            "id": props["alert_id"],
            "geometry": rfc7946_geometry(geometry),
            "properties": {k: _jsonable(props[k]) for k in ALERT_PROPERTIES},
        })
    return {"type": "FeatureCollection", "features": features}


def write_geojson(alerts: gpd.GeoDataFrame, path: Path) -> Path:
    """alerts.geojson (RFC 7946), with the ``overlay_*`` properties when there are overlays."""
    collection = to_feature_collection(alerts)
    for column in overlay_columns(alerts):
        for feature, value in zip(collection["features"], alerts[column]):
            feature["properties"][column] = list(value) if isinstance(value, (list, tuple, np.ndarray)) else []
    text = json.dumps(collection, ensure_ascii=False, separators=(",", ":"))
    return write_output_text(path, text + "\n")


register_writer("geojson", "alerts.geojson", write_geojson)
