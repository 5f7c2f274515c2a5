"""Streaming scars: chunk by chunk on dask, merged across chunk borders, identical to the whole grid
(every column, the classifier features read from the scars' surroundings included)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import shapely
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
from pipeline.features import FEATURES
from pipeline import streaming
from pipeline.scars import find_scars
from pipeline.streaming import (
    Candidates,
    find_scars_sparse,
    label_points,
    merge_candidates,
    rasterize_window,
)
from pipeline.windows import chunk_origins

from .helpers import chunk_parts

TRANSFORM = Affine(10.0, 0, 500000.0, 0, -10.0, 8600000.0)
SHAPE = (260, 300)
MIN_AREA_HA = 0.5
# rows 0-99, columns 200-299 hold no candidate (a whole chunk at chunk_px 100, most of two at 64),
# only a pond and old bright sediment that a scar just west of it sees within 300 m
QUIET = (slice(0, 100), slice(200, 300))
EDGE_SCAR = (slice(238, 260), slice(276, 300))   # touches the bottom and right grid edges
TOP_LEFT_SCAR = (slice(12, 26), slice(22, 40))   # its 300 m window is clipped by the top and left edges
WEST_OF_QUIET = (slice(20, 34), slice(172, 190))  # its context reaches into QUIET


def _layers(seed: int = 0) -> dict[str, np.ndarray]:
    """Change layers with blobs of every confidence, specks, thin lines, rivers and scars planted
    across the chunk corners of every chunk size the tests use, on grid edges and beside a chunk
    with no candidates; surroundings vary (baseline cover, water, old sediment)."""
    rng = np.random.default_rng(seed)
    h, w = SHAPE
    yy, xx = np.mgrid[:h, :w]
    confidence = np.zeros(SHAPE, np.float32)
    for _ in range(30):
        cy, cx, ry, rx = rng.integers(0, h), rng.integers(0, w), *rng.integers(2, 12, 2)
        confidence[((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1] = rng.choice([1, 2, 3])
    for corner in (64, 128, 192, 100, 200):   # a confirmed scar on each chunk corner
        confidence[corner - 6:corner + 5, corner - 4:corner + 7] = CONFIDENCE_NOMINAL
    confidence[150, 10:90] = CONFIDENCE_HIGH  # a line: no 3 × 3 core, never a scar
    # two 0.49 ha squares that touch at one corner only: one 0.98 ha scar (8-connectivity)
    confidence[210:255, 15:60] = 0
    confidence[225:232, 30:37] = CONFIDENCE_NOMINAL
    confidence[232:239, 37:44] = CONFIDENCE_NOMINAL
    confidence[rng.random(SHAPE) < 0.02] = CONFIDENCE_LOW
    confidence[125:165, 200:240] = 0
    confidence[133:148, 210:225] = CONFIDENCE_NOMINAL   # new sand on the river bank (rows 130-132)
    confidence[QUIET] = 0
    confidence[0:40, 160:200] = 0
    confidence[0:45, 10:60] = 0
    confidence[WEST_OF_QUIET] = CONFIDENCE_HIGH
    confidence[EDGE_SCAR] = CONFIDENCE_NOMINAL
    confidence[TOP_LEFT_SCAR] = CONFIDENCE_HIGH
    layers = {name: rng.normal(size=SHAPE).astype(np.float32) for name in FIELDS}
    for band in ("blue", "green", "red", "nir", "swir16", "swir22"):
        layers[f"post_{band}"] = rng.uniform(0.01, 0.4, SHAPE).astype(np.float32)
        layers[f"base_{band}"] = rng.uniform(0.01, 0.1, SHAPE).astype(np.float32)
    layers["baseline_ndvi"] = rng.uniform(0.3, 0.9, SHAPE).astype(np.float32)
    layers["baseline_ndvi"][rng.random(SHAPE) < 0.05] = np.nan          # unseen in the baseline
    layers["baseline_mndwi"] = rng.uniform(-0.6, 0.2, SHAPE).astype(np.float32)
    # old bright sediment just east of the quiet chunk border: ring_sediment_fraction of WEST_OF_QUIET
    for band in ("blue", "green", "red"):
        layers[f"base_{band}"][15:40, 191:205] = 0.3
    layers["baseline_ndvi"][15:40, 191:205] = 0.1
    layers["confidence"] = confidence
    layers["detection_path"] = np.full(SHAPE, PATH_FOREST_LOSS, np.float32)
    layers["detection_path"][133:148, 210:225] = PATH_MINING_SURFACE   # only the surface path
    layers["first_look"] = np.where(confidence >= CONFIDENCE_NOMINAL, rng.integers(3, 8, SHAPE), -1).astype(np.float32)
    layers["last_look"] = np.where(confidence >= CONFIDENCE_NOMINAL, 9, -1).astype(np.float32)
    layers["prior_look"] = np.where(confidence >= CONFIDENCE_NOMINAL, rng.integers(0, 3, SHAPE), -1).astype(np.float32)
    water = np.zeros(SHAPE, bool)
    water[:, 5:9] = True
    water[h // 2:h // 2 + 3, :] = True
    water[25:31, 208:216] = True   # a pond in the quiet chunk, 180 m east of WEST_OF_QUIET
    water &= confidence == 0
    layers["water"] = water.astype(np.float32)
    layers["water_seen"] = np.zeros(SHAPE, np.float32)
    layers["water_seen"][200:205, 250:] = 1
    layers["n_baseline"] = np.full(SHAPE, 3, np.float32)
    layers["n_flagged"] = rng.integers(0, 5, SHAPE).astype(np.float32)
    layers["look_bits"] = rng.integers(0, 256, (n_fields(12) - len(FIELDS),) + SHAPE).astype(np.float32)
    return layers


def _shapes() -> list[tuple]:
    """Zones: a buffer reaching the bottom and right grid edges around an inner zone."""
    core = shapely.box(*(TRANSFORM * (100, 190)), *(TRANSFORM * (200, 90)))
    ring = shapely.box(*(TRANSFORM * (20, 260)), *(TRANSFORM * (300, 10))).difference(core)
    return [(ring, 2), (core, 1)]


def _chunk_parts(layers: dict[str, np.ndarray], chunk: int, shapes: list[tuple]) -> list[Candidates]:
    """What the pipeline's window tasks reduce each chunk to, in raster order."""
    return chunk_parts(layers, chunk, shapes, TRANSFORM, MIN_AREA_HA)


def _streamed(layers: dict[str, np.ndarray], chunk: int) -> Candidates:
    """The chunks' candidates, merged (in reverse order: the order of results does not matter)."""
    return merge_candidates(_chunk_parts(layers, chunk, _shapes())[::-1])


def _whole_grid(layers):
    zone = rasterize_window(_shapes(), TRANSFORM, 0, 0, SHAPE)
    return find_scars(layers, zone, TRANSFORM, CONFIDENCE_LOW, MIN_AREA_HA).table


@pytest.fixture(scope="module")
def whole():
    layers = _layers()
    table = _whole_grid(layers)
    assert len(table) >= 10
    return layers, table


def _at(table: pd.DataFrame, rows: slice, cols: slice) -> pd.Series:
    """The one scar that covers the centre of a planted block."""
    point = shapely.Point(TRANSFORM * ((cols.start + cols.stop) / 2, (rows.start + rows.stop) / 2))
    hits = table[[g.contains(point) for g in table.geometry]]
    assert len(hits) == 1
    return hits.iloc[0]


@pytest.mark.parametrize(("chunk", "window_min_px"), [(64, 384), (100, 384), (128, 384), (300, 384), (64, 0), (128, 0)])
def test_streamed_scars_and_features_are_the_whole_grid_ones_for_any_chunk_size(whole, chunk, window_min_px,
                                                                                monkeypatch):
    """``window_min_px`` 0: each component described in its own window (bbox plus the margin)."""
    monkeypatch.setattr(streaming, "WINDOW_MIN_PX", window_min_px)
    layers, table = whole
    streamed = find_scars_sparse(_streamed(layers, chunk), SHAPE, TRANSFORM, CONFIDENCE_LOW, MIN_AREA_HA)
    assert set(FEATURES) <= set(streamed.columns)
    pd.testing.assert_frame_equal(streamed, table, check_exact=True)
    # the scars planted on chunk corners are each one scar, whole
    corner = shapely.Point(TRANSFORM * (128, 128))
    assert sum(g.contains(corner) for g in streamed.geometry) == 1
    # the channel belt (60 m from the river) is not part of a scar; what lies beyond it is
    belt = shapely.box(*(TRANSFORM * (210, 139)), *(TRANSFORM * (225, 133)))
    beyond = shapely.box(*(TRANSFORM * (210, 148)), *(TRANSFORM * (225, 139)))
    assert not any(g.intersection(belt).area > 0 for g in streamed.geometry)
    assert sum(g.intersection(beyond).area > 0 for g in streamed.geometry) == 1
    diagonal = shapely.Point(TRANSFORM * (37, 232))
    assert [round(a, 2) for g, a in zip(streamed.geometry, streamed.area_ha) if g.intersects(diagonal)] == [0.98]


def test_the_context_planted_beyond_chunks_and_edges_reaches_the_features(whole):
    """The planted surroundings are what the features read: the pond and the old sediment in the
    chunk with no candidate, and windows clipped by the grid's edges."""
    layers, table = whole
    west = _at(table, *WEST_OF_QUIET)
    assert west["dist_water_m"] == pytest.approx(190.0)   # the pond, columns 208.. from column 189
    assert west["ring_sediment_fraction"] > 0.05
    edge = _at(table, *EDGE_SCAR)
    assert edge["area_ha"] == pytest.approx(22 * 24 / 100)
    assert 0 < edge["ring_open_fraction"] < 1
    top_left = _at(table, *TOP_LEFT_SCAR)
    assert top_left["dist_water_m"] == pytest.approx(140.0)   # the river in columns 5-8


def test_without_its_context_pixels_a_scar_reads_other_features(whole):
    """The test above is not vacuous: the candidates alone (zeros around them) give other features."""
    layers, table = whole
    cands = _streamed(layers, 100)
    blind = dataclasses.replace(cands, context=np.zeros(0, np.int64),
                                context_layers={k: v[:0] for k, v in cands.context_layers.items()})
    streamed = find_scars_sparse(blind, SHAPE, TRANSFORM, CONFIDENCE_LOW, MIN_AREA_HA)
    assert len(streamed) == len(table)
    for name in ("dist_water_m", "ring_open_fraction", "ring_sediment_fraction", "ring_water_fraction"):
        assert not np.array_equal(streamed[name].to_numpy(), table[name].to_numpy()), name


def test_context_is_kept_only_within_300_m_of_what_may_become_a_scar():
    """Memory follows the scars and their ring, not the grid: one 1 ha scar across a chunk corner
    keeps its 30 px square of context, specks under the mapping unit keep none. (A speck on the
    outer edge of a chunk's halo would keep some: the chunk cannot see how far it goes on.) A 2 ha
    scar of which a chunk's halo shows 40 px only still gets its context in that chunk."""
    layers = {name: np.zeros((400, 400), np.float32) for name in FIELDS}
    layers["look_bits"] = np.zeros((1, 400, 400), np.float32)
    layers["confidence"][195:205, 95:105] = CONFIDENCE_NOMINAL   # 1 ha on the corner (200, 100)
    layers["confidence"][50:60, 226:246] = CONFIDENCE_NOMINAL    # 27 px east of the chunk columns 100-199
    layers["confidence"][340:360:3, 40:400:100] = CONFIDENCE_LOW    # specks, one pixel each
    everywhere = [(shapely.box(*(TRANSFORM * (0, 400)), *(TRANSFORM * (400, 0))), 1)]
    cands = merge_candidates(_chunk_parts(layers, 100, everywhere))
    rows, cols = np.divmod(cands.context, 400)
    assert cands.context.size == (70 * 70 - 100) + (70 * 80 - 200)
    corner = rows >= 100
    assert (rows[corner].min(), rows[corner].max(), cols[corner].min(), cols[corner].max()) == (165, 234, 65, 134)
    assert (rows[~corner].min(), rows[~corner].max(), cols[~corner].min(), cols[~corner].max()) == (20, 89, 196, 275)
    assert np.unique(cands.context).size == cands.context.size   # each pixel from one chunk only


def test_distance_to_water_counts_water_beyond_the_window(whole):
    """A scar far from any other change still measures its distance to the river of the whole grid."""
    layers, table = whole
    streamed = find_scars_sparse(_streamed(layers, 64), SHAPE, TRANSFORM, CONFIDENCE_LOW, MIN_AREA_HA)
    assert (streamed["near_water_fraction"] >= 0).all()
    assert streamed["onset_water_corr"].tolist() == table["onset_water_corr"].tolist()


def test_labels_of_sparse_pixels_follow_8_connectivity_and_raster_order():
    from scipy import ndimage

    rng = np.random.default_rng(3)
    mask = rng.random((40, 50)) < 0.3
    expected, n = ndimage.label(mask, structure=np.ones((3, 3)))
    index = np.flatnonzero(mask.ravel())
    labels, count = label_points(index, 50)
    assert count == n
    assert (labels + 1 == expected.ravel()[index]).all()


def test_no_candidates_gives_an_empty_table():
    layers = _layers()
    layers["confidence"][:] = 0
    cands = _streamed(layers, 128)
    assert cands.index.size == 0 and cands.context.size == 0
    table = find_scars_sparse(cands, SHAPE, TRANSFORM, CONFIDENCE_LOW, MIN_AREA_HA)
    assert table.empty and "geometry" in table.columns


def test_chunks_are_as_equal_as_possible_and_cover_the_grid():
    """Tasks take about equally long: 2472 px in chunks of at most 2048 are two of 1236, not
    2048 + 424 (one worker would wait for the other)."""
    assert chunk_origins(2472, 2048) == [(0, 1236), (1236, 1236)]
    assert chunk_origins(100, 512) == [(0, 100)]
    for size, chunk in ((1025, 512), (260, 64), (4096, 2048), (1, 64)):
        origins = chunk_origins(size, chunk)
        assert origins[0][0] == 0 and sum(n for _, n in origins) == size
        assert all(a + n == b for (a, n), (b, _) in zip(origins, origins[1:]))
        assert max(n for _, n in origins) <= chunk and max(n for _, n in origins) - min(n for _, n in origins) <= 1
