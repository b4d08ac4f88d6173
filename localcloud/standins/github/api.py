"""The REST API's request and response plumbing: GitHub's error body (``{"message",
"documentation_url", "status"}``), the request a handler gets, the response it gives, routes and who a
credential is.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from localcloud.standins import RawRequest, RawResponse
from localcloud.standins.github.common import API_PREFIX, DOCS_URL, HTML_TYPE, JSON_TYPE
from localcloud.standins.github.state import Installation, User


class ApiError(Exception):
    """An error answer in GitHub's shape: ``{"message", "documentation_url", "status"}``."""

    def __init__(self, status: int, message: str, *, headers: Mapping[str, str] | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return {"message": self.message, **self.extra, "documentation_url": DOCS_URL, "status": str(self.status)}


def not_found() -> ApiError:
    return ApiError(404, "Not Found")


@dataclass
class ApiRequest:
    method: str
    path: str  # under /api/v3, without the query
    query: list[tuple[str, str]]
    headers: Mapping[str, str]
    body: bytes
    base: str  # "http://host:port" as the client addressed us
    caller: User | None  # the user, or the app's bot for an installation token
    params: dict[str, str] = field(default_factory=dict)
    installation: Installation | None = None  # set when an installation token authenticated
    permissions: dict[str, str] = field(default_factory=dict)  # the installation token's

    @property
    def api(self) -> str:
        return self.base + API_PREFIX

    def arg(self, name: str, default: str | None = None) -> str | None:
        return next((v for k, v in self.query if k == name), default)

    def json(self) -> Any:
        if not self.body.strip():
            return {}
        try:
            return json.loads(self.body)
        except ValueError:
            raise ApiError(400, "Problems parsing JSON") from None

    def json_object(self) -> dict[str, Any]:
        """The body as a JSON object (an empty body: ``{}``); anything else answers 400, as GitHub."""
        body = self.json()
        if not isinstance(body, dict):
            raise ApiError(400, "Problems parsing JSON")
        return body


@dataclass
class ApiResponse:
    status: int = 200
    body: Any = None  # JSON-able; None sends no body
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[ApiRequest], ApiResponse]


@dataclass
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    auth: bool  # needs an authenticated caller
    app: bool = False  # needs an app JWT


@dataclass
class Identity:
    """Who a credential is: nobody, a user, an app installation (its bot user), or the app itself (JWT)."""

    user: User | None = None
    installation: Installation | None = None
    permissions: dict[str, str] = field(default_factory=dict)
    app: bool = False


def _json(status: int, body: Any) -> RawResponse:
    return RawResponse(status, json.dumps(body).encode(), {"Content-Type": JSON_TYPE})


def _json_body(request: RawRequest) -> dict[str, Any]:
    try:
        data = json.loads(request.body or b"{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _html(status: int, content: str) -> RawResponse:
    page = f"<!doctype html><html><head><title>GitHub stand-in</title></head><body>{content}</body></html>"
    return RawResponse(status, page.encode(), {"Content-Type": HTML_TYPE})


def _int_arg(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


def _validation_failed(name: str, value: Any) -> ApiError:
    return ApiError(
        422,
        "Validation Failed",
        errors=[{"resource": "Request", "field": name, "code": "invalid", "value": value}],
    )
