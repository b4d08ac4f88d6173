"""The audit log and webhook delivery claims on the single table."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any, Literal, cast

from pynamodb.attributes import NumberAttribute, UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.exceptions import PutError, UpdateError

from chalicelib.adapters.dynamodb.base import BaseItem, condition_failed
from chalicelib.domain.clock import epoch_seconds
from chalicelib.domain.ids import new_id
from chalicelib.domain.model import AuditEntry

DELIVERY_WINDOW = timedelta(days=7)  # longer than GitHub's and Stripe's redelivery windows


class AuditItem(BaseItem, discriminator="AuditEntry"):
    ns = UnicodeAttribute()
    entry_id = UnicodeAttribute()
    at = UTCDateTimeAttribute()
    actor = UnicodeAttribute()
    action = UnicodeAttribute()
    target = UnicodeAttribute()
    outcome = UnicodeAttribute()
    source_ip = UnicodeAttribute(null=True)
    user_agent = UnicodeAttribute(null=True)
    details = UnicodeAttribute(null=True)

    def to_domain(self) -> AuditEntry:
        return AuditEntry(
            namespace=self.ns,
            id=self.entry_id,
            at=self.at,
            actor=self.actor,
            action=self.action,
            target=self.target,
            outcome=self.outcome,
            source_ip=self.source_ip,
            user_agent=self.user_agent,
            details=json.loads(self.details or "{}"),
        )


class DynamoAuditStore:
    def append(self, entry: AuditEntry) -> None:
        ns = entry.namespace
        sk = f"AUDIT#{entry.id}"
        item = AuditItem(
            PK=f"NS#{ns}#AUDIT",
            SK=sk,
            GSI1PK=f"NS#{ns}#AUDIT#ACTOR#{entry.actor}",
            GSI1SK=sk,
            GSI2PK=f"NS#{ns}#AUDIT#ACTION#{entry.action}",
            GSI2SK=sk,
            ns=ns,
            entry_id=entry.id,
            at=entry.at,
            actor=entry.actor,
            action=entry.action,
            target=entry.target,
            outcome=entry.outcome,
            source_ip=entry.source_ip,
            user_agent=(entry.user_agent or "")[:256] or None,
            details=json.dumps(entry.details) if entry.details else None,
            created_at=entry.at,
        )
        try:  # the id is the request's or the event's: a redelivery writes nothing new
            item.save(condition=AuditItem.PK.does_not_exist())
        except PutError as e:
            if not condition_failed(e):
                raise

    def query(
        self, ns_id: str, *, since: datetime | None, actor: str | None, action: str | None, limit: int
    ) -> list[AuditEntry]:
        floor = f"AUDIT#{new_id(since)[:10]}" if since else "AUDIT#"
        items: Any
        if actor:
            items = AuditItem.gsi1.query(
                f"NS#{ns_id}#AUDIT#ACTOR#{actor}",
                floor <= AuditItem.GSI1SK,
                filter_condition=(AuditItem.action == action) if action else None,
                scan_index_forward=False,
                limit=limit,
            )
        elif action:
            items = AuditItem.gsi2.query(
                f"NS#{ns_id}#AUDIT#ACTION#{action}", floor <= AuditItem.GSI2SK, scan_index_forward=False, limit=limit
            )
        else:
            items = AuditItem.query(f"NS#{ns_id}#AUDIT", floor <= AuditItem.SK, scan_index_forward=False, limit=limit)
        return [i.to_domain() for i in items if isinstance(i, AuditItem) and (since is None or i.at >= since)]


class WebhookDeliveryItem(BaseItem, discriminator="WebhookDelivery"):
    source = UnicodeAttribute()
    delivery_id = UnicodeAttribute()
    event = UnicodeAttribute()
    status = UnicodeAttribute()

    @staticmethod
    def key(source: str, delivery_id: str) -> tuple[str, str]:
        return f"WEBHOOK#{source}#{delivery_id}", "DELIVERY"


class DynamoDeliveryStore:
    def claim(self, source: str, delivery_id: str, event: str, now: datetime) -> Literal["received", "enqueued"] | None:
        pk, sk = WebhookDeliveryItem.key(source, delivery_id)
        item = WebhookDeliveryItem(
            PK=pk,
            SK=sk,
            source=source,
            delivery_id=delivery_id,
            event=event,
            status="received",
            created_at=now,
            expires_at=epoch_seconds(now + DELIVERY_WINDOW),
        )
        try:
            item.save(condition=WebhookDeliveryItem.absent_or_expired(now))
            return None
        except PutError as e:
            if not condition_failed(e):
                raise
        existing = WebhookDeliveryItem.get(pk, sk, consistent_read=True)
        return cast(Literal["received", "enqueued"], existing.status)

    def mark_enqueued(self, source: str, delivery_id: str) -> None:
        pk, sk = WebhookDeliveryItem.key(source, delivery_id)
        WebhookDeliveryItem(PK=pk, SK=sk).update(actions=[WebhookDeliveryItem.status.set("enqueued")])

    def status(self, source: str, delivery_id: str, now: datetime) -> Literal["received", "enqueued"] | None:
        item = WebhookDeliveryItem.get_live(*WebhookDeliveryItem.key(source, delivery_id), now)
        return None if item is None else cast(Literal["received", "enqueued"], item.status)

    def note_redelivery(self, source: str, delivery_id: str, now: datetime, max_attempts: int) -> bool:
        pk, sk = RedeliveryItem.key(source, delivery_id)
        item = RedeliveryItem.get_live(pk, sk, now)
        try:
            if item is None:  # the first, or the window of earlier ones has passed
                RedeliveryItem(
                    PK=pk, SK=sk, attempts=1, created_at=now, expires_at=epoch_seconds(now + DELIVERY_WINDOW)
                ).save(condition=RedeliveryItem.absent_or_expired(now))
            else:
                item.update(
                    actions=[RedeliveryItem.attempts.add(1)],
                    condition=(RedeliveryItem.attempts == int(item.attempts))
                    & (RedeliveryItem.attempts < max_attempts)
                    & (RedeliveryItem.expires_at >= epoch_seconds(now)),
                )
        except (PutError, UpdateError) as e:
            if condition_failed(e):
                return False  # the cap, or a concurrent run counted it
            raise
        return True


class RedeliveryItem(BaseItem, discriminator="Redelivery"):
    """Redeliveries the platform asked of the sender for one of its delivery ids (GitHub's numeric id)."""

    attempts = NumberAttribute()

    @staticmethod
    def key(source: str, delivery_id: str) -> tuple[str, str]:
        return f"REDELIVERY#{source}#{delivery_id}", "REDELIVERY"
