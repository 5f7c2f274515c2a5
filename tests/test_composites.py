"""Runs on two composites are first class: one cloud-free baseline composite and one monitor
composite (no mask band, items with ``start_datetime``/``end_datetime``) find the planted scars,
with the classes a dense series gives and ``low`` confidence, and nothing on the look-alikes.

``low`` is how a single monitor look is issued: nothing can confirm it, so a composite run never
gives ``nominal`` or ``high``, and its scars must be twice the mapping unit (scars.LOW_AREA_FACTOR).
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import geopandas as gpd
import pytest

from pipeline.testing import scene as demo
from pipeline.config import load_config
from pipeline.training.evaluate import score_objects
from pipeline.run import run

from .conftest import DEMO_DATA, read_truth, small_spec, write_config
from .encodings import read_items, write_composites


@pytest.fixture(scope="module")
def composite_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("composites")
    spec = dataclasses.replace(small_spec(seed=43), baseline_dates=(dt.date(2018, 8, 23),),
                               monitor_dates=(dt.date(2021, 8, 10),), cloud_fraction=0.0, swath_edge=False,
                               n_old_clearings=2)
    demo.generate_scene(spec, folder / "scene", DEMO_DATA)
    catalog = write_composites(folder / "scene" / "catalog.json", folder / "composites")
    config = load_config(write_config(folder / "run", folder / "composites",
                                      **{"detection.min_confidence": "low"}))
    truth = read_truth(folder / "scene")
    lookalikes = gpd.read_file(folder / "scene" / "lookalikes.geojson").set_crs(32719, allow_override=True)
    return read_items(catalog), run(config).alerts.to_crs(32719), truth, lookalikes


def test_composite_items_carry_no_mask_and_a_period(composite_run):
    items, *_ = composite_run
    assert len(items) == 2
    assert all("scl" not in i.assets and i.datetime is None and i.properties["start_datetime"] for i in items)


def test_two_composites_find_the_scars_with_their_classes_at_low_confidence(composite_run):
    items, alerts, truth, _ = composite_run
    big = truth[~truth.below_mmu & (truth.area_ha >= 1.2)]
    assert set(alerts["confidence"]) == {"low"}
    # A composite's date is the start of its period.
    assert set(alerts["first_detected"]) == {items[1].properties["start_datetime"][:10]}
    scores = score_objects(alerts, big)
    assert scores.recall >= 0.8, scores
    assert scores.precision >= 0.9, scores
    assert scores.class_accuracy >= 0.8, scores


def test_two_composites_raise_nothing_on_look_alikes(composite_run):
    _, alerts, truth, lookalikes = composite_run
    assert {"river", "old_clearing"} <= set(lookalikes["kind"])
    on_truth = alerts.intersection(truth.union_all()).area / alerts.area
    assert (on_truth >= 0.5).all(), alerts[on_truth < 0.5][["class", "area_ha", "detection_path"]]
