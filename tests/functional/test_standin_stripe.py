"""The Stripe stand-in as a Stripe client sees it, through the stripe library itself (16.1.0) and raw
HTTP: keys, error bodies and statuses, Idempotency-Key semantics, lists, meter events (identifier
dedup, the 35-day window), summaries, invoices priced by graduated tiers and rounded once per line,
renewals by the clock, and signed webhooks that ``stripe.Webhook.construct_event`` accepts."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
import stripe

from chalicelib.domain.clock import ManualClock
from localcloud.standins.stripe import DEFAULT_API_KEY, StripeStandIn

START = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def standin(clock: ManualClock) -> Iterator[StripeStandIn]:
    with StripeStandIn(clock=clock, tick_seconds=0, webhook_attempts=3, webhook_delay=0.05) as s:
        yield s


@pytest.fixture
def client(standin: StripeStandIn) -> Any:
    return stripe.StripeClient(DEFAULT_API_KEY, base_addresses={"api": standin.url}, max_network_retries=0)


def raw(standin: StripeStandIn, method: str, path: str, data: str = "", **headers: str) -> requests.Response:
    h = {"Authorization": f"Bearer {DEFAULT_API_KEY}", "Content-Type": "application/x-www-form-urlencoded", **headers}
    return requests.request(method, standin.url + path, data=data, headers=h, timeout=10)


def meter(client: Any, name: str = "api_calls", formula: str = "sum") -> Any:
    return client.v1.billing.meters.create(
        {"display_name": name, "event_name": name, "default_aggregation": {"formula": formula}}
    )


def test_a_missing_or_wrong_key_is_401_in_stripe_s_error_shape(standin: StripeStandIn) -> None:
    r = requests.post(f"{standin.url}/v1/customers", timeout=10)
    assert r.status_code == 401 and r.json()["error"]["type"] == "invalid_request_error"
    r = raw(standin, "POST", "/v1/customers", Authorization="Bearer sk_test_someoneelse1234")
    assert r.status_code == 401 and "Invalid API Key provided: sk_test_****1234" == r.json()["error"]["message"]
    assert "someoneelse" not in r.text
    with pytest.raises(stripe.AuthenticationError):
        stripe.StripeClient("sk_test_wrong", base_addresses={"api": standin.url}).v1.customers.create()


def test_errors_carry_type_code_param_and_the_right_status(standin: StripeStandIn, client: Any) -> None:
    with pytest.raises(stripe.InvalidRequestError) as e:
        client.v1.customers.retrieve("cus_missing")
    assert (e.value.http_status, e.value.code, e.value.param) == (404, "resource_missing", "id")
    r = raw(standin, "POST", "/v1/billing/meters", "display_name=x")
    assert r.status_code == 400
    assert r.json()["error"] | {"doc_url": None} == {
        "type": "invalid_request_error",
        "message": "Missing required param: event_name.",
        "code": "parameter_missing",
        "param": "event_name",
        "doc_url": None,
    }
    r = raw(standin, "POST", "/v1/customers", "metadata[a]=1&metadata=2")
    assert r.status_code == 400 and r.json()["error"]["param"] == "metadata"
    r = raw(standin, "GET", "/v1/charges")
    assert r.status_code == 404 and r.json()["error"]["message"].startswith("Unrecognized request URL")
    assert r.headers["Request-Id"].startswith("req_")


def test_idempotency_keys_replay_the_first_answer_and_refuse_other_parameters(
    standin: StripeStandIn, client: Any, clock: ManualClock
) -> None:
    first = raw(standin, "POST", "/v1/customers", "name=a", **{"Idempotency-Key": "k1"})
    again = raw(standin, "POST", "/v1/customers", "name=a", **{"Idempotency-Key": "k1"})
    assert first.json()["id"] == again.json()["id"] and again.headers["Idempotent-Replayed"] == "true"
    other = raw(standin, "POST", "/v1/customers", "name=b", **{"Idempotency-Key": "k1"})
    assert other.status_code == 400 and other.json()["error"]["type"] == "idempotency_error"
    elsewhere = raw(standin, "POST", "/v1/products", "name=a", **{"Idempotency-Key": "k1"})
    assert elsewhere.status_code == 400 and elsewhere.json()["error"]["type"] == "idempotency_error"
    with pytest.raises(stripe.IdempotencyError):
        client.v1.customers.create({"name": "c"}, {"idempotency_key": "k1"})
    # a request that fails validation saves nothing: the key works once the parameters are right
    bad = raw(standin, "POST", "/v1/products", "", **{"Idempotency-Key": "k2"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "parameter_missing"
    good = raw(standin, "POST", "/v1/products", "name=p", **{"Idempotency-Key": "k2"})
    assert good.status_code == 200
    # an outage answered before the endpoint ran saves nothing either; the retry acts (once)
    standin.fail("/v1/customers", 500)
    assert raw(standin, "POST", "/v1/customers", "name=z", **{"Idempotency-Key": "k3"}).status_code == 500
    made = raw(standin, "POST", "/v1/customers", "name=z", **{"Idempotency-Key": "k3"})
    assert made.status_code == 200 and "Idempotent-Replayed" not in made.headers
    # keys may be pruned after 24 hours: the same key then makes a new request
    clock.advance(timedelta(hours=25))
    later = raw(standin, "POST", "/v1/customers", "name=a", **{"Idempotency-Key": "k1"})
    assert later.status_code == 200 and later.json()["id"] != first.json()["id"]


def test_lists_page_newest_first_with_has_more(standin: StripeStandIn, client: Any) -> None:
    client.v1.products.create({"id": "prod_x", "name": "x"})
    ids = [
        client.v1.prices.create({"currency": "usd", "product": "prod_x", "unit_amount": n, "lookup_key": f"k{n}"}).id
        for n in range(3)
    ]
    page = client.v1.prices.list({"limit": 2})
    assert [p.id for p in page.data] == ids[::-1][:2] and page.has_more
    rest = client.v1.prices.list({"limit": 2, "starting_after": page.data[-1].id})
    assert [p.id for p in rest.data] == [ids[0]] and not rest.has_more
    assert [p.id for p in client.v1.prices.list({"lookup_keys": ["k1", "k9"]}).data] == [ids[1]]
    body = raw(standin, "GET", "/v1/prices?limit=1").json()
    assert body["object"] == "list" and body["url"] == "/v1/prices" and body["data"][0]["livemode"] is False
    assert raw(standin, "GET", "/v1/prices?limit=101").status_code == 400


def test_meter_events_are_deduplicated_by_identifier_and_held_to_stripe_s_window(
    standin: StripeStandIn, client: Any, clock: ManualClock
) -> None:
    meter(client)
    customer = client.v1.customers.create({"name": "c"}).id
    event = {"event_name": "api_calls", "identifier": "ev-1", "payload": {"stripe_customer_id": customer, "value": "5"}}
    client.v1.billing.meter_events.create(event)
    with pytest.raises(stripe.InvalidRequestError) as e:
        client.v1.billing.meter_events.create({**event, "payload": {"stripe_customer_id": customer, "value": "7"}})
    assert e.value.http_status == 400 and e.value.user_message == "An event already exists with identifier ev-1."
    assert [x["value"] for x in standin.meter_events(customer)] == ["5"]
    too_old = int((START - timedelta(days=35, minutes=1)).timestamp())
    with pytest.raises(stripe.InvalidRequestError) as e:
        client.v1.billing.meter_events.create({**event, "identifier": "ev-2", "timestamp": too_old})
    assert (e.value.code, e.value.param) == ("timestamp_too_far_in_past", "timestamp")
    ahead = int((START + timedelta(minutes=6)).timestamp())
    with pytest.raises(stripe.InvalidRequestError) as e:
        client.v1.billing.meter_events.create({**event, "identifier": "ev-3", "timestamp": ahead})
    assert e.value.code == "timestamp_in_future"
    with pytest.raises(stripe.InvalidRequestError) as e:
        client.v1.billing.meter_events.create({**event, "identifier": "ev-4", "event_name": "nope"})
    assert "No active meter found" in e.value.user_message
    # a customer Stripe does not know is accepted (matched later, asynchronously) and bills nothing
    client.v1.billing.meter_events.create(
        {**event, "identifier": "ev-5", "payload": {"stripe_customer_id": "cus_unknown", "value": "1"}}
    )
    assert [x["identifier"] for x in standin.meter_events("cus_unknown")] == ["ev-5"]


def test_summaries_group_by_utc_day_sum_or_last(standin: StripeStandIn, client: Any, clock: ManualClock) -> None:
    calls, seats = meter(client), meter(client, "seats", "last")
    customer = client.v1.customers.create({"name": "c"}).id
    day = START.replace(hour=0)
    for i, (hours, value) in enumerate(((-20, 3), (-2, 4), (1, 5), (2, 6))):
        at = int((day + timedelta(hours=hours)).timestamp())
        for name in ("api_calls", "seats"):
            client.v1.billing.meter_events.create(
                {
                    "event_name": name,
                    "identifier": f"{name}-{i}",
                    "timestamp": at,
                    "payload": {"stripe_customer_id": customer, "value": str(value)},
                }
            )
    window = {"customer": customer, "value_grouping_window": "day"}
    window |= {
        "start_time": int((day - timedelta(days=1)).timestamp()),
        "end_time": int((day + timedelta(days=1)).timestamp()),
    }
    summed = client.v1.billing.meters.event_summaries.list(calls.id, window).data
    assert [(s.start_time, s.aggregated_value) for s in summed] == [
        (int(day.timestamp()), 11),
        (int((day - timedelta(days=1)).timestamp()), 7),
    ]
    last = client.v1.billing.meters.event_summaries.list(seats.id, window).data
    assert [s.aggregated_value for s in last] == [6, 4]
    misaligned = {**window, "start_time": window["start_time"] + 3600}
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.billing.meters.event_summaries.list(calls.id, misaligned)


def test_invoices_price_graduated_tiers_and_round_once_per_line(
    standin: StripeStandIn, client: Any, clock: ManualClock
) -> None:
    m = meter(client)
    client.v1.products.create({"id": "prod_t", "name": "t"})
    tiered = client.v1.prices.create(
        {
            "currency": "usd",
            "product": "prod_t",
            "nickname": "calls",
            "recurring": {"interval": "month", "meter": m.id, "usage_type": "metered"},
            "billing_scheme": "tiered",
            "tiers_mode": "graduated",
            "tiers": [
                {"up_to": 10, "unit_amount_decimal": "0"},
                {"up_to": 40, "unit_amount_decimal": "0.05", "flat_amount": 3},
                {"up_to": "inf", "unit_amount_decimal": "0.01"},
            ],
        }
    )
    base = client.v1.prices.create(
        {"currency": "usd", "product": "prod_t", "unit_amount": 500, "recurring": {"interval": "month"}}
    )
    customer = client.v1.customers.create({"name": "c"}).id
    anchor = int(datetime(2026, 12, 1, tzinfo=UTC).timestamp())
    sub = client.v1.subscriptions.create(
        {
            "customer": customer,
            "items": [{"price": base.id, "quantity": 1}, {"price": tiered.id}],
            "billing_cycle_anchor": anchor,
            "proration_behavior": "none",
        }
    )
    client.v1.billing.meter_events.create(
        {"event_name": "api_calls", "identifier": "u1", "payload": {"stripe_customer_id": customer, "value": "70"}}
    )
    preview = client.v1.invoices.create_preview({"subscription": sub.id})
    # 10 free + 30 x 0.05 (1.5) + 3 flat + 30 x 0.01 (0.3) = 4.8 -> 5 cents, rounded once; base 500
    usage = [line for line in preview.lines.data if line.description == "calls"]
    assert [line.amount for line in usage] == [5] and preview.total == 505
    # the period ends by the clock: the renewal invoice is made, finalized and paid
    clock.advance(timedelta(days=21))
    assert standin.tick() == [sub.id]
    [cycle] = [
        i for i in client.v1.invoices.list({"customer": customer}).data if i.billing_reason == "subscription_cycle"
    ]
    assert (cycle.status, cycle.total, cycle.amount_paid) == ("paid", 505, 505)
    assert cycle.period_end == anchor


class Receiver(BaseHTTPRequestHandler):
    got: list[tuple[dict[str, str], bytes]] = []
    fail_first = 0

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Receiver.got.append((dict(self.headers), body))
        status = 500 if Receiver.fail_first > 0 else 200
        Receiver.fail_first -= 1
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_webhooks_are_signed_as_stripe_signs_them_and_retried_until_2xx(standin: StripeStandIn, client: Any) -> None:
    Receiver.got, Receiver.fail_first = [], 1
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        standin.webhook_url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        customer = client.v1.customers.create({"name": "hooked"})
        deadline = datetime.now(UTC) + timedelta(seconds=10)
        while len(Receiver.got) < 2 and datetime.now(UTC) < deadline:
            threading.Event().wait(0.05)
        assert len(Receiver.got) == 2  # the first delivery got a 500: sent again
        headers, body = Receiver.got[-1]
        event = stripe.Webhook.construct_event(body, headers["Stripe-Signature"], standin.webhook_secret)
        assert event.type == "customer.created" and event.data.object.id == customer.id
        with pytest.raises(stripe.SignatureVerificationError):
            stripe.Webhook.construct_event(body, headers["Stripe-Signature"], "whsec_other")
        assert json.loads(body)["livemode"] is False and json.loads(body)["object"] == "event"
    finally:
        server.shutdown()
