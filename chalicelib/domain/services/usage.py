"""A namespace's usage over time, from the ledger's hourly buckets (``GET /v1/namespaces/{ns}/usage``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from chalicelib.domain.clock import Clock
from chalicelib.domain.errors import ValidationError
from chalicelib.domain.metering import Catalog, hour_key, hour_of, parse_hour_key, period_bounds, period_of
from chalicelib.domain.model import DNS_LABEL
from chalicelib.domain.stores import UsageLedger

Granularity = Literal["hour", "day"]
MAX_RANGE = timedelta(days=35)


@dataclass(frozen=True)
class UsagePoint:
    meter: str
    service: str  # "" for usage without a service
    start: datetime
    quantity: int  # millionths of the meter's unit


@dataclass(frozen=True)
class UsageSeries:
    start: datetime
    end: datetime
    granularity: Granularity
    points: list[UsagePoint]
    totals: dict[str, int]  # meter -> quantity over the range (sum, or the maximum for ``max`` meters)


class UsageService:
    def __init__(self, ledger: UsageLedger, catalog: Catalog, clock: Clock) -> None:
        self._ledger = ledger
        self._catalog = catalog
        self._clock = clock

    def series(
        self,
        ns_id: str,
        *,
        meter: str | None = None,
        service: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        granularity: str = "hour",
    ) -> UsageSeries:
        """Usage in ``[start, end)``, rounded out to whole hours (or days), at most 35 days. Defaults:
        from the start of the current period (the calendar month, UTC) to the end of this hour."""
        if granularity not in ("hour", "day"):
            raise _invalid("granularity", "hour or day")
        if meter is not None and self._catalog.meter(meter) is None:
            raise _invalid("meter", f"one of {sorted(self._catalog.meters)}")
        if service is not None and not DNS_LABEL.match(service):
            raise _invalid("service", "a service name (a DNS label)")
        if end is None:
            end = hour_of(self._clock.now()) + timedelta(hours=1)
        if start is None:
            start = period_bounds(period_of(end - timedelta(microseconds=1)))[0]
        start, end = _floor(start, granularity), _ceil(end, granularity)
        if end <= start:
            raise _invalid("to", "must be after from")
        if end - start > MAX_RANGE:
            raise _invalid("from", f"at most {MAX_RANGE.days} days between from and to")
        buckets = self._ledger.buckets(ns_id, hour_key(start), hour_key(end), meter=meter, service=service)
        points: dict[tuple[datetime, str, str], int] = {}
        for b in buckets:
            at = _floor(parse_hour_key(b.hour), granularity)
            key = (at, b.meter, b.service)
            points[key] = self._combine(b.meter, points.get(key), b.total)
        totals: dict[str, int] = {m: 0 for m in sorted(self._catalog.meters) if meter is None or m == meter}
        for (_, m, _), quantity in points.items():
            if m in totals:
                totals[m] = self._combine(m, totals[m], quantity)
        ordered = [UsagePoint(m, s, at, q) for (at, m, s), q in sorted(points.items(), key=lambda kv: kv[0])]
        return UsageSeries(start, end, "hour" if granularity == "hour" else "day", ordered, totals)

    def _combine(self, meter: str, current: int | None, value: int) -> int:
        if current is None:
            return value
        found = self._catalog.meter(meter)
        return max(current, value) if found is not None and found.aggregation == "max" else current + value


def _floor(when: datetime, granularity: str) -> datetime:
    hour = hour_of(when)
    return hour if granularity == "hour" else hour.replace(hour=0)


def _ceil(when: datetime, granularity: str) -> datetime:
    floor = _floor(when, granularity)
    if floor == when:
        return floor
    return floor + (timedelta(hours=1) if granularity == "hour" else timedelta(days=1))


def _invalid(field: str, message: str) -> ValidationError:
    return ValidationError(f"{field}: {message}", {"fields": [{"field": field, "message": message}]})
