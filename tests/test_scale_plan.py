"""A run's plan at scale: the dry run says what each area will take, and no cluster starts before
pixels are read."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re

import pystac
import pytest
import shapely
import yaml
from typer.testing import CliRunner

from pipeline import batch
from pipeline.config import load_config

from .conftest import REPO, write_config


@pytest.fixture
def no_cluster(monkeypatch):
    """Replace the CLI's cluster with a recorder: the test fails if a cluster would start."""
    import pipeline.cli.run as cli_run

    started = []

    @contextlib.contextmanager
    def recorder(config, n_areas=1):
        started.append(config)
        yield None

    monkeypatch.setattr(cli_run, "dask_client", recorder)
    return started


def test_dry_run_prints_grid_looks_chunks_and_memory_and_starts_no_cluster(small_scene, tmp_path, no_cluster):
    from pipeline.cli import app

    config = write_config(tmp_path, small_scene, **{"detection.chunk_px": 100})
    result = CliRunner().invoke(app, ["run", "--config", str(config), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert re.search(r"grid 25\d × 25\d px \(0.1 Mpx, EPSG:32719\), 13 looks, 9 chunks of at most 100² px", result.output)
    assert "MiB per worker" in result.output and "MiB in this process" in result.output
    assert no_cluster == [], "a dry run reads no pixel and starts no cluster"
    assert not (tmp_path / "out").exists()


def test_nothing_new_starts_no_cluster(small_scene, tmp_path):
    import dask

    config = load_config(write_config(tmp_path, small_scene, **{"output.evidence": False, "output.report": False}))
    opened = []

    @contextlib.contextmanager
    def cluster(n_areas):
        opened.append(n_areas)
        with dask.config.set(scheduler="synchronous"):
            yield

    first = batch.run_batch(config, cluster=cluster, today=dt.date(2022, 1, 1))
    assert first.status == "done" and opened == [1]
    again = batch.run_batch(config, cluster=cluster, today=dt.date(2022, 1, 1))
    assert again.status == "nothing new"
    assert opened == [1], "no cluster for a run that has nothing new to read"


def _stand_in_items(path, days):
    """Items shaped like Earth Search S2 L2A, one per day, each covering all of Madre de Dios."""
    footprint = shapely.box(-73.0, -14.5, -68.5, -11.0)
    items = []
    for day in days:
        when = dt.datetime.combine(day, dt.time(14, 50), tzinfo=dt.timezone.utc)
        item = pystac.Item(f"S2B_19LCF_{day:%Y%m%d}_0_L2A", shapely.geometry.mapping(footprint),
                           list(footprint.bounds), when, {"eo:cloud_cover": 10.0, "platform": "sentinel-2b"},
                           collection="sentinel-2-l2a")
        for band in ("blue", "green", "red", "nir", "swir16", "swir22", "scl"):
            item.add_asset(band, pystac.Asset(f"https://example.invalid/{day}/{band}.tif"))
        items.append(item)
    pystac.ItemCollection(items).save_object(dest_href=str(path))
    return path


def test_madre_de_dios_plan_covers_the_four_areas_with_their_buffer_zones(tmp_path):
    """The real-sized config, planned on stand-in items (no network): four areas, each its grid."""
    raw = yaml.safe_load((REPO / "configs" / "madre_de_dios.yaml").read_text())
    days = [dt.date(2023, 7, 1) + dt.timedelta(days=10 * i) for i in range(6)]
    days += [dt.date(2024, 2, 1) + dt.timedelta(days=30 * i) for i in range(6)]
    raw["source"] = {"stac_items": str(_stand_in_items(tmp_path / "items.json", days)),
                     "collections": ["sentinel-2-l2a"]}
    raw["periods"]["monitor"] = ["2024-01-01", "2024-12-31"]
    raw["areas"]["path"] = str(REPO / "data" / "madre_de_dios" / "protected_areas.geojson")
    raw["areas"]["buffer_zones"] = str(REPO / "data" / "madre_de_dios" / "buffer_zones.geojson")
    raw["model"] = str(REPO / "models" / "scar-classifier.skops")
    raw["output"]["dir"] = str(tmp_path / "out")
    path = tmp_path / "madre_de_dios.yaml"
    path.write_text(yaml.safe_dump(raw))
    result = batch.run_batch(load_config(path), dry_run=True, today=dt.date(2025, 1, 1))
    budgets = {area["area_id"]: area["budget"] for area in result.plan}
    assert sorted(budgets) == ["PN03", "PN08", "RC03", "RN09"]
    for b in budgets.values():
        assert b["looks"] == 12 and b["chunks"] >= 50
        rows, cols = b["grid_shape"]
        assert b["chunks"] == -(-rows // 1024) * -(-cols // 1024)
    # Manu with its buffer zone spans about 2° of longitude: far more than one S2 tile
    assert budgets["PN03"]["megapixels"] > 2 * 10980 ** 2 / 1e6
    assert budgets["PN08"]["epsg"] == 32719
    json.dumps(result.plan)  # the plan is plain data (a scheduler log can keep it)
