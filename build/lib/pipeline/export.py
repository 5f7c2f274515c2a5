"""Alert exports for GIS and the field (I/O edge): styled GeoPackage and KML.

GeoJSON, CSV and ``summary.csv`` writers are in :mod:`pipeline.alerts`. Every file here is
built under a temporary name in the destination folder and renamed into place.

- GeoPackage: layer ``alerts`` plus a ``layer_styles`` table holding a QGIS QML style
  (categorised by ``class``: one symbol per class), which is where QGIS looks for a layer's
  default style in a GeoPackage: the file opens in QGIS already coloured.
- KML (GDAL's KML driver): one Placemark per alert, named by ``alert_id``, with a description
  table of its facts (class, confidence, area, dates, protected area and zone, position) for
  Google Earth and phones in the field; every property also rides along as ExtendedData.
"""

from __future__ import annotations

import contextlib
import html
import sqlite3
from pathlib import Path

import geopandas as gpd

from .alerts import CLASS_NAMES, _flat, atomic

LAYER = "alerts"
CLASS_COLOURS = {"mining": "227,26,28", "clearing": "255,127,0", "other": "106,61,154"}
"""Fill colours (R,G,B) per class, shared by the GeoPackage style, the KML and the report."""
def qml_style(column: str = "class") -> str:
    """A QGIS QML categorised renderer over ``column``: one semi-transparent fill per class."""
    categories, symbols = [], []
    for i, name in enumerate(CLASS_NAMES):
        rgb = CLASS_COLOURS[name]
        categories.append(f'<category symbol="{i}" value="{name}" label="{name}" render="true"/>')
        symbols.append(
            f'<symbol type="fill" name="{i}" alpha="0.55" clip_to_extent="1" force_rhr="0">'
            f'<layer class="SimpleFill" enabled="1" pass="0" locked="0"><Option type="Map">'
            f'<Option type="QString" name="color" value="{rgb},255"/>'
            f'<Option type="QString" name="outline_color" value="{rgb},255"/>'
            f'<Option type="QString" name="outline_style" value="solid"/>'
            f'<Option type="QString" name="outline_width" value="0.6"/>'
            f'<Option type="QString" name="outline_width_unit" value="MM"/>'
            f'<Option type="QString" name="style" value="solid"/>'
            f"</Option></layer></symbol>"
        )
    return (
        "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
        '<qgis version="3.28.0" styleCategories="Symbology|Labeling">'
        f'<renderer-v2 type="categorizedSymbol" attr="{column}" symbollevels="0" enableorderby="0" forceraster="0">'
        f"<categories>{''.join(categories)}</categories>"
        f"<symbols>{''.join(symbols)}</symbols>"
        "</renderer-v2>"
        '<labeling type="simple"><settings calloutType="simple">'
        '<text-style fieldName="alert_id" fontSize="8" textColor="0,0,0,255"/>'
        "</settings></labeling>"
        "</qgis>\n"
    )


def _add_layer_styles(gpkg: Path, layer: str) -> None:
    """Create QGIS's ``layer_styles`` table (registered as GeoPackage attributes) with the style."""
    with contextlib.closing(sqlite3.connect(gpkg)) as db:
        db.execute(
            "CREATE TABLE IF NOT EXISTS layer_styles (id INTEGER PRIMARY KEY AUTOINCREMENT, "
            "f_table_catalog TEXT(256), f_table_schema TEXT(256), f_table_name TEXT(256), "
            "f_geometry_column TEXT(256), styleName TEXT(30), styleQML TEXT, styleSLD TEXT, "
            "useAsDefault BOOLEAN, description TEXT, owner TEXT(30), ui TEXT(30), "
            "update_time DATETIME DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')))"
        )
        db.execute(
            "INSERT OR REPLACE INTO gpkg_contents (table_name, data_type, identifier, description, last_change) "
            "VALUES ('layer_styles', 'attributes', 'layer_styles', 'QGIS layer styles', "
            "strftime('%Y-%m-%dT%H:%M:%fZ','now'))"
        )
        geom_column = db.execute(
            "SELECT column_name FROM gpkg_geometry_columns WHERE table_name = ?", (layer,)
        ).fetchone()[0]
        db.execute(
            "INSERT INTO layer_styles (f_table_catalog, f_table_schema, f_table_name, f_geometry_column, "
            "styleName, styleQML, styleSLD, useAsDefault, description, owner, ui) "
            "VALUES ('', '', ?, ?, ?, ?, '', 1, ?, '', '')",
            (layer, geom_column, "alerts by class", qml_style(), "cec-pipeline: one colour per class"),
        )
        db.commit()


def write_gpkg(alerts: gpd.GeoDataFrame, path: Path) -> Path:
    """``alerts.gpkg``: layer ``alerts`` (EPSG:4326) with a default QGIS style per class."""
    frame = gpd.GeoDataFrame(_flat(alerts), geometry=alerts.geometry.to_numpy(), crs=4326)

    def write(tmp: Path) -> None:
        frame.to_file(tmp, driver="GPKG", layer=LAYER, engine="pyogrio", geometry_type="Unknown")
        _add_layer_styles(tmp, LAYER)

    return atomic(path, write)


def _description(row: dict) -> str:
    facts = [
        ("Clase / class", row["class"]),
        ("Confianza / confidence", row["confidence"]),
        ("Estado / status", row["status"]),
        ("Área / area (ha)", f"{float(row['area_ha']):.2f}"),
        ("Primera detección / first detected", row["first_detected"]),
        ("Última observación / last observed", row["last_observed"]),
        ("Área protegida / protected area", f"{row['protected_area_name']} ({row['protected_area_id']})"),
        ("Zona / zone", row["zone"]),
        ("Lat, lon", f"{float(row['centroid_lat']):.5f}, {float(row['centroid_lon']):.5f}"),
        ("Probabilidad / probability", f"{float(row['probability']):.2f}"),
    ]
    facts += [(k[len("overlay_"):].replace("_", " "), v) for k, v in row.items() if k.startswith("overlay_") and v]
    cells = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in facts)
    return f"<table>{cells}</table>"


def write_kml(alerts: gpd.GeoDataFrame, path: Path) -> Path:
    """``alerts.kml`` (GDAL KML driver): one Placemark per alert with its facts."""
    flat = _flat(alerts)
    flat.insert(0, "Name", flat["alert_id"])
    flat.insert(1, "Description", [_description(r) for r in flat.to_dict("records")])
    frame = gpd.GeoDataFrame(flat, geometry=alerts.geometry.to_numpy(), crs=4326)

    def write(tmp: Path) -> None:
        # GDAL's KML driver takes the Placemark name and description from these two columns
        frame.to_file(tmp, driver="KML", layer=LAYER, engine="pyogrio")

    return atomic(path, write)
