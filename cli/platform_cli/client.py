"""HTTP access to the platform API.

Commands talk to an :class:`ApiClient`: anything with ``request(method, path, json=None)`` that returns
the decoded JSON answer (``None`` for an empty one) or raises :class:`~cli.platform_cli.errors.ApiError` /
:class:`~cli.platform_cli.errors.UnreachableError`. :class:`HttpClient` is the real one, over ``requests``; unit tests
pass an in-memory double through the ``client_factory`` of :func:`cli.platform_cli.main.main`.
"""

from __future__ import annotations

import json as _json
from collections.abc import Callable
from typing import Any, Protocol

import requests

from cli.platform_cli import __version__
from cli.platform_cli.errors import ApiError, UnreachableError, error_from_response

USER_AGENT = f"platform-cli/{__version__}"
DEFAULT_TIMEOUT = (5.0, 30.0)  # (connect, read) seconds


class ApiClient(Protocol):
    def request(self, method: str, path: str, json: Any = None) -> Any: ...


ClientFactory = Callable[[str, "str | None"], ApiClient]
"""``factory(base_url, token)`` -> a client for that API, authenticated with ``token`` when given."""


class HttpClient:
    """The platform API over HTTP(S), with ``Authorization: Bearer <token>`` when a token is given."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        session: requests.Session | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.session = session if session is not None else requests.Session()

    def request(self, method: str, path: str, json: Any = None) -> Any:
        url = self.base_url + path
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            response = self.session.request(method, url, json=json, headers=headers, timeout=self.timeout)
        except requests.Timeout as exc:
            raise UnreachableError(self.base_url, "timed out") from exc
        except requests.exceptions.SSLError as exc:
            raise UnreachableError(self.base_url, "TLS error (certificate or protocol)") from exc
        except requests.ConnectionError as exc:
            raise UnreachableError(self.base_url, "connection failed") from exc
        except requests.RequestException as exc:
            raise UnreachableError(self.base_url, type(exc).__name__) from exc
        return decode_response(response.status_code, response.content)

    def text(self, path: str, accept: str) -> str:
        """A GET whose answer is not JSON (a report's HTML or CSV); errors as :meth:`request` raises them."""
        headers = {"Accept": accept, "User-Agent": USER_AGENT}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            response = self.session.get(self.base_url + path, headers=headers, timeout=self.timeout)
        except requests.RequestException as exc:
            raise UnreachableError(self.base_url, type(exc).__name__) from exc
        if 200 <= response.status_code < 300:
            return response.content.decode("utf-8")
        decode_response(response.status_code, response.content)
        return ""


def decode_response(status: int, content: bytes) -> Any:
    """The decoded JSON of a 2xx answer (``None`` when empty); raises :class:`ApiError` otherwise."""
    body: Any = None
    if content:
        try:
            body = _json.loads(content)
        except ValueError:
            body = None
    if body is None and content and 200 <= status < 300:
        raise ApiError(status, "invalid_response", f"the API answered HTTP {status} with a body that is not JSON")
    if 200 <= status < 300:
        return body
    raise error_from_response(status, body)


def default_factory(base_url: str, token: str | None) -> ApiClient:
    return HttpClient(base_url, token)
