"""Extension points: a toy source, a toy output format and a toy classifier, each registered
the documented way and each used by one run on the small scene."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.classify import register_classifier, unregister_classifier
from pipeline.config import load_config
from pipeline.errors import ConfigError, ModelIntegrityError
from pipeline.files import write_output_text
from pipeline.outputs import register_writer, unregister_writer
from pipeline.run import run
from pipeline.sources import register_profile, unregister_profile
from pipeline.sources.search import search_catalog, write_items
from pipeline.sources.sentinel2 import EARTH_SEARCH_S2

from .conftest import write_config

TOY_COLLECTION = "toy-l2a"


class ToyClassifier:
    """Calls every scar a clearing with probability 1."""

    card = {"features": [], "sklearn_version": None}
    version = "toy@1"

    def predict(self, scars: pd.DataFrame):
        return np.array(["clearing"] * len(scars), dtype=object), np.ones(len(scars))


def write_count(alerts, path: Path) -> Path:
    """The toy format: the number of alerts, as text."""
    return write_output_text(path, f"{len(alerts)}\n")


@pytest.fixture(scope="module")
def toy_run(small_scene, tmp_path_factory):
    folder = tmp_path_factory.mktemp("toys")
    # the scene's items re-labelled as another collection that only the toy profile serves
    everywhere = {"type": "Polygon", "coordinates": [[[-180, -90], [180, -90], [180, 90], [-180, 90], [-180, -90]]]}
    items = search_catalog(small_scene / "catalog.json", ["sentinel-2-l2a"], everywhere,
                           dt.date(2018, 1, 1), dt.date(2022, 12, 31), 100)
    relabelled = []
    for item in items:
        clone = item.clone()
        clone.collection_id = TOY_COLLECTION
        relabelled.append(clone)
    items_file = write_items(relabelled, folder / "items.json")  # absolute hrefs to the scene's COGs
    calls = []

    def counting_rule(data, *args):
        calls.append(data.sizes["time"])
        return EARTH_SEARCH_S2.clear_rule(data, *args)

    profile = dataclasses.replace(EARTH_SEARCH_S2, name="toy", collections=(TOY_COLLECTION,), clear_rule=counting_rule)
    register_profile(profile)
    register_writer("count", "alerts.count", write_count)
    register_classifier(".toy", lambda path: ToyClassifier())
    try:
        model = folder / "model.toy"
        model.write_text("toy\n")
        config_path = write_config(folder, small_scene, **{
            "source.stac_catalog": None, "source.stac_items": str(items_file),
            "source.collections": [TOY_COLLECTION], "model": str(model),
            "output.formats": ["geojson", "count"], "output.evidence": False, "output.report": False})
        result = run(load_config(config_path))
    finally:
        unregister_profile("toy")
        unregister_writer("count")
        unregister_classifier(".toy")
    return result, calls, folder


def test_a_registered_source_serves_its_collection(toy_run):
    result, calls, _ = toy_run
    assert calls, "the toy profile's clear rule was never used"
    assert len(result.alerts) > 0


def test_a_registered_output_format_is_written_by_the_run(toy_run):
    result, _, _ = toy_run
    path = result.outputs["count"]
    assert path.name == "alerts.count" and path.read_text() == f"{len(result.alerts)}\n"


def test_a_registered_classifier_classifies_the_scars(toy_run):
    result, _, _ = toy_run
    assert set(result.alerts["class"]) == {"clearing"}
    assert set(result.alerts["model_version"]) == {"toy@1"}


def test_unregistered_extensions_are_refused_by_name(tmp_path, small_scene):
    with pytest.raises(ConfigError, match="unknown format.*'count'"):
        load_config(write_config(tmp_path, small_scene, **{"output.formats": ["count"]}))
    from pipeline.classify import load_classifier

    with pytest.raises(ModelIntegrityError, match="no classifier is registered for .toy"):
        load_classifier(tmp_path / "model.toy")
