"""The scheduled batch job: plan -> detect -> classify -> write -> commit.

One run, in order:

1. resolve the monitor window (``--since``/``--until``, else from the state store's last
   processed date minus ``lifecycle.lookback_days``, else the config);
2. plan: search the source once per area and period (no pixels read) and stop if every item
   of the window was processed before (unless ``overwrite``); a dry run stops here;
3. under the output folder's lock (temporaries a killed run left are removed): detect change
   over the baseline and the monitor looks *from the monitor start* (confirmation needs the
   earlier looks) on the planned items, classify, and match the scars to the stored alerts
   (:mod:`pipeline.lifecycle`);
4. write every output under a temporary name, then ``run.json``, then the state store, and
   rename them all into place at the end (:func:`pipeline.files.staged_outputs`): the state only
   advances once every output is in place, and a run that fails while writing (a full disk)
   leaves every previous output as it was.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import platform
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import dask
import geopandas as gpd
import numpy as np
import odc.stac
import pandas as pd
import sklearn

from . import __version__
from .alerts import build_alerts, sort_alerts, summarize
from .aoi import load_zones
from .budget import area_budget
from .classify import Classifier, advancing_banks, load_classifier, river_dynamics
from .config import RunConfig, apply_overrides, lifecycle_params
from .detect import check_grid, detect_areas
from .errors import ConfigError
from .files import child_path, staged_outputs, write_json_atomic
from .lifecycle import issued, update_lifecycle
from .model import AreaDetection, RunResult
from .outputs import alert_writer
from .outputs.evidence import write_evidence
from .notify import build_email, deliveries_json, post_webhook, redact_url, send_email, should_notify, summary_payload
from .outputs.geojson import to_feature_collection, write_geojson
from .outputs.report import write_report
from .outputs.tables import write_summary
from .overlays import attribute_overlays, load_overlays
from .plan import AreaPlan, plan_areas, plan_rows
from .progress import Reporter
from .sources.search import write_items
from .state import State, Window, load_state, output_lock, remove_stale_temporaries, resolve_window, save_state

log = logging.getLogger(__name__)

NEW_ALERTS_FILE = "alerts_new.geojson"


def planned_outputs(config: RunConfig) -> list[str]:
    """File names a run writes into the output folder, in writing order."""
    names = [alert_writer(f).file_name for f in config.output.formats]
    if "geojson" in config.output.formats:
        names.append(NEW_ALERTS_FILE)
    extra = (["evidence/"] if config.output.evidence else []) + (["report.html"] if config.output.report else [])
    return [*names, "summary.csv", *extra, "items.json", "run.json", "state.gpkg"]


def window_config(config: RunConfig, window: Window) -> RunConfig:
    """The config with ``periods.monitor`` set to what this run loads."""
    return apply_overrides(config, {"periods.monitor": [window.load_start.isoformat(), window.end.isoformat()]})


@dataclass
class Classified:
    """Alerts after classification and matching to the state store."""

    cumulative: gpd.GeoDataFrame
    """Every alert of the output folder (the state's alerts updated)."""
    observed: gpd.GeoDataFrame
    """The alerts this run saw."""
    alerts: gpd.GeoDataFrame
    """Issued cumulative alerts, sorted (``alerts.geojson``)."""
    seen: gpd.GeoDataFrame
    """Issued alerts this run saw, sorted."""
    new_alerts: gpd.GeoDataFrame


def classify_area(
    detection: AreaDetection, model: Classifier, provenance: dict, natural_loss: str = "suppress",
    generalize: tuple[float, float] | None = None, thresholds: dict | None = None,
) -> gpd.GeoDataFrame:
    """Classify one area's scars and turn them into alerts.

    With ``natural_loss="suppress"`` natural change at the river's edge is not issued: eroding
    banks (:func:`pipeline.classify.advancing_banks`), and scars of class ``other`` lying mostly
    by the water (:func:`pipeline.classify.river_dynamics`): real change, but the river's, not a
    matter for enforcement. ``generalize``:
    ``(min_area_m2, pixel_m)`` to clean the polygons for GIS (:func:`pipeline.alerts.build_alerts`).
    ``thresholds``: per-class decision thresholds (``classify.thresholds``), for classifiers
    that take them (the scikit-learn one does).
    """
    scars = detection.scars
    if natural_loss == "suppress" and not scars.empty:
        scars = scars[~advancing_banks(scars)].reset_index(drop=True)
    classes, probabilities = model.predict(scars, thresholds) if thresholds else model.predict(scars)
    if natural_loss == "suppress" and not scars.empty:
        river = river_dynamics(scars, classes)
        if river.any():
            log.info("%s: %d scar(s) of class other lying mostly by the water not issued (river dynamics; "
                     "detection.natural_loss: other issues them)", detection.area_id, int(river.sum()))
            scars = scars[~river].reset_index(drop=True)
            classes, probabilities = np.asarray(classes)[~river], np.asarray(probabilities)[~river]
    return build_alerts(
        scars, detection.zones, detection.epsg, detection.look_dates, detection.items_by_look,
        detection.sensors_by_look, classes, probabilities, provenance, generalize,
    )


def classify(config: RunConfig, detections: list[AreaDetection], model: Classifier, provenance: dict,
             overlay_layers: list, state: State) -> Classified:
    """Classify every area, attribute overlays and match to the stored alerts."""
    d = config.detection
    generalize = (d.min_area_ha * 1e4, d.resolution_m)
    thresholds = dict(config.classify.thresholds)
    parts = [classify_area(area, model, provenance, d.natural_loss, generalize, thresholds) for area in detections]
    non_empty = [p for p in parts if not p.empty]
    detected = pd.concat(non_empty, ignore_index=True) if non_empty else parts[0]
    detected = gpd.GeoDataFrame(detected, geometry="geometry", crs=4326)
    if overlay_layers:
        detected = attribute_overlays(detected, overlay_layers)
    cumulative, observed = update_lifecycle(detected, state.alerts, lifecycle_params(config.lifecycle))
    seen = sort_alerts(issued(observed))
    return Classified(cumulative=cumulative, observed=observed, alerts=sort_alerts(issued(cumulative)), seen=seen,
                      new_alerts=seen[seen["status"] == "new"].reset_index(drop=True))


def versions(model: Classifier) -> dict:
    """Versions of the pipeline, its main libraries and the model, for ``run.json``."""
    return {
        "pipeline": __version__,
        "python": platform.python_version(),
        "dask": dask.__version__,
        "odc-stac": odc.stac.__version__,
        "scikit-learn": sklearn.__version__,
        "model": model.version,
        "model_sklearn": model.card.get("sklearn_version"),
    }


def write_outputs(config: RunConfig, out: Path, result: Classified, summary: pd.DataFrame, zones: gpd.GeoDataFrame,
                  detections: list[AreaDetection], info: dict, reporter: Reporter) -> dict[str, Path]:
    """Alert files of every configured format, summary, evidence, report and items.json (each atomic)."""
    outputs: dict[str, Path] = {}
    grids = {d.area_id: (d.epsg, d.grid_bounds) for d in detections if d.grid_bounds}
    for fmt in config.output.formats:
        writer = alert_writer(fmt)
        extra = {"grids": grids, "resolution_m": config.detection.resolution_m} if writer.run_grids else {}
        outputs[fmt] = writer.write(result.alerts, out / writer.file_name, **extra)
    if "geojson" in config.output.formats:
        outputs["geojson_new"] = write_geojson(result.new_alerts, out / NEW_ALERTS_FILE)
    outputs["summary"] = write_summary(summary, out / "summary.csv")
    if config.output.evidence:
        outputs["evidence"] = out / "evidence"
        seen = result.seen
        wanted = seen[seen["status"].isin(["new", "expanding"])
                      | ~seen["alert_id"].map(lambda a: (child_path(out / "evidence", a) / "manifest.json").is_file())]
        with reporter.stage(f"evidence bundles ({len(wanted)} alerts)"):
            write_evidence(out, wanted, detections, config.detection.resolution_m, config.output.lang)
    if config.output.report:
        with reporter.stage("report"):
            outputs["report"] = write_report(out, result.alerts, zones, summary, info, config.output.lang, detections)
    used = {item.id: item for d in detections for item in d.items}
    outputs["items"] = write_items([used[k] for k in sorted(used)], out / "items.json")
    return outputs


def send_notifications(config: RunConfig, result: Classified, run_id: str, window: Window,
                       outputs: dict[str, Path], reporter: Reporter) -> list[dict]:
    """Webhooks and e-mail after a run with new or expanding alerts; never raises.

    Returns one record per attempt (channel, target, ok, error) for ``run.json``; a failure is
    logged as a warning and does not change the run's outcome or exit code.
    """
    settings = config.notify
    if not settings.webhooks and settings.email is None:
        return []
    alerts = [{k: v for k, v in row.items() if k != "geometry"} for row in result.seen.to_dict("records")]
    payload = summary_payload(alerts, {"name": config.name, "run_id": run_id,
                                       "period": [window.start.isoformat(), window.end.isoformat()],
                                       "report": str(outputs["report"]) if "report" in outputs else None})
    if not should_notify(payload):
        log.info("notifications: no new or expanding alerts, nothing sent")
        return []
    deliveries = []
    with reporter.stage("notifications"):
        for url in settings.webhooks:
            deliveries.append(post_webhook(url, payload, settings.timeout_s))
        if settings.email is not None:
            mail = settings.email
            new = json.dumps(to_feature_collection(result.new_alerts), ensure_ascii=False).encode()
            message = build_email(payload, mail.sender, mail.to, {NEW_ALERTS_FILE: new}, config.output.lang)
            password = os.environ.get(mail.password_env) if mail.password_env else None
            deliveries.append(send_email(message, mail.smtp_host, mail.smtp_port, settings.timeout_s,
                                         mail.starttls, mail.username, password))
    for d in deliveries:
        if d.ok:
            log.info("notification sent: %s %s", d.channel, d.target)
        else:
            log.warning("notification failed (the run is not affected): %s %s: %s", d.channel, d.target, d.error)
    return deliveries_json(deliveries)


def redacted_config(config: RunConfig) -> dict:
    """The config for ``run.json``, webhook URLs without credentials, query or fragment."""
    data = config.model_dump(mode="json")
    data["notify"]["webhooks"] = [redact_url(u) for u in data["notify"]["webhooks"]]
    return data


def run_info(run_id: str, started: dt.datetime, seconds: float, window: Window, n_new_items: int,
             effective: RunConfig, model: Classifier, detections: list[AreaDetection], skipped: list[dict],
             result: Classified, counts: dict, outputs: dict[str, Path], notifications: list[dict] | None = None) -> dict:
    """The content of ``run.json``."""
    return {
        "run_id": run_id,
        "started": started.isoformat(timespec="seconds"),
        "seconds": round(seconds, 2),
        "window": {"start": window.start.isoformat(), "end": window.end.isoformat(),
                   "loaded_from": window.load_start.isoformat(), "incremental": window.incremental,
                   "new_items": n_new_items},
        "config": redacted_config(effective),
        "versions": versions(model),
        "areas": [
            {"area_id": d.area_id, "utm_epsg": d.epsg, "grid_shape": list(d.grid_shape),
             "looks": [{"date": day, "items": list(items), "sensor": sensor, "period":
                        "baseline" if i < d.n_baseline_looks else "monitor"}
                       for i, (day, items, sensor) in
                       enumerate(zip(d.look_dates, d.items_by_look, d.sensors_by_look))],
             "clear_looks": d.clear_looks,
             "scars": int(len(d.scars))}
            for d in detections
        ],
        "warnings": [f"area {d.area_id}: 0 clear monitor looks ({d.clear_looks.get('baseline', 0)} clear baseline "
                     "looks): no change could be seen" for d in detections if d.clear_looks.get("monitor", 1) == 0],
        "skipped_inputs": skipped,
        "alerts": int(len(result.alerts)),
        "alerts_by_status": counts,
        "outputs": {k: str(v) for k, v in outputs.items()},
        "notifications": notifications or [],
    }


def history_rows(observed: gpd.GeoDataFrame, run_id: str) -> gpd.GeoDataFrame:
    """One state-history row per alert this run observed."""
    rows = pd.DataFrame({
        "alert_id": observed["alert_id"].astype(str).to_numpy(),
        "run_id": run_id,
        "last_observed": observed["last_observed"].astype(str).to_numpy(),
        "area_ha": observed["area_ha"].astype(float).to_numpy(),
    })
    return gpd.GeoDataFrame(rows, geometry=observed.geometry.to_numpy(), crs=4326)


def commit_state(out: Path, state: State, result: Classified, detections: list[AreaDetection], run_id: str,
                 started: dt.datetime, window: Window, counts: dict) -> Path:
    """Save the state store (last: the state only advances once every output is in place)."""
    used_ids = sorted({i for d in detections for items in d.items_by_look for i in items})
    history = history_rows(result.observed, run_id)
    new_state = State(
        alerts=result.cumulative,
        history=gpd.GeoDataFrame(pd.concat([state.history, history], ignore_index=True),
                                 geometry="geometry", crs=4326) if not state.history.empty else history,
        runs=pd.concat([state.runs.astype(str), pd.DataFrame([{
            "run_id": run_id, "started": started.isoformat(timespec="seconds"),
            "window_start": window.start.isoformat(), "window_end": window.end.isoformat(),
            "items": ";".join(used_ids), "n_new": counts["new"], "n_ongoing": counts["ongoing"],
            "n_expanding": counts["expanding"],
        }]).astype(str)], ignore_index=True),
    )
    return save_state(out, new_state)


def run_batch(
    config: RunConfig,
    reporter: Reporter | None = None,
    *,
    since: dt.date | None = None,
    until: dt.date | None = None,
    dry_run: bool = False,
    overwrite: bool = False,
    today: dt.date | None = None,
    cluster: Callable[[int], AbstractContextManager] | None = None,
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
    cluster
        Opens the dask cluster for a run over that many areas (a context manager, e.g.
        ``lambda n_areas: dask_client(config.dask, n_areas)``), entered only when pixels are to be
        read: planning, a dry run and "nothing new" start none.
        None: whatever dask scheduler is active (a client already open, or dask's local one).
    """
    reporter = reporter or Reporter()
    started = dt.datetime.now(dt.timezone.utc)
    t0 = time.perf_counter()
    run_id = f"{config.name}-{started.strftime('%Y%m%dT%H%M%SZ')}"
    out = Path(config.output.dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out}: output.dir is not a folder (a file has that name)")
    # Inputs are checked before anything is searched or written: a bad model, area or overlay
    # layer fails here, and leaves no output folder or lock behind.
    model = load_classifier(config.model)
    zones = load_zones(config.areas)
    overlay_layers = load_overlays(config.overlays)
    state = load_state(out)
    window = resolve_window(config.periods.monitor, state.processed_until, config.lifecycle.lookback_days,
                            since, until, today)
    effective = window_config(config, window)
    with reporter.stage("plan (search only)"):
        plans = plan_areas(effective, zones)
        plan = plan_rows(plans, window.start, window.end, state.processed_items)
        for area in plans:
            check_grid(effective, area)  # before reading any pixel, and before the output folder exists
    n_new_items = sum(i["new"] for area in plan for i in area["monitor_items"])
    empty = gpd.GeoDataFrame(columns=["alert_id", "geometry"], geometry="geometry", crs=4326)
    result = dict(alerts=empty, summary=pd.DataFrame(), outputs={}, skipped=[], run_id=run_id,
                  new_alerts=empty, window=window, plan=plan)
    if dry_run:
        for row, area in zip(plan, plans):
            row["budget"] = area_budget(area, effective, n_areas=len(plans)).as_dict()
        return RunResult(**result, status="dry run")
    # a first run with no items goes on, so that detection names what is missing (exit 2)
    if n_new_items == 0 and not overwrite and state.processed_until is not None:
        log.info("nothing new: every item of %s..%s was processed before (use --overwrite to redo it)",
                 window.start, window.end)
        if not state.alerts.empty:  # the alerts already issued, as alerts.geojson holds them
            result["alerts"] = sort_alerts(issued(state.alerts))
        return RunResult(**result, status="nothing new")
    # the cluster starts here, once pixels are to be read, and before the output folder is touched:
    # a cluster that cannot be reached leaves nothing behind
    with cluster(len(plans)) if cluster is not None else contextlib.nullcontext(), output_lock(out):
        return _locked_run(effective, config, model, plans, zones, overlay_layers, window, n_new_items, run_id,
                           started, t0, plan, reporter)


def _locked_run(effective: RunConfig, config: RunConfig, model: Classifier, plans: list[AreaPlan], zones: gpd.GeoDataFrame,
                overlay_layers: list, window: Window, n_new_items: int, run_id: str, started: dt.datetime,
                t0: float, plan: list[dict], reporter: Reporter) -> RunResult:
    """Detect, classify, write and commit, holding the output folder's lock."""
    out = Path(config.output.dir)
    for path in remove_stale_temporaries(out):
        log.info("removed %s, left by an interrupted run", path.name)
    state = load_state(out)  # re-read under the lock
    detections = detect_areas(effective, plans, reporter)
    provenance = {"run_name": config.name, "run_id": run_id, "model_version": model.version,
                  "pipeline_version": __version__}
    with reporter.stage("classify, attribute and match to earlier alerts"):
        classified = classify(config, detections, model, provenance, overlay_layers, state)
    summary = summarize(classified.seen, zones, (window.load_start.isoformat(), window.end.isoformat()))
    # staged: every output goes to a temporary name and all are renamed at the end (the state
    # last); a failure anywhere (a full disk) leaves every previous output as it was
    with reporter.stage("write outputs"), staged_outputs():
        info = {"run_id": run_id, "window": (window.start.isoformat(), window.end.isoformat()),
                "n_new": len(classified.new_alerts)}
        outputs = write_outputs(config, out, classified, summary, zones, detections, info, reporter)
        skipped = [s for d in detections for s in d.skipped]
        counts = {s: int((classified.seen["status"] == s).sum()) for s in ("new", "ongoing", "expanding")}
    deliveries = send_notifications(config, classified, run_id, window, outputs, reporter)
    with reporter.stage("run.json and state"):
        outputs["run"] = write_json_atomic(out / "run.json", run_info(
            run_id, started, time.perf_counter() - t0, window, n_new_items, effective, model, detections, skipped,
            classified, counts, outputs, deliveries))
        outputs["state"] = commit_state(out, state, classified, detections, run_id, started, window, counts)
    return RunResult(alerts=classified.alerts, summary=summary, outputs=outputs, skipped=skipped, run_id=run_id,
                     new_alerts=classified.new_alerts, window=window, plan=plan, counts=counts,
                     notifications=deliveries, status="done")
