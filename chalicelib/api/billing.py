"""A namespace's billing: the current period's invoice preview and forecast, and its budget.

Who may see it: money is for the people who pay, as on Vercel (owners and the billing role), Render
(workspace admins) and GitHub (owners and billing managers): the ``billing`` scope, so admins and
owners. Members and viewers see the quantities they use through ``GET .../usage``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalice.app import Blueprint

from chalicelib.api.registry import Auth, Call, registry
from chalicelib.composition import get_container
from chalicelib.domain.errors import (
    BillingRejectedError,
    ConflictError,
    DependencyUnavailableError,
    NotFoundError,
    ValidationError,
)

if TYPE_CHECKING:
    from chalicelib.domain.ports import InvoiceSummary
    from chalicelib.domain.rating import Rating
    from chalicelib.domain.services.billing_account import ProviderPreview
    from chalicelib.domain.services.budgets import BudgetStatus, Overview

bp = Blueprint(__name__)
route = registry.routes(bp, tag="billing", auth=Auth(scope="billing", role="admin"))
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


@route(
    BILLING,
    "GET",
    response=f"{S}:BillingWithProviderOut",
    errors=(NotFoundError,),
    summary="The current period's invoice preview (line items in cents, rounded once per item, half up), "
    "its run-rate forecast, the budget's state, and Stripe's own preview of the next invoice beside it",
)
def get_billing(call: Call) -> dict[str, Any]:
    c = get_container()
    view = billing_view(c.budgets.overview(call.params["ns"]))
    view["provider"] = provider_view(c.billing_account.preview(call.params["ns"]), view["subtotal"])
    return view


@route(
    BILLING + "/budget",
    "GET",
    response=f"{S}:BudgetOut",
    errors=(NotFoundError,),
    summary="The budget against the current period's spend; 404 when none is set",
)
def get_budget(call: Call) -> dict[str, Any]:
    return budget_view(get_container().budgets.get(call.params["ns"]))


@route(
    BILLING + "/budget",
    "PUT",
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


# ---------------------------------------------------------------------------- Stripe: invoices, portal, plan


def invoice_view(invoice: InvoiceSummary) -> dict[str, Any]:
    from chalicelib.domain.metering import format_micros

    return {
        "id": invoice.id,
        "status": invoice.status,
        "currency": invoice.currency,
        "total": invoice.total,
        "amount_due": invoice.amount_due,
        "amount_paid": invoice.amount_paid,
        "period": {"start": invoice.period_start, "end": invoice.period_end},
        "created": invoice.created,
        "hosted_invoice_url": invoice.hosted_invoice_url,
        "attempt_count": invoice.attempt_count,
        "billing_reason": invoice.billing_reason,
        "lines": [
            {
                "description": line.description,
                "kind": line.kind,
                "meter": line.meter,
                "quantity": format_micros(line.quantity) if line.kind == "usage" else str(line.quantity),
                "amount": line.amount,
            }
            for line in invoice.lines
        ],
    }


def provider_view(p: ProviderPreview, subtotal: int) -> dict[str, Any]:
    s = p.subscription
    return {
        "invoice": invoice_view(p.invoice) if p.invoice is not None else None,
        "difference": p.invoice.total - subtotal if p.invoice is not None else None,
        "subscription": {
            "id": s.subscription_id,
            "status": s.status,
            "cancel_at_period_end": s.cancel_at_period_end,
            "current_period_end": s.current_period_end,
        }
        if s is not None
        else None,
        "unavailable": p.unavailable,
    }


def ledger_view(rating: Rating) -> dict[str, Any]:
    from chalicelib.domain.metering import format_micros

    return {
        "period": rating.period,
        "subtotal": rating.subtotal,
        "line_items": [
            {
                "kind": item.kind,
                "meter": item.meter,
                "quantity": format_micros(item.quantity),
                "amount": item.amount,
            }
            for item in rating.line_items
        ],
    }


@route(
    "/v1/namespaces/{ns}/invoices",
    "GET",
    response=f"{S}:InvoicesOut",
    errors=(NotFoundError, DependencyUnavailableError, BillingRejectedError, ValidationError),
    query={"limit": "at most this many, newest first (1-100, default 12)"},
    summary="The namespace's invoices from Stripe, newest first, each with the ledger's rating of the month "
    "whose usage it bills",
)
def list_invoices(call: Call) -> dict[str, Any]:
    limit = call.int_param("limit", 12, 1, 100)
    found = get_container().billing_account.invoices(call.params["ns"], limit)
    return {
        "invoices": [
            {**invoice_view(i.invoice), "ledger": ledger_view(i.ledger) if i.ledger is not None else None}
            for i in found
        ]
    }


@route(
    BILLING + "/portal",
    "GET",
    response=f"{S}:PortalOut",
    errors=(NotFoundError, ConflictError, DependencyUnavailableError, BillingRejectedError),
    summary="A short-lived address of the namespace's Stripe billing portal (payment methods, invoices)",
)
def billing_portal(call: Call) -> dict[str, Any]:
    c = get_container()
    ns = call.params["ns"]
    return {"url": c.billing_account.portal_url(ns, f"{c.settings.public_url}/")}


@route(
    "/v1/namespaces/{ns}",
    "PATCH",
    request=f"{S}:PlanIn",
    response="chalicelib.api.schemas.accounts:NamespaceOut",
    errors=(NotFoundError, ValidationError, ConflictError, DependencyUnavailableError, BillingRejectedError),
    summary="Change the namespace's plan now: Stripe prorates the base price; the runtime quota follows",
)
def change_plan(call: Call) -> dict[str, Any]:
    from chalicelib.api.namespaces import namespace_view

    ns = get_container().namespaces.change_plan(call.params["ns"], call.body.plan)
    call.audit_target = f"plan:{ns.plan}"
    return namespace_view(ns)


def reconciliation_view(r: Any) -> dict[str, Any]:
    return {
        "namespace": r.namespace,
        "start": r.start,
        "end": r.end,
        "rows": [row.as_dict() for row in r.rows],
        "mismatches": [row.as_dict() for row in r.mismatches],
        "fixed": r.fixed,
        "notes": r.notes,
    }


@route(
    BILLING + "/reconciliation",
    "GET",
    response=f"{S}:ReconciliationOut",
    errors=(NotFoundError, ConflictError, DependencyUnavailableError, BillingRejectedError),
    summary="The ledger's reported usage per meter and day (the last 35 days) against Stripe's meter event summaries",
)
def get_reconciliation(call: Call) -> dict[str, Any]:
    return reconciliation_view(get_container().reconciliation.check(call.params["ns"]))


@route(
    BILLING + "/reconciliation",
    "POST",
    request=f"{S}:ReconcileIn",
    response=f"{S}:ReconciliationOut",
    errors=(NotFoundError, ConflictError, DependencyUnavailableError, BillingRejectedError),
    summary="Reconcile now; with fix, re-send to Stripe what its summaries are missing",
)
def post_reconciliation(call: Call) -> dict[str, Any]:
    call.audit_target = "reconciliation"
    return reconciliation_view(get_container().reconciliation.check(call.params["ns"], fix=call.body.fix))
