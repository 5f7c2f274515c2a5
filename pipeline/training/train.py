"""Training the scar classifier: detected scars matched to labelled polygons.

Features come from running detection on the imagery a config names (so the model learns from
exactly what the pipeline will see), labels from either

- reference polygons with a ``class`` (GeoJSON, GPKG, …): an exhaustive map of the scars, so
  detected scars that match none of them are labelled ``other``; or
- an analyst verdict CSV (``alert_id, verdict, reason, reviewer, comment`` and optionally
  ``class``) about the alerts of an earlier run: ``rejected`` → ``other``, ``confirmed`` → the
  ``class`` column when filled, else the alert's own class. Only reviewed scars are used.

Cross-validation is grouped by 2 km spatial blocks, so neighbouring parts of one scar field
never sit on both sides of a split.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
from sklearn.metrics import classification_report
from sklearn.model_selection import GroupKFold, cross_val_predict

from ..aoi import read_layer
from ..classify import CALIBRATION_FOLDS, calibrated_estimator, new_estimator, save_model
from ..config import RunConfig
from ..detect import detect
from ..errors import InputError
from ..model import CLASSES
from ..progress import Reporter
from ..features import FEATURES
from .evaluate import match_labels
from .verdicts import read_verdicts

BLOCK_M = 2000.0  # spatial CV block edge


def verdict_labels(path: Path, alerts_path: Path | None) -> gpd.GeoDataFrame:
    """Label polygons from an analyst verdict CSV and the alerts file its ids refer to.

    Returns the reviewed alerts' geometries with ``class`` (rejected → ``other``; confirmed → the
    CSV's ``class`` if given, else the alert's class) and ``exhaustive = False`` in ``attrs``.
    """
    path = Path(path)
    if alerts_path is None:
        raise InputError(f"{path}: a verdict CSV needs --alerts, the alerts.geojson its alert_id values refer to")
    verdicts = read_verdicts(path)
    alerts = read_layer(alerts_path, "alerts").set_index("alert_id")
    rows = []
    for line, row in enumerate(verdicts.to_dict("records"), start=2):
        if row["alert_id"] not in alerts.index:
            raise InputError(f"{path}, line {line}: alert_id {row['alert_id']!r} is not in {alerts_path}")
        alert = alerts.loc[row["alert_id"]]
        given = str(row.get("class", "") or "").strip()
        cls = "other" if row["verdict"] == "rejected" else (given or str(alert["class"]))
        if cls not in CLASSES:
            raise InputError(f"{path}, line {line}: class {cls!r} is not one of {list(CLASSES)}")
        rows.append({"alert_id": row["alert_id"], "class": cls, "geometry": alert.geometry})
    if not rows:
        raise InputError(f"{path}: no verdicts")
    labels = gpd.GeoDataFrame(rows, geometry="geometry", crs=alerts.crs)
    labels.attrs["exhaustive"] = False
    return labels


def read_labels(path: Path, alerts: Path | None = None) -> gpd.GeoDataFrame:
    """Training labels: reference polygons with a ``class`` of mining, clearing or other
    (GeoJSON, GPKG, …), or an analyst verdict CSV (with ``alerts``, see :func:`verdict_labels`)."""
    if Path(path).suffix.lower() == ".csv":
        return verdict_labels(path, alerts)
    labels = read_layer(path, "labels")
    if "class" not in labels.columns:
        raise InputError(f"{path}: labels need a 'class' field (mining, clearing or other)")
    bad = sorted(set(labels["class"].astype(str)) - set(CLASSES))
    if bad:
        raise InputError(f"{path}: unknown classes {bad}; expected {list(CLASSES)}")
    labels.attrs["exhaustive"] = True
    return labels


def spatial_blocks(scene: str, x_m, y_m) -> list[str]:
    """The cross-validation group of each scar: the BLOCK_M square of its scene's grid (projected
    metres, the area's UTM zone) that holds its centroid, named ``scene:column:row``."""
    columns = np.floor(np.asarray(x_m, dtype=float) / BLOCK_M).astype(int)
    rows = np.floor(np.asarray(y_m, dtype=float) / BLOCK_M).astype(int)
    return [f"{scene}:{c}:{r}" for c, r in zip(columns, rows)]


def training_table(config: RunConfig, labels: gpd.GeoDataFrame, scene: str, reporter: Reporter | None = None) -> pd.DataFrame:
    """Features, label and spatial group of every scar detected with ``config``.

    With exhaustive labels (reference polygons), a scar matching none is ``other``; with
    verdicts, scars nobody reviewed are left out.
    """
    _, detections = detect(config, reporter)
    exhaustive = labels.attrs.get("exhaustive", True)
    tables = []
    for d in detections:
        if d.scars.empty:
            continue
        geoms = gpd.GeoSeries(list(d.scars["geometry"]), crs=d.epsg)
        table = d.scars[list(FEATURES)].copy()
        table["label"] = match_labels(geoms, labels.to_crs(d.epsg), unmatched="other" if exhaustive else None)
        centroids = geoms.centroid
        table["group"] = spatial_blocks(scene, centroids.x.to_numpy(), centroids.y.to_numpy())
        table["scene"] = scene
        tables.append(table[table["label"].notna()])
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=[*FEATURES, "label", "group", "scene"])


@dataclass(frozen=True)
class TrainingResult:
    """A fitted estimator and its cross-validated report."""

    estimator: object
    cv_report: dict
    n_samples: dict


def fit(table: pd.DataFrame, seed: int = 0, estimator: str | None = None,
        params: dict | None = None) -> TrainingResult:
    """Fit on every row; report grouped cross-validation metrics per class.

    ``estimator``/``params``: any scikit-learn classifier (:func:`pipeline.estimators.make_estimator`)
    instead of the random forest; calibrated the same way.
    """
    if table.empty or table["label"].nunique() < 2:
        raise InputError(f"need scars of at least two classes to train; got {table['label'].value_counts().to_dict()}")
    x = table[list(FEATURES)].to_numpy(dtype=float)
    x = np.nan_to_num(x)
    y = table["label"].to_numpy()
    groups = table["group"].to_numpy()
    n_splits = min(5, len(set(groups)))
    # Calibrate when every class has enough samples for the calibration folds (inside each
    # CV training split too); otherwise fall back to the bare forest.
    base = calibrated_estimator if table["label"].value_counts().min() >= 2 * CALIBRATION_FOLDS else new_estimator

    def make(s: int):
        return base(s, estimator, params) if estimator else base(s)
    report = {}
    if n_splits >= 2:
        predicted = cross_val_predict(make(seed), x, y, groups=groups, cv=GroupKFold(n_splits=n_splits))
        report = classification_report(y, predicted, output_dict=True, zero_division=0)
        report["cv"] = (f"GroupKFold({n_splits}) over independently sampled scars (in-domain: the same sampler)"
                        if len(set(groups)) == len(groups) else
                        f"GroupKFold({n_splits}) over {BLOCK_M / 1000:g} km spatial blocks")
    estimator = make(seed).fit(x, y)
    return TrainingResult(estimator=estimator, cv_report=report, n_samples=table["label"].value_counts().to_dict())


def save_trained(result: TrainingResult, out: Path, training_data: list[dict], extra: dict | None = None) -> dict:
    """Save the model and a card with its data, metrics, versions and any ``extra`` card fields
    (the training command, cross-domain figures)."""
    return save_model(result.estimator, out, {
        "training_data": training_data,
        "n_samples": {k: int(v) for k, v in result.n_samples.items()},
        "cv_metrics": result.cv_report,
        **(extra or {}),
    })
