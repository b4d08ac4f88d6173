"""The Stripe stand-in's state: the objects it holds, their ids, its clock, Stripe's error shape, lists
and the ``Idempotency-Key`` records. One lock guards it all (requests are short).

What mirrors Stripe here, and where it is written down:

- Errors (docs.stripe.com/api/errors): ``{"error": {"type", "code", "message", "param", "doc_url"}}``
  with 400 for invalid requests, 401 for a bad key, 404 ``resource_missing``, 409 for a conflicting
  request on the same idempotency key, 429 ``rate_limit_error``, 5xx ``api_error``.
- Ids carry the object's prefix (``cus_``, ``sub_``, ``si_``, ``price_``, ``prod_``, ``mtr_``,
  ``in_``, ``il_``, ``ii_``, ``bps_``, ``evt_``, ``req_``), every object says ``"livemode": false``
  (a test-mode key) and ``created`` in Unix seconds.
- Lists (docs.stripe.com/api/pagination): ``{"object": "list", "data", "has_more", "url"}``, newest
  first, ``limit`` 1 to 100 (default 10), ``starting_after`` / ``ending_before`` an object id.
- Idempotency (docs.stripe.com/api/idempotent_requests, docs.stripe.com/idempotency): on POST only; the
  status and body of the first request with a key are saved once its endpoint began executing, and a
  retry with the same key, endpoint and parameters gets them again (``Idempotent-Replayed: true``), a
  500 included; the same key with other parameters or another endpoint is a 400 ``idempotency_error``;
  a request that failed validation saves nothing; keys are up to 255 characters and may be pruned
  after 24 hours; a second request while the first still runs is a 409 (``idempotency_key_in_use``).
"""

from __future__ import annotations

import json
import secrets
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.domain.clock import Clock, SystemClock

IDEMPOTENCY_KEEP = timedelta(hours=24)
MAX_IDEMPOTENCY_KEY = 255
DOCS = "https://docs.stripe.com/error-codes"


class StripeError(Exception):
    """An error as Stripe answers it. ``saved``: whether an idempotent retry gets it again (errors
    found while validating the parameters are not saved: the endpoint never began executing)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        saved: bool = True,
        should_retry: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.saved = saved
        self.should_retry = should_retry

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.code:
            error["code"] = self.code
            error["doc_url"] = f"{DOCS}#{self.code.replace('_', '-')}"
        if self.param:
            error["param"] = self.param
        return {"error": error}


def invalid(message: str, param: str | None = None, code: str | None = "parameter_invalid") -> StripeError:
    """A parameter that fails validation: 400, not saved for idempotent retries."""
    return StripeError(400, message, code=code, param=param, saved=False)


def missing(param: str) -> StripeError:
    return StripeError(400, f"Missing required param: {param}.", code="parameter_missing", param=param, saved=False)


def no_such(kind: str, object_id: str, param: str = "id") -> StripeError:
    return StripeError(404, f"No such {kind}: '{object_id}'", code="resource_missing", param=param)


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def epoch(when: datetime) -> int:
    return int(when.timestamp())


def from_epoch(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


@dataclass
class IdempotencyRecord:
    endpoint: str
    params: Any
    created: datetime
    status: int | None = None  # None while the first request runs
    body: bytes = b""


@dataclass
class MeterEvent:
    identifier: str
    event_name: str
    customer: str
    value: Any  # Decimal
    timestamp: int
    created: int
    payload: dict[str, str]


@dataclass
class State:
    clock: Clock = field(default_factory=SystemClock)
    lock: threading.RLock = field(default_factory=threading.RLock)
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    products: dict[str, dict[str, Any]] = field(default_factory=dict)
    prices: dict[str, dict[str, Any]] = field(default_factory=dict)
    meters: dict[str, dict[str, Any]] = field(default_factory=dict)
    meter_events: dict[str, MeterEvent] = field(default_factory=dict)  # by identifier
    subscriptions: dict[str, dict[str, Any]] = field(default_factory=dict)
    invoices: dict[str, dict[str, Any]] = field(default_factory=dict)
    invoice_items: dict[str, dict[str, Any]] = field(default_factory=dict)  # pending (not yet invoiced)
    portal_sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    idempotency: dict[str, IdempotencyRecord] = field(default_factory=dict)
    failing_customers: set[str] = field(default_factory=set)  # their next payments fail
    order: dict[str, int] = field(default_factory=dict)  # id -> creation sequence (lists, newest first)
    _seq: int = 0

    def now(self) -> datetime:
        return self.clock.now()

    def stamp(self) -> int:
        return epoch(self.now())

    def register(self, object_id: str) -> None:
        self._seq += 1
        self.order[object_id] = self._seq

    # ------------------------------------------------------------------ idempotency

    def idempotent_begin(self, key: str, endpoint: str, params: Any) -> IdempotencyRecord | None:
        """The saved answer for a retry (or None for a first request, now recorded as running).
        Raises the 400 or 409 Stripe answers for a misused key."""
        if len(key) > MAX_IDEMPOTENCY_KEY:
            raise StripeError(
                400,
                f"Idempotency keys can be at most {MAX_IDEMPOTENCY_KEY} characters long.",
                type="idempotency_error",
                saved=False,
            )
        now = self.now()
        record = self.idempotency.get(key)
        if record is not None and now - record.created > IDEMPOTENCY_KEEP:
            record = None  # pruned: the key starts afresh
        if record is None:
            self.idempotency[key] = IdempotencyRecord(endpoint, params, now)
            return None
        if record.endpoint != endpoint or _canonical(record.params) != _canonical(params):
            raise StripeError(
                400,
                "Keys for idempotent requests can only be used with the same parameters they were first used "
                f"with. Try using a key other than '{key}' if you meant to execute a different request.",
                type="idempotency_error",
                saved=False,
            )
        if record.status is None:
            raise StripeError(
                409,
                "There is currently another in-progress request using this idempotency key. Try again later.",
                code="idempotency_key_in_use",
                saved=False,
                should_retry=True,
            )
        return record

    def idempotent_end(self, key: str, status: int | None, body: bytes) -> None:
        """Save the answer (``status`` None: nothing saved, the key is free again)."""
        if status is None:
            self.idempotency.pop(key, None)
            return
        record = self.idempotency.get(key)
        if record is not None:
            record.status = status
            record.body = body


def _canonical(params: Any) -> str:
    return json.dumps(params, sort_keys=True)


def page(objects: list[dict[str, Any]], params: dict[str, Any], url: str, order: dict[str, int]) -> dict[str, Any]:
    """A Stripe list of ``objects`` (sorted newest first here), honouring limit/starting_after/ending_before."""
    objects = sorted(objects, key=lambda o: (o.get("created", 0), order.get(str(o.get("id")), 0)), reverse=True)
    limit = _limit(params)
    after, before = params.get("starting_after"), params.get("ending_before")
    ids = [o.get("id") for o in objects]
    if after:
        if after not in ids:
            raise no_such("object", str(after), "starting_after")
        objects = objects[ids.index(after) + 1 :]
    elif before:
        if before not in ids:
            raise no_such("object", str(before), "ending_before")
        objects = objects[: ids.index(before)][-limit:]
    return {"object": "list", "data": objects[:limit], "has_more": len(objects) > limit, "url": url}


def _limit(params: dict[str, Any]) -> int:
    raw = params.get("limit", "10")
    try:
        limit = int(raw)
    except (TypeError, ValueError):
        raise invalid("Invalid integer: limit", "limit", "parameter_invalid_integer") from None
    if not 1 <= limit <= 100:
        raise invalid("This value must be greater than or equal to 1 and less than or equal to 100.", "limit")
    return limit
