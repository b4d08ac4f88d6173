"""Credentials masked in text: the one rule for the platform's log lines (``chalicelib.logs``), for
what it stores and shows (a deployment's source, reason, steps and trigger), and for refusing inputs
that carry credentials.

Masked as ``***``: every value passed to ``register_secret`` (webhook secrets, tokens the process
handles), and whatever is shaped like a credential even if nobody registered it: a bearer token,
the platform's tokens (``mp_pat_...``, ``mp_usr_...``), GitHub's (``ghp_``, ``gho_``, ``ghu_``,
``ghs_``, ``ghr_``), JSON Web Tokens (micro's access tokens), Stripe's keys and webhook secrets, the
user information of a URL (``https://x-access-token:...@github.com/...`` -> ``https://***@github.com/...``)
and credential query parameters (``?access_token=...``)."""

from __future__ import annotations

import re
import threading

MASK = "***"

_secrets: set[str] = set()
_secrets_lock = threading.Lock()
_pattern: re.Pattern[str] | None = None

# Values that look like credentials are masked even if nobody registered them. Each alternative
# keeps its named prefix (``keep``) or, for a URL's user information, its scheme and the ``@``.
_CREDENTIAL_SHAPES = re.compile(
    r"(?i)(?P<bearer>bearer\s+)[A-Za-z0-9._~+/=-]{8,}"
    r"|\bmp_[a-z]+_[A-Za-z0-9]{16,}"
    r"|\bgh[pousr]_[A-Za-z0-9]{20,}"
    r"|\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"
    r"|\bsk_(?:live|test)_[A-Za-z0-9]{8,}"
    r"|\bwhsec_[A-Za-z0-9]{8,}"
    r"|\b(?P<scheme>[a-z][a-z0-9+.-]*://)[^/\s?#]+@"
    r"|(?P<param>[?&](?:access_token|private_token|token|password|passwd|secret|client_secret|api_key|apikey"
    r"|x-amz-signature|x-amz-credential|x-amz-security-token)=)[^&\s#\"']+"
)


def register_secret(value: str | None) -> None:
    """Mask ``value`` wherever ``redact`` runs from now on (ignored when shorter than 6 characters)."""
    global _pattern
    if not value or len(value) < 6:
        return
    with _secrets_lock:
        if value in _secrets:
            return
        _secrets.add(value)
        _pattern = re.compile("|".join(re.escape(s) for s in sorted(_secrets, key=len, reverse=True)))


def _mask(match: re.Match[str]) -> str:
    if match.group("scheme"):
        return match.group("scheme") + MASK + "@"
    return (match.group("bearer") or match.group("param") or "") + MASK


def redact(text: str) -> str:
    """``text`` with every registered secret and credential-shaped value replaced by ``***``."""
    pattern = _pattern
    if pattern is not None:
        text = pattern.sub(MASK, text)
    return _CREDENTIAL_SHAPES.sub(_mask, text)


def redact_optional(text: str | None) -> str | None:
    return redact(text) if text is not None else None


def carries_credentials(text: str) -> bool:
    """Whether ``text`` holds a registered secret or anything credential-shaped, masked or not
    (``https://***@host`` still carries user information)."""
    pattern = _pattern
    return bool((pattern is not None and pattern.search(text)) or _CREDENTIAL_SHAPES.search(text))
