"""A real dask cluster over loopback: a scheduler and two workers in their own processes, as a
user would start them on other machines; the alerts are the ones a local run gives."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from .conftest import write_config

DASK = Path(sys.executable).with_name("dask")
START_TIMEOUT_S = 60


def _features(path: Path) -> list[dict]:
    features = json.loads(path.read_text())["features"]
    for feature in features:
        feature["properties"].pop("run_id")
    return features


@pytest.fixture
def loopback_cluster(tmp_path):
    """``dask scheduler`` and two ``dask worker`` processes on 127.0.0.1, stopped at the end."""
    from distributed import Client

    scheduler_file = tmp_path / "scheduler.json"
    common = ["--no-dashboard"]
    procs = [subprocess.Popen([str(DASK), "scheduler", "--host", "127.0.0.1", "--port", "0",
                               "--scheduler-file", str(scheduler_file), *common],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not scheduler_file.is_file() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert scheduler_file.is_file(), "the dask scheduler did not start"
        for i in range(2):
            procs.append(subprocess.Popen(
                [str(DASK), "worker", "--scheduler-file", str(scheduler_file), "--nthreads", "1", "--no-nanny",
                 "--host", "127.0.0.1", "--local-directory", str(tmp_path / f"worker{i}"), "--death-timeout", "60",
                 *common], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        address = json.loads(scheduler_file.read_text())["address"]
        with Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=START_TIMEOUT_S)
        yield address
    finally:
        for proc in procs[::-1]:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def test_alerts_on_a_loopback_cluster_are_the_local_alerts(small_run, small_scene, tmp_path, loopback_cluster):
    """The CLI on a running scheduler with two workers, at another chunk size, gives the alerts of
    the session's in-process run. Also: a webhook that cannot be reached does not fail the run,
    and the output suits a batch log (no control codes, the final message with counts and files)."""
    from pipeline.cli import app

    assert loopback_cluster.startswith("tcp://127.0.0.1:")
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/hook?token=secret"
    config = write_config(tmp_path, small_scene, **{"detection.chunk_px": 100, "notify.webhooks": [dead],
                                                    "notify.timeout_s": 3})
    out = tmp_path / "cluster"
    result = CliRunner().invoke(app, ["run", "--config", str(config), "--scheduler", loopback_cluster,
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    local = _features(small_run[1] / "alerts.geojson")
    assert len(local) >= 5
    assert _features(out / "alerts.geojson") == local
    assert not (tmp_path / "out").exists(), "--out overrides output.dir"
    assert "Reserva Nacional Tambopata" in result.output and "mining" in result.output
    # not a terminal: no control codes; one log record per line; the dashboard link is logged
    assert "\x1b" not in result.output
    assert "dashboard:" in result.output
    # the final message: counts and the files written
    assert f"alerts: {len(local)} new, 0 ongoing, 0 expanding" in result.output
    assert f"files written in {out}:" in result.output
    for name in ("alerts.geojson", "alerts.csv", "summary.csv", "report.html", "run.json"):
        assert f"  {name}\n" in result.output
    assert "1 notification(s) failed" in result.output
    run = json.loads((out / "run.json").read_text())
    (failed,) = run["notifications"]
    assert failed["channel"] == "webhook" and not failed["ok"] and "secret" not in json.dumps(run)
