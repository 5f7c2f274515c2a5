"""Change with confirmation: the per-pixel test, its confidence levels and two-composite runs."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pytest

from pipeline.testing import scene as demo
from pipeline.change import (
    CONFIDENCE_HIGH,
    CONFIDENCE_LOW,
    CONFIDENCE_NOMINAL,
    CONFIDENCE_NONE,
    FIELDS,
    INPUTS,
    PATH_FOREST_LOSS,
    PATH_MINING_SURFACE,
    ChangeParams,
    detect_block,
    family_codes,
)
from pipeline.config import load_config
from pipeline.run import run

from .conftest import DEMO_DATA, read_truth, small_spec, write_config

FOREST = {"ndvi": 0.85, "nbr": 0.6, "mndwi": -0.5, "bsi": -0.3, "blue": 0.03, "green": 0.06, "red": 0.03,
          "nir": 0.35, "swir16": 0.15, "swir22": 0.06}
LOSS = {"ndvi": 0.15, "nbr": 0.0, "mndwi": -0.3, "bsi": 0.1, "blue": 0.05, "green": 0.08, "red": 0.1,
        "nir": 0.14, "swir16": 0.28, "swir22": 0.14}
N_BASE = 4


def series(monitor: list[dict | None], base: dict | None = None, base_jitter: float = 0.0):
    """Inputs of detect_block for one pixel: N_BASE baseline looks of ``base`` (NDVI jittered by
    ± ``base_jitter``), then one look per ``monitor`` entry (None = cloudy)."""
    base = base or FOREST
    looks = [dict(base, ndvi=base["ndvi"] + base_jitter * (-1) ** i) for i in range(N_BASE)]
    looks += [m if m is not None else FOREST for m in monitor]
    arrays = {k: np.array([[[lk[k]]] for lk in looks], dtype=np.float32) for k in FOREST}
    clear = np.array([[[True]]] * N_BASE + [[[m is not None]] for m in monitor])
    is_baseline = np.arange(len(looks)) < N_BASE
    return arrays, clear, is_baseline


def test_confidence(monitor, families=None, **kw) -> dict:
    arrays, clear, is_baseline = series(monitor, **kw)
    out = detect_block(*(arrays[k] for k in INPUTS), clear,
                       is_baseline, ChangeParams(), look_family=families)
    return {name: float(out[i, 0, 0]) for i, name in enumerate(FIELDS)}


test_confidence.__test__ = False  # a helper, not a test


def test_one_look_is_low_two_are_nominal_three_are_high():
    one = test_confidence([FOREST, FOREST, LOSS])
    assert one["confidence"] == CONFIDENCE_LOW and one["first_look"] == -1
    two = test_confidence([FOREST, LOSS, LOSS])
    assert two["confidence"] == CONFIDENCE_NOMINAL and two["first_look"] == N_BASE + 1
    three = test_confidence([LOSS, LOSS, LOSS])
    assert three["confidence"] == CONFIDENCE_HIGH and three["first_look"] == N_BASE
    assert three["delta_ndvi"] == pytest.approx(0.7, abs=1e-5)


def test_a_single_dark_look_that_the_next_clear_look_contradicts_is_nothing():
    assert test_confidence([LOSS, FOREST, FOREST, FOREST])["confidence"] == CONFIDENCE_NONE


def test_confirmation_waits_for_the_next_clear_look_through_clouds():
    result = test_confidence([FOREST, LOSS, None, None, LOSS])
    assert result["confidence"] == CONFIDENCE_NOMINAL and result["first_look"] == N_BASE + 1


def test_the_drop_must_be_large_against_the_pixels_own_variability():
    drop = dict(FOREST, ndvi=FOREST["ndvi"] - 0.3, nbr=FOREST["nbr"] - 0.2)
    assert test_confidence([drop, drop, drop])["confidence"] == CONFIDENCE_HIGH
    # Same drop on a pixel whose baseline swings by ±0.1 (robust sigma ~0.15): not enough.
    noisy = test_confidence([drop, drop, drop], base_jitter=0.1)
    assert noisy["confidence"] == CONFIDENCE_NONE
    # And a small absolute drop is never enough, however stable the pixel.
    small = dict(FOREST, ndvi=FOREST["ndvi"] - 0.12, nbr=FOREST["nbr"] - 0.2)
    assert test_confidence([small, small, small])["confidence"] == CONFIDENCE_NONE


def test_forest_loss_needs_baseline_forest_and_new_surface_needs_vegetated_ground():
    scrub = dict(FOREST, ndvi=0.5, nbr=0.25)          # secondary growth, scrub, an old clearing
    on_scrub = test_confidence([LOSS, LOSS, LOSS], base=scrub)
    assert on_scrub["confidence"] == CONFIDENCE_HIGH and on_scrub["forest"] == 0
    assert on_scrub["detection_path"] == PATH_MINING_SURFACE
    assert test_confidence([LOSS, LOSS, LOSS])["detection_path"] == PATH_FOREST_LOSS | PATH_MINING_SURFACE
    # Forest lost to something that is not bare sediment or water (a grassy clearing): forest path only.
    grass = dict(FOREST, ndvi=0.5, nbr=0.2, bsi=-0.1)
    assert test_confidence([grass, grass, grass])["detection_path"] == PATH_FOREST_LOSS
    # Already open ground (an old pit, a bare field) stays silent, however it changes.
    old_pit = dict(LOSS, ndvi=0.25, nbr=0.05)
    pond = dict(LOSS, ndvi=-0.1, mndwi=0.3, nir=0.05, green=0.09, swir16=0.04, bsi=-0.1)
    assert test_confidence([pond, pond, pond], base=old_pit)["confidence"] == CONFIDENCE_NONE
    # Grass that turns to pasture (still green) is no loss of either kind.
    pasture = dict(scrub, ndvi=0.35, bsi=-0.05, red=0.05)
    assert test_confidence([pasture, pasture, pasture], base=scrub)["confidence"] == CONFIDENCE_NONE
    water = dict(FOREST, ndvi=-0.05, mndwi=0.4)
    result = test_confidence([LOSS, LOSS, LOSS], base=water)
    assert result["confidence"] == CONFIDENCE_NONE and result["water"] == 1


def test_haze_is_not_evidence():
    haze = dict(FOREST, ndvi=0.45, nbr=0.35, blue=0.15, swir16=0.17)
    assert test_confidence([haze, haze, haze])["confidence"] == CONFIDENCE_NONE


def test_high_needs_both_sensors_when_both_saw_it():
    s2, ls = "sentinel-2a", "landsat-8"
    families = family_codes([s2] * N_BASE + [s2, ls, s2, s2, ls, s2])
    assert list(family_codes(["sentinel-2b", "landsat-9", "sentinel-2c"])) == [0, 1, 0]
    # Landsat saw the pixel clearly twice and disagreed: the Sentinel-2 change stays nominal.
    seen_by_s2_only = test_confidence([LOSS, FOREST, LOSS, LOSS, FOREST, LOSS], families=families)
    assert seen_by_s2_only["confidence"] == CONFIDENCE_NOMINAL
    both = test_confidence([LOSS, LOSS, LOSS, LOSS, FOREST, LOSS], families=families)
    assert both["confidence"] == CONFIDENCE_HIGH
    # Landsat never saw it clearly: Sentinel-2 alone can make it high.
    clouded = test_confidence([LOSS, None, LOSS, LOSS, None, LOSS], families=families)
    assert clouded["confidence"] == CONFIDENCE_HIGH


def test_two_composites_give_low_alerts(tmp_path):
    """One baseline and one monitor composite: every alert is ``low`` (nothing can confirm it)."""
    spec = dataclasses.replace(small_spec(seed=41), baseline_dates=(dt.date(2018, 8, 23),),
                               monitor_dates=(dt.date(2021, 8, 10),), cloud_fraction=0.0, swath_edge=False)
    demo.generate_scene(spec, tmp_path / "scene", DEMO_DATA)
    config = load_config(write_config(tmp_path / "low", tmp_path / "scene", **{"detection.min_confidence": "low"}))
    alerts = run(config).alerts.to_crs(32719)
    truth = read_truth(tmp_path / "scene")
    big = truth[truth.area_ha >= 2 * 0.5 * 1.2]
    assert len(alerts) >= 0.8 * len(big) > 0
    assert set(alerts["confidence"]) == {"low"}
    assert (alerts["area_ha"] >= 1.0).all(), "single-look scars need twice the mapping unit"
    assert set(alerts["first_detected"]) == {"2021-08-10"}
    on_truth = alerts.intersection(truth.union_all()).area / alerts.area
    assert (on_truth >= 0.5).all()
    nominal = load_config(write_config(tmp_path / "nominal", tmp_path / "scene",
                                       **{"detection.min_confidence": "nominal"}))
    assert run(nominal).alerts.empty


def _change_layers(confidence: np.ndarray) -> dict:
    from pipeline.change import n_fields

    layers = {name: np.zeros(confidence.shape, np.float32) for name in FIELDS}
    layers["confidence"] = confidence.astype(np.float32)
    layers["first_look"][:] = np.where(confidence >= CONFIDENCE_NOMINAL, 5, -1)
    layers["last_look"][:] = np.where(confidence >= CONFIDENCE_NOMINAL, 6, -1)
    layers["forest"][:] = 1
    layers["look_bits"] = np.zeros((n_fields(8) - len(FIELDS),) + confidence.shape, np.float32)
    return layers


def test_an_isolated_small_scar_needs_more_confirmation_than_one_beside_others():
    from affine import Affine

    from pipeline.scars import find_scars

    transform = Affine(10.0, 0, 0, 0, -10.0, 0)
    zones = np.ones((100, 100), np.int32)

    def scars(confidence):
        return find_scars(_change_layers(confidence), zones, transform, CONFIDENCE_LOW, 0.5).table

    shaky = np.zeros((100, 100))
    shaky[40:48, 40:48] = CONFIDENCE_LOW          # 0.64 ha seen once …
    shaky[42:45, 42:45] = CONFIDENCE_NOMINAL      # … with only a confirmed 3 × 3 core
    assert scars(shaky).empty, "an isolated small scar confirmed on a few pixels is not an alert"
    beside = shaky.copy()
    beside[40:48, 53:58] = CONFIDENCE_LOW         # other change 50 m away: a growing front
    assert np.isclose(scars(beside)["area_ha"], 0.64).any()
    solid = shaky.copy()
    solid[40:48, 40:48] = CONFIDENCE_NOMINAL      # confirmed throughout
    assert scars(solid)["area_ha"].tolist() == [pytest.approx(0.64)]
    large = np.zeros((100, 100))
    large[30:45, 30:45] = CONFIDENCE_LOW          # 2.25 ha: large enough for the usual rule
    large[35:38, 35:38] = CONFIDENCE_NOMINAL
    assert scars(large)["confidence"].tolist() == ["nominal"]


def test_a_bank_taken_by_the_river_advances_inland_look_after_look():
    """The onset features tell an eroding bank (inland, look after look) from a pit (at once)."""
    from affine import Affine

    from pipeline.scars import find_scars

    confidence = np.zeros((60, 60))
    confidence[10:50, 10:20] = CONFIDENCE_NOMINAL      # a strip beside the river (columns 0-9)
    confidence[10:30, 35:55] = CONFIDENCE_NOMINAL      # a pit away from it
    layers = _change_layers(confidence)
    layers["water"][:, :10] = 1
    layers["first_look"][10:50, 10:20] = np.arange(10)[None, :] // 2 + 5   # later further inland
    layers["first_look"][10:30, 35:55] = 7
    table = find_scars(layers, np.ones((60, 60), np.int32), Affine(10.0, 0, 0, 0, -10.0, 0),
                       CONFIDENCE_LOW, 0.5).table.sort_values("dist_water_m")
    bank, pit = table.iloc[0], table.iloc[1]
    assert bank["onset_water_corr"] > 0.9 and bank["onset_spread_looks"] > 1
    assert bank["near_water_fraction"] == pytest.approx(0.6)   # within 60 m of water
    assert pit["onset_spread_looks"] == pytest.approx(0) and pit["onset_water_corr"] == 0
    assert pit["near_water_fraction"] == 0


# --- New mining surface and its look-alikes, pixel by pixel ------------------------------------
SCRUB = dict(FOREST, ndvi=0.55, nbr=0.3, red=0.05, green=0.07, swir16=0.2, swir22=0.1, nir=0.28)
SAND = dict(LOSS, ndvi=0.1, nbr=0.02, mndwi=-0.1, blue=0.15, green=0.2, red=0.24, nir=0.3, swir16=0.33,
            swir22=0.28)   # La Pampa mining sand (real Landsat medians, rounded)
POND = dict(LOSS, ndvi=-0.03, nbr=0.5, mndwi=0.5, blue=0.2, green=0.27, red=0.3, nir=0.3, swir16=0.08,
            swir22=0.06)   # a turbid tailings pond
CLEAR_WATER = dict(POND, ndvi=-0.2, mndwi=0.7, blue=0.05, green=0.06, red=0.04, nir=0.03, swir16=0.01)
BURN = dict(LOSS, ndvi=0.12, nbr=-0.2, mndwi=-0.45, bsi=0.1, blue=0.03, green=0.045, red=0.06, nir=0.08,
            swir16=0.12, swir22=0.12)   # char and ash: dark
BARE_FIELD = dict(SAND, blue=0.06, green=0.09, red=0.12, nir=0.22, swir16=0.3, swir22=0.22, ndvi=0.29)
CLOUD = dict(LOSS, ndvi=0.05, nbr=0.05, mndwi=0.06, bsi=-0.02, blue=0.45, green=0.44, red=0.43, nir=0.47,
             swir16=0.39, swir22=0.33)  # a thick unflagged cloud: green above SWIR1 like water


def pixel(looks: list[dict], n_base: int) -> dict:
    """detect_block on one pixel: ``looks`` in order, the first ``n_base`` the baseline."""
    arrays = {k: np.array([[[lk[k]]] for lk in looks], dtype=np.float32) for k in INPUTS}
    clear = np.ones((len(looks), 1, 1), dtype=bool)
    out = detect_block(*(arrays[k] for k in INPUTS), clear, np.arange(len(looks)) < n_base, ChangeParams())
    return {name: float(out[i, 0, 0]) for i, name in enumerate(FIELDS)}


@pytest.mark.parametrize("surface", [SAND, POND, CLEAR_WATER], ids=["sand", "turbid pond", "clear pond"])
@pytest.mark.parametrize("cover", [FOREST, SCRUB], ids=["forest", "scrub"])
def test_new_mining_surface_is_found_on_any_vegetated_cover(surface, cover):
    result = pixel([cover] * 4 + [surface] * 3, 4)
    assert result["confidence"] == CONFIDENCE_HIGH
    assert int(result["detection_path"]) & PATH_MINING_SURFACE
    assert result["post_nir"] == pytest.approx(surface["nir"]) and result["base_red"] == pytest.approx(cover["red"])


def test_old_stock_stays_silent_and_its_growth_into_new_ground_alerts():
    # Inside the old pit: sand in the baseline, sand or a new pond afterwards.
    assert pixel([SAND] * 4 + [SAND] * 3, 4)["confidence"] == CONFIDENCE_NONE
    assert pixel([SAND] * 4 + [POND] * 3, 4)["confidence"] == CONFIDENCE_NONE
    # The scrub at the pit's edge that the pit grows into.
    assert pixel([SCRUB] * 4 + [SCRUB, SAND, SAND], 4)["confidence"] == CONFIDENCE_NOMINAL


@pytest.mark.parametrize("name, looks", [
    # A bar on a channel: open water in a baseline look, so channel, not new ground.
    ("sandbar", [SCRUB, CLEAR_WATER, SCRUB, SCRUB] + [SAND] * 3),
    ("channel moved in", [SCRUB, CLEAR_WATER, SCRUB, SCRUB] + [CLEAR_WATER] * 3),
    # High water for two wet-season looks, then land again for the rest of the series.
    ("seasonal water", [SCRUB] * 4 + [CLEAR_WATER, CLEAR_WATER, SCRUB, SCRUB, SCRUB, SCRUB]),
    # A field bare in the dry season that greens up again.
    ("re-greening field", [SCRUB] * 4 + [BARE_FIELD, BARE_FIELD, SCRUB, SCRUB, SCRUB, SCRUB]),
    # A burn: dark char, no sediment brightness, no water.
    ("burn on scrub", [SCRUB] * 4 + [BURN] * 3),
    ("unflagged cloud", [SCRUB] * 4 + [CLOUD] * 3),
    ("haze", [SCRUB] * 4 + [dict(SCRUB, ndvi=0.35, blue=0.15, green=0.15, red=0.13, swir16=0.22)] * 3),
])
def test_look_alikes_of_new_mining_surface_raise_nothing(name, looks):
    result = pixel(looks, 4)
    assert result["confidence"] == CONFIDENCE_NONE, name


def test_new_surface_in_the_channel_belt_is_the_rivers_and_a_pit_beyond_it_is_not():
    from affine import Affine

    from pipeline.scars import find_scars

    confidence = np.zeros((60, 60))
    confidence[5:35, 10:16] = CONFIDENCE_NOMINAL     # new sand on a 60 m strip of bank, by the river
    confidence[35:50, 30:45] = CONFIDENCE_NOMINAL    # a pit 200 m from the river
    layers = _change_layers(confidence)
    layers["water"][:, :10] = 1
    layers["detection_path"][:] = np.where(confidence > 0, PATH_MINING_SURFACE, 0)
    table = find_scars(layers, np.ones((60, 60), np.int32), Affine(10.0, 0, 0, 0, -10.0, 0), CONFIDENCE_LOW, 0.5).table
    assert table["area_ha"].tolist() == [pytest.approx(2.25)] and table["detection_path"].tolist() == ["mining_surface"]
    # Forest lost at the water's edge is still the forest-loss path's to judge.
    layers["detection_path"][:] = np.where(confidence > 0, PATH_FOREST_LOSS | PATH_MINING_SURFACE, 0)
    table = find_scars(layers, np.ones((60, 60), np.int32), Affine(10.0, 0, 0, 0, -10.0, 0), CONFIDENCE_LOW, 0.5).table
    assert sorted(table["area_ha"].round(2)) == [1.8, 2.25] and set(table["detection_path"]) == {"both"}


def test_white_sand_mixed_with_scrub_is_ground_not_haze():
    """Quartz sand brightens the blue a lot (La Pampa sand: blue 0.19, red 0.28, SWIR1 0.34), so a
    pixel 70 % sand, 30 % scrub brightens the blue more than SWIR1, like haze; but it brightens the
    red more still, which haze never does."""
    white = dict(SAND, blue=0.19, green=0.25, red=0.28, nir=0.34, swir16=0.34)
    mixed = {k: 0.7 * white[k] + 0.3 * SCRUB[k] for k in INPUTS}
    mixed["ndvi"] = (mixed["nir"] - mixed["red"]) / (mixed["nir"] + mixed["red"])
    mixed["mndwi"] = (mixed["green"] - mixed["swir16"]) / (mixed["green"] + mixed["swir16"])
    assert mixed["ndvi"] > 0.15 and mixed["blue"] - SCRUB["blue"] > mixed["swir16"] - SCRUB["swir16"]
    assert pixel([SCRUB] * 4 + [mixed] * 3, 4)["confidence"] == CONFIDENCE_HIGH


# Surface reflectance (blue, green, red, NIR, SWIR1, SWIR2) of closed forest and of the green
# Brachiaria pasture sown as it is cleared (NDVI 0.85 -> 0.68, NBR 0.68 -> 0.39).
FOREST_SR = (0.022, 0.048, 0.026, 0.31, 0.145, 0.058)
PASTURE_SR = (0.040, 0.080, 0.058, 0.30, 0.245, 0.130)


def _pasture_scene(rng):
    """60 × 60 px at 10 m, 4 baseline looks of forest and 3 monitor looks in which a 20 × 24 px
    block (4.8 ha) is green pasture; 1 % reflectance noise. An xarray Dataset of the bands."""
    import xarray as xr

    from pipeline.model import BANDS

    looks = []
    for t in range(7):
        look = np.broadcast_to(np.array(FOREST_SR, np.float32)[:, None, None], (6, 60, 60)).copy()
        if t >= 4:
            look[:, 20:40, 18:42] = np.array(PASTURE_SR, np.float32)[:, None, None]
        looks.append(look * rng.normal(1.0, 0.01, look.shape).astype(np.float32))
    stack = np.stack(looks, axis=1)
    return xr.Dataset({b: (("time", "y", "x"), stack[i]) for i, b in enumerate(BANDS)})


def test_forest_cleared_to_green_pasture_is_alerted_as_a_clearing():
    """Forest sown to pasture at once drops NDVI by only 0.17 (under ndvi_drop_min) but NBR by
    0.29: it is found as one scar where the pasture is, by the forest-loss path, and the bundled
    classifier calls it ``clearing``; without the NBR test it is not found at all."""
    import xarray as xr
    from affine import Affine

    from pipeline.change import detect_change
    from pipeline.classify import load_classifier
    from pipeline.indices import compute_indices
    from pipeline.scars import find_scars

    from .conftest import REPO

    data = _pasture_scene(np.random.default_rng(3))
    indices = compute_indices(data).assign({b: data[b] for b in data.data_vars})
    clear = xr.DataArray(np.ones((7, 60, 60), bool), dims=("time", "y", "x"))
    is_baseline = np.arange(7) < 4
    transform = Affine(10.0, 0, 380000.0, 0, -10.0, 8560000.0)
    zones = np.ones((60, 60), np.int32)

    def scars(params):
        change = detect_change(indices, clear, is_baseline, params)
        return find_scars({name: change[name].values for name in change.data_vars}, zones, transform,
                          CONFIDENCE_LOW, 0.5)

    found = scars(ChangeParams())
    table = found.table
    assert len(table) == 1 and table["detection_path"].iloc[0] == "forest_loss"
    assert table["area_ha"].iloc[0] == pytest.approx(4.8, rel=0.1)
    assert (found.labels[20:40, 18:42] > 0).mean() > 0.9 and not (found.labels[:15] > 0).any()
    classes, _ = load_classifier(REPO / "models" / "scar-classifier.skops").predict(table)
    assert classes.tolist() == ["clearing"]
    assert scars(ChangeParams(grass_nbr_drop_min=2.0)).table.empty
