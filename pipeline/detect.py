"""Change detection for one protected area: plan -> check -> load -> mask -> indices -> change -> scars.

``detect_area`` works in the area's own UTM grid on the items the plan found
(:mod:`pipeline.plan`); ``detect`` plans and detects every area of a config (training and
notebooks use it). Nothing is classified or written here: that is :mod:`pipeline.batch`.
"""

from __future__ import annotations

import logging

import geopandas as gpd
import numpy as np
import rasterio.features
import shapely
import xarray as xr
from distributed import futures_of, get_client

from .aoi import ZONE_BUFFER, ZONE_INSIDE, load_zones
from .change import CONFIDENCE_CODES, detect_change, family_codes
from .config import RunConfig, change_params
from .errors import ConfigError, NoItemsError, NoValidPixelsError, PipelineError
from .harmonize import fuse
from .indices import compute_indices
from .model import BANDS, AreaDetection
from .plan import AreaPlan, plan_areas
from .progress import Reporter
from .scars import find_scars
from .sources.load import (
    check_items,
    check_reflectance,
    href_patcher,
    load_observations,
    make_geobox,
    negative_fraction,
    partition_items,
    probe_items,
)
from .sources.registry import resolve_profile
from .sources.search import source_location

log = logging.getLogger(__name__)


def compute_lazy(dataset: xr.Dataset, reporter: Reporter, description: str) -> dict[str, np.ndarray]:
    """Compute a lazy dataset on the active dask.distributed client (with progress) or locally."""
    try:
        client = get_client()
    except ValueError:
        client = None
    if client is not None:
        persisted = client.persist(dataset)
        reporter.track(futures_of(persisted), description)
        dataset = persisted
    computed = dataset.compute()
    return {name: np.asarray(computed[name].values) for name in computed.data_vars}


def rasterize_zones(zones_utm: gpd.GeoDataFrame, shape: tuple[int, int], transform) -> np.ndarray:
    """int32 (y, x): 1-based row of the zone each pixel centre falls in; inside wins over buffer."""
    order = [ZONE_BUFFER, ZONE_INSIDE]
    shapes = [
        (geom, i + 1)
        for zone in order
        for i, (geom, z) in enumerate(zip(zones_utm.geometry, zones_utm.zone))
        if z == zone and not geom.is_empty
    ]
    if not shapes:
        return np.zeros(shape, dtype=np.int32)
    return rasterio.features.rasterize(shapes, out_shape=shape, transform=transform, fill=0, dtype="int32")


MAX_GRID_PX = 1_000_000_000
"""Largest analysis grid of one area, in pixels (e.g. 31,600 × 31,600). One float32 layer of it
takes 4 GB and the change test reads a dozen per look, so beyond this a run would take days or
never end (``resolution_m: 0.01`` over a reserve). Larger areas: raise ``detection.resolution_m``
or split the area."""


def analysis_grid(config: RunConfig, area_id: str, area_wgs: shapely.Geometry, items: list, epsg: int):
    """The area's pixel grid (EPSG ``epsg``) over the part of it the items cover; refused beyond
    :data:`MAX_GRID_PX` before anything is read, with the size and the reason."""
    footprint = shapely.union_all([shapely.geometry.shape(i.geometry) for i in items])
    covered = area_wgs.intersection(footprint)
    if covered.is_empty:
        raise NoItemsError(f"area {area_id}: the {len(items)} items found do not cover the area")
    xmin, ymin, xmax, ymax = gpd.GeoSeries([covered], crs=4326).to_crs(epsg).total_bounds
    r = config.detection.resolution_m
    width_px, height_px = np.ceil((xmax - xmin) / r) + 1, np.ceil((ymax - ymin) / r) + 1
    n_px = width_px * height_px
    if not np.isfinite(n_px) or n_px > MAX_GRID_PX:
        raise ConfigError(
            f"area {area_id}: the analysis grid would be {height_px:,.0f} × {width_px:,.0f} px ({n_px:.3g} px) at "
            f"detection.resolution_m = {r:g} over {(xmax - xmin) / 1000:.1f} × {(ymax - ymin) / 1000:.1f} km; the "
            f"limit is {MAX_GRID_PX:,} px per area (one float32 layer of it takes {4 * MAX_GRID_PX / 1e9:.0f} GB and "
            "the change test reads a dozen per look): raise detection.resolution_m or split the area"
        )
    return make_geobox((xmin, ymin, xmax, ymax), epsg, r)


def check_grid(config: RunConfig, plan: AreaPlan) -> None:
    """Refuse a planned area whose grid would exceed :data:`MAX_GRID_PX` (all its items' footprint)."""
    items = [*plan.baseline, *plan.monitor]
    if items:
        area_wgs = shapely.union_all(list(plan.zones.geometry))
        analysis_grid(config, plan.area_id, area_wgs, items, int(plan.zones["utm_epsg"].iloc[0]))


def _plan_change(config: RunConfig, items: list, geobox, patch_url):
    """The lazy change test over ``items`` on ``geobox``: (observations, lazy dataset, is_baseline)."""
    d = config.detection
    parts = []
    for group in partition_items(items):
        part = load_observations(group, geobox, d.chunk_px, patch_url=patch_url)
        profile = resolve_profile(group[0])
        parts.append((part, profile.clear_mask(part.data, d.resolution_m, d.cloud_buffer_m, d.nodata_edge_m)))
    obs, clear = fuse(parts)
    indices = compute_indices(obs.data).assign({band: obs.data[band] for band in BANDS})
    look_dates = [str(t)[:10] for t in obs.data["time"].values]
    baseline_end = config.periods.baseline[1].isoformat()
    is_baseline = np.array([day <= baseline_end for day in look_dates])
    lazy = detect_change(indices, clear, is_baseline, change_params(d), family_codes(list(obs.sensors_by_time)))
    lazy = lazy.assign(cec_negative_fraction=negative_fraction(obs.data, clear),
                       cec_clear_px=clear.sum(("y", "x")))
    return obs, lazy, is_baseline


def detect_area(config: RunConfig, plan: AreaPlan, reporter: Reporter) -> AreaDetection:
    """Check, load, mask and test one area's planned imagery; return its scars (unclassified).

    ``plan`` holds the area's zones and the items the source gave for the baseline and monitor
    periods of ``config`` (:func:`pipeline.plan.plan_areas`).
    """
    area_zones = plan.zones
    area_id = plan.area_id
    epsg = int(area_zones["utm_epsg"].iloc[0])
    area_wgs = shapely.union_all(list(area_zones.geometry))
    baseline_items, monitor_items = plan.baseline, plan.monitor
    for name, found in (("baseline", baseline_items), ("monitor", monitor_items)):
        if not found:
            raise NoItemsError(
                f"area {area_id}: no {', '.join(config.source.collections)} items in {source_location(config.source)} for the "
                f"{name} period {getattr(config.periods, name)[0]}..{getattr(config.periods, name)[1]} "
                f"with cloud cover <= {config.source.max_cloud_cover}%"
            )
    checked = check_items(baseline_items + monitor_items)
    baseline_ids = {item.id for item in baseline_items}
    if not any(item.id in baseline_ids for item in checked.usable):
        raise NoItemsError(f"area {area_id}: every baseline item was skipped: {checked.skipped}")

    geobox = analysis_grid(config, area_id, area_wgs, checked.usable, epsg)
    zones_utm = area_zones.to_crs(epsg).reset_index(drop=True)

    d = config.detection
    usable, skipped = list(checked.usable), list(checked.skipped)
    patch_url = href_patcher(usable)
    for _attempt in range(len(usable)):
        with reporter.stage(f"[{area_id}] plan load, mask, indices, change ({geobox.shape[0]}×{geobox.shape[1]} px)"):
            obs, lazy, is_baseline = _plan_change(config, usable, geobox, patch_url)
        look_dates = [str(t)[:10] for t in obs.data["time"].values]
        try:
            with reporter.stage(f"[{area_id}] compute change over {len(look_dates)} looks"):
                change = compute_lazy(lazy, reporter, f"[{area_id}] change detection")
            break
        except PipelineError:
            raise
        except Exception:
            # A truncated COG or an asset failing over HTTP breaks the read mid-way: find the
            # items that cannot be read, skip them (listed in run.json) and try again without.
            bad = probe_items(usable, geobox, patch_url)
            if not bad:
                raise
            for item, reason in bad:
                log.warning("skipping item %s: %s", item.id, reason)
                skipped.append({"item": item.id, "reason": reason})
            dropped = {item.id for item, _ in bad}
            usable = [item for item in usable if item.id not in dropped]
            if not any(item.id in baseline_ids for item in usable) or all(item.id in baseline_ids for item in usable):
                period = "baseline" if not any(item.id in baseline_ids for item in usable) else "monitor"
                raise NoItemsError(f"area {area_id}: every {period} item was skipped: {skipped}") from None
    else:
        raise NoItemsError(f"area {area_id}: no readable items: {skipped}")
    clear_px = change.pop("cec_clear_px")
    clear_looks = {"baseline": int((clear_px[is_baseline] > 0).sum()), "monitor": int((clear_px[~is_baseline] > 0).sum())}
    if clear_looks["monitor"] == 0:
        log.warning("area %s: 0 clear monitor looks of %d loaded (every monitor pixel cloud, shadow or nodata; "
                    "%d clear baseline looks): no change could be seen, so no alert could be raised",
                    area_id, int((~is_baseline).sum()), clear_looks["baseline"])
    check_reflectance(change.pop("cec_negative_fraction"), obs.items_by_time)
    if not (change["n_baseline"] > 0).any():
        raise NoValidPixelsError(
            f"area {area_id}: no clear baseline pixel in {config.periods.baseline[0]}..{config.periods.baseline[1]}"
        )
    with reporter.stage(f"[{area_id}] scars"):
        transform = geobox.transform
        zone_index = rasterize_zones(zones_utm, geobox.shape, transform)
        objects = find_scars(change, zone_index, transform, CONFIDENCE_CODES[d.min_confidence], d.min_area_ha)
    return AreaDetection(
        area_id=area_id,
        epsg=epsg,
        zones=zones_utm,
        scars=objects.table,
        look_dates=look_dates,
        items_by_look=list(obs.items_by_time),
        sensors_by_look=list(obs.sensors_by_time),
        n_baseline_looks=int(is_baseline.sum()),
        skipped=skipped,
        grid_shape=tuple(geobox.shape),
        grid_bounds=tuple(float(v) for v in geobox.boundingbox),
        items=usable,
        clear_looks=clear_looks,
    )


def detect(config: RunConfig, reporter: Reporter | None = None) -> tuple[gpd.GeoDataFrame, list[AreaDetection]]:
    """Zones and per-area detections for a config (no classification, nothing written)."""
    reporter = reporter or Reporter()
    with reporter.stage("areas"):
        zones = load_zones(config.areas)
    with reporter.stage("search"):
        plans = plan_areas(config, zones)
    return zones, [detect_area(config, plan, reporter) for plan in plans]
