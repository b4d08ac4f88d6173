"""Consumer of the github-events queue: one GitHub delivery per message; a failed one is reported
back (partial batch failure, Powertools' batch processing: chalicelib/sqs_batch.py) and retried, then
dead-lettered. Each delivery is counted (``WebhookDeliveries`` by outcome: chalicelib/metrics.py)."""

from __future__ import annotations

from typing import Any

from chalicelib import sqs_batch
from chalicelib.composition import get_container
from chalicelib.logs import get_logger, lambda_handler
from chalicelib.metrics import count


@lambda_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    container = get_container()
    processor, queues = container.github_events, container.queues

    def one(record: dict[str, Any]) -> None:
        try:
            message = queues.read(record)  # a large payload comes through the bucket (a claim check)
            if message is None:
                get_logger().warning("github event handled already", extra={"message_id": record.get("messageId")})
                count("WebhookDeliveries", "outcome", "duplicate")
                return
            processor.process(message["delivery"], message["event"], message["payload"])
        except Exception:
            count("WebhookDeliveries", "outcome", "failed")
            raise
        count("WebhookDeliveries", "outcome", "processed")
        try:
            queues.settle(record)
        except Exception:  # the bucket's lifecycle rule removes it later
            get_logger().exception("offloaded payload not deleted", extra={"message_id": record.get("messageId")})

    return sqs_batch.process(event, context, one, queue="github-events", failure="github event failed")


@lambda_handler
def redeliver(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The github-redeliver schedule: ask GitHub again for the App's failed deliveries."""
    return {"redelivered": get_container().delivery_recovery.redeliver_failed()}
