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
