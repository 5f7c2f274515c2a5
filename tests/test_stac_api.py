"""A small STAC API served on 127.0.0.1 (landing page, conformance, POST /search with paging,
one page that times out once) over the generated scene: the API path gives the same alerts as
the static catalog, saves the items it used, and the saved items reproduce the run offline."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pystac
import pytest
import shapely.geometry

from pipeline.config import load_config
from pipeline.errors import InputError
from pipeline.ingest import ApiOptions, search_api
from pipeline.run import run

from . import encodings
from .conftest import write_config

PAGE_SIZE = 4
CLIENT_TIMEOUT_S = 1.0
STALL_S = 2.5


class FakeStacApi:
    """STAC API over a list of item dicts; the second page stalls once (longer than the client waits)."""

    def __init__(self, items: list[dict]):
        self.items = items
        self.requests: list[tuple[str, str, dict | None]] = []
        self.stalled: dict | None = None
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def landing(self) -> dict:
        return {
            "type": "Catalog", "id": "cec-test-api", "stac_version": "1.0.0", "description": "test API",
            "conformsTo": self.conformance()["conformsTo"],
            "links": [
                {"rel": "self", "href": self.url + "/", "type": "application/json"},
                {"rel": "root", "href": self.url + "/", "type": "application/json"},
                {"rel": "conformance", "href": self.url + "/conformance", "type": "application/json"},
                {"rel": "search", "href": self.url + "/search", "type": "application/geo+json", "method": "GET"},
                {"rel": "search", "href": self.url + "/search", "type": "application/geo+json", "method": "POST"},
            ],
        }

    @staticmethod
    def conformance() -> dict:
        return {"conformsTo": [
            "https://api.stacspec.org/v1.0.0/core",
            "https://api.stacspec.org/v1.0.0/item-search",
            "https://api.stacspec.org/v1.0.0/item-search#query",
        ]}

    def search(self, body: dict) -> dict:
        start, end = (dt.datetime.fromisoformat(p[:10]).date() for p in body["datetime"].split("/"))
        area = shapely.geometry.shape(body["intersects"])
        limit = body.get("query", {}).get("eo:cloud_cover", {}).get("lte", 100)
        hits = [i for i in self.items
                if i["collection"] in body["collections"]
                and start <= dt.date.fromisoformat(i["properties"]["datetime"][:10]) <= end
                and shapely.geometry.shape(i["geometry"]).intersects(area)
                and i["properties"]["eo:cloud_cover"] <= limit]
        offset = int(body.get("next", 0))
        size = min(int(body.get("limit", PAGE_SIZE)), PAGE_SIZE)
        page = hits[offset: offset + size]
        links = [{"rel": "root", "href": self.url + "/"}]
        if offset + size < len(hits):
            links.append({"rel": "next", "href": self.url + "/search", "method": "POST",
                          "body": {**body, "next": str(offset + size)}, "merge": False})
        return {"type": "FeatureCollection", "features": page, "links": links,
                "numberMatched": len(hits), "numberReturned": len(page)}

    def _handler(self):
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def _send(self, obj: dict, status: int = 200):
                raw = json.dumps(obj).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(raw)))
                    self.end_headers()
                    self.wfile.write(raw)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up on a stalled page

            def do_GET(self):
                api.requests.append(("GET", self.path, None))
                if self.path.rstrip("/") == "":
                    return self._send(api.landing())
                if self.path == "/conformance":
                    return self._send(api.conformance())
                return self._send({"code": "NotFound", "description": "Not Found"}, 404)

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                api.requests.append(("POST", self.path, body))
                if self.path != "/search":
                    return self._send({"code": "NotFound"}, 404)
                if body.get("next") and not api.stalled:
                    api.stalled = body
                    time.sleep(STALL_S)
                return self._send(api.search(body))

        return Handler


@pytest.fixture(scope="module")
def api_items(small_scene):
    """The scene's items as an API serves them: absolute hrefs to the local COGs, no catalog links."""
    items = []
    for item in encodings.read_items(small_scene / "catalog.json"):
        data = item.to_dict(include_self_link=False, transform_hrefs=False)
        for key, asset in data["assets"].items():
            asset["href"] = item.assets[key].get_absolute_href()
        data["links"] = []
        items.append(data)
    return items


def _config(tmp_path, small_scene, url):
    return load_config(write_config(tmp_path, small_scene, **{
        "source.stac_catalog": None, "source.stac_api": url, "source.timeout_s": CLIENT_TIMEOUT_S,
        "source.retries": 3}))


def _alert_keys(alerts):
    return sorted((a.alert_id, a["class"], round(a.area_ha, 3), a.confidence) for _, a in alerts.iterrows())


def test_api_path_gives_the_same_alerts_as_the_static_catalog(small_scene, api_items, tmp_path):
    static = run(load_config(write_config(tmp_path / "static", small_scene)))
    with FakeStacApi(api_items) as api:
        result = run(_config(tmp_path / "api", small_scene, api.url))
    assert _alert_keys(result.alerts) == _alert_keys(static.alerts)
    assert len(result.alerts) >= 5

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
