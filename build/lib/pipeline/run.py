"""The batch job: config in, alert files out. The Python API over the stages.

``detect_area`` chains search → check → load → mask → indices → change → scars for one
protected area in its own UTM grid; ``run`` does every area, classifies the scars, writes
the outputs (each atomically) and ``run.json``. Training reuses ``detect_area``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import platform
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio.features
import shapely
import xarray as xr

from . import __version__
from .aoi import ZONE_BUFFER, ZONE_INSIDE, load_zones
from .alerts import build_alerts
from .change import CONFIDENCE_CODES, ChangeParams, detect_change, family_codes
from .classify import ScarModel, advancing_banks
from .config import RunConfig
from .errors import NoItemsError, NoValidPixelsError
from .indices import compute_indices
from .harmonize import fuse
from .ingest import (
    ApiOptions,
    check_items,
    check_reflectance,
    href_patcher,
    load_observations,
    make_geobox,
    negative_fraction,
    partition_items,
    search_api,
    search_catalog,
    search_items_file,
)
from .mask import clear_mask
from .scars import find_scars

log = logging.getLogger(__name__)


class Reporter:
    """Progress hooks; the command line passes a rich one, the API uses this quiet one."""

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        log.info("%s …", name)
        yield
        log.info("%s done in %.1f s", name, time.perf_counter() - start)

    def track(self, futures: list, description: str) -> None:
        """Wait for dask futures (a rich reporter shows a bar)."""
        from distributed import wait

        wait(futures)


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
    items: list = field(default_factory=list)
    """The STAC items (pystac.Item) the detection loaded, saved by ``run`` as items.json."""


def change_params(config: RunConfig) -> ChangeParams:
    """Change-test thresholds from the config."""
    d = config.detection
    return ChangeParams(forest_ndvi_min=d.forest_ndvi_min, ndvi_drop_min=d.ndvi_drop_min, drop_sigma=d.drop_sigma)


def _search(config: RunConfig, geometry: dict, period: tuple[dt.date, dt.date]) -> list:
    src = config.source
    if src.stac_catalog is not None:
        return search_catalog(src.stac_catalog, src.collections, geometry, *period, src.max_cloud_cover)
    if src.stac_items is not None:
        return search_items_file(src.stac_items, src.collections, geometry, *period, src.max_cloud_cover)
    options = ApiOptions(timeout_s=src.timeout_s, retries=src.retries)
    return search_api(src.stac_api, src.collections, geometry, *period, src.max_cloud_cover, options)


def _compute(dataset: xr.Dataset, reporter: Reporter, description: str) -> dict[str, np.ndarray]:
    """Compute a lazy dataset on the active dask.distributed client (with progress) or locally."""
    try:
        from distributed import futures_of, get_client

        client = get_client()
    except (ImportError, ValueError):
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


def detect_area(config: RunConfig, area_zones: gpd.GeoDataFrame, reporter: Reporter) -> AreaDetection:
    """Search, load and test one area's imagery; return its scars (unclassified)."""
    area_id = str(area_zones["area_id"].iloc[0])
    epsg = int(area_zones["utm_epsg"].iloc[0])
    area_wgs = shapely.union_all(list(area_zones.geometry))
    geometry = shapely.geometry.mapping(area_wgs)
    with reporter.stage(f"[{area_id}] search"):
        baseline_items = _search(config, geometry, config.periods.baseline)
        monitor_items = _search(config, geometry, config.periods.monitor)
    for name, found in (("baseline", baseline_items), ("monitor", monitor_items)):
        if not found:
            where = config.source.stac_catalog or config.source.stac_items or config.source.stac_api
            raise NoItemsError(
                f"area {area_id}: no {', '.join(config.source.collections)} items in {where} for the "
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
            parts.append((part, clear_mask(part.data, d.resolution_m, d.cloud_buffer_m, d.nodata_edge_m)))
        obs, clear = fuse(parts)
        indices = compute_indices(obs.data).assign(blue=obs.data["blue"], swir16=obs.data["swir16"])
        look_dates = [str(t)[:10] for t in obs.data["time"].values]
        baseline_end = config.periods.baseline[1].isoformat()
        is_baseline = np.array([day <= baseline_end for day in look_dates])
        lazy = detect_change(indices, clear, is_baseline, change_params(config), family_codes(list(obs.sensors_by_time)))
        lazy = lazy.assign(cec_negative_fraction=negative_fraction(obs.data, clear))
    with reporter.stage(f"[{area_id}] compute change over {len(look_dates)} looks"):
        change = _compute(lazy, reporter, f"[{area_id}] change detection")
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
        items=list(checked.usable),
    )


def detect(config: RunConfig, reporter: Reporter | None = None) -> tuple[gpd.GeoDataFrame, list[AreaDetection]]:
    """Zones and per-area detections for a config (no classification, nothing written)."""
    reporter = reporter or Reporter()
    with reporter.stage("areas"):
        zones = load_zones(config.areas)
    return zones, [detect_area(config, group, reporter) for _, group in zones.groupby("area_id", sort=True)]


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
    status: str = "done"
    """``done``, ``nothing new`` (every item of the window was processed before) or ``dry run``."""

    @property
    def exit_code(self) -> int:
        """0 done; 3 done but some inputs were skipped."""
        return 3 if self.skipped else 0


def classify_area(
    detection: AreaDetection, model: ScarModel, provenance: dict, natural_loss: str = "suppress"
) -> gpd.GeoDataFrame:
    """Classify one area's scars and turn them into alerts.

    With ``natural_loss="suppress"`` eroding river banks (:func:`pipeline.classify.advancing_banks`)
    are not issued: they are real loss, but not a matter for enforcement.
    """
    scars = detection.scars
    if natural_loss == "suppress" and not scars.empty:
        scars = scars[~advancing_banks(scars)].reset_index(drop=True)
    classes, probabilities = model.predict(scars)
    return build_alerts(
        scars, detection.zones, detection.epsg, detection.look_dates, detection.items_by_look,
        detection.sensors_by_look, classes, probabilities, provenance,
    )


def run(
    config: RunConfig,
    reporter: Reporter | None = None,
    *,
    since: dt.date | None = None,
    until: dt.date | None = None,
    dry_run: bool = False,
    overwrite: bool = False,
    today: dt.date | None = None,
) -> RunResult:
    """Run the whole job for a config and write its outputs into ``config.output.dir``.

    Parameters
    ----------
    since, until
        Monitor window override. Without them the window runs from the last processed date of
        the output folder's state store (minus ``lifecycle.lookback_days``) to
        ``periods.monitor[1]`` or today.
    dry_run
        Search only: return the plan (areas × items × outputs) without reading pixels or writing.
    overwrite
        Redo the window even if every item in it was processed before.
    today
        The date "today" (tests).

    The steps are in :mod:`pipeline.batch`.
    """
    from .batch import run_batch

    return run_batch(config, reporter or Reporter(), since=since, until=until, dry_run=dry_run,
                     overwrite=overwrite, today=today)


def _versions(model: ScarModel) -> dict:
    import dask
    import odc.stac
    import sklearn

    return {
        "pipeline": __version__,
        "python": platform.python_version(),
        "dask": dask.__version__,
        "odc-stac": odc.stac.__version__,
        "scikit-learn": sklearn.__version__,
        "model": model.version,
        "model_sklearn": model.card.get("sklearn_version"),
    }
