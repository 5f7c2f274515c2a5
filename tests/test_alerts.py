"""Alerts from scars: stable ids within their 100 m cell, the id-collision path, the facts each alert
carries, and the per-area summary."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from pipeline.alerts import alert_id, build_alerts, summarize
from pipeline.model import ALERT_PROPERTIES
from pipeline.lifecycle import LifecycleParams, update_lifecycle

UTM = 32719
CELL_M = 100.0  # the id grid the README promises: "centroids snapped to a 100 m grid"
PROVENANCE = {"run_name": "test", "run_id": "test-1", "model_version": "m1", "pipeline_version": "0"}
LOOK_DATES = ["2018-07-01", "2018-08-01", "2019-07-10", "2019-08-11", "2019-09-12"]
ITEMS = [("S2A_a",), ("S2B_b",), ("S2A_c", "S2A_c2"), ("S2B_d",), ("S2A_e",)]
SENSORS = ["sentinel-2a", "sentinel-2b", "sentinel-2a", "sentinel-2b", "sentinel-2a"]


def zones_table(*area_ids: str) -> gpd.GeoDataFrame:
    rows = [{"area_id": a, "area_name": f"Área «{a}»", "zone": z, "utm_epsg": UTM}
            for a in area_ids for z in ("inside", "buffer")]
    return gpd.GeoDataFrame(rows, geometry=[shapely.box(0, 0, 1, 1)] * len(rows), crs=UTM)


def scars_table(boxes: list[tuple], zone_index: list[int] | None = None, looks=None) -> pd.DataFrame:
    n = len(boxes)
    return pd.DataFrame({
        "geometry": [shapely.box(*b) for b in boxes],
        "zone_index": zone_index or [1] * n,
        "confidence": ["nominal"] * n,
        "first_look": [2] * n,
        "last_look": [4] * n,
        "looks": looks or [(2, 3, 4)] * n,
        "delta_ndvi": [0.6] * n, "delta_nbr": [0.5] * n, "water_fraction": [0.1] * n, "bare_fraction": [0.8] * n,
    })


def alerts_of(scars: pd.DataFrame, zones: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    n = len(scars)
    return build_alerts(scars, zones, UTM, LOOK_DATES, ITEMS, SENSORS, np.array(["mining"] * n),
                        np.full(n, 0.9), PROVENANCE)


def test_alert_id_is_stable_within_its_100_m_cell():
    x, y = 384000.0, 8560000.0  # a cell centre
    same = {alert_id("test", "RN09", x + dx, y + dy, UTM) for dx, dy in
            [(0, 0), (10, 0), (-10, 20), (49, -49), (-49.9, 49.9)]}
    assert len(same) == 1, "centroids that move within the cell keep the id"
    assert alert_id("test", "RN09", x + 51, y, UTM) != alert_id("test", "RN09", x, y, UTM)
    assert alert_id("test", "RN09", x, y + CELL_M, UTM) != alert_id("test", "RN09", x, y, UTM)
    assert alert_id("test", "RN09", x, y, UTM).startswith("test-RN09-")
    assert alert_id("test", "RN09", x, y, UTM) != alert_id("test", "RN10", x, y, UTM)
    assert alert_id("test", "RN09", x, y, UTM) != alert_id("test", "RN09", x, y, 32718)


def test_a_scar_outlined_one_pixel_off_keeps_its_id():
    """Re-detection jitters a scar's outline by a pixel (10 m); its centroid stays in the cell."""
    zones = zones_table("RN09")
    a = alerts_of(scars_table([(383950, 8559950, 384050, 8560050)]), zones)
    b = alerts_of(scars_table([(383960, 8559950, 384060, 8560060)]), zones)
    assert a["alert_id"].iloc[0] == b["alert_id"].iloc[0]


def test_colliding_ids_of_separate_scars_get_suffixes():
    """Two scars whose centroids fall in one 100 m cell, and a third where an old alert was: the
    candidate ids collide; none may overwrite another."""
    zones = zones_table("RN09")
    detected = alerts_of(scars_table([(383960, 8559960, 383990, 8560040),   # west half of the cell
                                       (384010, 8559960, 384040, 8560040)]), zones)  # east half
    assert detected["alert_id"].nunique() == 1, "the set-up: both centroids lie in one cell"
    stored = detected.iloc[:0].copy()
    cumulative, observed = update_lifecycle(detected, stored, LifecycleParams())
    ids = list(observed["alert_id"])
    base = detected["alert_id"].iloc[0]
    assert sorted(ids) == sorted([base, f"{base}-2"])
    # next run: a third scar in the same cell, away from both: a new id again, not a stored one
    third = alerts_of(scars_table([(383960, 8560042, 384040, 8560056)]), zones)
    assert third["alert_id"].iloc[0] == base
    cumulative2, observed2 = update_lifecycle(third, cumulative, LifecycleParams(match_overlap=0.1))
    assert list(observed2["status"]) == ["new"]
    assert observed2["alert_id"].iloc[0] == f"{base}-3"
    assert cumulative2["alert_id"].is_unique and len(cumulative2) == 3


def test_alert_facts_come_from_the_scar_and_its_looks():
    zones = zones_table("RN09")
    scars = scars_table([(384000, 8560000, 384200, 8560150), (385000, 8560000, 385100, 8560100)],
                        zone_index=[1, 2], looks=[(2, 3), (3,)])
    scars.loc[1, ["first_look", "last_look"]] = [3, 3]
    alerts = alerts_of(scars, zones)
    assert list(alerts.columns[:-1]) == list(ALERT_PROPERTIES) or set(ALERT_PROPERTIES) <= set(alerts.columns)
    first, second = alerts.iloc[0], alerts.iloc[1]
    assert first["area_ha"] == pytest.approx(200 * 150 / 1e4) and second["area_ha"] == pytest.approx(1.0)
    assert (first["first_detected"], first["last_observed"]) == ("2019-07-10", "2019-09-12")
    assert (second["first_detected"], second["last_observed"]) == ("2019-08-11", "2019-08-11")
    assert first["source_items"] == ["S2A_c", "S2A_c2", "S2B_d"]
    assert first["sensors"] == ["sentinel-2a", "sentinel-2b"] and second["sensors"] == ["sentinel-2b"]
    assert (first["zone"], second["zone"]) == ("inside", "buffer")
    assert first["protected_area_name"] == "Área «RN09»"
    centroid = gpd.GeoSeries([shapely.Point(384100, 8560075)], crs=UTM).to_crs(4326).iloc[0]
    assert (first["centroid_lon"], first["centroid_lat"]) == (pytest.approx(centroid.x, abs=1e-6),
                                                              pytest.approx(centroid.y, abs=1e-6))
    assert alerts.crs.to_epsg() == 4326
    back = alerts.to_crs(UTM).geometry.iloc[0]
    assert back.area == pytest.approx(200 * 150, rel=1e-6)


def test_summary_counts_each_area_separately():
    zones = zones_table("A1", "B2")
    rows = [("A1", "inside", "mining", 1.5), ("A1", "inside", "clearing", 0.5), ("A1", "buffer", "mining", 2.0),
            ("B2", "inside", "mining", 4.0)]
    alerts = pd.DataFrame(rows, columns=["protected_area_id", "zone", "class", "area_ha"])
    summary = summarize(alerts, zones, ("2019-01-01", "2019-12-31")).set_index(["protected_area_id", "zone"])
    expected = {("A1", "inside"): (1, 1, 2.0), ("A1", "buffer"): (1, 0, 2.0), ("B2", "inside"): (1, 0, 4.0),
                ("B2", "buffer"): (0, 0, 0.0)}
    for key, (mining, clearing, ha) in expected.items():
        row = summary.loc[key]
        assert (row["alerts_mining"], row["alerts_clearing"], row["ha_total"]) == (mining, clearing, ha), key
    assert summary["alerts_total"].sum() == len(alerts)


def test_geojson_geometry_follows_the_right_hand_rule():
    """RFC 7946 § 3.1.6: exterior rings counter-clockwise, holes clockwise."""
    from pipeline.outputs.geojson import rfc7946_geometry

    clockwise = shapely.Polygon([(0, 0), (0, 1), (1, 1), (1, 0)], [[(0.2, 0.2), (0.4, 0.2), (0.4, 0.4), (0.2, 0.4)]])
    rings = rfc7946_geometry(clockwise)["coordinates"]
    assert shapely.LinearRing(rings[0]).is_ccw and not shapely.LinearRing(rings[1]).is_ccw


def test_an_alert_caught_early_keeps_its_id_when_its_scar_grows_tenfold():
    """Matching uses the overlap over the SMALLER polygon (match_overlap 10 %): a 1 ha alert inside
    a 16 ha scar is the same scar grown, not a new one."""
    zones = zones_table("RN09")
    stored = alerts_of(scars_table([(384150, 8560150, 384250, 8560250)]), zones)       # 1 ha
    stored_cumulative, _ = update_lifecycle(stored, stored.iloc[:0].copy(), LifecycleParams())
    grown = alerts_of(scars_table([(384000, 8560000, 384400, 8560400)]), zones)         # 16 ha around it
    cumulative, observed = update_lifecycle(grown, stored_cumulative, LifecycleParams(match_overlap=0.1))
    assert list(observed["alert_id"]) == list(stored["alert_id"]) and list(observed["status"]) == ["expanding"]
    assert len(cumulative) == 1
