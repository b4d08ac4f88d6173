"""Deploys on the local cloud: the example service deployed from a git repository through the API,
a broken commit rolled back while the previous version keeps answering, an invalid manifest failing
fast, rollbacks without rebuilds, config vars and secrets, one deploy at a time, and services coming
back after a restart."""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from chalicelib.domain.clock import SystemClock
from chalicelib.domain.services.deploys import TERMINAL
from localcloud.cloud import LocalCloud
from tests.fixtures import start_platform
from tests.helpers import ROOT

NS = "acme-backend"
# The example, changed so that "/" also shows a digest of the secret it was given (never the secret).
SECRET_PROBE = """
import hashlib, os
_original = Handler.do_GET
def do_GET(self):
    if self.path == "/secret-digest":
        value = os.environ.get("API_KEY", "")
        self.reply(200, hashlib.sha256(value.encode()).hexdigest().encode(), "text/plain")
    else:
        _original(self)
Handler.do_GET = do_GET
"""


def git(repo: Path, *args: str) -> str:
    out = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()


def commit(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


class Api:
    def __init__(self, base: str, token: str) -> None:
        self.base, self.token = base, token

    def __call__(self, method: str, path: str, body: Any = None) -> requests.Response:
        return requests.request(
            method, f"{self.base}{path}", json=body, timeout=30, headers={"Authorization": f"Bearer {self.token}"}
        )


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory, env_restored: None) -> Iterator[dict[str, Any]]:
    from chalicelib.composition import set_container

    data = tmp_path_factory.mktemp("deploys")
    cloud = start_platform(data, SystemClock())
    token = requests.post(f"{cloud.api_url}/v1/auth/local-login", json={"login": "ada"}, timeout=10).json()["token"]
    api = Api(cloud.api_url, token)
    assert (
        api("POST", "/v1/namespaces", {"github_org": "acme", "github_team": "backend", "region": "local"}).status_code
        == 202
    )
    arn = cloud.resources["state_machines"]["onboarding"].replace(":stateMachine:", ":execution:")
    assert cloud.wait_execution(f"{arn}:{NS}", timeout=60)["status"] == "SUCCEEDED"
    repo = tmp_path_factory.mktemp("repo") / "hello"
    subprocess.run(
        ["bash", str(ROOT / "examples" / "make-example-repo.sh"), str(repo)], check=True, capture_output=True
    )
    (repo / "server.py").write_text(
        (repo / "server.py")
        .read_text()
        .replace('if __name__ == "__main__":', SECRET_PROBE + '\nif __name__ == "__main__":')
    )
    first = commit(repo, "probe")
    state = {"cloud": cloud, "api": api, "repo": repo, "first": first, "data": data}
    yield state
    state["cloud"].stop()
    set_container(None)


def deploy(p: dict[str, Any], ref: str, svc: str = "hello", wait: bool = True) -> dict[str, Any]:
    r = p["api"]("POST", f"/v1/namespaces/{NS}/services/{svc}/deployments", {"source": str(p["repo"]), "ref": ref})
    assert r.status_code == 202, r.text
    dep = r.json()
    return wait_deployment(p, dep["id"], svc) if wait else dep


def wait_deployment(p: dict[str, Any], dep_id: str, svc: str = "hello", timeout: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        dep = p["api"]("GET", f"/v1/namespaces/{NS}/services/{svc}/deployments/{dep_id}").json()
        if dep["status"] in TERMINAL:
            return dict(dep)
        time.sleep(0.3)
    raise AssertionError(f"deployment {dep_id} did not finish")


def assert_every_step_ended(dep: dict[str, Any]) -> None:
    """Every step the deployment began has ended: an end time and an outcome."""
    assert dep["steps"], dep
    for step in dep["steps"]:
        assert step["ended_at"] is not None and step["status"] not in ("started", "waiting"), dep["steps"]


def answer(p: dict[str, Any], path: str = "/") -> requests.Response:
    service = p["api"]("GET", f"/v1/namespaces/{NS}/services/hello").json()
    return requests.get(service["address"] + path, timeout=10)


def test_deploying_the_example_answers_on_its_address(platform: dict[str, Any]) -> None:
    dep = deploy(platform, "HEAD")
    assert dep["status"] == "succeeded", dep
    assert dep["commit"] == platform["first"]
    assert [s["name"] for s in dep["steps"]][:3] == ["lock", "build", "start"]
    service = platform["api"]("GET", f"/v1/namespaces/{NS}/services/hello").json()
    assert service["status"] == "running" and service["current_commit"] == platform["first"]
    body = answer(platform).json()
    assert body == {"service": "hello", "version": dep["id"], "namespace": NS, "greeting": "hi from micro.yaml"}


def test_a_deployed_service_listens_on_loopback_only(platform: dict[str, Any]) -> None:
    """The local runtime gives the address to listen on (HOST=127.0.0.1): the example is reached through
    its address, never on the machine's other addresses."""
    import socket

    from chalicelib.composition import get_container

    (running,) = [s for s in get_container().deploys.runtime_view(NS, "hello") if s.status == "running"]
    port = int(running.metadata["port"])
    socket.create_connection(("127.0.0.1", port), timeout=5).close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.2", port), timeout=5)  # another address of this machine (lo)
    assert answer(platform).status_code == 200


def test_a_commit_that_crashes_at_start_is_rolled_back_and_the_previous_version_keeps_answering(
    platform: dict[str, Any],
) -> None:
    before = answer(platform).json()["version"]
    repo = platform["repo"]
    (repo / "server.py").write_text("import sys\nprint('boom: missing DATABASE_URL')\nsys.exit(3)\n")
    broken = commit(repo, "broken")
    dep = deploy(platform, broken)
    assert dep["status"] == "rolled_back", dep
    assert "exit" in dep["reason"] and dep["commit"] == broken
    assert_every_step_ended(dep)
    assert answer(platform).json()["version"] == before
    git(repo, "revert", "--no-edit", "HEAD")


def test_a_service_never_healthy_is_rolled_back_at_its_deadline(platform: dict[str, Any]) -> None:
    before = answer(platform).json()["version"]
    repo = platform["repo"]
    manifest = (repo / "micro.yaml").read_text()
    (repo / "micro.yaml").write_text(
        manifest.replace("health: /health", "health: /never-green").replace("deadline: 60", "deadline: 30")
    )
    unhealthy = commit(repo, "health never green")
    started = time.monotonic()
    dep = deploy(platform, unhealthy)
    assert dep["status"] == "rolled_back", dep
    assert dep["reason"] == "not healthy before the deadline"
    assert 30 <= time.monotonic() - started < 60
    assert answer(platform).json()["version"] == before
    (repo / "micro.yaml").write_text(manifest)
    commit(repo, "healthy again")


def test_an_invalid_manifest_fails_fast_naming_the_field_and_line(platform: dict[str, Any]) -> None:
    before = answer(platform).json()["version"]
    repo = platform["repo"]
    manifest = (repo / "micro.yaml").read_text()
    (repo / "micro.yaml").write_text(manifest.replace("port: 8080", "port: 99999"))
    bad = commit(repo, "bad manifest")
    started = time.monotonic()
    dep = deploy(platform, bad)
    assert dep["status"] == "failed" and time.monotonic() - started < 30
    assert "services[0].port" in dep["reason"] and "line" in dep["reason"]
    build = next(step for step in dep["steps"] if step["name"] == "build")
    assert build["status"] == "failed" and "services[0].port" in build["detail"]
    assert_every_step_ended(dep)
    assert answer(platform).json()["version"] == before
    (repo / "micro.yaml").write_text(manifest)
    commit(repo, "fix manifest")


def test_a_secret_config_var_reaches_the_process_and_never_an_answer(platform: dict[str, Any], secret: Any) -> None:
    value = secret("sk_live_" + "Zq9" * 8)
    r = platform["api"](
        "PUT",
        f"/v1/namespaces/{NS}/services/hello/config",
        {"vars": {"API_KEY": {"value": value, "secret": True}, "GREETING": {"value": "hola"}}},
    )
    assert r.status_code == 200, r.text
    assert value not in r.text
    redeploy = r.json()["redeploy"]
    assert redeploy is not None
    assert wait_deployment(platform, redeploy["id"])["status"] == "succeeded"
    assert answer(platform).json()["greeting"] == "hola"
    assert answer(platform, "/secret-digest").text == hashlib.sha256(value.encode()).hexdigest()
    listed = platform["api"]("GET", f"/v1/namespaces/{NS}/services/hello/config").json()["vars"]
    assert {"key": "API_KEY", "secret": True, "value": None} in listed
    assert value not in platform["api"]("GET", f"/v1/namespaces/{NS}/services/hello/logs").text
    bad = platform["api"]("PUT", f"/v1/namespaces/{NS}/services/hello/config/MICRO_X", {"value": "1"})
    assert bad.status_code == 422


def test_rollback_redeploys_a_kept_artifact_and_pauses_auto_deploy(platform: dict[str, Any]) -> None:
    api = platform["api"]
    deps = api("GET", f"/v1/namespaces/{NS}/services/hello/deployments").json()["deployments"]
    first_ok = [d for d in deps if d["status"] == "succeeded"][-1]
    r = api("POST", f"/v1/namespaces/{NS}/services/hello/rollback", {"deployment_id": first_ok["id"]})
    assert r.status_code == 202, r.text
    assert r.json()["auto_deploy_paused"] is True and "paused" in r.json()["message"]
    dep = wait_deployment(platform, r.json()["deployment"]["id"])
    assert dep["status"] == "succeeded" and dep["rollback_of"] == first_ok["id"]
    assert dep["commit"] == first_ok["commit"]
    assert not any(s["name"] == "build" and "commit" not in (s["detail"] or "") for s in dep["steps"])
    service = api("GET", f"/v1/namespaces/{NS}/services/hello").json()
    assert service["auto_deploy_paused"] is True
    resumed = api("POST", f"/v1/namespaces/{NS}/services/hello/auto-deploy", {"enabled": True}).json()
    assert resumed["auto_deploy_paused"] is False


def test_two_deploys_at_once_run_one_at_a_time_and_the_newest_commit_ends_up_current(
    platform: dict[str, Any],
) -> None:
    repo = platform["repo"]
    (repo / "VERSION").write_text("a")
    a = commit(repo, "a")
    (repo / "VERSION").write_text("b")
    b = commit(repo, "b")
    first = deploy(platform, a, wait=False)
    second = deploy(platform, b, wait=False)
    done = [wait_deployment(platform, first["id"]), wait_deployment(platform, second["id"])]
    assert done[1]["status"] == "succeeded"
    assert done[0]["status"] in ("succeeded", "superseded")
    service = platform["api"]("GET", f"/v1/namespaces/{NS}/services/hello").json()
    assert service["current_commit"] == b


def test_a_retried_request_with_the_same_idempotency_key_deploys_once(platform: dict[str, Any]) -> None:
    url = f"{platform['cloud'].api_url}/v1/namespaces/{NS}/services/hello/deployments"
    headers = {"Authorization": f"Bearer {platform['api'].token}", "Idempotency-Key": "ci-run-42"}
    body = {"source": str(platform["repo"]), "ref": "HEAD"}
    first = requests.post(url, json=body, headers=headers, timeout=30)
    again = requests.post(url, json=body, headers=headers, timeout=30)
    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"] and again.headers["Idempotent-Replayed"] == "true"
    other = requests.post(url, json={**body, "ref": "main"}, headers=headers, timeout=30)
    assert other.status_code == 422
    third = requests.post(url, json=body, headers=headers, timeout=30)  # the refused one did not replace it
    assert third.status_code == 202 and third.json()["id"] == first.json()["id"]
    wait_deployment(platform, first.json()["id"])
    ids = [
        d["id"] for d in platform["api"]("GET", f"/v1/namespaces/{NS}/services/hello/deployments").json()["deployments"]
    ]
    assert ids.count(first.json()["id"]) == 1 and len(ids) == len(set(ids))


def test_a_viewer_sees_deployments_but_not_their_logs(platform: dict[str, Any]) -> None:
    api = platform["api"]
    assert api("POST", f"/v1/namespaces/{NS}/members", {"login": "ops"}).status_code in (201, 409)
    ops_token = requests.post(
        f"{platform['cloud'].api_url}/v1/auth/local-login", json={"login": "ops"}, timeout=10
    ).json()["token"]
    ops = Api(platform["cloud"].api_url, ops_token)
    dep_id = api("GET", f"/v1/namespaces/{NS}/services/hello").json()["current_deployment_id"]
    as_viewer = ops("GET", f"/v1/namespaces/{NS}/services/hello/deployments/{dep_id}")
    assert as_viewer.status_code == 200 and not as_viewer.json()["logs"]
    assert api("GET", f"/v1/namespaces/{NS}/services/hello/deployments/{dep_id}").json()["logs"] is not None
    assert ops("GET", f"/v1/namespaces/{NS}/services/hello/logs").status_code == 403


def test_bad_input(platform: dict[str, Any]) -> None:
    api = platform["api"]
    r = api("POST", f"/v1/namespaces/{NS}/services/Not_A_Label/deployments", {"source": "/x", "ref": "HEAD"})
    assert r.status_code == 422
    r = api("POST", f"/v1/namespaces/{NS}/services/hello/deployments", {"source": "/x"})
    assert r.status_code == 422
    r = api("GET", f"/v1/namespaces/{NS}/services/nosuch")
    assert r.status_code == 404


def test_a_source_inside_the_platforms_data_is_refused_naming_the_field(
    platform: dict[str, Any], tmp_path: Path
) -> None:
    """Another namespace's artifact, the runtime's state, the key and table's directory: refused however
    the path is spelled (a symlink, `..`, a file:// URL), before anything is recorded."""
    api, data = platform["api"], platform["data"].resolve()
    link = tmp_path / "innocent-looking"
    link.symlink_to(data / "runtime", target_is_directory=True)
    around = "/".join([str(platform["repo"]), *[".."] * len(platform["repo"].parts)]) + str(data)
    sources = [
        str(data / "artifacts" / "other-ns" / "hello" / "01JAAAAAAAAAAAAAAAAAAAAAAA"),
        str(link),
        around,
        f"file://{data}",
        str(data / "local.key"),
    ]
    for source in sources:
        r = api("POST", f"/v1/namespaces/{NS}/services/intruder/deployments", {"source": source, "ref": "HEAD"})
        assert r.status_code == 422, (source, r.text)
        error = r.json()["error"]
        assert error["code"] == "validation_failed" and error["details"]["fields"][0]["field"] == "source"
    assert api("GET", f"/v1/namespaces/{NS}/services/intruder").status_code == 404  # nothing half-written


def test_a_manifest_nested_30000_levels_deep_fails_as_a_manifest_error_naming_its_line(
    platform: dict[str, Any],
) -> None:
    repo = platform["repo"]
    manifest = (repo / "micro.yaml").read_text()
    (repo / "micro.yaml").write_text("services: " + "[" * 30000 + "]" * 30000 + "\n")
    deep = commit(repo, "deep manifest")
    dep = deploy(platform, deep)
    assert dep["status"] == "failed", dep
    assert "micro.yaml line 1: is nested more than 32 levels deep" in dep["reason"]
    assert "RecursionError" not in dep["reason"]
    assert_every_step_ended(dep)
    (repo / "micro.yaml").write_text(manifest)
    commit(repo, "fix manifest")


def test_the_sweeper_ends_every_step_of_a_deployment_it_ends(platform: dict[str, Any]) -> None:
    from datetime import timedelta

    from chalicelib.adapters.dynamodb.deploys import DynamoDeployStore
    from chalicelib.composition import get_container
    from chalicelib.domain.ids import new_id
    from chalicelib.domain.services.deploys import Deployment, Service, Step

    get_container()  # binds the table
    store = DynamoDeployStore()
    long_ago = datetime.now(UTC) - timedelta(hours=1)
    store.save_service(Service(NS, "stuck", source=str(platform["repo"])))
    dep = Deployment(
        id=new_id(long_ago),
        namespace=NS,
        service="stuck",
        status="in_progress",
        source=str(platform["repo"]),
        ref="HEAD",
        created_at=long_ago,
        trigger={"kind": "api"},
        deadline=long_ago + timedelta(minutes=10),
        steps=[Step("lock", "succeeded", long_ago, long_ago), Step("build", "started", long_ago)],
    )
    store.create_deployment(dep, [])  # a build whose worker died: nothing will end it but the sweeper
    result, error = platform["cloud"].router.invoke("deploy-sweep", {})
    assert error is None and dep.id in result.get("failed", []), result
    swept = platform["api"]("GET", f"/v1/namespaces/{NS}/services/stuck/deployments/{dep.id}").json()
    assert swept["status"] == "failed" and "deadline" in swept["reason"]
    assert_every_step_ended(swept)
    assert [s["status"] for s in swept["steps"]] == ["succeeded", "failed"]


def test_a_source_carrying_credentials_is_refused_and_saying_how_to_deploy_a_private_repository(
    platform: dict[str, Any], secret: Any
) -> None:
    api = platform["api"]
    token = secret("ghs_" + "Pr1vateInstallat10nT0ken" * 2)
    password = secret("hunter2-Pa55word")
    for source in (
        f"https://x-access-token:{token}@github.com/acme/private.git",
        f"https://ada:{password}@github.com/acme/private.git",
        f"https://github.com/acme/private.git?access_token={password}",
    ):
        r = api("POST", f"/v1/namespaces/{NS}/services/private/deployments", {"source": source, "ref": "HEAD"})
        assert r.status_code == 422, r.text
        assert token not in r.text and password not in r.text
        error = r.json()["error"]
        assert error["details"]["fields"][0]["field"] == "source"
        assert "credentials" in error["message"] and f"POST /v1/namespaces/{NS}/repos" in error["message"]
    assert api("GET", f"/v1/namespaces/{NS}/services/private").status_code == 404  # nothing was written


def test_credentials_in_a_deployment_are_masked_when_stored_and_when_shown(
    platform: dict[str, Any], secret: Any
) -> None:
    from chalicelib.adapters.dynamodb.deploys import DeploymentItem, DynamoDeployStore
    from chalicelib.composition import get_container
    from chalicelib.domain.ids import new_id
    from chalicelib.domain.services.deploys import Deployment, Step

    api = platform["api"]
    token = secret("ghs_" + "St0redBeforeTheRule" * 2)
    password = secret("hunter2-St0red")
    source = f"https://x-access-token:{token}@github.com/acme/hello.git"
    get_container()  # binds the table
    now = datetime.now(UTC)
    # A deployment stored before credentials were refused and masked, written as it was then.
    old_id = new_id(now)
    pk, sk = DeploymentItem.key(NS, "hello", old_id)
    DeploymentItem(
        PK=pk,
        SK=sk,
        GSI1PK=f"NS#{NS}#DEPLOYMENTS",
        GSI1SK=f"DEP#{old_id}",
        ns=NS,
        service="hello",
        deployment_id=old_id,
        status="failed",
        source=source,
        ref="HEAD",
        trigger=json.dumps({"kind": "api", "actor": "ada", "note": f"from {source}"}),
        reason=f"ValidationError: source repository https://ada:{password}@github.com/x.git cannot be read",
        steps=json.dumps(
            [
                {
                    "name": "build",
                    "status": "failed",
                    "started_at": now.isoformat(),
                    "ended_at": now.isoformat(),
                    "detail": f"fetch of HEAD from {source} failed",
                }
            ]
        ),
        created_at=now,
    ).save()
    # One written now, through the store, with credentials in every field a step could put them.
    new = Deployment(
        id=new_id(now),
        namespace=NS,
        service="hello",
        status="failed",
        source=source,
        ref="HEAD",
        created_at=now,
        trigger={"kind": "api", "note": f"token {token}"},
        reason=f"failed: https://ada:{password}@github.com/x.git",
        steps=[Step("build", "failed", now, now, f"Bearer {password}")],
    )
    store = DynamoDeployStore()
    store.create_deployment(new, [], store.get_service(NS, "hello"))  # the service left as it is
    shown = [
        api("GET", f"/v1/namespaces/{NS}/services/hello/deployments/{old_id}").text,
        api("GET", f"/v1/namespaces/{NS}/services/hello/deployments/{new.id}").text,
        api("GET", f"/v1/namespaces/{NS}/services/hello/deployments").text,
    ]
    for text in shown:
        assert token not in text and password not in text
    old = json.loads(shown[0])
    assert old["source"] == "https://***@github.com/acme/hello.git"
    assert "https://***@github.com/x.git" in old["reason"] and "***@" in old["steps"][0]["detail"]
    assert old["trigger"]["note"] == "from https://***@github.com/acme/hello.git"
    stored = (
        platform["cloud"]
        .client("dynamodb")
        .get_item(TableName=DeploymentItem.Meta.table_name, Key={"PK": {"S": pk}, "SK": {"S": f"DEP#{new.id}"}})["Item"]
    )
    assert token not in json.dumps(stored) and password not in json.dumps(stored)
    assert stored["source"]["S"] == "https://***@github.com/acme/hello.git"


def test_config_values_a_process_cannot_be_given_are_refused_and_nothing_is_written(
    platform: dict[str, Any],
) -> None:
    api = platform["api"]
    config = f"/v1/namespaces/{NS}/services/hello/config"
    before = api("GET", config).json()["vars"]
    deployments = len(api("GET", f"/v1/namespaces/{NS}/services/hello/deployments").json()["deployments"])
    refused = [
        ("PUT", config, {"vars": {"OK_TOO": {"value": "fine"}, "DATABASE_URL": {"value": "postgres://db\u0000x"}}}),
        ("PUT", config, {"vars": {"TOKEN": {"value": "a\u0000b", "secret": True}}}),
        ("PUT", f"{config}/WIDE", {"value": "😀" * 32768}),  # 32,768 characters, 128 KiB: beyond one env string
        ("PUT", config, {"vars": {"A=B": {"value": "x"}}}),
        ("PUT", config, {"vars": {f"BULK_{i}": {"value": "x" * 30000} for i in range(3)}}),  # 90 KB together
    ]
    named = ["DATABASE_URL", "TOKEN", "WIDE", "A=B", "BULK_0"]
    for (method, path, body), key in zip(refused, named, strict=True):
        r = api(method, path, body)
        assert r.status_code == 422, (key, r.text[:300])
        assert r.json()["error"]["details"]["fields"][0]["field"] == key, r.text[:300]
    lone = api("PUT", f"{config}/LONE", {"value": "\ud800"})  # not Unicode: the body parser refuses it
    assert lone.status_code == 400 and lone.json()["error"]["code"] == "invalid_json", lone.text[:300]
    assert api("GET", config).json()["vars"] == before
    after = api("GET", f"/v1/namespaces/{NS}/services/hello/deployments").json()["deployments"]
    assert len(after) == deployments  # no redeploy was started
    ok = api("PUT", f"{config}/DSN", {"value": "host=db user=app"})  # "=" in a value is fine
    assert ok.status_code == 200, ok.text
    assert wait_deployment(platform, ok.json()["redeploy"]["id"])["status"] == "succeeded"


def test_a_deploy_whose_execution_stopped_is_ended_by_the_sweeper_and_the_one_queued_behind_it_runs(
    platform: dict[str, Any],
) -> None:
    before = answer(platform).json()["version"]
    repo = platform["repo"]
    future = "from __future__ import annotations\n"
    server = (repo / "server.py").read_text()
    (repo / "server.py").write_text(server.replace(future, future + "import time\n\ntime.sleep(300)\n"))
    slow = commit(repo, "healthy only after five minutes")
    stuck = deploy(platform, slow, wait=False)["id"]
    wait_for_status(platform, stuck, "in_progress", step="start")  # its version started, not healthy
    cloud: LocalCloud = platform["cloud"]
    sfn = cloud.client("stepfunctions")
    arn = cloud.resources["state_machines"]["deploy"].replace(":stateMachine:", ":execution:") + f":{stuck}"
    sfn.stop_execution(executionArn=arn)  # what a restart does to every execution, or an operator to one
    deadline = time.monotonic() + 30
    while sfn.describe_execution(executionArn=arn)["status"] == "RUNNING":
        assert time.monotonic() < deadline, "the execution did not stop"
        time.sleep(0.1)
    assert sfn.describe_execution(executionArn=arn)["status"] == "ABORTED"
    git(repo, "revert", "--no-edit", "HEAD")
    waiting = deploy(platform, git(repo, "rev-parse", "HEAD"), wait=False)["id"]
    wait_for_status(platform, waiting, "queued", step="lock")  # behind the lock the stopped one holds

    result, error = cloud.router.invoke("deploy-sweep", {"grace_seconds": 0})
    assert error is None and result == {"rolled_back": [stuck]}, result
    ended = wait_deployment(platform, stuck)
    assert ended["status"] == "rolled_back" and "Interrupted" in ended["reason"], ended
    assert answer(platform).json()["version"] == before  # the last good one kept answering
    assert wait_deployment(platform, waiting)["status"] == "succeeded"  # the lock was released, it ran
    assert answer(platform).json()["version"] == waiting


def wait_for_status(p: dict[str, Any], dep_id: str, status: str, step: str | None = None) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        dep = p["api"]("GET", f"/v1/namespaces/{NS}/services/hello/deployments/{dep_id}").json()
        if dep["status"] == status and (step is None or any(s["name"] == step for s in dep["steps"])):
            return
        time.sleep(0.05)
    raise AssertionError(f"deployment {dep_id} never {status}")


def test_a_deploy_makes_at_most_15_table_requests_and_checks_health_right_after_the_start(
    platform: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """Steps are recorded one at a time and the service and namespace read once per execution (the
    goal of bench/deploy.py); a version healthy at once is found by the first check, with no Wait."""
    cloud = platform["cloud"]
    sfn = cloud.client("stepfunctions")
    before = dict(cloud.moto.app.requests_by_service)
    dep = platform["api"](
        "POST", f"/v1/namespaces/{NS}/services/hello/deployments", {"source": str(platform["repo"]), "ref": "HEAD"}
    ).json()
    arn = cloud.resources["state_machines"]["deploy"].replace(":stateMachine:", ":execution:")
    assert cloud.wait_execution(f"{arn}:{dep['id']}", timeout=90)["status"] == "SUCCEEDED"
    after = dict(cloud.moto.app.requests_by_service)
    assert after.get("dynamodb", 0) - before.get("dynamodb", 0) <= 15
    history = sfn.get_execution_history(executionArn=f"{arn}:{dep['id']}", maxResults=1000)["events"]
    entered = [e["stateEnteredEventDetails"]["name"] for e in history if e["type"].endswith("StateEntered")]
    assert entered[entered.index("Start") + 1] == "Health" and "Wait" not in entered, entered
    shown = wait_deployment(platform, dep["id"])
    assert shown["status"] == "succeeded"
    assert [s["name"] for s in shown["steps"]] == ["lock", "build", "start", "health"], shown["steps"]
    assert_every_step_ended(shown)
    # counted as an EMF metric (chalicelib/metrics.py)
    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert [(m["outcome"], m["Deployments"]) for m in metrics if "Deployments" in m] == [("succeeded", [1.0])]


def test_services_answer_again_after_the_local_cloud_restarts(platform: dict[str, Any]) -> None:
    from chalicelib.composition import set_container

    address = platform["api"]("GET", f"/v1/namespaces/{NS}/services/hello").json()["address"]
    version = requests.get(address, timeout=10).json()["version"]
    platform["cloud"].stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(address, timeout=2)
    set_container(None)
    cloud = LocalCloud(
        platform["cloud"].decl,
        SystemClock(),
        platform["cloud"].ports,
        data_dir=platform["data"],
        standins=True,
        snapshot_every=3600,
        stage="local",
    ).start()
    platform["cloud"] = cloud
    deadline = time.monotonic() + 30
    while True:
        try:
            got = requests.get(address, timeout=2)
            if got.status_code == 200:
                break
        except requests.ConnectionError:
            pass
        assert time.monotonic() < deadline, "the service did not come back"
        time.sleep(0.3)
    assert got.json()["version"] == version
