"""Imagery sources: real STAC JSON from Earth Search and Planetary Computer maps onto the common
bands with the right scale/offset, and one ground scene served three ways gives the same scars."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pystac
import pytest
import shapely
import shapely.geometry
import xarray as xr

from pipeline.config import load_config
from pipeline.errors import InputError
from pipeline.harmonize import MSI_TO_OLI, fuse, msi_to_oli
from pipeline.model import BANDS as REFLECTANCE_BANDS
from pipeline.model import Observations
from pipeline.sources.landsat import LANDSAT_C2_L2
from pipeline.sources.load import check_reflectance, href_patcher, negative_fraction, partition_items
from pipeline.sources.mask import qa_pixel_clear
from pipeline.sources.registry import resolve_profile
from pipeline.sources.sentinel2 import EARTH_SEARCH_S2, PLANETARY_COMPUTER_S2
from pipeline.run import run

from . import encodings
from .conftest import write_config

STAC = Path(__file__).parent / "data" / "stac"


def _items(path: Path) -> list[pystac.Item]:
    data = json.loads(path.read_text())
    features = data["features"] if isinstance(data, dict) and "features" in data else [data]
    return [pystac.Item.from_dict(f) for f in features]


REAL_ITEMS = {
    # item id: (file, profile, (scale, offset) of the reflectance bands, platform)
    "S2A_13TDE_20231008_0_L2A": ("earth-search-v1/search-multi-collection-page-1.json", EARTH_SEARCH_S2,
                                 (1e-4, -0.1), "sentinel-2a"),
    "LC08_L2SP_033032_20231008_02_T1": ("earth-search-v1/search-multi-collection-page-1.json", LANDSAT_C2_L2,
                                        (2.75e-5, -0.2), "landsat-8"),
    "S2B_T24MUV_20250731T130245_L2A": ("earth-search-v1/S2B_T24MUV_20250731T130245_L2A.json", EARTH_SEARCH_S2,
                                       (1e-4, -0.1), "sentinel-2b"),
    # Planetary Computer S2: no raster:bands; baseline 02.12 -> no offset, 05.10 -> -0.1
    "S2B_MSIL2A_20190629T212529_R043_T06VVN_20201006T080531": (
        "planetary-computer/S2B_MSIL2A_20190629T212529_R043_T06VVN_20201006T080531.json",
        PLANETARY_COMPUTER_S2, (1e-4, 0.0), "sentinel-2b"),
    "S2B_MSIL2A_20240419T095549_R122_T47XML_20240419T123458": (
        "planetary-computer/S2B_MSIL2A_20240419T095549_R122_T47XML_20240419T123458.json",
        PLANETARY_COMPUTER_S2, (1e-4, -0.1), "sentinel-2b"),
    "LC09_L2SR_084082_20250722_02_T1": ("planetary-computer/LC09_L2SR_084082_20250722_02_T1.json", LANDSAT_C2_L2,
                                        (2.75e-5, -0.2), "landsat-9"),
}


@pytest.mark.parametrize("item_id", sorted(REAL_ITEMS))
def test_real_items_map_to_profile_bands_and_scale_offset(item_id):
    file, profile, (scale, offset), platform = REAL_ITEMS[item_id]
    item = next(i for i in _items(STAC / file) if i.id == item_id)
    assert resolve_profile(item) is profile
    for band, key in profile.asset_keys().items():
        assert key in item.assets, f"{item_id}: {band} asset {key} missing"
    for key in profile.assets.values():
        got = profile.scale_offset(item, key)
        assert got == pytest.approx((scale, offset)), f"{item_id} {key}"
    assert profile.platform(item) == platform


def test_earth_search_offset_is_not_applied_twice():
    """Earth Search items say boa_offset_applied and carry offset -0.1: exactly -0.1 is used."""
    item = next(i for i in _items(STAC / "earth-search-v1/search-multi-collection-page-1.json")
                if i.collection_id == "sentinel-2-l2a")
    assert item.properties["earthsearch:boa_offset_applied"] is True
    assert item.properties["s2:processing_baseline"] >= "04.00"
    dn_forest_red = 1300  # 0.03 reflectance + the 1000 DN offset
    scale, offset = EARTH_SEARCH_S2.scale_offset(item, "red")
    assert dn_forest_red * scale + offset == pytest.approx(0.03)


def test_planetary_computer_offset_follows_processing_baseline_not_date():
    item = _items(STAC / "planetary-computer/S2B_MSIL2A_20240419T095549_R122_T47XML_20240419T123458.json")[0]
    old = item.clone()
    old.properties["s2:processing_baseline"] = "03.01"  # a 2024 date, but an old baseline
    assert PLANETARY_COMPUTER_S2.scale_offset(old, "B04") == (1e-4, 0.0)
    del old.properties["s2:processing_baseline"]
    with pytest.raises(InputError, match=item.id):
        PLANETARY_COMPUTER_S2.scale_offset(old, "B04")


def test_search_pages_and_collections_parse():
    page1 = json.loads((STAC / "earth-search-v1/search-multi-collection-page-1.json").read_text())
    page2 = json.loads((STAC / "earth-search-v1/search-multi-collection-page-2.json").read_text())
    assert len(pystac.ItemCollection.from_dict(page1)) == 2
    assert len(pystac.ItemCollection.from_dict(page2)) == 0  # the end of paging
    assert [ln["rel"] for ln in page1["links"] if ln["rel"] == "next"] == ["next"]
    groups = partition_items(_items(STAC / "earth-search-v1/search-multi-collection-page-1.json"))
    assert sorted(resolve_profile(g[0]).name for g in groups) == ["earth-search-s2", "landsat-c2-l2"]
    for file, profile in (("planetary-computer/collection-sentinel-2-l2a.json", PLANETARY_COMPUTER_S2),
                          ("earth-search-v1/collection-landsat-c2-l2.json", LANDSAT_C2_L2)):
        collection = pystac.Collection.from_dict(json.loads((STAC / file).read_text()))
        assert collection.id in profile.collections
        assert set(profile.asset_keys().values()) <= set(collection.extra_fields["item_assets"])


def test_planetary_computer_hrefs_are_signed_at_read_time_only():
    import planetary_computer

    pc = _items(STAC / "planetary-computer/LC09_L2SR_084082_20250722_02_T1.json")
    es = _items(STAC / "earth-search-v1/S2B_T24MUV_20250731T130245_L2A.json")
    assert href_patcher(pc) is planetary_computer.sign
    assert href_patcher(es) is None
    assert "?" not in pc[0].assets["red"].href  # nothing signed is stored


def test_qa_pixel_mask_drops_flagged_bits_and_grows_clouds():
    qa = np.full((1, 7, 7), 1 << 6, dtype="uint16")  # clear
    qa[0, 0, 0] = 1  # fill
    qa[0, 3, 3] = (1 << 3) | (1 << 1)  # cloud + dilated cloud
    qa[0, 6, 6] = 1 << 5  # snow
    qa[0, 6, 0] = (1 << 6) | (1 << 7)  # water: kept
    refl = xr.DataArray(np.full((1, 7, 7), 0.1, "float32"), dims=("time", "y", "x"))
    data = xr.Dataset({b: refl for b in REFLECTANCE_BANDS} | {"qa_pixel": (("time", "y", "x"), qa)})
    clear = qa_pixel_clear(data, resolution_m=30, cloud_buffer_m=30, nodata_edge_m=0).values[0]
    assert not clear[0, 0] and not clear[6, 6] and clear[6, 0]
    assert not clear[3, 3] and not clear[2, 3] and not clear[3, 4]  # grown by one pixel
    assert clear[1, 1] and clear[5, 5]
    lazy = qa_pixel_clear(data.chunk({"y": 4, "x": 4}), 30, 30, 0).compute().values[0]
    np.testing.assert_array_equal(lazy, clear)


def test_mass_negative_reflectance_is_refused_naming_the_item():
    red = np.full((2, 4, 4), 0.04, "float32")
    red[1] -= 0.1  # a look with the offset applied twice
    data = xr.Dataset({b: (("time", "y", "x"), red) for b in ("blue", "green", "red")})
    fractions = negative_fraction(data).values
    assert fractions[0] == 0 and fractions[1] == 1
    check_reflectance(fractions[:1], [("A",)])
    with pytest.raises(InputError, match="ITEM_B"):
        check_reflectance(fractions, [("ITEM_A",), ("ITEM_B",)])


def test_msi_to_oli_adjustment_and_fusion_keep_time_order():
    def part(sensor, days, value):
        shape = (len(days), 2, 2)
        data = xr.Dataset({b: (("time", "y", "x"), np.full(shape, value, "float32")) for b in REFLECTANCE_BANDS},
                          coords={"time": np.array(days, dtype="datetime64[ns]"), "y": [1.0, 0.0], "x": [0.0, 1.0]})
        data.attrs["sensor"] = sensor
        obs = Observations(data, tuple((f"{sensor}-{d}",) for d in days), tuple(sensor for _ in days))
        return obs, xr.DataArray(np.ones(shape, bool), dims=("time", "y", "x"), coords=data.coords)

    s2 = part("sentinel-2", ["2020-01-05", "2020-01-20"], 0.2)
    ls = part("landsat", ["2020-01-10"], 0.2)
    fused, clear = fuse([s2, ls])
    assert [str(t)[:10] for t in fused.data.time.values] == ["2020-01-05", "2020-01-10", "2020-01-20"]
    assert fused.sensors_by_time == ("sentinel-2", "landsat", "sentinel-2")
    slope, intercept = MSI_TO_OLI["red"]
    assert float(fused.data["red"][0, 0, 0]) == pytest.approx(0.2 * slope + intercept)
    assert float(fused.data["red"][1, 0, 0]) == pytest.approx(0.2)  # Landsat is the reference
    assert clear.shape == (3, 2, 2)
    assert float(msi_to_oli(s2[0].data)["blue"][0, 0, 0]) == pytest.approx(0.2 * 0.9778 - 0.004)


# --- one ground scene, three encodings ---------------------------------------------------------


@pytest.fixture(scope="module")
def three_ways(small_scene, tmp_path_factory):
    """Alerts of the small scene read as Earth Search S2, Planetary Computer S2 and Landsat C2 L2."""
    root = tmp_path_factory.mktemp("three-ways")
    catalogs = {
        "earth-search": (small_scene / "catalog.json", {}),
        "planetary-computer": (encodings.write_planetary_computer_s2(small_scene / "catalog.json", root / "pc"), {}),
        "landsat": (encodings.write_landsat_c2(small_scene / "catalog.json", root / "ls"),
                    {"source.collections": ["landsat-c2-l2"], "detection.resolution_m": 30}),
    }
    alerts = {}
    for name, (catalog, changes) in catalogs.items():
        config = write_config(root / name, small_scene, **{"source.stac_catalog": str(catalog)}, **changes)
        alerts[name] = run(load_config(config)).alerts.to_crs(32719)
    return alerts


def _match(reference: gpd.GeoDataFrame, other: gpd.GeoDataFrame) -> list[tuple]:
    pairs = []
    for _, ref in reference.iterrows():
        overlaps = other[other.intersects(ref.geometry)]
        assert len(overlaps) >= 1, f"scar of {ref.area_ha} ha ({ref['class']}) not found"
        best = overlaps.iloc[int(np.argmax(overlaps.intersection(ref.geometry).area.values))]
        pairs.append((ref, best))
    return pairs


def test_planetary_computer_encoding_gives_the_same_scars(three_ways):
    es, pc = three_ways["earth-search"], three_ways["planetary-computer"]
    assert len(es) >= 5 and len(pc) == len(es)
    for ref, got in _match(es, pc):
        assert got["class"] == ref["class"]
        assert got.area_ha == pytest.approx(ref.area_ha, rel=0.02)
        assert got.sensors == ref.sensors


def test_landsat_encoding_gives_the_same_scars(three_ways):
    es, ls = three_ways["earth-search"], three_ways["landsat"]
    assert len(ls) == len(es)
    for ref, got in _match(es, ls):
        assert got["class"] == ref["class"]
        # 30 m pixels: big scars within 15 %. A 2-3 ha scar is whole edge pixels: the 160 m square
        # clearing covers 25-49 pixels of 30 m (2.25-4.41 ha) depending on how it falls on the grid
        # and which edge pixels count (its Landsat scar: 3.06 ha with the forest-loss path alone,
        # 3.33 ha with both paths, against 2.62 ha at 10 m), so within 30 %.
        assert got.area_ha == pytest.approx(ref.area_ha, rel=0.15 if ref.area_ha >= 3 else 0.3)
        assert got.sensors == ["landsat-8"]


def test_sentinel2_and_landsat_fused_use_every_look(three_ways, small_scene, tmp_path):
    """Every other look served as Landsat: one fused series finds the same scars, seen by both."""
    items = sorted(encodings.read_items(small_scene / "catalog.json"), key=lambda i: i.datetime)
    landsat_ids = {i.id for i in items[1::2]}
    catalog = encodings.mixed_catalog(small_scene / "catalog.json", tmp_path, landsat_ids)
    config = load_config(write_config(tmp_path, small_scene, **{
        "source.stac_catalog": str(catalog), "source.collections": ["sentinel-2-l2a", "landsat-c2-l2"],
        "detection.resolution_m": 30}))
    fused = run(config).alerts.to_crs(32719)
    es = three_ways["earth-search"]
    _match(es, fused)  # every scar is found
    assert len(es) - 2 <= len(fused) <= len(es)  # at 30 m two scars 1 pixel apart may join
    seen_by_both = 0
    for _, got in fused.iterrows():
        refs = es[es.intersects(got.geometry)]
        assert len(refs) >= 1, f"fused alert of {got.area_ha} ha has no Sentinel-2-only counterpart"
        assert set(refs["class"]) == {got["class"]}
        # 15 % for one large scar; joined or small scars gain or lose a ring of 30 m pixels (30 %:
        # see test_landsat_encoding_gives_the_same_scars)
        tolerance = 0.15 if len(refs) == 1 and refs.area_ha.sum() >= 3 else 0.3
        assert got.area_ha == pytest.approx(refs.area_ha.sum(), rel=tolerance)
        seen_by_both += "landsat-8" in got.sensors and any(s.startswith("sentinel-2") for s in got.sensors)
    assert seen_by_both >= len(fused) // 2


def test_doubled_offset_is_refused_naming_the_item(small_scene, tmp_path):
    items = encodings.read_items(small_scene / "catalog.json")
    bad = items[-1].id
    catalog = encodings.with_offset(small_scene / "catalog.json", tmp_path / "cat", {bad}, -0.2)
    config = load_config(write_config(tmp_path, small_scene, **{"source.stac_catalog": str(catalog)}))
    with pytest.raises(InputError, match=bad):
        run(config)


# --- an area across two UTM zones ---------------------------------------------------------------

FOREST = {"blue": 0.02, "green": 0.05, "red": 0.03, "nir": 0.35, "swir16": 0.15, "swir22": 0.07}
SOIL = {"blue": 0.08, "green": 0.11, "red": 0.15, "nir": 0.22, "swir16": 0.30, "swir22": 0.25}
SCARS_LONLAT = {"west": (-72.020, -12.010, -72.017, -12.007), "east": (-71.985, -12.010, -71.982, -12.007)}


def _write_zone_tile(folder: Path, epsg: int, lonlat_bounds, when, scars: bool, seed: int) -> pystac.Item:
    """A Landsat C2 L2 tile (no QA band) in UTM ``epsg``: forest, with bare-soil scars if ``scars``."""
    import pyproj
    import rasterio
    from affine import Affine

    from pipeline.sources.load import make_geobox

    to_utm = pyproj.Transformer.from_crs(4326, epsg, always_xy=True)
    xs, ys = to_utm.transform([lonlat_bounds[0], lonlat_bounds[2]] * 2, [lonlat_bounds[1]] * 2 + [lonlat_bounds[3]] * 2)
    geobox = make_geobox((min(xs), min(ys), max(xs), max(ys)), epsg, 30.0)
    h, w = geobox.shape
    t = geobox.transform
    cols, rows = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    lon, lat = pyproj.Transformer.from_crs(epsg, 4326, always_xy=True).transform(t.c + cols * t.a, t.f + rows * t.e)
    bare = np.zeros((h, w), bool)
    if scars:
        for x0, y0, x1, y1 in SCARS_LONLAT.values():
            bare |= (lon >= x0) & (lon <= x1) & (lat >= y0) & (lat <= y1)
    rng = np.random.default_rng(seed)
    item_id = f"LC08_{epsg}_{when:%Y%m%d}"
    footprint = shapely.box(*lonlat_bounds)
    item = pystac.Item(item_id, shapely.geometry.mapping(footprint), list(footprint.bounds), when,
                       {"platform": "landsat-8", "eo:cloud_cover": 0.0, "proj:epsg": epsg}, collection="landsat-c2-l2")
    for band, key in encodings.LANDSAT_KEYS.items():
        refl = np.where(bare, SOIL[band], FOREST[band]) + rng.normal(0, 0.004, (h, w))
        dn = np.clip(np.rint((refl + 0.2) / 2.75e-5), 1, 65535).astype("uint16")
        path = folder / item_id / f"{key}.tif"
        path.parent.mkdir(parents=True, exist_ok=True)
        with rasterio.open(path, "w", driver="GTiff", height=h, width=w, count=1, dtype="uint16",
                           crs=f"EPSG:{epsg}", transform=Affine(*list(t)[:6]), nodata=0) as dst:
            dst.write(dn, 1)
        item.add_asset(key, pystac.Asset(str(path), extra_fields={"raster:bands": [
            {"nodata": 0, "data_type": "uint16", "scale": 2.75e-5, "offset": -0.2}]}))
    return item


def test_area_across_two_utm_zones_is_alerted_on_both_sides(tmp_path, small_scene):
    import datetime as dt

    from pipeline.aoi import utm_epsg

    west, east = (-72.03, -12.02, -71.997, -11.99), (-72.003, -12.02, -71.97, -11.99)
    items = []
    for n, day in enumerate(["2020-06-01", "2020-06-17", "2021-06-04", "2021-06-20"]):
        when = dt.datetime.fromisoformat(f"{day}T15:00:00+00:00")
        monitor = day.startswith("2021")
        items.append(_write_zone_tile(tmp_path / "tiles", 32718, west, when, monitor, 10 * n))
        items.append(_write_zone_tile(tmp_path / "tiles", 32719, east, when, monitor, 10 * n + 1))
    catalog = encodings.save_catalog(items, tmp_path / "catalog", "two-zones")
    area = shapely.box(-72.027, -12.017, -71.975, -11.993)
    assert utm_epsg(area.centroid.x, area.centroid.y) in (32718, 32719)
    areas = tmp_path / "area.geojson"
    gpd.GeoDataFrame({"area_id": ["ZONES"], "name": ["Across 72 W"]}, geometry=[area], crs=4326).to_file(areas)
    config = write_config(tmp_path, small_scene, **{
        "areas": {"path": str(areas), "id_field": "area_id", "name_field": "name", "buffer_m": 0},
        "source.stac_catalog": str(catalog), "source.collections": ["landsat-c2-l2"],
        "periods": {"baseline": ["2020-01-01", "2020-12-31"], "monitor": ["2021-01-01", "2021-12-31"]},
        "detection.resolution_m": 30})
    result = run(load_config(config))
    alerts = result.alerts
    assert len(alerts) == 2, alerts[["centroid_lon", "centroid_lat", "area_ha"]]
    for side, (x0, y0, x1, y1) in SCARS_LONLAT.items():
        hit = alerts[(alerts.centroid_lon.between(x0, x1)) & (alerts.centroid_lat.between(y0, y1))]
        assert len(hit) == 1, f"no alert on the {side} side at {x0}..{x1}"
        truth_ha = gpd.GeoSeries([shapely.box(x0, y0, x1, y1)], crs=4326).to_crs(32719).area.iloc[0] / 1e4
        assert hit.area_ha.iloc[0] == pytest.approx(truth_ha, rel=0.25)
        assert hit.sensors.iloc[0] == ["landsat-8"]
        assert set(hit.source_items.iloc[0]) >= {i.id for i in items[4:]}  # both tiles of each look
