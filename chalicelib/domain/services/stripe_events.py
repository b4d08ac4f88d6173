"""Stripe's webhooks: ``POST /v1/webhooks/stripe`` and the consumer of the ``stripe-events`` queue.

Receive (docs/architecture.md, "Webhooks"): the ``Stripe-Signature`` is checked on the raw body by the
library's own verifier, with a 5-minute tolerance (a bad signature or an older timestamp: 400, nothing
recorded); the event id is claimed as ``received``, the event handed to the queue, the claim marked
``enqueued``; answered 200. A redelivery whose claim is ``enqueued`` hands on nothing; one only
``received`` (the hand-off failed) is handed on again; a failed hand-off answers 503 so that Stripe
delivers it again. Events the platform does not consume answer 200 ``ignored`` (Stripe retries
anything else).

Process: Stripe sends events in no particular order and possibly more than once
(docs.stripe.com/webhooks, "Event ordering", "Handle duplicate events"). Each event's object is a
snapshot; it is applied only when it is newer than what the table holds, in one conditional write with
the events it emits (so a replay or an older event changes nothing and emits nothing):

- invoices by their status' progress (``draft`` < ``open`` < ``paid``/``void``/``uncollectible``),
  then their ``attempt_count``, then the event's ``created``: ``invoice.finalized`` -> ``invoice.created``,
  ``invoice.paid`` -> ``invoice.paid``, ``invoice.payment_failed`` -> ``billing.payment_failed`` (the
  namespace keeps running: nothing is suspended for a failed payment; its owners get the event);
- the subscription by the event's ``created``, then its status' progress (a ``canceled`` never goes
  back): ``customer.subscription.updated`` and ``.deleted`` keep its status, ``cancel_at_period_end``
  and current period on the table (shown in the billing view); ``.created`` too."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from chalicelib.domain.clock import Clock
from chalicelib.domain.errors import BadRequestError, DependencyUnavailableError
from chalicelib.domain.events import Event
from chalicelib.domain.ports import QueuePort
from chalicelib.domain.stores import BillingStateStore, DeliveryStore, NamespaceStore

QUEUE = "stripe-events"
SOURCE = "stripe"
HANDLED = frozenset(
    {
        "invoice.finalized",
        "invoice.paid",
        "invoice.payment_failed",
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
    }
)
INVOICE_RANK = {"draft": 0, "open": 1, "paid": 2, "void": 2, "uncollectible": 2}
SUBSCRIPTION_RANK = {"canceled": 2, "incomplete_expired": 2}  # everything else 1


class WebhookVerifier(Protocol):
    def verify(self, body: bytes, header: str | None) -> dict[str, Any]:
        """The event, once its signature and timestamp check out; BadRequestError otherwise."""
        ...


@dataclass(frozen=True)
class InvoiceState:
    invoice_id: str
    status: str
    attempt_count: int
    amount_due: int
    amount_paid: int
    currency: str
    period_start: datetime
    period_end: datetime
    hosted_invoice_url: str | None
    event_id: str
    event_created: int

    @property
    def order(self) -> tuple[int, int, int]:
        return INVOICE_RANK.get(self.status, 1), self.attempt_count, self.event_created


@dataclass(frozen=True)
class SubscriptionState:
    subscription_id: str
    status: str
    cancel_at_period_end: bool
    current_period_end: datetime | None
    event_id: str
    event_created: int

    @property
    def order(self) -> tuple[int, int]:
        return self.event_created, SUBSCRIPTION_RANK.get(self.status, 1)


@dataclass(frozen=True)
class Receipt:
    status: int
    body: dict[str, Any]


def _problems(event: Any) -> list[dict[str, str]]:
    if not isinstance(event, dict):
        return [{"field": "(body)", "message": "must be a JSON object"}]
    problems = []
    if not isinstance(event.get("id"), str) or not event["id"]:
        problems.append({"field": "id", "message": "is required"})
    if not isinstance(event.get("type"), str) or not event["type"]:
        problems.append({"field": "type", "message": "is required"})
    if not isinstance(event.get("created"), int):
        problems.append({"field": "created", "message": "must be an integer"})
    obj = (event.get("data") or {}).get("object") if isinstance(event.get("data"), dict) else None
    if not isinstance(obj, dict):
        problems.append({"field": "data.object", "message": "must be an object"})
    elif event.get("type") in HANDLED:
        for name in ("id", "customer", "status"):
            if not isinstance(obj.get(name), str):
                problems.append({"field": f"data.object.{name}", "message": "must be a string"})
    return problems


class StripeWebhookService:
    def __init__(self, verifier: WebhookVerifier, deliveries: DeliveryStore, queue: QueuePort, clock: Clock) -> None:
        self._verifier = verifier
        self._deliveries = deliveries
        self._queue = queue
        self._clock = clock

    def receive(self, headers: Mapping[str, str], body: bytes) -> Receipt:
        h = {k.lower(): v for k, v in headers.items()}
        event = self._verifier.verify(body, h.get("stripe-signature"))
        problems = _problems(event)
        if problems:  # before any claim: nothing recorded or handed on
            raise BadRequestError("the payload is not a Stripe event", {"fields": problems}, code="invalid_payload")
        event_id, kind = event["id"], event["type"]
        if kind not in HANDLED:
            return Receipt(200, {"status": "ignored", "event": event_id, "type": kind})
        previous = self._deliveries.claim(SOURCE, event_id, kind, self._clock.now())
        if previous == "enqueued":
            return Receipt(200, {"status": "duplicate", "event": event_id})
        try:
            self._queue.send(QUEUE, {"event": event}, dedup_id=event_id)
        except Exception as e:
            raise DependencyUnavailableError(
                "the event could not be handed on; Stripe will deliver it again", {"event": event_id}
            ) from e
        self._deliveries.mark_enqueued(SOURCE, event_id)
        return Receipt(200, {"status": "enqueued", "event": event_id})


def _when(seconds: Any) -> datetime | None:
    return datetime.fromtimestamp(int(seconds), UTC) if isinstance(seconds, int) else None


class StripeEventProcessor:
    """The ``stripe-events`` queue's consumer: one event per message, applied if newer."""

    def __init__(self, namespaces: NamespaceStore, state: BillingStateStore, clock: Clock) -> None:
        self._namespaces = namespaces
        self._state = state
        self._clock = clock

    def process(self, event: dict[str, Any]) -> dict[str, Any]:
        kind = str(event["type"])
        obj: dict[str, Any] = event["data"]["object"]
        ns = self._namespaces.by_billing_customer(str(obj.get("customer")))
        if ns is None:
            return {"event": event["id"], "type": kind, "applied": False, "reason": "unknown customer"}
        applied = self._invoice(ns, event, obj) if kind.startswith("invoice.") else self._subscription(ns, event, obj)
        return {"event": event["id"], "type": kind, "namespace": ns, "applied": applied}

    def _invoice(self, ns: str, event: dict[str, Any], obj: dict[str, Any]) -> bool:
        now = self._clock.now()
        state = InvoiceState(
            invoice_id=str(obj["id"]),
            status=str(obj["status"]),
            attempt_count=int(obj.get("attempt_count") or 0),
            amount_due=int(obj.get("amount_due") or 0),
            amount_paid=int(obj.get("amount_paid") or 0),
            currency=str(obj.get("currency") or ""),
            period_start=_when(obj.get("period_start")) or now,
            period_end=_when(obj.get("period_end")) or now,
            hosted_invoice_url=obj.get("hosted_invoice_url"),
            event_id=str(event["id"]),
            event_created=int(event["created"]),
        )
        common = {"invoice_id": state.invoice_id, "currency": state.currency, "stripe_event_id": state.event_id}
        kind = event["type"]
        if kind == "invoice.finalized":
            emitted = Event.create(
                "invoice.created",
                ns,
                now,
                {
                    **common,
                    "period_start": state.period_start.isoformat(),
                    "period_end": state.period_end.isoformat(),
                    "amount_due": state.amount_due,
                    "hosted_invoice_url": state.hosted_invoice_url,
                },
            )
        elif kind == "invoice.paid":
            emitted = Event.create("invoice.paid", ns, now, {**common, "amount_paid": state.amount_paid})
        else:
            next_attempt = _when(obj.get("next_payment_attempt"))
            emitted = Event.create(
                "billing.payment_failed",
                ns,
                now,
                {
                    **common,
                    "amount_due": state.amount_due,
                    "attempt_count": state.attempt_count,
                    "next_attempt_at": next_attempt.isoformat() if next_attempt else None,
                    "hosted_invoice_url": state.hosted_invoice_url,
                },
            )
        return self._state.apply_invoice(ns, state, [emitted])

    def _subscription(self, ns: str, event: dict[str, Any], obj: dict[str, Any]) -> bool:
        items = ((obj.get("items") or {}).get("data") or []) if isinstance(obj.get("items"), dict) else []
        ends = [int(i["current_period_end"]) for i in items if isinstance(i, dict) and i.get("current_period_end")]
        state = SubscriptionState(
            subscription_id=str(obj["id"]),
            status=str(obj["status"]),
            cancel_at_period_end=bool(obj.get("cancel_at_period_end")),
            current_period_end=_when(max(ends)) if ends else None,
            event_id=str(event["id"]),
            event_created=int(event["created"]),
        )
        return self._state.apply_subscription(ns, state, [])
