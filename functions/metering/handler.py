"""The metering run (statemachines/metering.asl.json, the ``metering-hourly`` schedule): ``fan_out`` pages
the active namespaces onto the metering queue; ``close`` (its consumer) closes one namespace's hours
per message; ``last_close`` is offboarding's step that closes a namespace once more before its billing
is cancelled. Each calls ``MeteringService.close_namespace`` or the fan-out, nothing else."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from chalicelib import sqs_batch
from chalicelib.composition import get_container
from chalicelib.logs import get_logger, lambda_handler


@lambda_handler
def fan_out(event: dict[str, Any], context: Any) -> dict[str, Any]:
    c = get_container()
    scheduled = event.get("scheduled_time")
    at = datetime.fromisoformat(scheduled) if scheduled else c.clock.now()
    page = event.get("page") or {}
    return c.metering_fan_out.page(at, page.get("cursor"), int(page.get("sent", 0))).as_dict()


@lambda_handler
def close(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from chalicelib.domain.metering import parse_hour_key  # on first use: cold starts

    metering = get_container().metering_run

    def one(record: dict[str, Any]) -> None:
        body = json.loads(record["body"])
        result = metering.close_namespace(body["namespace"], parse_hour_key(body["until"]))
        get_logger().info("namespace metered", extra=result.as_dict())

    return sqs_batch.process(event, context, one, queue="metering", failure="metering a namespace failed")


@lambda_handler
def last_close(event: dict[str, Any], context: Any) -> dict[str, Any]:
    c = get_container()
    result = c.metering_run.close_namespace(event["namespace"], c.clock.now())
    get_logger().info("namespace metered for the last time", extra=result.as_dict())
    return event
