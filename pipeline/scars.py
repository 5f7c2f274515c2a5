"""Scar objects: from the per-pixel change layers to polygons with features.

Labelling runs on 2-D change layers: a whole area grid, or a window of it that
:mod:`pipeline.streaming` rebuilds from the sparse candidates and their context (then with the
distance to water of the whole grid passed in), so that a scar spanning several dask chunks is one
object and its features are the whole grid's. Everything here is pure numpy / shapely on arrays
the caller has already computed.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass

import numpy as np
import pandas as pd
import rasterio.features
import shapely
from affine import Affine
from scipy import ndimage
from scipy.spatial import ConvexHull
from shapely.geometry import shape

from .aoi import repair
from .change import (
    CONFIDENCE_HIGH,
    CONFIDENCE_LOW,
    CONFIDENCE_NAMES,
    CONFIDENCE_NOMINAL,
    CONFIDENCE_NONE,
    PATH_FOREST_LOSS,
    PATH_MINING_SURFACE,
    PATH_NAMES,
)
from .features import FEATURES, context_px, scar_features

# 8-connectivity: diagonal neighbours belong to the same scar.
CONNECTIVITY = np.ones((3, 3), dtype=bool)
# Pixels that must hold a confidence level for the whole scar to hold it: the core's, a 3 × 3
# block at 10 m (object_confidence's default; find_scars passes core_px(pixel_m) ** 2).
CONFIRM_MIN_PX = 9
# The core a scar must hold, on the ground: a 3 × 3 block at 10 m, 2 × 2 at 20 and 30 m
# (:func:`core_px`), so that at 30 m a 0.5 ha scar can be found (a 3 × 3 block is 0.81 ha there).
CORE_M = 30.0
# A scar seen by one clear look only (``low``) must be this many times the mapping unit.
LOW_AREA_FACTOR = 2.0
# A small scar (under SMALL_AREA_FACTOR × the mapping unit) with no other change within
# ISOLATION_M must be confirmed over at least ISOLATED_CONFIRMED_SHARE of its pixels, not just a
# 3 × 3 core: isolated specks are where noise, haze and shadow edges alert; new scars usually
# grow next to other scars (mining fronts, roads).
SMALL_AREA_FACTOR = 2.0
ISOLATION_M = 100.0
ISOLATED_CONFIRMED_SHARE = 0.5
# The classifier's features and their computation live in pipeline.features (one window per scar).
WATER_MNDWI_MIN = 0.0     # post-change MNDWI above this: open water or a pond
BARE_NDVI_MAX = 0.3       # post-change NDVI below this (and not water): bare ground
MAX_WATER_DISTANCE_M = 5000.0
# Share of a scar within this distance of permanent water: an eroding bank is a strip along the
# river (most of it near water), a mining pit beside the river only touches it.
NEAR_WATER_M = 60.0
# River water, not ponds: a permanent water body that, inside the scar's context window (every
# pixel within features.CONTEXT_M of the scar, Chebyshev: what the streaming path keeps around a
# scar), runs out to the window's outer ring and is at least RIVER_LENGTH_MIN_M long there (its
# largest extent, pixel corners to corners). A river passing within NEAR_WATER_M of the scar
# crosses the window: it leaves it on both sides at least CONTEXT_M - NEAR_WATER_M = 240 m
# from the point where it passes, so it is at least 480 m long inside it (Madre de Dios rivers
# are 50-500 m wide and kilometres long). A mining pond (0.05-5 ha, compact) is under about
# 360 m long (a 5 ha square is 224 m on a side, 316 m across its diagonal; a 5 ha pond twice as
# long as wide 354 m) and mostly lies inside the ring. Lengths on the ground, so they mean the
# same at 10 m and at 30 m. Only the window's water counts (a channel leaving the scar straight
# outwards shows 300 m of itself and is not a river from there), so streamed windows agree with
# the whole grid.
RIVER_LENGTH_MIN_M = 400.0


@dataclass(frozen=True)
class ScarObjects:
    """The scars of one area grid."""

    table: pd.DataFrame
    """One row per scar: label, geometry (area CRS), zone_index, confidence, looks, FEATURES."""
    labels: np.ndarray
    """int32 (y, x) label image; 0 = no scar."""


def core_px(pixel_m: float) -> int:
    """Edge, in pixels, of the square block a scar must hold (its core): CORE_M on the ground,
    and never under 2 pixels (a line one pixel wide is an edge artefact at any resolution)."""
    return max(2, int(round(CORE_M / pixel_m)))


def _solid(mask: np.ndarray, labels: np.ndarray, n: int, core_edge: int) -> np.ndarray:
    """Labels of components that hold at least one ``core_edge``² block: thin lines and specks go."""
    core = ndimage.binary_erosion(mask, structure=np.ones((core_edge, core_edge), dtype=bool))
    keep = np.zeros(n + 1, dtype=bool)
    keep[np.unique(labels[core])] = True
    keep[0] = False
    return keep


def find_scars(
    change: dict[str, np.ndarray],
    zone_index: np.ndarray,
    transform: Affine,
    min_confidence: int,
    min_area_ha: float,
    dist_water_m: np.ndarray | None = None,
    belt: np.ndarray | None = None,
) -> ScarObjects:
    """Connected scars of the change layers, inside the monitored zones.

    Parameters
    ----------
    change
        The per-pixel layers of :func:`pipeline.change.detect_change`, as numpy arrays (y, x);
        ``look_bits`` (look_byte, y, x).
    zone_index
        int (y, x): 1-based row of the zones table each pixel falls in; 0 = not monitored.
    transform
        Affine transform of the grid (area UTM CRS, metres).
    min_confidence
        Lowest confidence code that is a scar.
    min_area_ha
        Smallest scar kept, hectares.
    dist_water_m
        float (y, x): distance of each pixel to the nearest permanent water of the whole grid,
        metres (:func:`water_distance_m`); needed where the layers are a window of a larger grid
        (:mod:`pipeline.streaming`), computed from the layers when None.
    belt
        bool (y, x): the channel belt's pixels (:func:`channel_belt`), which are no scar; needed
        with ``dist_water_m`` where the layers are a window (the belt of a candidate component
        depends on its whole context window), computed from the layers when None.
    """
    pixel_ha = abs(transform.a * transform.e) / 1e4
    if dist_water_m is None:
        dist_water_m = water_distance_m(change, abs(transform.a))
    mask = (change["confidence"] >= CONFIDENCE_LOW) & (zone_index > 0)
    if belt is None:
        belt = channel_belt(change, dist_water_m, mask, abs(transform.a), min_area_ha / pixel_ha)
    mask &= ~belt
    labels, n = ndimage.label(mask, structure=CONNECTIVITY)
    core_edge = core_px(abs(transform.a))
    keep = _solid(mask, labels, n, core_edge)
    counts = np.bincount(labels.ravel(), minlength=n + 1)
    keep &= counts * pixel_ha >= min_area_ha
    confidence = object_confidence(change["confidence"], labels, np.arange(1, n + 1), core_edge**2)
    keep[1:] &= confidence >= min_confidence
    # Evidence from a single look must cover more ground than confirmed evidence.
    keep[1:] &= (confidence > CONFIDENCE_LOW) | (counts[1:] * pixel_ha >= LOW_AREA_FACTOR * min_area_ha)
    keep &= ~_isolated_and_unsure(change["confidence"], labels, counts, keep, mask,
                                  SMALL_AREA_FACTOR * min_area_ha / pixel_ha,
                                  int(round(ISOLATION_M / abs(transform.a))))
    relabel = np.zeros(n + 1, dtype=np.int32)
    relabel[keep] = np.arange(1, keep.sum() + 1, dtype=np.int32)
    labels = relabel[labels]
    return ScarObjects(table=describe_scars(change, labels, zone_index, transform, dist_water_m), labels=labels)


def _isolated_and_unsure(confidence: np.ndarray, labels: np.ndarray, counts: np.ndarray, keep: np.ndarray,
                         candidates: np.ndarray, small_px: float, radius_px: int) -> np.ndarray:
    """bool (n + 1,): kept small scars with no other change within ``radius_px`` whose confirmed
    (nominal or better) pixels are under ISOLATED_CONFIRMED_SHARE of the scar."""
    out = np.zeros(counts.shape, dtype=bool)
    small = np.flatnonzero(keep & (counts < small_px))
    if not small.size:
        return out
    confirmed = ndimage.sum_labels(confidence >= CONFIDENCE_NOMINAL, labels, small)
    unsure = confirmed < ISOLATED_CONFIRMED_SHARE * counts[small]
    boxes = ndimage.find_objects(labels)
    disk = ndimage.iterate_structure(ndimage.generate_binary_structure(2, 1), radius_px)
    for label in small[unsure]:
        rows, cols = boxes[label - 1]
        r0, c0 = max(rows.start - radius_px, 0), max(cols.start - radius_px, 0)
        window = (slice(r0, rows.stop + radius_px), slice(c0, cols.stop + radius_px))
        own = labels[window] == label
        ring = ndimage.binary_dilation(own, structure=disk) & ~own
        out[label] = not (candidates[window] & ring).any()
    return out


def belt_candidates(change: dict[str, np.ndarray], dist_water_m: np.ndarray) -> np.ndarray:
    """bool: pixels that only the mining-surface path flagged, within NEAR_WATER_M of any water
    seen in the baseline (``dist_water_m``: :func:`water_distance_m`): where the channel belt can
    lie (:func:`channel_belt`). Elementwise: works on a grid or on any set of its pixels."""
    path = change.get("detection_path")
    if path is None:
        return np.zeros(np.shape(change["confidence"]), dtype=bool)
    surface_only = np.nan_to_num(path).astype(int) == PATH_MINING_SURFACE
    return surface_only & (dist_water_m <= NEAR_WATER_M)


def near_river(water: np.ndarray, scar: np.ndarray, pixel_m: float) -> np.ndarray:
    """bool: the pixels of a window around one scar (or candidate component) that lie within
    NEAR_WATER_M of river water (:func:`river_water`, as seen from ``scar``); ``water``: permanent
    water of the window. The window must hold ``scar``'s whole context (its box plus
    features.CONTEXT_M, clipped to the grid)."""
    river = river_water(water, scar, pixel_m)
    if not river.any():
        return np.zeros(scar.shape, dtype=bool)
    return ndimage.distance_transform_edt(~river) * pixel_m <= NEAR_WATER_M


def component_belt(water: np.ndarray, component: np.ndarray, candidates: np.ndarray, pixel_m: float,
                   min_px: float) -> np.ndarray:
    """bool: the channel belt of one candidate component, in a window around it that holds its
    whole context (its box plus features.CONTEXT_M, clipped to the grid). ``water``: permanent
    water of the window; ``component``: the component's pixels; ``candidates``:
    :func:`belt_candidates` of the window; ``min_px``: the mapping unit in pixels. A component of
    the mapping unit loses the candidates within NEAR_WATER_M of river water as seen from the
    component (:func:`near_river`); a smaller one, which can never be a scar and only counts as
    change nearby for the isolation test, loses every candidate (within NEAR_WATER_M of any
    water): the streaming path keeps no context around it to tell a river from a pond."""
    own = component & candidates
    if not own.any():
        return own
    if component.sum() < min_px:
        return own
    return own & near_river(water, component, pixel_m)


def channel_belt(change: dict[str, np.ndarray], dist_water_m: np.ndarray, mask: np.ndarray, pixel_m: float,
                 min_px: float) -> np.ndarray:
    """bool (y, x): the pixels of the active channel belt, which are no scar: new surface that
    only the mining-surface path flagged within NEAR_WATER_M of a *river* (:func:`river_water`:
    bars are built and scoured and banks slump there from one season to the next, so new sand or
    water there is the river's doing). Within NEAR_WATER_M of old mining ponds it is a pit growing
    into new ground beside its own ponds, and stays. A pit beside the river is still found where it
    lies farther out, and forest lost at the water's edge is still the forest-loss path's (and the
    bank rule's) to judge.

    Decided per candidate component (8-connected ``mask``: confidence at least low inside a
    zone) from the water in its context window (:func:`component_belt`), so a component that
    touches both a river and ponds loses only its strip along the river, and the streaming path,
    which keeps that window around every component that may become a scar, cuts the same pixels
    for any chunk size (:func:`pipeline.streaming.find_scars_sparse`). ``min_px``: the mapping
    unit in pixels; ``dist_water_m``: :func:`water_distance_m` of the whole grid."""
    candidates = belt_candidates(change, dist_water_m) & mask
    belt = np.zeros(mask.shape, dtype=bool)
    if not candidates.any():
        return belt
    labels, n = ndimage.label(mask, structure=CONNECTIVITY)
    water = permanent_water(change)
    margin = context_px(pixel_m)
    boxes = ndimage.find_objects(labels)
    for label in np.unique(labels[candidates]):
        window = context_window(boxes[label - 1], margin)
        component = labels[window] == label
        belt[window] |= component_belt(water[window], component, candidates[window], pixel_m, min_px)
    return belt


def object_confidence(confidence: np.ndarray, labels: np.ndarray, index: np.ndarray,
                      min_px: int = CONFIRM_MIN_PX) -> np.ndarray:
    """Confidence of each scar: the highest level that at least ``min_px`` of its pixels hold
    (the core's pixels: :func:`core_px` squared; 9 at 10 m, 4 at 20 and 30 m).

    Confirmation is spatial as well as temporal: under broken cloud the repeat look that
    confirms a new scar may see only part of it, so a scar whose core is confirmed is
    confirmed as a whole; pixels seen by one look only are never enough.
    """
    out = np.full(index.shape, CONFIDENCE_NONE, dtype=int)
    for level in (CONFIDENCE_LOW, CONFIDENCE_NOMINAL, CONFIDENCE_HIGH):
        held = _label_sums(confidence >= level, labels, index) >= min_px
        out[held] = level
    return out


def _polygons(labels: np.ndarray, transform: Affine) -> dict[int, shapely.Geometry]:
    parts: dict[int, list] = {}
    for geom, value in rasterio.features.shapes(labels, mask=labels > 0, transform=transform, connectivity=8):
        parts.setdefault(int(value), []).append(shape(geom))
    # Pixel outlines of an 8-connected scar touch at single corners: make_valid turns such
    # self-touching rings into valid (Multi)Polygons, which GIS tools and validators expect.
    return {label: repair(shapely.union_all(polys)) for label, polys in parts.items()}


def _majority(values: np.ndarray, labels: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Most common value of a small non-negative int layer within each label."""
    top = int(values.max()) + 1 if values.size else 1
    votes = np.stack([_label_sums(values == v, labels, index) for v in range(top)])
    return votes.argmax(axis=0)


def _median_look(looks: np.ndarray, labels: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Per label, the median (rounded down) of a per-pixel look index, ignoring -1; -1 when none.

    For ``prior_look``: the latest look at or after which half the scar's pixels were still
    seen clear without change.
    """
    def median(values: np.ndarray) -> float:
        known = values[values >= 0]
        return float(np.floor(np.median(known))) if known.size else -1.0

    return ndimage.labeled_comprehension(looks, labels, index, median, float, -1.0)


def _onset_pattern(first: np.ndarray, dist_water: np.ndarray, labels: np.ndarray, index: np.ndarray) -> dict:
    """How a scar appeared: the spread of its pixels' first confirmed look, and how that onset
    correlates with distance to permanent water.

    A clearing or a mining pit appears within a look or two; a river eating its bank advances
    from the water's edge inland, look after look (spread large, correlation near +1).
    """
    valid = (first >= 0) & (labels > 0)
    f = np.where(valid, first, 0.0).astype(float)
    d = np.where(valid, dist_water, 0.0).astype(float)

    def total(layer):
        return _label_sums(layer, labels, index)

    n = np.maximum(total(valid), 1)
    mean_f, mean_d = total(f) / n, total(d) / n
    var_f = np.maximum(total(f * f) / n - mean_f ** 2, 0)
    var_d = np.maximum(total(d * d) / n - mean_d ** 2, 0)
    cov = total(f * d) / n - mean_f * mean_d
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.where((var_f > 1e-9) & (var_d > 1e-9), cov / np.sqrt(var_f * var_d), 0.0)
    return {"onset_spread_looks": np.sqrt(var_f), "onset_water_corr": np.clip(corr, -1, 1)}


def detection_paths(change: dict[str, np.ndarray], labels: np.ndarray, index: np.ndarray) -> list[str]:
    """Per scar, which test found it: ``forest_loss``, ``mining_surface`` or ``both`` (some of its
    pixels by each, or pixels found by both; see :mod:`pipeline.change`)."""
    path = np.nan_to_num(change.get("detection_path", np.full(labels.shape, PATH_FOREST_LOSS))).astype(int)
    code = np.zeros(index.shape, dtype=int)
    for bit in (PATH_FOREST_LOSS, PATH_MINING_SURFACE):
        code |= np.where(_label_extremes((path & bit) > 0, labels, index, largest=True) > 0, bit, 0)
    return [PATH_NAMES.get(int(c), PATH_NAMES[PATH_FOREST_LOSS]) for c in code]


# Per-scar evidence columns kept for alerts (delta_*, water/bare fractions) and the bank rule
# (pipeline.classify.banks): not classifier features. The onset pattern depends on how many looks
# a run has, so a model must not learn from it; a rule that needs a dense series may.
EVIDENCE = ("area_ha", "delta_ndvi", "delta_nbr", "water_fraction", "bare_fraction", "near_water_fraction",
            "near_river_fraction", "onset_spread_looks", "onset_water_corr")


def context_window(box: tuple[slice, slice], margin: int) -> tuple[slice, slice]:
    """A scar's bounding box (``ndimage.find_objects``) grown by ``margin`` pixels, clipped at the
    grid's top and left (slicing clips the bottom and right)."""
    return tuple(slice(max(b.start - margin, 0), b.stop + margin) for b in box)


def window_features(change: dict[str, np.ndarray], labels: np.ndarray, pixel_m: float) -> pd.DataFrame:
    """FEATURES of every labelled scar, each computed on its own window: the scar's bounding box
    plus features.CONTEXT_M of context (so scars can be streamed window by window)."""
    margin = context_px(pixel_m)
    planes = {k: v for k, v in change.items() if np.ndim(v) == 2}
    rows = []
    for label, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is None:
            rows.append(dict.fromkeys(FEATURES, 0.0))
            continue
        window = context_window(box, margin)
        layers = {k: v[window] for k, v in planes.items()}
        rows.append(scar_features(layers, labels[window] == label, pixel_m))
    return pd.DataFrame(rows, columns=list(FEATURES))


def permanent_water(change: dict[str, np.ndarray]) -> np.ndarray:
    """bool (y, x): water in the baseline, or seen in any baseline look (at low water a channel's
    sandbars hide its edge)."""
    return (change["water"] > 0) | (change.get("water_seen", change["water"]) > 0)


def water_distance_m(change: dict[str, np.ndarray], pixel_m: float) -> np.ndarray:
    """float (y, x): distance to the nearest permanent water pixel, metres; MAX_WATER_DISTANCE_M
    everywhere when the grid holds none."""
    water = permanent_water(change)
    if water.any():
        return ndimage.distance_transform_edt(~water) * pixel_m
    return np.full(water.shape, MAX_WATER_DISTANCE_M)


def dilate_square(mask: np.ndarray, radius: int) -> np.ndarray:
    """bool: ``mask`` dilated by a (2 radius + 1)² square (Chebyshev distance ≤ ``radius``;
    separable, linear in the window's size)."""
    if radius <= 0 or not mask.any():
        return mask.copy()
    grown = ndimage.maximum_filter1d(mask.view(np.uint8), 2 * radius + 1, axis=0, mode="constant")
    return ndimage.maximum_filter1d(grown, 2 * radius + 1, axis=1, mode="constant").astype(bool)


def _length_m(rows: np.ndarray, cols: np.ndarray, pixel_m: float) -> float:
    """Largest extent of a set of pixels (its Feret diameter over the pixels' corners), metres."""
    height, width = int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)
    if height == 1 or width == 1:
        return float(np.hypot(height, width) * pixel_m)
    corners = np.unique(np.concatenate([np.column_stack((rows + dr, cols + dc)) for dr in (0, 1) for dc in (0, 1)]),
                        axis=0).astype(float)
    hull = corners[ConvexHull(corners).vertices]
    return float(np.sqrt(((hull[:, None, :] - hull[None, :, :]) ** 2).sum(-1)).max() * pixel_m)


def river_water(water: np.ndarray, scar: np.ndarray, pixel_m: float) -> np.ndarray:
    """bool: the pixels of ``water`` (permanent water, a window around one scar) that belong to a
    river as seen from the scar (see RIVER_LENGTH_MIN_M): the 8-connected water bodies, cut to
    the scar's context window (``scar`` dilated by features.CONTEXT_M, Chebyshev), that reach its
    outer ring and are at least RIVER_LENGTH_MIN_M long inside it. Only the window's pixels are
    read, so streamed windows (which hold nothing else) and the whole grid agree; where the grid's
    edge clips the window, a water body is judged on the part inside, and the context's pixels on
    the grid's edge count as the ring (the water runs out of sight there). The window is the
    scar's box plus the context margin, clipped to the grid: the context reaches the window's
    border only on the ring or on the grid's edge."""
    margin = context_px(pixel_m)
    context = dilate_square(scar, margin)
    ring = context & ~dilate_square(scar, margin - 1)
    border = np.zeros(context.shape, dtype=bool)
    border[[0, -1], :] = border[:, [0, -1]] = True
    ring |= context & border
    labels, n = ndimage.label(water & context, structure=CONNECTIVITY)
    river = np.zeros(n + 1, dtype=bool)
    boxes = ndimage.find_objects(labels)
    for label in np.unique(labels[ring & (labels > 0)]):
        box = boxes[label - 1]
        if max(b.stop - b.start for b in box) * pixel_m >= RIVER_LENGTH_MIN_M:
            river[label] = True   # its bounding box alone is that long
            continue
        rows, cols = np.nonzero(labels[box] == label)
        river[label] = _length_m(rows, cols, pixel_m) >= RIVER_LENGTH_MIN_M
    return river[labels]


def near_river_fractions(change: dict[str, np.ndarray], labels: np.ndarray, index: np.ndarray, pixel_m: float,
                         near_water: np.ndarray) -> np.ndarray:
    """Per scar, the share of its pixels within NEAR_WATER_M of river water (:func:`river_water`;
    permanent water as :func:`permanent_water` reads it). ``near_water``: each scar's share within
    NEAR_WATER_M of any water; a scar with none is not looked at (it reads 0)."""
    out = np.zeros(index.size)
    todo = np.flatnonzero(near_water > 0)
    if not todo.size:
        return out
    water = permanent_water(change)
    margin = context_px(pixel_m)
    boxes = ndimage.find_objects(labels)
    for i in todo:
        window = context_window(boxes[index[i] - 1], margin)
        scar = labels[window] == index[i]
        out[i] = near_river(water[window], scar, pixel_m)[scar].mean()
    return out


_LABELLED = threading.local()


def _labelled(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``labels.ravel()`` and the flat positions of its labelled pixels, found once per label
    grid: a window's twenty-odd per-scar reductions share them (label grids are never changed
    in place; the cache holds the last grid of each thread, by identity)."""
    cached = getattr(_LABELLED, "entry", None)
    if cached is not None and cached[0]() is labels:
        return cached[1], cached[2]
    flat = labels.ravel()
    at = np.flatnonzero(flat)
    _LABELLED.entry = (weakref.ref(labels), flat, at)
    return flat, at


def _label_sums(layer: np.ndarray, labels: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``ndimage.sum_labels(layer, labels, index)`` for ``index`` = 1..n, over the labelled pixels
    only: each label's values added in raster order, as ndimage adds them (the same float64 sums),
    without a pass over the unlabelled rest of the window."""
    if index.size == 0:
        return np.zeros(0)
    flat, at = _labelled(labels)
    weights = np.asarray(layer).ravel()[at].astype(np.float64)
    return np.bincount(flat[at], weights=weights, minlength=int(index.max()) + 1)[index]


def _label_extremes(layer: np.ndarray, labels: np.ndarray, index: np.ndarray, largest: bool) -> np.ndarray:
    """``ndimage.maximum`` (``largest``) or ``ndimage.minimum`` of ``layer`` per label, ``index`` =
    1..n, over the labelled pixels only (ndimage sorts the whole window). As ndimage, which takes
    the ends of each label's sorted values (NaN sorts last): the minimum skips NaN unless every
    value is NaN, the maximum is NaN if any value is."""
    flat, at = _labelled(labels)
    values = np.asarray(layer).ravel()[at]
    dtype = values.dtype
    if dtype == bool:
        values = values.view(np.uint8)
    if np.issubdtype(values.dtype, np.floating):
        start, ufunc = (-np.inf, np.maximum) if largest else (np.nan, np.fmin)
    else:
        info = np.iinfo(values.dtype)
        start, ufunc = (info.min, np.maximum) if largest else (info.max, np.minimum)
    out = np.full(int(index.max()) + 1, start, dtype=values.dtype)
    with np.errstate(invalid="ignore"):
        ufunc.at(out, flat[at], values)
    return out[index].astype(dtype, copy=False)


def _label_means(layer: np.ndarray, labels: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``ndimage.mean(layer, labels, index)`` over the labelled pixels only (see :func:`_label_sums`)."""
    counts = np.bincount(labels.ravel(), minlength=int(index.max()) + 1)[index]
    return _label_sums(layer, labels, index) / counts


def _looks_hit(look_bits: np.ndarray, labels: np.ndarray, index: np.ndarray) -> np.ndarray:
    """bool (n labels, looks): whether any pixel of each label flags each look (every bit of the
    packed ``look_bits``, padding bits included: they are zero)."""
    flat, at = _labelled(labels)
    packed = np.zeros((int(index.max()) + 1, look_bits.shape[0]), dtype=np.uint8)
    np.bitwise_or.at(packed, flat[at], look_bits.reshape(look_bits.shape[0], -1)[:, at].T.astype(np.uint8))
    return np.unpackbits(packed, axis=1).astype(bool)[index]


def describe_scars(
    change: dict[str, np.ndarray], labels: np.ndarray, zone_index: np.ndarray, transform: Affine,
    dist_water: np.ndarray | None = None,
) -> pd.DataFrame:
    """Geometry, attribution and classifier features of every labelled scar (``dist_water``:
    see :func:`find_scars`)."""
    index = np.arange(1, int(labels.max()) + 1)
    columns = ["label", "geometry", "zone_index", "confidence", "first_look", "last_look", "prior_look", "looks",
               *EVIDENCE, *FEATURES, "detection_path"]
    if index.size == 0:
        return pd.DataFrame(columns=columns)
    pixel_m = abs(transform.a)
    pixel_ha = abs(transform.a * transform.e) / 1e4

    def mean(layer: np.ndarray) -> np.ndarray:
        return _label_means(np.nan_to_num(layer), labels, index)

    water_pixels = np.nan_to_num(change["post_mndwi"], nan=-1) > WATER_MNDWI_MIN
    bare_pixels = (np.nan_to_num(change["post_ndvi"], nan=1) < BARE_NDVI_MAX) & ~water_pixels
    if dist_water is None:
        dist_water = water_distance_m(change, pixel_m)
    first = change["first_look"]
    last = change["last_look"]
    valid_first = np.where(first >= 0, first, np.inf)
    # Padding bits past the last look are zero, so unpacking every bit is safe.
    look_hits = _looks_hit(change["look_bits"], labels, index)
    polygons = _polygons(labels, transform)

    confirm_px = core_px(pixel_m) ** 2
    near_water = _label_means(dist_water <= NEAR_WATER_M, labels, index)
    table = pd.DataFrame({
        "label": index,
        "geometry": [polygons[i] for i in index],
        "zone_index": _majority(zone_index, labels, index),
        "confidence": [CONFIDENCE_NAMES[int(c)] for c in object_confidence(change["confidence"], labels, index, confirm_px)],
        "first_look": _label_extremes(valid_first, labels, index, largest=False),
        "last_look": _label_extremes(last, labels, index, largest=True),
        "prior_look": _median_look(change["prior_look"], labels, index) if "prior_look" in change
        else np.full(index.size, -1.0),
        "looks": [tuple(np.flatnonzero(row)) for row in look_hits],
        "area_ha": np.bincount(labels.ravel())[1:] * pixel_ha,
        "delta_ndvi": mean(change["delta_ndvi"]),
        "delta_nbr": mean(change["delta_nbr"]),
        "water_fraction": _label_means(water_pixels, labels, index),
        "bare_fraction": _label_means(bare_pixels, labels, index),
        # For the bank rule, not a feature: in training it told banks from pits too easily, and
        # then called every pit beside a river a bank.
        "near_water_fraction": near_water,
        # For the river-dynamics rule (pipeline.classify.banks): water nearby that is a river, not
        # a field of old mining ponds.
        "near_river_fraction": near_river_fractions(change, labels, index, pixel_m, near_water),
        **_onset_pattern(first, dist_water, labels, index),
        "detection_path": detection_paths(change, labels, index),
    })
    features = window_features(change, labels, pixel_m)
    for name in FEATURES:
        table[name] = features[name].to_numpy()
    # Low-confidence pixels have no first look; fall back to the single flagging look.
    no_first = ~np.isfinite(table["first_look"].to_numpy(dtype=float))
    table.loc[no_first, "first_look"] = [min(lk) if lk else -1 for lk in table.loc[no_first, "looks"]]
    table["first_look"] = table["first_look"].astype(int)
    table["last_look"] = np.maximum(table["last_look"].astype(int), table["first_look"])
    # the bracket's start is before the scar's first look (a pixel may have changed later)
    table["prior_look"] = np.minimum(table["prior_look"].astype(int), table["first_look"] - 1)
    return table[columns]
