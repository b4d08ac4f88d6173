"""Alerting under load: 1,000 ``deployment.failed`` events put on the bus, with duplicates, through the
``alerts`` rule, queue and notifier to a Slack channel (the Slack stand-in) and a signed webhook (the
receiver stand-in, which verifies each). Of the 1,000: 400 distinct failures, 300 exact replays of one
of them (the same event again, as at-least-once delivery does) and 300 repeats (a new event about the
same deployment: the same alert within its repeat interval). Exactly 400 alerts should reach each
channel once.

Prints the AWS requests the pipeline made (by service and operation, counted at the local cloud's moto
server; the bench's own PutEvents and the other queues' idle polls excluded), per delivered alert and
per event, and the time from each alert's first event on the bus to its webhook at the receiver (median,
p95, max). ``--window`` is the rule's grouping window (0: every alert its own message; 30: the
default, where a burst goes out as few grouped messages and the latency includes the window).

    .venv/bin/python bench/alerts.py [--events 1000] [--distinct 400] [--window 0]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
NS = "acme-backend"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def events(total: int, distinct: int, seed: int = 7) -> list[dict[str, Any]]:
    """``distinct`` failures, then exact replays and repeats of them to ``total``, shuffled."""
    from chalicelib.domain.ids import new_id

    now = datetime.now(UTC)
    originals = [
        {
            "id": new_id(now),
            "type": "deployment.failed",
            "version": 1,
            "namespace": NS,
            "occurred_at": now.isoformat(),
            "data": {"service": f"svc{i % 20}", "deployment_id": f"dep-{i:04d}", "reason": "health check failed"},
        }
        for i in range(distinct)
    ]
    rng = random.Random(seed)
    out = list(originals)
    extra = total - distinct
    for k in range(extra):
        original = rng.choice(originals)
        if k < extra // 2:
            out.append(original)  # the same event again
        else:
            out.append({**original, "id": new_id(now)})  # another event, the same alert
    rng.shuffle(out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--distinct", type=int, default=400)
    parser.add_argument("--window", type=int, default=0, help="the rule's grouping window, seconds")
    args = parser.parse_args()
    import logging

    logging.disable(logging.WARNING)
    from chalicelib.composition import set_container
    from chalicelib.domain.clock import SystemClock
    from tests.fixtures import start_platform

    cloud = start_platform(Path(tempfile.mkdtemp(prefix="bench-alerts-")) / "data", SystemClock())
    cloud.scheduler.tick = lambda: []  # no schedule's requests in the counts (the outbox relay is run by hand)
    try:
        api = requests.Session()
        token = api.post(f"{cloud.api_url}/v1/auth/local-login", json={"login": "ada"}, timeout=10).json()["token"]
        api.headers["Authorization"] = f"Bearer {token}"
        r = api.post(
            f"{cloud.api_url}/v1/namespaces", json={"github_org": "acme", "github_team": "backend", "region": "local"}
        )
        assert r.status_code == 202, r.text
        arn = cloud.resources["state_machines"]["onboarding"].replace(":stateMachine:", ":execution:")
        assert cloud.wait_execution(f"{arn}:{NS}", timeout=120)["status"] == "SUCCEEDED"
        channels = f"{cloud.api_url}/v1/namespaces/{NS}/alerts/channels"
        slack = api.post(
            channels,
            json={"kind": "slack", "name": "ops", "target": cloud.slack.webhook_url("ops"), "rate_limit": 3600},
        ).json()
        hook = api.post(
            channels,
            json={"kind": "webhook", "name": "ci", "target": cloud.webhooks.endpoint_url("ci"), "rate_limit": 3600},
        ).json()
        cloud.webhooks.register("ci", hook["secret"])
        rule = {
            "id": "failures",
            "events": ["deployment.failed"],
            "channels": [slack["id"], hook["id"]],
            "group_window": args.window,
        }
        assert api.put(f"{cloud.api_url}/v1/namespaces/{NS}/alerts/rules", json={"rules": [rule]}).status_code == 200

        # only the alerts queue is consumed: the other queues' idle long polls would swell the counts
        for name, consumer in cloud.consumers.items():
            if name != "alerts":
                consumer.poll_once = lambda wait_seconds=0: time.sleep(1) or 0  # type: ignore[method-assign]
        time.sleep(2)
        app = cloud.moto.app
        before_ops = dict(app.requests_by_operation)
        before_services = dict(app.requests_by_service)

        batch = events(args.events, args.distinct)
        first_put: dict[str, float] = {}
        bus, ev = cloud.resources["bus"]["name"], cloud.client("events")
        began = time.time()
        for start in range(0, len(batch), 10):
            chunk = batch[start : start + 10]
            answer = ev.put_events(
                Entries=[
                    {"Source": "platform", "DetailType": e["type"], "Detail": json.dumps(e), "EventBusName": bus}
                    for e in chunk
                ]
            )
            assert answer["FailedEntryCount"] == 0
            at = time.time()
            for e in chunk:
                first_put.setdefault(e["data"]["deployment_id"], at)
        put_events = -(-len(batch) // 10)
        published = time.time() - began

        def delivered() -> set[str]:
            ids = set()
            for post in cloud.webhooks.received("ci"):
                for alert in (post.get("body") or {}).get("data", {}).get("alerts", []):
                    ids.add(alert["data"]["deployment_id"])
            return ids

        deadline = time.time() + 3600
        while len(delivered()) < args.distinct and time.time() < deadline:
            time.sleep(1)
        time.sleep(5)  # anything more (a duplicate) would have come by now
        done = time.time()
        ops = {k: v - before_ops.get(k, 0) for k, v in app.requests_by_operation.items() if v - before_ops.get(k, 0)}
        services = {k: v - before_services.get(k, 0) for k, v in app.requests_by_service.items()}
        services["events"] = services.get("events", 0) - put_events  # the bench's own PutEvents
        ops["AWSEvents.PutEvents"] = ops.get("AWSEvents.PutEvents", 0) - put_events
        services = {k: v for k, v in services.items() if v}
        ops = {k: v for k, v in ops.items() if v}
        pipeline = sum(services.values())

        # the alert.fired events, relayed as the outbox relay's schedule would
        from chalicelib.composition import get_container

        relay_before = sum(app.requests_by_service.values())
        while get_container().outbox_relay.relay().published:
            pass
        relay = sum(app.requests_by_service.values()) - relay_before

        posts = cloud.webhooks.received("ci")
        slack_posts = cloud.slack.received()
        latencies = []
        for post in posts:
            at = datetime.fromisoformat(post["received_at"]).timestamp()
            for alert in post["body"]["data"]["alerts"]:
                latencies.append(at - first_put[alert["data"]["deployment_id"]])
        ids = [a["data"]["deployment_id"] for p in posts for a in p["body"]["data"]["alerts"]]
        alerts = len(set(ids))
        print(
            f"{len(batch)} events ({args.distinct} distinct failures, {len(batch) - args.distinct} duplicates) "
            f"put on the bus in {published:.1f} s; group window {args.window} s"
        )
        print(
            f"delivered: {alerts} alerts in {len(posts)} webhooks (all verified: {all(p['verified'] for p in posts)}, "
            f"none twice: {len(ids) == alerts}) and {len(slack_posts)} Slack messages, "
            f"{done - began - 5:.0f} s from the first event to the last message"
        )
        print(
            f"AWS requests of the pipeline: {pipeline} = {pipeline / max(alerts, 1):.1f} per delivered alert, "
            f"{pipeline / len(batch):.1f} per event; relaying the alert.fired events: {relay} more"
        )
        print("  by service: " + ", ".join(f"{k} {v}" for k, v in sorted(services.items(), key=lambda kv: -kv[1])))
        print("  by operation: " + ", ".join(f"{k} {v}" for k, v in sorted(ops.items(), key=lambda kv: -kv[1])))
        if latencies:
            print(
                f"event on the bus -> webhook at the receiver: median {statistics.median(latencies):.1f} s, "
                f"p95 {percentile(latencies, 95):.1f} s, max {max(latencies):.1f} s"
            )
    finally:
        cloud.stop()
        set_container(None)


if __name__ == "__main__":
    main()
