"""The region state machine's tasks (statemachines/regions.asl.json), one per state, each calling one
RegionService step; the consumer of the region-approvals queue (the AwaitApproval step's token kept for
the approve route); and the cluster health check (a schedule)."""

from __future__ import annotations

import json
from typing import Any

from chalicelib.composition import get_container
from chalicelib.logs import get_logger


def planned(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return get_container().region_service.step_planned(event["region"], event.get("plan") or {})


def register(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return get_container().region_service.step_register(
        event["region"], (event.get("apply") or {}).get("outputs") or {}
    )


def health(event: dict[str, Any], context: Any) -> dict[str, Any]:
    get_container().region_service.step_health(event["region"])
    return {"healthy": True}


def activate(event: dict[str, Any], context: Any) -> dict[str, Any]:
    get_container().region_service.step_activate(event["region"], event.get("actor") or "system:regions")
    return {"status": "active"}


def fail(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return get_container().region_service.step_fail(event["region"], event.get("step") or "", event.get("error"))


def drain(event: dict[str, Any], context: Any) -> dict[str, Any]:
    actor = event.get("actor") or "system:regions"
    return get_container().region_service.step_drain(event["region"], bool(event.get("force")), actor)


def destroying(event: dict[str, Any], context: Any) -> dict[str, Any]:
    get_container().region_service.step_destroying(event["region"])
    return {"status": "destroying"}


def retire(event: dict[str, Any], context: Any) -> dict[str, Any]:
    get_container().region_service.step_retire(event["region"], event.get("actor") or "system:regions")
    return {"status": "deleted"}


def approvals(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """One message per plan waiting for approval: ``{region, token}``."""
    service, failures = get_container().region_service, []
    for record in event.get("Records", []):
        try:
            message = json.loads(record["body"])
            service.step_await_approval(message["region"], message["token"])
        except Exception:
            get_logger().exception("approval token not kept", extra={"message_id": record.get("messageId")})
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}


def health_check(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The region-health schedule: every registered cluster probed once."""
    return get_container().region_service.check_health()
