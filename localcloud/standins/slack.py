"""A Slack stand-in: an incoming-webhook receiver on loopback answering as Slack does.

It mirrors Slack's incoming webhooks as documented in "Sending messages using incoming webhooks"
(docs.slack.dev/messaging/sending-messages-using-incoming-webhooks, formerly
api.slack.com/messaging/webhooks), its "Handling errors" table: answers are plain text, ``ok`` or an
error code, with the HTTP status. What the platform sends through ``slack_sdk``'s ``WebhookClient``
(``slack_sdk`` 3.47.0) is what it receives.

``POST /services/{T}/{B}/{X}`` with a JSON body (``Content-Type: application/json``, or a form field
``payload=<json>`` as Slack also accepts):

- 200 ``ok`` (text/plain) when the message has a non-empty ``text``, ``blocks`` or ``attachments``;
- 400 ``invalid_payload`` when the body is not a JSON object;
- 400 ``no_text`` when it has none of them (what Slack answers such a message);
- 404 ``no_service`` when the last path segment is ``gone`` (a revoked webhook), the path is not
  ``/services/T/B/X``, or the method is not POST; 500 ``rollup_error`` (Slack's internal error) when
  the last segment is ``fail500``.

Not implemented: the message itself is not checked further (no block validation, no
``too_many_attachments``, no ``channel_not_found``/``channel_is_archived``/``action_prohibited``,
which need a workspace), any path of that shape is a live webhook (only ``gone`` is revoked), there is
no rate limit (Slack's 1 message a second per webhook, 429) and nothing is posted anywhere.

Accepted messages are kept with their path and time: ``received()`` and ``GET /_stand-in/received``
(``?path=`` filters) read them, ``clear()`` and ``DELETE /_stand-in/received`` clear them.
``webhook_url(name)`` gives a webhook address whose last segment is ``name`` (so ``webhook_url("gone")``
is a revoked one).
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

from localcloud.standins import RawRequest, RawResponse, StandIn

TEXT_TYPE = "text/plain; charset=utf-8"
JSON_TYPE = "application/json; charset=utf-8"
TEAM_ID = "T0LOCAL000"
BOT_ID = "B0LOCAL000"


def _text(status: int, body: str) -> RawResponse:
    return RawResponse(status, body.encode(), {"Content-Type": TEXT_TYPE})


class SlackStandIn(StandIn):
    name = "Slack stand-in"

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self.lock = threading.Lock()
        self._received: list[dict[str, Any]] = []

    def webhook_url(self, name: str) -> str:
        return f"{self.url}/services/{TEAM_ID}/{BOT_ID}/{quote(name, safe='')}"

    def received(self, path: str | None = None) -> list[dict[str, Any]]:
        """Accepted messages, oldest first: ``{"path", "received_at", "body"}``. ``path`` may be a full
        webhook URL or its path."""
        if path is not None:
            path = urlsplit(path).path or path
        with self.lock:
            return [dict(m) for m in self._received if path is None or m["path"] == path]

    def clear(self) -> None:
        with self.lock:
            self._received.clear()

    def handle(self, request: RawRequest) -> RawResponse:
        split = urlsplit(request.target)
        path = split.path
        if path.rstrip("/") == "/_stand-in/received":
            if request.method == "GET":
                wanted = dict(parse_qsl(split.query)).get("path")
                return RawResponse(200, json.dumps(self.received(wanted)).encode(), {"Content-Type": JSON_TYPE})
            if request.method == "DELETE":
                self.clear()
                return RawResponse(204)
        if path.startswith("/services/"):
            return self._webhook(request, path)
        return _text(404, "Not Found")

    def _webhook(self, request: RawRequest, path: str) -> RawResponse:
        segments = path[len("/services/") :].split("/")
        if segments[-1] == "gone":
            return _text(404, "no_service")
        if segments[-1] == "fail500":
            return _text(500, "rollup_error")
        if len(segments) != 3 or not all(segments) or request.method != "POST":
            return _text(404, "no_service")
        payload = self._payload(request)
        if not isinstance(payload, dict):
            return _text(400, "invalid_payload")
        if not (_present(payload.get("text")) or _present(payload.get("blocks")) or payload.get("attachments")):
            return _text(400, "no_text")
        with self.lock:
            self._received.append({"path": path, "received_at": datetime.now(UTC).isoformat(), "body": payload})
        return _text(200, "ok")

    @staticmethod
    def _payload(request: RawRequest) -> Any:
        content_type = request.headers.get("content-type", "")
        try:
            text = request.body.decode("utf-8")
            if content_type.startswith("application/x-www-form-urlencoded"):
                text = dict(parse_qsl(text)).get("payload", "")
            return json.loads(text)
        except ValueError:
            return None


def _present(value: Any) -> bool:
    if isinstance(value, str):
        return bool(value.strip())
    return bool(value)
