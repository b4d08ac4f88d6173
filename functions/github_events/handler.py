"""Consumer of the github-events queue: one GitHub delivery per message; a failed one is reported
back (partial batch failure) and retried, then dead-lettered."""

from __future__ import annotations

import json
from typing import Any

from chalicelib.composition import get_container
from chalicelib.logs import get_logger


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    processor = get_container().github_events
    failures = []
    for record in event.get("Records", []):
        try:
            message = json.loads(record["body"])
            processor.process(message["delivery"], message["event"], message["payload"])
        except Exception:
            get_logger().exception("github event failed", extra={"message_id": record.get("messageId")})
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}


def redeliver(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The github-redeliver schedule: ask GitHub again for the App's failed deliveries."""
    return {"redelivered": get_container().delivery_recovery.redeliver_failed()}
