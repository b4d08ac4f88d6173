"""The region state machine's tasks (statemachines/regions.asl.json), one per state, each calling one
RegionService step; the consumer of the region-approvals queue (the AwaitApproval step's token kept for
the approve route); and the cluster health check (a schedule)."""

from __future__ import annotations

import json
from typing import Any

from chalicelib import sqs_batch
from chalicelib.composition import get_container
from chalicelib.logs import lambda_handler


@lambda_handler
def planned(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return get_container().region_service.step_planned(event["region"], event.get("plan") or {})


@lambda_handler
def register(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return get_container().region_service.step_register(
        event["region"], (event.get("apply") or {}).get("outputs") or {}
    )


@lambda_handler
def health(event: dict[str, Any], context: Any) -> dict[str, Any]:
    get_container().region_service.step_health(event["region"])
    return {"healthy": True}


@lambda_handler
def activate(event: dict[str, Any], context: Any) -> dict[str, Any]:
    get_container().region_service.step_activate(event["region"], event.get("actor") or "system:regions")
    return {"status": "active"}


@lambda_handler
def fail(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return get_container().region_service.step_fail(event["region"], event.get("step") or "", event.get("error"))


@lambda_handler
def drain(event: dict[str, Any], context: Any) -> dict[str, Any]:
    actor = event.get("actor") or "system:regions"
    return get_container().region_service.step_drain(event["region"], bool(event.get("force")), actor)


@lambda_handler
def destroying(event: dict[str, Any], context: Any) -> dict[str, Any]:
    get_container().region_service.step_destroying(event["region"])
    return {"status": "destroying"}


@lambda_handler
def retire(event: dict[str, Any], context: Any) -> dict[str, Any]:
    get_container().region_service.step_retire(event["region"], event.get("actor") or "system:regions")
    return {"status": "deleted"}


@lambda_handler
def approvals(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """One message per plan waiting for approval: ``{region, token}``."""
    service = get_container().region_service

    def one(record: dict[str, Any]) -> None:
        message = json.loads(record["body"])
        service.step_await_approval(message["region"], message["token"])

    return sqs_batch.process(event, context, one, queue="region-approvals", failure="approval token not kept")


@lambda_handler
def health_check(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The region-health schedule: every registered cluster probed once."""
    return get_container().region_service.check_health()
