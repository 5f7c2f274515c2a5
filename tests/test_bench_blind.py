"""The blind benchmark's generator writes items the pipeline reads right, and its scorer counts right."""

from __future__ import annotations

import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
from shapely.geometry import box

from pipeline.sources.load import check_items, load_observations, make_geobox
from pipeline.sources.registry import resolve_profile
from pipeline.sources.search import read_catalog

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))
import bench_blind  # noqa: E402
import blind_scene  # noqa: E402


@pytest.fixture(scope="module")
def small_scene():
    return blind_scene.make_scene(5, size_px10=200, n_baseline=2, n_monitor=3)


@pytest.mark.parametrize("encoding,profile_name,mask_band", [
    ("earth-search", "earth-search-s2", "scl"),
    ("planetary-computer", "planetary-computer-s2", "scl"),
    ("landsat", "landsat-c2-l2", "qa_pixel"),
])
def test_blind_items_load_as_reflectance(small_scene, tmp_path, encoding, profile_name, mask_band):
    catalog = blind_scene.write_encoding(small_scene, encoding, "dense", tmp_path / encoding)
    items = read_catalog(catalog)
    assert len(items) == len(small_scene.dates)
    checked = check_items(items)
    assert not checked.skipped and len(checked.usable) == len(items)
    assert {resolve_profile(i).name for i in items} == {profile_name}
    # the first baseline look and the last monitor look, on a 30 m grid inside the scene
    x0, y0 = blind_scene.X0 + 300, blind_scene.Y0 - 2100
    geobox = make_geobox((x0, y0, x0 + 1800, y0 + 1800), blind_scene.EPSG, 30.0)
    profile = resolve_profile(items[0])
    blues = []
    monitor = next(t for t in range(small_scene.n_baseline, len(items)) if t != small_scene.haze_look)
    for i in (0, monitor):  # a baseline look (2021) and a monitor look (2022) without the haze
        look = load_observations([items[i]], geobox, None).data
        assert look.attrs["mask_band"] == mask_band
        clear = profile.clear_pixels(look[mask_band].values[0])
        assert 0.3 < clear.mean() <= 1.0  # the mask is read, and flags some cloud at most
        nir = float(np.nanmedian(look["nir"].values[0][clear]))
        blues.append(float(np.nanmedian(look["blue"].values[0][clear])))
        assert 0.22 < nir < 0.42, (encoding, nir)  # mostly forest
        assert 0.005 < blues[-1] < 0.06, (encoding, blues[-1])
    # the −0.1 offset of processing baseline ≥ 04.00 (Planetary Computer, 2022 looks) applied once
    assert abs(blues[1] - blues[0]) < 0.02, (encoding, blues)


def test_blind_composites_have_no_mask(small_scene, tmp_path):
    catalog = blind_scene.write_encoding(small_scene, "planetary-computer", "composites", tmp_path / "pc")
    items = read_catalog(catalog)
    assert len(items) == 2
    for item in items:
        assert item.datetime is None and item.properties["start_datetime"] and item.properties["end_datetime"]
        assert not resolve_profile(item).has_mask(item)
    assert not check_items(items).skipped


def _truth():
    n = 100
    meta = {"size_px": n, "resolution_m": 10.0, "origin": [blind_scene.X0, blind_scene.Y0], "epsg": blind_scene.EPSG,
            "dates": ["2021-06-01", "2022-06-01", "2022-07-01"], "n_baseline": 1,
            "scars": [{"id": 0, "class": "mining", "kind": "sediment_pit", "area_ha": 4.0, "onset_look": 1},
                      {"id": 1, "class": "clearing", "kind": "bare", "area_ha": 4.0, "onset_look": 1},
                      {"id": 2, "class": "mining", "kind": "river_pits", "area_ha": 1.0, "onset_look": 2},
                      {"id": 3, "class": "clearing", "kind": "burnt", "area_ha": 0.3, "onset_look": 1}]}
    ids = np.full((n, n), -1, np.int32)
    ids[10:30, 10:30] = 0
    ids[50:70, 50:70] = 1
    ids[80:90, 10:20] = 2
    ids[2:7, 90:96] = 3  # below the mapping unit: not scored
    truth = {"scar_id": ids}
    for name in bench_blind.LOOKALIKES:
        truth[f"lookalike_{name}"] = np.zeros((n, n), bool)
    truth["lookalike_sandbar"][40:46, 80:96] = True
    return truth, meta


def _cells(r0, r1, c0, c1):
    """Grid rows/cols -> a UTM box."""
    x, y = blind_scene.X0, blind_scene.Y0
    return box(x + c0 * 10, y - r1 * 10, x + c1 * 10, y - r0 * 10)


def test_scorer_counts_a_hand_made_alert_set():
    truth, meta = _truth()
    alerts = gpd.GeoDataFrame(
        {"class": ["mining", "mining", "mining", "other"], "probability": [0.9, 0.6, 0.7, 0.5],
         "area_ha": [4.0, 2.0, 0.96, 0.2]},
        geometry=[_cells(10, 30, 10, 30),  # scar 0 whole, right class
                  _cells(50, 60, 50, 70),  # half of scar 1, wrong class
                  _cells(40, 46, 80, 96),  # on the sandbar: a false mining alert
                  _cells(80, 82, 10, 20)],  # 20 % of scar 2: not found
        crs=blind_scene.EPSG).to_crs(4326)
    s = bench_blind.score(alerts, truth, meta, min_area_ha=0.5)
    assert s["n_scars"] == 3 and s["n_found"] == 2 and s["recall"] == pytest.approx(0.667, abs=1e-3)
    assert s["class_accuracy"] == 0.5
    assert s["confusion"]["mining"] == {"mining": 1, "clearing": 0, "other": 0, "missed": 1}
    assert s["confusion"]["clearing"] == {"mining": 1, "clearing": 0, "other": 0, "missed": 0}
    # mining/clearing alerts: two on planted change, one on the sandbar; the `other` one is not counted
    assert s["n_mining_clearing_alerts"] == 3 and s["precision"] == pytest.approx(0.667, abs=1e-3)
    assert s["false_alerts_by_ground"] == {"sandbar": 1}
    assert [p["covered"] for p in s["per_scar"]] == [1.0, 0.5, 0.2]
    # nothing alerted: every scar missed, no precision
    none = bench_blind.score(alerts.iloc[:0], truth, meta)
    assert none["recall"] == 0.0 and none["precision"] is None and none["class_accuracy"] is None
