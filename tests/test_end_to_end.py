"""End to end on a small generated La Pampa scene: the alerts a user gets, and their file."""

from __future__ import annotations

import json
import shutil

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from shapely.geometry import shape

from pipeline.model import ALERT_PROPERTIES

from .conftest import REPO, read_truth, run_pipeline, small_spec, write_config

MIN_OVERLAP = 0.3
PIXEL_M = 10.0
# The scene and the detection both take a 10 m pixel as scar when its centre is in the scar (the
# 20 m SWIR bands only sharpen or blur NBR at the edge, NDVI is 10 m), so an alert may differ from
# its planted scar by at most one pixel along each edge: perimeter × 10 m.
EDGE_M = PIXEL_M


@pytest.fixture(scope="module")
def first_run(small_run):
    """The session's shared run of the small scene (conftest.small_run)."""
    return small_run


def _alerts_utm(result) -> gpd.GeoDataFrame:
    return result.alerts.to_crs(32719)


def _comparable(result) -> list[dict]:
    """The alert features without the per-run id, for comparing runs."""
    from pipeline.outputs.geojson import to_feature_collection

    features = to_feature_collection(result.alerts)["features"]
    for feature in features:
        feature["properties"].pop("run_id")
    return features


def test_every_planted_scar_is_alerted_with_its_class_and_zone(first_run, small_scene):
    result, _ = first_run
    alerts = _alerts_utm(result)
    truth = read_truth(small_scene)
    spec = small_spec()
    # what the scene spec plants (AMW polygons come from the data; the others are counted in the spec)
    assert (truth.source == "synthetic-clearing").sum() == spec.n_clearings
    assert (truth.source == "synthetic-small-clearing").sum() == spec.n_small_clearings == truth.below_mmu.sum()
    assert (truth.source == "extra-scar").sum() == len(spec.extra_scars)
    assert truth.source.str.startswith("amw-").sum() >= 2, "the window holds new AMW mining"
    for _, scar in truth[~truth.below_mmu].iterrows():
        overlap = alerts.intersection(scar.geometry).area
        assert overlap.sum() >= MIN_OVERLAP * scar.geometry.area, f"{scar.scar_id} ({scar.area_ha:.1f} ha) not alerted"
        best = alerts.loc[overlap.idxmax()]
        assert best["class"] == scar["class"], f"{scar.scar_id}: class {best['class']}, expected {scar['class']}"
        assert best["zone"] == scar.zone, f"{scar.scar_id}: zone {best['zone']}, expected {scar.zone}"
    assert {"inside", "buffer"} <= set(alerts["zone"]), "the scene should test both zones"
    assert {"mining", "clearing"} <= set(alerts["class"])


def test_alert_area_matches_the_planted_scar_within_a_pixel_of_its_edge(first_run, small_scene):
    """No alert is larger than its scar plus a one-pixel ring (EDGE_M); the synthetic clearings,
    in clear forest away from the swath edge, are also no smaller than the scar less that ring.
    (AMW scars may lose ground that no clear baseline look saw: a lower bound there would be a guess.)"""
    result, _ = first_run
    alerts = _alerts_utm(result)
    truth = read_truth(small_scene)
    for _, scar in truth[~truth.below_mmu].iterrows():
        touching = alerts[alerts.intersects(scar.geometry)]
        alert_ha = touching.area.sum() / 1e4
        assert (touching["area_ha"].sum() == pytest.approx(alert_ha, abs=0.01 * len(touching))), "area_ha is the polygon's"
        ring_ha = scar.geometry.length * EDGE_M / 1e4
        true_ha = scar.geometry.area / 1e4
        assert alert_ha <= true_ha + ring_ha, f"{scar.scar_id}: {alert_ha:.2f} ha alerted for {true_ha:.2f} ha"
        if scar.source in ("synthetic-clearing", "extra-scar"):
            assert alert_ha >= true_ha - ring_ha, f"{scar.scar_id}: {alert_ha:.2f} ha alerted for {true_ha:.2f} ha"


def test_no_alert_without_a_planted_scar(first_run, small_scene):
    """Unchanged forest, old scars, clouds and shadows, the swath edge and sandbars raise nothing."""
    result, _ = first_run
    alerts = _alerts_utm(result)
    truth = read_truth(small_scene)
    planted = truth.union_all()
    lookalikes = gpd.read_file(small_scene / "lookalikes.geojson").set_crs(32719, allow_override=True)
    assert {"old_mining", "river", "swath_edge"} <= set(lookalikes["kind"])
    for alert in alerts.itertuples():
        on_truth = alert.geometry.intersection(planted).area / alert.geometry.area
        assert on_truth >= 0.5, f"alert {alert.alert_id} ({alert.area_ha} ha) is mostly off the planted scars"
    edge_line = json.loads((small_scene / "scene.json").read_text())["swath_edge_line_utm"]
    regions = {kind: lookalikes[lookalikes["kind"] == kind].union_all() for kind in ("old_mining", "river")}
    regions["swath edge strip"] = shapely.LineString(edge_line).buffer(20.0)
    for kind, region in regions.items():
        spill = alerts.intersection(region).area.sum() / 1e4
        assert spill < 0.5, f"{spill:.2f} ha of alerts on {kind}"


def test_scar_below_the_mapping_unit_is_not_alerted(first_run, small_scene):
    result, _ = first_run
    alerts = _alerts_utm(result)
    truth = read_truth(small_scene)
    for scar in truth[truth.below_mmu].itertuples():
        assert alerts.intersection(scar.geometry).area.sum() < 0.5 * scar.geometry.area
    assert (alerts["area_ha"] >= 0.5).all()


def test_scar_across_a_chunk_border_is_one_alert(first_run, small_scene):
    from .conftest import CHUNK_BORDER_PX, small_spec

    result, _ = first_run
    alerts = _alerts_utm(result)
    straddler = read_truth(small_scene).set_index("scar_id").loc["extra-01"].geometry
    border_y = small_spec().y1 - CHUNK_BORDER_PX * 10.0
    assert straddler.bounds[1] < border_y < straddler.bounds[3]
    touching = alerts[alerts.intersects(straddler)]
    assert len(touching) == 1
    _, miny, _, maxy = touching.geometry.iloc[0].bounds
    assert miny < border_y < maxy


def test_same_alerts_with_another_chunk_size(first_run, small_scene, tmp_path):
    """(Two workers on a real scheduler, at a third chunk size: test_cluster.py.)"""
    other_chunks = run_pipeline(write_config(tmp_path / "c200", small_scene, **{"detection.chunk_px": 200}))
    assert _comparable(other_chunks) == _comparable(first_run[0])


def test_alert_file_follows_rfc7946_and_the_contract(first_run, small_scene):
    _, out = first_run
    collection = json.loads((out / "alerts.geojson").read_text())
    assert collection["type"] == "FeatureCollection"
    assert "crs" not in collection
    assert collection["features"], "the scene has scars, the file must have alerts"
    west, south, east, north = gpd.read_file(small_scene / "truth.geojson").total_bounds
    for feature in collection["features"]:
        props = feature["properties"]
        assert set(ALERT_PROPERTIES) <= set(props), set(ALERT_PROPERTIES) - set(props)
        assert props["class"] in ("mining", "clearing", "other")
        assert props["confidence"] in ("low", "nominal", "high")
        assert props["zone"] in ("inside", "buffer")
        assert 0 <= props["probability"] <= 1 and props["area_ha"] >= 0.5
        assert props["first_detected"] <= props["last_observed"]
        assert props["protected_area_id"] == "RN09"
        assert isinstance(props["sensors"], list) and isinstance(props["source_items"], list)
        assert props["source_items"] and all(i.startswith("S2") for i in props["source_items"])
        geometry = feature["geometry"]
        assert geometry["type"] in ("Polygon", "MultiPolygon")
        polygons = [geometry["coordinates"]] if geometry["type"] == "Polygon" else geometry["coordinates"]
        for rings in polygons:
            for i, ring in enumerate(rings):
                assert ring[0] == ring[-1]
                ccw = shapely.LinearRing(ring).is_ccw
                assert ccw if i == 0 else not ccw, "exterior rings counter-clockwise, holes clockwise"
                for lon, lat in ring:
                    assert west - 0.01 < lon < east + 0.01 and south - 0.01 < lat < north + 0.01
        assert shape(geometry).is_valid, f"{props['alert_id']}: invalid geometry"
        centroid = shape(geometry).centroid
        assert abs(centroid.x - props["centroid_lon"]) < 1e-3 and abs(centroid.y - props["centroid_lat"]) < 1e-3
    assert len({f["properties"]["alert_id"] for f in collection["features"]}) == len(collection["features"])
    # The GDAL reader agrees on the file.
    assert len(gpd.read_file(out / "alerts.geojson")) == len(collection["features"])


def test_summary_csv_and_run_json(first_run):
    result, out = first_run
    summary = pd.read_csv(out / "summary.csv")
    assert set(summary["zone"]) == {"inside", "buffer"}
    assert summary["alerts_total"].sum() == len(result.alerts)
    assert summary["ha_total"].sum() == pytest.approx(result.alerts["area_ha"].sum(), abs=0.1)
    run = json.loads((out / "run.json").read_text())
    assert run["alerts"] == len(result.alerts) and run["skipped_inputs"] == []
    looks = run["areas"][0]["looks"]
    spec = small_spec()  # one look per planted date: every generated scene is under max_cloud_cover 95 %
    assert [lk["period"] for lk in looks].count("baseline") == len(spec.baseline_dates)
    assert [lk["date"] for lk in looks] == [d.isoformat() for d in (*spec.baseline_dates, *spec.monitor_dates)]
    assert run["config"]["detection"]["min_area_ha"] == 0.5
    csv = pd.read_csv(out / "alerts.csv")
    assert list(csv["alert_id"]) == list(result.alerts["alert_id"])


def test_rerun_gives_the_same_alert_ids(first_run, small_scene, tmp_path):
    again = run_pipeline(write_config(tmp_path, small_scene))
    assert list(again.alerts["alert_id"]) == list(first_run[0].alerts["alert_id"])


def test_nothing_is_alerted_outside_the_areas(small_scene, tmp_path):
    """With the reserve alone (no buffer zone), scars in the buffer zone raise nothing."""
    config = write_config(tmp_path, small_scene, **{"areas.buffer_zones": None, "areas.buffer_m": 0})
    result = run_pipeline(config)
    alerts = _alerts_utm(result)
    core = gpd.read_file(REPO / "data/demo/protected_areas.geojson").to_crs(32719).union_all()
    truth = read_truth(small_scene)
    inside = truth[(truth.zone == "inside") & ~truth.below_mmu]
    assert len(inside) >= 1, "the scene plants scars inside the reserve"
    for scar in inside.itertuples():  # still alerted without the buffer zone
        assert alerts.intersection(scar.geometry).area.sum() >= MIN_OVERLAP * scar.geometry.area, scar.scar_id
    assert set(alerts["zone"]) == {"inside"}
    for alert in alerts.itertuples():
        assert alert.geometry.difference(core.buffer(1.0)).area < 1.0, "alert geometry leaves the area"
    for scar in truth[(truth.zone == "buffer")].itertuples():
        assert alerts.intersection(scar.geometry).area.sum() < 0.01 * scar.geometry.area


def test_corrupt_asset_is_skipped_and_reported(small_scene, tmp_path):
    scene = tmp_path / "scene"
    shutil.copytree(small_scene, scene)
    victim = sorted((scene / "items").glob("*2019*"))[0]
    (victim / "red.tif").write_bytes(b"not a tiff")
    result = run_pipeline(write_config(tmp_path / "run", scene))
    assert result.exit_code == 3
    assert [s["item"] for s in result.skipped] == [victim.name]
    assert "red.tif" in result.skipped[0]["reason"]
    run = json.loads((tmp_path / "run" / "out" / "run.json").read_text())
    assert run["skipped_inputs"][0]["item"] == victim.name
