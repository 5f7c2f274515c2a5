"""The river-dynamics rules tell a river from old mining ponds (pipeline.classify.banks,
scars.river_water): an ``other`` or ``mining`` scar that lies by a river with no water of its own
is the river's doing and is not issued; the same scar beside a field of older flooded pits is
issued. The ground is drawn in metres and rasterised at 10 m and at 30 m, and streamed in small
chunks."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from affine import Affine

from pipeline.batch import classify_area
from pipeline.change import CONFIDENCE_LOW, CONFIDENCE_NOMINAL, FIELDS, PATH_MINING_SURFACE, n_fields
from pipeline.classify import ScarModel, river_dynamics, river_sand
from pipeline.features import FEATURES
from pipeline.model import AreaDetection
from pipeline.scars import find_scars, river_water
from pipeline.streaming import find_scars_sparse, merge_candidates
from .helpers import chunk_parts

SIDE_M = 3000.0
X0, Y0 = 380000.0, 8562000.0
MIN_AREA_HA = 0.5
# (x0, x1, y0, y1) in metres from the grid's top-left corner (x east, y south)
RIVER = (300, 450, 0, 3000)                       # 150 m wide, across the whole grid
BY_THE_RIVER = (450, 510, 1200, 1410)             # 60 × 210 m of bar growth buried at the water's edge
BY_THE_PONDS = (1890, 1950, 1200, 1410)           # the same shape beside old pits
# 0.81 ha each, 30 m dikes east-west, 60 m north-south; the westmost run out of the 300 m ring
PONDS = [(x, x + 90, y, y + 90) for x in (1560, 1680, 1800) for y in (1200, 1350)]
TRENCH = (1950, 2280, 1290, 1380)                 # a 330 × 90 m pond (3 ha) running out of the 300 m ring
# An L-shaped scar whose bounding box reaches far beyond its 300 m ring, and a channel that runs
# from its top 540 m east: 300 m of it inside the ring (no river from there), the rest only in the
# box's empty corner, which the streaming path does not keep.
L_ARMS = ((2100, 2160, 1800, 2700), (2100, 2700, 2640, 2700))
L_CHANNEL = (2160, 2700, 1800, 1890)


def _px(box, pixel_m):
    x0, x1, y0, y1 = box
    return slice(int(y0 // pixel_m), int(y1 // pixel_m)), slice(int(x0 // pixel_m), int(x1 // pixel_m))


def _ground(pixel_m: float, with_l: bool = False) -> tuple[dict, Affine]:
    n = int(SIDE_M // pixel_m)
    confidence = np.zeros((n, n), np.float32)
    for scar in (BY_THE_RIVER, BY_THE_PONDS, *(L_ARMS if with_l else ())):
        confidence[_px(scar, pixel_m)] = CONFIDENCE_NOMINAL
    water = np.zeros((n, n), np.float32)
    for body in (RIVER, *PONDS, TRENCH, *((L_CHANNEL,) if with_l else ())):
        water[_px(body, pixel_m)] = 1
    layers = {name: np.zeros((n, n), np.float32) for name in FIELDS}
    layers.update(confidence=confidence, water=water, forest=np.ones((n, n), np.float32),
                  n_baseline=np.full((n, n), 3, np.float32))
    layers["first_look"][:] = np.where(confidence > 0, 5, -1)
    layers["last_look"][:] = np.where(confidence > 0, 6, -1)
    layers["look_bits"] = np.zeros((n_fields(8) - len(FIELDS), n, n), np.float32)
    return layers, Affine(pixel_m, 0, X0, 0, -pixel_m, Y0)


def _table(pixel_m: float) -> pd.DataFrame:
    layers, transform = _ground(pixel_m)
    zone = np.ones(layers["confidence"].shape, np.int32)
    return _by_place(find_scars(layers, zone, transform, CONFIDENCE_LOW, MIN_AREA_HA).table)


def _by_place(table: pd.DataFrame) -> pd.DataFrame:
    """The scars from west to east (by the river, by the ponds, the L)."""
    return table.assign(x=[g.centroid.x for g in table.geometry]).sort_values("x").reset_index(drop=True)


ZONES = gpd.GeoDataFrame({"area_id": ["MDD1"], "area_name": ["La Pampa"], "zone": ["inside"]},
                         geometry=[shapely.box(X0, Y0 - SIDE_M, X0 + SIDE_M, Y0)], crs=32719)
MIDDLE_LON = ZONES.to_crs(4326).geometry.iloc[0].centroid.x   # west of it: by the river; east: by the ponds


def _issuer(table: pd.DataFrame, model):
    """A function of ``natural_loss`` giving the alerts classify_area issues for the scars of
    ``table`` with ``model``, in one area over the whole grid."""
    detection = AreaDetection("MDD1", 32719, ZONES, table.drop(columns="x"), [f"2022-0{m}-01" for m in range(1, 9)],
                              [(f"i{k}",) for k in range(8)], ["sentinel-2a"] * 8, 1)
    provenance = {"run_name": "t", "run_id": "t-1", "model_version": model.version, "pipeline_version": "0"}
    return lambda natural_loss: classify_area(detection, model, provenance, natural_loss)


class AllOther:
    """A model unsure of everything: every scar ``other``."""

    card = {"features": []}
    version = "all-other@0"

    def predict(self, scars):
        return np.array(["other"] * len(scars), dtype=object), np.full(len(scars), 0.6)


@pytest.mark.parametrize("pixel_m", [10.0, 30.0])
def test_other_by_the_river_is_not_issued_beside_old_ponds_it_is(pixel_m):
    table = _table(pixel_m)
    assert len(table) == 2
    river_scar, pond_scar = table.iloc[0], table.iloc[1]
    # both lie by the water and hold none of their own: the old rule silenced both
    assert river_scar["near_water_fraction"] == 1.0 and pond_scar["near_water_fraction"] >= 0.5
    assert (table["water_fraction"] == 0).all()
    assert river_scar["near_river_fraction"] == 1.0
    assert pond_scar["near_river_fraction"] == 0.0, "ponds, and a trench running out of the ring, are no river"
    assert river_dynamics(table, ["other", "other"]).tolist() == [True, False]

    issue = _issuer(table, AllOther())
    issued = issue("suppress")
    assert len(issued) == 1 and issued["class"].tolist() == ["other"]
    assert issued["centroid_lon"].iloc[0] > MIDDLE_LON, "the one by the ponds"
    assert len(issue("other")) == 2


class SaysMining:
    """An estimator sure of nothing but a lean to ``mining`` (p 0.7), as on bar sand."""

    classes_ = np.array(["clearing", "mining", "other"], dtype=object)

    def predict_proba(self, x):
        return np.tile([0.1, 0.7, 0.2], (len(x), 1))


@pytest.mark.parametrize("pixel_m", [10.0, 30.0])
def test_mining_sand_along_the_river_is_the_rivers_beside_old_ponds_it_is_mining(pixel_m, tmp_path):
    """The same strip of new sand with no water of its own, called ``mining`` by the model: along
    the river it is ``other`` at the model's probability of ``other`` (a bar built over its
    growth) and not issued by default; beside the old ponds it stays ``mining`` and is issued.
    A strip by the river holding ponds of its own keeps its class too."""
    table = _table(pixel_m)
    assert river_sand(table, ["mining", "mining"]).tolist() == [True, False]
    assert river_sand(table, ["clearing", "clearing"]).tolist() == [False, False]
    flooded = table.assign(water_fraction=[0.3, 0.0])
    assert not river_sand(flooded, ["mining", "mining"]).any()

    model = ScarModel(SaysMining(), {"features": list(FEATURES), "sha256": "0" * 64}, tmp_path / "m.skops")
    classes, probability = model.predict(table.drop(columns="x"))
    assert classes.tolist() == ["other", "mining"] and probability.tolist() == [0.2, 0.7]

    issue = _issuer(table, model)
    issued = issue("suppress")
    assert issued["class"].tolist() == ["mining"]
    assert issued["centroid_lon"].iloc[0] > MIDDLE_LON, "the one by the ponds"
    assert sorted(issue("other")["class"]) == ["mining", "other"]


def test_a_river_is_long_and_runs_out_of_the_ring_a_pond_does_not():
    """scars.river_water on one window at 10 m: a water body must both reach the ring 300 m
    around the scar and be RIVER_LENGTH_MIN_M long inside it; nothing beyond the ring counts."""
    scar = np.zeros((100, 100), bool)
    scar[40:60, 45:51] = True                     # 60 × 200 m: its context is rows 10-89, columns 15-80
    everywhere = river_water(~scar, scar, 10.0)
    assert everywhere.sum() == 80 * 66 - scar.sum() and not everywhere[:10].any() and not everywhere[:, 81:].any()
    water = np.zeros((100, 100), bool)
    water[:, 39:45] = True                        # a 60 m channel crossing the window: 800 m of it inside
    assert river_water(water, scar, 10.0)[10:90, 39:45].all()
    short = water.copy()
    short[:20, :] = short[80:, :] = False         # 600 m long, but inside the ring: a lake
    assert not river_water(short, scar, 10.0).any()
    stub = water.copy()
    stub[66:, :] = False                          # out to the ring on one side, 560 m inside it: a river
    assert river_water(stub, scar, 10.0).any()
    stub[:25, :] = False                          # 410 m, not out to the ring
    assert not river_water(stub, scar, 10.0).any()
    trench = np.zeros((100, 100), bool)
    trench[45:54, 51:95] = True                   # 90 m wide, out through the ring, 300 × 90 m inside it: a pond
    assert trench[:, 80].any() and not river_water(trench, scar, 10.0).any()
    trench[10:54, 72:81] = True                   # turning along the ring: 530 m across inside it
    assert river_water(trench, scar, 10.0).any()
    # By the grid's edge the window is clipped: water that runs out of the grid runs out of sight,
    # as through the ring (a 450 m channel from the top edge past a scar 50 m below it).
    top = np.zeros((100, 100), bool)
    top[5:25, 45:51] = True                       # context rows 0-54: the grid's edge is 50 m above
    edge = np.zeros((100, 100), bool)
    edge[:45, 39:45] = True
    assert river_water(edge, top, 10.0)[:45, 39:45].all()
    edge[:3] = False                              # the same length, short of the edge: a lake
    edge[3:48, 39:45] = True
    assert not river_water(edge, top, 10.0).any()


def _streamed(layers: dict, transform: Affine, chunk: int) -> pd.DataFrame:
    shape = layers["confidence"].shape
    zones = [(shapely.box(X0, Y0 - SIDE_M, X0 + SIDE_M, Y0), 1)]
    parts = chunk_parts(layers, chunk, zones, transform, MIN_AREA_HA)
    return find_scars_sparse(merge_candidates(parts[::-1]), shape, transform, CONFIDENCE_LOW, MIN_AREA_HA)


@pytest.mark.parametrize(("pixel_m", "chunk"), [(10.0, 48), (30.0, 16)])
def test_streamed_in_small_chunks_the_river_and_the_ponds_read_the_same(pixel_m, chunk):
    """Chunks smaller than the 300 m context margin: the river and every pond reach a scar's
    window from other chunks, and the table is the whole grid's, exactly (only what lies within
    300 m of a scar counts: the L's channel is judged on its part inside the ring)."""
    layers, transform = _ground(pixel_m, with_l=True)
    whole = find_scars(layers, np.ones(layers["confidence"].shape, np.int32), transform, CONFIDENCE_LOW,
                       MIN_AREA_HA).table
    streamed = _streamed(layers, transform, chunk)
    pd.testing.assert_frame_equal(streamed, whole, check_exact=True)
    by_place = _by_place(streamed)
    assert by_place["near_river_fraction"].tolist() == [1.0, 0.0, 0.0]
    assert by_place["near_water_fraction"].iloc[2] > 0


# The channel belt (scars.channel_belt): new surface that only the mining-surface path flagged is
# cut within 60 m of a river, not within 60 m of old mining ponds. (x0, x1, y0, y1) as above.
BELT_PONDS = [(x, x + 90, y, y + 90) for x in (1500, 1620) for y in (1200, 1320)]   # 0.81 ha each
PIT_BY_PONDS = (1710, 1770, 1200, 1410)    # 60 × 210 m of scrub dug up right beside them: 1.26 ha
BAR = (450, 510, 1200, 1410)               # the same shape of new sand on the river's bank
# One candidate component from the river's bank out to an old pond 540 m east: only its 60 m
# along the river is the belt; its end beside the pond stays. (All edges on both grids.)
STRIP = (450, 990, 1980, 2070)
STRIP_POND = (990, 1080, 1980, 2070)


def _belt_ground(pixel_m: float) -> tuple[dict, Affine]:
    n = int(SIDE_M // pixel_m)
    confidence = np.zeros((n, n), np.float32)
    for scar in (PIT_BY_PONDS, BAR, STRIP):
        confidence[_px(scar, pixel_m)] = CONFIDENCE_NOMINAL
    water = np.zeros((n, n), np.float32)
    for body in (RIVER, *BELT_PONDS, STRIP_POND):
        water[_px(body, pixel_m)] = 1
    layers = {name: np.zeros((n, n), np.float32) for name in FIELDS}
    # scrub and old clearings, not forest: only the mining-surface path sees the new ground
    layers.update(confidence=confidence, water=water, n_baseline=np.full((n, n), 3, np.float32),
                  detection_path=np.where(confidence > 0, PATH_MINING_SURFACE, 0).astype(np.float32))
    layers["first_look"][:] = np.where(confidence > 0, 5, -1)
    layers["last_look"][:] = np.where(confidence > 0, 6, -1)
    layers["look_bits"] = np.zeros((n_fields(8) - len(FIELDS), n, n), np.float32)
    return layers, Affine(pixel_m, 0, X0, 0, -pixel_m, Y0)


class AllMining(AllOther):
    version = "all-mining@0"

    def predict(self, scars):
        return np.array(["mining"] * len(scars), dtype=object), np.full(len(scars), 0.9)


@pytest.mark.parametrize(("pixel_m", "chunk"), [(10.0, 48), (30.0, 16)])
def test_a_pit_growing_beside_its_old_ponds_is_found_new_sand_on_a_rivers_bank_is_not(pixel_m, chunk):
    layers, transform = _belt_ground(pixel_m)
    zone = np.ones(layers["confidence"].shape, np.int32)
    whole = find_scars(layers, zone, transform, CONFIDENCE_LOW, MIN_AREA_HA).table
    by_place = _by_place(whole)
    # The bar is gone; the strip lost its 60 m on the river's bank and kept its end by the pond;
    # the pit beside the ponds is whole.
    strip_ha = (STRIP[1] - BAR[1]) * (STRIP[3] - STRIP[2]) / 1e4
    pit_ha = (PIT_BY_PONDS[1] - PIT_BY_PONDS[0]) * (PIT_BY_PONDS[3] - PIT_BY_PONDS[2]) / 1e4
    assert by_place["area_ha"].tolist() == pytest.approx([strip_ha, pit_ha])
    assert by_place["geometry"].iloc[0].bounds[0] == pytest.approx(X0 + BAR[1])
    assert (by_place["detection_path"] == "mining_surface").all()
    assert by_place["near_water_fraction"].iloc[1] > 0.9 and by_place["near_river_fraction"].tolist() == [0.0, 0.0]
    # Streamed in chunks smaller than the context margin: the same table, exactly.
    pd.testing.assert_frame_equal(_streamed(layers, transform, chunk), whole, check_exact=True)

    zones = gpd.GeoDataFrame({"area_id": ["MDD2"], "area_name": ["Huepetuhe"], "zone": ["inside"]},
                             geometry=[shapely.box(X0, Y0 - SIDE_M, X0 + SIDE_M, Y0)], crs=32719)
    detection = AreaDetection("MDD2", 32719, zones, whole, [f"2022-0{m}-01" for m in range(1, 9)],
                              [(f"i{k}",) for k in range(8)], ["sentinel-2a"] * 8, 1)
    provenance = {"run_name": "t", "run_id": "t-1", "model_version": AllMining.version, "pipeline_version": "0"}
    issued = classify_area(detection, AllMining(), provenance, "suppress")
    assert issued["class"].tolist() == ["mining", "mining"]
