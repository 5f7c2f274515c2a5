"""Change detection window by window: each chunk of an area's grid is one task that reads its own
pixels and runs load -> mask -> indices -> change -> scar candidates on numpy.

A task reads its chunk, a halo of the context margin around it (the neighbours' pixels that
components and the features' context need, :mod:`pipeline.streaming`) and, around that, a pad as
deep as the largest mask buffer (cloud buffer, nodata edge), so that the grown masks, and hence
every change layer, are exact on the chunk and its halo. It returns the chunk's sparse
:class:`~pipeline.streaming.Candidates` and its per-look pixel counts, nothing else.

So tasks are independent (no halo is exchanged between them), nothing of area size exists in any
process, and a worker holds the looks of one window per thread: memory does not grow with the area.
Building an area's work is one small task per chunk, not a graph of every band, look and stage.
Each destination pixel is read the same way whatever the window (odc-stac computes it from the
source pixels around it), so the candidates are those of the whole grid, for any ``chunk_px``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pystac
from odc.geo.geobox import GeoBox

from .change import ChangeParams, detect_change
from .harmonize import fuse
from .indices import compute_indices
from .model import BANDS
from .sources.load import load_observations, negative_counts
from .sources import reader
from .sources.registry import resolve_profile
from .streaming import Candidates, block_candidates, context_px, rasterize_window


def mask_pad_px(resolution_m: float, cloud_buffer_m: float, nodata_edge_m: float) -> int:
    """The largest mask buffer in pixels: reading this much more makes the grown masks exact."""
    return max(int(round(m / resolution_m)) for m in (cloud_buffer_m, nodata_edge_m, 0.0))


def read_margin_px(resolution_m: float, cloud_buffer_m: float, nodata_edge_m: float) -> int:
    """How far a window task reads around its chunk: the context halo and the mask pad."""
    return context_px(resolution_m) + mask_pad_px(resolution_m, cloud_buffer_m, nodata_edge_m)


@dataclass(frozen=True)
class AreaJob:
    """What every window task of one area shares (sent to each worker once)."""

    groups: tuple[tuple[pystac.Item, ...], ...]
    """Items in loadable groups (:func:`pipeline.sources.load.partition_items`)."""
    geobox: GeoBox
    """The area's analysis grid."""
    times: np.ndarray
    """datetime64 of each look, in the fused order every window must give."""
    is_baseline: np.ndarray
    look_family: np.ndarray
    params: ChangeParams
    resolution_m: float
    cloud_buffer_m: float
    nodata_edge_m: float
    shapes: list[tuple]
    """Zones to rasterize ((geometry, 1-based zone row) pairs, :func:`pipeline.streaming.zone_shapes`)."""
    min_px: float
    """Mapping unit in pixels: smaller components get no context."""
    patch_url: Callable[[str], str] | None = None
    read_cache_bytes: int = 0
    """Decoded source blocks that the windows share (:func:`pipeline.sources.reader.row_band_bytes`)."""

    @property
    def halo_px(self) -> int:
        return context_px(self.resolution_m)

    @property
    def pad_px(self) -> int:
        return mask_pad_px(self.resolution_m, self.cloud_buffer_m, self.nodata_edge_m)


@dataclass
class WindowResult:
    """What one chunk gives back."""

    candidates: Candidates
    negative_px: np.ndarray
    """int64 per look: clear pixels of the chunk whose darkest visible band is below −0.05."""
    valid_px: np.ndarray
    """int64 per look: clear pixels of the chunk with a value in the darkest visible band."""
    clear_px: np.ndarray
    """int64 per look: clear pixels of the chunk."""


def change_on(job: AreaJob, geobox: GeoBox, chunk_px: int | None = None):
    """Load, mask, indices and change test of the job's items on ``geobox`` (eager numpy when
    ``chunk_px`` is None, else lazy dask chunks): (fused observations, clear mask, change layers)."""
    parts = []
    for group in job.groups:
        part = load_observations(list(group), geobox, chunk_px, patch_url=job.patch_url)
        profile = resolve_profile(group[0])
        parts.append((part, profile.clear_mask(part.data, job.resolution_m, job.cloud_buffer_m, job.nodata_edge_m)))
    obs, clear = fuse(parts)
    times = obs.data["time"].values
    if times.shape != job.times.shape or (times != job.times).any():
        raise RuntimeError(f"looks loaded on a window ({times}) differ from the area's plan ({job.times})")
    indices = compute_indices(obs.data).assign({band: obs.data[band] for band in BANDS})
    change = detect_change(indices, clear, job.is_baseline, job.params, job.look_family)
    return obs, clear, change


@dataclass(frozen=True)
class WindowGeometry:
    """Where a chunk's block (the chunk plus its halo) and its read window (the block plus the
    mask pad) lie in the grid, all clipped to the grid."""

    block_origin: tuple[int, int]
    """Grid (row, column) of the block's pixel (0, 0)."""
    block_shape: tuple[int, int]
    core: tuple[slice, slice]
    """The chunk's own pixels in the block."""
    open_edges: tuple[bool, bool, bool, bool]
    """Which block edges (top, bottom, left, right) are not the grid's."""
    read: tuple[slice, slice]
    """Grid rows and columns to read."""

    @property
    def block_in_read(self) -> tuple[slice, slice]:
        (r0, c0), (h, w) = self.block_origin, self.block_shape
        return (slice(r0 - self.read[0].start, r0 - self.read[0].start + h),
                slice(c0 - self.read[1].start, c0 - self.read[1].start + w))

    @property
    def core_in_read(self) -> tuple[slice, slice]:
        rows, cols = self.block_in_read
        return (slice(rows.start + self.core[0].start, rows.start + self.core[0].stop),
                slice(cols.start + self.core[1].start, cols.start + self.core[1].stop))


def window_geometry(grid_shape: tuple[int, int], row0: int, col0: int, rows: int, cols: int, halo: int,
                    pad: int = 0) -> WindowGeometry:
    """The block and read window of the chunk ``rows`` × ``cols`` at (``row0``, ``col0``)."""
    height, width = grid_shape
    top, left = min(halo, row0), min(halo, col0)
    bottom, right = min(halo, height - row0 - rows), min(halo, width - col0 - cols)
    r0, c0 = row0 - top, col0 - left
    shape = (top + rows + bottom, left + cols + right)
    return WindowGeometry(
        block_origin=(r0, c0), block_shape=shape,
        core=(slice(top, top + rows), slice(left, left + cols)),
        open_edges=(r0 > 0, r0 + shape[0] < height, c0 > 0, c0 + shape[1] < width),
        read=(slice(max(r0 - pad, 0), min(r0 + shape[0] + pad, height)),
              slice(max(c0 - pad, 0), min(c0 + shape[1] + pad, width))))


def reduce_block(layers: dict[str, np.ndarray], geometry: WindowGeometry, shapes: list[tuple], transform,
                 grid_width: int, min_px: float, margin_px: int) -> Candidates:
    """A chunk's candidates and context from the change layers of its block (pure)."""
    zone = rasterize_window(shapes, transform, *geometry.block_origin, geometry.block_shape)
    return block_candidates(layers, zone, *geometry.block_origin, grid_width, geometry.core, geometry.open_edges,
                            min_px, margin_px)


def window_task(job: AreaJob, row0: int, col0: int, rows: int, cols: int) -> WindowResult:
    """Candidates and per-look counts of the chunk ``rows`` × ``cols`` at (``row0``, ``col0``) of
    the job's grid (runs on a worker)."""
    reader.ensure_block_cache(job.read_cache_bytes)
    geometry = window_geometry(tuple(job.geobox.shape), row0, col0, rows, cols, job.halo_px, job.pad_px)
    obs, clear, change = change_on(job, job.geobox[geometry.read])
    block = geometry.block_in_read
    layers = {name: np.asarray(change[name].data)[(..., *block)] for name in change.data_vars}
    candidates = reduce_block(layers, geometry, job.shapes, job.geobox.transform, job.geobox.shape[1],
                              job.min_px, job.halo_px)
    # per-look counts over the chunk's own pixels: they add up to the whole grid's
    rows, cols = geometry.core_in_read
    own = {"y": rows, "x": cols}
    negative, valid = negative_counts(obs.data.isel(own), clear.isel(own))
    return WindowResult(candidates=candidates, negative_px=negative.values.astype(np.int64),
                        valid_px=valid.values.astype(np.int64),
                        clear_px=clear.isel(own).sum(("y", "x")).values.astype(np.int64))


MAX_CHUNK_PX = 512
"""Largest automatic chunk edge. Source files stay open in a process and GDAL caches their decoded
blocks (:mod:`pipeline.sources.reader`), so a small window decodes no block twice and costs
little more than its share of a large one; a small window needs less memory and gives every
worker thread work (measured at 4000² px, 9 looks: 512, 768 and 1024 px within 1 s of each other,
peak memory 2.1, 2.3 and 2.8 GiB; 2048 px 3.5 s slower)."""
BYTES_PER_PIXEL_LOOK = 96
"""Peak working memory of a window task per pixel of its read window and per look: the DN, the
reflectance bands, mask, indices and the change test's temporaries (measured: 84 B at 1024² px
and 9 looks, with ``tracemalloc``)."""
TASK_MEMORY_CAP = 4 * 2**30
"""Largest memory an automatic chunk gives one task."""


def task_memory_bytes(workers: int, threads_per_worker: int, machine_bytes: int | None = None) -> int:
    """Memory one task may use: half a thread's share of this machine's memory, at most
    :data:`TASK_MEMORY_CAP` (the other half: the worker process, results in transit, GDAL)."""
    if machine_bytes is None:
        import psutil

        machine_bytes = psutil.virtual_memory().total
    return int(min(TASK_MEMORY_CAP, machine_bytes / (2 * max(workers, 1) * max(threads_per_worker, 1))))


def window_bytes(rows: int, cols: int, n_looks: int, margin_px: int) -> int:
    """Estimated peak memory of the window task of a chunk ``rows`` × ``cols`` with ``margin_px``
    read around it."""
    return (rows + 2 * margin_px) * (cols + 2 * margin_px) * max(n_looks, 1) * BYTES_PER_PIXEL_LOOK


def auto_chunk_px(n_looks: int, margin_px: int, task_bytes: int) -> int:
    """The largest chunk edge, up to :data:`MAX_CHUNK_PX` (at least 256), whose window task fits
    in ``task_bytes``."""
    side = int((task_bytes / (max(n_looks, 1) * BYTES_PER_PIXEL_LOOK)) ** 0.5) - 2 * margin_px
    return int(min(MAX_CHUNK_PX, max(256, side)))


def chunk_origins(size: int, chunk_px: int) -> list[tuple[int, int]]:
    """(start, length) of each chunk along an axis of ``size`` pixels: as few chunks as keep each
    within ``chunk_px``, of equal length (±1), so that the tasks take about equally long."""
    n = -(-size // chunk_px)
    edges = [size * k // n for k in range(n + 1)]
    return [(a, b - a) for a, b in zip(edges, edges[1:])]


def window_tasks(job: AreaJob, chunk_px: int) -> list:
    """One delayed :func:`window_task` per ``chunk_px``² chunk of the job's grid, in raster order;
    the job travels once (one key shared by every task)."""
    import dask

    run = uuid.uuid4().hex
    shared = dask.delayed(job, name=f"area-job-{run}", traverse=False)
    task = dask.delayed(window_task)
    height, width = job.geobox.shape
    chunks = [(r0, c0, rows, cols) for r0, rows in chunk_origins(height, chunk_px) for c0, cols in chunk_origins(width, chunk_px)]
    # keys in raster order: dask runs independent tasks in key order, so windows that share source
    # blocks run one after another and find them in the block cache (random keys made a 10980² tile
    # 1.5 times slower)
    return [task(shared, *chunk, dask_key_name=f"window-{run}-{n:07d}") for n, chunk in enumerate(chunks)]


def merge_counts(results: Sequence[WindowResult]) -> tuple[np.ndarray, np.ndarray]:
    """Per look over the whole grid: the negative-reflectance share of clear valid pixels
    (:func:`pipeline.sources.load.negative_fraction` of the whole grid) and the clear-pixel count."""
    negative = np.sum([r.negative_px for r in results], axis=0)
    valid = np.sum([r.valid_px for r in results], axis=0)
    clear = np.sum([r.clear_px for r in results], axis=0)
    return negative / np.clip(valid, 1, None), clear
