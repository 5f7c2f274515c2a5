"""A small STAC API served on 127.0.0.1 (landing page, conformance, POST /search with paging,
one page that times out once) over the generated scene: the API path gives the same alerts as
the static catalog, saves the items it used, and the saved items reproduce the run offline."""

from __future__ import annotations

import datetime as dt
import pystac
import pytest

from pipeline.config import load_config
from pipeline.errors import InputError
from pipeline.sources.search import ApiOptions, search_api
from pipeline.run import run
from pipeline.testing.stac_api import FakeStacApi

from .conftest import write_config

CLIENT_TIMEOUT_S = 1.0


def _config(tmp_path, small_scene, url):
    return load_config(write_config(tmp_path, small_scene, **{
        "source.stac_catalog": None, "source.stac_api": url, "source.timeout_s": CLIENT_TIMEOUT_S,
        "source.retries": 3}))


def _alert_keys(alerts):
    return sorted((a.alert_id, a["class"], round(a.area_ha, 3), a.confidence) for _, a in alerts.iterrows())


def test_api_path_gives_the_same_alerts_as_the_static_catalog(small_scene, small_run, api_items, tmp_path):
    static = small_run[0]  # the session's run of the same scene from its static catalog
    with FakeStacApi(api_items) as api:
        result = run(_config(tmp_path / "api", small_scene, api.url))
    assert _alert_keys(result.alerts) == _alert_keys(static.alerts)
    assert not result.alerts.empty, "the comparison is not vacuous"

    searches = [body for method, path, body in api.requests if method == "POST"]
    assert api.stalled and searches.count(api.stalled) >= 2, "a page timed out once and was asked again"
    assert any("next" in body for body in searches), "results came in more than one page"
    first = searches[0]
    assert first["collections"] == ["sentinel-2-l2a"] and first["intersects"]["type"] in ("Polygon", "MultiPolygon")
    assert first["query"] == {"eo:cloud_cover": {"lte": 95.0}}

    # The items used are saved unsigned, as an ItemCollection, and reproduce the run offline.
    saved = pystac.ItemCollection.from_file(str(result.outputs["items"]))
    assert sorted(i.id for i in saved) == sorted(i["id"] for i in api_items)
    again = run(load_config(write_config(tmp_path / "offline", small_scene, **{
        "source.stac_catalog": None, "source.stac_items": str(result.outputs["items"])})))
    assert _alert_keys(again.alerts) == _alert_keys(static.alerts)


def test_unreachable_api_is_an_input_error_naming_the_url():
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
    with pytest.raises(InputError, match="127.0.0.1"):
        search_api(url, ["sentinel-2-l2a"], {"type": "Point", "coordinates": [-70, -12.9]},
                   dt.date(2020, 1, 1), dt.date(2020, 2, 1), 50, ApiOptions(timeout_s=0.5, retries=1, backoff_s=0))
