"""A signed-webhook receiver on loopback: what a user's endpoint does with the platform's alert
webhooks, as the Standard Webhooks specification describes a receiver
(https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md):

- ``POST /hooks/{name}``: the body is verified with the endpoint's secret by the ``standardwebhooks``
  package (``Webhook.verify``: the ``v1`` HMAC-SHA256 of ``<webhook-id>.<webhook-timestamp>.<body>``
  among the space-separated ``webhook-signature`` values, a timestamp within five minutes of now:
  "Verifying signatures"). Verified: 200 ``{"ok": true}``; a ``webhook-id`` seen before is answered 200
  again and kept as a duplicate (the specification's idempotency: "webhook-id ... can be used to
  deduplicate"). Not verified (no secret registered, a wrong signature, a stale timestamp): 401, kept
  with why;
- ``PUT /_stand-in/endpoints/{name}`` ``{"secret": "whsec_..."}``: register the endpoint's secret (what a
  person does with the secret a webhook channel shows once); ``DELETE`` forgets it;
- names that misbehave on purpose, as a receiver can: ``fail500`` answers 500, ``gone`` 410,
  ``redirect`` 302 to the cloud metadata address (the platform must not follow it), ``slow`` waits
  ``slow_seconds`` before answering (longer than the platform's timeout);
- ``GET /_stand-in/received`` (``?endpoint=`` filters) lists what arrived: endpoint, time, the three
  headers, the body, ``verified``, ``error``, ``duplicate``; ``DELETE`` clears it.

Verification is the ``standardwebhooks`` package's, version 1.1.0 (pinned in ``requirements.txt``), the
specification's reference library. Not implemented: asymmetric (``v1a``, ed25519) signatures, which
the platform does not send; TLS (the local stage posts over http to loopback only); any rate limit a
real endpoint may have.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from localcloud.standins import RawRequest, RawResponse, StandIn

JSON_TYPE = "application/json; charset=utf-8"
HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")


def _json(status: int, body: Any) -> RawResponse:
    return RawResponse(status, json.dumps(body).encode(), {"Content-Type": JSON_TYPE})


class WebhookReceiverStandIn(StandIn):
    name = "webhook receiver stand-in"

    def __init__(self, host: str = "127.0.0.1", port: int = 0, slow_seconds: float = 8.0) -> None:
        super().__init__(host, port)
        self.lock = threading.Lock()
        self.slow_seconds = slow_seconds
        self._secrets: dict[str, str] = {}
        self._seen: set[tuple[str, str]] = set()
        self._received: list[dict[str, Any]] = []

    def endpoint_url(self, name: str) -> str:
        return f"{self.url}/hooks/{quote(name, safe='')}"

    def register(self, name: str, secret: str) -> None:
        with self.lock:
            self._secrets[name] = secret

    def received(self, endpoint: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(m) for m in self._received if endpoint is None or m["endpoint"] == endpoint]

    def clear(self) -> None:
        with self.lock:
            self._received.clear()
            self._seen.clear()

    def handle(self, request: RawRequest) -> RawResponse:
        split = urlsplit(request.target)
        path = split.path
        if path.rstrip("/") == "/_stand-in/received":
            if request.method == "GET":
                return _json(200, self.received(dict(parse_qsl(split.query)).get("endpoint")))
            if request.method == "DELETE":
                self.clear()
                return RawResponse(204)
        if path.startswith("/_stand-in/endpoints/"):
            name = unquote(path.removeprefix("/_stand-in/endpoints/"))
            if request.method == "PUT":
                try:
                    secret = json.loads(request.body or b"{}")["secret"]
                except (ValueError, KeyError, TypeError):
                    return _json(400, {"error": 'send {"secret": "whsec_..."}'})
                self.register(name, str(secret))
                return _json(200, {"endpoint": name, "url": self.endpoint_url(name)})
            if request.method == "DELETE":
                with self.lock:
                    self._secrets.pop(name, None)
                return RawResponse(204)
        if path.startswith("/hooks/") and request.method == "POST":
            return self._receive(unquote(path.removeprefix("/hooks/")), request)
        return _json(404, {"error": "not found"})

    def _receive(self, name: str, request: RawRequest) -> RawResponse:
        if name == "fail500":
            return _json(500, {"error": "the receiver failed"})
        if name == "gone":
            return _json(410, {"error": "this endpoint is gone"})
        if name == "redirect":
            return RawResponse(302, b"", {"Location": "http://169.254.169.254/latest/meta-data/"})
        if name == "slow":
            time.sleep(self.slow_seconds)
        headers = {h: request.headers.get(h, "") for h in HEADERS}
        entry: dict[str, Any] = {
            "endpoint": name,
            "received_at": datetime.now(UTC).isoformat(),
            "headers": headers,
            "body": _body(request.body),
            "verified": False,
            "error": None,
            "duplicate": False,
        }
        with self.lock:
            secret = self._secrets.get(name)
        if secret is None:
            entry["error"] = "no secret registered for this endpoint (PUT /_stand-in/endpoints/<name>)"
        else:
            from standardwebhooks.webhooks import Webhook, WebhookVerificationError

            try:
                Webhook(secret).verify(request.body, dict(request.headers))
                entry["verified"] = True
            except (WebhookVerificationError, ValueError) as e:
                entry["error"] = f"not verified: {e}"
        with self.lock:
            if entry["verified"]:
                key = (name, headers["webhook-id"])
                entry["duplicate"] = key in self._seen
                self._seen.add(key)
            self._received.append(entry)
        if not entry["verified"]:
            return _json(401, {"error": entry["error"]})
        return _json(200, {"ok": True, "duplicate": entry["duplicate"]})


def _body(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", errors="replace")
