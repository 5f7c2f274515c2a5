"""Per-scar features (pipeline.features): pure, in metric units, the same at 10 m and 30 m."""

import numpy as np
import pytest

from pipeline.features import FEATURES, POST_BANDS, scar_features

# Real medians from the La Pampa Landsat clip (AMW 2018 polygons): sediment and a turbid pond;
# forest outside them.
SEDIMENT = np.array([0.193, 0.252, 0.286, 0.341, 0.348, 0.298])
POND = np.array([0.224, 0.271, 0.310, 0.314, 0.078, 0.059])
FOREST = np.array([0.024, 0.035, 0.024, 0.310, 0.133, 0.050])


def _layers(surface: np.ndarray, mask: np.ndarray, water: np.ndarray | None = None) -> dict:
    """Change layers of a window whose post-change surface is ``surface`` (6, y, x) on ``mask``."""
    layers = {name: np.where(mask, surface[i], np.nan) for i, name in enumerate(POST_BANDS)}
    layers["baseline_ndvi"] = np.full(mask.shape, 0.86)
    layers["baseline_mndwi"] = np.full(mask.shape, -0.6)
    layers["water"] = np.zeros(mask.shape) if water is None else water.astype(float)
    return layers


def _paint(shape, *parts):
    surface = np.zeros((6, *shape))
    surface[:] = FOREST[:, None, None]
    for spectrum, where in parts:
        surface[:, where] = spectrum[:, None]
    return surface


def test_shapes_read_as_shapes():
    yy, xx = np.mgrid[:80, :80]
    disc = np.hypot(yy - 40, xx - 40) < 20
    strip = (np.abs(yy - 40) < 5) & (np.abs(xx - 40) < 20)       # 40 × 10 px rectangle
    ring = disc & ~(np.hypot(yy - 40, xx - 40) < 8)
    f_disc = scar_features(_layers(_paint(disc.shape, (SEDIMENT, disc)), disc), disc, 10.0)
    f_strip = scar_features(_layers(_paint(strip.shape, (SEDIMENT, strip)), strip), strip, 10.0)
    f_ring = scar_features(_layers(_paint(ring.shape, (SEDIMENT, ring)), ring), ring, 10.0)
    # The staircase outline is corrected by pi/4 (exact for a disc, an undercount for axis-aligned edges).
    assert f_disc["compactness"] > 0.9 and f_strip["compactness"] < 0.8 * f_disc["compactness"]
    assert f_strip["rectangularity"] > 0.95 and f_disc["rectangularity"] < 0.85
    assert f_strip["elongation"] == pytest.approx(4.0, rel=0.1) and f_disc["elongation"] == pytest.approx(1.0, abs=0.05)
    assert f_ring["hole_fraction"] == pytest.approx(np.pi * 8 ** 2 / (np.pi * 20 ** 2), abs=0.03)
    assert f_disc["hole_fraction"] == 0.0
    assert f_disc["log_area_ha"] == pytest.approx(np.log10(disc.sum() * 100 / 1e4))


def test_sediment_and_turbid_pond_are_measured():
    yy, xx = np.mgrid[:60, :60]
    scar = (np.abs(yy - 30) < 15) & (np.abs(xx - 30) < 15)
    pond = scar & (xx < 30)
    f = scar_features(_layers(_paint(scar.shape, (SEDIMENT, scar), (POND, pond)), scar), scar, 10.0)
    assert f["water_share"] == pytest.approx(pond.sum() / scar.sum())
    assert f["sediment_share"] == pytest.approx(1 - pond.sum() / scar.sum())
    assert f["pond_red_green"] == pytest.approx(POND[2] / POND[1], abs=0.01)
    assert f["vis_brightness"] == pytest.approx(SEDIMENT[:3].mean(), abs=0.01)   # land pixels only
    assert f["bsi_median"] > 0 and f["burnt_share"] == 0 and f["veg_share"] == 0


# Bare Porto Velho pasture soil (median of data/endmembers bare_soil there): SWIR1 well above red.
BARE_SOIL = np.array([0.075, 0.110, 0.135, 0.207, 0.279, 0.229])
# Wet mining sediment: darker in every band, SWIR most (water absorbs there), so its mean
# visible reflectance (0.11) is that of the bare soil above, but its spectrum stays flat.
WET_SEDIMENT = SEDIMENT * np.array([0.45, 0.45, 0.45, 0.42, 0.38, 0.32])


def test_sediment_is_told_by_the_shape_of_its_spectrum_not_its_brightness():
    """Dark (wet) sediment is sediment, bright bare soil is not; a sensor's gain changes neither."""
    yy, xx = np.mgrid[:40, :40]
    scar = (np.abs(yy - 20) < 10) & (np.abs(xx - 20) < 10)
    assert WET_SEDIMENT[:3].mean() < BARE_SOIL[:3].mean() * 1.05

    def share(spectrum):
        return scar_features(_layers(_paint(scar.shape, (spectrum, scar)), scar), scar, 10.0)["sediment_share"]

    assert share(SEDIMENT) == 1.0 and share(WET_SEDIMENT) == 1.0
    assert share(SEDIMENT * 0.5) == 1.0 and share(SEDIMENT * 0.5 + 0.01) == 1.0   # gain, a little haze
    assert share(BARE_SOIL) == 0.0 and share(BARE_SOIL * 1.6) == 0.0            # bright bare soil
    assert share(FOREST) == 0.0


def test_ring_sediment_reads_older_sediment_in_the_baseline_by_its_shape():
    """Earlier pits around the scar count in ring_sediment_fraction, dark or bright; bare soil does not."""
    scar = np.zeros((60, 60), bool)
    scar[25:35, 25:35] = True
    ring_west = np.zeros_like(scar)
    ring_west[20:40, 18:25] = True                              # inside the 90 m ring, west of the scar
    fractions = {}
    for name, ground in (("wet", WET_SEDIMENT), ("dry", SEDIMENT), ("soil", BARE_SOIL)):
        layers = _layers(_paint(scar.shape, (SEDIMENT, scar)), scar)
        base = _paint(scar.shape, (ground, ring_west))
        layers.update({f"base_{b}": base[i] for i, b in enumerate(("blue", "green", "red", "nir", "swir16", "swir22"))})
        layers["baseline_ndvi"] = (base[3] - base[2]) / (base[3] + base[2])
        fractions[name] = scar_features(layers, scar, 10.0)["ring_sediment_fraction"]
    assert fractions["wet"] == fractions["dry"] > 0.2
    assert fractions["soil"] == 0.0


def test_spectral_features_do_not_depend_on_the_pixel_size():
    """The same ground seen at 10 m and at 30 m (block means) gives the same spectra and area."""
    yy, xx = np.mgrid[:90, :90]
    scar = np.hypot(yy - 45, xx - 45) < 30
    pond = scar & (np.hypot(yy - 45, xx - 35) < 10)
    surface = _paint(scar.shape, (SEDIMENT, scar), (POND, pond))
    fine = scar_features(_layers(surface, scar), scar, 10.0)
    coarse_surface = surface.reshape(6, 30, 3, 30, 3).mean(axis=(2, 4))
    coarse_mask = scar.reshape(30, 3, 30, 3).mean(axis=(1, 3)) > 0.5
    coarse = scar_features(_layers(coarse_surface, coarse_mask), coarse_mask, 30.0)
    for name in ("vis_brightness", "swir_brightness", "red_swir1", "nir_swir1", "swir2_swir1", "pond_red_green"):
        assert coarse[name] == pytest.approx(fine[name], rel=0.12), name
    assert coarse["log_area_ha"] == pytest.approx(fine["log_area_ha"], abs=0.05)


def test_context_reads_distance_to_water_and_the_ring():
    scar = np.zeros((60, 60), bool)
    scar[20:40, 20:40] = True
    water = np.zeros_like(scar)
    water[:, 45:] = True                                        # a river 6 px east of the scar
    layers = _layers(_paint(scar.shape, (SEDIMENT, scar)), scar, water)
    layers["baseline_ndvi"][:, :10] = 0.3                        # pasture far west: outside the ring
    f = scar_features(layers, scar, 10.0)
    assert f["dist_water_m"] == pytest.approx(60.0, abs=10.0)
    assert 0 < f["ring_water_fraction"] < 0.3 and f["ring_open_fraction"] == 0.0
    assert f["baseline_ndvi"] == pytest.approx(0.86)


def test_only_surface_shape_and_context_no_clock():
    assert not [name for name in FEATURES if "look" in name or "onset" in name or "flag" in name]
    assert len(set(FEATURES)) == len(FEATURES)


def test_bad_input_is_refused():
    layers = _layers(_paint((10, 10)), np.zeros((10, 10), bool))
    with pytest.raises(ValueError, match="empty scar mask"):
        scar_features(layers, np.zeros((10, 10), bool), 10.0)
    mask = np.ones((10, 10), bool)
    with pytest.raises(ValueError, match="resolution_m"):
        scar_features(layers, mask, float("nan"))
    with pytest.raises(ValueError, match="missing layers"):
        scar_features({"water": np.zeros((10, 10))}, mask, 10.0)


def test_hull_measures_from_the_rows_outer_pixels_equal_those_of_every_pixel():
    """Solidity and rectangularity use each row's outermost pixels only: the very numbers the
    convex hull of every pixel's corners gives, on random blobs with holes and notches."""
    import shapely
    from scipy import ndimage

    from pipeline.features import _hull_measures

    def every_pixel(mask):
        rows, cols = np.nonzero(mask)
        corners = np.concatenate([np.stack([cols + dx, rows + dy], 1) for dx in (0, 1) for dy in (0, 1)])
        hull = shapely.MultiPoint(corners).convex_hull
        rect = hull.minimum_rotated_rectangle.area if hull.area > 0 else 1.0
        return min(mask.sum() / max(hull.area, 1.0), 1.0), min(mask.sum() / max(rect, 1.0), 1.0)

    rng = np.random.default_rng(5)
    checked = 0
    for _ in range(300):
        blobs = ndimage.binary_opening(rng.random(tuple(rng.integers(2, 40, 2))) < rng.uniform(0.3, 0.9))
        labels, n = ndimage.label(blobs)
        for label in range(1, min(n, 4) + 1):
            mask = labels == label
            assert _hull_measures(mask) == every_pixel(mask)
            checked += 1
    assert checked > 300


def test_latest_mining_gain_is_what_the_latest_look_adds_to_the_median():
    """A pit felled first: the median over its looks is slash and bare soil (no sediment), the
    latest look shows sediment on 3/4 of it: gain 0.75. When the latest look shows what the median
    shows (a composite, a single look, a mine dug at once) the gain is 0, and without the layer too."""
    from pipeline.features import mining_ground

    yy, xx = np.mgrid[:60, :60]
    scar = (np.abs(yy - 30) < 16) & (np.abs(xx - 30) < 16)
    slash = np.array([0.05, 0.07, 0.09, 0.17, 0.25, 0.16])        # bare soil and dead wood: red/SWIR1 0.36
    felled = _layers(_paint(scar.shape, (slash, scar)), scar)
    dug = scar & (xx < 30 + 8)
    latest = _paint(scar.shape, (slash, scar), (SEDIMENT, dug))
    assert scar_features(felled, scar, 10.0)["sediment_share"] == 0
    felled["latest_mining_ground"] = np.where(scar, mining_ground(*latest), np.nan)
    assert scar_features(felled, scar, 10.0)["latest_mining_gain"] == pytest.approx(dug.sum() / scar.sum())

    pit = _layers(_paint(scar.shape, (SEDIMENT, scar)), scar)
    assert scar_features(pit, scar, 10.0)["latest_mining_gain"] == 0.0            # no layer
    pit["latest_mining_ground"] = np.where(scar, mining_ground(*_paint(scar.shape, (SEDIMENT, scar))), np.nan)
    assert scar_features(pit, scar, 10.0)["latest_mining_gain"] == pytest.approx(0.0)
