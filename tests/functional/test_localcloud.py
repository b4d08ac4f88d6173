"""The local cloud, started by the test itself from tests/fixtures/resources.json: state machines that
run functions/ handlers, Retry and Catch on error names, Wait from the input, task tokens, queue
delivery with partial batch failure and a dead-letter queue, schedules moved by the clock, serialised
DynamoDB, and data kept across a restart."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from chalicelib.domain.clock import ManualClock
from localcloud.cloud import LocalCloud
from tests.fixtures import functions, start_cloud


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory, env_restored: None) -> Iterator[LocalCloud]:
    from chalicelib.composition import set_container

    clock = ManualClock(datetime(2026, 11, 27, 2, 58, tzinfo=UTC))
    c = start_cloud(tmp_path_factory.mktemp("localcloud"), clock)
    set_container(None)  # the platform's container is built from the local cloud's environment
    yield c
    c.stop()
    set_container(None)


def wait_for(predicate: Any, timeout: float = 15.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_the_api_is_served_with_the_table_answering(cloud: LocalCloud) -> None:
    r = requests.get(f"{cloud.api_url}/v1/health", timeout=10)
    assert r.status_code == 200, r.text
    assert r.json()["checks"]["table"]["status"] == "ok"
    r = requests.get(f"{cloud.api_url}/v1/nowhere", timeout=10)
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


def test_the_startup_function_seeded_the_local_region(cloud: LocalCloud) -> None:
    item = cloud.client("dynamodb").get_item(
        TableName=cloud.decl.table_name, Key={"PK": {"S": "REGION#local"}, "SK": {"S": "REGION"}}
    )
    assert item["Item"]["status"]["S"] == "active"


def test_a_task_runs_a_handler_a_wait_takes_its_seconds_from_the_input_and_retry_matches_the_error_name(
    cloud: LocalCloud,
) -> None:
    started = time.monotonic()
    arn = cloud.start_execution("pipeline", {"value": 21, "wait": 1, "key": "retry-1", "fail_times": 1}, "p-1")
    result = cloud.wait_execution(arn)
    assert result["status"] == "SUCCEEDED", result
    output = json.loads(result["output"])
    assert output["value"] == 42  # Double ran our handler
    assert output["function"] == "double-test"
    assert output["attempts"] == 2  # Flaky raised FlakyError once; Retry on that name ran it again
    assert time.monotonic() - started >= 1.0  # the Wait took its seconds from $.wait


def test_retry_gives_up_after_max_attempts(cloud: LocalCloud) -> None:
    arn = cloud.start_execution("pipeline", {"value": 1, "wait": 0, "key": "retry-2", "fail_times": 5}, "p-2")
    result = cloud.wait_execution(arn)
    assert result["status"] == "FAILED"
    assert functions.ATTEMPTS["retry-2"] == 3  # first try + MaxAttempts 2


def test_catch_on_the_error_name_runs_the_compensation(cloud: LocalCloud) -> None:
    before = len(functions.RECORDED)
    arn = cloud.start_execution("compensate", {"order": 7}, "c-1")
    result = cloud.wait_execution(arn)
    assert result["status"] == "FAILED"
    assert result.get("error") == "WorkFailed"
    compensations = functions.RECORDED[before:]
    assert compensations and compensations[-1]["order"] == 7
    assert compensations[-1]["error"]["Error"] == "PermanentError"


def test_a_task_token_step_is_completed_by_the_queue_consumer(cloud: LocalCloud) -> None:
    ok = cloud.wait_execution(cloud.start_execution("token", {"value": 12}, "t-1"))
    assert ok["status"] == "SUCCEEDED"
    assert json.loads(ok["output"]) == {"squared": 144}
    failed = cloud.wait_execution(cloud.start_execution("token", {"value": -1}, "t-2"))
    assert failed["status"] == "FAILED" and failed.get("error") == "NegativeValue"


def test_partial_batch_failure_redelivers_only_the_failed_message_and_the_poison_reaches_the_dlq(
    cloud: LocalCloud,
) -> None:
    sqs = cloud.client("sqs")
    queue = cloud.resources["queues"]["batch"]
    for body in ("one", "poison", "two"):
        sqs.send_message(QueueUrl=queue["url"], MessageBody=body)

    def dlq_bodies() -> list[str]:
        msgs = sqs.receive_message(QueueUrl=queue["dlq_url"], MaxNumberOfMessages=10, VisibilityTimeout=0).get(
            "Messages", []
        )
        return [m["Body"] for m in msgs]

    assert wait_for(dlq_bodies, timeout=20, what="the poison message in the DLQ") == ["poison"]
    delivered = [r["body"] for r in functions.RECORDED if r.get("body") in ("one", "two")]
    assert sorted(delivered) == ["one", "two"]  # each good message handled exactly once
    consumer = cloud.consumers["batch"]
    assert consumer.failed == 2  # the poison failed on both of its receives (maxReceiveCount 2)


def test_events_on_the_bus_reach_the_rule_s_queue(cloud: LocalCloud) -> None:
    from chalicelib.adapters.dynamodb.outbox import write_with_events
    from chalicelib.composition import get_container
    from chalicelib.domain.events import Event

    event = Event.create("namespace.created", "ns-1", datetime.now(UTC), {"region": "local"})
    write_with_events([], [event])
    assert get_container().outbox_relay.relay().published >= 1
    sqs = cloud.client("sqs")
    msgs = sqs.receive_message(QueueUrl=cloud.resources["queues"]["audit"]["url"], MaxNumberOfMessages=10)
    details = [json.loads(m["Body"])["detail"] for m in msgs.get("Messages", [])]
    assert event.id in [d["id"] for d in details]


def test_schedules_fire_when_the_clock_moves_not_before(cloud: LocalCloud) -> None:
    clock: ManualClock = cloud.clock
    ticks = lambda: [r for r in functions.RECORDED if r.get("kind") == "tick"]  # noqa: E731
    cloud.scheduler.tick()
    assert ticks() == []
    clock.advance(timedelta(minutes=5))
    cloud.scheduler.tick()
    assert len(ticks()) == 1 and ticks()[0]["schedule"] == "tick"
    # 03:00 passes: the nightly cron starts the pipeline state machine, named after the scheduled time
    clock.set(datetime(2026, 11, 27, 3, 0, 30, tzinfo=UTC))
    cloud.scheduler.tick()
    arn = cloud.resources["state_machines"]["pipeline"].replace(":stateMachine:", ":execution:")
    result = cloud.wait_execution(f"{arn}:nightly-20261127T030000Z")
    assert result["status"] == "SUCCEEDED"


def test_concurrent_conditional_writes_from_8_threads_count_exactly(cloud: LocalCloud) -> None:
    """400 unique events, each one transaction (a dedup claim + a counter add), from 8 threads; then
    every event again: exactly 400 counted, none twice."""
    from chalicelib.adapters.dynamodb.base import BaseItem
    from chalicelib.composition import get_container
    from chalicelib.domain.errors import ConditionFailedError

    get_container().bind()
    client = cloud.client("dynamodb")
    table = cloud.decl.table_name
    accepted = []
    lock = threading.Lock()

    def ingest(event_id: str) -> None:
        try:
            client.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": table,
                            "Item": {"PK": {"S": f"DEDUP#{event_id}"}, "SK": {"S": "DEDUP"}},
                            "ConditionExpression": "attribute_not_exists(PK)",
                        }
                    },
                    {
                        "Update": {
                            "TableName": table,
                            "Key": {"PK": {"S": "COUNTER"}, "SK": {"S": "COUNTER"}},
                            "UpdateExpression": "ADD n :one",
                            "ExpressionAttributeValues": {":one": {"N": "1"}},
                        }
                    },
                ]
            )
            with lock:
                accepted.append(event_id)
        except client.exceptions.TransactionCanceledException:
            pass
        except ConditionFailedError:
            pass

    ids = [f"e{i}" for i in range(400)] * 2
    threads = [threading.Thread(target=lambda chunk=ids[k::8]: [ingest(i) for i in chunk]) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    counter = client.get_item(TableName=table, Key={"PK": {"S": "COUNTER"}, "SK": {"S": "COUNTER"}})["Item"]
    assert len(accepted) == 400 and len(set(accepted)) == 400
    assert counter["n"]["N"] == "400"
    assert BaseItem.Meta.host == cloud.moto.endpoint
