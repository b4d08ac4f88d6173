"""The daily membership reconcile: ``fan_out`` (the schedule) pages the active namespaces and sends one
message per namespace to the membership-sync queue; ``sync`` (its consumer) syncs one namespace."""

from __future__ import annotations

import json
from typing import Any

from chalicelib import sqs_batch
from chalicelib.composition import get_container
from chalicelib.logs import lambda_handler

PAGE = 100


@lambda_handler
def fan_out(event: dict[str, Any], context: Any) -> dict[str, int]:
    c = get_container()
    sent = 0
    start = None
    while True:
        ids, start = c.stores.namespaces.active(PAGE, start)
        for ns_id in ids:
            c.queues.send("membership-sync", {"namespace": ns_id})
            sent += 1
        if start is None:
            return {"namespaces": sent}


@lambda_handler
def sync(event: dict[str, Any], context: Any) -> dict[str, Any]:
    membership = get_container().membership

    def one(record: dict[str, Any]) -> None:
        membership.sync(json.loads(record["body"])["namespace"], actor="system:reconcile")

    return sqs_batch.process(event, context, one, queue="membership-sync", failure="membership sync failed")
