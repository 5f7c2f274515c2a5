"""Alert lifecycle across scheduled runs, incremental windows, the lock and a killed run."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import geopandas as gpd
import pytest
import shapely
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.config import load_config
from pipeline.errors import InputError
from pipeline.lifecycle import EQUAL_AREA_EPSG, LifecycleParams, issued, match_alerts, update_lifecycle
from pipeline.state import OutputLockedError, load_state, output_lock, resolve_window
from pipeline.validate import validate_file

from .conftest import SEQUENCE_TODAY

UTM = 32719


def _alerts(rows: list[dict]) -> gpd.GeoDataFrame:
    """Alerts with the lifecycle's columns from (id, x, y, size_m, first_detected) in EPSG:32719."""
    geoms = [shapely.box(r["x"], r["y"], r["x"] + r["w"], r["y"] + r.get("h", r["w"])) for r in rows]
    frame = gpd.GeoDataFrame({
        "alert_id": [r["id"] for r in rows],
        "first_detected": [r.get("first", "2020-01-01") for r in rows],
        "last_observed": [r.get("last", "2020-06-01") for r in rows],
        "area_ha": [g.area / 1e4 for g in geoms],
        "status": "new",
    }, geometry=geoms, crs=UTM)
    return frame.to_crs(4326)


def test_growing_scar_keeps_its_id_and_first_date_and_is_expanding():
    stored = _alerts([{"id": "a-1", "x": 384000, "y": 8560000, "w": 200, "first": "2019-08-26"},
                      {"id": "a-2", "x": 386000, "y": 8560000, "w": 200, "first": "2019-09-01"}])
    # a-1 grew eastwards to 2.5 times its area: its centroid moved, so its fresh id differs
    detected = _alerts([{"id": "fresh-x", "x": 384000, "y": 8560000, "w": 500, "h": 200, "first": "2020-01-10"},
                        {"id": "fresh-y", "x": 386010, "y": 8560000, "w": 200, "first": "2019-09-01"},
                        {"id": "fresh-z", "x": 390000, "y": 8560000, "w": 150, "first": "2020-02-02"}])
    cumulative, observed = update_lifecycle(detected, stored, LifecycleParams(expanding_share=0.2))
    by_id = observed.set_index("alert_id")
    assert set(by_id.index) == {"a-1", "a-2", "fresh-z"}
    assert by_id.loc["a-1", "status"] == "expanding"
    assert by_id.loc["a-1", "first_detected"] == "2019-08-26", "first_detected must never move later"
    assert by_id.loc["a-2", "status"] == "ongoing"
    assert by_id.loc["fresh-z", "status"] == "new"
    assert len(cumulative) == 3


def test_stored_alert_not_seen_again_is_carried_over_and_growth_below_share_is_ongoing():
    stored = _alerts([{"id": "a-1", "x": 384000, "y": 8560000, "w": 200},
                      {"id": "a-2", "x": 386000, "y": 8560000, "w": 200}])
    detected = _alerts([{"id": "fresh", "x": 384000, "y": 8560000, "w": 210}])  # +10 % area
    cumulative, observed = update_lifecycle(detected, stored, LifecycleParams(expanding_share=0.2))
    assert list(observed["alert_id"]) == ["a-1"] and list(observed["status"]) == ["ongoing"]
    assert set(cumulative["alert_id"]) == {"a-1", "a-2"}
    assert cumulative.set_index("alert_id").loc["a-2", "status"] == "ongoing"


def test_growth_of_exactly_expanding_share_is_still_ongoing():
    """4 ha grown to 5 ha is +25 %: with expanding_share 0.25 still ongoing; 5.2 ha is expanding."""
    stored = _alerts([{"id": "a-1", "x": 384000, "y": 8560000, "w": 200}])  # 4 ha
    params = LifecycleParams(expanding_share=0.25)
    exact = _alerts([{"id": "fresh", "x": 384000, "y": 8560000, "w": 250, "h": 200}])  # 5 ha
    assert exact["area_ha"].tolist() == [5.0] and stored["area_ha"].tolist() == [4.0]
    _, observed = update_lifecycle(exact, stored, params)
    assert observed["alert_id"].tolist() == ["a-1"] and observed["status"].tolist() == ["ongoing"]
    more = _alerts([{"id": "fresh", "x": 384000, "y": 8560000, "w": 260, "h": 200}])  # 5.2 ha
    _, observed = update_lifecycle(more, stored, params)
    assert observed["alert_id"].tolist() == ["a-1"] and observed["status"].tolist() == ["expanding"]


def test_a_scar_matches_a_stored_alert_it_covers_exactly_match_overlap_of():
    """Squares of 100 m in an equal-area CRS: an overlap of 12.5 m × 100 m is exactly 1/8 of the
    smaller; at match_overlap 1/8 they match, 12 m × 100 m does not."""
    def frame(x0):
        return gpd.GeoDataFrame({"alert_id": ["a"]}, geometry=[shapely.box(x0, 0, x0 + 100, 100)],
                                crs=EQUAL_AREA_EPSG)
    assert match_alerts(frame(87.5), frame(0), 0.125) == [(0, 0)]
    assert match_alerts(frame(88.0), frame(0), 0.125) == []


def test_a_zero_area_stored_alert_never_takes_over_a_new_scar():
    """A degenerate polygon (a hand-edited or damaged state store) has no area to overlap: the scar
    drawn across it is a new alert, not an update of the broken one."""
    stored = _alerts([{"id": "broken", "x": 384100, "y": 8560000, "w": 0, "h": 200}])
    assert stored.to_crs(UTM).area.tolist() == [0.0]
    detected = _alerts([{"id": "fresh", "x": 384000, "y": 8560000, "w": 200}])
    assert stored.to_crs(EQUAL_AREA_EPSG).intersects(detected.to_crs(EQUAL_AREA_EPSG).iloc[0].geometry).all()
    _, observed = update_lifecycle(detected, stored, LifecycleParams())
    assert observed["alert_id"].tolist() == ["fresh"] and observed["status"].tolist() == ["new"]


def test_rejected_alert_is_never_issued_again():
    stored = _alerts([{"id": "a-1", "x": 384000, "y": 8560000, "w": 200}])
    stored["verdict"] = "rejected"
    detected = _alerts([{"id": "fresh", "x": 384020, "y": 8560000, "w": 200}])
    cumulative, observed = update_lifecycle(detected, stored, LifecycleParams())
    assert list(observed["alert_id"]) == ["a-1"] and observed["verdict"].iloc[0] == "rejected"
    assert issued(cumulative).empty


def test_window_starts_at_the_last_processed_date_minus_the_lookback():
    monitor = (dt.date(2019, 1, 1), None)
    today = dt.date(2021, 3, 1)
    first = resolve_window(monitor, None, 30, today=today)
    assert (first.start, first.end, first.incremental) == (dt.date(2019, 1, 1), today, False)
    later = resolve_window(monitor, dt.date(2021, 2, 1), 30, today=today)
    assert (later.start, later.end, later.load_start) == (dt.date(2021, 1, 2), today, dt.date(2019, 1, 1))
    assert later.incremental
    forced = resolve_window(monitor, dt.date(2021, 2, 1), 30, since=dt.date(2020, 5, 1), until=dt.date(2020, 6, 1))
    assert (forced.start, forced.end, forced.incremental) == (dt.date(2020, 5, 1), dt.date(2020, 6, 1), False)
    with pytest.raises(InputError, match="before the start"):
        resolve_window(monitor, None, 30, until=dt.date(2018, 12, 1))
    one_day = resolve_window(monitor, None, 30, since=dt.date(2020, 5, 1), until=dt.date(2020, 5, 1))
    assert (one_day.start, one_day.end) == (dt.date(2020, 5, 1), dt.date(2020, 5, 1))  # a one-day window is valid
    with pytest.raises(InputError, match="before the start"):
        resolve_window(monitor, None, 30, since=dt.date(2020, 5, 2), until=dt.date(2020, 5, 1))


# --- scheduled runs on the small scene (session fixture ``run_sequence`` in conftest) ---------


def test_growing_window_gives_new_then_ongoing_with_stable_ids(run_sequence):
    _, out, results, _ = run_sequence
    first, second, third = results[:3]
    assert [r.status for r in results] == ["done", "done", "done", "nothing new"]
    assert len(first.alerts) >= 3 and set(first.alerts["status"]) == {"new"}
    assert len(first.new_alerts) == len(first.alerts)
    before = first.alerts.set_index("alert_id")
    after = second.alerts.set_index("alert_id")
    assert set(before.index) <= set(after.index), "every alert issued keeps its id"
    for aid in before.index:
        assert after.loc[aid, "status"] in ("ongoing", "expanding")
        assert after.loc[aid, "first_detected"] <= before.loc[aid, "first_detected"]
    largest = first.alerts.sort_values("area_ha").iloc[-1]["alert_id"]
    assert after.loc[largest, "status"] == "expanding", "stored at half its size, it grew"
    assert (after.drop(index=largest).loc[before.index.drop(largest), "status"] == "ongoing").all()
    fresh = set(after.index) - set(before.index)
    assert fresh and fresh == set(second.new_alerts["alert_id"])
    assert (after.loc[sorted(fresh), "status"] == "new").all()
    assert second.window.incremental and second.window.start == dt.date(2019, 8, 31)
    assert second.window.load_start == dt.date(2019, 1, 1), "confirmation loads the looks since the monitor start"
    # the last window brings no new scar in this scene: nothing is issued as new, all ids kept
    assert set(third.alerts["alert_id"]) == set(after.index)
    assert third.new_alerts.empty
    final = third.alerts.set_index("alert_id")
    for aid in after.index:
        assert final.loc[aid, "first_detected"] <= after.loc[aid, "first_detected"]


def test_the_new_alerts_file_and_state_store_follow_the_runs(run_sequence):
    _, out, results, snapshots = run_sequence
    for result, snap in zip(results[:3], snapshots[:3]):
        new = json.loads((snap / "alerts_new.geojson").read_text())
        assert sorted(f["id"] for f in new["features"]) == sorted(result.new_alerts["alert_id"])
        cumulative = json.loads((snap / "alerts.geojson").read_text())
        assert sorted(f["id"] for f in cumulative["features"]) == sorted(result.alerts["alert_id"])
    state = load_state(out)
    assert set(state.alerts["alert_id"]) == set(results[2].alerts["alert_id"])
    assert len(state.runs) == 3  # three windows; "nothing new" adds no run
    assert state.processed_until == dt.date(2021, 12, 31)
    largest = results[0].alerts.sort_values("area_ha").iloc[-1]["alert_id"]
    assert largest not in set(results[1].new_alerts["alert_id"]), "an expanding alert is not issued as new"
    history = state.history.groupby("alert_id").size()
    first_ids = list(results[0].alerts["alert_id"])
    assert (history.loc[first_ids] == 3).all(), "each run that observed an alert adds to its history"


def test_nothing_new_leaves_outputs_untouched(run_sequence):
    _, _, results, snapshots = run_sequence
    for name in ("alerts.geojson", "alerts.csv", "summary.csv", "run.json", "state.gpkg", "report.html"):
        assert (snapshots[3] / name).read_bytes() == (snapshots[2] / name).read_bytes(), name


def test_dry_run_lists_areas_items_and_outputs_and_writes_nothing(run_sequence, tmp_path):
    config_path, _, _, _ = run_sequence
    out = tmp_path / "fresh"
    result = CliRunner().invoke(app, ["run", "--config", str(config_path), "--out", str(out), "--dry-run",
                                      "--since", "2020-01-01", "--until", "2020-12-31"])
    assert result.exit_code == 0, result.output
    assert "area RN09: 4 baseline items, 3 monitor items in the window, 3 new" in result.output
    assert "S2B_19LCF_20200810_0_L2A" in result.output and "alerts.geojson" in result.output
    assert not out.exists() or not any(out.iterdir())


def test_second_run_on_a_locked_folder_refuses_with_exit_4(run_sequence, tmp_path):
    from pipeline.run import run

    config_path, _, _, _ = run_sequence
    out = tmp_path / "locked"
    config = load_config(config_path, {"output.dir": out})
    with output_lock(out):
        with pytest.raises(OutputLockedError, match="another cec run"):
            run(config, overwrite=True)
        result = CliRunner().invoke(app, ["run", "--config", str(config_path), "--out", str(out), "--workers", "1"])
    assert result.exit_code == 4
    assert "another cec run" in " ".join(result.output.split())


def test_killed_run_leaves_previous_outputs_intact_and_next_run_completes(run_sequence, tmp_path):
    """Also: the completing run redoes the last window, which issues nothing new and keeps every id."""
    config_path, _, results, snapshots = run_sequence
    out = tmp_path / "out"
    shutil.copytree(snapshots[2], out)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file() and p.name != ".cec.lock"}
    command = [sys.executable, "-m", "pipeline.cli", "run", "--config", str(config_path), "--out", str(out),
               "--workers", "1", "--since", "2020-08-31", "--overwrite"]
    env = {**os.environ, "CEC_TEST_PAUSE_BEFORE_RENAME": "60"}
    # its own process group, so that the kill takes its dask workers down with it, as a crash would
    proc = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                            start_new_session=True)
    try:
        deadline, log = time.monotonic() + 300, []  # generous: a loaded machine is slow to get there
        for line in proc.stderr:
            log.append(line)
            if "paused before rename" in line or time.monotonic() > deadline:
                break
        temporaries = [p.name for p in out.glob(".*.tmp*")]
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert temporaries, "the run should have been killed while writing an output:\n" + "".join(log[-20:])
    for name, data in before.items():
        assert (out / name).read_bytes() == data, f"{name} changed by the killed run"
    json.loads((out / "alerts.geojson").read_text())
    # the next run (in this process: the cluster is not the subject) removes the temporaries, takes
    # the lock the dead run held, and completes
    from pipeline.run import run

    done = run(load_config(config_path, {"output.dir": out}), since=dt.date(2020, 8, 31), overwrite=True)
    assert done.status == "done" and done.exit_code == 0
    assert not list(out.glob(".*.tmp*"))
    assert validate_file(out / "alerts.geojson") == []
    assert json.loads((out / "run.json").read_text())["window"]["start"] == "2020-08-31"
    assert json.loads((out / "alerts_new.geojson").read_text())["features"] == []
    redone = json.loads((out / "alerts.geojson").read_text())["features"]
    assert sorted(f["id"] for f in redone) == sorted(results[2].alerts["alert_id"])
    assert {f["properties"]["status"] for f in redone} <= {"ongoing", "expanding"}


def test_overwrite_redoes_a_window_and_alerts_not_seen_again_stay_issued(run_sequence, tmp_path):
    """After "nothing new", --overwrite runs the window again: same alerts and ids, none new. An
    alert issued earlier whose scar this run does not see (here one added to the state, 3 km away)
    stays in alerts.geojson as ongoing: the file holds every alert issued, not this run's only."""
    from pipeline.run import run
    from pipeline.state import save_state

    config_path, _, results, snapshots = run_sequence
    out = tmp_path / "out"
    shutil.copytree(snapshots[3], out)
    config = load_config(config_path, {"output.dir": out, "output.evidence": False, "output.report": False})
    assert run(config, today=SEQUENCE_TODAY).status == "nothing new"
    state = load_state(out)
    old = state.alerts.iloc[[0]].copy()
    old["alert_id"] = "test-RN09-issued-long-ago"
    old["geometry"] = old.geometry.translate(xoff=0.03)  # ~3 km east: no scar of this run there
    state.alerts = gpd.GeoDataFrame(gpd.pd.concat([state.alerts, old], ignore_index=True), crs=4326)
    save_state(out, state)
    redone = run(config, today=SEQUENCE_TODAY, overwrite=True)
    assert redone.status == "done" and redone.new_alerts.empty
    expected = sorted([*results[2].alerts["alert_id"], "test-RN09-issued-long-ago"])
    assert sorted(redone.alerts["alert_id"]) == expected
    assert redone.alerts.set_index("alert_id").loc["test-RN09-issued-long-ago", "status"] == "ongoing"
    in_file = json.loads((out / "alerts.geojson").read_text())["features"]
    assert sorted(f["id"] for f in in_file) == expected
    assert len(load_state(out).runs) == 4, "the redone window is recorded"
