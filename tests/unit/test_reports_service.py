"""The report service on in-process moto (the table, S3) with recording fakes for the queue and the
workflow starter and scripted notifiers: a retried send step delivers each channel once; an email
that failed is sent again on the retry, once; a namespace with no usage gets a "nothing ran" report;
a namespace deleted between the fan-out and the render is skipped; the due index is paged hour by
hour (no Scan) and a due hour taken twice starts one report."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.domain.errors import ConflictError, DependencyUnavailableError
from chalicelib.domain.metering import MICROS, UsageEvent
from chalicelib.domain.model import Member, Namespace
from tests.unit.test_delivery import ScriptedNotifier

NS = "acme-backend"
NOW = datetime(2026, 11, 30, 9, 20, tzinfo=UTC)  # a Monday, 10:20 in Berlin


class Queue:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def send(self, queue: str, body: dict[str, Any], *, dedup_id: str | None = None) -> str:
        self.sent.append((queue, body))
        return "m"

    def send_batch(self, queue: str, bodies: Any) -> None:
        self.sent.extend((queue, b) for b in bodies)


class Workflows:
    def __init__(self) -> None:
        self.started: dict[str, dict[str, Any]] = {}

    def start(self, machine: str, name: str, payload: dict[str, Any]) -> str:
        if name in self.started:
            raise ConflictError("exists", {"name": name})
        self.started[name] = payload
        return name

    def status(self, machine: str, name: str) -> str | None:
        return "SUCCEEDED" if name in self.started else None


@pytest.fixture
def world(container: Any, clock: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    import boto3

    from chalicelib.adapters.aws.blobs import S3Blobs
    from chalicelib.adapters.dynamodb.deliveries import DynamoDeliveryLog
    from chalicelib.adapters.dynamodb.reports import DynamoReportStore, DynamoScheduleStore
    from chalicelib.adapters.notify.outbound import OutboundPolicy
    from chalicelib.adapters.notify.slack import SlackWebhookNotifier
    from chalicelib.domain.services.delivery import DeliveryService
    from chalicelib.domain.services.reports import ReportService

    monkeypatch.setenv("PLATFORM_BUCKET_REPORTS_NAME", "reports-test")
    boto3.client("s3").create_bucket(Bucket="reports-test")
    clock.set(NOW)
    s = container.stores
    s.namespaces.create(Namespace(NS, "acme", 1, "backend", 2, "local", "team", "active", NOW, "user:ada"), [])
    s.members.apply(NS, [Member(NS, 1, "ada", "owner", "team"), Member(NS, 3, "grace", "member", "team")], [], [])

    class World:
        def __init__(self) -> None:
            self.email, self.slack = ScriptedNotifier(), ScriptedNotifier()
            self.queue, self.workflows = Queue(), Workflows()
            delivery = DeliveryService(DynamoDeliveryLog(), {"email": self.email, "slack": self.slack}, clock)
            self.service = ReportService(
                DynamoScheduleStore(lambda p, ns: "enc:" + p, lambda c, ns: c.removeprefix("enc:")),
                DynamoReportStore(),
                S3Blobs("reports"),
                container.usage,
                container.rating,
                container.budgets,
                container.catalog,
                s.namespaces,
                lambda ns: [("ada", "ada@acme.example"), ("bob", None)],
                delivery,
                self.queue,
                self.workflows,
                clock,
                dashboard_url="https://app.example.com",
                encrypt=lambda p, ns: p,
                decrypt=lambda c, ns: c,
                check_webhook=SlackWebhookNotifier(OutboundPolicy.local()).check,
            )

        def use(self, service: str, meter: str, value: str, at: datetime) -> None:
            from decimal import Decimal

            micros = int(Decimal(value) * MICROS)
            event = UsageEvent(f"e-{service}-{meter}-{at.isoformat()}", NS, meter, micros, at, service)
            container.usage_ledger.record([event], clock.now())

        def run(self, name: str) -> dict[str, Any]:
            """The workflow's steps as the state machine runs them (Retry on the send step)."""
            from chalicelib.adapters.render.report import ReportRenderer

            p = self.workflows.started[name]
            gathered = self.service.gather(p["namespace"], p["report_id"], p["period"])
            if gathered["skip"]:
                return self.service.record(p["namespace"], p["report_id"])
            self.service.render(p["namespace"], p["report_id"], ReportRenderer())
            for _ in range(5):
                try:
                    self.service.send(p["namespace"], p["report_id"])
                    break
                except DependencyUnavailableError:
                    continue
            return self.service.record(p["namespace"], p["report_id"])

    w = World()
    w.service.set_schedule(
        NS,
        {
            "frequency": "weekly",
            "timezone": "Europe/Berlin",
            "hour": 9,
            "weekday": "monday",
            "channels": [
                {"type": "email", "to": "owners"},
                {"type": "slack", "webhook_url": "http://127.0.0.1:9/services/T/B/X"},
            ],
        },
        "user:ada",
    )
    return w


def test_a_retried_send_step_delivers_each_channel_once_and_a_failed_email_is_resent_once(world: Any) -> None:
    world.use("hello", "requests", "120", NOW - timedelta(days=3))
    world.email.script = [DependencyUnavailableError("throttled", {"provider_error": "TooManyRequestsException"})]
    report, started = world.service.send_now(NS)
    assert started and report.id == "2026-11-23-weekly"
    result = world.run(next(iter(world.workflows.started)))
    assert result["status"] == "sent"
    assert len(world.email.sent) == 1 and len(world.slack.sent) == 1  # the email's retry did not resend Slack
    world.service.send(NS, report.id)  # the step once more (a Lambda retried after it finished)
    assert len(world.email.sent) == 1 and len(world.slack.sent) == 1
    stored = world.service.get(NS, report.id)
    owners = [c for c in stored.channels if c["type"] == "email"]
    assert [c["status"] for c in owners] == ["sent", "skipped"] and "bob has no email" in owners[1]["target"]
    # the email: text, HTML with the inline chart, CSV
    n = world.email.sent[0]
    assert n.html and 'src="cid:usage-chart@platform"' in n.html and n.text.startswith("Weekly usage report")
    assert [a.mime_type for a in n.attachments] == ["image/png", "text/csv"]
    assert n.attachments[0].content[:4] == b"\x89PNG"


def test_sending_the_same_period_again_starts_nothing_and_a_due_hour_taken_twice_starts_one_report(
    world: Any, clock: Any
) -> None:
    world.service.send_now(NS)
    _, started = world.service.send_now(NS)
    assert not started and len(world.workflows.started) == 1
    due = world.service.schedule(NS).next_due
    assert due == datetime(2026, 12, 7, 8, tzinfo=UTC)  # Monday 09:00 in Berlin (CET)
    clock.set(due + timedelta(minutes=15))
    page = world.service.fan_out_page(clock.now())
    while page["more"]:
        page = world.service.fan_out_page(clock.now(), page["hour"], page["cursor"], page["sent"])
    messages = [b for q, b in world.queue.sent if q == "reports"]
    assert messages == [{"namespace": NS, "due": due.isoformat()}]
    first = world.service.start_due(NS, due)
    second = world.service.start_due(NS, due)  # the same message delivered twice
    assert first is not None and second is None
    assert world.service.schedule(NS).next_due == due + timedelta(days=7)
    assert world.workflows.started[first]["report_id"] == "2026-11-30-weekly"


def test_the_fan_out_pages_each_hour_since_its_cursor_and_only_the_due_hour(world: Any, clock: Any) -> None:
    from chalicelib.adapters.dynamodb.reports import DynamoScheduleStore

    store = DynamoScheduleStore(lambda p, ns: p, lambda c, ns: c)
    due = world.service.schedule(NS).next_due
    for i in range(5):  # other namespaces due in other hours, or in the same
        ns = f"team-{i}"
        s = world.service.schedule(NS)
        from dataclasses import replace

        store.put(replace(s, namespace=ns, next_due=due + timedelta(hours=i % 2)))
    clock.set(due + timedelta(hours=1, minutes=15))
    page = {"more": True, "hour": None, "cursor": None, "sent": 0}
    pages = 0
    while page["more"]:
        page = world.service.fan_out_page(clock.now(), page["hour"], page["cursor"], page["sent"])
        pages += 1
    sent = sorted((b["due"], b["namespace"]) for q, b in world.queue.sent if q == "reports")
    assert [n for d, n in sent if d == due.isoformat()] == [NS, "team-0", "team-2", "team-4"]
    assert [n for d, n in sent if d == (due + timedelta(hours=1)).isoformat()] == ["team-1", "team-3"]
    world.queue.sent.clear()
    world.service.fan_out_page(clock.now())  # run again in the same hour: the cursor says it is done
    assert world.queue.sent == []


def test_a_namespace_with_no_usage_gets_a_short_nothing_ran_report(world: Any) -> None:
    world.service.send_now(NS)
    assert world.run(next(iter(world.workflows.started)))["status"] == "sent"
    n = world.email.sent[0]
    assert "Nothing ran in this period" in n.text and "Nothing ran" in (n.html or "")
    assert "Nothing ran" in str(world.slack.sent[0].blocks)


def test_a_namespace_deleted_between_the_fan_out_and_the_render_is_skipped(world: Any, container: Any) -> None:
    world.service.send_now(NS)
    container.stores.namespaces.update(NS, {"status": "deleting", "status_at": NOW})
    assert world.run(next(iter(world.workflows.started)))["status"] == "skipped"
    assert world.email.sent == [] and world.slack.sent == []


def test_the_csv_totals_are_the_usage_apis_totals_for_the_reports_hours(world: Any, container: Any) -> None:
    import csv
    import io

    for day in range(1, 9):
        at = NOW - timedelta(days=day, hours=3)
        world.use("hello", "requests", "1000.5", at)
        world.use("api", "service_hours", "0.333333", at)
    report, _ = world.service.send_now(NS)
    world.run(next(iter(world.workflows.started)))
    rows = list(csv.DictReader(io.StringIO(world.service.csv(NS, report.id))))
    series = container.usage.series(NS, start=report.period.ledger_from, end=report.period.ledger_to)
    from chalicelib.domain.metering import format_micros

    assert {r["meter"]: r["quantity"] for r in rows if r["kind"] == "total"} == {
        m: format_micros(q) for m, q in series.totals.items()
    }
    from decimal import Decimal

    hours = [Decimal(r["quantity"]) for r in rows if r["kind"] == "hour" and r["meter"] == "requests"]
    assert sum(hours) * MICROS == series.totals["requests"]


def test_the_rendered_email_is_readable_with_images_off(world: Any) -> None:
    from chalicelib.adapters.notify.ses import compose

    world.use("hello", "requests", "5", NOW - timedelta(days=2))
    world.use("api", "requests", "3", NOW - timedelta(days=2))
    world.service.send_now(NS)
    world.run(next(iter(world.workflows.started)))
    raw = compose("no-reply@platform.local", world.email.sent[0]).as_bytes()
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "<img" in html and 'alt="Daily usage chart: ' in html and "<script" not in html
    assert "stylesheet" not in html and "style=" in html  # inline CSS only
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Requests: 8 request" in text
    lines = text.splitlines()  # each service and the cost heading on a line of its own
    assert "- hello: Service hours 0, Requests 5" in lines and "- api: Service hours 0, Requests 3" in lines
    assert any(line.startswith("Cost (") for line in lines)


def test_a_workflow_that_could_not_be_started_is_started_again(world: Any, clock: Any) -> None:
    def down(machine: str, name: str, payload: dict[str, Any]) -> str:
        raise DependencyUnavailableError("Step Functions is down")

    start = world.workflows.start
    world.workflows.start = down
    with pytest.raises(DependencyUnavailableError):
        world.service.send_now(NS)
    due = world.service.schedule(NS).next_due
    with pytest.raises(DependencyUnavailableError):
        world.service.start_due(NS, due)  # the queue's message fails: redelivered later
    assert world.service.schedule(NS).next_due == due  # not taken
    world.workflows.start = start
    _, started = world.service.send_now(NS)
    assert started and world.workflows.started
    assert world.service.start_due(NS, due) is not None and world.service.schedule(NS).next_due > due


def test_the_api_and_the_other_steps_never_import_the_renderers_libraries() -> None:
    """Jinja2 and matplotlib (with numpy and Pillow) are the render step's alone: the API's cold start,
    the fan-out, the consumer and the other steps never pay for them."""
    import subprocess
    import sys

    modules = ("jinja2", "matplotlib", "numpy", "PIL")
    probe = (
        "import sys, app, functions.reports.handler, functions.onboarding.handler\n"
        "import chalicelib.api.reports, chalicelib.domain.services.reports, chalicelib.adapters.notify.ses\n"
        "import chalicelib.adapters.notify.slack, chalicelib.adapters.dynamodb.reports\n"
        f"print(','.join(m for m in {modules!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "", f"imported outside the render step: {out.stdout.strip()}"
