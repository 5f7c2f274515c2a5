"""Scar objects from per-pixel change layers (find_scars): mapping unit, confirmation, shape rules,
zone and first look. Grids at 10 m, so one pixel is 0.01 ha and the 0.5 ha mapping unit 50 px."""

from __future__ import annotations

import numpy as np
import pytest
from affine import Affine

from pipeline.change import (
    CONFIDENCE_HIGH,
    CONFIDENCE_LOW,
    CONFIDENCE_NOMINAL,
    FIELDS,
    PATH_FOREST_LOSS,
    PATH_MINING_SURFACE,
    n_fields,
)
from pipeline.scars import NEAR_WATER_M, find_scars

PIXEL_M = 10.0
PIXEL_HA = PIXEL_M * PIXEL_M / 1e4
MMU_HA = 0.5
MMU_PX = round(MMU_HA / PIXEL_HA)
TRANSFORM = Affine(PIXEL_M, 0, 500000.0, 0, -PIXEL_M, 8600000.0)
SHAPE = (80, 80)


def layers(confidence: np.ndarray, first_look: np.ndarray | int = 5) -> dict:
    out = {name: np.zeros(confidence.shape, np.float32) for name in FIELDS}
    out["confidence"] = confidence.astype(np.float32)
    confirmed = confidence >= CONFIDENCE_NOMINAL
    out["first_look"][:] = np.where(confirmed, first_look, -1)
    out["last_look"][:] = np.where(confirmed, 8, -1)
    out["forest"][:] = 1
    out["look_bits"] = np.zeros((n_fields(10) - len(FIELDS),) + confidence.shape, np.float32)
    return out


def scars(confidence, zones=None, min_confidence=CONFIDENCE_LOW, **kw):
    zones = np.ones(confidence.shape, np.int32) if zones is None else zones
    return find_scars(layers(confidence, **kw), zones, TRANSFORM, min_confidence, MMU_HA).table


def block(rows: slice, cols: slice, level=CONFIDENCE_NOMINAL) -> np.ndarray:
    confidence = np.zeros(SHAPE)
    confidence[rows, cols] = level
    return confidence


def test_a_scar_of_exactly_the_mapping_unit_is_kept_one_pixel_less_is_not():
    assert MMU_PX == 50
    exact = block(slice(10, 15), slice(10, 20))  # 5 × 10 = 50 px = 0.5 ha
    table = scars(exact)
    assert len(table) == 1 and table["area_ha"].iloc[0] == pytest.approx(MMU_HA)
    assert table["geometry"].iloc[0].area == pytest.approx(MMU_HA * 1e4)
    short = exact.copy()
    short[14, 19] = 0  # 49 px
    assert scars(short).empty


def test_a_scar_is_confirmed_by_nine_confirmed_pixels_not_by_one():
    """CONFIRM_MIN_PX: a 3 × 3 block at the analysis resolution must hold the level."""
    confidence = block(slice(10, 20), slice(10, 22), CONFIDENCE_LOW)  # 120 px seen once
    eight = confidence.copy()
    eight[12:14, 12:16] = CONFIDENCE_NOMINAL
    assert scars(eight)["confidence"].tolist() == ["low"]
    nine = confidence.copy()
    nine[12:15, 12:15] = CONFIDENCE_NOMINAL
    assert scars(nine)["confidence"].tolist() == ["nominal"]
    assert scars(eight, min_confidence=CONFIDENCE_NOMINAL).empty
    high = confidence.copy()
    high[12:15, 12:15] = CONFIDENCE_HIGH
    assert scars(high)["confidence"].tolist() == ["high"]


def test_a_scar_seen_by_one_look_only_needs_twice_the_mapping_unit():
    """LOW_AREA_FACTOR 2: single-look evidence is where noise alerts; it must cover more ground."""
    beside = block(slice(40, 50), slice(40, 50))  # a confirmed neighbour: no isolation rule applies
    under = beside.copy()
    under[30:38, 40:50] = CONFIDENCE_LOW  # 80 px = 0.8 ha, below 2 × 0.5 ha
    under[38, 40:50] = 0
    table = scars(under)
    assert table["confidence"].tolist() == ["nominal"]
    over = beside.copy()
    over[26:38, 40:50] = CONFIDENCE_LOW  # 120 px = 1.2 ha
    over[38, 40:50] = 0
    assert sorted(scars(over)["confidence"]) == ["low", "nominal"]


def test_diagonal_neighbours_are_one_scar():
    confidence = block(slice(10, 18), slice(10, 18))
    confidence[18:26, 18:26] = CONFIDENCE_NOMINAL  # touches the first block at one corner
    table = scars(confidence)
    assert len(table) == 1 and table["area_ha"].iloc[0] == pytest.approx(128 * PIXEL_HA)
    assert table["geometry"].iloc[0].is_valid


def test_lines_without_a_three_by_three_core_are_not_scars():
    """A road or a river-bank edge flagged one or two pixels wide is not a scar, however long."""
    line = np.zeros(SHAPE)
    line[20, 5:75] = CONFIDENCE_NOMINAL
    line[21, 5:75] = CONFIDENCE_NOMINAL  # 140 px, two wide
    assert scars(line).empty
    line[22, 30:33] = CONFIDENCE_NOMINAL  # one 3 × 3 block: the whole component is kept
    assert len(scars(line)) == 1


def test_at_30_m_the_core_is_60_m_so_a_compact_half_hectare_scar_is_found():
    """The core is CORE_M on the ground and at least 2 px: a 3 × 3 block at 10 m, 2 × 2 at 30 m
    (a 3 × 3 block of Landsat pixels is 0.81 ha, above the 0.5 ha mapping unit). A line one
    pixel wide is never a scar; confirmation needs the core's 4 pixels."""
    landsat = Affine(30.0, 0, 500000.0, 0, -30.0, 8600000.0)

    def scars_30m(confidence, min_confidence=CONFIDENCE_LOW):
        return find_scars(layers(confidence), np.ones(confidence.shape, np.int32), landsat, min_confidence,
                          MMU_HA).table

    compact = np.zeros((40, 40))
    compact[10:12, 10:13] = CONFIDENCE_NOMINAL  # 2 × 3 px
    compact[12, 10] = CONFIDENCE_NOMINAL  # 7 px = 0.63 ha, no 3 × 3 block
    compact[20:26, 20:26] = CONFIDENCE_NOMINAL  # a confirmed neighbour 240 m away: not isolated
    table = scars_30m(compact)
    assert sorted(table["area_ha"].round(2)) == [0.63, 3.24]
    assert set(table["confidence"]) == {"nominal"}
    line = np.zeros((40, 40))
    line[5, 2:38] = CONFIDENCE_NOMINAL  # 36 px = 3.2 ha, one pixel wide
    line[6, 2:20:2] = CONFIDENCE_NOMINAL  # ragged edge: touches at corners, still no 2 × 2 block
    assert scars_30m(line).empty
    seen_once = np.zeros((40, 40))
    seen_once[10:20, 10:20] = CONFIDENCE_LOW
    three = seen_once.copy()
    three[12, 12:15] = CONFIDENCE_NOMINAL  # 3 confirmed px: not the 2 × 2 core
    assert scars_30m(three)["confidence"].tolist() == ["low"]
    four = seen_once.copy()
    four[12:14, 12:14] = CONFIDENCE_NOMINAL
    assert scars_30m(four)["confidence"].tolist() == ["nominal"]


def test_zone_is_where_most_of_the_scar_lies():
    confidence = block(slice(10, 20), slice(10, 30))
    zones = np.ones(SHAPE, np.int32)
    zones[:, 26:] = 2  # the scar's 4 rightmost of 20 columns lie in zone 2
    assert scars(confidence, zones=zones)["zone_index"].tolist() == [1]
    zones[:, 14:] = 2  # now 16 of 20 columns
    assert scars(confidence, zones=zones)["zone_index"].tolist() == [2]


def test_pixels_outside_the_zones_are_never_part_of_a_scar():
    confidence = block(slice(10, 20), slice(10, 30))
    zones = np.ones(SHAPE, np.int32)
    zones[:, 20:] = 0
    table = scars(confidence, zones=zones)
    assert table["area_ha"].tolist() == [pytest.approx(100 * PIXEL_HA)]


def test_first_look_is_the_earliest_of_its_pixels_and_last_look_the_latest():
    confidence = block(slice(10, 20), slice(10, 20))
    first = np.full(SHAPE, 6)
    first[10:13, 10:20] = 4  # the scar's oldest part
    table = scars(confidence, first_look=first)
    assert table["first_look"].tolist() == [4] and table["last_look"].tolist() == [8]


def test_a_small_isolated_scar_must_be_confirmed_over_half_its_pixels():
    """Under twice the mapping unit with no other change within 100 m, a scar confirmed on a 3 × 3
    core only is where noise and haze alert: dropped; confirmed over half its pixels: kept."""
    shaky = block(slice(40, 48), slice(40, 48), CONFIDENCE_LOW)  # 64 px = 0.64 ha, < 2 × 0.5 ha
    shaky[42:45, 42:45] = CONFIDENCE_NOMINAL
    assert scars(shaky).empty
    half = shaky.copy()
    half[40:44, 40:48] = CONFIDENCE_NOMINAL  # the top half and the core: 35 of 64 px
    assert len(scars(half)) == 1
    neighbour = shaky.copy()
    neighbour[40:48, 55:60] = CONFIDENCE_LOW  # other change 70 m away: a growing front, not a speck
    assert np.isclose(scars(neighbour)["area_ha"], 0.64).any()


def test_a_small_isolated_scar_confirmed_over_exactly_half_its_pixels_is_kept():
    """ISOLATED_CONFIRMED_SHARE 0.5: 32 confirmed of 64 px is enough; 31 of 64 is not."""
    half = block(slice(40, 48), slice(40, 48), CONFIDENCE_LOW)
    half[40:44, 40:48] = CONFIDENCE_NOMINAL  # 4 rows × 8 = 32 px, a 3 × 3 core inside
    assert (half == CONFIDENCE_NOMINAL).sum() == 32 and (half > 0).sum() == 64
    assert len(scars(half)) == 1
    under = half.copy()
    under[43, 47] = CONFIDENCE_LOW  # 31 px
    assert scars(under).empty


def test_a_scar_of_exactly_twice_the_mapping_unit_is_not_small():
    """SMALL_AREA_FACTOR and LOW_AREA_FACTOR 2: 100 px (1 ha) alone, far from other change, is not
    held to the isolation rule and is large enough for single-look (low) evidence; 99 px is both
    small and too small for low evidence."""
    core_only = block(slice(40, 50), slice(40, 50), CONFIDENCE_LOW)  # 10 × 10 = 100 px
    core_only[44:47, 44:47] = CONFIDENCE_NOMINAL  # confirmed on a 3 × 3 core only
    assert len(scars(core_only)) == 1
    low = block(slice(40, 50), slice(40, 50), CONFIDENCE_LOW)
    table = scars(low)
    assert table["confidence"].tolist() == ["low"] and table["area_ha"].tolist() == pytest.approx([1.0])
    for confidence in (core_only, low):
        short = confidence.copy()
        short[49, 49] = 0  # 99 px
        assert scars(short).empty


def test_new_surface_exactly_near_water_m_from_water_is_in_the_channel_belt():
    """Water in columns 0-9; new sand (mining-surface path only) in columns 15-28: column 15 lies
    exactly NEAR_WATER_M (6 px × 10 m) from the water, inside the channel belt, so the scar loses it
    (14 → 13 columns of 10 px: 1.3 ha). Forest loss on the same pixels keeps the whole 1.4 ha."""
    assert (15 - 9) * PIXEL_M == NEAR_WATER_M
    confidence = block(slice(10, 20), slice(15, 29))
    change = layers(confidence)
    change["water"][:, :10] = 1
    change["detection_path"][:] = np.where(confidence > 0, PATH_MINING_SURFACE, 0)
    table = find_scars(change, np.ones(SHAPE, np.int32), TRANSFORM, CONFIDENCE_LOW, MMU_HA).table
    assert table["area_ha"].tolist() == [pytest.approx(1.3)]
    change["detection_path"][:] = np.where(confidence > 0, PATH_FOREST_LOSS, 0)
    table = find_scars(change, np.ones(SHAPE, np.int32), TRANSFORM, CONFIDENCE_LOW, MMU_HA).table
    assert table["area_ha"].tolist() == [pytest.approx(1.4)]
