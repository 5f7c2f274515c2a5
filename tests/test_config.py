"""Config errors: exit code 2, a message that names the key or file, and nothing written."""

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.config import load_config
from pipeline.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def _valid(tmp_path: Path) -> dict:
    return {
        "name": "t",
        "areas": {"path": str(REPO / "data/demo/protected_areas.geojson"), "id_field": "sernanp_code",
                  "name_field": "name", "buffer_zones": str(REPO / "data/demo/buffer_zones.geojson")},
        "source": {"stac_catalog": str(tmp_path / "catalog.json")},
        "periods": {"baseline": ["2018-06-01", "2018-11-30"], "monitor": ["2019-01-01", "2019-12-31"]},
        "model": str(REPO / "models/scar-classifier.skops"),
        "output": {"dir": str(tmp_path / "out")},
        "dask": {"n_workers": 1},
    }


def _run(tmp_path: Path, raw) -> tuple[int, str]:
    path = tmp_path / "config.yaml"
    path.write_text(raw if isinstance(raw, str) else yaml.safe_dump(raw))
    result = CliRunner().invoke(app, ["run", "--config", str(path)])
    return result.exit_code, result.output


def test_valid_config_loads_with_paths_relative_to_the_file(tmp_path):
    raw = _valid(tmp_path)
    raw["output"]["dir"] = "relative/out"
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(raw))
    config = load_config(tmp_path / "c.yaml")
    assert config.output.dir == (tmp_path / "relative/out").resolve()
    assert config.detection.min_area_ha == 0.5


def test_unknown_key_is_named(tmp_path):
    raw = _valid(tmp_path)
    raw["detection"] = {"min_area_hectares": 1}
    code, out = _run(tmp_path, raw)
    assert code == 2
    assert "detection.min_area_hectares" in out and "unknown key" in out
    assert not (tmp_path / "out").exists()


def test_missing_config_file_is_named(tmp_path):
    result = CliRunner().invoke(app, ["run", "--config", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert "nope.yaml" in result.output and "not found" in result.output


def test_baseline_after_monitor(tmp_path):
    raw = _valid(tmp_path)
    raw["periods"] = {"baseline": ["2020-01-01", "2020-06-30"], "monitor": ["2019-01-01", "2019-12-31"]}
    code, out = _run(tmp_path, raw)
    assert code == 2
    assert "periods" in out and "baseline must end before" in out
    assert not (tmp_path / "out").exists()


def test_missing_required_key_and_bad_yaml(tmp_path):
    raw = _valid(tmp_path)
    del raw["periods"]
    code, out = _run(tmp_path, raw)
    assert code == 2 and "periods: required key is missing" in out
    code, out = _run(tmp_path, "name: [unclosed")
    assert code == 2 and "not valid YAML" in out


def test_empty_areas_layer_is_named_and_nothing_is_written(tmp_path):
    empty = tmp_path / "empty.geojson"
    empty.write_text('{"type": "FeatureCollection", "features": []}')
    raw = _valid(tmp_path)
    raw["areas"] = {"path": str(empty), "id_field": "sernanp_code"}
    code, out = _run(tmp_path, raw)
    assert code == 2
    assert "empty.geojson" in out and "no features" in out
    assert not (tmp_path / "out").exists()


def test_missing_areas_field_is_named(tmp_path):
    raw = _valid(tmp_path)
    raw["areas"]["id_field"] = "WDPAID"
    code, out = _run(tmp_path, raw)
    assert code == 2 and "'WDPAID'" in out and "sernanp_code" in out


def test_config_error_type():
    with pytest.raises(ConfigError):
        load_config(Path("/nonexistent/config.yaml"))


def test_worker_processes_start_for_many_areas_unless_the_config_says():
    """dask.processes: null picks threads for a few areas (large windows, no start-up cost) and
    processes for many small ones (their tasks are mostly Python and would share one GIL)."""
    from pipeline.config import AUTO_PROCESSES_MIN_AREAS, DaskConfig, worker_processes

    auto = DaskConfig()
    assert auto.processes is None
    assert not worker_processes(auto, 1) and not worker_processes(auto, AUTO_PROCESSES_MIN_AREAS - 1)
    assert worker_processes(auto, AUTO_PROCESSES_MIN_AREAS) and worker_processes(auto, 115)
    assert worker_processes(DaskConfig(processes=True), 1)
    assert not worker_processes(DaskConfig(processes=False), 115)
