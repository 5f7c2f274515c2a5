"""The plan of a run: per protected area, the STAC items of the baseline and the monitor period.

The source is searched once per area and period here (no pixel is read); detection loads
exactly these items, and a dry run prints them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import geopandas as gpd
import shapely

from .config import RunConfig
from .sources.search import SourceReads, in_window, search_source


@dataclass(frozen=True)
class AreaPlan:
    """One protected area and the items found for it."""

    area_id: str
    zones: gpd.GeoDataFrame
    """The area's zone rows (inside and buffer), EPSG:4326."""
    baseline: list
    """pystac items of ``periods.baseline``."""
    monitor: list
    """pystac items of ``periods.monitor`` (for a batch run: from the window's load start)."""


def plan_areas(config: RunConfig, zones: gpd.GeoDataFrame) -> list[AreaPlan]:
    """Search the source for every area (sorted by id) over the config's two periods."""
    plans = []
    reads = SourceReads()  # a local catalog is read once for every area and period
    for area_id, group in zones.groupby("area_id", sort=True):
        geometry = shapely.geometry.mapping(shapely.union_all(list(group.geometry)))
        plans.append(AreaPlan(
            area_id=str(area_id),
            zones=group,
            baseline=search_source(config.source, geometry, config.periods.baseline, reads),
            monitor=search_source(config.source, geometry, config.periods.monitor, reads),
        ))
    return plans


def plan_rows(plans: list[AreaPlan], start: dt.date, end: dt.date, processed: set[str]) -> list[dict]:
    """Per area: baseline item ids, and the monitor items dated ``start..end`` marked new or processed."""
    return [
        {
            "area_id": plan.area_id,
            "baseline_items": sorted(i.id for i in plan.baseline),
            "monitor_items": [
                {"id": i.id, "date": str(i.datetime or i.properties.get("start_datetime", ""))[:10],
                 "new": i.id not in processed}
                for i in sorted(plan.monitor, key=lambda i: (str(i.datetime), i.id))
                if in_window(i, start, end)
            ],
        }
        for plan in plans
    ]
