"""A Stripe stand-in: a real HTTP server on loopback speaking the Stripe API for exactly the endpoints
the platform's Stripe adapter calls, so that the ``stripe`` library (16.1.0) talks to it through its
API base setting (``StripeClient(base_addresses={"api": url})``) and the same code talks to Stripe
when that is unset. Why not ``localstripe``: it has no prices, no Billing Meters, no meter events, no
summaries, no ``Idempotency-Key`` handling and no billing portal (version 1.15.10 answers 404 on
``/v1/prices`` and ``/v1/billing/*``), and it is built on aiohttp; see README, "The Stripe stand-in".

Split by concern:

- :mod:`.form`: Stripe's form encoding (``a[b][c]``, ``a[0][b]``).
- :mod:`.state`: the objects, ids, lists, Stripe's error body and the ``Idempotency-Key`` records.
- :mod:`.resources`: the endpoints (customers, products, prices, meters, meter events, summaries,
  subscriptions, invoices, portal sessions).
- :mod:`.billing`: aggregation, graduated tiers, prorations, rounding per line.
- :mod:`.webhooks`: events, the ``Stripe-Signature`` scheme, delivery with retries.

What the wire looks like (docs.stripe.com/api): ``Authorization: Bearer sk_test_...`` (401 without a
known key), form-encoded bodies, JSON answers with a ``Request-Id`` header, errors as
``{"error": {...}}``. A subscription's period that has ended (by the stand-in's clock, the local
cloud's movable one) is renewed by a background tick: its invoice made, finalized and charged, and the
webhooks sent, as Stripe does at a period's end.

For tests and ``make run`` (``/_stand-in/``, outside Stripe's paths): ``GET /_stand-in/requests``
(method, path, status, idempotency key, replayed; no credentials), ``GET /_stand-in/meter_events``
(what was received, ``?customer=``), ``DELETE /_stand-in/meter_events/<identifier>`` (lose one, for
reconciliation to find), ``POST /_stand-in/faults`` (``{"path", "method", "status", "count"}``: the
next matching requests answer that status before the endpoint runs, as a rate limit or an outage
does), ``POST /_stand-in/customers/<id>/payments`` (``{"fail": true}``: its charges fail),
``POST /_stand-in/subscriptions/<id>/renew`` (close its period now), ``POST /_stand-in/events`` (
``{"type": "invoice.payment_failed", "customer": "cus_..."}``: make and send such an event),
``POST /_stand-in/events/<id>/resend``, ``GET /_stand-in/events``, ``GET /_stand-in/state``.

The API version is the one stripe 16.1.0 sends (``2026-10-28.endive``, its ``_ApiVersion.CURRENT``),
echoed in ``Stripe-Version``; answers have that version's shapes whatever version a request names. Not
implemented: every endpoint the adapter does not call (payment methods, PaymentIntents and charges as
objects: an invoice is paid unless its customer's payments are set to fail; Checkout, coupons and
discounts, tax, credit notes, refunds, test clocks, Connect), the v2 meter event stream, ``expand[]``
(not read: related objects stay ids), Stripe's refusal of unknown parameters (they are ignored) and live
mode. The state lives in memory and is not kept across restarts.
"""

from __future__ import annotations

import html
import json
import logging
import threading
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from chalicelib.domain.clock import Clock, SystemClock
from localcloud.standins import RawRequest, RawResponse, StandIn
from localcloud.standins.stripe import resources
from localcloud.standins.stripe.form import FormError, decode
from localcloud.standins.stripe.state import State, StripeError, new_id
from localcloud.standins.stripe.webhooks import API_VERSION, Webhooks, public

__all__ = ["DEFAULT_API_KEY", "DEFAULT_WEBHOOK_SECRET", "StripeStandIn"]

log = logging.getLogger("localcloud.standins.stripe")
JSON_TYPE = "application/json"
DEFAULT_API_KEY = "sk_test_localstandin0000000000000000"
DEFAULT_WEBHOOK_SECRET = "whsec_localstandin00000000000000000000"  # noqa: S105 - the stand-in's default


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> RawResponse:
    return RawResponse(status, json.dumps(body, indent=2).encode(), {"Content-Type": JSON_TYPE, **(headers or {})})


class StripeStandIn(StandIn):
    name = "Stripe stand-in"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        clock: Clock | None = None,
        api_key: str = DEFAULT_API_KEY,
        webhook_secret: str | None = None,
        tick_seconds: float = 2.0,
        webhook_attempts: int = 5,
        webhook_delay: float = 1.0,
    ) -> None:
        super().__init__(host, port)
        self.state = State(clock=clock or SystemClock())
        self.api_key = api_key
        self.webhooks = Webhooks(self.state, webhook_secret or DEFAULT_WEBHOOK_SECRET, webhook_attempts, webhook_delay)
        self.tick_seconds = tick_seconds
        self.requests: list[dict[str, Any]] = []
        self.faults: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    @property
    def api_base(self) -> str:
        return self.url

    @property
    def webhook_url(self) -> str | None:
        return self.webhooks.url

    @webhook_url.setter
    def webhook_url(self, url: str | None) -> None:
        self.webhooks.url = url

    @property
    def webhook_secret(self) -> str:
        return self.webhooks.secret

    def start(self) -> StripeStandIn:
        super().start()
        self.webhooks.start()
        if self._ticker is None and self.tick_seconds > 0:
            self._stop.clear()
            self._ticker = threading.Thread(target=self._tick_loop, name="stripe-ticker", daemon=True)
            self._ticker.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=5)
            self._ticker = None
        self.webhooks.stop()
        super().stop()

    def _tick_loop(self) -> None:
        while not self._stop.wait(self.tick_seconds):
            try:
                self.tick()
            except Exception:
                log.exception("Stripe stand-in: renewing subscriptions failed")

    def tick(self) -> list[str]:
        """Renew every subscription whose period has ended (by the clock); the ids renewed."""
        renewed = []
        with self.state.lock:
            ctx = self._ctx("", None)
            for sub in list(self.state.subscriptions.values()):
                while resources.renew(ctx, sub):
                    renewed.append(sub["id"])
        return renewed

    def _ctx(self, request_id: str, key: str | None) -> resources.Ctx:
        return resources.Ctx(self.state, self.webhooks, self.url, request_id, key)

    # ------------------------------------------------------------------ Python helpers for tests

    def meter_events(self, customer: str | None = None) -> list[dict[str, Any]]:
        with self.state.lock:
            return [
                {**resources.meter_event_view(e), "customer": e.customer, "value": str(e.value)}
                for e in self.state.meter_events.values()
                if customer is None or e.customer == customer
            ]

    def fail(
        self, path: str, status: int, count: int = 1, method: str = "POST", message: str = "", code: str = ""
    ) -> None:
        """The next ``count`` requests to ``path`` (a prefix) answer ``status`` before the endpoint runs:
        429 as Stripe's rate limiter, 5xx as an outage (``api_error``), 4xx as a refusal with ``message``."""
        with self.state.lock:
            self.faults.append(
                {"path": path, "method": method, "status": status, "count": count, "message": message, "code": code}
            )

    def received(self, path: str | None = None) -> list[dict[str, Any]]:
        with self.state.lock:
            return [dict(r) for r in self.requests if path is None or r["path"] == path]

    # ------------------------------------------------------------------ HTTP

    def handle(self, request: RawRequest) -> RawResponse:
        split = urlsplit(request.target)
        path = split.path.rstrip("/") or "/"
        if path.startswith("/_stand-in/"):
            return self._standin(request, path, split.query)
        if path.startswith("/p/session/"):
            return self._portal_page(path.rsplit("/", 1)[-1])
        if path.startswith("/i/"):
            return self._invoice_page(path.rsplit("/", 1)[-1])
        return self._api(request, path, split.query)

    def _api(self, request: RawRequest, path: str, query: str) -> RawResponse:
        request_id = new_id("req")
        headers = {"Request-Id": request_id, "Stripe-Version": request.headers.get("stripe-version", API_VERSION)}
        key = request.headers.get("idempotency-key") if request.method == "POST" else None
        entry: dict[str, Any] = {"method": request.method, "path": path, "idempotency_key": key, "replayed": False}
        status, body, saved = self._answer(request, path, query, request_id, key, entry)
        if saved is not None:
            headers["Idempotent-Replayed"] = "true"
        elif isinstance(body, StripeError) and body.should_retry is not None:
            headers["Stripe-Should-Retry"] = "true" if body.should_retry else "false"
        payload = body.body() if isinstance(body, StripeError) else body
        raw = saved if saved is not None else json.dumps(payload, indent=2).encode()
        entry["status"] = status
        with self.state.lock:
            self.requests.append(entry)
        return RawResponse(status, raw, {"Content-Type": JSON_TYPE, **headers})

    def _answer(
        self, request: RawRequest, path: str, query: str, request_id: str, key: str | None, entry: dict[str, Any]
    ) -> tuple[int, Any, bytes | None]:
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or not auth[7:]:
            return 401, StripeError(401, "You did not provide an API key.", saved=False), None
        if auth[7:] != self.api_key:
            shown = auth[7:][:8] + "*" * 4 + auth[7:][-4:]
            return 401, StripeError(401, f"Invalid API Key provided: {shown}", saved=False), None
        found = resources.route(request.method, path)
        if found is None:
            allowed = resources.known_path(path)
            message = (
                f"Unrecognized request URL ({request.method}: {path})."
                if not allowed
                else f"Unrecognized request URL ({request.method}: {path}). This URL answers {', '.join(allowed)}."
            )
            return 404, StripeError(404, message, saved=False), None
        handler, match = found
        with self.state.lock:
            fault = next(
                (
                    f
                    for f in self.faults
                    if f["count"] > 0 and f["method"] == request.method and path.startswith(f["path"])
                ),
                None,
            )
            if fault is not None:  # before the endpoint runs: nothing is saved for the key
                fault["count"] -= 1
                status = int(fault["status"])
                if status == 429:
                    error = StripeError(
                        429, "Request rate limit exceeded.", type="rate_limit_error", code="rate_limit", saved=False
                    )
                elif status < 500:
                    error = StripeError(
                        status,
                        str(fault.get("message") or "Refused by the stand-in's fault injection."),
                        code=fault.get("code") or None,
                        saved=False,
                        should_retry=False,
                    )
                else:
                    error = StripeError(
                        status, "An unknown error occurred.", type="api_error", saved=False, should_retry=True
                    )
                return status, error, None
        try:
            params = decode(request.body if request.method == "POST" else query)
        except FormError as e:
            return 400, StripeError(400, str(e), param=e.param or None, saved=False), None
        with self.state.lock:
            if key is not None:
                try:
                    record = self.state.idempotent_begin(key, f"{request.method} {path}", params)
                except StripeError as e:
                    return e.status, e, None
                if record is not None:
                    entry["replayed"] = True
                    assert record.status is not None
                    return record.status, None, record.body
            try:
                status, body = handler(self._ctx(request_id, key), params, match)
                out: Any = public(body)
                saved_status: int | None = status
            except StripeError as e:
                status, out = e.status, e
                saved_status = status if e.saved else None
            if key is not None:
                raw = json.dumps(out.body() if isinstance(out, StripeError) else out, indent=2).encode()
                self.state.idempotent_end(key, saved_status, raw)
            return status, out, None

    # ------------------------------------------------------------------ pages

    def _portal_page(self, secret: str) -> RawResponse:
        with self.state.lock:
            session = next((s for s in self.state.portal_sessions.values() if s["_secret"] == secret), None)
            if session is None:
                return RawResponse(404, b"<h1>This session has expired.</h1>", {"Content-Type": "text/html"})
            customer = self.state.customers.get(session["customer"], {})
            subs = [s for s in self.state.subscriptions.values() if s["customer"] == session["customer"]]
            invoices = sorted(
                (i for i in self.state.invoices.values() if i["customer"] == session["customer"]),
                key=lambda i: i["created"],
                reverse=True,
            )
            rows = "".join(
                f"<tr><td>{html.escape(i['id'])}</td><td>{i['status']}</td>"
                f"<td>{i['amount_due'] / 100:.2f} {i['currency'].upper()}</td>"
                f"<td>{datetime.fromtimestamp(i['period_start']):%Y-%m-%d} to "
                f"{datetime.fromtimestamp(i['period_end']):%Y-%m-%d}</td></tr>"
                for i in invoices
            )
            plans = "".join(
                f"<li>{html.escape(s['id'])}: {s['status']}"
                f"{' (cancels at period end)' if s['cancel_at_period_end'] else ''}; "
                + ", ".join(
                    html.escape(str(it["price"].get("nickname") or it["price"]["id"])) for it in s["items"]["data"]
                )
                + "</li>"
                for s in subs
            )
            back = session.get("return_url")
        page = (
            "<!doctype html><html><head><meta charset='utf-8'><title>Billing portal (Stripe stand-in)</title></head>"
            f"<body><h1>Billing portal</h1><p>{html.escape(str(customer.get('name') or customer.get('id')))}"
            " (Stripe stand-in, test mode)</p>"
            f"<h2>Subscriptions</h2><ul>{plans}</ul><h2>Invoices</h2>"
            f"<table><tr><th>invoice</th><th>status</th><th>amount</th><th>period</th></tr>{rows}</table>"
            + (f"<p><a href='{html.escape(back)}'>Return</a></p>" if back else "")
            + "</body></html>"
        )
        return RawResponse(200, page.encode(), {"Content-Type": "text/html; charset=utf-8"})

    def _invoice_page(self, invoice_id: str) -> RawResponse:
        with self.state.lock:
            invoice = self.state.invoices.get(invoice_id)
        if invoice is None:
            return RawResponse(404, b"<h1>No such invoice</h1>", {"Content-Type": "text/html"})
        lines = "".join(
            f"<tr><td>{html.escape(x['description'] or '')}</td><td>{x['quantity']}</td>"
            f"<td>{x['amount'] / 100:.2f}</td></tr>"
            for x in invoice["lines"]["data"]
        )
        page = (
            f"<!doctype html><html><body><h1>Invoice {html.escape(invoice_id)}</h1>"
            f"<p>status {invoice['status']}</p><table>{lines}</table>"
            f"<p>total {invoice['total'] / 100:.2f} {invoice['currency'].upper()}</p></body></html>"
        )
        return RawResponse(200, page.encode(), {"Content-Type": "text/html; charset=utf-8"})

    # ------------------------------------------------------------------ /_stand-in/

    def _standin(self, request: RawRequest, path: str, query: str) -> RawResponse:
        parts = path.split("/")[2:]
        q = dict(parse_qsl(query))
        body: dict[str, Any] = {}
        if request.body:
            try:
                body = json.loads(request.body)
            except ValueError:
                return _json(400, {"error": "the body must be JSON"})
        method = request.method
        if parts == ["requests"] and method == "GET":
            return _json(200, self.received(q.get("path")))
        if parts == ["requests"] and method == "DELETE":
            with self.state.lock:
                self.requests.clear()
            return RawResponse(204)
        if parts == ["meter_events"] and method == "GET":
            return _json(200, self.meter_events(q.get("customer")))
        if len(parts) == 2 and parts[0] == "meter_events" and method == "DELETE":
            with self.state.lock:
                gone = self.state.meter_events.pop(parts[1], None)
            return RawResponse(204) if gone else _json(404, {"error": "no such meter event"})
        if parts == ["faults"] and method == "POST":
            self.fail(
                str(body["path"]), int(body["status"]), int(body.get("count", 1)), str(body.get("method", "POST"))
            )
            return RawResponse(204)
        if len(parts) == 3 and parts[0] == "customers" and parts[2] == "payments" and method == "POST":
            with self.state.lock:
                if body.get("fail"):
                    self.state.failing_customers.add(parts[1])
                else:
                    self.state.failing_customers.discard(parts[1])
            return RawResponse(204)
        if len(parts) == 3 and parts[0] == "subscriptions" and parts[2] == "renew" and method == "POST":
            with self.state.lock:
                sub = self.state.subscriptions.get(parts[1])
                if sub is None:
                    return _json(404, {"error": "no such subscription"})
                sub["_period_end"] = min(sub["_period_end"], self.state.stamp())
                resources.renew(self._ctx("", None), sub)
                return _json(200, public(sub))
        if parts == ["events"] and method == "GET":
            with self.state.lock:
                events = sorted(self.state.events.values(), key=lambda e: self.state.order.get(e["id"], 0))
                return _json(200, {"events": events, "deliveries": list(self.webhooks.deliveries)})
        if parts == ["events"] and method == "POST":
            return self._make_event(body)
        if len(parts) == 3 and parts[0] == "events" and parts[2] == "resend" and method == "POST":
            if parts[1] not in self.state.events:
                return _json(404, {"error": "no such event"})
            self.webhooks.resend(parts[1])
            return RawResponse(202)
        if parts == ["state"] and method == "GET":
            with self.state.lock:
                st = self.state
                return _json(
                    200,
                    {
                        "customers": public(list(st.customers.values())),
                        "subscriptions": public(list(st.subscriptions.values())),
                        "meters": list(st.meters.values()),
                        "prices": list(st.prices.values()),
                        "invoices": len(st.invoices),
                        "meter_events": len(st.meter_events),
                    },
                )
        return _json(404, {"error": f"no stand-in route {method} {path}"})

    def _make_event(self, body: dict[str, Any]) -> RawResponse:
        """``invoice.payment_failed`` for a customer: its latest open-or-new invoice's charge fails
        (the subscription goes ``past_due``); the event is signed and sent as Stripe sends it."""
        kind = body.get("type")
        with self.state.lock:
            st = self.state
            customer = str(body.get("customer") or "")
            sub = next(
                (s for s in st.subscriptions.values() if s["customer"] == customer and s["status"] != "canceled"), None
            )
            if kind != "invoice.payment_failed" or sub is None:
                return _json(
                    400, {"error": "supported: {type: invoice.payment_failed, customer: <id with a subscription>}"}
                )
            ctx = self._ctx("", None)
            amount = int(body.get("amount_due") or 100)
            charge = resources.billing.line(
                st,
                amount=amount,
                description="Stand-in charge (a failed payment)",
                period=(st.stamp(), st.stamp()),
                price=None,
                subscription=sub,
                item_id=None,
                quantity=1,
            )
            invoice = resources.make_invoice(ctx, sub, [charge], "manual", (st.stamp(), st.stamp()))
            st.failing_customers.add(customer)
            try:
                resources.collect(ctx, sub, invoice)
            finally:
                st.failing_customers.discard(customer)
            return _json(200, public(invoice))
