"""Other layers an alert touches (mining concessions, native communities, forest concessions…).

Each overlay of the config (``overlays: [{name, path, name_field}]``) adds a property
``overlay_<name>`` to every alert: the sorted names of the overlay's features the alert's
polygon touches (an empty list when none), so that an alert can be routed to the authority
in charge (e.g. INGEMMET/OEFA for a mining concession, the community's federation).
:func:`load_overlays` reads the layers (I/O); :func:`attribute_overlays` is pure.
"""

from __future__ import annotations

import geopandas as gpd

from .aoi import read_layer, repair
from .errors import InputError

PREFIX = "overlay_"


def load_overlays(configs) -> list[tuple[str, gpd.GeoDataFrame]]:
    """Read each overlay layer as (name, GeoDataFrame in EPSG:4326 with a ``name`` column)."""
    layers = []
    for overlay in configs:
        frame = read_layer(overlay.path, f"overlay {overlay.name}")
        if overlay.name_field not in frame.columns:
            raise InputError(f"{overlay.path}: overlay {overlay.name} has no field {overlay.name_field!r} "
                             f"(fields: {', '.join(c for c in frame.columns if c != 'geometry')})")
        names = frame[overlay.name_field].astype(str)
        geometry = frame.geometry.map(repair) if frame.geom_type.isin(["Polygon", "MultiPolygon"]).all() else frame.geometry
        layers.append((overlay.name, gpd.GeoDataFrame({"name": names.to_numpy()}, geometry=geometry.to_numpy(),
                                                      crs=frame.crs).to_crs(4326)))
    return layers


def attribute_overlays(alerts: gpd.GeoDataFrame, layers: list[tuple[str, gpd.GeoDataFrame]]) -> gpd.GeoDataFrame:
    """Copy of ``alerts`` (EPSG:4326) with an ``overlay_<name>`` list column per layer."""
    alerts = alerts.copy()
    for name, layer in layers:
        touched = [[] for _ in range(len(alerts))]
        if len(alerts) and len(layer):
            rows, hits = layer.sindex.query(alerts.geometry.to_numpy(), predicate="intersects")
            for row, hit in zip(rows, hits):
                touched[row].append(str(layer["name"].iloc[hit]))
        alerts[PREFIX + name] = [sorted(set(t)) for t in touched]
    return alerts


def overlay_columns(frame) -> list[str]:
    """The overlay columns of an alerts table, in order."""
    return [c for c in frame.columns if str(c).startswith(PREFIX)]
