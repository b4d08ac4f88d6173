"""The transactional outbox: a state change and its events are written in one TransactWrite; the
relay (functions/outbox_relay) later pages the pending ones through GSI1 and puts them on the bus."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import timedelta

from pynamodb.attributes import UnicodeAttribute
from pynamodb.exceptions import TransactWriteError, UpdateError
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from chalicelib.adapters.dynamodb.base import BaseItem, condition_failed
from chalicelib.domain.clock import Clock, epoch_seconds
from chalicelib.domain.errors import ConditionFailedError
from chalicelib.domain.events import Event

PENDING = "OUTBOX#PENDING"
KEEP_SENT_FOR = timedelta(days=7)


class OutboxItem(BaseItem, discriminator="Outbox"):
    payload = UnicodeAttribute()
    status = UnicodeAttribute(default="pending")

    @staticmethod
    def key(event_id: str) -> tuple[str, str]:
        return f"OUTBOX#{event_id}", "OUTBOX"

    @classmethod
    def of(cls, event: Event) -> OutboxItem:
        pk, sk = cls.key(event.id)
        return cls(
            PK=pk,
            SK=sk,
            GSI1PK=PENDING,
            GSI1SK=f"{event.occurred_at.isoformat()}#{event.id}",
            payload=event.to_json(),
            created_at=event.occurred_at,
        )

    def event(self) -> Event:
        return Event.from_dict(json.loads(self.payload))


def write_with_events(
    puts: Iterable[tuple[Model, object | None]],
    events: Sequence[Event],
    *,
    updates: Iterable[tuple[Model, list[object], object | None]] = (),
    deletes: Iterable[tuple[Model, object | None]] = (),
    checks: Iterable[tuple[type[Model], str, str, object]] = (),
    client_request_token: str | None = None,
) -> None:
    """Write ``puts`` (item, condition), ``updates`` (item, actions, condition), ``deletes`` (item,
    condition) and ``checks`` (model, PK, SK, condition) together with one outbox item per event, all
    or nothing (at most 100 items: DynamoDB's limit). A lost condition raises ConditionFailedError and writes
    nothing (the error's ``details["failed"]`` are positions: checks, deletes, puts, updates, then
    the outbox items). ``client_request_token`` makes a retried transaction idempotent for 10 minutes."""
    # The table models' own connection: its botocore client is made once per process (a new Connection
    # here made a new botocore session and client for every transaction, some 100-300 ms each), and it
    # has the models' timeouts and retries.
    connection = BaseItem._get_connection().connection
    try:
        with TransactWrite(connection=connection, client_request_token=client_request_token) as tx:
            for item, condition in puts:
                tx.save(item, condition=condition)  # type: ignore[arg-type]
            for item, actions, condition in updates:
                tx.update(item, actions=actions, condition=condition)  # type: ignore[arg-type]
            for item, condition in deletes:
                tx.delete(item, condition=condition, add_version_condition=False)  # type: ignore[arg-type]
            for model_cls, pk, sk, condition in checks:
                tx.condition_check(model_cls, pk, sk, condition=condition)  # type: ignore[arg-type]
            for event in events:
                outbox = OutboxItem.of(event)
                tx.save(outbox, condition=OutboxItem.PK.does_not_exist())
    except TransactWriteError as e:
        reasons = [getattr(r, "code", None) if r is not None else None for r in (e.cancellation_reasons or [])]
        if "ConditionalCheckFailed" in reasons:
            # ``failed`` holds the positions whose condition failed, in the order PynamoDB sends the items:
            # checks, then deletes, puts, updates.
            failed = [i for i, r in enumerate(reasons) if r == "ConditionalCheckFailed"]
            raise ConditionFailedError("the write conflicts with the current state", {"failed": failed}) from e
        raise


class DynamoOutbox:
    """The ``Outbox`` port over the table."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    def pending(self, limit: int) -> list[Event]:
        items = OutboxItem.gsi1.query(PENDING, limit=limit)
        return [item.event() for item in items if isinstance(item, OutboxItem)]

    def mark_sent(self, event_ids: Sequence[str]) -> None:
        now = self._clock.now()
        for event_id in event_ids:
            pk, sk = OutboxItem.key(event_id)
            item = OutboxItem(PK=pk, SK=sk)
            try:
                item.update(
                    actions=[
                        OutboxItem.status.set("sent"),
                        OutboxItem.GSI1PK.remove(),
                        OutboxItem.GSI1SK.remove(),
                        OutboxItem.expires_at.set(epoch_seconds(now + KEEP_SENT_FOR)),
                    ],
                    condition=OutboxItem.PK.exists(),
                )
            except UpdateError as e:  # already cleaned up: nothing to mark
                if not condition_failed(e):
                    raise
