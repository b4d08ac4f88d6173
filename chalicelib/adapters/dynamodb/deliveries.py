"""Notification delivery records on the single table (``NotificationDelivery``): one item per
delivery key, its attempts in it, claimed and settled with conditional writes
(chalicelib/domain/services/delivery.py). Keys: docs/data-model.md."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, cast

from pynamodb.attributes import NumberAttribute, UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.exceptions import PutError

from chalicelib.adapters.dynamodb.base import BaseItem, condition_failed
from chalicelib.domain.clock import epoch_seconds
from chalicelib.domain.errors import ConditionFailedError
from chalicelib.domain.services.delivery import RETENTION, Attempt, Delivery, DeliveryStatus


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


class NotificationDeliveryItem(BaseItem, discriminator="NotificationDelivery"):
    ns = UnicodeAttribute()
    delivery_key = UnicodeAttribute()
    channel = UnicodeAttribute()
    target = UnicodeAttribute()
    status = UnicodeAttribute()
    attempt_count = NumberAttribute()
    attempts = UnicodeAttribute(default="[]")  # JSON: [{number, started_at, outcome, ended_at, error, provider_id}]
    provider_id = UnicodeAttribute(null=True)
    error = UnicodeAttribute(null=True)
    updated_at = UTCDateTimeAttribute()

    @staticmethod
    def key_of(ns: str, key: str) -> tuple[str, str]:
        return f"NS#{ns}#DELIVERY#{key}", "DELIVERY"

    @classmethod
    def of(cls, d: Delivery) -> NotificationDeliveryItem:
        pk, sk = cls.key_of(d.namespace, d.key)
        return cls(
            PK=pk,
            SK=sk,
            GSI1PK=f"NS#{d.namespace}#DELIVERIES",
            GSI1SK=f"{d.attempts[-1].started_at.isoformat()}#{d.key}",
            ns=d.namespace,
            delivery_key=d.key,
            channel=d.channel,
            target=d.target,
            status=d.status,
            attempt_count=len(d.attempts),
            attempts=json.dumps([_attempt_json(a) for a in d.attempts]),
            provider_id=d.provider_id,
            error=d.error,
            created_at=d.created_at,
            updated_at=d.updated_at,
            # retention only: a key is never reused (it names its report's period or its alert's event)
            expires_at=epoch_seconds(d.created_at + RETENTION),
        )

    def to_domain(self) -> Delivery:
        attempts = tuple(
            Attempt(
                number=int(a["number"]),
                started_at=datetime.fromisoformat(a["started_at"]),
                outcome=cast(DeliveryStatus, a["outcome"]),
                ended_at=_dt(a.get("ended_at")),
                error=a.get("error"),
                provider_id=a.get("provider_id"),
            )
            for a in json.loads(self.attempts or "[]")
        )
        return Delivery(
            namespace=self.ns,
            key=self.delivery_key,
            channel=self.channel,
            target=self.target,
            status=cast(DeliveryStatus, self.status),
            attempts=attempts,
            created_at=self.created_at,
            updated_at=self.updated_at,
            provider_id=self.provider_id,
            error=self.error,
        )


def _attempt_json(a: Attempt) -> dict[str, Any]:
    return {
        "number": a.number,
        "started_at": a.started_at.isoformat(),
        "outcome": a.outcome,
        "ended_at": a.ended_at.isoformat() if a.ended_at else None,
        "error": a.error,
        "provider_id": a.provider_id,
    }


class DynamoDeliveryLog:
    def get(self, namespace: str, key: str) -> Delivery | None:
        pk, sk = NotificationDeliveryItem.key_of(namespace, key)
        try:
            return NotificationDeliveryItem.get(pk, sk, consistent_read=True).to_domain()
        except NotificationDeliveryItem.DoesNotExist:
            return None

    def claim(self, delivery: Delivery, previous_attempts: int) -> None:
        item = NotificationDeliveryItem.of(delivery)
        if previous_attempts == 0:
            condition = NotificationDeliveryItem.absent_or_expired(delivery.updated_at)
        else:
            condition = (NotificationDeliveryItem.status == "failed") & (
                NotificationDeliveryItem.attempt_count == previous_attempts
            )
        self._save(item, condition)

    def settle(self, delivery: Delivery, expected_status: DeliveryStatus = "sending") -> None:
        item = NotificationDeliveryItem.of(delivery)
        condition = (NotificationDeliveryItem.status == expected_status) & (
            NotificationDeliveryItem.attempt_count == len(delivery.attempts)
        )
        self._save(item, condition)

    def list(self, namespace: str, limit: int = 50) -> list[Delivery]:
        return [
            i.to_domain()
            for i in NotificationDeliveryItem.gsi1.query(
                f"NS#{namespace}#DELIVERIES", scan_index_forward=False, limit=limit
            )
            if isinstance(i, NotificationDeliveryItem)
        ]

    @staticmethod
    def _save(item: NotificationDeliveryItem, condition: Any) -> None:
        try:
            item.save(condition=condition)
        except PutError as e:
            if condition_failed(e):
                raise ConditionFailedError("the delivery changed meanwhile", {"key": item.delivery_key}) from e
            raise
