"""The ``queue-metrics`` schedule: the depth of every consumer queue's dead-letter queue, as a
Powertools metric (CloudWatch embedded metric format on stdout: ``MicroPlatform``
``DeadLetterMessages``, dimension ``queue``). A message there is one a consumer failed on
``max_receive_count`` times (a poison message): something to alarm on."""

from __future__ import annotations

from typing import Any

from chalicelib.composition import get_container
from chalicelib.logs import lambda_handler

NAMESPACE = "MicroPlatform"
METRIC = "DeadLetterMessages"


@lambda_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from aws_lambda_powertools.metrics import MetricUnit, single_metric  # on first use: cold starts

    depths = get_container().queues.dead_letter_depths()
    for queue, depth in sorted(depths.items()):
        with single_metric(
            name=METRIC, unit=MetricUnit.Count, value=depth, namespace=NAMESPACE, default_dimensions={"queue": queue}
        ):
            pass
    return {"dead_letter_messages": depths}
