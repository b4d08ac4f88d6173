"""Billing through Stripe: ``stripe_events`` consumes the ``stripe-events`` queue (one webhook event per
message); ``reconcile_fan_out`` (the ``billing-reconcile`` schedule, daily) pages the active namespaces
onto the ``billing-reconcile`` queue, whose consumer ``reconcile`` checks one namespace; ``sync_catalog``
creates the catalog's meters and prices at Stripe (at the local cloud's start, and by hand:
``python -m functions.billing sync``). Each calls one service, nothing else."""

from __future__ import annotations

import json
from typing import Any

from chalicelib import sqs_batch
from chalicelib.composition import get_container
from chalicelib.logs import get_logger, lambda_handler

RECONCILE_QUEUE = "billing-reconcile"
PAGE = 200


@lambda_handler
def stripe_events(event: dict[str, Any], context: Any) -> dict[str, Any]:
    container = get_container()
    processor, queues = container.stripe_events, container.queues

    def one(record: dict[str, Any]) -> None:
        message = queues.read(record)  # a large event comes through the bucket (a claim check)
        if message is None:
            return  # its offloaded body is gone: handled already
        result = processor.process(message["event"])
        get_logger().info("stripe event", extra=result)
        queues.settle(record)

    return sqs_batch.process(event, context, one, queue="stripe-events", failure="stripe event failed")


@lambda_handler
def reconcile_fan_out(event: dict[str, Any], context: Any) -> dict[str, Any]:
    c = get_container()
    cursor, sent = None, 0
    while True:
        ids, cursor = c.stores.namespaces.active(PAGE, cursor)
        c.queues.send_batch(RECONCILE_QUEUE, [{"namespace": ns} for ns in ids])
        sent += len(ids)
        if cursor is None:
            return {"sent": sent}


@lambda_handler
def reconcile(event: dict[str, Any], context: Any) -> dict[str, Any]:
    reconciliation = get_container().reconciliation

    def one(record: dict[str, Any]) -> None:
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

    return sqs_batch.process(event, context, one, queue=RECONCILE_QUEUE, failure="reconciling a namespace failed")


@lambda_handler
def sync_catalog(event: dict[str, Any], context: Any) -> dict[str, Any]:
    sync = get_container().billing.sync_catalog()
    return {"created": sync.created, "meters": sync.meters, "prices": sync.prices}
