"""The usage ledger and ingestion against moto's DynamoDB in the process: exactly once under repeats,
duplicates inside a batch, conflicts and lost answers; per-event validation; reporting and the
unreported index; ``max`` meters; the collectors' cursor; the usage query."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError, ReadTimeoutError
from pynamodb.exceptions import TransactWriteError, VerboseClientError

from chalicelib.adapters.dynamodb.namespaces import NamespaceItem
from chalicelib.adapters.dynamodb.usage import (
    DynamoNamespacePlacements,
    DynamoUsageLedger,
    UsageBucketItem,
    UsageEventClaimItem,
    UsageRollupItem,
    pack,
)
from chalicelib.domain.errors import DependencyUnavailableError, ValidationError
from chalicelib.domain.metering import MICROS, UsageEvent, hour_key
from chalicelib.domain.services.ingestion import IngestionService
from chalicelib.domain.services.usage import UsageService

NS = "acme-backend"


def place(ns: str, region: str = "local", *, status: str = "active", cluster: str | None = "local-1") -> None:
    pk, sk = NamespaceItem.key(ns)
    NamespaceItem(
        PK=pk,
        SK=sk,
        ns=ns,
        github_org="acme",
        github_org_id=1,
        github_team=ns,
        github_team_id=2,
        region=region,
        plan="starter",
        status=status,
        created_by="ada",
        cluster_id=cluster,
        created_at=datetime(2026, 11, 1, tzinfo=UTC),
    ).save()


def raw(
    i: int | str, *, ns: str = NS, value: Any = Decimal("1.5"), at: str = "2026-11-27T11:30:00Z", **extra: Any
) -> dict[str, Any]:
    return {"id": f"e{i}", "namespace": ns, "meter": "requests", "value": value, "timestamp": at, **extra}


def service(container: Any, ledger: DynamoUsageLedger | None = None) -> IngestionService:
    return IngestionService(
        ledger or DynamoUsageLedger(), container.catalog, DynamoNamespacePlacements(), container.clock
    )


def bucket_total(ns: str, hour: str, meter: str = "requests", svc: str = "") -> int:
    try:
        return int(UsageBucketItem.get(*UsageBucketItem.key(ns, hour, meter, svc), consistent_read=True).total or 0)
    except UsageBucketItem.DoesNotExist:
        return 0


def rollup_total(ns: str, period: str, meter: str = "requests") -> int:
    try:
        return int(UsageRollupItem.get(*UsageRollupItem.key(ns, period, meter), consistent_read=True).total or 0)
    except UsageRollupItem.DoesNotExist:
        return 0


# ----------------------------------------------------------------------------- exactly once


def test_the_same_batch_twice_counts_once(container: Any) -> None:
    place(NS)
    ingest = service(container)
    batch = [raw(i, at="2026-11-27T10:15:00Z" if i % 2 else "2026-11-27T11:45:00Z") for i in range(150)]
    first = ingest.ingest(batch, region="local")
    again = ingest.ingest(batch, region="local")
    assert (first.accepted, first.duplicates, first.rejected) == (150, 0, [])
    assert (again.accepted, again.duplicates, again.rejected) == (0, 150, [])
    assert bucket_total(NS, "2026-11-27T10") == 75 * 1_500_000
    assert bucket_total(NS, "2026-11-27T11") == 75 * 1_500_000
    assert rollup_total(NS, "2026-11") == 150 * 1_500_000


def test_an_event_twice_in_one_batch_counts_once(container: Any) -> None:
    place(NS)
    result = service(container).ingest([raw(1), raw(2), raw(1, value=Decimal(7))], region="local")
    assert (result.accepted, result.duplicates) == (2, 1)
    assert bucket_total(NS, "2026-11-27T11") == 3_000_000


def test_a_thousand_events_of_one_bucket_take_eleven_transactions() -> None:
    at = datetime(2026, 11, 27, 11, tzinfo=UTC)
    events = [UsageEvent(f"e{i}", NS, "requests", 1, at) for i in range(1000)]
    chunks = pack(events)
    assert [len(c) for c in chunks] == [98] * 10 + [20]
    mixed = [
        UsageEvent(f"m{i}", NS, "requests", 1, at + timedelta(hours=i % 5), service=f"s{i % 3}") for i in range(400)
    ]
    for chunk in pack(mixed):
        buckets = {(e.hour, e.meter, e.service) for e in chunk}
        rollups = {(e.period, e.meter) for e in chunk}
        assert len(chunk) + len(buckets) + len(rollups) <= 100


def _cancelled(reasons: list[str | None], code: str = "TransactionCanceledException") -> TransactWriteError:
    from pynamodb.exceptions import CancellationReason

    cause = VerboseClientError(
        {"Error": {"Code": code, "Message": "cancelled"}},
        "TransactWriteItems",
        cancellation_reasons=[None if r is None else CancellationReason(code=r) for r in reasons],
    )
    return TransactWriteError("Failed to write transaction items", cause)


def test_a_conflict_is_retried_and_counted_once(container: Any) -> None:
    place(NS)
    calls = {"n": 0}

    def conflict_twice(commit: Any, chunk: Any, token: str, now: datetime) -> None:
        calls["n"] += 1
        if calls["n"] <= 2:
            raise _cancelled([None] * len(chunk) + ["TransactionConflict"])
        commit(chunk, token, now)

    ledger = DynamoUsageLedger(commit=conflict_twice, sleep=lambda s: None)
    result = service(container, ledger).ingest([raw(i) for i in range(10)], region="local")
    assert (result.accepted, result.duplicates, calls["n"]) == (10, 0, 3)
    assert bucket_total(NS, "2026-11-27T11") == 15_000_000


def test_a_table_that_keeps_refusing_answers_503_and_a_retry_counts_the_rest_once(container: Any) -> None:
    place(NS)
    state = {"commits": 0, "refuse": True}

    def refuse_second_chunk(commit: Any, chunk: Any, token: str, now: datetime) -> None:
        if state["commits"] >= 1 and state["refuse"]:
            raise _cancelled([], code="ThrottlingException")
        commit(chunk, token, now)
        state["commits"] += 1

    ledger = DynamoUsageLedger(commit=refuse_second_chunk, sleep=lambda s: None, max_attempts=3)
    ingest = service(container, ledger)
    batch = [raw(i) for i in range(200)]  # 3 chunks
    with pytest.raises(DependencyUnavailableError):
        ingest.ingest(batch, region="local")
    assert bucket_total(NS, "2026-11-27T11") == 98 * 1_500_000  # the first chunk, counted once
    state["refuse"] = False
    retried = ingest.ingest(batch, region="local")
    assert (retried.accepted, retried.duplicates) == (102, 98)
    assert bucket_total(NS, "2026-11-27T11") == 200 * 1_500_000
    assert rollup_total(NS, "2026-11") == 200 * 1_500_000


@pytest.mark.parametrize(
    "lost",
    [
        lambda: EndpointConnectionError(endpoint_url="x"),
        # botocore's read timeout carries response=None, on which PynamoDB's cause_response_code crashed (500)
        lambda: ReadTimeoutError(endpoint_url="x", error="read timeout=5"),
    ],
    ids=["connection lost", "read timed out"],
)
def test_a_lost_answer_is_503_and_the_retry_finds_the_events_counted(container: Any, lost: Any) -> None:
    place(NS)
    lose = {"on": True}

    def lost_answer(commit: Any, chunk: Any, token: str, now: datetime) -> None:
        commit(chunk, token, now)
        if lose["on"]:
            raise TransactWriteError("Failed to write transaction items", lost())

    ingest = service(container, DynamoUsageLedger(commit=lost_answer, sleep=lambda s: None))
    with pytest.raises(DependencyUnavailableError):
        ingest.ingest([raw(i) for i in range(5)], region="local")
    lose["on"] = False
    retried = ingest.ingest([raw(i) for i in range(5)], region="local")
    assert (retried.accepted, retried.duplicates) == (0, 5)
    assert bucket_total(NS, "2026-11-27T11") == 5 * 1_500_000


def test_an_expired_claim_can_never_count_an_event_again(container: Any, clock: Any) -> None:
    place(NS)
    ingest = service(container)
    at = (clock.now() - timedelta(days=34)).isoformat()
    assert ingest.ingest([raw(1, at=at)], region="local").accepted == 1
    claim = UsageEventClaimItem.get(*UsageEventClaimItem.key(NS, "e1"))
    assert claim.expires_at == int((clock.now() + timedelta(days=36)).timestamp())
    clock.advance(timedelta(days=36, seconds=1))  # the claim has expired: the event is too old by now
    result = ingest.ingest([raw(1, at=at)], region="local")
    assert [(r.index, r.code) for r in result.rejected] == [(0, "timestamp_out_of_range")]


# ----------------------------------------------------------------------------- validation


def test_invalid_events_are_rejected_by_index_and_the_valid_ones_counted(container: Any, clock: Any) -> None:
    place(NS)
    place("acme-frontend", region="eu-west")
    place("acme-new", cluster=None, status="provisioning")
    now = clock.now()
    batch = [
        raw(0),  # valid
        raw(1, value=Decimal("NaN")),
        raw(2, value=Decimal("Infinity")),
        raw(3, value=Decimal("-Infinity")),
        raw(4, value=Decimal("-1")),
        raw(5, value=Decimal("0.1234567")),
        raw(6, at=(now - timedelta(days=35, seconds=1)).isoformat()),
        raw(7, at=(now + timedelta(minutes=6)).isoformat()),
        raw(8, value=Decimal("0.000001")),  # valid: six places
        {**raw(9), "meter": "bananas"},
        {**raw(10), "meter": "seats"},
        raw(11, ns="acme-frontend"),  # another region's namespace
        raw(12, ns="nobody-here"),
        raw(13, ns="acme-new"),  # not placed yet
        {**raw(14), "id": "x" * 129},
        {**raw(15), "id": ""},
        {**raw(16), "value": "1.5"},
        {**raw(17), "value": True},
        "not an object",
        {k: v for k, v in raw(19).items() if k != "timestamp"},
        {**raw(20), "timestamp": "2026-11-27T11:30:00"},  # no time zone
        {**raw(21), "colour": "red"},
        {**raw(22), "service": "Not A Label"},
        {**raw(23), "dimensions": {"k": 1}},
        raw(24, value=Decimal("1E+13")),
        raw(25, value=Decimal(3), service="api", dimensions={"route": "/x"}),  # valid
        raw(26, at=(now - timedelta(days=35)).isoformat()),  # valid: exactly 35 days
        raw(27, at=(now + timedelta(minutes=5)).isoformat()),  # valid: exactly 5 minutes ahead
    ]
    result = service(container).ingest(batch, region="local")
    codes = {r.index: r.code for r in result.rejected}
    assert codes == {
        1: "invalid_value",
        2: "invalid_value",
        3: "invalid_value",
        4: "invalid_value",
        5: "invalid_value",
        6: "timestamp_out_of_range",
        7: "timestamp_out_of_range",
        9: "unknown_meter",
        10: "meter_not_ingestible",
        11: "namespace_not_allowed",
        12: "namespace_not_allowed",
        13: "namespace_not_allowed",
        14: "invalid_id",
        15: "invalid_id",
        16: "invalid_value",
        17: "invalid_value",
        18: "invalid_event",
        19: "invalid_event",
        20: "invalid_event",
        21: "invalid_event",
        22: "invalid_event",
        23: "invalid_event",
        24: "invalid_value",
    }
    assert [r.index for r in result.rejected] == sorted(codes)
    assert all(r.message for r in result.rejected)
    assert (result.accepted, result.duplicates) == (5, 0)
    assert bucket_total(NS, "2026-11-27T11") == 1_500_000 + 1
    assert bucket_total(NS, "2026-11-27T11", svc="api") == 3 * MICROS
    # the namespace of the other region: nothing written for it
    assert bucket_total("acme-frontend", "2026-11-27T11") == 0


def test_a_token_of_another_region_reports_for_its_own_namespaces_only(container: Any) -> None:
    place(NS)
    place("acme-frontend", region="eu-west")
    result = service(container).ingest([raw(1), raw(2, ns="acme-frontend")], region="eu-west")
    assert [(r.index, r.code) for r in result.rejected] == [(0, "namespace_not_allowed")]
    assert result.accepted == 1
    assert bucket_total("acme-frontend", "2026-11-27T11") == 1_500_000
    assert bucket_total(NS, "2026-11-27T11") == 0


# ----------------------------------------------------------------------------- the internal entrance


def test_the_internal_entrance_takes_max_meters_as_the_hours_maximum(container: Any, clock: Any) -> None:
    ingest = service(container)
    at = datetime(2026, 11, 27, 9, 10, tzinfo=UTC)
    seats = [UsageEvent(f"seats:{n}", NS, "seats", n * MICROS, at) for n in (3, 5, 4)]
    result = ingest.ingest_internal(seats)
    assert (result.accepted, result.rejected) == (3, [])
    assert bucket_total(NS, "2026-11-27T09", "seats") == 5 * MICROS
    later = UsageEvent("seats:later", NS, "seats", 4 * MICROS, at + timedelta(hours=1))
    ingest.ingest_internal([later])
    assert bucket_total(NS, "2026-11-27T10", "seats") == 4 * MICROS
    assert rollup_total(NS, "2026-11", "seats") == 5 * MICROS  # the period's maximum
    hours = UsageEvent("service_hours:2026-11-27T09:api", NS, "service_hours", 1_000_000, at, service="api")
    bad = UsageEvent("x", NS, "service_hours", -1, at)
    result = ingest.ingest_internal([hours, hours, bad])
    assert (result.accepted, result.duplicates, [(r.index, r.code) for r in result.rejected]) == (
        1,
        1,
        [(2, "invalid_value")],
    )


# ----------------------------------------------------------------------------- reporting


def test_a_report_is_intent_then_result_and_late_usage_stays_unreported(container: Any, clock: Any) -> None:
    place(NS)
    ledger = DynamoUsageLedger()
    ingest = service(container, ledger)
    now = clock.now()
    ingest.ingest([raw(1), raw(2)], region="local")
    [bucket] = ledger.unreported(NS)
    assert (bucket.total, bucket.reported, bucket.reports, bucket.pending) == (3 * MICROS, 0, 0, None)
    pending = ledger.begin_report(bucket, bucket.total - bucket.reported, f"{NS}:requests:{bucket.hour}:1", now)
    assert pending is not None and pending.seq == 1
    assert ledger.begin_report(bucket, 1, "another run", now) is None  # one intent at a time
    [again] = ledger.unreported(NS)
    assert again.pending == pending  # a re-run finds the same identifier and value
    ingest.ingest([raw(3)], region="local")  # late usage while the report is in flight
    ledger.finish_report(again, pending, max_meter=False)
    ledger.finish_report(again, pending, max_meter=False)  # a re-run records nothing twice
    [late] = ledger.unreported(NS)
    assert (late.total, late.reported, late.reports, late.pending) == (4_500_000, 3 * MICROS, 1, None)
    second = ledger.begin_report(late, late.total - late.reported, "id-2", now)
    assert second is not None and second.seq == 2
    ledger.finish_report(late, second, max_meter=False)
    assert ledger.unreported(NS) == []
    stored = UsageBucketItem.get(*UsageBucketItem.key(NS, "2026-11-27T11", "requests", ""))
    assert (stored.GSI1PK, int(stored.reported), int(stored.reports)) == (None, 4_500_000, 2)


def test_the_collectors_cursor_moves_only_from_where_it_was(container: Any) -> None:
    ledger = DynamoUsageLedger()
    assert ledger.cursor(NS) is None
    assert ledger.advance_cursor(NS, None, "2026-11-27T09")
    assert not ledger.advance_cursor(NS, None, "2026-11-27T10")
    assert not ledger.advance_cursor(NS, "2026-11-27T08", "2026-11-27T10")
    assert ledger.advance_cursor(NS, "2026-11-27T09", "2026-11-27T10")
    assert ledger.cursor(NS) == "2026-11-27T10"


# ----------------------------------------------------------------------------- the usage query


def test_usage_by_hour_and_by_day_with_totals(container: Any, clock: Any) -> None:
    place(NS)
    ingest = service(container)
    batch = [
        raw(1, at="2026-11-26T23:10:00Z", service="api"),
        raw(2, at="2026-11-27T00:10:00Z", service="api"),
        raw(3, at="2026-11-27T00:20:00Z"),
        {**raw(4, at="2026-11-27T01:00:00Z", service="api"), "meter": "service_hours", "value": Decimal("0.25")},
    ]
    assert ingest.ingest(batch, region="local").accepted == 4
    ingest.ingest_internal([UsageEvent("s1", NS, "seats", 2 * MICROS, datetime(2026, 11, 26, 5, tzinfo=UTC))])
    usage = UsageService(DynamoUsageLedger(), container.catalog, clock)
    hourly = usage.series(NS)
    assert hourly.start == datetime(2026, 11, 1, tzinfo=UTC) and hourly.end == datetime(2026, 11, 27, 13, tzinfo=UTC)
    assert [(p.meter, p.service, hour_key(p.start), p.quantity) for p in hourly.points] == [
        ("seats", "", "2026-11-26T05", 2 * MICROS),
        ("requests", "api", "2026-11-26T23", 1_500_000),
        ("requests", "", "2026-11-27T00", 1_500_000),
        ("requests", "api", "2026-11-27T00", 1_500_000),
        ("service_hours", "api", "2026-11-27T01", 250_000),
    ]
    assert hourly.totals == {"requests": 4_500_000, "seats": 2 * MICROS, "service_hours": 250_000}
    daily = usage.series(
        NS,
        meter="requests",
        start=datetime(2026, 11, 26, 12, tzinfo=UTC),
        end=datetime(2026, 11, 27, 1, tzinfo=UTC),
        granularity="day",
    )
    assert (daily.start, daily.end) == (datetime(2026, 11, 26, tzinfo=UTC), datetime(2026, 11, 28, tzinfo=UTC))
    assert [(p.service, p.start.day, p.quantity) for p in daily.points] == [
        ("api", 26, 1_500_000),
        ("", 27, 1_500_000),
        ("api", 27, 1_500_000),
    ]
    assert daily.totals == {"requests": 4_500_000}
    by_service = usage.series(NS, service="api", granularity="day")
    assert by_service.totals == {"requests": 3 * MICROS, "seats": 0, "service_hours": 250_000}
    for bad in ({"granularity": "week"}, {"meter": "bananas"}, {"service": "No Label"}):
        with pytest.raises(ValidationError):
            usage.series(NS, **bad)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        usage.series(NS, start=datetime(2026, 10, 1, tzinfo=UTC), end=datetime(2026, 11, 27, tzinfo=UTC))
    with pytest.raises(ValidationError):
        usage.series(NS, start=datetime(2026, 11, 27, tzinfo=UTC), end=datetime(2026, 11, 26, tzinfo=UTC))


def test_onboarding_quotas_are_the_catalogs_plans(container: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from cryptography.fernet import Fernet

    monkeypatch.setenv("PLATFORM_LOCAL_KEY", Fernet.generate_key().decode())
    quotas = container.catalog.quotas()
    assert set(quotas) == {"starter", "team", "scale"}
    assert container.namespaces._plans == quotas
    assert quotas["team"].memory_mib == 4096


@pytest.fixture(autouse=True)
def _transactions_as_the_local_cloud_runs_them(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto's own TransactWriteItems deep-copies the whole table per item (seconds per batch here);
    the local cloud's replacement checks the same conditions at a cost that does not grow with it."""
    from moto.dynamodb.models import DynamoDBBackend

    from localcloud import moto_patches

    monkeypatch.setattr(DynamoDBBackend, "transact_write_items", moto_patches.transact_write_items)
