"""Usage reports on the local cloud: a new namespace's default weekly schedule; ``POST .../reports/send``
delivering one email (the .eml kept: HTML with the inline chart, the text part, the CSV) and one Slack
post, once; the CSV's totals equal to ``GET .../usage`` for the same hours to the last decimal; the
hourly schedule firing twice over the next due hour delivering the scheduled report once."""

from __future__ import annotations

import csv
import email
import email.policy
import io
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from chalicelib.adapters.local_clock import FileOffsetClock
from localcloud import clock as clock_cli
from localcloud.cloud import LocalCloud
from tests.fixtures import start_platform
from tests.functional.test_accounts import login, wait_until

NS = "acme-backend"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory, env_restored: None) -> Iterator[LocalCloud]:
    from chalicelib.composition import set_container

    data = tmp_path_factory.mktemp("reports") / "local" / "data"
    c = start_platform(data, FileOffsetClock(data / "clock.json"))
    ada = login(c, "ada")
    team = {"github_org": "acme", "github_team": "backend", "region": "local", "plan": "team"}
    assert call(c, "POST", "/v1/namespaces", ada, team).status_code == 202
    arn = c.resources["state_machines"]["onboarding"].replace(":stateMachine:", ":execution:")
    assert c.wait_execution(f"{arn}:{NS}", timeout=90)["status"] == "SUCCEEDED"
    yield c
    c.stop()
    set_container(None)


def call(cloud: LocalCloud, method: str, path: str, token: str | None, body: Any = None, **params: Any) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.request(method, f"{cloud.api_url}{path}", json=body, headers=headers, params=params, timeout=60)


def mails(cloud: LocalCloud) -> list[email.message.EmailMessage]:
    folder = cloud.data_dir / "mail"  # type: ignore[operator]
    paths = sorted(folder.glob("*.eml")) if folder.is_dir() else []
    return [email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in paths]  # type: ignore[misc]


def wait_report(cloud: LocalCloud, token: str, report_id: str) -> dict[str, Any]:
    def done() -> Any:
        r = call(cloud, "GET", f"/v1/namespaces/{NS}/reports", token).json()["reports"]
        found = [x for x in r if x["id"] == report_id and x["status"] not in ("gathered", "rendered")]
        return found[0] if found else None

    return wait_until(done, timeout=90, what=f"report {report_id}")  # type: ignore[no-any-return]


def ingest(cloud: LocalCloud, now: datetime) -> None:
    ops = login(cloud, "ops")
    token = call(cloud, "POST", "/v1/regions/local/ingest-tokens", ops, {"name": "r"}).json()["token"]
    events = []
    for day in range(1, 12):
        at = (now - timedelta(days=day)).replace(minute=30, second=0, microsecond=0).isoformat()
        for svc, requests_, hours in (("hello", 1000 + day, "1.5"), ("api", 250 * day, "0.333333")):
            events.append(
                {
                    "id": f"r-{day}-{svc}",
                    "namespace": NS,
                    "meter": "requests",
                    "value": requests_,
                    "timestamp": at,
                    "service": svc,
                }
            )
            events.append(
                {
                    "id": f"h-{day}-{svc}",
                    "namespace": NS,
                    "meter": "service_hours",
                    "value": float(hours),
                    "timestamp": at,
                    "service": svc,
                }
            )
    r = requests.post(
        f"{cloud.api_url}/v1/usage/events",
        json={"events": events},
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )
    assert r.status_code == 200 and r.json()["accepted"] == len(events), r.text


def test_a_new_namespace_gets_a_weekly_report_to_its_owners(cloud: LocalCloud) -> None:
    s = call(cloud, "GET", f"/v1/namespaces/{NS}/reports/schedule", login(cloud, "ada")).json()
    assert s["frequency"] == "weekly" and s["weekday"] == "monday" and s["hour"] == 9 and s["enabled"]
    assert [c["to"] for c in s["channels"]] == ["owners"] and s["next_due"]
    assert call(cloud, "GET", f"/v1/namespaces/{NS}/reports/schedule", login(cloud, "grace")).status_code == 403


def test_bad_schedules_name_their_field_and_change_nothing(cloud: LocalCloud) -> None:
    ada = login(cloud, "ada")
    before = call(cloud, "GET", f"/v1/namespaces/{NS}/reports/schedule", ada).json()
    base = {
        "frequency": "daily",
        "timezone": "Europe/Berlin",
        "hour": 9,
        "channels": [{"type": "email", "to": "owners"}],
    }
    for change, field in (
        ({"timezone": "Europe/Atlantis"}, "timezone"),
        ({"hour": 24}, "hour"),
        ({"channels": [{"type": "email", "to": "not an address"}]}, "channels.0.to"),
        ({"channels": [{"type": "slack", "webhook_url": "http://10.0.0.1/hook"}]}, "channels.0.webhook_url"),
        ({"channels": [{"type": "pager", "to": "x"}]}, "channels.0"),
    ):
        r = call(cloud, "PUT", f"/v1/namespaces/{NS}/reports/schedule", ada, {**base, **change})
        assert r.status_code == 422, r.text
        fields = [f["field"] for f in r.json()["error"]["details"]["fields"]]
        assert any(f.startswith(field) for f in fields), (field, fields)
    assert call(cloud, "GET", f"/v1/namespaces/{NS}/reports/schedule", ada).json() == before


def test_send_now_delivers_an_email_and_a_slack_post_once_and_the_csv_sums_to_the_usage_api(cloud: LocalCloud) -> None:
    ada = login(cloud, "ada")
    now = cloud.clock.now()
    ingest(cloud, now)
    hook = cloud.slack.webhook_url("reports")  # type: ignore[union-attr]
    schedule = {
        "frequency": "weekly",
        "timezone": "Europe/Berlin",
        "hour": 9,
        "weekday": "monday",
        "channels": [{"type": "email", "to": "owners"}, {"type": "slack", "webhook_url": hook}],
    }
    r = call(cloud, "PUT", f"/v1/namespaces/{NS}/reports/schedule", ada, schedule)
    assert r.status_code == 200, r.text
    assert r.json()["channels"][1]["webhook_url"].endswith("/***") and "reports" not in r.text

    sent = call(cloud, "POST", f"/v1/namespaces/{NS}/reports/send", ada, {})
    assert sent.status_code == 202, sent.text
    report = wait_report(cloud, ada, sent.json()["id"])
    assert report["status"] == "sent", report
    assert sorted(c["type"] for c in report["channels"]) == ["email", "slack"]

    [mail] = mails(cloud)
    assert mail["To"] == "ada@acme.example" and "acme-backend" in mail["Subject"]
    assert mail.get_body(("plain",)).get_content().startswith("Weekly usage report: acme-backend")  # type: ignore[union-attr]
    html = mail.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert 'src="cid:usage-chart@platform"' in html and "Top services" in html
    parts = {p.get_content_type(): p for p in mail.walk()}
    assert parts["image/png"].get_content()[:8] == b"\x89PNG\r\n\x1a\n"
    attachment = next(p for p in mail.iter_attachments() if p.get_content_type() == "text/csv")
    rows = list(csv.DictReader(io.StringIO(attachment.get_content())))
    totals = {r["meter"]: r["quantity"] for r in rows if r["kind"] == "total"}
    usage = call(
        cloud,
        "GET",
        f"/v1/namespaces/{NS}/usage",
        ada,
        **{"from": report["period"]["usage_from"], "to": report["period"]["usage_to"]},
    ).json()
    assert totals == {t["meter"]: t["quantity"] for t in usage["totals"]}
    assert totals["requests"] != "0" and "." in totals["service_hours"]
    [post] = cloud.slack.received(hook)  # type: ignore[union-attr]
    assert post["body"]["blocks"][0]["type"] == "header"

    # again: the same period is sent at most once
    again = call(cloud, "POST", f"/v1/namespaces/{NS}/reports/send", ada, {})
    assert again.status_code == 200 and again.json()["id"] == report["id"]
    time.sleep(1)
    assert len(mails(cloud)) == 1 and len(cloud.slack.received(hook)) == 1  # type: ignore[union-attr]
    page = call(cloud, "GET", f"/v1/namespaces/{NS}/reports/{report['id']}", login(cloud, "grace"))
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "data:image/png;base64," in page.text
    # opened by the dashboard in a tab of its own, as a sandboxed document: no script of it runs
    policy = page.headers["Content-Security-Policy"]
    assert policy.startswith("sandbox;") and "default-src 'none'" in policy and "script-src" not in policy


def test_the_schedule_firing_twice_over_its_due_hour_sends_once(cloud: LocalCloud) -> None:
    ada = login(cloud, "ada")
    hook = cloud.slack.webhook_url("reports")  # type: ignore[union-attr]
    due = datetime.fromisoformat(call(cloud, "GET", f"/v1/namespaces/{NS}/reports/schedule", ada).json()["next_due"])
    before_mail, before_posts = len(mails(cloud)), len(cloud.slack.received(hook))  # type: ignore[union-attr]
    # python -m localcloud.clock advance ...: to a quarter past the due hour
    clock_cli.write_offset(cloud.clock_file, due + timedelta(minutes=15, seconds=1) - datetime.now(UTC))
    schedule = next(s for s in cloud.decl.list("schedules") if s["name"] == "reports-hourly")
    fanout = cloud.resources["state_machines"]["reports-fanout"].replace(":stateMachine:", ":execution:")
    for minute in (15, 16):  # the same hour fired twice (a retry, a clock jump)
        at = due.replace(minute=minute)
        cloud.fire_schedule(schedule, at)
        assert cloud.wait_execution(f"{fanout}:reports-hourly-{at:%Y%m%dT%H%M%SZ}", 60)["status"] == "SUCCEEDED"
    wait_until(lambda: len(mails(cloud)) > before_mail, timeout=90, what="the scheduled email")
    time.sleep(3)
    assert len(mails(cloud)) == before_mail + 1
    assert len(cloud.slack.received(hook)) == before_posts + 1  # type: ignore[union-attr]
    later = call(cloud, "GET", f"/v1/namespaces/{NS}/reports/schedule", ada).json()
    assert datetime.fromisoformat(later["next_due"]) == due + timedelta(days=7)
    reports = call(cloud, "GET", f"/v1/namespaces/{NS}/reports", ada).json()["reports"]
    assert [r["trigger"] for r in reports if r["status"] == "sent"].count("schedule") == 1


def test_the_cli_shows_schedules_and_reports_and_the_csv_sums_to_platform_usage(
    cloud: LocalCloud, tmp_path: Any
) -> None:
    from tests.functional.test_billing import platform_cli

    run = platform_cli(cloud, login(cloud, "ada"))
    code, out, err = run("reports", "schedule")
    assert code == 0 and "weekly on monday at 09:00 Europe/Berlin" in out, err
    code, out, err = run("reports", "list")
    assert code == 0 and "2026-" in out and "sent" in out, err
    report_id = out.splitlines()[2].split()[0]
    code, out, _ = run("reports", "show", report_id)
    assert code == 0 and "usage hours (UTC)" in out
    code, csv_text, _ = run("reports", "show", report_id, "--csv")
    totals = {r["meter"]: r["quantity"] for r in csv.DictReader(io.StringIO(csv_text)) if r["kind"] == "total"}
    code, out, _ = run("--output", "json", "reports", "show", report_id)
    period = json.loads(out)["period"]
    code, out, _ = run("--output", "json", "usage", "--from", period["usage_from"], "--to", period["usage_to"])
    assert code == 0 and totals == {t["meter"]: t["quantity"] for t in json.loads(out)["totals"]}  # platform usage
    code, _, _ = run("reports", "show", report_id, "--html", str(tmp_path / "r.html"))
    assert code == 0 and "data:image/png;base64," in (tmp_path / "r.html").read_text()
    code, out, err = run("reports", "schedule", "--timezone", "Mars/Base", "--owners")
    assert code == 2 and "timezone" in err
    code, out, err = run("reports", "schedule", "--hour", "7", "--owners", "--off")
    assert code == 0 and "07:00" in out and "turned off" in out, err
    code, _, err = run("reports", "show", "2020-01-01-weekly")
    assert code == 6, err
