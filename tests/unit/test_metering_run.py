"""The metering run of one namespace (chalicelib/domain/services/metering_run.py): collection from the
runtime's records and the proxy's counter checkpoint, the catch-up over missed hours, and reporting with
an intent before each billing call, under re-runs and crashes at every step. The ledger is the in-memory
one with the table adapter's conditions; the billing provider is the in-memory stand-in, and the tests
assert on what it received."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from chalicelib.adapters.catalog import load_catalog
from chalicelib.adapters.memory.billing import InMemoryBilling
from chalicelib.adapters.memory.usage import InMemoryUsageLedger
from chalicelib.domain.clock import ManualClock
from chalicelib.domain.metering import MICROS, IngestResult, UsageEvent, hour_key, quantize_micros
from chalicelib.domain.model import Member, Namespace
from chalicelib.domain.ports import InstanceRecord, MeterEvent, RequestCheckpoint
from chalicelib.domain.services.ingestion import IngestionService
from chalicelib.domain.services.metering_run import MeteringService, instance_hours, report_identifier

NS = "acme-backend"
T0 = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
H = timedelta(hours=1)


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


class Killed(BaseException):
    """The process dies here (a BaseException: nothing in the code under test may swallow it)."""


class RecordingBilling(InMemoryBilling):
    """The in-memory billing stand-in, keeping every meter event it was sent (retries included)."""

    def __init__(self) -> None:
        super().__init__()
        self.received: list[MeterEvent] = []
        self.kill_after_call: int | None = None  # die right after the n-th call returns (0-based)

    def report_meter_event(self, event: MeterEvent) -> None:
        super().report_meter_event(event)
        self.received.append(event)
        if self.kill_after_call is not None and len(self.received) - 1 == self.kill_after_call:
            self.kill_after_call = None
            raise Killed("killed after the billing call, before recording it")

    def billed(self, meter: str) -> int:
        """What the provider counts for a ``sum`` meter: each identifier once."""
        return sum(e.value for e in self.meter_events.values() if e.event_name == meter)


class FakeUsage:
    """A runtime that records usage (``RuntimeUsagePort``), in memory."""

    def __init__(self, records: Sequence[InstanceRecord] = ()) -> None:
        self.records = list(records)
        self.counted: dict[tuple[str, str], int] = defaultdict(int)
        self.pending: RequestCheckpoint | None = None
        self._n = 0

    def count(self, service: str, hour: datetime, n: int) -> None:
        self.counted[(service, hour_key(hour))] += n

    def instance_records(self, namespace: str, since: datetime) -> list[InstanceRecord]:
        return [r for r in self.records if r.stopped_at is None or r.stopped_at >= since]

    def checkpoint_requests(self, namespace: str) -> RequestCheckpoint | None:
        if self.pending is None:
            if not self.counted:
                return None
            self._n += 1
            self.pending = RequestCheckpoint(f"cp{self._n}", dict(self.counted))
            self.counted.clear()
        return self.pending

    def ack_requests(self, namespace: str, checkpoint_id: str) -> None:
        if self.pending is not None and self.pending.id == checkpoint_id:
            self.pending = None


@dataclass
class World:
    clock: ManualClock
    ledger: Any  # a UsageLedger: the in-memory one, or the table's on moto
    billing: RecordingBilling
    usage: FakeUsage
    ns: Namespace
    members: list[Member] = field(default_factory=list)
    rated: list[tuple[str, datetime]] = field(default_factory=list)

    def ingest(self, events: Sequence[UsageEvent]) -> IngestResult:
        """The ingestion path the run uses (``IngestionService.ingest_internal``), on this world's ledger."""
        return IngestionService(self.ledger, load_catalog(), NoPlacements(), self.clock).ingest_internal(events)

    def service(self, **wrap: Any) -> MeteringService:
        world = self

        class Namespaces:
            def get(self, ns_id: str, *, consistent: bool = True) -> Namespace | None:
                return world.ns if ns_id == world.ns.id else None

        class Members:
            def list(self, ns_id: str) -> list[Member]:
                return list(world.members)

        return MeteringService(
            wrap.get("ledger", self.ledger),
            wrap.get("ingest", self.ingest),
            wrap.get("billing", self.billing),
            load_catalog(),
            Namespaces(),  # type: ignore[arg-type]
            Members(),  # type: ignore[arg-type]
            lambda ns: wrap.get("usage", self.usage),
            self.clock,
            rate=lambda ns_id, now: self.rated.append((ns_id, now)),
        )

    def close(self, until: datetime, **wrap: Any) -> Any:
        return self.service(**wrap).close_namespace(NS, until)

    def totals(self, meter: str) -> dict[tuple[str, str], int]:
        return {(b.hour, b.service): b.total for b in self.ledger.buckets(NS, "0000", "9999", meter=meter)}


class NoPlacements:
    def regions_of(self, ns_ids: Sequence[str]) -> dict[str, str]:
        raise AssertionError("the metering run's own events are not checked against a region")


@pytest.fixture
def world(request: pytest.FixtureRequest) -> World:
    """By default on the in-memory ledger; ``@pytest.mark.parametrize("world", BOTH, indirect=True)``
    also runs a test on the table's ledger (chalicelib/adapters/dynamodb/usage.py) on moto."""
    ledger: Any = InMemoryUsageLedger()
    if getattr(request, "param", "memory") == "dynamodb":
        request.getfixturevalue("container")  # moto in-process, the table created and bound
        from chalicelib.adapters.dynamodb.usage import DynamoUsageLedger

        ledger = DynamoUsageLedger()
    billing = RecordingBilling()
    customer = billing.create_customer(NS, None, "k")
    ns = Namespace(NS, "acme", 1, "backend", 2, "local", "team", "active", T0, "ada", customer_id=customer)
    members = [Member(NS, i, f"user{i}", "member", "team") for i in range(3)]
    return World(ManualClock(at(0)), ledger, billing, FakeUsage(), ns, members)


BOTH = ["memory", "dynamodb"]
on_both_ledgers = pytest.mark.parametrize("world", BOTH, indirect=True)


# --------------------------------------------------------------------------- collection


def test_an_instance_across_hour_boundaries_is_split_between_the_hours(world: World) -> None:
    world.usage.records = [InstanceRecord("i1", "hello", at(0.5), at(2.25))]
    world.clock.set(at(3) + timedelta(minutes=5))
    result = world.close(at(2))
    assert result.hours == ["2026-12-01T00", "2026-12-01T01", "2026-12-01T02"]
    assert world.totals("service_hours") == {
        ("2026-12-01T00", "hello"): 500_000,
        ("2026-12-01T01", "hello"): 1_000_000,
        ("2026-12-01T02", "hello"): 250_000,
    }
    again = UsageEvent("service_hours:2026-12-01T00:hello", NS, "service_hours", 500_000, at(0), "hello")
    assert world.ingest([again]).duplicates == 1  # a re-collected hour counts nothing


def test_a_running_instance_counts_to_the_end_of_the_closed_hour_and_no_further(world: World) -> None:
    world.usage.records = [InstanceRecord("i1", "hello", at(1.75), None)]
    world.clock.set(at(2) + timedelta(minutes=5))
    world.close(at(1))
    assert world.totals("service_hours") == {("2026-12-01T01", "hello"): 250_000}
    world.clock.set(at(3) + timedelta(minutes=5))
    world.close(at(2))
    assert world.totals("service_hours")[("2026-12-01T02", "hello")] == 1_000_000


def test_seconds_are_summed_per_hour_and_service_before_rounding() -> None:
    thirds = [InstanceRecord(f"i{k}", "hello", at(k / 3), at((k + 1) / 3)) for k in range(3)]
    assert instance_hours(thirds, at(0), at(1), at(5)) == {("2026-12-01T00", "hello"): 1_000_000}
    # each third alone is 0.333333; rounding each before adding would lose a millionth
    assert quantize_micros(Decimal(1) / 3) * 3 == 999_999


def test_when_the_schedule_fired_once_after_a_jump_every_missed_hour_is_closed(world: World) -> None:
    world.usage.records = [InstanceRecord("i1", "hello", at(0), None)]
    world.clock.set(at(1) + timedelta(minutes=5))
    world.close(at(0))
    world.clock.set(at(5) + timedelta(minutes=5))  # four hours later, one fire, for the latest hour
    result = world.close(at(4))
    assert result.hours == [f"2026-12-01T0{h}" for h in range(1, 5)]
    assert world.totals("service_hours") == {(f"2026-12-01T0{h}", "hello"): MICROS for h in range(5)}
    assert world.ledger.cursor(NS) == "2026-12-01T04"


def test_the_catch_up_reaches_back_35_days_at_most(world: World) -> None:
    world.usage.records = [InstanceRecord("i1", "hello", at(0), None)]
    world.clock.set(at(24 * 40) + timedelta(minutes=5))
    result = world.close(at(24 * 40 - 1))
    assert len(result.hours) == 35 * 24 - 1  # every hour ingestion still accepts
    assert result.hours[0] == hour_key(world.clock.now() - timedelta(days=35) + H)
    assert any("35-day limit" in n for n in result.notes)


def test_an_hour_at_the_35_day_edge_is_still_accepted_while_the_run_takes_its_time(world: World) -> None:
    world.usage.records = [InstanceRecord("i1", "hello", at(0), None)]
    world.clock.set(at(24 * 40) - timedelta(seconds=1))

    def slow_ingest(events: Sequence[UsageEvent]) -> IngestResult:
        world.clock.advance(timedelta(seconds=5))  # the run is not instantaneous
        return world.ingest(events)

    result = world.close(at(24 * 40 - 2), ingest=slow_ingest)
    assert result.hours and not [n for n in result.notes if n.startswith("rejected")]


@on_both_ledgers
def test_requests_come_from_a_checkpoint_acknowledged_only_after_ingestion(world: World) -> None:
    world.usage.count("hello", at(0), 40)
    world.usage.count("hello", at(1), 2)
    world.clock.set(at(1) + timedelta(minutes=5))

    def ingest_then_die(events: Sequence[UsageEvent]) -> IngestResult:
        world.ingest(events)
        raise Killed("killed between ingesting the checkpoint and acknowledging it")

    with pytest.raises(Killed):
        world.close(at(0), ingest=ingest_then_die)
    world.usage.count("hello", at(1), 5)  # counted meanwhile: not mixed into the pending checkpoint
    world.close(at(0))
    world.clock.set(at(2) + timedelta(minutes=5))
    world.close(at(1))
    assert world.totals("requests") == {("2026-12-01T00", "hello"): 40 * MICROS, ("2026-12-01T01", "hello"): 7 * MICROS}
    assert world.usage.pending is None and not world.usage.counted


def test_seats_are_the_members_kept_as_a_maximum(world: World) -> None:
    world.clock.set(at(1) + timedelta(minutes=5))
    world.close(at(0))
    world.members = world.members[:1]
    world.clock.set(at(2) + timedelta(minutes=5))
    world.close(at(1))
    assert world.ledger.rollups(NS, "2026-12")["seats"] == 3 * MICROS
    seats = sorted((e.timestamp, e.value) for e in world.billing.meter_events.values() if e.event_name == "seats")
    # each hour's report carries the period's maximum so far: the provider's ``last`` ends on it
    assert seats == [(at(0), 3 * MICROS), (at(1), 3 * MICROS)]


@on_both_ledgers
def test_a_catch_up_after_a_clock_jump_records_seats_in_every_hour_it_closes(world: World) -> None:
    """``localcloud.clock advance 3d``: the next run closes three days of hours at once; each of them
    has its seats (the current membership: members keep no history), so a daily view has no zero day."""
    world.clock.set(at(1) + timedelta(minutes=5))
    world.close(at(0))
    world.clock.set(at(1 + 72) + timedelta(minutes=5))
    result = world.close(at(72))
    assert len(result.hours) == 72
    seats = world.totals("seats")
    assert seats == {(hour_key(at(h)), ""): 3 * MICROS for h in range(73)}
    assert world.ledger.unreported(NS) == []  # and each hour was reported


# --------------------------------------------------------------------------- reporting


@on_both_ledgers
def test_each_bucket_is_reported_with_a_stable_identifier_and_recorded(world: World) -> None:
    world.usage.records = [InstanceRecord("i1", "hello", at(0), at(0.5))]
    world.clock.set(at(1) + timedelta(minutes=5))
    result = world.close(at(0))
    assert sorted(result.reported) == [f"{NS}:seats:2026-12-01T00:-:1", f"{NS}:service_hours:2026-12-01T00:hello:1"]
    event = world.billing.meter_events[f"{NS}:service_hours:2026-12-01T00:hello:1"]
    assert (event.event_name, event.customer_id, event.value, event.timestamp) == (
        "service_hours",
        world.ns.customer_id,
        500_000,
        at(0),
    )
    assert world.ledger.unreported(NS) == []
    assert world.rated == [(NS, world.clock.now())]


@on_both_ledgers
def test_a_re_run_of_an_hour_reports_nothing(world: World) -> None:
    world.usage.records = [InstanceRecord("i1", "hello", at(0), None)]
    world.usage.count("hello", at(0), 10)
    world.clock.set(at(1) + timedelta(minutes=5))
    first = world.close(at(0))
    sent = list(world.billing.received)
    again = world.close(at(0))
    assert first.reported and again.reported == [] and again.hours == []
    assert world.billing.received == sent


@on_both_ledgers
def test_late_events_are_reported_in_the_next_run_as_the_difference(world: World) -> None:
    world.usage.count("hello", at(0), 10)
    world.clock.set(at(1) + timedelta(minutes=5))
    world.close(at(0))
    late = UsageEvent("late-1", NS, "requests", 5 * MICROS, at(0.5), "hello")  # e.g. posted by a cluster
    world.ingest([late])
    world.clock.set(at(2) + timedelta(minutes=5))
    result = world.close(at(1))
    assert f"{NS}:requests:2026-12-01T00:hello:2" in result.reported
    assert world.billing.meter_events[f"{NS}:requests:2026-12-01T00:hello:2"].value == 5 * MICROS
    assert world.billing.billed("requests") == 15 * MICROS


@on_both_ledgers
def test_a_run_killed_after_the_billing_call_and_before_recording_it_reports_nothing_twice(world: World) -> None:
    world.usage.count("hello", at(0), 10)
    world.clock.set(at(1) + timedelta(minutes=5))
    world.billing.kill_after_call = 0
    with pytest.raises(Killed):
        world.close(at(0))
    [sent] = world.billing.received
    [bucket] = [b for b in world.ledger.unreported(NS) if b.meter == sent.event_name]
    assert bucket.pending is not None and bucket.reported == 0  # the intent, never recorded as done
    late = UsageEvent("late-1", NS, sent.event_name, 3 * MICROS, at(0.5), "hello")
    world.ingest([late])  # more usage in the same bucket before the re-run

    world.close(at(0))
    world.clock.set(at(2) + timedelta(minutes=5))
    world.close(at(1))
    events = [e for e in world.billing.received if e.event_name == "requests"]
    assert [(e.identifier, e.value) for e in events] == [
        (f"{NS}:requests:2026-12-01T00:hello:1", 10 * MICROS),  # the call the killed run made
        (f"{NS}:requests:2026-12-01T00:hello:1", 10 * MICROS),  # sent again, the same: deduplicated
        (f"{NS}:requests:2026-12-01T00:hello:2", 3 * MICROS),  # the late difference, once
    ]
    assert world.billing.billed("requests") == 13 * MICROS == world.totals("requests")[("2026-12-01T00", "hello")]
    assert world.ledger.unreported(NS) == []


def test_two_services_in_the_same_hour_are_both_billed(world: World) -> None:
    world.usage.records = [
        InstanceRecord("i1", "hello", at(0), at(1)),
        InstanceRecord("i2", "world", at(0), at(0.5)),
    ]
    world.clock.set(at(1) + timedelta(minutes=5))
    world.close(at(0))
    assert world.billing.billed("service_hours") == 1_500_000


def test_identifiers_stay_within_stripe_s_100_characters_and_stable() -> None:
    long_ns = "an-organization-with-a-long-name-" + "x" * 40
    identifier = report_identifier(long_ns, "service_hours", "2026-12-01T00", "s" * 63, 1)
    assert len(identifier) == 100 and identifier == report_identifier(
        long_ns, "service_hours", "2026-12-01T00", "s" * 63, 1
    )
    assert identifier != report_identifier(long_ns, "service_hours", "2026-12-01T00", "s" * 63, 2)


def test_without_a_billing_customer_usage_waits_unreported(world: World) -> None:
    customer, world.ns.customer_id = world.ns.customer_id, None
    world.usage.count("hello", at(0), 4)
    world.clock.set(at(1) + timedelta(minutes=5))
    result = world.close(at(0))
    assert result.reported == [] and world.ledger.unreported(NS)
    world.ns.customer_id = customer
    world.close(at(0))
    assert world.billing.billed("requests") == 4 * MICROS


def test_an_unknown_namespace_closes_nothing(world: World) -> None:
    result = world.service().close_namespace("nobody", at(0))
    assert result.notes == ["no such namespace"] and world.billing.received == []


# --------------------------------------------------------------------------- crashes anywhere


class Chaos:
    """Kills the run at random points: before or after any ledger write, the billing call, ingestion and
    the checkpoint acknowledgement."""

    def __init__(self, rng: random.Random, p: float) -> None:
        self.rng = rng
        self.p = p
        self.kills = 0

    def maybe(self) -> None:
        if self.rng.random() < self.p:
            self.kills += 1
            raise Killed("chaos")

    def around(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            self.maybe()
            answer = fn(*args, **kwargs)
            self.maybe()
            return answer

        return wrapped


class ChaosLedger:
    def __init__(self, ledger: InMemoryUsageLedger, chaos: Chaos) -> None:
        self._ledger = ledger
        self._chaos = chaos

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._ledger, name)
        if name in ("begin_report", "finish_report", "advance_cursor"):
            return self._chaos.around(attr)
        return attr


class ChaosBilling:
    def __init__(self, billing: RecordingBilling, chaos: Chaos) -> None:
        self._billing = billing
        self.report_meter_event = chaos.around(billing.report_meter_event)


class ChaosUsage:
    def __init__(self, usage: FakeUsage, chaos: Chaos) -> None:
        self.instance_records = usage.instance_records
        self.checkpoint_requests = chaos.around(usage.checkpoint_requests)
        self.ack_requests = chaos.around(usage.ack_requests)


@pytest.mark.parametrize(
    ("world", "seed"),
    [("memory", seed) for seed in range(40)] + [("dynamodb", 0)],
    indirect=["world"],
)
def test_crashes_anywhere_and_re_runs_count_and_report_everything_exactly_once(world: World, seed: int) -> None:
    rng = random.Random(seed)
    chaos = Chaos(rng, p=0.15)
    records = []
    for i in range(rng.randint(1, 5)):
        start = at(rng.randint(0, 8 * 60) / 60)
        stop = start + timedelta(minutes=rng.randint(1, 300)) if rng.random() < 0.8 else None
        records.append(InstanceRecord(f"i{i}", rng.choice(["hello", "world"]), start, stop))
    world.usage.records = records
    sent_requests: dict[tuple[str, str], int] = defaultdict(int)
    late_events = 0

    for h in range(1, 10):
        world.clock.set(at(h) + timedelta(minutes=rng.randint(1, 50)))
        for service in ("hello", "world"):
            n = rng.randint(0, 50)
            if n:
                world.usage.count(service, at(h - 1), n)
                sent_requests[(hour_key(at(h - 1)), service)] += n
        if rng.random() < 0.3:  # a late event from a cluster, into an hour already reported
            late_events += 1
            hour = at(rng.randint(0, h - 1))
            world.ingest([UsageEvent(f"late-{late_events}", NS, "requests", MICROS, hour, "hello")])
            sent_requests[(hour_key(hour), "hello")] += 1
        if rng.random() < 0.2:
            continue  # the schedule did not fire this hour: the next run catches up
        for _attempt in range(50):  # SQS redelivers until the close succeeds
            try:
                world.close(
                    at(h - 1),
                    ledger=ChaosLedger(world.ledger, chaos),
                    ingest=chaos.around(world.ingest),
                    billing=ChaosBilling(world.billing, chaos),
                    usage=ChaosUsage(world.usage, chaos),
                )
                break
            except Killed:
                continue
    world.clock.set(at(10) + timedelta(minutes=5))
    world.close(at(9))  # the last run, undisturbed

    now = world.clock.now()
    minutes: dict[tuple[str, str], int] = defaultdict(int)
    for r in records:  # brute force, minute by minute
        t = r.started_at
        while t < min(r.stopped_at or now, at(10)):
            minutes[(hour_key(t), r.service)] += 1
            t += timedelta(minutes=1)
    expected_hours = {k: quantize_micros(Decimal(m) / 60) for k, m in minutes.items()}
    assert world.totals("service_hours") == expected_hours
    assert world.totals("requests") == {k: n * MICROS for k, n in sent_requests.items()}
    for meter in ("service_hours", "requests"):
        assert world.billing.billed(meter) == sum(world.totals(meter).values())
    # a retry re-sends an identifier only with the value it was first sent with
    first_value: dict[str, int] = {}
    for e in world.billing.received:
        assert first_value.setdefault(e.identifier, e.value) == e.value
    assert world.ledger.unreported(NS) == []
    assert world.ledger.rollups(NS, "2026-12")["seats"] == 3 * MICROS
    assert chaos.kills > 0 or seed % 10  # most seeds do kill the run somewhere


def test_a_provider_that_does_not_know_the_customer_accepts_the_event_as_stripe_does(world: World) -> None:
    """The local stand-in forgets its customers when ``make run`` restarts; Stripe itself accepts a meter
    event for an unknown customer and reports it later. Either way the run (and offboarding's last
    close) goes on instead of failing every hour."""
    world.billing = RecordingBilling()  # a fresh stand-in: no customers
    world.usage.count("hello", at(0), 4)
    world.clock.set(at(1) + timedelta(minutes=5))
    result = world.close(at(0))
    assert f"{NS}:requests:2026-12-01T00:hello:1" in result.reported
    assert world.billing.meter_events == {} and f"{NS}:requests:2026-12-01T00:hello:1" in world.billing.meter_errors


# --------------------------------------------------------------------------- the hourly fan-out and its declaration


def test_the_fan_out_pages_the_active_namespaces_onto_the_queue_for_the_hour_that_ended() -> None:
    from chalicelib.domain.services.metering_run import MeteringFanOut

    active = [f"ns-{i:03}" for i in range(5)]
    sent: list[tuple[str, list[dict[str, Any]]]] = []

    class Namespaces:
        def active(self, limit: int, start: str | None = None) -> tuple[list[str], str | None]:
            i = active.index(start) + 1 if start else 0
            page = active[i : i + limit]
            return page, (page[-1] if i + limit < len(active) else None)

    class Queues:
        def send_batch(self, queue: str, bodies: Sequence[dict[str, Any]]) -> None:
            sent.append((queue, list(bodies)))

    fan_out = MeteringFanOut(Namespaces(), Queues(), page_size=2)  # type: ignore[arg-type]
    page = fan_out.page(datetime(2026, 12, 1, 15, 5, tzinfo=UTC))
    pages = [page]
    while page.cursor is not None:
        page = fan_out.page(datetime(2026, 12, 1, 15, 5, tzinfo=UTC), page.cursor, page.sent)
        pages.append(page)
    assert [p.as_dict()["more"] for p in pages] == [True, True, False] and pages[-1].sent == 5
    assert [b for _, bodies in sent for b in bodies] == [{"namespace": n, "until": "2026-12-01T14"} for n in active]
    assert {q for q, _ in sent} == {"metering"}


def test_the_hourly_run_is_declared_once_for_aws_and_the_local_cloud() -> None:
    import json

    from tests.helpers import ROOT, resources

    decl = resources()
    [schedule] = [s for s in decl["schedules"] if s["name"] == "metering-hourly"]
    assert schedule["expression"] == "cron(5 * * * ? *)" and schedule["target"]["state_machine"] == "metering"
    [queue] = [q for q in decl["queues"] if q["name"] == "metering"]
    consumer = next(f for f in decl["functions"] if f["name"] == queue["consumer"]["function"])
    assert consumer["handler"] == "functions.metering.handler.close"
    assert queue["visibility_timeout"] >= consumer["timeout"] and queue["max_receive_count"] >= 1
    machine = json.loads((ROOT / "statemachines" / "metering.asl.json").read_text())
    tasks = [s for s in machine["States"].values() if s["Type"] == "Task"]
    assert tasks and all(t["TimeoutSeconds"] for t in tasks)
    assert all("DependencyUnavailableError" in t["Retry"][0]["ErrorEquals"] for t in tasks)
    assert not [s for s in machine["States"].values() if s["Type"] in ("Map", "Parallel")]
    offboarding = json.loads((ROOT / "statemachines" / "offboarding.asl.json").read_text())["States"]
    assert offboarding["Runtime"]["Next"] == "Usage" and offboarding["Usage"]["Next"] == "Billing"


# --------------------------------------------------------------------------- Stripe's limits (issue 12)


class RefusingBilling(RecordingBilling):
    """A provider that refuses meter events (a 4xx) while ``refusing`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.refusing = True

    def report_meter_event(self, event: MeterEvent) -> None:
        from chalicelib.domain.errors import BillingRejectedError

        if self.refusing:
            self.received.append(event)
            raise BillingRejectedError(
                "Stripe refused the meter event: Invalid payload",
                {"status": 400, "code": "parameter_invalid", "param": "payload[value]"},
            )
        super().report_meter_event(event)


@on_both_ledgers
def test_a_refused_report_is_not_retried_in_the_run_its_reason_is_kept_and_the_next_run_sends_it(
    world: World,
) -> None:
    refusing = RefusingBilling()
    refusing.customers = world.billing.customers
    world.usage.count("hello", at(0), 4)
    world.clock.set(at(1) + timedelta(minutes=5))
    result = world.close(at(0), billing=refusing)
    identifier = f"{NS}:requests:2026-12-01T00:hello:1"
    assert identifier in result.refused and identifier not in result.reported
    assert [e.identifier for e in refusing.received].count(identifier) == 1  # not retried
    [bucket] = [b for b in world.ledger.unreported(NS) if b.meter == "requests"]
    assert bucket.pending is None and bucket.reported == 0
    assert bucket.refused and "Invalid payload" in bucket.refused and "parameter_invalid" in bucket.refused
    refusing.refusing = False
    again = world.close(at(0), billing=refusing)
    assert identifier in again.reported  # the same identifier: the refused one never counted
    [done] = world.ledger.buckets(NS, "2026-12-01T00", "2026-12-01T01", meter="requests")
    assert done.reported == done.total and done.refused is None


@on_both_ledgers
def test_a_bucket_older_than_stripe_s_35_days_is_given_up_not_sent_and_leaves_the_index(world: World) -> None:
    world.usage.count("hello", at(0), 7)
    world.clock.set(at(1) + timedelta(minutes=5))
    world.close(at(0), billing=RefusingBilling())  # Stripe refused it all along (then it is too late)
    world.clock.set(at(0) + timedelta(days=35, minutes=5))
    sent_before = len(world.billing.received)
    result = world.close(at(0) + timedelta(days=35) - H)
    assert len(world.billing.received) == sent_before or all(
        not e.identifier.startswith(f"{NS}:requests:2026-12-01T00") for e in world.billing.received[sent_before:]
    )
    assert any("2026-12-01T00" in n and "35 days" in n for n in result.notes)
    [bucket] = world.ledger.buckets(NS, "2026-12-01T00", "2026-12-01T01", meter="requests")
    assert bucket.unbillable and bucket.reported == 0 and bucket.total == 7 * MICROS  # kept in the ledger
    assert all(b.hour != "2026-12-01T00" for b in world.ledger.unreported(NS))


def test_an_intent_older_than_stripe_s_identifier_window_is_checked_before_it_is_sent_again(world: World) -> None:
    world.usage.count("hello", at(0), 10)
    world.usage.count("other", at(0), 3)
    world.clock.set(at(1) + timedelta(minutes=5))
    world.billing.kill_after_call = 0
    with pytest.raises(Killed):
        world.close(at(0))
    [sent] = world.billing.received
    # a day later Stripe no longer recognises the identifier: sending it blind could count it twice
    world.clock.set(at(25) + timedelta(minutes=5))
    result = world.close(at(24))
    assert f"{sent.identifier}: found delivered" in result.notes
    assert [e.identifier for e in world.billing.received].count(sent.identifier) == 1
    assert world.billing.billed(sent.event_name) == sum(world.totals(sent.event_name).values())

    # an old intent Stripe never got is sent
    world.usage.count("hello", at(26), 5)
    world.clock.set(at(27) + timedelta(minutes=5))

    class Lost(RecordingBilling):
        def report_meter_event(self, event: MeterEvent) -> None:
            self.received.append(event)
            raise Killed("the call never reached Stripe")

    lost = Lost()
    lost.customers = world.billing.customers
    with pytest.raises(Killed):
        world.close(at(26), billing=lost)
    [never] = lost.received
    world.clock.set(at(52))
    world.close(at(51))
    assert world.billing.meter_events[never.identifier].value == never.value
