"""The SQS consumers' batch handling, with Powertools' batch processing (``process_partial_response``):
each record is handled on its own; the ones that raise are reported back as ``batchItemFailures`` (the
queue's event source mapping has ``ReportBatchItemFailures``), so only they are retried, and a record
failing on its last receive (``ApproximateReceiveCount`` at the queue's ``max_receive_count``) is
counted as bound for the dead-letter queue (``DeadLetteredMessages``, chalicelib/metrics.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# infra/resources.json: the max_receive_count of every queue a function consumes
# (tests/unit/test_sqs_batch.py checks they agree)
MAX_RECEIVE_COUNT = 5


def process(
    event: dict[str, Any], context: Any, handle: Callable[[dict[str, Any]], None], *, queue: str, failure: str
) -> dict[str, Any]:
    """Run ``handle(record)`` (the record as SQS gives it) for every record; ``failure`` is the log message
    of a record that raised. Answers ``{"batchItemFailures": [...]}``."""
    if not event.get("Records"):
        return {"batchItemFailures": []}
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

    from chalicelib.logs import get_logger

    def one(record: Any) -> None:
        raw: dict[str, Any] = record.raw_event
        try:
            handle(raw)
        except Exception:
            get_logger().exception(failure, extra={"message_id": record.message_id})
            received = int((raw.get("attributes") or {}).get("ApproximateReceiveCount") or 0)
            if received >= MAX_RECEIVE_COUNT:
                from chalicelib.metrics import count

                count("DeadLetteredMessages", "queue", queue)
            raise

    # every record failing is answered as such too (not raised): the queue retries each as it would one
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    return dict(process_partial_response(event=event, record_handler=one, processor=processor, context=context))
