"""Runs over several protected areas: each in its own UTM zone, each attributed and summed apart,
and an area without imagery.

The imagery is a tiny Landsat C2 L2 catalog written here: one 30 m tile per area in that area's
UTM zone, forest everywhere, one bare-soil scar per area in the two monitor looks. Each area's
grid is snapped to the same 30 m multiples as its tile, so pixels are not resampled and a scar
pixel is bare exactly when its centre lies in the scar.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyproj
import pystac
import pytest
import rasterio
import shapely
import shapely.geometry
from affine import Affine

from pipeline.aoi import utm_epsg
from pipeline.config import load_config
from pipeline.errors import NoItemsError
from pipeline.run import run
from pipeline.sources.load import make_geobox

from . import encodings
from .conftest import write_config

PIXEL_M = 30.0
FOREST = {"blue": 0.02, "green": 0.05, "red": 0.03, "nir": 0.35, "swir16": 0.15, "swir22": 0.07}
SOIL = {"blue": 0.08, "green": 0.11, "red": 0.15, "nir": 0.22, "swir16": 0.30, "swir22": 0.25}
# Two areas either side of the 72° W zone line, one far away with no imagery at all.
AREAS = {
    "A18": {"bounds": (-72.060, -12.030, -72.020, -11.990), "scar": (-72.045, -12.015, -72.041, -12.011)},
    "B19": {"bounds": (-71.980, -12.030, -71.940, -11.990), "scar": (-71.965, -12.015, -71.960, -12.010)},
    "C18": {"bounds": (-74.540, -9.530, -74.500, -9.490), "scar": None},
}
DATES = {"2020-06-01": False, "2020-06-17": False, "2021-06-04": True, "2021-06-20": True}  # date: scar visible


def tile(folder: Path, area: str, when: dt.datetime, scarred: bool, seed: int) -> pystac.Item:
    spec = AREAS[area]
    west, south, east, north = spec["bounds"]
    epsg = utm_epsg((west + east) / 2, (south + north) / 2)
    to_utm = pyproj.Transformer.from_crs(4326, epsg, always_xy=True)
    xs, ys = to_utm.transform([west - 0.005, east + 0.005] * 2, [south - 0.005] * 2 + [north + 0.005] * 2)
    geobox = make_geobox((min(xs), min(ys), max(xs), max(ys)), epsg, PIXEL_M)
    h, w = geobox.shape
    t = geobox.transform
    cols, rows = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    lon, lat = pyproj.Transformer.from_crs(epsg, 4326, always_xy=True).transform(t.c + cols * t.a, t.f + rows * t.e)
    bare = np.zeros((h, w), bool)
    if scarred and spec["scar"]:
        x0, y0, x1, y1 = spec["scar"]
        bare = (lon >= x0) & (lon <= x1) & (lat >= y0) & (lat <= y1)
    rng = np.random.default_rng(seed)
    item_id = f"LC08_{area}_{when:%Y%m%d}"
    footprint = shapely.box(west - 0.005, south - 0.005, east + 0.005, north + 0.005)
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


@pytest.fixture(scope="module")
def catalog(tmp_path_factory) -> Path:
    """Tiles for A18 and B19 only: C18 has no imagery."""
    folder = tmp_path_factory.mktemp("multi-area")
    items = [tile(folder / "tiles", area, dt.datetime.fromisoformat(f"{day}T15:00:00+00:00"), scarred, seed)
             for seed, (area, (day, scarred)) in enumerate((a, d) for a in ("A18", "B19") for d in DATES.items())]
    return encodings.save_catalog(items, folder / "catalog", "multi-area")


def config_for(tmp_path: Path, catalog: Path, small_scene: Path, areas: list[str]):
    layer = tmp_path / "areas.geojson"
    gpd.GeoDataFrame({"code": areas, "name": [f"Área {a}" for a in areas]},
                     geometry=[shapely.box(*AREAS[a]["bounds"]) for a in areas], crs=4326).to_file(layer)
    path = write_config(tmp_path, small_scene, **{
        "areas": {"path": str(layer), "id_field": "code", "name_field": "name", "buffer_m": 500},
        "source.stac_catalog": str(catalog), "source.collections": ["landsat-c2-l2"],
        "periods": {"baseline": ["2020-01-01", "2020-12-31"], "monitor": ["2021-01-01", "2021-12-31"]},
        "detection.resolution_m": PIXEL_M, "output.formats": ["geojson", "csv"]})
    return load_config(path)


def true_scar(area: str) -> tuple[float, float]:
    """Area (ha) and perimeter (m) of the planted scar in the area's UTM zone."""
    x0, y0, x1, y1 = AREAS[area]["scar"]
    epsg = utm_epsg((x0 + x1) / 2, (y0 + y1) / 2)
    scar = gpd.GeoSeries([shapely.box(x0, y0, x1, y1)], crs=4326).to_crs(epsg).iloc[0]
    return scar.area / 1e4, scar.length


def test_two_areas_in_two_utm_zones_are_each_alerted_in_their_own_grid(tmp_path, catalog, small_scene):
    result = run(config_for(tmp_path, catalog, small_scene, ["A18", "B19"]))
    assert utm_epsg(-72.04, -12.0) == 32718 and utm_epsg(-71.96, -12.0) == 32719
    alerts = result.alerts.set_index("protected_area_id")
    assert sorted(alerts.index) == ["A18", "B19"], "one alert per area, each attributed to its own area"
    for area in ("A18", "B19"):
        alert = alerts.loc[area]
        assert alert["protected_area_name"] == f"Área {area}" and alert["zone"] == "inside"
        assert alert["alert_id"].startswith(f"test-{area}-")
        x0, y0, x1, y1 = AREAS[area]["scar"]
        assert x0 < alert["centroid_lon"] < x1 and y0 < alert["centroid_lat"] < y1
        # Pixel-centre rasterisation moves each edge by at most half a pixel (15 m), so the alert
        # differs from the true scar by at most its perimeter × 15 m.
        true_ha, perimeter_m = true_scar(area)
        assert abs(alert["area_ha"] - true_ha) <= perimeter_m * PIXEL_M / 2 / 1e4, (area, alert["area_ha"], true_ha)
        assert alert["first_detected"] == "2021-06-04" and alert["sensors"] == ["landsat-8"]
        assert alert["source_items"] == [f"LC08_{area}_20210604", f"LC08_{area}_20210620"]
    out = Path(result.outputs["run"]).parent
    areas = {a["area_id"]: a for a in json.loads((out / "run.json").read_text())["areas"]}
    assert {k: v["utm_epsg"] for k, v in areas.items()} == {"A18": 32718, "B19": 32719}
    summary = gpd.pd.read_csv(out / "summary.csv")
    per_area = summary.groupby("protected_area_id")["alerts_total"].sum().to_dict()
    assert per_area == {"A18": 1, "B19": 1}


def test_an_area_without_imagery_is_named(tmp_path, catalog, small_scene):
    """C18 has no item in any period: the run says so, naming the area, and writes no alerts."""
    config = config_for(tmp_path, catalog, small_scene, ["A18", "B19", "C18"])
    with pytest.raises(NoItemsError, match="C18"):
        run(config)
    assert not (Path(config.output.dir) / "alerts.geojson").exists()
    assert not (Path(config.output.dir) / "state.gpkg").exists()


def test_a_local_catalog_is_read_once_for_every_area_and_period(tmp_path, catalog, small_scene, monkeypatch):
    """Planning searches each area in both periods; the catalog is read from disk once, and
    each area still gets only its own items."""
    from pipeline.aoi import load_zones
    from pipeline.plan import plan_areas
    from pipeline.sources import search

    config = config_for(tmp_path, catalog, small_scene, ["A18", "B19", "C18"])
    reads = []
    real = search.read_catalog
    monkeypatch.setattr(search, "read_catalog", lambda path: reads.append(path) or real(path))
    plans = {plan.area_id: plan for plan in plan_areas(config, load_zones(config.areas))}
    assert len(reads) == 1
    for area in ("A18", "B19"):
        assert sorted(i.id for i in plans[area].baseline) == [f"LC08_{area}_20200601", f"LC08_{area}_20200617"]
        assert sorted(i.id for i in plans[area].monitor) == [f"LC08_{area}_20210604", f"LC08_{area}_20210620"]
    assert not plans["C18"].baseline and not plans["C18"].monitor
