"""Evidence bundles: before/after chips that show the change, a ficha técnica, hashes of every file."""

from __future__ import annotations

import hashlib
import json
import zlib

import numpy as np
import pytest

from pipeline.outputs.evidence import LABELS, Look, encode_png, ficha_html


def _decode_png(data: bytes) -> np.ndarray:
    """Decode the 8-bit RGB, filter-0 PNGs the pipeline writes (enough to check pixels)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height = 8, b"", 0, 0
    while pos < len(data):
        length = int.from_bytes(data[pos:pos + 4], "big")
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height = int.from_bytes(body[:4], "big"), int.from_bytes(body[4:8], "big")
            assert body[8:10] == b"\x08\x02"
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = np.frombuffer(zlib.decompress(idat), dtype=np.uint8).reshape(height, 1 + 3 * width)
    assert (raw[:, 0] == 0).all()
    return raw[:, 1:].reshape(height, width, 3)


@pytest.fixture(scope="module")
def bundles(run_sequence):
    _, out, results, snapshots = run_sequence
    return results, snapshots[2] / "evidence"


def test_every_issued_alert_has_a_bundle_with_hashed_files(bundles):
    results, folder = bundles
    final = results[2].alerts
    assert sorted(p.name for p in folder.iterdir()) == sorted(final["alert_id"])
    for alert_id in final["alert_id"]:
        manifest = json.loads((folder / alert_id / "manifest.json").read_text())
        assert set(manifest["files"]) == {"before_rgb.png", "before_swir.png", "after_rgb.png", "after_swir.png",
                                          "ficha.html"}
        for name, entry in manifest["files"].items():
            assert hashlib.sha256((folder / alert_id / name).read_bytes()).hexdigest() == entry["sha256"]
        assert manifest["before"]["date"] < manifest["alert"]["first_detected"] <= manifest["after"]["date"]
        assert manifest["before"]["stac_items"] and manifest["after"]["stac_items"]
        for side in ("before", "after"):  # coverage over the scar, nodata not clear, and why
            look = manifest[side]
            assert 0 <= look["coverage"] <= look["clear_share"] <= 1 and look["why"]
            read = {r["date"]: r["coverage"] for r in manifest["looks_read"]}
            assert read[look["date"]] == look["coverage"]
        assert manifest["stretch"]["rgb"]["kind"].startswith("fixed")
        bracket = manifest["date_bracket"]
        assert bracket["source"] == "detection" and bracket["first_with_change"] == manifest["alert"]["first_detected"]
        assert bracket["last_clear_without_change"] < bracket["first_with_change"]


# In SWIR false colour (R, G, B = swir22, nir, red) forest is green (nir 0.35 against swir22 0.06)
# and bare soil, sand or a pond is not (nir close to swir22). Both chips share one fixed stretch,
# so the drop of green-minus-red over the scar is tens of DN; 20 DN (8 % of the 8-bit range) is
# the least an analyst would see at a glance.
VISIBLE_DN = 20


def test_chips_show_forest_before_and_bare_ground_after(bundles, small_scene):
    import geopandas as gpd
    from rasterio.features import rasterize
    from rasterio.transform import from_origin

    results, folder = bundles
    for alert in results[2].alerts.to_dict("records"):
        alert_id = alert["alert_id"]
        before = _decode_png((folder / alert_id / "before_swir.png").read_bytes()).astype(int)
        after = _decode_png((folder / alert_id / "after_swir.png").read_bytes()).astype(int)
        chip = json.loads((folder / alert_id / "manifest.json").read_text())["chip"]
        step = (chip["bounds"][2] - chip["bounds"][0]) / before.shape[1]  # PNG pixel, metres
        scar = gpd.GeoSeries([alert["geometry"]], crs=4326).to_crs(chip["epsg"]).iloc[0]
        inner = scar.buffer(-chip["resolution_m"])  # inside the drawn outline
        inside = rasterize([(inner if not inner.is_empty else scar, 1)], out_shape=before.shape[:2],
                           transform=from_origin(chip["bounds"][0], chip["bounds"][3], step, step)).astype(bool)
        assert inside.any(), alert_id
        green_minus_red = lambda img: float((img[inside][:, 1] - img[inside][:, 0]).mean())  # noqa: E731
        assert green_minus_red(before) > green_minus_red(after) + VISIBLE_DN, alert_id


def test_ficha_names_the_facts_in_spanish_by_default_and_in_english_on_request(bundles):
    results, folder = bundles
    alert = results[2].alerts.iloc[0]
    ficha = (folder / alert["alert_id"] / "ficha.html").read_text()
    issued = json.loads((folder / alert["alert_id"] / "manifest.json").read_text())["alert"]  # as first issued
    assert 'lang="es"' in ficha and "Ficha técnica" in ficha and "Área protegida" in ficha
    confidence = {"low": "baja", "nominal": "media", "high": "alta"}[alert["confidence"]]
    assert f"<th>Confianza</th><td>{confidence}</td>" in ficha  # every value translated
    for english in (">high<", ">low<", ">nominal<", ">mining<", ">clearing<", ">buffer<", ">inside<", ">new<"):
        assert english not in ficha
    bracket = json.loads((folder / alert["alert_id"] / "manifest.json").read_text())["date_bracket"]
    assert f"entre {bracket['last_clear_without_change']} y {bracket['first_with_change']}" in ficha
    for fact in (alert["alert_id"], alert["protected_area_name"], issued["first_detected"], f"{issued['area_ha']:.2f}"):
        assert str(fact) in ficha
    assert "<svg" in ficha and 'src="before_rgb.png"' in ficha and 'src="after_swir.png"' in ficha
    english = ficha_html(alert.to_dict(), Look("2019-01-23", ("A",), 1.0), Look("2019-12-19", ("B",), 1.0),
                         "<svg></svg>", "en")
    assert 'lang="en"' in english and "Alert fact sheet" in english and "between 2019-01-23 and 2019-12-19" in english
    assert set(LABELS["es"]) == set(LABELS["en"])


def test_png_encoder_round_trips():
    image = np.random.default_rng(0).integers(0, 255, (5, 7, 3), dtype=np.uint8)
    assert (_decode_png(encode_png(image)) == image).all()
    assert _decode_png(encode_png(image, scale=2)).shape == (10, 14, 3)


def test_an_expanding_alert_gets_a_fresh_bundle_and_an_ongoing_one_keeps_its_own(run_sequence):
    """Run 2 finds the largest alert grown (conftest stores it at half its size after run 1): its
    bundle must show the grown scar; alerts seen again unchanged keep the bundle they were issued with."""
    _, _, results, snapshots = run_sequence
    first, second = results[0].alerts.set_index("alert_id"), results[1].alerts.set_index("alert_id")
    largest = first["area_ha"].idxmax()
    assert second.loc[largest, "status"] == "expanding"
    manifest = json.loads((snapshots[1] / "evidence" / largest / "manifest.json").read_text())
    assert manifest["alert"]["status"] == "expanding"
    assert manifest["alert"]["area_ha"] == pytest.approx(second.loc[largest, "area_ha"])
    ongoing = [a for a in first.index if second.loc[a, "status"] == "ongoing"]
    assert ongoing, "the sequence should see earlier alerts again"
    for alert_id in ongoing:
        before = (snapshots[0] / "evidence" / alert_id / "manifest.json").read_bytes()
        assert (snapshots[1] / "evidence" / alert_id / "manifest.json").read_bytes() == before, alert_id
