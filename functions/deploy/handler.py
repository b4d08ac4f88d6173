"""The deploy state machine's tasks (statemachines/deploy.asl.json), one per state, and the sweeper.
Each takes ``{"namespace", "service", "deployment_id", ...}`` and calls one DeployService step. What
``Lock`` read (``$.lock.run``) and ``Build`` made (``$.build``) come along in the state, so that no later
step reads them again. Each deployment's end is counted once (``Deployments`` by outcome:
chalicelib/metrics.py), by the task whose write ended it (``ended`` in its answer): a retried task
counts nothing again."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from chalicelib.composition import get_container
from chalicelib.logs import lambda_handler
from chalicelib.metrics import count


def _args(event: dict[str, Any]) -> tuple[str, str, str]:
    return event["namespace"], event["service"], event["deployment_id"]


def _run(event: dict[str, Any]) -> Any:
    from chalicelib.domain.services.deploys import Run

    return Run.from_state((event.get("lock") or {}).get("run") or event.get("run"))


def _built(event: dict[str, Any]) -> Any:
    from chalicelib.domain.services.deploys import Built

    return Built.from_state(event.get("build"))


def _count_ended(answer: dict[str, Any]) -> None:
    for outcome in answer.get("ended", ()):
        count("Deployments", "outcome", outcome)


def _healthy_at(event: dict[str, Any]) -> datetime | None:
    health = event.get("health") or {}
    return datetime.fromisoformat(health["at"]) if health.get("health") == "running" and health.get("at") else None


@lambda_handler
def lock(event: dict[str, Any], context: Any) -> dict[str, Any]:
    locked = get_container().deploys.step_lock(*_args(event))
    _count_ended(locked)
    return locked


@lambda_handler
def report(event: dict[str, Any], context: Any) -> dict[str, Any]:
    get_container().deploys.step_report(*_args(event), event["state"], _run(event))
    return {}


@lambda_handler
def build(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return get_container().deploys.step_build(*_args(event), _run(event))


@lambda_handler
def start(event: dict[str, Any], context: Any) -> dict[str, Any]:
    get_container().deploys.step_start(*_args(event), _run(event), _built(event))
    return {}


@lambda_handler
def health(event: dict[str, Any], context: Any) -> dict[str, Any]:
    # the first check (no $.health yet) comes right after the start
    return get_container().deploys.step_health(*_args(event), _run(event), _built(event), first="health" not in event)


@lambda_handler
def succeed(event: dict[str, Any], context: Any) -> dict[str, Any]:
    done = get_container().deploys.step_succeed(*_args(event), _run(event), _built(event), _healthy_at(event))
    _count_ended(done)
    return done


@lambda_handler
def rollback(event: dict[str, Any], context: Any) -> dict[str, Any]:
    done = get_container().deploys.step_rollback(*_args(event), event.get("error"), _run(event), _healthy_at(event))
    _count_ended(done)
    return done


@lambda_handler
def release(event: dict[str, Any], context: Any) -> dict[str, Any]:
    released = bool((event.get("finished") or {}).get("released"))
    return get_container().deploys.step_release(*_args(event), released=released)


@lambda_handler
def sweep(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """``{"grace_seconds": n}`` (optional): how long a deployment must have been stuck; 0 at a local start."""
    from chalicelib.domain.services.deploys import TERMINAL

    grace = event.get("grace_seconds")
    deploys = get_container().deploys
    done = deploys.sweep() if grace is None else deploys.sweep(timedelta(seconds=int(grace)))
    for outcome in TERMINAL:
        if done.get(outcome):
            count("Deployments", "outcome", outcome, len(done[outcome]))
    return done
