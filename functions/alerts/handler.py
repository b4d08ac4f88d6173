"""The notifier: consumer of the ``alerts`` queue (events) and the ``alerts-timers`` queue (its own
delayed messages: apart, so that they are not received behind a backlog of events), with Powertools'
batch processing (each record handled alone, the failed ones reported back as ``batchItemFailures``
and retried, then dead-lettered).

A record is one of:

- an event from the bus (the rule ``alerts`` routes the types of ``chalicelib.domain.alerts.ALERTABLE``):
  ``AlertService.handle_event``;
- ``{"alerts": "flush", "namespace", "group_id"}``, sent to ``alerts-timers`` delayed by the grouping window:
  ``AlertService.flush``;
- ``{"alerts": "retry", "namespace", "group_id", "channel_id"}``, sent there delayed by the backoff:
  ``AlertService.retry``.

Anything else (a body that is not JSON, an envelope that cannot be read, an event version the notifier
does not know) fails its record: after the queue's receives it lands in the dead-letter queue."""

from __future__ import annotations

import json
from typing import Any

from chalicelib.composition import get_container
from chalicelib.logs import get_logger, lambda_handler

_processor: Any = None


def _batch() -> Any:
    global _processor
    if _processor is None:
        from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType  # on first use: cold starts

        _processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    return _processor


def record_handler(record: Any) -> dict[str, Any]:
    from chalicelib.domain.events import Event

    alerts = get_container().alerts
    body = json.loads(record.body)
    if not isinstance(body, dict):
        raise ValueError("an alerts message is a JSON object")
    kind = body.get("alerts")
    if kind == "flush":
        return {"flushed": alerts.flush(str(body["namespace"]), str(body["group_id"]))}
    if kind == "retry":
        return {"retried": alerts.retry(str(body["namespace"]), str(body["group_id"]), str(body["channel_id"]))}
    if "detail" in body and body.get("source") == "platform":
        handled = alerts.handle_event(Event.from_dict(body["detail"]))
        if handled.alerts or handled.repeats:
            get_logger().info(
                "event alerted",
                extra={"event_type": body.get("detail-type"), "alerts": handled.alerts, "repeats": handled.repeats},
            )
        return {"alerts": handled.alerts, "repeats": handled.repeats}
    raise ValueError("not a message the notifier reads")


@lambda_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from aws_lambda_powertools.utilities.batch import process_partial_response

    return dict(
        process_partial_response(event=event, record_handler=record_handler, processor=_batch(), context=context)
    )
