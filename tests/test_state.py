"""The state store: missing, corrupt and round-tripped; the processed date; stale temporaries."""

from __future__ import annotations

import datetime as dt
import sqlite3

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from pipeline.errors import InputError
from pipeline.state import (
    STATE_FILE,
    State,
    empty_alerts,
    empty_history,
    load_state,
    remove_stale_temporaries,
    resolve_window,
    save_state,
)


def a_state(window_ends: list[str]) -> State:
    alerts = empty_alerts()
    alerts.loc[0, "alert_id"] = "test-RN09-0123456789"
    alerts.loc[0, "area_ha"] = 1.25
    alerts.loc[0, "sensors"] = ["sentinel-2a", "sentinel-2b"]
    alerts.loc[0, "source_items"] = ["S2A_1", "S2B_2"]
    alerts.loc[0, "verdict"] = "rejected"
    alerts = alerts.set_geometry(gpd.GeoSeries([shapely.box(-69.9, -12.9, -69.89, -12.89)], crs=4326))
    runs = pd.DataFrame([{"run_id": f"r{i}", "started": "2022-01-01T00:00:00+00:00", "window_start": "2019-01-01",
                          "window_end": end, "items": "S2A_1;S2B_2", "n_new": 1, "n_ongoing": 0, "n_expanding": 0}
                         for i, end in enumerate(window_ends)])
    return State(alerts, empty_history(), runs)


def test_no_state_store_is_a_first_run(tmp_path):
    state = load_state(tmp_path)
    assert state.alerts.empty and state.history.empty and state.runs.empty
    assert state.processed_until is None and state.processed_items == set()


def test_state_round_trips_lists_verdicts_and_runs(tmp_path):
    save_state(tmp_path, a_state(["2019-09-30", "2020-09-30"]))
    state = load_state(tmp_path)
    row = state.alerts.iloc[0]
    assert row["alert_id"] == "test-RN09-0123456789" and float(row["area_ha"]) == 1.25
    assert row["sensors"] == ["sentinel-2a", "sentinel-2b"] and row["source_items"] == ["S2A_1", "S2B_2"]
    assert row["verdict"] == "rejected"
    assert state.processed_items == {"S2A_1", "S2B_2"}


def test_processed_until_is_the_latest_window_end_whatever_the_row_order(tmp_path):
    """A re-run with --since/--until of an old window appends a row with an earlier end."""
    save_state(tmp_path, a_state(["2020-09-30", "2021-12-31", "2019-09-30"]))
    assert load_state(tmp_path).processed_until == dt.date(2021, 12, 31)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty", "not sqlite tables"])
def test_a_corrupt_state_store_is_an_input_error_naming_the_file(tmp_path, damage):
    save_state(tmp_path, a_state(["2019-09-30"]))
    path = tmp_path / STATE_FILE
    if damage == "garbage":
        path.write_bytes(b"this is not a geopackage\n" * 100)
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:3000])
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        path.unlink()
        with sqlite3.connect(path) as db:
            db.execute("create table runs (x text)")
    with pytest.raises(InputError) as caught:
        load_state(tmp_path)
    assert str(path) in str(caught.value) and "move it aside" in str(caught.value)


def test_stale_temporaries_of_a_killed_run_are_removed_and_nothing_else(tmp_path):
    stale = [tmp_path / ".alerts.k2j3h.tmp.geojson", tmp_path / ".state.x8y7.tmp.gpkg", tmp_path / ".run.abc.tmp.json"]
    keep = [tmp_path / "alerts.geojson", tmp_path / ".cec.lock", tmp_path / "notes.tmp"]
    for path in stale + keep:
        path.write_text("x")
    removed = remove_stale_temporaries(tmp_path)
    assert sorted(removed) == sorted(stale)
    assert all(p.exists() for p in keep) and not any(p.exists() for p in stale)


def test_the_incremental_window_loads_from_the_monitor_start():
    """Confirmation needs the looks before the window: the load starts at the monitor start."""
    window = resolve_window((dt.date(2019, 1, 1), dt.date(2021, 12, 31)), dt.date(2020, 9, 30), 30)
    assert window.start == dt.date(2020, 8, 31) and window.load_start == dt.date(2019, 1, 1)
    assert window.end == dt.date(2021, 12, 31) and window.incremental
    # the look-back never reaches before the monitor start
    early = resolve_window((dt.date(2019, 1, 1), dt.date(2021, 12, 31)), dt.date(2019, 1, 10), 30)
    assert early.start == dt.date(2019, 1, 1)
