"""Usage reports: a namespace's schedule (admins), sending one now, the reports sent and their
rendered HTML (the dashboard shows it) and CSV."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from chalice.app import Blueprint, Response

from chalicelib.api.registry import Auth, Call, registry
from chalicelib.composition import get_container
from chalicelib.domain.errors import NotFoundError, ValidationError

if TYPE_CHECKING:
    from chalicelib.domain.reports import Schedule
    from chalicelib.domain.services.reports import Report

bp = Blueprint(__name__)
S = "chalicelib.api.schemas.reports"
REPORTS = "/v1/namespaces/{ns}/reports"


def schedule_view(s: Schedule) -> dict[str, Any]:
    from chalicelib.adapters.notify.slack import describe_webhook

    return {
        "namespace": s.namespace,
        "frequency": s.frequency,
        "timezone": s.timezone,
        "hour": s.hour,
        "weekday": s.weekday,
        "channels": [
            {"id": c.id, "type": c.type, "to": c.to}
            if c.type == "email"
            else {"id": c.id, "type": "slack", "webhook_url": describe_webhook(c.webhook_url or "")}
            for c in s.channels
        ],
        "enabled": s.enabled,
        "next_due": s.next_due,
        "updated_at": s.updated_at,
        "updated_by": s.updated_by,
    }


def report_view(r: Report) -> dict[str, Any]:
    p = r.period
    base = f"{REPORTS}/{r.id}".replace("{ns}", r.namespace)
    return {
        "id": r.id,
        "namespace": r.namespace,
        "period": {
            "kind": p.kind,
            "timezone": p.timezone,
            "start": p.start,
            "end": p.end,
            "usage_from": p.ledger_from,
            "usage_to": p.ledger_to,
            "note": p.note,
        },
        "status": r.status,
        "trigger": r.trigger,
        "created_at": r.created_at,
        "channels": [
            {
                "channel": c.get("channel", ""),
                "type": c.get("type", ""),
                "target": c.get("target", ""),
                "status": c.get("status", ""),
                "key": c.get("key"),
            }
            for c in r.channels
        ],
        "summary": r.summary,
        "html_url": base,
        "csv_url": base + "/csv",
    }


@registry.route(
    bp,
    REPORTS + "/schedule",
    "GET",
    tag="reports",
    auth=Auth(scope="read", role="admin"),
    response=f"{S}:ScheduleOut",
    errors=(NotFoundError,),
    summary="The namespace's report schedule (new namespaces get a weekly one to their owners)",
)
def get_schedule(call: Call) -> dict[str, Any]:
    return schedule_view(get_container().reports.schedule(call.params["ns"]))


@registry.route(
    bp,
    REPORTS + "/schedule",
    "PUT",
    tag="reports",
    auth=Auth(scope="admin", role="admin"),
    request=f"{S}:ScheduleIn",
    response=f"{S}:ScheduleOut",
    errors=(NotFoundError, ValidationError),
    summary="Set the report schedule: frequency, IANA time zone, local hour, weekday, channels; 422 names "
    "each invalid field",
)
def put_schedule(call: Call) -> dict[str, Any]:
    body = call.body.model_dump(mode="python")
    body["channels"] = [dict(c) for c in body["channels"]]
    schedule = get_container().reports.set_schedule(call.params["ns"], body, call.principal.actor)
    call.audit_target = "report-schedule"
    return schedule_view(schedule)


@registry.route(
    bp,
    REPORTS + "/send",
    "POST",
    tag="reports",
    status=202,
    also=(200,),  # the period was sent already: that report, nothing started
    auth=Auth(scope="admin", role="admin"),
    request=f"{S}:SendIn",
    response=f"{S}:ReportOut",
    errors=(NotFoundError, ValidationError),
    summary="Send a report now: the last complete period of the schedule's frequency, or {from, to}; at "
    "most once per period and channel (a period sent already answers that report)",
)
def send_report(call: Call) -> Response:
    b = call.body
    start, end = _instant("from", b.from_), _instant("to", b.to)
    report, started = get_container().reports.send_now(call.params["ns"], start, end)
    call.audit_target = f"report:{report.id}"
    from chalicelib.api.registry import to_response

    spec = next(s for s in registry.specs if s.operation_id == "send_report")
    response = to_response(report_view(report), spec)
    if not started:
        response.status_code = 200
    return response


@registry.route(
    bp,
    REPORTS,
    "GET",
    tag="reports",
    auth=Auth(scope="read", role="viewer"),
    response=f"{S}:ReportListOut",
    errors=(NotFoundError,),
    summary="The reports of the namespace, newest period first",
)
def list_reports(call: Call) -> dict[str, Any]:
    return {"reports": [report_view(r) for r in get_container().reports.list(call.params["ns"])]}


@registry.route(
    bp,
    REPORTS + "/{report_id}",
    "GET",
    tag="reports",
    auth=Auth(scope="read", role="viewer"),
    response_content_type="text/html",
    errors=(NotFoundError,),
    summary="A report's rendered HTML, its chart inline (what the dashboard shows)",
)
def get_report(call: Call) -> Response:
    html = get_container().reports.html(call.params["ns"], call.params["report_id"])
    # Opened by the dashboard in a tab of its own: a sandboxed document (no script runs, no form posts,
    # a unique origin), its chart inline and its styles in the page, nothing else loaded.
    return Response(
        body=html,
        status_code=200,
        headers={"Content-Type": "text/html; charset=utf-8", "Content-Security-Policy": REPORT_CSP},
    )


REPORT_CSP = "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'; frame-ancestors 'none'"


@registry.route(
    bp,
    REPORTS + "/{report_id}/csv",
    "GET",
    tag="reports",
    auth=Auth(scope="read", role="viewer"),
    response_content_type="text/csv",
    errors=(NotFoundError,),
    summary="A report's figures as CSV (its totals are GET .../usage's for the report's usage_from and usage_to)",
)
def get_report_csv(call: Call) -> Response:
    reports = get_container().reports
    reports.get(call.params["ns"], call.params["report_id"])
    text = reports.csv(call.params["ns"], call.params["report_id"])
    if not text:
        raise NotFoundError("the report is not rendered yet", {"report_id": call.params["report_id"]})
    return Response(body=text, status_code=200, headers={"Content-Type": "text/csv; charset=utf-8"})


def _instant(field: str, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        raise ValidationError(
            f"{field}: an ISO 8601 time with a time zone",
            {"fields": [{"field": field, "message": "an ISO 8601 time with a time zone"}]},
        )
    return when
