"""The bundled classifier on scars it never trained on: another sampler seed, one sensor held
out, mines without ponds, burnt clearings (pipeline.training.sampler, real endmember spectra)."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.classify import load_model, new_estimator
from pipeline.features import FEATURES, scar_features
from pipeline.training.sampler import SpectralLibrary, sample_scar, sample_table

REPO = Path(__file__).resolve().parents[1]
MODEL = REPO / "models" / "scar-classifier.skops"
LIBRARY = REPO / "data" / "endmembers" / "spectra.csv"
UNSEEN_SEED = 424242   # `cec train` used seeds 0 (training) and 1000-3000 (validation)


@pytest.fixture(scope="module")
def library():
    return SpectralLibrary.from_csv(LIBRARY)


@pytest.fixture(scope="module")
def model():
    return load_model(MODEL)


def _subtype_table(library, cls, subtype, n, seed):
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(20 * n):
        scar = sample_scar(rng, library, cls, subtype=subtype)
        if scar is not None:
            rows.append(scar_features(scar.layers, scar.mask, scar.resolution_m))
        if len(rows) == n:
            break
    return pd.DataFrame(rows, columns=list(FEATURES))


def test_bundled_model_classifies_scars_from_an_unseen_seed(model, library):
    table = sample_table(library, 12, UNSEEN_SEED)
    classes, probability = model.predict(table)
    accuracy = float((classes == table["label"].to_numpy()).mean())
    assert accuracy >= 0.85, pd.crosstab(table["label"], classes)
    assert ((probability > 0) & (probability <= 1)).all()


def test_a_model_trained_on_sentinel2_only_classifies_landsat_scars(library):
    train = sample_table(library, 30, UNSEEN_SEED + 1, sensor="sentinel-2")
    test = sample_table(library, 12, UNSEEN_SEED + 2, sensor="landsat")
    estimator = new_estimator(0).fit(train[list(FEATURES)].to_numpy(), train["label"].to_numpy())
    predicted = estimator.predict(test[list(FEATURES)].to_numpy())
    assert float((predicted == test["label"].to_numpy()).mean()) >= 0.8, pd.crosstab(test["label"], predicted)


def test_mining_without_ponds_is_mining(model, library):
    table = _subtype_table(library, "mining", "sediment_only", 8, UNSEEN_SEED + 3)
    assert table["water_share"].max() < 0.1, "the sampler should have drawn mines without ponds"
    classes, _ = model.predict(table)
    assert (classes == "mining").sum() >= 7, list(classes)


def test_burnt_clearing_is_clearing(model, library):
    table = _subtype_table(library, "clearing", "burnt", 8, UNSEEN_SEED + 4)
    classes, _ = model.predict(table)
    assert (classes == "clearing").sum() >= 7, list(classes)


def test_sampled_river_banks_lie_along_a_river(library):
    """A training scar labelled a river bank or a flood has the channel beside it, at either pixel
    size (the sampler once drew the river anywhere in the window, and a bank with no river in sight
    was a sand blob labelled `other`, indistinguishable from a mine, 300 m from water: the context's
    cap). The bank or flooded band reaches 20–120 m from the channel, and the detector's largest
    component of it may lie in its outer part."""
    for subtype in ("bank", "flood"):
        table = _subtype_table(library, "other", subtype, 10, UNSEEN_SEED + 5)
        assert len(table) == 10
        assert (table["dist_water_m"] <= 120).all(), table["dist_water_m"].tolist()
        assert np.median(table["dist_water_m"]) <= 60, table["dist_water_m"].tolist()
        assert table["ring_water_fraction"].min() > 0, table["ring_water_fraction"].tolist()


def test_a_pit_dug_mid_period_in_a_median_composite_is_mining(model, library):
    """A median composite over a period that straddles the change mixes, pixel by pixel, the
    forest before the pit and the sediment after it (no bare pixel left, NDVI 0.3–0.6): the
    sampler draws such composites, and the model calls them mining (the model trained before the
    sampler drew them called 0 of these 10 mining; benchmarks/bench_sites.py: 'period_median'
    sites dug in 2022)."""
    rng = np.random.default_rng(UNSEEN_SEED + 6)
    rows = []
    for _ in range(400):
        scar = sample_scar(rng, library, "mining", regime="composite", subtype="sediment_only", felled=False)
        if scar is None:
            continue
        row = scar_features(scar.layers, scar.mask, scar.resolution_m)
        if row["bare_share"] < 0.2 and 0.3 <= row["ndvi_median"] <= 0.6:
            rows.append(row)
        if len(rows) == 10:
            break
    assert len(rows) == 10, "the sampler should draw composites that straddle the change"
    classes, _ = model.predict(pd.DataFrame(rows, columns=list(FEATURES)))
    assert (classes == "mining").sum() >= 8, list(classes)


def test_a_mine_felled_before_it_was_dug_is_mining_by_its_latest_look(model, library):
    """Dense series of mines felled before they were dug, whose latest look shows more pit than
    the median over their looks (gain > 0.2: the felled looks weigh in the median, so it reads
    partly as a clearing). With the latest look the model calls more of them mining than with the
    median alone (``latest_mining_ground`` dropped), and never fewer: no mine turns from mining to
    another class by it. Clearings in dense series stay clearings (their latest look gains no
    mining ground)."""
    rng = np.random.default_rng(UNSEEN_SEED + 7)
    with_latest, median_only = [], []
    for _ in range(3000):
        scar = sample_scar(rng, library, "mining", regime="dense", felled=True)
        if scar is None:
            continue
        row = scar_features(scar.layers, scar.mask, scar.resolution_m)
        if row["latest_mining_gain"] > 0.2:
            with_latest.append(row)
            layers = {k: v for k, v in scar.layers.items() if k != "latest_mining_ground"}
            median_only.append(scar_features(layers, scar.mask, scar.resolution_m))
        if len(with_latest) == 30:
            break
    assert len(with_latest) == 30, "the sampler should draw felled-first mines whose latest look shows the pit"
    latest, _ = model.predict(pd.DataFrame(with_latest, columns=list(FEATURES)))
    median, _ = model.predict(pd.DataFrame(median_only, columns=list(FEATURES)))
    turned = int(((latest == "mining") & (median != "mining")).sum())
    lost = int(((latest != "mining") & (median == "mining")).sum())
    assert turned >= 4 and lost == 0, (list(latest), list(median))
    assert (latest == "mining").sum() >= 15, list(latest)
    clearings = pd.DataFrame([row for row in (_dense_row(rng, library, "clearing") for _ in range(200)) if row][:30],
                             columns=list(FEATURES))
    classes, _ = model.predict(clearings)
    assert (classes == "clearing").sum() >= 26, list(classes)


def _dense_row(rng, library, cls):
    scar = sample_scar(rng, library, cls, regime="dense")
    return None if scar is None else scar_features(scar.layers, scar.mask, scar.resolution_m)
