"""The offboarding state machine's tasks (statemachines/offboarding.asl.json)."""

from __future__ import annotations

from typing import Any

from chalicelib.composition import get_container
from chalicelib.logs import lambda_handler


@lambda_handler
def runtime(event: dict[str, Any], context: Any) -> dict[str, Any]:
    get_container().namespaces.offboard_runtime(event["namespace"])
    return event


@lambda_handler
def billing(event: dict[str, Any], context: Any) -> dict[str, Any]:
    get_container().namespaces.offboard_billing(event["namespace"])
    return event


@lambda_handler
def finish(event: dict[str, Any], context: Any) -> dict[str, Any]:
    get_container().namespaces.offboard_finish(event["namespace"], event.get("actor", "system:offboarding"))
    return event
