"""Alerting: channels and rules (the API), and the notifier's pipeline (``functions/alerts``).

The pipeline, per event the bus rule ``alerts`` routes to the ``alerts`` queue (docs/events.md):

1. **Rules.** The namespace's rules (its own, or the defaults) that match the event's type each make an
   alert, with the rule's severity.
2. **Dedup.** An alert's *fingerprint* (the event type and the fields that name the same alert:
   ``chalicelib/domain/alerts.py``) is claimed for the rule's repeat interval (default 4 hours) in the
   same transaction that writes the alert: the same alert within it, however often its event
   arrives, is written once (a repeat only counts ``occurrences``). The alert's key is its event's id
   and its rule's, so a redelivered event writes nothing either.
3. **Grouping.** The alert joins the open group of its rule and event type, or opens one, in the same
   transaction. Opening sends one delayed message (``DelaySeconds`` = the rule's window, default 30 s)
   to the notifier's own queue ``alerts-timers`` (not behind the events waiting on ``alerts``), first:
   the group is flushed when it arrives, with whatever joined it meanwhile. No Lambda sleeps. A window
   of 0 flushes at once.
4. **Flush.** The group is closed (``open`` -> ``flushed``, conditionally: a flush message delivered
   twice flushes once), and each of its rule's channels gets one message listing the group's alerts.
5. **Per channel**, once per group: a slot of the channel's rate limit (messages per hour) is taken
   with the record of what will be sent (one transaction; over the limit, the channel is skipped and
   the group says why), then each message goes through the ``DeliveryService`` (the platform's one
   way to send: a claim before the send, every attempt recorded, an unknown outcome never resent).
   A delivery that surely did not arrive (a timeout before sending, a 5xx, a throttle) is tried
   again after a backoff (a delayed message on ``alerts-timers``: 10 s, 30 s, 90 s, 270 s), at most
   ``MAX_ATTEMPTS`` in all; one refused for good (a 4xx, an address the outbound rules forbid) is not.
   A delivery given up emits ``alert.delivery_failed``, once (recorded with it). Channels are
   independent: one that keeps failing never holds up the others.

Nothing here touches what the event reports on: the producer wrote its state before its event left.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from chalicelib.domain.alerts import (
    ADMINS,
    ALERTABLE,
    CHANNEL_ID,
    DEFAULT_RATE_LIMIT,
    DEFAULT_RULES,
    MAX_CHANNELS,
    MAX_LISTED,
    OWNERS,
    PLATFORM,
    PLATFORM_RULES,
    Alert,
    AlertGroup,
    Channel,
    ChannelKind,
    Described,
    Rule,
    RuleSet,
    WebhookSecret,
    builtin_owners,
    check_email,
    check_name,
    check_phone,
    check_rate_limit,
    check_rules,
    check_slack_url,
    check_webhook_url,
    describe,
    field_error,
    fingerprint,
    mask_slack,
)
from chalicelib.domain.clock import Clock
from chalicelib.domain.errors import ConflictError, NotFoundError, ValidationError
from chalicelib.domain.events import EVENT_TYPES, Event
from chalicelib.domain.ids import new_id
from chalicelib.domain.ports import EncryptorPort, Notification, QueuePort
from chalicelib.domain.services.delivery import Delivery, DeliveryService
from chalicelib.domain.stores import AccountStore, AlertStore, MemberStore

QUEUE = "alerts"  # infra/resources.json: the events the bus rule ``alerts`` routes to the notifier
# its own delayed messages (flushes, retries), on a queue of their own: on the events' queue they would be
# received behind every event waiting there, so a burst's first message would wait for the whole burst
TIMERS = "alerts-timers"
ROTATION_OVERLAP = timedelta(hours=24)  # after a rotation, the previous webhook secret signs this long too
BACKOFF_SECONDS = (10, 30, 90, 270)  # before attempts 2, 3, 4, 5
MAX_DELAY = 900  # SQS's longest DelaySeconds


class DuplicateAlert(Exception):
    """The alert exists (a redelivered event) or its fingerprint is claimed (the same alert, within the
    repeat interval): ``alert_id`` names the alert that holds it."""

    def __init__(self, alert_id: str | None) -> None:
        super().__init__(alert_id)
        self.alert_id = alert_id


class GroupMoved(Exception):
    """The open group changed between its read and the write: read it again."""


@dataclass(frozen=True)
class OpenGroup:
    """The group a rule's alerts of one type join now (the pointer's view of it)."""

    group_id: str
    flush_at: datetime


@dataclass(frozen=True)
class GroupChannel:
    """What a flushed group sends to one channel: the delivery keys (one per address) or why nothing."""

    channel_id: str
    kind: ChannelKind
    keys: tuple[str, ...]
    skipped: str | None = None
    failure_reported: tuple[str, ...] = ()


class AlertRenderer(Protocol):
    """Messages people read, from a group's alerts (chalicelib/adapters/alert_messages.py: Jinja2)."""

    def render(self, kind: ChannelKind, message: AlertMessage) -> Notification: ...


@dataclass(frozen=True)
class ListedAlert:
    alert: Alert
    described: Described


@dataclass(frozen=True)
class AlertMessage:
    """What one message says: the group's alerts (the first ``MAX_LISTED``), and how many there are."""

    namespace: str | None
    rule_id: str
    event_type: str
    severity: str
    group_id: str
    alerts: tuple[ListedAlert, ...]
    total: int
    test: bool = False


@dataclass
class Handled:
    """What one event did: alerts written, repeats counted, groups flushed at once (window 0)."""

    alerts: list[str] = field(default_factory=list)
    repeats: list[str] = field(default_factory=list)
    ignored: str | None = None


@dataclass(frozen=True)
class ChannelStatus:
    channel_id: str
    kind: str
    status: str  # pending (the group gathers), skipped, or the delivery's: sending, sent, failed, refused, unknown
    target: str | None
    attempts: int
    last_error: str | None
    provider_id: str | None
    updated_at: datetime | None


@dataclass(frozen=True)
class AlertView:
    alert: Alert
    described: Described
    group_status: str
    flush_at: datetime | None
    channels: tuple[ChannelStatus, ...]


@dataclass(frozen=True)
class AlertSettings:
    local: bool  # the local stage: http and loopback outbound addresses allowed (its stand-ins)
    public_url: str
    platform_emails: tuple[str, ...] = ()


class AlertService:
    def __init__(
        self,
        store: AlertStore,
        members: MemberStore,
        accounts: AccountStore,
        encryptor: EncryptorPort,
        queues: QueuePort,
        deliveries: DeliveryService,
        renderer: Callable[[], AlertRenderer],
        check_url: Callable[[str], Any],
        clock: Clock,
        settings: AlertSettings,
    ) -> None:
        self._store = store
        self._members = members
        self._accounts = accounts
        self._encryptor = encryptor
        self._queues = queues
        self._deliveries = deliveries
        self._renderer = renderer
        self._check_url = check_url
        self._clock = clock
        self._settings = settings

    # ================================================================== channels

    def list_channels(self, ns: str) -> list[Channel]:
        return [builtin_owners(ns, self._clock.now()), *self._store.list_channels(ns)]

    def get_channel(self, ns: str, channel_id: str) -> Channel:
        if channel_id == OWNERS:
            return builtin_owners(ns, self._clock.now())
        channel = self._store.get_channel(ns, channel_id) if CHANNEL_ID.match(channel_id) else None
        if channel is None:
            raise NotFoundError(f"no channel {channel_id!r} in {ns}", {"channel": channel_id})
        return channel

    def create_channel(
        self, ns: str, kind: ChannelKind, name: str, target: str, rate_limit: int | None, actor: str
    ) -> tuple[Channel, str | None]:
        """A new channel; answers it and, for a webhook, its signing secret (shown this once)."""
        if len(self._store.list_channels(ns)) >= MAX_CHANNELS:
            raise ValidationError(f"a namespace has at most {MAX_CHANNELS} channels", {"limit": MAX_CHANNELS})
        now = self._clock.now()
        channel_id = new_id(now)
        clean_name = check_name(name)
        stored, display = self._target(ns, channel_id, kind, target)
        secret = None
        secrets_: tuple[WebhookSecret, ...] = ()
        if kind == "webhook":
            secret = new_webhook_secret()
            secrets_ = (WebhookSecret(self._encrypt(ns, channel_id, secret)),)
        channel = Channel(
            id=channel_id,
            namespace=ns,
            kind=kind,
            name=clean_name,
            target=stored,
            display=display,
            created_at=now,
            created_by=actor,
            updated_at=now,
            rate_limit=check_rate_limit(rate_limit) if rate_limit is not None else DEFAULT_RATE_LIMIT[kind],
            secrets=secrets_,
        )
        self._store.put_channel(channel, create=True)
        return channel, secret

    def update_channel(
        self,
        ns: str,
        channel_id: str,
        *,
        name: str | None = None,
        target: str | None = None,
        enabled: bool | None = None,
        rate_limit: int | None = None,
    ) -> Channel:
        channel = self._own(ns, channel_id)
        changes: dict[str, Any] = {"updated_at": self._clock.now()}
        if name is not None:
            changes["name"] = check_name(name)
        if target is not None:
            changes["target"], changes["display"] = self._target(ns, channel.id, channel.kind, target)
        if enabled is not None:
            changes["enabled"] = enabled
        if rate_limit is not None:
            changes["rate_limit"] = check_rate_limit(rate_limit)
        updated = replace(channel, **changes)
        self._store.put_channel(updated, create=False)
        return updated

    def delete_channel(self, ns: str, channel_id: str) -> None:
        channel = self._own(ns, channel_id)
        stored = self._store.get_rules(ns)
        using = [r.id for r in (stored.rules if stored else ()) if channel.id in r.channels]
        if using:
            raise ConflictError(
                f"the channel is used by the rules {', '.join(using)}: change them first", {"rules": using}
            )
        self._store.delete_channel(ns, channel.id)

    def rotate_secret(self, ns: str, channel_id: str) -> tuple[Channel, str]:
        """A new signing secret for a webhook channel (shown this once); the previous one keeps signing
        beside it for ``ROTATION_OVERLAP`` (Standard Webhooks' zero-downtime rotation)."""
        channel = self._own(ns, channel_id)
        if channel.kind != "webhook":
            raise ValidationError("only webhook channels have a signing secret", {"kind": channel.kind})
        now = self._clock.now()
        secret = new_webhook_secret()
        live = [s for s in channel.secrets if s.expires_at is None or s.expires_at > now]
        previous = [replace(s, expires_at=s.expires_at or now + ROTATION_OVERLAP) for s in live[:1]]
        updated = replace(
            channel,
            secrets=(WebhookSecret(self._encrypt(ns, channel.id, secret)), *previous),
            updated_at=now,
        )
        self._store.put_channel(updated, create=False)
        return updated, secret

    def test_channel(self, ns: str, channel_id: str, actor: str) -> list[Delivery]:
        """Send a test message now; answers what each send did (the owners channel: one per owner)."""
        channel = self.get_channel(ns, channel_id)
        now = self._clock.now()
        data = {"actor": actor}
        fake = Alert(
            namespace=ns,
            event_id=new_id(now),
            rule_id="test",
            event_type="alert.test",
            severity="info",
            occurred_at=now,
            data=data,
            fingerprint="test",
            group_id="test",
            created_at=now,
        )
        described = Described(
            f"Test message to {channel.name}",
            (f"Sent by {actor} to check the channel. Nothing needs doing.",),
            f"{self._settings.public_url}/v1/namespaces/{ns}/alerts/channels/{channel.id}",
            "View the channel",
        )
        message = AlertMessage(
            ns, "test", "alert.test", "info", fake.event_id, (ListedAlert(fake, described),), 1, True
        )
        out = []
        for key, notification in self._notifications(channel, message, f"test:{ns}:{fake.event_id}:{channel.id}"):
            out.append(self._deliveries.deliver(ns, replace(notification, key=key)))
        if not out:
            raise ValidationError(
                "the owners of this namespace have no email address the platform knows "
                "(it comes from their GitHub account when they log in)",
                {"channel": channel.id},
            )
        return out

    def _own(self, ns: str, channel_id: str) -> Channel:
        if channel_id == OWNERS:
            raise ValidationError("the owners channel is built in: it cannot be changed", {"channel": OWNERS})
        return self.get_channel(ns, channel_id)

    def _target(self, ns: str, channel_id: str, kind: ChannelKind, target: str) -> tuple[str, str]:
        """(what is stored, what is shown) of a checked target: 422 naming ``target`` when it is not valid."""
        if kind == "email":
            clean = check_email(target)
            return clean, clean
        if kind == "sms":
            clean = check_phone(target)
            return clean, clean
        if kind == "slack":
            clean = check_slack_url(target, self._settings.local, self._check_url)
            return self._encrypt(ns, channel_id, clean), mask_slack(clean)
        if kind == "webhook":
            clean = check_webhook_url(target, self._check_url)
            return clean, clean
        raise field_error("kind", "one of email, sms, slack, webhook")

    def _encrypt(self, ns: str, channel_id: str, plaintext: str) -> str:
        return self._encryptor.encrypt(plaintext, {"namespace": ns, "channel": channel_id})

    def _decrypt(self, ns: str, channel_id: str, ciphertext: str) -> str:
        return self._encryptor.decrypt(ciphertext, {"namespace": ns, "channel": channel_id})

    # ================================================================== rules

    def rules(self, ns: str) -> RuleSet:
        """The namespace's rules, or the defaults (version 0) while it has none of its own."""
        return self._store.get_rules(ns) or RuleSet(ns, DEFAULT_RULES)

    def put_rules(self, ns: str, rules: Sequence[Mapping[str, Any]], actor: str) -> RuleSet:
        current = self.rules(ns)
        channel_ids = {c.id for c in self._store.list_channels(ns)}
        checked = check_rules(rules, channel_ids)
        return self._store.put_rules(
            RuleSet(ns, checked, current.version + 1, self._clock.now(), actor), expected_version=current.version
        )

    # ================================================================== the pipeline

    def handle_event(self, event: Event) -> Handled:
        """Alerts for one event from the bus (see the module's docstring)."""
        handled = Handled()
        if event.type not in ALERTABLE:
            handled.ignored = f"not an alerting event: {event.type}"
            return handled
        known = EVENT_TYPES.get(event.type, 1)
        if event.version != known:
            # docs/events.md: a version the consumer does not know fails (to the dead-letter queue)
            raise ValidationError(
                f"{event.type} version {event.version} is not one the notifier reads (it reads {known})",
                {"type": event.type, "version": event.version},
            )
        if event.namespace is None:
            if not self._settings.platform_emails:
                handled.ignored = "a platform-wide event and no PLATFORM_ALERT_EMAILS"
                return handled
            ns, rules = PLATFORM, PLATFORM_RULES
        else:
            ns, rules = event.namespace, self.rules(event.namespace).rules
        for rule in rules:
            if rule.matches(event.type):
                self._fire(ns, rule, event, handled)
        return handled

    def _fire(self, ns: str, rule: Rule, event: Event, handled: Handled) -> None:
        now = self._clock.now()
        alert = Alert(
            namespace=ns,
            event_id=event.id,
            rule_id=rule.id,
            event_type=event.type,
            severity=rule.severity,
            occurred_at=event.occurred_at,
            data=_small(event.data),
            fingerprint=fingerprint(event.type, event.namespace, event.data, event.id),
            group_id="",
            created_at=now,
            last_seen_at=now,
        )
        dedup_until = now + timedelta(seconds=rule.repeat_interval)
        closed: str | None = None  # a group found flushed before its time (its flush came a little early)
        for _ in range(5):
            pointer = self._store.open_group(ns, rule.id, event.type)
            joinable = pointer is not None and pointer.flush_at > now and pointer.group_id != closed
            try:
                if joinable and pointer is not None:
                    placed = replace(alert, group_id=pointer.group_id)
                    self._store.add_alert(
                        placed,
                        dedup_until,
                        join=pointer,
                        new_group=None,
                        replaces=None,
                        events=[self._fired(placed, rule, event.namespace)],
                    )
                    handled.alerts.append(placed.id)
                    return
                group = AlertGroup(
                    id=new_id(now),
                    namespace=ns,
                    rule_id=rule.id,
                    event_type=event.type,
                    severity=rule.severity,
                    channel_ids=rule.channels,
                    alert_ids=(),
                    opened_at=now,
                    flush_at=now + timedelta(seconds=rule.group_window),
                )
                placed = replace(alert, group_id=group.id)
                if rule.group_window > 0:
                    # first: once the group is written, its flush is sure to come (a flush of a group
                    # that was never written finds nothing)
                    self._queues.send(
                        TIMERS,
                        {"alerts": "flush", "namespace": ns, "group_id": group.id},
                        delay_seconds=rule.group_window,
                    )
                self._store.add_alert(
                    placed,
                    dedup_until,
                    join=None,
                    new_group=replace(group, alert_ids=(placed.id,)),
                    replaces=pointer.group_id if pointer is not None else None,
                    events=[self._fired(placed, rule, event.namespace)],
                )
                handled.alerts.append(placed.id)
                if rule.group_window == 0:
                    self.flush(ns, group.id)
                return
            except DuplicateAlert as dup:
                if dup.alert_id is not None and dup.alert_id != alert.id:
                    self._store.seen_again(ns, dup.alert_id, now)
                    handled.repeats.append(dup.alert_id)
                return
            except GroupMoved:
                if joinable and pointer is not None:
                    closed = pointer.group_id  # not open any more: the next try opens a new group
                continue
        raise ConflictError("the alert's group kept changing", {"rule": rule.id, "type": event.type})

    def _fired(self, alert: Alert, rule: Rule, namespace: str | None) -> Event:
        return Event.create(
            "alert.fired",
            namespace,
            alert.created_at,
            {
                "alert_id": alert.id,
                "rule_id": rule.id,
                "source_event_id": alert.event_id,
                "source_event_type": alert.event_type,
                "severity": alert.severity,
                "channel_ids": list(rule.channels),
                "group_key": alert.group_id,
            },
        )

    def flush(self, ns: str, group_id: str) -> dict[str, str]:
        """Close the group and send its message to each of its channels; answers each channel's status.
        Safe to run again (a redelivered flush message): what was sent is not sent again."""
        group, flushed_now = self._store.close_group(ns, group_id, self._clock.now())
        if group is None:
            return {}
        return self.deliver_group(group, fresh=flushed_now)

    def retry(self, ns: str, group_id: str, channel_id: str) -> dict[str, str]:
        """A delayed retry of one channel's message(s)."""
        group = self._store.group(ns, group_id)
        if group is None or group.status != "flushed":
            return {}
        return self.deliver_group(group, only=channel_id)

    def deliver_group(self, group: AlertGroup, only: str | None = None, fresh: bool = False) -> dict[str, str]:
        """Send the group to each channel (``only``: one of them). ``fresh``: this call just flushed it, so
        nothing was recorded for any channel yet."""
        statuses: dict[str, str] = {}
        errors: list[Exception] = []
        recorded = {} if fresh else {c.channel_id: c for c in self._store.group_channels(group.namespace, group.id)}
        wanted = [c for c in group.channel_ids if only is None or c == only]
        channels = self._channels_for(group.namespace, wanted)
        message: AlertMessage | None = None
        for channel_id in group.channel_ids:
            if only is not None and channel_id != only:
                continue
            try:
                if message is None:
                    message = self._message(group)
                statuses[channel_id] = self._deliver_channel(
                    group, channel_id, channels.get(channel_id), recorded.get(channel_id), message
                )
            except Exception as e:  # one channel never holds up the others; the message is retried
                from chalicelib.logs import get_logger

                get_logger().exception(
                    "an alert channel failed", extra={"group_id": group.id, "channel_id": channel_id}
                )
                statuses[channel_id] = f"error: {type(e).__name__}"
                errors.append(e)
        if errors:
            raise errors[0]
        return statuses

    def _deliver_channel(
        self,
        group: AlertGroup,
        channel_id: str,
        channel: Channel | None,
        recorded: GroupChannel | None,
        message: AlertMessage,
    ) -> str:
        ns = group.namespace
        now = self._clock.now()
        notifications: list[tuple[str, Notification]] = []
        if channel is not None and channel.enabled:
            base = f"alert:{'platform' if ns == PLATFORM else ns}:{group.id}:{channel.id}"
            notifications = list(self._notifications(channel, message, base))
        if recorded is None:
            if channel is None:
                plan = GroupChannel(channel_id, "email", (), skipped="the channel no longer exists")
            elif not channel.enabled:
                plan = GroupChannel(channel_id, channel.kind, (), skipped="the channel is disabled")
            elif not notifications:
                plan = GroupChannel(channel_id, channel.kind, (), skipped="no address to send to")
            else:
                plan = GroupChannel(channel_id, channel.kind, tuple(k for k, _ in notifications))
            recorded = self._store.start_channel(
                ns, group.id, plan, channel.rate_limit if channel is not None else 1, now
            )
        if recorded.skipped:
            return "skipped"
        by_key = dict(notifications)
        outcomes: list[str] = []
        retry_in: list[int] = []
        for key in recorded.keys:
            notification = by_key.get(key)
            if notification is None:  # an owner left, or the channel was deleted, since the group started
                continue
            delivery = self._deliveries.deliver(ns, replace(notification, key=key))
            outcomes.append(delivery.status)
            delay = self._after(group, channel_id, key, delivery, recorded)
            if delay is not None:
                retry_in.append(delay)
        if retry_in:
            # one message for the channel, when the latest of its deliveries may go again
            self._queues.send(
                TIMERS,
                {"alerts": "retry", "namespace": ns, "group_id": group.id, "channel_id": channel_id},
                delay_seconds=max(retry_in),
            )
            return "retrying"
        worst = [s for s in ("failed", "refused", "unknown", "sending") if s in outcomes]
        return worst[0] if worst else "sent"

    def _after(
        self, group: AlertGroup, channel_id: str, key: str, delivery: Delivery, recorded: GroupChannel
    ) -> int | None:
        """Seconds until a delivery that surely did not arrive may go again (or one in flight has
        settled); None when it is done. One given up is reported, once (``alert.delivery_failed``)."""
        if delivery.status == "failed" and delivery.retryable:
            attempts = len(delivery.attempts)
            return min(MAX_DELAY, BACKOFF_SECONDS[min(attempts, len(BACKOFF_SECONDS)) - 1])
        if delivery.status == "sending":
            # another attempt holds the lease: look again when it has ended (an attempt whose sender
            # died is then recorded as unknown, never sent again)
            expires = delivery.lease_expires_at or self._clock.now()
            return max(1, min(MAX_DELAY, int((expires - self._clock.now()).total_seconds()) + 1))
        if delivery.status in ("failed", "refused") and key not in recorded.failure_reported:
            event = Event.create(
                "alert.delivery_failed",
                None if group.namespace == PLATFORM else group.namespace,
                self._clock.now(),
                {
                    "alert_id": group.alert_ids[0] if group.alert_ids else None,
                    "group_id": group.id,
                    "channel_id": channel_id,
                    "channel_type": delivery.channel,
                    "attempts": len(delivery.attempts),
                    "last_error": delivery.error,
                },
            )
            self._store.report_failure(group.namespace, group.id, channel_id, key, event)
        return None

    def _channels_for(self, ns: str, channel_ids: Sequence[str]) -> dict[str, Channel]:
        """The channels as they are now (one read for the stored ones); a deleted one is missing."""
        now = self._clock.now()
        out = self._store.channels(ns, [c for c in channel_ids if c not in (OWNERS, ADMINS)])
        if OWNERS in channel_ids:
            out[OWNERS] = builtin_owners(ns, now)
        if ADMINS in channel_ids:
            out[ADMINS] = replace(builtin_owners(ns, now), id=ADMINS, name="the platform admins")
        return out

    def _notifications(self, channel: Channel, message: AlertMessage, base: str) -> list[tuple[str, Notification]]:
        """(delivery key, notification) for each address of the channel."""
        renderer = self._renderer()
        rendered = renderer.render(channel.kind, message)
        ns = channel.namespace
        if channel.id == OWNERS:
            return [(f"{base}:{uid}", replace(rendered, target=address)) for uid, address in self._owner_addresses(ns)]
        if channel.id == ADMINS:
            return [(f"{base}:{i}", replace(rendered, target=a)) for i, a in enumerate(self._settings.platform_emails)]
        if channel.kind == "slack":
            return [(base, replace(rendered, target=self._decrypt(ns, channel.id, channel.target)))]
        if channel.kind == "webhook":
            now = self._clock.now()
            keys = tuple(
                self._decrypt(ns, channel.id, s.ciphertext)
                for s in channel.secrets
                if s.expires_at is None or s.expires_at > now
            )
            return [(base, replace(rendered, target=channel.target, signing_secrets=keys))]
        return [(base, replace(rendered, target=channel.target))]

    def _owner_addresses(self, ns: str) -> list[tuple[int, str]]:
        out = []
        for member in self._members.list(ns):
            if member.role != "owner":
                continue
            account = self._accounts.get(member.uid)
            if account is not None and account.email:
                out.append((member.uid, account.email))
        return out

    def _message(self, group: AlertGroup) -> AlertMessage:
        alerts = self._store.alerts(group.namespace, group.alert_ids[:MAX_LISTED])
        namespace = None if group.namespace == PLATFORM else group.namespace
        return AlertMessage(
            namespace=namespace,
            rule_id=group.rule_id,
            event_type=group.event_type,
            severity=group.severity,
            group_id=group.id,
            alerts=tuple(ListedAlert(a, self._describe(a)) for a in alerts),
            total=len(group.alert_ids),
        )

    def _describe(self, alert: Alert) -> Described:
        namespace = None if alert.namespace == PLATFORM else alert.namespace
        return describe(alert.event_type, namespace, alert.data, self._settings.public_url)

    # ================================================================== history

    def list_alerts(self, ns: str, limit: int = 50, before: str | None = None) -> list[AlertView]:
        """The namespace's alerts, newest first, each with every channel's status, attempts and last error."""
        alerts = self._store.list_alerts(ns, limit, before)
        group_ids = list(dict.fromkeys(a.group_id for a in alerts))
        groups = {g.id: g for g in self._store.groups(ns, group_ids)}
        channels: dict[str, list[ChannelStatus]] = {}
        for gid in group_ids:
            group = groups.get(gid)
            if group is None:
                continue
            channels[gid] = self._statuses(group)
        out = []
        for a in alerts:
            group = groups.get(a.group_id)
            out.append(
                AlertView(
                    alert=a,
                    described=self._describe(a),
                    group_status=group.status if group else "unknown",
                    flush_at=group.flush_at if group else None,
                    channels=tuple(channels.get(a.group_id, ())),
                )
            )
        return out

    def _statuses(self, group: AlertGroup) -> list[ChannelStatus]:
        recorded = {c.channel_id: c for c in self._store.group_channels(group.namespace, group.id)}
        out = []
        for channel_id in group.channel_ids:
            rec = recorded.get(channel_id)
            if rec is None:
                out.append(ChannelStatus(channel_id, "", "pending", None, 0, None, None, None))
                continue
            if rec.skipped:
                out.append(ChannelStatus(channel_id, rec.kind, "skipped", None, 0, rec.skipped, None, None))
                continue
            for key in rec.keys:
                d = self._deliveries.get(group.namespace, key)
                if d is None:
                    out.append(ChannelStatus(channel_id, rec.kind, "pending", None, 0, None, None, None))
                    continue
                out.append(
                    ChannelStatus(
                        channel_id,
                        rec.kind,
                        d.status,
                        d.target,
                        len(d.attempts),
                        d.error,
                        d.provider_id,
                        d.updated_at,
                    )
                )
        return out


def new_webhook_secret() -> str:
    """``whsec_`` and 32 random bytes in base64: the Standard Webhooks secret format."""
    import base64

    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def _small(data: Mapping[str, Any]) -> dict[str, Any]:
    """The event's data as kept on the alert: scalars and short strings (events hold ids and small
    values only: docs/events.md)."""
    out: dict[str, Any] = {}
    for k, v in data.items():
        if isinstance(v, bool | int | float) or v is None:
            out[k] = v
        elif isinstance(v, str):
            out[k] = v[:500]
        else:
            out[k] = json.loads(json.dumps(v, default=str))
    return out
