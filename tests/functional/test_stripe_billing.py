"""Billing through Stripe on the local cloud, against its Stripe stand-in (a real HTTP server speaking
Stripe's API, which the stripe library talks to): onboarding makes a customer and a subscription;
the ledger's usage reaches Stripe once, however often the metering run repeats or crashes; Stripe's
invoice equals the ledger's rating to the cent; 429 and 500 are retried and a 400 is recorded with its
reason; signed webhooks are verified, deduplicated and applied in order; a failed payment puts
``billing.payment_failed`` on the bus and the namespace keeps running; reconciliation finds a meter
event lost at Stripe and ``fix`` restores it; plan changes, invoices and the portal."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from chalicelib.domain.clock import SystemClock
from chalicelib.domain.metering import MICROS, hour_key, hour_of
from localcloud.cloud import LocalCloud
from tests.fixtures import start_platform
from tests.functional.test_accounts import login, wait_until
from tests.functional.test_billing import call, on_the_bus

NS = "acme-backend"


def container() -> Any:
    from chalicelib.composition import get_container

    return get_container()


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory, env_restored: None) -> Iterator[LocalCloud]:
    from chalicelib.composition import set_container

    c = start_platform(tmp_path_factory.mktemp("stripe"), SystemClock())
    ada = login(c, "ada")
    team = {"github_org": "acme", "github_team": "backend", "region": "local", "plan": "team"}
    r = call(c, "POST", "/v1/namespaces", ada, team)
    assert r.status_code == 202, r.text
    arn = c.resources["state_machines"]["onboarding"].replace(":stateMachine:", ":execution:")
    assert c.wait_execution(f"{arn}:{NS}", timeout=90)["status"] == "SUCCEEDED"
    yield c
    c.stop()
    set_container(None)


@pytest.fixture(scope="module")
def tokens(cloud: LocalCloud) -> dict[str, str]:
    return {who: login(cloud, who) for who in ("ada", "ops", "grace")}


@pytest.fixture(scope="module")
def ingest(cloud: LocalCloud, tokens: dict[str, str]) -> Any:
    token = call(cloud, "POST", "/v1/regions/local/ingest-tokens", tokens["ops"], {"name": "stripe-tests"}).json()[
        "token"
    ]

    def send(*events: dict[str, Any]) -> dict[str, Any]:
        r = requests.post(
            f"{cloud.api_url}/v1/usage/events",
            json={"events": list(events)},
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        )
        assert r.status_code == 200, r.text
        return dict(r.json())

    return send


def bus_watcher(cloud: LocalCloud) -> str:
    """A rule on the platform's bus sending every billing.* and invoice.* event to a queue of the test's own."""
    sqs, events = cloud.client("sqs"), cloud.client("events")
    url = sqs.create_queue(QueueName="stripe-watch")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    bus = cloud.resources["bus"]["name"]
    pattern = {"source": ["platform"], "detail-type": [{"prefix": "billing."}, {"prefix": "invoice."}]}
    events.put_rule(Name="stripe-watch", EventBusName=bus, EventPattern=json.dumps(pattern))
    events.put_targets(Rule="stripe-watch", EventBusName=bus, Targets=[{"Id": "q", "Arn": arn}])
    return str(url)


def customer_of(ns: str = NS) -> str:
    customer = container().stores.namespaces.get(ns).customer_id
    assert customer
    return str(customer)


def close(ns: str = NS) -> Any:
    """The hourly run's per-namespace step, up to the hour that just ended (what the queue consumer does)."""
    c = container()
    return c.metering_run.close_namespace(ns, hour_of(c.clock.now()) - timedelta(hours=1))


def received(cloud: LocalCloud, ns: str = NS) -> dict[str, dict[str, Any]]:
    """The meter events the Stripe stand-in holds for the namespace's customer, by identifier."""
    return {e["identifier"]: e for e in cloud.stripe.meter_events(customer_of(ns))}


def now_hour() -> datetime:
    return hour_of(datetime.now(UTC))


# --------------------------------------------------------------------------- onboarding


def test_onboarding_made_a_customer_and_a_subscription_to_the_plans_prices(cloud: LocalCloud) -> None:
    ns = container().stores.namespaces.get(NS)
    state = requests.get(f"{cloud.stripe.url}/_stand-in/state", timeout=10).json()
    [customer] = [c for c in state["customers"] if c["id"] == ns.customer_id]
    assert customer["metadata"] == {"namespace": NS} and customer["name"] == NS
    [sub] = [s for s in state["subscriptions"] if s["id"] == ns.subscription_id]
    assert sub["status"] == "active" and sub["customer"] == customer["id"]
    lookup = sorted(item["price"]["lookup_key"].split(":")[2] for item in sub["items"]["data"])
    assert lookup == ["base", "requests", "seats", "service_hours"]
    assert all(item["price"]["lookup_key"].startswith("maas:team:") for item in sub["items"]["data"])
    # usage counts from the namespace's first hour; periods are calendar months (UTC)
    assert sub["start_date"] == int(hour_of(ns.created_at).timestamp())
    anchor = datetime.fromtimestamp(sub["billing_cycle_anchor"], UTC)
    assert (anchor.day, anchor.hour, anchor.minute) == (1, 0, 0) and anchor > datetime.now(UTC)
    # the meters and prices were made once, at the local cloud's start
    assert sorted(m["event_name"] for m in state["meters"]) == ["requests", "seats", "service_hours"]
    assert len(state["prices"]) == 12


# --------------------------------------------------------------------------- usage reaches Stripe once


def test_usage_reaches_stripe_once_even_with_the_run_repeated_and_stripe_s_preview_equals_the_ledger(
    cloud: LocalCloud, tokens: dict[str, str], ingest: Any
) -> None:
    at = {"namespace": NS, "timestamp": (datetime.now(UTC) - timedelta(seconds=5)).isoformat(), "service": "hello"}
    ingest(
        {"id": "once-req-1", "meter": "requests", "value": 12_500_000, **at},
        {"id": "once-sh-1", "meter": "service_hours", "value": 1100.5, **at},
    )
    first = close()
    assert first.reported and not first.refused, first.as_dict()
    sent = received(cloud)
    for _ in range(2):  # a redelivered message, a second execution: nothing more reaches Stripe
        again = close()
        assert again.reported == [] and received(cloud) == sent
    ledger = container().usage_ledger
    buckets = ledger.buckets(NS, hour_key(now_hour() - timedelta(days=1)), hour_key(now_hour() + timedelta(hours=1)))
    for meter in ("requests", "service_hours"):
        mine = [b for b in buckets if b.meter == meter]
        assert all(b.reported == b.total and b.pending is None for b in mine)
        assert sum(int(e["value"]) for e in sent.values() if e["event_name"] == meter) == sum(b.total for b in mine)

    billing = call(cloud, "GET", f"/v1/namespaces/{NS}/billing", tokens["ada"]).json()
    provider = billing["provider"]
    assert provider["unavailable"] is None
    assert provider["subscription"]["status"] == "active"  # as Stripe's webhooks told the platform
    invoice = provider["invoice"]
    # Stripe's preview of the invoice that closes the period: this month's usage (in arrears) and the
    # next month's base price (in advance): the ledger's subtotal, to the cent
    assert invoice["total"] == billing["subtotal"] and provider["difference"] == 0, (invoice, billing["line_items"])
    usage_lines = {line["meter"]: line for line in invoice["lines"] if line["kind"] == "usage"}
    for item in billing["line_items"]:
        if item["kind"] == "usage":
            assert usage_lines[item["meter"]]["amount"] == item["amount"]
            assert usage_lines[item["meter"]]["quantity"] == item["quantity"]


def test_a_crash_between_stripe_accepting_an_event_and_the_ledger_recording_it_is_repaired_once(
    cloud: LocalCloud, ingest: Any
) -> None:
    from chalicelib.domain.ports import MeterEvent
    from chalicelib.domain.services.metering_run import report_identifier

    c = container()
    at = datetime.now(UTC) - timedelta(seconds=3)
    ingest(
        {
            "id": "crash-req-1",
            "meter": "requests",
            "value": 777,
            "namespace": NS,
            "timestamp": at.isoformat(),
            "service": "crashy",
        }
    )
    [bucket] = [b for b in c.usage_ledger.unreported(NS) if b.service == "crashy"]
    # the run wrote its intent and Stripe accepted the event; then the process died before recording it
    identifier = report_identifier(NS, "requests", bucket.hour, "crashy", bucket.reports + 1)
    pending = c.usage_ledger.begin_report(bucket, bucket.total - bucket.reported, identifier, c.clock.now())
    assert pending is not None
    c.billing.report_meter_event(MeterEvent(identifier, "requests", customer_of(), pending.value, hour_of(at)))
    assert received(cloud)[identifier]["value"] == str(777 * MICROS)
    # the next run finds the intent, sends exactly that again (Stripe replays its first answer), records it
    result = close()
    assert identifier in result.reported
    events = [e for e in cloud.stripe.meter_events(customer_of()) if e["identifier"] == identifier]
    assert len(events) == 1 and events[0]["value"] == str(777 * MICROS)  # counted once at Stripe
    [after] = [
        b
        for b in c.usage_ledger.buckets(NS, bucket.hour, hour_key(hour_of(at) + timedelta(hours=1)))
        if b.service == "crashy"
    ]
    assert after.reported == after.total and after.pending is None and after.reports == 1
    replays = [
        r
        for r in cloud.stripe.received("/v1/billing/meter_events")
        if r["idempotency_key"] == f"meter-event-{identifier}"
    ]
    assert [r["replayed"] for r in replays] == [False, True]


def test_stripe_answering_429_and_500_is_retried_and_400_is_not_and_is_recorded_with_the_reason(
    cloud: LocalCloud, ingest: Any
) -> None:
    c = container()
    at = {"namespace": NS, "timestamp": (datetime.now(UTC) - timedelta(seconds=2)).isoformat()}
    ingest({"id": "retry-req-1", "meter": "requests", "value": 5, "service": "retry", **at})
    cloud.stripe.fail("/v1/billing/meter_events", 429)
    cloud.stripe.fail("/v1/billing/meter_events", 500)
    before = len(cloud.stripe.received("/v1/billing/meter_events"))
    result = close()
    [identifier] = [i for i in result.reported if ":retry:" in i]
    attempts = [
        r
        for r in cloud.stripe.received("/v1/billing/meter_events")[before:]
        if r["idempotency_key"] == f"meter-event-{identifier}"
    ]
    assert [r["status"] for r in attempts] == [429, 500, 200]  # one key for all three: acts once
    assert received(cloud)[identifier]["value"] == str(5 * MICROS)

    ingest({"id": "refused-req-1", "meter": "requests", "value": 9, "service": "refused", **at})
    cloud.stripe.fail(
        "/v1/billing/meter_events", 400, message="Invalid payload: the value is not allowed.", code="parameter_invalid"
    )
    before = len(cloud.stripe.received("/v1/billing/meter_events"))
    result = close()
    [refused] = result.refused
    assert ":refused:" in refused
    tries = [
        r
        for r in cloud.stripe.received("/v1/billing/meter_events")[before:]
        if r["idempotency_key"] == f"meter-event-{refused}"
    ]
    assert [r["status"] for r in tries] == [400]  # not retried
    [bucket] = [b for b in c.usage_ledger.unreported(NS) if b.service == "refused"]
    assert bucket.pending is None and bucket.reported == 0
    assert "the value is not allowed" in (bucket.refused or "") and "parameter_invalid" in (bucket.refused or "")
    assert refused not in received(cloud)
    # once Stripe takes it again, the next run reports it under the same identifier, and the reason goes
    again = close()
    assert refused in again.reported and received(cloud)[refused]["value"] == str(9 * MICROS)
    [done] = [
        b
        for b in c.usage_ledger.buckets(NS, bucket.hour, hour_key(now_hour() + timedelta(hours=1)))
        if b.service == "refused"
    ]
    assert done.refused is None and done.reported == done.total


def test_a_stripe_outage_leaves_the_intent_for_the_next_run(cloud: LocalCloud, ingest: Any) -> None:
    from chalicelib.domain.errors import DependencyUnavailableError

    c = container()
    at = {"namespace": NS, "timestamp": (datetime.now(UTC) - timedelta(seconds=2)).isoformat()}
    ingest({"id": "outage-req-1", "meter": "requests", "value": 4, "service": "outage", **at})
    retries = c.billing._retries
    cloud.stripe.fail("/v1/billing/meter_events", 503, count=retries + 1)
    with pytest.raises(DependencyUnavailableError):  # the queue message fails and comes back later
        close()
    [bucket] = [b for b in c.usage_ledger.unreported(NS) if b.service == "outage"]
    assert bucket.pending is not None and bucket.reported == 0
    result = close()
    assert bucket.pending.identifier in result.reported
    assert received(cloud)[bucket.pending.identifier]["value"] == str(4 * MICROS)


# --------------------------------------------------------------------------- Stripe's webhooks


def signed(cloud: LocalCloud, event: dict[str, Any], t: int | None = None) -> requests.Response:
    from localcloud.standins.stripe.webhooks import sign

    body = json.dumps(event).encode()
    return requests.post(
        f"{cloud.api_url}/v1/webhooks/stripe",
        data=body,
        headers={"Content-Type": "application/json", "Stripe-Signature": sign(cloud.stripe.webhook_secret, body, t)},
        timeout=30,
    )


def invoice_event(
    event_id: str, kind: str, created: int, status: str, attempt: int, invoice: str, customer: str
) -> dict[str, Any]:
    return {
        "id": event_id,
        "object": "event",
        "type": kind,
        "created": created,
        "livemode": False,
        "data": {
            "object": {
                "id": invoice,
                "object": "invoice",
                "customer": customer,
                "status": status,
                "attempt_count": attempt,
                "amount_due": 2000,
                "amount_paid": 2000 if status == "paid" else 0,
                "currency": "usd",
                "period_start": created - 86400,
                "period_end": created,
                "next_payment_attempt": None if status == "paid" else created + 3 * 86400,
            }
        },
    }


def test_a_signed_payment_failure_puts_billing_payment_failed_on_the_bus_and_the_namespace_keeps_running(
    cloud: LocalCloud, tokens: dict[str, str]
) -> None:
    watch = bus_watcher(cloud)
    r = requests.post(
        f"{cloud.stripe.url}/_stand-in/events",
        json={"type": "invoice.payment_failed", "customer": customer_of(), "amount_due": 1234},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    invoice = r.json()["id"]
    seen: list[dict[str, Any]] = []

    def failed() -> bool:
        seen.extend(on_the_bus(cloud, watch))
        return any(e["type"] == "billing.payment_failed" for e in seen)

    wait_until(failed, timeout=30, what="billing.payment_failed on the bus")
    [event] = [e for e in seen if e["type"] == "billing.payment_failed"]
    assert event["namespace"] == NS
    assert event["data"]["invoice_id"] == invoice and event["data"]["amount_due"] == 1234
    assert event["data"]["attempt_count"] == 1 and event["data"]["next_attempt_at"]
    # nothing is suspended: the namespace stays active and may deploy
    ns = call(cloud, "GET", f"/v1/namespaces/{NS}", tokens["ada"]).json()
    assert ns["status"] == "active"
    container().budgets.check_deploys(NS)  # raises PaymentRequiredError when deploys are suspended
    sub = wait_until(
        lambda: (lambda s: s if s and s.status == "past_due" else None)(container().billing_state.subscription(NS)),
        what="the subscription's past_due state",
    )
    billing = call(cloud, "GET", f"/v1/namespaces/{NS}/billing", tokens["ada"]).json()
    assert billing["provider"]["subscription"]["status"] == sub.status == "past_due"
    # Stripe delivering the same event again changes nothing and emits nothing
    delivered = [d for d in cloud.stripe.webhooks.deliveries if d["type"] == "invoice.payment_failed"]
    cloud.stripe.webhooks.resend(delivered[-1]["event"])
    wait_until(lambda: len(cloud.stripe.webhooks.deliveries) > len(delivered) + 2 or True)
    time.sleep(1.5)
    assert not [e for e in on_the_bus(cloud, watch) if e["type"] == "billing.payment_failed"]


def test_a_bad_signature_or_an_old_timestamp_answers_400_and_changes_nothing(cloud: LocalCloud) -> None:
    from localcloud.standins.stripe.webhooks import sign

    c = container()
    event = invoice_event("evt_badsig_1", "invoice.paid", int(time.time()), "paid", 1, "in_badsig", customer_of())
    body = json.dumps(event).encode()
    wrong = sign("whsec_not_the_endpoint_s_secret", body)
    old = sign(cloud.stripe.webhook_secret, body, int(time.time()) - 301)  # the library's tolerance: 300 s
    for header in (wrong, old, "", "t=abc,v1=zz"):
        r = requests.post(
            f"{cloud.api_url}/v1/webhooks/stripe",
            data=body,
            headers={"Content-Type": "application/json", "Stripe-Signature": header},
            timeout=30,
        )
        assert r.status_code == 400, (header, r.text)
        error = r.json()["error"]
        assert error["code"] == "invalid_signature" and error["details"]["header"] == "Stripe-Signature"
    assert c.stores.deliveries.status("stripe", "evt_badsig_1", c.clock.now()) is None
    assert all(i.invoice_id != "in_badsig" for i in c.billing_state.invoices(NS))
    # signed with the endpoint's secret, now: accepted
    assert signed(cloud, event).json()["status"] == "enqueued"


def test_replayed_and_reordered_webhooks_change_nothing_they_should_not(cloud: LocalCloud) -> None:
    # a customer of its own (mapped to a namespace of its own), so that no other test's events interleave
    c = container()
    ns, customer = "acme-ordering", "cus_ordering_test"
    c.stores.namespaces.set_billing_customer(ns, customer)
    watch = bus_watcher(cloud)
    on_the_bus(cloud, watch)
    t = int(time.time())
    paid = invoice_event("evt_order_paid", "invoice.paid", t + 10, "paid", 1, "in_order", customer)
    failed = invoice_event("evt_order_failed", "invoice.payment_failed", t, "open", 1, "in_order", customer)
    assert signed(cloud, paid).json()["status"] == "enqueued"
    wait_until(lambda: c.billing_state.invoices(ns), what="the paid invoice")
    # the older failure arrives after the payment: it changes nothing and emits nothing
    assert signed(cloud, failed).json()["status"] == "enqueued"
    assert signed(cloud, paid).json()["status"] == "duplicate"  # a replay of the same event id
    time.sleep(2)  # the consumer's turn
    [invoice] = c.billing_state.invoices(ns)
    assert invoice.status == "paid" and invoice.event_id == "evt_order_paid"
    assert [e["type"] for e in on_the_bus(cloud, watch) if e["namespace"] == ns] == ["invoice.paid"]
    # a second failed attempt after a first one is news: it is emitted once
    retry = invoice_event("evt_retry_1", "invoice.payment_failed", t, "open", 1, "in_retry", customer)
    second = invoice_event("evt_retry_2", "invoice.payment_failed", t + 5, "open", 2, "in_retry", customer)
    for event in (second, retry):  # out of order: the first attempt's event arrives last
        signed(cloud, event)
    time.sleep(2)
    emitted = [e for e in on_the_bus(cloud, watch) if e["namespace"] == ns]
    assert [(e["type"], e["data"]["attempt_count"]) for e in emitted] == [("billing.payment_failed", 2)]
    # the subscription: deleted (newer) and then an older update arrives: it stays canceled
    base = {"object": "event", "livemode": False}
    sub = {"id": "sub_ordering", "customer": customer}
    newer = {
        **base,
        "id": "evt_sub_deleted",
        "type": "customer.subscription.deleted",
        "created": t + 100,
        "data": {"object": {**sub, "status": "canceled", "cancel_at_period_end": False}},
    }
    older = {
        **base,
        "id": "evt_sub_updated",
        "type": "customer.subscription.updated",
        "created": t + 50,
        "data": {"object": {**sub, "status": "active", "cancel_at_period_end": True}},
    }
    signed(cloud, newer)
    wait_until(lambda: (s := c.billing_state.subscription(ns)) and s.status == "canceled", what="canceled")
    signed(cloud, older)
    time.sleep(2)
    state = c.billing_state.subscription(ns)
    assert state.status == "canceled" and state.event_id == "evt_sub_deleted"


def test_a_payload_that_is_not_a_stripe_event_answers_400_without_a_claim(cloud: LocalCloud) -> None:
    c = container()
    for event in ({"id": "evt_shape_1", "type": "invoice.paid", "created": 1, "data": {"object": {"id": 1}}}, ["x"]):
        body_id = event["id"] if isinstance(event, dict) else None
        r = signed(cloud, event)  # type: ignore[arg-type]
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_payload", r.text
        if body_id:
            assert c.stores.deliveries.status("stripe", body_id, c.clock.now()) is None
    ignored = signed(
        cloud, {"id": "evt_other_1", "object": "event", "type": "charge.refunded", "created": 1, "data": {"object": {}}}
    )
    assert ignored.status_code == 200 and ignored.json()["status"] == "ignored"


# --------------------------------------------------------------------------- reconciliation


def test_reconciliation_shows_no_difference_then_finds_a_lost_event_and_fix_restores_it(
    cloud: LocalCloud, tokens: dict[str, str], ingest: Any
) -> None:
    at = {"namespace": NS, "timestamp": (datetime.now(UTC) - timedelta(seconds=2)).isoformat(), "service": "recon"}
    ingest({"id": "recon-req-1", "meter": "requests", "value": 321, **at})
    close()
    path = f"/v1/namespaces/{NS}/billing/reconciliation"
    r = call(cloud, "GET", path, tokens["ada"])
    assert r.status_code == 200, r.text
    clean = r.json()
    assert clean["mismatches"] == [] and clean["rows"], clean
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    [row] = [x for x in clean["rows"] if x["meter"] == "requests" and x["day"] == today]
    assert row["difference"] == "0" and row["ledger"] == row["stripe"]

    # Stripe loses one of the events
    [lost] = [i for i in received(cloud) if ":requests:" in i and ":recon:" in i]
    assert requests.delete(f"{cloud.stripe.url}/_stand-in/meter_events/{lost}", timeout=10).status_code == 204
    found = call(cloud, "GET", path, tokens["ada"]).json()
    [mismatch] = found["mismatches"]
    assert (mismatch["meter"], mismatch["day"], mismatch["difference"]) == ("requests", today, "-321")

    fixed = call(cloud, "POST", path, tokens["ada"], {"fix": True}).json()
    [sent] = fixed["fixed"]
    assert (sent["meter"], sent["day"], sent["sent"]) == ("requests", today, "321")
    assert call(cloud, "GET", path, tokens["ada"]).json()["mismatches"] == []
    assert received(cloud)[sent["identifier"]]["value"] == str(321 * MICROS)
    # a second fix finds nothing missing and sends nothing
    assert call(cloud, "POST", path, tokens["ada"], {"fix": True}).json()["fixed"] == []
    # members see no money
    assert call(cloud, "GET", path, tokens["grace"]).status_code == 403


def test_the_daily_reconciliation_emits_one_mismatch_event_per_namespace_and_day(
    cloud: LocalCloud, ingest: Any
) -> None:
    from functions.billing.handler import reconcile

    c = container()
    yesterday = now_hour() - timedelta(days=1)
    at = {"namespace": NS, "timestamp": yesterday.isoformat(), "service": "daily"}
    ingest({"id": "daily-req-1", "meter": "requests", "value": 11, **at})
    close()
    watch = bus_watcher(cloud)
    on_the_bus(cloud, watch)
    [lost] = [i for i in received(cloud) if ":daily:" in i]
    requests.delete(f"{cloud.stripe.url}/_stand-in/meter_events/{lost}", timeout=10)
    message = {"Records": [{"messageId": "m1", "body": json.dumps({"namespace": NS})}]}
    assert reconcile(message, None) == {"batchItemFailures": []}
    assert reconcile(message, None) == {"batchItemFailures": []}  # the same day again: no second event
    events = [e for e in on_the_bus(cloud, watch) if e["type"] == "billing.reconciliation_mismatch"]
    assert len(events) == 1 and events[0]["namespace"] == NS
    [difference] = [d for d in events[0]["data"]["differences"] if d["meter"] == "requests"]
    assert difference["day"] == yesterday.strftime("%Y-%m-%d") and difference["difference"] == "-11"
    fixed = c.reconciliation.check(NS, fix=True)
    assert [f["meter"] for f in fixed.fixed] == ["requests"]
    assert not c.reconciliation.check(NS).mismatches


# --------------------------------------------------------------------------- invoices, the portal, plans

FRONTEND = "acme-frontend"


@pytest.fixture(scope="module")
def frontend(cloud: LocalCloud, tokens: dict[str, str]) -> str:
    """A second namespace, whose subscription these tests renew and move between plans."""
    team = {"github_org": "acme", "github_team": "frontend", "region": "local", "plan": "team"}
    r = call(cloud, "POST", "/v1/namespaces", tokens["ada"], team)
    assert r.status_code == 202, r.text
    arn = cloud.resources["state_machines"]["onboarding"].replace(":stateMachine:", ":execution:")
    assert cloud.wait_execution(f"{arn}:{FRONTEND}", timeout=90)["status"] == "SUCCEEDED"
    return FRONTEND


def test_stripe_s_invoice_for_the_period_equals_the_ledger_s_rating_to_the_cent(
    cloud: LocalCloud, tokens: dict[str, str], ingest: Any, frontend: str
) -> None:
    at = {"namespace": frontend, "timestamp": (datetime.now(UTC) - timedelta(seconds=2)).isoformat(), "service": "web"}
    # quantities that land between cents: 10,012,345 requests (0.00004 c above 10M: 0.4938 c), 1000.5 hours
    ingest(
        {"id": "inv-req-1", "meter": "requests", "value": 10_012_345, **at},
        {"id": "inv-sh-1", "meter": "service_hours", "value": 1000.5, **at},
    )
    close(frontend)
    rating = call(cloud, "GET", f"/v1/namespaces/{frontend}/billing", tokens["ada"]).json()
    # Stripe closes the period (the renewal a month end makes): usage in arrears, the next base in advance
    sub = container().stores.namespaces.get(frontend).subscription_id
    renewed = requests.post(f"{cloud.stripe.url}/_stand-in/subscriptions/{sub}/renew", timeout=10)
    assert renewed.status_code == 200, renewed.text
    answer = call(cloud, "GET", f"/v1/namespaces/{frontend}/invoices", tokens["ada"])
    assert answer.status_code == 200, answer.text
    cycle = [i for i in answer.json()["invoices"] if i["billing_reason"] == "subscription_cycle"]
    assert len(cycle) == 1
    [invoice] = cycle
    assert invoice["status"] == "paid" and invoice["ledger"] is not None
    assert invoice["total"] == rating["subtotal"] == invoice["ledger"]["subtotal"], (invoice, rating)
    by_meter = {line["meter"]: line for line in invoice["lines"] if line["kind"] == "usage"}
    for item in rating["line_items"]:
        if item["kind"] == "usage":
            assert by_meter[item["meter"]]["amount"] == item["amount"], item
    assert by_meter["requests"]["quantity"] == "10012345" and by_meter["requests"]["amount"] == 0  # 0.4938 c
    # the creation invoice (nothing charged at onboarding) is listed too
    first = [i for i in answer.json()["invoices"] if i["billing_reason"] == "subscription_create"]
    assert first and first[0]["total"] == 0 and first[0]["ledger"] is None


def test_the_billing_portal_answers_a_short_lived_stripe_address(
    cloud: LocalCloud, tokens: dict[str, str], frontend: str
) -> None:
    r = call(cloud, "GET", f"/v1/namespaces/{frontend}/billing/portal", tokens["ada"])
    assert r.status_code == 200, r.text
    url = r.json()["url"]
    assert url.startswith(f"{cloud.stripe.url}/p/session/")
    page = requests.get(url, timeout=10)
    assert page.status_code == 200 and frontend in page.text and "Invoices" in page.text
    assert call(cloud, "GET", f"/v1/namespaces/{frontend}/billing/portal", tokens["grace"]).status_code == 404


def test_a_plan_change_moves_the_subscription_with_prorations_and_the_quota_follows(
    cloud: LocalCloud, tokens: dict[str, str], frontend: str
) -> None:
    path = f"/v1/namespaces/{frontend}"
    bad = call(cloud, "PATCH", path, tokens["ada"], {"plan": "platinum"})
    assert bad.status_code == 422 and bad.json()["error"]["details"]["fields"][0]["field"] == "plan"
    assert call(cloud, "PATCH", path, tokens["ada"], {"plan": 3}).status_code == 422
    r = call(cloud, "PATCH", path, tokens["ada"], {"plan": "scale"})
    assert r.status_code == 200 and r.json()["plan"] == "scale", r.text
    sub = container().stores.namespaces.get(frontend).subscription_id
    state = requests.get(f"{cloud.stripe.url}/_stand-in/state", timeout=10).json()
    [s] = [x for x in state["subscriptions"] if x["id"] == sub]
    assert sorted(i["price"]["lookup_key"].split(":")[1] for i in s["items"]["data"]) == ["scale"] * 4
    preview = call(cloud, "GET", f"/v1/namespaces/{frontend}/billing", tokens["ada"]).json()["provider"]["invoice"]
    prorations = [line for line in preview["lines"] if line["kind"] == "proration"]
    assert [line["amount"] < 0 for line in prorations] == [True, False]  # unused team time, remaining scale time
    quota = json.loads((cloud.data_dir / "runtime" / "namespaces.json").read_text())[frontend]
    assert "16384" in json.dumps(quota)  # the scale plan's memory quota (MiB)
    # the same plan again changes nothing at Stripe
    before = len(cloud.stripe.received())
    assert call(cloud, "PATCH", path, tokens["ada"], {"plan": "scale"}).status_code == 200
    assert len(cloud.stripe.received()) == before
    assert call(cloud, "PATCH", path, tokens["grace"], {"plan": "team"}).status_code == 404
