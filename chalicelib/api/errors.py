"""The one place where errors become HTTP answers: ``{"error": {"code", "message", "details"}}``."""

from __future__ import annotations

import json
from typing import Any

from chalice.app import Response

from chalicelib.domain import errors as e

# Class -> status. Subclasses inherit their nearest ancestor's status (walks the MRO).
STATUS: dict[type[e.PlatformError], int] = {
    e.BadRequestError: 400,
    e.UnauthenticatedError: 401,
    e.PaymentRequiredError: 402,
    e.ForbiddenError: 403,
    e.NotFoundError: 404,
    e.ConflictError: 409,
    e.PayloadTooLargeError: 413,
    e.UnsupportedMediaTypeError: 415,
    e.ValidationError: 422,
    e.RateLimitedError: 429,
    e.DependencyUnavailableError: 503,
    e.BillingRejectedError: 502,
    e.PlatformError: 500,
}


class MethodNotAllowedError(e.PlatformError):
    code = "method_not_allowed"


STATUS[MethodNotAllowedError] = 405

JSON_HEADERS: dict[str, str | list[str]] = {"Content-Type": "application/json"}


def status_for(error: e.PlatformError | type[e.PlatformError]) -> int:
    kind = error if isinstance(error, type) else type(error)
    for cls in kind.__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def error_response(error: e.PlatformError, headers: dict[str, str] | None = None) -> Response:
    status = status_for(error)
    all_headers: dict[str, str | list[str]] = {**JSON_HEADERS, **(headers or {})}
    if status == 401:
        all_headers.setdefault("WWW-Authenticate", 'Bearer realm="platform"')
    return Response(
        body=json.dumps(error_body(error.code, error.message, error.details)), status_code=status, headers=all_headers
    )


def request_id_of(request: Any) -> str:
    """API Gateway's request id, else the Lambda invocation's."""
    ctx = getattr(request, "context", None) or {}
    lambda_ctx = getattr(request, "lambda_context", None)
    return str(ctx.get("requestId") or getattr(lambda_ctx, "aws_request_id", "") or "")


def internal_error_response(request_id: str | None) -> Response:
    details = {"request_id": request_id} if request_id else {}
    return Response(
        body=json.dumps(error_body("internal_error", "an internal error occurred", details)),
        status_code=500,
        headers={**JSON_HEADERS},
    )


# Chalice answers some requests itself, in its own {"Code", "Message"} shape, before or around our
# views; the HTTP middleware rewrites them with this table.
CHALICE_CODES: dict[int, str] = {
    400: "bad_request",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    500: "internal_error",
}
