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
