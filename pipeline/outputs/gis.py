"""Alert exports for GIS (I/O edge): the styled, typed GeoPackage.

GeoJSON, CSV and ``summary.csv`` writers are in :mod:`.geojson` and :mod:`.tables`. Every file here is
built under a temporary name in the destination folder and renamed into place.

- GeoPackage: layer ``alerts`` plus a ``layer_styles`` table holding a QGIS QML style
  (categorised by ``class``: one symbol per class), which is where QGIS looks for a layer's
  default style in a GeoPackage: the file opens in QGIS already coloured.
  Dates are ``DATE`` columns and the geometry type is declared ``MULTIPOLYGON``
  (:mod:`.layers`), so ArcGIS and QGIS filter by date and know the shape type up front.

KML is in :mod:`.kml`, the zipped Shapefile in :mod:`.shapefile`, alert rasters in
:mod:`.alert_raster`.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import geopandas as gpd

from ..files import write_output
from ..model import CLASSES
from .layers import write_layer
from .registry import register_writer
from .tables import flat_table

LAYER = "alerts"
CLASS_COLOURS = {"mining": "227,26,28", "clearing": "255,127,0", "other": "106,61,154"}
"""Fill colours (R,G,B) per class, shared by the GeoPackage style, the KML and the report."""


def qml_style(column: str = "class") -> str:
    """A QGIS QML categorised renderer over ``column``: one semi-transparent fill per class."""
    categories, symbols = [], []
    for i, name in enumerate(CLASSES):
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
    """``alerts.gpkg``: layer ``alerts`` (EPSG:4326, MultiPolygon, DATE columns) with the
    default QGIS style per class."""
    table = flat_table(alerts)

    def write(tmp: Path) -> None:
        write_layer(tmp, table, alerts.geometry.to_numpy(), "GPKG", LAYER)
        _add_layer_styles(tmp, LAYER)

    return write_output(path, write)


register_writer("gpkg", "alerts.gpkg", write_gpkg)
