"""Delivery: claim before send, one send per key, every attempt recorded, unknown outcomes never
resent; the SES notifier's raw MIME and its classification of failures; the local .eml copy; the
outbound rules for Slack webhooks (checked without a network: a refused address is never connected)."""

from __future__ import annotations

import email
import email.policy
import socket
import stat
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from chalicelib.domain.errors import (
    DeliveryOutcomeUnknownError,
    DeliveryRefusedError,
    DependencyUnavailableError,
    ValidationError,
)
from chalicelib.domain.ports import Attachment, Notification

NS = "acme-backend"


class ScriptedNotifier:
    """A notifier whose sends succeed, or raise what the script says next; it keeps what it sent."""

    def __init__(self, script: list[Exception | None] | None = None) -> None:
        self.script = list(script or [])
        self.sent: list[Notification] = []
        self.during: Callable[[], None] | None = None

    def describe(self, target: str) -> str:
        return "masked:" + target[-4:]

    def send(self, notification: Notification) -> str:
        if self.during is not None:
            self.during()
        outcome = self.script.pop(0) if self.script else None
        if outcome is not None:
            raise outcome
        self.sent.append(notification)
        return f"msg-{len(self.sent)}"


@pytest.fixture
def service(container: Any) -> Callable[..., Any]:
    from chalicelib.adapters.dynamodb.deliveries import DynamoDeliveryLog
    from chalicelib.domain.services.delivery import DeliveryService

    def make(notifier: ScriptedNotifier) -> DeliveryService:
        return DeliveryService(DynamoDeliveryLog(), {"email": notifier, "slack": notifier}, container.clock)

    return make


def note(key: str = "report:acme-backend:2026-11-23-weekly:email-1", channel: str = "email") -> Notification:
    return Notification(channel, "ada@acme.example", "Weekly usage", "plain", key=key)  # type: ignore[arg-type]


def test_a_key_is_sent_once_however_often_it_is_delivered(service: Any) -> None:
    notifier = ScriptedNotifier()
    deliveries = service(notifier)
    first = deliveries.deliver(NS, note())
    again = deliveries.deliver(NS, note())
    assert len(notifier.sent) == 1
    assert first.status == again.status == "sent" and again.provider_id == "msg-1"
    assert [a.outcome for a in again.attempts] == ["sent"]
    assert again.target == "masked:mple"  # what the notifier lets be shown, never the raw target


def test_a_surely_failed_send_is_sent_again_and_every_attempt_is_recorded(service: Any, clock: Any) -> None:
    notifier = ScriptedNotifier([DependencyUnavailableError("throttled", {"provider_error": "TooManyRequests"})])
    deliveries = service(notifier)
    failed = deliveries.deliver(NS, note())
    assert failed.status == "failed" and failed.retryable and not notifier.sent
    assert failed.error == "TooManyRequests: throttled"
    clock.advance(30)
    sent = deliveries.deliver(NS, note())
    assert sent.status == "sent" and len(notifier.sent) == 1
    assert [(a.number, a.outcome) for a in sent.attempts] == [(1, "failed"), (2, "sent")]
    assert deliveries.deliver(NS, note()).status == "sent" and len(notifier.sent) == 1


def test_an_unknown_outcome_is_not_resent(service: Any) -> None:
    notifier = ScriptedNotifier([DeliveryOutcomeUnknownError("no answer", {"provider_error": "ReadTimeoutError"})])
    deliveries = service(notifier)
    assert deliveries.deliver(NS, note()).status == "unknown"
    again = deliveries.deliver(NS, note())
    assert again.status == "unknown" and not notifier.sent and len(again.attempts) == 1


def test_a_refusal_is_not_resent(service: Any) -> None:
    notifier = ScriptedNotifier([DeliveryRefusedError("revoked", {"provider_error": "no_service"})])
    deliveries = service(notifier)
    assert deliveries.deliver(NS, note()).status == "refused"
    assert deliveries.deliver(NS, note()).status == "refused" and not notifier.sent


def test_an_unexpected_error_counts_as_unknown(service: Any) -> None:
    notifier = ScriptedNotifier([KeyError("bug")])
    deliveries = service(notifier)
    d = deliveries.deliver(NS, note())
    assert d.status == "unknown" and d.error == "internal: KeyError"
    assert deliveries.deliver(NS, note()).status == "unknown" and not notifier.sent


def test_a_delivery_in_flight_is_not_sent_twice_and_a_dead_one_becomes_unknown(service: Any, clock: Any) -> None:
    from chalicelib.domain.services.delivery import LEASE

    notifier = ScriptedNotifier()
    deliveries = service(notifier)
    inner: list[Any] = []
    # while the first attempt is sending, the same key is delivered again (a retried step)
    notifier.during = lambda: inner.append(deliveries.deliver(NS, note())) if not inner else None
    outer = deliveries.deliver(NS, note())
    assert inner[0].status == "sending" and outer.status == "sent" and len(notifier.sent) == 1

    # an attempt whose sender died: claimed, never settled
    from chalicelib.adapters.dynamodb.deliveries import DynamoDeliveryLog
    from chalicelib.domain.services.delivery import Attempt, Delivery

    now = clock.now()
    DynamoDeliveryLog().claim(
        Delivery(NS, "k:dead", "email", "x", "sending", (Attempt(1, now, "sending"),), now, now), 0
    )
    assert deliveries.deliver(NS, note("k:dead")).status == "sending"
    clock.advance(LEASE + timedelta(seconds=1))
    dead = deliveries.deliver(NS, note("k:dead"))
    assert dead.status == "unknown" and "stopped" in (dead.error or "")
    assert len(notifier.sent) == 1


def test_attempts_stop_after_the_last_one(service: Any) -> None:
    from chalicelib.domain.services.delivery import MAX_ATTEMPTS

    notifier = ScriptedNotifier([DependencyUnavailableError("down")] * (MAX_ATTEMPTS + 2))
    deliveries = service(notifier)
    for _ in range(MAX_ATTEMPTS + 2):
        last = deliveries.deliver(NS, note())
    assert last.status == "failed" and len(last.attempts) == MAX_ATTEMPTS and not last.retryable


def test_a_key_or_channel_that_cannot_be_delivered_is_refused_before_anything(service: Any) -> None:
    deliveries = service(ScriptedNotifier())
    with pytest.raises(ValidationError):
        deliveries.deliver(NS, note(key="has#hash"))
    with pytest.raises(ValidationError):
        deliveries.deliver(NS, note(key=""))
    with pytest.raises(ValidationError):
        deliveries.deliver(NS, note(channel="sms"))


def test_the_delivery_log_lists_newest_first(service: Any, clock: Any) -> None:
    deliveries = service(ScriptedNotifier())
    deliveries.deliver(NS, note("k:1"))
    clock.advance(60)
    deliveries.deliver(NS, note("k:2"))
    assert [d.key for d in deliveries.list(NS)] == ["k:2", "k:1"]
    assert deliveries.list("acme-other") == []


# --------------------------------------------------------------------------- SES


def report_email(target: str = "ada@acme.example") -> Notification:
    return Notification(
        channel="email",
        target=target,
        subject="Weekly usage: acme-backend",
        text="plain figures",
        html='<p>figures</p><img src="cid:usage-chart@platform" alt="chart">',
        attachments=(
            Attachment("usage.png", b"\x89PNG fake", "image/png", content_id="usage-chart@platform"),
            Attachment("usage.csv", b"meter,quantity\nrequests,40\n", "text/csv"),
        ),
        key="report:acme-backend:x:email-1",
    )


def test_the_email_is_one_raw_mime_message_with_text_html_inline_chart_and_csv() -> None:
    from chalicelib.adapters.notify.ses import compose

    msg = email.message_from_bytes(
        compose("no-reply@platform.local", report_email()).as_bytes(), policy=email.policy.default
    )
    assert msg.get_content_type() == "multipart/mixed"
    alternative, csv = msg.get_payload()  # type: ignore[misc]
    assert alternative.get_content_type() == "multipart/alternative"
    text, related = alternative.get_payload()
    assert text.get_content_type() == "text/plain" and text.get_content().strip() == "plain figures"
    html, png = related.get_payload()
    assert related.get_content_type() == "multipart/related" and html.get_content_type() == "text/html"
    assert png.get_content_type() == "image/png" and png["Content-ID"] == "<usage-chart@platform>"
    assert png.get_content() == b"\x89PNG fake"
    assert csv.get_filename() == "usage.csv" and csv.get_content_disposition() == "attachment"
    assert msg["From"] == "no-reply@platform.local" and msg["To"] == "ada@acme.example"


def test_ses_sends_it_and_the_local_mailbox_keeps_it_private(aws: Any, clock: Any, tmp_path: Path) -> None:
    import boto3
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends

    from chalicelib.adapters.notify.eml import EmlMailbox
    from chalicelib.adapters.notify.ses import SesEmailNotifier

    boto3.client("sesv2").create_email_identity(EmailIdentity="no-reply@platform.local")
    mailbox = EmlMailbox(tmp_path / "mail", clock)
    message_id = SesEmailNotifier("no-reply@platform.local", mailbox=mailbox, clock=clock).send(report_email())
    sent = ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sent_messages
    assert message_id and len(sent) == 1
    (kept,) = mailbox.messages()
    assert kept.read_bytes().decode() == sent[0].raw_data and message_id in kept.name  # byte for byte
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "mail").stat().st_mode) == 0o700
    parsed = email.message_from_bytes(kept.read_bytes(), policy=email.policy.default)
    assert parsed["Subject"] == "Weekly usage: acme-backend"
    assert parsed["Date"] and "27 Nov 2026" in parsed["Date"]  # the injected clock's date


def test_ses_refusing_the_sender_is_a_refusal_not_a_retry(aws: Any) -> None:
    from chalicelib.adapters.notify.ses import SesEmailNotifier

    with pytest.raises(DeliveryRefusedError) as info:
        SesEmailNotifier("unverified@platform.local").send(report_email())
    assert info.value.details["provider_error"] == "MessageRejected"


@pytest.mark.parametrize(
    "address", ["not-an-address", "ada@acme.example\r\nBcc: eve@evil.example", "a b@acme.example", "x" * 250 + "@a.io"]
)
def test_an_address_ses_should_not_be_given_is_refused_before_sending(address: str) -> None:
    from chalicelib.adapters.notify.ses import SesEmailNotifier

    class NoClient:
        def send_email(self, **kwargs: Any) -> Any:
            raise AssertionError("must not be called")

    with pytest.raises(DeliveryRefusedError):
        SesEmailNotifier("no-reply@platform.local", client=NoClient()).send(report_email(address))


def test_ses_failures_are_told_apart_by_what_is_known_of_the_outcome() -> None:
    from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

    from chalicelib.adapters.notify.ses import SesEmailNotifier

    class Failing:
        def __init__(self, error: Exception) -> None:
            self.error = error

        def send_email(self, **kwargs: Any) -> Any:
            raise self.error

    def throttled() -> ClientError:
        return ClientError({"Error": {"Code": "TooManyRequestsException", "Message": "slow"}}, "SendEmail")

    cases: list[tuple[Exception, type[Exception]]] = [
        (throttled(), DependencyUnavailableError),
        (EndpointConnectionError(endpoint_url="https://email.us-east-1.amazonaws.com"), DependencyUnavailableError),
        (ReadTimeoutError(endpoint_url="https://email.us-east-1.amazonaws.com"), DeliveryOutcomeUnknownError),
    ]
    for error, expected in cases:
        with pytest.raises(expected):
            SesEmailNotifier("no-reply@platform.local", client=Failing(error)).send(report_email())


def test_the_ses_client_makes_one_attempt_only() -> None:
    """botocore retries read timeouts by itself: that would send an email twice."""
    from chalicelib.adapters.notify.ses import SesEmailNotifier

    client = SesEmailNotifier("no-reply@platform.local", region="us-east-1").client
    assert client.meta.config.retries["total_max_attempts"] == 1
    assert client.meta.config.read_timeout <= 30 and client.meta.config.connect_timeout <= 10


# --------------------------------------------------------------------------- Slack's outbound rules


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://hooks.slack.com/services/T/B/X", "https"),
        ("https://127.0.0.1/services/T/B/X", "public"),
        ("https://10.0.0.7/services/T/B/X", "public"),
        ("https://169.254.169.254/latest/meta-data", "public"),
        ("https://[::1]/x", "public"),
        ("https://[::ffff:10.0.0.1]/x", "public"),
        ("https://100.64.0.1/x", "public"),
        ("https://localhost/services/T/B/X", "public"),
        ("https://user:pw@hooks.slack.com/services/T/B/X", "user information"),
        ("https:///services", "no host"),
        ("https://hooks.slack.com/services/T/B/X\r\nHost: evil", "control"),
        ("ftp://hooks.slack.com/x", "https"),
    ],
)
def test_the_outbound_rules_refuse_what_is_not_a_public_https_address(url: str, why: str) -> None:
    from chalicelib.adapters.notify.outbound import OutboundPolicy, OutboundRefusedError

    with pytest.raises(OutboundRefusedError) as info:
        OutboundPolicy().check_url(url)
    assert why in str(info.value)


def test_the_local_stage_may_post_to_loopback_only() -> None:
    from chalicelib.adapters.notify.outbound import OutboundPolicy, OutboundRefusedError

    local = OutboundPolicy.local()
    assert local.check_url("http://127.0.0.1:8011/services/T/B/X")[2] == 8011
    with pytest.raises(OutboundRefusedError):
        local.check_url("http://10.0.0.7/services/T/B/X")
    assert OutboundPolicy().check_url("https://hooks.slack.com/services/T/B/X") == ("https", "hooks.slack.com", 443)


def test_a_name_resolving_to_a_private_address_is_never_connected(monkeypatch: pytest.MonkeyPatch) -> None:
    """The name is checked where the connection is made (DNS rebinding cannot slip through): no socket
    is connected (the unit tests' network guard would fail the test if one were)."""
    from chalicelib.adapters.notify.slack import SlackWebhookNotifier

    def rebinding(host: str, port: int, *args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        public = (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("8.8.8.8", port))
        private = (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("192.168.1.10", port))
        return [public, private]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    notification = Notification("slack", "https://hooks.example.com/services/T/B/X", "s", "hello", key="k:1")
    with pytest.raises(DeliveryRefusedError) as info:
        SlackWebhookNotifier().send(notification)
    assert "public" in info.value.message and "hooks.example.com/services" not in info.value.message


def test_a_webhook_url_is_never_shown_whole() -> None:
    from chalicelib.adapters.notify.slack import describe_webhook

    assert describe_webhook("https://hooks.slack.com/services/T0/B0/secretpart") == "https://hooks.slack.com/***"
    assert describe_webhook("http://127.0.0.1:8011/services/T/B/X") == "http://127.0.0.1:8011/***"
