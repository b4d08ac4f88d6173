"""Billing through Stripe: ``stripe_events`` consumes the ``stripe-events`` queue (one webhook event per
message); ``reconcile_fan_out`` (the ``billing-reconcile`` schedule, daily) pages the active namespaces
onto the ``billing-reconcile`` queue, whose consumer ``reconcile`` checks one namespace; ``sync_catalog``
creates the catalog's meters and prices at Stripe (at the local cloud's start, and by hand:
``python -m functions.billing sync``). Each calls one service, nothing else."""

from __future__ import annotations

import json
from typing import Any

from chalicelib.composition import get_container
from chalicelib.logs import get_logger

RECONCILE_QUEUE = "billing-reconcile"
PAGE = 200


def stripe_events(event: dict[str, Any], context: Any) -> dict[str, Any]:
    container = get_container()
    processor, queues = container.stripe_events, container.queues
    failures = []
    for record in event.get("Records", []):
        try:
            message = queues.read(record)  # a large event comes through the bucket (a claim check)
            if message is None:
                continue  # its offloaded body is gone: handled already
            result = processor.process(message["event"])
            get_logger().info("stripe event", extra=result)
            queues.settle(record)
        except Exception:
            get_logger().exception("stripe event failed", extra={"message_id": record.get("messageId")})
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}


def reconcile_fan_out(event: dict[str, Any], context: Any) -> dict[str, Any]:
    c = get_container()
    cursor, sent = None, 0
    while True:
        ids, cursor = c.stores.namespaces.active(PAGE, cursor)
        c.queues.send_batch(RECONCILE_QUEUE, [{"namespace": ns} for ns in ids])
        sent += len(ids)
        if cursor is None:
            return {"sent": sent}


def reconcile(event: dict[str, Any], context: Any) -> dict[str, Any]:
    reconciliation = get_container().reconciliation
    failures = []
    for record in event.get("Records", []):
        try:
            ns = json.loads(record["body"])["namespace"]
            result = reconciliation.daily(ns)
            get_logger().info(
                "namespace reconciled",
                extra={
                    "namespace": ns,
                    "days": len({r.day for r in result.rows}),
                    "mismatches": [r.as_dict() for r in result.mismatches],
                    "notes": result.notes,
                },
            )
        except Exception:
            get_logger().exception("reconciling a namespace failed", extra={"message_id": record.get("messageId")})
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}


def sync_catalog(event: dict[str, Any], context: Any) -> dict[str, Any]:
    sync = get_container().billing.sync_catalog()
    return {"created": sync.created, "meters": sync.meters, "prices": sync.prices}
