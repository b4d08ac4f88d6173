"""Billing through Stripe, measured against the Stripe stand-in: the Stripe requests each namespace's
hourly close makes (by endpoint), and the time of the hourly run's reporting for many namespaces.

    .venv/bin/python bench/billing.py [--namespaces 1000] [--services 1]

Each namespace is a Stripe customer with a subscription to the team plan (made first, not counted),
with an hour of usage in the ledger (requests and service hours of ``--services`` services; seats from
its three members). Then the hourly run's per-namespace step (``MeteringService.close_namespace``: the
ledger's unreported buckets reported as meter events, intent before and result after each) runs for
every namespace, one after the other as one queue consumer would; its Stripe requests are counted
from the stand-in's request log and the adapter's own counter, and the wall time is taken. A second
run of the same hour must send nothing. The ledger is the table's adapter on moto (as the
local cloud runs it: a moto server on loopback, DynamoDB requests serialised, the local cloud's
TransactWriteItems), so the time is the platform's work plus loopback HTTP to moto and to the
stand-in; the time inside the meter event calls (HTTP to the stand-in included) is shown apart.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "PLATFORM_TABLE_NAME": "platform-bench",
        "POWERTOOLS_LOG_LEVEL": "ERROR",
    }
)
os.environ.pop("AWS_ENDPOINT_URL", None)


def main() -> None:
    import logging

    parser = argparse.ArgumentParser()
    parser.add_argument("--namespaces", type=int, default=1000)
    parser.add_argument("--services", type=int, default=1)
    args = parser.parse_args()
    logging.disable(logging.WARNING)

    import boto3

    from chalicelib.adapters.catalog import load_catalog
    from chalicelib.adapters.dynamodb.base import bind_table
    from chalicelib.adapters.dynamodb.usage import DynamoUsageLedger
    from chalicelib.adapters.stripe_billing import StripeBilling
    from chalicelib.domain.clock import ManualClock
    from chalicelib.domain.metering import MICROS, UsageEvent, hour_of
    from chalicelib.domain.model import Member, Namespace
    from chalicelib.domain.services.ingestion import IngestionService
    from chalicelib.domain.services.metering_run import MeteringService
    from localcloud import moto_patches
    from localcloud.aws import MotoServer, create_table
    from localcloud.standins.stripe import DEFAULT_API_KEY, StripeStandIn

    now = hour_of(datetime.now(UTC)) + timedelta(minutes=5)
    clock = ManualClock(now)
    catalog = load_catalog()
    moto = MotoServer().start()  # a server, as the local cloud runs it (moto's in-process mock would patch HTTP)
    # and with the local cloud's DynamoDB transaction (moto's own copies the whole table per item written)
    moto_patches.install(lambda name, event: (None, "no functions in this bench"))
    with StripeStandIn(clock=clock, tick_seconds=0) as standin:
        create_table(boto3.client("dynamodb", endpoint_url=moto.endpoint), "platform-bench")
        bind_table("platform-bench", "us-east-1", moto.endpoint)
        billing = StripeBilling(DEFAULT_API_KEY, catalog, clock, api_base=standin.url)
        billing.sync_catalog()
        ledger = DynamoUsageLedger()
        hour = hour_of(now) - timedelta(hours=1)
        namespaces: dict[str, Namespace] = {}
        made = time.perf_counter()
        for i in range(args.namespaces):
            ns_id = f"org{i}-team"
            customer = billing.create_customer(ns_id, None, f"bench-{ns_id}-customer")
            subscription = billing.create_subscription(customer, "team", f"bench-{ns_id}-sub", start=hour)
            namespaces[ns_id] = Namespace(
                ns_id, "org", i, "team", i, "local", "team", "active", hour, "bench",
                customer_id=customer, subscription_id=subscription, cluster_id="c1",
            )  # fmt: skip

        class Namespaces:
            def get(self, ns_id: str, *, consistent: bool = True) -> Namespace | None:
                return namespaces.get(ns_id)

        class Members:
            def list(self, ns_id: str) -> list[Member]:
                return [Member(ns_id, k, f"user{k}", "member", "team") for k in range(3)]

        class Placements:
            def regions_of(self, ns_ids: Any) -> dict[str, str]:
                return {}

        ingestion = IngestionService(ledger, catalog, Placements(), clock)  # type: ignore[arg-type]
        for ns_id in namespaces:
            events = []
            for s in range(args.services):
                service = f"svc{s}"
                events.append(UsageEvent(f"r-{ns_id}-{s}", ns_id, "requests", 12_345 * MICROS, hour, service))
                events.append(UsageEvent(f"h-{ns_id}-{s}", ns_id, "service_hours", MICROS, hour, service))
            ingestion.ingest_internal(events)
        setup = time.perf_counter() - made

        run = MeteringService(
            ledger, ingestion.ingest_internal, billing, catalog, Namespaces(), Members(),  # type: ignore[arg-type]
            lambda ns: None, clock,
        )  # fmt: skip
        stripe_time = [0.0]  # wall time inside the adapter's meter event calls (HTTP to the stand-in included)
        report = billing.report_meter_event

        def timed_report(event: Any) -> None:
            t0 = time.perf_counter()
            try:
                report(event)
            finally:
                stripe_time[0] += time.perf_counter() - t0

        billing.report_meter_event = timed_report  # type: ignore[method-assign]
        results = {}
        for label in ("first run", "the same hour again"):
            log_from = len(standin.requests)
            counted_from = billing.requests
            stripe_time[0] = 0.0
            per_namespace: list[float] = []
            began = time.perf_counter()
            for ns_id in namespaces:
                t0 = time.perf_counter()
                run.close_namespace(ns_id, hour)
                per_namespace.append(time.perf_counter() - t0)
            elapsed = time.perf_counter() - began
            log = standin.requests[log_from:]
            results[label] = (elapsed, per_namespace, Counter(f"{r['method']} {r['path']}" for r in log))
            print(
                f"{label}: {len(namespaces)} namespaces in {elapsed:.1f} s "
                f"({len(namespaces) / elapsed:.0f} namespaces/s; per namespace median "
                f"{statistics.median(per_namespace) * 1000:.1f} ms, p95 "
                f"{sorted(per_namespace)[int(len(per_namespace) * 0.95)] * 1000:.1f} ms)"
            )
            print(
                f"  Stripe requests: {len(log)} ({len(log) / len(namespaces):.2f} per namespace; "
                f"adapter counted {billing.requests - counted_from}); time in them "
                f"{stripe_time[0]:.1f} s ({stripe_time[0] / len(namespaces) * 1000:.1f} ms per namespace)"
            )
            for endpoint, n in sorted(results[label][2].items()):
                print(f"    {endpoint}: {n} ({n / len(namespaces):.2f} per namespace)")
        received = standin.meter_events()
        print(
            f"meter events held by the stand-in: {len(received)}; "
            f"setup (customers, subscriptions, usage): {setup:.1f} s"
        )
        meters_with_usage = 1 + 2 * args.services  # seats, and requests and service_hours per service's bucket
        print(
            f"expected per namespace: {meters_with_usage} "
            f"(one per bucket with usage: seats + 2 x {args.services} services)"
        )
    moto_patches.uninstall()
    moto.stop()


if __name__ == "__main__":
    main()
