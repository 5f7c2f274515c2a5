"""Alert polygons fit for GIS: holes and parts below the mapping unit go, stair-steps are smoothed."""

from __future__ import annotations

import numpy as np
import rasterio.features
import shapely
from affine import Affine

from pipeline.generalize import as_multipolygon, clean_polygon, polygon_stats

PIXEL_M = 10.0
UNIT_M2 = 5000.0  # 0.5 ha


def traced_scar() -> shapely.Geometry:
    """A ~30 ha pixel-traced scar: an ellipse with pinholes, specks and one real second pit."""
    yy, xx = np.mgrid[0:120, 0:120]
    mask = ((xx - 55) / 40.0) ** 2 + ((yy - 60) / 25.0) ** 2 <= 1
    rng = np.random.default_rng(3)
    holes = rng.integers(35, 85, size=(40, 2))
    mask[holes[:, 1] // 1, holes[:, 0]] = False  # pinholes of one pixel
    mask[52:58, 50:56] = False  # a 0.36 ha hole: below the unit, filled
    mask[10:20, 100:115] = True  # a 1.5 ha second pit: kept
    for k in range(8):  # one-pixel specks touching nothing: dropped
        mask[100 + 2 * k, 5 + 3 * k] = True
    transform = Affine(PIXEL_M, 0, 380000, 0, -PIXEL_M, 8560000)
    polygons = [shapely.geometry.shape(g) for g, v in
                rasterio.features.shapes(mask.astype("uint8"), mask=mask, transform=transform, connectivity=8)]
    return shapely.union_all(polygons)


def test_clean_polygon_drops_specks_and_pinholes_and_smooths_steps():
    raw = traced_scar()
    before = polygon_stats(raw)
    assert before["parts"] >= 10 and before["holes"] >= 20  # the test scar is as messy as the demo's
    cleaned = clean_polygon(raw, UNIT_M2, PIXEL_M)
    after = polygon_stats(cleaned)
    assert cleaned.is_valid
    assert after["parts"] == 2  # the ellipse and the 1.5 ha pit
    assert after["holes"] == 0
    assert after["vertices"] < before["vertices"] / 3  # stair-steps are gone
    # the reference: parts above the unit with every hole filled (all holes here are small)
    reference = shapely.union_all([shapely.Polygon(p.exterior) for p in shapely.get_parts(raw)
                                   if shapely.Polygon(p.exterior).area >= UNIT_M2])
    assert abs(cleaned.area - reference.area) <= 0.03 * reference.area
    # smoothing moves the outline by less than a pixel
    assert cleaned.symmetric_difference(reference).area < 0.05 * reference.area
    assert cleaned.hausdorff_distance(reference) <= PIXEL_M


def test_clean_polygon_keeps_a_big_hole_and_the_largest_part():
    outer = shapely.box(0, 0, 400, 400)
    lake = shapely.box(100, 100, 300, 300)  # 4 ha: a real island of forest, kept
    raw = shapely.MultiPolygon([outer.difference(lake), shapely.box(1000, 1000, 1020, 1020)])
    cleaned = clean_polygon(raw, UNIT_M2, PIXEL_M)
    assert polygon_stats(cleaned)["holes"] == 1 and polygon_stats(cleaned)["parts"] == 1
    tiny = shapely.box(0, 0, 30, 30)  # below the unit, but the only part: never emptied
    assert clean_polygon(tiny, UNIT_M2, PIXEL_M).area == tiny.area


def test_as_multipolygon():
    assert as_multipolygon(shapely.box(0, 0, 1, 1)).geom_type == "MultiPolygon"
    assert len(as_multipolygon(shapely.GeometryCollection([shapely.box(0, 0, 1, 1), shapely.Point(5, 5)])).geoms) == 1
