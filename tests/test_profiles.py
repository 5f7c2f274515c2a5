"""Source profiles at their edges: the processing-baseline offset rule at exactly 04.00, partial
raster:bands, the Landsat C2 L2 default scaling, and the negative-reflectance guard at 20 %."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pystac
import pytest
import xarray as xr

from pipeline.errors import InputError
from pipeline.sources.landsat import LANDSAT_C2_L2
from pipeline.sources.load import check_reflectance, negative_fraction
from pipeline.sources.registry import resolve_profile
from pipeline.sources.sentinel2 import EARTH_SEARCH_S2, PLANETARY_COMPUTER_S2


def item(collection: str, keys, properties=None, raster_bands=None) -> pystac.Item:
    out = pystac.Item("ITEM", {"type": "Point", "coordinates": [-70.0, -12.8]}, None,
                      dt.datetime(2022, 6, 1, tzinfo=dt.timezone.utc), dict(properties or {}), collection=collection)
    for key in keys:
        extra = {"raster:bands": [raster_bands]} if raster_bands is not None else {}
        out.add_asset(key, pystac.Asset(f"{key}.tif", extra_fields=extra))
    return out


PC_KEYS = ("B02", "B03", "B04", "B08", "B11", "B12", "SCL")
LANDSAT_KEYS = ("blue", "green", "red", "nir08", "swir16", "swir22", "qa_pixel")


@pytest.mark.parametrize("baseline, offset", [("03.01", 0.0), ("04.00", -0.1), ("04.01", -0.1), ("05.10", -0.1)])
def test_planetary_computer_offset_starts_at_processing_baseline_04_00(baseline, offset):
    """ESA: from baseline 04.00 (25 Jan 2022) L2A DN carry +1000, i.e. reflectance = DN × 1e-4 − 0.1."""
    pc = item("sentinel-2-l2a", PC_KEYS, {"s2:processing_baseline": baseline})
    assert resolve_profile(pc) is PLANETARY_COMPUTER_S2
    assert PLANETARY_COMPUTER_S2.scale_offset(pc, "B04") == pytest.approx((1e-4, offset))


def test_raster_bands_win_even_when_they_give_only_a_scale():
    """An asset that states its scale and no offset has offset 0: the profile's offset is not added."""
    es = item("sentinel-2-l2a", ("blue", "green", "red", "nir", "swir16", "swir22", "scl"),
              raster_bands={"scale": 1e-4})
    assert EARTH_SEARCH_S2.scale_offset(es, "red") == (1e-4, 0.0)
    only_offset = item("sentinel-2-l2a", ("blue", "red", "swir16"), raster_bands={"offset": -0.1})
    assert EARTH_SEARCH_S2.scale_offset(only_offset, "red") == (1.0, -0.1)


def test_landsat_without_raster_bands_uses_the_usgs_collection_2_scaling():
    """USGS Landsat C2 L2 surface reflectance: DN × 2.75e-5 − 0.2."""
    ls = item("landsat-c2-l2", LANDSAT_KEYS, {"platform": "LANDSAT_8"})
    assert resolve_profile(ls) is LANDSAT_C2_L2
    assert LANDSAT_C2_L2.scale_offset(ls, "red") == pytest.approx((2.75e-5, -0.2))
    assert LANDSAT_C2_L2.platform(ls) == "landsat_8"


def test_each_collection_goes_to_the_profile_whose_assets_it_has():
    assert resolve_profile(item("sentinel-2-l2a", PC_KEYS, {"s2:processing_baseline": "05.00"})) is PLANETARY_COMPUTER_S2
    assert resolve_profile(item("sentinel-2-l2a", ("blue", "red", "swir16", "scl"))) is EARTH_SEARCH_S2
    with pytest.raises(InputError, match="ITEM"):
        resolve_profile(item("sentinel-1-grd", ("vv", "vh")))


@pytest.mark.parametrize("share, refused", [(0.15, False), (0.20, False), (0.25, True)])
def test_a_look_is_refused_when_more_than_a_fifth_of_its_pixels_are_massively_negative(share, refused):
    """The README: "more than 20 % below −0.05 in a visible band" is refused, naming the items."""
    n = 100
    red = np.full((1, 1, n), 0.04, "float32")
    red[0, 0, : int(round(share * n))] = -0.06
    data = xr.Dataset({b: (("time", "y", "x"), red) for b in ("blue", "green", "red")})
    fractions = negative_fraction(data).values
    assert fractions[0] == pytest.approx(share)
    if refused:
        with pytest.raises(InputError, match="S2X_LOOK"):
            check_reflectance(fractions, [("S2X_LOOK",)])
    else:
        check_reflectance(fractions, [("S2X_LOOK",)])
