"""``platform regions create|show|approve|delete`` against an in-memory double of the regions routes
(chalicelib/api/regions.py), whose answers are checked against the API's own response model (unit tier:
no network). The real CLI against the real API runs in tests/functional/test_regions.py."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.unit.test_cli_commands import Cli, FakeApi


def region_answer(name: str, status: str, **extra: Any) -> dict[str, Any]:
    from chalicelib.api.schemas.regions import RegionDetailOut

    zero = {"cpu_millicores": 0, "memory_mib": 0}
    answer = {
        "name": name,
        "display_name": f"{name} (aws us-east-1)",
        "cloud": "aws",
        "cloud_region": "us-east-1",
        "size": "small",
        "status": status,
        "health": "healthy" if status == "active" else "unavailable",
        "status_at": "2026-11-10T00:00:00Z",
        "managed": True,
        "require_approval": True,
        "attempt": 1,
        "action": "create",
        "created_by": "ops",
        "capacity": zero,
        "used": zero,
        "free": zero,
        "namespaces": 0,
        "clusters": [],
        "plan": None,
        "failure_step": None,
        "failure_reason": None,
        "log_excerpt": None,
        **extra,
    }
    return RegionDetailOut.model_validate(answer).model_dump(mode="json")


class RegionsApi(FakeApi):
    """:class:`FakeApi` plus the regions routes: each GET answers the next scripted status."""

    def __init__(self) -> None:
        super().__init__()
        self.users["ops"] = {"login": "ops", "id": 9, "platform_admin": True}
        self.script: list[dict[str, Any]] = []
        self.current: dict[str, Any] | None = None

    def handle(self, base_url: str, token: str | None, method: str, path: str, body: Any) -> Any:
        route = urlsplit(path).path
        listing = route == "/v1/regions" and method == "GET"
        if listing or not re.fullmatch(r"/v1/regions(/[^/]+(/approve|/retry)?)?", route):
            return super().handle(base_url, token, method, path, body)
        self.calls.append((base_url, token, method, path, body))
        if self.sessions.get(token or "") is None:
            self.fail(401, "unauthorized", "the token is missing, expired or revoked")
        if method == "POST" and route == "/v1/regions":
            self.current = region_answer(body["name"], "planning", cloud=body["cloud"], cloud_region=body["region"])
            return self.current
        if method == "GET" and self.script:
            self.current = self.script.pop(0)
        if self.current is None:
            self.fail(404, "not_found", "no such region")
        if route.endswith("/approve"):
            self.current = {**self.current, "status": "applying"}
        return self.current


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    c = Cli(tmp_path, RegionsApi())
    c.log_in("ops")
    return c


def test_a_cloud_s_region_is_needed_except_on_the_local_cloud(cli: Cli) -> None:
    r = cli("regions", "create", "eu-west", "--cloud", "aws")
    assert r.code == 2 and "pass --region (e.g. us-east-1)" in r.err
    assert cli.api.paths() == []  # nothing asked of the API
    assert cli("regions", "create", "local-2", "--cloud", "local", "-o", "json").code == 0
    assert cli.api.calls[-1][4]["region"] == "local"


def test_create_waits_through_the_steps_and_a_failure_shows_terraform_s_reason(cli: Cli) -> None:
    api: Any = cli.api
    api.script = [
        region_answer("eu-west", "planning"),
        region_answer("eu-west", "applying", plan={"add": 42, "change": 0, "destroy": 0}),
        region_answer(
            "eu-west",
            "failed",
            plan={"add": 42, "change": 0, "destroy": 0},
            failure_step="Apply",
            failure_reason="Error: creating EKS Cluster (eu-west): AccessDeniedException",
            log_excerpt="aws_eks_cluster.this: Creating...\nError: creating EKS Cluster",
        ),
    ]
    r = cli("regions", "create", "eu-west", "--cloud", "aws", "--region", "us-east-1", "--wait")
    assert r.code == 1
    assert "region eu-west: planning\nregion eu-west: applying\nregion eu-west: failed" in r.err
    assert "failed: Error: creating EKS Cluster (eu-west): AccessDeniedException" in r.err
    assert "42 to add, 0 to change, 0 to destroy" in r.out
    assert "failed at:" in r.out and "  aws_eks_cluster.this: Creating..." in r.out  # the log's end
    assert cli.sleeps == [2.0, 2.0]


def test_approve_shows_the_plan_and_needs_a_confirmation(cli: Cli) -> None:
    api: Any = cli.api
    waiting = region_answer("eu-west", "awaiting_approval", plan={"add": 42, "change": 0, "destroy": 0})
    api.current = waiting
    shown = cli("regions", "show", "eu-west")
    assert "42 to add, 0 to change, 0 to destroy" in shown.out
    assert "platform regions approve eu-west" in shown.out
    refused = cli("regions", "approve", "eu-west")  # no terminal and no --yes
    assert refused.code == 2 and "--yes" in refused.err
    assert not [p for p in api.paths() if p.endswith("/approve")]  # nothing approved
    approved = cli("regions", "approve", "eu-west", "--yes")
    assert approved.code == 0 and "status:    applying" in approved.out
    assert "the plan would do 42 to add" in approved.err
    assert api.paths()[-1] == "POST /v1/regions/eu-west/approve"


def test_delete_asks_for_the_force_it_means(cli: Cli) -> None:
    api: Any = cli.api
    api.current = region_answer("eu-west", "active")
    assert cli("regions", "delete", "eu-west").code == 2  # no terminal and no --yes
    assert cli("regions", "delete", "eu-west", "--yes", "--force").code == 0
    assert api.paths()[-1] == "DELETE /v1/regions/eu-west?force=true"
