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


def match_labels(scars: gpd.GeoSeries, reference: gpd.GeoDataFrame, min_overlap: float = MIN_OVERLAP) -> np.ndarray:
    """Training label of each scar: the class of the reference it overlaps most, else ``other``."""
    overlap = overlap_matrix(scars, reference.geometry)
    labels = np.full(len(scars), "other", dtype=object)
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
