"""Reconciliation: the ledger's reported usage per customer, meter and day against the billing
provider's own totals (Stripe's meter event summaries, ``value_grouping_window=day``, UTC days).

The ledger decides what was sent: a bucket's ``reported`` is what its recorded reports carried, whatever
Stripe's 24-hour identifier window remembers. Per day, a ``sum`` meter compares the sum of its buckets'
``reported``; a ``max`` meter (seats, Stripe's ``last``) the ``reported`` of the day's last reported
bucket. A day with a report in flight (an intent written, its result not yet) is shown, not judged.

``check(ns, fix=True)`` re-sends what the provider is missing: for a ``sum`` meter the difference, for a
``max`` meter the ledger's value, as one meter event at the day's last reported hour (so it falls in
the same invoice period, after the subscription's start), under the identifier
``fix:<ns>:<meter>:<day>:<provider's value>`` (a second fix that saw the same shortfall sends the same
identifier, which the provider drops). More at the provider than in the ledger is reported, not changed.
Only days within the provider's 35-day window are checked (older ones can be neither read back usefully
nor fixed). ``daily(ns)`` (the daily schedule) checks every day up to yesterday and emits
``billing.reconciliation_mismatch`` with the differences, once per namespace and day."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from chalicelib.domain.clock import Clock
from chalicelib.domain.errors import BillingRejectedError, ConflictError, NotFoundError
from chalicelib.domain.events import Event
from chalicelib.domain.metering import Bucket, Catalog, format_micros, hour_key, parse_hour_key
from chalicelib.domain.ports import BillingPort, MeterEvent
from chalicelib.domain.services.metering_run import MAX_IDENTIFIER
from chalicelib.domain.stores import NamespaceStore, UsageLedger

DAY = timedelta(days=1)
WINDOW_DAYS = 35  # Stripe takes meter events from the past 35 calendar days


@dataclass(frozen=True)
class DayRow:
    meter: str
    day: str  # YYYY-MM-DD (UTC)
    ledger: int  # millionths
    provider: int
    in_flight: bool = False
    last_hour: str | None = None  # the day's last reported hour (where a fix goes)

    @property
    def difference(self) -> int:
        """Provider minus ledger: negative when the provider is missing usage."""
        return self.provider - self.ledger

    def as_dict(self) -> dict[str, object]:
        return {
            "meter": self.meter,
            "day": self.day,
            "ledger": format_micros(self.ledger),
            "stripe": format_micros(self.provider),
            "difference": _signed(self.difference),
            "in_flight": self.in_flight,
        }


def _signed(micros: int) -> str:
    return ("-" if micros < 0 else "") + format_micros(abs(micros))


@dataclass
class Reconciliation:
    namespace: str
    start: datetime
    end: datetime
    rows: list[DayRow] = field(default_factory=list)
    fixed: list[dict[str, object]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def mismatches(self) -> list[DayRow]:
        return [r for r in self.rows if r.difference != 0 and not r.in_flight]


def fix_identifier(ns: str, meter: str, day: str, provider: int) -> str:
    identifier = f"fix:{ns}:{meter}:{day}:{provider}"
    if len(identifier) <= MAX_IDENTIFIER:
        return identifier
    return f"{identifier[: MAX_IDENTIFIER - 33]}~{hashlib.sha256(identifier.encode()).hexdigest()[:32]}"


Claim = Callable[[str, str, list[Event]], bool]  # (namespace, day, events) -> True when first for that day


class ReconciliationService:
    def __init__(
        self,
        ledger: UsageLedger,
        billing: BillingPort,
        catalog: Catalog,
        namespaces: NamespaceStore,
        clock: Clock,
        claim: Claim,
    ) -> None:
        self._ledger = ledger
        self._billing = billing
        self._catalog = catalog
        self._namespaces = namespaces
        self._clock = clock
        self._claim = claim

    def check(self, ns_id: str, *, fix: bool = False, until: datetime | None = None) -> Reconciliation:
        ns = self._namespaces.get(ns_id)
        if ns is None:
            raise NotFoundError(f"namespace {ns_id!r} not found", {"namespace": ns_id})
        if not ns.customer_id:
            raise ConflictError(
                f"the namespace {ns_id} has no billing customer: there is nothing to reconcile", {"namespace": ns_id}
            )
        now = self._clock.now()
        today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        end = until or today + DAY
        start = today - (WINDOW_DAYS - 1) * DAY  # days with nothing on either side make no row
        result = Reconciliation(ns_id, start, end)
        if end <= start:
            return result
        buckets = self._ledger.buckets(ns_id, hour_key(start), hour_key(end))
        for name, meter in self._catalog.meters.items():
            ledger = _ledger_days([b for b in buckets if b.meter == name], meter.aggregation)
            provider = {
                at.strftime("%Y-%m-%d"): value
                for at, value in self._billing.usage_totals(ns.customer_id, name, start, end, "day").items()
            }
            for day in sorted(set(ledger) | set(provider)):
                value, in_flight, last_hour = ledger.get(day, (0, False, None))
                result.rows.append(DayRow(name, day, value, provider.get(day, 0), in_flight, last_hour))
        if fix:
            self._fix(ns_id, ns.customer_id, result, now)
        return result

    def _fix(self, ns_id: str, customer: str, result: Reconciliation, now: datetime) -> None:
        for row in result.mismatches:
            meter = self._catalog.meters[row.meter]
            if meter.aggregation == "sum" and row.difference > 0:
                result.notes.append(
                    f"{row.meter} on {row.day}: Stripe has {_signed(row.difference)} more than the ledger sent; "
                    "not changed (only missing usage is re-sent)"
                )
                continue
            if row.last_hour is None:
                result.notes.append(f"{row.meter} on {row.day}: the ledger reported nothing that day; not changed")
                continue
            value = row.ledger if meter.aggregation == "max" else -row.difference
            identifier = fix_identifier(ns_id, row.meter, row.day, row.provider)
            try:
                self._billing.report_meter_event(
                    MeterEvent(identifier, meter.event_name, customer, value, parse_hour_key(row.last_hour))
                )
            except BillingRejectedError as e:
                result.notes.append(f"{row.meter} on {row.day}: Stripe refused the fix: {e.message}")
                continue
            result.fixed.append(
                {"meter": row.meter, "day": row.day, "identifier": identifier, "sent": format_micros(value)}
            )

    def daily(self, ns_id: str) -> Reconciliation:
        """The daily schedule's check of every day up to yesterday; emits the mismatches once a day."""
        now = self._clock.now()
        today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        result = self.check(ns_id, until=today)
        if result.mismatches:
            event = Event.create(
                "billing.reconciliation_mismatch",
                ns_id,
                now,
                {
                    "from": result.start.isoformat(),
                    "to": result.end.isoformat(),
                    "differences": [r.as_dict() for r in result.mismatches],
                },
            )
            if not self._claim(ns_id, today.strftime("%Y-%m-%d"), [event]):
                result.notes.append("reported already today")
        return result


def _ledger_days(buckets: list[Bucket], aggregation: str) -> dict[str, tuple[int, bool, str | None]]:
    """day -> (what the ledger reported, a report in flight, the day's last reported hour)."""
    totals: dict[str, int] = defaultdict(int)
    flight: dict[str, bool] = defaultdict(bool)
    last: dict[str, str] = {}
    for b in sorted(buckets, key=lambda b: b.hour):
        day = b.hour[:10]
        flight[day] |= b.pending is not None
        if b.reports <= 0 and b.reported <= 0:
            continue
        last[day] = b.hour
        if aggregation == "max":
            totals[day] = b.reported  # the last reported value of the day (Stripe's ``last``)
        else:
            totals[day] += b.reported
    return {day: (totals.get(day, 0), flight[day], last.get(day)) for day in set(totals) | set(flight)}
