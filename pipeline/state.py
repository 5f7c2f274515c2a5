"""The state store of an output folder, its lock, and the incremental monitor window (I/O edge).

``<out>/state.gpkg`` (a GeoPackage, rewritten atomically as a whole) holds three layers:

- ``alerts``: every alert ever issued into this folder, its latest geometry and properties,
  and the analyst's verdict (``cec review``);
- ``history``: one row per alert and run that observed it (geometry, area, date), the
  geometry history of each alert;
- ``runs``: one row per completed run: the monitor window it processed and the STAC items
  it used. The last row's ``window_end`` is where the next incremental run starts.

The state is written last, after every other output, so a run that dies midway leaves the
state where it was and the next run simply redoes the window.

``<out>/.cec.lock`` is held (``flock``) for the whole run; a second run on the same folder
fails at once with :class:`OutputLockedError`. The kernel drops the lock when the holder dies,
even by SIGKILL, so a killed run never blocks the next one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio

from .errors import ConfigError, InputError, OutputLockedError
from .files import write_atomic
from .lifecycle import VERDICT_COLUMNS
from .model import ALERT_PROPERTIES, LIST_PROPERTIES

STATE_FILE = "state.gpkg"
LOCK_FILE = ".cec.lock"
RUN_COLUMNS = ("run_id", "started", "window_start", "window_end", "items", "n_new", "n_ongoing", "n_expanding")


@dataclass
class State:
    """The state store in memory (geometries EPSG:4326)."""

    alerts: gpd.GeoDataFrame
    history: gpd.GeoDataFrame
    runs: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(RUN_COLUMNS)))

    @property
    def processed_until(self) -> dt.date | None:
        """The end of the last processed monitor window, or None before the first run."""
        if self.runs.empty:
            return None
        return max(dt.date.fromisoformat(str(v)) for v in self.runs["window_end"])

    @property
    def processed_items(self) -> set[str]:
        """STAC item ids used by earlier runs."""
        return {i for v in self.runs.get("items", []) for i in str(v).split(";") if i}


def empty_alerts() -> gpd.GeoDataFrame:
    """An empty alerts table with every column of the state's ``alerts`` layer."""
    return gpd.GeoDataFrame(columns=[*ALERT_PROPERTIES, *VERDICT_COLUMNS, "geometry"], geometry="geometry", crs=4326)


def empty_history() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(columns=["alert_id", "run_id", "last_observed", "area_ha", "geometry"],
                            geometry="geometry", crs=4326)


def load_state(out: Path) -> State:
    """Read ``<out>/state.gpkg``; an empty state when there is none yet."""
    path = Path(out) / STATE_FILE
    if not path.is_file():
        return State(empty_alerts(), empty_history())
    try:
        layers = {name for name, _ in pyogrio.list_layers(path)}
        alerts = gpd.read_file(path, layer="alerts", engine="pyogrio") if "alerts" in layers else empty_alerts()
        history = gpd.read_file(path, layer="history", engine="pyogrio") if "history" in layers else empty_history()
        runs = (pyogrio.read_dataframe(path, layer="runs", read_geometry=False) if "runs" in layers
                else pd.DataFrame(columns=list(RUN_COLUMNS)))
    except Exception as err:  # noqa: BLE001 - any GDAL failure means the same thing to the user
        raise InputError(f"{path}: the state store cannot be read ({err}); move it aside to start afresh") from None
    for i, value in enumerate(runs["window_end"] if "window_end" in runs.columns else []):
        try:
            dt.date.fromisoformat(str(value))
        except ValueError:
            raise InputError(f"{path}: runs row {i + 1} has window_end {str(value)[:40]!r}, not a date (YYYY-MM-DD); "
                             "the state store was edited or damaged: move it aside to start afresh") from None
    for column in [*LIST_PROPERTIES, *(c for c in alerts.columns if str(c).startswith("overlay_"))]:
        if column in alerts.columns:
            alerts[column] = alerts[column].map(lambda v: [s for s in str(v or "").split(";") if s])
    for column in VERDICT_COLUMNS:
        if column not in alerts.columns:
            alerts[column] = None
    if "detection_path" not in alerts.columns:
        alerts["detection_path"] = "forest_loss"  # stores from before the second path knew only this one
    if alerts.crs is None:
        alerts = alerts.set_crs(4326)
    return State(alerts, history, runs)


def _flatten(alerts: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    overlays = [c for c in alerts.columns if str(c).startswith("overlay_")]
    table = pd.DataFrame(alerts[[*ALERT_PROPERTIES, *VERDICT_COLUMNS, *overlays]]).copy()
    for column in [*LIST_PROPERTIES, *overlays]:
        table[column] = table[column].map(lambda v: ";".join(v) if isinstance(v, (list, tuple)) else str(v or ""))
    for column in VERDICT_COLUMNS:
        table[column] = table[column].astype(object).where(table[column].notna(), None)
    return gpd.GeoDataFrame(table, geometry=alerts.geometry.to_numpy(), crs=4326)


def save_state(out: Path, state: State) -> Path:
    """Write the whole state store atomically (temporary file, then rename)."""
    path = Path(out) / STATE_FILE

    def write(tmp: Path) -> None:
        kw = {"driver": "GPKG", "engine": "pyogrio", "geometry_type": "Unknown"}
        _flatten(state.alerts).to_file(tmp, layer="alerts", **kw)
        history = gpd.GeoDataFrame(state.history, geometry="geometry", crs=4326)
        history.to_file(tmp, layer="history", **kw)
        runs = pd.DataFrame(state.runs, columns=list(RUN_COLUMNS)).astype(str)
        pyogrio.write_dataframe(runs, tmp, layer="runs", driver="GPKG")

    return write_atomic(path, write)


@contextlib.contextmanager
def output_lock(out: Path) -> Iterator[Path]:
    """Hold the output folder's lock, or raise :class:`OutputLockedError` at once."""
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"{out}: output.dir cannot be created: {err.strerror or err}") from None
    path = out / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip()
            raise OutputLockedError(
                f"{out}: another cec run is writing this output folder ({holder or 'pid unknown'}); "
                f"wait for it to finish or use another --out"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} since {dt.datetime.now(dt.timezone.utc):%Y-%m-%dT%H:%M:%SZ}".encode(), 0)
        yield path
    finally:
        os.close(fd)  # closing the descriptor releases the flock


def remove_stale_temporaries(out: Path) -> list[Path]:
    """Delete temporary files a killed run or review left behind (``.<name>.*.tmp*``), in the
    output folder and its subfolders (evidence bundles); call under the lock."""
    removed = []
    for path in sorted(Path(out).rglob(".*.tmp*")):
        if path.is_file():
            path.unlink()
            removed.append(path)
    return removed


@dataclass(frozen=True)
class Window:
    """The monitor window of one run."""

    start: dt.date
    """First day whose looks are new to this run (earlier looks only help confirm)."""
    end: dt.date
    """Last day of monitoring loaded."""
    load_start: dt.date
    """First monitoring day loaded (confirmation needs the looks since the monitor start)."""
    incremental: bool
    """True when the start came from the state store (no ``--since``)."""


def resolve_window(
    monitor: tuple[dt.date, dt.date | None],
    processed_until: dt.date | None,
    lookback_days: int,
    since: dt.date | None = None,
    until: dt.date | None = None,
    today: dt.date | None = None,
) -> Window:
    """The monitor window: flags win, then the state store (minus the look-back), then the config.

    Parameters
    ----------
    monitor
        ``periods.monitor`` of the config; its end may be None (open: up to today).
    processed_until
        End of the last processed window, from the state store.
    lookback_days
        Days before ``processed_until`` reprocessed for late or reprocessed scenes.
    since, until
        ``--since`` / ``--until``.
    """
    today = today or dt.date.today()
    end = until or monitor[1] or today
    if since is not None:
        start, incremental = since, False
    elif processed_until is not None:
        start, incremental = max(monitor[0], processed_until - dt.timedelta(days=lookback_days)), True
    else:
        start, incremental = monitor[0], False
    if end < start:
        raise InputError(f"monitor window: the end {end} is before the start {start} (check --since/--until)")
    return Window(start=start, end=end, load_start=min(monitor[0], start), incremental=incremental)
