"""Alerts: attribution, stable ids and the files an agency receives.

:func:`build_alerts` is pure (scars table in, GeoDataFrame of alerts out); the ``write_*``
functions at the bottom are the I/O edge, each writing atomically.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry import mapping

from .files import write_atomic

ALERT_PROPERTIES = (
    "alert_id",
    "class",
    "probability",
    "confidence",
    "area_ha",
    "first_detected",
    "last_observed",
    "protected_area_id",
    "protected_area_name",
    "zone",
    "centroid_lon",
    "centroid_lat",
    "delta_ndvi",
    "delta_nbr",
    "water_fraction",
    "bare_fraction",
    "sensors",
    "source_items",
    "status",
    "model_version",
    "pipeline_version",
    "run_id",
)
LIST_PROPERTIES = ("sensors", "source_items")
CLASS_NAMES = ("mining", "clearing", "other")
ID_GRID_M = 100.0  # centroids snapped to this grid make the id stable against pixel jitter


def alert_id(run_name: str, area_id: str, centroid_x: float, centroid_y: float, epsg: int) -> str:
    """Stable id: the run name, the area and the scar's centroid snapped to a 100 m grid."""
    snapped = (round(centroid_x / ID_GRID_M), round(centroid_y / ID_GRID_M))
    digest = hashlib.sha1(f"{run_name}|{area_id}|{epsg}|{snapped[0]}|{snapped[1]}".encode()).hexdigest()
    return f"{run_name}-{area_id}-{digest[:10]}"


def build_alerts(
    scars: pd.DataFrame,
    zones: gpd.GeoDataFrame,
    epsg: int,
    look_dates: Sequence[str],
    items_by_look: Sequence[Sequence[str]],
    sensors_by_look: Sequence[str],
    classes: np.ndarray,
    probabilities: np.ndarray,
    provenance: dict,
) -> gpd.GeoDataFrame:
    """Alerts for the scars of one area grid.

    Parameters
    ----------
    scars
        :func:`pipeline.scars.find_scars` table; geometry in EPSG:``epsg`` metres.
    zones
        The zones rasterised for this grid; ``zone_index`` n refers to row n − 1.
    look_dates, items_by_look, sensors_by_look
        Per look (time step): ISO date, STAC item ids, platform.
    classes, probabilities
        Classifier output per scar.
    provenance
        ``run_name``, ``run_id``, ``model_version``, ``pipeline_version``.

    Returns
    -------
    GeoDataFrame in EPSG:4326 with every property of ALERT_PROPERTIES.
    """
    if scars.empty:
        return gpd.GeoDataFrame(columns=[*ALERT_PROPERTIES, "geometry"], geometry="geometry", crs=4326)
    utm = gpd.GeoSeries(list(scars["geometry"]), crs=epsg)
    centroids_utm = utm.centroid
    centroids = centroids_utm.to_crs(4326)
    zone_rows = zones.iloc[scars["zone_index"].to_numpy() - 1]
    records = []
    for i, scar in enumerate(scars.itertuples(index=False)):
        looks = [int(t) for t in scar.looks] or [scar.first_look]
        zone = zone_rows.iloc[i]
        records.append({
            "alert_id": alert_id(provenance["run_name"], zone.area_id, centroids_utm.iloc[i].x,
                                 centroids_utm.iloc[i].y, epsg),
            "class": str(classes[i]),
            "probability": round(float(probabilities[i]), 3),
            "confidence": scar.confidence,
            "area_ha": round(float(utm.iloc[i].area) / 1e4, 3),
            "first_detected": look_dates[scar.first_look],
            "last_observed": look_dates[scar.last_look],
            "protected_area_id": str(zone.area_id),
            "protected_area_name": str(zone.area_name),
            "zone": str(zone.zone),
            "centroid_lon": round(float(centroids.iloc[i].x), 6),
            "centroid_lat": round(float(centroids.iloc[i].y), 6),
            "delta_ndvi": round(float(scar.delta_ndvi), 3),
            "delta_nbr": round(float(scar.delta_nbr), 3),
            "water_fraction": round(float(scar.water_fraction), 3),
            "bare_fraction": round(float(scar.bare_fraction), 3),
            "sensors": sorted({sensors_by_look[t] for t in looks}),
            "source_items": sorted({item for t in looks for item in items_by_look[t]}),
            "status": "new",
            "model_version": provenance["model_version"],
            "pipeline_version": provenance["pipeline_version"],
            "run_id": provenance["run_id"],
        })
    frame = gpd.GeoDataFrame(records, geometry=utm.to_crs(4326).to_numpy(), crs=4326)
    return frame


def sort_alerts(alerts: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Deterministic order: area, zone, first detection, id."""
    keys = ["protected_area_id", "zone", "first_detected", "alert_id"]
    return alerts.sort_values(keys, kind="stable").reset_index(drop=True)


# --- RFC 7946 GeoJSON --------------------------------------------------------------------


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


# --- writers (I/O edge) ------------------------------------------------------------------

TEST_PAUSE_ENV = "CEC_TEST_PAUSE_BEFORE_RENAME"
"""Test hook: seconds to sleep after an output is written under its temporary name and before
the rename, so that a test can kill a run mid-write. Unset in normal use."""


def pause_for_tests() -> None:
    """Sleep if the test hook asks for it (see ``TEST_PAUSE_ENV``)."""
    seconds = os.environ.get(TEST_PAUSE_ENV)
    if seconds:
        print(f"cec: paused before rename ({TEST_PAUSE_ENV})", file=sys.stderr, flush=True)
        time.sleep(float(seconds))


def atomic(path: Path, write: Callable[[Path], None]) -> Path:
    """:func:`pipeline.files.write_atomic` with the test pause between writing and renaming."""
    def write_then_pause(tmp: Path) -> None:
        write(tmp)
        pause_for_tests()

    return write_atomic(path, write_then_pause)


def atomic_text(path: Path, text: str) -> Path:
    """Write UTF-8 text atomically (with the test pause)."""
    return atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))



def _overlay_columns(alerts) -> list[str]:
    return [c for c in alerts.columns if str(c).startswith("overlay_")]


def write_geojson(alerts: gpd.GeoDataFrame, path: Path) -> Path:
    """alerts.geojson (RFC 7946), with the ``overlay_*`` properties when there are overlays."""
    collection = to_feature_collection(alerts)
    for column in _overlay_columns(alerts):
        for feature, value in zip(collection["features"], alerts[column]):
            feature["properties"][column] = list(value) if isinstance(value, (list, tuple, np.ndarray)) else []
    text = json.dumps(collection, ensure_ascii=False, separators=(",", ":"))
    return atomic_text(path, text + "\n")


def _flat(alerts: gpd.GeoDataFrame) -> pd.DataFrame:
    """Alert properties with list values joined by ';' (for CSV, GPKG, KML)."""
    table = pd.DataFrame(alerts[[*ALERT_PROPERTIES, *_overlay_columns(alerts)]]).copy()
    for column in [*LIST_PROPERTIES, *_overlay_columns(alerts)]:
        table[column] = table[column].map(lambda v: ";".join(v) if isinstance(v, (list, tuple, np.ndarray)) else "")
    return table


def write_alert_csv(alerts: gpd.GeoDataFrame, path: Path) -> Path:
    """alerts.csv: one row per alert, with centroid lat/lon columns (no geometry)."""
    buffer = io.StringIO()
    _flat(alerts).to_csv(buffer, index=False, quoting=csv.QUOTE_MINIMAL)
    return atomic_text(path, buffer.getvalue())


def summarize(alerts: gpd.GeoDataFrame, zones: gpd.GeoDataFrame, period: tuple[str, str]) -> pd.DataFrame:
    """Per protected area and zone: alert count and hectares by class, for the period."""
    base = zones[["area_id", "area_name", "zone"]].drop_duplicates()
    base = base.rename(columns={"area_id": "protected_area_id", "area_name": "protected_area_name"})
    rows = []
    for zone in base.itertuples(index=False):
        sel = alerts[(alerts["protected_area_id"] == zone.protected_area_id) & (alerts["zone"] == zone.zone)]
        row = {"protected_area_id": zone.protected_area_id, "protected_area_name": zone.protected_area_name,
               "zone": zone.zone, "period_start": period[0], "period_end": period[1]}
        for name in CLASS_NAMES:
            of_class = sel[sel["class"] == name]
            row[f"alerts_{name}"] = len(of_class)
            row[f"ha_{name}"] = round(float(of_class["area_ha"].sum()), 2)
        row["alerts_total"] = len(sel)
        row["ha_total"] = round(float(sel["area_ha"].sum()), 2)
        rows.append(row)
    return pd.DataFrame(rows)


def write_summary(summary: pd.DataFrame, path: Path) -> Path:
    """summary.csv."""
    return atomic_text(path, summary.to_csv(index=False))
