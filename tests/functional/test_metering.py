"""The hourly metering run on the local cloud, as ``make run`` has it: the example service running while
the local clock is moved three hours ahead, a burst of requests through its proxy, the ``metering-hourly``
schedule firing once and each hour in between closed, what the billing stand-in received, a re-run that
reports nothing, and offboarding's last close."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import requests

from chalicelib.adapters.local_clock import FileOffsetClock
from chalicelib.domain.metering import MICROS, format_micros, hour_key, hour_of, quantize_micros
from localcloud import clock as clock_cli
from localcloud.cloud import LocalCloud
from tests.fixtures import start_platform
from tests.helpers import ROOT

NS = "acme-backend"
BURST = 37


class Api:
    def __init__(self, base: str, token: str) -> None:
        self.base, self.token = base, token

    def __call__(self, method: str, path: str, body: Any = None, **params: Any) -> requests.Response:
        return requests.request(
            method,
            f"{self.base}{path}",
            json=body,
            params=params or None,
            timeout=30,
            headers={"Authorization": f"Bearer {self.token}"},
        )


def wait_for(predicate: Any, timeout: float = 60, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory, env_restored: None) -> Iterator[dict[str, Any]]:
    from chalicelib.composition import set_container

    local = tmp_path_factory.mktemp("metering") / "local"  # as .local: the clock file is local/data/clock.json
    data = local / "data"
    cloud = start_platform(data, FileOffsetClock(data / "clock.json"))
    assert cloud.clock_file == data / "clock.json"
    token = requests.post(f"{cloud.api_url}/v1/auth/local-login", json={"login": "ada"}, timeout=10).json()["token"]
    api = Api(cloud.api_url, token)
    r = api("POST", "/v1/namespaces", {"github_org": "acme", "github_team": "backend", "region": "local"})
    assert r.status_code == 202, r.text
    arn = cloud.resources["state_machines"]["onboarding"].replace(":stateMachine:", ":execution:")
    assert cloud.wait_execution(f"{arn}:{NS}", timeout=60)["status"] == "SUCCEEDED"
    repo = tmp_path_factory.mktemp("repo") / "hello"
    make_repo = ["bash", str(ROOT / "examples" / "make-example-repo.sh"), str(repo)]
    subprocess.run(make_repo, check=True, capture_output=True)
    dep = api("POST", f"/v1/namespaces/{NS}/services/hello/deployments", {"source": str(repo), "ref": "HEAD"}).json()
    done = wait_for(
        lambda: (
            (d := api("GET", f"/v1/namespaces/{NS}/services/hello/deployments/{dep['id']}").json())["status"]
            in ("succeeded", "failed", "rolled_back")
            and d
        ),
        what="the deploy",
    )
    assert done["status"] == "succeeded", done
    state = {"cloud": cloud, "api": api, "local": local, "data": data}
    yield state
    cloud.stop()
    set_container(None)


def container() -> Any:
    from chalicelib.composition import get_container

    return get_container()


def usage(api: Api, meter: str, start: datetime, end: datetime) -> dict[str, str]:
    r = api("GET", f"/v1/namespaces/{NS}/usage", meter=meter, **{"from": start.isoformat(), "to": end.isoformat()})
    assert r.status_code == 200, r.text
    return {s["start"][:13]: s["quantity"] for s in r.json()["series"] if s["service"] == "hello"}


def expected_hours(first: datetime, until: datetime) -> dict[str, str]:
    """From the local runtime's own records of hello's instances, hour by hour (the brute-force rule)."""
    runtime = container().runtime_for(container().settings.local_cluster_address)
    out: dict[str, str] = {}
    hour = first
    while hour <= until:
        seconds = Decimal(0)
        for r in runtime.instances(NS):
            if r["service"] != "hello":
                continue
            start = max(datetime.fromisoformat(r["started_at"]), hour)
            stop = min(datetime.fromisoformat(r["stopped_at"]) if r["stopped_at"] else hour + timedelta(hours=1),
                       hour + timedelta(hours=1))  # fmt: skip
            if stop > start:
                seconds += Decimal(str((stop - start).total_seconds()))
        if seconds:
            out[hour_key(hour)] = format_micros(quantize_micros(seconds / 3600))
        hour += timedelta(hours=1)
    return out


def test_moving_the_clock_three_hours_closes_each_hour_once_and_bills_it(
    platform: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    cloud: LocalCloud = platform["cloud"]
    api: Api = platform["api"]
    service = api("GET", f"/v1/namespaces/{NS}/services/hello").json()
    for _ in range(BURST):
        assert requests.get(service["address"] + "/", timeout=10).status_code == 200
    burst_hour = hour_of(cloud.clock.now())
    created = hour_of(datetime.fromisoformat(api("GET", f"/v1/namespaces/{NS}").json()["created_at"]))

    monkeypatch.setenv("PLATFORM_DATA_DIR", str(platform["local"]))
    assert clock_cli.main(["advance", "3h"]) == 0  # python -m localcloud.clock advance 3h
    now = cloud.clock.now()
    until = hour_of(now) - timedelta(hours=1)
    scheduled = hour_of(now).replace(minute=5)
    if scheduled > now:  # the last :05 already passed once the clock moved
        scheduled -= timedelta(hours=1)
        until -= timedelta(hours=1)
    execution = cloud.resources["state_machines"]["metering"].replace(":stateMachine:", ":execution:")
    execution += f":metering-hourly-{scheduled.strftime('%Y%m%dT%H%M%SZ')}"
    result = wait_for(lambda: _described(cloud, execution), what="the metering-hourly execution")
    result = cloud.wait_execution(execution, timeout=60)
    assert result["status"] == "SUCCEEDED", result
    ledger = container().usage_ledger
    wait_for(lambda: ledger.cursor(NS) == hour_key(until), what="the namespace's hours collected")
    wait_for(lambda: not ledger.unreported(NS), what="the namespace's buckets reported")

    start, end = created, until + timedelta(hours=1)
    assert usage(api, "service_hours", start, end) == expected_hours(created, until)
    # every hour from hello's start to the last closed one has its usage, with no gap: three hours, or
    # two when the jump ended before :05 (that hour's run has not closed it yet) or hello started on the hour
    hours = list(expected_hours(created, until))
    assert len(hours) >= 2 and hours == [hour_key(until - timedelta(hours=i)) for i in reversed(range(len(hours)))]
    assert usage(api, "requests", start, end) == {hour_key(burst_hour): str(BURST)}

    # what the Stripe stand-in received, as Stripe would count it
    events = {e["identifier"]: e for e in cloud.stripe.meter_events() if e["identifier"].startswith(f"{NS}:")}
    for meter in ("service_hours", "requests"):
        buckets = ledger.buckets(NS, hour_key(start), hour_key(end), meter=meter)
        assert buckets and all(b.reported == b.total and b.pending is None for b in buckets)
        assert sum(int(e["value"]) for e in events.values() if e["event_name"] == meter) == sum(
            b.total for b in buckets
        )
    assert sum(int(e["value"]) for e in events.values() if e["event_name"] == "requests") == BURST * MICROS
    seats = [int(e["value"]) for e in events.values() if e["event_name"] == "seats"]
    assert seats and set(seats) == {3 * MICROS}  # ada, linus, grace
    # every hour the jump skipped has its seats (the current members), not only the last one
    r = api("GET", f"/v1/namespaces/{NS}/usage", meter="seats", **{"from": start.isoformat(), "to": end.isoformat()})
    assert r.status_code == 200, r.text
    hourly = {s["start"][:13]: s["quantity"] for s in r.json()["series"]}
    every_hour = int((end - start) / timedelta(hours=1))
    assert hourly == {hour_key(start + timedelta(hours=i)): "3" for i in range(every_hour)}

    # the same hour again (a redelivered message, a second execution): nothing more is reported
    sent = cloud.stripe.meter_events()
    cloud.start_execution("metering", {"scheduled_time": scheduled.isoformat()}, "metering-hourly-again")
    assert cloud.wait_execution(execution.rsplit(":", 1)[0] + ":metering-hourly-again")["status"] == "SUCCEEDED"
    time.sleep(2)  # the consumer's turn
    assert cloud.stripe.meter_events() == sent


def _described(cloud: LocalCloud, arn: str) -> bool:
    try:
        cloud.client("stepfunctions").describe_execution(executionArn=arn)
        return True
    except cloud.client("stepfunctions").exceptions.ExecutionDoesNotExist:
        return False


def test_offboarding_closes_the_namespace_a_last_time_before_cancelling_its_billing(
    platform: dict[str, Any],
) -> None:
    cloud: LocalCloud = platform["cloud"]
    api: Api = platform["api"]
    before = {e["identifier"] for e in cloud.stripe.meter_events()}
    assert api("DELETE", f"/v1/namespaces/{NS}").status_code == 202
    arn = cloud.resources["state_machines"]["offboarding"].replace(":stateMachine:", ":execution:")
    name = f"{arn}:{NS}-offboard-1"
    result = wait_for(lambda: _described(cloud, name) and cloud.wait_execution(name, 60), what="offboarding")
    assert result["status"] == "SUCCEEDED", result
    now = cloud.clock.now()
    ledger = container().usage_ledger
    assert ledger.cursor(NS) == hour_key(now)  # the unfinished hour too
    [last] = ledger.buckets(NS, hour_key(now), hour_key(now + timedelta(hours=1)), meter="service_hours")
    assert 0 < last.total <= MICROS and last.reported == last.total
    new = {e["identifier"] for e in cloud.stripe.meter_events()} - before
    assert any(hour_key(now) in i for i in new if ":service_hours:" in i)
    sub = cloud.stripe.state.subscriptions[container().stores.namespaces.get(NS).subscription_id]
    assert sub["cancel_at_period_end"]  # cancelled after the last report
    assert datetime.now(UTC) < now  # the clock moved: the last close happened on it
