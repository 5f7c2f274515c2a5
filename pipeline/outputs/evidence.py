"""Evidence bundle per alert: ``<out>/evidence/<alert_id>/`` for the agency and the court file.

Each bundle holds:

- ``before_rgb.png``, ``before_swir.png``, ``after_rgb.png``, ``after_swir.png``: chips around
  the scar (true colour red-green-blue; SWIR false colour swir22-nir-red, where bare ground and
  mining ponds stand out) from the last clear look before the change and the first clear look
  that shows it, the scar outlined in yellow;
- ``ficha.html``: a one-page "ficha técnica" (Spanish by default, English with ``lang="en"``):
  location, area, class, confidence, dates and the date bracket, protected area and zone, the
  STAC item ids, the chips and a locator map (inline SVG);
- ``manifest.json``: the alert, the two looks (dates, STAC item ids), and the SHA-256 of every
  other file of the bundle, written last.

Chips are read after detection straight from the STAC items' assets (rasterio, warped to the
area's UTM grid), so the lazy reflectance cube of detection never has to be kept. Reading and
writing are at the bottom; everything above them is pure.
"""

from __future__ import annotations

import datetime as dt
import html
import logging
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
import rasterio.features
import shapely
from rasterio.transform import from_origin
from rasterio.warp import Resampling, reproject

from ..files import child_path, current_path, sha256_of, write_atomic, write_json_atomic, write_text_atomic
from .looks import MIN_COVERAGE, LookCoverage, choose_looks, scar_coverage
from .stretch import FIXED_STRETCH, apply_stretch, stretch_manifest
from ..sources.load import href_patcher
from ..sources.registry import resolve_profile

log = logging.getLogger(__name__)

CHIP_MARGIN_M = 150.0
"""Context around the scar's bounding box on each side, metres."""
MIN_CHIP_M = 600.0
"""Smallest chip edge, metres."""
COMBOS = {combo: stretch.bands for combo, stretch in FIXED_STRETCH.items()}
"""Chip kinds: true colour (red, green, blue) and SWIR false colour (swir22, nir, red)."""
CANDIDATES_BEFORE, CANDIDATES_AFTER = 6, 4
"""Looks read on each side of the change, nearest first, until one shows the scar clear."""
OUTLINE_RGB = (255, 230, 0)


# --- pure ----------------------------------------------------------------------------------


def chip_bounds(bounds_utm: tuple[float, float, float, float], resolution_m: float) -> tuple[float, ...]:
    """A square window around a scar's bounds, snapped to the pixel grid (EPSG of the area)."""
    minx, miny, maxx, maxy = bounds_utm
    cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
    n_px = int(np.ceil(max(MIN_CHIP_M, max(maxx - minx, maxy - miny) + 2 * CHIP_MARGIN_M) / resolution_m))
    x0 = float(np.floor((cx - n_px * resolution_m / 2) / resolution_m) * resolution_m)
    y0 = float(np.floor((cy - n_px * resolution_m / 2) / resolution_m) * resolution_m)
    return x0, y0, x0 + n_px * resolution_m, y0 + n_px * resolution_m


def draw_outline(rgb: np.ndarray, outline: np.ndarray) -> np.ndarray:
    """Paint the boolean ``outline`` pixels yellow."""
    painted = rgb.copy()
    painted[outline] = OUTLINE_RGB
    return painted


def encode_png(rgb: np.ndarray, scale: int = 1) -> bytes:
    """PNG bytes of a uint8 (y, x, 3) image, optionally enlarged by pixel repetition."""
    if scale > 1:
        rgb = rgb.repeat(scale, axis=0).repeat(scale, axis=1)
    height, width, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[row].tobytes() for row in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def svg_path(geometry: shapely.Geometry, to_px) -> str:
    """SVG path data of a (multi)polygon's rings through ``to_px(x, y) -> (px, py)``."""
    parts = []
    for polygon in shapely.get_parts(geometry):
        if polygon.is_empty or polygon.geom_type != "Polygon":
            continue
        for ring in [polygon.exterior, *polygon.interiors]:
            points = [to_px(x, y) for x, y in ring.coords]
            parts.append("M" + " L".join(f"{px:.1f},{py:.1f}" for px, py in points) + " Z")
    return " ".join(parts)


def locator_svg(zones: list[tuple[str, shapely.Geometry]], scar: shapely.Geometry, size_px: int = 260) -> str:
    """An inline SVG locator map: the zones (inside / buffer) and a marker on the scar.

    Geometries in one projected CRS (metres, y up); the map frames the zones.
    """
    union = shapely.union_all([g for _, g in zones] + [scar])
    minx, miny, maxx, maxy = union.bounds
    span = max(maxx - minx, maxy - miny, 1.0)

    def to_px(x: float, y: float) -> tuple[float, float]:
        return (x - minx) / span * (size_px - 10) + 5, (maxy - y) / span * (size_px - 10) + 5

    fills = {"inside": "#b8e0b0", "buffer": "#f3e7b3"}
    shapes = [f'<path d="{svg_path(g, to_px)}" fill="{fills.get(z, "#ddd")}" stroke="#5a7d4f" '
              f'stroke-width="0.8" fill-rule="evenodd"/>' for z, g in sorted(zones, key=lambda t: t[0] != "buffer")]
    cx, cy = to_px(scar.centroid.x, scar.centroid.y)
    marker = (f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="7" fill="none" stroke="#d7191c" stroke-width="2.5"/>'
              f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="2" fill="#d7191c"/>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{size_px}" height="{size_px}" '
            f'viewBox="0 0 {size_px} {size_px}" role="img">{"".join(shapes)}{marker}</svg>')


LABELS = {
    "es": {
        "title": "Ficha técnica de alerta", "alert": "Alerta", "class": "Clase", "probability": "Probabilidad",
        "confidence": "Confianza", "area": "Superficie (ha)", "status": "Estado",
        "first": "Primera detección", "last": "Última observación", "bracket": "Intervalo del cambio",
        "between": "entre", "and": "y", "area_name": "Área protegida", "zone": "Zona", "location": "Ubicación (lat, lon)",
        "before": "Antes", "after": "Después", "rgb": "color verdadero", "swir": "falso color SWIR",
        "items": "Escenas STAC", "locator": "Ubicación en el área", "run": "Corrida", "model": "Modelo",
        "zones": {"inside": "dentro del área", "buffer": "zona de amortiguamiento"},
        "classes": {"mining": "minería", "clearing": "deforestación", "other": "otro"},
        "statuses": {"new": "nueva", "ongoing": "en curso", "expanding": "en expansión"},
        "confidences": {"low": "baja", "nominal": "media", "high": "alta"},
        "coverage": "del área afectada visible y despejada", "unknown": "sin observación despejada previa",
        "note": "Generado por cec-pipeline a partir de imágenes públicas Sentinel-2/Landsat. "
                "Las sumas SHA-256 de cada archivo están en manifest.json.",
    },
    "en": {
        "title": "Alert fact sheet", "alert": "Alert", "class": "Class", "probability": "Probability",
        "confidence": "Confidence", "area": "Area (ha)", "status": "Status",
        "first": "First detected", "last": "Last observed", "bracket": "Change date bracket",
        "between": "between", "and": "and", "area_name": "Protected area", "zone": "Zone", "location": "Location (lat, lon)",
        "before": "Before", "after": "After", "rgb": "true colour", "swir": "SWIR false colour",
        "items": "STAC items", "locator": "Location in the area", "run": "Run", "model": "Model",
        "zones": {"inside": "inside the area", "buffer": "buffer zone"},
        "classes": {"mining": "mining", "clearing": "clearing", "other": "other"},
        "statuses": {"new": "new", "ongoing": "ongoing", "expanding": "expanding"},
        "confidences": {"low": "low", "nominal": "nominal", "high": "high"},
        "coverage": "of the scar seen clear", "unknown": "no earlier clear look",
        "note": "Made by cec-pipeline from public Sentinel-2/Landsat imagery. "
                "The SHA-256 of every file is in manifest.json.",
    },
}


@dataclass(frozen=True)
class Look:
    """One dated look used as evidence."""

    date: str
    items: tuple[str, ...]
    coverage: float
    """Clear scar pixels / scar pixels (nodata is not clear)."""
    clear_share: float = 1.0
    """Clear scar pixels / scar pixels with data."""
    reason: str = ""
    """Why this look was chosen."""


def ficha_html(alert: dict, before: Look, after: Look, locator: str, lang: str = "es",
               bracket: tuple[str | None, str] | None = None) -> str:
    """The one-page fact sheet (self-contained but for the chip PNGs beside it).

    ``bracket``: (last clear look without the change or None, first look with it) from the
    detection; without it the chips' dates are shown.
    """
    t = LABELS[lang]
    e = lambda v: html.escape(str(v))  # noqa: E731
    start, end = bracket if bracket else (before.date, after.date)
    rows = [
        (t["class"], t["classes"].get(alert["class"], alert["class"])),
        (t["probability"], f"{float(alert['probability']):.2f}"),
        (t["confidence"], t["confidences"].get(alert["confidence"], alert["confidence"])),
        (t["status"], t["statuses"].get(alert["status"], alert["status"])),
        (t["area"], f"{float(alert['area_ha']):.2f}"),
        (t["first"], alert["first_detected"]),
        (t["last"], alert["last_observed"]),
        (t["bracket"], f"{t['between']} {start or t['unknown']} {t['and']} {end}"),
        (t["area_name"], f"{alert['protected_area_name']} ({alert['protected_area_id']})"),
        (t["zone"], t["zones"].get(alert["zone"], alert["zone"])),
        (t["location"], f"{float(alert['centroid_lat']):.5f}, {float(alert['centroid_lon']):.5f}"),
        (t["items"], "; ".join([*before.items, *after.items])),
        (t["run"], alert["run_id"]),
        (t["model"], alert["model_version"]),
    ]
    table = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in rows)
    chips = "".join(
        f'<figure><img src="{when}_{combo}.png" alt="{e(t[when])} {e(t[combo])}" width="220" height="220">'
        f"<figcaption>{e(t[when])} ({e(look.date)}), {e(t[combo])}; {look.coverage:.0%} {e(t['coverage'])}"
        f"</figcaption></figure>"
        for when, look in (("before", before), ("after", after)) for combo in ("rgb", "swir")
    )
    return f"""<!DOCTYPE html>
<html lang="{lang}"><head><meta charset="utf-8"><title>{e(t['title'])} {e(alert['alert_id'])}</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; max-width: 60em; color: #222; }}
h1 {{ font-size: 1.3em; margin-bottom: 0.2em; }} table {{ border-collapse: collapse; }}
th, td {{ text-align: left; padding: 2px 10px 2px 0; vertical-align: top; font-size: 0.9em; }}
.top {{ display: flex; gap: 2em; }} .chips {{ display: flex; flex-wrap: wrap; gap: 8px; }}
figure {{ margin: 0; font-size: 0.8em; }} img {{ image-rendering: pixelated; border: 1px solid #999; }}
.note {{ font-size: 0.75em; color: #555; }}
@media print {{ body {{ margin: 0.5cm; }} }}
</style></head><body>
<h1>{e(t['title'])}: {e(alert['alert_id'])}</h1>
<div class="top"><table>{table}</table>
<figure>{locator}<figcaption>{e(t['locator'])}</figcaption></figure></div>
<div class="chips">{chips}</div>
<p class="note">{e(t['note'])}</p>
</body></html>
"""


# --- I/O: reading chips and writing bundles -------------------------------------------------


def read_look(items: list, bounds: tuple[float, ...], epsg: int, resolution_m: float,
              patch_url=None) -> tuple[dict, np.ndarray, np.ndarray]:
    """Reflectance chips of one look on a chip grid (EPSG:``epsg``, ``resolution_m`` pixels);
    see :func:`read_grid`."""
    minx, miny, maxx, maxy = bounds
    shape = (int(round((maxy - miny) / resolution_m)), int(round((maxx - minx) / resolution_m)))
    return read_grid(items, shape, from_origin(minx, maxy, resolution_m, resolution_m), f"EPSG:{epsg}", patch_url)


def read_grid(items: list, shape: tuple[int, int], transform, crs: str,
              patch_url=None) -> tuple[dict, np.ndarray, np.ndarray]:
    """Reflectance of one look through its source profile, and its clear and valid masks.

    Returns band -> float32 (y, x) reflectance (NaN = nodata), ``clear`` (the profile's clear
    rule, the one detection uses; everything valid for items without a mask band) and ``valid``
    (any data). ``items`` (pystac) of the same look are mosaicked in order; each asset is
    warped to the grid (``shape``, ``transform``, ``crs``; nearest neighbour) and scaled by the
    profile (``raster:bands`` first).
    """
    bands = {b: np.full(shape, np.nan, dtype="float32") for b in ("red", "green", "blue", "nir", "swir22")}
    clear = np.zeros(shape, dtype=bool)
    valid = np.zeros(shape, dtype=bool)
    for item in items:
        profile = resolve_profile(item)

        def read(key: str, nodata) -> np.ndarray:
            href = item.assets[key].get_absolute_href()
            href = patch_url(href) if patch_url else href
            out = np.full(shape, np.nan, dtype="float32")
            with rasterio.open(href) as src:
                reproject(rasterio.band(src, 1), out, src_nodata=nodata if nodata is not None else src.nodata,
                          dst_transform=transform, dst_crs=crs, dst_nodata=np.nan,
                          resampling=Resampling.nearest)
            return out

        fresh = ~valid  # pixels an earlier item of the look did not fill
        for band in bands:
            key = profile.assets[band]
            scale, offset = profile.scale_offset(item, key)
            dn = read(key, profile.nodata)
            fill = np.isnan(bands[band]) & np.isfinite(dn)
            bands[band][fill] = dn[fill] * scale + offset
        here = np.isfinite(bands["red"]) & fresh
        if profile.has_mask(item) and profile.clear_pixels is not None:
            clear |= here & profile.clear_pixels(read(profile.mask_asset, 0))
        else:
            clear |= here
        valid |= here
    return bands, clear, valid


def write_bundle(
    out: Path, alert: dict, geometry_utm: shapely.Geometry, epsg: int, looks: dict[int, tuple[dict, Look]],
    before: int, after: int, zones: list[tuple[str, shapely.Geometry]], resolution_m: float, bounds: tuple,
    lang: str = "es", bracket: tuple[str | None, str] | None = None, candidates: list[LookCoverage] | None = None,
) -> Path:
    """Write ``<out>/evidence/<alert_id>/`` (chips, ficha, manifest last) atomically per file."""
    folder = child_path(Path(out) / "evidence", alert["alert_id"])  # ids never become paths unchecked
    chips = {"before": looks[before][0], "after": looks[after][0]}
    any_band = next(iter(chips["before"].values()))
    transform = from_origin(bounds[0], bounds[3], resolution_m, resolution_m)
    exteriors = shapely.MultiLineString([p.exterior for p in shapely.get_parts(geometry_utm) if not p.is_empty])
    outline = rasterio.features.rasterize([(exteriors, 1)], out_shape=any_band.shape,
                                          transform=transform, all_touched=True, dtype="uint8").astype(bool)
    written = []
    for combo, fixed in FIXED_STRETCH.items():
        for when, chip in chips.items():
            image = apply_stretch([chip[b] for b in fixed.bands], fixed)
            png = encode_png(draw_outline(image, outline), scale=2)
            path = folder / f"{when}_{combo}.png"
            write_atomic(path, lambda tmp, data=png: tmp.write_bytes(data))
            written.append(path)
    locator = locator_svg(zones, geometry_utm)
    ficha = ficha_html(alert, looks[before][1], looks[after][1], locator, lang, bracket)
    written.append(write_text_atomic(folder / "ficha.html", ficha))

    def look_entry(look: Look) -> dict:
        return {"date": look.date, "stac_items": list(look.items), "coverage": round(look.coverage, 3),
                "clear_share": round(look.clear_share, 3), "why": look.reason}

    manifest = {
        "alert_id": alert["alert_id"],
        "run_id": alert["run_id"],
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "before": look_entry(looks[before][1]),
        "after": look_entry(looks[after][1]),
        "looks_read": [{"date": c.date, "coverage": round(c.coverage, 3), "clear_share": round(c.clear_share, 3)}
                       for c in sorted(candidates or [], key=lambda c: c.date)],
        "coverage_rule": (f"coverage = clear scar pixels / scar pixels, nodata counted as not clear; the nearest "
                          f"look on each side of the change with coverage >= {MIN_COVERAGE} is shown, else the "
                          f"best one read"),
        "date_bracket": {"last_clear_without_change": bracket[0] if bracket else None,
                         "first_with_change": bracket[1] if bracket else alert["first_detected"],
                         "source": "detection" if bracket else "alert"},
        "stretch": stretch_manifest(),
        "chip": {"epsg": epsg, "bounds": [round(v, 2) for v in bounds], "resolution_m": resolution_m},
        "alert": {k: v for k, v in alert.items() if k != "geometry"},
        "files": {p.name: {"sha256": sha256_of(p), "bytes": current_path(p).stat().st_size} for p in written},
    }
    write_json_atomic(folder / "manifest.json", manifest)
    return folder


def scar_region(geometry_utm: shapely.Geometry, bounds: tuple, resolution_m: float) -> np.ndarray:
    """Boolean chip-shaped mask of the scar's pixels (centres inside the polygon; at least one)."""
    shape = (int(round((bounds[3] - bounds[1]) / resolution_m)), int(round((bounds[2] - bounds[0]) / resolution_m)))
    transform = from_origin(bounds[0], bounds[3], resolution_m, resolution_m)
    region = rasterio.features.rasterize([(geometry_utm, 1)], out_shape=shape, transform=transform,
                                         dtype="uint8").astype(bool)
    if not region.any():  # a sliver: take the pixels it touches
        region = rasterio.features.rasterize([(geometry_utm, 1)], out_shape=shape, transform=transform,
                                             all_touched=True, dtype="uint8").astype(bool)
    return region


def detection_bracket(detection, geometry_utm: shapely.Geometry, first_detected: str) -> tuple[str | None, str] | None:
    """(last clear look without the change, first look with it) of the detected scar that
    overlaps the alert most; None when no scar of this run overlaps it (the alert was not seen).
    """
    scars = detection.scars
    if scars is None or scars.empty or "prior_look" not in scars:
        return None
    overlaps = np.array([g.intersection(geometry_utm).area for g in scars["geometry"]])
    if not overlaps.size or overlaps.max() <= 0:
        return None
    scar = scars.iloc[int(overlaps.argmax())]
    prior = int(scar["prior_look"])
    start = detection.look_dates[prior] if prior >= 0 else None
    return start, str(first_detected)[:10]


def write_evidence(out: Path, alerts, detections, resolution_m: float, lang: str = "es") -> dict[str, Path]:
    """Bundles for the given alerts (EPSG:4326 GeoDataFrame) from their areas' detections.

    Returns alert id -> folder. Alerts whose area has no look before the change are skipped
    (logged): there is nothing to compare with.
    """
    by_area = {d.area_id: d for d in detections}
    folders = {}
    for row in alerts.to_dict("records"):
        d = by_area.get(str(row["protected_area_id"]))
        if d is None:
            continue
        items_by_id = {i.id: i for i in d.items}
        patch_url = href_patcher(d.items)
        geometry_utm = gpd.GeoSeries([row["geometry"]], crs=4326).to_crs(d.epsg).iloc[0]
        bounds = chip_bounds(geometry_utm.bounds, resolution_m)
        region = scar_region(geometry_utm, bounds, resolution_m)
        first = str(row["first_detected"])[:10]
        before_idx = [i for i, day in enumerate(d.look_dates) if day < first][-CANDIDATES_BEFORE:]
        after_idx = [i for i, day in enumerate(d.look_dates) if day >= first][:CANDIDATES_AFTER]
        chips: dict[int, dict] = {}
        read: list[LookCoverage] = []
        for candidates in (list(reversed(before_idx)), after_idx):
            for i in candidates:
                items = [items_by_id[k] for k in d.items_by_look[i] if k in items_by_id]
                if not items:
                    continue
                bands, clear, valid = read_look(items, bounds, d.epsg, resolution_m, patch_url)
                coverage, clear_share = scar_coverage(clear, valid, region)
                chips[i] = bands
                read.append(LookCoverage(i, d.look_dates[i], coverage, clear_share))
                if coverage >= MIN_COVERAGE:
                    break  # the nearest look on this side that shows the scar clear
        try:
            (before, why_before), (after, why_after) = choose_looks(read, first)
        except ValueError:
            log.warning("alert %s: no look before and after %s; no evidence bundle", row["alert_id"], first)
            continue
        looks = {lk.index: (chips[lk.index], Look(lk.date, tuple(d.items_by_look[lk.index]), lk.coverage,
                                                  lk.clear_share, why))
                 for lk, why in ((before, why_before), (after, why_after))}
        zones = list(zip(d.zones["zone"], d.zones.geometry))
        bracket = detection_bracket(d, geometry_utm, first)
        folders[row["alert_id"]] = write_bundle(out, row, geometry_utm, d.epsg, looks, before.index, after.index,
                                                zones, resolution_m, bounds, lang, bracket, read)
    return folders
