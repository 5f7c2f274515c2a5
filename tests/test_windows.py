"""Window tasks: each chunk reads its own window (the chunk, the context halo and the mask pad) and
its change layers, candidates and per-look counts are the whole grid's, pixel for pixel."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.aoi import load_zones
from pipeline.config import load_config
from pipeline.detect import _check_area, area_job, chunk_px
from pipeline.plan import plan_areas
from pipeline.sources.load import negative_fraction
from pipeline.change import CONFIDENCE_LOW
from pipeline.streaming import merge_candidates, rasterize_window, zone_shapes
from pipeline.windows import (
    auto_chunk_px,
    change_on,
    chunk_origins,
    merge_counts,
    task_memory_bytes,
    window_bytes,
    window_geometry,
    window_task,
)

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


def test_automatic_chunks_fit_a_task_in_its_memory_share_and_feed_every_worker(small_scene, tmp_path):
    """Without ``detection.chunk_px``: chunks up to MAX_CHUNK_PX while a task fits its share of
    memory, smaller ones for long series, and every worker thread gets a chunk."""
    from pipeline.windows import MAX_CHUNK_PX

    assert task_memory_bytes(2, 1, machine_bytes=8 * 2**30) == 2 * 2**30
    assert task_memory_bytes(1, 1, machine_bytes=64 * 2**30) == 4 * 2**30   # capped
    assert auto_chunk_px(9, 35, 4 * 2**30) == MAX_CHUNK_PX
    edge = auto_chunk_px(24, 35, 2**28)
    assert 256 <= edge < MAX_CHUNK_PX
    assert window_bytes(edge, edge, 24, 35) <= 2**28 < window_bytes(edge + 64, edge + 64, 24, 35)
    assert auto_chunk_px(10_000, 35, 2**30) == 256
    config = load_config(write_config(tmp_path, small_scene, **{"detection.chunk_px": None, "dask.n_workers": 2}))
    assert config.detection.chunk_px is None
    edge = chunk_px(config, 13, (2000, 2000))
    assert edge == MAX_CHUNK_PX or len(chunk_origins(2000, edge)) ** 2 >= 2
    edge = chunk_px(config, 13, (600, 600))   # one chunk would leave a worker idle
    assert len(chunk_origins(600, edge)) ** 2 >= 2
    assert chunk_px(load_config(write_config(tmp_path / "set", small_scene, **{"detection.chunk_px": 100})), 13,
                    (600, 600)) == 100


def test_item_headers_are_checked_once_for_all_the_areas_that_share_them(small_scene, tmp_path, monkeypatch):
    """Areas of one run share their items: a header is opened once, and a broken item stays
    skipped (with its reason) for every area; an item with other files is checked anew."""
    import pystac

    from pipeline.sources import load

    items = list(pystac.Catalog.from_file(str(small_scene / "catalog.json")).get_items(recursive=True))[:3]
    broken = items[0].clone()
    broken.assets["red"].href = str(tmp_path / "missing.tif")
    checked: dict = {}
    first = load.check_items([broken, *items[1:]], checked)
    assert [i.id for i in first.usable] == [i.id for i in items[1:]]
    assert first.skipped[0]["item"] == broken.id and "missing.tif" in first.skipped[0]["reason"]
    monkeypatch.setattr(load.rasterio, "open", lambda *a, **k: pytest.fail("a header was opened twice"))
    again = load.check_items([broken, *items[1:]], checked)
    assert [i.id for i in again.usable] == [i.id for i in items[1:]] and again.skipped == first.skipped
    with pytest.raises(pytest.fail.Exception):
        load.check_items([items[0]], checked)   # same id, other files: opened
