"""The region micro-local: its cluster is the micro stand-in (micro v3.19.0's gateway, runtime and auth),
driven through MicroRuntime as a real cluster is. Onboarding creates the namespace, quota, policy and
one runtime account per member there; a push deploys acme/hello from the GitHub stand-in's git (micro
fetches the commit itself, with a short-lived installation token); logs, a config value holding `=`, a
rollback; a removed member's runtime token is refused; a runtime that stops answering fails the
deployment after the retries, with the lock released."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from chalicelib.domain.clock import SystemClock
from tests.conftest import USED_SECRETS
from tests.fixtures import start_platform

NS = "acme-backend"


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory, env_restored: None) -> Iterator[dict[str, Any]]:
    import os

    from chalicelib.composition import set_container

    os.environ.update({"PLATFORM_RUNTIME_RETRIES": "1", "PLATFORM_RUNTIME_BACKOFF_SECONDS": "0.05"})
    cloud = start_platform(tmp_path_factory.mktemp("remote"), SystemClock())
    USED_SECRETS.add(os.environ["MICRO_RUNTIME_TOKEN"])  # the log check looks for the platform's micro token
    api = cloud.api_url

    def login(who: str) -> dict[str, str]:
        token = requests.post(f"{api}/v1/auth/local-login", json={"login": who}, timeout=10).json()["token"]
        return {"Authorization": f"Bearer {token}"}

    ada = login("ada")
    r = requests.post(
        f"{api}/v1/namespaces",
        headers=ada,
        timeout=10,
        json={"github_org": "acme", "github_team": "backend", "region": "micro-local"},
    )
    assert r.status_code == 202, r.text
    arn = cloud.resources["state_machines"]["onboarding"].replace(":stateMachine:", ":execution:")
    assert cloud.wait_execution(f"{arn}:{NS}", timeout=60)["status"] == "SUCCEEDED"
    yield {"cloud": cloud, "api": api, "micro": cloud.micro, "h": ada, "login": login}
    cloud.stop()
    set_container(None)


def wait_for(predicate: Any, timeout: float = 90, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def finished(p: dict[str, Any], dep_id: str) -> dict[str, Any] | None:
    d = requests.get(f"{p['api']}/v1/namespaces/{NS}/services/hello/deployments/{dep_id}", headers=p["h"], timeout=10)
    body = d.json()
    return dict(body) if body["status"] not in ("queued", "in_progress") else None


def deployment_of(p: dict[str, Any], sha: str) -> dict[str, Any] | None:
    r = requests.get(f"{p['api']}/v1/namespaces/{NS}/services/hello/deployments", headers=p["h"], timeout=10)
    if r.status_code != 200:
        return None
    found = [d for d in r.json()["deployments"] if d["commit"] == sha or d["ref"] == sha]
    return found[0] if found and found[0]["status"] not in ("queued", "in_progress") else None


def greeting(p: dict[str, Any]) -> dict[str, Any]:
    """What the running process answers (its address is the stand-in's: micro gives none)."""
    [svc] = p["micro"].state()[NS]["services"]
    return dict(requests.get(svc["address"], timeout=10).json())


def test_onboarding_made_the_namespace_and_one_account_per_member_on_micro(remote: dict[str, Any]) -> None:
    micro = remote["micro"]
    state = micro.state()
    assert "platform-quota" in state[NS]["quotas"] and "platform-isolation" in state[NS]["policies"]
    quota = next(r for r in micro.received("Create") if "resourcequota" in r["body"]["resource"])
    assert quota["headers"]["micro-namespace"] == "micro" and quota["body"]["options"]["namespace"] == NS
    assert quota["account"] == {"id": "admin", "issuer": "micro"}
    accounts = {a.metadata.get("login"): a for a in micro.auth.accounts.values() if a.issuer == NS}
    assert set(accounts) == {"ada", "linus", "grace"}
    assert accounts["grace"].scopes == ["admin"] and accounts["grace"].id.startswith("grace-")
    # the region's two addresses: the API for the platform, the proxy for the micro CLI
    access = requests.get(f"{remote['api']}/v1/namespaces/{NS}/runtime", headers=remote["h"], timeout=10).json()
    assert access["api_address"] == micro.url
    assert access["proxy_address"] == f"127.0.0.1:{remote['cloud'].micro_proxy.port}"
    assert access["account"] == accounts["ada"].id and access["scopes"] == ["admin"]
    inspected = micro.auth.inspect(access["auth_token"])
    assert inspected is not None and inspected.id == accounts["ada"].id and inspected.issuer == NS
    expires = datetime.fromisoformat(access["expires_at"])
    assert 0 < (expires - datetime.now(UTC)).total_seconds() <= 3600


def test_a_push_deploys_the_commit_micro_fetches_itself(remote: dict[str, Any]) -> None:
    api, gh, micro = remote["api"], remote["cloud"].github, remote["micro"]
    linus = remote["login"]("linus")
    r = requests.post(f"{api}/v1/namespaces/{NS}/repos", headers=linus, json={"repo": "acme/hello"}, timeout=10)
    assert r.status_code == 201, r.text
    sha = gh.commit("acme", "hello", {"VERSION": "1"}, "first push to micro-local")
    dep = wait_for(lambda: deployment_of(remote, sha), what="the push's deployment")
    assert dep["status"] == "succeeded", dep
    [svc] = micro.state()[NS]["services"]
    assert svc["version"] == sha and svc["source"] == "github.com/acme/hello"
    assert svc["metadata"]["deployment_id"] == dep["id"] and svc["status"] == "running"
    create = [c for c in micro.received("Create") if "service" in c["body"]["resource"]][-1]
    assert create["body"]["options"]["secrets"] == {"GIT_CREDENTIALS": "***"}  # acme/hello is private
    assert greeting(remote)["greeting"] == "hi from micro.yaml"
    remote["first"] = dep


def test_logs_come_without_time_and_say_since_was_not_applied(remote: dict[str, Any]) -> None:
    r = requests.get(
        f"{remote['api']}/v1/namespaces/{NS}/services/hello/logs",
        headers=remote["h"],
        params={"since": "2026-01-01T00:00:00Z", "tail": 5},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert any("hello listening on" in line["message"] for line in body["lines"])
    assert all(line["timestamp"] is None for line in body["lines"])
    assert "carry no time" in body["since_ignored"]


def test_a_config_value_holding_equals_reaches_the_process_intact(remote: dict[str, Any]) -> None:
    value = "https://example.com/cb?a=1&b=2=="
    r = requests.put(
        f"{remote['api']}/v1/namespaces/{NS}/services/hello/config/GREETING",
        headers=remote["h"],
        json={"value": value},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    dep_id = r.json()["redeploy"]["id"]
    dep = wait_for(lambda: finished(remote, dep_id), what="the config redeploy")
    assert dep["status"] == "succeeded", dep
    assert greeting(remote)["greeting"] == value
    create = [c for c in remote["micro"].received("Create") if "service" in c["body"]["resource"]][-1]
    assert "GREETING" in create["body"]["options"]["secrets"]  # not in env: NewDeployment would drop it


def test_a_rollback_runs_the_earlier_deployment_again(remote: dict[str, Any]) -> None:
    gh = remote["cloud"].github
    sha = gh.commit("acme", "hello", {"VERSION": "2"}, "second push")
    assert wait_for(lambda: deployment_of(remote, sha), what="the second push")["status"] == "succeeded"
    r = requests.post(
        f"{remote['api']}/v1/namespaces/{NS}/services/hello/rollback",
        headers=remote["h"],
        json={"deployment_id": remote["first"]["id"]},
        timeout=10,
    )
    assert r.status_code == 202, r.text
    dep = wait_for(lambda: finished(remote, r.json()["deployment"]["id"]), what="the rollback")
    assert dep["status"] == "succeeded", dep
    [svc] = remote["micro"].state()[NS]["services"]
    assert svc["version"] == remote["first"]["commit"] and svc["status"] == "running"


def test_a_removed_member_s_runtime_token_is_refused(remote: dict[str, Any]) -> None:
    api, micro, gh = remote["api"], remote["micro"], remote["cloud"].github
    grace = remote["login"]("grace")
    access = requests.get(f"{api}/v1/namespaces/{NS}/runtime", headers=grace, timeout=10).json()
    her = {"Authorization": f"Bearer {access['auth_token']}", "Micro-Namespace": "micro"}
    read = {"options": {"namespace": NS}}
    assert requests.post(f"{micro.url}/runtime/Runtime/Read", json=read, headers=her, timeout=10).status_code == 200
    gh.remove_team_member("acme", "backend", "grace")
    wait_for(
        lambda: requests.get(f"{api}/v1/namespaces/{NS}", headers=grace, timeout=10).status_code == 404,
        what="grace's removal",
    )
    # the runtime's accounts are reconciled right after the platform's records (membership.py): wait for it
    wait_for(
        lambda: (
            requests.post(f"{micro.url}/runtime/Runtime/Read", json=read, headers=her, timeout=10).status_code == 401
        ),
        what="grace's runtime account removed",
    )
    refused = requests.post(f"{micro.url}/runtime/Runtime/Read", json=read, headers=her, timeout=10)
    assert refused.status_code == 401 and refused.text == "unauthorized request\n"
    assert access["account"] not in {a.id for a in micro.auth.accounts.values()}
    renew = requests.post(
        f"{micro.url}/auth/Auth/Token",
        json={"refresh_token": access["refresh_token"], "options": {"namespace": NS}},
        timeout=10,
    )
    assert renew.status_code == 400  # her refresh token went with the account


def test_a_viewer_s_runtime_token_reads_only(remote: dict[str, Any]) -> None:
    api, micro = remote["api"], remote["micro"]
    added = requests.post(f"{api}/v1/namespaces/{NS}/members", headers=remote["h"], json={"login": "ops"}, timeout=10)
    assert added.status_code == 201
    access = requests.get(f"{api}/v1/namespaces/{NS}/runtime", headers=remote["login"]("ops"), timeout=10).json()
    assert access["scopes"] == []
    viewer = {"Authorization": f"Bearer {access['auth_token']}", "Micro-Namespace": "micro"}
    read = requests.post(
        f"{micro.url}/runtime/Runtime/Read", json={"options": {"namespace": NS}}, headers=viewer, timeout=10
    )
    assert read.status_code == 200 and read.json()["services"]
    logs = requests.post(
        f"{micro.url}/runtime/Runtime/Logs",
        json={"service": "hello", "options": {"namespace": NS}},
        headers=viewer,
        timeout=10,
    )
    assert logs.status_code == 401  # AuthorizeAdmin: no admin scope


def test_a_runtime_that_stops_answering_fails_the_deployment_after_retries_and_releases_the_lock(
    remote: dict[str, Any],
) -> None:
    resumed = requests.post(
        f"{remote['api']}/v1/namespaces/{NS}/services/hello/auto-deploy",
        headers=remote["h"],
        json={"enabled": True},
        timeout=10,
    )
    assert resumed.status_code == 200, resumed.text  # the rollback paused it
    micro = remote["micro"]
    micro.fail_next(1000, status=503)
    try:
        sha = remote["cloud"].github.commit("acme", "hello", {"VERSION": "3"}, "a push the runtime never takes")
        dep = wait_for(lambda: deployment_of(remote, sha), what="the failed deployment")
    finally:
        micro.clear()
    assert dep["status"] == "failed", dep
    assert "did not answer" in dep["reason"] or "could not be reached" in dep["reason"]
    cloud = remote["cloud"]

    def released() -> bool:
        key = {"PK": {"S": f"NS#{NS}#SVC#hello"}, "SK": {"S": "LOCK"}}
        return "Item" not in cloud.client("dynamodb").get_item(TableName=cloud.decl.table_name, Key=key)

    wait_for(released, timeout=30, what="the lock's release")


def test_offboarding_deletes_the_services_the_accounts_and_the_namespace(remote: dict[str, Any]) -> None:
    """The services are deleted before the namespace: micro's manager keeps a service's record when only
    its namespace goes, and starts it again (manager.go checkServices)."""
    micro = remote["micro"]
    assert micro.runtime.records and any(a.issuer == NS for a in micro.auth.accounts.values())
    r = requests.delete(f"{remote['api']}/v1/namespaces/{NS}", headers=remote["h"], timeout=10)
    assert r.status_code == 202, r.text
    arn = remote["cloud"].resources["state_machines"]["offboarding"].replace(":stateMachine:", ":execution:")
    assert remote["cloud"].wait_execution(f"{arn}:{NS}-offboard-1", timeout=60)["status"] == "SUCCEEDED"
    assert NS not in micro.state()
    assert not [r for r in micro.runtime.records.values() if r.namespace == NS]
    assert not [a for a in micro.auth.accounts.values() if a.issuer == NS]
