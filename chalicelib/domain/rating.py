"""Rating: a namespace's usage of a period priced on its plan (an invoice preview), and a forecast of
the period's total from its run rate.

Money is an integer number of cents. The one rounding rule: a line item's amount is computed exactly
(``Decimal``: the quantity in millionths times the tiers' ``unit_amount_decimal`` cents, plus their
flat amounts) and rounded **once, per line item, half up, to a whole cent**; the subtotal is the sum
of the rounded line items, the plan's base price being one of them. Tiers are never rounded on their
own (their exact amounts are shown as decimal strings), so an invoice is the same whichever way its
tiers fall.

Tiers are graduated (Stripe's ``tiers_mode=graduated``): tier *i* prices the units above the previous
tier's ``up_to`` and up to its own; a first tier at price 0 is the plan's included quantity. A tier's
``flat_amount`` is charged once when any of the quantity falls in it.

Quantities come from the ledger's period rollups (``UsageLedger.rollups``, one query): a ``sum`` meter's
rollup is the period's total, a ``max`` meter's (seats) the period's maximum, so a ``max`` meter is
priced on the period maximum.

Forecast (``method: "run_rate"``): each ``sum`` meter's quantity so far is extrapolated to the end of
the period, ``quantity x period length / elapsed time`` (elapsed = now - period start, at least one
hour, at most the whole period), rounded half up to a millionth; a ``max`` meter keeps its maximum so
far (seats do not grow with time); the base price is not extrapolated (it is charged once). The
forecast quantities are then rated like the actual ones (tiers and rounding), so usage still inside
an included tier forecasts nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import Literal

from chalicelib.domain.metering import MICROS, Catalog, Plan, Tier, period_bounds, period_of
from chalicelib.domain.stores import UsageLedger

MIN_ELAPSED = timedelta(hours=1)
PRECISION = 60  # digits: quantities (<= 10^18 millionths) times prices stay exact


def round_cents(exact: Decimal) -> int:
    """The one rounding rule: exact cents -> whole cents, half up (0.5 -> 1, 2.5 -> 3)."""
    return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))


@dataclass(frozen=True)
class TierCharge:
    """What one tier contributes to a line item: the quantity (millionths) that falls in it and its
    exact amount in cents (never rounded on its own)."""

    up_to: int | None
    unit_amount_decimal: Decimal
    flat_amount: int
    quantity: int
    amount: Decimal


@dataclass(frozen=True)
class LineItem:
    kind: Literal["base", "usage"]
    meter: str | None  # None for the base price
    description: str
    quantity: int  # millionths of the meter's unit (the base price: one period, 1_000_000)
    exact: Decimal  # cents, exact
    amount: int  # cents, rounded once, half up
    tiers: tuple[TierCharge, ...] = ()


@dataclass(frozen=True)
class Rating:
    plan: str
    currency: str
    period: str
    line_items: tuple[LineItem, ...]

    @property
    def subtotal(self) -> int:
        return sum(item.amount for item in self.line_items)

    @property
    def usage(self) -> int:
        """The metered line items' total: what a budget caps (the base price is not usage)."""
        return sum(item.amount for item in self.line_items if item.kind == "usage")

    def quantity(self, meter: str) -> int:
        return next((i.quantity for i in self.line_items if i.meter == meter), 0)


@dataclass(frozen=True)
class Forecast:
    rating: Rating
    elapsed: timedelta
    length: timedelta
    method: str = "run_rate"

    @property
    def subtotal(self) -> int:
        return self.rating.subtotal

    @property
    def usage(self) -> int:
        return self.rating.usage


def price_tiers(tiers: tuple[Tier, ...], quantity: int) -> tuple[Decimal, tuple[TierCharge, ...]]:
    """Graduated tiers over ``quantity`` millionths: (exact cents, each tier's share)."""
    charges = []
    total = Decimal(0)
    lower = 0
    with localcontext(prec=PRECISION):
        for tier in tiers:
            upper = None if tier.up_to is None else tier.up_to * MICROS
            in_tier = max(0, (quantity if upper is None else min(quantity, upper)) - lower)
            amount = Decimal(in_tier) * tier.unit_amount_decimal / MICROS
            if in_tier > 0:
                amount += tier.flat_amount
            total += amount
            charges.append(TierCharge(tier.up_to, tier.unit_amount_decimal, tier.flat_amount, in_tier, amount))
            if upper is None:
                break
            lower = upper
    return total, tuple(charges)


def rate(catalog: Catalog, plan: Plan, period: str, quantities: Mapping[str, int]) -> Rating:
    """The period's invoice preview: the base price, then one line item per meter of the catalog (in
    catalog order, zero quantities included), each rounded once."""
    items = [
        LineItem(
            kind="base",
            meter=None,
            description=f"{plan.display_name} plan, {period}",
            quantity=MICROS,
            exact=Decimal(plan.base_price),
            amount=plan.base_price,
        )
    ]
    for name, meter in catalog.meters.items():
        quantity = int(quantities.get(name, 0))
        exact, charges = price_tiers(plan.prices[name], quantity)
        items.append(
            LineItem(
                kind="usage",
                meter=name,
                description=meter.display_name,
                quantity=quantity,
                exact=exact,
                amount=round_cents(exact),
                tiers=charges,
            )
        )
    return Rating(plan=plan.name, currency=catalog.currency, period=period, line_items=tuple(items))


def forecast_quantities(
    catalog: Catalog, period: str, quantities: Mapping[str, int], now: datetime
) -> tuple[dict[str, int], timedelta, timedelta]:
    """Each meter's quantity extrapolated to the end of the period (see the module's docstring):
    (quantities, elapsed, period length)."""
    start, end = period_bounds(period)
    length = end - start
    elapsed = min(max(now - start, MIN_ELAPSED), length)
    out: dict[str, int] = {}
    with localcontext(prec=PRECISION):
        scale = Decimal(int(length.total_seconds())) / Decimal(int(elapsed.total_seconds()))
        for name, meter in catalog.meters.items():
            quantity = int(quantities.get(name, 0))
            if meter.aggregation == "max":
                out[name] = quantity
            else:
                out[name] = int((quantity * scale).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    return out, elapsed, length


def forecast(catalog: Catalog, plan: Plan, period: str, quantities: Mapping[str, int], now: datetime) -> Forecast:
    projected, elapsed, length = forecast_quantities(catalog, period, quantities, now)
    return Forecast(rate(catalog, plan, period, projected), elapsed, length)


@dataclass(frozen=True)
class Preview:
    """The current period of a namespace: its rating so far and its forecast."""

    rating: Rating
    forecast: Forecast
    period_start: datetime
    period_end: datetime


class RatingService:
    """Prices a namespace's period from the ledger's rollups: one query for every meter."""

    def __init__(self, ledger: UsageLedger, catalog: Catalog) -> None:
        self._ledger = ledger
        self._catalog = catalog

    def preview(self, namespace: str, plan_name: str, now: datetime, period: str | None = None) -> Preview:
        period = period or period_of(now)
        plan = self._catalog.plan(plan_name)
        quantities = self._ledger.rollups(namespace, period)
        start, end = period_bounds(period)
        return Preview(
            rating=rate(self._catalog, plan, period, quantities),
            forecast=forecast(self._catalog, plan, period, quantities, now),
            period_start=start,
            period_end=end,
        )
