"""``Idempotency-Key`` on state-changing POST requests (as Stripe's API): a retried request with the
same key and body gets the first answer again instead of acting twice; the same key with another
body is refused (422); while the first is still running, 409. Answers are kept 24 hours; a 5xx is not
kept, so that the retry runs."""

from __future__ import annotations

import hashlib
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


def begin(spec: RouteSpec, call: Call) -> Response | None:
    key = call.header(HEADER)
    if key is None or not applies(spec, key):
        return None
    if len(key) > MAX_KEY_LENGTH:
        raise ValidationError(f"Idempotency-Key is at most {MAX_KEY_LENGTH} characters", {"header": "Idempotency-Key"})
    c = get_container()
    c.bind()
    from chalicelib.adapters.dynamodb.idempotency import DynamoIdempotencyStore

    fingerprint = hashlib.sha256(call.request.raw_body or b"").hexdigest()
    key_hash = _key_hash(spec, call, key)
    verdict, status, body = DynamoIdempotencyStore().begin(key_hash, fingerprint, c.clock.now())
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
