"""Zipped ESRI Shapefile of the alerts (I/O edge), for agency GIS units that run ArcGIS.

``alerts_shp.zip`` holds ``alerts.shp``, ``.shx``, ``.dbf``, ``.prj`` (WGS 84, ESRI WKT),
``.cpg`` (``UTF-8``: names with ñ and accents survive) and ``fields.csv``, the table of the
10-character DBF field names against the alert properties of ``alerts.geojson``.

DBF limits shape the file: field names of at most 10 characters (:data:`SHP_FIELDS`), text
of at most 254 bytes (longer values, e.g. a long ``source_items`` list, are cut at a ``;``
boundary and end with ``…``; the full value is in the GeoJSON), dates as DBF ``D``.
"""

from __future__ import annotations

import csv
import io
import re
import tempfile
import zipfile
from pathlib import Path

import pandas as pd

from ..files import write_output
from .layers import DATE_PROPERTIES, write_layer
from .registry import register_writer
from .tables import flat_table

SHP_FIELDS = {
    "alert_id": "alert_id",
    "class": "class",
    "probability": "prob",
    "confidence": "confidence",
    "area_ha": "area_ha",
    "first_detected": "first_det",
    "last_observed": "last_obs",
    "protected_area_id": "pa_id",
    "protected_area_name": "pa_name",
    "zone": "zone",
    "centroid_lon": "cent_lon",
    "centroid_lat": "cent_lat",
    "delta_ndvi": "d_ndvi",
    "delta_nbr": "d_nbr",
    "water_fraction": "water_frac",
    "bare_fraction": "bare_frac",
    "sensors": "sensors",
    "source_items": "src_items",
    "status": "status",
    "model_version": "model_ver",
    "pipeline_version": "pipe_ver",
    "run_id": "run_id",
}
"""Alert property -> DBF field name (≤ 10 characters). ``overlay_<name>`` becomes ``ov_<name>``
cut to 10 characters (a digit replaces the tail when two collide)."""
DBF_TEXT_BYTES = 254
LAYER = "alerts"
SIDECARS = (".shp", ".shx", ".dbf", ".prj", ".cpg")


def field_names(columns: list[str]) -> dict[str, str]:
    """Property -> unique DBF field name (≤ 10 ASCII characters) for every column."""
    names: dict[str, str] = {}
    used: set[str] = set()
    for column in columns:
        short = SHP_FIELDS.get(column)
        if short is None:
            stem = column[len("overlay_"):] if column.startswith("overlay_") else column
            short = ("ov_" if column.startswith("overlay_") else "") + re.sub(r"[^A-Za-z0-9_]", "_", stem)
            short = short[:10]
        k = 1
        while short.lower() in used:
            tail = str(k)
            short = short[: 10 - len(tail)] + tail
            k += 1
        used.add(short.lower())
        names[column] = short
    return names


def fit_text(value: str, limit: int = DBF_TEXT_BYTES) -> str:
    """``value`` cut to at most ``limit`` UTF-8 bytes, at a ``;`` when it is a list, ending in ``…``."""
    if len(value.encode("utf-8")) <= limit:
        return value
    room = limit - len("…".encode("utf-8"))
    cut = value.encode("utf-8")[:room].decode("utf-8", errors="ignore")
    if ";" in cut:
        cut = cut[: cut.rindex(";") + 1]
    return cut + "…"


def shapefile_table(table: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, str]]:
    """The flat alert table renamed to DBF names, text fitted to DBF limits; and the name map."""
    names = field_names([str(c) for c in table.columns])
    out = table.rename(columns=names).copy()
    for column in out.columns:
        if not pd.api.types.is_numeric_dtype(out[column]):
            out[column] = out[column].map(lambda v: fit_text(v) if isinstance(v, str) else v)
    return out, names


def fields_csv(names: dict[str, str]) -> str:
    """``fields.csv``: DBF field, alert property (as in alerts.geojson)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["field", "property"])
    writer.writerows((short, prop) for prop, short in names.items())
    return buffer.getvalue()


def write_shapefile_zip(alerts, path: Path) -> Path:
    """``alerts_shp.zip``: the alerts as a UTF-8 Shapefile (EPSG:4326) with ``fields.csv``."""
    table, names = shapefile_table(flat_table(alerts))

    def write(tmp: Path) -> None:
        with tempfile.TemporaryDirectory(dir=Path(path).parent) as folder:
            shp = Path(folder) / f"{LAYER}.shp"
            write_layer(shp, table, alerts.geometry.to_numpy(), "ESRI Shapefile", LAYER,
                        layer_options={"ENCODING": "UTF-8"},
                        date_columns=[names[p] for p in DATE_PROPERTIES if p in names])
            with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
                for suffix in SIDECARS:
                    archive.write(shp.with_suffix(suffix), f"{LAYER}{suffix}")
                archive.writestr("fields.csv", fields_csv(names))

    return write_output(Path(path), write)


register_writer("shp", "alerts_shp.zip", write_shapefile_zip)
