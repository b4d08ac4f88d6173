"""Structured logs: JSON lines with a request id, secrets masked."""

from __future__ import annotations

import json
from typing import Any

from chalicelib.logs import get_logger, redact, register_secret
from tests.conftest import read_log


def test_registered_secrets_and_credential_shapes_are_masked(secret: Any) -> None:
    webhook_secret = secret("whs-registered-0f9a8b7c6d")
    register_secret(webhook_secret)
    line = redact(f"secret={webhook_secret} auth=Bearer abcdefghijklmnop token=ghp_{'a' * 36} key=sk_test_12345678")
    assert webhook_secret not in line
    assert "abcdefghijklmnop" not in line and "ghp_" not in line and "sk_test_1234" not in line
    assert line.count("***") == 4


def test_credentials_in_urls_are_masked_by_the_one_rule(secret: Any) -> None:
    password = secret("hunter2-Pa55word")
    token = secret("glpat-0a1b2c3d4e5f6g7h")
    line = redact(
        f"fatal: https://x-access-token:{password}@github.com/acme/hello.git "
        f"and https://gitlab.example.com/acme/hello.git?private_token={token}&ref=main"
    )
    assert password not in line and token not in line
    assert "https://***@github.com/acme/hello.git" in line
    assert "?private_token=***&ref=main" in line
    get_logger().info("fetch failed", extra={"source": f"https://ada:{password}@github.com/acme/hello.git"})
    assert password not in read_log()
    assert "https://***@github.com/acme/hello.git" in read_log()


def test_a_log_line_with_a_registered_secret_is_written_masked(secret: Any) -> None:
    value = secret("runtime-credential-5e4d3c2b1a")
    register_secret(value)
    get_logger().info("minted", extra={"credential": value})
    assert value not in read_log()
    assert '"credential":"***"' in read_log()


def test_every_request_log_line_is_json_with_a_request_id(client: Any, secret: Any) -> None:
    token = secret("mp_pat_s3cr3tT0kenValue0123456789")
    r = client.http.get("/v1/health", headers={"Authorization": f"Bearer {token}", "User-Agent": "probe/1"})
    request_id = r.headers["X-Request-Id"]
    lines = [json.loads(line) for line in read_log().splitlines() if line.startswith("{")]
    mine = [line for line in lines if line.get("request_id") == request_id]
    assert mine, "no log line carries the request id"
    access = [line for line in mine if line["message"] == "request"][-1]
    assert access["http"] == {**access["http"], "method": "GET", "path": "/v1/health", "status": 200}
    assert access["http"]["user_agent"] == "probe/1"
