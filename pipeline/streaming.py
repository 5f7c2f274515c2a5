"""Scars of a whole area without gathering its grid: chunk by chunk, merged across chunk borders.

Each chunk's change layers (computed on its window by :mod:`pipeline.windows`, on the dask
workers) are reduced to what scars need (:func:`block_candidates`):

- the *candidate* pixels (confidence ≥ low inside a monitored zone) with every change layer's
  value there;
- the *context* pixels: every other pixel within ``CONTEXT_M`` (Chebyshev, a superset of the
  Euclidean distance) of a candidate component that may become a scar, with the values of the
  layers the classifier features read around a scar (:data:`CONTEXT_LAYERS`). A component can
  become a scar only if it holds the mapping unit; the chunk sees its core plus a halo of the
  context margin, so a component is judged whole unless it reaches the halo's outer edge (then it
  is kept to be safe), and a context ring that crosses into a neighbour chunk is found there;
- the edge pixels of permanent water (for the distance to water over the whole grid).

Only these sparse points come back to the calling process. There they are labelled as one grid
(8-connected; a scar that crosses chunk borders or corners is one object), each component is cut
out in a window around its bounding box (with the margin the isolation test and the context
features need, clipped to the grid as the whole grid clips) and :func:`pipeline.scars.find_scars`
runs on that window, with each pixel's distance to the nearest permanent water of the *whole*
grid computed from the water edges. The table is the one ``find_scars`` gives on the whole grid,
row for row and feature for feature, for any chunk size: memory grows with the scars' area and
their context ring, not with the area.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
import rasterio.features
from affine import Affine
from scipy import ndimage, sparse
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from .aoi import ZONE_BUFFER, ZONE_INSIDE
from .change import CONFIDENCE_LOW
from .features import context_px
from .scars import (
    CONNECTIVITY,
    ISOLATION_M,
    MAX_WATER_DISTANCE_M,
    belt_candidates,
    component_belt,
    dilate_square,
    find_scars,
    permanent_water,
)

ZONE_LAYER = "zone_index"
CONTEXT_LAYERS = ("baseline_ndvi", "baseline_mndwi", "water", "water_seen", "base_blue", "base_green", "base_red")
"""The layers :func:`pipeline.features.context_features` reads around a scar (the post-change
bands are read on the scar's own pixels only, which are candidates)."""


@dataclass
class Candidates:
    """Sparse scar candidates of a grid (or of one chunk of it)."""

    index: np.ndarray
    """int64 (n,): linear pixel index ``row * width + col`` in the grid, ascending."""
    layers: dict[str, np.ndarray]
    """Layer name -> values at the candidates: (n,) for (y, x) layers, (k, n) for (k, y, x) ones;
    ``zone_index`` among them."""
    water: np.ndarray
    """int64: linear indices of permanent-water pixels that may be the nearest water of a pixel
    outside (those with a non-water 4-neighbour, and those on a chunk border)."""
    any_baseline: bool = False
    """Whether any pixel had a clear baseline look."""
    context: np.ndarray | None = None
    """int64 (m,): linear indices, ascending, of the pixels (not candidates) within the context
    margin of a candidate component that may become a scar."""
    context_layers: dict[str, np.ndarray] | None = None
    """CONTEXT_LAYERS name -> (m,) values at the context pixels."""


def zone_shapes(zones_utm) -> list[tuple]:
    """(geometry, value) pairs to rasterize: 1-based zone row; inside wins over buffer (drawn last)."""
    return [
        (geom, i + 1)
        for zone in (ZONE_BUFFER, ZONE_INSIDE)
        for i, (geom, z) in enumerate(zip(zones_utm.geometry, zones_utm.zone))
        if z == zone and not geom.is_empty
    ]


def rasterize_window(shapes: list[tuple], transform: Affine, row0: int, col0: int, shape: tuple[int, int]) -> np.ndarray:
    """int32 zone index of a window of the grid (pixel centres; 0 = outside every zone)."""
    if not shapes or 0 in shape:
        return np.zeros(shape, dtype=np.int32)
    window_transform = transform * Affine.translation(col0, row0)
    return rasterio.features.rasterize(shapes, out_shape=shape, transform=window_transform, fill=0, dtype="int32")


def _water_edges(water: np.ndarray) -> np.ndarray:
    """bool: water pixels that have a non-water 4-neighbour in the block or lie on its border."""
    interior = water.copy()
    interior[1:, :] &= water[:-1, :]
    interior[:-1, :] &= water[1:, :]
    interior[:, 1:] &= water[:, :-1]
    interior[:, :-1] &= water[:, 1:]
    interior[0, :] = interior[-1, :] = False
    interior[:, 0] = interior[:, -1] = False
    return water & ~interior


def _may_be_scars(mask: np.ndarray, min_px: float, open_edges: tuple[bool, bool, bool, bool]) -> np.ndarray:
    """bool: pixels of the 8-connected components of ``mask`` that may become scars: those of at
    least ``min_px`` pixels, and those touching an open edge (top, bottom, left, right: an edge
    of the block that is not the grid's, beyond which the component may go on)."""
    labels, n = ndimage.label(mask, structure=CONNECTIVITY)
    if n == 0:
        return np.zeros(mask.shape, dtype=bool)
    keep = np.bincount(labels.ravel(), minlength=n + 1) >= min_px
    top, bottom, left, right = open_edges
    for is_open, edge in ((top, labels[0, :]), (bottom, labels[-1, :]), (left, labels[:, 0]), (right, labels[:, -1])):
        if is_open:
            keep[edge] = True
    keep[0] = False
    return keep[labels]


def block_candidates(layers: dict[str, np.ndarray], zone: np.ndarray, row0: int, col0: int, width: int,
                     core: tuple[slice, slice] | None = None, open_edges: tuple[bool, bool, bool, bool] = (False,) * 4,
                     min_px: float = 0.0, margin_px: int = 0) -> Candidates:
    """Reduce one chunk of change layers to its candidates and context (pure; runs on a worker).

    ``layers`` are (y, x) or (k, y, x) numpy blocks whose pixel (0, 0) is at row ``row0`` and column
    ``col0`` of a grid ``width`` pixels wide; ``zone`` the block's zone index. ``core``: the
    chunk's own pixels in the block (default: all of it); the rest is a halo of its neighbours',
    read to label components and find context but not returned (each pixel comes back from one
    chunk only). ``open_edges``: which block edges are not the grid's. Components of ``min_px``
    pixels or more (or reaching an open edge) get context: every pixel within ``margin_px``.
    """
    core = core or (slice(0, zone.shape[0]), slice(0, zone.shape[1]))
    mask = (layers["confidence"] >= CONFIDENCE_LOW) & (zone > 0)
    shape = mask.shape
    in_core = np.zeros(shape, dtype=bool)
    in_core[core] = True
    rows, cols = np.nonzero(mask & in_core)
    index = (rows + row0).astype(np.int64) * width + (cols + col0)
    values = {name: np.ascontiguousarray(np.asarray(a)[..., rows, cols]) for name, a in layers.items()}
    values[ZONE_LAYER] = zone[rows, cols]
    core_layers = {k: np.asarray(v)[..., core[0], core[1]] for k, v in layers.items() if k in ("water", "water_seen")}
    wr, wc = np.nonzero(_water_edges(permanent_water(core_layers)))
    water = (wr + core[0].start + row0).astype(np.int64) * width + (wc + core[1].start + col0)
    context = dilate_square(_may_be_scars(mask, min_px, open_edges), margin_px) & ~mask & in_core
    cr, cc = np.nonzero(context)
    context_index = (cr + row0).astype(np.int64) * width + (cc + col0)
    context_values = {name: np.ascontiguousarray(layers[name][cr, cc]) for name in CONTEXT_LAYERS if name in layers}
    any_baseline = bool((np.asarray(layers["n_baseline"])[core] > 0).any())
    return Candidates(index=index, layers=values, water=water, any_baseline=any_baseline, context=context_index,
                      context_layers=context_values)


def merge_candidates(parts: list[Candidates]) -> Candidates:
    """One Candidates of a whole grid from its chunks' (in any order)."""
    def join(arrays: list[np.ndarray], order: np.ndarray | None = None) -> np.ndarray:
        joined = np.concatenate(arrays, axis=-1)
        return joined if order is None else joined[..., order]

    if not parts:
        empty = np.zeros(0, np.int64)
        return Candidates(index=empty, layers={}, water=empty, context=empty, context_layers={})
    index = join([p.index for p in parts])
    order = np.argsort(index, kind="stable")
    layers = {name: join([p.layers[name] for p in parts], order) for name in parts[0].layers}
    context = join([p.context for p in parts if p.context is not None] or [np.zeros(0, np.int64)])
    context_order = np.argsort(context, kind="stable")
    names = parts[0].context_layers or {}
    context_layers = {name: join([p.context_layers[name] for p in parts if p.context is not None], context_order)
                      for name in names}
    return Candidates(index=index[order], layers=layers, water=np.sort(join([p.water for p in parts])),
                      any_baseline=any(p.any_baseline for p in parts), context=context[context_order],
                      context_layers=context_layers)


def label_points(index: np.ndarray, width: int) -> tuple[np.ndarray, int]:
    """8-connected components of sparse pixels (sorted linear indices); numbered 0.. in raster
    order of each component's first pixel, as :func:`scipy.ndimage.label` numbers them."""
    n = index.size
    if n == 0:
        return np.zeros(0, np.int64), 0
    rows, cols = np.divmod(index, width)
    src, dst = [], []
    for dr, dc in ((0, 1), (1, -1), (1, 0), (1, 1)):
        ncol = cols + dc
        target = (rows + dr) * width + ncol
        pos = np.minimum(np.searchsorted(index, target), n - 1)
        hit = (ncol >= 0) & (ncol < width) & (index[pos] == target)
        src.append(np.flatnonzero(hit))
        dst.append(pos[hit])
    src, dst = np.concatenate(src), np.concatenate(dst)
    graph = sparse.coo_matrix((np.ones(src.size, np.int8), (src, dst)), shape=(n, n))
    count, labels = connected_components(graph, directed=False)
    first = np.full(count, n, dtype=np.int64)
    np.minimum.at(first, labels, np.arange(n))
    rank = np.empty(count, dtype=np.int64)
    rank[np.argsort(first)] = np.arange(count)
    return rank[labels], count


def water_distance_at(index: np.ndarray, water: np.ndarray, width: int, pixel_m: float) -> np.ndarray:
    """Distance (m) of each pixel to the nearest permanent water of the grid, exactly as a Euclidean
    distance transform of the whole grid gives it; MAX_WATER_DISTANCE_M when the grid has none."""
    if water.size == 0:
        return np.full(index.size, MAX_WATER_DISTANCE_M)
    if index.size == 0:
        return np.zeros(0)
    tree = cKDTree(np.column_stack(np.divmod(water, width)).astype(np.float64))
    dist, _ = tree.query(np.column_stack(np.divmod(index, width)).astype(np.float64), k=1, workers=-1)
    return dist * pixel_m


def _in_window(index: np.ndarray, rows: slice, cols: slice, width: int) -> np.ndarray:
    """Positions of the sorted linear ``index`` inside the window."""
    lo, hi = np.searchsorted(index, [rows.start * width, rows.stop * width])
    sel = np.arange(lo, hi)
    c = index[sel] % width
    return sel[(c >= cols.start) & (c < cols.stop)]


def _window_water(cands: Candidates, rows: slice, cols: slice, width: int) -> np.ndarray:
    """bool permanent water of a window, from the candidates and their context (every other
    pixel reads dry)."""
    out = np.zeros((rows.stop - rows.start, cols.stop - cols.start), dtype=bool)
    for index, values in ((cands.index, cands.layers), (cands.context, cands.context_layers)):
        if index is None or not index.size or not values or "water" not in values:
            continue
        sel = _in_window(index, rows, cols, width)
        r, c = np.divmod(index[sel], width)
        out[r - rows.start, c - cols.start] = permanent_water({name: values[name][sel] for name in ("water", "water_seen")
                                                               if name in values})
    return out


def sparse_channel_belt(cands: Candidates, dist: np.ndarray, grid_shape: tuple[int, int], pixel_m: float,
                        min_px: float) -> np.ndarray:
    """bool (n,): which candidates are in the channel belt, as :func:`pipeline.scars.channel_belt`
    finds it on the whole grid: per candidate component (all candidates, 8-connected, as
    ``find_scars`` labels its mask), from the water of its context window, which the chunks keep
    around every component of the mapping unit (:func:`block_candidates`)."""
    height, width = grid_shape
    near = belt_candidates(cands.layers, dist)
    belt = np.zeros(cands.index.size, dtype=bool)
    if not near.any():
        return belt
    comp, n = label_points(cands.index, width)
    rows, cols = np.divmod(cands.index, width)
    margin = context_px(pixel_m)
    order = np.argsort(comp, kind="stable")
    starts = np.searchsorted(comp[order], np.arange(n + 1))
    for c in np.unique(comp[near]):
        members = order[starts[c]:starts[c + 1]]
        r, k = rows[members], cols[members]
        window_rows = slice(max(int(r.min()) - margin, 0), min(int(r.max()) + margin + 1, height))
        window_cols = slice(max(int(k.min()) - margin, 0), min(int(k.max()) + margin + 1, width))
        shape = (window_rows.stop - window_rows.start, window_cols.stop - window_cols.start)
        component = np.zeros(shape, dtype=bool)
        component[r - window_rows.start, k - window_cols.start] = True
        candidates = np.zeros(shape, dtype=bool)
        candidates[r - window_rows.start, k - window_cols.start] = near[members]
        water = (_window_water(cands, window_rows, window_cols, width) if members.size >= min_px
                 else np.zeros(shape, dtype=bool))   # a small component is judged without its water
        cut = component_belt(water, component, candidates, pixel_m, min_px)
        belt[members] = cut[r - window_rows.start, k - window_cols.start]
    return belt


def _dense(cands: Candidates, dist: np.ndarray, rows: slice, cols: slice, width: int):
    """Dense (window) change layers, zone index and water distance from the candidates and their
    context; every other pixel reads 0 (no scar's features can reach it)."""
    shape = (rows.stop - rows.start, cols.stop - cols.start)
    sel = _in_window(cands.index, rows, cols, width)
    r, c = np.divmod(cands.index[sel], width)
    r, c = r - rows.start, c - cols.start
    out = {}
    for name, values in cands.layers.items():
        v = values[..., sel]
        grid = np.zeros(v.shape[:-1] + shape, dtype=v.dtype)
        grid[..., r, c] = v
        out[name] = grid
    if cands.context is not None and cands.context.size:
        around = _in_window(cands.context, rows, cols, width)
        rr, cc = np.divmod(cands.context[around], width)
        for name, values in cands.context_layers.items():
            out[name][rr - rows.start, cc - cols.start] = values[around]
    zone = out.pop(ZONE_LAYER)
    dist_grid = np.full(shape, MAX_WATER_DISTANCE_M)
    dist_grid[r, c] = dist[sel]
    return out, zone, dist_grid


WINDOW_MIN_PX = 384
"""Smallest window edge: small components nearby share one window (one find_scars call)."""


def _span(lo: int, hi: int, size: int) -> tuple[int, int]:
    """[lo, hi) grown to WINDOW_MIN_PX around its centre, within [0, size)."""
    grow = max(WINDOW_MIN_PX - (hi - lo), 0)
    lo, hi = lo - grow // 2, hi + grow - grow // 2
    return max(lo, 0), min(hi, size)


def find_scars_sparse(cands: Candidates, grid_shape: tuple[int, int], transform: Affine, min_confidence: int,
                      min_area_ha: float) -> pd.DataFrame:
    """The scar table of :func:`pipeline.scars.find_scars` on the whole grid, from its candidates
    and their context.

    Each component (of the candidates outside the channel belt) is described in a window around
    it: its bounding box plus the larger of the isolation distance and the context margin,
    clipped to the grid, so that the features' own windows clip where the whole grid's do.
    Components that fit in a window already described reuse it. Windows are described side by
    side on this machine's cores.
    """
    height, width = grid_shape
    pixel_m = abs(transform.a)
    pixel_ha = abs(transform.a * transform.e) / 1e4
    dist = water_distance_at(cands.index, cands.water, width, pixel_m)
    # Components as find_scars labels them, without the channel belt (decided here, per
    # component of all the candidates, and handed to each window's find_scars; the belt's pixels
    # stay in the windows as context).
    belt = sparse_channel_belt(cands, dist, grid_shape, pixel_m, min_area_ha / pixel_ha)
    outside = np.flatnonzero(~belt)
    comp, n = label_points(cands.index[outside], width)
    nothing = {k: np.zeros(v.shape[:-1] + (1, 1), v.dtype) for k, v in cands.layers.items() if k != ZONE_LAYER}
    empty = find_scars(nothing, np.zeros((1, 1), np.int32), transform, min_confidence, min_area_ha,
                       dist_water_m=np.zeros((1, 1))).table
    if n == 0:
        return empty
    rows, cols = np.divmod(cands.index[outside], width)
    counts = np.bincount(comp, minlength=n)
    rmin = np.full(n, height); rmax = np.full(n, -1); cmin = np.full(n, width); cmax = np.full(n, -1)
    np.minimum.at(rmin, comp, rows); np.maximum.at(rmax, comp, rows)
    np.minimum.at(cmin, comp, cols); np.maximum.at(cmax, comp, cols)
    first = np.full(n, outside.size); np.minimum.at(first, comp, np.arange(outside.size))
    pad = max(int(round(ISOLATION_M / pixel_m)) + 2, context_px(pixel_m))
    # Only components of the mapping unit can become scars (find_scars drops smaller ones first).
    todo = np.flatnonzero(counts * pixel_ha >= min_area_ha)
    # The windows, in the order of their first component; each component goes to the first
    # window its box plus margin lies in (there it has the result it has alone).
    windows: list[tuple[int, int, int, int, np.ndarray]] = []
    placed = np.zeros(n, dtype=bool)
    for c in todo:
        if placed[c]:
            continue
        r0, r1 = _span(rmin[c] - pad, rmax[c] + pad + 1, height)
        c0, c1 = _span(cmin[c] - pad, cmax[c] + pad + 1, width)
        inside = todo[(np.maximum(rmin[todo] - pad, 0) >= r0) & (np.minimum(rmax[todo] + pad + 1, height) <= r1)
                      & (np.maximum(cmin[todo] - pad, 0) >= c0) & (np.minimum(cmax[todo] + pad + 1, width) <= c1)]
        inside = inside[~placed[inside]]
        placed[inside] = True
        windows.append((r0, r1, c0, c1, inside))

    def describe(window) -> list[tuple[int, pd.DataFrame | None]]:
        r0, r1, c0, c1, members = window
        layers, zone, dist_grid = _dense(cands, dist, slice(r0, r1), slice(c0, c1), width)
        belt_grid = np.zeros(zone.shape, dtype=bool)
        sel = _in_window(cands.index, slice(r0, r1), slice(c0, c1), width)
        br, bc = np.divmod(cands.index[sel], width)
        belt_grid[br - r0, bc - c0] = belt[sel]
        window_transform = transform * Affine.translation(c0, r0)
        objects = find_scars(layers, zone, window_transform, min_confidence, min_area_ha, dist_water_m=dist_grid,
                             belt=belt_grid)
        table = objects.table
        out = []
        for k in members:
            label = int(objects.labels[rows[first[k]] - r0, cols[first[k]] - c0])
            out.append((int(k), table[table["label"] == label] if label else None))
        return out

    # Windows are independent: describe them on this machine's cores (numpy, scipy and GDAL
    # release the GIL for most of it).
    with ThreadPoolExecutor(max_workers=max(1, min(len(windows), os.cpu_count() or 1, 4))) as pool:
        results = dict(pair for described in pool.map(describe, windows) for pair in described)
    kept = [results[k] for k in sorted(results) if results[k] is not None]
    if not kept:
        return empty
    table = pd.concat(kept, ignore_index=True)
    table["label"] = np.arange(1, len(table) + 1)
    return table[empty.columns]
