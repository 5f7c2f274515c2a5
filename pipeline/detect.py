"""Change detection for protected areas: plan -> check -> load -> mask -> indices -> change -> scars.

Each area works in its own UTM grid on the items the plan found (:mod:`pipeline.plan`).
:func:`start_area` makes one task per chunk that reads the chunk's window and reduces it to scar
candidates (:mod:`pipeline.windows`) and, on a dask.distributed client, submits them;
:func:`finish_area` gathers the candidates and finds the scars (:mod:`pipeline.streaming`:
nothing of area size is gathered). :func:`detect_areas` starts
every area before it waits for any, so areas run side by side. ``detect`` plans and detects every
area of a config (training and notebooks use it). Nothing is classified or written here: that is
:mod:`pipeline.batch`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import dask
import geopandas as gpd
import numpy as np
import shapely
from distributed import get_client

from .aoi import load_zones
from .change import CONFIDENCE_CODES, family_codes
from .config import RunConfig, change_params, local_workers
from .errors import ConfigError, NoItemsError, NoValidPixelsError, PipelineError
from .model import AreaDetection
from .plan import AreaPlan, plan_areas
from .progress import Reporter
from .streaming import find_scars_sparse, merge_candidates, rasterize_window, zone_shapes
from .windows import AreaJob, auto_chunk_px, chunk_origins, merge_counts, read_margin_px, task_memory_bytes, window_tasks
from .sources.load import (
    check_items,
    check_reflectance,
    href_patcher,
    make_geobox,
    native_phase,
    partition_items,
    plan_looks,
    probe_items,
    solar_day,
)
from .sources.registry import resolve_profile
from .sources.upsample import source_grid
from .sources.search import source_location
from .sources import reader

log = logging.getLogger(__name__)


def active_client():
    """The dask.distributed client of this process, or None (then dask's local scheduler runs)."""
    try:
        return get_client()
    except ValueError:
        return None


def rasterize_zones(zones_utm: gpd.GeoDataFrame, shape: tuple[int, int], transform) -> np.ndarray:
    """int32 (y, x): 1-based row of the zone each pixel centre falls in; inside wins over buffer."""
    return rasterize_window(zone_shapes(zones_utm), transform, 0, 0, shape)


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
    return make_geobox((xmin, ymin, xmax, ymax), epsg, r, native_phase(items, epsg, r))


def check_grid(config: RunConfig, plan: AreaPlan) -> None:
    """Refuse a planned area whose grid would exceed :data:`MAX_GRID_PX` (all its items' footprint)."""
    items = [*plan.baseline, *plan.monitor]
    if items:
        area_wgs = shapely.union_all(list(plan.zones.geometry))
        analysis_grid(config, plan.area_id, area_wgs, items, int(plan.zones["utm_epsg"].iloc[0]))


def area_job(config: RunConfig, items: list, geobox, shapes: list[tuple]) -> tuple[AreaJob, tuple, tuple]:
    """What every window task of an area shares, and the looks' items and platforms, from the
    items alone (nothing is read; each window checks that it loads these very looks)."""
    d = config.detection
    groups = tuple(tuple(group) for group in partition_items(items))
    times, items_by_look, platforms = plan_looks(groups)
    baseline_end = config.periods.baseline[1].isoformat()
    is_baseline = np.array([str(t)[:10] <= baseline_end for t in times])
    job = AreaJob(groups=groups, geobox=geobox, times=times, is_baseline=is_baseline,
                  look_family=family_codes(list(platforms)), params=change_params(d),
                  resolution_m=d.resolution_m, cloud_buffer_m=d.cloud_buffer_m, nodata_edge_m=d.nodata_edge_m,
                  shapes=shapes, min_px=d.min_area_ha / (d.resolution_m ** 2 / 1e4), patch_url=href_patcher(items),
                  read_cache_bytes=read_cache_need(groups, geobox.shape[1] * d.resolution_m, d.resolution_m))
    return job, items_by_look, platforms


def looks_and_resolutions(groups, resolution_m: float) -> list[tuple[int, list[float]]]:
    """Per group of items read alike: its number of looks and the resolution of each asset it is
    read with (the grid's where its first item says none)."""
    out = []
    for group in groups:
        keys = resolve_profile(group[0]).item_keys(group[0])
        grids = [source_grid(group[0], key) for key in keys.values()]
        out.append((len({solar_day(item) for item in group}),
                    [abs(g.transform.a) if g is not None else resolution_m for g in grids]))
    return out


def read_cache_need(groups, width_m: float, resolution_m: float) -> int:
    """The decoded blocks an area's windows share (:func:`reader.row_band_bytes`), for each group's
    looks and assets (:func:`looks_and_resolutions`)."""
    return sum(reader.row_band_bytes(width_m, looks, resolutions)
               for looks, resolutions in looks_and_resolutions(groups, resolution_m))


@dataclass
class StartedArea:
    """An area whose change detection has been submitted (or, without a client, only planned)."""

    plan: AreaPlan
    epsg: int
    zones: gpd.GeoDataFrame
    geobox: object
    usable: list
    """Items read (the checked ones, less any found unreadable while reading)."""
    skipped: list[dict]
    is_baseline: np.ndarray | None = None
    look_dates: list[str] = field(default_factory=list)
    items_by_look: tuple = ()
    sensors_by_look: tuple = ()
    chunk_px: int = 0
    work: list = field(default_factory=list)
    """Per chunk a task giving its scar candidates and per-look counts (:mod:`pipeline.windows`)."""
    futures: list | None = None
    """The work's futures when a dask.distributed client runs it."""

    @property
    def n_chunks(self) -> int:
        return len(self.work)


def _check_area(config: RunConfig, plan: AreaPlan, headers: dict | None = None) -> StartedArea:
    """An area's grid, zones and readable items, checked before anything is read (``headers``:
    the run's item checks so far, :func:`pipeline.sources.load.check_items`)."""
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
    checked = check_items(baseline_items + monitor_items, headers)
    baseline_ids = {item.id for item in baseline_items}
    if not any(item.id in baseline_ids for item in checked.usable):
        raise NoItemsError(f"area {area_id}: every baseline item was skipped: {checked.skipped}")
    geobox = analysis_grid(config, area_id, area_wgs, checked.usable, epsg)
    zones_utm = area_zones.to_crs(epsg).reset_index(drop=True)
    return StartedArea(plan=plan, epsg=epsg, zones=zones_utm, geobox=geobox, usable=list(checked.usable),
                       skipped=list(checked.skipped))


def chunk_px(config: RunConfig, n_looks: int, grid_shape: tuple[int, int]) -> int:
    """The chunk edge of an area's tasks: ``detection.chunk_px``, or the largest that fits a task
    of ``n_looks`` looks in its share of this machine's memory and still gives every worker thread
    of the local cluster a chunk (when the grid has room for chunks of at least 256 px)."""
    d = config.detection
    if d.chunk_px:
        return d.chunk_px
    margin = read_margin_px(d.resolution_m, d.cloud_buffer_m, d.nodata_edge_m)
    workers, threads_per_worker = local_workers(config.dask), config.dask.threads_per_worker
    threads = workers * threads_per_worker
    edge = auto_chunk_px(n_looks, margin, task_memory_bytes(workers, threads_per_worker))
    while edge > 256 and len(chunk_origins(grid_shape[0], edge)) * len(chunk_origins(grid_shape[1], edge)) < threads:
        edge = max(256, edge // 2)
    return edge


def _submit(config: RunConfig, area: StartedArea, reporter: Reporter, client) -> None:
    """One window task per chunk (load -> mask -> indices -> change -> scar candidates) over the
    area's usable items; with a client, submit them at once."""
    geobox = area.geobox
    with reporter.stage(f"[{area.plan.area_id}] plan windows ({geobox.shape[0]}×{geobox.shape[1]} px)"):
        job, area.items_by_look, area.sensors_by_look = area_job(config, area.usable, geobox, zone_shapes(area.zones))
        area.chunk_px = chunk_px(config, len(job.times), tuple(geobox.shape))
        area.work = window_tasks(job, area.chunk_px)
    area.is_baseline = job.is_baseline
    area.look_dates = [str(t)[:10] for t in job.times]
    area.futures = client.compute(area.work) if client is not None else None


def start_area(config: RunConfig, plan: AreaPlan, reporter: Reporter, client=None,
               headers: dict | None = None) -> StartedArea:
    """Check one area and plan its window tasks (load -> mask -> indices -> change -> scar
    candidates); with a client, submit them at once (areas then run side by side on the cluster)."""
    area = _check_area(config, plan, headers)
    _submit(config, area, reporter, client)
    return area


def _gather(area: StartedArea, reporter: Reporter) -> list:
    """The results of an area's work: its futures', or computed here (dask's local scheduler)."""
    if area.futures is not None:
        reporter.track(area.futures, f"[{area.plan.area_id}] change detection")
        return [f.result() for f in area.futures]
    return list(dask.compute(*area.work))


def finish_area(config: RunConfig, area: StartedArea, reporter: Reporter, client=None) -> AreaDetection:
    """Wait for an area's chunks, merge their candidates and find its scars (nothing of area size
    comes to this process: see :mod:`pipeline.streaming`).

    A truncated COG or an asset failing over HTTP breaks the read mid-way: the items that cannot
    be read are found, skipped (listed in run.json) and the area is read again without them.
    """
    area_id, d = area.plan.area_id, config.detection
    baseline_ids = {item.id for item in area.plan.baseline}
    for _attempt in range(len(area.usable)):
        try:
            with reporter.stage(f"[{area_id}] compute change over {len(area.look_dates)} looks, {area.n_chunks} chunks"):
                results = _gather(area, reporter)
            break
        except PipelineError:
            raise
        except Exception:
            bad = probe_items(area.usable, area.geobox, href_patcher(area.usable))
            if not bad:
                raise
            for item, reason in bad:
                log.warning("skipping item %s: %s", item.id, reason)
                area.skipped.append({"item": item.id, "reason": reason})
            dropped = {item.id for item, _ in bad}
            area.usable = [item for item in area.usable if item.id not in dropped]
            if not any(i.id in baseline_ids for i in area.usable) or all(i.id in baseline_ids for i in area.usable):
                period = "baseline" if not any(i.id in baseline_ids for i in area.usable) else "monitor"
                raise NoItemsError(f"area {area_id}: every {period} item was skipped: {area.skipped}") from None
            _submit(config, area, reporter, client)
    else:
        raise NoItemsError(f"area {area_id}: no readable items: {area.skipped}")
    fractions, clear_px = merge_counts(results)
    is_baseline = area.is_baseline
    clear_looks = {"baseline": int((clear_px[is_baseline] > 0).sum()), "monitor": int((clear_px[~is_baseline] > 0).sum())}
    if clear_looks["monitor"] == 0:
        log.warning("area %s: 0 clear monitor looks of %d loaded (every monitor pixel cloud, shadow or nodata; "
                    "%d clear baseline looks): no change could be seen, so no alert could be raised",
                    area_id, int((~is_baseline).sum()), clear_looks["baseline"])
    check_reflectance(fractions, area.items_by_look)
    candidates = merge_candidates([r.candidates for r in results])
    if not candidates.any_baseline:
        raise NoValidPixelsError(
            f"area {area_id}: no clear baseline pixel in {config.periods.baseline[0]}..{config.periods.baseline[1]}"
        )
    n_context = 0 if candidates.context is None else candidates.context.size
    with reporter.stage(f"[{area_id}] scars ({candidates.index.size} candidate and {n_context} context pixels)"):
        scars = find_scars_sparse(candidates, tuple(area.geobox.shape), area.geobox.transform,
                                  CONFIDENCE_CODES[d.min_confidence], d.min_area_ha)
    return AreaDetection(
        area_id=area_id,
        epsg=area.epsg,
        zones=area.zones,
        scars=scars,
        look_dates=area.look_dates,
        items_by_look=list(area.items_by_look),
        sensors_by_look=list(area.sensors_by_look),
        n_baseline_looks=int(is_baseline.sum()),
        skipped=area.skipped,
        grid_shape=tuple(area.geobox.shape),
        grid_bounds=tuple(float(v) for v in area.geobox.boundingbox),
        items=area.usable,
        clear_looks=clear_looks,
    )


def detect_area(config: RunConfig, plan: AreaPlan, reporter: Reporter) -> AreaDetection:
    """Check, load, mask and test one area's planned imagery; return its scars (unclassified).

    ``plan`` holds the area's zones and the items the source gave for the baseline and monitor
    periods of ``config`` (:func:`pipeline.plan.plan_areas`).
    """
    return detect_areas(config, [plan], reporter)[0]


def detect_areas(config: RunConfig, plans: list[AreaPlan], reporter: Reporter) -> list[AreaDetection]:
    """Every area's scars. With a dask.distributed client every area is submitted before any is
    waited for, so that small areas run side by side on the workers and a large one spreads over
    all of them; results come back in the order of ``plans``."""
    client = active_client()
    started: list[StartedArea] = []
    headers: dict = {}   # item headers, opened once for all the areas that share an item
    try:
        for plan in plans:
            started.append(start_area(config, plan, reporter, client, headers))
        detections = [finish_area(config, area, reporter, client) for area in started]
        reader.close_all()    # the files this process kept open for its reads (and their cached blocks)
        return detections
    except BaseException:
        for area in started:
            if area.futures is not None:
                client.cancel(area.futures)
        raise


def detect(config: RunConfig, reporter: Reporter | None = None) -> tuple[gpd.GeoDataFrame, list[AreaDetection]]:
    """Zones and per-area detections for a config (no classification, nothing written)."""
    reporter = reporter or Reporter()
    with reporter.stage("areas"):
        zones = load_zones(config.areas)
    with reporter.stage("search"):
        plans = plan_areas(config, zones)
    return zones, detect_areas(config, plans, reporter)
