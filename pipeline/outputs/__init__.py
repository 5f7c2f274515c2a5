"""Everything a run writes into its output folder.

- :mod:`.registry`: alert-file formats (``register_writer``, ``alert_writer``, ``alert_writers``);
- :mod:`.geojson`, :mod:`.tables` (CSV, summary), :mod:`.gis` (GeoPackage, KML): the built-in formats;
- :mod:`.evidence`: a bundle per alert; :mod:`.report`: ``report.html``.
"""

from . import geojson, gis, tables  # noqa: F401 - importing a format module registers it
from .registry import AlertWriter, alert_writer, alert_writers, register_writer, unregister_writer

__all__ = ["AlertWriter", "alert_writer", "alert_writers", "register_writer", "unregister_writer"]
