"""Stripe's webhooks as the stand-in sends them: an ``event`` object per change, signed, posted to the
platform's endpoint from a background worker, retried when the endpoint does not answer 2xx.

- The event (docs.stripe.com/api/events/object): ``{"id": "evt_...", "object": "event", "api_version",
  "created", "data": {"object": <a snapshot of the object>, "previous_attributes"?}, "livemode",
  "pending_webhooks", "request": {"id", "idempotency_key"}, "type"}``.
- The signature (docs.stripe.com/webhooks#verify-manually): header
  ``Stripe-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>" keyed with the endpoint's
  secret>``; ``stripe.Webhook.construct_event`` (``stripe/_webhook.py``) checks exactly this and refuses
  a ``t`` older than its tolerance (300 s by default). ``t`` is the time of the delivery attempt, on
  the wall clock (a moved local clock changes ``created``, not the signature's time).
- Delivery (docs.stripe.com/webhooks#retries, "Event delivery behaviors"): asynchronous, not
  guaranteed to be in order, possibly more than once; a delivery that does not get a 2xx is retried
  with an exponential back-off (Stripe keeps trying for up to three days in live mode; the stand-in
  tries ``attempts`` times, one second apart and doubling).
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import logging
import queue
import threading
import time
import urllib.error
import urllib.request
from typing import Any

from localcloud.standins.stripe.state import State, new_id

log = logging.getLogger("localcloud.standins.stripe")
API_VERSION = "2026-10-28.endive"  # stripe 16.1.0's _ApiVersion.CURRENT


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def public(obj: Any) -> Any:
    """An object as the API shows it: the stand-in's own bookkeeping (keys starting with ``_``) dropped."""
    if isinstance(obj, dict):
        return {k: public(v) for k, v in obj.items() if not k.startswith("_")}
    if isinstance(obj, list):
        return [public(v) for v in obj]
    return obj


class Webhooks:
    def __init__(self, state: State, secret: str, attempts: int = 5, first_delay: float = 1.0) -> None:
        self.state = state
        self.secret = secret
        self.url: str | None = None
        self.attempts = attempts
        self.first_delay = first_delay
        self.deliveries: list[dict[str, Any]] = []  # every attempt: event, type, status, time
        self._queue: queue.Queue[tuple[str, int] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._held = False  # tests: keep events undelivered until release()
        self._held_events: list[str] = []

    # ------------------------------------------------------------------ making events

    def emit(
        self,
        type: str,
        obj: dict[str, Any],
        previous: dict[str, Any] | None = None,
        request: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Record an event (a snapshot of ``obj`` now) and queue its delivery. Call with the state's lock held."""
        data: dict[str, Any] = {"object": copy.deepcopy(public(obj))}
        if previous:
            data["previous_attributes"] = copy.deepcopy(public(previous))
        event = {
            "id": new_id("evt"),
            "object": "event",
            "api_version": API_VERSION,
            "created": self.state.stamp(),
            "data": data,
            "livemode": False,
            "pending_webhooks": 1 if self.url else 0,
            "request": request or {"id": None, "idempotency_key": None},
            "type": type,
        }
        self.state.events[event["id"]] = event
        self.state.register(event["id"])
        if self.url:
            with self._lock:
                if self._held:
                    self._held_events.append(event["id"])
                else:
                    self._queue.put((event["id"], 1))
        return event

    # ------------------------------------------------------------------ delivering them

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="stripe-webhooks", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=5)
            self._thread = None

    def hold(self) -> None:
        with self._lock:
            self._held = True

    def release(self, order: list[str] | None = None) -> list[str]:
        """Deliver what was held, in ``order`` (event ids) if given, else as made."""
        with self._lock:
            self._held = False
            held, self._held_events = self._held_events, []
        for event_id in order or held:
            self._queue.put((event_id, 1))
        return held

    def resend(self, event_id: str) -> None:
        self._queue.put((event_id, 1))

    def deliver(self, event_id: str, timestamp: int | None = None) -> int | None:
        """One delivery attempt now: the endpoint's status, or None when it could not be reached."""
        with self.state.lock:
            event = self.state.events.get(event_id)
            body = json.dumps(event, indent=2).encode() if event else b""
        if event is None or not self.url:
            return None
        request = urllib.request.Request(  # noqa: S310 - the platform's endpoint, http(s) set by the local cloud
            self.url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
                "Stripe-Signature": sign(self.secret, body, timestamp),
            },
        )
        status: int | None
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - as above
                status = int(answer.status)
        except urllib.error.HTTPError as e:
            status = int(e.code)
        except (urllib.error.URLError, OSError):
            status = None
        with self._lock:
            self.deliveries.append({"event": event_id, "type": event["type"], "status": status, "at": time.time()})
        return status

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            event_id, attempt = job
            status = self.deliver(event_id)
            if (status is None or not 200 <= status < 300) and attempt < self.attempts:
                delay = self.first_delay * 2 ** (attempt - 1)
                threading.Timer(delay, self._queue.put, args=((event_id, attempt + 1),)).start()
