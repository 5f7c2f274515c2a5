"""Everything a run writes into its output folder.

- :mod:`.registry`: alert-file formats (``register_writer``, ``alert_writer``, ``alert_writers``);
- :mod:`.geojson`, :mod:`.tables` (CSV, summary), :mod:`.gis` (GeoPackage), :mod:`.kml`,
  :mod:`.shapefile` (zipped), :mod:`.alert_raster` (COG per area): the built-in formats;
- :mod:`.evidence`: a bundle per alert; :mod:`.report`: ``report.html``.
"""

from . import alert_raster, geojson, gis, kml, shapefile, tables  # noqa: F401 - importing a format module registers it
from .registry import AlertWriter, alert_writer, alert_writers, register_writer, unregister_writer

__all__ = ["AlertWriter", "alert_writer", "alert_writers", "register_writer", "unregister_writer"]
