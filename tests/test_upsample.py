"""Coarse bands read at their own resolution and upsampled give GDAL's warped pixels exactly."""

from __future__ import annotations

import datetime as dt

import numpy as np
import odc.stac
import pystac
import pytest
import rasterio
import shapely.geometry
from affine import Affine
from odc.geo.geobox import GeoBox
from rasterio.warp import transform_bounds

from pipeline.sources import load, reader, upsample

CRS = "EPSG:32719"
X0, Y0 = 300000.0, 8600000.0


@pytest.fixture(scope="module")
def coarse_item(tmp_path_factory) -> pystac.Item:
    """A 20 m uint16 band with random values, scattered nodata pixels and a nodata block."""
    rng = np.random.default_rng(3)
    height, width = 50, 60
    values = rng.integers(1, 5000, (height, width)).astype("uint16")
    values[rng.random((height, width)) < 0.1] = 0
    values[10:20, 30:45] = 0
    path = tmp_path_factory.mktemp("upsample") / "b.tif"
    with rasterio.open(path, "w", driver="GTiff", height=height, width=width, count=1, dtype="uint16", crs=CRS,
                       transform=Affine(20, 0, X0, 0, -20, Y0), nodata=0) as dst:
        dst.write(values, 1)
    bounds = transform_bounds(CRS, "EPSG:4326", X0, Y0 - height * 20, X0 + width * 20, Y0)
    item = pystac.Item("coarse", shapely.geometry.mapping(shapely.geometry.box(*bounds)), list(bounds),
                       dt.datetime(2020, 1, 1), {})
    item.add_asset("b", pystac.Asset(str(path), media_type="image/tiff",
                                     extra_fields={"raster:bands": [{"nodata": 0, "data_type": "uint16"}]}))
    return item


def _warped(item: pystac.Item, grid: GeoBox, method: str) -> np.ndarray:
    return odc.stac.load([item], bands=["b"], geobox=grid, resampling=method, chunks={}).compute()["b"].values


# (first row, first column, rows, columns) of the 10 m grid relative to the raster's corner: inside,
# odd phase, over every raster edge, a corner, beyond the raster
WINDOWS = [(0, 0, 100, 103), (1, 1, 101, 104), (-3, -5, 130, 133), (95, 115, 20, 23), (-1, 0, 40, 43),
           (7, 3, 121, 124), (101, 121, 10, 10)]


@pytest.mark.parametrize("method", ["bilinear", "nearest"])
@pytest.mark.parametrize("row0, col0, rows, cols", WINDOWS)
def test_upsampled_pixels_equal_gdals_warped_ones(coarse_item, method, row0, col0, rows, cols):
    grid = GeoBox((rows, cols), Affine(10, 0, X0 + col0 * 10, 0, -10, Y0 - row0 * 10), CRS)
    lattice = upsample.source_grid(coarse_item, "b")
    assert upsample.upsample_factor(lattice, grid) == 2
    box, u, v = upsample.source_window(lattice, grid)
    coarse = _warped(coarse_item, box, "nearest")
    expected = _warped(coarse_item, grid, method)
    got = upsample.upsample(coarse, u, v, 0, method)
    np.testing.assert_array_equal(got, expected)


def test_the_comparison_sees_nodata_and_partial_kernels(coarse_item):
    """The windows above hold nodata and pixels next to it (where leaving nodata out of the kernel
    matters): a kernel that averaged nodata in, or rounded differently, would fail."""
    grid = GeoBox((100, 103), Affine(10, 0, X0, 0, -10, Y0), CRS)
    box, u, v = upsample.source_window(upsample.source_grid(coarse_item, "b"), grid)
    coarse = _warped(coarse_item, box, "nearest")
    expected = _warped(coarse_item, grid, "bilinear")
    assert (expected == 0).sum() > 500
    naive = np.zeros_like(expected, dtype=np.float64)
    # the plain bilinear formula with nodata as a value differs from GDAL's next to nodata
    for t in range(coarse.shape[0]):
        y0, x0 = np.floor(v).astype(int), np.floor(u).astype(int)
        wy, wx = (v - y0)[:, None], (u - x0)[None, :]
        c = coarse[t].astype(np.float64)
        naive[t] = ((1 - wy) * (1 - wx) * c[np.ix_(y0, x0)] + (1 - wy) * wx * c[np.ix_(y0, x0 + 1)]
                    + wy * (1 - wx) * c[np.ix_(y0 + 1, x0)] + wy * wx * c[np.ix_(y0 + 1, x0 + 1)])
    assert (np.floor(naive + 0.5) != expected).sum() > 500


def test_only_aligned_coarser_grids_are_upsampled():
    source = GeoBox((100, 100), Affine(20, 0, X0, 0, -20, Y0), CRS)
    assert upsample.upsample_factor(source, GeoBox((50, 50), Affine(10, 0, X0 + 30, 0, -10, Y0 - 70), CRS)) == 2
    assert upsample.upsample_factor(source, GeoBox((50, 50), Affine(10, 0, X0 + 5, 0, -10, Y0), CRS)) is None
    assert upsample.upsample_factor(source, GeoBox((50, 50), Affine(20, 0, X0, 0, -20, Y0), CRS)) is None
    assert upsample.upsample_factor(source, GeoBox((50, 50), Affine(8, 0, X0, 0, -8, Y0), CRS)) is None
    assert upsample.upsample_factor(source, GeoBox((50, 50), Affine(10, 0, X0, 0, -10, Y0), "EPSG:32718")) is None
    landsat = GeoBox((100, 100), Affine(30, 0, X0 + 15, 0, -30, Y0 - 15), CRS)
    assert upsample.upsample_factor(landsat, GeoBox((50, 50), Affine(10, 0, X0 + 25, 0, -10, Y0 - 5), CRS)) == 3
    other_tile = GeoBox((100, 100), Affine(20, 0, X0 + 109800, 0, -20, Y0), CRS)
    shifted = GeoBox((100, 100), Affine(20, 0, X0 + 10, 0, -20, Y0), CRS)
    grid = GeoBox((50, 50), Affine(10, 0, X0, 0, -10, Y0), CRS)
    assert upsample.common_lattice([source, other_tile], grid) is source
    assert upsample.common_lattice([source, shifted], grid) is None
    assert upsample.common_lattice([source, None], grid) is None


def test_observations_are_the_same_read_either_way(small_scene, monkeypatch):
    """The small scene (10 m bands, 20 m SWIR and SCL, swath edges) read straight from the files
    (10 m pasted, 20 m upsampled) and through odc-stac's warper alone: every band of every look
    identical, NaN where nodata."""
    items = list(pystac.Catalog.from_file(str(small_scene / "catalog.json")).get_items(recursive=True))
    group = load.partition_items(items)[0]
    red = group[0].assets["red"].get_absolute_href()
    with rasterio.open(red) as src:
        grid = GeoBox(src.shape, src.transform, src.crs)[3:203, 7:190]
    calls, reads = [], []
    real, real_read = upsample.upsample, reader.read_box
    monkeypatch.setattr(upsample, "upsample", lambda *a: calls.append(a[-1]) or real(*a))
    monkeypatch.setattr(reader, "read_box", lambda *a: reads.append(a[0]) or real_read(*a))
    fast = load.load_observations(group, grid, None).data
    assert sorted(set(calls)) == ["bilinear", "nearest"]
    assert (calls.count("bilinear"), calls.count("nearest")) == (2 * len(group), len(group))   # SWIR, SCL
    assert len(reads) == len(group) * 7                      # every asset of every look, no warper
    monkeypatch.setattr(upsample, "common_lattice", lambda *a: None)
    warped = load.load_observations(group, grid, None).data
    assert fast.identical(warped)
    assert np.isnan(warped["swir16"].values).any()


@pytest.mark.parametrize("path, coarse, fine", [
    ("earth-search-v1/S2B_T24MUV_20250731T130245_L2A.json", ("swir16", "swir22", "scl"), "red"),
    ("planetary-computer/S2B_MSIL2A_20240419T095549_R122_T47XML_20240419T123458.json", ("B11", "B12", "SCL"), "B04"),
])
def test_recorded_sentinel2_items_take_the_upsampling_path(path, coarse, fine):
    """Real Earth Search and Planetary Computer items (recorded) give each asset's grid, and an
    analysis grid snapped to 10 m inside the tile is aligned with their 20 m bands: the fast path
    applies to real Sentinel-2, not only to the generated scenes."""
    from pathlib import Path

    item = pystac.Item.from_file(str(Path(__file__).parent / "data" / "stac" / path))
    ten = upsample.source_grid(item, fine)
    assert ten is not None and ten.transform.a == 10
    x0, y0 = ten.transform.c + 12340, ten.transform.f - 56780      # somewhere inside, on 10 m multiples
    grid = load.make_geobox((x0, y0 - 5000, x0 + 5000, y0), ten.crs.epsg, 10.0)
    for key in coarse:
        lattice = upsample.source_grid(item, key)
        assert lattice is not None and lattice.transform.a == 20
        assert upsample.upsample_factor(lattice, grid) == 2
        assert upsample.common_lattice([lattice, lattice], grid) is lattice


def test_the_analysis_grid_follows_the_items_own_pixels():
    """Landsat grids start on odd multiples of 15 m, and USGS puts scenes south of the equator in
    the north form of their UTM zone: the analysis grid takes the items' lattice (shifted by the
    false northing), so Landsat pixels are read as they are, not resampled half a pixel off;
    Sentinel-2 keeps multiples of the resolution; disagreeing items fall back to them too."""
    from pathlib import Path

    stac = Path(__file__).parent / "data" / "stac"
    landsat = pystac.Item.from_file(str(stac / "planetary-computer" / "LC09_L2SR_084082_20250722_02_T1.json"))
    sentinel2 = pystac.Item.from_file(str(stac / "earth-search-v1" / "S2B_T24MUV_20250731T130245_L2A.json"))
    grid = upsample.source_grid(landsat, "red")
    assert grid.crs.epsg == 32657 and grid.transform.c % 30 == 15 and grid.transform.f % 30 == 15
    assert load.native_phase([landsat], 32657, 30.0) == (15.0, 15.0)
    assert load.native_phase([landsat], 32757, 30.0) == (15.0, 25.0)       # 10 000 000 m ≡ 10 (mod 30)
    assert load.native_phase([landsat], 32757, 10.0) == (5.0, 5.0)
    assert load.native_phase([landsat], 32756, 30.0) == (0.0, 0.0)         # another zone: warped
    assert load.native_phase([sentinel2], 32724, 10.0) == (0.0, 0.0)
    assert load.native_phase([sentinel2, landsat], 32724, 30.0) == (0.0, 0.0)
    x0, top = grid.transform.c + 3000, grid.transform.f - 3000
    area = load.make_geobox((x0 + 7, top - 2000 + 3, x0 + 2000 - 4, top - 11), 32657, 30.0, (15.0, 15.0))
    assert area.transform.c % 30 == 15 and area.transform.f % 30 == 15
    assert ((area.transform.c - grid.transform.c) / 30).is_integer()
    plain = load.make_geobox((x0 + 7, top - 2000 + 3, x0 + 2000 - 4, top - 11), 32657, 30.0)
    assert plain.transform.c % 30 == 0 and plain.transform.f % 30 == 0


def _crop_item(item: pystac.Item, folder, new_id: str, cols_10m: slice, when: dt.datetime, bump: int) -> pystac.Item:
    """A copy of ``item`` whose every asset file keeps only the columns ``cols_10m`` (halved for
    20 m files, so the lattices still coincide), valid values raised by ``bump``."""
    clone = item.clone()
    clone.id, clone.datetime = new_id, when
    folder.mkdir(parents=True, exist_ok=True)
    for key, asset in item.assets.items():
        if not key.startswith(("red", "green", "blue", "nir", "swir", "scl")):
            continue
        with rasterio.open(asset.get_absolute_href()) as src:
            step = round(src.transform.a / 10)
            cols = slice(cols_10m.start // step, cols_10m.stop // step)
            values = src.read(1)[:, cols]
            profile = src.profile | {"width": values.shape[1], "transform": src.transform * Affine.translation(cols.start, 0)}
        if key != "scl":
            values = np.where(values != 0, values + bump, 0).astype(values.dtype)
        path = folder / f"{new_id}-{key}.tif"
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(values, 1)
        clone.assets[key].href = str(path)
    return clone


def test_a_day_of_two_tiles_is_mosaicked_as_odc_stac_mosaics_it(small_scene, tmp_path, monkeypatch):
    """Two overlapping tiles on one day (MGRS neighbours in one UTM zone): read straight from the
    files they are mosaicked as odc-stac's warper does (the earlier item, then the lower id, wins
    where both are valid; either fills the other's nodata), pixel for pixel."""
    items = list(pystac.Catalog.from_file(str(small_scene / "catalog.json")).get_items(recursive=True))
    group = load.partition_items(items)[0][:3]
    tiles = []
    for n, item in enumerate(group):
        when = item.datetime
        later = when + dt.timedelta(seconds=5)
        # look 0: west tile earlier; look 1: east tile earlier; look 2: same time, ids decide
        west_time, east_time = [(when, later), (later, when), (when, when)][n]
        tiles.append(_crop_item(item, tmp_path / "tiles", f"b-west-{n}", slice(0, 140), west_time, 0))
        tiles.append(_crop_item(item, tmp_path / "tiles", f"a-east-{n}", slice(100, 300), east_time, 7))
    with rasterio.open(tiles[0].assets["red"].href) as src:
        grid = GeoBox((200, 180), src.transform * Affine.translation(20, 3), src.crs)
    reads = []
    real_read = reader.read_box
    monkeypatch.setattr(reader, "read_box", lambda *a: reads.append(a[0]) or real_read(*a))
    fast = load.load_observations(tiles, grid, None).data
    assert len(reads) == len(tiles) * 7                       # both tiles of every look, no warper
    monkeypatch.setattr(upsample, "common_lattice", lambda *a: None)
    warped = load.load_observations(tiles, grid, None).data
    assert fast.sizes["time"] == 3
    assert fast.identical(warped)
    red = fast["red"].values
    overlap = red[:, :, 90:110]                               # both tiles valid here
    west_only = load.load_observations(tiles[0::2], grid, None).data["red"].values[:, :, 90:110]
    assert np.array_equal(overlap[0], west_only[0], equal_nan=True)          # earlier west wins
    assert not np.array_equal(overlap[1], west_only[1], equal_nan=True)      # earlier east wins
    assert not np.array_equal(overlap[2], west_only[2], equal_nan=True)      # same time: lower id "a-east"


def _write(path, values, transform, crs=CRS):
    with rasterio.open(path, "w", driver="GTiff", height=values.shape[0], width=values.shape[1], count=1,
                       dtype=values.dtype, crs=crs, transform=transform, nodata=0) as dst:
        dst.write(values, 1)


def test_the_direct_reader_fills_beyond_the_file_and_sees_a_rewritten_file(tmp_path):
    """A box reaching past the file's edge gets nodata there; a file rewritten in place (a
    notebook regenerating a scene) is read anew, not from the handle kept open; a file that is
    not on the box's lattice is refused (the caller then reads it through the warper)."""
    path = tmp_path / "a.tif"
    values = np.arange(1, 201, dtype="uint16").reshape(10, 20)
    _write(path, values, Affine(10, 0, X0, 0, -10, Y0))
    box = GeoBox((6, 8), Affine(10, 0, X0 - 30, 0, -10, Y0 - 70), CRS)     # 3 px west, 7 px south of the top
    got = reader.read_box(str(path), box, 0, "uint16")
    assert (got[:, :3] == 0).all() and (got[3:] == 0).all()
    assert np.array_equal(got[:3, 3:], values[7:10, 0:5])
    _write(path, values * 2, Affine(10, 0, X0, 0, -10, Y0))
    assert np.array_equal(reader.read_box(str(path), box, 0, "uint16")[:3, 3:], values[7:10, 0:5] * 2)
    with pytest.raises(reader.OffLattice):
        reader.read_box(str(path), GeoBox((6, 8), Affine(10, 0, X0 + 5, 0, -10, Y0), CRS), 0, "uint16")
    with pytest.raises(reader.OffLattice):
        reader.read_box(str(path), GeoBox((6, 8), Affine(10, 0, X0, 0, -10, Y0), "EPSG:32718"), 0, "uint16")
    reader.close_all()
    assert np.array_equal(reader.read_box(str(path), box, 0, "uint16")[:3, 3:], values[7:10, 0:5] * 2)


def test_an_item_whose_file_is_not_where_it_says_is_read_through_the_warper(coarse_item, tmp_path):
    """The item's STAC projection says one grid, its file holds another (shifted by half a pixel):
    the direct read is refused and the warper reads the file as it is, as odc-stac alone would."""
    with rasterio.open(coarse_item.assets["b"].href) as src:
        values = src.read(1)
    path = tmp_path / "shifted.tif"
    _write(path, values, Affine(20, 0, X0 + 10, 0, -20, Y0))
    item = coarse_item.clone()
    item.assets["b"].href = str(path)
    item.properties.update({"proj:epsg": 32719, "proj:shape": [50, 60], "proj:transform": [20, 0, X0, 0, -20, Y0]})
    item.stac_extensions.append("https://stac-extensions.github.io/projection/v1.1.0/schema.json")
    grid = GeoBox((60, 80), Affine(10, 0, X0 + 40, 0, -10, Y0 - 40), CRS)
    assert upsample.common_lattice([upsample.source_grid(item, "b")], grid) is not None   # the item's claim
    resampling = {"b": "bilinear"}
    fast = load._read_eager([item], grid, resampling, {"2020-01-01": [item]}, None)
    warped = load._read_now([item], grid, resampling, None)
    assert np.array_equal(fast["b"].values, warped["b"].values)


def test_a_server_that_never_answers_fails_the_read_within_its_deadline(monkeypatch):
    """A remote asset whose server accepts the connection and then says nothing: the read fails
    once ``GDAL_HTTP_TIMEOUT`` of the pixel reads' options has passed (GDAL alone waits forever)."""
    import socket
    import threading
    import time

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    held = []
    stop = threading.Event()

    def accept():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])      # accepted, never answered
            except OSError:
                continue

    assert 0 < float(load.READ_GDAL_OPTIONS["GDAL_HTTP_TIMEOUT"]) <= 300      # the deadline of a real run
    assert 0 < float(load.READ_GDAL_OPTIONS["GDAL_HTTP_CONNECTTIMEOUT"]) <= 60
    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    monkeypatch.setitem(load.READ_GDAL_OPTIONS, "GDAL_HTTP_TIMEOUT", "1")     # the same, shorter
    monkeypatch.setitem(load.READ_GDAL_OPTIONS, "GDAL_HTTP_MAX_RETRY", "0")
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/red.tif"
    started = time.monotonic()
    try:
        with pytest.raises(rasterio.RasterioIOError), rasterio.Env(**load.READ_GDAL_OPTIONS):
            reader.read_box(url, GeoBox((4, 4), Affine(10, 0, X0, 0, -10, Y0), CRS), 0, "uint16")
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        listener.close()
    assert time.monotonic() - started < 15


def test_the_block_cache_holds_a_row_of_windows_and_stays_bounded(monkeypatch):
    """The reads' block cache is sized to the blocks that a row of windows shares (wider areas and
    more looks: more), never below GDAL's default nor above a quarter of the machine, and exactly
    what the user set in ``GDAL_CACHEMAX``."""
    machine = 24 * 2**30
    s2 = [10.0] * 4 + [20.0] * 3
    tile = reader.row_band_bytes(69_300, 12, s2)
    assert tile == 12 * (4 * 8 + 3 * 5) * 2 * 1024**2 * 2                       # 2.2 GiB
    assert reader.row_band_bytes(69_300, 24, s2) == 2 * tile
    assert reader.row_band_bytes(25_250, 9, s2) < reader.row_band_bytes(50_490, 9, s2)
    # what the cache can fill with over a run: every block the area touches, more for a taller area,
    # two block rows for an area one block tall
    assert reader.area_block_bytes(25_250, 25_250, 9, s2) > reader.row_band_bytes(25_250, 9, s2)
    assert reader.area_block_bytes(25_250, 50_490, 9, s2) > reader.area_block_bytes(25_250, 25_250, 9, s2)
    assert reader.area_block_bytes(25_250, 5_000, 9, s2) == reader.row_band_bytes(25_250, 9, s2)
    monkeypatch.delenv("GDAL_CACHEMAX", raising=False)
    assert reader.block_cache_bytes(tile, machine) == tile
    assert reader.block_cache_bytes(0, machine) == int(0.05 * machine)            # GDAL's default
    assert reader.block_cache_bytes(100 * 2**30, machine) == machine // 4
    monkeypatch.setenv("GDAL_CACHEMAX", "512")
    assert reader.block_cache_bytes(tile, machine) == 512 * 2**20
    monkeypatch.setenv("GDAL_CACHEMAX", "10%")
    assert reader.block_cache_bytes(tile, machine) == int(0.1 * machine)


@pytest.mark.parametrize("resolution", [30.0, 10.0])
def test_a_landsat_file_in_the_north_form_of_the_zone_is_read_straight(tmp_path, monkeypatch, resolution):
    """USGS grids southern Landsat scenes in the north form of the UTM zone (negative northings);
    the analysis grid is in the south form. The same pixels, 10 000 000 m apart in northing: read
    straight from the file, pasted at 30 m (the warper's integers exactly) and upsampled at 10 m
    (the warper reprojects between the two forms through PROJ, whose 1e-9 m noise breaks some
    exact half-DN ties the other way: at most 1 DN on a few pixels, nodata the same)."""
    rng = np.random.default_rng(5)
    values = rng.integers(7000, 30000, (40, 50)).astype("uint16")
    values[rng.random(values.shape) < 0.05] = 0
    north = "EPSG:32619"
    top = Y0 - 10_000_000 + 15                                 # Landsat origins on odd multiples of 15 m
    path = tmp_path / "lc08_sr_b4.tif"
    _write(path, values, Affine(30, 0, X0 + 15, 0, -30, top), crs=north)
    bounds = transform_bounds(north, "EPSG:4326", X0 + 15, top - 1200, X0 + 1515, top)
    item = pystac.Item("lc08", shapely.geometry.mapping(shapely.geometry.box(*bounds)), list(bounds),
                       dt.datetime(2020, 1, 1), {})
    item.add_asset("red", pystac.Asset(str(path), media_type="image/tiff",
                                       extra_fields={"raster:bands": [{"nodata": 0, "data_type": "uint16"}]}))
    n = int(900 / resolution)
    grid = GeoBox((n, n), Affine(resolution, 0, X0 + 15 + 120, 0, -resolution, Y0 + 15 - 150), CRS)
    reads = []
    real_read = reader.read_box
    monkeypatch.setattr(reader, "read_box", lambda *a: reads.append(a[0]) or real_read(*a))
    resampling = {"red": "bilinear"}
    warper_calls = []
    real_now = load._read_now
    monkeypatch.setattr(load, "_read_now", lambda *a: warper_calls.append(a) or real_now(*a))
    fast = load._read_eager([item], grid, resampling, {"2020-01-01": [item]}, None)
    assert reads == [str(path)] and warper_calls == []         # read straight, no warper
    warped = real_now([item], grid, resampling, None)
    a, b = fast["red"].values.astype(int), warped["red"].values.astype(int)
    if resolution == 30.0:
        assert np.array_equal(a, b)
    else:
        assert np.abs(a - b).max() <= 1 and (a != b).mean() < 0.01 and np.array_equal(a == 0, b == 0)
    assert (fast["red"].values == 0).any() and (fast["red"].values > 0).mean() > 0.8
