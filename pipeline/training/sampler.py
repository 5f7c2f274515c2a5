"""Training-scene sampler: labelled scars on small windows, with randomised real spectra.

The classifier must not learn one scene generator. Each sample here draws, independently:

- the sensor (Sentinel-2 at 10 m, Landsat at 30 m) and the observation regime (``single``: one
  look after the change, as in a two-look run; ``dense``: the median of a few looks of a series,
  and its latest look; ``composite``: a median composite of the evolving surface, half of them
  over a period that straddles the change, so the composite mixes the surface before and after
  it pixel by pixel);
- per-scene band gains, offsets, haze and noise;
- the surface make-up of its class, mixed per pixel from an endmember library of *real* spectra
  (``data/endmembers/spectra.csv``, see :mod:`pipeline.training.endmembers`), each draw tilted
  and scaled at random: sediment-only mines and mines with turbid or clear ponds, partly
  regrown, and in dense series a third of them felled before they are dug (the looks before
  digging see slash and bare soil, later ones the part not yet dug); clearings bare, grassy,
  burnt, with slash or irregular; natural change (river banks and channel edges, blowdown,
  flooding, haze and shadow residue) as ``other``;
- its shape (irregular pit clusters, straight-edged clearings, strips along rivers) and context
  (a river passing at some distance from the scar, beside it, or cutting into a pit dug from
  its bank; older pits or pastures nearby, non-forest baseline);
- the detector's response (forest-loss and new-surface tests on the mixed pixels), which gives
  the scar mask the features are computed on.

Areas follow one distribution for every class, so size tells nothing by itself. Windows are
built at SUB × the pixel resolution and block-averaged: edge pixels are mixed pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage

from ..features import CONTEXT_M, FEATURES, mining_ground, scar_features
from ..model import BANDS, CLASSES

SENSORS = {"sentinel-2": 10.0, "landsat": 30.0}   # sensor family -> analysis pixel, m
REGIMES = ("single", "dense", "composite")
SUBTYPES = {
    "mining": ("sediment_only", "ponds", "ponds", "mixed_regrowth"),
    "clearing": ("bare", "grassy", "grassy", "burnt", "slash", "irregular"),
    "other": ("bank", "bank", "blowdown", "flood", "haze", "shadow"),
}
COVERS = ("forest", "regrowth", "pasture", "bare_soil", "mining_sediment", "mining_pond", "river_water")
SUB = 2                      # sub-pixels per pixel edge
AREA_HA = (0.4, 25.0)        # log-uniform scar area, every class alike
MAX_WINDOW_PX = 128
# Share of composites whose period straddles the change (some looks before it, some after), so
# the composite is a per-pixel temporal mix of the old and new surfaces: annual or multi-year
# median composites of a pit dug mid-period (benchmarks/bench_sites.py, ``period_median``).
STRADDLE_SHARE = 0.5
# Share of mines felled before they are dug. A pit opened in forest is felled first (trees cut,
# sometimes burnt in piles, then the ground is worked), and the felled ground lasts days to months
# ahead of the working face. Much new mining opens old pits, scrub or open land instead, and a
# short felled stage is often missed between looks, so a third is a judgement of how often a
# run sees it, not a measured rate. Only dense series draw them: there the latest look tells the
# pit from a clearing (``latest_mining_gain``); a single look or a composite of ground still
# mostly felled is a clearing to any observer, and teaching the model otherwise makes it call
# clearings mining (over six training seeds on the blind scenes, felled mines in every regime:
# clearings called mining 16 -> 37, false mining alerts 99 -> 162; in dense series only: 29, 114;
# README, Models).
FELLED_SHARE = 1 / 3
HAZE_SHAPE = np.array([1.0, 0.8, 0.6, 0.4, 0.15, 0.08])        # additive haze, by band
# Char and ash: no burnt scar is in the real imagery at hand; typical post-fire reflectance of
# tropical char and white ash (broad literature ranges), randomised per draw.
CHAR = np.array([0.030, 0.037, 0.045, 0.085, 0.115, 0.100])
ASH = np.array([0.075, 0.095, 0.115, 0.150, 0.200, 0.180])
DEAD_WOOD = np.array([1.3, 1.1, 1.6, 0.6, 1.5, 1.8])          # slash: forest spectrum scaled by band


class SpectralLibrary:
    """Endmember spectra by cover and source (reflectance, BANDS order)."""

    def __init__(self, table: pd.DataFrame, half: str | None = None):
        missing = [c for c in ("cover", "source", *BANDS) if c not in table.columns]
        if missing:
            raise ValueError(f"spectral library: missing columns {missing}")
        if half is not None:
            table = table[table["half"] == half]
        self.by_cover: dict[str, dict[str, np.ndarray]] = {}
        for (cover, source), group in table.groupby(["cover", "source"]):
            values = group[list(BANDS)].to_numpy(dtype=float)
            if len(values) and np.isfinite(values).all():
                self.by_cover.setdefault(str(cover), {})[str(source)] = values
        absent = [c for c in COVERS if c not in self.by_cover]
        if absent:
            raise ValueError(f"spectral library{' half ' + half if half else ''}: no spectra of {absent}")

    @classmethod
    def from_csv(cls, path: Path, half: str | None = None) -> "SpectralLibrary":
        return cls(pd.read_csv(path), half)

    def pick(self, rng: np.random.Generator, cover: str, shape: tuple[int, int]) -> np.ndarray:
        """(6, *shape) spectra of ``cover`` from one source chosen at random, each draw tilted
        across the bands and scaled (so no two scenes share exact endmembers)."""
        sources = self.by_cover[cover]
        arr = sources[list(sources)[rng.integers(len(sources))]]
        tilt = 1.0 + rng.normal(0.0, 0.06) * (np.arange(6) - 2.5) / 2.5
        picked = arr[rng.integers(len(arr), size=shape[0] * shape[1])] * tilt * rng.normal(1.0, 0.05)
        return picked.T.reshape(6, *shape)


def _field(rng, shape, scale_px):
    """Smooth Gaussian random field, mean 0, sd 1."""
    f = ndimage.gaussian_filter(rng.standard_normal(shape), max(scale_px, 0.5), mode="wrap")
    return (f - f.mean()) / (f.std() + 1e-12)


def _blob(rng, shape, centre, radius, irregular, aspect, angle):
    """Irregular patch: an ellipse whose edge is pushed in and out by a random field."""
    yy, xx = np.mgrid[: shape[0], : shape[1]].astype(float)
    dy, dx = yy - centre[0], xx - centre[1]
    ca, sa = np.cos(angle), np.sin(angle)
    u, v = (dx * ca + dy * sa) / np.sqrt(aspect), (-dx * sa + dy * ca) * np.sqrt(aspect)
    return np.hypot(u, v) / radius + irregular * 0.35 * _field(rng, shape, radius / 3) < 1.0


def _clearing_shape(rng, shape, centre, radius):
    """Straight-edged clearing: a rotated, sheared rectangle, sometimes L-shaped or with one
    ragged edge."""
    yy, xx = np.mgrid[: shape[0], : shape[1]].astype(float)
    aspect = rng.uniform(1.0, 4.0)
    half_len = radius * np.sqrt(np.pi) / 2 * np.sqrt(aspect)
    half_wid = radius * np.sqrt(np.pi) / 2 / np.sqrt(aspect)
    angle = rng.uniform(0, np.pi)
    dy, dx = yy - centre[0], xx - centre[1]
    u = dx * np.cos(angle) + dy * np.sin(angle)
    v = -dx * np.sin(angle) + dy * np.cos(angle)
    inside = (np.abs(u + rng.uniform(-0.3, 0.3) * v) < half_len) & (np.abs(v) < half_wid)
    kind = rng.random()
    if kind < 0.25:
        inside &= ~((u > half_len * rng.uniform(0, 0.6)) & (v > half_wid * rng.uniform(-0.2, 0.4)))
    elif kind < 0.4:
        inside &= v < half_wid - 0.3 * half_wid * (1 + _field(rng, shape, radius / 4))
    return inside


def _river(rng, shape, width_px, angle, offset_px, centre):
    """A meandering channel whose axis passes ``offset_px`` from ``centre`` (the scar's):
    (bool mask, signed across-channel coordinate)."""
    yy, xx = np.mgrid[: shape[0], : shape[1]].astype(float)
    yy, xx = yy - centre[0], xx - centre[1]
    along = xx * np.cos(angle) + yy * np.sin(angle)
    across = -xx * np.sin(angle) + yy * np.cos(angle) - offset_px
    wiggle = (shape[0] / 6) * np.sin(along / (shape[0] / rng.uniform(1, 3)) + rng.uniform(0, 6)) * rng.uniform(0, 1)
    return np.abs(across - wiggle) < width_px / 2, across


@dataclass(frozen=True)
class SampledScar:
    """One sampled scar: the change layers on its window, its mask and how it was drawn."""

    layers: dict
    mask: np.ndarray
    resolution_m: float
    label: str
    subtype: str
    sensor: str
    regime: str


def sample_scar(rng: np.random.Generator, library: SpectralLibrary, cls: str, sensor: str | None = None,
                regime: str | None = None, subtype: str | None = None, felled: bool | None = None) -> SampledScar | None:
    """Draw one scar of class ``cls``; None when the emulated detector would not see it.

    ``felled`` (mines only; when None, drawn with probability :data:`FELLED_SHARE` in the dense
    regime and never otherwise): the footprint is felled before it is dug, and the looks before
    the dig see felled ground (slash, bare soil, sometimes char), later ones the part not yet dug.
    In a series any number of looks but the latest may be felled (so the median may read as a
    clearing while the latest look shows the pit); in a composite fewer than half of them; a
    single look always comes after the dig: a look of felled ground alone is a clearing to any
    observer, so it is never labelled mining."""
    if cls not in CLASSES:
        raise ValueError(f"unknown class {cls!r}")
    sensor = sensor or list(SENSORS)[rng.integers(len(SENSORS))]
    regime = regime or REGIMES[rng.integers(len(REGIMES))]
    subtype = subtype or SUBTYPES[cls][rng.integers(len(SUBTYPES[cls]))]
    res = SENSORS[sensor]
    sub_res = res / SUB
    area_ha = 10 ** rng.uniform(*np.log10(AREA_HA))
    radius_m = np.sqrt(area_ha * 1e4 / np.pi)
    size = int(min(max(np.ceil((2.6 * radius_m + 2 * CONTEXT_M) / res), 24), MAX_WINDOW_PX))
    shape = (size * SUB, size * SUB)
    centre = (shape[0] / 2 + rng.normal(0, 2), shape[1] / 2 + rng.normal(0, 2))
    rad = radius_m / sub_res

    # Baseline: forest, a river, older open land.
    base = library.pick(rng, "forest", shape)
    river = np.zeros(shape, bool)
    across = None
    p_river = 1.0 if subtype in ("bank", "flood") else {"mining": 0.75, "clearing": 0.4, "other": 0.5}[cls]
    if rng.random() < p_river:
        width_m = rng.uniform(20, 200)
        near = (cls == "mining" and rng.random() < 0.7) or subtype in ("bank", "flood")
        gap = rng.uniform(0, 120 if near else 600) / sub_res
        if cls == "mining" and near and rng.random() < 0.4:
            # alluvial pits are often dug from the river bank inland: the channel cuts the pit's
            # edge, which then lines the river as a bank does
            gap = -rng.uniform(0.1, 0.6) * rad
        offset = (rad + gap + width_m / sub_res / 2) * rng.choice([-1, 1])
        river, across = _river(rng, shape, width_m / sub_res, rng.uniform(0, np.pi), offset, centre)
        base = np.where(river[None], library.pick(rng, "river_water", shape), base)
    if rng.random() < 0.45:
        if cls == "mining":
            old_cover = "mining_sediment" if rng.random() < 0.75 else "pasture"
        else:
            old_cover = "mining_sediment" if rng.random() < 0.1 else ("pasture" if rng.random() < 0.7 else "regrowth")
        old = _field(rng, shape, rad / 2) > rng.uniform(0.5, 1.5)
        spectra = library.pick(rng, old_cover, shape)
        if old_cover == "mining_sediment":
            spectra = np.where((_field(rng, shape, rad / 5) > 1.0)[None], library.pick(rng, "mining_pond", shape), spectra)
        base = np.where((old & ~river)[None], spectra, base)

    # Footprint.
    if cls == "mining":
        footprint = _blob(rng, shape, centre, rad, rng.uniform(0.8, 2.0), rng.uniform(1, 4), rng.uniform(0, np.pi))
    elif cls == "clearing" and subtype != "irregular":
        footprint = _clearing_shape(rng, shape, centre, rad)
    elif cls == "clearing":
        footprint = _blob(rng, shape, centre, rad, rng.uniform(0.6, 1.2), rng.uniform(1, 3), rng.uniform(0, np.pi))
    elif subtype in ("bank", "flood") and river.any():
        band_px = rng.uniform(20, 120) / sub_res
        yy, xx = np.mgrid[: shape[0], : shape[1]]
        footprint = (~river & (ndimage.distance_transform_edt(~river) < band_px)
                     & (np.hypot(yy - centre[0], xx - centre[1]) < rad * rng.uniform(1.5, 3)))
    elif subtype in ("bank", "flood"):
        return None   # no channel in the window: a bank or a flood needs one
    else:
        footprint = _blob(rng, shape, centre, rad, rng.uniform(0.5, 1.5), rng.uniform(1, 2.5), rng.uniform(0, np.pi))
    footprint &= ~river
    if footprint.sum() < 4 * SUB * SUB:
        return None
    pond_field = _field(rng, shape, max(rad / 4, 2))
    felled_draw = rng.random() < FELLED_SHARE
    if cls == "mining" and (felled if felled is not None else felled_draw and regime == "dense"):
        dig_field = _field(rng, shape, max(rad / 3, 2))   # where the pit opens first
        dug_first, dig_rate = rng.uniform(0.3, 0.8), rng.uniform(1.0, 4.0)   # share at the dig, growth a year
        char_share = rng.uniform(0.1, 0.6) if rng.random() < 0.4 else 0.0   # slash burnt in piles
    else:
        dig_field = None
    veg_field = _field(rng, shape, max(rad / 6, 1.5))
    speckle = rng.standard_normal(shape)

    def share(field, fraction):
        """The ``fraction`` of the footprint where ``field`` is lowest."""
        if fraction <= 0:
            return np.zeros(shape, bool)
        return field < np.quantile(field[footprint], min(fraction, 1.0))

    def surface(t: float) -> np.ndarray:
        """(6, H, W) ground reflectance t (0–1 of a year) after the change."""
        if cls == "mining":
            sediment = library.pick(rng, "mining_sediment", shape) * rng.uniform(0.55, 1.15)  # damp to dry
            if rng.random() < 0.4:  # mixed with darker overburden / lateritic fines
                mix = rng.uniform(0.0, 0.4)
                sediment = (1 - mix) * sediment + mix * library.pick(rng, "bare_soil", shape)
            ponds = share(pond_field, rng.uniform(0, 0.04) if subtype == "sediment_only" else rng.uniform(0.08, 0.6))
            water = library.pick(rng, "mining_pond" if rng.random() < 0.7 else "river_water", shape)
            surf = np.where(ponds[None], water, sediment)
            regrown = (rng.uniform(0.1, 0.5) if subtype == "mixed_regrowth" else rng.uniform(0, 0.15)) * (0.5 + t)
            veg = share(veg_field, min(regrown, 0.7)) & ~ponds
            surf = np.where(veg[None], library.pick(rng, "regrowth" if rng.random() < 0.6 else "pasture", shape), surf)
            if dig_field is not None:   # felled first: the ground not yet dug is slash, as a slashed clearing's
                felled_ground = 0.5 * library.pick(rng, "bare_soil", shape) + 0.5 * base * DEAD_WOOD[:, None, None]
                char = CHAR * rng.uniform(0.7, 1.4) * rng.normal(1, 0.08, 6)
                felled_ground = np.where(share(veg_field, char_share)[None], char[:, None, None], felled_ground)
                dug = 0.0 if t < t_dig else dug_first + (t - t_dig) * dig_rate
                if dug < 1.0:
                    surf = np.where(share(dig_field, dug)[None], surf, felled_ground)
        elif cls == "clearing":
            if subtype in ("bare", "irregular") and rng.random() < 0.6:
                cover, green = library.pick(rng, "bare_soil", shape), min(0.8, t * rng.uniform(0, 1.2))
            elif subtype == "burnt":
                char = CHAR * rng.uniform(0.7, 1.4) * rng.normal(1, 0.08, 6)
                cover = char[:, None, None] * (1 + 0.1 * rng.standard_normal((6, *shape)))
                cover = np.where((veg_field > 1.2)[None], (ASH * rng.uniform(0.8, 1.2))[:, None, None], cover)
                green = min(0.9, t * rng.uniform(0.5, 1.5))  # burnt fields green up
            elif subtype == "slash":
                cover = 0.5 * library.pick(rng, "bare_soil", shape) + 0.5 * base * DEAD_WOOD[:, None, None]
                green = t * rng.uniform(0, 0.8)
            else:
                cover, green = library.pick(rng, "bare_soil", shape), rng.uniform(0.5, 1.0)
            surf = np.where(share(veg_field, green)[None], library.pick(rng, "pasture", shape), cover)
            surf = np.where((speckle > rng.uniform(1.6, 3.0))[None], base, surf)   # remnant trees
            if rng.random() < 0.08:  # a cattle pond
                surf = np.where(share(pond_field, 0.03)[None], library.pick(rng, "river_water", shape), surf)
        elif subtype == "bank":
            # fresh bank sand, a little darker than worked mining sediment (the bare ground outside
            # the AMW polygons of the La Pampa clip is darker than inside)
            sand = library.pick(rng, "mining_sediment", shape) * rng.uniform(0.75, 1.0)
            surf = np.where(share(pond_field, rng.uniform(0.1, 0.9))[None], library.pick(rng, "river_water", shape), sand)
        elif subtype == "flood":
            mix = rng.uniform(0.3, 0.9)
            surf = mix * library.pick(rng, "river_water", shape) + (1 - mix) * base
        elif subtype == "blowdown":
            regrowth = library.pick(rng, "regrowth" if rng.random() < 0.5 else "pasture", shape)
            mix = rng.uniform(0.3, 0.8)
            surf = mix * np.where((veg_field > 0)[None], regrowth, base * DEAD_WOOD[:, None, None]) + (1 - mix) * base
        elif subtype == "haze":
            surf = base + rng.uniform(0.05, 0.15) * HAZE_SHAPE[:, None, None] * (1 + 0.3 * veg_field)
            surf[3] *= rng.uniform(0.6, 0.9)
        else:  # shadow, dark cloud edge
            surf = base * rng.uniform(0.25, 0.55) * np.array([1, 1, 1, 0.8, 1, 1])[:, None, None]
        return np.where(footprint[None], surf, base)

    def to_pixels(a):
        return a.reshape(a.shape[0], size, SUB, size, SUB).mean(axis=(2, 4))

    gain = rng.normal(1.0, 0.04, 6) * rng.normal(1.0, 0.06)
    offset = rng.normal(0.0, 0.004, 6)
    if regime == "single":
        times, noise = [rng.uniform(0, 1)], rng.uniform(0.003, 0.015)
    elif regime == "dense":
        times, noise = list(np.sort(rng.uniform(rng.uniform(0, 0.5), 1, 3))), rng.uniform(0.003, 0.012)
    else:
        times, noise = list(np.linspace(rng.uniform(0, 0.4), rng.uniform(0.6, 1.0), 3)), rng.uniform(0.001, 0.005)
        n_before = 0
        if rng.random() < STRADDLE_SHARE:
            # the composite's period straddles the change: 1–3 of its looks still see the ground
            # before it, 1–3 the new surface (a pit dug mid-period in a multi-year median)
            n_before = int(rng.integers(1, 4))
            times = list(np.sort(rng.uniform(0, 1, int(rng.integers(1, 4)))))
    # A felled-first mine is dug between looks: after the first n_felled of its looks, or before
    # the first look. In a series the latest look always comes after the dig (a series of felled
    # ground alone is a clearing to any observer), and the felled looks may be most of them, so
    # the median over the looks can read as a clearing while the latest look shows the pit; a
    # composite's looks are never half or more felled (its median is the mine's).
    if dig_field is not None:
        most = len(times) - 1 if regime == "dense" else (len(times) - 1) // 2
        n_felled = int(rng.integers(0, most + 1))
        t_dig = rng.uniform(times[n_felled - 1] if n_felled else times[0] - 0.3, times[n_felled])
    if regime == "composite":   # the per-pixel median of the period's looks, little noise
        states = [to_pixels(base)] * n_before + [to_pixels(surface(t)) for t in times]
        states = [x * rng.normal(1.0, 0.02, 6)[:, None, None] for x in states]   # each look's year differs a little
        post = np.median(np.stack(states), axis=0) * gain[:, None, None]
        post = post + offset[:, None, None] + rng.normal(0, noise, post.shape)
        latest = post
    else:
        looks = []
        for t in times:
            look = to_pixels(surface(t)) * gain[:, None, None] + offset[:, None, None]
            if rng.random() < 0.3:
                look = look + rng.uniform(0, 0.04) * HAZE_SHAPE[:, None, None]
            looks.append(look + rng.normal(0, noise, look.shape))
        post = np.median(np.stack(looks), axis=0)
        latest = looks[-1]
    post = np.clip(post, 0.0, 1.0)
    baseline = to_pixels(base) * gain[:, None, None] + offset[:, None, None] + rng.normal(0, 0.003, post.shape)

    def nd(a, b):
        return (a - b) / (a + b + 1e-6)

    base_ndvi, base_mndwi = nd(baseline[3], baseline[2]), nd(baseline[1], baseline[4])
    post_ndvi, post_mndwi = nd(post[3], post[2]), nd(post[1], post[4])
    river_px = to_pixels(river[None].astype(float))[0] > 0.5
    touched = to_pixels(footprint[None].astype(float))[0] > 0
    # The detector: loss of baseline forest, or new bare ground / water on non-forest land.
    drop = rng.uniform(0.15, 0.25)
    forest_loss = (base_ndvi - post_ndvi >= drop) & (base_ndvi >= 0.65)
    new_surface = (base_ndvi < 0.65) & ((post_ndvi < 0.25) | (post_mndwi > 0)) & (base_ndvi - post_ndvi >= 0.1)
    flagged = (forest_loss | new_surface) & ~river_px & ~(base_mndwi > 0) & touched
    labels, n = ndimage.label(flagged, structure=np.ones((3, 3)))
    if n == 0:
        return None
    mask = labels == 1 + np.bincount(labels.ravel())[1:].argmax()
    if mask.sum() < 5:
        return None
    layers = {f"post_{b}": np.where(mask, post[i], np.nan) for i, b in enumerate(BANDS)}
    layers["latest_mining_ground"] = np.where(mask, mining_ground(*np.clip(latest, 0.0, 1.0)), np.nan)
    layers.update({f"base_{b}": baseline[i] for i, b in enumerate(BANDS)})
    layers.update(baseline_ndvi=base_ndvi, baseline_mndwi=base_mndwi,
                  water=(river_px | (base_mndwi > 0.2)).astype(float))
    return SampledScar(layers, mask, res, cls, subtype, sensor, regime)


def sample_table(library: SpectralLibrary, n_per_class: int, seed: int, sensor: str | None = None,
                 regime: str | None = None, family: str = "sampler") -> pd.DataFrame:
    """FEATURES of ``n_per_class`` sampled scars of each class, with ``label``, ``group`` (one
    per sample: samples are independent), ``scene`` (the family), ``sensor``, ``regime``,
    ``subtype``. Deterministic for a seed."""
    rng = np.random.default_rng(seed)
    rows = []
    for cls in CLASSES:
        got = tries = 0
        while got < n_per_class and tries < 10 * n_per_class:
            tries += 1
            scar = sample_scar(rng, library, cls, sensor, regime)
            if scar is None:
                continue
            row = scar_features(scar.layers, scar.mask, scar.resolution_m)
            row.update(label=cls, group=f"{family}:{seed}:{cls}:{got}", scene=family, sensor=scar.sensor,
                       regime=scar.regime, subtype=scar.subtype)
            rows.append(row)
            got += 1
    return pd.DataFrame(rows, columns=[*FEATURES, "label", "group", "scene", "sensor", "regime", "subtype"])
