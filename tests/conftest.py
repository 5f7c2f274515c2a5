"""Shared fixtures: a small generated scene at La Pampa and a way to run the pipeline on it."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import geopandas as gpd
import pytest
import yaml

from pipeline.config import load_config, set_keys
from pipeline.testing import scene as demo

from . import encodings

REPO = Path(__file__).resolve().parents[1]
DEMO_DATA = REPO / "data" / "demo"
CHUNK_BORDER_PX = 128  # the straddling scar crosses row 128, a chunk border at chunk_px 128


def small_spec(seed: int = 11) -> demo.SceneSpec:
    """2.56 km × 2.56 km where the Tambopata core meets its buffer zone; 4 + 9 looks.

    Holds AMW mining inside the reserve and in the buffer, old (2018) mining, the river with
    sandbars, the swath edge, clearings, one scar below the mapping unit, and a clearing that
    straddles a chunk border.
    """
    x0, y1 = 384050.0, 8562430.0
    border_y = y1 - CHUNK_BORDER_PX * 10.0
    straddler = (f"POLYGON (({x0 + 140} {border_y + 80}, {x0 + 300} {border_y + 80}, "
                 f"{x0 + 300} {border_y - 80}, {x0 + 140} {border_y - 80}, {x0 + 140} {border_y + 80}))")
    base = demo.DEMO_SPEC
    return dataclasses.replace(
        base,
        seed=seed,
        x0=x0,
        y1=y1,
        width_px=256,
        height_px=256,
        baseline_dates=base.baseline_dates[:4],
        monitor_dates=base.monitor_dates[::2],
        n_clearings=4,
        n_small_clearings=1,
        extra_scars=(demo.PlantedScar(straddler, "clearing", dt.date(2019, 9, 1)),),
    )


@pytest.fixture(scope="session")
def small_scene(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("scene") / "small"
    demo.generate_scene(small_spec(), folder, DEMO_DATA)
    return folder


def write_config(folder: Path, scene: Path, **changes) -> Path:
    """A run config for a generated scene; ``changes`` are dotted keys (``detection.chunk_px``)."""
    raw = {
        "name": "test",
        "areas": {"path": str(REPO / "data/demo/protected_areas.geojson"), "id_field": "sernanp_code",
                  "name_field": "name", "buffer_zones": str(REPO / "data/demo/buffer_zones.geojson")},
        "source": {"stac_catalog": str(scene / "catalog.json"), "collections": ["sentinel-2-l2a"],
                   "max_cloud_cover": 95},
        "periods": {"baseline": ["2018-06-01", "2018-11-30"], "monitor": ["2019-01-01", "2021-12-31"]},
        "detection": {"min_area_ha": 0.5, "chunk_px": CHUNK_BORDER_PX},
        "model": str(REPO / "models/scar-classifier.skops"),
        "output": {"dir": str(folder / "out"), "formats": ["geojson", "csv"]},
        "dask": {"n_workers": 1},
    }
    raw = set_keys(raw, changes)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def run_pipeline(config_path: Path):
    """Run the job in this process, on dask's threaded scheduler (the tests whose subject is the
    cluster start one themselves: test_cluster.py, the killed run in test_lifecycle.py)."""
    from pipeline.run import run

    return run(load_config(config_path))


@pytest.fixture(scope="session")
def small_run(small_scene, tmp_path_factory):
    """THE run of the small scene over the whole monitor period (default config: geojson and csv,
    evidence and report), shared by every test that only reads its result or its files.

    Returns ``(result, out)``. Tests that change the output folder copy it first.
    """
    folder = tmp_path_factory.mktemp("small-run")
    result = run_pipeline(write_config(folder, small_scene))
    return result, folder / "out"


def read_truth(scene: Path) -> gpd.GeoDataFrame:
    """Planted scars (EPSG:32719) of a generated scene."""
    return gpd.read_file(scene / "truth_utm.geojson").set_crs(32719, allow_override=True)


SEQUENCE_UNTIL = ("2019-09-30", "2020-09-30", None)  # None: up to periods.monitor's end
SEQUENCE_TODAY = dt.date(2022, 1, 1)


@pytest.fixture(scope="session")
def run_sequence(small_scene, tmp_path_factory):
    """Scheduled runs into one output folder with a growing monitor window (every format).

    Returns ``(config_path, out, results, snapshots)``: the results of three incremental
    runs (until 2019-09-30, until 2020-09-30, until the monitor end), then a fourth that finds
    nothing new; ``snapshots[i]`` is a copy of the output folder after run ``i``.
    """
    import shutil

    from pipeline.run import run

    folder = tmp_path_factory.mktemp("sequence")
    config_path = write_config(folder, small_scene, **{"output.formats": ["geojson", "csv", "gpkg", "kml", "shp", "cog"]})
    config = load_config(config_path)
    out = Path(config.output.dir)
    results, snapshots = [], []
    calls = [{"until": dt.date.fromisoformat(u) if u else None} for u in SEQUENCE_UNTIL]
    calls += [{}]
    for i, kwargs in enumerate(calls):  # in this process: the cluster is not what these tests test
        results.append(run(config, today=SEQUENCE_TODAY, **kwargs))
        snapshots.append(folder / f"after-run-{i}")
        shutil.copytree(out, snapshots[-1])
        if i == 0:
            _shrink_largest_stored_alert(out)
    return config_path, out, results, snapshots


def _shrink_largest_stored_alert(out: Path) -> None:
    """Make the state say the largest alert was issued at about half its size, as if it had been
    caught early: the next run must find it `expanding` (the scene's scars appear whole at once)."""
    from pipeline.state import load_state, save_state

    state = load_state(out)
    i = state.alerts["area_ha"].astype(float).idxmax()
    utm = gpd.GeoSeries([state.alerts.geometry.loc[i]], crs=4326).to_crs(32719)
    corner = utm.iloc[0].bounds
    small = utm.iloc[0].intersection(
        __import__("shapely").box(corner[0], corner[1], corner[0] + (corner[2] - corner[0]) * 0.5, corner[3]))
    state.alerts.loc[i, "geometry"] = gpd.GeoSeries([small], crs=32719).to_crs(4326).iloc[0]
    state.alerts.loc[i, "area_ha"] = round(small.area / 1e4, 3)
    save_state(out, state)


@pytest.fixture(scope="session")
def api_items(small_scene) -> list[dict]:
    """The small scene's items as a STAC API serves them: absolute hrefs to the local COGs, no
    catalog links (tests/test_stac_api.py, tests/test_adversarial.py)."""
    items = []
    for item in encodings.read_items(small_scene / "catalog.json"):
        data = item.to_dict(include_self_link=False, transform_hrefs=False)
        for key, asset in data["assets"].items():
            asset["href"] = item.assets[key].get_absolute_href()
        data["links"] = []
        items.append(data)
    return items
