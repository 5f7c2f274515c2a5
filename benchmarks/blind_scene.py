"""A blind scene generator: Madre de Dios-like ground, written as real sources serve it.

Written for issue 8 WITHOUT reading the project's own generators (``pipeline/testing/scene.py``,
``pipeline/training/sampler.py``, ``data/endmembers/``) or benchmark scenes: only the STAC/asset
contracts (asset keys, ``raster:bands`` scale/offset, nodata, ``proj:*``, SCL classes, QA_PIXEL
bits) were taken from the recorded real items in ``../shared/data/stac``. The spectra are typical
surface reflectances from the literature and field knowledge (blue, green, red, NIR, SWIR1,
SWIR2), each drawn anew per scene and per object (gain, tilt, offset), so the benchmark does not
reward a model for having learnt one generator.

Layout (6 × 6 km by default, UTM 19S, rendered on a 5 m grid and averaged to 10 / 20 / 30 m so
edges are mixed pixels): a meandering white-water river with bars that migrate and a water level
that changes with the season; forest with sub-pixel texture, secondary growth, scrub and old
pastures; old mining stock (sediment, ponds, regrowth) along the river; a floodplain depression
that floods further in the monitor year than in the baseline; a pioneer-vegetated bar buried by
new sand. New change in the monitor period (the truth): mining (pit + pond clusters by the river,
sediment-only pits, old pits growing into new ground, mines on secondary growth or scrub; washed
sand and gravel with 0–35 % lateritic overburden piles; a third felled a look before digging) and
clearings (rectangular pasture, burnt, bare, grassy, irregular smallholder plots), 0.4–25 ha.
Atmosphere: clouds with shadows and an imperfect mask (soft edges and part of the shadows left
clear, bright sediment sometimes called cloud), haze on a look, a nodata stripe, noise and
per-look band gains.

Encodings: Earth Search S2 L2A (``raster:bands`` ×1e-4 −0.1, SWIR and SCL at 20 m), Planetary
Computer S2 L2A (``B02…B12 SCL``, no ``raster:bands``, processing baseline 03.01 before 2022 and
04.00 after, DN offset accordingly) and Landsat C2 L2 (30 m, ×2.75e-5 −0.2, QA_PIXEL bits, the
north form of the UTM zone with negative northings as USGS writes southern scenes). Regimes: a
dense series (each look an item, with its mask) or two median composites (one per period,
``start_datetime``/``end_datetime``, no mask asset).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pystac
import rasterio
from pyproj import Transformer
from rasterio.features import rasterize
from scipy import ndimage
from shapely import affinity
from shapely.geometry import LineString, Point, Polygon, box, mapping
from shapely.ops import unary_union

BANDS = ("blue", "green", "red", "nir", "swir16", "swir22")
FINE_M = 5.0
EPSG = 32719  # UTM 19S (Madre de Dios)
X0, Y0 = 379_980.0, 8_570_020.0  # top-left of the fine grid: multiples of 10 m; +15 m in, the
# Landsat grid falls on odd multiples of 15 m in the north form of the zone (y − 10 000 km)

# Typical surface reflectance (blue, green, red, NIR, SWIR1 1.6 µm, SWIR2 2.2 µm).
SPECTRA = {
    # vegetation
    "forest": (0.022, 0.048, 0.026, 0.31, 0.145, 0.058),  # closed tropical forest, NDVI ≈ 0.85
    "secondary": (0.030, 0.062, 0.040, 0.34, 0.185, 0.085),  # capoeira, NDVI ≈ 0.79
    "scrub": (0.045, 0.075, 0.068, 0.27, 0.225, 0.125),  # shrub / cane regrowth, NDVI ≈ 0.6
    "pasture": (0.040, 0.080, 0.058, 0.30, 0.245, 0.130),  # green Brachiaria, NDVI ≈ 0.68
    "dry_pasture": (0.062, 0.092, 0.105, 0.25, 0.310, 0.195),
    "crop": (0.040, 0.072, 0.060, 0.27, 0.220, 0.120),
    "pioneer": (0.040, 0.075, 0.055, 0.28, 0.210, 0.110),  # Tessaria/cane on older bars
    # soils and disturbed ground
    "laterite": (0.065, 0.105, 0.165, 0.235, 0.335, 0.265),  # red Ultisol/Oxisol, dry
    "grey_soil": (0.075, 0.105, 0.135, 0.205, 0.290, 0.235),
    "char": (0.028, 0.034, 0.040, 0.070, 0.110, 0.095),
    "ash": (0.075, 0.085, 0.095, 0.125, 0.170, 0.150),
    "slash": (0.040, 0.060, 0.070, 0.200, 0.255, 0.165),  # felled, drying trees
    # mining
    "sediment_dry": (0.130, 0.165, 0.205, 0.255, 0.305, 0.255),  # washed quartz sand/tailings
    "sediment_wet": (0.080, 0.108, 0.138, 0.170, 0.185, 0.150),
    "gravel": (0.100, 0.128, 0.158, 0.195, 0.240, 0.210),
    "pond_turbid": (0.068, 0.108, 0.130, 0.100, 0.035, 0.020),
    "pond_clear": (0.030, 0.048, 0.034, 0.024, 0.012, 0.008),
    "pond_algae": (0.028, 0.060, 0.040, 0.055, 0.016, 0.010),
    "tailings_regrowth": (0.050, 0.082, 0.070, 0.240, 0.215, 0.125),
    # river
    "river": (0.058, 0.098, 0.115, 0.085, 0.030, 0.015),  # white-water, sediment-laden
    "sand": (0.105, 0.145, 0.178, 0.225, 0.275, 0.228),
    "wet_sand": (0.068, 0.098, 0.118, 0.148, 0.165, 0.135),
    "flood_water": (0.040, 0.068, 0.060, 0.090, 0.040, 0.020),  # water over grass/swamp
}
CLOUD = np.array((0.46, 0.45, 0.45, 0.47, 0.39, 0.29))

SCL_NODATA, SCL_SHADOW, SCL_VEG, SCL_BARE, SCL_WATER = 0, 3, 4, 5, 6
SCL_CLOUD_MED, SCL_CLOUD_HIGH = 8, 9

MINING_KINDS = ("river_pits", "sediment_pit", "pit_expansion", "mine_on_regrowth")
CLEARING_KINDS = ("pasture_rect", "burnt", "bare", "grassy", "smallholder")


@dataclass
class Scar:
    id: int
    cls: str  # mining | clearing
    kind: str
    onset: int  # index of the first monitor look showing the change
    polygon: Polygon  # the NEW ground (metres, scene coordinates)
    area_ha: float = 0.0
    prep_looks: int = 0  # looks of felled ground (slash, soil) before a mine is dug


@dataclass
class Scene:
    seed: int
    size_px10: int
    dates: list[dt.date]
    n_baseline: int
    scars: list[Scar] = field(default_factory=list)
    lookalikes: dict[str, list[Polygon]] = field(default_factory=dict)
    # rendered products
    fine_refl: list[np.ndarray] = field(default_factory=list)  # per look (6, H, W) fine ground + atmosphere
    fine_cloud: list[np.ndarray] = field(default_factory=list)  # per look cloud alpha
    fine_shadow: list[np.ndarray] = field(default_factory=list)
    fine_nodata: list[np.ndarray] = field(default_factory=list)
    mask_cloud: list[np.ndarray] = field(default_factory=list)  # what the (imperfect) mask calls cloud
    mask_shadow: list[np.ndarray] = field(default_factory=list)
    bright_sediment: list[np.ndarray] = field(default_factory=list)
    water: list[np.ndarray] = field(default_factory=list)


# --------------------------------------------------------------------------------------- helpers

def _smooth_noise(rng, shape, sigma_px, lo=-1.0, hi=1.0):
    f = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma_px, mode="wrap")
    f = (f - f.min()) / max(float(f.max() - f.min()), 1e-9)
    return (lo + (hi - lo) * f).astype(np.float32)


def _blob(rng, centre, area_m2, irregularity=0.35, elong=1.0, angle=None, n=28):
    """A star-shaped irregular polygon of about ``area_m2``."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    k = rng.integers(2, 5)
    r = 1 + irregularity * (0.6 * np.sin(k * t + rng.uniform(0, 6.3)) + 0.4 * rng.uniform(-1, 1, n))
    r = ndimage.uniform_filter1d(r, 3, mode="wrap")
    poly = Polygon(np.c_[np.cos(t) * r * elong, np.sin(t) * r / elong])
    poly = poly.buffer(0)
    poly = affinity.scale(poly, *(2 * [np.sqrt(area_m2 / poly.area)]))
    poly = affinity.rotate(poly, rng.uniform(0, 180) if angle is None else angle)
    return affinity.translate(poly, *centre)


def _rect(rng, centre, area_m2, aspect, angle):
    w = np.sqrt(area_m2 * aspect)
    h = area_m2 / w
    poly = box(-w / 2, -h / 2, w / 2, h / 2)
    return affinity.translate(affinity.rotate(poly, angle), *centre)


def _raster(polys, shape, value=1, all_touched=False):
    """Rasterize shapes in scene metres (x right, y down from the top-left) onto the fine grid."""
    shapes = [(p, value) for p in (polys if isinstance(polys, (list, tuple)) else [polys]) if not p.is_empty]
    if not shapes:
        return np.zeros(shape, bool)
    tf = rasterio.transform.from_origin(0, 0, FINE_M, -FINE_M)  # y grows downward
    return rasterize(shapes, out_shape=shape, transform=tf, fill=0, all_touched=all_touched, dtype="uint8") > 0


def _spectrum(rng, name, gain_sd=0.08, tilt_sd=0.05):
    """A per-object draw of a cover spectrum: overall gain, a tilt across the bands, band jitter."""
    s = np.array(SPECTRA[name], dtype=np.float32)
    gain = rng.normal(1.0, gain_sd)
    tilt = rng.normal(0.0, tilt_sd) * np.linspace(-1, 1, 6)
    jitter = rng.normal(1.0, 0.03, 6)
    return np.clip(s * gain * (1 + tilt) * jitter, 0.003, 0.9).astype(np.float32)


def _paint(img, where, spec, texture=None):
    t = 1.0 if texture is None else texture[where]
    for b in range(6):
        img[b][where] = spec[b] * t


def _mix_paint(img, where, spec, frac):
    """Blend a spectrum into ``img`` with per-pixel fraction ``frac`` inside ``where``."""
    f = frac[where]
    for b in range(6):
        img[b][where] = img[b][where] * (1 - f) + spec[b] * f


# ------------------------------------------------------------------------------------- the scene

def _dates(rng, n_baseline, n_monitor):
    base = [dt.date(2021, 3, 20)] + [dt.date(2021, 5, 25) + dt.timedelta(days=int(d))
                                     for d in np.sort(rng.choice(np.arange(0, 150, 10), n_baseline - 1, replace=False))]
    mon = [dt.date(2022, 4, 5)] + [dt.date(2022, 5, 20) + dt.timedelta(days=int(d))
                                   for d in np.sort(rng.choice(np.arange(0, 170, 10), n_monitor - 1, replace=False))]
    jit = [dt.timedelta(days=int(rng.integers(-3, 4))) for _ in range(n_baseline + n_monitor)]
    return [d + j for d, j in zip(base + mon, jit)]


def build_layout(seed: int, size_px10: int = 600, n_baseline: int = 4, n_monitor: int = 6) -> Scene:
    """Draw the ground: river, covers, old stock, look-alikes and the new scars (no rendering)."""
    rng = np.random.default_rng(seed)
    scene = Scene(seed=seed, size_px10=size_px10, dates=_dates(rng, n_baseline, n_monitor), n_baseline=n_baseline)
    side = size_px10 * 10.0
    scene._rng = rng  # type: ignore[attr-defined]

    # river centre line: a meander across the scene, west to east, with a random drift
    xs = np.linspace(-200, side + 200, 400)
    amp, wl, phase = rng.uniform(500, 900), rng.uniform(2200, 3200), rng.uniform(0, 6.3)
    y_mid = side * rng.uniform(0.4, 0.6)
    ys = y_mid + amp * np.sin(2 * np.pi * xs / wl + phase) + 150 * np.sin(2 * np.pi * xs / (wl / 2.7) + 1.3 * phase)
    centre = LineString(np.c_[xs, ys])
    half_w = rng.uniform(45, 75)
    scene.river_line = centre  # type: ignore[attr-defined]
    scene.river_half_w = half_w  # type: ignore[attr-defined]
    channel = centre.buffer(half_w, cap_style=2)
    # bars on the inside of bends: where the curve peaks, on the concave side
    bars = []
    for i in range(20, len(xs) - 20):
        if (ys[i] - ys[i - 1]) * (ys[i + 1] - ys[i]) <= 0 and 0 < xs[i] < side:
            inward = -np.sign(ys[i] - y_mid) or 1.0
            c = (xs[i] + rng.uniform(-60, 60), ys[i] + inward * (half_w + rng.uniform(-10, 30)))
            bars.append(_blob(rng, c, rng.uniform(3e4, 7e4), 0.25, elong=2.2, angle=rng.uniform(-15, 15)))
    scene.bars = bars  # type: ignore[attr-defined]
    belt = unary_union([channel.buffer(40)] + [b.buffer(30) for b in bars])
    scene.belt = belt  # type: ignore[attr-defined]

    # what a riverside pit may not overlap: the channel at high water and the bars' path
    hard_river = unary_union([channel.buffer(30)] + [affinity.translate(b, dx, 0).buffer(25)
                                                     for b in bars for dx in range(0, 181, 30)])
    occupied = [belt]

    def free(poly, margin=60.0, riverside=False):
        if not box(250, 250, side - 250, side - 250).contains(poly):
            return False
        grown = poly.buffer(margin)
        if riverside:
            return not poly.intersects(hard_river) and not any(grown.intersects(o) for o in occupied[1:])
        return not any(grown.intersects(o) for o in occupied)

    def place(make, tries=60, riverside=False):
        for _ in range(tries):
            poly = make()
            if poly is not None and not poly.is_empty and free(poly, riverside=riverside):
                occupied.append(poly)
                return poly
        return None

    def near_river(offset_lo, offset_hi):
        d = rng.uniform(0.05, 0.95) * centre.length
        p = centre.interpolate(d)
        q = centre.interpolate(min(d + 5, centre.length))
        nx, ny = -(q.y - p.y), (q.x - p.x)
        nrm = np.hypot(nx, ny) or 1
        side_sign = rng.choice([-1, 1])
        off = half_w + rng.uniform(offset_lo, offset_hi)
        return (p.x + side_sign * off * nx / nrm, p.y + side_sign * off * ny / nrm)

    def anywhere():
        return (rng.uniform(400, side - 400), rng.uniform(400, side - 400))

    # background covers
    scene.secondary = [p for p in (place(lambda: _blob(rng, anywhere(), rng.uniform(8e4, 3e5), 0.45)) for _ in range(4)) if p]  # type: ignore[attr-defined]
    scene.pastures = [p for p in (place(lambda: _rect(rng, anywhere(), rng.uniform(1e5, 4e5), rng.uniform(1, 3), rng.uniform(0, 90))) for _ in range(3)) if p]  # type: ignore[attr-defined]
    scene.scrub = [p for p in (place(lambda: _blob(rng, near_river(60, 400), rng.uniform(5e4, 2e5), 0.4)) for _ in range(3)) if p]  # type: ignore[attr-defined]
    # old mining stock along the river (baseline): sediment + ponds + some regrowth
    old = [p for p in (place(lambda: _blob(rng, near_river(60, 300), rng.uniform(4e4, 2e5), 0.5), riverside=True) for _ in range(4)) if p]
    scene.old_mines = old  # type: ignore[attr-defined]
    # floodplain depression (seasonal water), grassy swamp, floods further in the monitor year
    scene.lookalikes["seasonal_water"] = [p for p in (place(lambda: _blob(rng, near_river(150, 500), rng.uniform(2e4, 6e4), 0.3, elong=1.8)) for _ in range(2)) if p]
    # pioneer vegetation on an old bar, buried by new sand in the monitor year (natural)
    pion = []
    for b in bars[:2]:
        pp = b.buffer(35).difference(b).intersection(box(0, 0, side, side))
        if not pp.is_empty and pp.area > 5e3:
            pion.append(pp.difference(channel))
    scene.pioneer = [p for p in pion if not p.is_empty]  # type: ignore[attr-defined]
    scene.lookalikes["sandbar"] = bars + scene.pioneer  # type: ignore[attr-defined]

    # new scars
    n_mon = len(scene.dates) - n_baseline
    areas = lambda: float(np.exp(rng.uniform(np.log(0.4e4), np.log(25e4))))  # noqa: E731
    plan = (["river_pits"] * 3 + ["sediment_pit"] * 3 + ["pit_expansion"] * 3 + ["mine_on_regrowth"] * 2
            + ["pasture_rect"] * 2 + ["burnt"] * 2 + ["bare"] * 2 + ["grassy"] * 2 + ["smallholder"] * 2)
    rng.shuffle(plan)
    sid = 0
    def _new_scar_polygon(kind, a):
        poly = None
        if kind == "river_pits":
            def make():
                c = near_river(40 + np.sqrt(a) * 0.6, 120 + np.sqrt(a) * 0.6)
                parts = [_blob(rng, c, a / 3)]
                for _ in range(rng.integers(2, 5)):
                    cc = (c[0] + rng.normal(0, np.sqrt(a) * 0.5), c[1] + rng.normal(0, np.sqrt(a) * 0.5))
                    parts.append(_blob(rng, cc, a / 4, 0.3))
                return unary_union(parts).buffer(8).buffer(-8)
            poly = place(make, riverside=True)
        elif kind == "sediment_pit":
            poly = place(lambda: _blob(rng, near_river(60 + np.sqrt(a) * 0.6, 600) if rng.random() < 0.6 else anywhere(), a, 0.45),
                         riverside=True)
        elif kind == "mine_on_regrowth":
            hosts = scene.secondary + scene.scrub
            if hosts:
                host = hosts[rng.integers(len(hosts))]
                inner = host.buffer(-20)
                if not inner.is_empty:
                    pt = inner.representative_point()
                    cand = _blob(rng, (pt.x, pt.y), min(a, 0.6 * host.area), 0.35).intersection(host)
                    if cand.geom_type == "Polygon" and cand.area > 3000:
                        poly = cand
                        occupied.append(cand.buffer(1))
        elif kind == "pit_expansion":
            if old:
                base = old[rng.integers(len(old))]
                ang = rng.uniform(0, 2 * np.pi)
                r = np.sqrt(base.area / np.pi)
                c = (base.centroid.x + np.cos(ang) * r * 1.1, base.centroid.y + np.sin(ang) * r * 1.1)
                grow = _blob(rng, c, a, 0.4)
                cand = grow.difference(base.buffer(1)).difference(hard_river)
                if cand.geom_type == "MultiPolygon":
                    cand = max(cand.geoms, key=lambda g: g.area)
                others = [o for o in occupied if o is not base]
                if cand.area > 3000 and not any(cand.buffer(40).intersects(o) for o in others):
                    poly = cand
                    occupied.append(cand)
        else:  # clearings
            if kind == "pasture_rect":
                poly = place(lambda: _rect(rng, anywhere(), a, rng.uniform(1, 3.5), rng.uniform(0, 90)))
            elif kind == "smallholder":
                def make():
                    c = anywhere()
                    parts = [_rect(rng, (c[0] + rng.normal(0, 60), c[1] + rng.normal(0, 60)), a / 3, rng.uniform(1, 2), rng.uniform(0, 90)) for _ in range(3)]
                    return unary_union(parts).buffer(5).buffer(-5)
                poly = place(make)
            else:
                poly = place(lambda: _blob(rng, anywhere(), a, 0.3, elong=rng.uniform(1, 1.8)))
        return poly

    for kind in plan:
        for attempt in range(40):
            a = areas() * (0.85 ** (attempt // 4))
            poly = _new_scar_polygon(kind, a)
            if poly is not None and not poly.is_empty and poly.geom_type == "Polygon":
                break
        if poly is None or poly.is_empty or poly.geom_type != "Polygon":
            continue
        cls = "mining" if kind in MINING_KINDS else "clearing"
        onset = int(rng.integers(0, max(1, n_mon - 1)))
        scene.scars.append(Scar(sid, cls, kind, onset, poly, poly.area / 1e4))
        sid += 1
    return scene


def _ground_look(scene: Scene, t: int, static: dict, rng) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Surface reflectance of look ``t`` on the fine grid (no atmosphere), water mask, bright sediment."""
    H = W = static["H"]
    img = static["background"].copy()
    is_monitor = t >= scene.n_baseline
    high_water = scene.dates[t].month in (1, 2, 3, 4, 12)
    # river level: high water widens the channel and drowns the bars
    lvl = 25.0 if high_water else -rng.uniform(0, 12)
    line = scene.river_line  # type: ignore[attr-defined]
    chan = line.buffer(scene.river_half_w + lvl, cap_style=2)  # type: ignore[attr-defined]
    # bars migrate downstream (east) through the series, more in the monitor year
    bars = [affinity.translate(b, *static["bar_shift"][t]) for b in scene.bars]  # type: ignore[attr-defined]
    bar_m = _raster(bars, (H, W))
    chan_m = _raster(chan, (H, W))
    if high_water:  # bars drowned
        chan_m |= static["bar_swept"]
    # pioneer vegetation on bars: buried by fresh sand in the monitor year
    pion_m = static["pioneer"]
    if is_monitor:
        _paint(img, pion_m, static["spec"]["sand"], static["tex_soil"])
    if not high_water:
        _paint(img, bar_m & ~chan_m, static["spec"]["sand"], static["tex_soil"])
        wet_edge = bar_m & ~chan_m & ndimage.binary_dilation(chan_m, iterations=3)
        _paint(img, wet_edge, static["spec"]["wet_sand"], static["tex_soil"])
    _paint(img, chan_m, static["spec"]["river"], static["tex_water"])
    water = chan_m.copy()
    # seasonal water: the depressions flood at high water; further in the monitor year
    for poly, frac in zip(static["seasonal"], static["seasonal_frac"]):
        if high_water or (is_monitor and t == scene.n_baseline + 1):
            grow = 1.0 if is_monitor else 0.45
            m = _raster(poly if is_monitor else affinity.scale(poly, grow, grow), (H, W))
            _paint(img, m, static["spec"]["flood_water"], static["tex_water"])
            water |= m
    # new scars
    bright = static["old_bright"].copy()
    for scar, layers in zip(scene.scars, static["scar_layers"]):
        k = t - scene.n_baseline - scar.onset
        if k < 0:
            continue
        prep = scar.prep_looks
        for name, m, spec, tex in layers:
            if name.startswith("prep_") != (k < prep):  # felled ground before the digging
                continue
            if name == "pond" and k == prep:  # ponds fill a look after the digging starts
                _paint(img, m, static["spec"]["sediment_wet"], static["tex_soil"])
                continue
            _paint(img, m, spec, tex)
            if name == "pond":
                water |= m
            if name in ("sediment", "bare_bright"):
                bright |= m
    for m in static["old_ponds"]:
        water |= m
    return img, water, bright


def _scar_layers(scene: Scene, scar: Scar, shape, rng, spec_of, tex) -> list:
    """The surfaces a scar shows after its onset: list of (name, fine mask, spectrum, texture)."""
    m = _raster(scar.polygon, shape)
    out = []
    noise = _smooth_noise(rng, shape, rng.uniform(2, 5), 0, 1)
    if scar.cls == "mining":
        pond_share = {"river_pits": rng.uniform(0.2, 0.5), "sediment_pit": rng.uniform(0.0, 0.05),
                      "pit_expansion": rng.uniform(0.05, 0.35), "mine_on_regrowth": rng.uniform(0.0, 0.3)}[scar.kind]
        q = np.quantile(noise[m], [pond_share, pond_share + (1 - pond_share) * rng.uniform(0.3, 0.6)]) if m.any() else (0, 0)
        pond = m & (noise < q[0])
        wet = m & (noise >= q[0]) & (noise < q[1])
        dry = m & (noise >= q[1])
        pond_kind = rng.choice(["pond_turbid", "pond_clear", "pond_algae"], p=[0.6, 0.2, 0.2])
        # stripped topsoil and lateritic overburden piled beside the pits: 0-35 % of the dry ground
        n2 = _smooth_noise(rng, shape, rng.uniform(2, 4), 0, 1)
        over = dry & (n2 < np.quantile(n2[dry], rng.uniform(0.0, 0.35))) if dry.any() else dry
        dry = dry & ~over
        out.append(("overburden", over, spec_of(rng.choice(["laterite", "grey_soil"])), tex["soil"]))
        out.append(("sediment", dry, spec_of(rng.choice(["sediment_dry", "sediment_dry", "gravel"])), tex["soil"]))
        out.append(("sediment", wet, spec_of("sediment_wet"), tex["soil"]))
        # a few tree / regrowth islands left in larger mines
        if scar.area_ha > 3:
            isl = m & (noise > np.quantile(noise[m], 0.97))
            out.append(("island", isl, spec_of("secondary"), tex["veg"]))
        if pond.any():
            out.append(("pond", pond, spec_of(str(pond_kind)), tex["water"]))
        # a third of the mines are felled first and dug a look later (slash and bare soil)
        if rng.random() < 0.35:
            scar.prep_looks = 1
            out.insert(0, ("prep_slash", m & (noise < 0.6), spec_of("slash"), tex["veg"]))
            out.insert(1, ("prep_soil", m & (noise >= 0.6), spec_of("laterite"), tex["soil"]))
    else:
        kind = scar.kind
        if kind == "burnt":
            out.append(("char", m & (noise < 0.7), spec_of("char"), tex["soil"]))
            out.append(("ash", m & (noise >= 0.7), spec_of("ash"), tex["soil"]))
        elif kind == "bare":
            out.append(("bare", m, spec_of(rng.choice(["laterite", "grey_soil"])), tex["soil"]))
        elif kind == "grassy":
            out.append(("grass", m & (noise < 0.8), spec_of(rng.choice(["pasture", "dry_pasture"])), tex["veg"]))
            out.append(("bare", m & (noise >= 0.8), spec_of("laterite"), tex["soil"]))
        elif kind == "pasture_rect":
            out.append(("grass", m & (noise < 0.5), spec_of("dry_pasture"), tex["veg"]))
            out.append(("bare", m & (noise >= 0.5), spec_of("laterite"), tex["soil"]))
        else:  # smallholder: slash, burnt patches, bare, crop
            parts = np.digitize(noise, [0.3, 0.55, 0.8])
            for i, nm in enumerate(["slash", "char", "laterite", "crop"]):
                out.append((nm, m & (parts == i), spec_of(nm), tex["soil" if nm in ("char", "laterite") else "veg"]))
    return out


def render(scene: Scene) -> None:
    """Render every look on the fine grid: ground, then haze, clouds, shadows, nodata, noise."""
    rng = np.random.default_rng(scene.seed + 10_000)
    side_px = scene.size_px10 * 2 + 6  # fine pixels (+ a margin so the 30 m grid fits)
    H = W = side_px
    shape = (H, W)

    def spec_of(name):
        return _spectrum(rng, str(name))

    tex = {"veg": np.exp(0.10 * _smooth_noise(rng, shape, 1.2)) * np.exp(0.05 * rng.standard_normal(shape)),
           "soil": np.exp(0.12 * _smooth_noise(rng, shape, 2.0)) * np.exp(0.04 * rng.standard_normal(shape)),
           "water": np.exp(0.08 * _smooth_noise(rng, shape, 6.0))}
    tex = {k: v.astype(np.float32) for k, v in tex.items()}
    spec = {name: spec_of(name) for name in SPECTRA}

    # background: forest with canopy texture and gaps, then covers
    img = np.empty((6, H, W), np.float32)
    _paint(img, np.ones(shape, bool), spec["forest"], tex["veg"])
    gaps = _smooth_noise(rng, shape, 1.0, 0, 1) > 0.93
    _mix_paint(img, gaps, spec["secondary"], np.full(shape, 0.6, np.float32))
    for p in scene.secondary:  # type: ignore[attr-defined]
        _paint(img, _raster(p, shape), spec_of("secondary"), tex["veg"])
    for p in scene.scrub:  # type: ignore[attr-defined]
        _paint(img, _raster(p, shape), spec_of("scrub"), tex["veg"])
    for p in scene.pastures:  # type: ignore[attr-defined]
        _paint(img, _raster(p, shape), spec_of(rng.choice(["pasture", "dry_pasture"])), tex["veg"])
    old_bright = np.zeros(shape, bool)
    old_ponds = []
    for p in scene.old_mines:  # type: ignore[attr-defined]
        m = _raster(p, shape)
        n = _smooth_noise(rng, shape, 3, 0, 1)
        pond, regrow = m & (n < 0.3), m & (n > 0.8)
        sed = m & ~pond & ~regrow
        _paint(img, sed, spec_of("sediment_dry"), tex["soil"])
        _paint(img, pond, spec_of("pond_turbid" if rng.random() < 0.5 else "pond_algae"), tex["water"])
        _paint(img, regrow, spec_of("tailings_regrowth"), tex["veg"])
        old_bright |= sed
        old_ponds.append(pond)
    # the ground the bars sweep through the series: wet sand and mud when no bar sits on it
    n_looks = len(scene.dates)
    bar_shift = [(t * rng.uniform(6, 10) + (40 if t >= scene.n_baseline else 0), rng.uniform(-3, 3))
                 for t in range(n_looks)]
    swept = unary_union([affinity.translate(b, *sh) for b in scene.bars for sh in bar_shift])  # type: ignore[attr-defined]
    bar_swept = _raster(swept, shape) if not swept.is_empty else np.zeros(shape, bool)
    _paint(img, bar_swept, spec_of("wet_sand"), tex["soil"])
    pioneer = _raster(scene.pioneer, shape) if scene.pioneer else np.zeros(shape, bool)  # type: ignore[attr-defined]
    pioneer &= ~bar_swept
    _paint(img, pioneer, spec_of("pioneer"), tex["veg"])
    seasonal = scene.lookalikes.get("seasonal_water", [])
    for p in seasonal:  # grassy swamp in the dry season
        _paint(img, _raster(p, shape), spec_of("pasture"), tex["veg"])

    static = {"H": H, "background": img, "spec": spec, "tex_soil": tex["soil"], "tex_water": tex["water"],
              "pioneer": pioneer, "seasonal": seasonal, "bar_shift": bar_shift, "bar_swept": bar_swept, "seasonal_frac": [1.0] * len(seasonal),
              "old_bright": old_bright, "old_ponds": old_ponds,
              "scar_layers": [_scar_layers(scene, s, shape, rng, spec_of, tex) for s in scene.scars]}

    n = len(scene.dates)
    haze_look = int(rng.integers(1, n))
    stripe_look = int(rng.integers(0, n))
    for t in range(n):
        ground, water, bright = _ground_look(scene, t, static, rng)
        # mild phenology of the vegetation (dry-season NIR dip), calibration gains per band
        season = 1.0 - (0.04 if scene.dates[t].month in (8, 9) else 0.0)
        ground[3] *= season
        # haze: additive path radiance, strongest in blue, smooth in space
        if t == haze_look:
            h = _smooth_noise(rng, shape, 80, 0.2, 1.0) * rng.uniform(0.6, 1.0)
            add = np.array((0.07, 0.05, 0.035, 0.018, 0.006, 0.003), np.float32)
            ground = ground * (1 - 0.12 * h) + add[:, None, None] * h
        # clouds: thresholded smooth noise; alpha ramps at the edges; shadows offset
        cover = rng.uniform(0.0, 0.3) if t not in (scene.n_baseline - 1, n - 1) else rng.uniform(0.0, 0.08)
        field_ = _smooth_noise(rng, shape, rng.uniform(15, 35), 0, 1)
        thr = np.quantile(field_, 1 - cover) if cover > 0.005 else 2.0
        alpha = np.clip((field_ - thr) / 0.06, 0, 1) ** 0.8
        dx, dy = int(rng.integers(30, 80)), int(rng.integers(-60, 60))
        shadow = np.roll(np.roll(alpha, dy, 0), dx, 1) * (1 - alpha)
        ground = ground * (1 - 0.6 * shadow)[None]
        ground = ground * (1 - alpha)[None] + CLOUD[:, None, None] * rng.uniform(0.85, 1.15) * alpha[None]
        # imperfect mask: cores flagged; soft edges of some clouds left clear; part of the shadow
        lab, nlab = ndimage.label(alpha > 0.05)
        keep_edges = rng.random(nlab + 1) < 0.5
        mcloud = (alpha > 0.55) | ((alpha > 0.2) & keep_edges[lab])
        mshadow = (shadow > 0.35) & (rng.random() < 0.8)
        # SCL calls some bright sediment cloud (a known SCL confusion over sand)
        if rng.random() < 0.5:
            mcloud |= bright & (_smooth_noise(rng, shape, 4, 0, 1) > 0.75)
        nodata = np.zeros(shape, bool)
        if t == stripe_look:
            yy, xx = np.mgrid[0:H, 0:W]
            off = rng.uniform(0.2, 0.8) * W
            nodata = np.abs(xx - 0.25 * yy - off) < rng.uniform(40, 90)
        scene.fine_refl.append(ground.astype(np.float32))
        scene.fine_cloud.append(alpha.astype(np.float32))
        scene.fine_shadow.append(shadow.astype(np.float32))
        scene.fine_nodata.append(nodata)
        scene.mask_cloud.append(mcloud)
        scene.mask_shadow.append(mshadow)
        scene.bright_sediment.append(bright)
        scene.water.append(water)
    scene.haze_look, scene.stripe_look = haze_look, stripe_look  # type: ignore[attr-defined]


# ------------------------------------------------------------------------------------ resampling

def _block(a: np.ndarray, off: int, k: int, n: int) -> np.ndarray:
    """Mean over k×k fine blocks starting at fine pixel ``off``: n output pixels a side."""
    sub = a[..., off:off + n * k, off:off + n * k]
    shp = sub.shape[:-2] + (n, k, n, k)
    return sub.reshape(shp).mean(axis=(-3, -1))


def _block_any(a: np.ndarray, off: int, k: int, n: int, share: float = 0.5) -> np.ndarray:
    return _block(a.astype(np.float32), off, k, n) >= share


@dataclass
class Look:
    date: dt.date
    refl: np.ndarray  # (6, n, n) reflectance, NaN nodata
    cloud: np.ndarray  # bool: mask says cloud
    shadow: np.ndarray
    water: np.ndarray
    bright: np.ndarray
    nodata: np.ndarray
    res: float
    origin: tuple[float, float]


def looks_at(scene: Scene, res: float, rng) -> list[Look]:
    """Every look averaged to ``res`` (10, 20 or 30 m), with per-look gains, offsets and noise."""
    k = int(round(res / FINE_M))
    off = 3 if res == 30 else 0  # Landsat grid: origin 15 m in, on odd multiples of 15 m
    n = (scene.size_px10 * 2) // k if res != 30 else (scene.size_px10 * 2) // 6
    out = []
    for t, date in enumerate(scene.dates):
        refl = _block(scene.fine_refl[t], off, k, n)
        gains = rng.normal(1.0, 0.04, 6)[:, None, None]
        offs = rng.normal(0.0, 0.004, 6)[:, None, None]
        noise = rng.normal(0, rng.uniform(0.002, 0.006), refl.shape) * (1 + 2 * refl)
        refl = np.clip(refl * gains + offs + noise, -0.01, 1.2).astype(np.float32)
        nodata = _block_any(scene.fine_nodata[t], off, k, n, 0.01)
        refl[:, nodata] = np.nan
        out.append(Look(date, refl, _block_any(scene.mask_cloud[t], off, k, n), _block_any(scene.mask_shadow[t], off, k, n),
                        _block_any(scene.water[t], off, k, n), _block_any(scene.bright_sediment[t], off, k, n), nodata,
                        res, (X0 + off * FINE_M, Y0 - off * FINE_M)))
    return out


def truth_raster(scene: Scene, res: float = 10.0) -> dict[str, np.ndarray]:
    """Scar ids (−1 none) and look-alike masks on the 10 m truth grid (pixel ≥ half covered)."""
    shape = (scene.size_px10 * 2 + 6,) * 2
    n = scene.size_px10
    ids = np.full((n, n), -1, np.int32)
    for s in scene.scars:
        ids[_block_any(_raster(s.polygon, shape), 0, 2, n)] = s.id
    look = {}
    for name, polys in scene.lookalikes.items():
        look[name] = _block_any(_raster(polys, shape), 0, 2, n) if polys else np.zeros((n, n), bool)
    look["cloud"] = np.zeros((n, n), bool)
    for t in range(scene.n_baseline, len(scene.dates)):
        look["cloud"] |= _block_any(scene.fine_cloud[t] > 0.05, 0, 2, n) | _block_any(scene.fine_shadow[t] > 0.1, 0, 2, n)
    look["old_mining"] = _block_any(_raster(scene.old_mines, shape), 0, 2, n)  # type: ignore[attr-defined]
    return {"scar_id": ids, **{f"lookalike_{k}": v for k, v in look.items()}}


# -------------------------------------------------------------------------------------- encodings

ENCODINGS = ("earth-search", "planetary-computer", "landsat")
REGIMES = ("dense", "composites")
PC_KEYS = {"blue": "B02", "green": "B03", "red": "B04", "nir": "B08", "swir16": "B11", "swir22": "B12"}
LS_KEYS = {"blue": "blue", "green": "green", "red": "red", "nir": "nir08", "swir16": "swir16", "swir22": "swir22"}
_to_lonlat = Transformer.from_crs(EPSG, 4326, always_xy=True)


def _write_tif(path: Path, arr: np.ndarray, res: float, origin, epsg: int, dtype, nodata) -> None:
    tf = rasterio.transform.from_origin(origin[0], origin[1], res, res)
    prof = dict(driver="COG", width=arr.shape[1], height=arr.shape[0], count=1, dtype=dtype, crs=f"EPSG:{epsg}",
                transform=tf, nodata=nodata, compress="deflate", blocksize=256)
    with rasterio.open(path, "w", **prof) as dst:
        dst.write(arr.astype(dtype), 1)


def _footprint(origin, size_m):
    x0, y0 = origin
    ring = [(x0, y0), (x0 + size_m, y0), (x0 + size_m, y0 - size_m), (x0, y0 - size_m), (x0, y0)]
    return Polygon([_to_lonlat.transform(x, y) for x, y in ring])


def _scl(look10: Look, look20: Look) -> np.ndarray:
    """SCL at 20 m from the 20 m look: the mask's cloud and shadow, water, vegetation, bare."""
    r = look20.refl
    ndvi = (r[3] - r[2]) / (r[3] + r[2] + 1e-6)
    scl = np.where(ndvi > 0.4, SCL_VEG, SCL_BARE).astype(np.uint8)
    scl[look20.water] = SCL_WATER
    scl[look20.shadow] = SCL_SHADOW
    vis = np.nan_to_num(r[:3]).mean(0)
    scl[look20.cloud & (vis > 0.3)] = SCL_CLOUD_HIGH
    scl[look20.cloud & (vis <= 0.3)] = SCL_CLOUD_MED
    scl[np.isnan(r).any(0)] = SCL_NODATA
    return scl


def _qa_pixel(look: Look) -> np.ndarray:
    qa = np.zeros(look.cloud.shape, np.uint16)
    clear = ~look.cloud & ~look.shadow
    qa |= (clear.astype(np.uint16) << 6)
    qa |= (look.water & clear).astype(np.uint16) << 7
    qa |= look.cloud.astype(np.uint16) << 3
    qa |= (ndimage.binary_dilation(look.cloud, iterations=1) & ~look.cloud).astype(np.uint16) << 1
    qa |= look.shadow.astype(np.uint16) << 4
    qa |= np.where(look.cloud, 3 << 8, 1 << 8).astype(np.uint16)  # cloud confidence bits
    qa[np.isnan(look.refl).any(0)] = 1  # fill
    return qa


def _composite(looks: list[Look], use_mask: bool = True) -> np.ndarray:
    """Per-pixel median of the looks where the (imperfect) mask says clear; else of all valid looks."""
    stack = np.stack([lk.refl for lk in looks])  # (t, 6, y, x)
    ok = np.stack([~(lk.cloud | lk.shadow) for lk in looks])[:, None] if use_mask else True
    masked = np.where(ok, stack, np.nan)
    with np.errstate(all="ignore"):
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            med = np.nanmedian(masked, axis=0)
            fallback = np.nanmedian(stack, axis=0)
    return np.where(np.isnan(med), fallback, med).astype(np.float32)


def write_encoding(scene: Scene, encoding: str, regime: str, out_dir: Path) -> Path:
    """Write the scene's looks as ``encoding`` items in a local static catalog; returns catalog.json."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(scene.seed * 7 + ENCODINGS.index(encoding) * 101 + REGIMES.index(regime))
    landsat = encoding == "landsat"
    catalog = pystac.Catalog(id=f"blind-{scene.seed}-{encoding}-{regime}", description="blind benchmark scene")
    if landsat:
        looks = {30: looks_at(scene, 30, rng)}
    else:
        looks = {10: looks_at(scene, 10, rng), 20: looks_at(scene, 20, rng)}
    groups: list[tuple[str, dict[int, Look], bool, tuple[dt.date, dt.date] | None]] = []
    nb = scene.n_baseline
    if regime == "dense":
        for t, date in enumerate(scene.dates):
            groups.append((date.isoformat(), {r: ls[t] for r, ls in looks.items()}, True, None))
    else:
        periods = {"baseline": (slice(0, nb), (dt.date(2021, 1, 1), dt.date(2021, 12, 31))),
                   "monitor": (slice(nb, None), (dt.date(2022, 1, 1), dt.date(2022, 12, 31)))}
        for name, (sl, span) in periods.items():
            comp = {}
            for r, ls in looks.items():
                refl = _composite(ls[sl])
                first = ls[sl][0]
                comp[r] = Look(span[0], refl, np.zeros_like(first.cloud), np.zeros_like(first.cloud),
                               first.water, first.bright, np.isnan(refl).any(0), first.res, first.origin)
            groups.append((name, comp, False, span))
    for gi, (tag, lk, with_mask, span) in enumerate(groups):
        date = lk[min(lk)].date
        item_dir = out_dir / f"{encoding}-{tag}"
        item_dir.mkdir(exist_ok=True)
        base_look = lk[min(lk)]
        size_m = base_look.refl.shape[-1] * base_look.res
        epsg = EPSG
        origin = base_look.origin
        if landsat:  # USGS: southern scenes in the north form of the zone (negative northings)
            epsg = EPSG - 100
            origin = (origin[0], origin[1] - 10_000_000.0)
        geom = mapping(_footprint(base_look.origin, size_m))
        cloud_pct = float(100 * np.mean(base_look.cloud)) if with_mask else 0.0
        props: dict = {"eo:cloud_cover": round(cloud_pct, 3), "proj:epsg": epsg}
        if span is not None:
            props["start_datetime"] = f"{span[0].isoformat()}T00:00:00Z"
            props["end_datetime"] = f"{span[1].isoformat()}T23:59:59Z"
            when = None
        else:
            when = dt.datetime.combine(date, dt.time(14, 55), tzinfo=dt.timezone.utc)
        assets = {}
        if encoding == "earth-search":
            iid = f"S2{'AB'[gi % 2]}_19LCD_{date:%Y%m%d}_0_L2A" if span is None else f"blind_es_{tag}_composite"
            props.update({"platform": f"sentinel-2{'ab'[gi % 2]}", "constellation": "sentinel-2", "instruments": ["msi"],
                          "s2:processing_baseline": "05.09" if date.year >= 2022 else "03.01",
                          "earthsearch:boa_offset_applied": True, "mgrs:utm_zone": 19, "mgrs:latitude_band": "L",
                          "mgrs:grid_square": "CD"})
            for b in BANDS:
                res = 10 if b in ("blue", "green", "red", "nir") else 20
                src = lk[res]
                dn = np.where(np.isnan(src.refl[BANDS.index(b)]), 0,
                              np.clip(np.round((src.refl[BANDS.index(b)] + 0.1) / 1e-4), 1, 32767))
                p = item_dir / f"{b}.tif"
                _write_tif(p, dn, res, src.origin, epsg, "uint16", 0)
                assets[b] = (p, res, src, {"raster:bands": [{"nodata": 0, "data_type": "uint16", "bits_per_sample": 15,
                                                            "spatial_resolution": res, "scale": 0.0001, "offset": -0.1}],
                                           "roles": ["data", "reflectance"]})
            if with_mask:
                p = item_dir / "scl.tif"
                _write_tif(p, _scl(lk[10], lk[20]), 20, lk[20].origin, epsg, "uint8", 0)
                assets["scl"] = (p, 20, lk[20], {"raster:bands": [{"nodata": 0, "data_type": "uint8", "spatial_resolution": 20}],
                                                "roles": ["data", "reflectance"]})
        elif encoding == "planetary-computer":
            baseline = "04.00" if date >= dt.date(2022, 1, 25) else "03.01"
            off = 0.1 if baseline >= "04.00" else 0.0
            iid = (f"S2{'AB'[gi % 2]}_MSIL2A_{date:%Y%m%d}T145731_R110_T19LCD_{date:%Y%m%d}T201500"
                   if span is None else f"blind_pc_{tag}_composite")
            props.update({"platform": f"Sentinel-2{'AB'[gi % 2]}", "constellation": "Sentinel 2", "instruments": ["msi"],
                          "s2:processing_baseline": baseline, "s2:mgrs_tile": "19LCD", "s2:product_type": "S2MSI2A"})
            for b, key in PC_KEYS.items():
                res = 10 if b in ("blue", "green", "red", "nir") else 20
                src = lk[res]
                dn = np.where(np.isnan(src.refl[BANDS.index(b)]), 0,
                              np.clip(np.round((src.refl[BANDS.index(b)] + off) / 1e-4), 1, 65535))
                p = item_dir / f"{key}.tif"
                _write_tif(p, dn, res, src.origin, epsg, "uint16", 0)
                assets[key] = (p, res, src, {"gsd": res, "roles": ["data"]})
            if with_mask:
                p = item_dir / "SCL.tif"
                _write_tif(p, _scl(lk[10], lk[20]), 20, lk[20].origin, epsg, "uint8", 0)
                assets["SCL"] = (p, 20, lk[20], {"gsd": 20.0, "roles": ["data"]})
        else:
            src = lk[30]
            plat = "landsat-8" if gi % 2 == 0 else "landsat-9"
            iid = (f"LC0{8 + gi % 2}_L2SP_003069_{date:%Y%m%d}_02_T1" if span is None else f"blind_ls_{tag}_composite")
            props.update({"platform": plat, "instruments": ["oli", "tirs"], "gsd": 30,
                          "landsat:wrs_path": "003", "landsat:wrs_row": "069", "landsat:collection_number": "02",
                          "landsat:correction": "L2SP"})
            for b, key in LS_KEYS.items():
                dn = np.where(np.isnan(src.refl[BANDS.index(b)]), 0,
                              np.clip(np.round((src.refl[BANDS.index(b)] + 0.2) / 2.75e-5), 1, 65535))
                p = item_dir / f"{key}.tif"
                _write_tif(p, dn, 30, origin, epsg, "uint16", 0)
                assets[key] = (p, 30, src, {"raster:bands": [{"scale": 2.75e-05, "nodata": 0, "offset": -0.2,
                                                             "data_type": "uint16", "spatial_resolution": 30}],
                                           "roles": ["data", "reflectance"]})
            if with_mask:
                p = item_dir / "qa_pixel.tif"
                _write_tif(p, _qa_pixel(src), 30, origin, epsg, "uint16", 1)
                assets["qa_pixel"] = (p, 30, src, {"roles": ["cloud", "cloud-shadow"],
                                                   "raster:bands": [{"nodata": 1, "data_type": "uint16", "spatial_resolution": 30}]})
        collection = "landsat-c2-l2" if landsat else "sentinel-2-l2a"
        item = pystac.Item(id=iid, geometry=geom, bbox=list(_footprint(base_look.origin, size_m).bounds),
                           datetime=when, properties=props, collection=collection)
        for key, (p, res, src, extra) in assets.items():
            n = src.refl.shape[-1]
            o = origin if landsat else src.origin
            fields = {"proj:shape": [n, n], "proj:transform": [res, 0.0, o[0], 0.0, -res, o[1]], **extra}
            roles = fields.pop("roles")
            item.add_asset(key, pystac.Asset(href=str(p.resolve()), media_type=pystac.MediaType.COG, roles=roles,
                                             extra_fields=fields))
        catalog.add_item(item)
    catalog.normalize_hrefs(str(out_dir))
    for item in catalog.get_items():
        for a in item.assets.values():
            a.href = str(Path(a.href).resolve())
    catalog.make_all_asset_hrefs_relative()
    catalog.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)
    return out_dir / "catalog.json"


def write_truth(scene: Scene, out_dir: Path) -> Path:
    """truth.json (scars, look-alikes, dates, grid) and truth.npz (10 m rasters)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out_dir / "truth.npz", **truth_raster(scene))
    meta = {
        "seed": scene.seed, "epsg": EPSG, "origin": [X0, Y0], "resolution_m": 10.0, "size_px": scene.size_px10,
        "dates": [d.isoformat() for d in scene.dates], "n_baseline": scene.n_baseline,
        "haze_look": getattr(scene, "haze_look", None), "stripe_look": getattr(scene, "stripe_look", None),
        "scars": [{"id": s.id, "class": s.cls, "kind": s.kind, "onset_look": scene.n_baseline + s.onset,
                   "onset_date": scene.dates[scene.n_baseline + s.onset].isoformat(), "area_ha": round(s.area_ha, 3),
                   "prep_looks": s.prep_looks,
                   "wkt_scene_m": s.polygon.wkt} for s in scene.scars],
    }
    (out_dir / "truth.json").write_text(json.dumps(meta, indent=1))
    return out_dir / "truth.json"


def area_geojson(scene: Scene, path: Path, margin_m: float = 150.0) -> Path:
    """The protected area: the scene less a margin, in lon/lat."""
    side = scene.size_px10 * 10.0
    x0, y0 = X0 + margin_m, Y0 - margin_m
    ring = [(x0, y0), (x0 + side - 2 * margin_m, y0), (x0 + side - 2 * margin_m, y0 - side + 2 * margin_m),
            (x0, y0 - side + 2 * margin_m), (x0, y0)]
    poly = Polygon([_to_lonlat.transform(x, y) for x, y in ring])
    fc = {"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": mapping(poly),
                                                     "properties": {"area_id": "blind-md", "name": "Blind Madre de Dios"}}]}
    Path(path).write_text(json.dumps(fc))
    return Path(path)


def make_scene(seed: int, size_px10: int = 600, n_baseline: int = 4, n_monitor: int = 6) -> Scene:
    scene = build_layout(seed, size_px10, n_baseline, n_monitor)
    render(scene)
    return scene


def scene_point(scene: Scene, x_m: float, y_m: float) -> Point:
    """Scene metres (x right, y down) -> UTM point."""
    return Point(X0 + x_m, Y0 - y_m)
