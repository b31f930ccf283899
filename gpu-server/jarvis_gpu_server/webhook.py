"""Job webhooks, signed like Stripe's: ``X-Jarvis-Signature: t=<unix>,v1=<hex>``.

``v1`` is the hex HMAC-SHA256 of ``f"{t}.".encode() + body`` keyed with the webhook
secret (``--webhook-secret``, else the API key). With neither set the webhook is sent
without the header. Receivers should recompute the HMAC over the raw body, compare in
constant time and reject timestamps older than a few minutes (replays).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from . import __version__

log = logging.getLogger("jarvis_gpu_server.webhook")

SIGNATURE_HEADER = "X-Jarvis-Signature"
RETRY_DELAYS = (2.0, 10.0, 30.0)  # after the first try; four attempts in all


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    t = int(time.time()) if timestamp is None else int(timestamp)
    mac = hmac.new(secret.encode("utf-8"), f"{t}.".encode("ascii") + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify(secret: str, body: bytes, header: str, tolerance: float = 300.0, now: float | None = None) -> bool:
    """What a receiver does; used by the tests and handy to copy."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        t = int(parts["t"])
    except (ValueError, KeyError):
        return False
    if abs((time.time() if now is None else now) - t) > tolerance:
        return False
    expected = hmac.new(secret.encode("utf-8"), f"{t}.".encode("ascii") + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts.get("v1", ""))


def valid_url(url: str) -> bool:
    parsed = urllib.parse.urlsplit(url)
    return parsed.scheme in ("http", "https") and bool(parsed.netloc)


def _host(url: str) -> str:
    return urllib.parse.urlsplit(url).netloc.rsplit("@", 1)[-1]


def deliver(url: str, payload: dict[str, Any], secret: str | None, event: str, job_id: str,
            delays: tuple[float, ...] = RETRY_DELAYS, timeout: float = 10.0,
            stop: threading.Event | None = None) -> tuple[bool | None, str | None]:
    """POST the payload, retrying 5xx and connection errors. Returns (delivered, last error);
    delivered is None when ``stop`` was set first (the server is stopping: try again later)."""
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    error: str | None = None
    for attempt, delay in enumerate((0.0,) + tuple(delays)):
        if delay and stop is not None and stop.wait(delay):
            return None, error
        if delay and stop is None:
            time.sleep(delay)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"jarvis-gpu-server/{__version__}",
            "X-Jarvis-Event": event,
            "X-Jarvis-Job-Id": job_id,
        }
        if secret:
            headers[SIGNATURE_HEADER] = sign(secret, body)
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - http(s) checked at submit
                response.read(1024)
            log.info("webhook for %s delivered to %s", job_id, _host(url))
            return True, None
        except urllib.error.HTTPError as exc:
            error = f"HTTP {exc.code}"
            if exc.code < 500 and exc.code not in (408, 429):
                break  # the receiver said no; retrying will not change that
        except Exception as exc:  # noqa: BLE001 - connection refused, timeout, DNS
            error = f"{type(exc).__name__}: {exc}"
        log.warning("webhook for %s to %s failed (attempt %d): %s", job_id, _host(url), attempt + 1, error)
    return False, error
