"""Alerts on the local cloud, end to end: a deployment that fails goes from the outbox to the bus, the
``alerts`` rule, the queue and the notifier, and reaches the namespace's owners by email (SES on moto,
and an .eml file), a Slack channel (the Slack stand-in) and a signed webhook (the receiver stand-in
verifies it); the same event three times gives one message per channel; ten failures in a few seconds
give one grouped message per channel; a test message says what happened; a poison message reaches the
dead-letter queue and its depth is a metric; ``GET /v1/local/outbox`` lists everything sent."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from email import message_from_string, policy
from typing import Any

import pytest
import requests

from chalicelib.domain.clock import SystemClock
from chalicelib.domain.ids import new_id
from localcloud.cloud import LocalCloud
from tests.fixtures import start_platform
from tests.functional.test_accounts import login, wait_until
from tests.helpers import ROOT

NS = "acme-backend"


def call(cloud: LocalCloud, method: str, path: str, token: str, body: Any = None) -> requests.Response:
    return requests.request(
        method, f"{cloud.api_url}{path}", json=body, headers={"Authorization": f"Bearer {token}"}, timeout=60
    )


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory, env_restored: None) -> Iterator[LocalCloud]:
    from chalicelib.composition import set_container

    c = start_platform(tmp_path_factory.mktemp("alerts"), SystemClock())
    ada = login(c, "ada")
    r = call(c, "POST", "/v1/namespaces", ada, {"github_org": "acme", "github_team": "backend", "region": "local"})
    assert r.status_code == 202, r.text
    arn = c.resources["state_machines"]["onboarding"].replace(":stateMachine:", ":execution:")
    assert c.wait_execution(f"{arn}:{NS}", timeout=90)["status"] == "SUCCEEDED"
    yield c
    c.stop()
    set_container(None)


@pytest.fixture(scope="module")
def setup(cloud: LocalCloud) -> dict[str, Any]:
    """A Slack channel, a webhook channel (its secret registered with the receiver, as a person would),
    and failures sent to them and to the owners with a 2 s grouping window."""
    ada = login(cloud, "ada")
    slack = call(
        cloud, "POST", f"/v1/namespaces/{NS}/alerts/channels", ada,
        {"kind": "slack", "name": "ops room", "target": cloud.slack.webhook_url("ops")},
    ).json()  # fmt: skip
    hook = call(
        cloud, "POST", f"/v1/namespaces/{NS}/alerts/channels", ada,
        {"kind": "webhook", "name": "ci", "target": cloud.webhooks.endpoint_url("ci")},
    ).json()  # fmt: skip
    assert slack["target"].endswith("/services/T0LOCAL000/***") and hook["secret"].startswith("whsec_")
    r = requests.put(f"{cloud.webhooks.url}/_stand-in/endpoints/ci", json={"secret": hook["secret"]}, timeout=10)
    assert r.status_code == 200
    rules = {
        "rules": [
            {
                "id": "failures",
                "events": ["deployment.failed"],
                "channels": ["owners", slack["id"], hook["id"]],
                "severity": "critical",
                "group_window": 2,
            }
        ]
    }
    r = call(cloud, "PUT", f"/v1/namespaces/{NS}/alerts/rules", ada, rules)
    assert r.status_code == 200 and r.json()["default"] is False, r.text
    return {"ada": ada, "slack": slack, "hook": hook}


def sent_emails(cloud: LocalCloud) -> list[dict[str, Any]]:
    data = requests.get(f"{cloud.moto.endpoint}/moto-api/data.json", timeout=10).json()
    return list(data["ses"]["RawMessage"])


def publish(cloud: LocalCloud, envelope: dict[str, Any]) -> None:
    """Put an event on the platform's bus, as the outbox relay does."""
    answer = cloud.client("events").put_events(
        Entries=[
            {
                "Source": "platform",
                "DetailType": envelope["type"],
                "Detail": json.dumps(envelope),
                "EventBusName": cloud.resources["bus"]["name"],
            }
        ]
    )
    assert answer["FailedEntryCount"] == 0


def failed_event(service: str) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "id": new_id(now),
        "type": "deployment.failed",
        "version": 1,
        "namespace": NS,
        "occurred_at": now.isoformat(),
        "data": {"service": service, "deployment_id": new_id(now), "reason": "the health check never passed"},
    }


def counts(cloud: LocalCloud) -> tuple[int, int, int]:
    """Emails sent through SES, Slack posts, webhooks the receiver verified."""
    verified = [m for m in cloud.webhooks.received("ci") if m["verified"]]
    return len(sent_emails(cloud)), len(cloud.slack.received()), len(verified)


def test_a_failed_deploy_reaches_every_channel_once_and_a_replay_sends_nothing_more(
    cloud: LocalCloud, setup: dict[str, Any], tmp_path: Any
) -> None:
    from chalicelib.composition import get_container

    ada = setup["ada"]
    before = counts(cloud)
    # a real deployment that fails: an invalid manifest
    repo = tmp_path / "hello"
    subprocess.run(
        ["bash", str(ROOT / "examples" / "make-example-repo.sh"), str(repo)], check=True, capture_output=True
    )
    (repo / "micro.yaml").write_text((repo / "micro.yaml").read_text().replace("port: 8080", "port: 99999"))
    subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "bad"], check=True
    )
    r = call(
        cloud, "POST", f"/v1/namespaces/{NS}/services/hello/deployments", ada, {"source": str(repo), "ref": "HEAD"}
    )
    assert r.status_code == 202, r.text
    dep_id = r.json()["id"]
    wait_until(
        lambda: (
            call(cloud, "GET", f"/v1/namespaces/{NS}/services/hello/deployments/{dep_id}", ada).json()["status"]
            == "failed"
        ),
        60,
        "the deployment to fail",
    )
    get_container().outbox_relay.relay()  # what its every-minute schedule does
    expected = (before[0] + 1, before[1] + 1, before[2] + 1)
    after = wait_until(lambda: (c := counts(cloud)) == expected and c, 30, "the alert's messages")
    time.sleep(3)  # anything more would have come by now
    assert counts(cloud) == after

    sent = sent_emails(cloud)[-1]
    email = message_from_string(sent["raw_data"], policy=policy.default)
    assert sent["destinations"][0] == email["To"] == "ada@acme.example"
    assert email["Subject"] == "[acme-backend] Deploy of hello failed in acme-backend"
    text = email.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    html = email.get_body(preferencelist=("html",)).get_content()  # type: ignore[union-attr]
    link = f"/v1/namespaces/{NS}/services/hello/deployments/{dep_id}"
    assert link in text and f'href="{cloud.api_url}{link}"' in html and "services[0].port" in text
    assert list((cloud.data_dir / "mail").glob("*.eml"))  # type: ignore[operator]
    post = cloud.slack.received()[-1]["body"]
    assert post["blocks"][0]["type"] == "header" and "Deploy of hello failed" in post["text"]
    hook = cloud.webhooks.received("ci")[-1]
    assert hook["verified"] and hook["body"]["data"]["alerts"][0]["data"]["deployment_id"] == dep_id

    # the history: the alert, and every channel's delivery
    alerts = call(cloud, "GET", f"/v1/namespaces/{NS}/alerts", ada).json()["alerts"]
    mine = next(a for a in alerts if a["event_type"] == "deployment.failed")
    assert {c["kind"]: c["status"] for c in mine["channels"]} == {"email": "sent", "slack": "sent", "webhook": "sent"}

    # the same event again, three times over: nothing more is sent
    replay = {
        "id": mine["event_id"],
        "type": "deployment.failed",
        "version": 1,
        "namespace": NS,
        "occurred_at": mine["occurred_at"],
        "data": {"service": "hello", "deployment_id": dep_id, "reason": "x"},
    }
    for _ in range(3):
        publish(cloud, replay)
    time.sleep(5)
    assert counts(cloud) == after


def test_ten_failures_in_a_few_seconds_give_one_grouped_message_per_channel(
    cloud: LocalCloud, setup: dict[str, Any]
) -> None:
    ada = setup["ada"]
    rules = call(cloud, "GET", f"/v1/namespaces/{NS}/alerts/rules", ada).json()
    rules["rules"][0]["group_window"] = 15  # the ten are alerted within it, however loaded this machine is
    assert call(cloud, "PUT", f"/v1/namespaces/{NS}/alerts/rules", ada, {"rules": rules["rules"]}).status_code == 200
    before = counts(cloud)
    for i in range(10):
        publish(cloud, failed_event(f"svc{i}"))
    expected = (before[0] + 1, before[1] + 1, before[2] + 1)
    wait_until(lambda: counts(cloud) == expected, 45, "the grouped messages")
    time.sleep(3)
    assert counts(cloud) == expected
    hook = cloud.webhooks.received("ci")[-1]
    assert hook["verified"] and hook["body"]["data"]["total"] == 10
    assert "10 alerts" in cloud.slack.received()[-1]["body"]["text"]


def test_a_test_message_says_what_really_happened(cloud: LocalCloud, setup: dict[str, Any]) -> None:
    ada = setup["ada"]
    r = call(cloud, "POST", f"/v1/namespaces/{NS}/alerts/channels/{setup['slack']['id']}/test", ada)
    assert r.status_code == 200 and r.json()["delivered"] is True, r.text
    gone = call(
        cloud, "POST", f"/v1/namespaces/{NS}/alerts/channels", ada,
        {"kind": "webhook", "name": "gone", "target": cloud.webhooks.endpoint_url("gone")},
    ).json()  # fmt: skip
    r = call(cloud, "POST", f"/v1/namespaces/{NS}/alerts/channels/{gone['id']}/test", ada)
    result = r.json()
    assert r.status_code == 200 and result["delivered"] is False
    assert result["results"][0]["status"] == "refused" and "410" in result["results"][0]["error"]
    redirect = call(
        cloud, "POST", f"/v1/namespaces/{NS}/alerts/channels", ada,
        {"kind": "webhook", "name": "redirect", "target": cloud.webhooks.endpoint_url("redirect")},
    ).json()  # fmt: skip
    r = call(cloud, "POST", f"/v1/namespaces/{NS}/alerts/channels/{redirect['id']}/test", ada)
    assert r.json()["results"][0]["error"] == "redirect_302: the receiver answered 302: redirects are not followed"
    slow = call(
        cloud, "POST", f"/v1/namespaces/{NS}/alerts/channels", ada,
        {"kind": "webhook", "name": "slow", "target": cloud.webhooks.endpoint_url("slow")},
    ).json()  # fmt: skip
    began = time.monotonic()
    r = call(cloud, "POST", f"/v1/namespaces/{NS}/alerts/channels/{slow['id']}/test", ada)
    waited = time.monotonic() - began
    # the receiver answers after 8 s; the platform stopped waiting at its 5 s timeout (sent again later)
    assert r.json()["results"][0]["status"] == "failed" and "did not answer in time" in r.json()["results"][0]["error"]
    assert waited < cloud.webhooks.slow_seconds


def test_bad_input_is_refused_naming_the_field(cloud: LocalCloud, setup: dict[str, Any]) -> None:
    ada, grace = setup["ada"], login(cloud, "grace")
    for kind, target in (("email", "nope"), ("sms", "555-0100"), ("slack", "ftp://x"), ("webhook", "file:///etc")):
        r = call(
            cloud, "POST", f"/v1/namespaces/{NS}/alerts/channels", ada, {"kind": kind, "name": "x", "target": target}
        )
        assert r.status_code == 422, r.text
        assert r.json()["error"]["details"]["fields"][0]["field"] == "target"
    r = call(
        cloud,
        "PUT",
        f"/v1/namespaces/{NS}/alerts/rules",
        ada,
        {"rules": [{"id": "x", "events": ["nope"], "channels": ["owners"]}]},
    )
    assert r.status_code == 422 and r.json()["error"]["details"]["fields"][0]["field"] == "rules.0.events.0"
    # members read, admins change
    assert call(cloud, "GET", f"/v1/namespaces/{NS}/alerts/channels", grace).status_code == 200
    r = call(
        cloud,
        "POST",
        f"/v1/namespaces/{NS}/alerts/channels",
        grace,
        {"kind": "email", "name": "x", "target": "a@b.example"},
    )
    assert r.status_code == 403


def test_a_poison_message_reaches_the_dead_letter_queue_and_its_depth_is_a_metric(
    cloud: LocalCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    sqs = cloud.client("sqs")
    queue = cloud.resources["queues"]["alerts"]
    sqs.set_queue_attributes(QueueUrl=queue["url"], Attributes={"VisibilityTimeout": "1"})  # the test's own pace
    time.sleep(1.5)  # a receive already waiting (1 s long polls) took the queue's visibility timeout when it began
    try:
        sqs.send_message(QueueUrl=queue["url"], MessageBody="not json at all")
        wait_until(
            lambda: (
                int(
                    sqs.get_queue_attributes(QueueUrl=queue["dlq_url"], AttributeNames=["ApproximateNumberOfMessages"])[
                        "Attributes"
                    ]["ApproximateNumberOfMessages"]
                )
                == 1
            ),
            60,
            "the poison message in the dead-letter queue",
        )
    finally:
        sqs.set_queue_attributes(QueueUrl=queue["url"], Attributes={"VisibilityTimeout": "90"})
    capsys.readouterr()
    result, error = cloud.router.invoke("queue-metrics", {})
    assert error is None and result["dead_letter_messages"]["alerts"] == 1, result
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    metric = next(m for m in lines if m.get("queue") == "alerts")
    assert metric["DeadLetterMessages"] == [1.0]
    assert metric["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "MicroPlatform"


def test_the_local_outbox_lists_what_was_sent_of_every_kind(cloud: LocalCloud, setup: dict[str, Any]) -> None:
    ada = setup["ada"]
    for channel in ("owners", setup["slack"]["id"], setup["hook"]["id"]):
        r = call(cloud, "POST", f"/v1/namespaces/{NS}/alerts/channels/{channel}/test", ada)
        assert r.json()["delivered"] is True, r.text
    r = call(cloud, "GET", "/v1/local/outbox", ada)
    assert r.status_code == 200, r.text
    messages = r.json()["messages"]
    assert {"email", "slack", "webhook"} <= {m["kind"] for m in messages}
    email = next(m for m in messages if m["kind"] == "email" and "Test message" in m["summary"])
    assert email["to"] == "ada@acme.example" and email["file"] and email["file"].endswith(".eml")
    assert all(m["verified"] for m in messages if m["kind"] == "webhook" and m["to"] == "ci")


def test_the_cli_shows_channels_rules_history_and_tests_a_channel(cloud: LocalCloud, setup: dict[str, Any]) -> None:
    import io

    from cli.platform_cli.main import main

    environ = {"PLATFORM_API_URL": cloud.api_url, "PLATFORM_TOKEN": setup["ada"], "MICRO_NAMESPACE": NS, "HOME": "/x"}

    def platform(*argv: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        code = main(list(argv), environ=environ, stdin=io.StringIO(), stdout=out, stderr=err)
        return code, out.getvalue(), err.getvalue()

    code, out, _ = platform("alerts", "channels")
    assert code == 0 and "owners" in out and "ops room" in out and "/services/T0LOCAL000/***" in out
    code, out, _ = platform("alerts", "rules")
    assert code == 0 and "failures" in out and "deployment.failed" in out
    code, out, _ = platform("alerts", "test", setup["slack"]["id"])
    assert code == 0 and "sent" in out
    code, out, err = platform("alerts", "channels", "add", "--kind", "email", "--name", "x", "--target", "not-mail")
    assert code == 2 and "not a valid email address" in err
    code, out, err = platform("alerts", "channels", "add", "--kind", "webhook", "--name", "x", "--target",
                              cloud.webhooks.endpoint_url("fail500"))  # fmt: skip
    assert code == 0 and "whsec_" in out and "not shown again" in err
    failing = next(line.split()[-1] for line in out.splitlines() if line.startswith("id:"))
    code, out, _ = platform("alerts", "test", failing)
    assert code == 1 and "failed" in out and "http_500" in out
    code, out, _ = platform("alerts", "history", "--limit", "5")
    assert code == 0 and "Deploy of" in out and "sent" in out
    code, out, _ = platform("outbox", "--kind", "email")
    assert code == 0 and ".eml" in out and "ada@acme.example" in out


def test_a_group_is_flushed_on_time_behind_a_backlog_of_events(cloud: LocalCloud, setup: dict[str, Any]) -> None:
    """The flush of a group is a delayed message; were it on the events' queue it would be received after
    every event already waiting there, so a burst's first message would wait for the whole burst."""
    ada, hook = setup["ada"], setup["hook"]
    rules = {"rules": [{"id": "burst", "events": ["deployment.failed"], "channels": [hook["id"]], "group_window": 1}]}
    assert call(cloud, "PUT", f"/v1/namespaces/{NS}/alerts/rules", ada, rules).status_code == 200
    r = call(cloud, "PATCH", f"/v1/namespaces/{NS}/alerts/channels/{hook['id']}", ada, {"rate_limit": 3600})
    assert r.status_code == 200, r.text  # many small groups: none skipped for the rate limit
    sqs, queue = cloud.client("sqs"), cloud.resources["queues"]["alerts"]["url"]
    consumer = cloud.consumers["alerts"]
    before = len(cloud.webhooks.received("ci"))
    events = [failed_event(f"burst{i}") for i in range(120)]
    consumer.poll_once = lambda wait_seconds=0: time.sleep(0.2) or 0  # type: ignore[method-assign]
    try:
        time.sleep(2)  # a receive in flight has ended
        for start in range(0, len(events), 10):  # the burst is on the queue before the notifier reads it
            answer = cloud.client("events").put_events(
                Entries=[
                    {
                        "Source": "platform",
                        "DetailType": e["type"],
                        "Detail": json.dumps(e),
                        "EventBusName": cloud.resources["bus"]["name"],
                    }
                    for e in events[start : start + 10]
                ]
            )
            assert answer["FailedEntryCount"] == 0
        waiting = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages"])
        assert int(waiting["Attributes"]["ApproximateNumberOfMessages"]) >= len(events)
    finally:
        del consumer.poll_once  # the consumer reads again
    ours = {e["data"]["deployment_id"] for e in events}

    def delivered() -> list[dict[str, Any]]:
        posts = cloud.webhooks.received("ci")[before:]
        return [p for p in posts if {a["data"]["deployment_id"] for a in p["body"]["data"]["alerts"]} <= ours]

    first = wait_until(delivered, 120, "the first grouped message")[0]
    alerts = call(cloud, "GET", f"/v1/namespaces/{NS}/alerts?limit=200", ada).json()["alerts"]
    written = sorted(a["last_seen_at"] for a in alerts if a["rule_id"] == "burst")
    # the first group went out while the burst was still being read, not after the last of it
    assert len(written) < len(events) or datetime.fromisoformat(first["received_at"]) < datetime.fromisoformat(
        written[-1]
    ), (first["received_at"], written[-1])
    wait_until(lambda: sum(p["body"]["data"]["total"] for p in delivered()) == len(events), 240, "every alert")
