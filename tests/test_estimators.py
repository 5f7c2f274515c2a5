"""Researchers: any scikit-learn classifier, trusted types that follow it, per-class thresholds."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
import skops.io as sio

from pipeline.estimators import EstimatorError, decide, make_estimator, trusted_types


@pytest.mark.parametrize("name", ["hist_gradient_boosting", "logistic_regression",
                                  "sklearn.neighbors.KNeighborsClassifier"])
def test_other_estimators_train_save_and_load_with_their_own_trusted_types(name, tmp_path):
    from pipeline.classify import types_in

    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 4))
    y = np.where(x[:, 0] > 0.3, "mining", np.where(x[:, 1] > 0, "clearing", "other"))
    params = {"sklearn.neighbors.KNeighborsClassifier": {"n_neighbors": 3},
              "hist_gradient_boosting": {"max_iter": 5}}.get(name)
    estimator = make_estimator(name, params, seed=1).fit(x, y)
    path = tmp_path / "m.skops"
    sio.dump(estimator, path, compression=zipfile.ZIP_DEFLATED)
    trusted = trusted_types(types_in(path))
    loaded = sio.load(path, trusted=trusted)
    assert (loaded.predict_proba(x) == estimator.predict_proba(x)).all()


def test_unknown_or_non_sklearn_estimators_are_refused():
    with pytest.raises(EstimatorError, match="random_forest"):
        make_estimator("xgboost")
    with pytest.raises(EstimatorError):
        make_estimator("os.system")
    with pytest.raises(EstimatorError, match="predict_proba"):
        make_estimator("sklearn.linear_model.LinearRegression")
    with pytest.raises(EstimatorError, match="bogus"):
        make_estimator("random_forest", {"bogus": 1})
    assert make_estimator("random_forest", seed=7).random_state == 7


def test_trusted_types_never_include_dangerous_ones():
    assert trusted_types(["numpy.ndarray", "sklearn.tree._tree.Tree", "builtins.dict"])
    for bad in ("builtins.eval", "os.system", "numpy.load", "sklearn.externals._pickle.loads"):
        with pytest.raises(EstimatorError, match="outside"):
            trusted_types(["numpy.ndarray", bad])


def test_per_class_thresholds_decide():
    proba = np.array([[0.55, 0.40, 0.05],   # mining 0.55 < 0.6: clearing qualifies (≥ 0)
                      [0.70, 0.20, 0.10],   # mining passes
                      [0.50, 0.10, 0.40]])  # mining fails, clearing 0.10 < 0.3: other qualifies
    classes = ["mining", "clearing", "other"]
    plain, _ = decide(proba, classes, None)
    assert list(plain) == ["mining", "mining", "mining"]
    chosen, probability = decide(proba, classes, {"mining": 0.6, "clearing": 0.3})
    assert list(chosen) == ["clearing", "mining", "other"]
    assert list(probability) == [0.40, 0.70, 0.40]
    none, p = decide(np.array([[0.5, 0.5]]), ["mining", "clearing"], {"mining": 0.9, "clearing": 0.9})
    assert list(none) == ["other"] and p[0] == 0.0
