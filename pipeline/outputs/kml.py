"""KML of the alerts for Google Earth and phones in the field (I/O edge; the text is built pure).

One ``Style`` per class (``mining``, ``clearing``, ``other``: the colours of the GeoPackage
style and the report), one ``Placemark`` per alert with

- ``name``: the alert id; ``styleUrl``: its class style;
- ``TimeSpan`` beginning at ``first_detected`` (open end: a scar does not heal within a
  monitoring season), so Google Earth's time slider plays the alerts in order;
- ``description``: a table of its facts; ``ExtendedData``: every property.

Coordinates are WGS84 lon/lat (KML's only CRS); all user text is XML-escaped.
"""

from __future__ import annotations

import html
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import shapely

from ..files import write_output_text
from .gis import CLASS_COLOURS
from .registry import register_writer
from .tables import flat_table

KML_NS = "http://www.opengis.net/kml/2.2"
FILL_ALPHA = "8c"  # ~55 % opaque, as the QGIS style
CLASS_RGB = {name: tuple(int(v) for v in rgb.split(",")) for name, rgb in CLASS_COLOURS.items()}


def kml_colour(rgb: tuple[int, int, int], alpha: str = "ff") -> str:
    """KML's ``aabbggrr`` hex colour."""
    r, g, b = rgb
    return f"{alpha}{b:02x}{g:02x}{r:02x}"


def class_styles() -> str:
    """One ``<Style id="class-NAME">`` per class: a translucent fill and an opaque outline."""
    return "".join(
        f'<Style id="class-{name}"><LineStyle><color>{kml_colour(rgb)}</color><width>2</width></LineStyle>'
        f"<PolyStyle><color>{kml_colour(rgb, FILL_ALPHA)}</color></PolyStyle></Style>"
        for name, rgb in CLASS_RGB.items()
    )


def _ring(coords) -> str:
    text = " ".join(f"{x:.7f},{y:.7f}" for x, y, *_ in coords)
    return f"<LinearRing><coordinates>{text}</coordinates></LinearRing>"


def kml_geometry(geometry: shapely.Geometry) -> str:
    """Polygon or MultiGeometry of polygons (lon/lat), exteriors counter-clockwise."""
    polygons = [p for p in shapely.get_parts(shapely.orient_polygons(geometry, exterior_cw=False))
                if p.geom_type == "Polygon" and not p.is_empty]
    parts = []
    for p in polygons:
        inner = "".join(f"<innerBoundaryIs>{_ring(r.coords)}</innerBoundaryIs>" for r in p.interiors)
        parts.append(f"<Polygon><outerBoundaryIs>{_ring(p.exterior.coords)}</outerBoundaryIs>{inner}</Polygon>")
    return parts[0] if len(parts) == 1 else f"<MultiGeometry>{''.join(parts)}</MultiGeometry>"


def description(row: dict) -> str:
    """HTML table of an alert's facts (bilingual labels, values escaped)."""
    facts = [
        ("Clase / class", row["class"]),
        ("Confianza / confidence", row["confidence"]),
        ("Estado / status", row["status"]),
        ("Área / area (ha)", f"{float(row['area_ha']):.2f}"),
        ("Primera detección / first detected", row["first_detected"]),
        ("Última observación / last observed", row["last_observed"]),
        ("Área protegida / protected area", f"{row['protected_area_name']} ({row['protected_area_id']})"),
        ("Zona / zone", row["zone"]),
        ("Lat, lon", f"{float(row['centroid_lat']):.5f}, {float(row['centroid_lon']):.5f}"),
        ("Probabilidad / probability", f"{float(row['probability']):.2f}"),
    ]
    facts += [(k[len("overlay_"):].replace("_", " "), v) for k, v in row.items() if k.startswith("overlay_") and v]
    cells = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in facts)
    return f"<table>{cells}</table>"


def placemark(row: dict, geometry: shapely.Geometry) -> str:
    """One Placemark: name, class style, TimeSpan from first detection, facts, geometry."""
    cls = row["class"] if row["class"] in CLASS_RGB else "other"
    data = "".join(f"<Data name={quoteattr(str(k))}><value>{escape(str(v))}</value></Data>"
                   for k, v in row.items())
    return (
        f"<Placemark id={quoteattr('alert-' + str(row['alert_id']))}>"
        f"<name>{escape(str(row['alert_id']))}</name>"
        f"<styleUrl>#class-{cls}</styleUrl>"
        f"<TimeSpan><begin>{escape(str(row['first_detected'])[:10])}</begin></TimeSpan>"
        f"<description>{escape(description(row))}</description>"
        f"<ExtendedData>{data}</ExtendedData>"
        f"{kml_geometry(geometry)}</Placemark>"
    )


def kml_document(rows: list[dict], geometries: list, name: str = "alerts") -> str:
    """The whole KML text (UTF-8)."""
    marks = "".join(placemark(r, g) for r, g in zip(rows, geometries))
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<kml xmlns="{KML_NS}"><Document>'
            f"<name>{escape(name)}</name>{class_styles()}{marks}</Document></kml>\n")


def write_kml(alerts, path: Path) -> Path:
    """``alerts.kml``: placemarks styled by class with a TimeSpan each."""
    rows = flat_table(alerts).to_dict("records")
    return write_output_text(Path(path), kml_document(rows, list(alerts.geometry)))


register_writer("kml", "alerts.kml", write_kml)
