"""The GitHub webhook endpoint under load: 1,000 signed push deliveries (distinct delivery ids) to the
local cloud's API, one at a time, as GitHub sends them. Prints the median and 99th percentile latency
of the answer, and the AWS requests the endpoint makes per delivery before it answers, counted
(goal: at most 3: the delivery claim, the hand-off to the queue, the mark as enqueued), next to the
latency of GET /v1/health in the same run as a baseline (``ratio=``). Every other delivery goes with
the local cloud's journal detached, to show what journalling each write (one fsync per write) costs.

    .venv/bin/python bench/webhook.py [--deliveries 1000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def counted(app: object) -> int:
    """The endpoint's own AWS requests: DynamoDB's, and SQS sends (not the queue consumers' polls)."""
    ops = app.requests_by_operation  # type: ignore[attr-defined]
    return sum(v for k, v in ops.items() if k.startswith("DynamoDB_") or k == "AmazonSQS.SendMessage")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--deliveries", type=int, default=1000)
    args = parser.parse_args()
    import logging

    logging.disable(logging.WARNING)
    from chalicelib.composition import set_container
    from chalicelib.domain.clock import SystemClock
    from localcloud.standins.github_webhooks import encode, sign
    from tests.fixtures import start_platform

    cloud = start_platform(Path(tempfile.mkdtemp(prefix="bench-webhook-")) / "data", SystemClock())
    # The consumer is stopped: this measures the endpoint, not the deploys the pushes would start.
    for consumer in cloud.consumers.values():
        consumer.function = "none"
    cloud.scheduler.tick = lambda: []  # no schedule's requests in the counts
    try:
        url = f"{cloud.api_url}/v1/webhooks/github"
        secret = cloud.github.app.webhook_secret
        session = requests.Session()
        payload = {
            "ref": "refs/heads/main",
            "before": "a" * 40,
            "after": "b" * 40,
            "forced": False,
            "repository": {"id": 5001, "full_name": "acme/hello"},
            "installation": {"id": 7001},
            "commits": [{"id": "b" * 40, "added": [], "modified": ["server.py"], "removed": []}],
            "pusher": {"name": "ada"},
            "sender": {"login": "ada"},
        }
        body = encode(payload)
        headers = {
            "Content-Type": "application/json",
            "X-GitHub-Event": "push",
            "X-Hub-Signature-256": sign(secret, body),
            "User-Agent": "GitHub-Hookshot/bench",
        }
        for _ in range(20):  # warm up
            session.get(f"{cloud.api_url}/v1/health", timeout=10)
        health = []
        for _ in range(200):
            started = time.perf_counter()
            session.get(f"{cloud.api_url}/v1/health", timeout=10)
            health.append(time.perf_counter() - started)
        app = cloud.moto.app
        journal = app.journal
        latencies, per_delivery, unjournalled = [], [], []
        for i in range(args.deliveries * 2):
            app.journal = journal if i % 2 == 0 else None  # interleaved: both see the same machine load
            before = counted(app)
            started = time.perf_counter()
            r = session.post(url, data=body, headers={**headers, "X-GitHub-Delivery": str(uuid.uuid4())}, timeout=10)
            (latencies if app.journal is not None else unjournalled).append(time.perf_counter() - started)
            assert r.status_code == 202, r.text
            per_delivery.append(counted(app) - before)
        app.journal = journal
        p50, p99 = statistics.median(latencies), percentile(latencies, 99)
        h50 = statistics.median(health)
        u50, u99 = statistics.median(unjournalled), percentile(unjournalled, 99)
        print(f"{args.deliveries} signed push deliveries to {url}")
        print(f"latency: median {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms")
        print(
            f"AWS requests per delivery before answering: max {max(per_delivery)}, median "
            f"{statistics.median(per_delivery)} (goal <= 3)"
        )
        print(f"baseline GET /v1/health (one GetItem): median {h50 * 1000:.1f} ms ratio={p50 / h50:.2f}")
        print(
            f"without the journal ({args.deliveries} more, interleaved): median {u50 * 1000:.1f} ms, "
            f"p99 {u99 * 1000:.1f} ms; the journal adds {(p50 - u50) * 1000:.1f} ms per delivery (2 writes)"
        )
    finally:
        cloud.stop()
        set_container(None)


if __name__ == "__main__":
    main()
