"""Choosing the scar classifier's estimator, trusting what it saves, and deciding by threshold.

For researchers: any scikit-learn classifier with ``predict_proba`` can be trained
(``cec train --estimator NAME``) and loaded by ``run``:

- :func:`make_estimator` builds one from a short name (:data:`ESTIMATORS`) or a dotted
  ``sklearn.…`` class path, with keyword parameters;
- :func:`trusted_types` is the list of types a saved model may construct: it *follows the
  estimator* (every type in the file, recorded in the model card at save time) but is bounded:
  only scikit-learn, NumPy and SciPy types and a few plain builtins are ever trusted, so a
  card cannot smuggle in ``builtins.eval`` or ``os.system``;
- :func:`decide` applies per-class decision thresholds (``classify.thresholds`` in the config).

Pure but for :func:`make_estimator`'s import of the estimator's module.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping

import numpy as np

ESTIMATORS = {
    "random_forest": ("sklearn.ensemble.RandomForestClassifier",
                      {"n_estimators": 200, "min_samples_leaf": 2, "class_weight": "balanced", "n_jobs": 1}),
    "extra_trees": ("sklearn.ensemble.ExtraTreesClassifier",
                    {"n_estimators": 300, "min_samples_leaf": 2, "class_weight": "balanced", "n_jobs": 1}),
    "hist_gradient_boosting": ("sklearn.ensemble.HistGradientBoostingClassifier",
                               {"max_iter": 200, "learning_rate": 0.1, "class_weight": "balanced"}),
    "logistic_regression": ("sklearn.linear_model.LogisticRegression",
                            {"max_iter": 2000, "class_weight": "balanced"}),
}
"""Short names -> (class path, default parameters)."""
SAFE_ROOTS = ("sklearn.", "numpy.", "scipy.")
SAFE_BUILTINS = {f"builtins.{n}" for n in ("dict", "list", "tuple", "str", "int", "float", "bool", "NoneType",
                                           "slice", "set", "frozenset", "bytes", "complex")}
UNSAFE_PARTS = ("._pickle", ".lib.npyio", ".load", ".save", ".exec", ".eval", "testing")


class EstimatorError(ValueError):
    """An estimator name, path or parameter that cannot be used."""


def make_estimator(name: str = "random_forest", params: Mapping | None = None, seed: int = 0):
    """An unfitted scikit-learn classifier.

    ``name``: a key of :data:`ESTIMATORS` or a ``sklearn.module.ClassName`` path; ``params``
    override the defaults; ``random_state`` is set to ``seed`` when the estimator has one.
    """
    path, defaults = ESTIMATORS.get(name, (name, {}))
    if not path.startswith("sklearn.") or path.count(".") < 2:
        known = ", ".join(ESTIMATORS)
        raise EstimatorError(f"estimator {name!r}: use one of {known} or a sklearn.module.Class path")
    module_name, _, class_name = path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise EstimatorError(f"estimator {name!r}: {path} not found in scikit-learn") from exc
    if not (isinstance(cls, type) and hasattr(cls, "fit") and hasattr(cls, "predict_proba")):
        raise EstimatorError(f"estimator {name!r}: {path} is not a classifier with predict_proba")
    arguments = {**defaults, **dict(params or {})}
    try:
        estimator = cls(**arguments)
    except TypeError as exc:
        raise EstimatorError(f"estimator {name!r}: {exc}") from exc
    if "random_state" in estimator.get_params():
        estimator.set_params(random_state=seed)
    return estimator


def is_safe_type(name: str) -> bool:
    """Whether a ``module.Class`` found in a skops file may ever be trusted."""
    if name in SAFE_BUILTINS:
        return True
    return name.startswith(SAFE_ROOTS) and not any(part in name for part in UNSAFE_PARTS)


def trusted_types(found: Iterable[str]) -> list[str]:
    """The types of a model file to trust (sorted); :class:`EstimatorError` names any unsafe one."""
    found = sorted(set(found))
    unsafe = [t for t in found if not is_safe_type(t)]
    if unsafe:
        raise EstimatorError(f"types outside scikit-learn/NumPy/SciPy: {', '.join(unsafe)}")
    return found


def decide(proba: np.ndarray, classes: Iterable[str], thresholds: Mapping[str, float] | None,
           fallback: str = "other") -> tuple[np.ndarray, np.ndarray]:
    """Class and probability per row, with per-class decision thresholds.

    A class may be chosen only where its probability reaches its threshold (classes without
    one: 0); among those, the most probable. A row where none qualifies gets ``fallback`` (with
    the model's probability of it, 0 when the model has no such class). Without thresholds this
    is the plain argmax.
    """
    classes = [str(c) for c in classes]
    proba = np.asarray(proba, dtype=float)
    limits = np.array([float((thresholds or {}).get(c, 0.0)) for c in classes])
    eligible = proba >= limits[None, :]
    masked = np.where(eligible, proba, -1.0)
    best = masked.argmax(axis=1)
    chosen = np.array(classes, dtype=object)[best]
    probability = proba[np.arange(len(best)), best]
    none = ~eligible.any(axis=1)
    if none.any():
        chosen[none] = fallback
        probability[none] = proba[none, classes.index(fallback)] if fallback in classes else 0.0
    return chosen, probability
