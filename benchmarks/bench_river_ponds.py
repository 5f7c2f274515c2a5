"""Does the river-dynamics rule's river test tell a river from mining ponds on real pixels?

Two real Landsat 8 scenes at 30 m (``../shared/data/real/scikit-eo``, or ``$CEC_SHARED_DATA``):

* **La Pampa**, Madre de Dios, 2018-09-06 (``LC08_003069_20180906_clip.tif``, also in
  ``data/demo/sources``): a field of mining ponds, no river;
* **Porto Velho**, Rondônia, 2019-07-27 (``LC08_232066_20190727.tif``): the Madeira river, about
  1 km wide, a tributary and a few small ponds; no mining.

Water is open water by the features' own test (MNDWI above ``features.WATER_MNDWI_MIN``, NDVI
under ``features.WATER_NDVI_MAX``), from the one look. The scene is tiled into 3 × 4 pixel
squares (1.08 ha, about a buried bar's size); the tiles that hold no water and lie at least half
within ``scars.NEAR_WATER_M`` of water are the ones the rule's first form judged by the water.
For each, ``scars.near_river_fractions`` (the pipeline's function, each tile as a scar) says
whether at least half of it lies within that distance of *river* water: a water body that
crosses the tile's 300 m context window and is at least ``scars.RIVER_LENGTH_MIN_M`` long in
it. Printed: per scene, the tiles by the water, those by a river, and the largest water bodies;
and, were every dry tile new surface that only the mining-surface path flagged, how many of its
pixels within that distance of water the channel belt cuts (``scars.component_belt``: those by
a river; its first form cut them all).

    python benchmarks/bench_river_ponds.py [--json out.json]

A few seconds. What limits it: one look each, water from a plain index test (the pipeline's
``water`` layer is the baseline looks' median), Landsat only (no real Sentinel-2 scene with a
river or a pond field is in the shared data), hypothetical square scars rather than detected ones.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import rasterio
from scipy import ndimage

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_real import shared_data  # noqa: E402
from pipeline.classify.banks import RIVER_NEAR_WATER_MIN  # noqa: E402
from pipeline.features import CONTEXT_M, WATER_MNDWI_MIN, WATER_NDVI_MAX  # noqa: E402
from pipeline.scars import CONNECTIVITY, NEAR_WATER_M, component_belt, near_river_fractions  # noqa: E402

SCENES = {
    "la_pampa_ponds": "real/scikit-eo/LC08_003069_20180906_clip.tif",
    "porto_velho_madeira": "real/scikit-eo/LC08_232066_20190727.tif",
}
TILE_PX = (3, 4)


def open_water(path: Path) -> tuple[np.ndarray, float]:
    """bool open water of a 6-band Landsat clip (blue … SWIR2), and its pixel size in metres."""
    with rasterio.open(path) as src:
        bands = src.read().astype(float)
        if src.nodata is not None:
            bands[bands == src.nodata] = np.nan
        pixel_m = abs(src.transform.a)
    _, green, red, nir, swir16, _ = bands
    with np.errstate(invalid="ignore", divide="ignore"):
        ndvi = (nir - red) / (nir + red)
        mndwi = (green - swir16) / (green + swir16)
    return (np.nan_to_num(mndwi, nan=-1) > WATER_MNDWI_MIN) & (np.nan_to_num(ndvi, nan=1) < WATER_NDVI_MAX), pixel_m


def tiles_by_the_water(water: np.ndarray, pixel_m: float) -> dict:
    """Tile the grid; of the dry tiles at least half within NEAR_WATER_M of water, how many lie
    at least RIVER_NEAR_WATER_MIN within it of river water."""
    th, tw = TILE_PX
    rows, cols = water.shape[0] // th, water.shape[1] // tw
    labels = np.zeros(water.shape, np.int32)
    labels[:rows * th, :cols * tw] = (np.arange(rows * cols).reshape(rows, cols) + 1).repeat(th, 0).repeat(tw, 1)
    index = np.arange(1, rows * cols + 1)
    dist = ndimage.distance_transform_edt(~water) * pixel_m
    near_water = ndimage.mean(dist <= NEAR_WATER_M, labels, index)
    dry = ndimage.maximum(water, labels, index) == 0
    by_water = dry & (near_water >= RIVER_NEAR_WATER_MIN)
    near_river = near_river_fractions({"water": water.astype(np.float32)}, labels, index, pixel_m,
                                      np.where(by_water, near_water, 0.0))
    bodies, n = ndimage.label(water, structure=CONNECTIVITY)
    sizes_ha = np.sort(np.bincount(bodies.ravel())[1:])[::-1] * pixel_m ** 2 / 1e4
    return {"water_share": round(float(water.mean()), 3), "water_bodies": int(n),
            "largest_water_bodies_ha": [round(float(s), 2) for s in sizes_ha[:5]],
            "tiles_by_the_water": int(by_water.sum()),
            "tiles_by_a_river": int((by_water & (near_river >= RIVER_NEAR_WATER_MIN)).sum()),
            **channel_belt_px(water, labels, dist, pixel_m)}


def channel_belt_px(water: np.ndarray, labels: np.ndarray, dist: np.ndarray, pixel_m: float) -> dict:
    """If every dry tile were new surface that only the mining-surface path flagged (each tile
    its own candidate component): its pixels within NEAR_WATER_M of any water (the channel belt's
    first form cut them all) and those the channel belt cuts (within NEAR_WATER_M of river water
    as seen from the tile, scars.component_belt)."""
    margin = int(np.ceil(CONTEXT_M / pixel_m))
    near = (dist <= NEAR_WATER_M) & (labels > 0)
    within, cut = 0, 0
    for label, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is None or water[box].any() or not near[box].any():
            continue
        window = tuple(slice(max(b.start - margin, 0), b.stop + margin) for b in box)
        tile = labels[window] == label
        within += int((near[window] & tile).sum())
        cut += int(component_belt(water[window], tile, near[window], pixel_m, 1).sum())
    return {"dry_tile_px_within_60m_of_water": within, "of_them_in_the_channel_belt": cut}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args(argv)
    shared = shared_data()
    out = {}
    for name, rel in SCENES.items():
        path = shared / rel
        if not path.exists():
            print(f"{name}: skipped, {path} is not on this machine")
            continue
        water, pixel_m = open_water(path)
        out[name] = tiles_by_the_water(water, pixel_m)
        r = out[name]
        print(f"{name}: {r['tiles_by_the_water']} dry 1.08 ha tiles mostly within {NEAR_WATER_M:.0f} m of water, "
              f"{r['tiles_by_a_river']} of them by a river; water {r['water_share']:.1%} of the scene in "
              f"{r['water_bodies']} bodies, the largest {r['largest_water_bodies_ha']} ha; of the dry tiles' "
              f"{r['dry_tile_px_within_60m_of_water']} pixels within {NEAR_WATER_M:.0f} m of water, "
              f"{r['of_them_in_the_channel_belt']} are in the channel belt (by a river)")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
