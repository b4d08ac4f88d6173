"""A monthly usage report: the DynamoDB requests and the time to gather one namespace's month, and the
time to render it; and the hourly fan-out's requests per due namespace. Counted at the local cloud's
moto server.

A namespace on the team plan gets every hour of November 2026 in the ledger for 10 services and the
two ``sum`` meters (14,400 hourly buckets) plus a daily ``seats`` maximum, and a monthly schedule
(UTC). Then:

- **gather** (``ReportService.gather``: the month's buckets and the month before's, one query each
  for every meter, the rollups, the namespace, its budget, the report item; the figures to S3);
- **render** (``ReportRenderer``: Jinja2, the matplotlib chart, the CSV, the Slack blocks; the first
  render pays for the imports, reported apart);
- **fan-out**: ``--due`` other namespaces filed under the same due hour; the fan-out's DynamoDB and
  SQS requests divided by the namespaces it sent.

    .venv/bin/python bench/reports.py [--due 1000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.rating import counting, item_size  # noqa: E402

NS = "acme-backend"
SERVICES = tuple(f"svc-{i}" for i in range(10))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--due", type=int, default=1000, help="namespaces due in the fan-out's hour")
    args = parser.parse_args()
    import logging

    logging.disable(logging.WARNING)
    from chalicelib.adapters.dynamodb.base import BaseItem
    from chalicelib.adapters.render.report import ReportRenderer
    from chalicelib.composition import get_container, set_container
    from chalicelib.domain.clock import ManualClock
    from chalicelib.domain.metering import MICROS, UsageEvent, hour_key
    from chalicelib.domain.model import Member, Namespace
    from chalicelib.domain.reports import last_complete_period
    from chalicelib.domain.services.reports import Report
    from tests.fixtures import start_platform

    BaseItem.Meta.read_timeout_seconds = 120
    now = datetime(2026, 12, 1, 9, 20, tzinfo=UTC)
    cloud = start_platform(Path(tempfile.mkdtemp(prefix="bench-reports-")) / "data", ManualClock(now))
    for consumer in cloud.consumers.values():
        consumer.function = "none"
    cloud.scheduler.tick = lambda: []
    try:
        c = get_container()
        c.stores.namespaces.create(
            Namespace(NS, "acme", 1000, "backend", 2001, "local", "team", "active", now, "user:ada"),
            [],
            creator=Member(NS, 1, "ada", "owner", "org_owner"),
        )
        ledger = c.usage_ledger
        start = datetime(2026, 11, 1, tzinfo=UTC)
        events = []
        for h in range(30 * 24):
            hour = start + timedelta(hours=h)
            for svc in SERVICES:
                events.append(UsageEvent(f"sh:{h}:{svc}", NS, "service_hours", MICROS, hour, svc))
                events.append(UsageEvent(f"rq:{h}:{svc}", NS, "requests", (1000 + h) * MICROS, hour, svc))
        seeded = time.perf_counter()
        ledger.record(events, now)
        for day in range(30):
            ledger.record_max(NS, "seats", "", hour_key(start + timedelta(days=day)), 5 * MICROS, now)
        print(f"seeded {len(events)} hourly buckets ({len(SERVICES)} services) in {time.perf_counter() - seeded:.0f} s")
        c.budgets.set(NS, 10_000_000, [50, 80, 100], False, "user:ada")
        c.reports.set_schedule(
            NS,
            {"frequency": "monthly", "timezone": "UTC", "hour": 9, "channels": [{"type": "email", "to": "owners"}]},
            "user:ada",
        )
        period = last_complete_period("monthly", "UTC", now.date())
        c.reports._reports.create(Report(NS, period.id, period, "gathered", "bench", now))
        from chalicelib.domain.services.reports import _period_json

        app = cloud.moto.app
        t = time.perf_counter()
        _, gather_ops = counting(app, lambda: c.reports.gather(NS, period.id, _period_json(period)))
        gather_s = time.perf_counter() - t
        raw: list[dict[str, Any]] = []
        pages = 0
        paginator = cloud.client("dynamodb").get_paginator("query")
        for page_ in paginator.paginate(
            TableName=cloud.decl.table_name,
            KeyConditionExpression="PK = :pk AND begins_with(SK, :p)",
            ExpressionAttributeValues={":pk": {"S": f"USAGE#{NS}"}, ":p": {"S": "H#2026-11"}},
        ):
            raw.extend(page_["Items"])
            pages += 1
        size = sum(map(item_size, raw))
        print(
            f"gather (a month: {len(raw)} buckets, {size / 1024:.0f} KiB, {pages} query pages of 1 MB): "
            f"{gather_ops} requests={sum(gather_ops.values())} in {gather_s:.2f} s"
        )
        renderer = ReportRenderer()
        t = time.perf_counter()
        c.reports.render(NS, period.id, renderer)
        first = time.perf_counter() - t
        t = time.perf_counter()
        c.reports.render(NS, period.id, renderer)
        warm = time.perf_counter() - t
        html = c.reports.html(NS, period.id)
        print(
            f"render: first {first:.2f} s (imports Jinja2 and matplotlib), then {warm:.2f} s; "
            f"HTML {len(html) >> 10} KiB"
        )

        schedule = c.reports.schedule(NS)
        due = datetime(2026, 12, 2, 9, tzinfo=UTC)
        store = c.reports._schedules
        for i in range(args.due):
            store.put(replace(schedule, namespace=f"team-{i:05d}", next_due=due))
        store.set_fan_out_cursor(due - timedelta(hours=1))
        page: dict[str, Any] = {"more": True, "hour": None, "cursor": None, "sent": 0}
        tasks = 0

        def run() -> None:
            nonlocal page, tasks
            while page["more"]:
                page = c.reports.fan_out_page(due + timedelta(minutes=15), page["hour"], page["cursor"], page["sent"])
                tasks += 1

        before = dict(app.requests_by_operation)
        run()
        ops = {
            k.split(".")[-1]: v - before.get(k, 0)
            for k, v in app.requests_by_operation.items()
            if v != before.get(k, 0) and not k.endswith("ReceiveMessage")  # the consumers' polling
        }
        sent = page["sent"]
        print(
            f"fan-out: {sent} due namespaces in {tasks} tasks; requests {ops} = "
            f"{sum(ops.values()) / max(sent, 1):.3f} per due namespace"
        )
    finally:
        cloud.stop()
        set_container(None)


if __name__ == "__main__":
    main()
