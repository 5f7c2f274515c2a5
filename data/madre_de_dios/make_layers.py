"""Build the area layers of ``configs/madre_de_dios.yaml``: four protected areas and their buffer zones.

Run once from the repository root::

    python data/madre_de_dios/make_layers.py [SHARED_REAL_DIR]

``SHARED_REAL_DIR`` defaults to ``/work/shared/data/real`` (staged copies of public data, see
its PROVENANCE.md). The script writes, next to itself:

* ``protected_areas.geojson``: the cores of Reserva Nacional Tambopata (RN09), Parque Nacional
  Bahuaja-Sonene (PN08), Reserva Comunal Amarakaeri (RC03) and Parque Nacional del Manu (PN03),
  from PaulESantos/perugeopkg (SERNANP), EPSG:4326. Coordinates are rounded to 6 decimals
  (about 0.1 m) to keep the file under 1 MiB; nothing else is changed.
* ``buffer_zones.geojson``: their buffer zones (zonas de amortiguamiento, ``zone_type == "ZA"``)
  from Amazon Mining Watch's SERNANP compilation, one feature per part, geometries unchanged.

The output is deterministic.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import geopandas as gpd
import shapely
from shapely.geometry import mapping

HERE = Path(__file__).resolve().parent
DEFAULT_REAL = Path("/work/shared/data/real")
PERUGEOPKG = "PaulESantos/perugeopkg@dde38f172e62292723a5567d413c3ced9f75f9d9"
AMW = "earthrise-media/mining-detector@bbbcb2d722c930626f322bec751a22e4acb22750"
AREAS = (  # SERNANP code, perugeopkg file, name, category
    ("RN09", "rn_tambopata.gpkg", "Reserva Nacional Tambopata", "Reserva Nacional"),
    ("PN08", "pn_bahuaja_sonene.gpkg", "Parque Nacional Bahuaja-Sonene", "Parque Nacional"),
    ("RC03", "rc_amarakaeri.gpkg", "Reserva Comunal Amarakaeri", "Reserva Comunal"),
    ("PN03", "pn_manu.gpkg", "Parque Nacional del Manu", "Parque Nacional"),
)


def _write(path: Path, features: list[dict], name: str) -> None:
    collection = {"type": "FeatureCollection", "name": name, "features": features}
    path.write_text(json.dumps(collection, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {path.name}: {len(features)} features, {path.stat().st_size / 1024:.0f} KiB")


def main(real: Path) -> None:
    cores = []
    for code, file, name, category in AREAS:
        layer = gpd.read_file(real / "perugeopkg" / file)
        assert layer.crs.to_epsg() == 4326 and len(layer) == 1, file
        geometry = shapely.set_precision(layer.geometry.iloc[0], 1e-6)
        cores.append({"type": "Feature", "properties": {
            "sernanp_code": code, "name": name, "category": category,
            "source": f"{PERUGEOPKG} anp/{file} (SERNANP; CC BY-SA 4.0)"}, "geometry": mapping(geometry)})
    _write(HERE / "protected_areas.geojson", cores, "protected_areas")

    src = json.loads((real / "earthrise-amw" / "sernanp_anp_za_madre_de_dios_from_amw.geojson").read_text("utf-8"))
    codes = {code for code, *_ in AREAS}
    buffers = [{"type": "Feature", "properties": {
                   "sernanp_code": f["properties"]["sernanp_code"], "name": f["properties"]["name"],
                   "source": f"{AMW} protected_areas_impacts.geojson (SERNANP ZonasdeAmortiguamiento; CC BY 4.0)"},
                "geometry": f["geometry"]}
               for f in src["features"]
               if f["properties"].get("zone_type") == "ZA" and f["properties"].get("sernanp_code") in codes]
    assert {f["properties"]["sernanp_code"] for f in buffers} == codes
    _write(HERE / "buffer_zones.geojson", buffers, "buffer_zones")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_REAL)
