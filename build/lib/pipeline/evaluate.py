"""Object-level accuracy of alerts against reference polygons.

A reference scar counts as *found* when alerts cover at least ``min_overlap`` of its area; an
alert counts as *correct* when at least ``min_overlap`` of its area lies on reference scars.
Class accuracy is judged on the found scars: the class of the alert that covers most of it.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd

MIN_OVERLAP = 0.3


def overlap_matrix(a: gpd.GeoSeries, b: gpd.GeoSeries) -> np.ndarray:
    """Intersection areas (units of the CRS squared) between every geometry of a and of b."""
    out = np.zeros((len(a), len(b)))
    if len(a) == 0 or len(b) == 0:
        return out
    left, right = b.sindex.query(a, predicate="intersects")
    if left.size:
        out[left, right] = a.iloc[left].intersection(b.iloc[right], align=False).area.to_numpy()
    return out


def match_labels(scars: gpd.GeoSeries, reference: gpd.GeoDataFrame, min_overlap: float = MIN_OVERLAP,
                 unmatched: str | None = "other") -> np.ndarray:
    """Training label of each scar: the class of the reference it overlaps most, else ``unmatched``."""
    overlap = overlap_matrix(scars, reference.geometry)
    labels = np.full(len(scars), unmatched, dtype=object)
    if overlap.size:
        best = overlap.argmax(axis=1)
        share = overlap[np.arange(len(scars)), best] / np.maximum(scars.area.to_numpy(), 1e-9)
        hit = share >= min_overlap
        labels[hit] = reference["class"].to_numpy()[best[hit]]
    return labels


@dataclass(frozen=True)
class ObjectScores:
    """Object precision/recall/F1 per class and overall, with the confusion matrix."""

    per_class: pd.DataFrame
    confusion: pd.DataFrame
    recall: float
    precision: float
    class_accuracy: float
    n_reference: int
    n_alerts: int

    def as_dict(self) -> dict:
        """JSON-ready form."""
        return {
            "recall": self.recall,
            "precision": self.precision,
            "class_accuracy": self.class_accuracy,
            "n_reference": self.n_reference,
            "n_alerts": self.n_alerts,
            "per_class": self.per_class.to_dict(orient="records"),
            "confusion": {str(k): {str(c): int(v) for c, v in row.items()} for k, row in self.confusion.iterrows()},
        }


def score_objects(alerts: gpd.GeoDataFrame, reference: gpd.GeoDataFrame, min_overlap: float = MIN_OVERLAP) -> ObjectScores:
    """Score alerts (``class`` column) against reference scars (``class`` column); same projected CRS."""
    overlap = overlap_matrix(reference.geometry, alerts.geometry)
    ref_area = np.maximum(reference.geometry.area.to_numpy(), 1e-9)
    alert_area = np.maximum(alerts.geometry.area.to_numpy(), 1e-9)
    found = overlap.sum(axis=1) / ref_area >= min_overlap if overlap.size else np.zeros(len(reference), bool)
    correct = overlap.sum(axis=0) / alert_area >= min_overlap if overlap.size else np.zeros(len(alerts), bool)
    ref_class = reference["class"].astype(str).to_numpy()
    alert_class = alerts["class"].astype(str).to_numpy()
    predicted = np.full(len(reference), "missed", dtype=object)
    if overlap.size:
        predicted[found] = alert_class[overlap.argmax(axis=1)[found]]
    # An alert's reference class: the reference scar it overlaps most ("none" if it is false).
    alert_truth = np.full(len(alerts), "none", dtype=object)
    if overlap.size:
        alert_truth[correct] = ref_class[overlap.argmax(axis=0)[correct]]

    rows = []
    for name in sorted(set(ref_class) | set(alert_class)):
        ref_n = int((ref_class == name).sum())
        tp_ref = int(((ref_class == name) & (predicted == name)).sum())
        alerts_n = int((alert_class == name).sum())
        tp_alert = int(((alert_class == name) & (alert_truth == name)).sum())
        recall = tp_ref / ref_n if ref_n else float("nan")
        precision = tp_alert / alerts_n if alerts_n else float("nan")
        f1 = 2 * recall * precision / (recall + precision) if ref_n and alerts_n and (recall + precision) else float("nan")
        rows.append({"class": name, "reference": ref_n, "alerts": alerts_n, "recall": recall,
                     "precision": precision, "f1": f1})
    labels = sorted(set(ref_class)) 
    columns = sorted(set(alert_class) | {"missed"})
    confusion = pd.crosstab(pd.Series(ref_class, name="reference"), pd.Series(predicted, name="alert"))
    confusion = confusion.reindex(index=labels, columns=columns, fill_value=0)
    n_found = int(found.sum())
    return ObjectScores(
        per_class=pd.DataFrame(rows),
        confusion=confusion,
        recall=n_found / len(reference) if len(reference) else float("nan"),
        precision=float(correct.mean()) if len(alerts) else float("nan"),
        class_accuracy=float((predicted[found] == ref_class[found]).mean()) if n_found else float("nan"),
        n_reference=len(reference),
        n_alerts=len(alerts),
    )


# ----------------------------------------------------------------------------- area estimation

NO_CHANGE = "no_change"   # map stratum without an alert; reference class without forest loss
SAMPLE_COLUMNS = ("sample_id", "protected_area_id", "stratum", "stratum_area_ha", "reference")
Z95 = 1.959964


def draw_sample(alerts: gpd.GeoDataFrame, zones: gpd.GeoDataFrame, n_per_stratum: int | dict[str, int],
                seed: int = 0) -> gpd.GeoDataFrame:
    """A stratified random sample of points from a run's map, for an analyst to label.

    Strata, per protected area (its inside and buffer zones together): each alert class
    (``mining``, ``clearing``, ``other``) and ``no_change`` (the monitored ground without an
    alert). Points are uniform within each stratum.

    Parameters
    ----------
    alerts
        Alerts with ``class`` and ``protected_area_id``, in a projected CRS (metres).
    zones
        Monitored zones with ``area_id``, in the same CRS.
    n_per_stratum
        Points per stratum (an int, or a dict by stratum name; missing names get none).
    seed
        Seed of the draw.

    Returns
    -------
    Points (same CRS) with SAMPLE_COLUMNS; ``reference`` is empty, for the analyst to fill
    with ``mining``, ``clearing``, ``other`` or ``no_change``.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for area_id, area_zones in zones.groupby("area_id", sort=True):
        monitored = area_zones.union_all()
        in_area = alerts[alerts["protected_area_id"].astype(str) == str(area_id)]
        strata = {cls: in_area[in_area["class"] == cls].union_all().intersection(monitored)
                  for cls in sorted(set(in_area["class"]))}
        strata[NO_CHANGE] = monitored.difference(in_area.union_all()) if len(in_area) else monitored
        for name, geom in strata.items():
            n = n_per_stratum.get(name, 0) if isinstance(n_per_stratum, dict) else int(n_per_stratum)
            if geom.is_empty or n <= 0:
                continue
            for point in _random_points(geom, n, rng):
                rows.append({"protected_area_id": str(area_id), "stratum": name,
                             "stratum_area_ha": round(geom.area / 1e4, 4), "reference": "",
                             "geometry": point})
    sample = gpd.GeoDataFrame(rows, geometry="geometry", crs=zones.crs) if rows else \
        gpd.GeoDataFrame({c: [] for c in SAMPLE_COLUMNS}, geometry=[], crs=zones.crs)
    sample.insert(0, "sample_id", [f"s{i + 1:05d}" for i in range(len(sample))])
    return sample


def _random_points(geom, n: int, rng: np.random.Generator) -> list:
    """``n`` points uniform within a polygonal geometry (rejection sampling in its bounds)."""
    import shapely

    minx, miny, maxx, maxy = geom.bounds
    shapely.prepare(geom)
    out: list = []
    while len(out) < n:
        x = rng.uniform(minx, maxx, 4 * n)
        y = rng.uniform(miny, maxy, 4 * n)
        inside = shapely.contains_xy(geom, x, y)
        out.extend(shapely.points(x[inside], y[inside])[: n - len(out)])
    return out


def check_sample(sample: pd.DataFrame, source: str = "sample") -> pd.DataFrame:
    """Validate a labelled sample; raise InputError naming the file and the problem."""
    from .errors import InputError

    missing = [c for c in ("stratum", "stratum_area_ha", "reference") if c not in sample.columns]
    if missing:
        raise InputError(f"{source}: missing columns {missing}; expected {list(SAMPLE_COLUMNS)}")
    sample = sample.copy()
    if "protected_area_id" not in sample.columns:
        sample["protected_area_id"] = "all"
    sample["reference"] = sample["reference"].fillna("").astype(str).str.strip()
    unlabelled = sample["reference"] == ""
    if unlabelled.any():
        raise InputError(f"{source}: {int(unlabelled.sum())} sample rows have no reference class "
                         f"(first: {sample.loc[unlabelled].index[0] + 2} counting the header as line 1)")
    known = {"mining", "clearing", "other", NO_CHANGE}
    bad = sorted(set(sample["reference"]) - known - set(sample["stratum"].astype(str)))
    if bad:
        raise InputError(f"{source}: unknown reference classes {bad}; use {sorted(known)}")
    for (area, stratum), group in sample.groupby(["protected_area_id", "stratum"]):
        if group["stratum_area_ha"].nunique() != 1:
            raise InputError(f"{source}: stratum {stratum!r} of area {area} has more than one stratum_area_ha")
        if len(group) < 2:
            raise InputError(f"{source}: stratum {stratum!r} of area {area} has {len(group)} sample; "
                             "need at least 2 for a variance")
    return sample


def area_estimates(sample: pd.DataFrame) -> dict:
    """Olofsson et al. (2014) stratified estimators, with 95 % confidence intervals.

    Parameters
    ----------
    sample
        One row per sample unit: ``stratum`` (the map class where it fell), ``stratum_area_ha``
        (the stratum's mapped area), ``reference`` (the analyst's class) and optionally
        ``protected_area_id`` (estimates are made per area). Strata are the map classes.

    Returns
    -------
    ``{area_id: {"total_ha", "overall_accuracy", "overall_accuracy_ci95", "classes": {class:
    {"map_area_ha", "area_ha", "area_ci95_ha", "users_accuracy", "users_accuracy_ci95",
    "producers_accuracy", "producers_accuracy_ci95", "n_map"}}}}``.
    Variances: Olofsson et al. (2014), Remote Sensing of Environment 148, eqs. 5, 7 and 10-12.
    """
    out = {}
    for area, group in sample.groupby("protected_area_id", sort=True):
        strata = sorted(group["stratum"].astype(str).unique())
        classes = sorted(set(strata) | set(group["reference"].astype(str)))
        area_ha = group.groupby("stratum")["stratum_area_ha"].first().reindex(strata).to_numpy(dtype=float)
        total = float(area_ha.sum())
        weight = area_ha / total
        counts = pd.crosstab(group["stratum"].astype(str), group["reference"].astype(str)).reindex(
            index=strata, columns=classes, fill_value=0).to_numpy(dtype=float)
        n_h = counts.sum(axis=1)
        share = counts / n_h[:, None]                          # n_hk / n_h
        p = weight[:, None] * share                            # estimated area proportions p_hk
        p_k = p.sum(axis=0)
        var_p_k = (weight[:, None] ** 2 * share * (1 - share) / (n_h[:, None] - 1)).sum(axis=0)
        diag = np.array([share[i, classes.index(s)] for i, s in enumerate(strata)])
        overall = float((weight * diag).sum())
        var_overall = float((weight ** 2 * diag * (1 - diag) / (n_h - 1)).sum())
        n_hat = total * p_k                                    # estimated reference totals, ha
        result = {"total_ha": round(total, 4), "overall_accuracy": overall,
                  "overall_accuracy_ci95": Z95 * np.sqrt(var_overall), "classes": {}}
        for k, name in enumerate(classes):
            entry = {"map_area_ha": 0.0, "area_ha": float(total * p_k[k]),
                     "area_ci95_ha": float(Z95 * total * np.sqrt(var_p_k[k])),
                     "users_accuracy": None, "users_accuracy_ci95": None,
                     "producers_accuracy": None, "producers_accuracy_ci95": None, "n_map": 0}
            if name in strata:
                j = strata.index(name)
                users = share[j, k]
                producers = float(p[j, k] / p_k[k]) if p_k[k] > 0 else float("nan")
                others = [i for i in range(len(strata)) if i != j]
                var_prod = float("nan")
                if n_hat[k] > 0:
                    var_prod = (area_ha[j] ** 2 * (1 - producers) ** 2 * users * (1 - users) / (n_h[j] - 1)
                                + producers ** 2 * sum(area_ha[i] ** 2 * share[i, k] * (1 - share[i, k]) / (n_h[i] - 1)
                                                       for i in others)) / n_hat[k] ** 2
                entry.update({"map_area_ha": float(area_ha[j]), "users_accuracy": float(users),
                              "users_accuracy_ci95": float(Z95 * np.sqrt(users * (1 - users) / (n_h[j] - 1))),
                              "producers_accuracy": producers,
                              "producers_accuracy_ci95": float(Z95 * np.sqrt(var_prod)), "n_map": int(n_h[j])})
            result["classes"][name] = entry
        out[str(area)] = result
    return out


def area_table(estimates: dict) -> pd.DataFrame:
    """One row per protected area and class, for printing and CSV."""
    rows = []
    for area, result in estimates.items():
        for name, e in result["classes"].items():
            rows.append({"protected_area_id": area, "class": name, "map_ha": e["map_area_ha"],
                         "area_ha": e["area_ha"], "ci95_ha": e["area_ci95_ha"],
                         "users_acc": e["users_accuracy"], "users_ci95": e["users_accuracy_ci95"],
                         "producers_acc": e["producers_accuracy"], "producers_ci95": e["producers_accuracy_ci95"],
                         "overall_acc": result["overall_accuracy"], "overall_ci95": result["overall_accuracy_ci95"]})
    return pd.DataFrame(rows)
