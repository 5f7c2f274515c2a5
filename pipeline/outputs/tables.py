"""Flat tables: ``alerts.csv`` and ``summary.csv``, and the flat alert table GIS formats share."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from ..files import write_output_text
from ..model import ALERT_PROPERTIES, LIST_PROPERTIES, overlay_columns
from .registry import register_writer


def flat_table(alerts: gpd.GeoDataFrame) -> pd.DataFrame:
    """Alert properties with list values joined by ';' (for CSV, GPKG, KML)."""
    table = pd.DataFrame(alerts[[*ALERT_PROPERTIES, *overlay_columns(alerts)]]).copy()
    for column in [*LIST_PROPERTIES, *overlay_columns(alerts)]:
        table[column] = table[column].map(lambda v: ";".join(v) if isinstance(v, (list, tuple, np.ndarray)) else "")
    return table


def write_alert_csv(alerts: gpd.GeoDataFrame, path: Path) -> Path:
    """alerts.csv: one row per alert, with centroid lat/lon columns (no geometry)."""
    buffer = io.StringIO()
    flat_table(alerts).to_csv(buffer, index=False, quoting=csv.QUOTE_MINIMAL)
    return write_output_text(path, buffer.getvalue())


def write_summary(summary: pd.DataFrame, path: Path) -> Path:
    """summary.csv."""
    return write_output_text(path, summary.to_csv(index=False))


register_writer("csv", "alerts.csv", write_alert_csv)
