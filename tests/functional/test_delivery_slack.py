"""The Slack notifier against real servers on loopback (the local stage's rules: http to loopback):
the Slack stand-in takes a Block Kit message; a revoked webhook is a refusal and a 5xx a retryable
failure; a redirect is not followed; an answer is read at most 16 KiB; no answer after the message
left is an unknown outcome, and no connection at all a sure failure. Outside the local stage the
same loopback address is refused before anything is sent."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from chalicelib.adapters.notify.outbound import OutboundPolicy
from chalicelib.adapters.notify.slack import SlackWebhookNotifier
from chalicelib.domain.errors import DeliveryOutcomeUnknownError, DeliveryRefusedError, DependencyUnavailableError
from chalicelib.domain.ports import Notification
from localcloud.standins.slack import SlackStandIn

BLOCKS = ({"type": "section", "text": {"type": "mrkdwn", "text": "*acme-backend*: 12 service hours"}},)


@pytest.fixture(scope="module")
def slack() -> Iterator[SlackStandIn]:
    s = SlackStandIn().start()
    yield s
    s.stop()


class Odd:
    """A server that misbehaves as told: ``redirect`` to a URL, ``flood`` an endless 200, ``silent``
    (reads the request, never answers)."""

    def __init__(self, mode: str, location: str = "") -> None:
        self.mode = mode
        self.written = 0
        self.requests = 0
        odd = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                odd.requests += 1
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if odd.mode == "redirect":
                    self.send_response(302)
                    self.send_header("Location", location)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif odd.mode == "flood":
                    self.send_response(200)
                    self.send_header("Content-Type", "text/plain")
                    self.end_headers()
                    chunk = b"x" * 65536
                    try:
                        for _ in range(1000):  # 64 MiB unless the client stops reading
                            self.wfile.write(chunk)
                            odd.written += len(chunk)
                    except OSError:
                        pass
                elif odd.mode == "silent":
                    time.sleep(3)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/services/T/B/X"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def message(url: str) -> Notification:
    return Notification("slack", url, "Weekly usage", "acme-backend: 12 service hours", blocks=BLOCKS, key="k:1")


def local(timeout: float = 5.0) -> SlackWebhookNotifier:
    return SlackWebhookNotifier(OutboundPolicy.local(), timeout=timeout)


def test_a_block_kit_message_reaches_the_stand_in(slack: SlackStandIn) -> None:
    url = slack.webhook_url("reports")
    provider_id = local().send(message(url))
    [received] = slack.received(url)
    assert provider_id.startswith("slack:")
    assert received["body"]["blocks"] == list(BLOCKS) and received["body"]["text"].startswith("acme-backend")


def test_a_revoked_webhook_is_refused_and_a_5xx_is_retryable(slack: SlackStandIn) -> None:
    with pytest.raises(DeliveryRefusedError) as refused:
        local().send(message(slack.webhook_url("gone")))
    assert refused.value.details["provider_error"] == "no_service"
    with pytest.raises(DependencyUnavailableError):
        local().send(message(slack.webhook_url("fail500")))


def test_a_redirect_is_not_followed(slack: SlackStandIn) -> None:
    target = slack.webhook_url("redirected")
    odd = Odd("redirect", location=target)
    try:
        with pytest.raises(DeliveryRefusedError) as info:
            local().send(message(odd.url))
        assert "redirect" in info.value.message
        assert slack.received(target) == [] and odd.requests == 1
    finally:
        odd.stop()


def test_an_endless_answer_is_read_no_further_than_the_cap() -> None:
    odd = Odd("flood")
    try:
        assert local().send(message(odd.url)).startswith("slack:")
        time.sleep(0.5)
        assert odd.written < 16 * 1024 * 1024  # the server stopped being read long before 64 MiB
    finally:
        odd.stop()


def test_no_answer_after_sending_is_unknown_and_no_connection_is_a_sure_failure() -> None:
    odd = Odd("silent")
    try:
        started = time.monotonic()
        with pytest.raises(DeliveryOutcomeUnknownError):
            local(timeout=1).send(message(odd.url))
        assert time.monotonic() - started < 3 and odd.requests == 1
    finally:
        odd.stop()
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DependencyUnavailableError):
        local().send(message(f"http://127.0.0.1:{port}/services/T/B/X"))


def test_outside_the_local_stage_loopback_and_http_are_refused_before_sending(slack: SlackStandIn) -> None:
    url = slack.webhook_url("prod")
    with pytest.raises(DeliveryRefusedError):
        SlackWebhookNotifier().send(message(url))
    with pytest.raises(DeliveryRefusedError):
        SlackWebhookNotifier(OutboundPolicy(allow_http=True)).send(message(url))
    assert slack.received(url) == []
