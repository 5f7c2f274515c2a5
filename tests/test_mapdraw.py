"""The report map's frame, scale bar, legend and background grid."""

from __future__ import annotations

import re

import pyproj
import pytest
import shapely

from pipeline.outputs.mapdraw import background_grid, legend_svg, map_frame, nice_length_m, scale_bar_svg

LA_PAMPA = shapely.box(-69.98, -12.98, -69.92, -12.94)


def test_scale_bar_length_matches_the_ground():
    frame = map_frame([LA_PAMPA], width_px=640)
    svg = scale_bar_svg(frame)
    metres = float(re.search(r'data-metres="([0-9.]+)"', svg).group(1))
    px = float(re.search(r'data-px="([0-9.]+)"', svg).group(1))
    assert metres in (500, 1000, 2000) and px <= 0.25 * 640
    # the bar's pixels, taken back to lon/lat along the map's centre, span that many metres
    lat = (frame.miny + frame.maxy) / 2
    lon0 = frame.minx
    lon1 = lon0 + px / (frame.k * frame.scale)
    _, _, dist = pyproj.Geod(ellps="WGS84").inv(lon0, lat, lon1, lat)
    assert dist == pytest.approx(metres, rel=0.01)
    assert ">1 km<" in svg or ">2 km<" in svg or ">500 m<" in svg


def test_nice_lengths():
    assert [nice_length_m(v) for v in (730, 1999, 2100, 49, 12000)] == [500, 1000, 2000, 20, 10000]


def test_legend_escapes_labels():
    svg = legend_svg([("#cfe8c6", "#6b8f5e", "inside <script>"), ("rgb(227,26,28)", "none", "mining")])
    assert "<script>" not in svg and "&lt;script&gt;" in svg and svg.count("<rect") == 3


def test_background_grid_lies_under_the_map():
    frame = map_frame([LA_PAMPA], width_px=500)
    (minx, miny, maxx, maxy), width, height = background_grid(frame)
    assert (width, height) == (frame.width_px, frame.height_px)
    # pixel (10, 10) of the raster is the frame's north-west corner, as in the SVG
    px, py = frame.to_px(frame.minx, frame.maxy)
    assert (px, py) == (10, 10)
    assert minx + 10 * (maxx - minx) / width == pytest.approx(frame.minx)
    assert maxy - 10 * (maxy - miny) / height == pytest.approx(frame.maxy)
    east, south = frame.to_px(maxx, miny)
    assert east == pytest.approx(width) and south == pytest.approx(height)
