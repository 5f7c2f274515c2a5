"""Analyst verdicts (``cec review``): a CSV of confirmed and rejected alerts into the state store.

The CSV (UTF-8; the header holds these five columns, extra columns are ignored):

============  ===============  ======================================================
column        value required   meaning
============  ===============  ======================================================
alert_id      yes              an alert of this output folder
verdict       yes              ``confirmed`` or ``rejected``
reason        when rejected    why: one of ``REASON_CODES`` (e.g. ``river``, ``cloud``)
reviewer      no               who decided
comment       no               free text
============  ===============  ======================================================

A rejected alert leaves the cumulative alert files at once and is never issued again: its scar
keeps matching the stored alert in later runs, which stays rejected. The same CSV can be given
to ``cec train`` as labels (a confirmed alert keeps its class; a rejected one is a false alarm).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd

from .errors import InputError

VERDICTS = ("confirmed", "rejected")
REASON_CODES = ("mining", "clearing", "river", "sandbar", "cloud", "shadow", "haze", "agriculture",
                "old_scar", "natural", "road", "other")
REVIEWED_FILE = "alerts_reviewed.geojson"
REQUIRED_COLUMNS = ("alert_id", "verdict", "reason", "reviewer", "comment")  # as cec train reads it


def read_verdicts(path: Path) -> pd.DataFrame:
    """Read and check a verdict CSV; :class:`InputError` names the row and column at fault."""
    path = Path(path)
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: not a readable CSV: {err}") from None
    table.columns = [c.strip().lower() for c in table.columns]
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)} "
                         f"(the header must be: {', '.join(REQUIRED_COLUMNS)})")
    table = table.map(lambda v: v.strip() if isinstance(v, str) else v)
    table["verdict"] = table["verdict"].str.lower()
    table["reason"] = table["reason"].str.lower()
    problems = []
    for i, row in enumerate(table.itertuples(index=False), start=2):  # row 1 is the header
        if not row.alert_id:
            problems.append(f"row {i}: alert_id is empty")
        if row.verdict not in VERDICTS:
            problems.append(f"row {i} ({row.alert_id}): verdict {row.verdict!r} is not one of {', '.join(VERDICTS)}")
        if row.verdict == "rejected" and not row.reason:
            problems.append(f"row {i} ({row.alert_id}): a rejected alert needs a reason ({', '.join(REASON_CODES)})")
        if row.reason and row.reason not in REASON_CODES:
            problems.append(f"row {i} ({row.alert_id}): reason {row.reason!r} is not one of {', '.join(REASON_CODES)}")
    if problems:
        raise InputError(f"{path}:\n  " + "\n  ".join(problems))
    return table[["alert_id", "verdict", "reason", "reviewer", "comment"]]


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
    import json

    from .alerts import atomic_text, sort_alerts, to_feature_collection
    from .lifecycle import VERDICT_COLUMNS

    reviewed = alerts[alerts["verdict"].astype(object).fillna("").astype(str) != ""]
    reviewed = sort_alerts(reviewed) if len(reviewed) else reviewed
    collection = to_feature_collection(reviewed)
    for feature, row in zip(collection["features"], reviewed.to_dict("records")):
        for column in VERDICT_COLUMNS:
            value = row.get(column)
            feature["properties"][column] = None if value is None or value != value else str(value)
    return atomic_text(path, json.dumps(collection, ensure_ascii=False, separators=(",", ":")) + "\n")


def review(out: Path, csv_path: Path, today: dt.date | None = None) -> dict:
    """Record a verdict CSV in ``<out>/state.gpkg`` and rewrite the cumulative alert files there.

    Returns counts: ``confirmed``, ``rejected`` and ``rewritten`` (file names).
    """
    from .alerts import sort_alerts, write_alert_csv, write_geojson
    from .batch import ALERT_FILES
    from .export import write_gpkg, write_kml
    from .lifecycle import issued
    from .state import STATE_FILE, load_state, output_lock, save_state

    out = Path(out)
    verdicts = read_verdicts(csv_path)
    if not (out / STATE_FILE).is_file():
        raise InputError(f"{out / STATE_FILE}: no state store: run `cec run` into this folder first")
    with output_lock(out):
        state = load_state(out)
        state.alerts = apply_verdicts(state.alerts, verdicts, Path(csv_path), today)
        save_state(out, state)
        alerts = sort_alerts(issued(state.alerts))
        writers = {"geojson": write_geojson, "csv": write_alert_csv, "gpkg": write_gpkg, "kml": write_kml}
        rewritten = []
        for fmt, name in ALERT_FILES.items():
            if (out / name).is_file():
                writers[fmt](alerts, out / name)
                rewritten.append(name)
        write_reviewed(state.alerts, out / REVIEWED_FILE)
        rewritten.append(REVIEWED_FILE)
    counts = verdicts["verdict"].value_counts()
    return {"confirmed": int(counts.get("confirmed", 0)), "rejected": int(counts.get("rejected", 0)),
            "rewritten": rewritten}
