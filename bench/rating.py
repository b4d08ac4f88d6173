"""Pricing a namespace's month: the DynamoDB requests it takes, counted at the local cloud's moto server.

A namespace on the team plan gets a whole month of usage in the ledger (every hour of November 2026,
three services, ``service_hours`` and ``requests``: 4,320 hourly buckets, plus a daily ``seats``
maximum), then is priced

- by the rating service alone (``RatingService.preview``: the period rollups, one query for every meter);
- for comparison, the way a ledger without rollups would: every hourly bucket of the month (a query,
  paged at DynamoDB's 1 MB);
- through the API, ``GET /v1/namespaces/{ns}/billing`` (the namespace and its budget, the rollups, the
  period's crossings; the request's authentication counted apart);
- by the budget's evaluation (the metering run's per-namespace call) when nothing crosses;
- and the deploy check (``BudgetService.check_deploys``) once.

Prints ``requests=<n>`` for the price (goal: one query page per meter or better) and the median latency
of the billing view next to ``GET /v1/health`` (one ``GetItem``) in the same run (``ratio=``).

    .venv/bin/python bench/rating.py [--runs 50]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

NS = "acme-backend"
SERVICES = ("api", "web", "worker")


def dynamodb(app: Any) -> dict[str, int]:
    return {k: v for k, v in app.requests_by_operation.items() if k.startswith("DynamoDB_")}


def counting(app: Any, fn: Callable[[], Any]) -> tuple[Any, dict[str, int]]:
    before = dynamodb(app)
    result = fn()
    after = dynamodb(app)
    return result, {
        k.removeprefix("DynamoDB_20120810."): v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)
    }


def item_size(item: dict[str, Any]) -> int:
    """An item's size as DynamoDB counts it (names + values; numbers about 1 byte per 2 digits)."""
    total = 0
    for name, value in item.items():
        total += len(name.encode())
        ((kind, v),) = value.items()
        if kind == "S":
            total += len(v.encode())
        elif kind == "N":
            total += len(v.lstrip("-").replace(".", "")) // 2 + 1
        elif kind == "BOOL" or kind == "NULL":
            total += 1
        elif kind == "M":
            total += 3 + item_size(v)
        elif kind == "L":
            total += 3 + sum(item_size({"": x}) for x in v)
        else:
            total += len(str(v))
    return total


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    import logging

    logging.disable(logging.WARNING)
    from chalicelib.adapters.dynamodb.base import BaseItem
    from chalicelib.composition import get_container, set_container
    from chalicelib.domain.clock import ManualClock
    from chalicelib.domain.metering import MICROS, UsageEvent, hour_key
    from chalicelib.domain.model import Account, Member, Namespace
    from tests.fixtures import start_platform

    BaseItem.Meta.read_timeout_seconds = 120  # the comparison's month of buckets is slow to page on moto
    now = datetime(2026, 11, 30, 23, 30, tzinfo=UTC)
    cloud = start_platform(Path(tempfile.mkdtemp(prefix="bench-rating-")) / "data", ManualClock(now))
    for consumer in cloud.consumers.values():
        consumer.function = "none"
    cloud.scheduler.tick = lambda: []  # no schedule's requests in the counts
    try:
        c = get_container()
        c.stores.namespaces.create(
            Namespace(NS, "acme", 1000, "backend", 2001, "local", "team", "active", now, "user:ada"),
            [],
            creator=Member(NS, 1, "ada", "owner", "org_owner"),
        )
        token, _ = c.auth.mint_login_token(Account(1, "ada"))
        ledger = c.usage_ledger
        start = datetime(2026, 11, 1, tzinfo=UTC)
        events = []
        for h in range(30 * 24):
            hour = start + timedelta(hours=h)
            for svc in SERVICES:
                events.append(UsageEvent(f"sh:{h}:{svc}", NS, "service_hours", MICROS, hour, svc))
                events.append(UsageEvent(f"rq:{h}:{svc}", NS, "requests", 50_000 * MICROS, hour, svc))
        seeded = time.perf_counter()
        accepted, _ = ledger.record(events, now)
        for day in range(30):
            ledger.record_max(NS, "seats", "", hour_key(start + timedelta(days=day)), (4 + day % 3) * MICROS, now)
        print(f"seeded {len(accepted)} events ({len(events)} hourly buckets) in {time.perf_counter() - seeded:.1f} s")

        app = cloud.moto.app
        preview, rating_ops = counting(app, lambda: c.rating.preview(NS, "team", now))
        print(
            f"rating, from the rollups: {rating_ops} requests={sum(rating_ops.values())} "
            f"for {len(c.catalog.meters)} meters; subtotal {preview.rating.subtotal} c, "
            f"forecast {preview.forecast.subtotal} c"
        )

        def partition(prefix: str) -> list[dict[str, Any]]:
            items: list[dict[str, Any]] = cloud.client("dynamodb").query(
                TableName=cloud.decl.table_name,
                KeyConditionExpression="PK = :pk AND begins_with(SK, :p)",
                ExpressionAttributeValues={":pk": {"S": f"USAGE#{NS}"}, ":p": {"S": prefix}},
                ConsistentRead=True,
            )["Items"]
            return items

        raw, rolled = partition("H#2026-11"), partition("P#2026-11")
        size, rolled_size = sum(map(item_size, raw)), sum(map(item_size, rolled))
        print(
            f"for comparison, every hourly bucket of the month: {len(raw)} buckets, {size / 1024:.0f} KiB: "
            f"{-(-size // (1024 * 1024))} query page(s) at DynamoDB's 1 MB (moto answers in one), "
            f"{-(-size // 4096)} RCU consistent; the {len(rolled)} rollups: {rolled_size} bytes, "
            f"{-(-rolled_size // 4096)} RCU"
        )
        c.budgets.set(NS, 10_000_000, [50, 80, 100], True, "user:ada")
        _, view_ops = counting(app, lambda: c.budgets.overview(NS))
        print(f"the billing view (BudgetService.overview) with a budget: {view_ops} requests={sum(view_ops.values())}")
        session = requests.Session()
        headers = {"Authorization": f"Bearer {token}"}
        url = f"{cloud.api_url}/v1/namespaces/{NS}/billing"
        r, api_ops = counting(app, lambda: session.get(url, headers=headers, timeout=60))
        assert r.status_code == 200, r.text
        print(
            f"GET /v1/namespaces/{{ns}}/billing: {api_ops} requests={sum(api_ops.values())} "
            "(authentication is 3 of them: the token, its last-use mark, the membership)"
        )
        _, eval_ops = counting(app, lambda: c.budgets.evaluate(NS, now))
        print(f"budget evaluation, nothing crossed: {eval_ops} requests={sum(eval_ops.values())}")
        _, check_ops = counting(app, lambda: c.budgets.check_deploys(NS))
        print(f"deploy check: {check_ops} requests={sum(check_ops.values())}")

        def timed(fn: Callable[[], Any]) -> float:
            t = time.perf_counter()
            fn()
            return time.perf_counter() - t

        rollups = statistics.median(timed(lambda: ledger.rollups(NS, "2026-11")) for _ in range(10))
        get = statistics.median(timed(lambda: c.budgets.check_deploys(NS)) for _ in range(10))
        print(
            f"moto reads a partition whole: the rollups query ({len(rolled)} of {len(raw) + len(rolled)} items) median "
            f"{rollups * 1000:.0f} ms, a GetItem {get * 1000:.0f} ms"
        )

        billing, health = [], []
        for _ in range(args.runs):
            t = time.perf_counter()
            session.get(url, headers=headers, timeout=30)
            billing.append(time.perf_counter() - t)
            t = time.perf_counter()
            session.get(f"{cloud.api_url}/v1/health", timeout=30)
            health.append(time.perf_counter() - t)
        b50, h50 = statistics.median(billing), statistics.median(health)
        print(
            f"latency over {args.runs} runs: billing median {b50 * 1000:.1f} ms, "
            f"GET /v1/health median {h50 * 1000:.1f} ms ratio={b50 / h50:.2f}"
        )
    finally:
        cloud.stop()
        set_container(None)


if __name__ == "__main__":
    main()
