"""Structured JSON logs (Powertools Logger): one logger for the platform, a request id on every line
of a request, and secrets masked before any line is written.

Never log a header, body or environment wholesale: log named, safe fields. As a second line of
defence, every line goes through ``redact`` (``chalicelib.domain.redaction``, the one rule the
platform masks credentials with, in what it stores and shows too): every value passed to
``register_secret`` (webhook secrets, tokens the process handles) and anything shaped like a
credential is replaced by ``***``."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from chalicelib.domain.redaction import MASK, redact, register_secret

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger

__all__ = ["MASK", "RedactingFormatter", "get_logger", "redact", "register_secret"]

SERVICE = "platform"


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value(v) for v in value]
    return value


class RedactingFormatter(logging.Formatter):
    """Wraps the Powertools JSON formatter and masks secrets in the finished line."""

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        return redact(self.inner.format(record))

    def __getattr__(self, name: str) -> Any:  # Powertools calls append_keys etc. on its formatter
        return getattr(self.inner, name)


_logger: Logger | None = None


def get_logger() -> Logger:
    """The platform's logger, built once per process."""
    global _logger
    if _logger is None:
        from aws_lambda_powertools import Logger  # imported on first use: cold starts

        logger = Logger(service=SERVICE)
        handler = logger.registered_handler
        if handler.formatter is not None and not isinstance(handler.formatter, RedactingFormatter):
            handler.setFormatter(RedactingFormatter(handler.formatter))
        _logger = logger
    return _logger


def lambda_handler(fn: Any) -> Any:
    """A function handler with Powertools' ``inject_lambda_context``: every log line of the invocation
    carries ``cold_start`` and the function's request id, name, memory and ARN. The logger is built,
    and ``fn`` wrapped, on the first invocation (not at import: cold starts); called without a Lambda
    context (a test calling it directly), ``fn`` runs as it is. The keys are removed when the invocation
    ends: in the local cloud one process runs every function and the API, whose lines must not carry
    the last function's (invocations running at once there may still see each other's)."""
    import functools

    wrapped: list[Any] = []

    @functools.wraps(fn)
    def handler(event: Any, context: Any) -> Any:
        if context is None:
            return fn(event, context)
        logger = get_logger()
        if not wrapped:
            from aws_lambda_powertools.logging.lambda_context import build_lambda_context_model

            keys = ["cold_start", *vars(build_lambda_context_model(context))]
            wrapped.append((logger.inject_lambda_context(fn), keys))
        inner, keys = wrapped[0]
        try:
            return inner(event, context)
        finally:
            logger.remove_keys(keys)

    return handler
