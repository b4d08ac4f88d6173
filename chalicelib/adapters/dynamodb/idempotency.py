"""Idempotency keys of retryable POST requests on the single table (24-hour windows)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import PutError

from chalicelib.adapters.dynamodb.base import BaseItem, condition_failed
from chalicelib.domain.clock import epoch_seconds

WINDOW = timedelta(hours=24)
# A first run that never finished (its Lambda timed out) stops blocking retries after its lease: the
# function's remaining time when it began (chalicelib/api/idempotency.py); this one without a context.
LEASE = timedelta(minutes=5)


class IdempotencyItem(BaseItem, discriminator="IdempotencyRecord"):
    fingerprint = UnicodeAttribute()
    status = UnicodeAttribute()  # in_progress | done
    response_status = NumberAttribute(null=True)
    response_body = UnicodeAttribute(null=True)

    @staticmethod
    def key(key_hash: str) -> tuple[str, str]:
        return f"IDEMP#{key_hash}", "IDEMP"


class DynamoIdempotencyStore:
    def begin(
        self, key_hash: str, fingerprint: str, now: datetime, lease: timedelta | None = None
    ) -> tuple[Literal["new", "in_progress", "done", "mismatch"], int, str]:
        pk, sk = IdempotencyItem.key(key_hash)
        item = IdempotencyItem(
            PK=pk,
            SK=sk,
            fingerprint=fingerprint,
            status="in_progress",
            expires_at=epoch_seconds(now + (lease or LEASE)),
            created_at=now,
        )
        try:
            item.save(condition=IdempotencyItem.absent_or_expired(now))
            return "new", 0, ""
        except PutError as e:
            if not condition_failed(e):
                raise
        found = IdempotencyItem.get(pk, sk, consistent_read=True)
        if found.fingerprint != fingerprint:
            return "mismatch", 0, ""
        if found.status != "done":
            return "in_progress", 0, ""
        return "done", int(found.response_status or 200), found.response_body or ""

    def finish(self, key_hash: str, status: int, body: str, now: datetime) -> None:
        pk, sk = IdempotencyItem.key(key_hash)
        IdempotencyItem(PK=pk, SK=sk).update(
            actions=[
                IdempotencyItem.status.set("done"),
                IdempotencyItem.response_status.set(status),
                IdempotencyItem.response_body.set(body),
                IdempotencyItem.expires_at.set(epoch_seconds(now + WINDOW)),
            ],
            condition=IdempotencyItem.status == "in_progress",
        )

    def release(self, key_hash: str) -> None:
        IdempotencyItem(*IdempotencyItem.key(key_hash)).delete()
