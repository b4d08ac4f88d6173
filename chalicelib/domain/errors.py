"""Typed domain errors. Each carries a stable machine-readable ``code``, a human ``message`` and
``details``; the API layer maps the class (never the message) to an HTTP status in one place.

State machine Retry/Catch clauses name these classes (``ErrorEquals: ["ConflictError"]``)."""

from __future__ import annotations

from typing import Any


class PlatformError(Exception):
    """Base of every error the platform raises on purpose."""

    code = "platform_error"

    def __init__(self, message: str, details: dict[str, Any] | None = None, *, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details or {}
        if code is not None:
            self.code = code


class ValidationError(PlatformError):
    """Input that is well-formed but not acceptable (HTTP 422)."""

    code = "validation_failed"


class BadRequestError(PlatformError):
    """Input that cannot be read at all (HTTP 400)."""

    code = "bad_request"


class NotFoundError(PlatformError):
    """The thing does not exist, or the caller may not know it exists (HTTP 404)."""

    code = "not_found"


class ConflictError(PlatformError):
    """The request conflicts with the current state (HTTP 409)."""

    code = "conflict"


class UnauthenticatedError(PlatformError):
    """No valid credential (HTTP 401)."""

    code = "unauthenticated"


class ForbiddenError(PlatformError):
    """A valid credential without enough scope or role (HTTP 403)."""

    code = "forbidden"


class PayloadTooLargeError(PlatformError):
    code = "payload_too_large"


class UnsupportedMediaTypeError(PlatformError):
    code = "unsupported_media_type"


class PaymentRequiredError(PlatformError):
    """The namespace's budget with a hard cap is spent: new deploys wait for a higher limit or the
    next period (HTTP 402)."""

    code = "payment_required"


class RateLimitedError(PlatformError):
    code = "rate_limited"


class DependencyUnavailableError(PlatformError):
    """Something the platform depends on does not answer (HTTP 503). Retryable."""

    code = "dependency_unavailable"


class ConditionFailedError(ConflictError):
    """A conditional write lost: the item exists already, or changed under us."""

    code = "condition_failed"


class NoCapacityError(PlatformError):
    """No cluster of the region has room (placement). A state machine step's Catch names it."""

    code = "no_capacity"


class OAuthError(BadRequestError):
    """A step of an OAuth flow the client must react to (``code`` is the OAuth error name)."""


class DeliveryRefusedError(PlatformError):
    """A notification's provider (or the platform's outbound rules) refused it for good: sending it
    again would not help."""

    code = "delivery_refused"


class DeliveryOutcomeUnknownError(PlatformError):
    """A notification's request left and no answer came back: it may have been delivered, so it is
    never sent again blindly."""

    code = "delivery_outcome_unknown"
