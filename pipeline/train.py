"""Training the scar classifier: detected scars matched to labelled polygons.

Features come from running detection on the imagery a config names (so the model learns from
exactly what the pipeline will see), labels from reference polygons with a ``class``. Scars
that match no reference polygon are labelled ``other``. Cross-validation is grouped by 2 km
spatial blocks, so neighbouring parts of one scar field never sit on both sides of a split.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
from sklearn.metrics import classification_report
from sklearn.model_selection import GroupKFold, cross_val_predict

from .aoi import read_layer
from .classify import CLASSES, new_estimator, save_model
from .config import RunConfig
from .errors import InputError
from .evaluate import match_labels
from .run import Reporter, detect
from .scars import FEATURES

BLOCK_M = 2000.0  # spatial CV block edge


def read_labels(path: Path) -> gpd.GeoDataFrame:
    """Reference polygons with a ``class`` of mining, clearing or other (GeoJSON, GPKG, …)."""
    labels = read_layer(path, "labels")
    if "class" not in labels.columns:
        raise InputError(f"{path}: labels need a 'class' field (mining, clearing or other)")
    bad = sorted(set(labels["class"].astype(str)) - set(CLASSES))
    if bad:
        raise InputError(f"{path}: unknown classes {bad}; expected {list(CLASSES)}")
    return labels


def training_table(config: RunConfig, labels: gpd.GeoDataFrame, scene: str, reporter: Reporter | None = None) -> pd.DataFrame:
    """Features, label and spatial group of every scar detected with ``config``."""
    _, detections = detect(config, reporter)
    tables = []
    for d in detections:
        if d.scars.empty:
            continue
        geoms = gpd.GeoSeries(list(d.scars["geometry"]), crs=d.epsg)
        table = d.scars[list(FEATURES)].copy()
        table["label"] = match_labels(geoms, labels.to_crs(d.epsg))
        centroids = geoms.centroid
        table["group"] = [f"{scene}:{int(c.x // BLOCK_M)}:{int(c.y // BLOCK_M)}" for c in centroids]
        table["scene"] = scene
        tables.append(table)
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=[*FEATURES, "label", "group", "scene"])


@dataclass(frozen=True)
class TrainingResult:
    """A fitted estimator and its cross-validated report."""

    estimator: object
    cv_report: dict
    n_samples: dict


def fit(table: pd.DataFrame, seed: int = 0) -> TrainingResult:
    """Fit on every row; report grouped cross-validation metrics per class."""
    if table.empty or table["label"].nunique() < 2:
        raise InputError(f"need scars of at least two classes to train; got {table['label'].value_counts().to_dict()}")
    x = table[list(FEATURES)].to_numpy(dtype=float)
    x = np.nan_to_num(x)
    y = table["label"].to_numpy()
    groups = table["group"].to_numpy()
    n_splits = min(5, len(set(groups)))
    report = {}
    if n_splits >= 2:
        predicted = cross_val_predict(new_estimator(seed), x, y, groups=groups, cv=GroupKFold(n_splits=n_splits))
        report = classification_report(y, predicted, output_dict=True, zero_division=0)
        report["cv"] = f"GroupKFold({n_splits}) over {BLOCK_M / 1000:g} km spatial blocks"
    estimator = new_estimator(seed).fit(x, y)
    return TrainingResult(estimator=estimator, cv_report=report, n_samples=table["label"].value_counts().to_dict())


def save_trained(result: TrainingResult, out: Path, training_data: list[dict]) -> dict:
    """Save the model and a card with its data, metrics and versions."""
    return save_model(result.estimator, out, {
        "training_data": training_data,
        "n_samples": {k: int(v) for k, v in result.n_samples.items()},
        "cv_metrics": result.cv_report,
    })
