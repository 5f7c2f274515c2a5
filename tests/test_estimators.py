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
    from pipeline.classify.sklearn_model import types_in

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


def test_a_model_of_another_estimator_saves_and_loads_through_the_card(tmp_path):
    """save_model records the types the estimator holds; load_model trusts them (and no others)."""
    import json

    import pandas as pd

    from pipeline.classify import load_model, save_model
    from pipeline.errors import ModelIntegrityError
    from pipeline.scars import FEATURES

    rng = np.random.default_rng(1)
    table = pd.DataFrame(rng.normal(size=(90, len(FEATURES))), columns=list(FEATURES))
    y = np.array(["mining", "clearing", "other"] * 30)
    estimator = make_estimator("logistic_regression", seed=0).fit(table.to_numpy(), y)
    card = save_model(estimator, tmp_path / "lr.skops", {})
    assert "sklearn.linear_model._logistic.LogisticRegression" in card["trusted_types"]
    model = load_model(tmp_path / "lr.skops")
    classes, probability = model.predict(table.iloc[:5], {"mining": 1.0, "clearing": 1.0})
    assert set(classes) == {"other"}  # thresholds of 1: nothing qualifies but the fallback
    # a card that vouches for a dangerous type does not make it trusted
    card["trusted_types"].append("builtins.eval")
    (tmp_path / "lr.card.json").write_text(json.dumps(card))
    assert load_model(tmp_path / "lr.skops").version  # the file itself holds no such type: still loads
    card["trusted_types"] = []
    (tmp_path / "lr.card.json").write_text(json.dumps(card))
    with pytest.raises(ModelIntegrityError, match="LogisticRegression"):
        load_model(tmp_path / "lr.skops")


def test_a_tampered_non_tree_model_is_refused_before_prediction(tmp_path):
    """Estimators other than trees get their fitted numbers checked: a NaN coefficient would
    make every probability NaN, and the run would issue alerts with no class."""
    import pandas as pd

    from pipeline.classify import load_model, save_model
    from pipeline.errors import ModelIntegrityError
    from pipeline.scars import FEATURES

    rng = np.random.default_rng(2)
    table = pd.DataFrame(rng.normal(size=(60, len(FEATURES))), columns=list(FEATURES))
    estimator = make_estimator("logistic_regression", seed=0).fit(
        table.to_numpy(), np.array(["mining", "clearing", "other"] * 20))
    estimator.coef_[0, 0] = np.nan
    save_model(estimator, tmp_path / "lr.skops", {})
    with pytest.raises(ModelIntegrityError, match="coef_"):
        load_model(tmp_path / "lr.skops")
