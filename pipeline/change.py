"""Change detection: baseline statistics per pixel against the monitoring looks.

For each pixel, the clear baseline looks give a robust reference (median) and spread (MAD) of
NDVI, NBR and MNDWI, and the median of every reflectance band. Two tests flag a clear
monitoring look, and both feed one alert stream:

*Forest loss* (:data:`PATH_FOREST_LOSS`): the pixel was forest in the baseline, and NDVI falls
below the reference by at least ``ndvi_drop_min`` and by ``drop_sigma`` times the pixel's own
spread, and NBR falls too; or, for forest felled under a green cover (pasture or crop already
growing at the first look), NDVI falls by half that and NBR by ``grass_nbr_drop_min`` and by
``drop_sigma`` times the pixel's own NBR spread (a seasonal forest's dry looks are in its spread).

*New mining surface* (:data:`PATH_MINING_SURFACE`): the look shows what alluvial mining leaves
(bright bare sediment or gravel, or a turbid or clear pond, :func:`mining_surface`) on ground
that was vegetated in the baseline, whatever its cover (forest, secondary growth, scrub,
pasture, a bank above the high-water line), with the same NDVI drop. Ground that was already
open (bare or water) in the baseline, or that any clear baseline look saw under water, is old
stock, channel or sandbar and never flags; the new ground a pit grows into does.

Either way the look must not have brightened like haze (:func:`hazy`). A flag is *confirmed*
when the next clear look flags it again (by either test), and the change must *persist*: most
clear looks from then on still flag it. Look-alikes fail these tests for physical reasons:
sandbars and moving channels were water in a baseline look; seasonal water and dry-season bare
fields go back (persistence); a burn is dark (no sediment brightness, no water); haze and thin
cloud brighten the blue more than the SWIR.

Confidence per pixel: ``low`` (flagged by the last clear look, not yet confirmable: a run on one
baseline and one monitor composite gives only ``low``), ``nominal`` (confirmed), ``high``
(confirmed and flagged by three or more clear looks and, where more than one sensor family —
Sentinel-2, Landsat — saw the pixel clearly after the change began, flagged by each of them).

The work is one pure numpy function over a (time, y, x) block, :func:`detect_block`, that
:func:`detect_change` maps over dask chunks (time whole, y and x chunked); both paths give the
same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import xarray as xr

from .features import mining_ground
from .model import BANDS
from .medians import nanmedians

CONFIDENCE_NONE, CONFIDENCE_LOW, CONFIDENCE_NOMINAL, CONFIDENCE_HIGH = 0, 1, 2, 3
CONFIDENCE_NAMES = {CONFIDENCE_LOW: "low", CONFIDENCE_NOMINAL: "nominal", CONFIDENCE_HIGH: "high"}
CONFIDENCE_CODES = {name: code for code, name in CONFIDENCE_NAMES.items()}

# Which test flagged a pixel (the ``detection_path`` layer is the sum of the bits that fired).
PATH_FOREST_LOSS = 1      # loss of baseline forest
PATH_MINING_SURFACE = 2   # new bare sediment or pond on ground vegetated in the baseline
PATH_NAMES = {PATH_FOREST_LOSS: "forest_loss", PATH_MINING_SURFACE: "mining_surface",
              PATH_FOREST_LOSS | PATH_MINING_SURFACE: "both"}

# Per-look input layers, in the order detect_block takes them.
INPUTS = ("ndvi", "nbr", "mndwi", "bsi", *BANDS)  # BANDS in model.BANDS order
# Per-pixel output layers, in the order detect_block stacks them.
FIELDS = (
    "confidence",   # 0 none, 1 low, 2 nominal, 3 high
    "first_look",   # index of the first look of the confirmed change (-1 none)
    "last_look",    # index of the last clear look that still flags it (-1 none)
    "n_flagged",    # clear monitoring looks that flag it from first_look on
    "baseline_ndvi",
    "baseline_mndwi",
    "delta_ndvi",   # baseline median minus the median over flagging looks
    "delta_nbr",
    "post_ndvi",    # medians over the flagging looks
    "post_mndwi",
    "post_bsi",
    "forest",       # 1 where the baseline is forest
    "water",        # 1 where the baseline is permanent water
    "water_seen",   # 1 where any clear baseline look saw open water (channels with seasonal bars)
    "n_baseline",   # clear baseline looks
    "detection_path",  # PATH_* bits of the tests that flagged the evidence looks (0 none)
    "latest_mining_ground",  # 1 where the latest evidence look shows a pond or sediment, 0 other ground (NaN: no change)
    *(f"post_{b}" for b in BANDS),   # reflectance medians over the flagging looks (NaN: no change)
    *(f"base_{b}" for b in BANDS),   # reflectance medians over the clear baseline looks
    "prior_look",   # last clear look without a flag before the change began (-1 none): the date bracket
)
HAZE_BLUE_RISE_MIN = 0.03  # blue reflectance rise below which a look is never called hazy
HAZE_NDVI_MIN = 0.15       # below this NDVI no canopy shows through: ground, not haze
MIN_SPREAD = 0.03  # floor of the robust NDVI spread: a baseline of 1–2 looks has no usable MAD

# New mining surface (see mining_surface). Reflectance thresholds are surface reflectance
# (0–1), the same for Sentinel-2 and Landsat (HLS-adjusted), single looks and composites; checked
# on the real La Pampa Landsat clip, where 93 % of the low-NDVI pixels of the 2018 AMW mining
# stock (sand and tailings ponds) pass and intact forest does not.
# NDVI below 0.3: no closed green cover left (bare soil and sand 0.05–0.25, water < 0.1; the
# same line the scars stage uses for ``bare_fraction``).
SURFACE_NDVI_MAX = 0.3
# Exposed sediment, gravel and tailings are bright: the mean of red, NIR and SWIR1 (a broadband
# albedo proxy) is 0.2–0.4 on mining sand and fresh soil, 0.05–0.13 on the charcoal and ash of a
# burn, so a burn never passes as sediment.
SEDIMENT_ALBEDO_MIN = 0.15
# Ground reflects more red and SWIR1 than blue (iron oxides, quartz, dry soil); cloud, haze and
# their soft edges scatter the blue most, so they fail either test.
# Open water: MNDWI > 0 (green above SWIR1). Liquid water absorbs SWIR1, so even the most turbid
# tailings pond stays under 0.2 there, while clouds, which can also have MNDWI > 0, do not.
POND_MNDWI_MIN = 0.0
POND_SWIR16_MAX = 0.2


@dataclass(frozen=True)
class ChangeParams:
    """Thresholds of the change test (see DetectionConfig for their meaning)."""

    forest_ndvi_min: float = 0.65
    ndvi_drop_min: float = 0.2
    nbr_drop_min: float = 0.1
    drop_sigma: float = 4.0
    persistence_min: float = 0.6
    high_min_looks: int = 3
    grass_nbr_drop_min: float = 0.25
    """NBR fall from which forest lost under a green cover (pasture sown at once, grass or crop by
    the first look) is forest loss although its NDVI fell by only half of the NDVI test's
    threshold: closed canopy has NBR ≈ 0.6–0.7, pasture and crops ≈ 0.3–0.45, because felling
    removes the shade and water of the crowns that keep SWIR2 low, while green grass keeps NDVI at
    0.6–0.7 (a fall of 0.1–0.2). Drought, phenology and selective logging lower a forest's NBR by
    about 0.05–0.15."""
    grass_ndvi_share: float = 0.5
    """Share of the NDVI test's threshold that the NDVI fall must reach on the NBR test."""
    vegetated_ndvi_min: float = 0.4
    """Baseline NDVI from which ground counts as vegetated for the mining-surface path: by linear
    mixing of bare ground (~0.1) and closed canopy (~0.85), 0.4 is about half green cover; below
    it the ground was already mostly open (old pits, bare fields, bars) and is old stock."""


def n_fields(n_looks: int) -> int:
    """Layers detect_block returns: the FIELDS, then the packed per-look flag bytes."""
    return len(FIELDS) + (n_looks + 7) // 8


def hazy(blue: np.ndarray, red: np.ndarray, swir16: np.ndarray, ndvi: np.ndarray, mndwi: np.ndarray,
         base_blue: np.ndarray, base_red: np.ndarray, base_swir16: np.ndarray) -> np.ndarray:
    """Looks that brightened like haze or a thin cloud edge rather than like exposed ground.

    Haze and thin cloud scatter short wavelengths most: the brightness they add is largest in
    the blue, smaller in the red and smaller still in the SWIR, and the canopy still shows
    through (NDVI stays well above bare ground). Cleared soil and mining sediment raise the red
    and SWIR1 more than the blue (iron oxides, quartz: white sand brightens the blue a lot, but
    the red more); water lowers SWIR1 and has MNDWI > 0. So a look whose blue rose from the
    pixel's baseline median by more than its red and its SWIR1 did, whose NDVI is still above
    HAZE_NDVI_MIN and that is not water is not trusted as evidence of change. SCL misses most
    of these (soft cloud edges, thin haze); this catches them where they would otherwise alert.
    """
    blue_rise = blue - base_blue
    with np.errstate(invalid="ignore"):
        return ((blue_rise > swir16 - base_swir16) & (blue_rise > red - base_red) & (blue_rise > HAZE_BLUE_RISE_MIN)
                & (ndvi > HAZE_NDVI_MIN) & (mndwi < 0))


def sensor_family(platform: str) -> str:
    """``landsat`` for any Landsat platform, ``sentinel-2`` for S2A/B/C, else the name itself."""
    name = str(platform).lower()
    for family in ("landsat", "sentinel-2"):
        if name.startswith(family):
            return family
    return name


def family_codes(platforms: list[str]) -> np.ndarray:
    """int (time,) sensor-family code of each look (0, 1, … in order of first appearance)."""
    families = [sensor_family(p) for p in platforms]
    order = list(dict.fromkeys(families))
    return np.array([order.index(f) for f in families], dtype=np.int16)


def mining_surface(ndvi: np.ndarray, mndwi: np.ndarray, blue: np.ndarray, red: np.ndarray, nir: np.ndarray,
                   swir16: np.ndarray) -> np.ndarray:
    """Looks that show what alluvial gold mining leaves: bare sediment or a pond.

    Both have no green cover (NDVI < SURFACE_NDVI_MAX). Bare sediment, gravel and tailings are
    bright (mean of red, NIR, SWIR1 > SEDIMENT_ALBEDO_MIN, which a burn is not) and redder and
    brighter in SWIR1 than in the blue (which cloud and haze are not). Ponds, turbid or clear,
    are open water (MNDWI > POND_MNDWI_MIN) that absorbs SWIR1 (< POND_SWIR16_MAX, which cloud
    does not). The tests use reflectance and normalised indices only, so they mean the same in
    single looks and composites, Sentinel-2 and Landsat.
    """
    with np.errstate(invalid="ignore"):
        open_ground = ndvi < SURFACE_NDVI_MAX
        bright = (red + nir + swir16) / 3 > SEDIMENT_ALBEDO_MIN
        bare = open_ground & bright & (red > blue) & (swir16 > blue)
        pond = open_ground & (mndwi > POND_MNDWI_MIN) & (swir16 < POND_SWIR16_MAX)
    return bare | pond


def detect_block(
    ndvi: np.ndarray,
    nbr: np.ndarray,
    mndwi: np.ndarray,
    bsi: np.ndarray,
    blue: np.ndarray,
    green: np.ndarray,
    red: np.ndarray,
    nir: np.ndarray,
    swir16: np.ndarray,
    swir22: np.ndarray,
    clear: np.ndarray,
    is_baseline: np.ndarray,
    params: ChangeParams,
    look_family: np.ndarray | None = None,
) -> np.ndarray:
    """Per-pixel change test on one block, both paths.

    Parameters
    ----------
    ndvi, nbr, mndwi, bsi
        float32 (time, y, x) index values; NaN = nodata.
    blue, green, red, nir, swir16, swir22
        float32 (time, y, x) surface reflectance (unitless, 0–1; NaN = nodata): the haze and
        mining-surface tests and the per-band evidence medians.
    clear
        bool (time, y, x): the look sees the ground.
    is_baseline
        bool (time,): the look belongs to the baseline period (else to monitoring).
    params
        Thresholds.
    look_family
        int (time,): sensor family of each look (:func:`family_codes`); None = one sensor.

    Returns
    -------
    float32 (len(FIELDS) + ceil(time / 8), y, x): the FIELDS layers in order, then the bits of
    the looks that flag the change, packed eight per layer (``np.packbits`` order).
    """
    bands = (blue, green, red, nir, swir16, swir22)
    n_looks = ndvi.shape[0]
    clear = clear & np.isfinite(ndvi) & np.isfinite(nbr)
    base = clear & is_baseline[:, None, None]
    mon = clear & ~is_baseline[:, None, None]

    base_ndvi, base_nbr, base_mndwi, *base_bands = nanmedians([ndvi, nbr, mndwi, *bands], base)
    deviation, nbr_deviation = nanmedians([np.abs(ndvi - base_ndvi), np.abs(nbr - base_nbr)], base)
    flagged, by_forest, by_surface, forest, water, water_seen, n_base = flag_looks(
        ndvi, nbr, mndwi, blue, red, nir, swir16, base, mon, base_ndvi, base_nbr, base_mndwi, base_bands[0],
        base_bands[2], base_bands[4], deviation, params, nbr_deviation)

    # Only a pixel with a flagged look can be more than "no change": confirmation, dates and
    # evidence run on those pixels alone (most of a block has none); every other pixel gets what
    # no flag gives: confidence none, no look (-1), no hit, NaN evidence, no path, no look bit.
    some = np.flatnonzero(flagged.any(axis=0))
    picked = [x.reshape(n_looks, -1)[:, some]
              for x in (flagged, mon, base, by_forest, by_surface, ndvi, nbr, mndwi, bsi, *bands)]
    found = _confirm(*picked, base_ndvi.reshape(-1)[some], base_nbr.reshape(-1)[some], params, look_family)
    plane = ndvi.shape[1:]
    nan = np.float32(np.nan)
    layers = [  # (name in found, what pixels without a flag get), or a layer of every pixel
        ("confidence", CONFIDENCE_NONE),
        ("first_look", -1),
        ("last_look", -1),
        ("n_hits", 0),
        base_ndvi,
        base_mndwi,
        ("ndvi_drop", nan),
        ("nbr_drop", nan),
        ("post_ndvi", nan),
        ("post_mndwi", nan),
        ("post_bsi", nan),
        forest,
        water,
        water_seen,
        n_base,
        ("path", 0),
        ("latest_ground", nan),
        ("post_bands", nan),
        *base_bands,
        ("prior_look", -1),
        ("bits", 0),
    ]
    n_layers = n_fields(n_looks)
    out = np.empty((n_layers,) + plane, dtype=np.float32)
    flat = out.reshape(n_layers, -1)
    k = 0
    for layer in layers:
        if not isinstance(layer, tuple):
            out[k] = layer
            k += 1
            continue
        name, fill = layer
        values = found[name]
        rows = values.shape[0] if values.ndim == 2 else 1
        out[k:k + rows] = fill
        flat[k:k + rows, some] = values.reshape(rows, -1)
        k += rows
    assert k == n_layers
    return out


def flag_looks(ndvi, nbr, mndwi, blue, red, nir, swir16, base, mon, base_ndvi, base_nbr, base_mndwi, base_blue,
               base_red, base_swir16, deviation, params: ChangeParams, nbr_deviation=None):
    """The looks each path flags, and the baseline's classes, in one compiled pass over the pixels.

    ``mon`` (bool, time × pixels) loses its hazy looks (:func:`hazy`), in place. A look is
    flagged where it is a monitoring look whose NDVI fell from the baseline median by at least
    the larger of ``ndvi_drop_min`` and ``drop_sigma`` robust spreads (1.4826 × the median
    absolute deviation ``deviation``, at least MIN_SPREAD), and then: on baseline forest, its NBR
    fell by ``nbr_drop_min`` (forest-loss path; also where NDVI fell by only ``grass_ndvi_share``
    of that threshold but NBR by ``grass_nbr_drop_min`` and by ``drop_sigma`` robust spreads of
    the pixel's baseline NBR, from ``nbr_deviation`` as for NDVI (None: MIN_SPREAD): forest felled
    under green cover, not a seasonal forest's dry look); on
    ground vegetated in the baseline and never seen under water, it shows mining surface
    (:func:`mining_surface`). Forest: baseline NDVI at least ``forest_ndvi_min`` and MNDWI below
    0; vegetated: NDVI at least ``vegetated_ndvi_min`` (old pits, bare fields, channels and
    sandbars are not new surface).

    The same booleans as those numpy expressions (:func:`hazy`, :func:`mining_surface`), float32
    arithmetic and thresholds rounded to float32 as numpy does, without a (time, y, x) temporary
    per expression. Returns flagged, by_forest, by_surface (time, …), forest, water, water_seen
    (…, bool) and n_base (…, int64).
    """
    plane = ndvi.shape[1:]
    n_looks = ndvi.shape[0]

    def flat(x):
        return np.ascontiguousarray(x).reshape(n_looks, -1) if x.ndim == len(plane) + 1 else \
            np.ascontiguousarray(x).reshape(-1)

    if nbr_deviation is None:
        nbr_deviation = np.full(plane, np.nan, np.float32)
    mon_flat = np.ascontiguousarray(mon).reshape(n_looks, -1)
    n_pixels = mon_flat.shape[1]
    flagged, by_forest, by_surface = (np.zeros((n_looks, n_pixels), bool) for _ in range(3))
    forest, water, water_seen = (np.zeros(n_pixels, bool) for _ in range(3))
    n_base = np.zeros(n_pixels, np.int64)
    f32 = np.float32
    _flag_looks(flat(ndvi), flat(nbr), flat(mndwi), flat(blue), flat(red), flat(nir), flat(swir16), flat(base),
                mon_flat, flat(base_ndvi), flat(base_nbr), flat(base_mndwi), flat(base_blue), flat(base_red),
                flat(base_swir16), flat(deviation), flat(nbr_deviation),
                f32(params.forest_ndvi_min), f32(params.vegetated_ndvi_min), f32(params.ndvi_drop_min),
                f32(params.drop_sigma), f32(params.nbr_drop_min), f32(params.grass_nbr_drop_min),
                f32(params.grass_ndvi_share), f32(1.4826), f32(MIN_SPREAD),
                f32(HAZE_BLUE_RISE_MIN), f32(HAZE_NDVI_MIN), f32(SURFACE_NDVI_MAX), f32(SEDIMENT_ALBEDO_MIN),
                f32(POND_MNDWI_MIN), f32(POND_SWIR16_MAX),
                flagged, by_forest, by_surface, forest, water, water_seen, n_base)
    if not np.shares_memory(mon_flat, mon):
        mon[...] = mon_flat.reshape(mon.shape)
    return (flagged.reshape(ndvi.shape), by_forest.reshape(ndvi.shape), by_surface.reshape(ndvi.shape),
            forest.reshape(plane), water.reshape(plane), water_seen.reshape(plane), n_base.reshape(plane))


@numba.njit(cache=True, nogil=True)
def _drop_threshold(deviation, mad_scale, min_spread, drop_sigma, floor):  # pragma: no cover - compiled
    """The fall a look must reach: ``drop_sigma`` robust spreads (``mad_scale`` × the median
    absolute deviation, at least ``min_spread``; ``min_spread`` where it is NaN), at least ``floor``."""
    spread = mad_scale * deviation
    if spread != spread or spread < min_spread:
        spread = min_spread
    threshold = drop_sigma * spread
    if threshold < floor:
        threshold = floor
    return threshold


@numba.njit(cache=True, nogil=True)
def _flag_looks(ndvi, nbr, mndwi, blue, red, nir, swir16, base, mon, base_ndvi, base_nbr, base_mndwi, base_blue,
                base_red, base_swir16, deviation, nbr_deviation, forest_min, vegetated_min, drop_min, drop_sigma,
                nbr_drop_min, grass_nbr_drop_min, grass_share, mad_scale, min_spread, haze_rise_min, haze_ndvi_min,
                surface_ndvi_max, albedo_min, pond_mndwi_min, pond_swir16_max, flagged, by_forest, by_surface,
                forest, water, water_seen, n_base):  # pragma: no cover - compiled
    n_looks, n_pixels = ndvi.shape
    zero = np.float32(0.0)
    three = np.float32(3.0)
    for p in range(n_pixels):
        count = 0
        most_water = -np.inf    # np.where(base, mndwi, -inf).max(): NaN if any kept look is NaN
        for t in range(n_looks):
            if base[t, p]:
                count += 1
                m = mndwi[t, p]
                if m != m or most_water != most_water:
                    most_water = np.nan
                elif m > most_water:
                    most_water = m
        seen_water = most_water > 0
        b_ndvi = base_ndvi[p]
        b_mndwi = base_mndwi[p]
        is_forest = count > 0 and b_ndvi >= forest_min and b_mndwi < zero
        is_vegetated = count > 0 and b_ndvi >= vegetated_min and not seen_water
        n_base[p] = count
        forest[p] = is_forest
        water[p] = count > 0 and b_mndwi > zero
        water_seen[p] = seen_water and not is_forest
        threshold = _drop_threshold(deviation[p], mad_scale, min_spread, drop_sigma, drop_min)
        grass_nbr_threshold = _drop_threshold(nbr_deviation[p], mad_scale, min_spread, drop_sigma,
                                              grass_nbr_drop_min)
        b_nbr = base_nbr[p]
        b_blue = base_blue[p]
        b_red = base_red[p]
        b_swir16 = base_swir16[p]
        for t in range(n_looks):
            if not mon[t, p]:
                continue
            v_ndvi = ndvi[t, p]
            v_mndwi = mndwi[t, p]
            v_blue = blue[t, p]
            v_red = red[t, p]
            v_swir16 = swir16[t, p]
            blue_rise = v_blue - b_blue
            if (blue_rise > v_swir16 - b_swir16 and blue_rise > v_red - b_red and blue_rise > haze_rise_min
                    and v_ndvi > haze_ndvi_min and v_mndwi < zero):
                mon[t, p] = False
                continue
            fall = b_ndvi - v_ndvi
            if not (fall >= threshold * grass_share):
                continue
            dropped = fall >= threshold
            nbr_fall = b_nbr - nbr[t, p]
            forest_hit = is_forest and ((dropped and nbr_fall >= nbr_drop_min) or nbr_fall >= grass_nbr_threshold)
            surface_hit = False
            if dropped and is_vegetated and v_ndvi < surface_ndvi_max:
                v_nir = nir[t, p]
                bright = (v_red + v_nir + v_swir16) / three > albedo_min
                bare = bright and v_red > v_blue and v_swir16 > v_blue
                pond = v_mndwi > pond_mndwi_min and v_swir16 < pond_swir16_max
                surface_hit = bare or pond
            by_forest[t, p] = forest_hit
            by_surface[t, p] = surface_hit
            flagged[t, p] = forest_hit or surface_hit


def _confirm(flagged, mon, base, by_forest, by_surface, ndvi, nbr, mndwi, bsi, blue, green, red, nir, swir16, swir22,
             base_ndvi, base_nbr, params: ChangeParams, look_family) -> dict[str, np.ndarray]:
    """Confirmation, confidence, dates and evidence of pixels given as (time, n) and (n,) arrays."""
    bands = (blue, green, red, nir, swir16, swir22)
    n_looks = flagged.shape[0]
    # Walk the looks backwards, carrying the flag of the next clear look.
    confirmed = np.zeros_like(flagged)
    next_flag = np.zeros(flagged.shape[1:], dtype=bool)
    has_next = np.zeros(flagged.shape[1:], dtype=bool)
    last_pending = np.zeros(flagged.shape[1:], dtype=bool)
    for t in range(n_looks - 1, -1, -1):
        confirmed[t] = flagged[t] & next_flag
        last_pending |= flagged[t] & ~has_next & mon[t]
        next_flag = np.where(mon[t], flagged[t], next_flag)
        has_next |= mon[t]

    any_confirmed = confirmed.any(axis=0)
    first = np.where(any_confirmed, confirmed.argmax(axis=0), -1)
    from_first = np.arange(n_looks)[:, None] >= first[None]
    after = from_first & any_confirmed[None]
    hits = flagged & after
    n_hits = hits.sum(axis=0)
    n_clear_after = (mon & after).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        persistent = any_confirmed & (n_hits >= params.persistence_min * n_clear_after)
    last = np.where(hits.any(axis=0), n_looks - 1 - hits[::-1].argmax(axis=0), -1)

    confidence = np.full(flagged.shape[1:], CONFIDENCE_NONE, dtype=np.float32)
    confidence[last_pending & ~any_confirmed] = CONFIDENCE_LOW
    confidence[persistent] = CONFIDENCE_NOMINAL
    # High needs every sensor family that saw the pixel clearly since the change began to agree.
    agreed = np.ones(flagged.shape[1:], dtype=bool)
    if look_family is not None:
        for code in np.unique(look_family):
            this = (np.asarray(look_family) == code)[:, None]
            seen = (mon & after & this).any(axis=0)
            agreed &= ~seen | (hits & this).any(axis=0)
    confidence[persistent & (n_hits >= params.high_min_looks) & agreed] = CONFIDENCE_HIGH

    # Evidence layers: over the looks that flag the change (the last clear look for ``low``).
    looks = np.arange(n_looks)[:, None]
    last_clear = np.where(mon.any(axis=0), n_looks - 1 - mon[::-1].argmax(axis=0), -1)
    pending = flagged & (looks == last_clear[None]) & (confidence == CONFIDENCE_LOW)[None]
    evidence_looks = np.where(persistent[None], hits, pending) & (confidence > CONFIDENCE_NONE)[None]
    post_ndvi, post_nbr, post_mndwi, post_bsi, *post_bands = nanmedians([ndvi, nbr, mndwi, bsi, *bands],
                                                                         evidence_looks)
    path = (PATH_FOREST_LOSS * (evidence_looks & by_forest).any(axis=0)
            + PATH_MINING_SURFACE * (evidence_looks & by_surface).any(axis=0))
    # What the ground became by the latest evidence look: a mine felled before it was dug reads
    # as a clearing in the median over its looks, not in the latest one.
    has_evidence = evidence_looks.any(axis=0)
    latest = (n_looks - 1 - evidence_looks[::-1].argmax(axis=0))[None]
    latest_ground = mining_ground(*(np.take_along_axis(band, latest, axis=0)[0] for band in bands))
    nominal = confidence >= CONFIDENCE_NOMINAL
    onset = np.where(nominal, first, np.where(confidence == CONFIDENCE_LOW, last_clear, -1))
    return {
        "confidence": confidence,
        "first_look": np.where(nominal, first, -1),
        "last_look": np.where(nominal, last, -1),
        "n_hits": np.where(nominal, n_hits, 0),
        "ndvi_drop": base_ndvi - post_ndvi,
        "nbr_drop": base_nbr - post_nbr,
        "post_ndvi": post_ndvi,
        "post_mndwi": post_mndwi,
        "post_bsi": post_bsi,
        "path": path,
        "latest_ground": np.where(has_evidence, latest_ground, np.nan).astype(np.float32),
        "post_bands": np.stack(post_bands) if post_bands else np.zeros((0,) + flagged.shape[1:], np.float32),
        "prior_look": _prior_look(base | mon, flagged, onset),
        "bits": np.packbits(evidence_looks, axis=0),
    }


def _prior_look(seen: np.ndarray, flagged: np.ndarray, onset: np.ndarray) -> np.ndarray:
    """Per pixel: the last look before ``onset`` that saw the ground clear without a flag (-1 none).

    With the onset (first look of the change) it brackets when the change happened.
    """
    before = np.arange(seen.shape[0]).reshape((-1,) + (1,) * onset.ndim) < onset[None]
    quiet = seen & ~flagged & before
    return np.where(quiet.any(axis=0) & (onset >= 0), seen.shape[0] - 1 - quiet[::-1].argmax(axis=0), -1)


def detect_change(indices: xr.Dataset, clear: xr.DataArray, is_baseline: np.ndarray, params: ChangeParams,
                  look_family: np.ndarray | None = None) -> xr.Dataset:
    """Run :func:`detect_block` over numpy- or dask-backed (time, y, x) inputs.

    ``indices`` holds the variables named in INPUTS (the indices and every reflectance band).

    Returns a Dataset (y, x) with one variable per name in FIELDS (float32) and ``look_bits``
    (look_byte, y, x) holding the packed per-look flags. Lazy when the inputs are dask arrays.
    """
    names = INPUTS
    arrays = [indices[n] for n in names] + [clear]
    n_looks = indices.sizes["time"]
    k = n_fields(n_looks)
    first = arrays[0].data
    if hasattr(first, "map_blocks"):
        import dask.array as da

        blocks = [a.chunk({"time": -1}).data for a in arrays]
        # One block layout for all inputs (map_overlap may have merged slivers in the mask).
        blocks = [b.rechunk(blocks[0].chunks) for b in blocks]
        chunks = ((k,),) + blocks[0].chunks[1:]
        stacked = da.map_blocks(
            lambda *b: detect_block(*b, is_baseline=is_baseline, params=params, look_family=look_family),
            *blocks,
            chunks=chunks,
            dtype=np.float32,
            meta=np.array((), dtype=np.float32),
        )
    else:
        stacked = detect_block(*[np.asarray(a.data) for a in arrays], is_baseline=is_baseline, params=params,
                               look_family=look_family)
    coords = {"y": indices["y"], "x": indices["x"]}
    out = xr.Dataset({name: (("y", "x"), stacked[i]) for i, name in enumerate(FIELDS)}, coords=coords)
    out["look_bits"] = (("look_byte", "y", "x"), stacked[len(FIELDS):])
    return out


def looks_of(bits: np.ndarray, n_looks: int) -> np.ndarray:
    """Unpack per-pixel look bits (look_byte, ...) into a boolean (n_looks, ...) array."""
    return np.unpackbits(bits.astype(np.uint8), axis=0, count=n_looks).astype(bool)
