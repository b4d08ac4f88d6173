"""Scheduled usage reports: schedules, the hourly fan-out over the due index, and the report workflow's
steps (gather -> render -> send -> record). Time rules: ``chalicelib/domain/reports.py``.

**Fan-out without Scan.** A schedule is filed in the due index under the UTC hour it is next due
(``REPORT_DUE#<hour>``), recomputed in its time zone when it is saved and each time it is taken. The
hourly fan-out (``fan_out_page``) pages the index entries of every hour since the last run (a cursor,
so an hour the schedule missed is still taken, at most ``CATCH_UP`` back) and sends one message
``{namespace, due}`` per namespace to the ``reports`` queue; the consumer (``start_due``) moves the
schedule to its next due hour (conditionally on the hour it took) and starts the report workflow,
named after the namespace and the period, so a second start of the same report is refused.

**At most once per namespace, period and channel.** The send step delivers each channel through
``DeliveryService`` with the key ``report:<ns>:<report id>:<channel id>``: claimed before sending, so a
retried step, a schedule firing twice or ``POST .../reports/send`` for a period already sent deliver
nothing again. A channel whose send surely failed is retried by the state machine's Retry; one whose
outcome is unknown is not resent.

**Figures** come from the ledger through ``UsageService.series`` (the usage API's own code: the CSV's
totals are the usage API's totals for the same hours) and from rating and budgets (the billing view's
own code).
"""

from __future__ import annotations

import builtins
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol
from zoneinfo import ZoneInfo

from chalicelib.domain.clock import Clock
from chalicelib.domain.errors import (
    ConflictError,
    DependencyUnavailableError,
    NotFoundError,
    ValidationError,
)
from chalicelib.domain.metering import Catalog, format_micros, period_of
from chalicelib.domain.ports import Attachment, Notification, QueuePort, WorkflowPort
from chalicelib.domain.reports import (
    DEFAULT_SCHEDULE,
    MAX_CHANNELS,
    OWNERS,
    REPORT_ID,
    Channel,
    Figures,
    MeterFigure,
    Period,
    Schedule,
    custom_period,
    due_hour,
    last_complete_period,
    period_due,
    top_services,
    validate_schedule,
)
from chalicelib.domain.services.delivery import Delivery, DeliveryService, valid_email
from chalicelib.domain.stores import BlobStore, ReportStore, ScheduleStore

REPORTS_QUEUE = "reports"
REPORTS_MACHINE = "reports"
FAN_OUT_PAGE = 200
HOURS_PER_TASK = 48  # empty hours one fan-out task passes over
CATCH_UP = timedelta(days=8)  # hours the fan-out goes back when it missed some (a clock moved a week)
RETENTION = timedelta(days=400)
ReportStatus = Literal["gathered", "rendered", "sent", "partial", "failed", "skipped", "nothing_to_send"]


@dataclass(frozen=True)
class Report:
    namespace: str
    id: str
    period: Period
    status: ReportStatus
    trigger: str  # schedule, api
    created_at: datetime
    channels: tuple[dict[str, Any], ...] = ()  # [{id, type, target, status, key}] as recorded
    summary: dict[str, Any] | None = None  # figures shown in lists (totals, cost)


@dataclass(frozen=True)
class Rendered:
    subject: str
    html: str  # the chart referenced as cid:<CHART_CID>
    text: str
    csv: str
    png: bytes
    slack_blocks: list[dict[str, Any]]
    slack_text: str


CHART_CID = "usage-chart@platform"


class RendererPort(Protocol):
    def render(self, figures: Figures) -> Rendered: ...


class ReportService:
    def __init__(
        self,
        schedules: ScheduleStore,
        reports: ReportStore,
        blobs: BlobStore,
        usage: Any,  # UsageService
        rating: Any,  # RatingService
        budgets: Any,  # BudgetService
        catalog: Catalog,
        namespaces: Any,  # NamespaceStore
        owner_emails: Callable[[str], list[tuple[str, str | None]]],  # ns -> [(login, email or None)]
        delivery: DeliveryService,
        queues: QueuePort,
        workflows: WorkflowPort,
        clock: Clock,
        *,
        dashboard_url: str,
        encrypt: Callable[[str, str], str],
        decrypt: Callable[[str, str], str],
        check_webhook: Callable[[str], None],
    ) -> None:
        self._schedules = schedules
        self._reports = reports
        self._blobs = blobs
        self._usage = usage
        self._rating = rating
        self._budgets = budgets
        self._catalog = catalog
        self._namespaces = namespaces
        self._owner_emails = owner_emails
        self._delivery = delivery
        self._queues = queues
        self._workflows = workflows
        self._clock = clock
        self._dashboard_url = dashboard_url
        self.encrypt = encrypt
        self.decrypt = decrypt
        self._check_webhook = check_webhook

    # ------------------------------------------------------------------ schedules

    def schedule(self, ns: str) -> Schedule:
        found = self._schedules.get(ns)
        if found is None:
            raise NotFoundError(f"{ns} has no report schedule; set one with PUT .../reports/schedule", {"ns": ns})
        return found

    def set_schedule(self, ns: str, body: dict[str, Any], actor: str) -> Schedule:
        """Validate everything first (422 naming each field), then write it, filed under its next due hour."""
        frequency, timezone, hour, weekday = validate_schedule(
            body.get("frequency"), body.get("timezone"), body.get("hour"), body.get("weekday")
        )
        channels = self._channels(body.get("channels"))
        enabled = body.get("enabled", True)
        now = self._clock.now()
        s = Schedule(ns, frequency, timezone, hour, weekday, channels, bool(enabled), None, now, actor)
        s = replace(s, next_due=due_hour(s, now) if s.enabled else None)
        self._schedules.put(s)
        return s

    def ensure_default(self, ns: str) -> bool:
        """A new namespace's schedule: weekly, to its owners by email (they can turn it off)."""
        now = self._clock.now()
        s = Schedule(
            ns,
            DEFAULT_SCHEDULE["frequency"],  # type: ignore[arg-type]
            str(DEFAULT_SCHEDULE["timezone"]),
            int(DEFAULT_SCHEDULE["hour"]),  # type: ignore[call-overload]
            str(DEFAULT_SCHEDULE["weekday"]),
            (Channel("email", to=OWNERS),),
            True,
            None,
            now,
            "system:onboarding",
        )
        return self._schedules.put_default(replace(s, next_due=due_hour(s, now)))

    def _channels(self, raw: Any) -> tuple[Channel, ...]:
        """``[{type: email, to: <address> | owners} | {type: slack, webhook_url}]``: 422 naming each bad one."""
        if raw is None:
            return (Channel("email", to=OWNERS),)
        if not isinstance(raw, list) or len(raw) > MAX_CHANNELS:
            raise _invalid("channels", f"a list of at most {MAX_CHANNELS} channels")
        out: list[Channel] = []
        fields = []
        for i, c in enumerate(raw):
            where = f"channels.{i}"
            if not isinstance(c, dict) or c.get("type") not in ("email", "slack"):
                fields.append({"field": f"{where}.type", "message": "email or slack"})
                continue
            if c["type"] == "email":
                to = c.get("to")
                extra = set(c) - {"type", "to"}
                if not isinstance(to, str) or not (to == OWNERS or valid_email(to)):
                    fields.append({"field": f"{where}.to", "message": "an email address, or owners"})
                elif extra:
                    fields.append(
                        {"field": f"{where}.{sorted(extra)[0]}", "message": "not a field of an email channel"}
                    )
                else:
                    out.append(Channel("email", to=to))
            else:
                url = c.get("webhook_url")
                extra = set(c) - {"type", "webhook_url"}
                if extra:
                    fields.append({"field": f"{where}.{sorted(extra)[0]}", "message": "not a field of a Slack channel"})
                    continue
                try:
                    if not isinstance(url, str):
                        raise ValidationError("a Slack incoming-webhook URL")
                    self._check_webhook(url)
                except ValidationError as e:
                    fields.append({"field": f"{where}.webhook_url", "message": e.message})
                    continue
                out.append(Channel("slack", webhook_url=url))
        ids = [c.id for c in out]
        if len(set(ids)) != len(ids):
            fields.append({"field": "channels", "message": "each channel once"})
        if fields:
            names = ", ".join(f"{f['field']}: {f['message']}" for f in fields)
            raise ValidationError(f"the schedule's channels are not valid ({names})", {"fields": fields})
        return tuple(out)

    # ------------------------------------------------------------------ the hourly fan-out

    def fan_out_page(
        self, scheduled_time: datetime, hour: str | None = None, cursor: str | None = None, sent: int = 0
    ) -> dict[str, Any]:
        """One task of the hourly fan-out: a page of the due index, from the hour after the last one
        fanned out (at most ``CATCH_UP`` back) to the scheduled hour. Hours with nothing due are passed
        in the same task (up to ``HOURS_PER_TASK``), so a quiet catch-up costs a query per hour, not a
        state transition per hour."""
        last = scheduled_time.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        if hour is None:
            done = self._schedules.fan_out_cursor()
            current = last - CATCH_UP if done is None or done < last - CATCH_UP else done + timedelta(hours=1)
        else:
            current = datetime.fromisoformat(hour)
        for _ in range(HOURS_PER_TASK):
            if current > last:
                return {"hour": None, "cursor": None, "sent": sent, "more": False}
            ids, next_cursor = self._schedules.due(current, FAN_OUT_PAGE, cursor)
            self._queues.send_batch(REPORTS_QUEUE, [{"namespace": ns, "due": current.isoformat()} for ns in ids])
            sent += len(ids)
            if next_cursor is not None:
                return {"hour": current.isoformat(), "cursor": next_cursor, "sent": sent, "more": True}
            self._schedules.set_fan_out_cursor(current)
            current, cursor = current + timedelta(hours=1), None
            if ids:
                break  # one page of messages per task
        more = current <= last
        return {"hour": current.isoformat() if more else None, "cursor": None, "sent": sent, "more": more}

    def start_due(self, ns: str, due: datetime) -> str | None:
        """The queue consumer: take the schedule's due hour (moving it to the next one) and start the
        report of the period it closes. None when it was taken already or is no longer due then."""
        s = self._schedules.get(ns)
        if s is None or not s.enabled or s.next_due != due:
            return None
        period = period_due(s, due)
        name = self._start(ns, period, "schedule")  # first: a retried message starts it (once) and advances
        self._schedules.advance(ns, due, due_hour(s, due))
        return name

    def send_now(self, ns: str, start: datetime | None = None, end: datetime | None = None) -> tuple[Report, bool]:
        """``POST .../reports/send``: the last complete period (the schedule's frequency, else weekly), or
        ``{from, to}``. Answers the report and whether this call started it (False: it exists)."""
        s = self._schedules.get(ns)
        timezone = s.timezone if s is not None else "UTC"
        if (start is None) != (end is None):
            raise _invalid("to" if end is None else "from", "give both from and to, or neither")
        if start is not None and end is not None:
            if end <= start:
                raise _invalid("to", "must be after from")
            if end - start > timedelta(days=35):
                raise _invalid("from", "at most 35 days between from and to")
            if start > self._clock.now():
                raise _invalid("from", "must be in the past")
            period = custom_period(timezone, start, end)
        else:
            frequency = s.frequency if s is not None else "weekly"
            period = last_complete_period(frequency, timezone, self._clock.now().astimezone(ZoneInfo(timezone)).date())
        if not self._channels_of(ns, s):
            raise ValidationError(
                "the namespace's report schedule has no channel: add one with PUT .../reports/schedule",
                {"fields": [{"field": "channels", "message": "no channel to send to"}]},
            )
        existing = self._reports.get(ns, period.id)
        if existing is not None and existing.status not in ("failed",):
            return existing, False
        self._start(ns, period, "api")
        report = self._reports.get(ns, period.id)
        assert report is not None
        return report, True

    def _channels_of(self, ns: str, s: Schedule | None) -> tuple[Channel, ...]:
        return s.channels if s is not None else (Channel("email", to=OWNERS),)

    def _start(self, ns: str, period: Period, trigger: str) -> str:
        now = self._clock.now()
        report = Report(ns, period.id, period, "gathered", trigger, now)
        created = self._reports.create(replace(report, status="gathered"))
        existing = None if created else self._reports.get(ns, period.id)
        attempt = 1
        if existing is not None and existing.status == "failed":
            attempt = int((existing.summary or {}).get("attempt", 1)) + 1
            self._reports.update(replace(existing, status="gathered", summary={"attempt": attempt}))
        name = execution_name(ns, period.id, attempt)
        payload = {"namespace": ns, "report_id": period.id, "period": _period_json(period), "trigger": trigger}
        try:
            self._workflows.start(REPORTS_MACHINE, name, payload)
        except ConflictError:
            pass  # started already: the schedule fired twice, or the API and the schedule met
        except Exception:
            stored = self._reports.get(ns, period.id)
            if stored is not None and stored.status == "gathered":  # never started: may be sent again
                self._reports.update(replace(stored, status="failed", summary={"attempt": attempt}))
            raise
        return name

    # ------------------------------------------------------------------ the workflow's steps

    def gather(self, ns: str, report_id: str, period_json: dict[str, Any]) -> dict[str, Any]:
        """Gather: the figures (kept as JSON with the report). A namespace deleted meanwhile is skipped."""
        namespace = self._namespaces.get(ns)
        report = self._reports.get(ns, report_id)
        if namespace is None or namespace.status not in ("active",) or report is None:
            if report is not None:
                self._reports.update(replace(report, status="skipped"))
            return {"namespace": ns, "report_id": report_id, "skip": True}
        period = _period_from(period_json)
        figures = self.figures(ns, namespace.plan, report_id, period)
        self._blobs.put(_key(ns, report_id, "figures.json"), json.dumps(figures.to_json()).encode(), "application/json")
        self._reports.update(replace(report, status="gathered", summary=_summary(figures, report.summary)))
        return {"namespace": ns, "report_id": report_id, "skip": False}

    def figures(self, ns: str, plan: str, report_id: str, period: Period) -> Figures:
        now = self._clock.now()
        series = self._usage.series(ns, start=period.ledger_from, end=period.ledger_to, granularity="hour")
        prev_period = period.previous()
        previous = self._usage.series(ns, start=prev_period.ledger_from, end=prev_period.ledger_to, granularity="hour")
        zone = ZoneInfo(period.timezone)
        meters = []
        for name, meter in self._catalog.meters.items():
            meters.append(
                MeterFigure(
                    name,
                    meter.display_name,
                    meter.unit,
                    meter.aggregation,
                    int(series.totals.get(name, 0)),
                    int(previous.totals.get(name, 0)),
                )
            )
        per_service: dict[str, dict[str, int]] = {}
        per_day: dict[str, dict[str, int]] = {}
        hourly = []
        for p in series.points:
            agg = self._catalog.meters[p.meter].aggregation
            svc = per_service.setdefault(p.service, {})
            svc[p.meter] = _combine(agg, svc.get(p.meter), p.quantity)
            day = p.start.astimezone(zone).date().isoformat()  # each UTC hour in the local day it starts in
            d = per_day.setdefault(day, {})
            d[p.meter] = _combine(agg, d.get(p.meter), p.quantity)
            hourly.append((p.start.strftime("%Y-%m-%dT%H:00Z"), p.meter, p.service, p.quantity))
        days = []
        cursor, last = period.start.date(), (period.end - timedelta(microseconds=1)).date()
        while cursor <= last:
            days.append((cursor.isoformat(), per_day.get(cursor.isoformat(), {})))
            cursor += timedelta(days=1)
        sum_meters = [m for m, meter in self._catalog.meters.items() if meter.aggregation == "sum"]
        billing_period = period_of(period.ledger_to - timedelta(microseconds=1))
        preview = self._rating.preview(ns, plan, min(now, period.ledger_to + timedelta(days=31)), billing_period)
        cost = {
            "period": billing_period,
            "currency": preview.rating.currency,
            "subtotal": preview.rating.subtotal,
            "usage": preview.rating.usage,
            "forecast_subtotal": preview.forecast.subtotal,
            "forecast_usage": preview.forecast.usage,
            "complete": now >= preview.period_end,
            "line_items": [
                {
                    "description": i.description,
                    "meter": i.meter,
                    "quantity": format_micros(i.quantity),
                    "amount": i.amount,
                }
                for i in preview.rating.line_items
            ],
        }
        budget = None
        try:
            status = self._budgets.get(ns)
            budget = {
                "monthly_limit": status.budget.monthly_limit,
                "spent": status.spent,
                "percent": status.percent,
                "state": status.state,
                "crossed": list(status.crossed),
                "hard_cap": status.budget.hard_cap,
                "period": status.period,
            }
        except NotFoundError:
            budget = None
        return Figures(
            namespace=ns,
            report_id=report_id,
            period=period,
            generated_at=now,
            plan=plan,
            meters=tuple(meters),
            services=top_services(per_service, sum_meters),
            days=tuple(days),
            cost=cost,
            budget=budget,
            dashboard_url=f"{self._dashboard_url}/namespaces/{ns}/usage",
            hourly=tuple(hourly),
        )

    def render(self, ns: str, report_id: str, renderer: RendererPort) -> dict[str, Any]:
        """Render: HTML, text, CSV, chart and Slack message, kept with the report."""
        raw = self._blobs.get(_key(ns, report_id, "figures.json"))
        if raw is None:
            raise NotFoundError("the report's figures are missing", {"report_id": report_id})
        r = renderer.render(Figures.from_json(json.loads(raw)))
        put = self._blobs.put
        put(_key(ns, report_id, "report.html"), r.html.encode(), "text/html; charset=utf-8")
        put(_key(ns, report_id, "report.txt"), r.text.encode(), "text/plain; charset=utf-8")
        put(_key(ns, report_id, "usage.csv"), r.csv.encode(), "text/csv; charset=utf-8")
        put(_key(ns, report_id, "chart.png"), r.png, "image/png")
        slack = {"text": r.slack_text, "blocks": r.slack_blocks, "subject": r.subject}
        put(_key(ns, report_id, "slack.json"), json.dumps(slack).encode(), "application/json")
        return {"namespace": ns, "report_id": report_id}

    def send(self, ns: str, report_id: str) -> dict[str, Any]:
        """Send: each channel delivered at most once (claimed per namespace, period and channel). Raises
        ``ReportSendRetryError`` while a channel surely failed and may be sent again (the state machine
        retries the step; channels sent already are not sent again)."""
        report = self._reports.get(ns, report_id)
        if report is None:
            raise NotFoundError("no such report", {"report_id": report_id})
        blob = self._blobs.get
        html = (blob(_key(ns, report_id, "report.html")) or b"").decode()
        text = (blob(_key(ns, report_id, "report.txt")) or b"").decode()
        csv = blob(_key(ns, report_id, "usage.csv")) or b""
        png = blob(_key(ns, report_id, "chart.png")) or b""
        slack = json.loads(blob(_key(ns, report_id, "slack.json")) or b"{}")
        recorded: list[dict[str, Any]] = []
        retry = False
        for channel in self._channels_of(ns, self._schedules.get(ns)):
            for target, note in self._targets(ns, channel):
                key = f"report:{ns}:{report_id}:{channel.id}" + (f":{_short(target)}" if channel.to == OWNERS else "")
                if target is None:
                    recorded.append(
                        {"channel": channel.id, "type": channel.type, "target": note, "status": "skipped", "key": None}
                    )
                    continue
                if channel.type == "email":
                    notification = Notification(
                        "email",
                        target,
                        slack.get("subject", f"Usage report: {ns}"),
                        text,
                        html=html,
                        attachments=(
                            Attachment("usage-chart.png", png, "image/png", content_id=CHART_CID),
                            Attachment(f"{ns}-{report_id}.csv", csv, "text/csv"),
                        ),
                        key=key,
                    )
                else:
                    notification = Notification(
                        "slack",
                        target,
                        slack.get("subject", ""),
                        slack.get("text", ""),
                        blocks=tuple(slack.get("blocks", [])),
                        key=key,
                    )
                d = self._delivery.deliver(ns, notification)
                retry = retry or d.retryable or d.status == "sending"
                recorded.append(
                    {"channel": channel.id, "type": channel.type, "target": d.target, "status": d.status, "key": key}
                )
        self._reports.update(replace(report, channels=tuple(recorded)))
        if retry:
            raise ReportSendRetryError(
                "a channel is not delivered yet; the step is retried (sent channels are not sent again)",
                {"report_id": report_id},
            )
        return {"namespace": ns, "report_id": report_id, "channels": recorded}

    def record(self, ns: str, report_id: str, failed: bool = False) -> dict[str, Any]:
        """Record: the report's final status from its channels' deliveries."""
        report = self._reports.get(ns, report_id)
        if report is None:
            return {"namespace": ns, "report_id": report_id, "status": "missing"}
        if report.status == "skipped":
            return {"namespace": ns, "report_id": report_id, "status": "skipped"}
        statuses = []
        channels = []
        for c in report.channels:
            d: Delivery | None = self._delivery.get(ns, c["key"]) if c.get("key") else None
            status = d.status if d is not None else c["status"]
            statuses.append(status)
            channels.append({**c, "status": status})
        if statuses and all(s == "sent" for s in statuses if s != "skipped") and "sent" in statuses:
            final: ReportStatus = "sent"
        elif "sent" in statuses:
            final = "partial"
        elif not [s for s in statuses if s != "skipped"] and not failed:
            final = "nothing_to_send"
        else:
            final = "failed"
        self._reports.update(replace(report, status=final, channels=tuple(channels)))
        return {"namespace": ns, "report_id": report_id, "status": final}

    # ------------------------------------------------------------------ reading

    def list(self, ns: str, limit: int = 50) -> list[Report]:
        return self._reports.list(ns, limit)

    def get(self, ns: str, report_id: str) -> Report:
        if not REPORT_ID.match(report_id):
            raise NotFoundError("no such report", {"report_id": report_id})
        report = self._reports.get(ns, report_id)
        if report is None:
            raise NotFoundError("no such report", {"report_id": report_id})
        return report

    def html(self, ns: str, report_id: str) -> str:
        """The rendered HTML, the chart inline as a data: URI (for the dashboard)."""
        import base64

        self.get(ns, report_id)
        html = self._blobs.get(_key(ns, report_id, "report.html"))
        if html is None:
            raise NotFoundError("the report is not rendered yet", {"report_id": report_id})
        png = self._blobs.get(_key(ns, report_id, "chart.png")) or b""
        data = "data:image/png;base64," + base64.b64encode(png).decode()
        return html.decode().replace(f"cid:{CHART_CID}", data)

    def csv(self, ns: str, report_id: str) -> str:
        return (self._blobs.get(_key(ns, report_id, "usage.csv")) or b"").decode()

    def _targets(self, ns: str, channel: Channel) -> builtins.list[tuple[str | None, str]]:
        """(target, what to show): an owners channel is one email per owner; an owner without an
        email address is skipped, and said so."""
        if channel.type == "slack":
            return [(channel.webhook_url, "slack")]
        if channel.to != OWNERS:
            return [(channel.to, channel.to or "")]
        out: builtins.list[tuple[str | None, str]] = []
        for login, email in self._owner_emails(ns):
            if email and valid_email(email):
                out.append((email, email))
            else:
                out.append((None, f"owner {login} has no email address on GitHub or the platform"))
        return out


class ReportSendRetryError(DependencyUnavailableError):
    """A report channel surely not delivered yet: the send step is retried."""


def execution_name(ns: str, report_id: str, attempt: int = 1) -> str:
    """Step Functions' names: at most 80 characters of [A-Za-z0-9_-]."""
    base = f"{ns}--{report_id}" + (f"--{attempt}" if attempt > 1 else "")
    if len(base) <= 80:
        return base
    digest = hashlib.sha256(base.encode()).hexdigest()[:24]
    return f"{ns[:50]}--{digest}"


def _key(ns: str, report_id: str, name: str) -> str:
    return f"reports/{ns}/{report_id}/{name}"


def _short(text: str | None) -> str:
    return hashlib.sha256((text or "").encode()).hexdigest()[:10]


def _combine(aggregation: str, current: int | None, value: int) -> int:
    if current is None:
        return value
    return max(current, value) if aggregation == "max" else current + value


def _period_json(p: Period) -> dict[str, Any]:
    return {
        "kind": p.kind,
        "timezone": p.timezone,
        "start": p.start.isoformat(),
        "end": p.end.isoformat(),
        "ledger_from": p.ledger_from.isoformat(),
        "ledger_to": p.ledger_to.isoformat(),
    }


def _period_from(d: dict[str, Any]) -> Period:
    return Period(
        d["kind"],
        d["timezone"],
        datetime.fromisoformat(d["start"]),
        datetime.fromisoformat(d["end"]),
        datetime.fromisoformat(d["ledger_from"]),
        datetime.fromisoformat(d["ledger_to"]),
    )


def _summary(f: Figures, old: dict[str, Any] | None) -> dict[str, Any]:
    return {
        **(old or {}),
        "totals": {m.meter: format_micros(m.quantity) for m in f.meters},
        "cost": {"period": f.cost["period"], "subtotal": f.cost["subtotal"], "currency": f.cost["currency"]},
        "nothing_ran": f.nothing_ran,
    }


def _invalid(field_name: str, message: str) -> ValidationError:
    return ValidationError(f"{field_name}: {message}", {"fields": [{"field": field_name, "message": message}]})
