"""Billing on the local cloud: usage ingested through the API priced to the cent in the billing view;
a small budget with a hard cap puts `billing.threshold_crossed` and `billing.suspended` on the
EventBridge bus (through the outbox relay), makes the deploy API answer 402 and a push show a failed
GitHub commit status saying why; raising the limit resumes both, with `billing.resumed` on the bus."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from chalicelib.domain.clock import SystemClock
from localcloud.cloud import LocalCloud
from tests.fixtures import start_platform
from tests.functional.test_accounts import login, wait_until

NS = "acme-backend"


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory, env_restored: None) -> Iterator[LocalCloud]:
    from chalicelib.composition import set_container

    c = start_platform(tmp_path_factory.mktemp("billing"), SystemClock())
    ada = login(c, "ada")
    team = {"github_org": "acme", "github_team": "backend", "region": "local", "plan": "team"}
    r = call(c, "POST", "/v1/namespaces", ada, team)
    assert r.status_code == 202, r.text
    arn = c.resources["state_machines"]["onboarding"].replace(":stateMachine:", ":execution:")
    assert c.wait_execution(f"{arn}:{NS}", timeout=90)["status"] == "SUCCEEDED"
    yield c
    c.stop()
    set_container(None)


def call(cloud: LocalCloud, method: str, path: str, token: str | None, body: Any = None) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.request(method, f"{cloud.api_url}{path}", json=body, headers=headers, timeout=60)


def platform_cli(cloud: LocalCloud, token: str) -> Any:
    """``platform`` in the namespace, with ``token``, against the local cloud's API: (code, out, err)."""
    import io

    from cli.platform_cli.main import main

    environ = {
        "PLATFORM_API_URL": cloud.api_url,
        "PLATFORM_TOKEN": token,
        "MICRO_NAMESPACE": NS,
        "HOME": "/nonexistent",
    }

    def run(*argv: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        code = main(list(argv), environ=environ, stdin=io.StringIO(), stdout=out, stderr=err)
        return code, out.getvalue(), err.getvalue()

    return run


def bus_watcher(cloud: LocalCloud) -> str:
    """A rule on the platform's bus sending every billing.* event to a queue of the test's own."""
    sqs, events = cloud.client("sqs"), cloud.client("events")
    url = sqs.create_queue(QueueName="billing-watch")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    bus = cloud.resources["bus"]["name"]
    events.put_rule(
        Name="billing-watch",
        EventBusName=bus,
        EventPattern=json.dumps({"source": ["platform"], "detail-type": [{"prefix": "billing."}]}),
    )
    events.put_targets(Rule="billing-watch", EventBusName=bus, Targets=[{"Id": "q", "Arn": arn}])
    return str(url)


def on_the_bus(cloud: LocalCloud, url: str) -> list[dict[str, Any]]:
    """Relay the outbox (as its every-minute schedule does), then what reached the watching queue."""
    from chalicelib.composition import get_container

    get_container().outbox_relay.relay()
    seen = []
    sqs = cloud.client("sqs")
    while True:
        msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        if not msgs:
            return seen
        for m in msgs:
            body = json.loads(m["Body"])
            assert body["source"] == "platform" and body["detail-type"] == body["detail"]["type"]
            seen.append(body["detail"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def test_usage_is_priced_to_the_cent_and_a_hard_cap_stops_deploys_and_pushes(cloud: LocalCloud) -> None:
    ada, linus, grace, ops = (login(cloud, who) for who in ("ada", "linus", "grace", "ops"))
    watch = bus_watcher(cloud)

    # usage through the ingestion API, with a cluster's ingest token
    ingest = call(cloud, "POST", "/v1/regions/local/ingest-tokens", ops, {"name": "local-1"}).json()["token"]
    now = datetime.now(UTC)
    when = max(now - timedelta(minutes=1), now.replace(day=1, hour=0, minute=0, second=0, microsecond=0))
    at = {"namespace": NS, "timestamp": when.isoformat(), "service": "hello"}
    events = [
        {"id": "req-1", "meter": "requests", "value": 60000000, **at},
        {"id": "sh-1", "meter": "service_hours", "value": 1100.5, **at},
    ]
    r = requests.post(
        f"{cloud.api_url}/v1/usage/events",
        json={"events": events},
        headers={"Authorization": f"Bearer {ingest}"},
        timeout=60,
    )
    assert r.status_code == 200 and r.json()["accepted"] == 2, r.text

    # the invoice preview, by hand: team base 20.00; 50M requests over the included 10M x 0.00004 c
    # = 2,000 c; 100.5 service hours over the included 1,000 x 0.8 c = 80.4 -> 80 c; no seats yet
    billing = call(cloud, "GET", f"/v1/namespaces/{NS}/billing", ada)
    assert billing.status_code == 200, billing.text
    b = billing.json()
    assert {(i["meter"] or "base"): i["amount"] for i in b["line_items"]} == {
        "base": 2000,
        "service_hours": 80,
        "requests": 2000,
        "seats": 0,
    }
    assert (b["subtotal"], b["usage"], b["state"], b["budget"]) == (4080, 2080, "ok", None)
    assert b["forecast"]["subtotal"] >= b["subtotal"]
    assert call(cloud, "GET", f"/v1/namespaces/{NS}/billing", grace).status_code == 403  # members: usage only

    # link the example repository (for the push below)
    link = call(cloud, "POST", f"/v1/namespaces/{NS}/repos", linus, {"repo": "acme/hello"})
    assert link.status_code == 201, link.text

    # a budget of $20.00 of usage with a hard cap: 2,080 c spent, evaluated at once
    budget = {"monthly_limit": 2000, "thresholds": [50, 100], "hard_cap": True}
    r = call(cloud, "PUT", f"/v1/namespaces/{NS}/billing/budget", ada, budget)
    assert r.status_code == 200, r.text
    assert (r.json()["state"], r.json()["crossed"], r.json()["spent"]) == ("suspended", [50, 100], 2080)
    seen = on_the_bus(cloud, watch)
    crossed = sorted(e["data"]["threshold"] for e in seen if e["type"] == "billing.threshold_crossed")
    assert crossed == [50, 100]
    suspended = [e for e in seen if e["type"] == "billing.suspended"]
    assert len(suspended) == 1 and suspended[0]["namespace"] == NS
    assert suspended[0]["data"] | {"period": None} == {
        "period": None,
        "spent": 2080,
        "monthly_limit": 2000,
        "currency": "usd",
    }

    # the deploy API answers 402 naming the budget
    deploy = {"source": "https://github.com/acme/hello.git", "ref": "main"}
    refused = call(cloud, "POST", f"/v1/namespaces/{NS}/services/hello/deployments", grace, deploy)
    assert refused.status_code == 402, refused.text
    err = refused.json()["error"]
    assert err["code"] == "payment_required" and "monthly budget (hard cap)" in err["message"]

    # the CLI, against the real API: the deploy exits 8 saying why; billing, usage and plans read the answers
    cli = platform_cli(cloud, grace)
    code, _, err = cli("deploy", "hello", "--source", "https://github.com/acme/hello.git", "--ref", "main")
    assert code == 8 and "monthly budget (hard cap)" in err and "(payment_required)" in err
    code, out, _ = platform_cli(cloud, ada)("billing")
    assert code == 0 and "subtotal:  $40.80" in out and "state:          suspended" in out
    code, out, _ = cli("usage", "--granularity", "day")
    assert code == 0 and ["requests", "60000000"] in [line.split() for line in out.splitlines()]
    code, out, _ = cli("plans")
    assert code == 0 and "team (Team): $20.00 a month" in out

    # a push is not deployed: GitHub shows a failed commit status saying why
    gh = cloud.github
    sha = gh.commit("acme", "hello", {"VERSION": "suspended"}, "a push while the budget is spent")
    headers = {"Authorization": f"token {gh.token_for('ada')}"}
    statuses_url = f"{gh.api_url}/repos/acme/hello/commits/{sha}/statuses"

    def failed_status() -> Any:
        found = requests.get(statuses_url, headers=headers, timeout=10).json()
        return [s for s in found if s["state"] == "failure"] or None

    status = wait_until(failed_status, timeout=60, what="the failed commit status")[0]
    assert status["context"] == f"micro-platform/{NS}/hello"
    assert "budget (hard cap) is spent" in status["description"]
    assert status["target_url"].endswith(f"/v1/namespaces/{NS}/billing")
    deployments = call(cloud, "GET", f"/v1/namespaces/{NS}/services/hello/deployments", ada)
    assert deployments.status_code == 404 or deployments.json()["deployments"] == []

    # raising the limit lifts it at once
    r = call(cloud, "PUT", f"/v1/namespaces/{NS}/billing/budget", ada, {"monthly_limit": 100000, "hard_cap": True})
    assert r.status_code == 200 and r.json()["state"] == "ok" and r.json()["crossed"] == [50, 100]
    resumed = [e for e in on_the_bus(cloud, watch) if e["type"] == "billing.resumed"]
    assert [e["data"]["reason"] for e in resumed] == ["limit_raised"]
    sha = gh.commit("acme", "hello", {"VERSION": "resumed"}, "a push once the limit is raised")

    def pushed() -> Any:
        r = call(cloud, "GET", f"/v1/namespaces/{NS}/services/hello/deployments", ada)
        return r.status_code == 200 and [d for d in r.json()["deployments"] if sha in (d["ref"], d["commit"])]

    wait_until(pushed, timeout=60, what="the push's deployment")  # it runs on; the module's end stops it
