"""Usage reports. The ``reports-hourly`` schedule runs ``statemachines/reports-fanout.asl.json``, whose
``fan_out`` task pages the due index onto the ``reports`` queue; ``start`` (its consumer) takes one
namespace's due hour and starts ``statemachines/reports.asl.json``: ``gather`` -> ``render`` ->
``send`` -> ``record``. Each calls one ``ReportService`` method."""

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
    return c.reports.fan_out_page(at, page.get("hour"), page.get("cursor"), int(page.get("sent", 0)))


@lambda_handler
def start(event: dict[str, Any], context: Any) -> dict[str, Any]:
    reports = get_container().reports

    def one(record: dict[str, Any]) -> None:
        body = json.loads(record["body"])
        name = reports.start_due(body["namespace"], datetime.fromisoformat(body["due"]))
        get_logger().info("report due", extra={"namespace": body["namespace"], "execution": name})

    return sqs_batch.process(event, context, one, queue="reports", failure="starting a report failed")


@lambda_handler
def gather(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return get_container().reports.gather(event["namespace"], event["report_id"], event["period"])


@lambda_handler
def render(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from chalicelib.adapters.render.report import ReportRenderer  # Jinja2 and matplotlib: this step only

    return get_container().reports.render(event["namespace"], event["report_id"], ReportRenderer())


@lambda_handler
def send(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return get_container().reports.send(event["namespace"], event["report_id"])


@lambda_handler
def record(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return get_container().reports.record(event["namespace"], event["report_id"], failed="error" in event)
