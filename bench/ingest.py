"""Usage ingestion under load: batches of 1,000 events through ``POST /v1/usage/events`` on the local
cloud (HTTP, the ingest token's authentication, validation, the namespace check, the exactly-once
transactions), next to a baseline measured in the same run: the same number of items, of the same
size, written with plain ``batch_write_item`` (25 per request) to the same moto server.

    .venv/bin/python bench/ingest.py [--batches 10] [--services 5]

Prints ``ratio=<ingestion events/s / baseline items/s>`` (goal >= 0.5) and
``wru_per_event=<n>``: the DynamoDB write units of the ingestion requests, counted at the local
cloud's DynamoDB middleware from the requests and the items they touched (``localcloud.aws.WriteUnits``:
transactional items count 2), divided by the events accepted (goal <= 2.5)."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

NS = "acme-backend"
PRICE_PER_MILLION_WRU = 1.25  # USD, DynamoDB on-demand write request units (us-east-1)


def onboard(api: str) -> None:
    ada = requests.post(f"{api}/v1/auth/local-login", json={"login": "ada"}, timeout=10).json()["token"]
    headers = {"Authorization": f"Bearer {ada}"}
    body = {"github_org": "acme", "github_team": "backend", "region": "local", "plan": "team"}
    r = requests.post(f"{api}/v1/namespaces", json=body, headers=headers, timeout=30)
    assert r.status_code == 202, r.text
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if requests.get(f"{api}/v1/namespaces/{NS}", headers=headers, timeout=10).json().get("status") == "active":
            return
        time.sleep(0.2)
    raise SystemExit("onboarding did not finish")


def mint(api: str) -> str:
    ops = requests.post(f"{api}/v1/auth/local-login", json={"login": "ops"}, timeout=10).json()["token"]
    r = requests.post(
        f"{api}/v1/regions/local/ingest-tokens",
        json={"name": "bench"},
        headers={"Authorization": f"Bearer {ops}"},
        timeout=10,
    )
    assert r.status_code == 201, r.text
    return str(r.json()["token"])


def batch(services: int, size: int = 1000) -> str:
    """A cluster's flush: request counts per service, one hour, distinct ids."""
    at = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    events = [
        {
            "id": str(uuid.uuid4()),
            "namespace": NS,
            "meter": "requests",
            "value": 1 + i % 97,
            "timestamp": at,
            "service": f"svc-{i % services}",
        }
        for i in range(size)
    ]
    return json.dumps({"events": events})


def baseline_items(size: int = 1000) -> list[dict[str, Any]]:
    """Items shaped like the ledger's claims (same keys and attributes)."""
    expires = str(int(time.time()) + 36 * 86400)
    return [
        {
            "PK": {"S": f"USAGE_EVENT#{NS}#{uuid.uuid4()}"},
            "SK": {"S": "USAGE_EVENT"},
            "entity": {"S": "UsageEventClaim"},
            "meter": {"S": "requests"},
            "service": {"S": "svc-1"},
            "hour": {"S": "2026-12-01T10"},
            "value": {"N": "42000000"},
            "expires_at": {"N": expires},
        }
        for _ in range(size)
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--services", type=int, default=5)
    args = parser.parse_args()
    import logging

    logging.disable(logging.WARNING)
    from chalicelib.composition import set_container
    from chalicelib.domain.clock import SystemClock
    from tests.fixtures import start_platform

    cloud = start_platform(Path(tempfile.mkdtemp(prefix="bench-ingest-")) / "data", SystemClock())
    try:
        api = cloud.api_url
        onboard(api)
        for consumer in cloud.consumers.values():  # nothing else writes while we measure
            consumer.function = "none"
        cloud.scheduler.tick = lambda: []
        token = mint(api)
        session = requests.Session()
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

        def post(body: str) -> dict[str, Any]:
            r = session.post(f"{api}/v1/usage/events", data=body, headers=headers, timeout=120)
            assert r.status_code == 200, r.text
            return dict(r.json())

        ddb = cloud.moto.client("dynamodb")
        table = cloud.decl.table_name

        def write_baseline(items: list[dict[str, Any]]) -> None:
            for i in range(0, len(items), 25):
                ddb.batch_write_item(RequestItems={table: [{"PutRequest": {"Item": it}} for it in items[i : i + 25]]})

        post(batch(args.services))  # warm up both paths
        write_baseline(baseline_items())

        # Alternately, a batch each way: both see the same load on this shared machine.
        bodies = [batch(args.services) for _ in range(args.batches)]
        item_sets = [baseline_items() for _ in range(args.batches)]
        ingest_seconds = baseline_seconds = 0.0
        accepted = 0
        for body, items in zip(bodies, item_sets, strict=True):
            started = time.perf_counter()
            accepted += post(body)["accepted"]
            ingest_seconds += time.perf_counter() - started
            started = time.perf_counter()
            write_baseline(items)
            baseline_seconds += time.perf_counter() - started
        assert accepted == 1000 * args.batches

        ingest_eps = accepted / ingest_seconds
        baseline_eps = 1000 * args.batches / baseline_seconds
        print(f"{args.batches} batches of 1,000 events ({args.services} services, one hour): POST /v1/usage/events")
        print(f"ingestion: {ingest_eps:.0f} events/s ({ingest_seconds / args.batches * 1000:.0f} ms per batch)")
        print(f"baseline batch_write_item, same items: {baseline_eps:.0f} items/s")
        print(f"ratio={ingest_eps / baseline_eps:.2f} (goal >= 0.5)")

        # Write units, counted: new events, then the same batch again (all duplicates), then the baseline.
        app = cloud.moto.app
        app.count_write_units = True
        meter = app.write_units
        units0, index0 = meter.units, sum(meter.index_units.values())
        counted_batches = [batch(args.services) for _ in range(3)]
        counted = sum(post(b)["accepted"] for b in counted_batches)
        units, index_units = meter.units - units0, sum(meter.index_units.values()) - index0
        ops = dict(meter.requests)
        units1 = meter.units
        dup = post(counted_batches[0])
        assert dup["duplicates"] == 1000
        dup_units = meter.units - units1
        units2 = meter.units
        write_baseline(baseline_items())
        base_units = meter.units - units2
        app.count_write_units = False
        wru = units / counted
        print(
            f"write units: {units} table + {index_units} GSI over {counted} accepted events "
            f"({', '.join(f'{k} x{v}' for k, v in sorted(ops.items()))})"
        )
        print(f"wru_per_event={wru:.3f} (goal <= 2.5; transactional items count 2)")
        print(f"gsi_wru_per_event={index_units / counted:.4f} (the unreported index; counted once per index write)")
        print(f"a batch sent again (1,000 duplicates): {dup_units} write units ({dup_units / 1000:.3f} per event)")
        print(f"baseline check: batch_write_item of 1,000 claim-sized items = {base_units} write units")
        per_million = (wru + index_units / counted) * PRICE_PER_MILLION_WRU
        print(f"cost per million events at ${PRICE_PER_MILLION_WRU} per million WRU (on demand): ${per_million:.2f}")
    finally:
        cloud.stop()
        set_container(None)


if __name__ == "__main__":
    main()
