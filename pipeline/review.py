"""Recording analyst verdicts (``cec review``) in an output folder's state store.

The verdict CSV is read by :func:`pipeline.training.verdicts.read_verdicts` (its columns are
described there).

A rejected alert leaves the cumulative alert files at once and is never issued again: its scar
keeps matching the stored alert in later runs, which stays rejected. The same CSV can be given
to ``cec train`` as labels (a confirmed alert keeps its class; a rejected one is a false alarm).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path

import pandas as pd

from .alerts import sort_alerts, summarize
from .aoi import load_zones
from .batch import NEW_ALERTS_FILE
from .config import RunConfig
from .errors import InputError
from .files import staged_outputs, write_output_text
from .lifecycle import VERDICT_COLUMNS, issued
from .outputs import alert_writers
from .outputs.geojson import to_feature_collection
from .outputs.report import write_report
from .outputs.tables import write_summary
from .state import STATE_FILE, load_state, output_lock, remove_stale_temporaries, save_state
from .training.verdicts import listed, read_verdicts

log = logging.getLogger(__name__)

REVIEWED_FILE = "alerts_reviewed.geojson"


def apply_verdicts(alerts: pd.DataFrame, verdicts: pd.DataFrame, source: Path, today: dt.date | None = None):
    """Return a copy of the state's alerts with the verdicts set; unknown ids are an error."""
    known = set(alerts["alert_id"])
    rows = verdicts.index if verdicts.index.name == "row" else range(2, len(verdicts) + 2)
    unknown = [f"row {r}: {aid}" for r, aid in zip(rows, verdicts["alert_id"]) if aid not in known]
    if unknown:
        raise InputError(f"{source}: {len(unknown)} alert_id value(s) not in this output folder's state:"
                         + listed(unknown))
    updated = alerts.copy()
    day = (today or dt.date.today()).isoformat()
    for column in ("verdict", "verdict_reason", "reviewer", "review_comment", "reviewed"):
        updated[column] = updated[column].astype(object)
    for row in verdicts.itertuples(index=False):
        at = updated.index[updated["alert_id"] == row.alert_id]
        updated.loc[at, "verdict"] = row.verdict
        updated.loc[at, "verdict_reason"] = row.reason or None
        updated.loc[at, "reviewer"] = row.reviewer or None
        updated.loc[at, "review_comment"] = row.comment or None
        updated.loc[at, "reviewed"] = day
    return updated


def write_reviewed(alerts, path: Path) -> Path:
    """``alerts_reviewed.geojson``: every reviewed alert, rejected ones included, with its verdict.

    RFC 7946 like ``alerts.geojson``, plus the properties ``verdict``, ``verdict_reason``,
    ``reviewer``, ``review_comment`` and ``reviewed``. It is what ``cec train --alerts`` needs
    next to the verdict CSV, since rejected alerts leave ``alerts.geojson``.
    """
    reviewed = alerts[alerts["verdict"].astype(object).fillna("").astype(str) != ""]
    reviewed = sort_alerts(reviewed) if len(reviewed) else reviewed
    collection = to_feature_collection(reviewed)
    for feature, row in zip(collection["features"], reviewed.to_dict("records")):
        for column in VERDICT_COLUMNS:
            value = row.get(column)
            feature["properties"][column] = None if value is None or value != value else str(value)
    return write_output_text(path, json.dumps(collection, ensure_ascii=False, separators=(",", ":")) + "\n")


def refresh_run_products(out: Path, state, alerts) -> list[str]:
    """Rewrite the last run's ``alerts_new.geojson``, ``summary.csv`` and ``report.html`` without
    the alerts analysts rejected (``alerts`` = the issued cumulative alerts). Returns the names
    rewritten; a summary or report that cannot be rebuilt (the area layers moved) is logged."""
    rejected = set(state.alerts.loc[state.alerts["verdict"].astype(object).fillna("").astype(str) == "rejected",
                                    "alert_id"].astype(str))
    rewritten = []
    new_path = out / NEW_ALERTS_FILE
    if new_path.is_file():
        document = json.loads(new_path.read_text(encoding="utf-8"))
        features = document.get("features") if isinstance(document, dict) else None
        if isinstance(features, list):
            kept = [f for f in features if not (isinstance(f, dict) and isinstance(f.get("properties"), dict)
                                                 and f["properties"].get("alert_id") in rejected)]
            if len(kept) != len(features):
                document["features"] = kept
                write_output_text(new_path, json.dumps(document, ensure_ascii=False, separators=(",", ":")) + "\n")
                rewritten.append(NEW_ALERTS_FILE)
    summary_path, report_path, run_path = out / "summary.csv", out / "report.html", out / "run.json"
    if not run_path.is_file() or not (summary_path.is_file() or report_path.is_file()):
        return rewritten
    try:
        run_info = json.loads(run_path.read_text(encoding="utf-8"))
        config = RunConfig.model_validate(run_info["config"])
        zones = load_zones(config.areas)
    except (InputError, ValueError, KeyError, TypeError) as err:
        log.warning("summary.csv and report.html not rewritten without the rejected alerts: %s", err)
        return rewritten
    observed = set(state.history.loc[state.history["run_id"].astype(str) == str(run_info.get("run_id")),
                                     "alert_id"].astype(str))
    seen = alerts[alerts["alert_id"].astype(str).isin(observed)]
    window = run_info.get("window", {})
    summary = summarize(seen, zones, (str(window.get("loaded_from")), str(window.get("end"))))
    if summary_path.is_file():
        write_summary(summary, summary_path)
        rewritten.append(summary_path.name)
    if report_path.is_file():
        info = {"run_id": run_info.get("run_id"), "window": (str(window.get("start")), str(window.get("end"))),
                "n_new": int((seen["status"] == "new").sum()) if len(seen) else 0}
        write_report(out, alerts, zones, summary, info, config.output.lang)
        rewritten.append(report_path.name)
    return rewritten


def review(out: Path, csv_path: Path, today: dt.date | None = None) -> dict:
    """Record a verdict CSV in ``<out>/state.gpkg`` and rewrite the cumulative alert files there.

    Returns counts: ``confirmed``, ``rejected`` and ``rewritten`` (file names).
    """
    out = Path(out)
    verdicts = read_verdicts(csv_path)
    if not (out / STATE_FILE).is_file():
        raise InputError(f"{out / STATE_FILE}: no state store: run `cec run` into this folder first")
    with output_lock(out):
        for path in remove_stale_temporaries(out):
            log.info("removed %s, left by an interrupted run or review", path.relative_to(out))
        state = load_state(out)
        state.alerts = apply_verdicts(state.alerts, verdicts, Path(csv_path), today)
        alerts = sort_alerts(issued(state.alerts))
        rewritten = []
        with staged_outputs():  # all files or none: the state is renamed into place last
            for writer in alert_writers():
                if (out / writer.file_name).is_file():
                    writer.write(alerts, out / writer.file_name)
                    rewritten.append(writer.file_name)
            write_reviewed(state.alerts, out / REVIEWED_FILE)
            rewritten.append(REVIEWED_FILE)
            rewritten += refresh_run_products(out, state, alerts)
            save_state(out, state)
    counts = verdicts["verdict"].value_counts()
    return {"confirmed": int(counts.get("confirmed", 0)), "rejected": int(counts.get("rejected", 0)),
            "rewritten": rewritten}
