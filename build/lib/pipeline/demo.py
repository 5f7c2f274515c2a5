"""Synthetic Sentinel-2 L2A time series at La Pampa (Madre de Dios, Peru), with its truth.

A 10 m grid in EPSG:32719 over the Malinowski river at the edge of the Reserva Nacional
Tambopata. Every pixel gets a fixed "ground" spectrum drawn from real Landsat 8 surface
reflectance of La Pampa (``data/demo/sources/LC08_003069_20180906_clip.tif``, x10000 scaled to
reflectance; the Landsat bands stand in for the S2 bands of the same common name):

============  ==============================================  ======  ===========
class         rule on the Landsat clip                        pixels  median NDVI
============  ==============================================  ======  ===========
forest        NDVI > 0.8                                      4400    0.86
sand          NDVI < 0.2, MNDWI < -0.05, red > 0.12           2380    0.08
turbid_pond   MNDWI > 0, red > green (MNDWI 0.44)             908     -0.02
dark_pond     MNDWI > 0, red <= green (MNDWI 0.56)            139     -0.10
cleared_soil  0.3 < NDVI < 0.6, swir16 > 0.18, MNDWI < -0.3   960     0.47
============  ==============================================  ======  ===========

River water is turbid-pond spectra x0.35 (the clip has no open river) and sandbars are sand x0.85.
On that ground the generator plants Amazon Mining Watch polygons (2018 stock = old scars, bare in
every look; 2019-2021 new = mining scars from a seeded onset date), angular clearings, a river
along the reserve boundary with seasonal, migrating sandbars, and per look: clouds, haze, shadows,
an imperfect SCL, sensor noise and (one orbit in three) a swath edge. Output: a static STAC catalog
shaped like Earth Search v1 ``sentinel-2-l2a`` plus ``truth.geojson`` (planted scars, EPSG:4326),
``truth_utm.geojson`` and ``lookalikes.geojson`` (EPSG:32719) and ``scene.json``. Randomness comes
only from ``SceneSpec.seed``; synthesis is pure numpy, I/O is in ``_read_*``/``_write_*``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pystac
import rasterio
import shapely
from rasterio import features as rio_features
from rasterio.transform import Affine
from scipy import ndimage, signal, special
from scipy.spatial import cKDTree
from shapely import affinity
from shapely.geometry import LineString, Point, Polygon, box, mapping
from shapely.geometry.polygon import orient

GENERATOR_VERSION = "1.2.1"

CRS, EPSG, PIXEL_M, MMU_HA = "EPSG:32719", 32719, 10.0, 0.5
BANDS = ("blue", "green", "red", "nir", "swir16", "swir22")
BANDS_10M, BANDS_20M = BANDS[:4], BANDS[4:]
MGRS_TILE = "19LCF"  # MGRS square of the demo window (UTM 19, band L, 100 km square CF)
COLLECTION_ID = "sentinel-2-l2a"
STAC_EXTENSIONS = [f"https://stac-extensions.github.io/{ext}/schema.json" for ext in (
    "projection/v1.1.0", "eo/v1.1.0", "raster/v1.1.0", "grid/v1.0.0", "view/v1.0.0", "mgrs/v1.0.0")]
_EO = {"blue": ("Blue (band 2)", 0.49, 0.098), "green": ("Green (band 3)", 0.56, 0.045),
       "red": ("Red (band 4)", 0.665, 0.038), "nir": ("NIR 1 (band 8)", 0.842, 0.145),
       "swir16": ("SWIR 1 (band 11)", 1.61, 0.143), "swir22": ("SWIR 2 (band 12)", 2.19, 0.242)}
_CLOUD_TINT = np.array([1.0, 0.98, 0.96, 0.97, 0.85, 0.72], np.float32)  # cloud spectrum shape
_SEASON = np.array([-0.10, 0.0, -0.20, 0.03, -0.03, -0.05], np.float32)  # forest, per band
_SOURCES = ("protected_areas.geojson", "buffer_zones.geojson",
            "sources/amw_mining_lapampa.geojson", "sources/LC08_003069_20180906_clip.tif")
_NO_ONSET = np.iinfo(np.int64).max


def _dates(*iso: str) -> tuple[dt.date, ...]:
    return tuple(dt.date.fromisoformat(d) for d in iso)


@dataclass(frozen=True)
class PlantedScar:
    """A scar planted on forest by the caller (e.g. a test)."""

    geometry_wkt: str
    """Polygon or MultiPolygon in EPSG:32719 metres (WKT)."""
    cls: str
    """``"mining"`` (sand and ponds) or ``"clearing"`` (cleared soil)."""
    onset: dt.date
    """First date on which the scar exists; looks before it show forest."""

    def __post_init__(self):
        if self.cls not in ("mining", "clearing"):
            raise ValueError(f"PlantedScar.cls must be 'mining' or 'clearing', not {self.cls!r}")


@dataclass(frozen=True)
class SceneSpec:
    """Everything that defines a synthetic scene; equal specs give equal rasters."""

    seed: int = 7
    """Seed of every random choice (texture, clearings, onsets, clouds, noise); >= 0."""
    x0: float = 381550.0
    """Left edge of the window, EPSG:32719 metres (default: the La Pampa demo window)."""
    y1: float = 8564870.0
    """Top edge of the window, EPSG:32719 metres."""
    width_px: int = 500
    """Window width in 10 m pixels (even: the 20 m bands halve it)."""
    height_px: int = 500
    """Window height in 10 m pixels (even)."""
    baseline_dates: tuple[dt.date, ...] = _dates(
        "2018-06-09", "2018-07-04", "2018-07-29", "2018-08-23", "2018-10-02", "2018-11-21")
    """Acquisition dates of the baseline looks (before any planted scar)."""
    monitor_dates: tuple[dt.date, ...] = _dates(
        "2019-01-23", "2019-03-19", "2019-05-13", "2019-07-02", "2019-08-26", "2019-10-20",
        "2019-12-19", "2020-02-22", "2020-04-22", "2020-06-26", "2020-08-10", "2020-10-09",
        "2020-12-13", "2021-02-16", "2021-04-27", "2021-07-01", "2021-09-04", "2021-11-23")
    """Acquisition dates of the monitoring looks."""
    use_amw: bool = True
    """Plant AMW polygons: 2018 stock as old scars, 2019-2021 new ones as dated mining scars."""
    n_clearings: int = 6
    """Angular clearings of 1-8 ha on forest, alternately in the reserve core and buffer zone."""
    n_small_clearings: int = 2
    """Clearings of 0.1-0.3 ha (under the 0.5 ha mapping unit: ``below_mmu`` in the truth)."""
    extra_scars: tuple[PlantedScar, ...] = ()
    """Caller's scars; the river, old scars and AMW scars take precedence where they overlap."""
    cloud_fraction: float = 0.25
    """Mean cloud-body fraction over the looks (wet season cloudier); 0 = no clouds at all."""
    swath_edge: bool = True
    """Every third look comes from an orbit whose swath edge cuts the window (nodata beyond)."""
    river: bool = True
    """Draw the river with its moving sandbars."""
    noise_reflectance: float = 0.005
    """Sigma of the Gaussian sensor noise, reflectance units, per band, pixel and look."""
    phenology_amplitude: float = 1.0
    """Multiplier of the forest's seasonal greenness swing (1 = the real-spectra default;
    3-4 = a strongly seasonal, semi-deciduous canopy: a look-alike of loss in the dry season)."""
    bank_erosion_m: float = 0.0
    """Look-alike (natural loss): over the monitoring period one outer bank of the river retreats
    up to this many metres into the forest along a ~700 m stretch, the lost strip becoming river
    water at high water and sand at low water. 0 = stable banks. Needs ``river``."""
    bank_erosion_sites: int = 1
    """Stretches of eroding bank (each on a random side and place) when ``bank_erosion_m`` > 0."""
    n_old_clearings: int = 0
    """Look-alike: clearings of 1-4 ha already bare in every baseline look that regrow towards
    forest during monitoring (old clearings; greening, never a loss)."""

    def __post_init__(self):
        if self.width_px % 2 or self.height_px % 2 or min(self.width_px, self.height_px) < 16:
            raise ValueError("width_px and height_px must be even and >= 16")
        dates = list(self.baseline_dates) + list(self.monitor_dates)
        if not self.baseline_dates or not self.monitor_dates or dates != sorted(set(dates)):
            raise ValueError("baseline and monitor dates must be non-empty, distinct, ascending, "
                             "and every baseline date must precede every monitor date")
        if not 0.0 <= self.cloud_fraction <= 1.0 or self.seed < 0 or self.noise_reflectance < 0:
            raise ValueError("need 0 <= cloud_fraction <= 1, seed >= 0, noise_reflectance >= 0")
        if self.phenology_amplitude < 0 or self.bank_erosion_m < 0 or self.n_old_clearings < 0:
            raise ValueError("need phenology_amplitude, bank_erosion_m and n_old_clearings >= 0")


DEMO_SPEC = SceneSpec()

# Other 5 km windows (km offsets of the upper-left corner) with AMW mining, for training scenes.
_TRAINING_OFFSETS_KM = ((-5, 0), (-5, -5), (-10, -5), (-5, 5), (0, -5), (-10, 0), (10, 5), (0, 5))


def demo_dir() -> Path:
    """``<repo>/data/demo``: committed demo sources; ``generated/`` holds generated scenes."""
    return Path(__file__).resolve().parents[1] / "data" / "demo"


def training_specs(n: int) -> list[SceneSpec]:
    """``n`` specs for training: other windows around La Pampa (never the demo one), seeds 101+.

    Every training scene also holds look-alikes: eroding river banks (natural loss, the
    ``other`` samples the classifier needs), old clearings and a stronger phenology.
    """
    offsets = [_TRAINING_OFFSETS_KM[i % len(_TRAINING_OFFSETS_KM)] for i in range(n)]
    return [dataclasses.replace(DEMO_SPEC, seed=101 + i, x0=DEMO_SPEC.x0 + 1000.0 * dx,
                                y1=DEMO_SPEC.y1 + 1000.0 * dy, bank_erosion_m=25.0 + 10.0 * (i % 5),
                                bank_erosion_sites=6, n_old_clearings=2,
                                phenology_amplitude=1.0 + (i % 3))
            for i, (dx, dy) in enumerate(offsets)]


def _rng(spec: SceneSpec, *key: int) -> np.random.Generator:
    """An independent generator per purpose, so that e.g. adding a date reshuffles nothing else."""
    return np.random.default_rng([spec.seed, *key])


# ----------------------------------------------------------------------------- spectra (pure)

def _indices(refl: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """NDVI and MNDWI of a band-first reflectance array (bands as ``BANDS``)."""
    _, g, r, n, s1, _ = refl
    return (n - r) / (n + r + 1e-6), (g - s1) / (g + s1 + 1e-6)


def _class_spectra(refl: np.ndarray) -> dict[str, np.ndarray]:
    """Real per-class spectra: (6, rows, cols) reflectance -> {class: (n, 6) float32}."""
    _, g, r, _, s1, _ = refl
    ndvi, mndwi = _indices(refl)
    masks = {"forest": ndvi > 0.8,
             "sand": (ndvi < 0.2) & (mndwi < -0.05) & (r > 0.12),
             "turbid_pond": (mndwi > 0) & (r > g),
             "dark_pond": (mndwi > 0) & (r <= g),
             "cleared_soil": (ndvi > 0.3) & (ndvi < 0.6) & (s1 > 0.18) & (mndwi < -0.3)}
    spectra = {k: refl[:, m].T.astype(np.float32) for k, m in masks.items()}
    spectra["river_water"] = spectra["turbid_pond"] * np.float32(0.35)
    spectra["sandbar"] = spectra["sand"] * np.float32(0.85)
    return spectra


def _spectra_stats(spectra: dict[str, np.ndarray]) -> dict[str, dict]:
    """Per class: pixel count, median NDVI and MNDWI, median reflectance per band."""
    out = {}
    for name, s in spectra.items():
        ndvi, mndwi = _indices(s.T)
        out[name] = {"n_pixels": len(s), "median_ndvi": round(float(np.median(ndvi)), 3),
                     "median_mndwi": round(float(np.median(mndwi)), 3),
                     "median_reflectance": dict(zip(BANDS, np.median(s, 0).round(4).tolist()))}
    return out


def _smooth_field(rng: np.random.Generator, shape: tuple[int, int], scale_px: float) -> np.ndarray:
    """Gaussian random field (mean 0, sd 1, float32), correlation length ~``scale_px``.

    Large scales are filtered on a grid coarsened ~scale/4 times, then upsampled bilinearly.
    """
    step = max(1, int(scale_px // 4))
    small = (shape[0] // step + 3, shape[1] // step + 3)
    f = ndimage.gaussian_filter(rng.standard_normal(small), scale_px / step, mode="wrap")
    f = (ndimage.zoom(f, step, order=1) if step > 1 else f)[: shape[0], : shape[1]]
    return ((f - f.mean()) / (f.std() + 1e-12)).astype(np.float32)


def _texture(rng: np.random.Generator, samples: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Give every pixel one of the real ``samples`` spectra, chosen with spatial correlation.

    Samples are sorted by brightness and indexed by the rank of a smooth random field (crown and
    stand scales plus white noise): neighbours take similar, not identical, real spectra.
    Returns (6, rows, cols) float32 reflectance.
    """
    ordered = samples[np.argsort(samples.sum(1))]
    f = (0.6 * _smooth_field(rng, shape, 1.5) + 0.6 * _smooth_field(rng, shape, 12)
         + 0.5 * rng.standard_normal(shape, dtype=np.float32)) / np.sqrt(0.97)
    idx = np.minimum((special.ndtr(f) * len(ordered)).astype(np.int64), len(ordered) - 1)
    return np.moveaxis(ordered[idx], -1, 0)


def _season(date: dt.date) -> float:
    """Forest greenness phase in [-1, 1], +1 at the late dry-season peak (early September)."""
    return float(np.cos(2 * np.pi * (date.timetuple().tm_yday - 245) / 365.25))


def _dryness(date: dt.date) -> float:
    """0 in the wet season (high water, bars drowned) to 1 at the August-September low water."""
    phase = np.cos(2 * np.pi * (date.timetuple().tm_yday - 240) / 365.25)
    return float(np.clip((phase + 0.3) / 1.3, 0.0, 1.0))


def _is_wet(date: dt.date) -> bool:
    return date.month in (11, 12, 1, 2, 3, 4)


# ----------------------------------------------------------------------------- sources (I/O)

@dataclass(frozen=True)
class _Sources:
    core: shapely.Geometry     # reserve core, EPSG:32719
    buffer: shapely.Geometry   # buffer zone, EPSG:32719
    amw: gpd.GeoDataFrame      # AMW polygons, EPSG:32719, column "period"
    spectra: dict              # class -> (n, 6) reflectance


def _read_sources(root: Path) -> _Sources:
    core, buffer, amw = (gpd.read_file(root / name).to_crs(CRS) for name in _SOURCES[:3])
    with rasterio.open(root / _SOURCES[3]) as src:
        refl = src.read().astype(np.float32) / 10000.0
    return _Sources(core.union_all(), buffer.union_all(), amw, _class_spectra(refl))


def _sources_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for name in _SOURCES:
        digest.update((root / name).read_bytes())
    return digest.hexdigest()[:16]


# ----------------------------------------------------------------------------- geometry (pure)

def _transform(spec: SceneSpec, pixel_m: float = PIXEL_M) -> Affine:
    return Affine(pixel_m, 0.0, spec.x0, 0.0, -pixel_m, spec.y1)


def _window(spec: SceneSpec) -> Polygon:
    return box(spec.x0, spec.y1 - spec.height_px * PIXEL_M,
               spec.x0 + spec.width_px * PIXEL_M, spec.y1)


def _nodata_side(spec: SceneSpec) -> Polygon:
    """Half-plane (clipped generously) east of the swath-edge line."""
    (xa, ya), (xb, yb) = _swath_line(spec)
    top, bottom = (2 * xa - xb, 2 * ya - yb), (2 * xb - xa, 2 * yb - ya)   # line extended
    return Polygon([top, bottom, (bottom[0] + 1e5, bottom[1]), (top[0] + 1e5, top[1])])


def _clean(geom: shapely.Geometry, min_area_m2: float = PIXEL_M ** 2) -> shapely.Geometry:
    """Polygonal parts of ``geom`` of at least one pixel (slivers and lines dropped)."""
    parts = [p for p in shapely.get_parts(shapely.make_valid(geom))
             if isinstance(p, Polygon) and p.area >= min_area_m2]
    return shapely.union_all(parts) if parts else Polygon()


def _resample(xy: np.ndarray, step_m: float) -> np.ndarray:
    """Points every ``step_m`` metres along the polyline ``xy`` (n, 2)."""
    line = LineString(xy)
    return shapely.get_coordinates(
        shapely.line_interpolate_point(line, np.arange(0.0, line.length, step_m)))


def _normals(xy: np.ndarray) -> np.ndarray:
    """Unit left-hand normals (n, 2) of a polyline (n, 2)."""
    t = np.gradient(xy, axis=0)
    t /= np.linalg.norm(t, axis=1, keepdims=True)
    return np.column_stack([-t[:, 1], t[:, 0]])


@dataclass(frozen=True)
class _River:
    centre: np.ndarray          # (n, 2) centreline every 5 m, EPSG:32719, upstream to downstream
    width_m: np.ndarray         # (n,) channel width
    corridor: shapely.Geometry  # channel polygon within the window (never forest)
    bars: tuple                 # per bar: (s0_m, side +-1, half_length_m, width_frac, m_per_year)


def _river_centreline(spec: SceneSpec, src: _Sources, rng: np.random.Generator) -> np.ndarray:
    """The reserve boundary, smoothed and offset 70 m into the buffer; else a synthetic meander."""
    win, w_m, h_m = _window(spec), spec.width_px * PIXEL_M, spec.height_px * PIXEL_M
    boundary = shapely.line_merge(src.core.boundary.intersection(win.buffer(1500)))
    lines = sorted(shapely.get_parts(boundary), key=lambda g: g.length)
    if lines and lines[-1].intersection(win).length >= 0.6 * w_m:
        xy = ndimage.gaussian_filter1d(_resample(np.asarray(lines[-1].coords), 20.0), 14, axis=0,
                                       mode="nearest")  # rounds off the boundary's corners
        nrm, mid = _normals(xy), len(xy) // 2
        if src.core.contains(Point(xy[mid] + 30 * nrm[mid])):
            nrm = -nrm
        xy = ndimage.gaussian_filter1d(xy + 70.0 * nrm, 2, axis=0, mode="nearest")
    else:
        x = np.arange(spec.x0 - 500, spec.x0 + w_m + 500, 20.0)
        wave, amp, ph = max(600.0, 0.8 * w_m), 0.12 * h_m, rng.uniform(0, 2 * np.pi, 2)
        y = (spec.y1 - 0.55 * h_m + amp * np.sin(2 * np.pi * x / wave + ph[0])
             + 0.4 * amp * np.sin(2 * np.pi * x / (0.45 * wave) + ph[1]))
        xy = np.column_stack([x, y])
    return xy if xy[0, 0] <= xy[-1, 0] else xy[::-1]   # the Malinowski flows east here


def _build_river(spec: SceneSpec, src: _Sources) -> _River | None:
    """Channel 60-120 m wide with sandbars at its inner bends; None if ``spec.river`` is off."""
    if not spec.river:
        return None
    rng = _rng(spec, 1)
    centre = _resample(_river_centreline(spec, src, rng), 5.0)
    s = np.arange(len(centre)) * 5.0
    width = 90.0 + 30.0 * np.sin(2 * np.pi * s / 1700.0 + rng.uniform(0, 2 * np.pi))
    half = _normals(centre) * width[:, None] / 2
    corridor = _clean(Polygon(np.vstack([centre + half, (centre - half)[::-1]])).buffer(0)
                      .intersection(_window(spec)))
    # Point bars sit on the inner bank of bends: peaks of |curvature| of a smoothed centreline.
    sm = ndimage.gaussian_filter1d(centre, 30, axis=0, mode="nearest")
    d1 = np.gradient(sm, axis=0)
    d2 = np.gradient(d1, axis=0)
    curv = (d1[:, 0] * d2[:, 1] - d1[:, 1] * d2[:, 0]) / (np.linalg.norm(d1, axis=1) ** 3 * 5.0)
    peaks, _ = signal.find_peaks(np.abs(curv), distance=50, height=1 / 4000.0)
    if len(peaks) < 2:
        peaks = np.sort(rng.choice(len(s), size=min(3, len(s)), replace=False))
    bars = tuple((float(s[p] + rng.uniform(-60, 60)), float(np.sign(curv[p]) or 1.0),
                  float(rng.uniform(180, 350)), float(rng.uniform(0.5, 0.75)),
                  float(rng.uniform(80, 220))) for p in peaks)
    return _River(centre, width, corridor, bars)


def _clearing_shape(rng: np.random.Generator, area_m2: float) -> Polygon:
    """A rotated rectangle, L-shape or trapezoid of ``area_m2``, centred on the origin."""
    kind, aspect = rng.integers(3), rng.uniform(1.2, 2.8)
    if kind == 0:
        w = np.sqrt(area_m2 * aspect)
        poly = box(0, 0, w, area_m2 / w)
    elif kind == 1:
        fx, fy = rng.uniform(0.35, 0.6, 2)
        w = np.sqrt(area_m2 * aspect / (1 - fx * fy))
        h = area_m2 / ((1 - fx * fy) * w)
        poly = box(0, 0, w, h).difference(box(w * (1 - fx), h * (1 - fy), w, h))
    else:
        taper = rng.uniform(0.35, 0.75)
        h = np.sqrt(2 * area_m2 / ((1 + taper) * aspect))
        b = aspect * h
        left = (b - taper * b) / 2 + rng.uniform(-0.3, 0.3) * b
        poly = Polygon([(0, 0), (b, 0), (left + taper * b, h), (left, h)])
    poly = affinity.rotate(poly, rng.uniform(0, 180), origin="centroid")
    return affinity.translate(poly, -poly.centroid.x, -poly.centroid.y)


def _place(rng, region, forbidden, area_m2: float, tries: int = 200) -> Polygon | None:
    """Drop a clearing of ``area_m2`` fully inside ``region`` and clear of ``forbidden``."""
    if region.is_empty or region.area < 4 * area_m2:
        return None
    shape = _clearing_shape(rng, area_m2)
    minx, miny, maxx, maxy = region.bounds
    shapely.prepare(region)
    shapely.prepare(forbidden)
    for _ in range(tries):
        cand = affinity.translate(shape, rng.uniform(minx, maxx), rng.uniform(miny, maxy))
        if region.contains(cand) and not forbidden.intersects(cand):
            return cand
    return None


def _random_day(rng: np.random.Generator, lo: dt.date, hi: dt.date) -> dt.date:
    return lo + dt.timedelta(days=int(rng.integers(0, (hi - lo).days + 1)))


@dataclass(frozen=True)
class _Scar:
    scar_id: str
    cls: str
    onset: dt.date
    source: str
    geometry: shapely.Geometry   # EPSG:32719, within the window, overlapping no other scar


def _onset_range(spec: SceneSpec) -> tuple[dt.date, dt.date]:
    """Onsets fall after the baseline and by the third-last monitoring look, so that at least
    three looks could show every scar (whether they are clear is up to the clouds)."""
    return spec.baseline_dates[-1] + dt.timedelta(1), spec.monitor_dates[max(0, len(spec.monitor_dates) - 3)]


def _plan_scars(spec: SceneSpec, src: _Sources, river: _River | None):
    """Old scars and planted scars, clipped so that none overlap.

    Precedence: river corridor > 2018 stock > AMW 2019 > 2020 > 2021 > ``extra_scars`` >
    clearings (placed on free forest, 40 m from anything else). Returns ``(old, scars,
    dropped)``: old-scar polygons, ``_Scar`` list and notes on AMW polygons whose year has no look.
    """
    win = _window(spec)
    taken = river.corridor if river else Polygon()
    amw = src.amw if spec.use_amw else src.amw.iloc[:0]
    old = [p for g in amw[amw["period"] == "2018_stock"].geometry
           for p in shapely.get_parts(_clean(g.intersection(win).difference(taken)))
           if not p.is_empty]
    taken = shapely.union_all([taken, *old])
    scars, dropped = [], []
    first_day, last_day = _onset_range(spec)
    for year in (2019, 2020, 2021):
        for k, geom in enumerate(amw[amw["period"] == f"{year}_new"].geometry):
            g = _clean(geom.intersection(win).difference(taken))
            lo, hi = max(dt.date(year, 1, 1), first_day), min(dt.date(year, 12, 31), last_day)
            if g.is_empty or lo > hi:
                if not g.is_empty:
                    dropped.append({"source": f"amw-{year}-new", "index": k,
                                    "reason": "no onset day in that year before the third-last look"})
                continue
            onset = _random_day(_rng(spec, 2, year, k), lo, hi)
            scars.append(_Scar(f"amw{year}-{k:03d}", "mining", onset, f"amw-{year}-new", g))
            taken = taken.union(g)
    for k, extra in enumerate(spec.extra_scars):
        g = _clean(shapely.from_wkt(extra.geometry_wkt).intersection(win).difference(taken))
        if not g.is_empty:
            scars.append(_Scar(f"extra-{k + 1:02d}", extra.cls, extra.onset, "extra-scar", g))
            taken = taken.union(g)
    return old, scars + _plan_clearings(spec, src, taken), dropped


def _plan_clearings(spec: SceneSpec, src: _Sources, taken) -> list[_Scar]:
    """Angular clearings on free forest, alternately in the core and the buffer zone.

    Onsets fall between the last baseline look and the third-last monitoring look, so that at
    least three looks show each clearing.
    """
    rng = _rng(spec, 3)
    inner = _window(spec).buffer(-30.0)
    zones = (src.core.intersection(inner), src.buffer.difference(src.core).intersection(inner))
    forbidden = taken.buffer(40.0)
    lo, hi = _onset_range(spec)
    jobs = [("clearing", 1.0, 8.0)] * spec.n_clearings + [("small", 0.1, 0.3)] * \
        spec.n_small_clearings
    out: list[_Scar] = []
    for k, (kind, lo_ha, hi_ha) in enumerate(jobs):
        area = rng.uniform(lo_ha, hi_ha) * 1e4
        # Where a zone is tight, try smaller sizes (within range) before the other zone.
        sizes = [a for a in area * 0.7 ** np.arange(6) if a >= lo_ha * 1e4] or [lo_ha * 1e4]
        tries = [(z, a) for z in (zones[k % 2], zones[(k + 1) % 2], inner) for a in sizes]
        poly = next((p for z, a in tries if (p := _place(rng, z, forbidden, a)) is not None), None)
        if poly is not None:
            n = sum(s.scar_id.startswith(kind) for s in out) + 1
            source = "synthetic-clearing" if kind == "clearing" else "synthetic-small-clearing"
            out.append(_Scar(f"{kind}-{n:02d}", "clearing", _random_day(rng, lo, hi), source, poly))
            forbidden = forbidden.union(poly.buffer(40.0))
    return out


# ----------------------------------------------------------------------------- ground (pure)

@dataclass(frozen=True)
class _Ground:
    cover: dict             # name -> (6, H, W) reflectance: forest, mining, soil, water, sandbar
    old: np.ndarray         # (H, W) bool, old (2018 stock) scars
    onset: np.ndarray       # (H, W) int64 onset ordinal of a planted scar, _NO_ONSET elsewhere
    is_mining: np.ndarray   # (H, W) bool, planted scar of class mining
    corridor: np.ndarray    # (H, W) bool, river channel
    river_snw: np.ndarray   # (3, k) corridor pixels: along- and across-channel m, channel width
    season_amp: float = 1.0  # multiplier of _SEASON
    erode_on: np.ndarray | None = None   # (H, W) int64 ordinal a bank pixel turns to river
    regrow: np.ndarray | None = None     # (H, W) bool, old clearings (soil regrowing to forest)
    regrow_span: tuple = (0, 1)          # ordinals: regrowth starts, forest again


def _rasterize(geoms, shape, transform) -> np.ndarray:
    """Label raster (int32): pixel centres inside ``geoms[i]`` get i + 1, others 0."""
    pairs = [(g, i + 1) for i, g in enumerate(geoms) if not g.is_empty]
    if not pairs:
        return np.zeros(shape, np.int32)
    return rio_features.rasterize(pairs, out_shape=shape, transform=transform, dtype="int32")


def _build_ground(spec: SceneSpec, spectra: dict, old, scars, river: _River | None) -> _Ground:
    """Fixed per-pixel ground spectra of every cover, and where each cover is."""
    shape, tr, rng = (spec.height_px, spec.width_px), _transform(spec), _rng(spec, 4)
    tex = {name: _texture(rng, s, shape) for name, s in spectra.items()}
    old_lab = _rasterize(old, shape, tr)
    scar_lab = _rasterize([s.geometry for s in scars], shape, tr)
    # Ponds: blobs over 20-40 % of each mining scar (25-35 % of each old scar), some dark.
    regions = [(old_lab == i + 1, rng.uniform(0.25, 0.35)) for i in range(len(old))]
    regions += [(scar_lab == i + 1, rng.uniform(0.2, 0.4)) for i, s in enumerate(scars)
                if s.cls == "mining"]
    pond_field, dark_field = _smooth_field(rng, shape, 4), _smooth_field(rng, shape, 6)
    pond = np.zeros(shape, bool)
    for mask, frac in regions:
        if mask.any():
            pond |= mask & (pond_field > np.quantile(pond_field[mask], 1 - frac))
    ponds = np.where(dark_field > 0.7, tex["dark_pond"], tex["turbid_pond"])
    cover = {"forest": tex["forest"], "mining": np.where(pond, ponds, tex["sand"]),
             "soil": tex["cleared_soil"], "water": tex["river_water"], "sandbar": tex["sandbar"]}
    onset_of = np.array([_NO_ONSET] + [s.onset.toordinal() for s in scars])
    mining_of = np.array([False] + [s.cls == "mining" for s in scars])
    corridor = _rasterize([river.corridor], shape, tr) > 0 if river else np.zeros(shape, bool)
    return _Ground(cover, old_lab > 0, onset_of[scar_lab], mining_of[scar_lab], corridor,
                   _river_coords(river, corridor, tr))


def _plan_old_clearings(spec: SceneSpec, src: _Sources, river: _River | None, old,
                        scars) -> list[Polygon]:
    """Old clearings (bare through the baseline) on free forest, 40 m from anything else."""
    if not spec.n_old_clearings:
        return []
    rng = _rng(spec, 9)
    taken = shapely.union_all([river.corridor if river else Polygon(), *old,
                               *[s.geometry for s in scars]]).buffer(40.0)
    inner = _window(spec).buffer(-30.0)
    out = []
    for _ in range(spec.n_old_clearings):
        area = rng.uniform(1.0, 4.0) * 1e4
        poly = next((p for a in area * 0.7 ** np.arange(5)
                     if (p := _place(rng, inner, taken, a)) is not None), None)
        if poly is not None:
            out.append(poly)
            taken = taken.union(poly.buffer(40.0))
    return out


def _erosion_onsets(spec: SceneSpec, river: _River | None, ground: _Ground) -> np.ndarray | None:
    """(H, W) int64: ordinal day each bank pixel becomes river (``_NO_ONSET`` if never).

    One outer bank retreats along a ~700 m stretch (tapering to both ends) by up to
    ``spec.bank_erosion_m``, at a steady rate from the end of the baseline to the third-last
    monitoring look; pixels of scars, old scars and old clearings are left alone.
    """
    if not spec.bank_erosion_m or river is None or not ground.corridor.any():
        return None
    rng, tr = _rng(spec, 8), _transform(spec)
    near = ndimage.distance_transform_edt(~ground.corridor) * PIXEL_M <= spec.bank_erosion_m + 15
    near &= ~ground.corridor & ~ground.old & (ground.onset == _NO_ONSET)
    if ground.regrow is not None:
        near &= ~ground.regrow
    rows, cols = np.nonzero(near)
    xy = np.column_stack([tr.c + (cols + 0.5) * tr.a, tr.f + (rows + 0.5) * tr.e])
    _, i = cKDTree(river.centre).query(xy)
    across = np.einsum("ij,ij->i", xy - river.centre[i], _normals(river.centre)[i])
    inside = np.flatnonzero([_window(spec).buffer(-400).contains(Point(p)) for p in river.centre])
    if not inside.size:
        return None
    frac = np.full(len(i), 2.0)
    for _ in range(max(1, spec.bank_erosion_sites)):
        s_mid = float(rng.choice(inside)) * 5.0
        side = float(rng.choice([-1.0, 1.0]))
        u = (i * 5.0 - s_mid) / 350.0
        depth = spec.bank_erosion_m * np.sqrt(np.clip(1 - u ** 2, 0, 1))
        beyond = side * across - river.width_m[i] / 2
        site = np.where((np.abs(u) < 1) & (beyond >= 0) & (depth > 0),
                        beyond / np.maximum(depth, 1e-6), 2.0)
        frac = np.minimum(frac, site)
    first, last = _onset_range(spec)
    onset = first.toordinal() + np.rint(frac * (last.toordinal() - first.toordinal())).astype(np.int64)
    out = np.full(ground.corridor.shape, _NO_ONSET, np.int64)
    out[rows, cols] = np.where(frac <= 1.0, onset, _NO_ONSET)
    return out


def _mask_polygons(mask: np.ndarray, spec: SceneSpec) -> list[shapely.Geometry]:
    """Polygons (EPSG:32719) of the True pixels of a 10 m mask."""
    return [shapely.geometry.shape(g) for g, v in rio_features.shapes(
        mask.astype(np.uint8), mask=mask, transform=_transform(spec)) if v]


def _river_coords(river: _River | None, corridor: np.ndarray, tr: Affine) -> np.ndarray:
    """(3, k): along-channel m, signed across-channel m and channel width of corridor pixels."""
    if river is None or not corridor.any():
        return np.zeros((3, 0))
    rows, cols = np.nonzero(corridor)
    xy = np.column_stack([tr.c + (cols + 0.5) * tr.a, tr.f + (rows + 0.5) * tr.e])
    _, i = cKDTree(river.centre).query(xy)
    across = np.einsum("ij,ij->i", xy - river.centre[i], _normals(river.centre)[i])
    return np.stack([i * 5.0, across, river.width_m[i]])


def _sandbars(ground: _Ground, river: _River | None, date: dt.date) -> np.ndarray:
    """(H, W) bool exposed sandbars: grow at low water, drown at high water, drift downstream."""
    bars, dry = np.zeros(ground.corridor.shape, bool), _dryness(date)
    if river is None or dry == 0 or not ground.river_snw.size:
        return bars
    s, n, w = ground.river_snw
    years = (date - dt.date(2018, 6, 1)).days / 365.25
    hit = np.zeros(s.shape, bool)
    for s0, side, half_len, width_frac, speed in river.bars:
        u = (s - (s0 + speed * years)) / (half_len * (0.4 + 0.6 * dry))
        depth = width_frac * dry * np.sqrt(np.clip(1 - u ** 2, 0, 1)) * w
        hit |= (np.abs(u) < 1) & (side * n > w / 2 - depth)
    bars[ground.corridor] = hit
    return bars


def _ground_on(ground: _Ground, river: _River | None, date: dt.date) -> np.ndarray:
    """(6, H, W) reflectance of the ground on ``date``, before atmosphere and noise."""
    c = ground.cover
    refl = c["forest"] * (1 + ground.season_amp * _SEASON * _season(date))[:, None, None]
    if ground.regrow is not None:
        start, end = ground.regrow_span
        g = float(np.clip((date.toordinal() - start) / (end - start), 0.0, 1.0))
        refl = np.where(ground.regrow, c["soil"] * (1 - g) + refl * g, refl)
    if ground.erode_on is not None:
        # The lost bank is river at high water and a fresh bar of sand at low water.
        lost = c["sandbar"] if _dryness(date) > 0.4 else c["water"]
        refl = np.where(ground.erode_on <= date.toordinal(), lost, refl)
    new = ground.onset <= date.toordinal()
    refl = np.where(ground.old | (new & ground.is_mining), c["mining"], refl)
    refl = np.where(new & ~ground.is_mining, c["soil"], refl)
    refl = np.where(ground.corridor, c["water"], refl)
    return np.where(_sandbars(ground, river, date), c["sandbar"], refl)


# ----------------------------------------------------------------------------- sky (pure)

@dataclass(frozen=True)
class _Sky:
    alpha: np.ndarray        # (H, W) opacity of cloud or haze, 0-1
    target: np.ndarray       # (H, W) brightness blended towards (times _CLOUD_TINT)
    body: np.ndarray         # (H, W) bool, opaque cloud body
    shadow: np.ndarray       # (H, W) bool
    shade: float             # ground multiplier in shadow
    scl: np.ndarray          # (H, W) uint8: 8/9 body, 10 flagged haze, 3 flagged shadow, else 0
    sun_azimuth: float       # degrees


def _cloud_fractions(spec: SceneSpec, dates: list[dt.date]) -> np.ndarray:
    """Per-look cloud-body fraction: dry 0-20 %, wet 30-70 %, one baseline look ~80 %, two ~clear;
    then scaled so that the mean is ``spec.cloud_fraction``."""
    if spec.cloud_fraction == 0:
        return np.zeros(len(dates))
    rng = _rng(spec, 5)
    wet = np.array([_is_wet(d) for d in dates])
    raw = np.where(wet, rng.uniform(0.3, 0.7, len(dates)), rng.uniform(0.0, 0.2, len(dates)))
    n_base = len(spec.baseline_dates)
    very = int(rng.integers(n_base))
    raw[very] = 0.8
    for pool in (range(n_base), range(n_base, len(dates))):   # one clear look in each period
        dry = [i for i in pool if not wet[i] and i != very] or [i for i in pool if i != very]
        if dry:
            raw[int(rng.choice(dry))] = 0.005
    return np.clip(raw * spec.cloud_fraction / raw.mean(), 0.0, 0.95)


def _shift(mask: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Translate a 2-D array by (dy, dx) pixels, filling with zeros (no wrap-around)."""
    out, (h, w) = np.zeros_like(mask), mask.shape
    out[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        mask[max(-dy, 0):h - max(dy, 0), max(-dx, 0):w - max(dx, 0)]
    return out


def _sky(rng: np.random.Generator, shape, fraction: float, wet: bool) -> _Sky:
    """Clouds (bright bodies, soft 2-4 px edges), haze, shadows and their imperfect SCL flags.

    Clouds are drawn on a canvas 45 px wider on each side, so clouds just outside the window
    cast shadows into it. Shadows fall 200-400 m to the south-west (sun in the north-east).
    """
    if fraction <= 0:
        z = np.zeros(shape, np.float32)
        return _Sky(z, z, z > 0, z > 0, 1.0, np.zeros(shape, np.uint8), 45.0)
    pad = 45
    canvas = (shape[0] + 2 * pad, shape[1] + 2 * pad)
    f = (_smooth_field(rng, canvas, 40) + 0.5 * _smooth_field(rng, canvas, 12)
         + 0.25 * _smooth_field(rng, canvas, 4))
    thr = np.quantile(f, 1 - fraction)
    body = f > thr
    dist = ndimage.distance_transform_edt(~body)
    alpha = np.where(body, 1.0, np.clip(1 - dist / (rng.integers(2, 5) + 1), 0, 1))
    az, dist_m = rng.uniform(30, 60), rng.uniform(200, 400)
    dy = int(round(dist_m * np.cos(np.radians(az)) / PIXEL_M))
    dx = -int(round(dist_m * np.sin(np.radians(az)) / PIXEL_M))
    shadow = _shift(alpha > 0.5, dy, dx)
    win = (slice(pad, pad + shape[0]), slice(pad, pad + shape[1]))
    body, alpha, shadow = body[win], alpha[win].astype(np.float32), shadow[win] & ~body[win]
    target = 0.3 + 0.4 * np.sqrt(np.clip((f[win] - thr) / (f.max() - thr + 1e-6), 0, 1))
    # Thin haze: a soft veil blending ground and cloud, flagged cirrus (10) on about half its
    # patches; soft cloud edges are not flagged at all.
    hz = _smooth_field(rng, shape, 25)
    h_thr = np.quantile(hz, 1 - rng.uniform(0.02, 0.06) * (2.0 if wet else 1.0))
    veil = np.where(hz > h_thr, 0.12 + 0.3 * np.clip(3 * (hz - h_thr) / (hz.max() - h_thr), 0, 1),
                    0.0)
    haze = ndimage.gaussian_filter(veil, 2).astype(np.float32)
    use_haze = haze > alpha
    alpha, target = np.maximum(alpha, haze), np.where(use_haze, 0.35, target).astype(np.float32)
    labels, n_lab = ndimage.label(haze > 0.2)
    scl = np.zeros(shape, np.uint8)
    scl[np.concatenate([[False], rng.random(n_lab) < 0.5])[labels] & use_haze] = 10
    if shadow.any():   # only 60-80 % of the shadow area is flagged 3
        sf = _smooth_field(rng, shape, 6)
        scl[shadow & (sf > np.quantile(sf[shadow], 1 - rng.uniform(0.6, 0.8))) & (scl == 0)] = 3
    scl[body] = np.where(target[body] >= 0.5, 9, 8)
    return _Sky(alpha, target, body, shadow, float(rng.uniform(0.3, 0.5)), scl, float(az))


def _observe(ground_refl: np.ndarray, sky: _Sky, rng: np.random.Generator, noise: float):
    """(6, H, W) float32 reflectance seen through the sky, plus Gaussian sensor noise."""
    refl = ground_refl * np.where(sky.shadow, sky.shade, 1.0).astype(np.float32)
    refl += sky.alpha[None] * (sky.target[None] * _CLOUD_TINT[:, None, None] - refl)
    return refl + rng.standard_normal(refl.shape, dtype=np.float32) * np.float32(noise)


def _scene_class(refl: np.ndarray, sky: _Sky, rng: np.random.Generator) -> np.ndarray:
    """SCL at 10 m (uint8): 4 vegetation, 5 bare, 6 water, a few 7, then the sky's flags."""
    ndvi, mndwi = _indices(refl)
    scl = np.full(ndvi.shape, 5, np.uint8)
    scl[mndwi > 0.2] = 6
    scl[ndvi > 0.4] = 4
    scl[(ndvi > 0.3) & (ndvi <= 0.45) & (rng.random(ndvi.shape) < 0.25)] = 7
    return np.where(sky.scl > 0, sky.scl, scl)


def _mode_2x2(a: np.ndarray) -> np.ndarray:
    """Majority of each 2x2 block (ties: the first in reading order)."""
    blocks = np.stack([a[0::2, 0::2], a[0::2, 1::2], a[1::2, 0::2], a[1::2, 1::2]])
    counts = (blocks[:, None] == blocks[None, :]).sum(1)
    return np.take_along_axis(blocks, counts.argmax(0)[None], 0)[0]


def _encode(refl: np.ndarray) -> np.ndarray:
    """Reflectance -> Earth Search DN = round((R + 0.1) / 1e-4), clipped to 1..65535 (0: nodata)."""
    return np.clip(np.rint((refl + 0.1) * 1e4), 1, 65535).astype(np.uint16)


# ----------------------------------------------------------------------------- swath edge (pure)

def _swath_line(spec: SceneSpec) -> tuple[tuple[float, float], tuple[float, float]]:
    """Two points (EPSG:32719) of the swath edge, running NNE-SSW (12 deg); nodata to the east."""
    w_m, h_m = spec.width_px * PIXEL_M, spec.height_px * PIXEL_M
    x_top = spec.x0 + w_m * float(_rng(spec, 7).uniform(0.8, 0.9))
    return (x_top, spec.y1), (x_top - h_m * float(np.tan(np.radians(12))), spec.y1 - h_m)


def _swath_distance(spec: SceneSpec, pixel_m: float) -> np.ndarray:
    """Signed distance (m) of pixel centres to the swath edge, positive on the nodata side."""
    (xa, ya), (xb, yb) = _swath_line(spec)
    ux, uy = np.array([xb - xa, yb - ya]) / np.hypot(xb - xa, yb - ya)
    x = spec.x0 + (np.arange(round(spec.width_px * PIXEL_M / pixel_m)) + 0.5) * pixel_m
    y = spec.y1 - (np.arange(round(spec.height_px * PIXEL_M / pixel_m)) + 0.5) * pixel_m
    return (x[None, :] - xa) * -uy + (y[:, None] - ya) * ux


def _apply_swath(spec, dn10, dn20, scl20, refl20, rng) -> None:
    """Cut the swath edge into one look's arrays, in place.

    Beyond the line: DN 0 and SCL 0. Valid pixels whose footprint lies within 20 m of the line
    are corrupted: darkened to 30-60 %, and one 10 m band missing (DN 0) on the outer pixel;
    their SCL says 4 or 5. Pixels farther away are untouched.
    """
    d10, d20 = _swath_distance(spec, PIXEL_M), _swath_distance(spec, 2 * PIXEL_M)
    dark = rng.uniform(0.3, 0.6)
    strip10, strip20 = (d10 > -14) & (d10 <= 0), (d20 > -8) & (d20 <= 0)
    dn10[:, strip10] = _encode((dn10[:, strip10] * 1e-4 - 0.1) * dark)
    dn10[int(rng.integers(4)), (d10 > -7) & (d10 <= 0)] = 0
    dn10[:, d10 > 0] = 0
    dn20[:, strip20] = _encode(refl20[:, strip20] * dark)
    dn20[:, d20 > 0] = 0
    scl20[strip20] = np.where(scl20[strip20] == 4, 4, 5)
    scl20[d20 > 0] = 0


def _percent(mask: np.ndarray) -> float:
    return round(100 * float(mask.mean()), 3) if mask.size else 0.0


def _render_look(spec: SceneSpec, ground: _Ground, river, date: dt.date, fraction: float,
                 edge: bool) -> tuple[dict, dict]:
    """All rasters of one look ({asset key: DN array}) and its statistics."""
    rng = _rng(spec, 6, date.toordinal())
    sky = _sky(rng, ground.old.shape, fraction, _is_wet(date))
    refl = _observe(_ground_on(ground, river, date), sky, rng, spec.noise_reflectance)
    scl20 = _mode_2x2(_scene_class(refl, sky, rng))
    b, h, w = refl[4:].shape
    refl20 = refl[4:].reshape(b, h // 2, 2, w // 2, 2).mean((2, 4))
    dn10, dn20 = _encode(refl[:4]), _encode(refl20)
    if edge:
        _apply_swath(spec, dn10, dn20, scl20, refl20, rng)
    valid = scl20 > 0
    stats = {"cloud_fraction_target": round(float(fraction), 4),
             "cloud_body_fraction": round(float(sky.body.mean()), 4),
             "shadow_fraction": round(float(sky.shadow.mean()), 4),
             "eo:cloud_cover": _percent(np.isin(scl20[valid], (8, 9, 10))),
             "s2:cloud_shadow_percentage": _percent(scl20[valid] == 3),
             "s2:nodata_pixel_percentage": _percent(~valid),
             "view:sun_azimuth": round(sky.sun_azimuth, 2)}
    return dict(zip(BANDS_10M, dn10)) | dict(zip(BANDS_20M, dn20)) | {"scl": scl20}, stats


# ----------------------------------------------------------------------------- writing (I/O)

def _write_tif(path: Path, arr: np.ndarray, transform: Affine, block: int) -> None:
    with rasterio.open(path, "w", driver="GTiff", height=arr.shape[0], width=arr.shape[1],
                       count=1, dtype=arr.dtype.name, crs=CRS, transform=transform, nodata=0,
                       tiled=True, blockxsize=block, blockysize=block, compress="deflate",
                       predictor=2) as dst:
        dst.write(arr, 1)


def _to_lonlat(geom: shapely.Geometry) -> shapely.Geometry:
    """EPSG:32719 -> EPSG:4326 (lon, lat), with counter-clockwise exteriors (RFC 7946)."""
    geom = gpd.GeoSeries([geom], crs=CRS).to_crs("EPSG:4326").iloc[0]
    return shapely.MultiPolygon([orient(p, 1.0) for p in shapely.get_parts(geom)]) \
        if geom.geom_type == "MultiPolygon" else orient(geom, 1.0)


def _asset(key: str, href: str, shape, transform: Affine, res: int) -> pystac.Asset:
    extra = {"proj:shape": list(shape), "proj:transform": list(transform)[:6]}
    if key == "scl":
        title = "Scene classification map (SCL)"
        extra["raster:bands"] = [{"nodata": 0, "data_type": "uint8", "spatial_resolution": res}]
    else:
        desc, wavelength, fwhm = _EO[key]
        title = f"{desc} - {res}m"
        extra |= {"eo:bands": [{"name": key, "common_name": key, "description": desc,
                                "center_wavelength": wavelength, "full_width_half_max": fwhm}],
                  "gsd": res,
                  "raster:bands": [{"nodata": 0, "data_type": "uint16", "spatial_resolution": res,
                                    "scale": 0.0001, "offset": -0.1}]}
    return pystac.Asset(href, title=title, roles=["data"], extra_fields=extra,
                        media_type="image/tiff; application=geotiff; profile=cloud-optimized")


def _write_look(root: Path, spec: SceneSpec, look: dict, arrays: dict,
                footprint: shapely.Geometry) -> pystac.Item:
    """Write one look's GeoTIFFs into ``root/items/<id>/`` and return its STAC item."""
    folder = root / "items" / look["item_id"]
    folder.mkdir(parents=True)
    lonlat = _to_lonlat(footprint)
    props = {"platform": look["platform"], "constellation": "sentinel-2", "instruments": ["msi"],
             "eo:cloud_cover": look["eo:cloud_cover"], "proj:epsg": EPSG, "proj:code": CRS,
             "mgrs:utm_zone": 19, "mgrs:latitude_band": "L", "mgrs:grid_square": "CF",
             "grid:code": f"MGRS-{MGRS_TILE}", "view:sun_azimuth": look["view:sun_azimuth"],
             "s2:processing_baseline": "05.00", "s2:product_type": "S2MSI2A",
             "s2:nodata_pixel_percentage": look["s2:nodata_pixel_percentage"],
             "s2:cloud_shadow_percentage": look["s2:cloud_shadow_percentage"],
             "earthsearch:boa_offset_applied": True, "cec:synthetic": True}
    when = dt.datetime.fromisoformat(look["datetime"])
    item = pystac.Item(look["item_id"], mapping(lonlat), list(lonlat.bounds), when, props,
                       stac_extensions=list(STAC_EXTENSIONS), collection=COLLECTION_ID)
    block = 256 if spec.width_px >= 256 else 128
    for key, arr in arrays.items():
        res = 10 if key in BANDS_10M else 20
        tr = _transform(spec, float(res))
        _write_tif(folder / f"{key}.tif", arr, tr, block)
        item.add_asset(key, _asset(key, str(folder / f"{key}.tif"), arr.shape, tr, res))
    return item


def _write_geojson(path: Path, features: list[tuple[dict, shapely.Geometry]], utm: bool) -> None:
    fc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": p, "geometry": mapping(g)} for p, g in features]}
    if utm:   # legacy member, so that GDAL/geopandas read the CRS; scene.json states it too
        fc["crs"] = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32719"}}
    path.write_text(json.dumps(fc) + "\n")


def _truth(src: _Sources, scars: list[_Scar], dates: list[dt.date]) -> list[tuple[dict, object]]:
    """(properties, EPSG:32719 geometry) per planted scar."""
    out = []
    for s in scars:
        area_ha = s.geometry.area / 1e4
        zone = "inside" if s.geometry.intersection(src.core).area >= s.geometry.area / 2 else (
            "buffer" if s.geometry.intersects(src.buffer) else "outside")
        first = next((d.isoformat() for d in dates if d >= s.onset), None)
        out.append(({"scar_id": s.scar_id, "class": s.cls, "onset": s.onset.isoformat(),
                     "source": s.source, "area_ha": round(area_ha, 4),
                     "below_mmu": area_ha < MMU_HA, "zone": zone, "first_look": first},
                    s.geometry))
    return out


def _spec_json(spec: SceneSpec) -> dict:
    return json.loads(json.dumps(dataclasses.asdict(spec), default=dt.date.isoformat))


def _write_truth(root: Path, spec: SceneSpec, src: _Sources, old, scars, river, looks: list,
                 dropped: list, extra_lookalikes: list = ()) -> None:
    """truth.geojson, truth_utm.geojson, lookalikes.geojson and scene.json."""
    truth = _truth(src, scars, [dt.date.fromisoformat(lk["date"]) for lk in looks])
    _write_geojson(root / "truth_utm.geojson", truth, utm=True)
    _write_geojson(root / "truth.geojson", [(p, _to_lonlat(g)) for p, g in truth], utm=False)
    win = _window(spec)
    edge_ids = [lk["item_id"] for lk in looks if lk["swath_edge"]]
    lookalikes = [({"kind": "old_mining", "source": "amw-2018-stock"}, g) for g in old]
    if river is not None and not river.corridor.is_empty:
        lookalikes.append(({"kind": "river", "note": "channel and its moving sandbars"},
                           river.corridor))
    if edge_ids:
        strip = _nodata_side(spec).buffer(20.0, join_style="mitre").intersection(win)
        lookalikes.append(({"kind": "swath_edge", "items": edge_ids,
                            "note": "nodata beyond the line, corrupted values within 20 m"}, strip))
    lookalikes += list(extra_lookalikes)
    _write_geojson(root / "lookalikes.geojson", lookalikes, utm=True)
    meta = {"generator_version": GENERATOR_VERSION, "spec": _spec_json(spec),
            "sources_sha256": _sources_digest(demo_dir()), "crs": CRS,
            "transform_10m": list(_transform(spec))[:6], "bounds": list(win.bounds),
            "shape_10m": [spec.height_px, spec.width_px],
            "files": {"catalog": "catalog.json", "truth": "truth.geojson (EPSG:4326)",
                      "truth_utm": "truth_utm.geojson (EPSG:32719)",
                      "lookalikes": "lookalikes.geojson (EPSG:32719)"},
            "swath_edge_line_utm": [list(p) for p in _swath_line(spec)] if edge_ids else None,
            "looks": looks, "dropped_amw": dropped, "spectra": _spectra_stats(src.spectra)}
    (root / "scene.json").write_text(json.dumps(meta, indent=1) + "\n")


def _write_catalog(root: Path, spec: SceneSpec, items: list[pystac.Item]) -> None:
    times = [i.datetime for i in items]
    extent = pystac.Extent(pystac.SpatialExtent([list(_to_lonlat(_window(spec)).bounds)]),
                           pystac.TemporalExtent([[min(times), max(times)]]))
    coll = pystac.Collection(COLLECTION_ID, "Synthetic Sentinel-2 L2A looks shaped like Earth "
                             "Search v1 sentinel-2-l2a (cec-pipeline demo; not real imagery).",
                             extent, license="various")
    coll.add_items(items)
    cat = pystac.Catalog("cec-demo-la-pampa", f"Synthetic La Pampa scene (pipeline.demo "
                         f"{GENERATOR_VERSION}, seed {spec.seed}).")
    cat.add_child(coll)
    # Explicit hrefs: each item JSON beside its assets in items/<id>/.
    cat.set_self_href(str(root / "catalog.json"))
    coll.set_self_href(str(root / COLLECTION_ID / "collection.json"))
    for item in items:
        item.set_self_href(str(root / "items" / item.id / f"{item.id}.json"))
    cat.make_all_asset_hrefs_relative()
    cat.save(pystac.CatalogType.SELF_CONTAINED)


# ----------------------------------------------------------------------------- public API

def generate_scene(spec: SceneSpec, out_dir: Path) -> Path:
    """Write the catalog, assets and truth into ``out_dir``; return the ``catalog.json`` path.

    Built in a temporary directory beside ``out_dir``, then renamed into place (an existing
    ``out_dir`` is replaced). Rasters: EPSG:32719; ``blue green red nir`` at 10 m and
    ``swir16 swir22`` at 20 m as uint16 DN, reflectance = DN * 1e-4 - 0.1, nodata 0; ``scl`` at
    20 m, uint8, nodata 0.
    """
    out_dir = Path(out_dir).resolve()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    src = _read_sources(demo_dir())
    river = _build_river(spec, src)
    old, scars, dropped = _plan_scars(spec, src, river)
    ground = _build_ground(spec, src.spectra, old, scars, river)
    dates = list(spec.baseline_dates) + list(spec.monitor_dates)
    ground, lookalikes = _add_lookalikes(spec, src, river, old, scars, ground)
    win = _window(spec)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    try:
        items, looks = [], []
        for i, (date, fraction) in enumerate(zip(dates, _cloud_fractions(spec, dates))):
            edge = spec.swath_edge and i % 3 == 2   # one relative orbit in three
            arrays, stats = _render_look(spec, ground, river, date, fraction, edge)
            platform = ("sentinel-2a", "sentinel-2b")[i % 2]
            when = dt.datetime.combine(date, dt.time(14, 50, 7 + i % 40), dt.timezone.utc)
            look = {"date": date.isoformat(), "datetime": when.isoformat(),
                    "item_id": f"S2{platform[-1].upper()}_{MGRS_TILE}_{date:%Y%m%d}_0_L2A",
                    "period": "baseline" if i < len(spec.baseline_dates) else "monitor",
                    "platform": platform, "swath_edge": edge} | stats
            footprint = win.difference(_nodata_side(spec)) if edge else win
            items.append(_write_look(tmp, spec, look, arrays, footprint))
            looks.append(look)
        _write_truth(tmp, spec, src, old, scars, river, looks, dropped, lookalikes)
        _write_catalog(tmp, spec, items)
        _replace_dir(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir / "catalog.json"


def _add_lookalikes(spec: SceneSpec, src: _Sources, river, old, scars, ground: _Ground):
    """The optional look-alikes (phenology, old clearings, bank erosion) put onto the ground.

    Returns the new ground and ``(properties, EPSG:32719 geometry)`` of each look-alike. Uses its
    own random streams, so a spec without look-alikes renders exactly as before.
    """
    features = []
    ground = dataclasses.replace(ground, season_amp=float(spec.phenology_amplitude))
    clearings = _plan_old_clearings(spec, src, river, old, scars)
    if clearings:
        start = spec.monitor_dates[0].toordinal()
        ground = dataclasses.replace(ground, regrow=_rasterize(clearings, ground.old.shape,
                                                               _transform(spec)) > 0,
                                     regrow_span=(start, start + 730))
        features += [({"kind": "old_clearing", "expected": "no alert",
                       "note": "bare in the baseline, regrowing during monitoring"}, g)
                     for g in clearings]
    erode_on = _erosion_onsets(spec, river, ground)
    if erode_on is not None and (erode_on != _NO_ONSET).any():
        ground = dataclasses.replace(ground, erode_on=erode_on)
        eroded = shapely.union_all(_mask_polygons(erode_on != _NO_ONSET, spec))
        features.append(({"kind": "bank_erosion", "expected": "no alert or class other",
                          "note": "forest on the outer bank turning to river (natural loss)"},
                         eroded))
    return ground, features


def _replace_dir(new: Path, target: Path) -> None:
    """Move ``new`` to ``target``; if another process got there first, keep theirs."""
    old = target.with_name(f".{target.name}-old-{os.getpid()}")
    if target.exists():
        target.rename(old)
    try:
        new.rename(target)
    except OSError:
        if not (target / "scene.json").is_file():
            raise
    shutil.rmtree(old, ignore_errors=True)


def ensure_scene(spec: SceneSpec, out_dir: Path) -> Path:
    """Reuse ``out_dir`` if its scene.json records this spec, GENERATOR_VERSION and sources;
    otherwise (or if anything is missing or unreadable) regenerate it. Returns catalog.json."""
    out_dir = Path(out_dir)
    try:
        meta = json.loads((out_dir / "scene.json").read_text())
        if (meta["generator_version"] == GENERATOR_VERSION and meta["spec"] == _spec_json(spec)
                and meta["sources_sha256"] == _sources_digest(demo_dir())
                and (out_dir / "catalog.json").is_file()):
            return out_dir / "catalog.json"
    except (OSError, ValueError, KeyError):
        pass
    return generate_scene(spec, out_dir)


if __name__ == "__main__":   # python -m pipeline.demo [OUT_DIR]
    print(ensure_scene(DEMO_SPEC, Path(sys.argv[1]) if len(sys.argv) > 1
                       else demo_dir() / "generated" / "demo"))
