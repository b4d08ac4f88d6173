"""How the Stripe stand-in prices a subscription's period: meter usage aggregated as the meter says,
graduated tiers, prorations, and one rounding per invoice line.

- Meter aggregation (docs.stripe.com/api/billing/meter/create, ``default_aggregation.formula``): ``sum``
  adds the values of the events in the window, ``count`` counts them, ``last`` takes the value of the
  last one (by timestamp). Events count for ``start <= timestamp < end``.
- Graduated tiers (docs.stripe.com/products-prices/pricing-models#graduated-pricing): each tier prices
  the units between the previous tier's ``up_to`` (excluded) and its own (included), the last tier
  (``up_to: "inf"``) what is left; a tier's ``flat_amount`` is added once when any unit falls in it.
- Decimal amounts and rounding (docs.stripe.com/billing/subscriptions/decimal-amounts): rounding
  happens per invoice line item, after the quantity is multiplied out (0.05 x 30 = 1.5 -> 2 cents);
  each line is rounded before the invoice sums them.
- Prorations (docs.stripe.com/billing/subscriptions/prorations): changing a licensed price mid-period
  credits the unused time of the old price and charges the remaining time of the new one, as pending
  invoice items on the next invoice; a proration is the price times the fraction of the period left.
- Metered prices changed mid-period (docs.stripe.com/billing/subscriptions/usage-based/manage-billing-setup,
  "Update prices mid-cycle"): in ``billing_mode=classic`` the next invoice reflects only the usage after
  the change; in ``flexible`` an invoice item bills the usage so far at the old price when it is removed
  (unless ``proration_behavior=none``).
- Licensed prices are billed in advance (the next period's), metered ones in arrears (the period that
  ends) on the renewal invoice (docs.stripe.com/billing/subscriptions/usage-based: "usage-based ... billed
  at the end of the billing period").
"""

from __future__ import annotations

import calendar
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import Any

from localcloud.standins.stripe.state import State, epoch, from_epoch, new_id


def add_months(when: datetime, months: int, anchor_day: int | None = None) -> datetime:
    """Monthly intervals keep the anchor's day, clamped to the month's last day (a subscription
    anchored on the 31st renews on the 30th in a 30-day month: docs.stripe.com/billing/subscriptions/billing-cycle)."""
    day = anchor_day or when.day
    month = when.month - 1 + months
    year = when.year + month // 12
    month = month % 12 + 1
    last = calendar.monthrange(year, month)[1]
    return when.replace(year=year, month=month, day=min(day, last))


def aggregate(state: State, customer: str, meter: dict[str, Any], start: int, end: int) -> Decimal:
    events = [
        e
        for e in state.meter_events.values()
        if e.customer == customer and e.event_name == meter["event_name"] and start <= e.timestamp < end
    ]
    formula = meter["default_aggregation"]["formula"]
    if formula == "count":
        return Decimal(len(events))
    if formula == "last":
        if not events:
            return Decimal(0)
        return max(events, key=lambda e: (e.timestamp, e.created)).value  # type: ignore[no-any-return]
    return sum((e.value for e in events), Decimal(0))


def tiered(price: dict[str, Any], quantity: Decimal) -> Decimal:
    """The exact amount (cents) of ``quantity`` on a graduated or per-unit price."""
    with localcontext(prec=60):
        if price.get("billing_scheme") != "tiered":
            return quantity * Decimal(price["unit_amount_decimal"])
        total = Decimal(0)
        lower = Decimal(0)
        for tier in price["tiers"]:
            upper = None if tier["up_to"] is None else Decimal(tier["up_to"])
            units = max(Decimal(0), (quantity if upper is None else min(quantity, upper)) - lower)
            if price.get("tiers_mode") == "volume":
                if upper is None or quantity <= upper:
                    return quantity * Decimal(tier["unit_amount_decimal"]) + Decimal(tier["flat_amount_decimal"])
                lower = upper
                continue
            total += units * Decimal(tier["unit_amount_decimal"])
            if units > 0:
                total += Decimal(tier["flat_amount_decimal"])
            if upper is None:
                break
            lower = upper
        return total


def round_line(exact: Decimal) -> int:
    return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _quantity(value: Decimal) -> int | str:
    return int(value) if value == value.to_integral_value() else str(value)


def line(
    state: State,
    *,
    amount: int,
    description: str,
    period: tuple[int, int],
    price: dict[str, Any] | None,
    subscription: dict[str, Any] | None,
    item_id: str | None,
    quantity: Decimal | int,
    proration: bool = False,
    invoice_item: str | None = None,
) -> dict[str, Any]:
    """An invoice line item in the 2025+ API shape (``parent`` and ``pricing`` instead of the old
    ``price``/``subscription`` fields: docs.stripe.com/api/invoice-line-item/object)."""
    if invoice_item is not None:
        parent: dict[str, Any] = {
            "type": "invoice_item_details",
            "invoice_item_details": {
                "invoice_item": invoice_item,
                "proration": proration,
                "subscription": subscription["id"] if subscription else None,
            },
            "subscription_item_details": None,
        }
    else:
        parent = {
            "type": "subscription_item_details",
            "invoice_item_details": None,
            "subscription_item_details": {
                "subscription": subscription["id"] if subscription else None,
                "subscription_item": item_id,
                "proration": proration,
            },
        }
    return {
        "id": new_id("il"),
        "object": "line_item",
        "amount": amount,
        "currency": (price or {}).get("currency", "usd"),
        "description": description,
        "livemode": False,
        "metadata": {},
        "parent": parent,
        "period": {"start": period[0], "end": period[1]},
        "pricing": {
            "type": "price_details",
            "price_details": {"price": price["id"], "product": price["product"]} if price else None,
            "unit_amount_decimal": (price or {}).get("unit_amount_decimal"),
        },
        "quantity": _quantity(Decimal(quantity)),
    }


def metered_line(
    state: State, sub: dict[str, Any], item: dict[str, Any], start: int, end: int
) -> tuple[dict[str, Any], Decimal] | None:
    price = state.prices[item["price"]["id"]]
    meter = state.meters.get(price["recurring"]["meter"])
    if meter is None:
        return None
    quantity = aggregate(state, sub["customer"], meter, start, end)
    exact = tiered(price, quantity)
    name = price.get("nickname") or meter["display_name"]
    return (
        line(
            state,
            amount=round_line(exact),
            description=name,
            period=(start, end),
            price=price,
            subscription=sub,
            item_id=item["id"],
            quantity=quantity,
        ),
        exact,
    )


def licensed_line(state: State, sub: dict[str, Any], item: dict[str, Any], start: int, end: int) -> dict[str, Any]:
    price = state.prices[item["price"]["id"]]
    quantity = Decimal(item.get("quantity") or 1)
    exact = tiered(price, quantity)
    return line(
        state,
        amount=round_line(exact),
        description=f"{int(quantity)} x {price.get('nickname') or price['product']}",
        period=(start, end),
        price=price,
        subscription=sub,
        item_id=item["id"],
        quantity=quantity,
    )


def is_metered(state: State, item: dict[str, Any]) -> bool:
    price = state.prices.get(item["price"]["id"]) or item["price"]
    return (price.get("recurring") or {}).get("usage_type") == "metered"


def renewal_lines(state: State, sub: dict[str, Any], *, next_period: tuple[int, int] | None) -> list[dict[str, Any]]:
    """The lines of the invoice that closes ``sub``'s current period: the metered usage of the period
    (from when each item began counting), the pending invoice items, and the licensed items of the next
    period (none when the subscription ends with this period)."""
    lines: list[dict[str, Any]] = []
    end = sub["_period_end"]
    for item in sub["items"]["data"]:
        if is_metered(state, item):
            made = metered_line(state, sub, item, item["_usage_start"], end)
            if made is not None:
                lines.append(made[0])
    for ii in pending_items(state, sub):
        lines.append(
            line(
                state,
                amount=ii["amount"],
                description=ii["description"],
                period=(ii["period"]["start"], ii["period"]["end"]),
                price=state.prices.get((ii.get("pricing") or {}).get("price_details", {}).get("price", "")),
                subscription=sub,
                item_id=None,
                quantity=ii.get("quantity") or 1,
                proration=bool(ii.get("proration")),
                invoice_item=ii["id"],
            )
        )
    if next_period is not None:
        for item in sub["items"]["data"]:
            if not is_metered(state, item):
                lines.append(licensed_line(state, sub, item, *next_period))
    return lines


def pending_items(state: State, sub: dict[str, Any]) -> list[dict[str, Any]]:
    return [ii for ii in state.invoice_items.values() if ii.get("subscription") == sub["id"] and not ii.get("invoice")]


def proration_items(
    state: State,
    sub: dict[str, Any],
    old_price: dict[str, Any],
    new_price: dict[str, Any] | None,
    quantity: int,
    now: int,
) -> list[dict[str, Any]]:
    """Unused time of ``old_price`` credited, remaining time of ``new_price`` charged (pending items)."""
    start, end = sub["_period_start"], sub["_period_end"]
    if end <= now or end <= start:
        return []
    with localcontext(prec=60):
        fraction = Decimal(end - now) / Decimal(end - start)
        made = []
        for price, sign, text in ((old_price, -1, "Unused time on"), (new_price, 1, "Remaining time on")):
            if price is None:
                continue
            amount = sign * round_line(tiered(price, Decimal(quantity)) * fraction)
            made.append(
                invoice_item(
                    state,
                    sub,
                    amount=amount,
                    description=f"{text} {price.get('nickname') or price['id']} after {from_epoch(now):%d %b %Y}",
                    period=(now, end),
                    price=price,
                    quantity=quantity,
                    proration=True,
                )
            )
        return made


def invoice_item(
    state: State,
    sub: dict[str, Any],
    *,
    amount: int,
    description: str,
    period: tuple[int, int],
    price: dict[str, Any] | None,
    quantity: Decimal | int,
    proration: bool,
) -> dict[str, Any]:
    ii = {
        "id": new_id("ii"),
        "object": "invoiceitem",
        "amount": amount,
        "currency": (price or {}).get("currency", "usd"),
        "customer": sub["customer"],
        "date": state.stamp(),
        "description": description,
        "invoice": None,
        "livemode": False,
        "period": {"start": period[0], "end": period[1]},
        "pricing": {"type": "price_details", "price_details": {"price": price["id"] if price else None}},
        "proration": proration,
        "quantity": _quantity(Decimal(quantity)),
        "subscription": sub["id"],
    }
    state.invoice_items[ii["id"]] = ii
    state.register(ii["id"])
    return ii


def totals(lines: list[dict[str, Any]]) -> int:
    return sum(int(x["amount"]) for x in lines)


def stamp(when: datetime) -> int:
    return epoch(when)
