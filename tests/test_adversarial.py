"""The adversarial campaign of issue 10, kept as tests: hostile area layers, configs, models, STAC
APIs, imagery, verdict CSVs and alert files, a full disk. One test (or a few) per defect,
named ``test_dNN_…`` after the issue's numbering; black-box through ``cec`` where possible.

Runs that read pixels share the session's small generated scene and are done in-process with
dask's local scheduler (no LocalCluster). Cases that could hang or crash the interpreter on a
regression (a looping pager, a grid without bound, a tampered tree) run ``cec`` in a subprocess
with a timeout.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import importlib
import io
import json
import math
import os
import pathlib
import re
import shutil
import subprocess
import sys
import textwrap
import zipfile
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.testing.stac_api import LoopbackHttpServer

from .conftest import REPO, write_config

AREAS = REPO / "data/demo/protected_areas.geojson"
BUFFERS = REPO / "data/demo/buffer_zones.geojson"
MODEL = REPO / "models/scar-classifier.skops"
SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$")
TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


# --- helpers -----------------------------------------------------------------------------------


def cec(*args: str):
    """``cec ARGS`` in-process, computing on dask's local scheduler instead of a LocalCluster."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(importlib.import_module("pipeline.cli.run"), "dask_client", lambda config, n_areas=1: contextlib.nullcontext())
        result = CliRunner().invoke(app, [str(a) for a in args])
    return result


def text_of(result) -> str:
    """Everything the command printed, on single spaces (rich may wrap long lines)."""
    return " ".join(result.output.split())


SUBPROCESS_CODE = textwrap.dedent("""
    import contextlib, importlib, sys
    importlib.import_module("pipeline.cli.run").dask_client = lambda config, n_areas=1: contextlib.nullcontext()
    from pipeline.cli import app
    sys.argv = ["cec", *sys.argv[1:]]
    app()
""")


def cec_subprocess(*args: str, timeout_s: float) -> subprocess.CompletedProcess:
    """``cec ARGS`` in a child process (no LocalCluster), killed after ``timeout_s``."""
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-c", SUBPROCESS_CODE, *map(str, args)], capture_output=True,
                          text=True, timeout=timeout_s, cwd=REPO, env=env)


def layer(path: Path, features: list[dict], crs: bool = False) -> Path:
    """Write a GeoJSON FeatureCollection."""
    document = {"type": "FeatureCollection", "features": features}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document))
    return path


def demo_features(path: Path = AREAS) -> list[dict]:
    return json.loads(path.read_text())["features"]


def with_props(features: list[dict], **props) -> list[dict]:
    return [{**f, "properties": {**f["properties"], **props}} for f in features]


def square(lon: float, lat: float, size_deg: float = 0.01) -> dict:
    ring = [[lon, lat], [lon + size_deg, lat], [lon + size_deg, lat + size_deg], [lon, lat + size_deg], [lon, lat]]
    return {"type": "Polygon", "coordinates": [ring]}


def config_with_areas(tmp_path: Path, scene: Path, areas: list[dict], buffers: list[dict] | None = None,
                      **changes) -> Path:
    """A config over the small scene whose area (and buffer) layers are the given features."""
    changes = {"areas.path": str(layer(tmp_path / "areas.geojson", areas))} | changes
    if buffers is None:
        changes.setdefault("areas.buffer_zones", None)
        changes.setdefault("areas.buffer_m", 1000)
    else:
        changes["areas.buffer_zones"] = str(layer(tmp_path / "buffers.geojson", buffers))
    return write_config(tmp_path, scene, **changes)


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative path -> bytes)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def csv_rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def copy_scene(scene: Path, dest: Path) -> Path:
    shutil.copytree(scene, dest)
    return dest


def scene_items(scene: Path) -> dict[str, Path]:
    """Item id -> its JSON file, in a generated scene."""
    return {p.stem: p for p in sorted((scene / "items").glob("*/*.json"))}


def write_verdicts(path: Path, rows: list[list[str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["alert_id", "verdict", "reason", "reviewer", "comment"])
        writer.writerows(rows)
    return path


class LoopbackServer(LoopbackHttpServer):
    """An HTTP server on 127.0.0.1 whose answers come from ``respond(method, path, body)``,
    which returns ``(status, content_type, bytes)``. Stopped on exit."""

    def __init__(self, respond):
        self.respond = respond
        self.requests: list[tuple[str, str]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self, method: str):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                server.requests.append((method, self.path))
                status, ctype, raw = server.respond(method, self.path, body)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(raw)))
                    self.end_headers()
                    if method != "HEAD":
                        self.wfile.write(raw)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def do_GET(self):
                self._answer("GET")

            def do_POST(self):
                self._answer("POST")

            def do_HEAD(self):
                self._answer("HEAD")

        super().__init__(Handler)


def stac_landing(url: str) -> dict:
    return {
        "type": "Catalog", "id": "adversary", "stac_version": "1.0.0", "description": "hostile API",
        "conformsTo": ["https://api.stacspec.org/v1.0.0/core", "https://api.stacspec.org/v1.0.0/item-search"],
        "links": [
            {"rel": "self", "href": url + "/", "type": "application/json"},
            {"rel": "root", "href": url + "/", "type": "application/json"},
            {"rel": "search", "href": url + "/search", "type": "application/geo+json", "method": "POST"},
        ],
    }


def stac_api(search):
    """A ``respond`` for LoopbackServer: the landing page, and ``search(url, body)`` for POST /search."""
    def respond(method, path, body):
        url = respond.url
        if method == "GET" and path.rstrip("/") == "":
            return 200, "application/json", json.dumps(stac_landing(url)).encode()
        if method == "POST" and path.startswith("/search"):
            return search(url, json.loads(body or b"{}"))
        return 404, "application/json", b'{"code": "NotFound"}'
    return respond


def serve_stac(search) -> LoopbackServer:
    respond = stac_api(search)
    server = LoopbackServer(respond)
    respond.url = server.url
    return server


def api_config(tmp_path: Path, scene: Path, url: str, **changes) -> Path:
    return write_config(tmp_path, scene, **{"source.stac_catalog": None, "source.stac_api": url,
                                            "source.timeout_s": 2, "source.retries": 0} | changes)


HOSTILE_NAME = '=HYPERLINK("http://x","Ver")'


@pytest.fixture(scope="module")
def hostile_run(small_scene, tmp_path_factory) -> tuple[Path, Path]:
    """A complete run over the small scene whose area is named with a spreadsheet formula.

    Returns ``(config, out)``; tests copy ``out`` before changing anything in it.
    """
    folder = tmp_path_factory.mktemp("hostile")
    areas = with_props(demo_features(), name=HOSTILE_NAME)
    buffers = with_props(demo_features(BUFFERS), name=HOSTILE_NAME)
    config = config_with_areas(folder, small_scene, areas, buffers)
    result = cec("run", "--config", config)
    assert result.exit_code == 0, result.output
    return config, folder / "out"


@pytest.fixture()
def hostile_out(hostile_run, tmp_path) -> tuple[Path, Path]:
    """A private copy of the hostile run's output folder, and a config that writes into it."""
    config, out = hostile_run
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    raw = yaml.safe_load(Path(config).read_text())
    raw["output"]["dir"] = str(copy)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path, copy


# --- 1. path traversal through the area id -----------------------------------------------------


@pytest.mark.parametrize("bad_id", ["../../../../../x", "a/b", "..", "C:\\x", "ok\nid", ""])
def test_d01_area_id_that_is_not_a_safe_name_is_refused(small_scene, tmp_path, bad_id):
    areas = with_props(demo_features(), sernanp_code=bad_id)
    buffers = with_props(demo_features(BUFFERS), sernanp_code=bad_id)
    config = config_with_areas(tmp_path / "cfg", small_scene, areas, buffers)
    result = cec("run", "--config", config, "--dry-run")
    assert result.exit_code == 2, result.output
    assert "areas.geojson" in text_of(result) and "id" in text_of(result)


def test_d01_validate_rejects_alert_ids_that_are_paths(hostile_out, tmp_path):
    _, out = hostile_out
    document = json.loads((out / "alerts.geojson").read_text())
    document["features"][0]["properties"]["alert_id"] = "../../../../etc/x"
    document["features"][0]["id"] = "../../../../etc/x"
    path = tmp_path / "traversal.geojson"
    path.write_text(json.dumps(document))
    result = cec("validate", path)
    assert result.exit_code == 1, result.output
    assert "alert_id" in result.output and "feature 0" in result.output


# --- 2. looping or endless pagers ------------------------------------------------------------


def _page(url, body, features, next_body):
    links = [{"rel": "root", "href": url + "/"}]
    if next_body is not None:
        links.append({"rel": "next", "href": url + "/search", "method": "POST", "body": next_body, "merge": False})
    page = {"type": "FeatureCollection", "features": features, "links": links}
    return 200, "application/geo+json", json.dumps(page).encode()


def test_d02_a_pager_that_repeats_its_page_ends_with_exit_2(small_scene, api_items, tmp_path):
    with serve_stac(lambda url, body: _page(url, body, api_items[:2], body)) as api:
        config = api_config(tmp_path, small_scene, api.url)
        done = cec_subprocess("run", "--config", config, "--dry-run", timeout_s=300)
    posts = sum(1 for method, _ in api.requests if method == "POST")
    assert done.returncode == 2, done.stderr[-2000:]
    assert "repeat" in done.stderr and api.url in " ".join(done.stderr.split())
    assert posts <= 5, f"{posts} requests for a page that repeats"


def _endless(template: dict, delay_s: float = 0.0):
    def search(url, body):
        import time

        n = int(body.get("token", 0))
        time.sleep(delay_s)
        features = [{**template, "id": f"endless-{n}-{k}"} for k in range(10)]
        return _page(url, body, features, {**body, "token": n + 1})
    return search


def test_d02_an_endless_pager_stops_at_source_max_items(small_scene, api_items, tmp_path):
    with serve_stac(_endless(api_items[0])) as api:
        config = api_config(tmp_path, small_scene, api.url, **{"source.max_items": 50})
        done = cec_subprocess("run", "--config", config, "--dry-run", timeout_s=300)
    message = " ".join(done.stderr.split())
    assert done.returncode == 2, done.stderr[-2000:]
    assert "unknown key" not in message and "source.max_items" in message and "50 items" in message
    assert sum(1 for method, _ in api.requests if method == "POST") <= 7


def test_d02_a_slow_endless_pager_stops_at_source_deadline_s(small_scene, api_items, tmp_path):
    with serve_stac(_endless(api_items[0], delay_s=0.2)) as api:
        config = api_config(tmp_path, small_scene, api.url, **{"source.deadline_s": 1.5})
        done = cec_subprocess("run", "--config", config, "--dry-run", timeout_s=300)
    message = " ".join(done.stderr.split())
    assert done.returncode == 2, done.stderr[-2000:]
    assert "unknown key" not in message and "source.deadline_s" in message and api.url in message
    assert sum(1 for method, _ in api.requests if method == "POST") <= 15


# --- 3. tampered model trees -------------------------------------------------------------------


def _tampered_model(folder: Path, tamper) -> Path:
    """A small forest saved as the pipeline saves models, its first tree changed by ``tamper(state)``
    after training and the card re-hashed: what an attacker who can write the model folder makes."""
    from sklearn.ensemble import RandomForestClassifier

    from pipeline.classify import save_model
    from pipeline.scars import FEATURES

    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, len(FEATURES)))
    y = np.array(["clearing", "mining", "other"] * 20)
    forest = RandomForestClassifier(n_estimators=3, random_state=0).fit(x, y)
    tree = forest.estimators_[0].tree_
    state = tree.__getstate__()
    state = {**state, "nodes": state["nodes"].copy(), "values": state["values"].copy()}
    tree.__setstate__(tamper(state) or state)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "tampered.skops"
    save_model(forest, path, {"training_data": "adversarial test"})
    return path


def _children_out_of_range(state):
    state["nodes"]["left_child"][:] = 10**9
    state["nodes"]["right_child"][:] = 10**9


def _feature_out_of_range(state):
    inner = state["nodes"]["left_child"] >= 0
    state["nodes"]["feature"][inner] = 10**6


def _nan_threshold(state):
    state["nodes"]["threshold"][0] = np.nan


def _negative_values(state):
    state["values"][:] = -np.inf


def test_d03_tampered_tree_children_exit_2_before_prediction(small_scene, tmp_path):
    model = _tampered_model(tmp_path / "model", _children_out_of_range)
    config = write_config(tmp_path, small_scene, model=str(model))
    done = cec_subprocess("run", "--config", config, timeout_s=300)
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    assert "tampered.skops" in done.stderr and "tree" in done.stderr
    assert not (tmp_path / "out").exists(), "a model error must not create the output folder"


@pytest.mark.parametrize("tamper", [_children_out_of_range, _feature_out_of_range, _nan_threshold, _negative_values],
                         ids=["children", "feature", "threshold", "values"])
def test_d03_model_tree_arrays_are_checked_when_loading(tmp_path, tamper):
    from pipeline.classify import load_model
    from pipeline.errors import ModelIntegrityError

    path = _tampered_model(tmp_path, tamper)
    with pytest.raises(ModelIntegrityError, match="tree"):
        load_model(path)


# --- 4. non-finite and out-of-range numbers in the config --------------------------------------


@pytest.mark.parametrize("key,value", [
    ("detection.forest_ndvi_min", ".nan"), ("detection.min_area_ha", ".inf"), ("detection.resolution_m", ".inf"),
    ("detection.ndvi_drop_min", ".nan"), ("areas.buffer_m", ".inf"), ("source.max_cloud_cover", ".nan"),
    ("source.timeout_s", ".inf"), ("lifecycle.expanding_share", ".nan"), ("detection.forest_ndvi_min", "7"),
    ("detection.cloud_buffer_m", "1.0e+300"),
])
def test_d04_non_finite_or_absurd_numbers_in_the_config_exit_2_naming_the_key(small_scene, tmp_path, key, value):
    config = write_config(tmp_path, small_scene)
    section, leaf = key.split(".")
    text = config.read_text()
    raw = yaml.safe_load(text)
    raw.setdefault(section, {})[leaf] = "@@VALUE@@"
    config.write_text(yaml.safe_dump(raw).replace("'@@VALUE@@'", value))
    result = cec("run", "--config", config, "--dry-run")
    assert result.exit_code == 2, result.output
    assert key in text_of(result)
    assert not (tmp_path / "out").exists()


# --- 5, 6. null and duplicate area ids ----------------------------------------------------------


def test_d05_an_area_with_a_null_id_exits_2_naming_the_file(small_scene, tmp_path):
    features = demo_features()
    other = {"type": "Feature", "properties": {"sernanp_code": None, "name": "Sin código"},
             "geometry": square(-69.6, -12.9)}
    for case, areas in (("only", with_props(features, sernanp_code=None)), ("one of two", [*features, other])):
        config = config_with_areas(tmp_path / case, small_scene, areas)
        result = cec("run", "--config", config, "--dry-run")
        assert result.exit_code == 2, (case, result.output)
        assert "areas.geojson" in text_of(result) and "sernanp_code" in text_of(result)


def test_d06_duplicate_area_ids_with_different_names_exit_2(small_scene, tmp_path):
    features = demo_features()
    twin = {"type": "Feature", "properties": {"sernanp_code": "RN09", "name": "Parque Nacional Bahuaja-Sonene"},
            "geometry": square(-69.6, -12.9)}
    config = config_with_areas(tmp_path, small_scene, [*features, twin])
    result = cec("run", "--config", config, "--dry-run")
    assert result.exit_code == 2, result.output
    message = text_of(result)
    assert "RN09" in message and "Bahuaja-Sonene" in message and "Tambopata" in message


# --- 7. truncated COG, asset failing over HTTP --------------------------------------------------


def test_d07_truncated_and_unreachable_assets_are_skipped_and_listed(small_scene, tmp_path):
    scene = copy_scene(small_scene, tmp_path / "scene")
    items = scene_items(scene)
    monitor = [name for name in items if "_2019" in name or "_202" in name]
    truncated_item, remote_item = monitor[1], monitor[3]
    tif = items[truncated_item].parent / "red.tif"
    tif.write_bytes(tif.read_bytes()[: tif.stat().st_size // 3])

    def respond(method, path, body):
        return 500, "text/plain", b"internal error"

    with LoopbackServer(respond) as server:
        item = json.loads(items[remote_item].read_text())
        item["assets"]["nir"]["href"] = server.url + "/nir.tif"
        items[remote_item].write_text(json.dumps(item))
        config = write_config(tmp_path, scene, **{"output.evidence": False, "output.report": False})
        result = cec("run", "--config", config)
    assert result.exit_code == 3, result.output
    assert "Traceback" not in result.output
    run_info = json.loads((tmp_path / "out/run.json").read_text())
    skipped = {s["item"]: s["reason"] for s in run_info["skipped_inputs"]}
    assert truncated_item in skipped and remote_item in skipped, skipped
    assert "red" in skipped[truncated_item] and "nir" in skipped[remote_item]
    assert run_info["alerts"] >= 1


# --- 8. CSV formula injection --------------------------------------------------------------------


def test_d08_csv_cells_that_start_a_formula_are_neutralised(hostile_run):
    _, out = hostile_run
    for name in ("alerts.csv", "summary.csv"):
        rows = csv_rows(out / name)
        assert rows, name
        names = {row["protected_area_name"] for row in rows}
        assert names == {"'" + HOSTILE_NAME}, (name, names)
        for row in rows:
            for column, cell in row.items():
                if cell.startswith(TRIGGERS):
                    float(cell)  # only numbers (a negative delta) may start with '-'


# --- 9. rejected alerts leave every product ----------------------------------------------------


def test_d09_a_rejected_alert_leaves_new_alerts_report_and_summary(hostile_out, tmp_path):
    config, out = hostile_out
    new = json.loads((out / "alerts_new.geojson").read_text())["features"]
    assert new
    victim = new[0]["properties"]
    cls, area_id, zone = victim["class"], victim["protected_area_id"], victim["zone"]

    def summary_count() -> int:
        row = next(r for r in csv_rows(out / "summary.csv") if r["zone"] == zone)
        return int(row[f"alerts_{cls}"])

    before = summary_count()
    verdicts = write_verdicts(tmp_path / "v.csv", [[victim["alert_id"], "rejected", "river", "ana", ""]])
    result = cec("review", verdicts, "--out", out)
    assert result.exit_code == 0, result.output
    for attempt in ("after review", "after a nothing-new run"):
        ids = [f["properties"]["alert_id"] for f in json.loads((out / "alerts_new.geojson").read_text())["features"]]
        assert victim["alert_id"] not in ids, attempt
        assert victim["alert_id"] not in (out / "report.html").read_text(encoding="utf-8"), attempt
        assert summary_count() == before - 1, attempt
        assert area_id
        result = cec("run", "--config", config)
        assert result.exit_code == 0 and "nothing new" in text_of(result), result.output


# --- 10. rich markup in user text --------------------------------------------------------------


def test_d10_markup_in_file_names_is_printed_as_is(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = cec("run", "--config", "a[/x].yaml")
    assert result.exit_code == 2, result.output
    assert "a[/x].yaml" in result.output
    result = cec("validate", "[red]a[/red].json")
    assert result.exit_code == 2, result.output
    assert "[red]a[/red].json" in result.output


# --- 11. conflicting verdicts --------------------------------------------------------------------


def test_d11_conflicting_verdicts_for_one_id_are_refused_with_both_rows(hostile_out, tmp_path):
    _, out = hostile_out
    ids = [f["properties"]["alert_id"] for f in json.loads((out / "alerts.geojson").read_text())["features"]]
    verdicts = write_verdicts(tmp_path / "v.csv", [
        [ids[0], "rejected", "river", "ana", ""],
        [ids[1], "confirmed", "", "ana", ""],
        [ids[0], "confirmed", "", "luis", ""],
    ])
    state_before = (out / "state.gpkg").read_bytes()
    result = cec("review", verdicts, "--out", out)
    assert result.exit_code == 2, result.output
    message = text_of(result)
    assert ids[0] in message and "row 2" in message and "row 4" in message
    assert (out / "state.gpkg").read_bytes() == state_before


# --- 12. malformed API responses ---------------------------------------------------------------


def _html(url, body):
    return 200, "text/html", b"<html><body>Service unavailable</body></html>"


def _broken_json(url, body):
    return 200, "application/json", b'{"type": "FeatureCollection", "features": [{'


def _bad_feature(url, body):
    return _page(url, body, [{"type": "Feature", "id": "x", "properties": {}}], None)


def _not_a_collection(url, body):
    return 200, "application/json", b"[1, 2, 3]"


@pytest.mark.parametrize("search", [_html, _broken_json, _bad_feature, _not_a_collection],
                         ids=["html", "invalid-json", "invalid-feature", "not-a-collection"])
def test_d12_malformed_api_responses_exit_2_naming_the_url(small_scene, tmp_path, search):
    with serve_stac(search) as api:
        config = api_config(tmp_path, small_scene, api.url)
        result = cec("run", "--config", config, "--dry-run")
    assert result.exit_code == 2, result.output
    assert api.url in text_of(result)


def test_d12_a_landing_page_that_is_not_json_exits_2(small_scene, tmp_path):
    with LoopbackServer(lambda method, path, body: (200, "text/html", b"<html>login</html>")) as api:
        config = api_config(tmp_path, small_scene, api.url)
        result = cec("run", "--config", config, "--dry-run")
    assert result.exit_code == 2, result.output
    assert api.url in text_of(result)


# --- 13. disk full -----------------------------------------------------------------------------


def test_d13_a_failed_write_leaves_every_previous_output_as_it_was(hostile_out, monkeypatch):
    config, out = hostile_out
    before = snapshot(out)
    real_write_text = pathlib.Path.write_text

    def full_disk(self, data, *args, **kwargs):
        if "report" in self.name:
            real_write_text(self, data[: len(data) // 2], *args, **kwargs)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))
        return real_write_text(self, data, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "write_text", full_disk)
    result = cec("run", "--config", config, "--overwrite")
    monkeypatch.undo()
    assert result.exit_code == 1, result.output
    message = text_of(result)
    assert "report.html" in message and "No space left" in message and "Traceback" not in message
    after = snapshot(out)
    changed = sorted(k for k in before if before[k] != after.get(k) and k != ".cec.lock")  # the lock names its holder
    extra = sorted(set(after) - set(before) - {".cec.lock"})
    assert not changed, f"changed by a failed run: {changed}"
    assert not extra, f"left behind by a failed run: {extra}"


# --- 14. tracebacks that are input errors -------------------------------------------------------


def test_d14_a_points_layer_exits_2(small_scene, tmp_path):
    points = [{"type": "Feature", "properties": {"sernanp_code": "P1", "name": "p"},
               "geometry": {"type": "Point", "coordinates": [-69.5, -12.9]}}]
    config = config_with_areas(tmp_path, small_scene, points)
    result = cec("run", "--config", config, "--dry-run")
    assert result.exit_code == 2, result.output
    assert "areas.geojson" in text_of(result) and "Point" in text_of(result)


def test_d14_an_output_dir_that_is_a_file_exits_2(small_scene, tmp_path):
    (tmp_path / "out").write_text("a file")
    config = write_config(tmp_path, small_scene)
    for flags in (["--dry-run"], []):
        result = cec("run", "--config", config, *flags)
        assert result.exit_code == 2, (flags, result.output)
        assert "output.dir" in text_of(result) and "not a folder" in text_of(result)


def test_d14_a_huge_lookback_is_a_config_error(small_scene, tmp_path):
    config = write_config(tmp_path, small_scene)
    raw = yaml.safe_load(config.read_text())
    raw["lifecycle"] = {"lookback_days": 100000000}
    config.write_text(yaml.safe_dump(raw))
    result = cec("run", "--config", config, "--dry-run")
    assert result.exit_code == 2 and "lifecycle.lookback_days" in text_of(result), result.output


def test_d14_a_bad_window_end_in_the_state_exits_2(small_scene, tmp_path):
    import pandas as pd
    import pyogrio

    out = tmp_path / "out"
    out.mkdir()
    runs = pd.DataFrame([{"run_id": "r", "started": "2024", "window_start": "2019-01-01", "window_end": "yesterday",
                          "items": "", "n_new": "0", "n_ongoing": "0", "n_expanding": "0"}])
    pyogrio.write_dataframe(runs, out / "state.gpkg", layer="runs", driver="GPKG")
    config = write_config(tmp_path, small_scene)
    result = cec("run", "--config", config, "--dry-run")
    assert result.exit_code == 2, result.output
    assert "state.gpkg" in text_of(result) and "yesterday" in text_of(result)


DEEP = "[" * 200_000 + "]" * 200_000


def test_d14_json_nested_200000_deep_exits_2(small_scene, tmp_path):
    model = tmp_path / "model" / "deep.skops"
    model.parent.mkdir()
    shutil.copy(MODEL, model)
    model.with_suffix(".card.json").write_text(DEEP)
    config = write_config(tmp_path, small_scene, model=str(model))
    result = cec("run", "--config", config)
    assert result.exit_code == 2 and "deep.card.json" in text_of(result), result.output
    deep = tmp_path / "deep.geojson"
    deep.write_text('{"type": "FeatureCollection", "features": ' + DEEP + "}")
    result = cec("validate", deep)
    assert result.exit_code == 2 and "deep.geojson" in text_of(result), result.output


# --- 15. grid size bounded before reading -----------------------------------------------------


def test_d15_a_grid_beyond_the_limit_is_refused_before_reading(small_scene, tmp_path):
    config = write_config(tmp_path, small_scene, **{"detection.resolution_m": 0.01})
    done = cec_subprocess("run", "--config", config, timeout_s=300)
    assert done.returncode == 2, done.stderr[-2000:]
    message = " ".join(done.stderr.split())
    assert "grid" in message and "px" in message and "resolution_m" in message
    assert not (tmp_path / "out").exists()


# --- 16. cec validate: numbers and non-objects ---------------------------------------------------


def test_d16_validate_rejects_nan_and_infinite_numbers(hostile_out, tmp_path):
    _, out = hostile_out
    text = (out / "alerts.geojson").read_text()
    document = json.loads(text)
    document["features"][0]["properties"]["area_ha"] = float("nan")
    document["features"][-1]["properties"]["centroid_lat"] = float("inf")
    path = tmp_path / "nan.geojson"
    path.write_text(json.dumps(document))  # Python writes NaN / Infinity, which JSON does not have
    result = cec("validate", path)
    assert result.exit_code == 1, result.output
    assert "property 'area_ha'" in result.output and "property 'centroid_lat'" in result.output


@pytest.mark.parametrize("content", ["[]", "null", "42", '"text"'])
def test_d16_validate_of_a_non_object_names_the_real_problem(tmp_path, content):
    path = tmp_path / "alerts.geojson"
    path.write_text(content)
    result = cec("validate", path)
    assert result.exit_code == 1, result.output
    assert "crs" not in result.output and "FeatureCollection" in result.output


# --- 17. temporaries --------------------------------------------------------------------------------


def test_d17_review_removes_temporaries_left_anywhere_in_the_output(hostile_out, tmp_path):
    _, out = hostile_out
    bundle = next(p for p in (out / "evidence").iterdir() if p.is_dir())
    stale = [bundle / ".ficha.abc123.tmp.html", bundle / ".manifest.x1.tmp.json", out / ".alerts.zz9.tmp.geojson"]
    for path in stale:
        path.write_text("half")
    alert_id = json.loads((out / "alerts.geojson").read_text())["features"][0]["properties"]["alert_id"]
    verdicts = write_verdicts(tmp_path / "v.csv", [[alert_id, "confirmed", "", "ana", ""]])
    result = cec("review", verdicts, "--out", out)
    assert result.exit_code == 0, result.output
    assert not [p for p in stale if p.exists()]
    assert not list(out.rglob(".*.tmp*"))


# --- 18. silent or misleading results --------------------------------------------------------------


def test_d18_an_all_cloud_monitor_period_warns_with_clear_looks_per_area(small_scene, tmp_path):
    import rasterio

    scene = copy_scene(small_scene, tmp_path / "scene")
    for name, item in scene_items(scene).items():
        if "_2018" in name:
            continue
        scl = item.parent / "scl.tif"
        with rasterio.open(scl, "r+") as dataset:
            dataset.write(np.full((dataset.height, dataset.width), 9, dtype=dataset.dtypes[0]), 1)
    config = write_config(tmp_path, scene, **{"output.evidence": False, "output.report": False})
    result = cec("run", "--config", config)
    assert result.exit_code == 0, result.output
    message = text_of(result)
    assert "RN09" in message and "0 clear" in message and "monitor" in message
    run_info = json.loads((tmp_path / "out/run.json").read_text())
    area = run_info["areas"][0]
    assert area["clear_looks"]["monitor"] == 0 and area["clear_looks"]["baseline"] >= 1
    assert any("RN09" in w for w in run_info["warnings"])


def test_d18_a_name_field_typo_exits_2(small_scene, tmp_path):
    config = write_config(tmp_path, small_scene, **{"areas.name_field": "nmae"})
    result = cec("run", "--config", config, "--dry-run")
    assert result.exit_code == 2, result.output
    assert "nmae" in text_of(result) and "name_field" in text_of(result)


def test_d18_projected_coordinates_without_crs_are_named(small_scene, tmp_path):
    import geopandas as gpd

    utm = gpd.read_file(AREAS).to_crs(32719)
    features = json.loads(utm.to_json(drop_id=True))["features"]
    config = config_with_areas(tmp_path, small_scene, features)
    result = cec("run", "--config", config, "--dry-run")
    assert result.exit_code == 2, result.output
    assert "lon/lat" in text_of(result) and "areas.geojson" in text_of(result)


def test_d18_a_verdict_row_with_extra_fields_is_named(hostile_out, tmp_path):
    _, out = hostile_out
    alert_id = json.loads((out / "alerts.geojson").read_text())["features"][0]["properties"]["alert_id"]
    path = tmp_path / "v.csv"
    path.write_text("alert_id,verdict,reason,reviewer,comment\n"
                    f"{alert_id},rejected,river,ana,bank, not a mine\n", encoding="utf-8")
    result = cec("review", path, "--out", out)
    assert result.exit_code == 2, result.output
    message = text_of(result)
    assert "row 2" in message and "6 fields" in message and "5" in message


def test_d18_many_unknown_ids_give_a_short_counted_error(hostile_out, tmp_path):
    _, out = hostile_out
    n = 50_000
    verdicts = write_verdicts(tmp_path / "v.csv", [[f"nobody-{i:06d}", "confirmed", "", "", ""] for i in range(n)])
    result = cec("review", verdicts, "--out", out)
    assert result.exit_code == 2, result.output
    assert len(result.output) < 3000, len(result.output)
    assert str(n) in text_of(result) and "nobody-000000" in result.output


def test_d18_a_model_error_creates_no_output_folder_and_no_lock(small_scene, tmp_path):
    config = write_config(tmp_path, small_scene, model=str(tmp_path / "missing.skops"))
    result = cec("run", "--config", config)
    assert result.exit_code == 2 and "missing.skops" in text_of(result), result.output
    assert not (tmp_path / "out").exists()


# --- property-based fuzzing (hypothesis) -----------------------------------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

FUZZ = settings(max_examples=40, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers(-(10**20), 10**20) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
NUMBERS = st.one_of(st.floats(), st.integers(-(10**30), 10**30), st.sampled_from([0, -1, 1e-300, 1e300]),
                    st.sampled_from([float("nan"), float("inf"), -float("inf"), 1e12]))
CONFIG_NUMBERS = [
    "areas.buffer_m", "source.max_cloud_cover", "source.timeout_s", "source.retries", "detection.min_area_ha",
    "detection.resolution_m", "detection.chunk_px", "detection.forest_ndvi_min", "detection.ndvi_drop_min",
    "detection.drop_sigma", "detection.nodata_edge_m", "detection.cloud_buffer_m", "lifecycle.expanding_share",
    "lifecycle.match_overlap", "lifecycle.lookback_days", "dask.n_workers", "dask.threads_per_worker",
]
CONFIG_KEYS = [*CONFIG_NUMBERS, "name", "areas.id_field", "areas.name_field", "source.collections", "periods.baseline",
               "periods.monitor", "output.formats", "output.lang", "detection.min_confidence", "model", "overlays"]


def _base_raw() -> dict:
    return {
        "name": "fuzz",
        "areas": {"path": str(AREAS), "id_field": "sernanp_code", "name_field": "name"},
        "source": {"stac_catalog": "catalog.json"},
        "periods": {"baseline": ["2018-06-01", "2018-11-30"], "monitor": ["2019-01-01", "2021-12-31"]},
        "model": str(MODEL),
        "output": {"dir": "out"},
    }


def _numbers_in(node, path=""):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _numbers_in(value, f"{path}.{key}" if path else key)
    elif isinstance(node, (list, tuple)):
        for value in node:
            yield from _numbers_in(value, path)
    elif isinstance(node, (int, float)) and not isinstance(node, bool):
        yield path, node


@FUZZ
@given(changes=st.dictionaries(st.sampled_from(CONFIG_KEYS), NUMBERS | NUMBERS | JSON_VALUES, max_size=4))
def test_fuzz_config_is_refused_cleanly_or_finite_and_bounded(changes):
    from pipeline.config import parse_config
    from pipeline.errors import ConfigError

    raw = _base_raw()
    for dotted, value in changes.items():
        *parents, leaf = dotted.split(".")
        node = raw
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    try:
        config = parse_config(raw, REPO / "configs" / "fuzz.yaml")
    except ConfigError:
        return
    for path, number in _numbers_in(config.model_dump(mode="python")):
        assert (isinstance(number, int) or math.isfinite(number)) and abs(number) <= 1e9, (path, number)


AREA_IDS = st.one_of(
    st.none(), st.integers(-(10**20), 10**20), st.floats(), st.text(max_size=12),
    st.sampled_from(["../x", "a/b", "..", ".", "RN09", "x\\y", " ", "ok-1", "a\x00b", "~root", "CON"]),
)
AREA_NAMES = st.one_of(st.none(), st.text(max_size=20), st.just(HOSTILE_NAME), st.integers())
GEOMETRIES = st.sampled_from(["polygon", "point", "empty", "bowtie", "null"])


def _geometry(kind: str, i: int):
    lon, lat = -69.6 + 0.02 * i, -12.95
    if kind == "polygon":
        return square(lon, lat)
    if kind == "point":
        return {"type": "Point", "coordinates": [lon, lat]}
    if kind == "empty":
        return {"type": "Polygon", "coordinates": []}
    if kind == "bowtie":
        return {"type": "Polygon", "coordinates": [[[lon, lat], [lon + 0.01, lat + 0.01], [lon + 0.01, lat],
                                                    [lon, lat + 0.01], [lon, lat]]]}
    return None


@FUZZ
@given(areas=st.lists(st.tuples(AREA_IDS, AREA_NAMES, GEOMETRIES), min_size=1, max_size=4))
def test_fuzz_area_layers_give_safe_unique_ids_or_an_input_error(areas):
    import tempfile

    from pipeline.aoi import load_zones
    from pipeline.config import AreasConfig
    from pipeline.errors import InputError

    features = [{"type": "Feature", "properties": {"code": code, "name": name}, "geometry": _geometry(kind, i)}
                for i, (code, name, kind) in enumerate(areas)]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "areas.geojson"
        path.write_text(json.dumps(features and {"type": "FeatureCollection", "features": features}))
        try:
            zones = load_zones(AreasConfig(path=path, id_field="code", name_field="name", buffer_m=100))
        except InputError:
            return
    assert len(zones) > 0
    for area_id in zones["area_id"]:
        assert isinstance(area_id, str) and SAFE_ID.fullmatch(area_id) and len(area_id) <= 128, repr(area_id)
        assert (Path("/base") / area_id).parent == Path("/base")
    assert not zones.duplicated(["area_id", "zone"]).any()
    assert zones.geometry.geom_type.isin(["Polygon", "MultiPolygon"]).all()


ALERT_PROPERTIES = ["alert_id", "class", "probability", "confidence", "area_ha", "first_detected", "protected_area_id",
                    "zone", "centroid_lon", "delta_ndvi", "sensors", "status"]


@FUZZ
@given(prop=st.sampled_from(ALERT_PROPERTIES), value=NUMBERS | JSON_VALUES)
def test_fuzz_alert_file_properties_are_checked_without_crashing(hostile_run, prop, value):
    from pipeline.validate import check_collection

    _, out = hostile_run
    document = json.loads((out / "alerts.geojson").read_text())
    document["features"] = document["features"][:1]
    document["features"][0]["properties"][prop] = value
    problems = check_collection(document)
    assert isinstance(problems, list) and all(isinstance(p, str) for p in problems)
    bad_number = any(isinstance(n, float) and not math.isfinite(n) for _, n in _numbers_in(value))
    bad_id = prop == "alert_id" and not (isinstance(value, str) and SAFE_ID.fullmatch(value))
    if bad_number or bad_id:
        assert any(f"property '{prop}'" in p for p in problems), (prop, value, problems)


@FUZZ
@given(document=JSON_VALUES)
def test_fuzz_any_json_document_gives_problems_not_a_crash(document):
    from pipeline.validate import check_collection

    problems = check_collection(document)
    assert problems and all(isinstance(p, str) for p in problems)
    if not isinstance(document, dict):
        assert not any("crs" in p for p in problems)


CELLS = st.text(max_size=10)


def _mostly(*values):
    """One of ``values`` three times in four, else any short text."""
    return st.one_of(st.sampled_from(values), st.sampled_from(values), st.sampled_from(values), CELLS)


VERDICT_ROWS = st.lists(st.tuples(
    _mostly("a-1", "a-2", "a-3"),
    _mostly("confirmed", "rejected", " Rejected", "CONFIRMED"),
    _mostly("river", "cloud", "MINING ", ""),
    CELLS, CELLS,
), max_size=5)


@FUZZ
@given(rows=VERDICT_ROWS)
def test_fuzz_verdict_csvs_give_one_consistent_verdict_per_id_or_an_input_error(rows):
    import tempfile

    from pipeline.errors import InputError
    from pipeline.training.verdicts import REASON_CODES, VERDICTS, read_verdicts

    with tempfile.TemporaryDirectory() as folder:
        path = write_verdicts(Path(folder) / "v.csv", [list(r) for r in rows])
        try:
            table = read_verdicts(path)
        except InputError:
            return
    assert set(table["verdict"]) <= set(VERDICTS)
    assert (table["alert_id"].str.len() > 0).all()
    assert set(table.loc[table["verdict"] == "rejected", "reason"]) <= set(REASON_CODES)
    assert table.groupby("alert_id")["verdict"].nunique().le(1).all(), "conflicting verdicts accepted"


@FUZZ
@given(raw=st.binary(max_size=300) | st.text(max_size=300).map(lambda t: t.encode("utf-8")))
def test_fuzz_any_bytes_as_a_verdict_csv_are_read_or_an_input_error(raw):
    import tempfile

    from pipeline.errors import InputError
    from pipeline.training.verdicts import read_verdicts

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "v.csv"
        path.write_bytes(b"alert_id,verdict,reason,reviewer,comment\n" + raw)
        try:
            read_verdicts(path)
        except InputError:
            pass
