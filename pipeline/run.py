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
from .alerts import (
    build_alerts,
    sort_alerts,
    summarize,
    write_alert_csv,
    write_geojson,
    write_summary,
    write_vector,
)
from .change import CONFIDENCE_CODES, ChangeParams, detect_change
from .classify import ScarModel, load_model
from .config import RunConfig
from .errors import NoItemsError, NoValidPixelsError
from .files import write_json_atomic
from .indices import compute_indices
from .ingest import check_items, load_observations, make_geobox, search_api, search_catalog
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


def change_params(config: RunConfig) -> ChangeParams:
    """Change-test thresholds from the config."""
    d = config.detection
    return ChangeParams(forest_ndvi_min=d.forest_ndvi_min, ndvi_drop_min=d.ndvi_drop_min, drop_sigma=d.drop_sigma)


def _search(config: RunConfig, geometry: dict, period: tuple[dt.date, dt.date]) -> list:
    src = config.source
    if src.stac_catalog is not None:
        return search_catalog(src.stac_catalog, src.collections, geometry, *period, src.max_cloud_cover)
    return search_api(src.stac_api, src.collections, geometry, *period, src.max_cloud_cover)


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
            where = config.source.stac_catalog or config.source.stac_api
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
        obs = load_observations(checked.usable, geobox, config.detection.chunk_px)
        d = config.detection
        clear = clear_mask(obs.data, d.resolution_m, d.cloud_buffer_m, d.nodata_edge_m)
        indices = compute_indices(obs.data).assign(blue=obs.data["blue"], swir16=obs.data["swir16"])
        look_dates = [str(t)[:10] for t in obs.data["time"].values]
        baseline_end = config.periods.baseline[1].isoformat()
        is_baseline = np.array([day <= baseline_end for day in look_dates])
        lazy = detect_change(indices, clear, is_baseline, change_params(config))
    with reporter.stage(f"[{area_id}] compute change over {len(look_dates)} looks"):
        change = _compute(lazy, reporter, f"[{area_id}] change detection")
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
    summary: pd.DataFrame
    outputs: dict[str, Path]
    skipped: list[dict]
    run_id: str

    @property
    def exit_code(self) -> int:
        """0 done; 3 done but some inputs were skipped."""
        return 3 if self.skipped else 0


def classify_area(detection: AreaDetection, model: ScarModel, provenance: dict) -> gpd.GeoDataFrame:
    """Classify one area's scars and turn them into alerts."""
    classes, probabilities = model.predict(detection.scars)
    return build_alerts(
        detection.scars, detection.zones, detection.epsg, detection.look_dates, detection.items_by_look,
        detection.sensors_by_look, classes, probabilities, provenance,
    )


def run(config: RunConfig, reporter: Reporter | None = None) -> RunResult:
    """Run the whole job for a config and write its outputs into ``config.output.dir``."""
    reporter = reporter or Reporter()
    started = dt.datetime.now(dt.timezone.utc)
    t0 = time.perf_counter()
    run_id = f"{config.name}-{started.strftime('%Y%m%dT%H%M%SZ')}"
    zones = load_zones(config.areas)
    model = load_model(config.model)
    detections = [detect_area(config, group, reporter) for _, group in zones.groupby("area_id", sort=True)]
    provenance = {"run_name": config.name, "run_id": run_id, "model_version": model.version,
                  "pipeline_version": __version__}
    with reporter.stage("classify and attribute"):
        parts = [classify_area(d, model, provenance) for d in detections]
        non_empty = [p for p in parts if not p.empty]
        alerts = sort_alerts(pd.concat(non_empty, ignore_index=True)) if non_empty else parts[0]
        alerts = gpd.GeoDataFrame(alerts, geometry="geometry", crs=4326)
    period = (config.periods.monitor[0].isoformat(), config.periods.monitor[1].isoformat())
    summary = summarize(alerts, zones, period)

    out = Path(config.output.dir)
    outputs: dict[str, Path] = {}
    with reporter.stage("write outputs"):
        writers = {
            "geojson": ("alerts.geojson", write_geojson),
            "csv": ("alerts.csv", write_alert_csv),
            "gpkg": ("alerts.gpkg", lambda a, p: write_vector(a, p, "GPKG")),
            "kml": ("alerts.kml", lambda a, p: write_vector(a, p, "KML")),
        }
        for fmt in config.output.formats:
            name, writer = writers[fmt]
            outputs[fmt] = writer(alerts, out / name)
        outputs["summary"] = write_summary(summary, out / "summary.csv")
        skipped = [s for d in detections for s in d.skipped]
        run_info = {
            "run_id": run_id,
            "started": started.isoformat(timespec="seconds"),
            "seconds": round(time.perf_counter() - t0, 2),
            "config": config.model_dump(mode="json"),
            "versions": _versions(model),
            "areas": [
                {"area_id": d.area_id, "utm_epsg": d.epsg, "grid_shape": list(d.grid_shape),
                 "looks": [{"date": day, "items": list(items), "sensor": sensor, "period":
                            "baseline" if i < d.n_baseline_looks else "monitor"}
                           for i, (day, items, sensor) in enumerate(zip(d.look_dates, d.items_by_look, d.sensors_by_look))],
                 "scars": int(len(d.scars))}
                for d in detections
            ],
            "skipped_inputs": skipped,
            "alerts": int(len(alerts)),
            "outputs": {k: str(v) for k, v in outputs.items()},
        }
        outputs["run"] = write_json_atomic(out / "run.json", run_info)
    return RunResult(alerts=alerts, summary=summary, outputs=outputs, skipped=skipped, run_id=run_id)


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
