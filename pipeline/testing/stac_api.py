"""A fake STAC API for tests and demos: served on loopback only, from a list of item dicts."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import shapely.geometry

PAGE_SIZE = 4
STALL_S = 2.5


class LoopbackHttpServer:
    """An HTTP server on 127.0.0.1 (a free port) running ``handler`` in a daemon thread; use as a
    context manager: started on entry, shut down on exit. ``url`` is its base address."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]):
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


class FakeStacApi(LoopbackHttpServer):
    """STAC API on 127.0.0.1 over a list of item dicts (landing page, conformance, POST /search
    with paging); the second page stalls once for ``stall_s`` seconds, to test client timeouts.

    Use as a context manager: the server runs in a daemon thread and is shut down on exit.
    """

    def __init__(self, items: list[dict], page_size: int = PAGE_SIZE, stall_s: float = STALL_S):
        self.items = items
        self.page_size = page_size
        self.stall_s = stall_s
        self.requests: list[tuple[str, str, dict | None]] = []
        self.stalled: dict | None = None
        super().__init__(self._handler())

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
        size = min(int(body.get("limit", self.page_size)), self.page_size)
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
                    time.sleep(api.stall_s)
                return self._send(api.search(body))

        return Handler
