"""Queue delivery: what a Lambda event source mapping does, for each declared queue that names a
consumer function. Long-polls the queue, hands a batch to the consumer as an SQS event, deletes
what succeeded. A consumer that raises leaves the whole batch; one that answers
``{"batchItemFailures": [{"itemIdentifier": <messageId>}]}`` leaves only those. Left messages come
back after the queue's visibility timeout, and moto moves a message to the dead-letter queue once
it has been received ``maxReceiveCount`` times."""

from __future__ import annotations

import logging
import threading
from typing import Any

from localcloud.declaration import Declaration
from localcloud.lambdas import FunctionRouter

log = logging.getLogger("localcloud.queues")


def sqs_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": {
                    k: {"stringValue": v.get("StringValue"), "dataType": v.get("DataType")}
                    for k, v in (m.get("MessageAttributes") or {}).items()
                },
                "md5OfBody": m.get("MD5OfBody"),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for m in messages
        ]
    }


class QueueConsumer:
    """One event source mapping: a queue, a function, a batch size."""

    def __init__(
        self, sqs: Any, router: FunctionRouter, decl: Declaration, queue: dict[str, Any], url: str, arn: str
    ) -> None:
        self.sqs = sqs
        self.router = router
        self.region = decl.region
        self.queue = queue
        self.url = url
        self.arn = arn
        consumer = queue["consumer"]
        self.function = consumer["function"]
        self.batch_size = int(consumer.get("batch_size", 10))
        self.delivered = 0
        self.failed = 0

    def poll_once(self, wait_seconds: int = 0) -> int:
        """Receive one batch and deliver it; answer how many messages were received."""
        answer = self.sqs.receive_message(
            QueueUrl=self.url,
            MaxNumberOfMessages=self.batch_size,
            WaitTimeSeconds=wait_seconds,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages = answer.get("Messages", [])
        if not messages:
            return 0
        result, error = self.router.invoke(self.function, sqs_event(messages, self.arn, self.region))
        if error:
            log.warning(
                "consumer %s failed a batch of %d: %s",
                self.function,
                len(messages),
                result.get("errorType") if isinstance(result, dict) else result,
            )
            self.failed += len(messages)
            return len(messages)
        failed_ids = (
            {f.get("itemIdentifier") for f in ((result or {}).get("batchItemFailures") or [])}
            if isinstance(result, dict)
            else set()
        )
        done = [m for m in messages if m["MessageId"] not in failed_ids]
        if done:
            self.sqs.delete_message_batch(
                QueueUrl=self.url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )
        self.delivered += len(done)
        self.failed += len(messages) - len(done)
        return len(messages)

    def run(self, stop: threading.Event, wait_seconds: int = 1) -> None:
        while not stop.is_set():
            try:
                if self.poll_once(wait_seconds) == 0:
                    stop.wait(0.05)
            except Exception:  # the mapping keeps going, as Lambda's does
                if stop.is_set():
                    return
                log.exception("polling %s", self.queue["name"])
                stop.wait(1.0)
