"""The HTTP middleware: a request id on every log line, domain errors mapped to status codes,
Chalice's own error answers rewritten into the project's format, and one access-log line per request
(named safe fields only: never headers wholesale, never bodies)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from chalice.app import Response

from chalicelib.api.errors import CHALICE_CODES, error_body, error_response, internal_error_response, request_id_of
from chalicelib.api.registry import check_body_size
from chalicelib.domain.errors import PlatformError
from chalicelib.logs import get_logger


def _rewrite_chalice_error(response: Response) -> Response:
    """Chalice answers 405, 415, bad JSON and unhandled errors as {"Code", "Message"}."""
    if response.status_code < 400:
        return response
    body = response.body
    if isinstance(body, str | bytes):
        try:
            body = json.loads(body)
        except (ValueError, TypeError):
            return response
    if not (isinstance(body, dict) and "Code" in body and "Message" in body and "error" not in body):
        return response
    code = CHALICE_CODES.get(response.status_code, "error")
    details: dict[str, Any] = {}
    headers = {k: v for k, v in response.headers.items() if k.lower() not in ("content-type",)}
    allow = headers.get("Allow")
    if response.status_code == 405 and isinstance(allow, str):
        details["allowed_methods"] = [m.strip() for m in allow.split(",")]
    message = "an internal error occurred" if response.status_code >= 500 else str(body["Message"])
    return Response(
        body=json.dumps(error_body(code, message, details)),
        status_code=response.status_code,
        headers={**headers, "Content-Type": "application/json"},
    )


def http_middleware(event: Any, get_response: Callable[[Any], Response]) -> Response:
    logger = get_logger()
    request_id = request_id_of(event)
    logger.append_keys(request_id=request_id)
    started = time.monotonic()
    try:
        check_body_size(len(getattr(event, "raw_body", b"") or b""))
        response = _rewrite_chalice_error(get_response(event))
    except PlatformError as e:
        response = error_response(e)
    except Exception:
        logger.exception("unhandled error")
        response = internal_error_response(request_id)
    response.headers["X-Request-Id"] = request_id
    logger.info(
        "request",
        extra={
            "http": {
                "method": getattr(event, "method", None),
                "path": getattr(event, "path", None),
                "status": response.status_code,
                "duration_ms": round((time.monotonic() - started) * 1000, 1),
                "user_agent": (event.headers or {}).get("user-agent") if hasattr(event, "headers") else None,
            }
        },
    )
    logger.remove_keys(["request_id"])
    return response
