"""Change detection for one protected area: plan -> check -> load -> mask -> indices -> change -> scars.

``detect_area`` works in the area's own UTM grid on the items the plan found
(:mod:`pipeline.plan`); ``detect`` plans and detects every area of a config (training and
notebooks use it). Nothing is classified or written here: that is :mod:`pipeline.batch`.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import rasterio.features
import shapely
import xarray as xr
from distributed import futures_of, get_client

from .aoi import ZONE_BUFFER, ZONE_INSIDE, load_zones
from .change import CONFIDENCE_CODES, detect_change, family_codes
from .config import RunConfig, change_params
from .errors import NoItemsError, NoValidPixelsError
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
)
from .sources.registry import resolve_profile
from .sources.search import source_location


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

    footprint = shapely.union_all([shapely.geometry.shape(i.geometry) for i in checked.usable])
    extent = gpd.GeoSeries([area_wgs.intersection(footprint)], crs=4326).to_crs(epsg)
    geobox = make_geobox(tuple(extent.total_bounds), epsg, config.detection.resolution_m)
    zones_utm = area_zones.to_crs(epsg).reset_index(drop=True)

    with reporter.stage(f"[{area_id}] plan load, mask, indices, change ({geobox.shape[0]}×{geobox.shape[1]} px)"):
        d = config.detection
        patch_url = href_patcher(checked.usable)
        parts = []
        for group in partition_items(checked.usable):
            part = load_observations(group, geobox, d.chunk_px, patch_url=patch_url)
            profile = resolve_profile(group[0])
            parts.append((part, profile.clear_mask(part.data, d.resolution_m, d.cloud_buffer_m, d.nodata_edge_m)))
        obs, clear = fuse(parts)
        indices = compute_indices(obs.data).assign({band: obs.data[band] for band in BANDS})
        look_dates = [str(t)[:10] for t in obs.data["time"].values]
        baseline_end = config.periods.baseline[1].isoformat()
        is_baseline = np.array([day <= baseline_end for day in look_dates])
        lazy = detect_change(indices, clear, is_baseline, change_params(config.detection), family_codes(list(obs.sensors_by_time)))
        lazy = lazy.assign(cec_negative_fraction=negative_fraction(obs.data, clear))
    with reporter.stage(f"[{area_id}] compute change over {len(look_dates)} looks"):
        change = compute_lazy(lazy, reporter, f"[{area_id}] change detection")
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
        skipped=checked.skipped,
        grid_shape=tuple(geobox.shape),
        grid_bounds=tuple(float(v) for v in geobox.boundingbox),
        items=list(checked.usable),
    )


def detect(config: RunConfig, reporter: Reporter | None = None) -> tuple[gpd.GeoDataFrame, list[AreaDetection]]:
    """Zones and per-area detections for a config (no classification, nothing written)."""
    reporter = reporter or Reporter()
    with reporter.stage("areas"):
        zones = load_zones(config.areas)
    with reporter.stage("search"):
        plans = plan_areas(config, zones)
    return zones, [detect_area(config, plan, reporter) for plan in plans]
