"""The metering run of one namespace: ``MeteringService.close_namespace(ns, until)`` is what the hourly
run's queue consumer calls per namespace, and what offboarding calls once more before it cancels the
namespace's billing. Three steps, each safe to repeat after a crash anywhere:

1. **Collect** every hour from the namespace's collection cursor (the last hour collected) to ``until``,
   at most 35 days back (what ingestion accepts):
   ``service_hours`` from the runtime's instance start/stop records (an instance across an hour
   boundary is split between the hours; seconds / 3600, summed per service and hour, rounded half up
   to 6 places; event id ``service_hours:<hour>:<service>``, so a re-collected hour is a duplicate);
   ``requests`` from the runtime proxy's counter checkpoint (event id
   ``requests:<checkpoint id>:<service>:<hour>``; the checkpoint is acknowledged only after ingestion,
   so a crash in between ingests the same checkpoint again, as duplicates); ``seats`` = the
   namespace's members now, in every hour collected (membership keeps no history, so each missed
   hour of a catch-up is given the current count; a ``max`` meter: the ledger keeps the maximum).
   Every event goes through ingestion (``IngestionService.ingest_internal``: the API's validation and
   write path). Then the cursor moves to ``until``, conditionally on its old value.
2. **Report** every bucket with something unreported through the billing port, as Stripe will be
   driven: the intent (identifier and value) is written on the bucket before the call and the result
   after it; a run that finds an intent sends exactly that again (same identifier: the provider
   deduplicates it) and records it. Nothing is reported twice, and nothing never.
3. **Rate**: the injected ``rate(namespace, now)`` (rating and budgets) runs last.

Identifiers: ``<namespace>:<meter>:<hour>:<service or ->:<sequence>``, where ``sequence`` counts the
reports of that bucket. The service is part of it because buckets are per service: two services'
buckets of the same meter and hour would otherwise send the same identifier, and the provider would
drop the second as a duplicate. Stripe allows 100 characters; a longer one keeps its first 67 and
ends with ``~`` and 32 hex digits of its SHA-256 (still stable)."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from chalicelib.domain.clock import Clock
from chalicelib.domain.errors import BillingRejectedError
from chalicelib.domain.metering import (
    MAX_BATCH,
    MAX_EVENT_AGE,
    MICROS,
    Bucket,
    Catalog,
    IngestResult,
    PendingReport,
    UsageEvent,
    hour_key,
    hour_of,
    parse_hour_key,
    period_of,
    quantize_micros,
)
from chalicelib.domain.model import Namespace
from chalicelib.domain.ports import BillingPort, InstanceRecord, MeterEvent, QueuePort, RuntimeUsagePort
from chalicelib.domain.stores import MemberStore, NamespaceStore, UsageLedger

HOUR = timedelta(hours=1)
MAX_IDENTIFIER = 100  # Stripe's limit on a meter event's identifier
FAN_OUT_PAGE = 200  # namespaces per fan-out task (one index query page, 20 SendMessageBatch requests)
METERING_QUEUE = "metering"
RUN_MARGIN = timedelta(minutes=10)  # an hour at the 35-day edge stays acceptable while the run lasts
# Stripe deduplicates meter event identifiers "within a rolling period of at least 24 hours": an intent
# older than this is checked against the provider's totals before it is sent again.
IDENTIFIER_WINDOW = timedelta(hours=23)

Ingest = Callable[[Sequence[UsageEvent]], IngestResult]  # the ingestion path (IngestionService)
Rate = Callable[[str, datetime], object]  # rating and budgets of one namespace, after its close
UsageSource = Callable[[Namespace], RuntimeUsagePort | None]  # the namespace's runtime, when it records usage


@dataclass
class CloseResult:
    namespace: str
    hours: list[str] = field(default_factory=list)  # the hours collected by this call
    accepted: int = 0
    duplicates: int = 0
    reported: list[str] = field(default_factory=list)  # identifiers sent to billing
    refused: list[str] = field(default_factory=list)  # identifiers billing refused (reason on the bucket)
    notes: list[str] = field(default_factory=list)  # what the caller should log

    def as_dict(self) -> dict[str, object]:
        return {
            "namespace": self.namespace,
            "hours": self.hours,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "reported": self.reported,
            "refused": self.refused,
            "notes": self.notes,
        }


def report_identifier(namespace: str, meter: str, hour: str, service: str, seq: int) -> str:
    identifier = f"{namespace}:{meter}:{hour}:{service or '-'}:{seq}"
    if len(identifier) <= MAX_IDENTIFIER:
        return identifier
    digest = hashlib.sha256(identifier.encode()).hexdigest()[:32]
    return f"{identifier[: MAX_IDENTIFIER - 33]}~{digest}"


def instance_hours(
    records: Sequence[InstanceRecord], first: datetime, end: datetime, now: datetime
) -> dict[tuple[str, str], int]:
    """``(hour key, service) -> micro-hours`` run in ``[first, end)``: a running instance counts until
    ``now``; an instance across an hour boundary is split; seconds are summed per hour and service
    before rounding (half up, to a millionth of an hour)."""
    seconds: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for r in records:
        start = max(r.started_at, first)
        stop = min(r.stopped_at or now, end, now)
        while start < stop:
            hour = hour_of(start)
            seconds[(hour_key(hour), r.service)] += _seconds(min(stop, hour + HOUR) - start)
            start = hour + HOUR
    return {key: quantize_micros(s / 3600) for key, s in seconds.items() if s > 0}


def _seconds(span: timedelta) -> Decimal:
    """Exactly, microseconds included (never through a float)."""
    return Decimal(span.days * 86400 + span.seconds) + Decimal(span.microseconds).scaleb(-6)


class MeteringService:
    def __init__(
        self,
        ledger: UsageLedger,
        ingest: Ingest,
        billing: BillingPort,
        catalog: Catalog,
        namespaces: NamespaceStore,
        members: MemberStore,
        usage_of: UsageSource,
        clock: Clock,
        rate: Rate | None = None,
    ) -> None:
        self._ledger = ledger
        self._ingest = ingest
        self._billing = billing
        self._catalog = catalog
        self._namespaces = namespaces
        self._members = members
        self._usage_of = usage_of
        self._clock = clock
        self._rate = rate

    def close_namespace(self, ns_id: str, until: datetime) -> CloseResult:
        """Collect every hour up to and including the hour that starts at ``until`` (an hour not over
        yet is collected up to now: offboarding's last close), report, rate."""
        result = CloseResult(ns_id)
        ns = self._namespaces.get(ns_id)
        if ns is None:
            result.notes.append("no such namespace")
            return result
        now = self._clock.now()
        last = min(hour_of(until), hour_of(now))
        usage = self._usage_of(ns)
        self._collect_requests(ns, usage, now, result)
        self._collect_hours(ns, usage, last, now, result)
        self._report(ns, now, result)
        if self._rate is not None:
            self._rate(ns_id, now)
        return result

    # ------------------------------------------------------------------ 1. collect

    def _oldest(self, now: datetime) -> datetime:
        """The first hour whose events ingestion still accepts (at most 35 days old), with a margin
        for the time this run takes."""
        return hour_of(now - MAX_EVENT_AGE + RUN_MARGIN) + HOUR

    def _ingest_all(self, events: list[UsageEvent], result: CloseResult) -> None:
        for i in range(0, len(events), MAX_BATCH):
            answer = self._ingest(events[i : i + MAX_BATCH])
            result.accepted += answer.accepted
            result.duplicates += answer.duplicates
            for r in answer.rejected:
                result.notes.append(f"rejected {events[i + r.index].id}: {r.code}: {r.message}")

    def _collect_requests(
        self, ns: Namespace, usage: RuntimeUsagePort | None, now: datetime, result: CloseResult
    ) -> None:
        if usage is None:
            return
        checkpoint = usage.checkpoint_requests(ns.id)
        if checkpoint is None:
            return
        oldest = self._oldest(now)
        events = []
        for (service, hour), n in sorted(checkpoint.counts.items()):
            if n <= 0:
                continue
            at = parse_hour_key(hour)
            if at < oldest:  # counted, but older than billing accepts: kept in the oldest hour it does
                result.notes.append(f"requests of {service} in {hour} moved to {hour_key(oldest)} (35-day limit)")
                at = oldest
            events.append(
                UsageEvent(f"requests:{checkpoint.id}:{service}:{hour}", ns.id, "requests", n * MICROS, at, service)
            )
        self._ingest_all(events, result)
        usage.ack_requests(ns.id, checkpoint.id)

    def _collect_hours(
        self, ns: Namespace, usage: RuntimeUsagePort | None, last: datetime, now: datetime, result: CloseResult
    ) -> None:
        cursor = self._ledger.cursor(ns.id)
        first = parse_hour_key(cursor) + HOUR if cursor else hour_of(ns.created_at)
        oldest = self._oldest(now)
        if first < oldest:
            result.notes.append(f"hours {hour_key(first)} to {hour_key(oldest - HOUR)} are past the 35-day limit")
            first = oldest
        if first > last:
            return  # every hour up to ``last`` is collected already
        end = last + HOUR
        records = usage.instance_records(ns.id, first) if usage is not None else []
        events = [
            UsageEvent(f"service_hours:{hour}:{service}", ns.id, "service_hours", micros, parse_hour_key(hour), service)
            for (hour, service), micros in sorted(instance_hours(records, first, end, now).items())
        ]
        self._ingest_all(events + self._seats(ns, first, last), result)
        result.hours = [hour_key(first + HOUR * i) for i in range(int((end - first) / HOUR))]
        if not self._ledger.advance_cursor(ns.id, cursor, hour_key(last)):
            result.notes.append("another run moved the cursor meanwhile")

    def _seats(self, ns: Namespace, first: datetime, last: datetime) -> list[UsageEvent]:
        """Seats in every hour collected, ``first`` to ``last``: a run that catches up after missed
        hours (a clock jump, a schedule that did not fire) records each of them, so a daily or weekly
        view has no hole. Membership keeps no history (a member record has no join or leave time),
        so each missed hour is given the current membership. A ``max`` meter: recorded as the
        bucket's maximum, so a repeat changes nothing."""
        seats = len(self._members.list(ns.id)) * MICROS
        hours = int((last - first) / HOUR) + 1
        return [
            UsageEvent(f"seats:{hour_key(hour)}", ns.id, "seats", seats, hour)
            for hour in (first + HOUR * i for i in range(hours))
        ]

    # ------------------------------------------------------------------ 2. report

    def _report(self, ns: Namespace, now: datetime, result: CloseResult) -> None:
        if not ns.customer_id:
            result.notes.append("no billing customer: usage kept unreported")
            return
        oldest = self._oldest(now)
        period_max: dict[str, dict[str, int]] = {}
        for bucket in self._ledger.unreported(ns.id):
            meter = self._catalog.meter(bucket.meter)
            if meter is None:
                result.notes.append(f"unknown meter {bucket.meter} in {bucket.hour}: not reported")
                continue
            hour = parse_hour_key(bucket.hour)
            if hour < oldest:
                # Stripe refuses meter events over 35 days old (docs.stripe.com/api/billing/meter-event/create):
                # never sent now, this usage is given up, not moved to another hour (it would land in a
                # period whose invoice is closed, or bill it twice). The ledger keeps it, marked unbillable.
                reason = f"older than the {MAX_EVENT_AGE.days} days billing accepts: not billed"
                self._ledger.refuse_report(bucket, bucket.pending, reason, now, final=True)
                result.notes.append(f"{bucket.meter} of {bucket.service or '-'} in {bucket.hour}: {reason}")
                continue
            pending = bucket.pending
            if pending is None:
                if meter.aggregation == "max":
                    period = period_of(hour)
                    if period not in period_max:
                        period_max[period] = self._ledger.rollups(ns.id, period)
                    value = max(period_max[period].get(meter.name, 0), bucket.total)
                    if value <= bucket.reported:
                        continue
                else:
                    value = bucket.total - bucket.reported
                    if value <= 0:
                        continue
                identifier = report_identifier(ns.id, meter.name, bucket.hour, bucket.service, bucket.reports + 1)
                pending = self._ledger.begin_report(bucket, value, identifier, now)
                if pending is None:
                    continue  # another run wrote its intent first: it reports this one
            elif now - pending.at > IDENTIFIER_WINDOW and self._delivered(ns, bucket, pending, meter.aggregation):
                # An intent older than Stripe's identifier window is not sent blind (a repeat would no
                # longer be recognised): the provider's own total for that hour says whether it arrived.
                self._ledger.finish_report(bucket, pending, max_meter=meter.aggregation == "max")
                result.notes.append(f"{pending.identifier}: found delivered")
                continue
            try:
                self._billing.report_meter_event(
                    MeterEvent(pending.identifier, meter.event_name, ns.customer_id, pending.value, hour)
                )
            except BillingRejectedError as e:
                # A refusal is not retried now (it would be refused again); the reason is recorded on the
                # bucket, which stays unreported: the next run tries again, under the same identifier.
                reason = f"{e.message} ({_refusal_code(e)})"
                self._ledger.refuse_report(bucket, pending, reason, now)
                result.refused.append(pending.identifier)
                result.notes.append(f"{pending.identifier}: refused: {reason}")
                continue
            self._ledger.finish_report(bucket, pending, max_meter=meter.aggregation == "max")
            result.reported.append(pending.identifier)

    def _delivered(self, ns: Namespace, bucket: Bucket, pending: PendingReport, aggregation: str) -> bool:
        """Whether the provider counted ``pending`` already: its total of the bucket's meter and hour
        against what the ledger recorded of that hour (every service), plus this intent."""
        assert ns.customer_id
        hour = parse_hour_key(bucket.hour)
        totals = self._billing.usage_totals(ns.customer_id, bucket.meter, hour, hour + HOUR, "hour")
        provider = totals.get(hour, 0)
        if aggregation == "max":
            return provider == pending.value
        recorded = sum(
            b.reported for b in self._ledger.buckets(ns.id, bucket.hour, hour_key(hour + HOUR), meter=bucket.meter)
        )
        return provider >= recorded + pending.value


def _refusal_code(e: BillingRejectedError) -> str:
    d = e.details
    return ", ".join(f"{k} {d[k]}" for k in ("status", "code", "param") if d.get(k) not in (None, "")) or "refused"


# --------------------------------------------------------------------------- the hourly fan-out


@dataclass(frozen=True)
class FanOutPage:
    until: str  # the hour every message closes (the hour before the scheduled time)
    sent: int  # messages sent so far in this run
    cursor: str | None  # where the next page starts; None: done

    def as_dict(self) -> dict[str, object]:
        return {"until": self.until, "sent": self.sent, "cursor": self.cursor, "more": self.cursor is not None}


class MeteringFanOut:
    """One task of the hourly state machine: a page of the active-namespace index, one message
    ``{namespace, until}`` per namespace on the metering queue. Namespaces being deleted are not in
    the index: offboarding closes them itself. A retried page sends its messages again, which the
    consumer's idempotence absorbs."""

    def __init__(self, namespaces: NamespaceStore, queues: QueuePort, page_size: int = FAN_OUT_PAGE) -> None:
        self._namespaces = namespaces
        self._queues = queues
        self._page_size = page_size

    def page(self, scheduled_time: datetime, cursor: str | None = None, sent: int = 0) -> FanOutPage:
        until = hour_key(hour_of(scheduled_time) - HOUR)
        ids, next_cursor = self._namespaces.active(self._page_size, cursor)
        self._queues.send_batch(METERING_QUEUE, [{"namespace": ns_id, "until": until} for ns_id in ids])
        return FanOutPage(until, sent + len(ids), next_cursor)
