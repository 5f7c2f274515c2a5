"""batch.py and plan.py: the steps of a run, each small enough to test on its own."""

from __future__ import annotations

import datetime as dt

import geopandas as gpd
import numpy as np
import pandas as pd
import pystac
import shapely

from pipeline.batch import classify_area, planned_outputs, window_config
from pipeline.config import load_config
from pipeline.model import AreaDetection
from pipeline.plan import AreaPlan, plan_rows
from pipeline.state import Window

from .conftest import write_config


def item(item_id: str, day: str) -> pystac.Item:
    return pystac.Item(item_id, {"type": "Point", "coordinates": [-70.0, -12.8]}, None,
                       dt.datetime.fromisoformat(day + "T15:00:00+00:00"), {})


def test_planned_outputs_follow_the_formats_and_switches(tmp_path, small_scene):
    config = load_config(write_config(tmp_path, small_scene, **{
        "output.formats": ["csv", "kml"], "output.evidence": False}))
    assert planned_outputs(config) == ["alerts.csv", "alerts.kml", "summary.csv", "report.html", "items.json",
                                       "run.json", "state.gpkg"]
    config = load_config(write_config(tmp_path, small_scene, **{"output.formats": ["geojson"]}))
    assert planned_outputs(config)[:3] == ["alerts.geojson", "alerts_new.geojson", "summary.csv"]
    assert "evidence/" in planned_outputs(config)


def test_the_run_loads_from_the_window_load_start(tmp_path, small_scene):
    config = load_config(write_config(tmp_path, small_scene))
    window = Window(start=dt.date(2020, 3, 1), end=dt.date(2020, 6, 30), load_start=dt.date(2019, 1, 1),
                    incremental=True)
    assert window_config(config, window).periods.monitor == (dt.date(2019, 1, 1), dt.date(2020, 6, 30))


def test_plan_lists_only_the_window_items_and_marks_the_processed_ones():
    monitor = [item("b", "2019-05-02"), item("a", "2020-03-01"), item("c", "2020-07-01"), item("d", "2020-06-30")]
    plan = AreaPlan("RN09", gpd.GeoDataFrame(geometry=[], crs=4326), [item("z", "2018-07-01")], monitor)
    rows = plan_rows([plan], dt.date(2020, 3, 1), dt.date(2020, 6, 30), processed={"a"})
    assert rows == [{"area_id": "RN09", "baseline_items": ["z"], "monitor_items": [
        {"id": "a", "date": "2020-03-01", "new": False}, {"id": "d", "date": "2020-06-30", "new": True}]}]


class AllMining:
    card = {"features": []}
    version = "all-mining@0"

    def predict(self, scars):
        return np.array(["mining"] * len(scars), dtype=object), np.full(len(scars), 0.9)


def detection_with_a_bank() -> AreaDetection:
    square = shapely.box(380000, 8560000, 380100, 8560100)
    scars = pd.DataFrame({
        "geometry": [square, shapely.box(381000, 8560000, 381100, 8560100)], "zone_index": [1, 1],
        "looks": [[1], [1]], "first_look": [1, 1], "last_look": [1, 1], "confidence": ["high", "high"],
        "delta_ndvi": [-0.5, -0.5], "delta_nbr": [-0.5, -0.5], "water_fraction": [0.0, 0.0],
        "bare_fraction": [1.0, 1.0],
        # the second scar is a river taking its bank: near water, lost later the farther from it
        "near_water_fraction": [0.0, 1.0], "near_river_fraction": [0.0, 1.0], "onset_water_corr": [0.0, 0.9],
        "onset_spread_looks": [0.0, 2.0],
    })
    zones = gpd.GeoDataFrame({"area_id": ["RN09"], "area_name": ["Tambopata"], "zone": ["inside"]},
                             geometry=[shapely.box(379000, 8559000, 382000, 8561000)], crs=32719)
    return AreaDetection("RN09", 32719, zones, scars, ["2018-07-01", "2019-05-02"], [("i0",), ("i1",)],
                         ["sentinel-2a", "sentinel-2b"], 1)


def test_eroding_banks_are_suppressed_or_kept_as_configured():
    provenance = {"run_name": "t", "run_id": "t-1", "model_version": "all-mining@0", "pipeline_version": "0"}
    suppressed = classify_area(detection_with_a_bank(), AllMining(), provenance, "suppress")
    kept = classify_area(detection_with_a_bank(), AllMining(), provenance, "other")
    assert len(suppressed) == 1 and suppressed["class"].tolist() == ["mining"]
    assert len(kept) == 2 and kept["model_version"].tolist() == ["all-mining@0"] * 2
    # The same onset by old ponds (water, but no river): a pit growing outward from them.
    by_ponds = detection_with_a_bank()
    by_ponds.scars["near_river_fraction"] = 0.0
    assert len(classify_area(by_ponds, AllMining(), provenance, "suppress")) == 2


class AllOther(AllMining):
    def predict(self, scars):
        return np.array(["other"] * len(scars), dtype=object), np.full(len(scars), 0.8)


def test_other_change_by_the_river_is_not_issued_unless_asked_for():
    """A scar the classifier calls neither mining nor clearing that lies mostly within 60 m of
    a river and holds no water of its own is the river's doing (a bar buried by sand, a slumping
    bank): not issued by default; the same class far from water (a blowdown, a landslide) is, and
    so is one by the river that holds ponds (a pit the model was unsure of) and one by water
    that is no river (old ponds: tests/test_banks.py); a pit by the river called mining is issued."""
    provenance = {"run_name": "t", "run_id": "t-1", "model_version": "m@0", "pipeline_version": "0"}
    detection = detection_with_a_bank()
    # no bank pattern this time (all lost at once): only the river-dynamics rule can apply
    detection.scars["onset_water_corr"] = 0.0
    detection.scars["near_water_fraction"] = [0.2, 0.6]
    detection.scars["near_river_fraction"] = [0.0, 0.6]
    suppressed = classify_area(detection, AllOther(), provenance, "suppress")
    assert len(suppressed) == 1 and suppressed["class"].tolist() == ["other"]
    assert suppressed["centroid_lon"].iloc[0] < classify_area(detection, AllOther(), provenance, "other")[
        "centroid_lon"].max(), "the scar kept is the one far from water"
    assert len(classify_area(detection, AllOther(), provenance, "other")) == 2
    assert len(classify_area(detection, AllMining(), provenance, "suppress")) == 2
    detection.scars["water_fraction"] = [0.0, 0.3]  # ponds in the scar by the river: a pit
    assert len(classify_area(detection, AllOther(), provenance, "suppress")) == 2
    detection.scars["water_fraction"] = 0.0
    detection.scars["near_river_fraction"] = [0.0, 0.0]  # the water it lies by is old ponds
    assert len(classify_area(detection, AllOther(), provenance, "suppress")) == 2
