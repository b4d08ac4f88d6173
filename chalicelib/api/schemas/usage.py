"""Models of usage ingestion, ingest tokens, plans and the usage query."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, WithJsonSchema

from chalicelib.api.schemas import ApiInput, ApiModel

# A JSON number, read exactly (the route parses the body with Decimal; never a float).
ExactNumber = Annotated[Decimal, WithJsonSchema({"type": "number", "minimum": 0})]


class UsageEventIn(ApiInput):
    id: str = Field(min_length=1, max_length=128, description="the idempotency key: counted once, however retried")
    namespace: str = Field(description="a namespace placed in the ingest token's region")
    meter: str = Field(description="a meter that accepts ingestion (GET /v1/plans lists the meters)")
    value: ExactNumber = Field(
        description="a finite, non-negative number with at most 6 decimal places, read exactly (never as a float)",
    )
    timestamp: datetime = Field(description="when it was used: at most 35 days old, at most 5 minutes ahead")
    service: str | None = Field(default=None, description="the service it belongs to (a DNS label)")
    dimensions: dict[str, str] | None = Field(default=None, description="at most 10 strings; not stored")


class UsageBatchIn(ApiInput):
    events: list[UsageEventIn] = Field(max_length=1000)


class RejectionOut(ApiModel):
    index: int = Field(description="the event's position in the batch")
    code: Literal[
        "invalid_event",
        "invalid_id",
        "unknown_meter",
        "meter_not_ingestible",
        "namespace_not_allowed",
        "invalid_value",
        "timestamp_out_of_range",
    ]
    message: str


class IngestOut(ApiModel):
    accepted: int = Field(description="events counted now")
    duplicates: int = Field(description="events counted before (or twice in this batch): not counted again")
    rejected: list[RejectionOut]


class IngestTokenIn(ApiInput):
    name: str = Field(min_length=1, max_length=64, description="what it is for, e.g. the cluster it is installed on")


class IngestTokenOut(ApiModel):
    id: str
    region: str
    name: str
    created_by: str
    created_at: datetime
    last_used_at: datetime | None = None


class IngestTokenCreatedOut(IngestTokenOut):
    token: str = Field(description="the secret (mp_ing_...): shown once, stored only as a hash")


class IngestTokensOut(ApiModel):
    tokens: list[IngestTokenOut]


class MeterOut(ApiModel):
    name: str
    display_name: str
    unit: str
    aggregation: Literal["sum", "max"]
    ingest: bool = Field(description="accepted by POST /v1/usage/events")


class TierOut(ApiModel):
    up_to: str | None = Field(description="whole units this tier reaches; null: no upper bound")
    unit_amount_decimal: str = Field(description="cents per unit, a decimal string")
    flat_amount: int = Field(description="cents, once any quantity reaches the tier")


class QuotaOut(ApiModel):
    memory_mib: int
    cpu_millicores: int
    ephemeral_storage_mib: int


class PlanOut(ApiModel):
    name: str
    display_name: str
    base_price: int = Field(description="cents per period (a calendar month, UTC)")
    quota: QuotaOut
    prices: dict[str, list[TierOut]] = Field(description="meter -> graduated tiers")
    included: dict[str, str | None] = Field(description="meter -> whole units included at no charge")


class PlansOut(ApiModel):
    currency: str
    meters: list[MeterOut]
    plans: list[PlanOut]


class UsagePointOut(ApiModel):
    meter: str
    service: str | None = Field(description="null: usage reported without a service")
    start: datetime = Field(description="the hour's or the day's start (UTC)")
    quantity: str = Field(description="a decimal string in the meter's unit")


class UsageTotalOut(ApiModel):
    meter: str
    quantity: str


class UsageOut(ApiModel):
    model_config = ConfigDict(extra="forbid", serialize_by_alias=True, validate_by_name=True)

    from_: datetime = Field(alias="from")
    to: datetime
    granularity: Literal["hour", "day"]
    series: list[UsagePointOut]
    totals: list[UsageTotalOut]
