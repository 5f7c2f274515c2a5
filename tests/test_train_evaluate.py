"""Training from labels or analyst verdicts, calibrated models, and honest evaluation."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import box
from typer.testing import CliRunner

from pipeline.classify import load_model
from pipeline.cli import app
from pipeline.errors import InputError
from pipeline.training.evaluate import NO_CHANGE, area_estimates, check_sample, draw_sample
from pipeline.scars import FEATURES
from pipeline.training.train import fit, read_labels, save_trained


# Olofsson et al. (2014), Remote Sensing of Environment 148: 42-57, the worked example
# (Table 8; 30 m pixels). Rows: map class (stratum); columns: reference class.
OLOFSSON_COUNTS = {"deforestation": [66, 0, 5, 4], "gain": [0, 55, 8, 12],
                   "forest": [1, 0, 153, 11], "non_forest": [2, 1, 9, 313]}
OLOFSSON_PIXELS = {"deforestation": 200_000, "gain": 150_000, "forest": 3_200_000, "non_forest": 6_450_000}


def olofsson_sample() -> pd.DataFrame:
    names = list(OLOFSSON_COUNTS)
    rows = []
    for stratum, counts in OLOFSSON_COUNTS.items():
        for reference, n in zip(names, counts):
            rows += [{"protected_area_id": "example", "stratum": stratum, "reference": reference,
                      "stratum_area_ha": OLOFSSON_PIXELS[stratum] * 0.09}] * n
    return pd.DataFrame(rows)


def test_area_estimates_reproduce_the_published_example():
    result = area_estimates(olofsson_sample())["example"]
    deforestation = result["classes"]["deforestation"]
    # Published: 21 158 ± 6 158 ha; user's 0.88 ± 0.07; producer's 0.75 ± 0.21; overall 0.95 ± 0.02.
    assert deforestation["area_ha"] == pytest.approx(21_158, abs=1)
    assert deforestation["area_ci95_ha"] == pytest.approx(6_158, abs=2)
    assert deforestation["users_accuracy"] == pytest.approx(0.88, abs=0.005)
    assert deforestation["users_accuracy_ci95"] == pytest.approx(0.07, abs=0.005)
    assert deforestation["producers_accuracy"] == pytest.approx(0.75, abs=0.005)
    assert deforestation["producers_accuracy_ci95"] == pytest.approx(0.21, abs=0.005)
    assert result["overall_accuracy"] == pytest.approx(0.95, abs=0.005)
    assert result["overall_accuracy_ci95"] == pytest.approx(0.02, abs=0.005)
    # Published: gain 11 686 ± 3 756, stable forest 285 770 ± 15 510, non-forest 581 386 ± 16 282 ha.
    for name, (area, ci) in {"gain": (11_686, 3_756), "forest": (285_770, 15_510),
                             "non_forest": (581_386, 16_282)}.items():
        assert result["classes"][name]["area_ha"] == pytest.approx(area, abs=1)
        assert result["classes"][name]["area_ci95_ha"] == pytest.approx(ci, abs=2)
    assert sum(c["area_ha"] for c in result["classes"].values()) == pytest.approx(result["total_ha"])


def test_an_unlabelled_or_too_thin_sample_is_refused():
    sample = olofsson_sample()
    sample.loc[3, "reference"] = ""
    with pytest.raises(InputError, match="no reference class"):
        check_sample(sample, "s.csv")
    thin = olofsson_sample()
    thin = pd.concat([thin[thin.stratum != "gain"], thin[thin.stratum == "gain"].head(1)])
    with pytest.raises(InputError, match="'gain'.*at least 2"):
        check_sample(thin, "s.csv")


def _toy_map():
    zones = gpd.GeoDataFrame({"area_id": ["A", "A"], "zone": ["inside", "buffer"]},
                             geometry=[box(0, 0, 2000, 1000), box(2000, 0, 3000, 1000)], crs=32719)
    alerts = gpd.GeoDataFrame({"class": ["mining", "clearing", "mining"], "protected_area_id": ["A"] * 3},
                              geometry=[box(100, 100, 300, 300), box(1500, 500, 1600, 700), box(2500, 100, 2600, 200)],
                              crs=32719)
    return zones, alerts


def test_stratified_sample_falls_in_its_strata_and_records_their_areas():
    zones, alerts = _toy_map()
    sample = draw_sample(alerts, zones, {"mining": 20, "clearing": 15, NO_CHANGE: 30}, seed=3)
    assert sample.groupby("stratum").size().to_dict() == {"clearing": 15, "mining": 20, NO_CHANGE: 30}
    areas = sample.groupby("stratum")["stratum_area_ha"].first()
    assert areas["mining"] == pytest.approx(5.0) and areas["clearing"] == pytest.approx(2.0)
    assert areas.sum() == pytest.approx(300.0)  # the whole monitored area, split into strata
    for _, point in sample.iterrows():
        on_alert = alerts[alerts.contains(point.geometry)]
        assert (on_alert["class"].iloc[0] if len(on_alert) else NO_CHANGE) == point["stratum"]
    assert draw_sample(alerts, zones, {"mining": 20, "clearing": 15, NO_CHANGE: 30}, seed=3).equals(sample)


def test_cli_scores_a_labelled_sample(tmp_path):
    path = tmp_path / "sample.csv"
    olofsson_sample().to_csv(path, index=False)
    out = tmp_path / "scores.json"
    result = CliRunner().invoke(app, ["evaluate", "--sample", str(path), "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "deforestation" in result.output and "Olofsson" in result.output
    estimates = json.loads(out.read_text())["area_estimates"]["example"]
    assert estimates["classes"]["deforestation"]["area_ha"] == pytest.approx(21_158, abs=1)
    bad = tmp_path / "bad.csv"
    olofsson_sample().drop(columns="reference").to_csv(bad, index=False)
    result = CliRunner().invoke(app, ["evaluate", "--sample", str(bad)])
    assert result.exit_code == 2 and "bad.csv" in result.output


def _table(n_per_class: int, seed: int = 0) -> pd.DataFrame:
    """Separable synthetic features: mining wet and bare, clearing dry soil, other all water."""
    rng = np.random.default_rng(seed)
    rows = []
    for cls, water, bare in (("mining", 0.3, 0.7), ("clearing", 0.0, 0.2), ("other", 0.95, 0.05)):
        for _ in range(n_per_class):
            row = {f: rng.normal(0.5, 0.1) for f in FEATURES}
            row |= {"water_share": water + rng.normal(0, 0.03), "bare_share": bare + rng.normal(0, 0.03),
                    "label": cls}
            rows.append(row)
    table = pd.DataFrame(rows)
    table["group"] = [f"block{i % 7}" for i in range(len(table))]
    return table


def test_calibrated_model_round_trips_and_its_card_records_cv_per_class(tmp_path):
    result = fit(_table(12))
    card = save_trained(result, tmp_path / "m.skops", [{"scene": "synthetic"}])
    assert card["estimator"].startswith("CalibratedClassifierCV")
    assert {"mining", "clearing", "other"} <= set(card["cv_metrics"]) and "GroupKFold" in card["cv_metrics"]["cv"]
    assert card["n_samples"] == {"mining": 12, "clearing": 12, "other": 12}
    model = load_model(tmp_path / "m.skops")
    classes, proba = model.predict(_table(3, seed=1)[list(FEATURES)])
    assert list(classes) == ["mining"] * 3 + ["clearing"] * 3 + ["other"] * 3
    assert ((proba > 0.5) & (proba <= 1.0)).all()


def test_scars_are_grouped_by_the_2_km_block_that_holds_their_centroid():
    """Neighbouring parts of one scar field must fall in one CV group, so that cross-validation
    never trains on one half of a mining front and tests on the other."""
    from pipeline.training.train import BLOCK_M, spatial_blocks

    assert BLOCK_M == 2000.0  # the README and the model card say "2 km spatial blocks"
    x0, y0 = 384000.0, 8560000.0  # a block corner: both multiples of 2 km
    groups = spatial_blocks("s1", [x0 + 1, x0 + 1999, x0 + 10, x0 - 1, x0 + 2000, x0 + 1],
                            [y0 + 1, y0 + 1999, y0 + 1000, y0 + 1, y0 + 1, y0 - 0.5])
    assert groups[0] == groups[1] == groups[2] == "s1:192:4280", "one 2 km square, one group"
    assert len(set(groups[2:])) == 4, "a metre across a block edge (west, east, south) is another group"
    assert spatial_blocks("s2", [x0 + 1], [y0 + 1]) != groups[:1], "scenes never share a group"


def _verdict_csv(path, rows):
    pd.DataFrame(rows, columns=["alert_id", "verdict", "reason", "reviewer", "comment", "class"]).to_csv(path, index=False)
    return path


def test_verdicts_become_labels(tmp_path):
    alerts = gpd.GeoDataFrame({"alert_id": ["a1", "a2", "a3"], "class": ["mining", "clearing", "mining"]},
                              geometry=[box(0, 0, 1e-3, 1e-3), box(1, 1, 1.001, 1.001), box(2, 2, 2.001, 2.001)],
                              crs=4326)
    alerts.to_file(tmp_path / "alerts.geojson")
    csv = _verdict_csv(tmp_path / "v.csv", [["a1", "confirmed", "", "ana", "", ""],
                                            ["a2", "rejected", "cloud", "ana", "cloud edge", ""],
                                            ["a3", "confirmed", "", "ana", "it is a clearing", "clearing"]])
    labels = read_labels(csv, tmp_path / "alerts.geojson")
    assert labels.set_index("alert_id")["class"].to_dict() == {"a1": "mining", "a2": "other", "a3": "clearing"}
    assert labels.attrs["exhaustive"] is False
    with pytest.raises(InputError, match="needs --alerts"):
        read_labels(csv)
    wrong = _verdict_csv(tmp_path / "w.csv", [["a9", "confirmed", "", "ana", "", ""]])
    with pytest.raises(InputError, match="w.csv, line 2: alert_id 'a9'"):
        read_labels(wrong, tmp_path / "alerts.geojson")
    maybe = _verdict_csv(tmp_path / "m.csv", [["a1", "maybe", "", "ana", "", ""]])
    with pytest.raises(InputError, match="verdict 'maybe'"):
        read_labels(maybe, tmp_path / "alerts.geojson")


def test_cec_train_on_analyst_verdicts(small_run, tmp_path, monkeypatch):
    """A run's alerts reviewed by an analyst train a model from the same imagery."""
    import contextlib

    # in this process, on dask's local scheduler: the cluster is not the subject here
    monkeypatch.setattr("pipeline.cli.train.dask_client", lambda config: contextlib.nullcontext())
    result, run_out = small_run  # the session's shared run (read only)
    alerts = result.alerts
    rows = [[a, "rejected" if i % 3 == 0 else "confirmed", "other", "ana", "test", ""]
            for i, a in enumerate(alerts["alert_id"])]
    # training needs two classes: some rejected ("other") and some confirmed
    assert {r[1] for r in rows} == {"rejected", "confirmed"}
    csv = _verdict_csv(tmp_path / "verdicts.csv", rows)
    out = tmp_path / "models" / "reviewed.skops"
    result = CliRunner().invoke(app, ["train", "--config", str(run_out.parent / "config.yaml"), "--labels", str(csv),
                                      "--alerts", str(run_out / "alerts.geojson"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    card = json.loads(out.with_suffix(".card.json").read_text())
    assert card["n_samples"]["other"] == sum(1 for r in rows if r[1] == "rejected")
    assert sum(card["n_samples"].values()) == len(rows)
    assert card["training_data"][0]["labels"] == str(csv) and card["training_data"][0]["alerts"]
    assert card["features"] == list(FEATURES) and card["sklearn_version"]
    assert load_model(out).version.startswith("reviewed@")


def test_sample_command_draws_from_a_run(small_run, tmp_path):
    run_result, run_out = small_run  # the session's shared run (read only)
    alerts = run_result.alerts
    out = tmp_path / "sample.csv"
    result = CliRunner().invoke(app, ["sample", "--run", str(run_out), "--out", str(out),
                                      "--n", "5", "--n-no-change", "12"])
    assert result.exit_code == 0, result.output
    sample = pd.read_csv(out, dtype={"reference": str})
    counts = sample.groupby("stratum").size().to_dict()
    assert counts[NO_CHANGE] == 12 and all(counts[c] == 5 for c in set(alerts["class"]))
    assert sample["reference"].isna().all() and {"lon", "lat", "stratum_area_ha"} <= set(sample.columns)


def test_cli_scores_alerts_against_reference_polygons(tmp_path):
    def at(x0, y0, x1, y1):  # metres from a corner of the La Pampa demo window (EPSG:32719)
        return box(381550 + x0, 8560000 + y0, 381550 + x1, 8560000 + y1)

    ref = gpd.GeoDataFrame({"class": ["mining", "clearing", "mining"]},
                           geometry=[at(0, 0, 200, 200), at(1000, 0, 1200, 150), at(3000, 3000, 3200, 3200)],
                           crs=32719).to_crs(4326)
    found = gpd.GeoDataFrame({"class": ["mining", "mining", "clearing"]},
                             geometry=[at(10, 10, 190, 190), at(1000, 0, 1200, 150), at(5000, 5000, 5100, 5100)],
                             crs=32719).to_crs(4326)
    ref.to_file(tmp_path / "ref.geojson")
    found.to_file(tmp_path / "alerts.geojson")
    out = tmp_path / "objects.json"
    result = CliRunner().invoke(app, ["evaluate", "--alerts", str(tmp_path / "alerts.geojson"),
                                      "--reference", str(tmp_path / "ref.geojson"), "--json", str(out)])
    assert result.exit_code == 0, result.output
    scores = json.loads(out.read_text())
    assert scores["recall"] == pytest.approx(2 / 3) and scores["precision"] == pytest.approx(2 / 3)
    assert scores["class_accuracy"] == pytest.approx(0.5)   # the clearing was called mining
    assert scores["confusion"]["clearing"]["mining"] == 1 and scores["confusion"]["mining"]["missed"] == 1


def test_a_scar_covered_by_several_alerts_together_is_found():
    """Object scores: a reference scar counts as found when alerts together cover MIN_OVERLAP (30 %)
    of it; here two alerts cover 20 % each, and a third alert lies elsewhere (a false alert)."""
    from pipeline.training.evaluate import MIN_OVERLAP, score_objects

    reference = gpd.GeoDataFrame({"class": ["mining"]}, geometry=[box(0, 0, 100, 100)], crs=32719)
    alerts = gpd.GeoDataFrame({"class": ["mining", "mining", "clearing"]},
                              geometry=[box(0, 0, 20, 100), box(80, 0, 100, 100), box(500, 500, 600, 600)],
                              crs=32719)
    assert MIN_OVERLAP == 0.3
    scores = score_objects(alerts, reference)
    assert scores.recall == 1.0 and scores.class_accuracy == 1.0
    assert scores.precision == pytest.approx(2 / 3)
    assert score_objects(alerts.iloc[:1], reference).recall == 0.0, "20 % alone is not found"
