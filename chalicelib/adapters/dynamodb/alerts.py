"""Alerts on the single table: channels and rules (``NS#<ns>``), and in a partition of their own
(``NS#<ns>#ALERTS``) the alerts, their dedup claims, groups, the open-group pointers, what each group
sends to each channel, and the channels' rate counters. Keys: docs/data-model.md.

An alert, its fingerprint's claim and its place in a group are one transaction (with its
``alert.fired`` outbox event); a group's record of a channel and the rate slot it takes are another."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from pynamodb.attributes import BooleanAttribute, ListAttribute, NumberAttribute, UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.exceptions import DeleteError, PutError, UpdateError

from chalicelib.adapters.dynamodb.base import BaseItem, condition_failed
from chalicelib.adapters.dynamodb.outbox import write_with_events
from chalicelib.domain.alerts import (
    RETENTION_DAYS,
    Alert,
    AlertGroup,
    Channel,
    ChannelKind,
    Rule,
    RuleSet,
    Severity,
    WebhookSecret,
)
from chalicelib.domain.clock import epoch_seconds
from chalicelib.domain.errors import ConditionFailedError, ConflictError, NotFoundError
from chalicelib.domain.events import Event
from chalicelib.domain.services.alerts import DuplicateAlert, GroupChannel, GroupMoved, OpenGroup

RETENTION = timedelta(days=RETENTION_DAYS)


def _alerts_pk(ns: str) -> str:
    return f"NS#{ns}#ALERTS"


def _retained(at: datetime) -> int:
    return epoch_seconds(at + RETENTION)


class AlertChannelItem(BaseItem, discriminator="AlertChannel"):
    ns = UnicodeAttribute()
    channel_id = UnicodeAttribute()
    kind = UnicodeAttribute()
    name = UnicodeAttribute()
    target = UnicodeAttribute()  # a Slack URL encrypted
    display = UnicodeAttribute()
    enabled = BooleanAttribute(default=True)
    rate_limit = NumberAttribute()
    secrets = UnicodeAttribute(default="[]")  # JSON: [{ciphertext, expires_at}], encrypted secrets
    created_by = UnicodeAttribute()
    updated_at = UTCDateTimeAttribute()

    @staticmethod
    def key(ns: str, channel_id: str) -> tuple[str, str]:
        return f"NS#{ns}", f"ALERTCHANNEL#{channel_id}"

    @classmethod
    def of(cls, c: Channel) -> AlertChannelItem:
        pk, sk = cls.key(c.namespace, c.id)
        return cls(
            PK=pk,
            SK=sk,
            ns=c.namespace,
            channel_id=c.id,
            kind=c.kind,
            name=c.name,
            target=c.target,
            display=c.display,
            enabled=c.enabled,
            rate_limit=c.rate_limit,
            secrets=json.dumps(
                [
                    {"ciphertext": s.ciphertext, "expires_at": s.expires_at.isoformat() if s.expires_at else None}
                    for s in c.secrets
                ]
            ),
            created_by=c.created_by,
            created_at=c.created_at,
            updated_at=c.updated_at,
        )

    def to_domain(self) -> Channel:
        assert self.created_at is not None
        return Channel(
            id=self.channel_id,
            namespace=self.ns,
            kind=cast(ChannelKind, self.kind),
            name=self.name,
            target=self.target,
            display=self.display,
            created_at=self.created_at,
            created_by=self.created_by,
            updated_at=self.updated_at,
            enabled=bool(self.enabled),
            rate_limit=int(self.rate_limit),
            secrets=tuple(
                WebhookSecret(s["ciphertext"], datetime.fromisoformat(s["expires_at"]) if s["expires_at"] else None)
                for s in json.loads(self.secrets or "[]")
            ),
        )


class AlertRulesItem(BaseItem, discriminator="AlertRules"):
    ns = UnicodeAttribute()
    rules = UnicodeAttribute()  # JSON: the list of rules
    version = NumberAttribute()
    updated_at = UTCDateTimeAttribute()
    updated_by = UnicodeAttribute()

    @staticmethod
    def key(ns: str) -> tuple[str, str]:
        return f"NS#{ns}", "ALERTRULES"

    def to_domain(self) -> RuleSet:
        return RuleSet(
            namespace=self.ns,
            rules=tuple(
                Rule(
                    id=r["id"],
                    events=tuple(r["events"]),
                    channels=tuple(r["channels"]),
                    severity=r["severity"],
                    repeat_interval=int(r["repeat_interval"]),
                    group_window=int(r["group_window"]),
                    enabled=bool(r["enabled"]),
                )
                for r in json.loads(self.rules)
            ),
            version=int(self.version),
            updated_at=self.updated_at,
            updated_by=self.updated_by,
        )


class AlertItem(BaseItem, discriminator="Alert"):
    ns = UnicodeAttribute()
    event_id = UnicodeAttribute()
    rule_id = UnicodeAttribute()
    event_type = UnicodeAttribute()
    severity = UnicodeAttribute()
    occurred_at = UTCDateTimeAttribute()
    data = UnicodeAttribute(default="{}")
    fingerprint = UnicodeAttribute()
    group_id = UnicodeAttribute()
    occurrences = NumberAttribute(default=1)
    last_seen_at = UTCDateTimeAttribute(null=True)

    @staticmethod
    def key(ns: str, event_id: str, rule_id: str) -> tuple[str, str]:
        return _alerts_pk(ns), f"ALERT#{event_id}#{rule_id}"

    @classmethod
    def key_of_id(cls, ns: str, alert_id: str) -> tuple[str, str]:
        event_id, _, rule_id = alert_id.partition(":")
        return cls.key(ns, event_id, rule_id)

    @classmethod
    def of(cls, a: Alert) -> AlertItem:
        pk, sk = cls.key(a.namespace, a.event_id, a.rule_id)
        return cls(
            PK=pk,
            SK=sk,
            ns=a.namespace,
            event_id=a.event_id,
            rule_id=a.rule_id,
            event_type=a.event_type,
            severity=a.severity,
            occurred_at=a.occurred_at,
            data=json.dumps(a.data, default=str),
            fingerprint=a.fingerprint,
            group_id=a.group_id,
            occurrences=a.occurrences,
            last_seen_at=a.last_seen_at,
            created_at=a.created_at,
            expires_at=_retained(a.created_at),
        )

    def to_domain(self) -> Alert:
        assert self.created_at is not None
        return Alert(
            namespace=self.ns,
            event_id=self.event_id,
            rule_id=self.rule_id,
            event_type=self.event_type,
            severity=cast(Severity, self.severity),
            occurred_at=self.occurred_at,
            data=json.loads(self.data or "{}"),
            fingerprint=self.fingerprint,
            group_id=self.group_id,
            created_at=self.created_at,
            occurrences=int(self.occurrences or 1),
            last_seen_at=self.last_seen_at,
        )


class AlertDedupItem(BaseItem, discriminator="AlertDedup"):
    """The same alert (a rule and a fingerprint) claimed until ``expires_at`` (the rule's repeat interval)."""

    alert_id = UnicodeAttribute()

    @staticmethod
    def key(ns: str, rule_id: str, fingerprint: str) -> tuple[str, str]:
        return _alerts_pk(ns), f"DEDUP#{rule_id}#{fingerprint}"


class AlertGroupItem(BaseItem, discriminator="AlertGroup"):
    ns = UnicodeAttribute()
    group_id = UnicodeAttribute()
    rule_id = UnicodeAttribute()
    event_type = UnicodeAttribute()
    severity = UnicodeAttribute()
    channel_ids = ListAttribute(of=UnicodeAttribute, default=list)
    alert_ids = ListAttribute(of=UnicodeAttribute, default=list)
    status = UnicodeAttribute()
    opened_at = UTCDateTimeAttribute()
    flush_at = UTCDateTimeAttribute()
    flushed_at = UTCDateTimeAttribute(null=True)

    @staticmethod
    def key(ns: str, group_id: str) -> tuple[str, str]:
        return _alerts_pk(ns), f"GROUP#{group_id}"

    @classmethod
    def of(cls, g: AlertGroup) -> AlertGroupItem:
        pk, sk = cls.key(g.namespace, g.id)
        return cls(
            PK=pk,
            SK=sk,
            ns=g.namespace,
            group_id=g.id,
            rule_id=g.rule_id,
            event_type=g.event_type,
            severity=g.severity,
            channel_ids=list(g.channel_ids),
            alert_ids=list(g.alert_ids),
            status=g.status,
            opened_at=g.opened_at,
            flush_at=g.flush_at,
            created_at=g.opened_at,
            expires_at=_retained(g.opened_at),
        )

    def to_domain(self) -> AlertGroup:
        return AlertGroup(
            id=self.group_id,
            namespace=self.ns,
            rule_id=self.rule_id,
            event_type=self.event_type,
            severity=cast(Severity, self.severity),
            channel_ids=tuple(cast(list[str], self.channel_ids or [])),
            alert_ids=tuple(cast(list[str], self.alert_ids or [])),
            opened_at=self.opened_at,
            flush_at=self.flush_at,
            status="flushed" if self.status == "flushed" else "open",
            flushed_at=self.flushed_at,
        )


class AlertOpenGroupItem(BaseItem, discriminator="AlertOpenGroup"):
    """Which group a rule's alerts of one type join now (until its ``flush_at``)."""

    group_id = UnicodeAttribute()
    flush_at = UTCDateTimeAttribute()

    @staticmethod
    def key(ns: str, rule_id: str, event_type: str) -> tuple[str, str]:
        return _alerts_pk(ns), f"OPEN#{rule_id}#{event_type}"


class AlertGroupChannelItem(BaseItem, discriminator="AlertGroupChannel"):
    """What a flushed group sends to one channel: the delivery keys, or why nothing."""

    kind = UnicodeAttribute()
    keys = ListAttribute(of=UnicodeAttribute, default=list)
    skipped = UnicodeAttribute(null=True)
    failure_reported = ListAttribute(of=UnicodeAttribute, default=list)
    channel_id = UnicodeAttribute()

    @staticmethod
    def key(ns: str, group_id: str, channel_id: str) -> tuple[str, str]:
        return _alerts_pk(ns), f"GROUPCH#{group_id}#{channel_id}"

    def to_domain(self) -> GroupChannel:
        return GroupChannel(
            channel_id=self.channel_id,
            kind=cast(ChannelKind, self.kind),
            keys=tuple(cast(list[str], self.keys or [])),
            skipped=self.skipped,
            failure_reported=tuple(cast(list[str], self.failure_reported or [])),
        )


class AlertRateItem(BaseItem, discriminator="AlertRate"):
    """Messages a channel started in one hour (its rate limit's counter)."""

    started = NumberAttribute(default=0)

    @staticmethod
    def key(ns: str, channel_id: str, hour: str) -> tuple[str, str]:
        return _alerts_pk(ns), f"RATE#{channel_id}#{hour}"


class DynamoAlertStore:
    # ------------------------------------------------------------------ channels

    def put_channel(self, channel: Channel, *, create: bool) -> None:
        item = AlertChannelItem.of(channel)
        try:
            item.save(condition=AlertChannelItem.PK.does_not_exist() if create else AlertChannelItem.PK.exists())
        except PutError as e:
            if not condition_failed(e):
                raise
            if create:
                raise ConflictError("the channel exists", {"channel": channel.id}) from e
            raise NotFoundError(f"no channel {channel.id!r}", {"channel": channel.id}) from e

    def get_channel(self, namespace: str, channel_id: str) -> Channel | None:
        try:
            return AlertChannelItem.get(*AlertChannelItem.key(namespace, channel_id), consistent_read=True).to_domain()
        except AlertChannelItem.DoesNotExist:
            return None

    def channels(self, namespace: str, channel_ids: Sequence[str]) -> dict[str, Channel]:
        keys = [AlertChannelItem.key(namespace, c) for c in dict.fromkeys(channel_ids)]
        if not keys:
            return {}
        found = AlertChannelItem.batch_get(keys, consistent_read=True)
        return {i.channel_id: i.to_domain() for i in found if isinstance(i, AlertChannelItem)}

    def list_channels(self, namespace: str) -> list[Channel]:
        return [
            i.to_domain()
            for i in AlertChannelItem.query(f"NS#{namespace}", AlertChannelItem.SK.startswith("ALERTCHANNEL#"))
            if isinstance(i, AlertChannelItem)
        ]

    def delete_channel(self, namespace: str, channel_id: str) -> bool:
        pk, sk = AlertChannelItem.key(namespace, channel_id)
        try:
            AlertChannelItem(PK=pk, SK=sk).delete(condition=AlertChannelItem.PK.exists())
        except DeleteError as e:
            if condition_failed(e):
                return False
            raise
        return True

    # ------------------------------------------------------------------ rules

    def get_rules(self, namespace: str) -> RuleSet | None:
        try:
            return AlertRulesItem.get(*AlertRulesItem.key(namespace), consistent_read=True).to_domain()
        except AlertRulesItem.DoesNotExist:
            return None

    def put_rules(self, rules: RuleSet, expected_version: int) -> RuleSet:
        pk, sk = AlertRulesItem.key(rules.namespace)
        assert rules.updated_at is not None and rules.updated_by is not None
        item = AlertRulesItem(
            PK=pk,
            SK=sk,
            ns=rules.namespace,
            rules=json.dumps(
                [
                    {
                        "id": r.id,
                        "events": list(r.events),
                        "channels": list(r.channels),
                        "severity": r.severity,
                        "repeat_interval": r.repeat_interval,
                        "group_window": r.group_window,
                        "enabled": r.enabled,
                    }
                    for r in rules.rules
                ]
            ),
            version=rules.version,
            updated_at=rules.updated_at,
            updated_by=rules.updated_by,
        )
        condition = (
            AlertRulesItem.PK.does_not_exist() if expected_version == 0 else AlertRulesItem.version == expected_version
        )
        try:
            item.save(condition=condition)
        except PutError as e:
            if condition_failed(e):
                raise ConflictError(
                    "the rules changed meanwhile: read them again", {"namespace": rules.namespace}
                ) from e
            raise
        return item.to_domain()

    # ------------------------------------------------------------------ alerts and groups

    def open_group(self, namespace: str, rule_id: str, event_type: str) -> OpenGroup | None:
        try:
            item = AlertOpenGroupItem.get(*AlertOpenGroupItem.key(namespace, rule_id, event_type), consistent_read=True)
        except AlertOpenGroupItem.DoesNotExist:
            return None
        return OpenGroup(item.group_id, item.flush_at)

    def add_alert(
        self,
        alert: Alert,
        dedup_until: datetime,
        *,
        join: OpenGroup | None,
        new_group: AlertGroup | None,
        replaces: str | None,
        events: Sequence[Event],
    ) -> None:
        now = alert.created_at
        pk, sk = AlertDedupItem.key(alert.namespace, alert.rule_id, alert.fingerprint)
        dedup = AlertDedupItem(PK=pk, SK=sk, alert_id=alert.id, created_at=now, expires_at=epoch_seconds(dedup_until))
        puts: list[tuple[Any, Any]] = [
            (dedup, AlertDedupItem.absent_or_expired(now)),
            (AlertItem.of(alert), AlertItem.PK.does_not_exist()),
        ]
        updates: list[tuple[Any, list[Any], Any]] = []
        if new_group is not None:
            ppk, psk = AlertOpenGroupItem.key(alert.namespace, alert.rule_id, alert.event_type)
            pointer = AlertOpenGroupItem(
                PK=ppk, SK=psk, group_id=new_group.id, flush_at=new_group.flush_at, created_at=now
            )
            puts.append((AlertGroupItem.of(new_group), AlertGroupItem.PK.does_not_exist()))
            puts.append(
                (
                    pointer,
                    AlertOpenGroupItem.PK.does_not_exist()
                    if replaces is None
                    else AlertOpenGroupItem.group_id == replaces,
                )
            )
        else:
            assert join is not None
            gpk, gsk = AlertGroupItem.key(alert.namespace, join.group_id)
            updates.append(
                (
                    AlertGroupItem(PK=gpk, SK=gsk),
                    [AlertGroupItem.alert_ids.set(AlertGroupItem.alert_ids.append([alert.id]))],
                    AlertGroupItem.status == "open",
                )
            )
        try:
            write_with_events(puts, events, updates=updates)
        except ConditionFailedError as e:
            failed = set(e.details.get("failed", []))
            if 1 in failed:  # the alert exists: its event came again
                raise DuplicateAlert(alert.id) from e
            if 0 in failed:  # the same alert is claimed within its repeat interval
                holder = AlertDedupItem.get_live(pk, sk, now)
                raise DuplicateAlert(holder.alert_id if holder is not None else None) from e
            raise GroupMoved() from e

    def seen_again(self, namespace: str, alert_id: str, now: datetime) -> None:
        pk, sk = AlertItem.key_of_id(namespace, alert_id)
        try:
            AlertItem(PK=pk, SK=sk).update(
                actions=[AlertItem.occurrences.add(1), AlertItem.last_seen_at.set(now)],
                condition=AlertItem.PK.exists(),
            )
        except UpdateError as e:
            if not condition_failed(e):
                raise

    def close_group(self, namespace: str, group_id: str, now: datetime) -> tuple[AlertGroup | None, bool]:
        pk, sk = AlertGroupItem.key(namespace, group_id)
        item = AlertGroupItem(PK=pk, SK=sk)
        try:
            item.update(
                actions=[AlertGroupItem.status.set("flushed"), AlertGroupItem.flushed_at.set(now)],
                condition=AlertGroupItem.status == "open",
            )
        except UpdateError as e:
            if not condition_failed(e):
                raise
            return self.group(namespace, group_id), False
        return item.to_domain(), True

    def group(self, namespace: str, group_id: str) -> AlertGroup | None:
        try:
            return AlertGroupItem.get(*AlertGroupItem.key(namespace, group_id), consistent_read=True).to_domain()
        except AlertGroupItem.DoesNotExist:
            return None

    def groups(self, namespace: str, group_ids: Sequence[str]) -> list[AlertGroup]:
        keys = [AlertGroupItem.key(namespace, g) for g in dict.fromkeys(group_ids) if g]
        return [i.to_domain() for i in AlertGroupItem.batch_get(keys) if isinstance(i, AlertGroupItem)]

    def alerts(self, namespace: str, alert_ids: Sequence[str]) -> list[Alert]:
        keys = [AlertItem.key_of_id(namespace, a) for a in dict.fromkeys(alert_ids)]
        found = {i.to_domain().id: i.to_domain() for i in AlertItem.batch_get(keys) if isinstance(i, AlertItem)}
        return [found[a] for a in alert_ids if a in found]

    def list_alerts(self, namespace: str, limit: int, before: str | None) -> list[Alert]:
        pk = _alerts_pk(namespace)
        condition: Any
        if before:
            _, sk = AlertItem.key_of_id(namespace, before)
            condition = AlertItem.SK < sk  # "ALERT#" sorts before every other prefix of the partition
        else:
            condition = AlertItem.SK.startswith("ALERT#")
        out = []
        for item in AlertItem.query(pk, condition, scan_index_forward=False, limit=limit):
            if isinstance(item, AlertItem):
                out.append(item.to_domain())
        return out

    # ------------------------------------------------------------------ what groups send

    def group_channels(self, namespace: str, group_id: str) -> list[GroupChannel]:
        return [
            i.to_domain()
            for i in AlertGroupChannelItem.query(
                _alerts_pk(namespace), AlertGroupChannelItem.SK.startswith(f"GROUPCH#{group_id}#"), consistent_read=True
            )
            if isinstance(i, AlertGroupChannelItem)
        ]

    def start_channel(
        self, namespace: str, group_id: str, plan: GroupChannel, rate_limit: int, now: datetime
    ) -> GroupChannel:
        pk, sk = AlertGroupChannelItem.key(namespace, group_id, plan.channel_id)

        def record(p: GroupChannel) -> AlertGroupChannelItem:
            return AlertGroupChannelItem(
                PK=pk,
                SK=sk,
                channel_id=p.channel_id,
                kind=p.kind,
                keys=list(p.keys),
                skipped=p.skipped,
                failure_reported=[],
                created_at=now,
                expires_at=_retained(now),
            )

        if plan.skipped:
            return self._put_once(record(plan), pk, sk)
        hour = now.strftime("%Y-%m-%dT%H")
        rpk, rsk = AlertRateItem.key(namespace, plan.channel_id, hour)
        rate: tuple[Any, list[Any], Any] = (
            AlertRateItem(PK=rpk, SK=rsk),
            [
                AlertRateItem.entity.set(cast(Any, AlertRateItem)),
                AlertRateItem.started.add(1),
                AlertRateItem.expires_at.set(
                    epoch_seconds(now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=2))
                ),
            ],
            AlertRateItem.started.does_not_exist() | (AlertRateItem.started < rate_limit),
        )
        try:
            write_with_events([(record(plan), AlertGroupChannelItem.PK.does_not_exist())], [], updates=[rate])
        except ConditionFailedError as e:
            failed = set(e.details.get("failed", []))
            if 0 in failed:  # started already: answer what the first start recorded
                return self._read_channel(pk, sk)
            limited = GroupChannel(
                plan.channel_id,
                plan.kind,
                (),
                skipped=f"rate limit: at most {rate_limit} messages an hour to this channel",
            )
            return self._put_once(record(limited), pk, sk)
        return plan

    def _put_once(self, item: AlertGroupChannelItem, pk: str, sk: str) -> GroupChannel:
        try:
            item.save(condition=AlertGroupChannelItem.PK.does_not_exist())
        except PutError as e:
            if not condition_failed(e):
                raise
            return self._read_channel(pk, sk)
        return item.to_domain()

    @staticmethod
    def _read_channel(pk: str, sk: str) -> GroupChannel:
        return AlertGroupChannelItem.get(pk, sk, consistent_read=True).to_domain()

    def report_failure(self, namespace: str, group_id: str, channel_id: str, key: str, event: Event) -> bool:
        pk, sk = AlertGroupChannelItem.key(namespace, group_id, channel_id)
        try:
            write_with_events(
                [],
                [event],
                updates=[
                    (
                        AlertGroupChannelItem(PK=pk, SK=sk),
                        [
                            AlertGroupChannelItem.failure_reported.set(
                                AlertGroupChannelItem.failure_reported.append([key])
                            )
                        ],
                        AlertGroupChannelItem.PK.exists() & ~AlertGroupChannelItem.failure_reported.contains(key),
                    )
                ],
            )
        except ConditionFailedError:
            return False
        return True
