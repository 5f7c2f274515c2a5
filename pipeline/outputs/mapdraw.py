"""Pieces of the report's inline SVG map (pure): frame, scale bar, legend, background image.

The map is equirectangular at the frame's mean latitude: x = (lon − minx)·cos(φ)·s,
y = (maxy − lat)·s, with ``s`` pixels per degree of latitude. A raster in EPSG:4326 whose
pixels are 1/(cos(φ)·s) degrees wide and 1/s high therefore lies exactly under the SVG, which
is how the true-colour background is read (:func:`background_grid`).
"""

from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass

import shapely

M_PER_DEG_LAT = 110_946.0  # mean length of a degree of latitude at ±13° (the tropics), metres


@dataclass(frozen=True)
class MapFrame:
    """The lon/lat window of a map and its pixel size."""

    minx: float
    miny: float
    maxx: float
    maxy: float
    k: float
    """cos(mean latitude): x shrink of the equirectangular projection."""
    scale: float
    """Pixels per degree of latitude."""
    width_px: int
    height_px: int
    margin_px: int = 10

    def to_px(self, x: float, y: float) -> tuple[float, float]:
        """Map pixel of a lon/lat position."""
        return (x - self.minx) * self.k * self.scale + self.margin_px, (self.maxy - y) * self.scale + self.margin_px

    @property
    def m_per_px(self) -> float:
        """Ground metres per map pixel."""
        return M_PER_DEG_LAT / self.scale


def map_frame(geometries: list, width_px: int = 640) -> MapFrame:
    """A frame around EPSG:4326 geometries with 15 % context (at least ~200 m)."""
    minx, miny, maxx, maxy = shapely.union_all(geometries).bounds
    pad = max(maxx - minx, maxy - miny) * 0.15 + 0.002
    minx, miny, maxx, maxy = minx - pad, miny - pad, maxx + pad, maxy + pad
    k = math.cos(math.radians((miny + maxy) / 2))
    span_x, span_y = max((maxx - minx) * k, 1e-9), max(maxy - miny, 1e-9)
    scale = (width_px - 20) / max(span_x, span_y)
    height_px = int(span_y * scale) + 20 if span_y < span_x else width_px
    if span_y > span_x:  # a tall window: the extra width goes to the east
        maxx = minx + (width_px - 20) / (k * scale)
    else:
        miny = maxy - (height_px - 20) / scale
    return MapFrame(minx, miny, maxx, maxy, k, scale, width_px, height_px)


def nice_length_m(max_m: float) -> float:
    """The largest 1, 2 or 5 × 10ⁿ metres not above ``max_m``."""
    if max_m <= 0:
        return 0.0
    exponent = math.floor(math.log10(max_m))
    for step in (5, 2, 1):
        value = step * 10 ** exponent
        if value <= max_m:
            return float(value)
    return float(10 ** exponent)


def scale_bar_svg(frame: MapFrame, max_share: float = 0.25) -> str:
    """A scale bar at the bottom right: a round length at most ``max_share`` of the map width."""
    length_m = nice_length_m(frame.width_px * max_share * frame.m_per_px)
    length_px = length_m / frame.m_per_px
    label = f"{length_m / 1000:g} km" if length_m >= 1000 else f"{length_m:g} m"
    x1 = frame.width_px - 16
    x0 = x1 - length_px
    y = frame.height_px - 14
    return (f'<g id="scalebar" data-metres="{length_m:g}" data-px="{length_px:.2f}">'
            f'<rect x="{x0 - 6:.1f}" y="{y - 20}" width="{length_px + 12:.1f}" height="28" fill="white" '
            f'fill-opacity="0.8"/>'
            f'<path d="M{x0:.1f},{y - 5} L{x0:.1f},{y} L{x1:.1f},{y} L{x1:.1f},{y - 5}" fill="none" '
            f'stroke="#222" stroke-width="2"/>'
            f'<text x="{(x0 + x1) / 2:.1f}" y="{y - 8}" font-size="12" text-anchor="middle">{label}</text></g>')


def legend_svg(entries: list[tuple[str, str, str]], x: int = 8, y: int = 8) -> str:
    """A legend box: ``entries`` of (fill colour, stroke colour, label); labels are escaped."""
    row_px, width = 18, max([len(label) for _, _, label in entries] + [4]) * 7 + 34
    rows = "".join(
        f'<rect x="{x + 8}" y="{y + 7 + i * row_px}" width="14" height="12" fill="{html.escape(fill)}" '
        f'stroke="{html.escape(stroke)}"/>'
        f'<text x="{x + 28}" y="{y + 17 + i * row_px}" font-size="12">{html.escape(label)}</text>'
        for i, (fill, stroke, label) in enumerate(entries))
    return (f'<g id="legend"><rect x="{x}" y="{y}" width="{width}" height="{len(entries) * row_px + 10}" '
            f'fill="white" fill-opacity="0.85" stroke="#999"/>{rows}</g>')


def background_grid(frame: MapFrame) -> tuple[tuple[float, float, float, float], int, int]:
    """EPSG:4326 bounds and pixel size (width, height) of a raster lying exactly under the map."""
    m = frame.margin_px
    deg_x = 1 / (frame.k * frame.scale)
    deg_y = 1 / frame.scale
    minx = frame.minx - m * deg_x
    maxy = frame.maxy + m * deg_y
    return (minx, maxy - frame.height_px * deg_y, minx + frame.width_px * deg_x, maxy), frame.width_px, frame.height_px


def background_image_svg(png: bytes, frame: MapFrame) -> str:
    """The background raster (PNG of :func:`background_grid`'s size) as an inline SVG image."""
    data = base64.b64encode(png).decode()
    return (f'<image id="background" x="0" y="0" width="{frame.width_px}" height="{frame.height_px}" '
            f'preserveAspectRatio="none" href="data:image/png;base64,{data}"/>')
