"""Consumer of the github-events queue: one GitHub delivery per message; a failed one is reported
back (partial batch failure) and retried, then dead-lettered."""

from __future__ import annotations

from typing import Any

from chalicelib.composition import get_container
from chalicelib.logs import get_logger


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    container = get_container()
    processor, queues = container.github_events, container.queues
    failures = []
    for record in event.get("Records", []):
        try:
            message = queues.read(record)  # a large payload comes through the bucket (a claim check)
            if message is None:
                get_logger().warning("github event handled already", extra={"message_id": record.get("messageId")})
                continue
            processor.process(message["delivery"], message["event"], message["payload"])
            try:
                queues.settle(record)
            except Exception:  # the bucket's lifecycle rule removes it later
                get_logger().exception("offloaded payload not deleted", extra={"message_id": record.get("messageId")})
        except Exception:
            get_logger().exception("github event failed", extra={"message_id": record.get("messageId")})
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}


def redeliver(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The github-redeliver schedule: ask GitHub again for the App's failed deliveries."""
    return {"redelivered": get_container().delivery_recovery.redeliver_failed()}
