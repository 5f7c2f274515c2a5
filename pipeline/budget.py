"""What a run will take, from its plan alone (no pixel read): per area its grid, looks, chunks
and memory, for ``cec run --dry-run``.

Memory is an estimate from the sizes of the arrays each stage holds, checked against the scale
benchmark (``benchmarks/bench_scale.py``): a chunk task holds the chunk's looks (reflectance,
mask, indices and the change test's temporaries, about ``BYTES_PER_PIXEL_LOOK`` per pixel and
look) and its change layers; a worker holds ``TASKS_PER_THREAD`` such tasks per thread at its
peak; the calling process holds the scar candidates (a share of the grid, ``BYTES_PER_CANDIDATE``
each). None of it grows with the area except the candidates.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass

import shapely

from .config import DaskConfig, RunConfig
from .detect import analysis_grid
from .plan import AreaPlan
from .sources.load import make_geobox, solar_day
from .streaming import context_px

BYTES_PER_PIXEL_LOOK = 110
"""Reflectance (float32 × 6 and the DN), mask, indices and change-test temporaries, per pixel and look."""
BYTES_PER_PIXEL = 80
"""The change layers of a chunk, per pixel."""
TASKS_PER_THREAD = 2
"""Chunk tasks a worker thread holds at its peak (the running one and a finished one in transit)."""
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
    """Chunk tasks of ``detection.chunk_px``² pixels."""
    chunk_mib: float
    """Working memory of one chunk task."""
    worker_mib: float
    """Peak of one worker process (``dask.threads_per_worker`` tasks at once)."""
    client_mib: float
    """Peak of the process that runs ``cec run`` (scar candidates, estimated)."""

    @property
    def megapixels(self) -> float:
        return self.grid_shape[0] * self.grid_shape[1] / 1e6

    def as_dict(self) -> dict:
        return asdict(self) | {"megapixels": round(self.megapixels, 2)}


def area_budget(plan: AreaPlan, config: RunConfig) -> AreaBudget:
    """Grid, looks, chunks and memory of one planned area (pure: reads no pixel)."""
    zones = plan.zones
    epsg = int(zones["utm_epsg"].iloc[0])
    items = [*plan.baseline, *plan.monitor]
    d = config.detection
    area = shapely.union_all(list(zones.geometry))
    if items:  # the very grid detection will use (the area over the items' footprint)
        rows, cols = analysis_grid(config, plan.area_id, area, items, epsg).shape
    else:  # nothing found yet: the whole area
        rows, cols = make_geobox(tuple(zones.to_crs(epsg).total_bounds), epsg, d.resolution_m).shape
    looks = len({solar_day(i) for i in items})
    chunk_rows, chunk_cols = min(d.chunk_px, rows), min(d.chunk_px, cols)
    chunks = math.ceil(rows / d.chunk_px) * math.ceil(cols / d.chunk_px)
    halo = 2 * context_px(d.resolution_m)   # a chunk task also holds its neighbours' change layers this deep
    chunk_bytes = (chunk_rows * chunk_cols * BYTES_PER_PIXEL_LOOK * max(looks, 1)
                   + (chunk_rows + halo) * (chunk_cols + halo) * BYTES_PER_PIXEL)
    threads = config.dask.threads_per_worker
    worker = PROCESS_MIB + threads * TASKS_PER_THREAD * chunk_bytes / 2**20
    client = PROCESS_MIB + rows * cols * CANDIDATE_SHARE * BYTES_PER_CANDIDATE / 2**20
    return AreaBudget(area_id=plan.area_id, epsg=epsg, grid_shape=(int(rows), int(cols)), looks=looks,
                      chunks=chunks, chunk_mib=round(chunk_bytes / 2**20, 1), worker_mib=round(worker),
                      client_mib=round(client))


def local_workers(dask_config: DaskConfig) -> int:
    """Workers of the LocalCluster ``cec run`` starts when no scheduler is given."""
    return dask_config.n_workers or max(1, min(4, os.cpu_count() or 1))
