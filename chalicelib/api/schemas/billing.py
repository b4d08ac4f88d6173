"""Billing: the invoice preview of the current period, its forecast, and the budget. Money is an
integer number of cents; quantities are decimal strings of the meter's unit."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, StrictBool, StrictInt, field_validator

from chalicelib.api.schemas import ApiInput, ApiModel

MAX_LIMIT = 10**11


class BudgetIn(ApiInput):
    monthly_limit: StrictInt = Field(
        ge=1, le=MAX_LIMIT, description="cents per calendar month (UTC) of usage charges; the base price is not counted"
    )
    thresholds: list[StrictInt] = Field(
        default=[50, 80, 100],
        max_length=10,
        description="percentages of the limit (1-100, each once) that emit billing.threshold_crossed once per period",
    )
    hard_cap: StrictBool = Field(default=False, description="at 100 %, suspend new deploys until the limit is raised")

    @field_validator("thresholds")
    @classmethod
    def whole_percentages_once(cls, value: list[int]) -> list[int]:
        if any(not 1 <= t <= 100 for t in value):
            raise ValueError("each threshold is a whole percentage between 1 and 100")
        if len(set(value)) != len(value):
            raise ValueError("each threshold once")
        return sorted(value)


class BudgetOut(ApiModel):
    monthly_limit: int
    thresholds: list[int]
    hard_cap: bool
    updated_at: datetime
    updated_by: str
    period: str
    spent: int = Field(description="cents: the period's usage charges so far")
    percent: float = Field(description="spent as a percentage of the limit")
    crossed: list[int] = Field(description="thresholds crossed in this period")
    state: Literal["ok", "suspended"]


class LineItemTierOut(ApiModel):
    up_to: str | None
    unit_amount_decimal: str
    flat_amount: int
    quantity: str
    amount: str = Field(description="exact cents, never rounded on its own")


class LineItemOut(ApiModel):
    kind: Literal["base", "usage"]
    meter: str | None
    description: str
    unit: str | None
    quantity: str
    amount: int = Field(description="cents: the exact amount rounded once, half up")
    amount_exact: str
    tiers: list[LineItemTierOut]


class PeriodOut(ApiModel):
    id: str
    start: datetime
    end: datetime


class ForecastItemOut(ApiModel):
    meter: str
    quantity: str
    amount: int


class ForecastOut(ApiModel):
    method: Literal["run_rate"]
    subtotal: int
    usage: int
    elapsed_hours: str
    line_items: list[ForecastItemOut]


class BillingOut(ApiModel):
    namespace: str
    plan: str
    currency: str
    period: PeriodOut
    line_items: list[LineItemOut]
    subtotal: int = Field(description="cents: the sum of the rounded line items, base price included")
    usage: int = Field(description="cents: the usage line items (what a budget caps)")
    forecast: ForecastOut
    budget: BudgetOut | None
    state: Literal["ok", "suspended"] = Field(description="suspended: a budget's hard cap stops new deploys")


# ---------------------------------------------------------------------------- the billing provider (Stripe)


class ProviderLineOut(ApiModel):
    description: str
    kind: Literal["base", "usage", "proration", "other"]
    meter: str | None
    quantity: str = Field(description="units of the meter for usage lines (decimal string), else a count")
    amount: int = Field(description="cents, as the provider rounded it (once per line)")


class ProviderPeriodOut(ApiModel):
    start: datetime
    end: datetime


class ProviderInvoiceOut(ApiModel):
    id: str | None = Field(description="the provider's invoice id; null for a preview")
    status: str
    currency: str
    total: int
    amount_due: int
    amount_paid: int
    period: ProviderPeriodOut
    created: datetime | None
    hosted_invoice_url: str | None
    attempt_count: int
    billing_reason: str | None
    lines: list[ProviderLineOut]


class ProviderSubscriptionOut(ApiModel):
    id: str
    status: str = Field(description="as Stripe's webhooks last said: active, past_due, canceled, ...")
    cancel_at_period_end: bool
    current_period_end: datetime | None


class ProviderPreviewOut(ApiModel):
    invoice: ProviderInvoiceOut | None = Field(description="Stripe's preview of the invoice that closes the period")
    difference: int | None = Field(description="cents: Stripe's preview total minus the ledger's subtotal")
    subscription: ProviderSubscriptionOut | None
    unavailable: str | None = Field(description="why Stripe's preview could not be read, if it could not")


class BillingWithProviderOut(BillingOut):
    provider: ProviderPreviewOut | None = None


class LedgerItemOut(ApiModel):
    kind: Literal["base", "usage"]
    meter: str | None
    quantity: str
    amount: int


class LedgerRatingOut(ApiModel):
    period: str
    subtotal: int
    line_items: list[LedgerItemOut]


class InvoiceOut(ProviderInvoiceOut):
    ledger: LedgerRatingOut | None = Field(
        description="the ledger's rating of the calendar month whose usage the invoice bills (null when it bills none)"
    )


class InvoicesOut(ApiModel):
    invoices: list[InvoiceOut]


class PortalOut(ApiModel):
    url: str = Field(description="a short-lived address of the namespace's Stripe billing portal")


class PlanIn(ApiInput):
    plan: str = Field(min_length=1, max_length=40, description="a plan of GET /v1/plans")


class ReconcileIn(ApiInput):
    fix: StrictBool = Field(default=False, description="re-send what Stripe is missing")


class ReconcileRowOut(ApiModel):
    meter: str
    day: str
    ledger: str = Field(description="units the ledger reported that day (decimal string)")
    stripe: str = Field(description="units in Stripe's meter event summary of that day")
    difference: str = Field(description="stripe minus ledger")
    in_flight: bool = Field(description="a report of that day is being sent: not judged")


class ReconcileFixOut(ApiModel):
    meter: str
    day: str
    identifier: str
    sent: str


class ReconciliationOut(ApiModel):
    namespace: str
    start: datetime
    end: datetime
    rows: list[ReconcileRowOut]
    mismatches: list[ReconcileRowOut]
    fixed: list[ReconcileFixOut]
    notes: list[str]
