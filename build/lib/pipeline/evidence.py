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
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shapely

CHIP_MARGIN_M = 150.0
"""Context around the scar's bounding box on each side, metres."""
MIN_CHIP_M = 600.0
"""Smallest chip edge, metres."""
CLEAR_SHARE = 0.9
"""A look is clear at the scar when this share of the chip's valid pixels is clear."""
SCL_CLEAR = (4, 5, 6, 7, 11)  # vegetation, bare, water, unclassified, snow: not cloud or shadow
COMBOS = {"rgb": ("red", "green", "blue"), "swir": ("swir22", "nir", "red")}
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


def pick_looks(look_dates: list[str], first_detected: str, clear_shares: dict[int, float]) -> tuple[int, int]:
    """Indices of the last clear look before ``first_detected`` and the first clear look from it.

    ``clear_shares`` gives, for the looks considered, the clear share of the chip; when no look
    before the change is clear enough, the clearest one is taken.
    """
    before = [i for i, d in enumerate(look_dates) if d < first_detected and i in clear_shares]
    after = [i for i, d in enumerate(look_dates) if d >= first_detected and i in clear_shares]
    if not before or not after:
        raise ValueError(f"no look before and after {first_detected}")
    clear_before = [i for i in before if clear_shares[i] >= CLEAR_SHARE]
    clear_after = [i for i in after if clear_shares[i] >= CLEAR_SHARE]
    pick_before = clear_before[-1] if clear_before else max(before, key=lambda i: (clear_shares[i], i))
    pick_after = clear_after[0] if clear_after else max(after, key=lambda i: (clear_shares[i], -i))
    return pick_before, pick_after


def stretch(bands: list[np.ndarray], low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """uint8 (y, x, 3) from three reflectance arrays and per-band stretch limits; NaN is black."""
    stack = np.stack(bands, axis=-1).astype("float32")
    scaled = (stack - low) / np.maximum(high - low, 1e-6)
    scaled = np.nan_to_num(np.clip(scaled, 0, 1), nan=0.0)
    return (scaled * 255 + 0.5).astype("uint8")


def stretch_limits(arrays: list[list[np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """2nd and 98th percentiles per band over every chip given (so before and after compare)."""
    low, high = [], []
    for k in range(3):
        values = np.concatenate([a[k][np.isfinite(a[k])].ravel() for a in arrays] or [np.zeros(1)])
        if values.size == 0:
            values = np.zeros(1)
        low.append(np.percentile(values, 2))
        high.append(np.percentile(values, 98))
    return np.array(low, dtype="float32"), np.array(high, dtype="float32")


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
        "note": "Made by cec-pipeline from public Sentinel-2/Landsat imagery. "
                "The SHA-256 of every file is in manifest.json.",
    },
}


@dataclass(frozen=True)
class Look:
    """One dated look used as evidence."""

    date: str
    items: tuple[str, ...]
    clear_share: float


def ficha_html(alert: dict, before: Look, after: Look, locator: str, lang: str = "es") -> str:
    """The one-page fact sheet (self-contained but for the chip PNGs beside it)."""
    t = LABELS[lang]
    e = lambda v: html.escape(str(v))  # noqa: E731
    rows = [
        (t["class"], t["classes"].get(alert["class"], alert["class"])),
        (t["probability"], f"{float(alert['probability']):.2f}"),
        (t["confidence"], alert["confidence"]),
        (t["status"], t["statuses"].get(alert["status"], alert["status"])),
        (t["area"], f"{float(alert['area_ha']):.2f}"),
        (t["first"], alert["first_detected"]),
        (t["last"], alert["last_observed"]),
        (t["bracket"], f"{t['between']} {before.date} {t['and']} {after.date}"),
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
        f"<figcaption>{e(t[when])} ({e(look.date)}), {e(t[combo])}</figcaption></figure>"
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


def read_look(items: list, bounds: tuple[float, ...], epsg: int, resolution_m: float, patch_url=None,
              region: np.ndarray | None = None) -> tuple[dict, float]:
    """Reflectance chips (band -> float32 (y, x), NaN = nodata) of one look and its clear share.

    The clear share is over ``region`` (boolean, chip shape: the scar) when given, else the chip.

    ``items`` (pystac) of the same look are mosaicked in order; each asset is warped to the
    chip grid (EPSG:``epsg``, ``resolution_m`` pixels, nearest neighbour).
    """
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.warp import Resampling, reproject

    from .ingest import resolve_profile, resolve_scale_offset

    minx, miny, maxx, maxy = bounds
    shape = (int(round((maxy - miny) / resolution_m)), int(round((maxx - minx) / resolution_m)))
    transform = from_origin(minx, maxy, resolution_m, resolution_m)
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
                          dst_transform=transform, dst_crs=f"EPSG:{epsg}", dst_nodata=np.nan,
                          resampling=Resampling.nearest)
            return out

        for band in bands:
            key = profile.assets[band]
            scale, offset = resolve_scale_offset(item, key, profile)
            dn = read(key, profile.nodata)
            fill = np.isnan(bands[band]) & np.isfinite(dn)
            bands[band][fill] = dn[fill] * scale + offset
        here = np.isfinite(bands["red"])
        if profile.mask_asset and profile.mask_asset in item.assets:
            mask = read(profile.mask_asset, 0)
            if profile.mask_band == "scl":
                ok = np.isin(mask, SCL_CLEAR)
            else:  # Landsat QA_PIXEL: dilated cloud, cirrus, cloud, shadow bits clear
                bits = np.nan_to_num(mask, nan=1).astype("uint16")
                ok = (bits & 0b11110) == 0
            clear |= here & ok
        else:
            clear |= here
        valid |= here
    if region is not None:
        clear, valid = clear & region, valid & region
    share = float(clear.sum() / valid.sum()) if valid.any() else 0.0
    return bands, share


def write_bundle(
    out: Path, alert: dict, geometry_utm: shapely.Geometry, epsg: int, looks: dict[int, tuple[dict, Look]],
    before: int, after: int, zones: list[tuple[str, shapely.Geometry]], resolution_m: float, bounds: tuple,
    lang: str = "es",
) -> Path:
    """Write ``<out>/evidence/<alert_id>/`` (chips, ficha, manifest last) atomically per file."""
    import rasterio.features
    from rasterio.transform import from_origin

    from .files import sha256_of, write_atomic, write_json_atomic, write_text_atomic

    folder = Path(out) / "evidence" / alert["alert_id"]
    chips = {"before": looks[before][0], "after": looks[after][0]}
    any_band = next(iter(chips["before"].values()))
    transform = from_origin(bounds[0], bounds[3], resolution_m, resolution_m)
    exteriors = shapely.MultiLineString([p.exterior for p in shapely.get_parts(geometry_utm) if not p.is_empty])
    outline = rasterio.features.rasterize([(exteriors, 1)], out_shape=any_band.shape,
                                          transform=transform, all_touched=True, dtype="uint8").astype(bool)
    written = []
    for combo, names in COMBOS.items():
        arrays = {when: [chip[b] for b in names] for when, chip in chips.items()}
        low, high = stretch_limits(list(arrays.values()))
        for when, bands in arrays.items():
            png = encode_png(draw_outline(stretch(bands, low, high), outline), scale=2)
            path = folder / f"{when}_{combo}.png"
            write_atomic(path, lambda tmp, data=png: tmp.write_bytes(data))
            written.append(path)
    locator = locator_svg(zones, geometry_utm)
    ficha = ficha_html(alert, looks[before][1], looks[after][1], locator, lang)
    written.append(write_text_atomic(folder / "ficha.html", ficha))
    manifest = {
        "alert_id": alert["alert_id"],
        "run_id": alert["run_id"],
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "before": {"date": looks[before][1].date, "stac_items": list(looks[before][1].items),
                   "clear_share": round(looks[before][1].clear_share, 3)},
        "after": {"date": looks[after][1].date, "stac_items": list(looks[after][1].items),
                  "clear_share": round(looks[after][1].clear_share, 3)},
        "chip": {"epsg": epsg, "bounds": [round(v, 2) for v in bounds], "resolution_m": resolution_m},
        "alert": {k: v for k, v in alert.items() if k != "geometry"},
        "files": {p.name: {"sha256": sha256_of(p), "bytes": p.stat().st_size} for p in written},
    }
    write_json_atomic(folder / "manifest.json", manifest)
    return folder


def _scar_region(geometry_utm: shapely.Geometry, bounds: tuple, resolution_m: float) -> np.ndarray:
    """Boolean chip-shaped mask of the scar grown by two pixels (where clarity matters)."""
    import rasterio.features
    from rasterio.transform import from_origin

    shape = (int(round((bounds[3] - bounds[1]) / resolution_m)), int(round((bounds[2] - bounds[0]) / resolution_m)))
    return rasterio.features.rasterize([(geometry_utm.buffer(2 * resolution_m), 1)], out_shape=shape,
                                       transform=from_origin(bounds[0], bounds[3], resolution_m, resolution_m),
                                       dtype="uint8").astype(bool)


def write_evidence(out: Path, alerts, detections, resolution_m: float, lang: str = "es") -> dict[str, Path]:
    """Bundles for the given alerts (EPSG:4326 GeoDataFrame) from their areas' detections.

    Returns alert id -> folder. Alerts whose area has no look before the change are skipped
    (logged): there is nothing to compare with.
    """
    import logging

    import geopandas as gpd

    from .ingest import href_patcher

    log = logging.getLogger(__name__)
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
        region = _scar_region(geometry_utm, bounds, resolution_m)
        first = str(row["first_detected"])[:10]
        before_idx = [i for i, day in enumerate(d.look_dates) if day < first][-6:]  # the nearest six
        after_idx = [i for i, day in enumerate(d.look_dates) if day >= first][:4]
        looks: dict[int, tuple[dict, Look]] = {}
        for candidates in (list(reversed(before_idx)), after_idx):
            for i in candidates:
                items = [items_by_id[k] for k in d.items_by_look[i] if k in items_by_id]
                if not items:
                    continue
                bands, share = read_look(items, bounds, d.epsg, resolution_m, patch_url, region)
                looks[i] = (bands, Look(d.look_dates[i], tuple(d.items_by_look[i]), share))
                if share >= CLEAR_SHARE:
                    break  # the nearest clear look on this side of the change is found
        try:
            before, after = pick_looks(d.look_dates, first, {i: lk.clear_share for i, (_, lk) in looks.items()})
        except ValueError:
            log.warning("alert %s: no look before and after %s; no evidence bundle", row["alert_id"], first)
            continue
        zones = list(zip(d.zones["zone"], d.zones.geometry))
        folders[row["alert_id"]] = write_bundle(out, row, geometry_utm, d.epsg, looks, before, after, zones,
                                                resolution_m, bounds, lang)
    return folders
