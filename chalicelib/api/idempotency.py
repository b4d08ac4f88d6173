"""``Idempotency-Key`` on state-changing POST requests (as Stripe's API): a retried request with the
same key and body gets the first answer again instead of acting twice; the same key with another
body is refused (422); while the first is still running, 409. "The same body" is the same JSON: the
body's canonical form (keys sorted, no insignificant whitespace) is hashed, so a client that re-encodes
it in another key order is answered from the first. The first run holds the key for as long as its
function may still run (the Lambda context's remaining time, as Powertools' idempotency does): a run cut
off by its timeout stops blocking retries as soon as it is certainly over. Answers are kept 24 hours; a
5xx is not kept, so that the retry runs."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Any

from chalice.app import Response

from chalicelib.api.registry import Call, RouteSpec
from chalicelib.composition import get_container
from chalicelib.domain.errors import ConflictError, ValidationError

HEADER = "idempotency-key"
MAX_KEY_LENGTH = 255
# Answers that carry a secret are never kept (a token is stored only as a hash): no replay for these.
NOT_KEPT = frozenset({"create_token", "local_login", "poll_device_login", "start_device_login", "create_ingest_token"})
# Idempotent by design, and not a user's call: usage events are deduplicated by their own ids.
NOT_KEPT |= {"ingest_usage_events"}
NOT_KEPT |= {"create_alert_channel", "rotate_alert_secret"}  # a webhook channel's signing secret


def applies(spec: RouteSpec, key: str | None) -> bool:
    return bool(key) and spec.method == "POST" and spec.request is not None and spec.operation_id not in NOT_KEPT


def _key_hash(spec: RouteSpec, call: Call, key: str) -> str:
    who = call.principal.uid if call.principal is not None else "anonymous"
    return hashlib.sha256(f"{who}\n{spec.method} {call.path}\n{key}".encode()).hexdigest()


def fingerprint(raw: bytes | str | None) -> str:
    """The hash of the body's canonical JSON (sorted keys, compact separators); of its bytes if it is not
    JSON (the body parser has refused it before this runs)."""
    data = raw.encode() if isinstance(raw, str) else raw or b""
    try:
        canonical = json.dumps(json.loads(data), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except (ValueError, UnicodeDecodeError):
        return hashlib.sha256(data).hexdigest()
    return hashlib.sha256(canonical.encode()).hexdigest()


def lease(call: Call) -> timedelta | None:
    """How long the first run holds the key: what is left of its function's time (None: no Lambda context,
    the store's default)."""
    context = getattr(call.request, "lambda_context", None)
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if remaining is None:
        return None
    return timedelta(milliseconds=max(1000, int(remaining())))  # at least a second: the run is not over yet


def begin(spec: RouteSpec, call: Call) -> Response | None:
    key = call.header(HEADER)
    if key is None or not applies(spec, key):
        return None
    if len(key) > MAX_KEY_LENGTH:
        raise ValidationError(f"Idempotency-Key is at most {MAX_KEY_LENGTH} characters", {"header": "Idempotency-Key"})
    c = get_container()
    c.bind()
    from chalicelib.adapters.dynamodb.idempotency import DynamoIdempotencyStore

    key_hash = _key_hash(spec, call, key)
    verdict, status, body = DynamoIdempotencyStore().begin(
        key_hash, fingerprint(call.request.raw_body), c.clock.now(), lease(call)
    )
    if verdict == "mismatch":
        raise ValidationError("this Idempotency-Key was used with another request body", {"header": "Idempotency-Key"})
    if verdict == "in_progress":
        raise ConflictError(
            "a request with this Idempotency-Key is still running; retry later", {"header": "Idempotency-Key"}
        )
    if verdict == "done":
        return Response(
            body=body, status_code=status, headers={"Content-Type": "application/json", "Idempotent-Replayed": "true"}
        )
    call.idempotency_key = key_hash  # this request runs first: only it records the answer
    return None


def finish(spec: RouteSpec, call: Call, response: Response) -> None:
    """Record the answer of the request that owns the key (never a refused or replayed one)."""
    if call.idempotency_key is None:
        return
    from chalicelib.adapters.dynamodb.idempotency import DynamoIdempotencyStore

    store = DynamoIdempotencyStore()
    if response.status_code >= 500:
        store.release(call.idempotency_key)
        return
    body: Any = response.body
    text = body if isinstance(body, str) else body.decode() if isinstance(body, bytes) else ""
    store.finish(call.idempotency_key, response.status_code, text, get_container().clock.now())
