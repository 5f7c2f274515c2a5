"""Build the small, committed source files of the La Pampa demo scene.

Run once from the repository root::

    python data/demo/make_sources.py [SHARED_REAL_DIR]

``SHARED_REAL_DIR`` defaults to ``/work/shared/data/real`` (the staged copies of public
data described in its PROVENANCE.md).  The script writes, next to itself:

* ``protected_areas.geojson``: Reserva Nacional Tambopata core (perugeopkg), EPSG:4326.
* ``buffer_zones.geojson``: its buffer zone (zona de amortiguamiento) from Amazon Mining
  Watch's SERNANP compilation, EPSG:4326, one feature per part.
* ``sources/amw_mining_lapampa.geojson``: AMW mining polygons (2018 stock, 2019-2021 new)
  intersecting a 30 km x 30 km box (EPSG:32719) centred on the demo window, EPSG:4326.
* ``sources/LC08_003069_20180906_clip.tif``: byte copy of the La Pampa Landsat 8 SR clip.

Geometries are copied unchanged (coordinates are not re-rounded or re-oriented); only the
properties are rewritten.  The output is deterministic.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import geopandas as gpd
from shapely.geometry import box, mapping, shape

DEMO_DIR = Path(__file__).resolve().parent
DEFAULT_REAL = Path("/work/shared/data/real")

# Demo window (EPSG:32719): upper-left corner and size, as in pipeline.demo.SceneSpec.
WINDOW_X0, WINDOW_Y1, WINDOW_SIZE_M = 381550.0, 8564870.0, 5000.0
CONTEXT_BOX_M = 30000.0
AMW_PERIODS = ("2018_stock", "2019_new", "2020_new", "2021_new")

PERUGEOPKG = "PaulESantos/perugeopkg@dde38f172e62292723a5567d413c3ced9f75f9d9"
AMW = "earthrise-media/mining-detector@bbbcb2d722c930626f322bec751a22e4acb22750"


def _write_geojson(path: Path, features: list[dict], name: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    collection = {"type": "FeatureCollection", "name": name, "features": features}
    path.write_text(json.dumps(collection, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {path.relative_to(DEMO_DIR.parents[1])}: {len(features)} features, "
          f"{path.stat().st_size / 1024:.0f} KiB")


def _in_context_box(features: list[dict]) -> list[bool]:
    """Which lon/lat features intersect the 30 km context box (EPSG:32719)?"""
    cx, cy = WINDOW_X0 + WINDOW_SIZE_M / 2, WINDOW_Y1 - WINDOW_SIZE_M / 2
    half = CONTEXT_BOX_M / 2
    context = box(cx - half, cy - half, cx + half, cy + half)
    geoms = gpd.GeoSeries([shape(f["geometry"]) for f in features], crs="EPSG:4326")
    return list(geoms.to_crs("EPSG:32719").intersects(context))


def write_protected_area(real: Path) -> None:
    core = gpd.read_file(real / "perugeopkg" / "rn_tambopata.gpkg")
    assert core.crs.to_epsg() == 4326 and len(core) == 1
    feature = {
        "type": "Feature",
        "properties": {
            "sernanp_code": "RN09",
            "name": "Reserva Nacional Tambopata",
            "category": "Reserva Nacional",
            "source": f"{PERUGEOPKG} anp/rn_tambopata.gpkg (SERNANP; CC BY-SA 4.0)",
        },
        "geometry": mapping(core.geometry.iloc[0]),
    }
    _write_geojson(DEMO_DIR / "protected_areas.geojson", [feature], "protected_areas")


def write_buffer_zone(real: Path) -> None:
    src = real / "earthrise-amw" / "sernanp_anp_za_madre_de_dios_from_amw.geojson"
    collection = json.loads(src.read_text(encoding="utf-8"))
    features = [
        {
            "type": "Feature",
            "properties": {
                "sernanp_code": "RN09",
                "name": "Reserva Nacional Tambopata",
                "source": f"{AMW} protected_areas_impacts.geojson, zone_type ZA "
                          "(SERNANP ZonasdeAmortiguamiento; CC BY 4.0 Earth Genome)",
            },
            "geometry": feat["geometry"],
        }
        for feat in collection["features"]
        if feat["properties"].get("zone_type") == "ZA"
        and feat["properties"].get("sernanp_code") == "RN09"
    ]
    assert len(features) == 3, len(features)
    _write_geojson(DEMO_DIR / "buffer_zones.geojson", features, "buffer_zones")


def write_amw_mining(real: Path) -> None:
    features = []
    for period in AMW_PERIODS:
        name = f"amw_mining_{period}_mdd.geojson"
        collection = json.loads((real / "earthrise-amw" / "mining_polygons_mdd" / name)
                                .read_text(encoding="utf-8"))
        keep = _in_context_box(collection["features"])
        for feat, inside in zip(collection["features"], keep):
            if inside:
                props = {"period": period,
                         "Mined area (ha)": feat["properties"]["Mined area (ha)"],
                         "year": feat["properties"]["year"],
                         "source": f"{AMW} data/outputs/website (CC BY 4.0 Earth Genome)"}
                features.append({"type": "Feature", "properties": props,
                                 "geometry": feat["geometry"]})
    _write_geojson(DEMO_DIR / "sources" / "amw_mining_lapampa.geojson", features,
                   "amw_mining_lapampa")


def copy_landsat_clip(real: Path) -> None:
    name = "LC08_003069_20180906_clip.tif"
    dst = DEMO_DIR / "sources" / name
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(real / "scikit-eo" / name, dst)
    print(f"copied {name}: {dst.stat().st_size / 1024:.0f} KiB")


def main(argv: list[str]) -> None:
    real = Path(argv[1]) if len(argv) > 1 else DEFAULT_REAL
    write_protected_area(real)
    write_buffer_zone(real)
    write_amw_mining(real)
    copy_landsat_clip(real)


if __name__ == "__main__":
    main(sys.argv)
