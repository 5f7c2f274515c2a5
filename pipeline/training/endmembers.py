"""The endmember library the training sampler mixes: real reflectance spectra by cover.

Built once from the real imagery staged beside the project (``python -m
pipeline.training.endmembers REAL REAL2 OUT.csv``; REAL and REAL2 are the ``real`` and ``real2``
folders described in their PROVENANCE.md / README.md) and committed as
``data/endmembers/spectra.csv`` (see ``data/README.md`` for sources, licences and attribution).

Covers and where they come from (all Landsat 8/9 surface reflectance, 30 m):

- ``mining_sediment``, ``mining_pond``, ``regrowth``: pixels inside the Amazon Mining Watch 2018
  mining polygons over the La Pampa clip (2018-09-06): bare sediment (NDVI < 0.25, MNDWI < 0),
  ponds (MNDWI > 0), regrowing pits (NDVI 0.4–0.7);
- ``forest``: NDVI > 0.75–0.8 in La Pampa (outside the polygons), Porto Velho, Manaus,
  Amarakaeri and the MultiEarth Pará chips;
- ``pasture`` (NDVI 0.3–0.65, MNDWI < −0.2) and ``bare_soil`` (NDVI < 0.3, SWIR1 > NIR): Porto
  Velho, Manaus and the Pará chips (agricultural deforestation front);
- ``river_water``: the Madeira (turbid) at Porto Velho, the Negro and Solimões at Manaus.

Each row carries a ``half`` (``a``/``b``): La Pampa pixels split north/south, other sources
alternate; cross-domain validation trains on one half and tests on the other.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from ..model import BANDS

CAP = {"forest": 150, "river_water": 300, "pasture": 300}   # rows per (cover, source)
DEFAULT_CAP = 500


def _indices(a: np.ndarray):
    b, g, r, n, s1, s2 = a
    with np.errstate(all="ignore"):
        return (n - r) / (n + r), (g - s1) / (g + s1)


def build_library(real: Path, real2: Path, seed: int = 0) -> pd.DataFrame:
    """Spectra table (cover, source, half, BANDS) from the real imagery folders."""
    import geopandas as gpd
    import rasterio
    from rasterio.features import rasterize

    rng = np.random.default_rng(seed)
    rows: list[tuple] = []

    def take(cover, source, a, m, half):
        px = a[:, m].T
        halves = np.broadcast_to(half, m.shape)[m]
        ok = np.isfinite(px).all(1) & (px > -0.01).all(1) & (px < 0.8).all(1)
        px, halves = px[ok], halves[ok]
        cap = CAP.get(cover, DEFAULT_CAP)
        if len(px) > cap:
            keep = rng.choice(len(px), cap, replace=False)
            px, halves = px[keep], halves[keep]
        rows.extend((cover, source, h, *np.round(p, 4)) for p, h in zip(px, halves))

    with rasterio.open(real / "scikit-eo/LC08_003069_20180906_clip.tif") as src:
        a = src.read().astype(float) / 1e4
        transform = src.transform
    amw = gpd.read_file(real / "earthrise-amw/mining_polygons_mdd/amw_mining_2018_stock_mdd.geojson").to_crs(32619)
    mined = rasterize([(g, 1) for g in amw.geometry], out_shape=a.shape[1:], transform=transform).astype(bool)
    ndvi, mndwi = _indices(a)
    north = np.where(np.arange(a.shape[1])[:, None] < a.shape[1] // 2, "a", "b")
    north = np.broadcast_to(north, a.shape[1:])
    take("mining_sediment", "lapampa-L8-2018/amw", a, mined & (ndvi < 0.25) & (mndwi < 0), north)
    take("mining_pond", "lapampa-L8-2018/amw", a, mined & (mndwi > 0), north)
    take("forest", "lapampa-L8-2018", a, ~mined & (ndvi > 0.75), north)
    take("regrowth", "lapampa-L8-2018/amw", a, mined & (ndvi > 0.4) & (ndvi < 0.7) & (mndwi < 0), north)

    with rasterio.open(real / "scikit-eo/LC08_232066_20190727.tif") as src:
        a = src.read().astype(float)
    a[a == -9999] = np.nan
    a /= 1e4
    ndvi, mndwi = _indices(a)
    take("forest", "portovelho-L8-2019", a, ndvi > 0.8, "b")
    take("pasture", "portovelho-L8-2019", a, (ndvi > 0.3) & (ndvi < 0.65) & (mndwi < -0.2), "b")
    take("bare_soil", "portovelho-L8-2019", a, (ndvi > 0.1) & (ndvi < 0.3) & (mndwi < -0.1) & (a[4] > a[3]), "b")
    take("river_water", "portovelho-L8-2019", a, (mndwi > 0.2) & (ndvi < 0.1), "b")

    with rasterio.open(real / "xlandsat/manaus_L9_C2L2SR_2023-07-23.tif") as src:
        a = src.read().astype(float)
    a[a == 0] = np.nan
    a = a * 2.75e-5 - 0.2
    ndvi, mndwi = _indices(a)
    take("forest", "manaus-L9-2023", a, ndvi > 0.8, "a")
    take("river_water", "manaus-L9-2023", a, (mndwi > 0.2) & (ndvi < 0.1), "a")
    take("pasture", "manaus-L9-2023", a, (ndvi > 0.35) & (ndvi < 0.65) & (mndwi < -0.2), "a")

    with rasterio.open(real2 / "foresttoolboxrs-csaybar/amarakaeri_L8_20160730_VF.tif") as src:
        a = src.read([2, 3, 4, 5, 6, 7]).astype(float)
    a[a < -1e30] = np.nan
    a /= 1e4
    ndvi, _ = _indices(a)
    take("forest", "amarakaeri-L8-2016", a, ndvi > 0.8, "b")

    for i, path in enumerate(sorted((real2 / "multiearth-para").glob("L8_*.tif"))):
        with rasterio.open(path) as src:
            a = src.read([3, 4, 5, 6, 7, 8]).astype(float)
        a[a == 0] = np.nan
        a = a * 2.75e-5 - 0.2
        ndvi, mndwi = _indices(a)
        source, half = f"para-{path.stem}", "ab"[i % 2]
        take("forest", source, a, ndvi > 0.8, half)
        take("pasture", source, a, (ndvi > 0.3) & (ndvi < 0.65) & (mndwi < -0.2), half)
        take("bare_soil", source, a, (ndvi > 0.05) & (ndvi < 0.3) & (mndwi < -0.05), half)
    return pd.DataFrame(rows, columns=["cover", "source", "half", *BANDS])


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: python -m pipeline.training.endmembers REAL REAL2 OUT.csv", file=sys.stderr)
        return 2
    table = build_library(Path(argv[0]), Path(argv[1]))
    out = Path(argv[2])
    tmp = out.with_name(out.name + ".tmp")
    table.to_csv(tmp, index=False)
    tmp.replace(out)
    print(table.groupby("cover").size().to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
