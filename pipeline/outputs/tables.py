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


FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
"""A spreadsheet reads a cell that starts with one of these as a formula (CSV injection)."""


def neutralise_cell(value: object) -> object:
    """A text cell that a spreadsheet would run as a formula, prefixed with ``'`` (shown as text).

    Only text is touched: numbers (a negative ``delta_ndvi``) stay numbers.
    """
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value


def neutralise(table: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``table`` whose text cells and column names are safe to open in a spreadsheet."""
    table = table.copy()
    for column in table.columns:
        if table[column].dtype == object or pd.api.types.is_string_dtype(table[column]):
            table[column] = table[column].map(neutralise_cell)
    table.columns = [neutralise_cell(str(c)) for c in table.columns]
    return table


def write_alert_csv(alerts: gpd.GeoDataFrame, path: Path) -> Path:
    """alerts.csv: one row per alert, with centroid lat/lon columns (no geometry); text cells neutralised."""
    buffer = io.StringIO()
    neutralise(flat_table(alerts)).to_csv(buffer, index=False, quoting=csv.QUOTE_MINIMAL)
    return write_output_text(path, buffer.getvalue())


def write_summary(summary: pd.DataFrame, path: Path) -> Path:
    """summary.csv (text cells neutralised)."""
    return write_output_text(path, neutralise(summary).to_csv(index=False))


register_writer("csv", "alerts.csv", write_alert_csv)
