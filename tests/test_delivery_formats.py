"""Files agency GIS tools expect: zipped Shapefile, KML styled by class with a TimeSpan,
GeoPackage with DATE columns and a declared MultiPolygon type, a COG alert raster per area."""

from __future__ import annotations

import sqlite3
import xml.etree.ElementTree as ET
import zipfile

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import rasterio
import shapely

from pipeline.alerts import ALERT_PROPERTIES
from pipeline.outputs import alert_raster, gis, kml, shapefile

KML = "{http://www.opengis.net/kml/2.2}"


@pytest.fixture()
def alerts() -> gpd.GeoDataFrame:
    """Three alerts near La Pampa: a two-part mining scar, a clearing with a hostile area name, other."""
    lon, lat = -69.95, -12.95
    d = 0.002
    mining = shapely.MultiPolygon([shapely.box(lon, lat, lon + d, lat + d),
                                   shapely.box(lon + 2 * d, lat, lon + 3 * d, lat + d)])
    clearing = shapely.box(lon + 0.004, lat + 0.001, lon + 0.007, lat + 0.004)  # overlaps mining's 2nd part
    other = shapely.Polygon(shapely.box(lon - 0.01, lat - 0.01, lon - 0.006, lat - 0.006).exterior,
                            [shapely.box(lon - 0.009, lat - 0.009, lon - 0.008, lat - 0.008).exterior.coords])
    rows = []
    for i, (cls, conf, first) in enumerate([("mining", "high", "2019-08-14"), ("clearing", "low", "2020-02-03"),
                                            ("other", "nominal", "2021-12-31")]):
        row = {p: 0.5 for p in ALERT_PROPERTIES}
        row.update({"alert_id": f"demo-A{i}", "class": cls, "confidence": conf, "first_detected": first,
                    "last_observed": "2021-12-31", "status": "new", "zone": "buffer",
                    "protected_area_id": "RN09" if i < 2 else "../etc/PN 1",
                    "protected_area_name": "Tambopata <&> ñandú" if i == 1 else "Tambopata",
                    "sensors": ["sentinel-2a"], "source_items": [f"S2A_MSIL2A_2019{k:04d}_T19LCF_L2A" for k in range(12)],
                    "model_version": "m", "pipeline_version": "0.1.0", "run_id": "demo-1",
                    "centroid_lon": lon, "centroid_lat": lat})
        rows.append(row)
    return gpd.GeoDataFrame(rows, geometry=[mining, clearing, other], crs=4326)


def test_shapefile_zip_has_all_sidecars_short_names_dates_and_utf8(alerts, tmp_path):
    path = shapefile.write_shapefile_zip(alerts, tmp_path / "alerts_shp.zip")
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        assert {"alerts.shp", "alerts.shx", "alerts.dbf", "alerts.prj", "alerts.cpg", "fields.csv"} <= names
        assert archive.read("alerts.cpg").decode().strip().upper().replace("-", "") == "UTF8"
        assert "WGS" in archive.read("alerts.prj").decode()
        table = archive.read("fields.csv").decode().splitlines()
    assert "first_det,first_detected" in table and len(table) == len(ALERT_PROPERTIES) + 1
    info = pyogrio.read_info(f"/vsizip/{path}/alerts.shp")
    assert all(len(f) <= 10 for f in info["fields"])
    assert dict(zip(info["fields"], info["ogr_types"]))["first_det"] == "OFTDate"
    frame = gpd.read_file(f"/vsizip/{path}/alerts.shp")
    assert frame.loc[1, "pa_name"] == "Tambopata <&> ñandú"  # the .cpg makes accents survive
    assert str(frame.loc[0, "first_det"])[:10] == "2019-08-14"
    assert all(len(v.encode()) <= 254 for v in frame["src_items"])
    assert frame.loc[0, "src_items"].endswith("…")  # the 12-item list did not fit: cut and marked
    assert frame.crs.to_epsg() == 4326
    assert frame.geometry.iloc[0].equals(alerts.geometry.iloc[0])


def test_field_names_are_unique_and_short():
    names = shapefile.field_names(["alert_id", "overlay_mining_concessions", "overlay_mining_concessions2"])
    assert len(set(names.values())) == 3 and all(len(v) <= 10 for v in names.values())
    assert names["overlay_mining_concessions"].startswith("ov_")


def test_kml_styles_by_class_with_timespan(alerts, tmp_path):
    path = kml.write_kml(alerts, tmp_path / "alerts.kml")
    root = ET.parse(path).getroot()
    styles = {s.get("id"): s.find(f"{KML}PolyStyle/{KML}color").text for s in root.iter(f"{KML}Style")}
    assert set(styles) == {"class-mining", "class-clearing", "class-other"}
    assert len(set(styles.values())) == 3  # one colour per class
    marks = list(root.iter(f"{KML}Placemark"))
    assert [m.find(f"{KML}styleUrl").text for m in marks] == ["#class-mining", "#class-clearing", "#class-other"]
    assert [m.find(f"{KML}TimeSpan/{KML}begin").text for m in marks] == ["2019-08-14", "2020-02-03", "2021-12-31"]
    assert marks[0].find(f"{KML}MultiGeometry") is not None
    assert len(list(marks[2].iter(f"{KML}innerBoundaryIs"))) == 1
    # user text is escaped: HTML-escaped in the description, XML-escaped in ExtendedData
    assert "Tambopata &lt;&amp;&gt; ñandú" in marks[1].find(f"{KML}description").text
    data = {d.get("name"): d.find(f"{KML}value").text for d in marks[1].iter(f"{KML}Data")}
    assert data["protected_area_name"] == "Tambopata <&> ñandú"
    back = gpd.read_file(path)  # GDAL reads it too
    assert len(back) == 3


def test_gpkg_declares_multipolygon_and_date_columns(alerts, tmp_path):
    path = gis.write_gpkg(alerts, tmp_path / "alerts.gpkg")
    info = pyogrio.read_info(path, layer="alerts")
    assert info["geometry_type"] == "MultiPolygon"
    types = dict(zip(info["fields"], info["ogr_types"]))
    assert types["first_detected"] == types["last_observed"] == "OFTDate"
    assert types["area_ha"] == "OFTReal"
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT geometry_type_name FROM gpkg_geometry_columns").fetchone()[0] == "MULTIPOLYGON"
        assert db.execute("SELECT count(*) FROM layer_styles").fetchone()[0] == 1  # still styled for QGIS
    frame = gpd.read_file(path, layer="alerts")
    assert (frame.geometry.geom_type == "MultiPolygon").all()


def test_alert_raster_is_a_cog_with_date_and_confidence(alerts, tmp_path):
    folder = alert_raster.write_alert_rasters(alerts, tmp_path / "alert_rasters", resolution_m=10.0)
    assert sorted(p.name for p in folder.iterdir()) == ["RN09.tif", "etc_PN_1.tif"]  # ids never become paths as is
    with rasterio.open(tmp_path / "alert_rasters" / "RN09.tif") as src:
        assert src.crs.to_epsg() == 32719 and src.res == (10.0, 10.0)
        assert src.descriptions == ("date", "confidence")
        assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        assert src.tags()["DATE_EPOCH"] == "2014-12-31"
        date, conf = src.read(1), src.read(2)

        def at(lon, lat):
            x, y = gpd.GeoSeries([shapely.Point(lon, lat)], crs=4326).to_crs(32719).iloc[0].coords[0]
            row, col = src.index(x, y)
            return alert_raster.day_to_date(date[row, col]), int(conf[row, col])

    lon, lat = -69.95, -12.95
    assert at(lon + 0.001, lat + 0.0005) == ("2019-08-14", 3)  # mining, high
    assert at(lon + 0.0055, lat + 0.003) == ("2020-02-03", 1)  # clearing alone, low
    assert at(lon + 0.0045, lat + 0.0015) == ("2019-08-14", 3)  # overlap: the earliest wins
    assert date[0, 0] == 0 and conf[0, 0] == 0
    assert alert_raster.day_number("2015-01-01") == 1
    with pytest.raises(ValueError):
        alert_raster.day_number("2400-01-01")


def test_alert_raster_keeps_its_grid_and_empties_areas_without_alerts(alerts, tmp_path):
    folder = tmp_path / "alert_rasters"
    grids = {"RN09": (32719, (380000.0, 8560000.0, 390000.0, 8570000.0))}
    alert_raster.write_alert_rasters(alerts.iloc[:2], folder, resolution_m=20.0, grids=grids)
    with rasterio.open(folder / "RN09.tif") as src:
        assert tuple(src.bounds) == grids["RN09"][1] and src.res == (20.0, 20.0)
    # cec review rejected every RN09 alert: the file stays, on its grid, with no alert left
    alert_raster.write_alert_rasters(alerts.iloc[2:], folder)
    with rasterio.open(folder / "RN09.tif") as src:
        assert tuple(src.bounds) == grids["RN09"][1] and src.read(1).max() == 0
