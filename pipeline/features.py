"""Per-scar classifier features: what the post-change surface, its texture, its shape and its
surroundings look like — quantities that mean the same in a single look, a two-look run, a dense
series or an annual composite, and in Sentinel-2 or Landsat.

Pure numpy on one scar's window: ``layers`` are 2-D arrays cropped to the scar's bounding box
plus a context margin, ``mask`` marks the scar's own pixels in that window. Nothing here knows
how many looks made the layers or when; no look counts, onsets or dates are features.

Layers used (names as in :data:`pipeline.change.FIELDS`):

- ``post_blue, post_green, post_red, post_nir, post_swir16, post_swir22``: reflectance of the
  post-change surface (median over the looks that show the change; one composite = that value);
  read on scar pixels only.
- ``baseline_ndvi``, ``baseline_mndwi``: the baseline cover, read inside and around the scar.
- ``water``: 1 where the baseline is permanent water (rivers, lakes); ``water_seen`` (optional):
  1 where any baseline look saw open water.
- ``latest_mining_ground`` (optional): 1 where the latest look of the change shows a pond or
  sediment (:func:`mining_ground`), 0 where it shows other ground; read on scar pixels only.
- ``base_red, base_swir16`` (optional): baseline reflectance, for older sediment (of earlier
  pits) around the scar; without them that share reads 0.

Sediment is told by the shape of its spectrum (:func:`sediment_pixels`), never by a brightness
threshold: a fixed reflectance does not carry over between sensors, composites and wet or dry
looks.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

POST_BANDS = ("post_blue", "post_green", "post_red", "post_nir", "post_swir16", "post_swir22")
CONTEXT_M = 300.0          # margin around the bbox read for context; distances are capped here
RING_M = 90.0              # width of the neighbourhood ring (context fractions)
WATER_MNDWI_MIN = 0.0      # open water / pond: MNDWI above this and NDVI below WATER_NDVI_MAX
WATER_NDVI_MAX = 0.2
BARE_NDVI_MAX = 0.25       # bare (sediment, soil, ash) if not water
SEDIMENT_RED_SWIR1_MIN = 0.6   # sediment: bare, not char, with red at least 0.6 of SWIR1 (see sediment_pixels)
BURNT_NBR_MAX = 0.1        # char: NBR and visible brightness both low
BURNT_VIS_MAX = 0.06
VEG_NDVI_MIN = 0.5
FOREST_NDVI_MIN = 0.65
EPS = 1e-6

FEATURES = (
    # spectra of the post-change surface (medians over the scar's pixels)
    "vis_brightness", "swir_brightness", "ndvi_median", "mndwi_median", "bsi_median", "nbr_median",
    "red_swir1", "nir_swir1", "swir2_swir1", "blue_red",
    # composition (shares of the scar's pixels)
    "water_share", "bare_share", "sediment_share", "burnt_share", "veg_share",
    "pond_red_green", "latest_mining_gain",
    # texture
    "ndvi_iqr", "brightness_cv", "brightness_roughness",
    # shape
    "log_area_ha", "compactness", "elongation", "solidity", "rectangularity", "hole_fraction", "fractal_dimension",
    # context
    "baseline_ndvi", "dist_water_m", "ring_water_fraction", "ring_open_fraction", "ring_sediment_fraction",
)


def context_px(pixel_m: float) -> int:
    """CONTEXT_M in pixels: every pixel a scar's features can depend on lies within it."""
    return int(np.ceil(CONTEXT_M / pixel_m))


def _ratio(a, b):
    return a / np.maximum(b, EPS)


def _median(values: np.ndarray, default: float = 0.0) -> float:
    values = values[np.isfinite(values)]
    return float(np.median(values)) if values.size else default


def sediment_pixels(red: np.ndarray, swir16: np.ndarray, ndvi: np.ndarray, where: np.ndarray | bool = True) -> np.ndarray:
    """Sediment by the shape of its spectrum, not by its brightness: bare (NDVI under
    BARE_NDVI_MAX), and red at least SEDIMENT_RED_SWIR1_MIN of SWIR1. Washed sand and gravel,
    wet sediment and tailings are flat from red to SWIR1 (water in damp ground pulls SWIR1 down
    further than red; the La Pampa mining sediment of ``data/endmembers`` reads 0.67–0.92 from
    10th to 90th percentile), while bare agricultural soil, dry grass and char rise steeply into
    SWIR1 (the library's bare soil 0.41–0.61, pasture 0.25–0.42). A ratio keeps its meaning under a sensor's
    gain, a composite's averaging and the darkening of wet ground, where a brightness cut does
    not (wet sediment and overburden-mixed ground fall under any fixed visible reflectance).
    ``where``: a further condition on the pixels (the callers: not water, not char)."""
    return (ndvi < BARE_NDVI_MAX) & (_ratio(red, swir16) >= SEDIMENT_RED_SWIR1_MIN) & where


def surface_classes(blue, green, red, nir, swir16, swir22):
    """(water, bare, burnt, sediment): bool arrays of what reflectance pixels show. Open water
    (a pond, a river): MNDWI over WATER_MNDWI_MIN and NDVI under WATER_NDVI_MAX; bare: NDVI under
    BARE_NDVI_MAX and not water; burnt (char): NBR and visible brightness both low, not water;
    sediment: :func:`sediment_pixels` of ground neither water nor char."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return _classes(_ratio(nir - red, nir + red), _ratio(green - swir16, green + swir16),
                        _ratio(nir - swir22, nir + swir22), (blue + green + red) / 3, red, swir16)


def _classes(ndvi, mndwi, nbr, vis, red, swir16):
    """:func:`surface_classes` from the indices and visible brightness already at hand."""
    water = (mndwi > WATER_MNDWI_MIN) & (ndvi < WATER_NDVI_MAX)
    bare = (ndvi < BARE_NDVI_MAX) & ~water
    burnt = (nbr < BURNT_NBR_MAX) & (vis < BURNT_VIS_MAX) & ~water
    sediment = sediment_pixels(red, swir16, ndvi, ~water & ~burnt)
    return water, bare, burnt, sediment


def mining_ground(blue, green, red, nir, swir16, swir22) -> np.ndarray:
    """bool: what alluvial mining leaves, by the same tests as the features: open water (a pond)
    or sediment (:func:`surface_classes`). The change stage applies it to the latest look of each
    changed pixel (``latest_mining_ground``)."""
    water, _, _, sediment = surface_classes(blue, green, red, nir, swir16, swir22)
    return water | sediment


def _iqr(values: np.ndarray) -> float:
    values = values[np.isfinite(values)]
    if values.size < 2:
        return 0.0
    q1, q3 = np.percentile(values, [25, 75])
    return float(q3 - q1)


def _hull_measures(mask: np.ndarray) -> tuple[float, float]:
    """(solidity, rectangularity) of the pixel set: area over convex hull area and over the
    minimum rotated rectangle's area (both of the pixel squares' corners)."""
    import shapely

    # Only each row's outermost pixels can hold hull corners (every other pixel of the row lies
    # between them): the same hull from two pixels per row instead of all of them.
    rows, cols = np.nonzero(mask)
    first = np.r_[True, rows[1:] != rows[:-1]]
    last = np.r_[rows[1:] != rows[:-1], True]
    rows = np.concatenate([rows[first], rows[last]])
    cols = np.concatenate([cols[first], cols[last]])
    corners = np.concatenate([np.stack([cols + dx, rows + dy], 1) for dx in (0, 1) for dy in (0, 1)])
    hull = shapely.MultiPoint(corners).convex_hull
    area = float(mask.sum())
    solidity = area / max(hull.area, 1.0)
    rect = hull.minimum_rotated_rectangle.area if hull.area > 0 else 1.0
    return min(solidity, 1.0), min(area / max(rect, 1.0), 1.0)


def shape_features(mask: np.ndarray, resolution_m: float) -> dict[str, float]:
    """Shape of one scar (bool mask) in metric units."""
    n = float(mask.sum())
    area_m2 = n * resolution_m ** 2
    padded = np.pad(mask, 1)
    # Pixel-edge perimeter: edges between a scar pixel and a non-scar pixel (holes count).
    edges = (np.count_nonzero(padded[1:, :] != padded[:-1, :]) + np.count_nonzero(padded[:, 1:] != padded[:, :-1]))
    # Staircase outlines overstate a smooth boundary by ~4/pi; correct so a disc reads ~1.
    perimeter_m = edges * resolution_m * np.pi / 4
    compactness = min(4 * np.pi * area_m2 / max(perimeter_m, EPS) ** 2, 1.0)
    rows, cols = np.nonzero(mask)
    if n >= 3:
        cov = np.cov(np.stack([rows, cols]).astype(float)) + np.eye(2) / 12.0
        ev = np.sort(np.linalg.eigvalsh(cov))
        elongation = float(np.sqrt(ev[1] / max(ev[0], EPS)))
    else:
        elongation = 1.0
    filled = ndimage.binary_fill_holes(mask)
    hole_fraction = 1.0 - n / max(float(filled.sum()), 1.0)
    solidity, rectangularity = _hull_measures(mask)
    # Patch fractal dimension (FRAGSTATS FRAC): 2 ln(0.25 P) / ln(A), P and A in metres.
    fractal = 2 * np.log(0.25 * perimeter_m) / np.log(area_m2) if area_m2 > 1 else 1.0
    return {"log_area_ha": float(np.log10(area_m2 / 1e4)), "compactness": float(compactness),
            "elongation": elongation, "solidity": float(solidity), "rectangularity": float(rectangularity),
            "hole_fraction": float(hole_fraction), "fractal_dimension": float(fractal)}


def spectral_features(post: np.ndarray) -> dict[str, float]:
    """Spectra, composition and texture of the post-change surface: ``post`` is (6, n) reflectance
    of the scar's pixels in POST_BANDS order (NaN = unseen)."""
    post = post[:, np.isfinite(post).all(axis=0)]
    if post.shape[1] == 0:
        return {}
    b, g, r, n, s1, s2 = post
    vis = (b + g + r) / 3
    swir = (s1 + s2) / 2
    ndvi = _ratio(n - r, n + r)
    mndwi = _ratio(g - s1, g + s1)
    nbr = _ratio(n - s2, n + s2)
    bsi = _ratio((s1 + r) - (n + b), (s1 + r) + (n + b))
    water, bare, burnt, sediment = _classes(ndvi, mndwi, nbr, vis, r, s1)
    land = ~water
    out = {
        "vis_brightness": _median(vis[land], _median(vis)),
        "swir_brightness": _median(swir[land], _median(swir)),
        "ndvi_median": _median(ndvi), "mndwi_median": _median(mndwi),
        "bsi_median": _median(bsi), "nbr_median": _median(nbr),
        # band ratios over land pixels: shape of the spectrum, insensitive to overall brightness
        "red_swir1": _median(_ratio(r, s1)[land], 0.0),
        "nir_swir1": _median(_ratio(n, s1)[land], 0.0),
        "swir2_swir1": _median(_ratio(s2, s1)[land], 0.0),
        "blue_red": _median(_ratio(b, r)[land], 0.0),
        "water_share": float(water.mean()), "bare_share": float(bare.mean()),
        "sediment_share": float(sediment.mean()), "burnt_share": float(burnt.mean()),
        "veg_share": float((ndvi > VEG_NDVI_MIN).mean()),
        # turbidity of ponds: suspended sediment raises red over green; 0 where no water
        "pond_red_green": _median(_ratio(r, g)[water], 0.0),
        "ndvi_iqr": _iqr(ndvi),
        "brightness_cv": float(np.std(vis) / max(np.mean(vis), EPS)),
    }
    return out


def _roughness(vis_img: np.ndarray, mask: np.ndarray) -> float:
    """Mean absolute brightness step between 4-neighbours both inside the scar, relative to the
    scar's mean brightness: pit fields are patchy, cleared fields smooth."""
    inside_h = mask[:, 1:] & mask[:, :-1]
    inside_v = mask[1:, :] & mask[:-1, :]
    dh = np.abs(np.diff(vis_img, axis=1))[inside_h]
    dv = np.abs(np.diff(vis_img, axis=0))[inside_v]
    steps = np.concatenate([dh, dv])
    steps = steps[np.isfinite(steps)]
    if not steps.size:
        return 0.0
    return float(np.mean(steps) / max(np.nanmean(vis_img[mask]), EPS))


def context_features(layers: dict[str, np.ndarray], mask: np.ndarray, resolution_m: float) -> dict[str, float]:
    """Baseline cover inside the scar and what surrounds it (window with a margin)."""
    water = np.asarray(layers["water"]) > 0
    if "water_seen" in layers:
        water = water | (np.asarray(layers["water_seen"]) > 0)
    water &= ~mask
    if water.any():
        dist = ndimage.distance_transform_edt(~water) * resolution_m
        dist_water = float(min(dist[mask].min(), CONTEXT_M))
    else:
        dist_water = CONTEXT_M
    ring_px = max(1, int(round(RING_M / resolution_m)))
    ring = ndimage.binary_dilation(mask, iterations=ring_px) & ~mask
    base_ndvi = np.asarray(layers["baseline_ndvi"], dtype=float)
    base_mndwi = np.asarray(layers.get("baseline_mndwi", np.full(mask.shape, -1.0)), dtype=float)
    seen = ring & np.isfinite(base_ndvi)
    if seen.any():
        ring_water = float(water[seen].mean())
        ring_open = float(((base_ndvi[seen] < FOREST_NDVI_MIN) & ~water[seen] & ~(base_mndwi[seen] > 0)).mean())
    else:
        ring_water, ring_open = 0.0, 0.0
    ring_sediment = 0.0
    if seen.any() and all(k in layers for k in ("base_red", "base_swir16")):
        old_sediment = sediment_pixels(np.asarray(layers["base_red"], float), np.asarray(layers["base_swir16"], float),
                                       base_ndvi, ~water & ~(base_mndwi > 0))
        ring_sediment = float(old_sediment[seen].mean())
    return {"baseline_ndvi": _median(base_ndvi[mask], FOREST_NDVI_MIN), "dist_water_m": dist_water,
            "ring_water_fraction": ring_water, "ring_open_fraction": ring_open,
            "ring_sediment_fraction": ring_sediment}


def latest_mining_gain(layers: dict[str, np.ndarray], mask: np.ndarray, spectral: dict[str, float]) -> float:
    """Mining ground gained after the post-change median: the share of the scar's pixels whose
    latest look of the change shows a pond or sediment (``latest_mining_ground``, see
    :func:`mining_ground`) minus the share of them in the post-change surface (``water_share`` +
    ``sediment_share``). The post-change surface is a median over every look that shows the
    change, so ground felled weeks before it was dug weighs in it and can read as a clearing;
    the latest look does not forget the digging. In a single look or a composite the latest
    look is the post-change surface itself and the gain is 0 (as without the layer): the
    feature says something only where a series says it, and the same thing in every sensor."""
    if "latest_mining_ground" not in layers:
        return 0.0
    values = np.asarray(layers["latest_mining_ground"], dtype=float)[mask]
    values = values[np.isfinite(values)]
    if not values.size:
        return 0.0
    return float(values.mean() - spectral.get("water_share", 0.0) - spectral.get("sediment_share", 0.0))


def scar_features(layers: dict[str, np.ndarray], mask: np.ndarray, resolution_m: float) -> dict[str, float]:
    """Every FEATURES value of one scar.

    Parameters
    ----------
    layers
        2-D arrays on the scar's window (bbox + about CONTEXT_M of margin): POST_BANDS
        reflectance (read on scar pixels), ``baseline_ndvi``, ``baseline_mndwi``, ``water``
        (and optionally ``water_seen``).
    mask
        bool, same shape: the scar's pixels.
    resolution_m
        pixel edge, metres.
    """
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        raise ValueError("scar_features: empty scar mask")
    if not np.isfinite(resolution_m) or resolution_m <= 0:
        raise ValueError(f"scar_features: resolution_m must be a positive number, not {resolution_m}")
    missing = [k for k in (*POST_BANDS, "baseline_ndvi", "water") if k not in layers]
    if missing:
        raise ValueError(f"scar_features: missing layers {missing}")
    post_img = np.stack([np.asarray(layers[k], dtype=float) for k in POST_BANDS])
    out = dict.fromkeys(FEATURES, 0.0)
    out.update(spectral_features(post_img[:, mask]))
    out["latest_mining_gain"] = latest_mining_gain(layers, mask, out)
    vis_img = post_img[:3].mean(axis=0)
    out["brightness_roughness"] = _roughness(vis_img, mask)
    out.update(shape_features(mask, resolution_m))
    out.update(context_features(layers, mask, resolution_m))
    return {k: float(np.nan_to_num(out[k])) for k in FEATURES}
