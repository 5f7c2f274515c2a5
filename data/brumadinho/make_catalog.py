"""Build the Brumadinho local STAC catalog from the xlandsat Landsat 8 C2 L2 crops.

    python data/brumadinho/make_catalog.py [XLANDSAT_DIR]

Reads ``brumadinho_{before,after}_L8_C2L2SR_*.tif`` and their ``.mtl.json`` sidecars (by default
from ``/work/shared/data/real/xlandsat``; compgeolab/xlandsat, data CC0) and writes, next to
this script:

* ``items/<LANDSAT_PRODUCT_ID>/{blue,green,red,nir08,swir16,swir22}.tif``: one single-band
  uint16 GeoTIFF per band (DN, nodata 0, deflate), cropped to 210 × 200 px (6.3 km × 6 km)
  around the mudflow, inside the window both dates cover;
* ``catalog.json`` and one ``landsat-c2-l2``-shaped STAC item per date, with
  ``raster:bands`` scale 2.75e-5 and offset −0.2 (from the MTL) and no ``qa_pixel`` asset (the
  crops carry none: every valid pixel counts as clear);
* ``area.geojson``: the polygon drawn around the mudflow (see ``MUDFLOW_PX``).

CRS: the source GeoTIFFs say EPSG:32623 (UTM 23 North) with negative northings, as the MTL
does for a southern scene. That is the same grid as EPSG:32723 (UTM 23 South) with
northing + 10 000 000 m, which is what is written here. The output is deterministic.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

import numpy as np
import pyproj
import pystac
import rasterio
import shapely
from affine import Affine
from shapely.geometry import Polygon, box, mapping
from shapely.geometry.polygon import orient

HERE = Path(__file__).resolve().parent
DEFAULT_SOURCE = Path("/work/shared/data/real/xlandsat")
DATES = ("before_L8_C2L2SR_2019-01-14", "after_L8_C2L2SR_2019-01-30")
BANDS = ("blue", "green", "red", "nir08", "swir16", "swir22")  # SR_B2 … SR_B7
EO = {"blue": ("B2", 0.48), "green": ("B3", 0.56), "red": ("B4", 0.65), "nir08": ("B5", 0.86),
      "swir16": ("B6", 1.6), "swir22": ("B7", 2.2)}
EPSG = 32723
FALSE_NORTHING_M = 10_000_000.0
# The common window, EPSG:32723: both crops cover x 584385..595485 (the "after" crop starts
# 900 m east of the "before" one) and y 7768315..7777315 (370 × 300 px).
OVERLAP = (584385.0, 7768315.0, 595485.0, 7777315.0)
PIXEL_M = 30.0
# What is written: columns 90..300 and rows 40..240 of the common window (the mudflow and
# about 500 m around it), to keep the repository small.
WINDOW = (OVERLAP[0] + 90 * PIXEL_M, OVERLAP[3] - 240 * PIXEL_M, OVERLAP[0] + 300 * PIXEL_M, OVERLAP[3] - 40 * PIXEL_M)

# The mudflow polygon, drawn by hand on the 2019-01-30 SWIR/NIR/red false-colour image and the
# NDVI difference (after − before), as (column, row) of the 370 × 300 px common window: it follows the
# mud from the B1 dam (about −44.119, −20.120) west along the Ferro-Carvão stream to the
# Paraopeba river, with ~150–300 m of untouched land around it, and leaves out the clouds of the
# 2019-01-14 image north of it.
MUDFLOW_PX = ((150, 107.5), (190, 107.5), (220, 132.5), (232.5, 120), (235, 75), (260, 57.5),
              (282.5, 82.5), (282.5, 142.5), (267.5, 167.5), (225, 172.5), (195, 160), (182.5, 155),
              (177.5, 182.5), (150, 212.5), (125, 222.5), (107.5, 212.5), (112.5, 192.5), (150, 180),
              (160, 150), (147.5, 125))


def _grid(transform_: Affine) -> Affine:
    """The source transform moved from negative northings (UTM north code) to UTM south."""
    return Affine(transform_.a, transform_.b, transform_.c, transform_.d, transform_.e,
                  transform_.f + FALSE_NORTHING_M)


def _to_lonlat(geom):
    to_wgs = pyproj.Transformer.from_crs(EPSG, 4326, always_xy=True)
    lonlat = shapely.transform(geom, lambda xy: np.column_stack(to_wgs.transform(xy[:, 0], xy[:, 1])))
    return orient(lonlat, 1.0)


def _write_band(path: Path, arr: np.ndarray, transform_: Affine) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", driver="GTiff", height=arr.shape[0], width=arr.shape[1], count=1,
                       dtype="uint16", crs=f"EPSG:{EPSG}", transform=transform_, nodata=0, tiled=True,
                       blockxsize=128, blockysize=128, compress="deflate", predictor=2) as dst:
        dst.write(arr, 1)


def make_item(tif: Path, mtl: dict) -> pystac.Item:
    with rasterio.open(tif) as src:
        grid = _grid(src.transform)
        data = src.read()
    col0 = round((WINDOW[0] - grid.c) / PIXEL_M)
    row0 = round((grid.f - WINDOW[3]) / PIXEL_M)
    width, height = round((WINDOW[2] - WINDOW[0]) / PIXEL_M), round((WINDOW[3] - WINDOW[1]) / PIXEL_M)
    data = data[:, row0:row0 + height, col0:col0 + width]
    assert data.shape == (6, height, width), data.shape
    out_transform = Affine(PIXEL_M, 0, WINDOW[0], 0, -PIXEL_M, WINDOW[3])

    item_id = mtl["LANDSAT_PRODUCT_ID"]
    when = dt.datetime.fromisoformat(f"{mtl['DATE_ACQUIRED']}T{mtl['SCENE_CENTER_TIME'][:8]}+00:00")
    footprint = _to_lonlat(box(*WINDOW))
    props = {
        "platform": mtl["SPACECRAFT_ID"].lower().replace("_", "-"),
        "instruments": ["oli", "tirs"],
        "eo:cloud_cover": float(mtl["CLOUD_COVER"]),
        "proj:epsg": EPSG,
        "landsat:wrs_path": mtl["WRS_PATH"],
        "landsat:wrs_row": mtl["WRS_ROW"],
        "landsat:collection_number": mtl["COLLECTION_NUMBER"],
        "landsat:collection_category": mtl["COLLECTION_CATEGORY"],
        "landsat:correction": mtl["PROCESSING_LEVEL"],
        "view:sun_elevation": float(mtl["SUN_ELEVATION"]),
        "view:sun_azimuth": float(mtl["SUN_AZIMUTH"]),
    }
    item = pystac.Item(item_id, mapping(footprint), list(footprint.bounds), when, props,
                       collection="landsat-c2-l2")
    for i, band in enumerate(BANDS):
        number = EO[band][0][1:]
        scale, offset = float(mtl[f"REFLECTANCE_MULT_BAND_{number}"]), float(mtl[f"REFLECTANCE_ADD_BAND_{number}"])
        path = HERE / "items" / item_id / f"{band}.tif"
        _write_band(path, data[i], out_transform)
        item.add_asset(band, pystac.Asset(
            str(path), title=f"Surface reflectance band {EO[band][0]} ({band})",
            media_type=pystac.MediaType.GEOTIFF, roles=["data", "reflectance"],
            extra_fields={
                "eo:bands": [{"name": f"SR_{EO[band][0]}", "common_name": band, "center_wavelength": EO[band][1]}],
                "proj:shape": [height, width], "proj:transform": list(out_transform)[:6],
                "raster:bands": [{"nodata": 0, "data_type": "uint16", "spatial_resolution": 30,
                                  "scale": scale, "offset": offset}],
            }))
    return item


def mudflow_area() -> dict:
    pts = [(OVERLAP[0] + PIXEL_M * c, OVERLAP[3] - PIXEL_M * r) for c, r in MUDFLOW_PX]
    poly = _to_lonlat(Polygon(pts))
    poly = Polygon([(round(x, 6), round(y, 6)) for x, y in poly.exterior.coords])
    assert poly.is_valid
    return {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {
        "area_id": "BRUMADINHO-B1", "name": "Brumadinho B1 dam mudflow (drawn for cec-pipeline)",
        "source": "Drawn by hand around the mudflow in the Landsat 8 C2 L2 image of 2019-01-30 "
                  "(compgeolab/xlandsat crop, CC0); not an official boundary"},
        "geometry": mapping(orient(poly, 1.0))}]}


def main(source: Path = DEFAULT_SOURCE) -> Path:
    items = []
    for name in DATES:
        tif = source / f"brumadinho_{name}.tif"
        mtl = json.loads((source / f"brumadinho_{name}.mtl.json").read_text())
        items.append(make_item(tif, mtl))
    catalog = pystac.Catalog(
        "brumadinho-l8", "Landsat 8 Collection 2 Level-2 surface reflectance before (2019-01-14) and after "
        "(2019-01-30) the Brumadinho B1 tailings-dam collapse of 2019-01-25, from compgeolab/xlandsat "
        "(CC0; USGS Landsat, public domain). Per-band assets of landsat-c2-l2-shaped items, no QA band.")
    for item in items:
        catalog.add_item(item)
    catalog.normalize_hrefs(str(HERE))
    catalog.make_all_asset_hrefs_relative()
    catalog.save(pystac.CatalogType.SELF_CONTAINED)
    (HERE / "area.geojson").write_text(json.dumps(mudflow_area(), indent=1) + "\n")
    return HERE / "catalog.json"


if __name__ == "__main__":
    print(main(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_SOURCE))
