"""A namespace's billing: the current period's invoice preview and forecast, and its budget.

Who may see it: money is for the people who pay, as on Vercel (owners and the billing role), Render
(workspace admins) and GitHub (owners and billing managers): the ``billing`` scope, so admins and
owners. Members and viewers see the quantities they use through ``GET .../usage``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalice.app import Blueprint

from chalicelib.api.registry import Auth, Call, registry
from chalicelib.composition import get_container
from chalicelib.domain.errors import NotFoundError, ValidationError

if TYPE_CHECKING:
    from chalicelib.domain.services.budgets import BudgetStatus, Overview

bp = Blueprint(__name__)
S = "chalicelib.api.schemas.billing"
BILLING = "/v1/namespaces/{ns}/billing"


def budget_view(b: BudgetStatus) -> dict[str, Any]:
    return {
        "monthly_limit": b.budget.monthly_limit,
        "thresholds": list(b.budget.thresholds),
        "hard_cap": b.budget.hard_cap,
        "updated_at": b.budget.updated_at,
        "updated_by": b.budget.updated_by,
        "period": b.period,
        "spent": b.spent,
        "percent": b.percent,
        "crossed": list(b.crossed),
        "state": b.state,
    }


def billing_view(o: Overview) -> dict[str, Any]:
    from chalicelib.domain.metering import format_micros

    catalog = get_container().catalog
    rating, forecast = o.preview.rating, o.preview.forecast
    return {
        "namespace": o.namespace,
        "plan": rating.plan,
        "currency": rating.currency,
        "period": {"id": rating.period, "start": o.preview.period_start, "end": o.preview.period_end},
        "line_items": [
            {
                "kind": item.kind,
                "meter": item.meter,
                "description": item.description,
                "unit": catalog.meters[item.meter].unit if item.meter else None,
                "quantity": format_micros(item.quantity),
                "amount": item.amount,
                "amount_exact": _decimal(item.exact),
                "tiers": [
                    {
                        "up_to": None if t.up_to is None else str(t.up_to),
                        "unit_amount_decimal": _decimal(t.unit_amount_decimal),
                        "flat_amount": t.flat_amount,
                        "quantity": format_micros(t.quantity),
                        "amount": _decimal(t.amount),
                    }
                    for t in item.tiers
                ],
            }
            for item in rating.line_items
        ],
        "subtotal": rating.subtotal,
        "usage": rating.usage,
        "forecast": {
            "method": forecast.method,
            "subtotal": forecast.subtotal,
            "usage": forecast.usage,
            "elapsed_hours": _decimal(round(_hours(forecast.elapsed), 6)),
            "line_items": [
                {"meter": item.meter, "quantity": format_micros(item.quantity), "amount": item.amount}
                for item in forecast.rating.line_items
                if item.meter is not None
            ],
        },
        "budget": budget_view(o.budget) if o.budget is not None else None,
        "state": o.state,
    }


def _hours(delta: Any) -> Any:
    from decimal import Decimal

    return Decimal(int(delta.total_seconds())) / 3600


def _decimal(value: Any) -> str:
    text = format(value.normalize(), "f")
    return text


@registry.route(
    bp,
    BILLING,
    "GET",
    tag="billing",
    auth=Auth(scope="billing", role="admin"),
    response=f"{S}:BillingOut",
    errors=(NotFoundError,),
    summary="The current period's invoice preview (line items in cents, rounded once per item, half up), "
    "its run-rate forecast and the budget's state",
)
def get_billing(call: Call) -> dict[str, Any]:
    return billing_view(get_container().budgets.overview(call.params["ns"]))


@registry.route(
    bp,
    BILLING + "/budget",
    "GET",
    tag="billing",
    auth=Auth(scope="billing", role="admin"),
    response=f"{S}:BudgetOut",
    errors=(NotFoundError,),
    summary="The budget against the current period's spend; 404 when none is set",
)
def get_budget(call: Call) -> dict[str, Any]:
    return budget_view(get_container().budgets.get(call.params["ns"]))


@registry.route(
    bp,
    BILLING + "/budget",
    "PUT",
    tag="billing",
    auth=Auth(scope="billing", role="admin"),
    request=f"{S}:BudgetIn",
    response=f"{S}:BudgetOut",
    errors=(NotFoundError, ValidationError),
    summary="Set the monthly budget of usage charges, its thresholds and hard cap; evaluated at once "
    "(a raised limit lifts a suspension)",
)
def put_budget(call: Call) -> dict[str, Any]:
    b = call.body
    status, _ = get_container().budgets.set(
        call.params["ns"], b.monthly_limit, b.thresholds, b.hard_cap, call.principal.actor
    )
    call.audit_target = "budget"
    return budget_view(status)
