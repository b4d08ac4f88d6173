"""The billing port on Stripe, through the ``stripe`` library (16.1.0, imported on first use: cold starts).

Wire contract (docs.stripe.com/api, the library's own ``params``):

- One Billing Meter per catalog meter (``billing.Meter``: ``event_name`` = the meter's ``event_name``,
  ``default_aggregation.formula`` ``sum``, or ``last`` for a ``max`` meter such as seats; the customer
  mapped by ``stripe_customer_id``, the value by ``value``). Meter event values are **millionths** of
  the meter's unit (the ledger's integers), so every metered price is written per millionth: a tier's
  ``up_to`` times 1,000,000 and its ``unit_amount_decimal`` divided by 1,000,000 (Stripe takes 12
  decimal places; a catalog price that needs more is refused by ``sync_catalog``).
- One product per plan (``maas_<plan>``); its prices carry lookup keys ``maas:<plan>:<base|meter>:<v>``
  where ``<v>`` hashes the price's definition, so a changed catalog makes new prices (a price's
  amounts cannot change at Stripe) and old subscriptions keep theirs. ``sync_catalog`` finds what
  exists (meters listed, prices by lookup keys) and creates what is missing: idempotent.
- A customer per namespace; a subscription to the plan's prices: the base price (licensed, billed in
  advance) and one metered price per meter (billed in arrears), ``billing_cycle_anchor`` at the start
  of next month (UTC) so that periods are calendar months like the ledger's, ``backdate_start_date``
  the namespace's first hour so its first usage counts, ``proration_behavior=none`` (nothing is
  charged at onboarding: no card is needed to start), ``billing_mode=flexible`` (a metered price
  removed by a plan change bills the usage so far at the old price).
- A plan change swaps each item's price in one update with ``proration_behavior=create_prorations``;
  offboarding sets ``cancel_at_period_end`` (the last period's usage is still invoiced).
- Meter events: ``identifier`` = the ledger's stable identifier, ``timestamp`` the hour it measures.
  Stripe refuses an identifier it has seen (400, "An event already exists with identifier ...",
  ``Stripe-Should-Retry: false``): for our identifiers that proves the event was delivered, so it is
  taken as delivered.

Every write carries an ``Idempotency-Key`` (docs.stripe.com/api/idempotent_requests), the same on every
retry of one logical call. 429 (``RateLimitError``), 5xx and connection failures are retried with
exponential back-off (``retries`` times, ``backoff`` doubling); other 4xx are not (``BillingRejectedError``
with Stripe's status, type, code, param and message), except 404 ``resource_missing`` (``NotFoundError``).
``requests`` counts the HTTP requests made (bench/billing.py)."""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from chalicelib.domain.clock import Clock
from chalicelib.domain.errors import BillingRejectedError, DependencyUnavailableError, NotFoundError
from chalicelib.domain.metering import MICROS, Catalog, Plan, Tier, period_bounds, period_of
from chalicelib.domain.ports import CatalogSync, InvoiceLine, InvoiceSummary, MeterEvent
from chalicelib.logs import get_logger

if TYPE_CHECKING:
    from stripe import StripeClient

T = TypeVar("T")
STRIPE_DECIMAL_PLACES = 12  # unit_amount_decimal: "at most 12 decimal places" (docs.stripe.com/api/prices/create)
LOOKUP_PREFIX = "maas"
DUPLICATE_IDENTIFIER = "An event already exists with identifier"  # the refusal's message (no error code)
MAX_LOOKUP_KEYS = 10  # prices list: lookup_keys takes at most 10


def product_id(plan: str) -> str:
    return f"{LOOKUP_PREFIX}_{plan}"


def stripe_tiers(tiers: tuple[Tier, ...]) -> list[dict[str, Any]]:
    """The catalog's tiers (whole units, cents per unit) per millionth of a unit, as Stripe takes them."""
    out = []
    for tier in tiers:
        unit = tier.unit_amount_decimal / MICROS
        exponent = unit.normalize().as_tuple().exponent
        if isinstance(exponent, int) and -exponent > STRIPE_DECIMAL_PLACES:
            raise ValueError(
                f"{tier.unit_amount_decimal} cents per unit is {unit} per millionth of a unit: "
                f"Stripe takes at most {STRIPE_DECIMAL_PLACES} decimal places"
            )
        out.append(
            {
                "up_to": "inf" if tier.up_to is None else tier.up_to * MICROS,
                "unit_amount_decimal": format(unit.normalize(), "f"),
                "flat_amount": tier.flat_amount,
            }
        )
    return out


def price_specs(catalog: Catalog, plan: Plan) -> dict[str, dict[str, Any]]:
    """Role (``base`` or a meter's name) -> the price's parameters, lookup key included."""
    specs: dict[str, dict[str, Any]] = {
        "base": {
            "currency": catalog.currency,
            "product": product_id(plan.name),
            "nickname": f"{plan.display_name} plan",
            "unit_amount": plan.base_price,
            "recurring": {"interval": "month"},
        }
    }
    for name, meter in catalog.meters.items():
        specs[name] = {
            "currency": catalog.currency,
            "product": product_id(plan.name),
            "nickname": f"{meter.display_name} ({plan.display_name})",
            "billing_scheme": "tiered",
            "tiers_mode": "graduated",
            "tiers": stripe_tiers(plan.prices[name]),
            "recurring": {"interval": "month", "usage_type": "metered"},  # + meter, once its id is known
        }
    for role, spec in specs.items():
        digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:10]
        spec["lookup_key"] = f"{LOOKUP_PREFIX}:{plan.name}:{role}:{digest}"
        spec["metadata"] = {"plan": plan.name, "role": role}
    return specs


def role_of(lookup_key: str | None) -> tuple[str, str] | None:
    """``maas:<plan>:<role>:<v>`` -> (plan, role)."""
    parts = (lookup_key or "").split(":")
    return (parts[1], parts[2]) if len(parts) == 4 and parts[0] == LOOKUP_PREFIX else None


def _when(seconds: Any) -> datetime | None:
    return None if seconds in (None, "") else datetime.fromtimestamp(int(seconds), UTC)


class StripeBilling:
    def __init__(
        self,
        api_key: str,
        catalog: Catalog,
        clock: Clock,
        *,
        api_base: str | None = None,
        retries: int = 4,
        backoff: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
        client: StripeClient | None = None,
    ) -> None:
        self._api_key = api_key
        self._catalog = catalog
        self._clock = clock
        self._api_base = api_base
        self._retries = retries
        self._backoff = backoff
        self._sleep = sleep
        self._client = client
        self._lock = threading.Lock()
        self._sync: CatalogSync | None = None
        self.requests = 0

    # ------------------------------------------------------------------ the client and the one retry loop

    @property
    def client(self) -> Any:
        """The ``StripeClient`` (typed loosely: parameters are built as plain dicts here)."""
        with self._lock:
            if self._client is None:
                if not self._api_key:
                    raise DependencyUnavailableError(
                        "Stripe is not configured: STRIPE_API_KEY is not set", {"provider": "stripe"}
                    )
                import stripe

                bases: Any = {"api": self._api_base} if self._api_base else None
                # Retries are ours (429 included, which the library does not retry), so the library makes none.
                self._client = stripe.StripeClient(self._api_key, base_addresses=bases, max_network_retries=0)
            return self._client

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        import stripe

        attempt = 0
        while True:
            self.requests += 1
            try:
                return fn()
            except stripe.StripeError as e:
                status = getattr(e, "http_status", None)
                transient = isinstance(e, (stripe.RateLimitError, stripe.APIConnectionError)) or (
                    isinstance(e, stripe.APIError) and (status is None or status == 409 or status >= 500)
                )
                if not transient:
                    raise _refusal(what, e) from e
                reason = f"{type(e).__name__} ({status or 'no answer'}): {e.user_message or e}"
                if attempt >= self._retries:
                    raise DependencyUnavailableError(
                        f"Stripe did not answer {what} after {attempt + 1} attempts",
                        {"provider": "stripe", "status": status, "reason": reason, "attempts": attempt + 1},
                    ) from e
                get_logger().warning("stripe retry", extra={"what": what, "attempt": attempt + 1, "reason": reason})
                self._sleep(self._backoff * 2**attempt)
                attempt += 1

    def _write(self, what: str, key: str, fn: Callable[[Any], T]) -> T:
        """A write: the same idempotency key on every attempt."""
        return self._call(what, lambda: fn({"idempotency_key": key}))

    def _each(self, what: str, first_page: Callable[[], Any]) -> Iterator[Any]:
        page = self._call(what, first_page)
        while True:
            yield from page.data
            if not page.has_more:
                return
            page = self._call(what, page.next_page)

    # ------------------------------------------------------------------ the catalog

    def sync_catalog(self) -> CatalogSync:
        c = self.client
        created: list[str] = []
        meters: dict[str, str] = {}
        active = {
            m.event_name: m.id
            for m in self._each("listing meters", lambda: c.v1.billing.meters.list({"status": "active", "limit": 100}))
        }
        for name, meter in self._catalog.meters.items():
            if meter.event_name in active:
                meters[name] = active[meter.event_name]
                continue
            made = self._write(
                f"creating the meter {name}",
                f"maas-meter-{meter.event_name}",
                lambda o, meter=meter: c.v1.billing.meters.create(  # type: ignore[misc]
                    {
                        "display_name": meter.display_name,
                        "event_name": meter.event_name,
                        "default_aggregation": {"formula": "last" if meter.aggregation == "max" else "sum"},
                        "customer_mapping": {"type": "by_id", "event_payload_key": "stripe_customer_id"},
                        "value_settings": {"event_payload_key": "value"},
                    },
                    o,
                ),
            )
            meters[name] = made.id
            created.append(f"meter {name}")
        prices: dict[str, dict[str, str]] = {}
        for plan in self._catalog.plans.values():
            self._ensure_product(plan, created)
            specs = price_specs(self._catalog, plan)
            found = self._prices_by_lookup_key([s["lookup_key"] for s in specs.values()])
            prices[plan.name] = {}
            for role, spec in specs.items():
                if spec["lookup_key"] in found:
                    prices[plan.name][role] = found[spec["lookup_key"]]
                    continue
                params = json.loads(json.dumps(spec))
                if role != "base":
                    params["recurring"]["meter"] = meters[role]
                made = self._write(
                    f"creating the price {spec['lookup_key']}",
                    f"maas-price-{spec['lookup_key']}",
                    lambda o, params=params: c.v1.prices.create(params, o),  # type: ignore[misc]
                )
                prices[plan.name][role] = made.id
                created.append(f"price {spec['lookup_key']}")
        sync = CatalogSync(meters=meters, prices=prices, created=created)
        self._sync = sync
        return sync

    def _ensure_product(self, plan: Plan, created: list[str]) -> None:
        c = self.client
        try:
            self._call(f"reading the product of {plan.name}", lambda: c.v1.products.retrieve(product_id(plan.name)))
        except NotFoundError:
            self._write(
                f"creating the product of {plan.name}",
                f"maas-product-{plan.name}",
                lambda o: c.v1.products.create(
                    {"id": product_id(plan.name), "name": f"{plan.display_name} plan", "metadata": {"plan": plan.name}},
                    o,
                ),
            )
            created.append(f"product {product_id(plan.name)}")

    def _prices_by_lookup_key(self, keys: list[str]) -> dict[str, str]:
        c = self.client
        found: dict[str, str] = {}
        for i in range(0, len(keys), MAX_LOOKUP_KEYS):
            chunk = keys[i : i + MAX_LOOKUP_KEYS]
            page = self._call(
                "finding prices",
                lambda chunk=chunk: c.v1.prices.list({"lookup_keys": chunk, "active": True, "limit": 100}),  # type: ignore[misc]
            )
            found.update({p.lookup_key: p.id for p in page.data})
        return found

    def _catalog_ids(self) -> CatalogSync:
        """The provider's ids of the catalog, found (and whatever is missing made) once per process."""
        if self._sync is None:
            self.sync_catalog()
        assert self._sync is not None
        return self._sync

    def _plan_prices(self, plan: str) -> dict[str, str]:
        self._catalog.plan(plan)  # a ValidationError for a plan the catalog does not have
        return self._catalog_ids().prices[plan]

    # ------------------------------------------------------------------ customers and subscriptions

    def create_customer(self, namespace: str, email: str | None, idempotency_key: str) -> str:
        c = self.client
        params: dict[str, Any] = {"name": namespace, "metadata": {"namespace": namespace}}
        if email:
            params["email"] = email
        customer = self._write("creating the customer", idempotency_key, lambda o: c.v1.customers.create(params, o))
        return str(customer.id)

    def delete_customer(self, customer_id: str) -> None:
        c = self.client
        self._call("deleting the customer", lambda: c.v1.customers.delete(customer_id))

    def create_subscription(
        self, customer_id: str, plan: str, idempotency_key: str, *, start: datetime | None = None
    ) -> str:
        c = self.client
        prices = self._plan_prices(plan)
        now = self._clock.now()
        _, next_period = period_bounds(period_of(now))
        params: dict[str, Any] = {
            "customer": customer_id,
            "items": [{"price": prices["base"], "quantity": 1}]
            + [{"price": price} for role, price in prices.items() if role != "base"],
            "billing_cycle_anchor": int(next_period.timestamp()),
            "proration_behavior": "none",
            "billing_mode": {"type": "flexible"},
            "metadata": {"plan": plan},
        }
        if start is not None and start < now:
            params["backdate_start_date"] = int(start.timestamp())
        sub = self._write("creating the subscription", idempotency_key, lambda o: c.v1.subscriptions.create(params, o))
        return str(sub.id)

    def change_plan(self, subscription_id: str, plan: str, idempotency_key: str) -> None:
        c = self.client
        prices = self._plan_prices(plan)
        sub = self._call("reading the subscription", lambda: c.v1.subscriptions.retrieve(subscription_id))
        items: list[dict[str, Any]] = []
        kept: set[str] = set()
        for item in sub["items"].data:
            found = role_of(item.price.lookup_key)
            role = found[1] if found else None
            if role in prices and role not in kept:
                kept.add(role)
                if item.price.id != prices[role]:
                    items.append({"id": item.id, "price": prices[role]})
            else:
                items.append({"id": item.id, "deleted": True})
        items += [{"price": price} for role, price in prices.items() if role not in kept]
        params: dict[str, Any] = {
            "items": items,
            "proration_behavior": "create_prorations",
            "metadata": {"plan": plan},
        }
        self._write(
            "changing the plan", idempotency_key, lambda o: c.v1.subscriptions.update(subscription_id, params, o)
        )

    def cancel_subscription(self, subscription_id: str, *, at_period_end: bool = True) -> None:
        c = self.client
        if at_period_end:
            self._write(
                "cancelling the subscription at period end",
                f"cancel-{subscription_id}",
                lambda o: c.v1.subscriptions.update(subscription_id, {"cancel_at_period_end": True}, o),
            )
        else:
            try:
                self._call("cancelling the subscription", lambda: c.v1.subscriptions.cancel(subscription_id))
            except BillingRejectedError as e:
                if "already canceled" not in str(e.details.get("message") or ""):
                    raise

    # ------------------------------------------------------------------ usage

    def report_meter_event(self, event: MeterEvent) -> None:
        c = self.client
        params = {
            "event_name": event.event_name,
            "identifier": event.identifier,
            "payload": {"stripe_customer_id": event.customer_id, "value": str(event.value)},
            "timestamp": int(event.timestamp.timestamp()),
        }
        try:
            self._write(
                f"the meter event {event.identifier}",
                f"meter-event-{event.identifier}",
                lambda o: c.v1.billing.meter_events.create(params, o),
            )
        except BillingRejectedError as e:
            if str(e.details.get("message") or "").startswith(DUPLICATE_IDENTIFIER):
                get_logger().info("stripe already has the meter event", extra={"identifier": event.identifier})
                return
            raise

    def usage_totals(
        self, customer_id: str, meter: str, start: datetime, end: datetime, window: Literal["hour", "day"]
    ) -> dict[datetime, int]:
        c = self.client
        meter_id = self._catalog_ids().meters[meter]
        params = {
            "customer": customer_id,
            "start_time": int(start.timestamp()),
            "end_time": int(end.timestamp()),
            "value_grouping_window": window,
            "limit": 100,
        }
        out: dict[datetime, int] = {}
        for summary in self._each(
            f"reading {meter} usage", lambda: c.v1.billing.meters.event_summaries.list(meter_id, params)
        ):
            out[datetime.fromtimestamp(summary.start_time, UTC)] = int(Decimal(str(summary.aggregated_value)))
        return out

    # ------------------------------------------------------------------ invoices and the portal

    def list_invoices(self, customer_id: str, limit: int = 12) -> list[InvoiceSummary]:
        c = self.client
        page = self._call(
            "listing invoices", lambda: c.v1.invoices.list({"customer": customer_id, "limit": max(1, min(limit, 100))})
        )
        return [self._invoice(i) for i in page.data]

    def upcoming_invoice(self, subscription_id: str) -> InvoiceSummary | None:
        c = self.client
        try:
            invoice = self._call(
                "previewing the next invoice", lambda: c.v1.invoices.create_preview({"subscription": subscription_id})
            )
        except BillingRejectedError as e:
            if e.details.get("code") == "invoice_upcoming_none":
                return None
            raise
        return self._invoice(invoice)

    def portal_url(self, customer_id: str, return_url: str) -> str:
        c = self.client
        session = self._write(
            "opening a billing portal session",
            f"portal-{uuid.uuid4()}",
            lambda o: c.v1.billing_portal.sessions.create({"customer": customer_id, "return_url": return_url}, o),
        )
        return str(session.url)

    def _invoice(self, obj: Any) -> InvoiceSummary:
        invoice: dict[str, Any] = obj.to_dict()
        roles = {
            price: role
            for plan_prices in (self._sync.prices.values() if self._sync else [])
            for role, price in plan_prices.items()
        }
        lines = []
        for x in (invoice.get("lines") or {}).get("data") or []:
            details = (x.get("pricing") or {}).get("price_details") or {}
            role = roles.get(str(details.get("price") or ""))
            parent = x.get("parent") or {}
            proration = bool(
                (parent.get("subscription_item_details") or {}).get("proration")
                or (parent.get("invoice_item_details") or {}).get("proration")
            )
            kind = "proration" if proration else "base" if role == "base" else "usage" if role else "other"
            period = x.get("period") or {}
            quantity = x.get("quantity")
            lines.append(
                InvoiceLine(
                    description=str(x.get("description") or ""),
                    amount=int(x.get("amount") or 0),
                    quantity=int(Decimal(str(quantity))) if quantity not in (None, "") else 0,
                    kind=kind,
                    meter=role if role and role != "base" else None,
                    period_start=_when(period.get("start")),
                    period_end=_when(period.get("end")),
                )
            )
        now = self._clock.now()
        return InvoiceSummary(
            id=invoice.get("id"),
            customer_id=str(invoice.get("customer")),
            status=str(invoice.get("status")),
            amount_due=int(invoice.get("amount_due") or 0),
            currency=str(invoice.get("currency")),
            period_start=_when(invoice.get("period_start")) or now,
            period_end=_when(invoice.get("period_end")) or now,
            total=int(invoice.get("total") or 0),
            amount_paid=int(invoice.get("amount_paid") or 0),
            created=_when(invoice.get("created")),
            hosted_invoice_url=invoice.get("hosted_invoice_url"),
            attempt_count=int(invoice.get("attempt_count") or 0),
            billing_reason=invoice.get("billing_reason"),
            lines=tuple(lines),
        )


def _refusal(what: str, e: Any) -> Exception:
    """A 4xx as a typed error: 404 ``resource_missing`` is NotFoundError, anything else a refusal."""
    error = getattr(e, "error", None)
    details = {
        "provider": "stripe",
        "status": e.http_status,
        "type": getattr(error, "type", None),
        "code": e.code,
        "param": getattr(e, "param", None),
        "message": e.user_message,
    }
    if e.http_status == 404 and e.code == "resource_missing":
        return NotFoundError(f"Stripe does not know it ({what}): {e.user_message}", details)
    return BillingRejectedError(f"Stripe refused {what}: {e.user_message}", details)


class StripeWebhookVerifier:
    """``Stripe-Signature`` checked by the library's own verifier (``stripe.WebhookSignature.verify_header``,
    what ``stripe.Webhook.construct_event`` calls: HMAC-SHA256 of ``<t>.<raw body>`` with the endpoint's
    secret, any of several ``v1`` signatures, ``t`` no older than ``tolerance`` seconds)."""

    def __init__(self, secret: str, tolerance: int = 300) -> None:
        self._secret = secret
        self._tolerance = tolerance

    def verify(self, body: bytes, header: str | None) -> dict[str, Any]:
        import stripe

        from chalicelib.domain.errors import BadRequestError

        if not self._secret:
            raise DependencyUnavailableError("STRIPE_WEBHOOK_SECRET is not set", {"provider": "stripe"})
        try:
            # construct_event's own check (it then builds a library object, which is not needed here: the
            # event is kept as Stripe sent it, and a signed body that is not an object would crash it)
            stripe.WebhookSignature.verify_header(body, header, self._secret, self._tolerance)
            event = json.loads(body)
        except stripe.SignatureVerificationError as e:
            raise BadRequestError(
                "the Stripe-Signature header is missing, wrong or too old",
                {"header": "Stripe-Signature", "reason": str(e).split(".")[0]},
                code="invalid_signature",
            ) from e
        except (ValueError, RecursionError) as e:
            raise BadRequestError("the payload is not a Stripe event", {}, code="invalid_payload") from e
        if not isinstance(event, dict):
            raise BadRequestError("the payload is not a Stripe event", {}, code="invalid_payload")
        return event
