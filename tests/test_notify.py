"""Notifications: webhook POST of a JSON summary and SMTP e-mail with the new alerts attached,
against a local HTTP server and a local SMTP server started here; failures are reported, not raised."""

from __future__ import annotations

import email
import email.policy
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pipeline import notify

ALERTS = [
    {"alert_id": "demo-RN09-a", "status": "new", "class": "mining", "confidence": "high", "probability": 0.9,
     "area_ha": 12.5, "first_detected": "2020-08-01", "last_observed": "2021-11-23", "protected_area_id": "RN09",
     "protected_area_name": "Tambopata\r\nBcc: evil@example.org", "zone": "buffer", "centroid_lat": -12.9,
     "centroid_lon": -69.9},
    {"alert_id": "demo-RN09-b", "status": "ongoing", "class": "clearing", "confidence": "nominal",
     "probability": 0.7, "area_ha": 3.0, "first_detected": "2019-08-01", "last_observed": "2021-11-23",
     "protected_area_id": "RN09", "protected_area_name": "Tambopata", "zone": "inside", "centroid_lat": -12.9,
     "centroid_lon": -69.9},
    {"alert_id": "demo-RN09-c", "status": "expanding", "class": "mining", "confidence": "nominal",
     "probability": 0.8, "area_ha": 7.5, "first_detected": "2019-10-01", "last_observed": "2021-11-23",
     "protected_area_id": "RN09", "protected_area_name": "Tambopata", "zone": "inside", "centroid_lat": -12.9,
     "centroid_lon": -69.9},
]
RUN = {"name": "demo", "run_id": "demo-20211123", "period": ["2019-01-01", "2021-12-31"]}


class Recorder(BaseHTTPRequestHandler):
    received: list = []
    status = 200

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((self.path, self.headers["Content-Type"], json.loads(body)))
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture()
def http_server():
    """A loopback HTTP server recording POSTs; yields (base URL, handler class)."""
    handler = type("Handler", (Recorder,), {"received": [], "status": 200})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def smtp_server():
    """A loopback SMTP server (aiosmtpd) keeping the messages it receives; yields (port, messages)."""
    from aiosmtpd.controller import Controller

    messages = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802
            messages.append((envelope.rcpt_tos, email.message_from_bytes(envelope.content, policy=email.policy.default)))
            return "250 OK"

    port = free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, messages
    finally:
        controller.stop()


def test_summary_counts_and_lists_new_and_expanding():
    payload = notify.summary_payload(ALERTS, RUN)
    assert payload["counts"] == {"new": 1, "ongoing": 1, "expanding": 1}
    assert [a["alert_id"] for a in payload["alerts"]] == ["demo-RN09-a", "demo-RN09-c"]
    assert payload["hectares_new_or_expanding"] == 20.0
    assert notify.should_notify(payload)
    quiet = notify.summary_payload([ALERTS[1]], RUN)
    assert not notify.should_notify(quiet)


def test_webhook_posts_the_summary(http_server):
    url, handler = http_server
    payload = notify.summary_payload(ALERTS, RUN)
    result = notify.post_webhook(f"{url}/hook?token=secret", payload, timeout_s=5)
    assert result.ok and result.error is None
    assert "secret" not in result.target  # tokens in the query never reach run.json
    path, content_type, body = handler.received[0]
    assert path == "/hook?token=secret" and content_type == "application/json"
    assert body == json.loads(json.dumps(payload))


def test_webhook_failures_are_reported_not_raised(http_server):
    url, handler = http_server
    handler.status = 500
    payload = notify.summary_payload(ALERTS, RUN)
    assert notify.post_webhook(url, payload, timeout_s=5) == notify.Delivery("webhook", url, False, "HTTP 500")
    closed = notify.post_webhook(f"http://127.0.0.1:{free_port()}/", payload, timeout_s=2)
    assert not closed.ok and "Connection refused" in closed.error
    assert not notify.post_webhook("file:///etc/passwd", payload).ok


def test_email_with_new_alerts_attached(smtp_server):
    port, messages = smtp_server
    payload = notify.summary_payload(ALERTS, RUN)
    attachment = json.dumps({"type": "FeatureCollection", "features": []}).encode()
    message = notify.build_email(payload, "cec@example.org", ["fiscalia@example.org", "gis@example.org"],
                                 {"alerts_new.geojson": attachment}, lang="es")
    result = notify.send_email(message, "127.0.0.1", port, timeout_s=5)
    assert result.ok, result.error
    (recipients, received), = messages
    assert recipients == ["fiscalia@example.org", "gis@example.org"]
    assert received["Subject"] == "[cec] demo: 1 alertas nuevas, 1 en expansión"
    assert received["Bcc"] is None  # a hostile area name cannot add headers
    parts = list(received.walk())
    body = next(p for p in parts if p.get_content_type() == "text/plain").get_payload(decode=True).decode()
    assert "demo-RN09-a" in body and "demo-RN09-c" in body and "demo-RN09-b" not in body
    attached = next(p for p in parts if p.get_filename() == "alerts_new.geojson")
    assert json.loads(attached.get_payload(decode=True)) == {"type": "FeatureCollection", "features": []}


def test_email_failure_is_reported_not_raised():
    payload = notify.summary_payload(ALERTS, RUN)
    message = notify.build_email(payload, "cec@example.org", ["a@example.org"], {}, lang="en")
    result = notify.send_email(message, "127.0.0.1", free_port(), timeout_s=2)
    assert not result.ok and result.channel == "email"


def test_a_run_notifies_webhooks_and_email_and_records_each_attempt(http_server, smtp_server, tmp_path):
    """The batch's notification step: summary to the webhook, e-mail with alerts_new.geojson attached."""
    import datetime as dt
    from types import SimpleNamespace

    import geopandas as gpd
    import shapely

    from pipeline.batch import send_notifications
    from pipeline.config import load_config
    from pipeline.progress import Reporter

    from .conftest import write_config

    url, handler = http_server
    port, messages = smtp_server
    config = load_config(write_config(tmp_path, tmp_path, **{
        "notify.webhooks": [f"{url}/hook"],
        "notify.email": {"smtp_host": "127.0.0.1", "smtp_port": port, "sender": "cec@example.org",
                         "to": ["fiscalia@example.org"]},
        "notify.timeout_s": 5}))
    from pipeline.model import ALERT_PROPERTIES

    rows = [{**{p: 0.0 for p in ALERT_PROPERTIES}, "sensors": [], "source_items": [], **a} for a in ALERTS]
    seen = gpd.GeoDataFrame(rows, geometry=[shapely.box(-69.9, -12.9, -69.89, -12.89)] * 3, crs=4326)
    result = SimpleNamespace(seen=seen, new_alerts=seen[seen["status"] == "new"])
    window = SimpleNamespace(start=dt.date(2019, 1, 1), end=dt.date(2021, 12, 31))
    records = send_notifications(config, result, "test-1", window, {}, Reporter())
    assert [(r["channel"], r["ok"]) for r in records] == [("webhook", True), ("email", True)]
    (_, _, body), = handler.received
    assert body["counts"] == {"new": 1, "ongoing": 1, "expanding": 1} and body["run"]["run_id"] == "test-1"
    (_, mail), = messages
    attached = next(p for p in mail.walk() if p.get_filename() == "alerts_new.geojson")
    features = json.loads(attached.get_payload(decode=True))["features"]
    assert [f["properties"]["alert_id"] for f in features] == ["demo-RN09-a"]
    # nothing new or expanding: nothing is sent
    quiet = SimpleNamespace(seen=seen[seen["status"] == "ongoing"], new_alerts=seen.iloc[:0])
    assert send_notifications(config, quiet, "test-2", window, {}, Reporter()) == []
    assert len(handler.received) == 1
