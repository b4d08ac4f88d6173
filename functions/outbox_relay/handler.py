"""Relays pending outbox events to the EventBridge bus. Runs on a schedule (every minute) and,
on AWS, on the table's stream; either way it pages the pending items, so both are safe together."""

from __future__ import annotations

from typing import Any

from chalicelib.composition import get_container
from chalicelib.logs import lambda_handler


@lambda_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    result = get_container().outbox_relay.relay()
    return {"published": result.published, "failed": result.failed}
