"""Test-only writers: one generated ground scene re-encoded as other sources would serve it.

The small scene (``tests/conftest.py``) is written like Earth Search ``sentinel-2-l2a``. These
functions write the same looks as

* Planetary Computer ``sentinel-2-l2a``: keys ``B02 … B12 SCL``, no ``raster:bands``, platform
  in PC's spelling; raw DN, with the +1000 offset only for processing baseline ≥ 04.00 (every
  other look is given baseline 02.12 and DN − 1000);
* ``landsat-c2-l2`` at 30 m: keys ``blue green red nir08 swir16 swir22 qa_pixel``, DN =
  (reflectance + 0.2) / 2.75e-5, QA_PIXEL bits made from the SCL;

and make local static catalogs of them, or of a list of items, for the tests.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pystac
import rasterio

from pipeline.model import BANDS as REFLECTANCE_BANDS
from pipeline.sources.load import make_geobox

PC_KEYS = {"blue": "B02", "green": "B03", "red": "B04", "nir": "B08", "swir16": "B11",
           "swir22": "B12", "scl": "SCL"}
LANDSAT_KEYS = {"blue": "blue", "green": "green", "red": "red", "nir": "nir08", "swir16": "swir16",
                "swir22": "swir22"}


def read_items(catalog: Path) -> list[pystac.Item]:
    cat = pystac.Catalog.from_file(str(catalog))
    return sorted(cat.get_items(recursive=True), key=lambda i: i.id)


def _write_tif(path: Path, arr: np.ndarray, crs, transform, nodata=0) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", driver="GTiff", height=arr.shape[0], width=arr.shape[1], count=1,
                       dtype=arr.dtype.name, crs=crs, transform=transform, nodata=nodata,
                       tiled=True, blockxsize=128, blockysize=128, compress="deflate") as dst:
        dst.write(arr, 1)
    return str(path)


def save_catalog(items: list[pystac.Item], folder: Path, title: str = "test") -> Path:
    """A self-contained static catalog of ``items`` (asset hrefs already absolute) in ``folder``."""
    cat = pystac.Catalog(f"cec-test-{title}", f"Re-encoded test scene ({title})")
    for item in items:
        item.clear_links()
        cat.add_item(item)
    cat.normalize_hrefs(str(folder))
    cat.save(pystac.CatalogType.SELF_CONTAINED)
    return folder / "catalog.json"


def write_planetary_computer_s2(es_catalog: Path, out: Path) -> Path:
    """The Earth Search looks as Planetary Computer serves them (raw DN, no raster:bands)."""
    items = []
    for n, src in enumerate(read_items(es_catalog)):
        old_baseline = n % 2 == 1
        props = dict(src.properties)
        props["platform"] = props["platform"].replace("sentinel", "Sentinel").replace("-2a", "-2A").replace("-2b", "-2B")
        props["s2:processing_baseline"] = "02.12" if old_baseline else "05.00"
        props.pop("earthsearch:boa_offset_applied", None)
        item = pystac.Item(f"PC_{src.id}", src.geometry, src.bbox, src.datetime, props,
                           collection="sentinel-2-l2a")
        for band, key in PC_KEYS.items():
            with rasterio.open(src.assets[band].get_absolute_href()) as f:
                dn, crs, transform = f.read(1), f.crs, f.transform
            if band != "scl" and old_baseline:
                dn = np.where(dn > 0, np.clip(dn.astype("int32") - 1000, 1, None), 0).astype("uint16")
            href = _write_tif(out / "items" / item.id / f"{key}.tif", dn, crs, transform)
            item.add_asset(key, pystac.Asset(href, media_type=pystac.MediaType.COG, roles=["data"]))
        items.append(item)
    return save_catalog(items, out, "planetary-computer-s2")


def _qa_from_scl(scl: np.ndarray) -> np.ndarray:
    """QA_PIXEL bits from SCL: fill 0, dilated cloud 1, cirrus 2, cloud 3, shadow 4, snow 5, clear 6, water 7."""
    qa = np.zeros(scl.shape, dtype="uint16")
    qa[scl == 0] |= 1 << 0
    qa[np.isin(scl, (8, 9))] |= (1 << 3) | (1 << 1)
    qa[scl == 10] |= 1 << 2
    qa[scl == 3] |= 1 << 4
    qa[scl == 11] |= 1 << 5
    qa[np.isin(scl, (4, 5, 7))] |= 1 << 6
    qa[scl == 6] |= (1 << 6) | (1 << 7)
    return qa


def write_landsat_c2(es_catalog: Path, out: Path, epsg: int = 32719, only: set[str] | None = None) -> Path:
    """The Earth Search looks (or the ``only`` ids) resampled to 30 m, as Landsat C2 L2 with QA_PIXEL."""
    import odc.stac

    src_items = [i for i in read_items(es_catalog) if only is None or i.id in only]
    with rasterio.open(src_items[0].assets["blue"].get_absolute_href()) as f:
        bounds = tuple(f.bounds)
    geobox = make_geobox(bounds, epsg, 30.0)
    crs, transform = f"EPSG:{epsg}", geobox.transform
    items = []
    for src in src_items:
        loaded = odc.stac.load([src], bands=list(REFLECTANCE_BANDS) + ["scl"], geobox=geobox,
                               resampling={"*": "average", "scl": "nearest"})
        t = 0
        props = {"platform": "landsat-8", "instruments": ["oli", "tirs"],
                 "eo:cloud_cover": src.properties["eo:cloud_cover"], "proj:epsg": epsg}
        item = pystac.Item(f"LC08_{src.id}", src.geometry, src.bbox, src.datetime, props,
                           collection="landsat-c2-l2")
        folder = out / "items" / item.id
        for band, key in LANDSAT_KEYS.items():
            dn = loaded[band].isel(time=t).values.astype("float64")
            refl = dn * 1e-4 - 0.1
            valid = dn > 0
            code = np.where(valid, np.clip(np.rint((refl + 0.2) / 2.75e-5), 1, 65535), 0).astype("uint16")
            href = _write_tif(folder / f"{key}.tif", code, crs, transform)
            item.add_asset(key, pystac.Asset(href, media_type=pystac.MediaType.COG, roles=["data"], extra_fields={
                "raster:bands": [{"nodata": 0, "data_type": "uint16", "spatial_resolution": 30,
                                  "scale": 2.75e-05, "offset": -0.2}]}))
        qa = _qa_from_scl(loaded["scl"].isel(time=t).values)
        href = _write_tif(folder / "qa_pixel.tif", qa, crs, transform, nodata=1)
        item.add_asset("qa_pixel", pystac.Asset(href, media_type=pystac.MediaType.COG, roles=["cloud"], extra_fields={
            "raster:bands": [{"nodata": 1, "data_type": "uint16", "spatial_resolution": 30, "unit": "bit index"}]}))
        items.append(item)
    return save_catalog(items, out, "landsat-c2-l2")


def mixed_catalog(es_catalog: Path, out: Path, landsat_ids: set[str]) -> Path:
    """Earth Search S2 looks, except ``landsat_ids`` which are served as Landsat C2 L2 at 30 m."""
    landsat = read_items(write_landsat_c2(es_catalog, out / "landsat", only=landsat_ids))
    items = []
    for src in read_items(es_catalog):
        if src.id in landsat_ids:
            continue
        item = src.clone()
        for asset in item.assets.values():
            asset.href = asset.get_absolute_href()
        items.append(item)
    for item in landsat:
        for asset in item.assets.values():
            asset.href = asset.get_absolute_href()
        items.append(item)
    return save_catalog(items, out / "mixed", "sentinel-2-and-landsat")


def with_offset(es_catalog: Path, out: Path, item_ids: set[str], offset: float) -> Path:
    """A copy of the Earth Search catalog where some items' raster:bands carry another offset."""
    items = []
    for src in read_items(es_catalog):
        item = src.clone()
        for asset in item.assets.values():
            asset.href = asset.get_absolute_href()
            bands = asset.extra_fields.get("raster:bands")
            if src.id in item_ids and bands and "offset" in bands[0]:
                asset.extra_fields["raster:bands"] = [dict(bands[0], offset=offset)]
        items.append(item)
    return save_catalog(items, out, "offset")



def write_composites(es_catalog: Path, out: Path, days: int = 120) -> Path:
    """Each Earth Search look as a cloud-free composite another platform would serve: no mask
    asset, no single acquisition time (``datetime`` null, ``start_datetime``/``end_datetime`` a
    period of ``days`` centred on the look), the same reflectance assets."""
    import datetime as dt

    items = []
    for src in read_items(es_catalog):
        item = src.clone()
        item.assets.pop("scl", None)
        centre = src.datetime
        half = dt.timedelta(days=days // 2)
        item.datetime = None
        item.properties["start_datetime"] = (centre - half).strftime("%Y-%m-%dT%H:%M:%SZ")
        item.properties["end_datetime"] = (centre + half).strftime("%Y-%m-%dT%H:%M:%SZ")
        for key, asset in item.assets.items():
            asset.href = src.assets[key].get_absolute_href()
        items.append(item)
    return save_catalog(items, out, "composites")
