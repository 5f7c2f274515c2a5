"""``report.html``: a self-contained run report (no network: inline SVG map, base64 images).

It shows a map of the monitored zones and the alerts coloured by class over a true-colour
mosaic of the run's own imagery, with a legend (zones and classes) and a scale bar; the
per-area summary; and a table of every alert (click a column header to sort) whose id links to
its ficha, with its before/after SWIR chips when an evidence bundle exists. Labels and values
follow ``output.lang``. :func:`report_html` is pure; :func:`write_report` does the I/O.
"""

from __future__ import annotations

import base64
import html
import logging
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from rasterio.transform import from_bounds

from ..files import child_path, current_path, write_output_text
from ..sources.load import href_patcher
from .evidence import LABELS, encode_png, read_grid, svg_path
from .gis import CLASS_COLOURS
from .mapdraw import MapFrame, background_grid, background_image_svg, legend_svg, map_frame, scale_bar_svg
from .stretch import FIXED_STRETCH, apply_stretch

log = logging.getLogger(__name__)

TEXT = {
    "es": {"title": "Reporte de alertas", "map": "Mapa", "summary": "Resumen por área y zona", "alerts": "Alertas",
           "window": "Ventana de monitoreo", "new": "nuevas", "total": "alertas en total", "evidence": "Evidencia",
           "sort": "Haga clic en un encabezado para ordenar; el código de la alerta abre su ficha.",
           "background": "Fondo: mosaico en color verdadero de las imágenes de esta corrida",
           "columns": {"alert_id": "alerta", "status": "estado", "class": "clase", "probability": "probabilidad",
                       "confidence": "confianza", "area_ha": "superficie (ha)", "first_detected": "primera detección",
                       "last_observed": "última observación", "protected_area_name": "área protegida",
                       "zone": "zona", "centroid_lat": "latitud", "centroid_lon": "longitud"},
           "summary_columns": {"protected_area_id": "código", "protected_area_name": "área protegida", "zone": "zona",
                               "period_start": "desde", "period_end": "hasta", "alerts_total": "alertas",
                               "ha_total": "ha en total"}},
    "en": {"title": "Alert report", "map": "Map", "summary": "Summary per area and zone", "alerts": "Alerts",
           "window": "Monitor window", "new": "new", "total": "alerts in total", "evidence": "Evidence",
           "sort": "Click a column header to sort; an alert id opens its ficha.",
           "background": "Background: true-colour mosaic of this run's imagery",
           "columns": {"alert_id": "alert", "status": "status", "class": "class", "probability": "probability",
                       "confidence": "confidence", "area_ha": "area (ha)", "first_detected": "first detected",
                       "last_observed": "last observed", "protected_area_name": "protected area", "zone": "zone",
                       "centroid_lat": "latitude", "centroid_lon": "longitude"},
           "summary_columns": {"protected_area_id": "id", "protected_area_name": "protected area", "zone": "zone",
                               "period_start": "from", "period_end": "to", "alerts_total": "alerts",
                               "ha_total": "ha in total"}},
}
COLUMNS = ("alert_id", "status", "class", "probability", "confidence", "area_ha", "first_detected", "last_observed",
           "protected_area_name", "zone", "centroid_lat", "centroid_lon")
ZONE_FILLS = {"inside": "#cfe8c6", "buffer": "#f5edc8"}
ZONE_STROKE = "#3f6b34"
TRANSLATED = {"class": "classes", "status": "statuses", "confidence": "confidences", "zone": "zones"}
BACKGROUND_LOOKS = 4
"""Most recent looks composited (latest clear pixel first) for the map background."""
SORT_SCRIPT = """
document.querySelectorAll('table.sortable').forEach(function (table) {
  table.querySelectorAll('th').forEach(function (th, col) {
    th.addEventListener('click', function () {
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      var asc = th.getAttribute('aria-sort') !== 'ascending';
      table.querySelectorAll('th').forEach(function (h) { h.removeAttribute('aria-sort'); });
      th.setAttribute('aria-sort', asc ? 'ascending' : 'descending');
      rows.sort(function (a, b) {
        var x = a.cells[col].getAttribute('data-v'), y = b.cells[col].getAttribute('data-v');
        var nx = parseFloat(x), ny = parseFloat(y);
        var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
        return asc ? c : -c;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
"""


def map_svg(zones: gpd.GeoDataFrame, alerts: gpd.GeoDataFrame, width_px: int = 640, lang: str = "es",
            background_png: bytes | None = None, frame: MapFrame | None = None) -> str:
    """Inline SVG of the zones and alerts (EPSG:4326 in, equirectangular at the mean latitude),
    with a legend of zones and classes, a scale bar and optionally a background raster laid
    on :func:`pipeline.outputs.mapdraw.background_grid` of the same frame."""
    labels = LABELS[lang]
    frame = frame or report_frame(zones, alerts, width_px)
    to_px = frame.to_px
    backdrop = background_png is not None
    parts = [f'<rect x="0" y="0" width="{frame.width_px}" height="{frame.height_px}" fill="#eef3f7"/>']
    if backdrop:
        parts.append(background_image_svg(background_png, frame))
    zones_wgs = zones.to_crs(4326)
    for zone, geom in sorted(zip(zones_wgs["zone"], zones_wgs.geometry), key=lambda t: t[0] != "buffer"):
        fill = "none" if backdrop else ZONE_FILLS.get(zone, "#eee")
        stroke = ZONE_FILLS.get(zone, "#eee") if backdrop and zone == "buffer" else ZONE_STROKE
        dash = ' stroke-dasharray="6 4"' if zone == "buffer" else ""
        parts.append(f'<path d="{svg_path(geom, to_px)}" fill="{fill}" stroke="{stroke}" stroke-width="2"{dash} '
                     f'fill-rule="evenodd"><title>{html.escape(labels["zones"].get(zone, str(zone)))}</title></path>')
    for row in alerts.to_dict("records"):
        rgb = CLASS_COLOURS.get(row["class"], "80,80,80")
        name = labels["classes"].get(row["class"], row["class"])
        parts.append(f'<path d="{svg_path(row["geometry"], to_px)}" fill="rgb({rgb})" fill-opacity="0.6" '
                     f'stroke="rgb({rgb})" stroke-width="1.5" fill-rule="evenodd">'
                     f'<title>{html.escape(row["alert_id"])} ({html.escape(name)}, '
                     f'{float(row["area_ha"]):.1f} ha)</title></path>')
    present = set(zones["zone"])
    entries = [("none" if backdrop else ZONE_FILLS[z], ZONE_STROKE, labels["zones"][z])
               for z in ("inside", "buffer") if z in present]
    entries += [(f"rgb({CLASS_COLOURS[c]})", f"rgb({CLASS_COLOURS[c]})", labels["classes"][c]) for c in CLASS_COLOURS]
    parts.append(legend_svg(entries))
    parts.append(scale_bar_svg(frame))
    return (f'<svg xmlns="http://www.w3.org/2000/svg" id="map" width="{frame.width_px}" height="{frame.height_px}" '
            f'viewBox="0 0 {frame.width_px} {frame.height_px}" overflow="hidden" role="img">{"".join(parts)}</svg>')


def report_frame(zones: gpd.GeoDataFrame, alerts: gpd.GeoDataFrame, width_px: int = 640) -> MapFrame:
    """The map's frame: the alerts with context when there are any, else the zones."""
    focus = list(alerts.geometry) or list(zones.to_crs(4326).geometry)
    return map_frame(focus, width_px)


def _cell(value, shown=None) -> str:
    text = shown if shown is not None else (
        f"{value:.3f}".rstrip("0").rstrip(".") if isinstance(value, float) else str(value))
    return f'<td data-v="{html.escape(str(value))}">{html.escape(str(text))}</td>'


def report_html(alerts: gpd.GeoDataFrame, zones: gpd.GeoDataFrame, summary: pd.DataFrame, info: dict,
                chips: dict[str, dict[str, bytes]], lang: str = "es", background_png: bytes | None = None,
                fichas: set[str] | None = None) -> str:
    """The report page.

    Parameters
    ----------
    alerts
        Issued alerts (EPSG:4326), one table row each.
    zones
        Monitored zones (any CRS) for the map.
    summary
        ``summary.csv`` table.
    info
        ``run_id``, ``window`` (start, end) and ``n_new``.
    chips
        alert id -> {"before": png bytes, "after": png bytes}; inlined as base64.
    background_png
        True-colour mosaic on the map's background grid (:func:`background_for`), or None.
    fichas
        Alert ids with a ficha (``evidence/<id>/ficha.html``): their id cell links to it.
    """
    t = TEXT[lang]
    labels = LABELS[lang]
    e = html.escape
    fichas = fichas or set()
    head = "".join(f"<th>{e(t['columns'][c])}</th>" for c in COLUMNS) + f"<th>{e(t['evidence'])}</th>"
    rows = []
    for row in alerts.to_dict("records"):
        cells = []
        for c in COLUMNS:
            if c == "alert_id" and row[c] in fichas:
                link = f"evidence/{e(row[c])}/ficha.html"
                cells.append(f'<td data-v="{e(row[c])}"><a href="{link}">{e(row[c])}</a></td>')
            elif c in TRANSLATED:
                cells.append(_cell(row[c], labels[TRANSLATED[c]].get(row[c], row[c])))
            else:
                cells.append(_cell(row[c]))
        pair = chips.get(row["alert_id"], {})
        images = "".join(
            f'<img alt="{e(labels[when])}" title="{e(labels[when])}" width="72" height="72" '
            f'src="data:image/png;base64,{base64.b64encode(pair[when]).decode()}">'
            for when in ("before", "after") if when in pair
        )
        rows.append(f'<tr class="alert" data-id="{e(row["alert_id"])}">{"".join(cells)}'
                    f'<td data-v="" style="white-space: nowrap">{images}</td></tr>')
    names = t["summary_columns"]

    def summary_name(column: str) -> str:
        for prefix, word in (("alerts_", "alertas" if lang == "es" else "alerts"), ("ha_", "ha")):
            cls = column[len(prefix):]
            if column.startswith(prefix) and cls in labels["classes"]:
                return f"{word} {labels['classes'][cls]}"
        return names.get(column, column)

    summary_head = "".join(f"<th>{e(summary_name(str(c)))}</th>" for c in summary.columns)
    summary_rows = "".join(
        "<tr>" + "".join(_cell(v, labels["zones"].get(v) if c == "zone" else None)
                         for c, v in zip(summary.columns, r)) + "</tr>"
        for r in summary.itertuples(index=False))
    window = info.get("window", ("", ""))
    frame = report_frame(zones, alerts)
    note = f'<p class="note">{e(t["background"])}.</p>' if background_png is not None else ""
    return f"""<!DOCTYPE html>
<html lang="{lang}"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<title>{e(t['title'])} {e(info.get('run_id', ''))}</title>
<style>
body {{ font-family: sans-serif; margin: 1.2em; color: #222; }}
table {{ border-collapse: collapse; font-size: 0.85em; margin-bottom: 1.5em; }}
th, td {{ border-bottom: 1px solid #ddd; padding: 3px 8px; text-align: left; }}
th {{ background: #f2f2f2; cursor: pointer; user-select: none; }}
th[aria-sort=ascending]::after {{ content: " ▲"; }} th[aria-sort=descending]::after {{ content: " ▼"; }}
img {{ image-rendering: pixelated; margin-right: 2px; border: 1px solid #aaa; }}
#map image {{ image-rendering: auto; }} .note {{ font-size: 0.8em; color: #555; }}
</style></head><body>
<h1>{e(t['title'])}: {e(info.get('run_id', ''))}</h1>
<p>{e(t['window'])}: {e(str(window[0]))} … {e(str(window[1]))}. {len(alerts)} {e(t['total'])},
{int(info.get('n_new', 0))} {e(t['new'])}.</p>
<h2>{e(t['map'])}</h2>
{map_svg(zones, alerts, lang=lang, background_png=background_png, frame=frame)}
{note}
<h2>{e(t['summary'])}</h2>
<table id="summary" class="sortable"><thead><tr>{summary_head}</tr></thead><tbody>{summary_rows}</tbody></table>
<h2>{e(t['alerts'])}</h2>
<p>{e(t['sort'])}</p>
<table id="alerts" class="sortable"><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>
<script>{SORT_SCRIPT}</script>
</body></html>
"""


def background_for(frame: MapFrame, detections) -> bytes | None:
    """A true-colour PNG of the run's own imagery on the map's background grid (no network).

    The most recent looks of each area (up to BACKGROUND_LOOKS) are read through their source
    profile and composited, latest clear pixel first, then any valid pixel; shown with the
    evidence chips' fixed stretch. None when nothing could be read.
    """
    (minx, miny, maxx, maxy), width, height = background_grid(frame)
    transform = from_bounds(minx, miny, maxx, maxy, width, height)
    fixed = FIXED_STRETCH["rgb"]
    mosaic = {b: np.full((height, width), np.nan, dtype="float32") for b in fixed.bands}
    fallback = {b: np.full((height, width), np.nan, dtype="float32") for b in fixed.bands}
    read_any = False
    for d in detections:
        items_by_id = {i.id: i for i in d.items}
        patch_url = href_patcher(d.items)
        for look in reversed(range(len(d.look_dates))[-BACKGROUND_LOOKS:]):
            items = [items_by_id[k] for k in d.items_by_look[look] if k in items_by_id]
            if not items:
                continue
            try:
                bands, clear, valid = read_grid(items, (height, width), transform, "EPSG:4326", patch_url)
            except Exception as exc:  # noqa: BLE001 - a background is never worth failing a run
                log.warning("report background: look %s not read: %s", d.look_dates[look], exc)
                continue
            read_any = True
            for b in fixed.bands:
                take = np.isnan(mosaic[b]) & clear
                mosaic[b][take] = bands[b][take]
                spare = np.isnan(fallback[b]) & valid
                fallback[b][spare] = bands[b][spare]
    if not read_any:
        return None
    for b in fixed.bands:
        gap = np.isnan(mosaic[b])
        mosaic[b][gap] = fallback[b][gap]
    image = apply_stretch([mosaic[b] for b in fixed.bands], fixed)
    image[~np.isfinite(mosaic[fixed.bands[0]])] = (238, 243, 247)  # outside the imagery: the map's own colour
    return encode_png(image)


def write_report(out: Path, alerts: gpd.GeoDataFrame, zones: gpd.GeoDataFrame, summary: pd.DataFrame,
                 info: dict, lang: str = "es", detections=None) -> Path:
    """Write ``<out>/report.html`` atomically, inlining the SWIR chips of existing evidence bundles
    and, given the run's detections, a true-colour background of its imagery."""
    chips, fichas = {}, set()
    for alert_id in alerts["alert_id"]:
        folder = child_path(Path(out) / "evidence", alert_id)
        # current_path: a bundle written by this run is still under its staged temporary name
        pair = {when: current_path(folder / f"{when}_swir.png").read_bytes()
                for when in ("before", "after") if current_path(folder / f"{when}_swir.png").is_file()}
        if pair:
            chips[alert_id] = pair
        if (folder / "ficha.html").is_file():
            fichas.add(alert_id)
    background = background_for(report_frame(zones, alerts), detections) if detections else None
    page = report_html(alerts, zones, summary, info, chips, lang, background, fichas)
    return write_output_text(Path(out) / "report.html", page)
