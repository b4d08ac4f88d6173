"""Alerting: channels checked when saved, rules and their defaults, and the pipeline on the table (moto
in-process): one alert per event and rule however often it arrives, the same alert once per repeat
interval, a burst grouped into one message per channel, a rate limit per channel, retries with
backoff for what surely did not arrive and none for what was refused, a failing channel that does not
hold up the others, and every channel's status in the history."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from chalicelib.domain.errors import (
    ConflictError,
    DeliveryOutcomeUnknownError,
    DeliveryRefusedError,
    DependencyUnavailableError,
    NotFoundError,
    ValidationError,
)
from chalicelib.domain.events import Event
from chalicelib.domain.model import Account, Member
from chalicelib.domain.ports import Notification

NS = "acme-backend"
ADA = 1


class ScriptedNotifier:
    """Sends succeed, or raise what the script says next; keeps what it sent."""

    def __init__(self, script: list[Exception | None] | None = None) -> None:
        self.script = list(script or [])
        self.sent: list[Notification] = []

    def describe(self, target: str) -> str:
        return target

    def send(self, notification: Notification) -> str:
        outcome = self.script.pop(0) if self.script else None
        if outcome is not None:
            raise outcome
        self.sent.append(notification)
        return f"msg-{len(self.sent)}"


class FakeQueue:
    """The QueuePort, in memory: what was sent and with which delay."""

    def __init__(self) -> None:
        self.sent: list[tuple[dict[str, Any], int]] = []

    def send(self, queue: str, body: dict[str, Any], *, dedup_id: str | None = None, delay_seconds: int = 0) -> str:
        assert queue == "alerts-timers"
        self.sent.append((body, delay_seconds))
        return str(len(self.sent))

    def send_batch(self, queue: str, bodies: Any) -> None:
        raise AssertionError("not used")

    def take(self, kind: str) -> list[tuple[dict[str, Any], int]]:
        out = [(b, d) for b, d in self.sent if b["alerts"] == kind]
        self.sent = [(b, d) for b, d in self.sent if b["alerts"] != kind]
        return out


class World:
    def __init__(self, container: Any, clock: Any, local: bool = False) -> None:
        from chalicelib.adapters.crypto import LocalKeyEncryptor
        from chalicelib.adapters.dynamodb.alerts import DynamoAlertStore
        from chalicelib.adapters.dynamodb.deliveries import DynamoDeliveryLog
        from chalicelib.adapters.notify.alert_messages import JinjaAlertRenderer
        from chalicelib.adapters.notify.outbound import OutboundPolicy
        from chalicelib.domain.services.alerts import AlertService, AlertSettings
        from chalicelib.domain.services.delivery import DeliveryService

        self.clock = clock
        self.queue = FakeQueue()
        self.notifiers = {k: ScriptedNotifier() for k in ("email", "sms", "slack", "webhook")}
        self.container = container
        policy = OutboundPolicy.local() if local else OutboundPolicy()
        self.service = AlertService(
            DynamoAlertStore(),
            container.stores.members,
            container.stores.accounts,
            LocalKeyEncryptor("test-key"),
            self.queue,
            DeliveryService(DynamoDeliveryLog(), self.notifiers, clock),  # type: ignore[arg-type]
            JinjaAlertRenderer,
            policy.check_url,
            clock,
            AlertSettings(local=local, public_url="https://api.example.com"),
        )
        # ada owns the namespace and has an email address the platform knows (from her GitHub account)
        container.stores.members.apply(NS, [Member(NS, ADA, "ada", "owner", "org_owner")], [], [])
        container.stores.accounts.upsert(Account(ADA, "ada", "Ada", "ada@acme.example"), clock.now())

    def event(self, type: str, **data: Any) -> Event:
        return Event.create(type, NS, self.clock.now(), data)

    def flush_due(self) -> None:
        """What SQS does once the delays have passed: hand the flush and retry messages to the notifier."""
        for body, _ in self.queue.take("flush"):
            self.service.flush(body["namespace"], body["group_id"])

    def retry_due(self) -> list[int]:
        due = self.queue.take("retry")
        for body, _ in due:
            self.service.retry(body["namespace"], body["group_id"], body["channel_id"])
        return [d for _, d in due]

    def sent(self, kind: str) -> list[Notification]:
        return self.notifiers[kind].sent

    def outbox(self, type: str) -> list[dict[str, Any]]:
        from chalicelib.adapters.dynamodb.outbox import DynamoOutbox

        return [e.data for e in DynamoOutbox(self.clock).pending(1000) if e.type == type]


@pytest.fixture
def world(container: Any, clock: Any) -> Iterator[World]:
    yield World(container, clock)


def channels(w: World, window: int = 30, **overrides: Any) -> dict[str, str]:
    """A Slack, a webhook and an SMS channel, and rules sending failures to them and the owners."""
    svc = w.service
    slack, _ = svc.create_channel(
        NS, "slack", "ops room", "https://hooks.slack.com/services/T1/B1/secretpath", None, "user:ada"
    )
    hook, secret = svc.create_channel(NS, "webhook", "pager", "https://hooks.example.com/alerts", None, "user:ada")
    sms, _ = svc.create_channel(NS, "sms", "on call", "+14155550100", None, "user:ada")
    assert secret is not None and secret.startswith("whsec_")
    ids = {"slack": slack.id, "webhook": hook.id, "sms": sms.id}
    svc.put_rules(
        NS,
        [
            {
                "id": "failures",
                "events": ["deployment.failed"],
                "channels": ["owners", slack.id, hook.id, sms.id],
                "severity": "critical",
                "group_window": window,
                **{k: v for k, v in overrides.items() if k in ("repeat_interval",)},
            }
        ],
        "user:ada",
    )
    return {**ids, "secret": secret}


# ============================================================================ channels


@pytest.mark.parametrize(
    ("kind", "target", "message"),
    [
        ("email", "not-an-address", "not a valid email address"),
        ("email", "ada@", "not a valid email address"),
        ("sms", "4155550100", "E.164"),
        ("sms", "+1415555", "not a valid phone number"),
        ("slack", "https://example.com/services/T/B/X", "Slack incoming webhook"),
        ("slack", "http://hooks.slack.com/services/T/B/X", "https"),
        ("webhook", "http://hooks.example.com/x", "https"),
        ("webhook", "https://10.0.0.8/x", "public address"),
        ("webhook", "https://169.254.169.254/latest/meta-data", "public address"),
        ("webhook", "https://user:pw@hooks.example.com/x", "user information"),
    ],
)
def test_a_bad_target_is_refused_naming_the_field(kind: str, target: str, message: str) -> None:
    from chalicelib.adapters.notify.outbound import OutboundPolicy
    from chalicelib.domain import alerts

    check_url = OutboundPolicy().check_url
    checks = {
        "email": alerts.check_email,
        "sms": alerts.check_phone,
        "slack": lambda t: alerts.check_slack_url(t, False, check_url),
        "webhook": lambda t: alerts.check_webhook_url(t, check_url),
    }
    with pytest.raises(ValidationError) as e:
        checks[kind](target)
    assert e.value.details["fields"][0]["field"] == "target"
    assert message in e.value.details["fields"][0]["message"]


def test_a_refused_channel_writes_nothing(world: World) -> None:
    with pytest.raises(ValidationError):
        world.service.create_channel(NS, "webhook", "x", "https://127.0.0.1/hook", None, "user:ada")
    assert [c.id for c in world.service.list_channels(NS)] == ["owners"]


def test_the_local_stage_may_send_to_its_stand_ins_on_loopback_over_http(container: Any, clock: Any) -> None:
    w = World(container, clock, local=True)
    slack, _ = w.service.create_channel(NS, "slack", "s", "http://127.0.0.1:8011/services/T/B/X", None, "u")
    hook, _ = w.service.create_channel(NS, "webhook", "w", "http://127.0.0.1:8016/hooks/ci", None, "u")
    assert slack.display == "http://127.0.0.1:8011/services/T/***" and hook.target.startswith("http://127.0.0.1")


def test_targets_are_normalised_and_a_slack_url_is_kept_encrypted_and_shown_masked(world: World) -> None:
    svc = world.service
    email, _ = svc.create_channel(NS, "email", "team", "Ops@Acme.Example", None, "user:ada")
    sms, _ = svc.create_channel(NS, "sms", "phone", "+44 20 7946 0958", 5, "user:ada")
    slack, secret = svc.create_channel(NS, "slack", "room", "https://hooks.slack.com/services/T1/B2/abc", None, "u")
    assert email.target == "Ops@acme.example" and sms.target == "+442079460958" and sms.rate_limit == 5
    assert secret is None
    assert "abc" not in slack.target and slack.display == "https://hooks.slack.com/services/T1/***"


def test_a_webhook_secret_is_shown_once_stored_encrypted_and_rotatable(world: World) -> None:
    svc = world.service
    hook, secret = svc.create_channel(NS, "webhook", "pager", "https://hooks.example.com/a", None, "user:ada")
    assert secret is not None
    stored = svc.get_channel(NS, hook.id)
    assert secret not in json.dumps([s.ciphertext for s in stored.secrets])
    _, rotated = svc.rotate_secret(NS, hook.id)
    assert rotated != secret and len(svc.get_channel(NS, hook.id).secrets) == 2
    with pytest.raises(ValidationError):
        svc.rotate_secret(NS, "owners")


def test_a_channel_a_rule_uses_cannot_be_deleted_and_the_owners_channel_cannot_change(world: World) -> None:
    ids = channels(world)
    with pytest.raises(ConflictError) as e:
        world.service.delete_channel(NS, ids["slack"])
    assert e.value.details == {"rules": ["failures"]}
    with pytest.raises(ValidationError):
        world.service.update_channel(NS, "owners", name="x")
    with pytest.raises(NotFoundError):
        world.service.get_channel(NS, "01JD0000000000000000000000")


# ============================================================================ rules


def test_a_new_namespace_sends_failures_and_billing_events_to_its_owners_by_email(world: World) -> None:
    rules = world.service.rules(NS)
    assert rules.default and {r.id: r.channels for r in rules.rules} == {
        "failures": ("owners",),
        "billing": ("owners",),
    }
    world.service.handle_event(world.event("deployment.failed", service="hello", deployment_id="d1", reason="boom"))
    world.service.handle_event(
        world.event("billing.threshold_crossed", period="2026-11", threshold=80, spent=4000, monthly_limit=5000)
    )
    world.flush_due()
    subjects = sorted(n.subject for n in world.sent("email"))
    assert [n.target for n in world.sent("email")] == ["ada@acme.example"] * 2
    assert subjects == [
        "[acme-backend] Deploy of hello failed in acme-backend",
        "[acme-backend] acme-backend reached 80% of its monthly budget",
    ]


def test_rules_are_checked_field_by_field(world: World) -> None:
    with pytest.raises(ValidationError) as e:
        world.service.put_rules(
            NS,
            [
                {"id": "Bad Id", "events": ["deployment.exploded"], "channels": ["nope"], "group_window": 901},
                {"id": "ok", "events": ["billing.*"], "channels": ["owners", "owners"], "severity": "loud"},
            ],
            "user:ada",
        )
    fields = {f["field"] for f in e.value.details["fields"]}
    assert fields == {
        "rules.0.id",
        "rules.0.events.0",
        "rules.0.channels.0",
        "rules.0.group_window",
        "rules.1.channels",
        "rules.1.severity",
    }
    assert world.service.rules(NS).default  # nothing written


# ============================================================================ the pipeline


def test_an_event_arriving_three_times_gives_one_message_per_channel(world: World) -> None:
    channels(world)
    failed = world.event("deployment.failed", service="hello", deployment_id="d1", reason="health check failed")
    for _ in range(3):
        world.service.handle_event(failed)
    flushes = world.queue.take("flush")
    assert [d for _, d in flushes] == [30]  # one group, flushed by a message delayed by the window
    for body, _ in flushes * 2:  # the flush message delivered twice, too
        world.service.flush(body["namespace"], body["group_id"])
    for kind in ("email", "slack", "webhook", "sms"):
        assert len(world.sent(kind)) == 1, kind
    email = world.sent("email")[0]
    assert "health check failed" in email.text and email.html and "<a href=" in email.html
    assert "https://api.example.com/v1/namespaces/acme-backend/services/hello/deployments/d1" in email.text
    assert world.sent("slack")[0].target == "https://hooks.slack.com/services/T1/B1/secretpath"
    assert world.sent("slack")[0].blocks[0]["type"] == "header"
    assert len(world.sent("webhook")[0].signing_secrets) == 1
    assert len(world.outbox("alert.fired")) == 1


def test_the_same_alert_within_its_repeat_interval_is_delivered_once(world: World, clock: Any) -> None:
    channels(world, repeat_interval=3600)
    svc = world.service
    svc.handle_event(world.event("deployment.failed", service="hello", deployment_id="d1", reason="x"))
    world.flush_due()
    clock.advance(timedelta(minutes=10))
    again = svc.handle_event(world.event("deployment.failed", service="hello", deployment_id="d1", reason="x"))
    assert again.alerts == [] and len(again.repeats) == 1  # another event, the same alert
    world.flush_due()
    assert len(world.sent("slack")) == 1
    assert svc.list_alerts(NS)[0].alert.occurrences == 2
    clock.advance(timedelta(hours=1))
    later = svc.handle_event(world.event("deployment.failed", service="hello", deployment_id="d1", reason="x"))
    world.flush_due()
    assert len(later.alerts) == 1 and len(world.sent("slack")) == 2


def test_ten_failures_in_a_few_seconds_go_out_as_one_grouped_message_per_channel(world: World, clock: Any) -> None:
    channels(world)
    for i in range(10):
        world.service.handle_event(
            world.event("deployment.failed", service=f"svc{i}", deployment_id=f"d{i}", reason="crashed")
        )
        clock.advance(timedelta(seconds=1))
    assert len(world.queue.sent) == 1  # one group: one flush message
    world.flush_due()
    for kind in ("email", "slack", "webhook", "sms"):
        assert len(world.sent(kind)) == 1, kind
    email = world.sent("email")[0]
    assert email.subject.startswith("[acme-backend] 10 alerts: Deploy of svc0 failed")
    assert all(f"Deploy of svc{i} failed" in email.text for i in range(10))
    body = json.loads(world.sent("webhook")[0].text)
    assert body["type"] == "alert.fired" and body["data"]["total"] == 10 and len(body["data"]["alerts"]) == 10
    # the next one after the window opens a new group
    clock.advance(timedelta(seconds=30))
    world.service.handle_event(world.event("deployment.failed", service="late", deployment_id="dl", reason="x"))
    world.flush_due()
    assert len(world.sent("slack")) == 2


def test_an_alert_after_its_group_was_flushed_a_little_early_opens_a_new_group(world: World) -> None:
    """A delayed message may arrive a hair before its time (SQS's delay is not exact; clocks differ)."""
    channels(world)
    world.service.handle_event(world.event("deployment.failed", service="a", deployment_id="d1", reason="x"))
    world.flush_due()  # before the window's end
    late = world.service.handle_event(world.event("deployment.failed", service="b", deployment_id="d2", reason="x"))
    assert len(late.alerts) == 1
    world.flush_due()
    assert len(world.sent("slack")) == 2


def test_a_window_of_zero_sends_at_once(world: World) -> None:
    channels(world, window=0)
    world.service.handle_event(world.event("deployment.failed", service="hello", deployment_id="d1", reason="x"))
    assert world.queue.sent == [] and len(world.sent("slack")) == 1


def test_a_surely_failed_send_is_retried_with_backoff_and_a_refused_one_is_not(world: World) -> None:
    ids = channels(world)
    world.notifiers["slack"].script = [DependencyUnavailableError("Slack answered 503", {"provider_error": "503"})] * 2
    world.notifiers["webhook"].script = [DeliveryRefusedError("refused (404)", {"provider_error": "http_404"})]
    world.service.handle_event(world.event("deployment.failed", service="hello", deployment_id="d1", reason="x"))
    world.flush_due()
    # the others went out at once: a failing channel holds nobody up
    assert len(world.sent("email")) == 1 and len(world.sent("sms")) == 1
    assert world.retry_due() == [10]
    assert world.retry_due() == [30]
    assert world.retry_due() == [] and len(world.sent("slack")) == 1
    assert world.sent("webhook") == []
    failed = world.outbox("alert.delivery_failed")
    assert [(f["channel_id"], f["channel_type"], f["attempts"]) for f in failed] == [(ids["webhook"], "webhook", 1)]
    view = world.service.list_alerts(NS)[0]
    by = {c.channel_id: c for c in view.channels}
    assert (by[ids["slack"]].status, by[ids["slack"]].attempts) == ("sent", 3)
    assert (by[ids["webhook"]].status, by[ids["webhook"]].last_error) == ("refused", "http_404: refused (404)")
    assert by["owners"].status == "sent" and by["owners"].target == "ada@acme.example"


def test_a_delivery_that_keeps_failing_is_given_up_after_five_attempts_and_reported_once(world: World) -> None:
    ids = channels(world)
    world.notifiers["sms"].script = [DependencyUnavailableError("Throttling", {"provider_error": "Throttling"})] * 9
    world.service.handle_event(world.event("deployment.failed", service="hello", deployment_id="d1", reason="x"))
    world.flush_due()
    delays = []
    for _ in range(6):
        delays += world.retry_due()
    assert delays == [10, 30, 90, 270]
    status = {c.channel_id: c for c in world.service.list_alerts(NS)[0].channels}[ids["sms"]]
    assert (status.status, status.attempts) == ("failed", 5)
    world.service.retry(NS, world.service.list_alerts(NS)[0].alert.group_id, ids["sms"])  # a stray retry
    assert len(world.outbox("alert.delivery_failed")) == 1


def test_an_unknown_outcome_is_recorded_and_never_sent_again(world: World) -> None:
    ids = channels(world)
    world.notifiers["sms"].script = [DeliveryOutcomeUnknownError("no answer", {"provider_error": "ReadTimeoutError"})]
    world.service.handle_event(world.event("deployment.failed", service="hello", deployment_id="d1", reason="x"))
    world.flush_due()
    group_id = world.service.list_alerts(NS)[0].alert.group_id
    world.service.flush(NS, group_id)  # the flush message again
    assert world.queue.take("retry") == [] and world.sent("sms") == []
    status = {c.channel_id: c for c in world.service.list_alerts(NS)[0].channels}[ids["sms"]]
    assert status.status == "unknown" and status.attempts == 1


def test_a_channel_over_its_rate_limit_is_skipped_saying_why(world: World, clock: Any) -> None:
    sms, _ = world.service.create_channel(NS, "sms", "on call", "+14155550100", 2, "user:ada")
    rule = {"id": "f", "events": ["deployment.failed"], "channels": [sms.id], "group_window": 0}
    world.service.put_rules(NS, [rule], "user:ada")
    for i in range(3):
        world.service.handle_event(world.event("deployment.failed", service="s", deployment_id=f"d{i}", reason="x"))
    assert len(world.sent("sms")) == 2
    [status] = world.service.list_alerts(NS)[0].channels
    assert status.status == "skipped" and status.last_error == "rate limit: at most 2 messages an hour to this channel"
    clock.advance(timedelta(hours=1))
    world.service.handle_event(world.event("deployment.failed", service="s", deployment_id="d9", reason="x"))
    assert len(world.sent("sms")) == 3


def test_an_event_version_the_notifier_does_not_know_fails_and_other_events_are_ignored(world: World) -> None:
    event = world.event("deployment.failed", service="hello", deployment_id="d1")
    with pytest.raises(ValidationError):
        world.service.handle_event(Event(event.type, NS, event.occurred_at, event.data, event.id, 2))
    assert world.service.handle_event(world.event("token.created", token_id="t")).ignored
    assert world.service.list_alerts(NS) == []


def test_the_history_lists_alerts_newest_first_with_a_pending_group(world: World, clock: Any) -> None:
    channels(world)
    world.service.handle_event(world.event("deployment.failed", service="a", deployment_id="d1", reason="x"))
    clock.advance(timedelta(seconds=1))
    world.service.handle_event(world.event("deployment.failed", service="b", deployment_id="d2", reason="x"))
    views = world.service.list_alerts(NS)
    assert [v.alert.data["service"] for v in views] == ["b", "a"]
    assert views[0].group_status == "open" and {c.status for c in views[0].channels} == {"pending"}
    assert [v.alert.data["service"] for v in world.service.list_alerts(NS, before=views[0].alert.id)] == ["a"]


def test_a_test_message_says_what_really_happened(world: World) -> None:
    ids = channels(world)
    world.notifiers["webhook"].script = [DeliveryRefusedError("refused (410)", {"provider_error": "http_410"})]
    [ok] = world.service.test_channel(NS, ids["slack"], "user:ada")
    [refused] = world.service.test_channel(NS, ids["webhook"], "user:ada")
    assert ok.status == "sent" and refused.status == "refused" and refused.error == "http_410: refused (410)"
    [owners] = world.service.test_channel(NS, "owners", "user:ada")
    assert owners.target == "ada@acme.example" and "Test message" in world.sent("email")[0].subject


def test_platform_wide_events_go_to_the_configured_addresses(container: Any, clock: Any) -> None:
    from dataclasses import replace

    w = World(container, clock)
    w.service._settings = replace(w.service._settings, platform_emails=("ops@platform.example",))
    # a type issue 16 brings: as it comes from the bus
    unhealthy = {"id": "01JD2Z6Q8M3V9X4T7K5R1C0B2A", "type": "region.unhealthy", "version": 1, "namespace": None}
    w.service.handle_event(
        Event.from_dict(
            {**unhealthy, "occurred_at": clock.now().isoformat(), "data": {"region": "eu-1", "reason": "x"}}
        )
    )
    w.flush_due()
    assert [n.target for n in w.sent("email")] == ["ops@platform.example"]
    assert "Region eu-1 is unhealthy" in w.sent("email")[0].subject
