"""What a run will take, from its plan alone (no pixel read): per area its grid, looks, chunks
and memory, for ``cec run --dry-run``.

Memory is an estimate from the sizes of the arrays each stage holds, checked against the scale
benchmark (``benchmarks/bench_scale.py``): a window task holds its window's looks (DN,
reflectance, mask, indices and the change test's temporaries,
:data:`pipeline.windows.BYTES_PER_PIXEL_LOOK` per pixel and look); a worker runs one task per
thread; each process holds GDAL's block cache (every block the area touches, up to its bound,
which is at least the blocks a row of windows shares: :func:`pipeline.sources.reader.block_cache_bytes`);
the calling process holds the scar candidates (a share of the grid, ``BYTES_PER_CANDIDATE`` each).
None of it grows with the area except the candidates.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import shapely

from .config import RunConfig, worker_processes
from .detect import analysis_grid, chunk_px, looks_and_resolutions
from .plan import AreaPlan
from .sources.load import make_geobox, partition_items, plan_looks
from .sources.reader import area_block_bytes, block_cache_bytes, row_band_bytes
from .windows import chunk_origins, read_margin_px, window_bytes

PROCESS_MIB = 300
"""A Python process with the pipeline imported (numpy, xarray, dask, rasterio, GDAL)."""
CANDIDATE_SHARE = 0.02
"""Assumed share of the grid that is scar candidates (change of any confidence inside the zones) or
their context (the pixels within 300 m of a candidate component of the mapping unit)."""
BYTES_PER_CANDIDATE = 120
"""A candidate pixel's index and change layers in the calling process."""


@dataclass(frozen=True)
class AreaBudget:
    """What one area's detection will take."""

    area_id: str
    epsg: int
    grid_shape: tuple[int, int]
    """(rows, columns) of the area's analysis grid."""
    looks: int
    """Observations (same-solar-day items form one)."""
    chunks: int
    """Window tasks."""
    chunk_px: int
    """Largest chunk edge (``detection.chunk_px``, or the automatic one for this many looks)."""
    chunk_mib: float
    """Working memory of one chunk task."""
    worker_mib: float
    """Peak of one worker (``dask.threads_per_worker`` tasks at once; with ``dask.processes`` its
    own interpreter too)."""
    client_mib: float
    """Peak of the process that runs ``cec run`` (scar candidates, estimated)."""

    @property
    def megapixels(self) -> float:
        return self.grid_shape[0] * self.grid_shape[1] / 1e6

    def as_dict(self) -> dict:
        return asdict(self) | {"megapixels": round(self.megapixels, 2)}


def area_budget(plan: AreaPlan, config: RunConfig, n_areas: int = 1) -> AreaBudget:
    """Grid, looks, chunks and memory of one planned area of a run over ``n_areas`` (pure: reads
    no pixel)."""
    zones = plan.zones
    epsg = int(zones["utm_epsg"].iloc[0])
    items = [*plan.baseline, *plan.monitor]
    d = config.detection
    area = shapely.union_all(list(zones.geometry))
    if items:  # the very grid detection will use (the area over the items' footprint)
        rows, cols = analysis_grid(config, plan.area_id, area, items, epsg).shape
    else:  # nothing found yet: the whole area
        rows, cols = make_geobox(tuple(zones.to_crs(epsg).total_bounds), epsg, d.resolution_m).shape
    groups = partition_items(items) if items else []
    looks = len(plan_looks(groups)[0]) if items else 0
    edge = chunk_px(config, looks, (int(rows), int(cols)))
    row_chunks, col_chunks = chunk_origins(rows, edge), chunk_origins(cols, edge)
    margin = read_margin_px(d.resolution_m, d.cloud_buffer_m, d.nodata_edge_m)
    chunk_bytes = window_bytes(row_chunks[0][1], col_chunks[0][1], looks, margin)
    # a worker process carries its own interpreter; threaded workers share the cec process's
    # GDAL's block cache (bounded) is per process: each worker process's, or the cec process's
    width_m, height_m = cols * d.resolution_m, rows * d.resolution_m
    assets = looks_and_resolutions(groups, d.resolution_m)
    need = sum(row_band_bytes(width_m, n, resolutions) for n, resolutions in assets)
    touched = sum(area_block_bytes(width_m, height_m, n, resolutions) for n, resolutions in assets)
    # GDAL's cache keeps every block decoded until it is full: it fills with all the blocks the
    # area touches, up to its bound (which is at least what a row of windows shares)
    cache_mib = min(touched, block_cache_bytes(need)) / 2**20
    processes = worker_processes(config.dask, n_areas)
    worker = (PROCESS_MIB + cache_mib if processes else 0) + config.dask.threads_per_worker * chunk_bytes / 2**20
    client = PROCESS_MIB + (0 if processes else cache_mib) + rows * cols * CANDIDATE_SHARE * BYTES_PER_CANDIDATE / 2**20
    return AreaBudget(area_id=plan.area_id, epsg=epsg, grid_shape=(int(rows), int(cols)), looks=looks,
                      chunks=len(row_chunks) * len(col_chunks), chunk_px=edge, chunk_mib=round(chunk_bytes / 2**20, 1), worker_mib=round(worker),
                      client_mib=round(client))
