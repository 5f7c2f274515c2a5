"""Typed vector layers for GIS (I/O edge): real DATE columns and a declared MultiPolygon
geometry type, written through GDAL (pyogrio's raw writer); used by the GeoPackage and the
Shapefile writers.

geopandas writes Python dates as text and declares a mixed Polygon/MultiPolygon layer as
``GEOMETRY``; ArcGIS and QGIS then cannot filter by date or know the shape type before reading
every feature. Here the columns get OGR types from the alert contract:

- ``first_detected``, ``last_observed``: ``Date`` (GeoPackage ``DATE``, Shapefile ``D``);
- numbers: ``Real``; everything else ``String`` (lists joined by ``;``);
- geometry: every feature promoted to MultiPolygon, the layer declared ``MultiPolygon``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import shapely
from pyogrio.raw import write

from ..generalize import as_multipolygon

DATE_PROPERTIES = ("first_detected", "last_observed")


def typed_fields(table: pd.DataFrame, date_columns=DATE_PROPERTIES) -> tuple[list[str], list[np.ndarray]]:
    """Column names and arrays whose numpy dtypes give GDAL the right field types.

    ``table`` is a flat alert table (lists already joined). Dates become ``datetime64[D]``
    (GDAL ``Date``; missing -> NaT, a null field), numbers float64/int64, the rest str objects.
    """
    names, arrays = [], []
    for name in table.columns:
        values = table[name]
        if name in date_columns:
            days = [str(v)[:10] if isinstance(v, str) and v else None for v in values]
            array = np.array([np.datetime64(d, "D") if d else np.datetime64("NaT", "D") for d in days],
                             dtype="datetime64[D]")
        elif pd.api.types.is_bool_dtype(values):
            array = values.to_numpy(dtype="int32")
        elif pd.api.types.is_integer_dtype(values):
            array = values.to_numpy(dtype="int64")
        elif pd.api.types.is_float_dtype(values):
            array = values.to_numpy(dtype="float64")
        else:
            array = np.array([None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)
                              for v in values], dtype=object)
        names.append(str(name))
        arrays.append(array)
    return names, arrays


def write_layer(path: Path, table: pd.DataFrame, geometries, driver: str, layer: str,
                layer_options: dict | None = None, date_columns=DATE_PROPERTIES) -> None:
    """Write one MultiPolygon layer in EPSG:4326 with typed fields (no temporary naming here)."""
    names, arrays = typed_fields(table, date_columns)
    wkb = shapely.to_wkb(np.array([as_multipolygon(g) for g in geometries], dtype=object))
    write(str(path), geometry=wkb, field_data=arrays, fields=names, geometry_type="MultiPolygon",
          crs="EPSG:4326", driver=driver, layer=layer, layer_options=layer_options or {})
