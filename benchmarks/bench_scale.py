"""How `cec run` scales: time and peak memory against the read floor and a plain script, in one run.

Usage::

    python benchmarks/bench_scale.py --sizes 1000 4000 --looks 9 [--looks 24] \
        [--tile] [--cache /tmp/cec-bench-scale] [--json benchmarks/scale_results.json]

For each scene size (pixels of a 10 m edge) and number of looks, a scene shaped like Earth Search
v1 ``sentinel-2-l2a`` is generated once into the cache folder (never into the repository): one
STAC item per look with seven single-band tiled deflate GeoTIFFs (``blue green red nir`` at 10 m,
``swir16 swir22 scl`` at 20 m, uint16 DN with ``raster:bands`` scale 1e-4 / offset −0.1, SCL
uint8), a static STAC catalog, a protected area with its buffer zone whose grid is about 40 % of
the scene, forest with a river, old clearings, new clearings that appear during monitoring and
clouds flagged in SCL. Three things are then timed, each in its own process:

``floor``
    Read and decode the area's window only of every band of every look with rasterio on two
    threads: what any tool must at least spend.
``plain``
    A plain xarray/rasterio dNDVI script: whole scenes of red, nir and SCL, masked NDVI, baseline
    and monitor medians, a threshold and connected components. No confirmation, no classes.
``cec``
    ``cec run`` on the scene (a LocalCluster with the default workers; evidence bundles and the
    report are off, they cost per alert, not per pixel).

Wall time and the peak of the summed resident memory of the process and all its children
(sampled every 50 ms with psutil) are reported, with the ratios cec/floor and cec/plain, and the
growth of cec's peak memory per Mpx of scene between sizes. ``--tile`` adds a full Sentinel-2
tile, 10980² px with 12 looks.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime as dt
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil

REPO = Path(__file__).resolve().parents[1]
MODEL = REPO / "models" / "scar-classifier.skops"
GENERATOR_VERSION = "1"
EPSG = 32719
ORIGIN = (300000.0, 8700000.0)  # upper-left corner, UTM 19S (Madre de Dios)
PIXEL_M = 10.0
BANDS_10M = ("blue", "green", "red", "nir")
BANDS_20M = ("swir16", "swir22", "scl")
TILE_SIZE, TILE_LOOKS = 10980, 12
# Reflectance of the cover classes: blue green red nir swir16 swir22.
SPECTRA = {
    "forest": (0.025, 0.05, 0.03, 0.32, 0.15, 0.07),
    "bare": (0.09, 0.12, 0.15, 0.22, 0.30, 0.24),
    "water": (0.06, 0.08, 0.07, 0.04, 0.02, 0.01),
    "cloud": (0.45, 0.45, 0.46, 0.50, 0.40, 0.30),
}
SCL_VEGETATION, SCL_BARE, SCL_WATER, SCL_CLOUD_HIGH = 4, 5, 6, 9
ROWS_PER_BLOCK = 1024


# ----------------------------------------------------------------------------- scene generator


def _dates(n_looks: int) -> tuple[list[dt.date], list[dt.date]]:
    """A third of the looks (at least 3) in the 2018 dry-season baseline, the rest from 2019 on."""
    n_base = max(3, n_looks // 3)
    n_mon = n_looks - n_base
    base = [dt.date(2018, 6, 1) + dt.timedelta(days=int(i * 180 / n_base)) for i in range(n_base)]
    mon = [dt.date(2019, 1, 5) + dt.timedelta(days=int(i * 1090 / n_mon)) for i in range(n_mon)]
    return base, mon


def _ellipses(rng: np.random.Generator, n: int, size: int, r_lo: float, r_hi: float) -> np.ndarray:
    """(n, 4) ellipses: centre row, centre col, radius rows, radius cols (pixels)."""
    return np.column_stack([rng.uniform(0, size, n), rng.uniform(0, size, n),
                            rng.uniform(r_lo, r_hi, n), rng.uniform(r_lo, r_hi, n)])


def _paint(mask: np.ndarray, ellipses: np.ndarray, row0: int, values: np.ndarray | None = None,
           out: np.ndarray | None = None) -> None:
    """Set ``mask`` (or ``out`` to ``values``) inside each ellipse that meets rows row0.. of the block."""
    rows = mask.shape[0]
    for k, (cy, cx, ry, rx) in enumerate(ellipses):
        if cy + ry < row0 or cy - ry >= row0 + rows:
            continue
        r0, r1 = max(int(cy - ry), row0), min(int(cy + ry) + 1, row0 + rows)
        c0, c1 = max(int(cx - rx), 0), min(int(cx + rx) + 1, mask.shape[1])
        if r0 >= r1 or c0 >= c1:
            continue
        yy = (np.arange(r0, r1)[:, None] + 0.5 - cy) / ry
        xx = (np.arange(c0, c1)[None, :] + 0.5 - cx) / rx
        inside = yy * yy + xx * xx <= 1.0
        if out is not None:
            out[r0 - row0:r1 - row0, c0:c1][inside] = values[k]
        else:
            mask[r0 - row0:r1 - row0, c0:c1] |= inside


def scene_plan(size: int, n_looks: int, seed: int = 11) -> dict:
    """Everything that defines a scene, small enough to hold (no pixels)."""
    rng = np.random.default_rng(seed)
    base, mon = _dates(n_looks)
    mpx = size * size / 1e6
    n_new = max(20, int(20 * mpx))
    new = _ellipses(rng, n_new, size, 6, 18)               # 0.1–1 ha radii → 1–10 ha scars
    onset = rng.integers(0, len(mon) - 1, n_new)            # monitor look index the clearing appears
    old = _ellipses(rng, max(4, int(3 * mpx)), size, 6, 20)
    clouds = [_ellipses(np.random.default_rng([seed, i]), max(3, int(4 * mpx)), size, 20, 90)
              for i in range(n_looks)]
    clear_looks = {0, len(base)}                            # a clear first baseline and first monitor look
    clouds = [c if i not in clear_looks else c[:0] for i, c in enumerate(clouds)]
    return {"size": size, "n_looks": n_looks, "seed": seed, "dates": base + mon, "n_baseline": len(base),
            "new": new, "onset": onset + len(base), "old": old, "clouds": clouds}


def _river(rows: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Centre column and half width (px) of a sinuous river, per row."""
    centre = 0.3 * size + 0.08 * size * np.sin(rows / size * 7.0) + 0.03 * size * np.sin(rows / size * 23.0)
    return centre, np.full(rows.shape, 12.0)


def _texture(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Deterministic low-frequency canopy texture in [-1, 1], a function of position only."""
    y, x = rows[:, None].astype(np.float32), cols[None, :].astype(np.float32)
    return (0.5 * np.sin(y / 37.0 + 0.7 * np.sin(x / 53.0)) + 0.5 * np.sin(x / 29.0 + 0.5 * np.cos(y / 61.0)))


def _render_block(plan: dict, look: int, row0: int, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """(6, rows, size) reflectance and (rows, size) SCL of one block of rows of one look."""
    size = plan["size"]
    r = np.arange(row0, row0 + rows)
    c = np.arange(size)
    cover = np.zeros((rows, size), np.uint8)                 # 0 forest, 1 bare, 2 water
    bare = np.zeros((rows, size), bool)
    _paint(bare, plan["old"], row0)
    started = plan["new"][plan["onset"] <= look]
    _paint(bare, started, row0)
    cover[bare] = 1
    centre, half = _river(r, size)
    cover[np.abs(c[None, :] - centre[:, None]) <= half[:, None]] = 2
    cloud = np.zeros((rows, size), bool)
    _paint(cloud, plan["clouds"][look], row0)
    spectra = np.array([SPECTRA["forest"], SPECTRA["bare"], SPECTRA["water"]], np.float32).T  # (6, 3)
    refl = spectra[:, cover]                                  # (6, rows, size)
    refl *= 1.0 + 0.08 * _texture(r, c)[None]
    rng = np.random.default_rng([plan["seed"], look, row0])
    refl += rng.normal(0.0, 0.004, (6, rows, size)).astype(np.float32)
    cloud_refl = np.array(SPECTRA["cloud"], np.float32)[:, None]
    refl[:, cloud] = cloud_refl
    scl = np.choose(cover, (SCL_VEGETATION, SCL_BARE, SCL_WATER)).astype(np.uint8)
    scl[cloud] = SCL_CLOUD_HIGH
    return refl, scl


def _encode(refl: np.ndarray) -> np.ndarray:
    """Reflectance -> Earth Search DN (× 1e4 + 1000), 1 … 65535."""
    return np.clip(np.round(refl * 1e4 + 1000.0), 1, 65535).astype(np.uint16)


def _tif_profile(size: int, transform) -> dict:
    block = 1024 if size >= 1024 else 256
    return dict(driver="GTiff", height=size, width=size, count=1, crs=f"EPSG:{EPSG}", transform=transform,
                nodata=0, tiled=True, blockxsize=block, blockysize=block, compress="deflate", predictor=2)


def _write_look(plan: dict, look: int, folder: Path) -> dict:
    """Write one look's seven GeoTIFFs; return its cloud cover (%)."""
    import rasterio
    from rasterio.windows import Window
    from affine import Affine

    size, half = plan["size"], plan["size"] // 2
    t10 = Affine(PIXEL_M, 0, ORIGIN[0], 0, -PIXEL_M, ORIGIN[1])
    t20 = Affine(2 * PIXEL_M, 0, ORIGIN[0], 0, -2 * PIXEL_M, ORIGIN[1])
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for band in BANDS_10M:
        files[band] = rasterio.open(folder / f"{band}.tif", "w", dtype="uint16", **_tif_profile(size, t10))
    for band in BANDS_20M:
        dtype = "uint8" if band == "scl" else "uint16"
        files[band] = rasterio.open(folder / f"{band}.tif", "w", dtype=dtype, **_tif_profile(half, t20))
    cloudy = 0
    try:
        for row0 in range(0, size, ROWS_PER_BLOCK):
            rows = min(ROWS_PER_BLOCK, size - row0)
            refl, scl = _render_block(plan, look, row0, rows)
            cloudy += int((scl == SCL_CLOUD_HIGH).sum())
            dn = _encode(refl)
            for i, band in enumerate(BANDS_10M):
                files[band].write(dn[i], 1, window=Window(0, row0, size, rows))
            r20, n20 = row0 // 2, (rows + 1) // 2
            n20 = min(n20, half - r20)
            for i, band in ((4, "swir16"), (5, "swir22")):
                files[band].write(dn[i, ::2, ::2][:n20, :half], 1, window=Window(0, r20, half, n20))
            files["scl"].write(scl[::2, ::2][:n20, :half], 1, window=Window(0, r20, half, n20))
    finally:
        for f in files.values():
            f.close()
    return {"cloud_cover": round(100.0 * cloudy / (size * size), 2)}


def _zones(size: int):
    """Protected area (an irregular disc) and its buffer zone, UTM; their bbox is ~40 % of the scene."""
    import shapely

    cy, cx = ORIGIN[1] - 0.5 * size * PIXEL_M, ORIGIN[0] + 0.5 * size * PIXEL_M
    angles = np.linspace(0, 2 * np.pi, 90, endpoint=False)
    radius = 0.2 * size * PIXEL_M * (1 + 0.12 * np.sin(3 * angles) + 0.06 * np.cos(7 * angles))
    core = shapely.Polygon(np.column_stack([cx + radius * np.cos(angles), cy + radius * np.sin(angles)]))
    buffer_zone = core.buffer(0.1 * size * PIXEL_M).difference(core)
    return core, buffer_zone


def _to_wgs(geom):
    import geopandas as gpd

    return gpd.GeoSeries([geom], crs=EPSG).to_crs(4326).iloc[0]


def _write_catalog(root: Path, plan: dict, covers: list[dict]) -> None:
    import pystac
    import shapely
    from shapely.geometry import mapping

    size = plan["size"]
    footprint = _to_wgs(shapely.box(ORIGIN[0], ORIGIN[1] - size * PIXEL_M, ORIGIN[0] + size * PIXEL_M, ORIGIN[1]))
    items = []
    for look, (day, cover) in enumerate(zip(plan["dates"], covers)):
        item_id = f"S2B_19LCF_{day:%Y%m%d}_0_L2A"
        when = dt.datetime(day.year, day.month, day.day, 14, 45, tzinfo=dt.timezone.utc)
        props = {"platform": "sentinel-2b", "constellation": "sentinel-2", "eo:cloud_cover": cover["cloud_cover"],
                 "proj:epsg": EPSG, "s2:processing_baseline": "05.00", "earthsearch:boa_offset_applied": True,
                 "cec:synthetic": True}
        item = pystac.Item(item_id, mapping(footprint), list(footprint.bounds), when, props,
                           collection="sentinel-2-l2a")
        for band in BANDS_10M + BANDS_20M:
            res = 10 if band in BANDS_10M else 20
            extra = {"gsd": res, "raster:bands": [{"nodata": 0, "data_type": "uint8" if band == "scl" else "uint16",
                                                   "spatial_resolution": res}]}
            if band != "scl":
                extra["raster:bands"][0] |= {"scale": 0.0001, "offset": -0.1}
                extra["eo:bands"] = [{"name": band, "common_name": band}]
            item.add_asset(band, pystac.Asset(str(root / "items" / f"look{look:02d}" / f"{band}.tif"),
                                              roles=["data"], extra_fields=extra,
                                              media_type="image/tiff; application=geotiff; profile=cloud-optimized"))
        items.append(item)
    extent = pystac.Extent(pystac.SpatialExtent([list(footprint.bounds)]),
                           pystac.TemporalExtent([[items[0].datetime, items[-1].datetime]]))
    coll = pystac.Collection("sentinel-2-l2a", "Generated Earth Search-shaped looks (bench_scale).", extent,
                             license="various")
    coll.add_items(items)
    cat = pystac.Catalog("bench-scale", f"bench_scale scene {size}² px, {plan['n_looks']} looks")
    cat.add_child(coll)
    cat.set_self_href(str(root / "catalog.json"))
    coll.set_self_href(str(root / "sentinel-2-l2a" / "collection.json"))
    for item in items:
        item.set_self_href(str(root / "sentinel-2-l2a" / item.id / f"{item.id}.json"))
    cat.make_all_asset_hrefs_relative()
    cat.save(pystac.CatalogType.SELF_CONTAINED)


def _write_areas(root: Path, size: int) -> None:
    from shapely.geometry import mapping

    core, buffer_zone = _zones(size)
    for name, geom in (("areas.geojson", core), ("buffer_zones.geojson", buffer_zone)):
        fc = {"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": mapping(_to_wgs(geom)),
                                                         "properties": {"code": "BENCH", "name": "Bench reserve"}}]}
        (root / name).write_text(json.dumps(fc))


def ensure_scene(cache: Path, size: int, n_looks: int, jobs: int = 2) -> Path:
    """Generate the scene once into ``cache`` (atomically); return its folder."""
    root = cache / f"scene_{size}_{n_looks}_v{GENERATOR_VERSION}"
    if (root / "done.json").is_file():
        return root
    cache.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=root.name + ".", dir=cache))
    try:
        plan = scene_plan(size, n_looks)
        start = time.perf_counter()
        with concurrent.futures.ProcessPoolExecutor(jobs) as pool:
            covers = list(pool.map(_write_look, [plan] * n_looks, range(n_looks),
                                   [tmp / "items" / f"look{i:02d}" for i in range(n_looks)]))
        _write_catalog(tmp, plan, covers)
        _write_areas(tmp, size)
        (tmp / "done.json").write_text(json.dumps({"seconds": time.perf_counter() - start,
                                                   "n_baseline": plan["n_baseline"],
                                                   "dates": [d.isoformat() for d in plan["dates"]]}))
        if root.exists():
            shutil.rmtree(root)
        tmp.rename(root)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return root


def write_small_areas(scene: Path, path: Path, n: int, edge_px: int = 48) -> Path:
    """``n`` square areas of ``edge_px``² px spread over the scene, no buffer zones."""
    import shapely
    from shapely.geometry import mapping

    size = json.loads((scene / "done.json").read_text()).get("size") or int(scene.name.split("_")[1])
    per_row = int(np.ceil(np.sqrt(n)))
    step = (size - edge_px) / max(per_row, 1)
    features = []
    for k in range(n):
        r, c = divmod(k, per_row)
        x0, y1 = ORIGIN[0] + (c * step + edge_px / 2) * PIXEL_M, ORIGIN[1] - (r * step + edge_px / 2) * PIXEL_M
        square = shapely.box(x0, y1 - edge_px * PIXEL_M, x0 + edge_px * PIXEL_M, y1)
        features.append({"type": "Feature", "geometry": mapping(_to_wgs(square)),
                         "properties": {"code": f"A{k:03d}", "name": f"Small area {k}"}})
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


def write_config(scene: Path, out: Path, areas: Path | None = None, chunk_px: int | None = None,
                 processes: bool | None = None) -> Path:
    """A cec config over the scene (alerts only: no evidence bundles, no report); ``areas``: other
    area polygons (no buffer zones) instead of the scene's protected area; ``chunk_px``: another
    ``detection.chunk_px`` than the default; ``processes``: ``dask.processes`` (default: the config's
    default)."""
    meta = json.loads((scene / "done.json").read_text())
    dates = meta["dates"]
    base_end = dates[meta["n_baseline"] - 1]
    zones = (f"  path: {areas}\n  buffer_m: 0\n" if areas else
             f"  path: {scene / 'areas.geojson'}\n  buffer_zones: {scene / 'buffer_zones.geojson'}\n")
    text = f"""name: bench-scale
areas:
{zones}  id_field: code
  name_field: name
source:
  stac_catalog: {scene / 'catalog.json'}
  collections: [sentinel-2-l2a]
  max_cloud_cover: 100
periods:
  baseline: [2018-01-01, {base_end}]
  monitor: [2019-01-01, 2021-12-31]
model: {MODEL}
{f"detection:{chr(10)}  chunk_px: {chunk_px}{chr(10)}" if chunk_px else ""}output:
  dir: {out}
  formats: [geojson]
  evidence: false
  report: false
{f"dask:{chr(10)}  processes: {str(processes).lower()}{chr(10)}" if processes is not None else ""}"""
    path = out.parent / f"{out.name}.yaml"
    path.write_text(text)
    return path


# ----------------------------------------------------------------------------- the variants


def area_windows(scene: Path) -> dict[int, tuple[int, int, int, int]]:
    """Pixel window (row0, col0, rows, cols) of the area's bounding box at 10 m and at 20 m."""
    import geopandas as gpd
    import shapely

    core = gpd.read_file(scene / "areas.geojson").to_crs(EPSG).geometry.iloc[0]
    ring = gpd.read_file(scene / "buffer_zones.geojson").to_crs(EPSG).geometry.iloc[0]
    x0, y0, x1, y1 = shapely.union_all([core, ring]).bounds
    out = {}
    for res in (10, 20):
        c0, c1 = int((x0 - ORIGIN[0]) // res), int(np.ceil((x1 - ORIGIN[0]) / res))
        r0, r1 = int((ORIGIN[1] - y1) // res), int(np.ceil((ORIGIN[1] - y0) / res))
        out[res] = (r0, c0, r1 - r0, c1 - c0)
    return out


def variant_floor(scene: Path) -> dict:
    """Read and decode the area's window of every band of every look, two threads."""
    import rasterio
    from rasterio.windows import Window

    windows = area_windows(scene)
    files = sorted((scene / "items").glob("look*/*.tif"))
    start = time.perf_counter()

    def read(path: Path) -> int:
        r0, c0, h, w = windows[10 if path.stem in BANDS_10M else 20]
        with rasterio.open(path) as src:
            return int(src.read(1, window=Window(c0, r0, w, h)).size)

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        pixels = sum(pool.map(read, files))
    return {"seconds": time.perf_counter() - start, "files": len(files), "pixels": pixels}


def variant_plain(scene: Path) -> dict:
    """A plain xarray/rasterio dNDVI script over whole scenes."""
    import rasterio
    import xarray as xr
    from scipy import ndimage

    meta = json.loads((scene / "done.json").read_text())
    looks = sorted((scene / "items").glob("look*"))
    start = time.perf_counter()
    ndvi = []
    for folder in looks:
        with rasterio.open(folder / "red.tif") as src:
            red = src.read(1).astype("float32") * 1e-4 - 0.1
            shape = src.shape
        with rasterio.open(folder / "nir.tif") as src:
            nir = src.read(1).astype("float32") * 1e-4 - 0.1
        with rasterio.open(folder / "scl.tif") as src:
            scl = src.read(1, out_shape=shape)  # nearest-neighbour up to 10 m
        clear = np.isin(scl, (SCL_VEGETATION, SCL_BARE, SCL_WATER))
        ndvi.append(xr.DataArray(np.where(clear, (nir - red) / (nir + red), np.nan), dims=("y", "x")))
    stack = xr.concat(ndvi, dim="time")
    n_base = meta["n_baseline"]
    baseline = stack.isel(time=slice(0, n_base)).median("time")
    monitor = stack.isel(time=slice(n_base, None)).median("time")
    loss = ((baseline > 0.65) & ((baseline - monitor) > 0.2)).values
    _, n = ndimage.label(loss)
    return {"seconds": time.perf_counter() - start, "loss_px": int(loss.sum()), "patches": int(n)}


def _peak_of(proc: subprocess.Popen, interval_s: float = 0.05) -> tuple[int, float]:
    """Wait for a process; return (peak summed RSS of it and its children in bytes, seconds)."""
    start = time.perf_counter()
    peak = 0
    root = psutil.Process(proc.pid)
    while proc.poll() is None:
        total = 0
        try:
            for p in [root, *root.children(recursive=True)]:
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    pass
        except psutil.Error:
            pass
        peak = max(peak, total)
        time.sleep(interval_s)
    return peak, time.perf_counter() - start


def measure(cmd: list[str], log: Path) -> dict:
    """Run a command; its wall time and peak process-tree memory."""
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "COLUMNS": "200"})
        peak, seconds = _peak_of(proc)
    if proc.returncode not in (0, 3):
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({proc.returncode}); see {log}:\n"
                           + log.read_text()[-3000:])
    return {"seconds": round(seconds, 2), "process_s": round(seconds, 2), "peak_mib": round(peak / 2**20, 1)}


def measure_variant(variant: str, scene: Path, log: Path) -> dict:
    """A variant in its own process: ``seconds`` is its work alone (no interpreter start or imports)."""
    row = measure([sys.executable, str(Path(__file__).resolve()), "--variant", variant, str(scene)], log)
    work = json.loads(log.read_text().strip().splitlines()[-1])
    return row | {k: (round(v, 3) if isinstance(v, float) else v) for k, v in work.items()}


def dry_run_estimate(cec: str, config: Path) -> dict:
    """What ``cec run --dry-run`` predicts for the run (its chunks and memory), to set beside the
    measured peak."""
    text = subprocess.run([cec, "run", "--config", str(config), "--dry-run"], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "400"}, check=True).stdout
    chunks = re.search(r"(\d+) chunks of at most (\d+)² px", text)
    memory = re.search(r"memory ≈ (\d+) MiB per chunk task, (\d+) MiB per worker, (\d+) MiB in this process", text)
    workers = re.search(r"LocalCluster of (\d+) workers", text)
    if not (chunks and memory and workers):
        return {"unparsed": text[-500:]}
    task, worker, client = (int(v) for v in memory.groups())
    return {"chunks": int(chunks.group(1)), "chunk_px": int(chunks.group(2)), "task_mib": task, "worker_mib": worker,
            "client_mib": client, "workers": int(workers.group(1)),
            "total_mib": int(workers.group(1)) * worker + client}


def bench_one(scene: Path, work: Path, skip_plain: bool, chunk_px: int | None = None) -> dict:
    row: dict = {}
    row["floor"] = measure_variant("floor", scene, work / "floor.log")
    if not skip_plain:
        row["plain"] = measure_variant("plain", scene, work / "plain.log")
    out = work / "cec-out"
    config = write_config(scene, out, chunk_px=chunk_px)
    cec = str(Path(sys.executable).with_name("cec"))
    row["dry_run"] = dry_run_estimate(cec, config)
    row["cec"] = measure([cec, "run", "--config", str(config)], work / "cec.log")
    alerts = json.loads((out / "alerts.geojson").read_text())["features"]
    row["cec"]["alerts"] = len(alerts)
    run_info = json.loads((out / "run.json").read_text())
    row["grid_shape"] = run_info["areas"][0]["grid_shape"]
    row["cec"]["stages"] = [line.strip() for line in (work / "cec.log").read_text().splitlines()
                            if " s" in line and ":" in line][-20:]
    return row


def bench_areas(scene: Path, work: Path, n: int) -> dict:
    """Per-area overhead: ``cec run`` over 1 and over ``n`` small areas of the same scene, with
    the default threaded workers and with worker processes (``dask.processes: true``)."""
    cec = str(Path(sys.executable).with_name("cec"))
    result = {"areas": n, "edge_px": 48}
    for processes in (False, True):
        runs = {}
        for count in (1, n):
            out = work / f"areas{count}{'-processes' if processes else ''}"
            config = write_config(scene, out, write_small_areas(scene, work / f"areas{count}.geojson", count),
                                  processes=processes)
            runs[count] = measure([cec, "run", "--config", str(config)], work / f"{out.name}.log")
        per_area = (runs[n]["seconds"] - runs[1]["seconds"]) / (n - 1)
        key = "processes" if processes else "threads"
        result[key] = {"one_area_s": runs[1]["seconds"], "n_areas_s": runs[n]["seconds"],
                       "seconds_per_extra_area": round(per_area, 3), "peak_mib": runs[n]["peak_mib"]}
    return result


def write_results(path: Path, rows: list[dict], growth: list[dict], many: dict | None) -> None:
    info = {"machine": {"cpus": os.cpu_count(), "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
                        "load_average_1min": round(os.getloadavg()[0], 1),
                        "python": platform.python_version(), "platform": platform.platform()},
            "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "command": " ".join(sys.argv), "rows": rows,
            # settings that change the memory / speed trade of every run above
            "environment": {k: v for k, v in sorted(os.environ.items())
                            if k == "GDAL_CACHEMAX" or k.startswith("MALLOC_")},
            "memory_growth": growth, "many_areas": many}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(info, indent=1) + "\n")


def markdown_table(rows: list[dict], growth: list[dict], many: dict | None) -> str:
    """The results as the README's table."""
    lines = ["| scene | looks | area grid | chunks | read floor | plain script | `cec run` | cec / floor | cec / plain "
             "| plain peak | `cec` peak | dry-run estimate | alerts |", "|" + "---|" * 13]
    for r in rows:
        plain = r.get("plain")
        plain_s = f"{plain['seconds']:.1f} s" if plain else "–"
        ratio = f"{r['cec_over_plain']:.2f}×" if plain else "–"
        plain_peak = f"{plain['peak_mib'] / 1024:.2f} GiB" if plain else "–"
        dry = r.get("dry_run", {})
        chunks = f"{dry['chunks']} of ≤ {dry['chunk_px']}²" if "chunks" in dry else "?"
        estimate = f"{dry['total_mib'] / 1024:.2f} GiB" if "total_mib" in dry else "?"
        lines.append(
            f"| {r['size_px']}² px | {r['looks']} | {r['grid_shape'][0]} × {r['grid_shape'][1]} | {chunks} "
            f"| {r['floor']['seconds']:.2f} s | {plain_s} | {r['cec']['seconds']:.1f} s | {r['cec_over_floor']:.1f}× "
            f"| {ratio} | {plain_peak} | {r['cec']['peak_mib'] / 1024:.2f} GiB | {estimate} | {r['cec']['alerts']} |")
    for g in growth:
        lines.append(f"\n`cec` peak memory grows {g['cec_mib_per_scene_mpx']:.1f} MiB per Mpx of scene from "
                     f"{g['from_px']}² to {g['to_px']}² px ({g['looks']} looks).")
    if many:
        for key in ("threads", "processes"):
            row = many[key]
            lines.append(f"\n{many['areas']} areas of 48² px, worker {key}: {row['n_areas_s']:.1f} s against "
                         f"{row['one_area_s']:.1f} s for one: {row['seconds_per_extra_area']:.2f} s per extra area.")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 4000, 8000], help="scene edges, px (10 m)")
    parser.add_argument("--looks", type=int, action="append", help="looks per scene (repeatable; default 9 and 24)")
    parser.add_argument("--tile", action="store_true", help=f"also a full S2 tile: {TILE_SIZE}² px, {TILE_LOOKS} looks")
    parser.add_argument("--cache", type=Path, default=Path(os.environ.get("CEC_BENCH_CACHE", "/tmp/cec-bench-scale")),
                        help="where scenes are generated and kept (never the repository)")
    parser.add_argument("--plain-max-mpx", type=float, default=200.0,
                        help="skip the plain script above this many Mpx × looks (it holds every look in memory)")
    parser.add_argument("--areas", type=int, default=0,
                        help="also: this many 48² px areas on the smallest scene, for the per-area overhead")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--chunk-px", type=int, default=None, help="detection.chunk_px of cec (default: the config default)")
    parser.add_argument("--skip-plain", action="store_true", help="time only the floor and cec")
    parser.add_argument("--variant", choices=["floor", "plain"], help=argparse.SUPPRESS)
    parser.add_argument("scene", nargs="?", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        result = {"floor": variant_floor, "plain": variant_plain}[args.variant](args.scene)
        print(json.dumps(result))
        return

    cases = [(size, looks) for looks in (args.looks or [9, 24]) for size in args.sizes]
    if args.tile:
        cases.append((TILE_SIZE, TILE_LOOKS))
    rows = []
    for size, looks in cases:
        t0 = time.perf_counter()
        scene = ensure_scene(args.cache, size, looks)
        print(f"scene {size}² × {looks} looks ready in {time.perf_counter() - t0:.0f} s ({scene})", flush=True)
        with tempfile.TemporaryDirectory(prefix="bench-scale-", dir=args.cache) as tmp:
            skip_plain = size * size / 1e6 * looks > args.plain_max_mpx
            row = {"size_px": size, "looks": looks, "scene_mpx": size * size / 1e6, **bench_one(scene, Path(tmp), skip_plain or args.skip_plain, args.chunk_px)}
        cec, floor = row["cec"], row["floor"]
        row["cec_over_floor"] = round(cec["seconds"] / floor["seconds"], 2)
        if "plain" in row:
            row["cec_over_plain"] = round(cec["seconds"] / row["plain"]["seconds"], 2)
        rows.append(row)
        if args.json:  # after every case, so that a long run keeps what it measured
            write_results(args.json, rows, [], None)
        print(json.dumps({k: v for k, v in row.items() if k != "cec"} | {"cec": {k: v for k, v in cec.items()
                                                                                 if k != "stages"}}), flush=True)
    many = None
    if args.areas > 1:
        size, looks = min(cases)
        with tempfile.TemporaryDirectory(prefix="bench-areas-", dir=args.cache) as tmp:
            many = bench_areas(ensure_scene(args.cache, size, looks), Path(tmp), args.areas)
        print(json.dumps(many), flush=True)
    # Memory growth per Mpx of scene, between consecutive sizes of the same number of looks.
    growth = []
    for looks in sorted({r["looks"] for r in rows}):
        same = sorted((r for r in rows if r["looks"] == looks), key=lambda r: r["size_px"])
        for a, b in zip(same, same[1:]):
            growth.append({"looks": looks, "from_px": a["size_px"], "to_px": b["size_px"],
                           "cec_mib_per_scene_mpx": round((b["cec"]["peak_mib"] - a["cec"]["peak_mib"])
                                                          / (b["scene_mpx"] - a["scene_mpx"]), 2)})
    print()
    print(f"{'scene':>12s} {'looks':>5s} {'grid':>11s} {'floor s':>8s} {'plain s':>8s} {'cec s':>8s} "
          f"{'cec/floor':>9s} {'cec/plain':>9s} {'plain MiB':>9s} {'cec MiB':>8s} {'alerts':>6s}")
    for r in rows:
        plain = r.get("plain", {})
        print(f"{r['size_px']:>6d}² px {r['looks']:5d} {'×'.join(map(str, r['grid_shape'])):>11s} "
              f"{r['floor']['seconds']:8.2f} {plain.get('seconds', float('nan')):8.2f} {r['cec']['seconds']:8.2f} "
              f"{r['cec_over_floor']:9.2f} {r.get('cec_over_plain', float('nan')):9.2f} "
              f"{plain.get('peak_mib', float('nan')):9.0f} {r['cec']['peak_mib']:8.0f} {r['cec']['alerts']:6d}")
    if many:
        for key in ("threads", "processes"):
            row = many[key]
            print(f"{many['areas']} areas of 48² px, worker {key}: {row['n_areas_s']:.1f} s, one area "
                  f"{row['one_area_s']:.1f} s: {row['seconds_per_extra_area']:.2f} s per extra area")
    for g in growth:
        print(f"cec peak memory grows {g['cec_mib_per_scene_mpx']:.1f} MiB per Mpx of scene "
              f"from {g['from_px']}² to {g['to_px']}² px ({g['looks']} looks)")
    print()
    print(markdown_table(rows, growth, many))
    if args.json:
        write_results(args.json, rows, growth, many)


if __name__ == "__main__":
    main()
