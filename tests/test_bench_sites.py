"""The semi-real site builder of ``benchmarks/bench_sites.py``: real windows land where the shape
asks for them, the composites it writes are read back by the pipeline as the reflectance it
built, on the grid it built them on."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from shapely.geometry import box

from pipeline.harmonize import MSI_TO_OLI
from pipeline.model import BANDS

REPO = Path(__file__).resolve().parents[1]


def _bench():
    spec = importlib.util.spec_from_file_location("bench_sites", REPO / "benchmarks" / "bench_sites.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("bench_sites", module)
    spec.loader.exec_module(module)
    return module


bench = _bench()


def test_window_placement_puts_the_shape_on_good_ground():
    good = np.zeros((30, 40), bool)
    good[10:20, 25:35] = True                      # the only good ground
    scene = bench.Scene("toy", np.ones((6, 30, 40)), {})
    scene.refl[:, 0, :] = np.nan                   # an invalid row: no window may hold it
    want = np.zeros((8, 8))
    want[2:6, 2:6] = 1.0
    rng = np.random.default_rng(0)
    for _ in range(20):
        row, col, cover = bench.choose_window(rng, scene, good, want, 1.0)
        assert cover == 1.0
        assert good[row + 2:row + 6, col + 2:col + 6].all()
    assert bench.choose_window(rng, scene, good & False, want, 0.5) is None
    everywhere = np.ones((30, 40), bool)
    for _ in range(20):
        row, _, _ = bench.choose_window(rng, scene, everywhere, want, 1.0)
        assert row >= 1


def test_ten_metre_grid_keeps_the_thirty_metre_values():
    patch = np.random.default_rng(1).uniform(0.0, 0.4, (6, 4, 4))
    fine = bench.to_grid(patch, 3)
    assert fine.shape == (6, 12, 12)
    # bilinear on pixel areas: a cell's centre keeps its own value, nothing overshoots its neighbours
    assert np.allclose(fine[:, 1::3, 1::3], patch)
    assert (fine.min(axis=(1, 2)) >= patch.min(axis=(1, 2)) - 1e-9).all()
    assert (fine.max(axis=(1, 2)) <= patch.max(axis=(1, 2)) + 1e-9).all()
    assert bench.block_mean(np.kron(np.eye(4, dtype=bool), np.ones((3, 3), bool)), 3).tolist() == np.eye(4).tolist()


@pytest.mark.parametrize("sensor", ["sentinel-2", "landsat"])
def test_written_dn_decode_to_the_built_reflectance(sensor):
    refl = np.random.default_rng(2).uniform(0.01, 0.5, (6, 5, 5))
    dn = bench.encode(refl, sensor)
    if sensor == "sentinel-2":   # Earth Search: × 1e-4 − 0.1, then the pipeline's MSI -> OLI
        msi = dn * 1e-4 - 0.1
        back = np.stack([msi[i] * MSI_TO_OLI[b][0] + MSI_TO_OLI[b][1] for i, b in enumerate(BANDS)])
    else:
        back = dn * 2.75e-5 - 0.2
    assert np.abs(back - refl).max() < 1e-4


needs_data = pytest.mark.skipif(bool(bench.missing_data()), reason="the shared real data are not on this machine")


@needs_data
def test_a_mining_site_is_real_mining_ground_on_vegetation(tmp_path):
    sources = bench.Sources.load()
    rng = np.random.default_rng(3)
    site = None
    while site is None:
        site = bench.build_mining_site(rng, sources, "sentinel-2", "s2-mining-000", [], subtype="sediment",
                                       nonforest=False, mode="one_year")
    assert site.baseline.shape == site.monitor.shape == (6, 48, 48)
    assert site.info["truth_ha"] >= 1.2
    # the new ground was vegetation and is now what the mining-surface test calls mining ground
    assert site.info["truth_baseline_forest_share"] >= 0.8
    assert site.info["truth_mining_surface_share"] >= 0.6
    assert site.info["truth_pond_share"] < 0.15           # a sediment site: few ponds
    # outside the new ground and the old stock, both looks show the same forest (a real pair of
    # dates or one date, each with its year's radiometry): no drop near the change test's 0.2
    ndvi = lambda a: (a[3] - a[2]) / (a[3] + a[2])  # noqa: E731
    outside = ~site.truth & (ndvi(site.baseline) > 0.6)
    drop = (ndvi(site.baseline) - ndvi(site.monitor))[outside]
    assert np.median(np.abs(drop)) < 0.1 and (drop >= 0.2).mean() < 0.02


@needs_data
def test_written_sites_run_through_the_pipeline_on_their_own_grids(tmp_path):
    sources = bench.Sources.load()
    rng = np.random.default_rng(4)
    mining = None
    while mining is None:
        mining = bench.build_mining_site(rng, sources, "sentinel-2", "s2-mining-000", [], subtype="any",
                                         nonforest=False, mode="one_year")
    natural = None
    while natural is None:
        natural = bench.build_natural_site(rng, sources, "sentinel-2", "s2-natural-000", subtype="forest")
    catalog, areas = bench.write_family([mining, natural], "sentinel-2", tmp_path)
    # the site's first band as written sits on the site's bounds in EPSG:32719
    with rasterio.open(tmp_path / "items" / "s2-mining-000-monitor" / "blue.tif") as src:
        assert tuple(src.bounds) == bench.site_bounds(0, "sentinel-2") and src.crs.to_epsg() == 32719
    alerts = bench.run_family(bench.write_config(tmp_path, catalog, areas, "sentinel-2", bench.MODEL))
    assert set(alerts["protected_area_id"]) == {"s2-mining-000"}
    assert set(alerts["confidence"]) == {"low"}
    # the alert lies on the site's new mining ground (georeferencing kept from build to run)
    x0, _, _, y1 = bench.site_bounds(0, "sentinel-2")
    rows, cols = np.nonzero(mining.truth)
    truth = box(x0 + 10 * cols.min(), y1 - 10 * (rows.max() + 1), x0 + 10 * (cols.max() + 1), y1 - 10 * rows.min())
    on = alerts.to_crs(32719).intersection(truth).area.sum() / alerts.to_crs(32719).area.sum()
    assert on > 0.8
