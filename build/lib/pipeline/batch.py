"""The scheduled batch job behind :func:`pipeline.run.run`: window, lock, lifecycle, outputs.

One run, in order:

1. resolve the monitor window (``--since``/``--until``, else from the state store's last
   processed date minus ``lifecycle.lookback_days``, else the config);
2. search the window's STAC items (no pixels read) and stop if every one was processed before
   (unless ``overwrite``); a dry run stops here and returns the plan;
3. take the output folder's lock, remove temporaries a killed run left, detect change over the
   baseline and the monitor looks *from the monitor start* (confirmation needs the earlier
   looks), classify, and match the scars to the stored alerts (:mod:`pipeline.lifecycle`);
4. write every output atomically, then ``run.json``, and the state store last: the state only
   advances once every output is in place.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from pathlib import Path

import geopandas as gpd
import pandas as pd
import shapely

from . import __version__
from .aoi import load_zones
from .alerts import (
    sort_alerts,
    summarize,
    write_alert_csv,
    write_geojson,
    write_summary,
)
from .classify import load_model
from .config import RunConfig, apply_overrides
from .evidence import write_evidence
from .export import write_gpkg, write_kml
from .files import write_json_atomic
from .lifecycle import LifecycleParams, issued, update_lifecycle
from .overlays import attribute_overlays, load_overlays
from .report import write_report
from .state import State, Window, load_state, output_lock, remove_stale_temporaries, resolve_window, save_state

log = logging.getLogger(__name__)

ALERT_FILES = {"geojson": "alerts.geojson", "csv": "alerts.csv", "gpkg": "alerts.gpkg", "kml": "alerts.kml"}
NEW_ALERTS_FILE = "alerts_new.geojson"


def planned_outputs(config: RunConfig) -> list[str]:
    """File names a run writes into the output folder, in writing order."""
    names = [ALERT_FILES[f] for f in config.output.formats]
    if "geojson" in config.output.formats:
        names.append(NEW_ALERTS_FILE)
    extra = (["evidence/"] if config.output.evidence else []) + (["report.html"] if config.output.report else [])
    return [*names, "summary.csv", *extra, "items.json", "run.json", "state.gpkg"]


def window_config(config: RunConfig, window: Window) -> RunConfig:
    """The config with ``periods.monitor`` set to what this run loads."""
    return apply_overrides(config, {"periods.monitor": [window.load_start.isoformat(), window.end.isoformat()]})


def plan_run(config: RunConfig, zones: gpd.GeoDataFrame, window: Window, state: State) -> list[dict]:
    """Per area: the baseline items, and the monitor items of the window marked new or processed."""
    from .run import _search

    processed = state.processed_items
    plan = []
    for area_id, group in zones.groupby("area_id", sort=True):
        geometry = shapely.geometry.mapping(shapely.union_all(list(group.geometry)))
        baseline = _search(config, geometry, config.periods.baseline)
        monitor = _search(config, geometry, (window.start, window.end))
        plan.append({
            "area_id": str(area_id),
            "baseline_items": sorted(i.id for i in baseline),
            "monitor_items": [
                {"id": i.id, "date": str(i.datetime or i.properties.get("start_datetime", ""))[:10],
                 "new": i.id not in processed}
                for i in sorted(monitor, key=lambda i: (str(i.datetime), i.id))
            ],
        })
    return plan


def run_batch(
    config: RunConfig,
    reporter,
    since: dt.date | None = None,
    until: dt.date | None = None,
    dry_run: bool = False,
    overwrite: bool = False,
    today: dt.date | None = None,
):
    """See the module docstring; returns a :class:`pipeline.run.RunResult`."""
    from .run import RunResult, _versions, classify_area, detect_area

    started = dt.datetime.now(dt.timezone.utc)
    t0 = time.perf_counter()
    run_id = f"{config.name}-{started.strftime('%Y%m%dT%H%M%SZ')}"
    out = Path(config.output.dir)
    zones = load_zones(config.areas)
    overlay_layers = load_overlays(config.overlays)  # read first: a bad layer fails before any pixel is read
    state = load_state(out)
    window = resolve_window(config.periods.monitor, state.processed_until, config.lifecycle.lookback_days,
                            since, until, today)
    effective = window_config(config, window)
    with reporter.stage("plan (search only)"):
        plan = plan_run(effective, zones, window, state)
    n_new_items = sum(i["new"] for area in plan for i in area["monitor_items"])
    empty = gpd.GeoDataFrame(columns=["alert_id", "geometry"], geometry="geometry", crs=4326)
    result = dict(alerts=empty, summary=pd.DataFrame(), outputs={}, skipped=[], run_id=run_id,
                  new_alerts=empty, window=window, plan=plan)
    if dry_run:
        return RunResult(**result, status="dry run")
    # a first run with no items goes on, so that detection names what is missing (exit 2)
    if n_new_items == 0 and not overwrite and state.processed_until is not None:
        log.info("nothing new: every item of %s..%s was processed before (use --overwrite to redo it)",
                 window.start, window.end)
        if not state.alerts.empty:  # the alerts already issued, as alerts.geojson holds them
            result["alerts"] = sort_alerts(issued(state.alerts))
        return RunResult(**result, status="nothing new")

    with output_lock(out):
        for path in remove_stale_temporaries(out):
            log.info("removed %s, left by an interrupted run", path.name)
        state = load_state(out)  # re-read under the lock
        model = load_model(effective.model)
        detections = [detect_area(effective, group, reporter) for _, group in zones.groupby("area_id", sort=True)]
        provenance = {"run_name": config.name, "run_id": run_id, "model_version": model.version,
                      "pipeline_version": __version__}
        with reporter.stage("classify, attribute and match to earlier alerts"):
            parts = [classify_area(d, model, provenance, config.detection.natural_loss) for d in detections]
            non_empty = [p for p in parts if not p.empty]
            detected = pd.concat(non_empty, ignore_index=True) if non_empty else parts[0]
            detected = gpd.GeoDataFrame(detected, geometry="geometry", crs=4326)
            if overlay_layers:
                detected = attribute_overlays(detected, overlay_layers)
            params = LifecycleParams(config.lifecycle.expanding_share, config.lifecycle.match_overlap)
            cumulative, observed = update_lifecycle(detected, state.alerts, params)
            alerts = sort_alerts(issued(cumulative))
            seen = sort_alerts(issued(observed))
            new_alerts = seen[seen["status"] == "new"].reset_index(drop=True)
        period = (window.load_start.isoformat(), window.end.isoformat())
        summary = summarize(seen, zones, period)

        outputs: dict[str, Path] = {}
        with reporter.stage("write outputs"):
            writers = {"geojson": write_geojson, "csv": write_alert_csv, "gpkg": write_gpkg, "kml": write_kml}
            for fmt in config.output.formats:
                outputs[fmt] = writers[fmt](alerts, out / ALERT_FILES[fmt])
            if "geojson" in config.output.formats:
                outputs["geojson_new"] = write_geojson(new_alerts, out / NEW_ALERTS_FILE)
            outputs["summary"] = write_summary(summary, out / "summary.csv")
            if config.output.evidence:
                outputs["evidence"] = out / "evidence"
                wanted = seen[seen["status"].isin(["new", "expanding"])
                              | ~seen["alert_id"].map(lambda a: (out / "evidence" / a / "manifest.json").is_file())]
                with reporter.stage(f"evidence bundles ({len(wanted)} alerts)"):
                    write_evidence(out, wanted, detections, config.detection.resolution_m, config.output.lang)
            if config.output.report:
                info = {"run_id": run_id, "window": (window.start.isoformat(), window.end.isoformat()),
                        "n_new": len(new_alerts)}
                outputs["report"] = write_report(out, alerts, zones, summary, info, config.output.lang)
            from .ingest import write_items

            used = {item.id: item for d in detections for item in d.items}
            outputs["items"] = write_items([used[k] for k in sorted(used)], out / "items.json")
            skipped = [s for d in detections for s in d.skipped]
            counts = {s: int((seen["status"] == s).sum()) for s in ("new", "ongoing", "expanding")}
            run_info = {
                "run_id": run_id,
                "started": started.isoformat(timespec="seconds"),
                "seconds": round(time.perf_counter() - t0, 2),
                "window": {"start": window.start.isoformat(), "end": window.end.isoformat(),
                           "loaded_from": window.load_start.isoformat(), "incremental": window.incremental,
                           "new_items": n_new_items},
                "config": effective.model_dump(mode="json"),
                "versions": _versions(model),
                "areas": [
                    {"area_id": d.area_id, "utm_epsg": d.epsg, "grid_shape": list(d.grid_shape),
                     "looks": [{"date": day, "items": list(items), "sensor": sensor, "period":
                                "baseline" if i < d.n_baseline_looks else "monitor"}
                               for i, (day, items, sensor) in
                               enumerate(zip(d.look_dates, d.items_by_look, d.sensors_by_look))],
                     "scars": int(len(d.scars))}
                    for d in detections
                ],
                "skipped_inputs": skipped,
                "alerts": int(len(alerts)),
                "alerts_by_status": counts,
                "outputs": {k: str(v) for k, v in outputs.items()},
            }
            outputs["run"] = write_json_atomic(out / "run.json", run_info)
            used_ids = sorted({i for d in detections for items in d.items_by_look for i in items})
            history = _history_rows(observed, run_id)
            new_state = State(
                alerts=cumulative,
                history=gpd.GeoDataFrame(pd.concat([state.history, history], ignore_index=True),
                                         geometry="geometry", crs=4326) if not state.history.empty else history,
                runs=pd.concat([state.runs.astype(str), pd.DataFrame([{
                    "run_id": run_id, "started": started.isoformat(timespec="seconds"),
                    "window_start": window.start.isoformat(), "window_end": window.end.isoformat(),
                    "items": ";".join(used_ids), "n_new": counts["new"], "n_ongoing": counts["ongoing"],
                    "n_expanding": counts["expanding"],
                }]).astype(str)], ignore_index=True),
            )
            outputs["state"] = save_state(out, new_state)
    return RunResult(alerts=alerts, summary=summary, outputs=outputs, skipped=skipped, run_id=run_id,
                     new_alerts=new_alerts, window=window, plan=plan, status="done")


def _history_rows(observed: gpd.GeoDataFrame, run_id: str) -> gpd.GeoDataFrame:
    rows = pd.DataFrame({
        "alert_id": observed["alert_id"].astype(str).to_numpy(),
        "run_id": run_id,
        "last_observed": observed["last_observed"].astype(str).to_numpy(),
        "area_ha": observed["area_ha"].astype(float).to_numpy(),
    })
    return gpd.GeoDataFrame(rows, geometry=observed.geometry.to_numpy(), crs=4326)
