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
from pathlib import Path

import pandas as pd

from .alerts import sort_alerts
from .errors import InputError
from .files import write_output_text
from .lifecycle import VERDICT_COLUMNS, issued
from .outputs import alert_writers
from .outputs.geojson import to_feature_collection
from .state import STATE_FILE, load_state, output_lock, save_state
from .training.verdicts import read_verdicts

REVIEWED_FILE = "alerts_reviewed.geojson"


def apply_verdicts(alerts: pd.DataFrame, verdicts: pd.DataFrame, source: Path, today: dt.date | None = None):
    """Return a copy of the state's alerts with the verdicts set; unknown ids are an error."""
    known = set(alerts["alert_id"])
    unknown = [f"row {i + 2}: {aid}" for i, aid in enumerate(verdicts["alert_id"]) if aid not in known]
    if unknown:
        raise InputError(f"{source}: alert_id not in this output folder's state: {'; '.join(unknown)}")
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


def review(out: Path, csv_path: Path, today: dt.date | None = None) -> dict:
    """Record a verdict CSV in ``<out>/state.gpkg`` and rewrite the cumulative alert files there.

    Returns counts: ``confirmed``, ``rejected`` and ``rewritten`` (file names).
    """
    out = Path(out)
    verdicts = read_verdicts(csv_path)
    if not (out / STATE_FILE).is_file():
        raise InputError(f"{out / STATE_FILE}: no state store: run `cec run` into this folder first")
    with output_lock(out):
        state = load_state(out)
        state.alerts = apply_verdicts(state.alerts, verdicts, Path(csv_path), today)
        save_state(out, state)
        alerts = sort_alerts(issued(state.alerts))
        rewritten = []
        for writer in alert_writers():
            if (out / writer.file_name).is_file():
                writer.write(alerts, out / writer.file_name)
                rewritten.append(writer.file_name)
        write_reviewed(state.alerts, out / REVIEWED_FILE)
        rewritten.append(REVIEWED_FILE)
    counts = verdicts["verdict"].value_counts()
    return {"confirmed": int(counts.get("confirmed", 0)), "rejected": int(counts.get("rejected", 0)),
            "rewritten": rewritten}
