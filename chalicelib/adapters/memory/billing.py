"""An in-memory billing provider for unit tests: the ``BillingPort`` contract, with Stripe's idempotency
rules (the same key answers the same object) and meter-event identifier deduplication. Every stage runs
the Stripe adapter (chalicelib/adapters/stripe_billing.py); the local cloud points it at its Stripe
stand-in."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from chalicelib.domain.errors import ConflictError, NotFoundError
from chalicelib.domain.ids import new_id
from chalicelib.domain.ports import CatalogSync, InvoiceSummary, MeterEvent


@dataclass
class _Subscription:
    id: str
    customer_id: str
    plan: str
    status: str = "active"
    cancel_at_period_end: bool = False


class InMemoryBilling:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.customers: dict[str, dict[str, str | None]] = {}
        self.subscriptions: dict[str, _Subscription] = {}
        self.meter_events: dict[str, MeterEvent] = {}
        self.meter_errors: dict[str, MeterEvent] = {}  # accepted, then refused asynchronously (unknown customer)
        self._idempotency: dict[str, str] = {}

    def create_customer(self, namespace: str, email: str | None, idempotency_key: str) -> str:
        with self._lock:
            if idempotency_key in self._idempotency:
                return self._idempotency[idempotency_key]
            cid = f"cus_{new_id().lower()}"
            self.customers[cid] = {"namespace": namespace, "email": email}
            self._idempotency[idempotency_key] = cid
            return cid

    def delete_customer(self, customer_id: str) -> None:
        with self._lock:
            if self.customers.pop(customer_id, None) is None:
                raise NotFoundError(f"no such customer: {customer_id}", {"customer": customer_id})

    def create_subscription(
        self, customer_id: str, plan: str, idempotency_key: str, *, start: datetime | None = None
    ) -> str:
        with self._lock:
            if idempotency_key in self._idempotency:
                return self._idempotency[idempotency_key]
            if customer_id not in self.customers:
                raise NotFoundError(f"no such customer: {customer_id}", {"customer": customer_id})
            sid = f"sub_{new_id().lower()}"
            self.subscriptions[sid] = _Subscription(sid, customer_id, plan)
            self._idempotency[idempotency_key] = sid
            return sid

    def cancel_subscription(self, subscription_id: str, *, at_period_end: bool = True) -> None:
        with self._lock:
            sub = self.subscriptions.get(subscription_id)
            if sub is None:
                raise NotFoundError(f"no such subscription: {subscription_id}", {"subscription": subscription_id})
            if sub.status == "canceled":
                raise ConflictError("subscription already canceled", {"subscription": subscription_id})
            if at_period_end:
                sub.cancel_at_period_end = True
            else:
                sub.status = "canceled"

    def report_meter_event(self, event: MeterEvent) -> None:
        """Kept once per identifier. As Stripe's ``POST /v1/billing/meter_events``, an event for a
        customer it does not know is accepted: Stripe checks the customer mapping asynchronously and
        reports such events later (``v1.billing.meter.error_report_triggered``, error code
        ``meter_event_customer_not_found``); they are kept in ``meter_errors``, not counted."""
        with self._lock:
            if event.customer_id not in self.customers:
                self.meter_errors.setdefault(event.identifier, event)
                return
            self.meter_events.setdefault(event.identifier, event)

    def change_plan(self, subscription_id: str, plan: str, idempotency_key: str) -> None:
        with self._lock:
            sub = self.subscriptions.get(subscription_id)
            if sub is None:
                raise NotFoundError(f"no such subscription: {subscription_id}", {"subscription": subscription_id})
            sub.plan = plan

    def list_invoices(self, customer_id: str, limit: int = 12) -> list[InvoiceSummary]:
        return []

    def upcoming_invoice(self, subscription_id: str) -> InvoiceSummary | None:
        return None

    def portal_url(self, customer_id: str, return_url: str) -> str:
        return f"https://billing.invalid/p/session/{customer_id}"

    def usage_totals(
        self, customer_id: str, meter: str, start: datetime, end: datetime, window: Literal["hour", "day"]
    ) -> dict[datetime, int]:
        """Per window start, the events' values (a ``seats`` meter keeps the last, as Stripe's ``last``)."""
        size = 3600 if window == "hour" else 86400
        out: dict[datetime, int] = {}
        with self._lock:
            events = sorted(self.meter_events.values(), key=lambda e: e.timestamp)
            for e in events:
                if e.customer_id != customer_id or e.event_name != meter or not start <= e.timestamp < end:
                    continue
                at = datetime.fromtimestamp(int(e.timestamp.timestamp()) // size * size, e.timestamp.tzinfo)
                out[at] = e.value if meter == "seats" else out.get(at, 0) + e.value
        return out

    def sync_catalog(self) -> CatalogSync:
        return CatalogSync(meters={}, prices={})
