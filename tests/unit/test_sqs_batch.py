"""The SQS consumers on Powertools' batch processing, every function handler with the Lambda context on
its log lines, and the operational metrics as EMF lines (what CloudWatch turns into metrics)."""

from __future__ import annotations

import importlib
import json
from typing import Any

import pytest

from chalicelib import sqs_batch
from localcloud.lambdas import LambdaContext
from tests.conftest import read_log
from tests.helpers import ROOT


def resources() -> dict[str, Any]:
    return dict(json.loads((ROOT / "infra" / "resources.json").read_text()))


def record(message_id: str, body: str, received: int = 1) -> dict[str, Any]:
    return {
        "messageId": message_id,
        "receiptHandle": f"rh-{message_id}",
        "body": body,
        "attributes": {"ApproximateReceiveCount": str(received)},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:membership-sync-test",
        "awsRegion": "us-east-1",
    }


def emf(out: str) -> list[dict[str, Any]]:
    """The EMF lines written: each one metric with its dimensions."""
    found = []
    for line in out.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            doc = json.loads(line)
            (directive,) = doc["_aws"]["CloudWatchMetrics"]
            for metric in directive["Metrics"]:
                dims = {d: doc[d] for group in directive["Dimensions"] for d in group}
                found.append(
                    {"namespace": directive["Namespace"], "name": metric["Name"], "value": doc[metric["Name"]], **dims}
                )
    return found


def context(name: str = "platform-test-membership-sync") -> LambdaContext:
    import time

    return LambdaContext(function_name=name, aws_request_id="req-0001", _deadline=time.monotonic() + 60)


def test_the_consumers_max_receive_count_is_the_queues() -> None:
    consumed_by_functions = [q for q in resources()["queues"] if "function" in q.get("consumer", {})]
    assert {q["max_receive_count"] for q in consumed_by_functions} == {sqs_batch.MAX_RECEIVE_COUNT}


def test_only_the_failed_records_are_reported_and_a_last_receive_is_counted_dead_lettered(
    capsys: pytest.CaptureFixture[str],
) -> None:
    handled = []

    def one(raw: dict[str, Any]) -> None:
        if raw["body"] == "poison":
            raise ValueError("cannot handle it")
        handled.append(raw["body"])

    event = {"Records": [record("m1", "a"), record("m2", "poison", received=2), record("m3", "b")]}
    assert sqs_batch.process(event, None, one, queue="membership-sync", failure="failed") == {
        "batchItemFailures": [{"itemIdentifier": "m2"}]
    }
    assert handled == ["a", "b"] and emf(capsys.readouterr().out) == []
    every = {"Records": [record("m4", "poison", received=5), record("m5", "poison", received=5)]}
    answer = sqs_batch.process(every, None, one, queue="membership-sync", failure="failed")
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m4"}, {"itemIdentifier": "m5"}]}  # not raised
    dead = emf(capsys.readouterr().out)
    assert (
        dead
        == [
            {
                "namespace": "MicroPlatform",
                "name": "DeadLetteredMessages",
                "value": [1.0],
                "service": "platform",
                "queue": "membership-sync",
            }
        ]
        * 2
    )
    assert sqs_batch.process({"Records": []}, None, one, queue="q", failure="f") == {"batchItemFailures": []}


def test_every_declared_function_handler_logs_with_its_lambda_context() -> None:
    for function in resources()["functions"]:
        module, _, name = function["handler"].rpartition(".")
        handler = getattr(importlib.import_module(module), name)
        assert getattr(handler, "__wrapped__", None) is not None and handler.__name__ == name, function["handler"]
        assert handler.__code__.co_filename.endswith("chalicelib/logs.py"), function["handler"]


def test_a_consumers_log_lines_carry_the_request_id_and_cold_start(
    container: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from functions.membership.handler import sync

    monkeypatch.setenv("PLATFORM_LOCAL_KEY", "unit-test-local-key")

    event = {"Records": [record("m9", "{not json")]}
    assert sync(event, context()) == {"batchItemFailures": [{"itemIdentifier": "m9"}]}
    lines = [json.loads(line) for line in read_log().splitlines() if line.startswith("{")]
    failed = [line for line in lines if line.get("message") == "membership sync failed"][-1]
    assert failed["function_request_id"] == "req-0001" and failed["message_id"] == "m9"
    assert failed["function_name"] == "platform-test-membership-sync" and "cold_start" in failed
    from chalicelib.logs import get_logger

    get_logger().info("after the invocation")  # (in the local cloud: an API request's line, say)
    after = [json.loads(line) for line in read_log().splitlines() if line.startswith("{")][-1]
    assert after["message"] == "after the invocation" and "function_request_id" not in after
    assert "cold_start" not in after and "function_name" not in after


def test_a_failed_onboarding_is_counted(
    container: Any, clock: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from chalicelib.domain.model import Namespace
    from functions.onboarding.handler import compensate

    monkeypatch.setenv("PLATFORM_LOCAL_KEY", "unit-test-local-key")
    ns = Namespace("acme-data", "acme", 1, "data", 3, "local", "starter", "provisioning", clock.now(), "user:ada")
    container.stores.namespaces.create(ns, [])
    capsys.readouterr()
    compensate({"namespace": "acme-data", "error": {"Error": "X", "Cause": "y"}}, context("platform-test-onboarding"))
    compensate({"namespace": "acme-data", "error": {"Error": "X", "Cause": "y"}}, None)  # again: counted once
    counted = emf(capsys.readouterr().out)
    assert [(m["name"], m["outcome"]) for m in counted] == [("Onboardings", "failed")]


class Executions:
    """Step Functions as the sweeper sees it (``WorkflowPort``): execution names are unique per state
    machine (a second start of one raises ConflictError, as ``ExecutionAlreadyExists``), and none of
    them runs (the local cloud restarted, or they stopped short)."""

    def __init__(self) -> None:
        self.started: set[tuple[str, str]] = set()

    def start(self, machine: str, name: str, payload: dict[str, Any]) -> str:
        from chalicelib.domain.errors import ConflictError

        if (machine, name) in self.started:
            raise ConflictError(f"an execution named {name!r} exists", {"execution": name})
        self.started.add((machine, name))
        return f"arn:aws:states:us-east-1:123456789012:execution:{machine}:{name}"

    def status(self, machine: str, name: str) -> str | None:
        return "FAILED" if (machine, name) in self.started else None


def test_onboardings_the_sweeper_settles_are_counted_once_each(
    container: Any, clock: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A stuck onboarding is resumed once (its new execution's Activate or Compensate task counts it),
    then, if that stopped short too, compensated by the sweeper itself: counted ``failed``, once."""
    from datetime import timedelta

    from chalicelib.domain.model import Namespace
    from functions.onboarding.handler import activate, sweep

    monkeypatch.setenv("PLATFORM_LOCAL_KEY", "unit-test-local-key")
    container.__dict__["workflows"] = Executions()
    for team, uid in (("data", 3), ("web", 4)):
        ns = Namespace(f"acme-{team}", "acme", 1, team, uid, "local", "starter", "provisioning", clock.now(), "ada")
        container.stores.namespaces.create(ns, [])
    clock.advance(timedelta(minutes=5))
    capsys.readouterr()

    assert sweep({}, context("platform-test-namespace-sweep")) == {"resumed": ["acme-data", "acme-web"]}
    activate({"namespace": "acme-web"}, None)  # acme-web's resumed execution gets to the end
    clock.advance(timedelta(minutes=5))
    assert sweep({}, None) == {"compensated": ["acme-data"]}  # acme-data's stopped short again
    assert sweep({}, None) == {}
    assert container.namespaces.get("acme-data").status == "failed"
    counted = emf(capsys.readouterr().out)
    assert sorted((m["name"], m["outcome"], m["value"]) for m in counted) == [
        ("Onboardings", "active", [1.0]),
        ("Onboardings", "failed", [1.0]),
    ]
