"""Alerts from scars: attribution, stable ids, order and the per-zone summary (pure).

The files an agency receives are written by :mod:`pipeline.outputs`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import geopandas as gpd
import numpy as np
import pandas as pd

from .generalize import clean_polygon
from .model import ALERT_PROPERTIES, CLASSES

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
    generalize: tuple[float, float] | None = None,
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
    generalize
        ``(min_area_m2, pixel_m)``: clean each polygon for GIS
        (:func:`pipeline.generalize.clean_polygon`: holes and parts below the mapping unit go,
        stair-steps are smoothed); ``area_ha`` and the centroid are those of the cleaned polygon.
        The alert id still comes from the traced scar's centroid (ids do not move).

    Returns
    -------
    GeoDataFrame in EPSG:4326 with every property of ALERT_PROPERTIES.
    """
    if scars.empty:
        return gpd.GeoDataFrame(columns=[*ALERT_PROPERTIES, "geometry"], geometry="geometry", crs=4326)
    traced = gpd.GeoSeries(list(scars["geometry"]), crs=epsg)
    id_points = traced.centroid
    utm = traced if generalize is None else gpd.GeoSeries(
        [clean_polygon(g, generalize[0], generalize[1]) for g in traced], crs=epsg)
    centroids = utm.centroid.to_crs(4326)
    zone_rows = zones.iloc[scars["zone_index"].to_numpy() - 1]
    records = []
    for i, scar in enumerate(scars.itertuples(index=False)):
        looks = [int(t) for t in scar.looks] or [scar.first_look]
        zone = zone_rows.iloc[i]
        records.append({
            "alert_id": alert_id(provenance["run_name"], zone.area_id, id_points.iloc[i].x,
                                 id_points.iloc[i].y, epsg),
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
            "detection_path": str(getattr(scar, "detection_path", "forest_loss")),
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


def summarize(alerts: gpd.GeoDataFrame, zones: gpd.GeoDataFrame, period: tuple[str, str]) -> pd.DataFrame:
    """Per protected area and zone: alert count and hectares by class, for the period."""
    base = zones[["area_id", "area_name", "zone"]].drop_duplicates()
    base = base.rename(columns={"area_id": "protected_area_id", "area_name": "protected_area_name"})
    rows = []
    for zone in base.itertuples(index=False):
        sel = alerts[(alerts["protected_area_id"] == zone.protected_area_id) & (alerts["zone"] == zone.zone)]
        row = {"protected_area_id": zone.protected_area_id, "protected_area_name": zone.protected_area_name,
               "zone": zone.zone, "period_start": period[0], "period_end": period[1]}
        for name in CLASSES:
            of_class = sel[sel["class"] == name]
            row[f"alerts_{name}"] = len(of_class)
            row[f"ha_{name}"] = round(float(of_class["area_ha"].sum()), 2)
        row["alerts_total"] = len(sel)
        row["ha_total"] = round(float(sel["area_ha"].sum()), 2)
        rows.append(row)
    return pd.DataFrame(rows)
