"""``report.html``: a self-contained run report (no network: inline SVG map, base64 chips).

It shows a map of the monitored zones and the alerts coloured by class, the per-area summary,
and a table of every alert (click a column header to sort) with its before/after SWIR chips
when an evidence bundle exists. :func:`report_html` is pure; :func:`write_report` does the I/O.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

import geopandas as gpd
import pandas as pd
import shapely

from .evidence import svg_path
from .export import CLASS_COLOURS

TEXT = {
    "es": {"title": "Reporte de alertas", "map": "Mapa", "summary": "Resumen por área y zona", "alerts": "Alertas",
           "window": "Ventana de monitoreo", "new": "nuevas", "total": "alertas en total", "evidence": "Evidencia",
           "sort": "Haga clic en un encabezado para ordenar."},
    "en": {"title": "Alert report", "map": "Map", "summary": "Summary per area and zone", "alerts": "Alerts",
           "window": "Monitor window", "new": "new", "total": "alerts in total", "evidence": "Evidence",
           "sort": "Click a column header to sort."},
}
COLUMNS = ("alert_id", "status", "class", "probability", "confidence", "area_ha", "first_detected", "last_observed",
           "protected_area_name", "zone", "centroid_lat", "centroid_lon")
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


def map_svg(zones: gpd.GeoDataFrame, alerts: gpd.GeoDataFrame, width_px: int = 640) -> str:
    """Inline SVG of the zones and alerts (EPSG:4326 in, equirectangular at the mean latitude)."""
    import math

    # frame the alerts (with context) when there are any, else the zones
    focus = list(alerts.geometry) or list(zones.to_crs(4326).geometry)
    minx, miny, maxx, maxy = shapely.union_all(focus).bounds
    pad = max(maxx - minx, maxy - miny) * 0.15 + 0.002
    minx, miny, maxx, maxy = minx - pad, miny - pad, maxx + pad, maxy + pad
    k = math.cos(math.radians((miny + maxy) / 2))
    span_x, span_y = max((maxx - minx) * k, 1e-9), max(maxy - miny, 1e-9)
    scale = (width_px - 20) / max(span_x, span_y)
    height_px = int(span_y * scale) + 20 if span_y < span_x else width_px

    def to_px(x: float, y: float) -> tuple[float, float]:
        return (x - minx) * k * scale + 10, (maxy - y) * scale + 10

    fills = {"inside": "#cfe8c6", "buffer": "#f5edc8"}
    parts = []
    for zone, geom in sorted(zip(zones["zone"], zones.to_crs(4326).geometry), key=lambda t: t[0] != "buffer"):
        parts.append(f'<path d="{svg_path(geom, to_px)}" fill="{fills.get(zone, "#eee")}" stroke="#6b8f5e" '
                     f'stroke-width="1" fill-rule="evenodd"><title>{html.escape(str(zone))}</title></path>')
    for row in alerts.to_dict("records"):
        rgb = CLASS_COLOURS.get(row["class"], "80,80,80")
        parts.append(f'<path d="{svg_path(row["geometry"], to_px)}" fill="rgb({rgb})" fill-opacity="0.7" '
                     f'stroke="rgb({rgb})" stroke-width="1.5" fill-rule="evenodd">'
                     f'<title>{html.escape(row["alert_id"])} ({html.escape(row["class"])}, '
                     f'{float(row["area_ha"]):.1f} ha)</title></path>')
    legend = "".join(
        f'<rect x="{12 + i * 95}" y="{height_px - 22}" width="12" height="12" fill="rgb({CLASS_COLOURS[c]})"/>'
        f'<text x="{28 + i * 95}" y="{height_px - 12}" font-size="12">{c}</text>'
        for i, c in enumerate(CLASS_COLOURS)
    )
    frame = f'<rect x="0" y="0" width="{width_px}" height="{height_px}" fill="#eef3f7"/>'
    return (f'<svg xmlns="http://www.w3.org/2000/svg" id="map" width="{width_px}" height="{height_px}" '
            f'viewBox="0 0 {width_px} {height_px}" overflow="hidden" role="img">{frame}{"".join(parts)}'
            f'<rect x="4" y="{height_px - 28}" width="290" height="24" fill="white" fill-opacity="0.8"/>{legend}</svg>')


def _cell(value) -> str:
    text = f"{value:.3f}".rstrip("0").rstrip(".") if isinstance(value, float) else str(value)
    return f'<td data-v="{html.escape(str(value))}">{html.escape(text)}</td>'


def report_html(alerts: gpd.GeoDataFrame, zones: gpd.GeoDataFrame, summary: pd.DataFrame, info: dict,
                chips: dict[str, dict[str, bytes]], lang: str = "es") -> str:
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
    """
    t = TEXT[lang]
    e = html.escape
    head = "".join(f"<th>{e(c)}</th>" for c in COLUMNS) + f"<th>{e(t['evidence'])}</th>"
    rows = []
    for row in alerts.to_dict("records"):
        cells = "".join(_cell(row[c]) for c in COLUMNS)
        pair = chips.get(row["alert_id"], {})
        images = "".join(
            f'<img alt="{e(when)}" title="{e(when)}" width="72" height="72" '
            f'src="data:image/png;base64,{base64.b64encode(pair[when]).decode()}">'
            for when in ("before", "after") if when in pair
        )
        rows.append(f'<tr class="alert" data-id="{e(row["alert_id"])}">{cells}'
                    f'<td data-v="" style="white-space: nowrap">{images}</td></tr>')
    summary_head = "".join(f"<th>{e(str(c))}</th>" for c in summary.columns)
    summary_rows = "".join("<tr>" + "".join(_cell(v) for v in r) + "</tr>" for r in summary.itertuples(index=False))
    window = info.get("window", ("", ""))
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
</style></head><body>
<h1>{e(t['title'])}: {e(info.get('run_id', ''))}</h1>
<p>{e(t['window'])}: {e(str(window[0]))} … {e(str(window[1]))}. {len(alerts)} {e(t['total'])},
{int(info.get('n_new', 0))} {e(t['new'])}.</p>
<h2>{e(t['map'])}</h2>
{map_svg(zones, alerts)}
<h2>{e(t['summary'])}</h2>
<table id="summary" class="sortable"><thead><tr>{summary_head}</tr></thead><tbody>{summary_rows}</tbody></table>
<h2>{e(t['alerts'])}</h2>
<p>{e(t['sort'])}</p>
<table id="alerts" class="sortable"><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>
<script>{SORT_SCRIPT}</script>
</body></html>
"""


def write_report(out: Path, alerts: gpd.GeoDataFrame, zones: gpd.GeoDataFrame, summary: pd.DataFrame,
                 info: dict, lang: str = "es") -> Path:
    """Write ``<out>/report.html`` atomically, inlining the SWIR chips of existing evidence bundles."""
    from .alerts import atomic_text

    chips = {}
    for alert_id in alerts["alert_id"]:
        folder = Path(out) / "evidence" / alert_id
        pair = {when: (folder / f"{when}_swir.png").read_bytes()
                for when in ("before", "after") if (folder / f"{when}_swir.png").is_file()}
        if pair:
            chips[alert_id] = pair
    return atomic_text(Path(out) / "report.html", report_html(alerts, zones, summary, info, chips, lang))
