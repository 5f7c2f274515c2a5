"""Every export opens in its reference reader with one record per alert and the facts users need."""

from __future__ import annotations

import json
import sqlite3
import xml.etree.ElementTree as ET

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest

from pipeline.model import ALERT_PROPERTIES
from pipeline.model import CLASSES as CLASS_NAMES


@pytest.fixture(scope="module")
def final(run_sequence):
    _, _, results, snapshots = run_sequence
    return results[2], snapshots[2]


def test_geopackage_opens_with_pyogrio_and_carries_a_qgis_style_per_class(final):
    result, out = final
    layers = dict(pyogrio.list_layers(out / "alerts.gpkg"))
    assert "alerts" in layers and "layer_styles" in layers
    frame = gpd.read_file(out / "alerts.gpkg", layer="alerts", engine="pyogrio")
    assert frame.crs.to_epsg() == 4326
    assert sorted(frame["alert_id"]) == sorted(result.alerts["alert_id"])
    assert set(ALERT_PROPERTIES) <= set(frame.columns)
    assert set(frame.geom_type) <= {"Polygon", "MultiPolygon"}
    with sqlite3.connect(out / "alerts.gpkg") as db:
        (name, column, qml, default), = db.execute(
            "SELECT f_table_name, f_geometry_column, styleQML, useAsDefault FROM layer_styles").fetchall()
        registered = db.execute("SELECT data_type FROM gpkg_contents WHERE table_name='layer_styles'").fetchone()
    assert (name, default, registered) == ("alerts", 1, ("attributes",))
    assert column == pyogrio.read_info(out / "alerts.gpkg", layer="alerts")["geometry_name"]
    renderer = ET.fromstring(qml.split("\n", 1)[1]).find("renderer-v2")
    assert renderer.get("type") == "categorizedSymbol" and renderer.get("attr") == "class"
    assert [c.get("value") for c in renderer.iter("category")] == list(CLASS_NAMES)
    colours = {s.find(".//Option[@name='color']").get("value") for s in renderer.iter("symbol")}
    assert len(colours) == len(CLASS_NAMES), "each class has its own colour"


def test_kml_has_one_placemark_per_alert_with_its_facts(final):
    result, out = final
    frame = pyogrio.read_dataframe(out / "alerts.kml")
    frame.columns = [c.lower() if c != "geometry" else c for c in frame.columns]
    assert sorted(frame["name"]) == sorted(result.alerts["alert_id"])
    first = result.alerts.iloc[0]
    row = frame.set_index("name").loc[first["alert_id"]]
    for fact in (first["class"], first["protected_area_name"], first["first_detected"], first["zone"]):
        assert str(fact) in row["description"]
    assert set(frame.geom_type) <= {"Polygon", "MultiPolygon"}
    root = ET.parse(out / "alerts.kml").getroot()
    placemarks = root.findall(".//{http://www.opengis.net/kml/2.2}Placemark")
    assert len(placemarks) == len(result.alerts)


def test_csv_has_one_row_per_alert_with_lat_lon(final):
    result, out = final
    table = pd.read_csv(out / "alerts.csv")
    assert list(table["alert_id"]) == list(result.alerts["alert_id"])
    assert table["centroid_lat"].between(-13.2, -12.8).all() and table["centroid_lon"].between(-70.2, -69.5).all()
    assert set(table["status"]) <= {"new", "ongoing", "expanding"}


def test_geojson_files_are_rfc7946_and_pass_the_shipped_schema(final):
    from pipeline.validate import validate_file

    result, out = final
    for name in ("alerts.geojson", "alerts_new.geojson"):
        document = json.loads((out / name).read_text())
        assert document["type"] == "FeatureCollection" and "crs" not in document
        assert validate_file(out / name) == []
    assert len(gpd.read_file(out / "alerts.geojson")) == len(result.alerts)


def test_summary_counts_the_alerts_of_the_period_per_area_and_zone(final):
    result, out = final
    summary = pd.read_csv(out / "summary.csv")
    assert set(summary["zone"]) == {"inside", "buffer"}
    assert summary["alerts_total"].sum() == len(result.alerts)
    assert summary["period_start"].iloc[0] == "2019-01-01" and summary["period_end"].iloc[0] == "2021-12-31"
    for cls in CLASS_NAMES:
        assert summary[f"alerts_{cls}"].sum() == (result.alerts["class"] == cls).sum()


def test_overlays_name_the_features_each_alert_touches_in_every_format(final, tmp_path):
    """A mining concession over one alert and a community far away: only the touched one is named."""
    import shapely

    from pipeline.outputs.geojson import write_geojson
    from pipeline.outputs.tables import write_alert_csv
    from pipeline.config import OverlayConfig
    from pipeline.outputs.kml import write_kml
    from pipeline.overlays import attribute_overlays, load_overlays

    result, _ = final
    target = result.alerts.iloc[0]
    utm = gpd.GeoSeries([target.geometry], crs=4326).to_crs(32719).iloc[0]
    layer = gpd.GeoDataFrame({"titular": ["Concesión Ñaupa 01", "Comunidad lejana"]},
                             geometry=[utm.centroid.buffer(30), shapely.box(300000, 8400000, 300100, 8400100)],
                             crs=32719)
    layer.to_file(tmp_path / "concessions.gpkg", engine="pyogrio")
    layers = load_overlays([OverlayConfig(name="mining_concessions", path=tmp_path / "concessions.gpkg",
                                          name_field="titular")])
    alerts = attribute_overlays(result.alerts, layers)
    touched = alerts.set_index("alert_id")["overlay_mining_concessions"]
    assert touched.loc[target["alert_id"]] == ["Concesión Ñaupa 01"]
    assert sum(bool(v) for v in touched) == 1
    features = json.loads(write_geojson(alerts, tmp_path / "a.geojson").read_text())["features"]
    named = {f["id"]: f["properties"]["overlay_mining_concessions"] for f in features}
    assert named[target["alert_id"]] == ["Concesión Ñaupa 01"]
    table = pd.read_csv(write_alert_csv(alerts, tmp_path / "a.csv"), keep_default_na=False)
    assert table.set_index("alert_id").loc[target["alert_id"], "overlay_mining_concessions"] == "Concesión Ñaupa 01"
    kml = pyogrio.read_dataframe(write_kml(alerts, tmp_path / "a.kml"))
    kml.columns = [c.lower() if c != "geometry" else c for c in kml.columns]
    assert "Concesión Ñaupa 01" in kml.set_index("name").loc[target["alert_id"], "description"]
    with pytest.raises(Exception, match="no field 'owner'"):
        load_overlays([OverlayConfig(name="x", path=tmp_path / "concessions.gpkg", name_field="owner")])


def test_shapefile_and_alert_rasters_come_from_the_run(final):
    import datetime as dt

    import rasterio

    result, out = final
    shp = gpd.read_file(f"/vsizip/{out / 'alerts_shp.zip'}/alerts.shp")
    assert sorted(shp["alert_id"]) == sorted(result.alerts["alert_id"])
    assert pyogrio.read_info(out / "alerts.gpkg", layer="alerts")["geometry_type"] == "MultiPolygon"
    rasters = sorted((out / "alert_rasters").glob("*.tif"))
    assert [p.stem for p in rasters] == sorted(set(result.alerts["protected_area_id"]))
    with rasterio.open(rasters[0]) as src:
        assert src.res == (10.0, 10.0) and src.crs.to_epsg() == 32719
        date = src.read(1)
        for row in result.alerts.to_dict("records"):
            inner = gpd.GeoSeries([row["geometry"]], crs=4326).to_crs(32719).iloc[0].representative_point()
            value = date[src.index(inner.x, inner.y)]
            assert value > 0 and row["first_detected"] >= "2019-01-01"
            # where alerts overlap the earliest wins, so a pixel is never later than its alert
            assert value <= (dt.date.fromisoformat(row["first_detected"]) - dt.date(2014, 12, 31)).days
        assert (date == 0).mean() > 0.5  # outside the alerts: no alert


def test_alert_polygons_are_clean_for_gis(final):
    import shapely

    result, _ = final
    utm = result.alerts.to_crs(32719)
    for row, geom in zip(result.alerts.to_dict("records"), utm.geometry):
        parts = list(shapely.get_parts(geom))
        assert geom.is_valid
        assert all(len(p.interiors) == 0 or min(shapely.Polygon(r).area for r in p.interiors) >= 5000 for p in parts)
        assert len(parts) == 1 or min(p.area for p in parts) >= 5000  # parts below 0.5 ha are dropped
        assert abs(row["area_ha"] - geom.area / 1e4) < 0.01  # area_ha is the final polygon's
