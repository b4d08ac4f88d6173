"""Errors of the ``platform`` CLI and the exit codes they end the process with.

Exit codes:

====  =====================================================================================
code  meaning
====  =====================================================================================
0     success
1     any other API error (5xx, 429, an unexpected answer, a namespace that failed, ...)
2     invalid input or usage: argparse's own errors, a missing answer without a TTY, and a
      400 or 422 from the API
3     the API cannot be reached (connection refused, DNS, TLS, timeout); the message names
      the URL
4     not logged in, or the token expired or was revoked: no token configured, a 401, or a
      device login that was denied or expired
5     forbidden (403)
6     not found (404)
7     conflict (409)
8     payment required (402): a budget's hard cap suspends new deploys
====  =====================================================================================

Every error is printed as one line on stderr: ``error: <message> (<code>)``.
"""

from __future__ import annotations

from typing import Any

EXIT_OK = 0
EXIT_API = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_AUTH = 4
EXIT_FORBIDDEN = 5
EXIT_NOT_FOUND = 6
EXIT_CONFLICT = 7
EXIT_PAYMENT_REQUIRED = 8
EXIT_INTERRUPTED = 130

EXIT_CODES_HELP = """\
exit codes:
  0  success
  1  other API error (5xx, 429, unexpected answer, a failed namespace)
  2  invalid input or usage (bad arguments, a missing answer without a TTY, API 400/422)
  3  cannot reach the API (connection error or timeout; the message names the URL)
  4  not logged in, or token expired/revoked (no token configured, API 401)
  5  forbidden (API 403)
  6  not found (API 404)
  7  conflict (API 409)
  8  payment required (API 402: a budget's hard cap suspends new deploys)"""

_EXIT_BY_STATUS = {
    400: EXIT_USAGE,
    401: EXIT_AUTH,
    402: EXIT_PAYMENT_REQUIRED,
    403: EXIT_FORBIDDEN,
    404: EXIT_NOT_FOUND,
    409: EXIT_CONFLICT,
    422: EXIT_USAGE,
}

_CODE_BY_STATUS = {
    400: "bad_request",
    401: "unauthorized",
    402: "payment_required",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    422: "invalid_request",
    429: "rate_limited",
}


def exit_code_for_status(status: int) -> int:
    """The exit code for an HTTP error status of the API."""
    return _EXIT_BY_STATUS.get(status, EXIT_API)


class CliError(Exception):
    """An error that ends the command: printed as ``error: <message> (<code>)``, exits ``exit_code``."""

    def __init__(self, message: str, code: str, exit_code: int = EXIT_API) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.exit_code = exit_code


class UsageError(CliError):
    """Invalid input, or an answer that is missing and cannot be asked for (exit 2)."""

    def __init__(self, message: str, code: str = "usage") -> None:
        super().__init__(message, code, EXIT_USAGE)


class NotLoggedIn(CliError):
    """No platform token is configured (exit 4)."""

    def __init__(self, message: str = "not logged in: run `platform login` or `platform init`") -> None:
        super().__init__(message, "not_logged_in", EXIT_AUTH)


class UnreachableError(CliError):
    """The API could not be reached at all (exit 3)."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"cannot reach the platform API at {url}: {reason}", "unreachable", EXIT_UNREACHABLE)
        self.url = url
        self.reason = reason


class ApiError(CliError):
    """The API answered with an error body ``{"error": {"code", "message", "details"}}``."""

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(message, code, exit_code_for_status(status))
        self.status = status
        self.details = details


def error_from_response(status: int, body: Any) -> ApiError:
    """Build the :class:`ApiError` for an error answer, tolerating bodies that are not the contract's."""
    code = _CODE_BY_STATUS.get(status, f"http_{status}")
    message = f"the API answered HTTP {status}"
    details: Any = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        err = body["error"]
        if isinstance(err.get("code"), str) and err["code"]:
            code = err["code"]
        if isinstance(err.get("message"), str) and err["message"]:
            message = err["message"]
        details = err.get("details")
    if status == 401:
        message = f"{message}; run `platform login` to log in again"
    return ApiError(status, code, message, details)
