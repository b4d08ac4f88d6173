"""A namespace placed on a cluster reached through the micro runtime API (MicroRuntime, against the
micro runtime stand-in): onboarding creates the namespace, quota and policy there with micro's wire
protocol, a deploy starts the service there, and a runtime that stops answering fails the deployment
after the retries, with the lock released."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from chalicelib.domain.clock import SystemClock
from localcloud.standins.micro import MicroRuntimeStandIn
from tests.fixtures import start_platform
from tests.helpers import ROOT

NS = "acme-frontend"


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory, env_restored: None) -> Iterator[dict[str, Any]]:
    from chalicelib.composition import get_container, set_container
    from chalicelib.domain.ports import Cluster, Region

    micro = MicroRuntimeStandIn(token="micro-cluster-credential-123456").start()
    os.environ.update(
        {
            "MICRO_RUNTIME_TOKEN": "micro-cluster-credential-123456",
            "PLATFORM_RUNTIME_RETRIES": "1",
            "PLATFORM_RUNTIME_BACKOFF_SECONDS": "0.05",
        }
    )
    cloud = start_platform(tmp_path_factory.mktemp("remote"), SystemClock())
    c = get_container()
    c.regions.put(Region("remote-1", "aws", "A micro cluster", "active"))
    c.regions.add_cluster(Cluster("remote-a", "remote-1", "aws", micro.url, "active", capacity=10))
    token = requests.post(f"{cloud.api_url}/v1/auth/local-login", json={"login": "ada"}, timeout=10).json()["token"]
    h = {"Authorization": f"Bearer {token}"}
    r = requests.post(
        f"{cloud.api_url}/v1/namespaces",
        headers=h,
        timeout=10,
        json={"github_org": "acme", "github_team": "frontend", "region": "remote-1"},
    )
    assert r.status_code == 202
    arn = cloud.resources["state_machines"]["onboarding"].replace(":stateMachine:", ":execution:")
    assert cloud.wait_execution(f"{arn}:{NS}", timeout=60)["status"] == "SUCCEEDED"
    repo = tmp_path_factory.mktemp("repo") / "hello"
    subprocess.run(
        ["bash", str(ROOT / "examples" / "make-example-repo.sh"), str(repo)], check=True, capture_output=True
    )
    yield {"cloud": cloud, "micro": micro, "h": h, "repo": repo}
    cloud.stop()
    micro.stop()
    set_container(None)


def deploy_and_wait(p: dict[str, Any]) -> dict[str, Any]:
    api = p["cloud"].api_url
    dep = requests.post(
        f"{api}/v1/namespaces/{NS}/services/hello/deployments",
        headers=p["h"],
        timeout=10,
        json={"source": str(p["repo"]), "ref": "HEAD"},
    ).json()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        d = requests.get(
            f"{api}/v1/namespaces/{NS}/services/hello/deployments/{dep['id']}", headers=p["h"], timeout=10
        ).json()
        if d["status"] not in ("queued", "in_progress"):
            return dict(d)
        time.sleep(0.3)
    raise AssertionError("the deployment did not finish")


def test_onboarding_created_the_namespace_through_micro_s_runtime_api(remote: dict[str, Any]) -> None:
    state = remote["micro"].state()
    assert "platform-quota" in state[NS]["quotas"] and "platform-isolation" in state[NS]["policies"]
    creates = remote["micro"].received("Create")
    quota = next(r for r in creates if "resourcequota" in r["body"]["resource"])
    assert quota["headers"]["micro-namespace"] == NS and quota["authenticated"] is True
    assert quota["body"]["resource"]["resourcequota"]["limits"]["Memory"] == 1024


def test_a_deploy_starts_the_service_on_the_cluster(remote: dict[str, Any]) -> None:
    dep = deploy_and_wait(remote)
    assert dep["status"] == "succeeded", dep
    services = remote["micro"].state()[NS]["services"]
    assert any(s["name"] == "hello" and s["version"] == dep["id"] for s in services)


def test_an_unreachable_runtime_fails_the_deployment_after_retries_and_releases_the_lock(
    remote: dict[str, Any],
) -> None:
    remote["micro"].stop()
    dep = deploy_and_wait(remote)
    assert dep["status"] == "failed", dep
    assert "did not answer" in dep["reason"] or "could not be reached" in dep["reason"]
    cloud = remote["cloud"]
    deadline = time.monotonic() + 30  # Release runs after the deployment is failed (and reported)
    while "Item" in cloud.client("dynamodb").get_item(
        TableName=cloud.decl.table_name, Key={"PK": {"S": f"NS#{NS}#SVC#hello"}, "SK": {"S": "LOCK"}}
    ):
        assert time.monotonic() < deadline, "the lock was not released"
        time.sleep(0.1)
