"""The alert-file writer registry: format name -> (file name, writer function).

``output.formats`` in the config accepts every registered format; the batch and ``cec review``
write every one through this table. A new format is one module in :mod:`pipeline.outputs`
that defines ``write_x(alerts, path) -> path`` and calls :func:`register_writer`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError


@dataclass(frozen=True)
class AlertWriter:
    """How one alert-file format is written."""

    format: str
    """Name used in ``output.formats`` (e.g. ``geojson``)."""
    file_name: str
    """File written into the output folder (e.g. ``alerts.geojson``)."""
    write: Callable[..., Path]
    """``write(alerts, path) -> path``: alerts in EPSG:4326, written atomically."""
    run_grids: bool = False
    """When True the batch also passes ``grids`` (area id -> (EPSG, grid bounds)) and
    ``resolution_m`` of the run's area grids (raster formats); other callers may omit them."""


_WRITERS: dict[str, AlertWriter] = {}


def register_writer(fmt: str, file_name: str, write: Callable[..., Path], run_grids: bool = False) -> AlertWriter:
    """Register (or replace) the writer of a format; returns it."""
    writer = AlertWriter(fmt, file_name, write, run_grids)
    _WRITERS[fmt] = writer
    return writer


def unregister_writer(fmt: str) -> None:
    """Remove a format (tests that register a toy format clean up with this)."""
    _WRITERS.pop(fmt, None)


def alert_writers() -> tuple[AlertWriter, ...]:
    """Every registered writer, in registration order."""
    return tuple(_WRITERS.values())


def alert_writer(fmt: str) -> AlertWriter:
    """The writer of a format; :class:`ConfigError` names the known ones."""
    if fmt not in _WRITERS:
        raise ConfigError(f"output format {fmt!r} is not one of {', '.join(_WRITERS)}")
    return _WRITERS[fmt]
