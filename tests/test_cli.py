"""The command line as a batch job uses it: exit codes, the summary table, an existing cluster."""

import json
import time

from distributed import LocalCluster
from typer.testing import CliRunner

from pipeline.cli import app

from .conftest import write_config


def test_run_on_an_existing_scheduler(small_scene, tmp_path):
    config = write_config(tmp_path, small_scene)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        result = CliRunner().invoke(app, ["run", "--config", str(config), "--scheduler", cluster.scheduler_address,
                                          "--out", str(tmp_path / "elsewhere")])
    assert result.exit_code == 0, result.output
    assert "Reserva Nacional Tambopata" in result.output and "mining" in result.output
    alerts = json.loads((tmp_path / "elsewhere" / "alerts.geojson").read_text())
    assert alerts["features"]
    assert not (tmp_path / "out").exists(), "--out overrides output.dir"


def test_unreachable_scheduler_is_a_clear_error_after_the_configured_timeout(small_scene, tmp_path):
    config = write_config(tmp_path, small_scene, **{"dask.connect_timeout_s": 1.0})
    start = time.monotonic()
    result = CliRunner().invoke(app, ["run", "--config", str(config), "--scheduler", "tcp://127.0.0.1:9"])
    waited = time.monotonic() - start
    assert result.exit_code == 2
    assert "tcp://127.0.0.1:9" in result.output and "cannot connect" in result.output
    assert waited < 10, f"waited {waited:.0f} s: dask.connect_timeout_s (1 s here, 15 s by default) is not used"
    assert not (tmp_path / "out").exists(), "nothing is written when the cluster cannot be reached"
