"""What Stripe's webhooks told of a namespace, on the single table: its subscription
(``NS#<ns>`` / ``BILLING#SUBSCRIPTION``) and each invoice (``NS#<ns>`` / ``BILLING#INVOICE#<id>``).
A snapshot is written only when it is newer than the stored one (the condition compares the order
``chalicelib/domain/services/stripe_events.py`` defines), in one transaction with the events it emits,
so a replayed or older event changes nothing and emits nothing. Keys: docs/data-model.md."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from pynamodb.attributes import BooleanAttribute, NumberAttribute, UnicodeAttribute, UTCDateTimeAttribute

from chalicelib.adapters.dynamodb.base import BaseItem
from chalicelib.adapters.dynamodb.outbox import write_with_events
from chalicelib.domain.clock import epoch_seconds
from chalicelib.domain.errors import ConditionFailedError
from chalicelib.domain.events import Event
from chalicelib.domain.services.stripe_events import INVOICE_RANK, SUBSCRIPTION_RANK, InvoiceState, SubscriptionState

INVOICE_PREFIX = "BILLING#INVOICE#"


class BillingSubscriptionItem(BaseItem, discriminator="BillingSubscription"):
    ns = UnicodeAttribute()
    subscription_id = UnicodeAttribute()
    status = UnicodeAttribute()
    rank = NumberAttribute()
    cancel_at_period_end = BooleanAttribute(default=False)
    current_period_end = UTCDateTimeAttribute(null=True)
    event_id = UnicodeAttribute()
    event_created = NumberAttribute()

    @staticmethod
    def key(ns: str) -> tuple[str, str]:
        return f"NS#{ns}", "BILLING#SUBSCRIPTION"

    def to_domain(self) -> SubscriptionState:
        return SubscriptionState(
            subscription_id=self.subscription_id,
            status=self.status,
            cancel_at_period_end=bool(self.cancel_at_period_end),
            current_period_end=self.current_period_end,
            event_id=self.event_id,
            event_created=int(self.event_created),
        )


class BillingInvoiceItem(BaseItem, discriminator="BillingInvoice"):
    ns = UnicodeAttribute()
    invoice_id = UnicodeAttribute()
    status = UnicodeAttribute()
    rank = NumberAttribute()
    attempt_count = NumberAttribute()
    amount_due = NumberAttribute()
    amount_paid = NumberAttribute()
    currency = UnicodeAttribute()
    period_start = UTCDateTimeAttribute()
    period_end = UTCDateTimeAttribute()
    hosted_invoice_url = UnicodeAttribute(null=True)
    event_id = UnicodeAttribute()
    event_created = NumberAttribute()

    @staticmethod
    def key(ns: str, invoice_id: str) -> tuple[str, str]:
        return f"NS#{ns}", f"{INVOICE_PREFIX}{invoice_id}"

    def to_domain(self) -> InvoiceState:
        return InvoiceState(
            invoice_id=self.invoice_id,
            status=self.status,
            attempt_count=int(self.attempt_count),
            amount_due=int(self.amount_due),
            amount_paid=int(self.amount_paid),
            currency=self.currency,
            period_start=self.period_start,
            period_end=self.period_end,
            hosted_invoice_url=self.hosted_invoice_url,
            event_id=self.event_id,
            event_created=int(self.event_created),
        )


class ReconciliationClaimItem(BaseItem, discriminator="ReconciliationClaim"):
    """One per namespace and day: the daily reconciliation emitted its mismatches (kept 40 days)."""

    ns = UnicodeAttribute()
    day = UnicodeAttribute()

    @staticmethod
    def key(ns: str, day: str) -> tuple[str, str]:
        return f"NS#{ns}", f"BILLING#RECONCILED#{day}"


def _newer(item: type[Any], order: tuple[tuple[Any, int], ...]) -> Any:
    """``attribute_not_exists(PK) OR`` the stored (a, b, ...) sorts before ``order``, lexicographically."""
    condition = item.PK.does_not_exist()
    equal: Any = None
    for attribute, value in order:
        step = attribute < value if equal is None else equal & (attribute < value)
        condition = condition | step
        equal = (attribute == value) if equal is None else equal & (attribute == value)
    return condition


def _apply(
    item_type: type[Any],
    key: tuple[str, str],
    ns: str,
    rank: int,
    state: InvoiceState | SubscriptionState,
    order: tuple[Any, ...],
    events: list[Event],
) -> bool:
    """Write ``state`` unless the stored one is newer: ``order`` names the attributes of ``state.order``."""
    item = item_type(PK=key[0], SK=key[1], ns=ns, rank=rank, **asdict(state))
    return _put(item, _newer(item_type, tuple(zip(order, state.order, strict=True))), events)


class DynamoBillingStateStore:
    def apply_invoice(self, ns: str, state: InvoiceState, events: list[Event]) -> bool:
        order = (BillingInvoiceItem.rank, BillingInvoiceItem.attempt_count, BillingInvoiceItem.event_created)
        rank = INVOICE_RANK.get(state.status, 1)
        return _apply(BillingInvoiceItem, BillingInvoiceItem.key(ns, state.invoice_id), ns, rank, state, order, events)

    def apply_subscription(self, ns: str, state: SubscriptionState, events: list[Event]) -> bool:
        order = (BillingSubscriptionItem.event_created, BillingSubscriptionItem.rank)
        rank = SUBSCRIPTION_RANK.get(state.status, 1)
        return _apply(BillingSubscriptionItem, BillingSubscriptionItem.key(ns), ns, rank, state, order, events)

    def subscription(self, ns: str) -> SubscriptionState | None:
        try:
            return BillingSubscriptionItem.get(*BillingSubscriptionItem.key(ns), consistent_read=True).to_domain()
        except BillingSubscriptionItem.DoesNotExist:
            return None

    def claim_reconciliation(self, ns: str, day: str, events: list[Event], now: datetime) -> bool:
        """The day's mismatch events, once: False when that day's were emitted already."""
        pk, sk = ReconciliationClaimItem.key(ns, day)
        item = ReconciliationClaimItem(
            PK=pk, SK=sk, ns=ns, day=day, created_at=now, expires_at=epoch_seconds(now + timedelta(days=40))
        )
        return _put(item, ReconciliationClaimItem.PK.does_not_exist(), events)

    def invoices(self, ns: str) -> list[InvoiceState]:
        items = BillingInvoiceItem.query(f"NS#{ns}", BillingInvoiceItem.SK.startswith(INVOICE_PREFIX))
        return [i.to_domain() for i in items if isinstance(i, BillingInvoiceItem)]


def _put(item: BaseItem, condition: Any, events: list[Event]) -> bool:
    try:
        write_with_events([(item, condition)], events)
    except ConditionFailedError:
        return False  # what is stored is as new or newer: nothing changes, nothing is emitted
    return True
