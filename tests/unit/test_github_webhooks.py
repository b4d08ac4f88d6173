"""The GitHub webhook endpoint on moto in-process (no network): the payload's shape checked at the door,
and deliveries up to the 1 MiB body limit handed to the queue (large ones through the bucket)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from chalicelib.adapters.dynamodb.audit import WebhookDeliveryItem
from localcloud.queues import sqs_event
from localcloud.standins.github_webhooks import delivery_headers
from tests.helpers import resources

SECRET = "unit-test-webhook-secret"


@pytest.fixture
def hooks(client: Any, container: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """The queue and bucket as infra/resources.json declares them, the webhook secret, the Chalice client."""
    monkeypatch.setenv("GITHUB_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("PLATFORM_LOCAL_KEY", "unit-test-local-key")
    declared = {q["name"]: q for q in resources()["queues"]}["github-events"]
    sqs, s3 = boto3.client("sqs"), boto3.client("s3")
    url = sqs.create_queue(
        QueueName="github-events-test",
        Attributes={"MaximumMessageSize": str(declared["max_message_size"])},
    )["QueueUrl"]
    s3.create_bucket(Bucket="queue-payloads-test")
    monkeypatch.setenv("PLATFORM_QUEUE_GITHUB_EVENTS_URL", url)
    monkeypatch.setenv("PLATFORM_BUCKET_QUEUE_PAYLOADS_NAME", "queue-payloads-test")
    yield {"client": client, "sqs": sqs, "s3": s3, "url": url}


def post(hooks: dict[str, Any], event: str, body: bytes, delivery: str | None = None) -> Any:
    headers = delivery_headers(event, body, SECRET, delivery or str(uuid.uuid4()), 1, 4242)
    return hooks["client"].http.post("/v1/webhooks/github", body=body, headers=headers)


def received(hooks: dict[str, Any]) -> list[dict[str, Any]]:
    answer = hooks["sqs"].receive_message(
        QueueUrl=hooks["url"], MaxNumberOfMessages=10, MessageAttributeNames=["All"], AttributeNames=["All"]
    )
    return list(answer.get("Messages", []))


def claimed(delivery: str) -> bool:
    try:
        WebhookDeliveryItem.get(*WebhookDeliveryItem.key("github", delivery), consistent_read=True)
    except WebhookDeliveryItem.DoesNotExist:
        return False
    return True


def push_payload(message: str = "a change", **over: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "ref": "refs/heads/main",
        "before": "a" * 40,
        "after": "b" * 40,
        "repository": {"id": 999_001, "full_name": "acme/nowhere"},
        "pusher": {"name": "ada"},
        "sender": {"login": "ada"},
        "created": False,
        "deleted": False,
        "forced": False,
        "commits": [{"id": "b" * 40, "message": message, "added": [], "removed": [], "modified": ["README"]}],
    }
    payload.update(over)
    return payload


def test_a_signed_body_that_is_not_an_object_is_400_and_nothing_is_claimed_or_enqueued(hooks: dict[str, Any]) -> None:
    for event in ("push", "membership", "installation", "ping", "star"):
        for body in (b"[]", b'"x"', b"null", b"42", b"true"):
            delivery = str(uuid.uuid4())
            r = post(hooks, event, body, delivery)
            assert r.status_code == 400, (event, body, r.body)
            error = json.loads(r.body)["error"]
            assert error["code"] == "invalid_payload"
            assert error["details"]["fields"][0]["field"] == "(body)"
            assert not claimed(delivery)
    assert received(hooks) == []


MISSING_WHAT_THE_CONSUMER_READS = [
    ("push", {"ref": "refs/heads/main"}, "repository.id"),
    ("push", push_payload(repository={"id": "5001"}), "repository.id"),
    ("push", push_payload(commits=[{"added": "a.txt"}]), "commits[0].added"),
    ("push", push_payload(commits=[{"modified": [1]}]), "commits[0].modified[0]"),
    ("push", push_payload(deleted="yes"), "deleted"),
    ("membership", {"organization": {"id": 1000}, "team": {"id": True}}, "team.id"),
    ("installation", {"action": "deleted", "installation": {"id": 7001}}, "installation.account.id"),
    (
        "installation_repositories",
        {"action": "removed", "installation": {"id": 7001, "account": {"id": 1000}}, "repositories_added": []},
        "repositories_removed",
    ),
    ("organization", {"action": "renamed", "organization": {"login": "acme"}}, "organization.id"),
]


def test_a_consumed_event_missing_what_its_consumer_reads_is_400_naming_the_field(hooks: dict[str, Any]) -> None:
    for event, payload, field in MISSING_WHAT_THE_CONSUMER_READS:
        delivery = str(uuid.uuid4())
        r = post(hooks, event, json.dumps(payload).encode(), delivery)
        assert r.status_code == 400, (event, r.body)
        error = json.loads(r.body)["error"]
        assert error["code"] == "invalid_payload"
        assert field in [f["field"] for f in error["details"]["fields"]], error
        assert not claimed(delivery)
    assert received(hooks) == []


def test_a_deeply_nested_body_is_400_invalid_json(hooks: dict[str, Any]) -> None:
    r = post(hooks, "push", b"[" * 100_000 + b"]" * 100_000)
    assert r.status_code == 400 and json.loads(r.body)["error"]["code"] == "invalid_json"


def consume(hooks: dict[str, Any]) -> list[dict[str, Any]]:
    """What the github-events consumer reads from the queue (through the bucket for a claim check)."""
    from chalicelib.composition import get_container

    queues = get_container().queues
    records = sqs_event(received(hooks), "arn:aws:sqs:us-east-1:123456789012:github-events-test", "us-east-1")
    return [queues.read(record) for record in records["Records"]]


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("é", 400_000),  # two UTF-8 bytes each; six once escaped as \\u00e9
        ("日本語のコミット", 400_000),  # three bytes each
        ("ünïcödé ", 1_040_000),  # close to the API's 1 MiB body limit
    ],
    ids=["400KB-latin", "400KB-cjk", "near-1MiB"],
)
def test_a_large_non_ascii_push_is_enqueued_and_read_back_whole(hooks: dict[str, Any], text: str, size: int) -> None:
    payload = push_payload("")
    overhead = len(json.dumps(payload, ensure_ascii=False).encode())
    message = text * ((size - overhead) // len(text.encode()))
    payload["commits"][0]["message"] = message
    body = json.dumps(payload, ensure_ascii=False).encode()
    assert abs(len(body) - size) < 10_000 and len(body) <= 1024 * 1024
    r = post(hooks, "push", body, "big-1")
    assert (r.status_code, json.loads(r.body)["status"]) == (202, "enqueued"), r.body
    (message_read,) = consume(hooks)
    assert message_read == {"delivery": "big-1", "event": "push", "payload": payload}


def test_an_offloaded_payload_is_deleted_once_its_message_is_handled(hooks: dict[str, Any]) -> None:
    from functions.github_events.handler import handler

    body = json.dumps(push_payload("ß" * 200_000), ensure_ascii=False).encode()
    assert post(hooks, "push", body, "big-2").status_code == 202
    messages = received(hooks)
    stored = hooks["s3"].list_objects_v2(Bucket="queue-payloads-test").get("Contents", [])
    assert len(stored) == 1 and stored[0]["Size"] > len(body)
    event = sqs_event(messages, "arn:aws:sqs:us-east-1:123456789012:github-events-test", "us-east-1")
    assert handler(event, None) == {"batchItemFailures": []}  # no link to this repository: nothing to deploy
    assert hooks["s3"].list_objects_v2(Bucket="queue-payloads-test").get("Contents", []) == []
    assert handler(event, None) == {"batchItemFailures": []}  # a second delivery of it: handled already


def test_each_delivery_handled_is_counted_by_outcome(hooks: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    from functions.github_events.handler import handler
    from tests.unit.test_sqs_batch import emf

    body = json.dumps(push_payload("ß" * 200_000), ensure_ascii=False).encode()  # offloaded: its settling is seen
    assert post(hooks, "push", body, "counted-1").status_code == 202
    event = sqs_event(received(hooks), "arn:aws:sqs:us-east-1:123456789012:github-events-test", "us-east-1")
    capsys.readouterr()
    assert handler(event, None) == {"batchItemFailures": []}
    assert handler(event, None) == {"batchItemFailures": []}  # delivered again: handled already
    counted = [(m["name"], m["outcome"]) for m in emf(capsys.readouterr().out)]
    assert counted == [("WebhookDeliveries", "processed"), ("WebhookDeliveries", "duplicate")]


def test_a_small_payload_is_sent_inline(hooks: dict[str, Any]) -> None:
    assert post(hooks, "push", json.dumps(push_payload("ok")).encode(), "small-1").status_code == 202
    (message,) = received(hooks)
    assert "claim_check" not in message.get("MessageAttributes", {})
    assert json.loads(message["Body"])["payload"]["commits"][0]["message"] == "ok"


def test_a_rotated_webhook_secret_is_taken_within_the_secrets_cache_lifetime(
    hooks: dict[str, Any], clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On AWS the secrets come from Secrets Manager through Powertools Parameters, kept
    PLATFORM_SECRETS_MAX_AGE_SECONDS: a rotation is picked up without a cold start."""
    import time

    from chalicelib.composition import Container, set_container
    from chalicelib.config import Settings

    sm = boto3.client("secretsmanager")
    sm.create_secret(Name="platform-test", SecretString=json.dumps({"GITHUB_WEBHOOK_SECRET": "first-secret-1"}))
    monkeypatch.setenv("PLATFORM_SECRETS_ID", "platform-test")
    monkeypatch.setenv("PLATFORM_SECRETS_MAX_AGE_SECONDS", "1")
    container = Container(Settings.from_env(), clock=clock)
    container.bind()
    set_container(container)
    body = json.dumps(push_payload("ok")).encode()

    def signed(secret: str) -> int:
        headers = delivery_headers("push", body, secret, str(uuid.uuid4()), 1, 4242)
        return int(hooks["client"].http.post("/v1/webhooks/github", body=body, headers=headers).status_code)

    assert signed("first-secret-1") == 202
    sm.put_secret_value(SecretId="platform-test", SecretString=json.dumps({"GITHUB_WEBHOOK_SECRET": "second-secret-2"}))
    time.sleep(1.2)
    assert signed("second-secret-2") == 202
    assert signed("first-secret-1") == 401
