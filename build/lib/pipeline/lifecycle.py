"""Alert lifecycle across runs: match this run's scars to the alerts issued before.

Pure functions: GeoDataFrames in, GeoDataFrames out; the state store's I/O is in
:mod:`pipeline.state`. A scar is matched to a stored alert by *geometry overlap*, never by id
alone: a growing scar's centroid moves (and with it the centroid-based id), but the alert keeps
the id it was first issued with.

Status of an alert in a run:

- ``new``: no stored alert overlaps it (first issued by this run);
- ``expanding``: it overlaps a stored alert and its area grew by more than ``expanding_share``
  of the stored area;
- ``ongoing``: it overlaps a stored alert and did not grow that much, or it was issued before
  and is carried over.

``first_detected`` is the earliest date ever recorded for the alert, so it never moves later.
Alerts an analyst *rejected* (``verdict == "rejected"``) still take part in the matching, so the
same scar is never issued again as new, but they are left out of the issued alerts.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd

STATUSES = ("new", "ongoing", "expanding")
VERDICT_COLUMNS = ("verdict", "verdict_reason", "reviewer", "review_comment", "reviewed")
EQUAL_AREA_EPSG = 6933  # only overlap ratios are computed here, and any equal-area CRS gives them


@dataclass(frozen=True)
class LifecycleParams:
    """Thresholds of the lifecycle."""

    expanding_share: float = 0.2
    """An alert is ``expanding`` when its area exceeds the stored area by more than this share."""
    match_overlap: float = 0.1
    """A scar matches a stored alert when their intersection covers at least this share of the
    smaller of the two."""


def _empty_like(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    return frame.iloc[:0].copy()


def match_alerts(
    detected: gpd.GeoDataFrame, stored: gpd.GeoDataFrame, min_overlap: float
) -> list[tuple[int, int]]:
    """One-to-one matches (detected row, stored row), largest overlaps first.

    Both frames in EPSG:4326. A pair qualifies when the intersection area is at least
    ``min_overlap`` of the smaller polygon's area.
    """
    if detected.empty or stored.empty:
        return []
    a = detected.geometry.to_crs(EQUAL_AREA_EPSG).reset_index(drop=True)
    b = stored.geometry.to_crs(EQUAL_AREA_EPSG).reset_index(drop=True)
    left, right = b.sindex.query(a, predicate="intersects")
    pairs = []
    for i, j in zip(left, right):
        inter = a.iloc[i].intersection(b.iloc[j]).area
        smaller = min(a.iloc[i].area, b.iloc[j].area)
        if smaller > 0 and inter >= min_overlap * smaller:
            pairs.append((inter, int(i), int(j)))
    pairs.sort(key=lambda p: (-p[0], p[1], p[2]))
    used_a, used_b, matches = set(), set(), []
    for _, i, j in pairs:
        if i not in used_a and j not in used_b:
            used_a.add(i)
            used_b.add(j)
            matches.append((i, j))
    return sorted(matches)


def _unique_id(candidate: str, taken: set[str]) -> str:
    if candidate not in taken:
        return candidate
    k = 2
    while f"{candidate}-{k}" in taken:
        k += 1
    return f"{candidate}-{k}"


def update_lifecycle(
    detected: gpd.GeoDataFrame, stored: gpd.GeoDataFrame, params: LifecycleParams
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Give this run's alerts their lifecycle ids and status; return ``(cumulative, observed)``.

    Parameters
    ----------
    detected
        This run's alerts (:func:`pipeline.alerts.build_alerts`, EPSG:4326), status ``new``.
    stored
        Every alert issued before (the state store's ``alerts`` layer, EPSG:4326), with the
        verdict columns; may be empty.
    params
        Lifecycle thresholds.

    Returns
    -------
    cumulative
        Every alert ever issued, updated by this run (rejected ones included, verdicts kept).
    observed
        The rows of ``cumulative`` this run detected (its ``new``, ``ongoing`` and
        ``expanding`` alerts, rejected ones included).
    """
    detected = detected.reset_index(drop=True).copy()
    stored = stored.reset_index(drop=True).copy()
    for column in VERDICT_COLUMNS:
        if column not in stored.columns:
            stored[column] = None
        detected[column] = None
    matches = match_alerts(detected, stored, params.match_overlap)
    matched_stored = {j for _, j in matches}
    for i, j in matches:
        old = stored.iloc[j]
        detected.at[i, "alert_id"] = old["alert_id"]
        detected.at[i, "first_detected"] = min(str(old["first_detected"]), str(detected.at[i, "first_detected"]))
        grew = float(detected.at[i, "area_ha"]) > float(old["area_ha"]) * (1.0 + params.expanding_share)
        detected.at[i, "status"] = "expanding" if grew else "ongoing"
        for column in VERDICT_COLUMNS:
            detected.at[i, column] = old[column]
    taken = set(stored["alert_id"]) if not stored.empty else set()
    matched_rows = {i for i, _ in matches}
    for i in range(len(detected)):
        if i not in matched_rows:
            detected.at[i, "alert_id"] = _unique_id(str(detected.at[i, "alert_id"]), taken)
            detected.at[i, "status"] = "new"
            taken.add(detected.at[i, "alert_id"])
    carried = stored.iloc[[j for j in range(len(stored)) if j not in matched_stored]].copy()
    if not carried.empty:
        carried["status"] = "ongoing"  # issued by an earlier run; not new in this one
    frames = [f for f in (detected, carried) if not f.empty]
    if not frames:
        cumulative = _empty_like(detected)
    else:
        cumulative = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geometry", crs=4326)
    observed = cumulative[cumulative["alert_id"].isin(set(detected["alert_id"]))].copy()
    return cumulative, observed


def issued(alerts: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The alerts that are issued to users: every alert but those an analyst rejected."""
    if alerts.empty or "verdict" not in alerts.columns:
        return alerts
    keep = np.asarray(alerts["verdict"].astype(object).fillna("").astype(str) != "rejected")
    return alerts[keep].copy()
