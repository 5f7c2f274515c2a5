"""Window tasks: each chunk reads its own window (the chunk, the context halo and the mask pad) and
its change layers, candidates and per-look counts are the whole grid's, pixel for pixel."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.aoi import load_zones
from pipeline.config import load_config
from pipeline.detect import _check_area, area_job
from pipeline.plan import plan_areas
from pipeline.sources.load import negative_fraction
from pipeline.change import CONFIDENCE_LOW
from pipeline.streaming import merge_candidates, rasterize_window, zone_shapes
from pipeline.windows import change_on, chunk_origins, merge_counts, window_geometry, window_task

from .conftest import write_config

CHUNK_PX = 100


@pytest.fixture(scope="module")
def job_and_whole(small_scene, tmp_path_factory):
    """The small scene's area job, with a cloud buffer wide enough that clouds and the swath edge
    reach across chunk borders, and its change test on the whole grid at once."""
    config = load_config(write_config(tmp_path_factory.mktemp("windows"), small_scene,
                                      **{"detection.cloud_buffer_m": 50.0}))
    plan = plan_areas(config, load_zones(config.areas))[0]
    area = _check_area(config, plan)
    job, _, _ = area_job(config, area.usable, area.geobox, zone_shapes(area.zones))
    return job, change_on(job, job.geobox)


def _chunks(job):
    height, width = job.geobox.shape
    return [(r0, c0, rows, cols) for r0, rows in chunk_origins(height, CHUNK_PX) for c0, cols in chunk_origins(width, CHUNK_PX)]


def test_each_window_gives_the_whole_grid_change_layers_on_its_chunk_and_halo(job_and_whole):
    job, (_, whole_clear, whole) = job_and_whole
    assert job.pad_px == 5 and job.halo_px == 30
    clouded = ~whole_clear.values
    assert clouded.any() and not clouded.all()
    for r0, c0, rows, cols in _chunks(job):
        geometry = window_geometry(tuple(job.geobox.shape), r0, c0, rows, cols, job.halo_px, job.pad_px)
        _, clear, part = change_on(job, job.geobox[geometry.read])
        (br, bc), (h, w) = geometry.block_origin, geometry.block_shape
        in_grid = (slice(br, br + h), slice(bc, bc + w))
        np.testing.assert_array_equal(clear.values[(slice(None), *geometry.block_in_read)],
                                      whole_clear.values[(slice(None), *in_grid)], err_msg=f"clear mask, chunk {r0, c0}")
        for name in whole.data_vars:
            np.testing.assert_array_equal(part[name].values[(..., *geometry.block_in_read)],
                                          whole[name].values[(..., *in_grid)], err_msg=f"{name}, chunk {r0, c0}")


def test_window_tasks_add_up_to_the_whole_grid_counts_and_candidates(job_and_whole):
    job, (obs, clear, whole) = job_and_whole
    results = [window_task(job, *chunk) for chunk in _chunks(job)]
    fractions, clear_px = merge_counts(results)
    np.testing.assert_array_equal(fractions, negative_fraction(obs.data, clear).values)
    np.testing.assert_array_equal(clear_px, clear.sum(("y", "x")).values)
    candidates = merge_candidates([r.candidates for r in results])
    zone = rasterize_window(job.shapes, job.geobox.transform, 0, 0, tuple(job.geobox.shape))
    expected = np.flatnonzero(((whole["confidence"].values >= CONFIDENCE_LOW) & (zone > 0)).ravel())
    assert expected.size > 0
    np.testing.assert_array_equal(candidates.index, expected)
    np.testing.assert_array_equal(candidates.layers["baseline_ndvi"], whole["baseline_ndvi"].values.ravel()[expected])
