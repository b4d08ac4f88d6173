"""The deploy state machine's tasks (statemachines/deploy.asl.json), one per state, and the sweeper.
Each takes ``{"namespace", "service", "deployment_id", ...}`` and calls one DeployService step."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from chalicelib.composition import get_container


def _args(event: dict[str, Any]) -> tuple[str, str, str]:
    return event["namespace"], event["service"], event["deployment_id"]


def lock(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return get_container().deploys.step_lock(*_args(event))


def report(event: dict[str, Any], context: Any) -> dict[str, Any]:
    get_container().deploys.step_report(*_args(event), event["state"])
    return {}


def build(event: dict[str, Any], context: Any) -> dict[str, Any]:
    get_container().deploys.step_build(*_args(event))
    return {}


def start(event: dict[str, Any], context: Any) -> dict[str, Any]:
    get_container().deploys.step_start(*_args(event))
    return {}


def health(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return get_container().deploys.step_health(*_args(event))


def succeed(event: dict[str, Any], context: Any) -> dict[str, Any]:
    get_container().deploys.step_succeed(*_args(event))
    return {}


def rollback(event: dict[str, Any], context: Any) -> dict[str, Any]:
    get_container().deploys.step_rollback(*_args(event), event.get("error"))
    return {}


def release(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return get_container().deploys.step_release(*_args(event))


def sweep(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """``{"grace_seconds": n}`` (optional): how long a deployment must have been stuck; 0 at a local start."""
    grace = event.get("grace_seconds")
    deploys = get_container().deploys
    return deploys.sweep() if grace is None else deploys.sweep(timedelta(seconds=int(grace)))
