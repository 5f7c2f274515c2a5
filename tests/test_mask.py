"""Clear-sky masks: every SCL class and QA_PIXEL bit, the cloud buffer, the nodata-edge buffer.

The expected classes and bits are written out here from the product documentation, not taken
from the code under test:
- Sentinel-2 L2A Scene Classification (ESA, Sen2Cor product specification): 0 no data,
  1 saturated or defective, 2 dark area pixels, 3 cloud shadows, 4 vegetation, 5 not vegetated,
  6 water, 7 unclassified, 8 cloud medium probability, 9 cloud high probability, 10 thin cirrus,
  11 snow or ice.
- Landsat Collection 2 QA_PIXEL (USGS Landsat 8-9 C2 L2 Science Product Guide, table 6-3): bit 0
  fill, 1 dilated cloud, 2 cirrus, 3 cloud, 4 cloud shadow, 5 snow, 6 clear, 7 water.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from scipy import ndimage

from pipeline.sources import mask
from pipeline.sources.landsat import LANDSAT_C2_L2
from pipeline.sources.mask import qa_pixel_clear, qa_pixel_clear_pixels, scl_clear, scl_clear_pixels
from pipeline.sources.sentinel2 import EARTH_SEARCH_S2, PLANETARY_COMPUTER_S2

from .helpers import assert_numpy_dask_equal

BANDS = ("blue", "green", "red", "nir", "swir16", "swir22")
SCL_GROUND = {4, 5, 6, 7}                      # vegetation, not vegetated, water, unclassified
SCL_GROWN = {3, 8, 9, 10}                      # shadow and clouds: SCL misses their soft edges
QA_DROP = {0, 1, 2, 3, 4, 5}                   # fill, dilated cloud, cirrus, cloud, shadow, snow
QA_GROWN = {1, 2, 3, 4}                        # cloud-like flags grown by cloud_buffer_m
RES_M = 10.0


def scene(mask: np.ndarray, name: str = "scl") -> xr.Dataset:
    """Reflectance 0.1 everywhere (NaN where the mask band says nodata/fill) and the mask band."""
    nodata = (mask == 0) if name == "scl" else (mask & 1).astype(bool)
    refl = np.where(nodata, np.nan, 0.1).astype(np.float32)
    data = {b: (("time", "y", "x"), refl.copy()) for b in BANDS}
    data[name] = (("time", "y", "x"), mask.astype(np.uint8 if name == "scl" else np.uint16))
    return xr.Dataset(data, coords={"y": np.arange(mask.shape[1]) * -RES_M, "x": np.arange(mask.shape[2]) * RES_M})


def disk_pixels(radius_px: int) -> int:
    """Pixels whose centre lies within radius_px pixels of a pixel's centre (the buffer's footprint)."""
    yy, xx = np.mgrid[-radius_px:radius_px + 1, -radius_px:radius_px + 1]
    return int(((xx * xx + yy * yy) <= radius_px * radius_px).sum())


@pytest.mark.parametrize("scl_class", range(12))
def test_each_scl_class_is_clear_only_if_it_sees_the_ground(scl_class):
    classes = np.full((1, 5, 5), scl_class)
    clear = scl_clear(scene(classes), RES_M, cloud_buffer_m=0, nodata_edge_m=0).values
    assert clear.all() if scl_class in SCL_GROUND else not clear.any()


@pytest.mark.parametrize("scl_class", sorted(set(range(12)) - SCL_GROUND))
def test_only_cloud_and_shadow_classes_are_grown_by_the_cloud_buffer(scl_class):
    """One flagged pixel in a vegetated field, 20 m cloud buffer at 10 m: a disk of radius 2 px goes."""
    classes = np.full((1, 9, 9), 4)
    classes[0, 4, 4] = scl_class
    clear = scl_clear(scene(classes), RES_M, cloud_buffer_m=20.0, nodata_edge_m=0).values[0]
    dropped = int((~clear).sum())
    assert dropped == (disk_pixels(2) if scl_class in SCL_GROWN else 1), dropped
    assert not clear[4, 4]
    if scl_class in SCL_GROWN:
        assert not clear[4, 2] and not clear[2, 4], "the buffer reaches 20 m along the axes"
        assert clear[2, 2], "but not the corner at 28 m"


@pytest.mark.parametrize("edge_m, expected_px", [(0.0, 0), (10.0, 1), (20.0, 2), (30.0, 3)])
def test_nodata_edge_drops_the_pixels_within_its_distance_of_nodata(edge_m, expected_px):
    """A swath edge: the three left columns are nodata; edge_m / 10 m more columns are dropped."""
    classes = np.full((1, 8, 12), 4)
    classes[0, :, :3] = 0
    clear = scl_clear(scene(classes), RES_M, cloud_buffer_m=0.0, nodata_edge_m=edge_m).values[0]
    first_clear_column = int(np.argmax(clear.all(axis=0)))
    assert first_clear_column == 3 + expected_px
    assert clear[:, first_clear_column:].all()


def test_a_nan_in_any_reflectance_band_is_nodata_and_grows_the_edge():
    classes = np.full((1, 9, 9), 4)
    data = scene(classes)
    data["swir22"].values[0, 4, 4] = np.nan  # SCL says vegetation; one band has no value
    clear = scl_clear(data, RES_M, cloud_buffer_m=0.0, nodata_edge_m=10.0).values[0]
    assert int((~clear).sum()) == disk_pixels(1)
    assert not clear[4, 4] and not clear[4, 5] and clear[4, 6]


def test_the_cloud_buffer_does_not_grow_nodata_and_the_edge_does_not_grow_clouds():
    classes = np.full((1, 9, 20), 4)
    classes[0, 4, 4] = 9   # a high-probability cloud pixel
    classes[0, 4, 15] = 0  # a nodata pixel
    clear = scl_clear(scene(classes), RES_M, cloud_buffer_m=20.0, nodata_edge_m=0.0).values[0]
    assert int((~clear[:, :10]).sum()) == disk_pixels(2) and int((~clear[:, 10:]).sum()) == 1
    clear = scl_clear(scene(classes), RES_M, cloud_buffer_m=0.0, nodata_edge_m=20.0).values[0]
    assert int((~clear[:, :10]).sum()) == 1 and int((~clear[:, 10:]).sum()) == disk_pixels(2)


@pytest.mark.parametrize("bit", range(8))
def test_each_qa_pixel_bit(bit):
    """Bits 0-5 drop the pixel; 6 (clear) and 7 (water) keep it. Cloud-like bits are grown."""
    qa = np.full((1, 9, 9), 1 << 6, dtype=np.uint16)  # clear land
    qa[0, 4, 4] = (1 << bit) | (0 if bit in QA_DROP else 1 << 6)
    clear = qa_pixel_clear(scene(qa, "qa_pixel"), 30.0, cloud_buffer_m=60.0, nodata_edge_m=0.0).values[0]
    dropped = int((~clear).sum())
    if bit not in QA_DROP:
        assert dropped == 0
    else:
        assert dropped == (disk_pixels(2) if bit in QA_GROWN else 1), dropped


def test_qa_fill_is_nodata_and_grows_by_the_nodata_edge():
    qa = np.full((1, 6, 10), 1 << 6, dtype=np.uint16)
    qa[0, :, :2] = 1  # fill
    clear = qa_pixel_clear(scene(qa, "qa_pixel"), 30.0, cloud_buffer_m=0.0, nodata_edge_m=30.0).values[0]
    assert int(np.argmax(clear.all(axis=0))) == 3


@pytest.mark.parametrize("scl_class", range(12))
def test_evidence_chips_use_the_same_scl_classes(scl_class):
    assert bool(scl_clear_pixels(np.array([scl_class], dtype=float))[0]) == (scl_class in SCL_GROUND)
    assert not scl_clear_pixels(np.array([np.nan]))[0]


@pytest.mark.parametrize("bit", range(8))
def test_evidence_chips_use_the_same_qa_pixel_bits(bit):
    value = (1 << bit) | (0 if bit in QA_DROP else 1 << 6)
    assert bool(qa_pixel_clear_pixels(np.array([value], dtype=float))[0]) == (bit not in QA_DROP)
    assert not qa_pixel_clear_pixels(np.array([np.nan]))[0], "NaN is fill"


def test_each_profile_applies_its_own_mask_rule():
    classes = np.full((1, 5, 5), 4)
    classes[0, 2, 2] = 11  # snow
    data = scene(classes)
    for profile in (EARTH_SEARCH_S2, PLANETARY_COMPUTER_S2):
        assert int((~profile.clear_mask(data, RES_M, 0.0, 0.0).values).sum()) == 1, profile.name
    qa = np.full((1, 5, 5), 1 << 6, dtype=np.uint16)
    qa[0, 1, 1] = 1 << 3  # cloud
    assert int((~LANDSAT_C2_L2.clear_mask(scene(qa, "qa_pixel"), 30.0, 30.0, 0.0).values).sum()) == disk_pixels(1)
    composite = data.drop_vars("scl")
    clear = EARTH_SEARCH_S2.clear_mask(composite, RES_M, 0.0, 0.0)
    assert clear.values.all(), "no mask band: every valid pixel is clear"
    composite["red"].values[0, 0, 0] = np.nan
    assert int((~EARTH_SEARCH_S2.clear_mask(composite, RES_M, 0.0, 0.0).values).sum()) == 1


def test_buffers_cross_dask_chunk_borders():
    """A cloud and a nodata pixel right at a chunk border grow into the neighbouring chunk."""
    rng = np.random.default_rng(3)
    classes = np.where(rng.random((3, 40, 40)) < 0.03, 9, 4)
    classes[:, 19, 19] = 9
    classes[:, 20, 5] = 0
    data = scene(classes)
    assert_numpy_dask_equal(lambda d: scl_clear(d, RES_M, 30.0, 20.0), data, chunks={"time": 1, "y": 20, "x": 20})


@pytest.mark.parametrize("radius_px", [1, 2, 3, 5, 8])
def test_grown_masks_are_the_disk_dilation(radius_px):
    """Cloud and nodata masks grow by a disk of the buffer: exactly scipy's binary dilation with
    that disk, up to the array's edges (which count as unflagged), look by look."""
    rng = np.random.default_rng(radius_px)
    for shape, share in [((3, 40, 50), 0.02), ((2, 5, 7), 0.2), ((1, 1, 9), 0.3), ((2, 30, 1), 0.1)]:
        flags = rng.random(shape) < share
        flags[0, 0, 0] = True
        yy, xx = np.mgrid[-radius_px:radius_px + 1, -radius_px:radius_px + 1]
        disk = xx ** 2 + yy ** 2 <= radius_px ** 2
        expected = ndimage.binary_dilation(flags, structure=disk[np.newaxis])
        np.testing.assert_array_equal(mask._grow(flags, radius_px), expected)
    assert not mask._grow(np.zeros((2, 9, 9), bool), radius_px).any()
