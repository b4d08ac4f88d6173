"""Structured JSON logs (Powertools Logger): one logger for the platform, a request id on every line
of a request, and secrets masked before any line is written.

Never log a header, body or environment wholesale: log named, safe fields. As a second line of
defence, every value passed to ``register_secret`` (webhook secrets, tokens the process handles) is
replaced by ``***`` in any line that would contain it."""

from __future__ import annotations

import logging
import re
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger

SERVICE = "platform"
MASK = "***"

_secrets: set[str] = set()
_secrets_lock = threading.Lock()
_pattern: re.Pattern[str] | None = None

# Values that look like credentials are masked even if nobody registered them.
_CREDENTIAL_SHAPES = re.compile(
    r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"
    r"|\b(mp_[a-z]+_[A-Za-z0-9]{16,})"
    r"|\b(gh[pousr]_[A-Za-z0-9]{20,})"
    r"|\b(sk_(?:live|test)_[A-Za-z0-9]{8,})"
    r"|\b(whsec_[A-Za-z0-9]{8,})"
)


def register_secret(value: str | None) -> None:
    """Mask ``value`` in every log line from now on (ignored when shorter than 6 characters)."""
    global _pattern
    if not value or len(value) < 6:
        return
    with _secrets_lock:
        if value in _secrets:
            return
        _secrets.add(value)
        _pattern = re.compile("|".join(re.escape(s) for s in sorted(_secrets, key=len, reverse=True)))


def redact(text: str) -> str:
    pattern = _pattern
    if pattern is not None:
        text = pattern.sub(MASK, text)
    return _CREDENTIAL_SHAPES.sub(lambda m: (m.group(1) or "") + MASK, text)


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
