"""Notifications after a run with new or expanding alerts (network edge).

- **Webhooks**: an HTTP POST of a JSON summary (:func:`summary_payload`) to each configured
  URL (``http``/``https`` only), with a deadline; a 2xx answer is success.
- **E-mail**: one message over SMTP (optionally STARTTLS and login; the password only from an
  environment variable) with a plain-text summary and the new alerts attached as GeoJSON.

A notification never fails the run: every attempt returns a :class:`Delivery` (channel, target,
ok, error) that the run records in ``run.json``; nothing here raises for network trouble.
Messages and payloads are built by pure functions; only :func:`post_webhook` and
:func:`send_email` touch the network.
"""

from __future__ import annotations

import json
import smtplib
import ssl
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass
from email.message import EmailMessage

NOTIFY_STATUSES = ("new", "expanding")
USER_AGENT = "cec-pipeline"


@dataclass(frozen=True)
class Delivery:
    """The outcome of one notification attempt (as recorded in ``run.json``)."""

    channel: str
    """``webhook`` or ``email``."""
    target: str
    """The URL (without credentials or query) or the recipients."""
    ok: bool
    error: str | None = None


def summary_payload(alerts: list[dict], run: dict) -> dict:
    """The JSON summary of a run: counts by status and the new and expanding alerts.

    ``alerts``: property dicts of every alert the run issued (any status); ``run``: ``name``,
    ``run_id``, ``period`` ([start, end]) and optionally ``report`` (path or URL).
    """
    counts = {s: sum(1 for a in alerts if a.get("status") == s) for s in ("new", "ongoing", "expanding")}
    keys = ("alert_id", "status", "class", "confidence", "probability", "area_ha", "first_detected",
            "last_observed", "protected_area_id", "protected_area_name", "zone", "centroid_lat", "centroid_lon")
    listed = [{k: a.get(k) for k in keys} for a in alerts if a.get("status") in NOTIFY_STATUSES]
    return {"run": {k: run.get(k) for k in ("name", "run_id", "period", "report")}, "counts": counts,
            "hectares_new_or_expanding": round(sum(float(a["area_ha"] or 0) for a in listed), 2), "alerts": listed}


def should_notify(payload: dict) -> bool:
    """True when the run has new or expanding alerts."""
    return bool(payload["counts"]["new"] or payload["counts"]["expanding"])


def redact_url(url: str) -> str:
    """``url`` without user info, query or fragment (tokens often ride there): safe to log."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def email_text(payload: dict, lang: str = "es") -> tuple[str, str]:
    """Subject and plain-text body of the alert e-mail."""
    run, counts = payload["run"], payload["counts"]
    if lang == "es":
        subject = (f"[cec] {run['name']}: {counts['new']} alertas nuevas, {counts['expanding']} en expansión")
        head = f"Corrida {run['run_id']} ({' a '.join(map(str, run.get('period') or []))})."
        line = "{alert_id}: {status}, {class}, {area_ha} ha, {protected_area_name} ({zone}), {first_detected}, " \
               "lat {centroid_lat} lon {centroid_lon}"
        tail = "Las alertas nuevas van adjuntas (GeoJSON)."
    else:
        subject = f"[cec] {run['name']}: {counts['new']} new alerts, {counts['expanding']} expanding"
        head = f"Run {run['run_id']} ({' to '.join(map(str, run.get('period') or []))})."
        line = "{alert_id}: {status}, {class}, {area_ha} ha, {protected_area_name} ({zone}), {first_detected}, " \
               "lat {centroid_lat} lon {centroid_lon}"
        tail = "The new alerts are attached (GeoJSON)."
    # one line per alert; user text cannot inject headers (the body is not a header)
    lines = [line.format(**{k: ("" if v is None else v) for k, v in a.items()}) for a in payload["alerts"]]
    report = run.get("report")
    return subject.replace("\n", " "), "\n".join([head, "", *lines, "", tail, *([str(report)] if report else [])]) + "\n"


def build_email(payload: dict, sender: str, recipients: list[str], attachments: dict[str, bytes],
                lang: str = "es") -> EmailMessage:
    """The e-mail: summary text plus attachments (file name -> bytes, sent as GeoJSON/JSON)."""
    subject, body = email_text(payload, lang)
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message.set_content(body)
    for name, data in attachments.items():
        subtype = "geo+json" if name.endswith(".geojson") else "json"
        message.add_attachment(data, maintype="application", subtype=subtype, filename=name)
    return message


def post_webhook(url: str, payload: dict, timeout_s: float = 10.0) -> Delivery:
    """POST ``payload`` as JSON to ``url``; never raises."""
    target = redact_url(url)
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        return Delivery("webhook", target, False, "only http and https URLs are allowed")
    request = urllib.request.Request(url, data=json.dumps(payload, ensure_ascii=False).encode(), method="POST",
                                     headers={"Content-Type": "application/json", "User-Agent": USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310 (scheme checked)
            status = response.status
    except urllib.error.HTTPError as exc:
        return Delivery("webhook", target, False, f"HTTP {exc.code}")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return Delivery("webhook", target, False, f"{type(exc).__name__}: {reason}")
    return Delivery("webhook", target, 200 <= status < 300, None if 200 <= status < 300 else f"HTTP {status}")


def send_email(message: EmailMessage, host: str, port: int, timeout_s: float = 10.0, starttls: bool = False,
               username: str | None = None, password: str | None = None) -> Delivery:
    """Send ``message`` over SMTP; never raises."""
    target = str(message["To"])
    try:
        with smtplib.SMTP(host, port, timeout=timeout_s) as smtp:
            if starttls:
                smtp.starttls(context=ssl.create_default_context())
            if username:
                smtp.login(username, password or "")
            refused = smtp.send_message(message)
    except (smtplib.SMTPException, OSError) as exc:
        return Delivery("email", target, False, f"{type(exc).__name__}: {exc}")
    if refused:
        return Delivery("email", target, False, f"refused: {', '.join(sorted(refused))}")
    return Delivery("email", target, True)


def deliveries_json(deliveries: list[Delivery]) -> list[dict]:
    """For ``run.json``."""
    return [asdict(d) for d in deliveries]
