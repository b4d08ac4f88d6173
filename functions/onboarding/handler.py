"""The onboarding state machine's tasks (statemachines/onboarding.asl.json), one per state. Each takes
``{"namespace": id}``, calls one NamespaceService step, and passes the input on. And the namespace
sweeper (at the local cloud's start and on a schedule), which settles onboardings and offboardings
whose execution no longer runs. Each onboarding's outcome is counted once (``Onboardings``: chalicelib/metrics.py),
the sweeper's compensations included."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from chalicelib.composition import get_container
from chalicelib.logs import lambda_handler
from chalicelib.metrics import count
from chalicelib.namespace_tasks import namespace_task

billing = namespace_task("billing", lambda s, e: s.step_billing(e["namespace"]))


@lambda_handler
def place(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {**event, "cluster_id": get_container().namespaces.step_place(event["namespace"])}


runtime = namespace_task("runtime", lambda s, e: s.step_runtime(e["namespace"]))
members = namespace_task("members", lambda s, e: s.step_members(e["namespace"]))


@lambda_handler
def activate(event: dict[str, Any], context: Any) -> dict[str, Any]:
    c = get_container()
    c.namespaces.step_activate(event["namespace"])
    try:  # a new namespace's weekly report to its owners; never fails the onboarding
        c.reports.ensure_default(event["namespace"])
    except Exception:
        from chalicelib.logs import get_logger

        get_logger().exception("the default report schedule was not set", extra={"namespace": event["namespace"]})
    count("Onboardings", "outcome", "active")
    return event


@lambda_handler
def compensate(event: dict[str, Any], context: Any) -> dict[str, Any]:
    done = get_container().namespaces.compensate(event["namespace"], event.get("error"))
    if "status" not in done:  # (with it: compensated already, or being deleted)
        count("Onboardings", "outcome", "failed")
    return done


@lambda_handler
def sweep(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """``{"grace_seconds": n}`` (optional): how long a namespace must have been stuck; 0 at a local start."""
    grace = event.get("grace_seconds")
    service = get_container().namespaces
    done = service.sweep() if grace is None else service.sweep(timedelta(seconds=int(grace)))
    # An onboarding the sweeper compensated itself is counted here, once (only the sweep whose
    # compensation moved it to failed lists it); one it resumed is counted by its new execution's
    # Activate or Compensate task.
    if done.get("compensated"):
        count("Onboardings", "outcome", "failed", len(done["compensated"]))
    return done
