"""A namespace's account at the billing provider, as its owners see it: the provider's preview of the
next invoice beside the ledger's own figure, the invoices with the ledger's line items of the period
each one bills, the billing portal, and what the provider's webhooks said of its subscription."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from chalicelib.domain.clock import Clock
from chalicelib.domain.errors import ConflictError, DependencyUnavailableError, NotFoundError
from chalicelib.domain.metering import period_bounds, period_of
from chalicelib.domain.model import Namespace
from chalicelib.domain.ports import BillingPort, InvoiceSummary
from chalicelib.domain.rating import Rating, RatingService
from chalicelib.domain.services.stripe_events import SubscriptionState
from chalicelib.domain.stores import BillingStateStore, NamespaceStore


@dataclass(frozen=True)
class ProviderPreview:
    """The provider's upcoming invoice, or why it could not be read (the billing view still answers)."""

    invoice: InvoiceSummary | None
    subscription: SubscriptionState | None
    unavailable: str | None = None


@dataclass(frozen=True)
class InvoiceWithLedger:
    invoice: InvoiceSummary
    ledger: Rating | None  # the ledger's rating of the usage period the invoice bills, when it bills one


class BillingAccountService:
    def __init__(
        self,
        namespaces: NamespaceStore,
        billing: BillingPort,
        rating: RatingService,
        state: BillingStateStore,
        clock: Clock,
    ) -> None:
        self._namespaces = namespaces
        self._billing = billing
        self._rating = rating
        self._state = state
        self._clock = clock

    def _namespace(self, ns_id: str) -> Namespace:
        ns = self._namespaces.get(ns_id)
        if ns is None:
            raise NotFoundError(f"namespace {ns_id!r} not found", {"namespace": ns_id})
        return ns

    def preview(self, ns_id: str) -> ProviderPreview:
        ns = self._namespace(ns_id)
        subscription = self._state.subscription(ns_id)
        if not ns.subscription_id:
            return ProviderPreview(None, subscription, "the namespace has no subscription")
        try:
            return ProviderPreview(self._billing.upcoming_invoice(ns.subscription_id), subscription)
        except (DependencyUnavailableError, NotFoundError) as e:
            return ProviderPreview(None, subscription, e.message)

    def invoices(self, ns_id: str, limit: int = 12) -> list[InvoiceWithLedger]:
        ns = self._namespace(ns_id)
        if not ns.customer_id:
            return []
        out = []
        for invoice in self._billing.list_invoices(ns.customer_id, limit):
            out.append(InvoiceWithLedger(invoice, self._ledger_of(ns, invoice)))
        return out

    def _ledger_of(self, ns: Namespace, invoice: InvoiceSummary) -> Rating | None:
        """The ledger's rating of the calendar month an invoice's usage lines cover (its period), when
        the invoice bills usage."""
        if not any(line.kind == "usage" for line in invoice.lines) or invoice.period_end <= invoice.period_start:
            return None
        period = period_of(invoice.period_start)
        start, _ = period_bounds(period)
        if start < ns.created_at.replace(day=1, hour=0, minute=0, second=0, microsecond=0):
            return None
        return self._rating.preview(ns.id, ns.plan, self._clock.now(), period=period).rating

    def portal_url(self, ns_id: str, return_url: str) -> str:
        ns = self._namespace(ns_id)
        if not ns.customer_id:
            raise ConflictError(f"the namespace {ns_id} has no billing customer yet", {"namespace": ns_id})
        return self._billing.portal_url(ns.customer_id, return_url)

    def now(self) -> datetime:
        return self._clock.now()
