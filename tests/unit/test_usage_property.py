"""A property of the ledger: whatever the interleaving of clients' batches (repeated, overlapping,
with duplicates inside a batch), of transaction conflicts, throttling, and answers lost after a
commit (the client retries the whole batch), every distinct event is counted exactly once: bucket
and rollup totals equal the hand-computed sums, and one claim exists per event.

Interleavings are real: a fault plan may run another client's whole batch between a chunk's
preparation and its commit, so that chunk then meets claims another writer just committed."""

from __future__ import annotations

import itertools
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pynamodb.exceptions import CancellationReason, TransactWriteError, VerboseClientError

from chalicelib.adapters.dynamodb.usage import (
    DynamoNamespacePlacements,
    DynamoUsageLedger,
    UsageBucketItem,
    UsageEventClaimItem,
    UsageRollupItem,
    ledger_pk,
)
from chalicelib.domain.errors import DependencyUnavailableError
from chalicelib.domain.metering import format_micros
from chalicelib.domain.services.ingestion import IngestionService
from tests.unit.test_usage_ledger import place

NOW = datetime(2026, 12, 1, 0, 30, tzinfo=UTC)
HOURS = ["2026-11-30T09:10:00+00:00", "2026-11-30T23:59:59+00:00", "2026-12-01T00:00:00+00:00"]  # two periods
ACTIONS = ["ok", "ok", "ok", "conflict", "throttle", "lost", "interleave"]
_namespaces = itertools.count()


def _error(code: str, reasons: list[str | None] | None = None) -> TransactWriteError:
    cause = VerboseClientError(
        {"Error": {"Code": code, "Message": code}},
        "TransactWriteItems",
        cancellation_reasons=[None if r is None else CancellationReason(code=r) for r in (reasons or [])],
    )
    return TransactWriteError("Failed to write transaction items", cause)


events_strategy = st.lists(
    st.tuples(st.sampled_from(HOURS), st.sampled_from(["", "api", "web"]), st.integers(0, 5_000_000)),
    min_size=1,
    max_size=120,
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(universe=events_strategy, data=st.data())
def test_every_event_counts_once_whatever_the_interleaving(
    container: Any, universe: list[tuple[str, str, int]], data: st.DataObject
) -> None:
    ns = f"prop-{next(_namespaces)}"
    place(ns)
    events = [
        {
            "id": f"ev-{i}",
            "namespace": ns,
            "meter": "requests",
            "value": format_micros(value),
            "timestamp": at,
            **({"service": svc} if svc else {}),
        }
        for i, (at, svc, value) in enumerate(universe)
    ]
    for e in events:
        e["value"] = Decimal(e["value"])
    n_clients = data.draw(st.integers(1, 4), label="clients")
    batches = [
        data.draw(st.lists(st.sampled_from(events), min_size=1, max_size=150), label=f"batch {c}")
        for c in range(n_clients)
    ]
    committed: list[str] = []
    state = {"steps": 0, "depth": 0}
    pending = list(range(n_clients))

    def run(client: int) -> bool:
        try:
            ingestion.ingest(batches[client], region="local")
        except DependencyUnavailableError:
            return False
        return True

    def faults(commit: Any, chunk: Any, token: str, now: datetime) -> None:
        state["steps"] += 1
        action = "ok" if state["steps"] > 60 else data.draw(st.sampled_from(ACTIONS), label="fault")
        if action == "conflict":
            raise _error("TransactionCanceledException", [None] * len(chunk) + ["TransactionConflict"])
        if action == "throttle":
            raise _error("ThrottlingException")
        if action == "interleave" and state["depth"] == 0 and pending:
            other = data.draw(st.sampled_from(pending), label="interleaved client")
            state["depth"] += 1
            try:
                if run(other) and other in pending:
                    pending.remove(other)
            finally:
                state["depth"] -= 1
        commit(chunk, token, now)
        committed.extend(e.id for e in chunk)
        if action == "lost":
            from botocore.exceptions import EndpointConnectionError

            raise TransactWriteError("Failed to write transaction items", EndpointConnectionError(endpoint_url="x"))

    ledger = DynamoUsageLedger(commit=faults, sleep=lambda s: None, max_attempts=3)
    ingestion = IngestionService(ledger, container.catalog, DynamoNamespacePlacements(), container.clock)
    while pending:
        client = data.draw(st.sampled_from(pending), label="next client")
        if run(client) and client in pending:
            pending.remove(client)

    sent = {e["id"]: e for batch in batches for e in batch}
    assert sorted(committed) == sorted(sent)  # every distinct event's claim committed once
    expected: dict[str, int] = defaultdict(int)
    for e in sent.values():
        hour = datetime.fromisoformat(e["timestamp"]).strftime("%Y-%m-%dT%H")
        expected[f"H#{hour}#requests#{e.get('service') or '-'}"] += int(e["value"] * 1_000_000)
    items = list(UsageBucketItem.query(ledger_pk(ns), UsageBucketItem.SK.startswith("H#"), consistent_read=True))
    assert {i.SK: int(i.total) for i in items} == dict(expected)
    periods: dict[str, int] = defaultdict(int)
    for sk, total in expected.items():
        periods[f"P#{sk[2:9]}#requests"] += total
    rollups = UsageRollupItem.query(ledger_pk(ns), UsageRollupItem.SK.startswith("P#"), consistent_read=True)
    assert {r.SK: int(r.total) for r in rollups} == dict(periods)
    for event_id in sent:
        assert UsageEventClaimItem.get(*UsageEventClaimItem.key(ns, event_id)).value is not None


@pytest.fixture(autouse=True)
def _at_a_fixed_time(clock: Any) -> None:
    clock.set(NOW)
    assert clock.now() - timedelta(days=35) < datetime.fromisoformat(HOURS[0])


@pytest.fixture(autouse=True)
def _transactions_as_the_local_cloud_runs_them(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.dynamodb.models import DynamoDBBackend

    from localcloud import moto_patches

    monkeypatch.setattr(DynamoDBBackend, "transact_write_items", moto_patches.transact_write_items)
