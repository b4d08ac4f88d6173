"""The Stripe API endpoints the platform calls, as Stripe answers them (docs.stripe.com/api, the 2025+
API versions that stripe 16.1.0 speaks): customers, products, prices (graduated tiers, ``recurring.meter``),
Billing Meters, meter events, meter event summaries, subscriptions (create, update with prorations,
cancel at period end, cancel now), invoices (list, retrieve, ``create_preview``) and billing portal
sessions. Nothing else: an endpoint the platform does not call answers 404 as an unknown Stripe URL does.

Each handler gets the decoded parameters and answers ``(status, object)``; a ``StripeError`` becomes
Stripe's error body. The state's lock is held around every handler.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from localcloud.standins.stripe import billing
from localcloud.standins.stripe.state import (
    MeterEvent,
    State,
    StripeError,
    epoch,
    from_epoch,
    invalid,
    missing,
    new_id,
    no_such,
    page,
)
from localcloud.standins.stripe.webhooks import Webhooks, public

METER_EVENT_MAX_AGE = timedelta(days=35)  # "Must be within the past 35 calendar days" (meter event create)
METER_EVENT_MAX_AHEAD = timedelta(minutes=5)  # "... or up to 5 minutes in the future"
MAX_IDENTIFIER = 100  # meter event identifier: "Max length: 100"
MAX_DECIMAL_PLACES = 12  # unit_amount_decimal: "at most 12 decimal places"


@dataclass
class Ctx:
    state: State
    webhooks: Webhooks
    base_url: str  # for the portal session's address
    request_id: str
    idempotency_key: str | None


Handler = Callable[[Ctx, dict[str, Any], dict[str, str]], tuple[int, dict[str, Any]]]


# --------------------------------------------------------------------------- parameter helpers


def _req(params: dict[str, Any], name: str) -> Any:
    value = params.get(name)
    if value is None or value == "":
        raise missing(name)
    return value


def _int(value: Any, param: str) -> int:
    try:
        return int(str(value))
    except ValueError:
        raise invalid(f"Invalid integer: {value}", param, "parameter_invalid_integer") from None


def _bool(value: Any, param: str) -> bool:
    if value in ("true", True):
        return True
    if value in ("false", False, ""):
        return False
    raise invalid(f"Invalid boolean: {value}", param)


def _decimal(value: Any, param: str, places: int = MAX_DECIMAL_PLACES) -> Decimal:
    try:
        d = Decimal(str(value))
    except InvalidOperation:
        raise invalid(f"Invalid decimal: {value}", param, "parameter_invalid_decimal") from None
    if not d.is_finite():
        raise invalid(f"Invalid decimal: {value}", param, "parameter_invalid_decimal")
    exponent = d.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > places and d != d.quantize(Decimal(1).scaleb(-places)):
        raise invalid(f"Invalid decimal: {value}. At most {places} decimal places.", param, "parameter_invalid_decimal")
    return d


def _dict(value: Any, param: str) -> dict[str, Any]:
    if value in (None, ""):
        return {}
    if not isinstance(value, dict):
        raise invalid(f"Invalid object: {param}", param)
    return value


def _list(value: Any, param: str) -> list[Any]:
    if value in (None, ""):
        return []
    if not isinstance(value, list):
        raise invalid(f"Invalid array: {param}", param)
    return value


def _metadata(value: Any) -> dict[str, str]:
    meta = _dict(value, "metadata")
    if len(meta) > 50:
        raise invalid("Metadata can have at most 50 keys.", "metadata")
    return {str(k): str(v) for k, v in meta.items() if v != ""}


def _decimal_text(d: Decimal) -> str:
    text = format(d.normalize(), "f")
    return text


# --------------------------------------------------------------------------- customers


def create_customer(ctx: Ctx, p: dict[str, Any], _: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """docs.stripe.com/api/customers/create (every parameter optional); ``customer.created`` is sent."""
    st = ctx.state
    customer = {
        "id": new_id("cus"),
        "object": "customer",
        "created": st.stamp(),
        "description": p.get("description") or None,
        "email": p.get("email") or None,
        "livemode": False,
        "metadata": _metadata(p.get("metadata")),
        "name": p.get("name") or None,
        "invoice_prefix": new_id("x")[2:10].upper(),
    }
    st.customers[customer["id"]] = customer
    st.register(customer["id"])
    ctx.webhooks.emit("customer.created", customer, request=_request(ctx))
    return 200, customer


def _customer(st: State, customer_id: str, param: str = "id") -> dict[str, Any]:
    customer = st.customers.get(customer_id)
    if customer is None or customer.get("deleted"):
        raise no_such("customer", customer_id, param)
    return customer


def get_customer(ctx: Ctx, p: dict[str, Any], m: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """docs.stripe.com/api/customers/retrieve ("If a customer has been deleted, a subset of the customer
    will be returned, including a ``deleted`` property, which will be true")."""
    customer = ctx.state.customers.get(m["id"])
    if customer is None:
        raise no_such("customer", m["id"])
    if customer.get("deleted"):  # a deleted customer is still retrievable, as {id, object, deleted}
        return 200, {"id": customer["id"], "object": "customer", "deleted": True}
    return 200, customer


def delete_customer(ctx: Ctx, p: dict[str, Any], m: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """Deleting a customer cancels its active subscriptions at once (docs.stripe.com/api/customers/delete)."""
    st = ctx.state
    customer = _customer(st, m["id"])
    for sub in list(st.subscriptions.values()):
        if sub["customer"] == customer["id"] and sub["status"] not in ("canceled", "incomplete_expired"):
            _cancel_now(ctx, sub)
    customer["deleted"] = True
    ctx.webhooks.emit("customer.deleted", customer, request=_request(ctx))
    return 200, {"id": customer["id"], "object": "customer", "deleted": True}


# --------------------------------------------------------------------------- products and prices


def create_product(ctx: Ctx, p: dict[str, Any], _: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """docs.stripe.com/api/products/create: ``name`` required, ``id`` optional (one already taken is refused)."""
    st = ctx.state
    product_id = p.get("id") or new_id("prod")
    if product_id in st.products:
        raise StripeError(400, "Product already exists.", code="resource_already_exists", param="id")
    product = {
        "id": product_id,
        "object": "product",
        "active": _bool(p.get("active", "true"), "active"),
        "created": st.stamp(),
        "livemode": False,
        "metadata": _metadata(p.get("metadata")),
        "name": _req(p, "name"),
        "unit_label": p.get("unit_label") or None,
    }
    st.products[product_id] = product
    st.register(product_id)
    return 200, product


def get_product(ctx: Ctx, p: dict[str, Any], m: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """docs.stripe.com/api/products/retrieve: 404 ``resource_missing`` "No such product"."""
    product = ctx.state.products.get(m["id"])
    if product is None:
        raise no_such("product", m["id"])
    return 200, product


def create_price(ctx: Ctx, p: dict[str, Any], _: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """docs.stripe.com/api/prices/create: ``recurring.meter`` makes a metered price (``usage_type``
    ``metered``); ``billing_scheme=tiered`` needs ``tiers_mode`` and ``tiers`` whose last ``up_to`` is
    ``inf``; amounts in ``unit_amount`` or ``unit_amount_decimal`` (at most 12 decimal places)."""
    st = ctx.state
    currency = str(_req(p, "currency")).lower()
    product = _req(p, "product")
    if product not in st.products:
        raise no_such("product", product, "product")
    recurring = _dict(p.get("recurring"), "recurring")
    if recurring:
        if recurring.get("interval") not in ("day", "week", "month", "year"):
            raise invalid(
                "Invalid recurring[interval]: must be one of day, week, month, or year", "recurring[interval]"
            )
        meter = recurring.get("meter") or None
        usage_type = recurring.get("usage_type") or ("metered" if meter else "licensed")
        if meter is not None:
            if meter not in st.meters:
                raise no_such("billing.meter", meter, "recurring[meter]")
            if usage_type != "metered":
                raise invalid(
                    "A meter can only be set on a price with recurring[usage_type]=metered.", "recurring[meter]"
                )
        recurring = {
            "interval": recurring["interval"],
            "interval_count": _int(recurring.get("interval_count", 1), "recurring[interval_count]"),
            "meter": meter,
            "usage_type": usage_type,
        }
    scheme = p.get("billing_scheme") or "per_unit"
    price: dict[str, Any] = {
        "id": new_id("price"),
        "object": "price",
        "active": True,
        "billing_scheme": scheme,
        "created": st.stamp(),
        "currency": currency,
        "livemode": False,
        "lookup_key": p.get("lookup_key") or None,
        "metadata": _metadata(p.get("metadata")),
        "nickname": p.get("nickname") or None,
        "product": product,
        "recurring": recurring or None,
        "tiers_mode": None,
        "type": "recurring" if recurring else "one_time",
        "unit_amount": None,
        "unit_amount_decimal": None,
    }
    if scheme == "tiered":
        mode = p.get("tiers_mode")
        if mode not in ("graduated", "volume"):
            raise invalid("Missing required param: tiers_mode.", "tiers_mode", "parameter_missing")
        tiers = _list(p.get("tiers"), "tiers")
        if not tiers:
            raise missing("tiers")
        made = []
        previous = -1
        for i, t in enumerate(tiers):
            t = _dict(t, f"tiers[{i}]")
            up = t.get("up_to")
            if up in (None, ""):
                raise missing(f"tiers[{i}][up_to]")
            bound = None if up == "inf" else _int(up, f"tiers[{i}][up_to]")
            if (bound is None) != (i == len(tiers) - 1):
                raise invalid("The last tier must have up_to set to inf, and only the last.", f"tiers[{i}][up_to]")
            if bound is not None and bound <= previous:
                raise invalid("Tiers must be in ascending order of up_to.", f"tiers[{i}][up_to]")
            previous = bound if bound is not None else previous
            unit = _amount(t, f"tiers[{i}]", "unit_amount")
            flat = _amount(t, f"tiers[{i}]", "flat_amount")
            made.append(
                {
                    "flat_amount": int(flat) if flat == flat.to_integral_value() else None,
                    "flat_amount_decimal": _decimal_text(flat),
                    "unit_amount": int(unit) if unit == unit.to_integral_value() else None,
                    "unit_amount_decimal": _decimal_text(unit),
                    "up_to": bound,
                }
            )
        price["tiers_mode"] = mode
        price["tiers"] = made
    elif scheme == "per_unit":
        unit = _amount(p, "", "unit_amount", required=True)
        price["unit_amount"] = int(unit) if unit == unit.to_integral_value() else None
        price["unit_amount_decimal"] = _decimal_text(unit)
    else:
        raise invalid(f"Invalid billing_scheme: {scheme}", "billing_scheme")
    key = price["lookup_key"]
    if key is not None:
        holder = next((x for x in st.prices.values() if x.get("lookup_key") == key), None)
        if holder is not None:
            if not _bool(p.get("transfer_lookup_key", "false"), "transfer_lookup_key"):
                raise invalid(
                    f"A price (`{holder['id']}`) already uses that lookup key.", "lookup_key", "lookup_key_in_use"
                )
            holder["lookup_key"] = None
    st.prices[price["id"]] = price
    st.register(price["id"])
    return 200, price


def _amount(p: dict[str, Any], prefix: str, name: str, required: bool = False) -> Decimal:
    def param(n: str) -> str:
        return f"{prefix}[{n}]" if prefix else n

    whole, decimal = p.get(name), p.get(f"{name}_decimal")
    if whole not in (None, "") and decimal not in (None, ""):
        raise invalid(f"You may only specify one of these parameters: {name}, {name}_decimal.", param(name))
    if decimal not in (None, ""):
        return _decimal(decimal, param(f"{name}_decimal"))
    if whole not in (None, ""):
        return Decimal(_int(whole, param(name)))
    if required:
        raise missing(param(name))
    return Decimal(0)


def list_prices(ctx: Ctx, p: dict[str, Any], _: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """``lookup_keys[]`` (at most 10) and ``active`` filter (docs.stripe.com/api/prices/list)."""
    st = ctx.state
    keys = _list(p.get("lookup_keys"), "lookup_keys")
    if len(keys) > 10:
        raise invalid("You can pass at most 10 lookup_keys.", "lookup_keys")
    prices = list(st.prices.values())
    if keys:
        prices = [x for x in prices if x.get("lookup_key") in keys]
    if "active" in p:
        active = _bool(p["active"], "active")
        prices = [x for x in prices if x["active"] == active]
    return 200, page(prices, p, "/v1/prices", st.order)


# --------------------------------------------------------------------------- billing meters


def create_meter(ctx: Ctx, p: dict[str, Any], _: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """docs.stripe.com/api/billing/meter/create. An ``event_name`` may belong to one active meter only."""
    st = ctx.state
    event_name = _req(p, "event_name")
    display_name = _req(p, "display_name")
    formula = _dict(p.get("default_aggregation"), "default_aggregation").get("formula")
    if formula not in ("sum", "count", "last"):
        raise invalid(
            "Invalid default_aggregation[formula]: must be one of count, last, or sum", "default_aggregation[formula]"
        )
    if any(m["event_name"] == event_name and m["status"] == "active" for m in st.meters.values()):
        raise invalid(
            f"An active meter with event_name `{event_name}` already exists.", "event_name", "resource_already_exists"
        )
    mapping = _dict(p.get("customer_mapping"), "customer_mapping") or {}
    value_settings = _dict(p.get("value_settings"), "value_settings") or {}
    meter = {
        "id": new_id("mtr"),
        "object": "billing.meter",
        "created": st.stamp(),
        "customer_mapping": {
            "event_payload_key": mapping.get("event_payload_key") or "stripe_customer_id",
            "type": mapping.get("type") or "by_id",
        },
        "default_aggregation": {"formula": formula},
        "display_name": display_name,
        "event_name": event_name,
        "event_time_window": p.get("event_time_window") or None,
        "livemode": False,
        "status": "active",
        "status_transitions": {"deactivated_at": None},
        "updated": st.stamp(),
        "value_settings": {"event_payload_key": value_settings.get("event_payload_key") or "value"},
    }
    st.meters[meter["id"]] = meter
    st.register(meter["id"])
    return 200, meter


def list_meters(ctx: Ctx, p: dict[str, Any], _: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """docs.stripe.com/api/billing/meter/list: the ``status`` filter (``active``, ``inactive``), pages."""
    meters = list(ctx.state.meters.values())
    if p.get("status"):
        meters = [m for m in meters if m["status"] == p["status"]]
    return 200, page(meters, p, "/v1/billing/meters", ctx.state.order)


def get_meter(ctx: Ctx, p: dict[str, Any], m: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """docs.stripe.com/api/billing/meter/retrieve."""
    meter = ctx.state.meters.get(m["id"])
    if meter is None:
        raise no_such("billing.meter", m["id"])
    return 200, meter


def create_meter_event(ctx: Ctx, p: dict[str, Any], _: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """docs.stripe.com/api/billing/meter-event/create. Checked at once: an active meter for
    ``event_name`` ("No active meter found"), the identifier (at most 100 characters; one Stripe has
    seen in its window is refused: 400 "An event already exists with identifier <id>.", observed in test
    mode and relied on by integrations, e.g. langfuse/langfuse#16292), the timestamp (the past 35
    calendar days to 5 minutes ahead), a numeric value. The customer is matched later, asynchronously
    (an unknown one shows up in the meter's error reports, ``meter_event_customer_not_found``): the
    event is accepted and kept, and counts for no subscription."""
    st = ctx.state
    event_name = _req(p, "event_name")
    meter = next((m for m in st.meters.values() if m["event_name"] == event_name and m["status"] == "active"), None)
    if meter is None:
        raise invalid(f"No active meter found with event_name `{event_name}`.", "event_name", None)
    payload = _dict(p.get("payload"), "payload")
    if not payload:
        raise missing("payload")
    identifier = p.get("identifier") or new_id("mevt")
    if len(identifier) > MAX_IDENTIFIER:
        raise invalid(f"identifier is too long (at most {MAX_IDENTIFIER} characters).", "identifier")
    now = st.now()
    timestamp = _int(p["timestamp"], "timestamp") if p.get("timestamp") not in (None, "") else epoch(now)
    if from_epoch(timestamp) < now - METER_EVENT_MAX_AGE:
        raise invalid(
            "Timestamp is too far in the past: it must be within the past 35 calendar days.",
            "timestamp",
            "timestamp_too_far_in_past",
        )
    if from_epoch(timestamp) > now + METER_EVENT_MAX_AHEAD:
        raise invalid("Timestamp must be at most 5 minutes in the future.", "timestamp", "timestamp_in_future")
    value_key = meter["value_settings"]["event_payload_key"]
    customer_key = meter["customer_mapping"]["event_payload_key"]
    if meter["default_aggregation"]["formula"] != "count":
        if payload.get(value_key) in (None, ""):
            raise invalid(f"Missing value in payload[{value_key}].", f"payload[{value_key}]", "parameter_missing")
        value = _decimal(payload[value_key], f"payload[{value_key}]")
    else:
        value = Decimal(1)
    if payload.get(customer_key) in (None, ""):
        raise invalid(f"Missing customer in payload[{customer_key}].", f"payload[{customer_key}]", "parameter_missing")
    if identifier in st.meter_events:
        raise StripeError(400, f"An event already exists with identifier {identifier}.", should_retry=False)
    event = MeterEvent(
        identifier=identifier,
        event_name=event_name,
        customer=str(payload[customer_key]),
        value=value,
        timestamp=timestamp,
        created=st.stamp(),
        payload={str(k): str(v) for k, v in payload.items()},
    )
    st.meter_events[identifier] = event
    return 200, meter_event_view(event)


def meter_event_view(e: MeterEvent) -> dict[str, Any]:
    return {
        "object": "billing.meter_event",
        "created": e.created,
        "event_name": e.event_name,
        "identifier": e.identifier,
        "livemode": False,
        "payload": e.payload,
        "timestamp": e.timestamp,
    }


def list_event_summaries(ctx: Ctx, p: dict[str, Any], m: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """docs.stripe.com/api/billing/meter-event-summary/list: the customer's aggregated usage of one
    meter from ``start_time`` (inclusive) to ``end_time`` (exclusive), both on minute boundaries, in one
    summary or one per ``value_grouping_window`` (``hour``, ``day``: UTC), newest first. Windows with
    no event are left out. Ids are ``mtrusg_...``."""
    st = ctx.state
    meter = st.meters.get(m["id"])
    if meter is None:
        raise no_such("billing.meter", m["id"])
    customer = _req(p, "customer")
    start, end = _int(_req(p, "start_time"), "start_time"), _int(_req(p, "end_time"), "end_time")
    for name, value in (("start_time", start), ("end_time", end)):
        if value % 60:
            raise invalid(f"{name} must be aligned with minute boundaries.", name)
    if end <= start:
        raise invalid("end_time must be after start_time.", "end_time")
    window = p.get("value_grouping_window") or None
    size = {None: end - start, "hour": 3600, "day": 86400}.get(window)
    if size is None:
        raise invalid("Invalid value_grouping_window: must be one of day or hour", "value_grouping_window")
    if window is not None and (start % size or end % size):
        raise invalid(f"start_time and end_time must be aligned with the {window}.", "start_time")
    summaries = []
    t = start
    while t < end:
        upper = min(t + size, end)
        if any(
            e.customer == customer and e.event_name == meter["event_name"] and t <= e.timestamp < upper
            for e in st.meter_events.values()
        ):
            value = billing.aggregate(st, customer, meter, t, upper)
            summaries.append(
                {
                    "id": f"mtrusg_{meter['id'][4:]}_{customer[4:]}_{t}",
                    "object": "billing.meter_event_summary",
                    "aggregated_value": float(value) if value != value.to_integral_value() else int(value),
                    "end_time": upper,
                    "livemode": False,
                    "meter": meter["id"],
                    "start_time": t,
                    "created": t,
                }
            )
        t = upper
    listed = page(summaries, p, f"/v1/billing/meters/{meter['id']}/event_summaries", st.order)
    listed["data"] = [{k: v for k, v in s.items() if k != "created"} for s in listed["data"]]
    return 200, listed


# --------------------------------------------------------------------------- subscriptions


def _request(ctx: Ctx) -> dict[str, Any]:
    return {"id": ctx.request_id, "idempotency_key": ctx.idempotency_key}


def _price(st: State, price_id: Any, param: str) -> dict[str, Any]:
    price = st.prices.get(str(price_id))
    if price is None:
        raise no_such("price", str(price_id), param)
    if not price["active"]:
        raise invalid(f"The price specified is inactive: {price_id}.", param)
    if price.get("recurring") is None:
        raise invalid(f"The price specified is not recurring: {price_id}.", param)
    return price


def _item(st: State, sub_id: str, price: dict[str, Any], quantity: int | None, usage_start: int) -> dict[str, Any]:
    metered = price["recurring"]["usage_type"] == "metered"
    item = {
        "id": new_id("si"),
        "object": "subscription_item",
        "created": st.stamp(),
        "metadata": {},
        "price": price,
        "quantity": None if metered else (quantity or 1),
        "subscription": sub_id,
        "_usage_start": usage_start,
    }
    st.register(item["id"])
    return item


def _sync_periods(sub: dict[str, Any]) -> None:
    """In the 2025+ API the period is on each item (``current_period_start``/``_end``)."""
    for item in sub["items"]["data"]:
        item["current_period_start"] = sub["_period_start"]
        item["current_period_end"] = sub["_period_end"]


def create_subscription(ctx: Ctx, p: dict[str, Any], _: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """docs.stripe.com/api/subscriptions/create. A future ``billing_cycle_anchor`` starts with a short
    first period up to it, prorated unless ``proration_behavior=none``
    (docs.stripe.com/billing/subscriptions/billing-cycle#new-subscriptions); ``backdate_start_date``
    starts it (and the metered usage it bills) earlier (docs.stripe.com/billing/subscriptions/backdating,
    and "Create a backdated subscription" in .../usage-based/manage-billing-setup: usage recorded before
    a subscription's start is billed only when it is backdated over it). The first invoice is made at
    once; one of 0 is paid at once (status ``active``)."""
    st = ctx.state
    customer = _customer(st, str(_req(p, "customer")), "customer")
    items = _list(p.get("items"), "items")
    if not items:
        raise missing("items")
    now = st.stamp()
    anchor = _int(p["billing_cycle_anchor"], "billing_cycle_anchor") if p.get("billing_cycle_anchor") else None
    if anchor is not None and anchor < now:
        raise invalid("billing_cycle_anchor cannot be in the past.", "billing_cycle_anchor")
    backdate = _int(p["backdate_start_date"], "backdate_start_date") if p.get("backdate_start_date") else None
    if backdate is not None and backdate > now:
        raise invalid("backdate_start_date must be in the past.", "backdate_start_date")
    start = backdate if backdate is not None else now
    proration = p.get("proration_behavior") or "create_prorations"
    if proration not in ("create_prorations", "none", "always_invoice"):
        raise invalid(f"Invalid proration_behavior: {proration}", "proration_behavior")
    mode = (_dict(p.get("billing_mode"), "billing_mode") or {}).get("type") or "classic"
    if mode not in ("classic", "flexible"):
        raise invalid(f"Invalid billing_mode[type]: {mode}", "billing_mode[type]")
    sub_id = new_id("sub")
    prices = []
    for i, raw in enumerate(items):
        raw = _dict(raw, f"items[{i}]")
        if raw.get("price") in (None, ""):
            raise missing(f"items[{i}][price]")
        price = _price(st, raw["price"], f"items[{i}][price]")
        if any(x["id"] == price["id"] for x, _ in prices):
            raise invalid("Cannot add multiple subscription items with the same price.", f"items[{i}][price]")
        quantity = _int(raw["quantity"], f"items[{i}][quantity]") if raw.get("quantity") not in (None, "") else None
        prices.append((price, quantity))
    currencies = {x["currency"] for x, _ in prices}
    if len(currencies) > 1:
        raise invalid("All prices on a subscription must have the same currency.", "items")
    period_end = anchor if anchor is not None else billing.stamp(billing.add_months(from_epoch(start), 1))
    sub: dict[str, Any] = {
        "id": sub_id,
        "object": "subscription",
        "billing_cycle_anchor": period_end if anchor is not None else now,
        "billing_mode": {"type": mode},
        "cancel_at": None,
        "cancel_at_period_end": False,
        "canceled_at": None,
        "collection_method": p.get("collection_method") or "charge_automatically",
        "created": now,
        "currency": currencies.pop(),
        "customer": customer["id"],
        "ended_at": None,
        "items": {
            "object": "list",
            "data": [_item(st, sub_id, price, q, start) for price, q in prices],
            "has_more": False,
            "url": f"/v1/subscription_items?subscription={sub_id}",
        },
        "latest_invoice": None,
        "livemode": False,
        "metadata": _metadata(p.get("metadata")),
        "start_date": start,
        "status": "active",
        "_period_start": start,
        "_period_end": period_end,
        "_anchor_day": from_epoch(period_end).day,
    }
    _sync_periods(sub)
    st.subscriptions[sub_id] = sub
    st.register(sub_id)
    # The first invoice: licensed items for the first period (prorated to the anchor, or nothing).
    lines = []
    for item in sub["items"]["data"]:
        if billing.is_metered(st, item):
            continue
        if anchor is None:
            lines.append(billing.licensed_line(st, sub, item, start, period_end))
        elif proration != "none":
            full = billing.stamp(billing.add_months(from_epoch(period_end), -1)), period_end
            made = billing.licensed_line(st, sub, item, start, period_end)
            made["amount"] = billing.round_line(
                Decimal(made["amount"]) * Decimal(period_end - start) / Decimal(full[1] - full[0])
            )
            made["parent"]["subscription_item_details"]["proration"] = True
            lines.append(made)
    ctx.webhooks.emit("customer.subscription.created", sub, request=_request(ctx))
    invoice = make_invoice(ctx, sub, lines, "subscription_create", (now, now))
    collect(ctx, sub, invoice)
    return 200, sub


def _subscription(st: State, sub_id: str) -> dict[str, Any]:
    sub = st.subscriptions.get(sub_id)
    if sub is None:
        raise no_such("subscription", sub_id)
    return sub


def get_subscription(ctx: Ctx, p: dict[str, Any], m: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """docs.stripe.com/api/subscriptions/retrieve."""
    return 200, _subscription(ctx.state, m["id"])


def update_subscription(ctx: Ctx, p: dict[str, Any], m: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """docs.stripe.com/api/subscriptions/update: ``items[i][id]`` with ``price`` swaps an item's price,
    with ``deleted`` removes it, ``price`` alone adds one; ``proration_behavior`` (default
    ``create_prorations``) decides the prorations (billing.py says how); ``cancel_at_period_end``.
    A canceled subscription cannot be updated."""
    st = ctx.state
    sub = _subscription(st, m["id"])
    if sub["status"] == "canceled":
        raise invalid("A canceled subscription can only update its cancellation_details and metadata.", None, None)
    proration = p.get("proration_behavior") or "create_prorations"
    if proration not in ("create_prorations", "none", "always_invoice"):
        raise invalid(f"Invalid proration_behavior: {proration}", "proration_behavior")
    previous: dict[str, Any] = {}
    now = st.stamp()
    changes = _list(p.get("items"), "items")
    planned = []
    for i, raw in enumerate(changes):  # check everything before changing anything
        raw = _dict(raw, f"items[{i}]")
        item = None
        if raw.get("id"):
            item = next((x for x in sub["items"]["data"] if x["id"] == raw["id"]), None)
            if item is None:
                raise no_such("subscription_item", raw["id"], f"items[{i}][id]")
        deleted = _bool(raw.get("deleted", "false"), f"items[{i}][deleted]")
        price = _price(st, raw["price"], f"items[{i}][price]") if raw.get("price") else None
        if item is None and price is None:
            raise missing(f"items[{i}][price]")
        planned.append((item, price, deleted, raw))
    if planned:
        previous["items"] = {"object": "list", "data": [dict(x) for x in sub["items"]["data"]]}
    for item, price, deleted, raw in planned:
        quantity = _int(raw["quantity"], "quantity") if raw.get("quantity") not in (None, "") else None
        if item is not None and (deleted or (price is not None and price["id"] != item["price"]["id"])):
            _retire_item(ctx, sub, item, proration, now, replacement=None if deleted else price)
        if item is not None and deleted:
            sub["items"]["data"].remove(item)
        elif item is not None and price is not None and price["id"] != item["price"]["id"]:
            item["price"] = price
            item["quantity"] = (
                None if price["recurring"]["usage_type"] == "metered" else (quantity or item["quantity"] or 1)
            )
            item["_usage_start"] = now
        elif item is None and price is not None:
            new = _item(st, sub["id"], price, quantity, now)
            sub["items"]["data"].append(new)
            if price["recurring"]["usage_type"] != "metered" and proration != "none":
                billing.proration_items(st, sub, None, price, new["quantity"], now)  # type: ignore[arg-type]
    if "cancel_at_period_end" in p:
        value = _bool(p["cancel_at_period_end"], "cancel_at_period_end")
        if value != sub["cancel_at_period_end"]:
            previous["cancel_at_period_end"] = sub["cancel_at_period_end"]
            previous["cancel_at"] = sub["cancel_at"]
            sub["cancel_at_period_end"] = value
            sub["cancel_at"] = sub["_period_end"] if value else None
            sub["canceled_at"] = now if value else None
    if "metadata" in p:
        previous["metadata"] = dict(sub["metadata"])
        sub["metadata"].update(_metadata(p["metadata"]))
    _sync_periods(sub)
    if previous:
        ctx.webhooks.emit("customer.subscription.updated", sub, previous, request=_request(ctx))
    if proration == "always_invoice" and billing.pending_items(st, sub):
        lines = billing.renewal_lines(st, sub, next_period=None)
        lines = [x for x in lines if x["parent"]["type"] == "invoice_item_details"]
        invoice = make_invoice(ctx, sub, lines, "subscription_update", (now, now))
        collect(ctx, sub, invoice)
    return 200, sub


def _retire_item(
    ctx: Ctx, sub: dict[str, Any], item: dict[str, Any], proration: str, now: int, replacement: dict[str, Any] | None
) -> None:
    st = ctx.state
    if billing.is_metered(st, item):
        # flexible: the usage so far is billed at the old price; classic: it is not billed at all.
        if sub["billing_mode"]["type"] == "flexible" and proration != "none":
            made = billing.metered_line(st, sub, item, item["_usage_start"], now)
            if made is not None:
                price = st.prices[item["price"]["id"]]
                billing.invoice_item(
                    st,
                    sub,
                    amount=made[0]["amount"],
                    description=made[0]["description"],
                    period=(item["_usage_start"], now),
                    price=price,
                    quantity=Decimal(str(made[0]["quantity"])),
                    proration=False,
                )
        return
    if proration != "none":
        new = replacement if replacement is not None and replacement["recurring"]["usage_type"] != "metered" else None
        billing.proration_items(st, sub, st.prices[item["price"]["id"]], new, int(item.get("quantity") or 1), now)


def cancel_subscription(ctx: Ctx, p: dict[str, Any], m: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """docs.stripe.com/api/subscriptions/cancel: ends it now; ``invoice_now`` (default false) bills
    the un-invoiced metered usage and pending items in a final invoice."""
    st = ctx.state
    sub = _subscription(st, m["id"])
    if sub["status"] == "canceled":
        raise invalid(f"This subscription is already canceled: {sub['id']}", None, None)
    if _bool(p.get("invoice_now", "false"), "invoice_now"):
        sub["_period_end"] = st.stamp()
        invoice = make_invoice(
            ctx,
            sub,
            billing.renewal_lines(st, sub, next_period=None),
            "subscription_cycle",
            (sub["_period_start"], sub["_period_end"]),
        )
        collect(ctx, sub, invoice)
    _cancel_now(ctx, sub)
    return 200, sub


def _cancel_now(ctx: Ctx, sub: dict[str, Any]) -> None:
    now = ctx.state.stamp()
    sub["status"] = "canceled"
    sub["canceled_at"] = sub["canceled_at"] or now
    sub["ended_at"] = now
    ctx.webhooks.emit("customer.subscription.deleted", sub, request=_request(ctx))


# --------------------------------------------------------------------------- invoices


def make_invoice(
    ctx: Ctx, sub: dict[str, Any], lines: list[dict[str, Any]], reason: str, period: tuple[int, int]
) -> dict[str, Any]:
    """A draft invoice, then finalized (Stripe finalizes a subscription's invoice about an hour after
    making it, docs.stripe.com/invoicing/integration/workflow-transitions; the stand-in at once)."""
    st = ctx.state
    invoice_id = new_id("in")
    for x in lines:
        x["invoice"] = invoice_id
        item = (x["parent"].get("invoice_item_details") or {}).get("invoice_item")
        if item:
            st.invoice_items[item]["invoice"] = invoice_id
    invoice = invoice_object(st, sub, lines, reason, period, invoice_id)
    st.invoices[invoice_id] = invoice
    st.register(invoice_id)
    sub["latest_invoice"] = invoice_id
    ctx.webhooks.emit("invoice.created", invoice)
    previous = {"status": "draft"}
    invoice["status"] = "open"
    invoice["status_transitions"]["finalized_at"] = st.stamp()
    invoice["hosted_invoice_url"] = f"{ctx.base_url}/i/{invoice_id}"
    ctx.webhooks.emit("invoice.finalized", invoice, previous)
    return invoice


def invoice_object(
    st: State,
    sub: dict[str, Any],
    lines: list[dict[str, Any]],
    reason: str,
    period: tuple[int, int],
    invoice_id: str | None,
) -> dict[str, Any]:
    total = billing.totals(lines)
    customer = st.customers.get(sub["customer"], {})
    return {
        "id": invoice_id,
        "object": "invoice",
        "amount_due": max(total, 0),
        "amount_paid": 0,
        "amount_remaining": max(total, 0),
        "attempt_count": 0,
        "attempted": False,
        "billing_reason": reason,
        "collection_method": sub["collection_method"],
        "created": st.stamp(),
        "currency": sub["currency"],
        "customer": sub["customer"],
        "customer_email": customer.get("email"),
        "customer_name": customer.get("name"),
        "hosted_invoice_url": None,
        "lines": {
            "object": "list",
            "data": lines,
            "has_more": False,
            "total_count": len(lines),
            "url": f"/v1/invoices/{invoice_id}/lines" if invoice_id else "/v1/invoices/upcoming/lines",
        },
        "livemode": False,
        "next_payment_attempt": None,
        "parent": {
            "type": "subscription_details",
            "quote_details": None,
            "subscription_details": {"metadata": dict(sub["metadata"]), "subscription": sub["id"]},
        },
        "period_end": period[1],
        "period_start": period[0],
        "status": "draft",
        "status_transitions": {
            "finalized_at": None,
            "marked_uncollectible_at": None,
            "paid_at": None,
            "voided_at": None,
        },
        "subtotal": total,
        "total": total,
    }


def collect(ctx: Ctx, sub: dict[str, Any], invoice: dict[str, Any]) -> None:
    """Charge an open invoice (``charge_automatically``): nothing due is paid at once; otherwise the
    customer's payment succeeds unless the stand-in was told to make it fail. A failed payment leaves the
    invoice open with ``attempt_count`` and ``next_payment_attempt`` (Smart Retries), makes the
    subscription ``past_due`` and sends ``invoice.payment_failed``
    (docs.stripe.com/billing/subscriptions/overview#failed-payments)."""
    st = ctx.state
    if sub["collection_method"] != "charge_automatically":
        return
    now = st.stamp()
    if invoice["amount_due"] > 0 and sub["customer"] in st.failing_customers:
        invoice["attempt_count"] += 1
        invoice["attempted"] = True
        invoice["next_payment_attempt"] = now + 3 * 86400
        ctx.webhooks.emit("invoice.payment_failed", invoice)
        if sub["status"] == "active":
            sub["status"] = "past_due"
            ctx.webhooks.emit("customer.subscription.updated", sub, {"status": "active"})
        return
    previous = {"status": invoice["status"], "amount_paid": invoice["amount_paid"]}
    invoice["attempt_count"] += 1 if invoice["amount_due"] > 0 else 0
    invoice["attempted"] = invoice["amount_due"] > 0
    invoice["status"] = "paid"
    invoice["amount_paid"] = invoice["amount_due"]
    invoice["amount_remaining"] = 0
    invoice["next_payment_attempt"] = None
    invoice["status_transitions"]["paid_at"] = now
    ctx.webhooks.emit("invoice.paid", invoice, previous)
    if sub["status"] == "past_due" and not any(
        i["status"] == "open"
        for i in st.invoices.values()
        if i["parent"]["subscription_details"]["subscription"] == sub["id"]
    ):
        sub["status"] = "active"
        ctx.webhooks.emit("customer.subscription.updated", sub, {"status": "past_due"})


def renew(ctx: Ctx, sub: dict[str, Any]) -> bool:
    """Close ``sub``'s period if it has ended (by the stand-in's clock): the renewal invoice, then the
    next period, or the end of a subscription canceled at period end. True when it did something."""
    st = ctx.state
    if sub["status"] in ("canceled", "incomplete_expired") or sub["_period_end"] > st.stamp():
        return False
    start, end = sub["_period_start"], sub["_period_end"]
    ending = sub["cancel_at_period_end"]
    following = billing.stamp(billing.add_months(from_epoch(end), 1, sub["_anchor_day"]))
    lines = billing.renewal_lines(st, sub, next_period=None if ending else (end, following))
    invoice = make_invoice(ctx, sub, lines, "subscription_cycle", (start, end))
    sub["_period_start"], sub["_period_end"] = end, following
    for item in sub["items"]["data"]:
        item["_usage_start"] = end
    _sync_periods(sub)
    collect(ctx, sub, invoice)
    if ending:
        sub["_period_start"], sub["_period_end"] = start, end
        _sync_periods(sub)
        _cancel_now(ctx, sub)
    else:
        ctx.webhooks.emit("customer.subscription.updated", sub, {"items": {"data": []}})
    return True


def list_invoices(ctx: Ctx, p: dict[str, Any], _: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """docs.stripe.com/api/invoices/list: ``customer``, ``subscription``, ``status`` filters, newest first."""
    st = ctx.state
    invoices = list(st.invoices.values())
    if p.get("customer"):
        invoices = [i for i in invoices if i["customer"] == p["customer"]]
    if p.get("subscription"):
        invoices = [i for i in invoices if i["parent"]["subscription_details"]["subscription"] == p["subscription"]]
    if p.get("status"):
        invoices = [i for i in invoices if i["status"] == p["status"]]
    return 200, page(invoices, p, "/v1/invoices", st.order)


def get_invoice(ctx: Ctx, p: dict[str, Any], m: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """docs.stripe.com/api/invoices/retrieve."""
    invoice = ctx.state.invoices.get(m["id"])
    if invoice is None:
        raise no_such("invoice", m["id"])
    return 200, invoice


def preview_invoice(ctx: Ctx, p: dict[str, Any], _: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """docs.stripe.com/api/invoices/create_preview: the invoice the subscription's renewal would make
    now (metered usage so far, pending items, the next period's licensed items); it is not stored and
    has no id."""
    st = ctx.state
    sub_id = p.get("subscription")
    if not sub_id:
        customer = _customer(st, str(_req(p, "customer")), "customer")
        sub = next(
            (s for s in st.subscriptions.values() if s["customer"] == customer["id"] and s["status"] != "canceled"),
            None,
        )
        if sub is None:
            raise StripeError(400, "No upcoming invoices for customer: " + customer["id"], code="invoice_upcoming_none")
    else:
        sub = _subscription(st, str(sub_id))
    if sub["status"] == "canceled":
        raise StripeError(400, "No upcoming invoices for subscription: " + sub["id"], code="invoice_upcoming_none")
    end = sub["_period_end"]
    following = billing.stamp(billing.add_months(from_epoch(end), 1, sub["_anchor_day"]))
    lines = billing.renewal_lines(st, sub, next_period=None if sub["cancel_at_period_end"] else (end, following))
    invoice = invoice_object(st, sub, lines, "upcoming", (sub["_period_start"], end), None)
    invoice["next_payment_attempt"] = end
    return 200, {k: v for k, v in invoice.items() if k != "id"}


# --------------------------------------------------------------------------- the billing portal


def create_portal_session(ctx: Ctx, p: dict[str, Any], _: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """docs.stripe.com/api/customer_portal/sessions/create: a short-lived ``url`` of the customer's
    portal (``https://billing.stripe.com/p/session/...``; here the stand-in's own page)."""
    st = ctx.state
    customer = _customer(st, str(_req(p, "customer")), "customer")
    session_id = new_id("bps")
    secret = new_id("test")
    session = {
        "id": session_id,
        "object": "billing_portal.session",
        "configuration": "bpc_standin",
        "created": st.stamp(),
        "customer": customer["id"],
        "flow": None,
        "livemode": False,
        "locale": p.get("locale") or None,
        "on_behalf_of": None,
        "return_url": p.get("return_url") or None,
        "url": f"{ctx.base_url}/p/session/{secret}",
        "_secret": secret,
    }
    st.portal_sessions[session_id] = session
    st.register(session_id)
    return 200, session


# --------------------------------------------------------------------------- the route table

ROUTES: list[tuple[str, re.Pattern[str], Handler]] = [
    (method, re.compile(f"^{pattern}$"), handler)
    for method, pattern, handler in (
        ("POST", r"/v1/customers", create_customer),
        ("GET", r"/v1/customers/(?P<id>[^/]+)", get_customer),
        ("DELETE", r"/v1/customers/(?P<id>[^/]+)", delete_customer),
        ("POST", r"/v1/products", create_product),
        ("GET", r"/v1/products/(?P<id>[^/]+)", get_product),
        ("POST", r"/v1/prices", create_price),
        ("GET", r"/v1/prices", list_prices),
        ("POST", r"/v1/billing/meters", create_meter),
        ("GET", r"/v1/billing/meters", list_meters),
        ("GET", r"/v1/billing/meters/(?P<id>[^/]+)", get_meter),
        ("GET", r"/v1/billing/meters/(?P<id>[^/]+)/event_summaries", list_event_summaries),
        ("POST", r"/v1/billing/meter_events", create_meter_event),
        ("POST", r"/v1/subscriptions", create_subscription),
        ("GET", r"/v1/subscriptions/(?P<id>[^/]+)", get_subscription),
        ("POST", r"/v1/subscriptions/(?P<id>[^/]+)", update_subscription),
        ("DELETE", r"/v1/subscriptions/(?P<id>[^/]+)", cancel_subscription),
        ("GET", r"/v1/invoices", list_invoices),
        ("POST", r"/v1/invoices/create_preview", preview_invoice),
        ("GET", r"/v1/invoices/(?P<id>[^/]+)", get_invoice),
        ("POST", r"/v1/billing_portal/sessions", create_portal_session),
    )
]


def route(method: str, path: str) -> tuple[Handler, dict[str, str]] | None:
    for m, pattern, handler in ROUTES:
        if m == method:
            match = pattern.match(path)
            if match:
                return handler, match.groupdict()
    return None


def known_path(path: str) -> list[str]:
    """The methods that some route answers at ``path``."""
    return sorted({m for m, pattern, _ in ROUTES if pattern.match(path)})


__all__ = ["ROUTES", "Ctx", "public", "renew", "route"]
