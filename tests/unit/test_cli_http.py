"""The platform CLI's HTTP client, over a stand-in ``requests`` session (unit tests use no network):
bearer auth, decoding, the error body, and connection failures naming the URL (exit 3)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
import requests

from cli.platform_cli.client import HttpClient
from cli.platform_cli.errors import ApiError, UnreachableError
from cli.platform_cli.main import main


class FakeResponse:
    def __init__(self, status: int, body: Any = None, raw: bytes | None = None) -> None:
        self.status_code = status
        self.content = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())


class FakeSession(requests.Session):
    def __init__(self, response: FakeResponse | None = None, exc: Exception | None = None) -> None:
        super().__init__()
        self.response = response
        self.exc = exc
        self.calls: list[dict[str, Any]] = []

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        self.calls.append({"method": method, "url": url, **kwargs})
        if self.exc is not None:
            raise self.exc
        return self.response


def test_sends_the_bearer_token_and_decodes_json() -> None:
    session = FakeSession(FakeResponse(200, {"login": "ada"}))
    client = HttpClient("https://api.example.com/", "pt_secret", session=session)
    assert client.request("GET", "/v1/me") == {"login": "ada"}
    call = session.calls[0]
    assert call["url"] == "https://api.example.com/v1/me"
    assert call["headers"]["Authorization"] == "Bearer pt_secret"
    assert call["headers"]["User-Agent"].startswith("platform-cli/")
    assert call["timeout"]


def test_no_token_no_authorization_header() -> None:
    session = FakeSession(FakeResponse(200, {}))
    HttpClient("https://api.example.com", None, session=session).request("POST", "/v1/auth/device")
    assert "Authorization" not in session.calls[0]["headers"]


def test_204_is_none() -> None:
    assert (
        HttpClient("https://a", "t", session=FakeSession(FakeResponse(204))).request("DELETE", "/v1/tokens/x") is None
    )


@pytest.mark.parametrize(
    ("status", "exit_code"), [(400, 2), (401, 4), (403, 5), (404, 6), (409, 7), (422, 2), (429, 1), (500, 1)]
)
def test_error_bodies_become_api_errors_with_the_exit_code(status: int, exit_code: int) -> None:
    body = {"error": {"code": "some_code", "message": "it went wrong", "details": {"field": "x"}}}
    client = HttpClient("https://a", "t", session=FakeSession(FakeResponse(status, body)))
    with pytest.raises(ApiError) as caught:
        client.request("GET", "/v1/me")
    assert caught.value.status == status
    assert caught.value.code == "some_code"
    assert caught.value.message.startswith("it went wrong")
    assert caught.value.details == {"field": "x"}
    assert caught.value.exit_code == exit_code


def test_an_error_without_the_contract_body_still_maps() -> None:
    client = HttpClient("https://a", "t", session=FakeSession(FakeResponse(502, raw=b"<html>Bad Gateway</html>")))
    with pytest.raises(ApiError) as caught:
        client.request("GET", "/v1/me")
    assert (caught.value.code, caught.value.exit_code) == ("http_502", 1)
    assert "502" in caught.value.message


def test_a_2xx_that_is_not_json_is_an_error() -> None:
    client = HttpClient("https://a", "t", session=FakeSession(FakeResponse(200, raw=b"<html>")))
    with pytest.raises(ApiError) as caught:
        client.request("GET", "/v1/me")
    assert caught.value.code == "invalid_response"


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (requests.ConnectionError("refused"), "connection failed"),
        (requests.ConnectTimeout("slow"), "timed out"),
        (requests.ReadTimeout("slow"), "timed out"),
        (requests.exceptions.SSLError("bad cert"), "TLS error"),
    ],
)
def test_transport_failures_are_unreachable_naming_the_url(exc: Exception, reason: str) -> None:
    client = HttpClient("https://api.example.com", "t", session=FakeSession(exc=exc))
    with pytest.raises(UnreachableError) as caught:
        client.request("GET", "/v1/me")
    assert caught.value.exit_code == 3
    assert "https://api.example.com" in caught.value.message
    assert reason in caught.value.message


def test_main_exits_3_naming_the_url_when_the_api_cannot_be_reached(tmp_path: Path) -> None:
    (tmp_path / ".micro").write_text("PLATFORM_API_URL=https://api.unreachable.example\nPLATFORM_TOKEN=pt_x\n")
    session = FakeSession(exc=requests.ConnectionError("Connection refused"))
    err = io.StringIO()
    code = main(
        ["whoami"],
        client_factory=lambda url, token: HttpClient(url, token, session=session),
        environ={"HOME": str(tmp_path)},
        stdin=io.StringIO(),
        stdout=io.StringIO(),
        stderr=err,
    )
    assert code == 3
    assert err.getvalue() == (
        "error: cannot reach the platform API at https://api.unreachable.example: connection failed (unreachable)\n"
    )
    assert session.calls[0]["headers"]["Authorization"] == "Bearer pt_x"
