"""Indices and change statistics: known values, and numpy and dask paths give the same numbers."""

import numpy as np
import pytest
import xarray as xr

from pipeline import indices
from pipeline.change import FIELDS, INPUTS, PATH_FOREST_LOSS, PATH_MINING_SURFACE, ChangeParams, detect_change

from .helpers import assert_numpy_dask_equal


def _reflectance(seed=0, shape=(3, 40, 50)):
    rng = np.random.default_rng(seed)
    bands = {b: rng.uniform(0.01, 0.5, shape).astype("float32") for b in ("blue", "green", "red", "nir", "swir16", "swir22")}
    bands["red"][0, 0, 0] = np.nan  # nodata propagates
    bands["nir"][0, 0, 1] = 0.0
    bands["red"][0, 0, 1] = 0.0     # zero denominator -> NaN, not inf
    return xr.Dataset({k: (("time", "y", "x"), v) for k, v in bands.items()})


def test_known_values():
    nir = xr.DataArray(np.array([0.4, 0.3, 0.05], dtype="float32"))
    red = xr.DataArray(np.array([0.04, 0.3, 0.2], dtype="float32"))
    np.testing.assert_allclose(indices.ndvi(nir, red).values, [0.36 / 0.44, 0.0, -0.6], rtol=1e-6)
    green = xr.DataArray(np.array([0.08], dtype="float32"))
    swir = xr.DataArray(np.array([0.02], dtype="float32"))
    assert indices.mndwi(green, swir).item() == pytest.approx(0.6)  # water is positive


def test_nodata_and_zero_denominator_give_nan():
    out = indices.compute_indices(_reflectance())
    assert np.isnan(out["ndvi"].values[0, 0, 0])
    assert np.isnan(out["ndvi"].values[0, 0, 1])
    assert np.isfinite(out["ndvi"].values[1]).all()
    assert out["ndvi"].dtype == np.float32


@pytest.mark.parametrize("name", ["ndvi", "nbr", "ndmi", "mndwi", "bsi"])
def test_index_numpy_and_dask_paths_agree(name):
    data = _reflectance()
    assert_numpy_dask_equal(lambda d: indices.compute_indices(d)[name], data, chunks={"time": 1, "y": 16, "x": 16})


def _scene(seed=1):
    rng = np.random.default_rng(seed)
    t, y, x = 12, 48, 60
    ndvi = (0.82 + 0.02 * rng.standard_normal((t, y, x))).astype("float32")
    nbr = ndvi - 0.25
    mndwi = np.full_like(ndvi, -0.4)
    bsi = np.full_like(ndvi, -0.2)
    bands = {"blue": 0.025, "green": 0.05, "red": 0.03, "nir": 0.3, "swir16": 0.13, "swir22": 0.06}
    bands = {k: np.full_like(ndvi, v) for k, v in bands.items()}
    sand = {"blue": 0.2, "green": 0.22, "red": 0.25, "nir": 0.3, "swir16": 0.35, "swir22": 0.3}
    scar, growth = np.s_[7:, 10:25, 20:41], np.s_[8:, 30:45, 40:58]
    for k, v in sand.items():               # sand: blue and SWIR1 both rise, SWIR1 more
        bands[k][scar] = v
        bands[k][growth] = v
    ndvi[scar] = 0.12                       # a forest scar from look 7 on, across chunk borders
    nbr[scar] = -0.05
    bsi[scar] = bsi[growth] = 0.08
    ndvi[:8, 30:45, 40:58] -= 0.3           # scrub (NDVI ~0.5) that turns to sand at look 8
    nbr[:8, 30:45, 40:58] -= 0.3
    ndvi[growth] = 0.08
    nbr[growth] = 0.0
    ndvi[9, 30:40, 5:15] = 0.2              # one unmasked cloud edge: a single look only
    nbr[9, 30:40, 5:15] = 0.0
    clear = rng.random((t, y, x)) > 0.15
    data = xr.Dataset({k: (("time", "y", "x"), v) for k, v in
                       {"ndvi": ndvi, "nbr": nbr, "mndwi": mndwi, "bsi": bsi, **bands}.items()})
    data["clear"] = (("time", "y", "x"), clear)
    return data, np.arange(t) < 5


def test_change_numpy_and_dask_paths_agree():
    data, is_baseline = _scene()
    params = ChangeParams()
    run = lambda d: detect_change(d[list(INPUTS)], d["clear"], is_baseline, params)
    assert_numpy_dask_equal(lambda d: run(d).to_array(), data, chunks={"time": 1, "y": 17, "x": 23},
                            skip=("look_bits",))
    eager = run(data)
    lazy = run(data.chunk({"time": 1, "y": 17, "x": 23})).compute()
    np.testing.assert_array_equal(eager["look_bits"].values, lazy["look_bits"].values)
    assert set(FIELDS) <= set(eager.data_vars)


def test_change_finds_the_scar_and_ignores_a_single_cloudy_look():
    data, is_baseline = _scene()
    out = detect_change(data[list(INPUTS)], data["clear"], is_baseline, ChangeParams())
    confirmed = out["confidence"].values >= 2
    assert confirmed[10:25, 20:41].mean() > 0.95
    assert not confirmed[30:40, 5:15].any()
    scrub = confirmed[30:45, 40:58]
    assert scrub.mean() > 0.95, "sand on scrub is new mining surface"
    assert confirmed.sum() == confirmed[10:25, 20:41].sum() + scrub.sum()
    path = out["detection_path"].values
    assert (path[30:45, 40:58][scrub] == PATH_MINING_SURFACE).all()
    assert (path[10:25, 20:41][confirmed[10:25, 20:41]] == PATH_FOREST_LOSS | PATH_MINING_SURFACE).all()
    assert out["post_red"].values[15, 30] == pytest.approx(0.25) and np.isnan(out["post_red"].values[2, 2])
    assert out["base_nir"].values[15, 30] == pytest.approx(0.3)
    first = out["first_look"].values[10:25, 20:41][confirmed[10:25, 20:41]]
    assert first.min() == 7 and np.mean(first == 7) > 0.6  # later only where look 7 was cloudy
    assert out["delta_ndvi"].values[15, 30] == pytest.approx(0.7, abs=0.05)
