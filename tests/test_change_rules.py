"""The change test's rules at their boundaries, one pixel at a time (detect_block).

Looks are written as sequences of FOREST / LOSS / None (cloudy), after four baseline looks of
forest; the expected confidence follows from the rule in pipeline/change.py's docstring:
flagged = a clear monitor look with NDVI down by max(ndvi_drop_min, drop_sigma × spread) and
NBR down by nbr_drop_min (forest loss; or NDVI down by half that and NBR by grass_nbr_drop_min;
the mining-surface path is in test_science.py), not hazy; confirmed = flagged again by the next clear look;
persistent = flagged by at least persistence_min of the clear looks from the first confirmed
one on; high = persistent, flagged by at least high_min_looks looks, every sensor agreeing.
"""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.change import (
    CONFIDENCE_HIGH,
    CONFIDENCE_LOW,
    CONFIDENCE_NOMINAL,
    CONFIDENCE_NONE,
    FIELDS,
    HAZE_BLUE_RISE_MIN,
    HAZE_NDVI_MIN,
    INPUTS,
    PATH_FOREST_LOSS,
    PATH_MINING_SURFACE,
    ChangeParams,
    detect_block,
    family_codes,
    looks_of,
    n_fields,
)

FOREST = {"ndvi": 0.85, "nbr": 0.6, "mndwi": -0.5, "bsi": -0.3, "blue": 0.03, "green": 0.06, "red": 0.03,
          "nir": 0.35, "swir16": 0.15, "swir22": 0.06}
LOSS = {"ndvi": 0.15, "nbr": 0.0, "mndwi": -0.3, "bsi": 0.1, "blue": 0.05, "green": 0.08, "red": 0.1,
        "nir": 0.14, "swir16": 0.28, "swir22": 0.14}
N_BASE = 4
PARAMS = ChangeParams()


def pixel(monitor: list, base: dict = FOREST, families=None, params: ChangeParams = PARAMS) -> dict:
    looks = [base] * N_BASE + [m if m is not None else FOREST for m in monitor]
    arrays = [np.array([[[lk[k]]] for lk in looks], dtype=np.float32) for k in INPUTS]
    clear = np.array([[[True]]] * N_BASE + [[[m is not None]] for m in monitor])
    is_baseline = np.arange(len(looks)) < N_BASE
    out = detect_block(*arrays, clear, is_baseline, params, look_family=families)
    assert out.shape[0] == n_fields(len(looks))
    result = {name: float(out[i, 0, 0]) for i, name in enumerate(FIELDS)}
    result["looks"] = [int(t) for t in np.flatnonzero(looks_of(out[len(FIELDS):, 0, 0], len(looks)))]
    return result


def test_persistence_at_exactly_the_threshold_counts():
    """Confirmed at the first monitor look, then 3 of the 5 clear looks flag it: 3 / 5 = 0.6."""
    monitor = [LOSS, LOSS, FOREST, FOREST, LOSS]
    assert PARAMS.persistence_min * 5 == 3  # exact in floating point: the test sits on the boundary
    at = pixel(monitor)
    assert at["confidence"] == CONFIDENCE_HIGH  # 3 flagging looks = high_min_looks
    assert at["n_flagged"] == 3 and at["first_look"] == N_BASE
    assert at["looks"] == [N_BASE, N_BASE + 1, N_BASE + 4]
    below = pixel([LOSS, LOSS, FOREST, FOREST, FOREST])  # 2 / 5 = 0.4: the scar grew back
    assert below["confidence"] == CONFIDENCE_NONE and below["looks"] == []


def test_cloudy_looks_do_not_count_against_persistence():
    """Same looks as above with the disagreeing ones cloudy: 3 of 3 clear looks flag it."""
    assert pixel([LOSS, LOSS, None, None, LOSS])["confidence"] == CONFIDENCE_HIGH


def test_high_needs_exactly_high_min_looks_flags():
    assert PARAMS.high_min_looks == 3
    assert pixel([FOREST, LOSS, LOSS])["confidence"] == CONFIDENCE_NOMINAL  # 2 flags
    assert pixel([FOREST, LOSS, LOSS, LOSS])["confidence"] == CONFIDENCE_HIGH  # 3 flags


def test_a_flag_on_the_last_clear_look_is_low_and_names_only_that_look():
    result = pixel([FOREST, FOREST, LOSS, None])
    assert result["confidence"] == CONFIDENCE_LOW
    assert result["first_look"] == -1 and result["n_flagged"] == 0
    assert result["looks"] == [N_BASE + 2]


def test_green_water_is_not_forest():
    """A floating-vegetation pond: NDVI above forest_ndvi_min but MNDWI > 0 (open water)."""
    pond = dict(FOREST, ndvi=0.75, mndwi=0.1)
    assert pond["ndvi"] >= PARAMS.forest_ndvi_min
    result = pixel([LOSS, LOSS, LOSS], base=pond)
    assert result["forest"] == 0 and result["water"] == 1 and result["confidence"] == CONFIDENCE_NONE


def test_water_is_any_positive_baseline_mndwi():
    shallow = dict(FOREST, ndvi=0.1, mndwi=0.05)
    assert pixel([FOREST], base=shallow)["water"] == 1
    assert pixel([FOREST], base=dict(FOREST, ndvi=0.1, mndwi=-0.05))["water"] == 0


def test_ndvi_alone_is_not_enough_nbr_must_fall_too():
    """Drought browning: NDVI falls but NBR (moisture) holds. The canopy stays dark (no bright bare
    sediment, no water), so the mining-surface path does not take it either."""
    browning = dict(LOSS, nbr=FOREST["nbr"] - 0.05, red=0.04, nir=0.1, swir16=0.2)
    assert FOREST["nbr"] - browning["nbr"] < PARAMS.nbr_drop_min
    assert pixel([browning] * 3)["confidence"] == CONFIDENCE_NONE
    just = dict(LOSS, nbr=FOREST["nbr"] - 0.11)
    assert pixel([just] * 3)["confidence"] == CONFIDENCE_HIGH


def test_the_green_cover_test_is_judged_against_the_pixels_own_nbr_spread():
    """A seasonal forest whose baseline holds dry looks (NBR 0.625 and 0.375 in turn: median 0.5,
    robust spread 0.185, × 4 = 0.74) loses NBR like a felling in its next dry look: no flag. The
    same look after a steady baseline (NBR 0.625) is forest felled under green cover."""
    params = ChangeParams(ndvi_drop_min=0.25)
    wet, dry = dict(FOREST, ndvi=0.875, nbr=0.625), dict(FOREST, ndvi=0.875, nbr=0.375)
    grass = dict(FOREST, ndvi=0.75, nbr=0.25)

    def confidence(baseline):
        looks = baseline + [grass] * 3
        arrays = [np.array([[[lk[k]]] for lk in looks], dtype=np.float32) for k in INPUTS]
        out = detect_block(*arrays, np.ones((7, 1, 1), bool), np.arange(7) < 4, params)
        return out[FIELDS.index("confidence"), 0, 0]

    assert confidence([wet, dry, wet, dry]) == CONFIDENCE_NONE
    assert confidence([wet] * 4) == CONFIDENCE_HIGH


def test_ndvi_drop_is_judged_against_the_pixels_own_spread():
    """Baseline NDVI 0.85, 0.65, 0.85, 0.65: median 0.75, MAD 0.1, robust sigma 0.148, × 4 = 0.59.
    A drop to 0.3 (0.45 below the median) passes ndvi_drop_min (0.2) but not 4 sigma."""
    looks = [dict(FOREST, ndvi=0.85), dict(FOREST, ndvi=0.65)] * 2
    drop = dict(LOSS, ndvi=0.3, nbr=0.4)  # NBR falls by less than grass_nbr_drop_min
    arrays = [np.array([[[lk[k]]] for lk in looks + [drop] * 3], dtype=np.float32) for k in INPUTS]
    clear = np.ones((7, 1, 1), bool)
    is_baseline = np.arange(7) < 4
    out = detect_block(*arrays, clear, is_baseline, PARAMS)
    assert out[FIELDS.index("confidence"), 0, 0] == CONFIDENCE_NONE
    out = detect_block(*arrays, clear, is_baseline, ChangeParams(drop_sigma=2.0))  # 0.30 < 0.45
    assert out[FIELDS.index("confidence"), 0, 0] == CONFIDENCE_HIGH


def test_bright_bare_ground_is_change_not_haze():
    """Fresh mining sand brightens the blue more than the SWIR, like haze, but shows no canopy."""
    sand = dict(LOSS, ndvi=0.05, nbr=-0.1, mndwi=-0.2, bsi=0.2, blue=0.20, swir16=0.25)
    assert sand["blue"] - FOREST["blue"] > sand["swir16"] - FOREST["swir16"]
    assert pixel([sand] * 3)["confidence"] == CONFIDENCE_HIGH
    haze = dict(FOREST, ndvi=0.45, nbr=0.35, blue=0.15, swir16=0.17)  # canopy still shows through
    assert pixel([haze] * 3)["confidence"] == CONFIDENCE_NONE


def test_a_cloudy_look_between_two_flags_does_not_break_confirmation():
    result = pixel([LOSS, None, LOSS])
    assert result["confidence"] == CONFIDENCE_NOMINAL and result["first_look"] == N_BASE


def test_sentinel2_platforms_are_one_family_and_landsat_another():
    assert list(family_codes(["sentinel-2a", "sentinel-2b", "landsat-8", "landsat-9", "sentinel-2c"])) == \
        [0, 0, 1, 1, 0]
    families = family_codes(["sentinel-2a"] * N_BASE + ["sentinel-2a", "sentinel-2b", "sentinel-2a"])
    assert pixel([LOSS, LOSS, LOSS], families=families)["confidence"] == CONFIDENCE_HIGH


@pytest.mark.parametrize("persistence", [0.5, 0.6, 0.75])
def test_persistence_threshold_follows_the_parameter(persistence):
    """Confirmed, then flagged by k of n clear looks: persistent exactly when k >= persistence × n."""
    params = ChangeParams(persistence_min=persistence)
    for n_after in (4, 5, 6):
        for k in range(2, n_after + 1):
            monitor = [LOSS, LOSS] + [LOSS] * (k - 2) + [FOREST] * (n_after - k)
            expected = k >= persistence * n_after
            got = pixel(monitor, params=params)["confidence"] >= CONFIDENCE_NOMINAL
            assert got == expected, (persistence, k, n_after)


def test_high_needs_every_sensor_family_that_saw_the_change_to_flag_it():
    """Landsat looked clearly after the change began and saw forest: the Sentinel-2 evidence (3
    flags, confirmed) stays nominal; once Landsat flags it too, it is high."""
    s2, ls = "sentinel-2a", "landsat-8"
    families = family_codes([s2] * N_BASE + [s2, ls, s2, s2, ls, s2])
    disagree = pixel([LOSS, FOREST, LOSS, LOSS, FOREST, LOSS], families=families)
    assert disagree["n_flagged"] == 3 and disagree["confidence"] == CONFIDENCE_NOMINAL
    agree = pixel([LOSS, FOREST, LOSS, LOSS, LOSS, LOSS], families=families)
    assert agree["confidence"] == CONFIDENCE_HIGH


# --- each rule exactly at its boundary ----------------------------------------------------------
# Values are exact in binary floating point (multiples of 1/2^k), or the same float32 on both
# sides of the comparison, so each case sits on the boundary and not a rounding error beside it.

def _flat(look: dict, params: ChangeParams = PARAMS, base: dict = FOREST) -> float:
    """Confidence after three clear monitor looks of ``look``."""
    return pixel([look] * 3, base=base, params=params)["confidence"]


def test_an_ndvi_drop_of_exactly_ndvi_drop_min_is_a_flag():
    """Baseline 0.875, look 0.625: a drop of exactly 0.25 (ndvi_drop_min) flags; 0.234375 does not.
    The pixel's own spread is MIN_SPREAD (identical baseline looks): 4 × 0.03 < 0.25."""
    params = ChangeParams(ndvi_drop_min=0.25)
    base = dict(FOREST, ndvi=0.875)
    dark = dict(FOREST, ndvi=0.625, nbr=0.4375)  # canopy gone dark; not bare sediment, not haze
    assert FOREST["nbr"] - dark["nbr"] < params.grass_nbr_drop_min  # not forest under green cover
    assert _flat(dark, params, base) == CONFIDENCE_HIGH
    assert _flat(dict(dark, ndvi=0.640625), params, base) == CONFIDENCE_NONE


def test_forest_felled_under_green_cover_is_told_by_its_nbr_fall():
    """Pasture sown at once: NDVI falls by only half the threshold (0.875 -> 0.75 is 0.125, half
    of 0.25) but NBR by grass_nbr_drop_min (0.625 -> 0.375): the shaded, moist crowns are gone.
    Just under either bound it is no flag: a seasonal dip or a drier canopy lowers both a little.
    Baseline ground that was not forest gets nothing from this test."""
    params = ChangeParams(ndvi_drop_min=0.25, grass_nbr_drop_min=0.25)
    base = dict(FOREST, ndvi=0.875, nbr=0.625)
    grass = dict(FOREST, ndvi=0.75, nbr=0.375, red=0.06, swir16=0.25, swir22=0.13)
    result = pixel([grass] * 3, base=base, params=params)
    assert result["confidence"] == CONFIDENCE_HIGH and result["detection_path"] == PATH_FOREST_LOSS
    assert _flat(dict(grass, ndvi=0.765625), params, base) == CONFIDENCE_NONE   # NDVI fall 0.109375
    assert _flat(dict(grass, nbr=0.390625), params, base) == CONFIDENCE_NONE    # NBR fall 0.234375
    scrub = dict(base, ndvi=0.625)                                              # under forest_ndvi_min
    assert _flat(dict(grass, ndvi=0.5), params, scrub) == CONFIDENCE_NONE


def test_an_nbr_fall_of_exactly_nbr_drop_min_is_a_flag():
    """Baseline NBR 0.625, look 0.5: a fall of exactly 0.125 (nbr_drop_min) flags; 0.09375 does not."""
    params = ChangeParams(nbr_drop_min=0.125)
    base = dict(FOREST, nbr=0.625)
    dark = dict(FOREST, ndvi=0.5, nbr=0.5)
    assert _flat(dark, params, base) == CONFIDENCE_HIGH
    assert _flat(dict(dark, nbr=0.53125), params, base) == CONFIDENCE_NONE


def test_baseline_ndvi_of_exactly_forest_ndvi_min_is_forest():
    assert np.float32(PARAMS.forest_ndvi_min) == np.float32(0.65)
    assert pixel([FOREST], base=dict(FOREST, ndvi=0.65))["forest"] == 1
    assert pixel([FOREST], base=dict(FOREST, ndvi=0.640625))["forest"] == 0


def test_a_baseline_mndwi_of_exactly_zero_is_neither_water_nor_forest():
    """Water is MNDWI > 0, forest needs MNDWI < 0 (pipeline/change.py): at exactly 0 the pixel is
    neither. Being vegetated and never seen under water (0 is not > 0), its loss to bare sediment
    is still found, by the mining-surface path alone."""
    result = pixel([LOSS] * 3, base=dict(FOREST, mndwi=0.0))
    assert result["forest"] == 0 and result["water"] == 0 and result["water_seen"] == 0
    assert result["confidence"] == CONFIDENCE_HIGH and result["detection_path"] == PATH_MINING_SURFACE
    forest = pixel([LOSS] * 3)  # MNDWI -0.5: forest, and LOSS is bare sediment too
    assert forest["forest"] == 1 and forest["detection_path"] == PATH_FOREST_LOSS | PATH_MINING_SURFACE
    wet = pixel([LOSS] * 3, base=dict(FOREST, mndwi=0.03125))  # open water in the baseline: old stock
    assert wet["water"] == 1 and wet["water_seen"] == 1 and wet["confidence"] == CONFIDENCE_NONE


def test_baseline_ndvi_of_exactly_vegetated_ndvi_min_is_vegetated_ground():
    """Scrub at NDVI 0.4 (not forest) cleared to bare sediment: found by the mining-surface path;
    at 0.390625 the ground was already open (old stock) and never flags."""
    assert np.float32(PARAMS.vegetated_ndvi_min) == np.float32(0.4)
    scrub = dict(FOREST, ndvi=0.4, nbr=0.3)
    result = pixel([LOSS] * 3, base=scrub)
    assert result["forest"] == 0
    assert result["confidence"] == CONFIDENCE_HIGH and result["detection_path"] == PATH_MINING_SURFACE
    assert pixel([LOSS] * 3, base=dict(scrub, ndvi=0.390625))["confidence"] == CONFIDENCE_NONE


# Haze: the look's blue rose from the baseline by more than its red and its SWIR1 and by more than
# HAZE_BLUE_RISE_MIN, its NDVI is above HAZE_NDVI_MIN and its MNDWI below 0. HAZE_BASE and HAZY:
# blue +0.0625, red +0.03125, SWIR1 +0.03125, NDVI 0.875 -> 0.5, NBR 0.6 -> 0.3 (a forest-loss
# drop if it were trusted).
HAZE_BASE = dict(FOREST, ndvi=0.875, blue=0.03125, red=0.03125, swir16=0.125)
HAZY = dict(HAZE_BASE, ndvi=0.5, nbr=0.3, blue=0.09375, red=0.0625, swir16=0.15625)


@pytest.mark.parametrize("look", [
    pytest.param(dict(HAZY, swir16=0.1875), id="blue_rise_equals_swir16_rise"),
    pytest.param(dict(HAZY, red=0.09375), id="blue_rise_equals_red_rise"),
    pytest.param(dict(HAZY, ndvi=0.15), id="ndvi_equals_haze_ndvi_min"),
    pytest.param(dict(HAZY, mndwi=0.0), id="mndwi_equals_0"),
])
def test_a_look_exactly_at_a_haze_boundary_is_not_haze_and_flags(look):
    assert np.float32(HAZE_NDVI_MIN) == np.float32(0.15)
    assert _flat(HAZY, base=HAZE_BASE) == CONFIDENCE_NONE  # the reference look is haze: never a flag
    assert _flat(look, base=HAZE_BASE) == CONFIDENCE_HIGH


def test_a_blue_rise_of_exactly_haze_blue_rise_min_is_not_haze():
    """Blue 0.03 -> 0.06 (a float32 rise of exactly HAZE_BLUE_RISE_MIN), more than red and SWIR1."""
    look = dict(FOREST, ndvi=0.5, nbr=0.3, blue=0.06, red=0.04, swir16=0.15)
    assert np.float32(look["blue"]) - np.float32(FOREST["blue"]) == np.float32(HAZE_BLUE_RISE_MIN)
    assert _flat(look) == CONFIDENCE_HIGH
    assert _flat(dict(look, blue=0.0625)) == CONFIDENCE_NONE  # a rise of 0.0325: haze


def test_a_nominal_pixels_last_look_and_date_bracket():
    """Forest, loss, loss: nominal; its change began at the first loss look and last showed at the
    second (last_look), and the forest look before it brackets the date (prior_look)."""
    result = pixel([FOREST, LOSS, LOSS])
    assert result["confidence"] == CONFIDENCE_NOMINAL
    assert (result["first_look"], result["last_look"], result["prior_look"]) == (N_BASE + 1, N_BASE + 2, N_BASE)
    high = pixel([FOREST, LOSS, LOSS, FOREST, LOSS])  # the last flag is after a quiet look
    assert high["confidence"] == CONFIDENCE_HIGH
    assert (high["first_look"], high["last_look"], high["prior_look"]) == (N_BASE + 1, N_BASE + 4, N_BASE)


def test_a_low_pixels_date_bracket_starts_at_the_last_clear_look_before_its_flag():
    """Flagged by the last clear look only: its bracket is (previous quiet look, that look); a
    pixel with no change has no bracket."""
    low = pixel([FOREST, FOREST, LOSS, None])
    assert low["confidence"] == CONFIDENCE_LOW
    assert low["prior_look"] == N_BASE + 1 and low["last_look"] == -1
    none = pixel([FOREST, FOREST, FOREST])
    assert none["confidence"] == CONFIDENCE_NONE and none["prior_look"] == -1 and none["looks"] == []


def test_with_three_sensor_families_each_that_saw_the_change_must_flag_it():
    """A third family (any platform that is neither Landsat nor Sentinel-2 is its own family): it
    saw the pixel clearly after the change began and saw forest, so the pixel stays nominal."""
    families = family_codes(["sentinel-2a"] * N_BASE + ["sentinel-2a", "landsat-8", "sentinel-2a", "other-1"])
    assert sorted(set(families.tolist())) == [0, 1, 2]
    disagree = pixel([LOSS, LOSS, LOSS, FOREST], families=families)
    assert disagree["n_flagged"] == 3 and disagree["confidence"] == CONFIDENCE_NOMINAL
    agree = pixel([LOSS, LOSS, LOSS, LOSS], families=families)
    assert agree["confidence"] == CONFIDENCE_HIGH


# Worked mining ground: bare, red nearly as bright as SWIR1 (red/SWIR1 0.75; features.sediment_pixels).
SEDIMENT = {"ndvi": 0.1, "nbr": 0.05, "mndwi": -0.23, "bsi": 0.1, "blue": 0.12, "green": 0.15, "red": 0.18,
            "nir": 0.22, "swir16": 0.24, "swir22": 0.2}


def test_the_latest_look_of_a_mine_felled_before_it_was_dug_shows_the_pit():
    """Felled twice, then dug: the evidence median is the felled ground's (a clearing's spectrum),
    the latest evidence look keeps the pit (``latest_mining_ground``); the reverse order, and
    felled ground alone, do not; no change has no value; a single flagged look is its own latest."""
    felled_then_dug = pixel([LOSS, LOSS, SEDIMENT])
    assert felled_then_dug["confidence"] == CONFIDENCE_HIGH
    assert felled_then_dug["post_red"] == pytest.approx(LOSS["red"])      # the median reads slash
    assert felled_then_dug["latest_mining_ground"] == 1.0
    assert pixel([SEDIMENT, SEDIMENT, LOSS])["latest_mining_ground"] == 0.0
    assert pixel([LOSS, LOSS, LOSS])["latest_mining_ground"] == 0.0
    assert np.isnan(pixel([FOREST, FOREST])["latest_mining_ground"])
    assert pixel([FOREST, SEDIMENT])["confidence"] == CONFIDENCE_LOW
    assert pixel([FOREST, SEDIMENT])["latest_mining_ground"] == 1.0
    # a cloudy last look is not a look of the change: the latest clear one counts
    assert pixel([LOSS, SEDIMENT, SEDIMENT, None])["latest_mining_ground"] == 1.0
