"""Change detection: baseline statistics per pixel against the monitoring looks.

For each pixel, the clear baseline looks give a robust reference (median) and spread (MAD) of
NDVI, NBR and MNDWI. A clear monitoring look *flags* the pixel when NDVI falls below the
reference by at least ``ndvi_drop_min`` and by ``drop_sigma`` times the pixel's own spread,
and NBR falls too, unless the look brightened like haze (:func:`hazy`). A flag is *confirmed* when the next clear look flags it again, and the
change must *persist*: most clear looks from then on still flag it. Only pixels that were
forest in the baseline can change; permanent water is known from the baseline.

Confidence per pixel: ``low`` (flagged by the last clear look, not yet confirmable),
``nominal`` (confirmed), ``high`` (confirmed and flagged by three or more clear looks and, where
more than one sensor family — Sentinel-2, Landsat — saw the pixel clearly after the change
began, flagged by each of them).

The work is one pure numpy function over a (time, y, x) block, :func:`detect_block`, that
:func:`detect_change` maps over dask chunks (time whole, y and x chunked); both paths give the
same numbers.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import xarray as xr

CONFIDENCE_NONE, CONFIDENCE_LOW, CONFIDENCE_NOMINAL, CONFIDENCE_HIGH = 0, 1, 2, 3
CONFIDENCE_NAMES = {CONFIDENCE_LOW: "low", CONFIDENCE_NOMINAL: "nominal", CONFIDENCE_HIGH: "high"}
CONFIDENCE_CODES = {name: code for code, name in CONFIDENCE_NAMES.items()}

# Per-look input layers, in the order detect_block takes them.
INPUTS = ("ndvi", "nbr", "mndwi", "bsi", "blue", "swir16")
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
)
HAZE_BLUE_RISE_MIN = 0.03  # blue reflectance rise below which a look is never called hazy
HAZE_NDVI_MIN = 0.15       # below this NDVI no canopy shows through: ground, not haze
MIN_SPREAD = 0.03  # floor of the robust NDVI spread: a baseline of 1–2 looks has no usable MAD


@dataclass(frozen=True)
class ChangeParams:
    """Thresholds of the change test (see DetectionConfig for their meaning)."""

    forest_ndvi_min: float = 0.65
    ndvi_drop_min: float = 0.2
    nbr_drop_min: float = 0.1
    drop_sigma: float = 4.0
    persistence_min: float = 0.6
    high_min_looks: int = 3


def _nanmedian(values: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Median over axis 0 of the kept values; NaN where none is kept."""
    masked = np.where(keep, values, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns are expected
        return np.nanmedian(masked, axis=0)


def n_fields(n_looks: int) -> int:
    """Layers detect_block returns: the FIELDS, then the packed per-look flag bytes."""
    return len(FIELDS) + (n_looks + 7) // 8


def hazy(blue: np.ndarray, swir16: np.ndarray, ndvi: np.ndarray, mndwi: np.ndarray,
         base_blue: np.ndarray, base_swir16: np.ndarray) -> np.ndarray:
    """Looks that brightened like haze or a thin cloud edge rather than like exposed ground.

    Haze and thin cloud add brightness that is largest in the blue and smaller in the SWIR,
    and the canopy still shows through (NDVI stays well above bare ground). Cleared soil
    raises SWIR1 more than blue; mining sand brightens both but leaves no NDVI; water lowers
    SWIR1 and has MNDWI > 0. So a look whose blue rose from the pixel's baseline median by
    more than its SWIR1 did, whose NDVI is still above HAZE_NDVI_MIN and that is not water is
    not trusted as evidence of change. SCL misses most of these (soft cloud edges, thin
    haze); this catches them where they would otherwise alert.
    """
    blue_rise = blue - base_blue
    with np.errstate(invalid="ignore"):
        return (blue_rise > swir16 - base_swir16) & (blue_rise > HAZE_BLUE_RISE_MIN) & (ndvi > HAZE_NDVI_MIN) & (mndwi < 0)


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


def detect_block(
    ndvi: np.ndarray,
    nbr: np.ndarray,
    mndwi: np.ndarray,
    bsi: np.ndarray,
    blue: np.ndarray,
    swir16: np.ndarray,
    clear: np.ndarray,
    is_baseline: np.ndarray,
    params: ChangeParams,
    look_family: np.ndarray | None = None,
) -> np.ndarray:
    """Per-pixel change test on one block.

    Parameters
    ----------
    ndvi, nbr, mndwi, bsi
        float32 (time, y, x) index values; NaN = nodata.
    blue, swir16
        float32 (time, y, x) reflectance, for the haze test (:func:`hazy`).
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
    the looks that flag the confirmed change, packed eight per layer (``np.packbits`` order).
    """
    n_looks = ndvi.shape[0]
    clear = clear & np.isfinite(ndvi) & np.isfinite(nbr)
    base = clear & is_baseline[:, None, None]
    mon = clear & ~is_baseline[:, None, None]

    base_ndvi = _nanmedian(ndvi, base)
    base_nbr = _nanmedian(nbr, base)
    base_mndwi = _nanmedian(mndwi, base)
    mon &= ~hazy(blue, swir16, ndvi, mndwi, _nanmedian(blue, base), _nanmedian(swir16, base))
    spread = 1.4826 * _nanmedian(np.abs(ndvi - base_ndvi), base)
    spread = np.fmax(np.nan_to_num(spread, nan=MIN_SPREAD), MIN_SPREAD)
    n_base = base.sum(axis=0)
    forest = (n_base > 0) & (base_ndvi >= params.forest_ndvi_min) & (base_mndwi < 0)
    water = (n_base > 0) & (base_mndwi > 0)
    with np.errstate(invalid="ignore"):
        water_seen = (np.where(base, mndwi, -np.inf).max(axis=0) > 0) & ~forest

    threshold = np.maximum(params.ndvi_drop_min, params.drop_sigma * spread)
    with np.errstate(invalid="ignore"):
        flagged = mon & forest & (base_ndvi - ndvi >= threshold) & (base_nbr - nbr >= params.nbr_drop_min)

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
    from_first = np.arange(n_looks)[:, None, None] >= first[None]
    after = from_first & any_confirmed[None]
    hits = flagged & after
    n_hits = hits.sum(axis=0)
    n_clear_after = (mon & after).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        persistent = any_confirmed & (n_hits >= params.persistence_min * n_clear_after)
    last = np.where(hits.any(axis=0), n_looks - 1 - hits[::-1].argmax(axis=0), -1)

    confidence = np.full(ndvi.shape[1:], CONFIDENCE_NONE, dtype=np.float32)
    confidence[last_pending & ~any_confirmed] = CONFIDENCE_LOW
    confidence[persistent] = CONFIDENCE_NOMINAL
    # High needs every sensor family that saw the pixel clearly since the change began to agree.
    agreed = np.ones(ndvi.shape[1:], dtype=bool)
    if look_family is not None:
        for code in np.unique(look_family):
            this = (np.asarray(look_family) == code)[:, None, None]
            seen = (mon & after & this).any(axis=0)
            agreed &= ~seen | (hits & this).any(axis=0)
    confidence[persistent & (n_hits >= params.high_min_looks) & agreed] = CONFIDENCE_HIGH

    # Evidence layers: over the looks that flag the change (the last clear look for ``low``).
    looks = np.arange(n_looks)[:, None, None]
    last_clear = np.where(mon.any(axis=0), n_looks - 1 - mon[::-1].argmax(axis=0), -1)
    pending = flagged & (looks == last_clear[None]) & (confidence == CONFIDENCE_LOW)[None]
    evidence_looks = np.where(persistent[None], hits, pending)
    post_ndvi = _nanmedian(ndvi, evidence_looks)
    post_nbr = _nanmedian(nbr, evidence_looks)
    layers = [
        confidence,
        np.where(confidence >= CONFIDENCE_NOMINAL, first, -1),
        np.where(confidence >= CONFIDENCE_NOMINAL, last, -1),
        np.where(confidence >= CONFIDENCE_NOMINAL, n_hits, 0),
        base_ndvi,
        base_mndwi,
        base_ndvi - post_ndvi,
        base_nbr - post_nbr,
        post_ndvi,
        _nanmedian(mndwi, evidence_looks),
        _nanmedian(bsi, evidence_looks),
        forest,
        water,
        water_seen,
        n_base,
    ]
    bits = np.packbits(evidence_looks & (confidence > CONFIDENCE_NONE)[None], axis=0)
    return np.concatenate([np.stack([np.asarray(x, dtype=np.float32) for x in layers]), bits.astype(np.float32)])


def detect_change(indices: xr.Dataset, clear: xr.DataArray, is_baseline: np.ndarray, params: ChangeParams,
                  look_family: np.ndarray | None = None) -> xr.Dataset:
    """Run :func:`detect_block` over numpy- or dask-backed (time, y, x) inputs.

    ``indices`` holds the variables named in INPUTS (indices and the blue and SWIR1
    reflectance the haze test needs).

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
