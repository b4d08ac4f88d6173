"""The local front end over real HTTP on loopback: what API Gateway answers before the app runs
comes out in the project's error format too."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def api(container: Any) -> Iterator[str]:
    from localcloud.frontend import make_server

    port = free_port()
    server = make_server("local", "127.0.0.1", port)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    server.shutdown()
    server.server.server_close()


def error_of(r: requests.Response) -> dict[str, Any]:
    assert r.headers["Content-Type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    return dict(body["error"])


def test_health_is_served(api: str) -> None:
    r = requests.get(f"{api}/v1/health", timeout=5)
    assert r.status_code == 200 and r.json()["status"] == "ok"


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer whatever"}])
def test_an_unknown_path_is_404_not_found(api: str, headers: dict[str, str]) -> None:
    r = requests.get(f"{api}/v1/nowhere", headers=headers, timeout=5)
    assert r.status_code == 404
    assert error_of(r)["code"] == "not_found"


def test_a_wrong_method_is_405(api: str) -> None:
    r = requests.delete(f"{api}/v1/health", timeout=5)
    assert r.status_code == 405
    assert error_of(r)["details"]["allowed_methods"] == ["GET"]


def test_a_body_over_one_mib_is_refused_before_it_is_read(api: str) -> None:
    r = requests.post(
        f"{api}/v1/health", data=b"x" * (1024 * 1024 + 1), timeout=5, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 413
    assert error_of(r)["code"] == "payload_too_large"


def test_the_openapi_document_is_served(api: str) -> None:
    doc = requests.get(f"{api}/openapi.json", timeout=5).json()
    assert "/v1/health" in doc["paths"]
    assert json.dumps(doc)  # serialisable as served


def raw_exchange(api: str, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send bytes as they are (no client library tidies them up) and read the whole answer."""
    host, port = api.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(request)
        data = b""
        while chunk := s.recv(65536):  # the front end closes the connection after these answers
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in header_lines)}
    return int(status_line.split()[1]), headers, body


def raw_error(api: str, request: bytes) -> tuple[int, dict[str, str], dict[str, Any]]:
    status, headers, body = raw_exchange(api, request)
    assert headers["content-type"] == "application/json", (status, body[:200])
    error = json.loads(body)
    assert set(error) == {"error"} and set(error["error"]) == {"code", "message", "details"}
    return status, headers, error["error"]


@pytest.mark.parametrize("method", ["TRACE", "CONNECT", "PROPFIND"])
def test_an_unknown_method_is_405_with_allow(api: str, method: str) -> None:
    status, headers, error = raw_error(api, f"{method} /v1/health HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert status == 405 and error["code"] == "method_not_allowed"
    assert headers["allow"] == "GET" and error["details"]["allowed_methods"] == ["GET"]
    status, _, error = raw_error(api, f"{method} /v1/nowhere HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert status == 404 and error["code"] == "not_found"


@pytest.mark.parametrize("length", ["abc", "-1", "1e3", "12, 13", "٣"])
def test_a_malformed_content_length_is_400(api: str, length: str) -> None:
    request = f"POST /v1/auth/local-login HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n{{}}"
    status, headers, error = raw_error(api, request.encode())
    assert status == 400 and error["code"] == "bad_request" and error["details"] == {"header": "Content-Length"}
    assert headers["connection"] == "close"


def test_two_different_content_lengths_are_400(api: str) -> None:
    request = b"POST /v1/auth/local-login HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}"
    status, _, error = raw_error(api, request)
    assert status == 400 and error["code"] == "bad_request"


@pytest.mark.parametrize(
    ("request_bytes", "status", "code"),
    [
        (b"GET /v1/health HTTP/1.1\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n", 431, "request_header_fields_too_large"),
        (
            b"".join(b"X-H%d: 1\r\n" % i for i in range(101)).join([b"GET /v1/health HTTP/1.1\r\n", b"\r\n"]),
            431,
            "request_header_fields_too_large",
        ),
        (b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n", 414, "uri_too_long"),
        (b"GET /v1/health HTTP/2.0\r\n\r\n", 505, "http_version_not_supported"),
        (b"GET /v1/health HTTP/x\r\n\r\n", 400, "bad_request"),
        (b"GET / v1 /health HTTP/1.1\r\n\r\n", 400, "bad_request"),
    ],
    ids=["header-over-64k", "over-100-headers", "request-line-over-64k", "http-2", "bad-version", "bad-syntax"],
)
def test_what_http_server_refuses_itself_is_in_the_error_format(
    api: str, request_bytes: bytes, status: int, code: str
) -> None:
    got, headers, error = raw_error(api, request_bytes)
    assert (got, error["code"]) == (status, code)
    assert headers["connection"] == "close"


def test_the_connection_still_serves_after_a_normal_request(api: str) -> None:
    status, _, body = raw_exchange(api, b"GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert status == 200 and json.loads(body)["status"] == "ok"


def test_a_chunked_body_is_refused_not_dropped(api: str) -> None:
    """chalice local reads Content-Length bodies only: a chunked body was silently taken as none."""
    body = b'{"login": "ada"}'
    request = (
        b"POST /v1/auth/local-login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n" + b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n"
    )
    status, headers, error = raw_error(api, request)
    assert status == 411 and error["code"] == "length_required"
    assert headers["connection"] == "close"
