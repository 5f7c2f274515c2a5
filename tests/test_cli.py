"""The command line as a batch job uses it: exit codes, the summary table (an existing cluster:
test_cluster.py)."""

import json
import time

from typer.testing import CliRunner

import pipeline
from pipeline.cli import app

from .conftest import write_config


def test_every_command_takes_quiet_and_verbose_and_the_app_its_version():
    runner = CliRunner()
    version = runner.invoke(app, ["--version"])
    assert version.exit_code == 0 and version.output.strip() == f"cec-pipeline {pipeline.__version__}"
    assert "--install-completion" in runner.invoke(app, ["--help"]).output  # shell completion
    for command in app.registered_commands:
        name = command.name or command.callback.__name__.replace("_", "-")
        help_text = runner.invoke(app, [name, "--help"]).output
        assert "--quiet" in help_text and "--verbose" in help_text, name


def test_impossible_dates_and_new_formats_in_the_config(small_scene, tmp_path):
    config = write_config(tmp_path, small_scene, **{"periods.baseline": ["2018-06-01", "2018-06-31"]})
    config.write_text(config.read_text().replace("'2018-06-31'", "2018-06-31"))  # a YAML date, as users type it
    assert "- 2018-06-31\n" in config.read_text()
    result = CliRunner().invoke(app, ["run", "--config", str(config), "--dry-run"])
    assert result.exit_code == 2
    assert "periods.baseline.1" in result.output and "Traceback" not in result.output
    config = write_config(tmp_path, small_scene, **{"output.formats": ["shp", "cog"]})
    result = CliRunner().invoke(app, ["run", "--config", str(config), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "alerts_shp.zip" in result.output and "alert_rasters" in result.output


def test_train_never_overwrites_the_bundled_model_by_default(tmp_path):
    from pipeline.bundled import bundled_model

    before = bundled_model().read_bytes()
    result = CliRunner().invoke(app, ["train", "--out", str(bundled_model())])
    assert result.exit_code == 2 and "--replace-bundled" in result.output
    assert bundled_model().read_bytes() == before
    result = CliRunner().invoke(app, ["train", "--estimator", "xgboost"])
    assert result.exit_code == 2 and "random_forest" in result.output


def test_unreachable_scheduler_is_a_clear_error_after_the_configured_timeout(small_scene, tmp_path):
    config = write_config(tmp_path, small_scene, **{"dask.connect_timeout_s": 1.0})
    start = time.monotonic()
    result = CliRunner().invoke(app, ["run", "--config", str(config), "--scheduler", "tcp://127.0.0.1:9"])
    waited = time.monotonic() - start
    assert result.exit_code == 2
    assert "tcp://127.0.0.1:9" in result.output and "cannot connect" in result.output
    assert waited < 10, f"waited {waited:.0f} s: dask.connect_timeout_s (1 s here, 15 s by default) is not used"
    assert not (tmp_path / "out").exists(), "nothing is written when the cluster cannot be reached"


def test_the_console_command_flushes_its_output_and_keeps_its_exit_code(small_scene, tmp_path):
    """`cec` ends without interpreter teardown (pipeline.cli.main): piped output must still
    arrive whole, and errors keep their exit code and message."""
    import subprocess
    import sys

    config = write_config(tmp_path, small_scene)
    done = subprocess.run([sys.executable, "-m", "pipeline.cli", "run", "--config", str(config), "--dry-run"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "chunks of at most" in done.stdout and "13 looks" in done.stdout
    missing = tmp_path / "missing.geojson"
    failed = subprocess.run([sys.executable, "-m", "pipeline.cli", "validate", str(missing)],
                            capture_output=True, text=True, timeout=300)
    assert failed.returncode == 2
    assert "missing.geojson" in failed.stdout + failed.stderr and "not found" in failed.stdout + failed.stderr
