"""Metering: meters and plans (data, not code), usage quantities and money as integers, and the
time units of billing (the hour bucket and the monthly period).

Quantities are integers in millionths of a meter's unit (``MICROS`` per unit): never a float. Money is
an integer number of the currency's smallest unit (cents); unit prices are decimal strings of cents, as
Stripe's ``unit_amount_decimal``. A line item is computed exactly and rounded once, half up, to a cent.

The ledger (its store, ``UsageLedger``, is in stores.py) is the source of truth for usage; billing
(Stripe) is fed from it and reconciled against it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Literal

from chalicelib.domain.errors import ValidationError
from chalicelib.domain.ports import ResourceQuota

MICROS = 1_000_000
DECIMAL_PLACES = 6
MAX_EVENT_AGE = timedelta(days=35)
MAX_EVENT_AHEAD = timedelta(minutes=5)
DEDUP_KEEP = timedelta(days=36)  # dedup claims outlive the oldest timestamp ingestion accepts
MAX_BATCH = 1000
MAX_EVENT_ID = 128
MAX_VALUE_UNITS = Decimal(10) ** 12  # per event: far above any real usage, far below DynamoDB's 38 digits

Aggregation = Literal["sum", "max"]


# --------------------------------------------------------------------------- units and time


def to_micros(value: Decimal) -> int:
    """A finite, non-negative decimal with at most 6 places -> millionths. ValueError otherwise."""
    if not value.is_finite() or value < 0 or value > MAX_VALUE_UNITS:
        raise ValueError("must be a finite number between 0 and 10^12")
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -DECIMAL_PLACES and value != value.quantize(Decimal(1).scaleb(-6)):
        raise ValueError("at most 6 decimal places")
    return int(value * MICROS)


def quantize_micros(value: Decimal) -> int:
    """Any non-negative decimal -> millionths, rounded half up (computed quantities, e.g. seconds/3600)."""
    try:
        return int((value * MICROS).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    except InvalidOperation as e:
        raise ValueError(str(e)) from e


def format_micros(micros: int) -> str:
    """1_500_000 -> "1.5"; 3_000_000 -> "3": the API's decimal strings."""
    text = format(Decimal(micros).scaleb(-DECIMAL_PLACES).normalize(), "f")
    return text


def hour_of(when: datetime) -> datetime:
    return when.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def hour_key(when: datetime) -> str:
    """``2026-12-01T13``: the bucket's hour, in UTC."""
    return hour_of(when).strftime("%Y-%m-%dT%H")


def parse_hour_key(key: str) -> datetime:
    return datetime.strptime(key, "%Y-%m-%dT%H").replace(tzinfo=UTC)


def period_of(when: datetime) -> str:
    """``2026-12``: the billing period (the calendar month in UTC)."""
    return when.astimezone(UTC).strftime("%Y-%m")


def period_bounds(period: str) -> tuple[datetime, datetime]:
    start = datetime.strptime(period, "%Y-%m").replace(tzinfo=UTC)
    end = (start + timedelta(days=32)).replace(day=1)
    return start, end


# --------------------------------------------------------------------------- the catalog


@dataclass(frozen=True)
class Meter:
    name: str
    display_name: str
    unit: str
    aggregation: Aggregation
    ingest: bool  # accepted by POST /v1/usage/events
    source: str  # where the platform measures it: runtime_instances, runtime_proxy, membership
    event_name: str  # the billing provider's meter event name


@dataclass(frozen=True)
class Tier:
    up_to: int | None  # whole units; None = no upper bound
    unit_amount_decimal: Decimal  # cents per unit
    flat_amount: int = 0  # cents, charged once when any quantity reaches the tier


Quota = ResourceQuota  # a plan's runtime quota: the one definition (micro's resourcequota) onboarding applies


@dataclass(frozen=True)
class Plan:
    name: str
    display_name: str
    base_price: int  # cents per period
    quota: Quota
    prices: Mapping[str, tuple[Tier, ...]]  # meter -> graduated tiers

    def included(self, meter: str) -> int | None:
        """Whole units of ``meter`` included at no charge (a first tier priced at 0), or None."""
        tiers = self.prices.get(meter) or ()
        if tiers and tiers[0].unit_amount_decimal == 0 and tiers[0].flat_amount == 0:
            return tiers[0].up_to
        return None


@dataclass(frozen=True)
class Catalog:
    currency: str
    meters: Mapping[str, Meter]
    plans: Mapping[str, Plan]

    def meter(self, name: str) -> Meter | None:
        return self.meters.get(name)

    def quotas(self) -> dict[str, Quota]:
        """Plan name -> runtime quota: what onboarding applies to a new namespace."""
        return {name: plan.quota for name, plan in self.plans.items()}

    def plan(self, name: str) -> Plan:
        try:
            return self.plans[name]
        except KeyError:
            raise ValidationError(f"unknown plan {name!r}", {"plan": name}) from None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Catalog:
        """Builds and checks the catalog (every plan prices every meter with well-formed tiers)."""
        meters = {}
        for m in data["meters"]:
            meter = Meter(
                name=m["name"],
                display_name=m["display_name"],
                unit=m["unit"],
                aggregation=m["aggregation"],
                ingest=bool(m["ingest"]),
                source=m["source"],
                event_name=m.get("event_name", m["name"]),
            )
            if meter.aggregation not in ("sum", "max"):
                raise ValueError(f"meter {meter.name}: aggregation must be sum or max")
            meters[meter.name] = meter
        plans = {}
        for p in data["plans"]:
            prices: dict[str, tuple[Tier, ...]] = {}
            for meter_name, tiers in p["prices"].items():
                if meter_name not in meters:
                    raise ValueError(f"plan {p['name']}: unknown meter {meter_name}")
                built = tuple(
                    Tier(
                        up_to=None if t.get("up_to") is None else int(t["up_to"]),
                        unit_amount_decimal=Decimal(str(t["unit_amount_decimal"])),
                        flat_amount=int(t.get("flat_amount", 0)),
                    )
                    for t in tiers
                )
                bounds = [t.up_to for t in built]
                if not built or bounds[-1] is not None or any(b is None for b in bounds[:-1]):
                    raise ValueError(f"plan {p['name']}, meter {meter_name}: only the last tier is unbounded")
                finite = [b for b in bounds if b is not None]
                if finite != sorted(set(finite)):
                    raise ValueError(f"plan {p['name']}, meter {meter_name}: tiers must rise")
                prices[meter_name] = built
            missing = set(meters) - set(prices)
            if missing:
                raise ValueError(f"plan {p['name']}: no price for {sorted(missing)}")
            q = p["quota"]
            plans[p["name"]] = Plan(
                name=p["name"],
                display_name=p["display_name"],
                base_price=int(p["base_price"]),
                quota=Quota(int(q["memory_mib"]), int(q["cpu_millicores"]), int(q["ephemeral_storage_mib"])),
                prices=prices,
            )
        return cls(currency=data["currency"], meters=meters, plans=plans)


# --------------------------------------------------------------------------- usage


@dataclass(frozen=True)
class UsageEvent:
    """One validated usage event: ``value`` in millionths, ``service`` "" when not given."""

    id: str
    namespace: str
    meter: str
    value: int
    timestamp: datetime
    service: str = ""
    dimensions: Mapping[str, str] = field(default_factory=dict)

    @property
    def hour(self) -> str:
        return hour_key(self.timestamp)

    @property
    def period(self) -> str:
        return period_of(self.timestamp)


@dataclass(frozen=True)
class Rejection:
    index: int
    code: str
    message: str


@dataclass
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    rejected: list[Rejection] = field(default_factory=list)


@dataclass(frozen=True)
class Bucket:
    """An hour of one meter of one service of a namespace: what was used, and what billing has been told."""

    namespace: str
    meter: str
    service: str
    hour: str
    total: int
    reported: int
    reports: int  # how many reports were recorded (the next identifier's sequence is reports + 1)
    pending: PendingReport | None = None
    refused: str | None = None  # why billing last refused its report (kept until a report is recorded)
    unbillable: bool = False  # given up: past what billing accepts (out of the unreported index)


@dataclass(frozen=True)
class PendingReport:
    """An intent written before the billing call: a re-run sends exactly this again."""

    seq: int
    value: int
    identifier: str
    at: datetime
