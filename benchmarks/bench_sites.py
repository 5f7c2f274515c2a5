"""Semi-real composite sites: real pixels with their real spatial texture, run through ``cec run``.

Many small two-composite sites (one baseline composite 2018–2019, one monitor composite
2020–2023, no mask band), each its own protected area with ``buffer_m: 0``, as an outside
evaluation on real annual composites would run them: Sentinel-2-like sites of 48 × 48 px at
10 m and Landsat-like sites of 24 × 24 px at 30 m. Nothing is mixed per pixel from endmembers
(that is what the training sampler does); every site is cut from real Landsat 8 surface
reflectance as whole windows, so texture, ponds, sediment, regrowth islands and edges stay
together:

- **mining**: the shape of *new* mining (Amazon Mining Watch polygons new in 2020–2023) and of
  the stock already mined by 2019 (AMW 2018 stock + 2019 new), rasterised at a real AMW
  location; the monitor composite gets, inside both shapes, one window of real mining ground of
  the La Pampa clip (inside its AMW 2018 stock), placed where that window's mining ground covers
  the shape best; the baseline gets the same window inside the old stock only. Each site asks
  for ``sediment`` ground (ponds under 8 % of the shape), ``ponds`` (≥ 20 %) or ``any``; in 40 %
  of the sites part of the new shape was secondary growth in the baseline (a real window of
  La Pampa regrowth, NDVI 0.45–0.72), so only the mining-surface path can find that part.
- **clearing**: rectangles, L-shapes, irregular polygons and a road to the edge, filled with a
  real window of cleared ground (pasture, bare fields) of the Porto Velho Landsat 8 scene
  (2019-07-27), the MultiEarth Pará dry-season chips or La Pampa outside the AMW polygons.
- **natural / no change**: forest to forest (a real pair of dates of the Amarakaeri Landsat 8
  scenes, 2016-07-30 → 08-15 / 09-16, or one La Pampa forest window in both looks), the Madeira
  river with its banks and bars in both looks (some with lower water: a strip of the channel
  edge turned into sand bar), and pasture that stays pasture.

Around every site the background is a real forest window (La Pampa outside the AMW polygons, or
Amarakaeri). Each composite is either the look of one year (``one_year``: the last year of its
period) or the per-pixel median of one look per year of its period (``period_median``: ground
dug in 2022 is then a 50/50 temporal mix of before and after, ground dug in 2023 barely shows);
every look gets its own per-band gain and offset and pixel noise, and a third of the monitor
composites some haze. Sentinel-2-like sites are
the 30 m windows resampled bilinearly to 10 m, Landsat band n → the pipeline's common names
(B2 blue, B3 green, B4 red, B5 nir, B6 swir16, B7 swir22), adjusted from OLI to MSI by the
inverse of the pipeline's own HLS coefficients, and written as Earth Search ``sentinel-2-l2a``
composites; Landsat-like sites as ``landsat-c2-l2`` composites (no ``qa_pixel``).

Each family is written as one local static STAC catalog (two items per site, sites side by side
on a grid in EPSG:32719, 1–2 km apart) and one area layer, and run with the real ``cec run``
job (``pipeline.run.run``; the bundled model, ``buffer_m: 0``, ``min_confidence: low``, default
detection settings). Scored per site: any alert; a ``mining`` alert; ``mining`` the main class by
alerted area (mining sensitivity); clearings called mining; natural/no-change sites alerted
(1 − specificity). For every mining site not called mining, the scar's features (from the
pipeline's own detection on that site) and what the site's truth looked like.

What limits it: the spectra are from the same scenes the endmember library of the training
sampler is built from (La Pampa, Porto Velho, Pará, Amarakaeri); all mining ground comes from
one Landsat 8 scene (La Pampa, 2018-09-06, dry season); Sentinel-2 is emulated from Landsat
(30 m texture resampled to 10 m is smoother than real 10 m); the shapes come from AMW, itself a
model's output; composites are emulated by one look plus a radiometric shift.

Usage (from the repository root; a few minutes on 2 cores):

    python benchmarks/bench_sites.py [--out benchmarks/results_sites.json] [--seed 0]
        [--n-mining 80 --n-clearing 30 --n-natural 30] [--n-landsat-mining 40 ...]
        [--keep DIR] [--model models/scar-classifier.skops]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import pystac
import rasterio
import rasterio.features
import shapely
import shapely.affinity
import yaml
from affine import Affine
from scipy import ndimage, signal
from shapely.geometry import LineString, Polygon, box, mapping

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_real import shared_data  # noqa: E402

from pipeline.change import mining_surface  # noqa: E402
from pipeline.harmonize import MSI_TO_OLI  # noqa: E402
from pipeline.model import BANDS  # noqa: E402


SHARED = shared_data()
LAPAMPA = SHARED / "real/scikit-eo/LC08_003069_20180906_clip.tif"
PORTO_VELHO = SHARED / "real/scikit-eo/LC08_232066_20190727.tif"
AMW = SHARED / "real/earthrise-amw/mining_polygons_mdd"
AMARAKAERI = SHARED / "real2/foresttoolboxrs-csaybar"
MULTIEARTH = SHARED / "real2/multiearth-para"
PARA_DRY = ("L8_-54.74_-4.09_2020-06-08", "L8_-54.96_-3.97_2015-08-14", "L8_-55.14_-3.89_2016-07-15",
            "L8_-55.20_-4.39_2020-07-26", "L8_-55.20_-4.39_2021-07-29")
MODEL = REPO / "models/scar-classifier.skops"

BASELINE = ("2018-01-01", "2019-12-31")
MONITOR = ("2020-01-01", "2023-12-31")
EPSG = 32719
ORIGIN = (300_000.0, 8_600_000.0)          # north-west corner of the site grid, EPSG:32719
SENSORS = {   # family -> pixel (m), site edge (px), spacing of the site grid (m)
    "sentinel-2": {"res": 10.0, "size": 48, "spacing": 1000.0},
    "landsat": {"res": 30.0, "size": 24, "spacing": 2000.0},
}
FOREST_NDVI = 0.7
HAZE_SHAPE = np.array([1.0, 0.8, 0.6, 0.4, 0.15, 0.08])   # additive haze by band (blue … swir22)


# --- real imagery ---------------------------------------------------------------------------------

def _nd(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        return (a - b) / (a + b)


@dataclass
class Scene:
    """One real 30 m Landsat 8 reflectance scene (6, y, x) in BANDS order, with cover masks."""

    name: str
    refl: np.ndarray
    covers: dict[str, np.ndarray] = field(default_factory=dict)
    pair: np.ndarray | None = None     # the same ground on another date (Amarakaeri)
    pair_name: str = ""

    @property
    def valid(self) -> np.ndarray:
        ok = np.isfinite(self.refl).all(axis=0)
        if self.pair is not None:
            ok &= np.isfinite(self.pair).all(axis=0)
        return ok


def _masks(refl: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return _nd(refl[3], refl[2]), _nd(refl[1], refl[4])


def load_lapampa() -> Scene:
    """La Pampa clip (2018-09-06), scale 1e-4 (as pipeline.training.endmembers reads it), with
    its AMW 2018 mining stock: mining ground (bare or pond) inside it, ponds, regrowing pits;
    forest and cleared ground outside it (90 m away)."""
    with rasterio.open(LAPAMPA) as src:
        refl = src.read().astype("float64") / 1e4
        transform = src.transform
    amw = gpd.read_file(AMW / "amw_mining_2018_stock_mdd.geojson").to_crs(32619)   # the clip's negative northings
    stock = rasterio.features.rasterize([(g, 1) for g in amw.geometry], out_shape=refl.shape[1:],
                                        transform=transform).astype(bool)
    away = ~ndimage.binary_dilation(stock, iterations=3)
    ndvi, mndwi = _masks(refl)
    return Scene("lapampa-L8-2018-09-06", refl, {
        "mining_ground": stock & ((ndvi < 0.3) | (mndwi > 0)),
        "pond": stock & (mndwi > 0),
        "regrowth": stock & (ndvi > 0.45) & (ndvi < 0.72) & (mndwi < 0),
        "forest": away & (ndvi > FOREST_NDVI),
        "cleared": away & (ndvi < 0.6) & (mndwi < 0),
    })


def load_amarakaeri() -> list[Scene]:
    """The three Amarakaeri Landsat 8 dates of 2016 (bands 2–7, scale 1e-4, clouds already set to
    nodata): forest, each as a pair of dates (07-30 with 08-15, 07-30 with 09-16)."""
    looks = {}
    for date in ("20160730", "20160815", "20160916"):
        with rasterio.open(AMARAKAERI / f"amarakaeri_L8_{date}_VF.tif") as src:
            a = src.read([2, 3, 4, 5, 6, 7]).astype("float64")
        a[a < -1e30] = np.nan
        looks[date] = a / 1e4
    scenes = []
    for later in ("20160815", "20160916"):
        a = looks["20160730"]
        ndvi, _ = _masks(a)
        scenes.append(Scene("amarakaeri-L8-2016-07-30", a, {"forest": ndvi > FOREST_NDVI}, looks[later],
                            f"amarakaeri-L8-{later[:4]}-{later[4:6]}-{later[6:]}"))
    return scenes


def load_porto_velho() -> Scene:
    """Porto Velho (2019-07-27; scale 1e-4, nodata −9999): the Madeira river, its banks and bars,
    and the pasture and bare fields of an agricultural front."""
    with rasterio.open(PORTO_VELHO) as src:
        a = src.read().astype("float64")
    a[a == -9999] = np.nan
    a /= 1e4
    ndvi, mndwi = _masks(a)
    return Scene("portovelho-L8-2019-07-27", a, {
        "cleared": (ndvi > 0.05) & (ndvi < 0.6) & (mndwi < -0.05),
        "river": (mndwi > 0.2) & (ndvi < 0.1),
        "forest": ndvi > FOREST_NDVI,
    })


def load_para() -> list[Scene]:
    """MultiEarth Pará Landsat 8 C2 L2 chips of the dry season (scale 2.75e-5, offset −0.2; QA
    cloud, shadow and fill set to nodata): pasture and bare fields."""
    scenes = []
    for stem in PARA_DRY:
        path = MULTIEARTH / f"{stem}.tif"
        if not path.exists():
            continue
        with rasterio.open(path) as src:
            raw = src.read().astype("float64")
            names = list(src.descriptions)
        qa = raw[names.index("QA_PIXEL")].astype(np.uint16)
        bad = (qa & 0b11111) > 0
        a = np.stack([raw[names.index(f"SR_B{n}")] for n in range(2, 8)]) * 2.75e-5 - 0.2
        a[:, bad | (raw[names.index("SR_B4")] == 0)] = np.nan
        ndvi, mndwi = _masks(a)
        scenes.append(Scene(f"para-{stem}", a, {"cleared": (ndvi > 0.05) & (ndvi < 0.6) & (mndwi < -0.05),
                                                 "forest": ndvi > FOREST_NDVI}))
    return scenes


@dataclass
class Sources:
    lapampa: Scene
    amarakaeri: list[Scene]
    porto_velho: Scene
    para: list[Scene]
    amw: dict[int, gpd.GeoDataFrame]   # AMW polygons by year, EPSG:32719: 2018 the stock, later years new

    @classmethod
    def load(cls) -> "Sources":
        amw = {y: gpd.read_file(AMW / f"amw_mining_{y}_{'stock' if y == 2018 else 'new'}_mdd.geojson").to_crs(EPSG)
               for y in range(2018, 2024)}
        return cls(load_lapampa(), load_amarakaeri(), load_porto_velho(), load_para(), amw)

    @cached_property
    def new_mining(self) -> gpd.GeoDataFrame:
        """AMW polygons new in 2020–2023."""
        return gpd.GeoDataFrame(pd.concat([self.amw[y] for y in MONITOR_YEARS], ignore_index=True), crs=EPSG)

    def forest_scenes(self) -> list[Scene]:
        return [self.lapampa, *self.amarakaeri]

    def cleared_scenes(self) -> list[Scene]:
        return [self.porto_velho, *self.para, self.lapampa]


def missing_data() -> list[str]:
    need = [LAPAMPA, PORTO_VELHO, AMW / "amw_mining_2018_stock_mdd.geojson", AMARAKAERI / "amarakaeri_L8_20160730_VF.tif"]
    return [str(p) for p in need if not p.exists()]


# --- windows of real ground -----------------------------------------------------------------------

def coverage(good: np.ndarray, want: np.ndarray) -> np.ndarray:
    """For every placement (row, col) of the window ``want`` (weights, h × w) on the source grid,
    the share of the weight that falls on ``good`` pixels: (H − h + 1, W − w + 1)."""
    total = float(want.sum())
    if total <= 0:
        return np.ones((good.shape[0] - want.shape[0] + 1, good.shape[1] - want.shape[1] + 1))
    # FFT correlation: exact up to rounding, which the 1e-9 below removes
    out = signal.correlate(good.astype(float), want.astype(float), mode="valid", method="fft") / total
    return np.round(out, 9)


def choose_window(rng: np.random.Generator, scene: Scene, good: np.ndarray, want: np.ndarray, min_cover: float,
                  extra: np.ndarray | None = None) -> tuple[int, int, float] | None:
    """A placement (row, col, cover) of ``want`` on ``scene`` where every pixel is valid and at
    least ``min_cover`` of the weight is on ``good`` (and ``extra``, bool per placement, holds);
    drawn at random among those, else None."""
    h, w = want.shape
    if scene.refl.shape[1] < h or scene.refl.shape[2] < w:
        return None
    cover = coverage(good & scene.valid, want)
    invalid = coverage(~scene.valid, np.ones_like(want)) > 0
    ok = (cover >= min_cover) & ~invalid
    if extra is not None:
        ok &= extra
    rows, cols = np.nonzero(ok)
    if not rows.size:
        return None
    k = rng.integers(rows.size)
    return int(rows[k]), int(cols[k]), float(cover[rows[k], cols[k]])


def cut(a: np.ndarray, row: int, col: int, h: int, w: int) -> np.ndarray:
    return a[:, row:row + h, col:col + w]


def to_grid(patch30: np.ndarray, factor: int) -> np.ndarray:
    """A 30 m window (6, h, w) on the site grid: itself at 30 m, bilinear at 10 m (factor 3)."""
    if factor == 1:
        return patch30.copy()
    return np.stack([ndimage.zoom(band, factor, order=1, mode="nearest", grid_mode=True) for band in patch30])


def block_mean(mask: np.ndarray, factor: int) -> np.ndarray:
    """A site-grid mask as 30 m weights (share of each 30 m cell)."""
    if factor == 1:
        return mask.astype(float)
    h, w = mask.shape
    return mask.reshape(h // factor, factor, w // factor, factor).mean(axis=(1, 3))


# --- sites ----------------------------------------------------------------------------------------

@dataclass
class Site:
    """Two composites of one site on its own grid (res m, size × size px), reflectance in BANDS
    order as Landsat 8 OLI would see it (the writer adjusts Sentinel-2-like sites to MSI)."""

    site_id: str
    kind: str          # mining, clearing, natural
    subtype: str
    sensor: str
    baseline: np.ndarray
    monitor: np.ndarray
    truth: np.ndarray  # bool: the new mining / clearing; nothing for natural sites
    info: dict


def radiometry(rng: np.random.Generator, look: np.ndarray, haze: float = 0.0) -> np.ndarray:
    """A composite of another year: per-band gain and offset, haze, pixel noise."""
    gain = rng.normal(1.0, 0.02, 6) * rng.normal(1.0, 0.03)
    offset = rng.normal(0.0, 0.003, 6)
    out = look * gain[:, None, None] + offset[:, None, None] + haze * HAZE_SHAPE[:, None, None]
    return np.clip(out + rng.normal(0.0, 0.004, look.shape), 0.0005, 1.0)


def forest_background(rng: np.random.Generator, sources: Sources, n30: int) -> tuple[np.ndarray, np.ndarray, str] | None:
    """(baseline, monitor, name) 30 m forest windows: a real Amarakaeri pair of dates, or one La
    Pampa window for both looks."""
    want = np.ones((n30, n30))
    scenes = sources.forest_scenes()
    for k in rng.permutation(len(scenes)):
        scene = scenes[k]
        got = choose_window(rng, scene, scene.covers["forest"], want, 0.85)
        if got is None:
            continue
        r, c, _ = got
        before = cut(scene.refl, r, c, n30, n30)
        after = cut(scene.pair, r, c, n30, n30) if scene.pair is not None else before
        return before, after, f"{scene.name}{' -> ' + scene.pair_name if scene.pair_name else ''}[{r},{c}]"
    return None


def _rasterize(geoms, bounds: tuple[float, float, float, float], res: float, size: int) -> np.ndarray:
    geoms = [g for g in geoms if not g.is_empty]
    if not geoms:
        return np.zeros((size, size), bool)
    transform = Affine(res, 0, bounds[0], 0, -res, bounds[3])
    return rasterio.features.rasterize([(g, 1) for g in geoms], out_shape=(size, size), transform=transform,
                                       all_touched=False).astype(bool)


MONITOR_YEARS = (2020, 2021, 2022, 2023)
BASELINE_YEARS = (2018, 2019)
COMPOSITES = ("one_year", "period_median")


def mining_shapes(rng: np.random.Generator, sources: Sources, res: float, size: int, min_new_ha: float,
                  used: list) -> tuple[dict[int, np.ndarray], dict] | None:
    """Masks by AMW year (2018 = the stock, 2019 … 2023 = new that year and not mined before) of
    a site window around a random AMW polygon new in 2020–2023."""
    new_all = sources.new_mining
    edge = res * size
    for _ in range(50):
        k = int(rng.integers(len(new_all)))
        poly = new_all.geometry.iloc[k]
        if poly.area < 0.5e4:
            continue
        p = poly.representative_point()
        cx, cy = p.x + rng.uniform(-0.35, 0.35) * edge, p.y + rng.uniform(-0.35, 0.35) * edge
        if any(abs(cx - ux) < edge and abs(cy - uy) < edge for ux, uy in used):
            continue
        bounds = (cx - edge / 2, cy - edge / 2, cx + edge / 2, cy + edge / 2)
        window = box(*bounds)
        by_year, mined = {}, np.zeros((size, size), bool)
        for year in (*BASELINE_YEARS, *MONITOR_YEARS):
            layer = sources.amw[year]
            mask = _rasterize(layer.geometry[layer.intersects(window)].intersection(window), bounds, res, size)
            by_year[year] = mask & ~mined
            mined |= mask
        new = np.any([by_year[y] for y in MONITOR_YEARS], axis=0)
        if new.sum() * res * res / 1e4 < min_new_ha:
            continue
        used.append((cx, cy))
        return by_year, {"amw_centre_utm19s": [round(cx), round(cy)],
                         "new_ha_by_year": {y: round(float(by_year[y].sum() * res * res / 1e4), 2)
                                            for y in MONITOR_YEARS if by_year[y].any()}}
    return None


def composite(rng: np.random.Generator, states: list[np.ndarray], mode: str, haze: float = 0.0) -> np.ndarray:
    """One composite of a period from the ground's yearly states: ``one_year`` = the last year's
    look; ``period_median`` = the per-pixel median of one look per year (each with its own
    radiometry), as a median composite over the whole period is."""
    if mode == "one_year":
        return radiometry(rng, states[-1], haze)
    looks = [radiometry(rng, state, haze * (i == len(states) - 1)) for i, state in enumerate(states)]
    return np.median(np.stack(looks), axis=0)


MINING_SUBTYPES = ("sediment", "sediment", "ponds", "any")


def build_mining_site(rng: np.random.Generator, sources: Sources, sensor: str, site_id: str, used: list,
                      subtype: str | None = None, nonforest: bool | None = None, mode: str | None = None) -> Site | None:
    """A site where mining emerged (see the module docstring)."""
    spec = SENSORS[sensor]
    res, size = spec["res"], spec["size"]
    factor = int(round(30 / res))
    n30 = size // factor
    subtype = subtype or MINING_SUBTYPES[rng.integers(len(MINING_SUBTYPES))]
    nonforest = bool(rng.random() < 0.4) if nonforest is None else nonforest
    mode = mode or COMPOSITES[rng.integers(len(COMPOSITES))]
    shapes = mining_shapes(rng, sources, res, size, 1.2 if sensor == "sentinel-2" else 1.5, used)
    background = forest_background(rng, sources, n30)
    if shapes is None or background is None:
        return None
    by_year, where = shapes
    new = np.any([by_year[y] for y in MONITOR_YEARS], axis=0)
    ever = np.any(list(by_year.values()), axis=0)
    lp = sources.lapampa
    want = block_mean(ever, factor)
    want_new = block_mean(new, factor)
    pond_cover = coverage(lp.covers["pond"] & lp.valid, want_new)
    extra = {"sediment": pond_cover < 0.08, "ponds": pond_cover >= 0.2, "any": None}[subtype]
    got = None
    for min_cover in (0.8, 0.7, 0.6, 0.5):
        got = choose_window(rng, lp, lp.covers["mining_ground"], want, min_cover, extra)
        if got is not None:
            break
    if got is None:
        return None
    r, c, ground_cover = got
    mined = to_grid(cut(lp.refl, r, c, n30, n30), factor)
    base_bg, mon_bg, bg_name = background
    before, after = to_grid(base_bg, factor), to_grid(mon_bg, factor)
    regrowth_name = ""
    if nonforest:
        # part of the new shape (a half-plane through it, or all of it) was secondary growth
        yy, xx = np.mgrid[:size, :size]
        angle = rng.uniform(0, 2 * np.pi)
        rows, cols = np.nonzero(new)
        proj = (yy - rows.mean()) * np.sin(angle) + (xx - cols.mean()) * np.cos(angle)
        part = new & (proj < rng.uniform(-0.5, 1.0) * proj[new].std())
        if part.sum() >= 0.2 * new.sum():
            grown = choose_window(rng, lp, lp.covers["regrowth"], block_mean(part, factor), 0.5)
            if grown is not None:
                rr, rc, _ = grown
                regrowth = to_grid(cut(lp.refl, rr, rc, n30, n30), factor)
                before = np.where(part[None], regrowth, before)
                after = np.where(part[None], regrowth, after)
                regrowth_name = f"{lp.name}[{rr},{rc}]"

    def state(year: int) -> np.ndarray:
        ground = before if year in BASELINE_YEARS else after
        dug = np.any([by_year[y] for y in by_year if y <= year], axis=0)
        return np.where(dug[None], mined, ground)

    haze = rng.uniform(0.0, 0.015) if rng.random() < 0.3 else 0.0
    baseline = composite(rng, [state(y) for y in BASELINE_YEARS], mode)
    monitor = composite(rng, [state(y) for y in MONITOR_YEARS], mode, haze)
    site = Site(site_id, "mining", subtype + ("+nonforest" if regrowth_name else ""), sensor, baseline, monitor, new,
                {**where, "composite": mode, "background": bg_name, "mining_window": f"{lp.name}[{r},{c}]",
                 "mining_ground_cover": round(ground_cover, 2), "regrowth_window": regrowth_name,
                 "monitor_haze": round(haze, 4)})
    site.info.update(truth_stats(site, res))
    site.info["old_ha"] = round(float((ever & ~new).sum() * res * res / 1e4), 2)
    return site


def truth_stats(site: Site, res: float) -> dict:
    """What the new ground looks like in the two composites: hectares, baseline forest share,
    share whose NDVI fell by 0.2, the monitor's pond and bare shares, and the share that passes
    the pipeline's own mining-surface test."""
    t = site.truth
    if not t.any():
        return {"truth_ha": 0.0}
    b, m = site.baseline, site.monitor
    b_ndvi, m_ndvi = _nd(b[3], b[2]), _nd(m[3], m[2])
    m_mndwi = _nd(m[1], m[4])
    pond = (m_mndwi > 0) & (m_ndvi < 0.2)
    surface = mining_surface(m_ndvi, m_mndwi, m[0], m[2], m[3], m[4])
    return {
        "truth_ha": round(float(t.sum() * res * res / 1e4), 2),
        "truth_baseline_forest_share": round(float((b_ndvi[t] >= 0.65).mean()), 2),
        "truth_dropped_share": round(float((b_ndvi[t] - m_ndvi[t] >= 0.2).mean()), 2),
        "truth_pond_share": round(float(pond[t].mean()), 2),
        "truth_bare_share": round(float(((m_ndvi < 0.3) & ~pond)[t].mean()), 2),
        "truth_mining_surface_share": round(float(surface[t].mean()), 2),
    }


def clearing_shape(rng: np.random.Generator, size: int, res: float) -> tuple[np.ndarray, str]:
    """A clearing-shaped mask on the site grid: rectangle, L-shape, irregular polygon, each
    sometimes with a road (10–20 m wide) to the site edge."""
    area_px = 10 ** rng.uniform(np.log10(1.2e4), np.log10(9e4)) / res ** 2
    area_px = min(area_px, 0.35 * size * size)
    kind = ("rectangle", "l_shape", "irregular")[rng.integers(3)]
    cx, cy = size / 2 + rng.uniform(-0.15, 0.15) * size, size / 2 + rng.uniform(-0.15, 0.15) * size
    if kind == "irregular":
        n = int(rng.integers(6, 11))
        angles = np.sort(rng.uniform(0, 2 * np.pi, n))
        radii = rng.uniform(0.6, 1.3, n)
        poly = Polygon([(cx + r * np.cos(a), cy + r * np.sin(a)) for r, a in zip(radii, angles)])
    else:
        aspect = rng.uniform(1.0, 3.5)
        poly = box(-aspect, -1, aspect, 1)
        if kind == "l_shape":
            poly = poly.difference(box(rng.uniform(-0.2, 0.5) * aspect, rng.uniform(-0.2, 0.4), aspect + 1, 2))
        poly = shapely.affinity.rotate(poly, rng.uniform(0, 180), origin=(0, 0))
        poly = shapely.affinity.translate(poly, cx, cy)
    poly = poly.buffer(0)
    scale = np.sqrt(area_px / max(poly.area, 1e-6))
    poly = shapely.affinity.scale(poly, scale, scale, origin=(cx, cy))
    geoms = [poly]
    if rng.random() < 0.4:
        kind += "+road"
        end = [(0.0, rng.uniform(0, size)), (size, rng.uniform(0, size)), (rng.uniform(0, size), 0.0)][rng.integers(3)]
        geoms.append(LineString([(cx, cy), end]).buffer(max(rng.uniform(10, 20) / res / 2, 0.5)))
    mask = rasterio.features.rasterize([(g, 1) for g in geoms], out_shape=(size, size)).astype(bool)
    return mask, kind


def build_clearing_site(rng: np.random.Generator, sources: Sources, sensor: str, site_id: str,
                        mode: str | None = None) -> Site | None:
    """A clearing in forest, made in one of the monitor years, filled with a real window of
    cleared ground."""
    spec = SENSORS[sensor]
    res, size = spec["res"], spec["size"]
    factor = int(round(30 / res))
    n30 = size // factor
    shape, kind = clearing_shape(rng, size, res)
    background = forest_background(rng, sources, n30)
    if background is None or shape.sum() * res * res / 1e4 < 1.0:
        return None
    scenes = sources.cleared_scenes()
    got = scene = None
    for k in rng.permutation(len(scenes)):
        scene = scenes[k]
        got = choose_window(rng, scene, scene.covers["cleared"], block_mean(shape, factor), 0.75)
        if got is not None:
            break
    if got is None:
        return None
    r, c, cover = got
    field_ = to_grid(cut(scene.refl, r, c, n30, n30), factor)
    base_bg, mon_bg, bg_name = background
    before, after = to_grid(base_bg, factor), to_grid(mon_bg, factor)
    cleared = np.where(shape[None], field_, after)
    mode = mode or COMPOSITES[rng.integers(len(COMPOSITES))]
    year = int(rng.choice(MONITOR_YEARS))
    haze = rng.uniform(0.0, 0.015) if rng.random() < 0.3 else 0.0
    m_ndvi = _nd(field_[3], field_[2])[shape]
    ground = "bare" if np.median(m_ndvi) < 0.3 else "grassy"
    site = Site(site_id, "clearing", f"{kind}/{ground}", sensor, composite(rng, [before] * len(BASELINE_YEARS), mode),
                composite(rng, [cleared if y >= year else after for y in MONITOR_YEARS], mode, haze), shape,
                {"composite": mode, "cleared_in": year, "background": bg_name,
                 "cleared_window": f"{scene.name}[{r},{c}]", "cleared_cover": round(cover, 2),
                 "monitor_haze": round(haze, 4)})
    site.info.update(truth_stats(site, res))
    return site


NATURAL_SUBTYPES = ("forest", "forest", "forest_haze", "river", "river_low_water", "pasture_stays")


def build_natural_site(rng: np.random.Generator, sources: Sources, sensor: str, site_id: str,
                       subtype: str | None = None) -> Site | None:
    """No human change: forest to forest (real date pairs or one window), haze, a river with its
    banks and bars in both looks (sometimes lower water), pasture that stays pasture."""
    spec = SENSORS[sensor]
    res, size = spec["res"], spec["size"]
    factor = int(round(30 / res))
    n30 = size // factor
    subtype = subtype or NATURAL_SUBTYPES[rng.integers(len(NATURAL_SUBTYPES))]
    haze = rng.uniform(0.01, 0.03) if subtype == "forest_haze" else 0.0
    if subtype.startswith("forest"):
        background = forest_background(rng, sources, n30)
        if background is None:
            return None
        before, after, name = background
    elif subtype.startswith("river"):
        pv = sources.porto_velho
        share = coverage(pv.covers["river"] & pv.valid, np.ones((n30, n30)))
        got = choose_window(rng, pv, pv.covers["river"], np.ones((n30, n30)), 0.1, share <= 0.6)
        if got is None:
            return None
        r, c, _ = got
        before = cut(pv.refl, r, c, n30, n30)
        after = before.copy()
        name = f"{pv.name}[{r},{c}]"
        if subtype == "river_low_water":
            # the channel edge (1–2 px of water next to land) falls dry: it shows the sand of the
            # window's own bars if it has any, else La Pampa's bare ground median
            water = cut(pv.covers["river"][None], r, c, n30, n30)[0]
            edge = water & ~ndimage.binary_erosion(water, iterations=int(rng.integers(1, 3)), border_value=1)
            ndvi, mndwi = _masks(before)
            bar = ~water & (ndvi < 0.2) & (mndwi < 0)
            lp = sources.lapampa
            sand = (np.median(before[:, bar], axis=1) if bar.sum() >= 3
                    else np.median(lp.refl[:, lp.covers["mining_ground"] & ~lp.covers["pond"]], axis=1))
            after = np.where(edge[None], sand[:, None, None] * rng.normal(1.0, 0.05, (1, n30, n30)), after)
    else:  # pasture_stays
        scenes = sources.cleared_scenes()
        got = None
        for k in rng.permutation(len(scenes)):
            scene = scenes[k]
            got = choose_window(rng, scene, scene.covers["cleared"], np.ones((n30, n30)), 0.5)
            if got is not None:
                break
        if got is None:
            return None
        r, c, _ = got
        before = after = cut(scene.refl, r, c, n30, n30)
        name = f"{scene.name}[{r},{c}]"
    mode = COMPOSITES[rng.integers(len(COMPOSITES))]
    site = Site(site_id, "natural", subtype, sensor,
                composite(rng, [to_grid(before, factor)] * len(BASELINE_YEARS), mode),
                composite(rng, [to_grid(after, factor)] * len(MONITOR_YEARS), mode, haze), np.zeros((size, size), bool),
                {"composite": mode, "window": name, "monitor_haze": round(haze, 4)})
    return site


def build_sites(sources: Sources, seed: int, counts: dict[str, dict[str, int]]) -> list[Site]:
    """Every site, deterministic for a seed: ``counts[sensor][kind]`` sites of each kind."""
    rng = np.random.default_rng(seed)
    sites: list[Site] = []
    for sensor, per_kind in counts.items():
        used: list = []
        tag = "s2" if sensor == "sentinel-2" else "l8"
        for kind, n in per_kind.items():
            got = tries = 0
            while got < n and tries < 20 * n:
                tries += 1
                site_id = f"{tag}-{kind}-{got:03d}"
                if kind == "mining":
                    site = build_mining_site(rng, sources, sensor, site_id, used)
                elif kind == "clearing":
                    site = build_clearing_site(rng, sources, sensor, site_id)
                else:
                    site = build_natural_site(rng, sources, sensor, site_id)
                if site is not None:
                    sites.append(site)
                    got += 1
    return sites


# --- catalogs, areas, runs ------------------------------------------------------------------------

OLI_TO_MSI = {b: (1 / s, -i / s) for b, (s, i) in MSI_TO_OLI.items()}
S2_KEYS = {b: b for b in BANDS}
LANDSAT_KEYS = {"blue": "blue", "green": "green", "red": "red", "nir": "nir08", "swir16": "swir16", "swir22": "swir22"}


def site_bounds(index: int, sensor: str) -> tuple[float, float, float, float]:
    spec = SENSORS[sensor]
    per_row = 20
    x0 = ORIGIN[0] + (index % per_row) * spec["spacing"]
    y1 = ORIGIN[1] - (index // per_row) * spec["spacing"]
    edge = spec["res"] * spec["size"]
    return (x0, y1 - edge, x0 + edge, y1)


def encode(refl: np.ndarray, sensor: str) -> np.ndarray:
    """uint16 DN as the source serves them (nodata 0): Earth Search S2 (MSI, ×1e4 + 1000),
    Landsat C2 L2 (× 1/2.75e-5 + 0.2)."""
    if sensor == "sentinel-2":
        msi = np.stack([refl[i] * OLI_TO_MSI[b][0] + OLI_TO_MSI[b][1] for i, b in enumerate(BANDS)])
        dn = np.rint((msi + 0.1) / 1e-4)
    else:
        dn = np.rint((refl + 0.2) / 2.75e-5)
    return np.clip(dn, 1, 65535).astype("uint16")


def _to_lonlat(geom):
    to_wgs = pyproj.Transformer.from_crs(EPSG, 4326, always_xy=True)
    return shapely.transform(geom, lambda xy: np.column_stack(to_wgs.transform(xy[:, 0], xy[:, 1])))


def write_site_items(site: Site, bounds: tuple[float, float, float, float], folder: Path) -> list[pystac.Item]:
    """The site's two composites as STAC items (no mask asset, a period instead of a datetime)."""
    spec = SENSORS[site.sensor]
    res = spec["res"]
    transform = Affine(res, 0, bounds[0], 0, -res, bounds[3])
    footprint = _to_lonlat(box(*bounds))
    s2 = site.sensor == "sentinel-2"
    items = []
    for look, refl, (start, end) in (("baseline", site.baseline, BASELINE), ("monitor", site.monitor, MONITOR)):
        item_id = f"{site.site_id}-{look}"
        props = {"platform": "sentinel-2a" if s2 else "landsat-8", "eo:cloud_cover": 0.0, "proj:epsg": EPSG,
                 "start_datetime": f"{start}T00:00:00Z", "end_datetime": f"{end}T23:59:59Z"}
        if s2:
            props["earthsearch:boa_offset_applied"] = True
        item = pystac.Item(item_id, mapping(footprint), list(footprint.bounds), None, props,
                           collection="sentinel-2-l2a" if s2 else "landsat-c2-l2")
        dn = encode(refl, site.sensor)
        for i, band in enumerate(BANDS):
            key = S2_KEYS[band] if s2 else LANDSAT_KEYS[band]
            path = folder / "items" / item_id / f"{key}.tif"
            path.parent.mkdir(parents=True, exist_ok=True)
            with rasterio.open(path, "w", driver="GTiff", height=dn.shape[1], width=dn.shape[2], count=1,
                               dtype="uint16", crs=f"EPSG:{EPSG}", transform=transform, nodata=0) as dst:
                dst.write(dn[i], 1)
            scale, offset = (1e-4, -0.1) if s2 else (2.75e-5, -0.2)
            item.add_asset(key, pystac.Asset(str(path), media_type=pystac.MediaType.GEOTIFF, roles=["data"],
                                             extra_fields={"raster:bands": [{"nodata": 0, "data_type": "uint16",
                                                                             "scale": scale, "offset": offset}]}))
        items.append(item)
    return items


def write_family(sites: list[Site], sensor: str, folder: Path) -> tuple[Path, Path]:
    """One catalog and one area layer for the sites of a sensor family."""
    folder.mkdir(parents=True, exist_ok=True)
    catalog = pystac.Catalog(f"cec-bench-sites-{sensor}", f"Semi-real composite sites ({sensor})")
    features = []
    for index, site in enumerate(s for s in sites if s.sensor == sensor):
        bounds = site_bounds(index, sensor)
        for item in write_site_items(site, bounds, folder):
            catalog.add_item(item)
        features.append({"type": "Feature", "properties": {"site_id": site.site_id, "name": site.site_id},
                         "geometry": mapping(_to_lonlat(box(*bounds)))})
    catalog.normalize_hrefs(str(folder / "catalog"))
    catalog.save(pystac.CatalogType.SELF_CONTAINED)
    areas = folder / "areas.geojson"
    areas.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return folder / "catalog" / "catalog.json", areas


def write_config(folder: Path, catalog: Path, areas: Path, sensor: str, model: Path) -> Path:
    """The run config an outside evaluation of composites would use: each site its own area,
    ``buffer_m: 0``, two composites, no mask, the default detection settings."""
    raw = {
        "name": f"bench-sites-{'s2' if sensor == 'sentinel-2' else 'l8'}",
        "areas": {"path": str(areas), "id_field": "site_id", "name_field": "name", "buffer_m": 0},
        "source": {"stac_catalog": str(catalog),
                   "collections": ["sentinel-2-l2a" if sensor == "sentinel-2" else "landsat-c2-l2"]},
        "periods": {"baseline": list(BASELINE), "monitor": list(MONITOR)},
        "detection": {"resolution_m": SENSORS[sensor]["res"], "min_confidence": "low"},
        "model": str(model),
        "output": {"dir": str(folder / "out"), "formats": ["geojson"], "evidence": False, "report": False},
        "dask": {"n_workers": 2},
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def run_family(config_path: Path) -> gpd.GeoDataFrame:
    from pipeline.config import load_config
    from pipeline.run import run

    return run(load_config(config_path)).alerts


def scar_diagnostics(config_path: Path, site_ids: list[str], folder: Path) -> dict[str, list[dict]]:
    """The pipeline's own scars (classifier features, path, class probabilities) of some sites:
    the same detection as the run, on an area layer holding only those sites."""
    from pipeline.classify import load_model
    from pipeline.config import load_config
    from pipeline.run import detect

    if not site_ids:
        return {}
    raw = yaml.safe_load(config_path.read_text())
    areas = gpd.read_file(raw["areas"]["path"])
    subset = folder / "diag_areas.geojson"
    areas[areas["site_id"].isin(site_ids)].to_file(subset, driver="GeoJSON")
    raw["areas"]["path"] = str(subset)
    raw["output"]["dir"] = str(folder / "diag_out")
    path = folder / "diag_config.yaml"
    path.write_text(yaml.safe_dump(raw))
    config = load_config(path)
    model = load_model(Path(raw["model"]))
    _, detections = detect(config)
    keep = ("area_ha", "detection_path", "water_fraction", "bare_fraction", "baseline_ndvi", "ndvi_median",
            "mndwi_median", "vis_brightness", "swir_brightness", "red_swir1", "nir_swir1", "swir2_swir1", "blue_red",
            "water_share", "bare_share", "sediment_share", "veg_share", "brightness_roughness",
            "ring_open_fraction", "ring_sediment_fraction", "compactness", "rectangularity", "solidity")
    out: dict[str, list[dict]] = {}
    for det in detections:
        scars = det.scars
        if scars.empty:
            out[det.area_id] = []
            continue
        probs = model.estimator.predict_proba(np.nan_to_num(scars[list(model.card["features"])].to_numpy(dtype=float)))
        rows = []
        for i, (_, scar) in enumerate(scars.iterrows()):
            row = {k: (round(float(scar[k]), 3) if isinstance(scar[k], (int, float, np.floating)) else scar[k])
                   for k in keep if k in scar}
            row["p"] = {str(c): round(float(p), 2) for c, p in zip(model.estimator.classes_, probs[i])}
            rows.append(row)
        out[det.area_id] = rows
    return out


def score(sites: list[Site], alerts: gpd.GeoDataFrame) -> tuple[dict, list[dict]]:
    """Per-site outcome and the summary figures of one sensor family."""
    rows = []
    by_site = {sid: grp for sid, grp in alerts.groupby("protected_area_id")} if len(alerts) else {}
    for site in sites:
        a = by_site.get(site.site_id)
        classes = {}
        if a is not None:
            classes = a.groupby("class")["area_ha"].sum().round(2).to_dict()
        main = max(classes, key=classes.get) if classes else None
        row = {"site": site.site_id, "kind": site.kind, "subtype": site.subtype, "alerts": 0 if a is None else len(a),
               "alerted_ha_by_class": classes, "main_class": main, **site.info}
        if a is not None:
            row["alert_details"] = [
                {k: (round(float(v), 3) if isinstance(v, (float, np.floating)) else v)
                 for k, v in rec.items()}
                for rec in a[["class", "probability", "area_ha", "water_fraction", "bare_fraction",
                              "detection_path"]].to_dict("records")]
        rows.append(row)
    frame = pd.DataFrame(rows)

    def share(sel, cond):
        n = int(sel.sum())
        return {"n": n, "count": int((sel & cond).sum()), "share": round(float((sel & cond).sum() / n), 3) if n else None}

    mining, clearing, natural = (frame["kind"] == k for k in ("mining", "clearing", "natural"))
    any_alert = frame["alerts"] > 0
    has_mining = frame["alerted_ha_by_class"].map(lambda d: "mining" in d)
    main_mining = frame["main_class"] == "mining"
    summary = {
        "mining_sites_any_alert": share(mining, any_alert),
        "mining_sites_with_mining_alert": share(mining, has_mining),
        "mining_sensitivity_main_class_mining": share(mining, main_mining),
        "clearing_sites_any_alert": share(clearing, any_alert),
        "clearing_sites_main_class_clearing": share(clearing, frame["main_class"] == "clearing"),
        "clearing_sites_with_mining_alert": share(clearing, has_mining),
        "clearing_sites_main_class_mining": share(clearing, main_mining),
        "natural_sites_alerted": share(natural, any_alert),
    }
    n_nat = int(natural.sum())
    summary["natural_specificity"] = round(1 - summary["natural_sites_alerted"]["count"] / n_nat, 3) if n_nat else None
    by_subtype = {}
    for (kind, sub), grp in frame.groupby(["kind", frame["subtype"].str.split("[+/]").str[0]]):
        by_subtype[f"{kind}/{sub}"] = {"n": len(grp), "any_alert": int((grp["alerts"] > 0).sum()),
                                       "main_mining": int((grp["main_class"] == "mining").sum()),
                                       "main_clearing": int((grp["main_class"] == "clearing").sum()),
                                       "main_other": int((grp["main_class"] == "other").sum())}
    summary["by_subtype"] = by_subtype
    by_composite = {}
    for (kind, mode), grp in frame.groupby(["kind", "composite"]):
        by_composite[f"{kind}/{mode}"] = {"n": len(grp), "any_alert": int((grp["alerts"] > 0).sum()),
                                          "main_mining": int((grp["main_class"] == "mining").sum()),
                                          "main_clearing": int((grp["main_class"] == "clearing").sum())}
    summary["by_composite"] = by_composite
    nonforest = mining & frame["subtype"].str.contains("nonforest")
    summary["mining_nonforest_baseline_sites"] = {"n": int(nonforest.sum()),
                                                  "main_mining": int((nonforest & main_mining).sum())}
    return summary, rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results_sites.json")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", type=Path, default=MODEL)
    parser.add_argument("--n-mining", type=int, default=80)
    parser.add_argument("--n-clearing", type=int, default=30)
    parser.add_argument("--n-natural", type=int, default=30)
    parser.add_argument("--n-landsat-mining", type=int, default=40)
    parser.add_argument("--n-landsat-clearing", type=int, default=15)
    parser.add_argument("--n-landsat-natural", type=int, default=15)
    parser.add_argument("--keep", type=Path, default=None, help="write catalogs and runs here (else a temp folder)")
    args = parser.parse_args(argv)
    missing = missing_data()
    if missing:
        print(f"bench_sites: skipped, the shared real data are not on this machine: {missing}")
        return 0
    started = time.perf_counter()
    sources = Sources.load()
    counts = {"sentinel-2": {"mining": args.n_mining, "clearing": args.n_clearing, "natural": args.n_natural},
              "landsat": {"mining": args.n_landsat_mining, "clearing": args.n_landsat_clearing,
                          "natural": args.n_landsat_natural}}
    sites = build_sites(sources, args.seed, counts)
    from pipeline.classify import load_model

    model = load_model(args.model)
    results: dict = {"model_version": model.version, "seed": args.seed, "baseline": BASELINE, "monitor": MONITOR,
                     "config": "each site its own area, buffer_m 0, one baseline and one monitor composite, no mask, "
                               "min_confidence low, min_area_ha 0.5 (defaults otherwise)",
                     "families": {}}
    with tempfile.TemporaryDirectory(prefix="cec-bench-sites-") as tmp:
        root = args.keep or Path(tmp)
        for sensor in counts:
            family = [s for s in sites if s.sensor == sensor]
            if not family:
                continue
            folder = root / sensor
            catalog, areas = write_family(family, sensor, folder)
            config = write_config(folder, catalog, areas, sensor, args.model)
            t0 = time.perf_counter()
            alerts = run_family(config)
            seconds = time.perf_counter() - t0
            summary, rows = score(family, alerts)
            missed = [r["site"] for r in rows if r["kind"] == "mining" and r["main_class"] != "mining"]
            diag = scar_diagnostics(config, missed, folder)
            for r in rows:
                if r["site"] in diag:
                    r["scars"] = diag[r["site"]]
            results["families"][sensor] = {
                "grid": f"{SENSORS[sensor]['size']} x {SENSORS[sensor]['size']} px at {SENSORS[sensor]['res']:g} m",
                "sites": len(family), "run_seconds": round(seconds, 1), **summary, "per_site": rows}
    results["seconds"] = round(time.perf_counter() - started, 1)
    results["limits"] = (
        "Spectra and texture come from the same real scenes the training sampler's endmember library is built "
        "from (La Pampa, Porto Velho, Pará, Amarakaeri), so this is out of the sampler's per-pixel-mix domain but "
        "not out of its spectra; all mining ground is one Landsat 8 scene (La Pampa, 2018-09-06, dry season); "
        "Sentinel-2 is emulated from 30 m Landsat resampled bilinearly to 10 m (smoother than real 10 m texture); "
        "the shapes are Amazon Mining Watch polygons, themselves a model's output; a composite is one real look "
        "plus a per-year radiometric shift, except the Amarakaeri forest backgrounds, which are real date pairs.")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = args.out.with_suffix(".json.tmp")
    tmp_out.write_text(json.dumps(results, indent=1, default=str) + "\n")
    tmp_out.replace(args.out)
    for sensor, fam in results["families"].items():
        print(sensor, json.dumps({k: v for k, v in fam.items() if k != "per_site"}, indent=1))
    print(f"{results['seconds']} s; written {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
