"""Alert polygons fit for GIS: no specks, no pinholes, no pixel stair-steps (pure).

Scar polygons come straight from the pixel grid: every edge is a pixel edge, diagonal pixel
contacts leave one-pixel parts, and single unflagged pixels inside a pit leave pinholes. An
analyst who opens such a polygon in ArcGIS or QGIS sees hundreds of vertices, a dozen parts and
holes no one can act on. :func:`clean_polygon` turns it into what a mapper would draw:

1. holes smaller than the mapping unit are filled;
2. parts smaller than the mapping unit are dropped (the largest part is always kept, so a scar
   is never emptied);
3. stair-steps are smoothed by Douglas-Peucker simplification at a tolerance under one pixel
   (a staircase of pixel edges becomes its diagonal); the tolerance is halved until the area
   moves by no more than ``max_area_change`` of the area before smoothing, so the reported
   ``area_ha`` stays honest; the result is made valid again.

Geometries are in a projected CRS in metres (the area's UTM zone); areas in m².
"""

from __future__ import annotations

import shapely
from shapely.geometry import MultiPolygon, Polygon

MAX_AREA_CHANGE = 0.03
"""Largest relative change of area allowed by smoothing."""
SMOOTH_TOLERANCE_PX = 0.75
"""Simplification tolerance in pixels: just above a half-diagonal step, so steps go, corners stay."""


def _polygons(geometry: shapely.Geometry) -> list[Polygon]:
    """The non-empty polygons of any (multi)polygon or geometry collection."""
    out = []
    for part in shapely.get_parts(geometry):
        if part.geom_type == "Polygon":
            if not part.is_empty:
                out.append(part)
        elif part.geom_type in ("MultiPolygon", "GeometryCollection"):
            out.extend(_polygons(part))
    return out


def fill_small_holes(polygon: Polygon, min_hole_m2: float) -> Polygon:
    """``polygon`` without the interior rings smaller than ``min_hole_m2``."""
    kept = [ring for ring in polygon.interiors if Polygon(ring).area >= min_hole_m2]
    return Polygon(polygon.exterior, kept)


def as_multipolygon(geometry: shapely.Geometry) -> MultiPolygon:
    """Any polygonal geometry as a MultiPolygon (what a declared-MultiPolygon layer stores)."""
    return MultiPolygon(_polygons(geometry))


def clean_polygon(
    geometry: shapely.Geometry,
    min_area_m2: float,
    pixel_m: float,
    max_area_change: float = MAX_AREA_CHANGE,
) -> shapely.Geometry:
    """A scar polygon without holes or parts below the mapping unit and without stair-steps.

    Parameters
    ----------
    geometry
        Polygon or MultiPolygon in a projected CRS (metres), as traced from the pixel grid.
    min_area_m2
        Mapping unit (m²): smaller holes are filled, smaller parts dropped.
    pixel_m
        Pixel size (m) the polygon was traced at; sets the smoothing tolerance.
    max_area_change
        Largest relative area change smoothing may cause.

    Returns
    -------
    A valid Polygon (one part) or MultiPolygon, in the same CRS.
    """
    parts = [fill_small_holes(p, min_area_m2) for p in _polygons(shapely.make_valid(geometry))]
    if not parts:
        return geometry
    parts.sort(key=lambda p: p.area, reverse=True)
    parts = [parts[0], *[p for p in parts[1:] if p.area >= min_area_m2]]
    cleaned = shapely.union_all(parts) if len(parts) > 1 else parts[0]
    area = cleaned.area
    tolerance = SMOOTH_TOLERANCE_PX * pixel_m
    for _ in range(4):
        smooth = shapely.make_valid(shapely.simplify(cleaned, tolerance, preserve_topology=True))
        polygons = _polygons(smooth)
        smooth = polygons[0] if len(polygons) == 1 else MultiPolygon(polygons)
        if polygons and abs(smooth.area - area) <= max_area_change * area:
            return shapely.normalize(smooth)
        tolerance /= 2
    return shapely.normalize(cleaned)


def polygon_stats(geometry: shapely.Geometry) -> dict:
    """Parts, holes and vertices of a (multi)polygon (what a GIS analyst counts)."""
    polygons = _polygons(geometry)
    return {
        "parts": len(polygons),
        "holes": sum(len(p.interiors) for p in polygons),
        "vertices": int(sum(len(p.exterior.coords) + sum(len(r.coords) for r in p.interiors) for p in polygons)),
        "area_m2": float(sum(p.area for p in polygons)),
    }
