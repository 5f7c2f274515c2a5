"""Shared names and frozen records: every module takes these from here, none defines its own.

- :data:`CLASSES`: the alert classes, in display order (summary columns, styles, labels);
- :data:`BANDS`: the common reflectance band names every source is mapped to;
- :data:`ALERT_PROPERTIES`: the properties of an alert, in file order;
- :class:`Observations`, :class:`AreaDetection`, :class:`RunResult`: what passes between stages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import pandas as pd
import xarray as xr

CLASSES = ("mining", "clearing", "other")
"""Alert classes, in display order."""

BANDS = ("blue", "green", "red", "nir", "swir16", "swir22")
"""Common reflectance band names (surface reflectance, unitless)."""

ALERT_PROPERTIES = (
    "alert_id",
    "class",
    "probability",
    "confidence",
    "area_ha",
    "first_detected",
    "last_observed",
    "protected_area_id",
    "protected_area_name",
    "zone",
    "centroid_lon",
    "centroid_lat",
    "delta_ndvi",
    "delta_nbr",
    "water_fraction",
    "bare_fraction",
    "detection_path",
    "sensors",
    "source_items",
    "status",
    "model_version",
    "pipeline_version",
    "run_id",
)
"""Properties of every alert, in the order the files carry them."""
LIST_PROPERTIES = ("sensors", "source_items")
"""Alert properties holding lists (joined by ';' in flat formats)."""

OVERLAY_PREFIX = "overlay_"
"""Alerts get one ``overlay_<name>`` list property per configured overlay layer."""


def overlay_columns(frame) -> list[str]:
    """The overlay columns of an alerts table, in order."""
    return [c for c in frame.columns if str(c).startswith(OVERLAY_PREFIX)]


@dataclass(frozen=True)
class Observations:
    """A loaded reflectance cube and what it was made from."""

    data: xr.Dataset
    """Dims (time, y, x); float32 reflectance bands (NaN = nodata) and the uint8/uint16 mask band."""
    items_by_time: tuple[tuple[str, ...], ...]
    """STAC item ids of each time step."""
    sensors_by_time: tuple[str, ...]
    """Platform of each time step (e.g. ``sentinel-2a``)."""


@dataclass
class AreaDetection:
    """What change detection found in one protected area (inside and buffer)."""

    area_id: str
    epsg: int
    zones: gpd.GeoDataFrame
    scars: pd.DataFrame
    look_dates: list[str]
    items_by_look: list[tuple[str, ...]]
    sensors_by_look: list[str]
    n_baseline_looks: int
    skipped: list[dict] = field(default_factory=list)
    grid_shape: tuple[int, int] = (0, 0)
    grid_bounds: tuple[float, float, float, float] | None = None
    """(minx, miny, maxx, maxy) of the area's analysis grid, EPSG:``epsg`` metres."""
    items: list = field(default_factory=list)
    """The STAC items (pystac.Item) the detection loaded, saved by the batch as items.json."""
    clear_looks: dict = field(default_factory=dict)
    """Looks with at least one clear pixel on the grid: ``{"baseline": n, "monitor": n}``."""


@dataclass
class RunResult:
    """What a run produced."""

    alerts: gpd.GeoDataFrame
    """Every alert issued into the output folder so far (``alerts.geojson``), analyst-rejected ones left out."""
    summary: pd.DataFrame
    outputs: dict[str, Path]
    skipped: list[dict]
    run_id: str
    new_alerts: gpd.GeoDataFrame | None = None
    """The alerts this run issued for the first time (``alerts_new.geojson``)."""
    window: object | None = None
    """The monitor window (:class:`pipeline.state.Window`)."""
    plan: list[dict] = field(default_factory=list)
    """Per area: baseline items and the window's monitor items (new or processed before)."""
    counts: dict = field(default_factory=dict)
    """Alerts this run saw, by status: ``new``, ``ongoing``, ``expanding``."""
    notifications: list[dict] = field(default_factory=list)
    """One record per notification attempt (channel, target, ok, error), as in ``run.json``."""
    status: str = "done"
    """``done``, ``nothing new`` (every item of the window was processed before) or ``dry run``."""

    @property
    def exit_code(self) -> int:
        """0 done; 3 done but some inputs were skipped."""
        return 3 if self.skipped else 0
