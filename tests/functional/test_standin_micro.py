"""The micro stand-in behaves as micro v3.19.0's source says, over HTTP as its API gateway serves it:
the gateway's routing and auth rule, runtime Create/Read/Update/Delete/Logs with Kubernetes' errors, a
source checked out at the version, environment entries dropped as NewDeployment drops them, and the
auth service's accounts and tokens."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from localcloud.standins.micro import BareReposHost, MicroStandIn
from tests.helpers import ROOT

NS = "acme-backend"


def _git(*args: str, cwd: Path | None = None) -> str:
    env = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null", "PATH": "/usr/bin:/bin:/usr/local/bin"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture(scope="module")
def repos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``github.com/acme/hello`` (two commits) and the private ``github.com/acme/secret``."""
    root = tmp_path_factory.mktemp("hosts")
    work = tmp_path_factory.mktemp("work")
    subprocess.run(["cp", "-r", f"{ROOT / 'examples' / 'hello'}/.", str(work)], check=True)
    _git("init", "-q", "-b", "main", cwd=work)
    _git("add", "-A", cwd=work)
    _git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one", cwd=work)
    first = _git("rev-parse", "HEAD", cwd=work)
    (work / "VERSION").write_text("2\n")
    _git("add", "-A", cwd=work)
    _git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "two", cwd=work)
    second = _git("rev-parse", "HEAD", cwd=work)
    for name in ("hello", "secret"):
        bare = root / "acme" / f"{name}.git"
        _git("init", "-q", "--bare", str(bare))
        _git("push", "-q", str(bare), "main", cwd=work)
    return {"root": root, "first": first, "second": second}


@pytest.fixture(scope="module")
def micro(repos: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[MicroStandIn]:
    host = BareReposHost(repos["root"], allowed=lambda path, cred: path != "acme/secret" or cred == "ghs_ok")
    stand_in = MicroStandIn(
        git_hosts={"github.com": host}, workdir=tmp_path_factory.mktemp("micro"), watch_interval=0.2
    ).start()
    yield stand_in
    stand_in.stop()


@pytest.fixture(scope="module")
def admin(micro: MicroStandIn) -> dict[str, str]:
    return {"Authorization": f"Bearer {micro.admin_token()}", "Micro-Namespace": "micro"}


def call(micro: MicroStandIn, path: str, body: dict[str, Any], headers: dict[str, str]) -> requests.Response:
    return requests.post(f"{micro.url}{path}", json=body, headers=headers, timeout=10)


def runtime(micro: MicroStandIn, endpoint: str, body: dict[str, Any], headers: dict[str, str]) -> requests.Response:
    return call(micro, f"/runtime/Runtime/{endpoint}", body, headers)


def service(name: str, version: str, source: str = "github.com/acme/hello", **options: Any) -> dict[str, Any]:
    return {
        "resource": {"service": {"name": name, "version": version, "source": source}},
        "options": {"namespace": NS, "command": ["python3", "server.py"], **options},
    }


def read(micro: MicroStandIn, headers: dict[str, str], name: str) -> dict[str, Any]:
    r = runtime(micro, "Read", {"options": {"namespace": NS, "service": name}}, headers)
    assert r.status_code == 200, r.text
    found = r.json()["services"]
    assert len(found) == 1, found
    return dict(found[0])


def wait_status(micro: MicroStandIn, headers: dict[str, str], name: str, status: int) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        svc = read(micro, headers, name)
        if svc["status"] == status:
            return svc
        assert time.monotonic() < deadline, svc
        time.sleep(0.05)


@pytest.fixture(scope="module")
def namespace(micro: MicroStandIn, admin: dict[str, str]) -> str:
    r = runtime(micro, "Create", {"resource": {"namespace": {"name": NS}}, "options": {"namespace": NS}}, admin)
    assert r.status_code == 200 and r.json() == {}
    return NS


# --------------------------------------------------------------------------- the gateway


def test_the_core_services_are_routed_in_the_micro_domain_only(micro: MicroStandIn, admin: dict[str, str]) -> None:
    """resolver.go + router/registry: the header names the registry domain the service is looked up in."""
    r = runtime(micro, "Read", {"options": {"namespace": NS}}, {**admin, "Micro-Namespace": NS})
    assert r.status_code == 500
    assert r.json() == {"id": "", "code": 500, "detail": "service not found", "status": "Internal Server Error"}
    # without the header the gateway takes the token's issuer (micro) and routes it
    r = runtime(micro, "Read", {"options": {"namespace": NS}}, {"Authorization": admin["Authorization"]})
    assert r.status_code == 200 and r.json() == {"services": []}


def test_handlers_authorise_the_options_namespace_not_the_header(
    micro: MicroStandIn, admin: dict[str, str], namespace: str
) -> None:
    r = runtime(micro, "Create", {"resource": {"namespace": {"name": "x"}}, "options": {"namespace": "x"}}, {})
    assert r.status_code == 401 and r.json()["detail"] == "an account is required"
    created = call(
        micro, "/auth/Auth/Generate", {"id": "viewer-1", "secret": "pw", "options": {"namespace": NS}}, admin
    ).json()["account"]
    assert created["issuer"] == NS and created["scopes"] == [] and created["secret"] == "pw"
    token = call(
        micro,
        "/auth/Auth/Token",
        {"id": "viewer-1", "secret": "pw", "token_expiry": 60, "options": {"namespace": NS}},
        admin,
    ).json()["token"]
    viewer = {"Authorization": f"Bearer {token['access_token']}", "Micro-Namespace": "micro"}
    assert runtime(micro, "Read", {"options": {"namespace": NS}}, viewer).status_code == 200
    other = runtime(micro, "Read", {"options": {"namespace": "elsewhere"}}, viewer)
    assert other.status_code == 403 and other.json()["detail"] == "access denied to namespace"
    write = runtime(micro, "Create", service("nope", "v1"), viewer)  # AuthorizeAdmin: no admin scope
    assert write.status_code == 401 and write.json()["detail"] == "Unauthorized"


# --------------------------------------------------------------------------- Kubernetes' errors


def test_kubernetes_errors_reach_the_caller_as_the_gateway_relays_them(
    micro: MicroStandIn, admin: dict[str, str], namespace: str
) -> None:
    again = runtime(micro, "Create", {"resource": {"namespace": {"name": NS}}, "options": {"namespace": NS}}, admin)
    assert again.status_code == 409
    assert again.json() == {"id": "", "code": 409, "detail": "", "status": "Failure"}
    gone = {"id": "go.micro.client", "code": 500, "detail": "kubernetes: resource not found"}
    for resource in (
        {"resourcequota": {"name": "nope", "namespace": NS}},
        {"networkpolicy": {"name": "nope", "namespace": NS}},
        {"namespace": {"name": "never-made"}},
    ):
        ns = resource.get("namespace", {}).get("name", NS)
        r = runtime(micro, "Delete", {"resource": resource, "options": {"namespace": ns}}, admin)
        assert r.status_code == 500 and {k: r.json()[k] for k in gone} == gone, r.text
    quota = {"name": "q", "namespace": "never-made", "requests": {"Memory": 1}, "limits": {"Memory": 1}}
    r = runtime(micro, "Create", {"resource": {"resourcequota": quota}, "options": {"namespace": "never-made"}}, admin)
    assert r.status_code == 500 and r.json()["detail"] == "kubernetes: resource not found"
    gone_service = {"resource": {"service": {"name": "never-deployed", "version": "v1"}}, "options": {"namespace": NS}}
    missing = runtime(micro, "Delete", gone_service, admin)
    assert missing.status_code == 500
    assert missing.json() == {
        "id": "runtime.Runtime.Delete",
        "code": 500,
        "detail": "not found",
        "status": "Internal Server Error",
    }


def test_a_body_jsonpb_refuses_fails_before_the_handler(micro: MicroStandIn, admin: dict[str, str]) -> None:
    quota = {"name": "q", "namespace": NS, "requests": {"memory": 1}}
    r = runtime(micro, "Create", {"resource": {"resourcequota": quota}, "options": {"namespace": NS}}, admin)
    assert r.status_code == 500 and r.json()["id"] == "go.micro.client"
    assert 'unknown field "memory"' in r.json()["detail"]


# --------------------------------------------------------------------------- services


def test_create_checks_out_the_version_and_runs_it_with_env_as_new_deployment_keeps_it(
    micro: MicroStandIn, admin: dict[str, str], namespace: str, repos: dict[str, Any]
) -> None:
    body = service("hello", repos["first"], env=["GREETING=a=b", "PLAIN=x"], secrets={"TOKEN": "k=v=="})
    r = runtime(micro, "Create", body, admin)
    assert r.status_code == 200 and r.json() == {}
    svc = wait_status(micro, admin, "hello", 4)
    assert svc["version"] == repos["first"] and svc["source"] == "github.com/acme/hello"
    assert svc["metadata"]["owner"] == "admin" and svc["metadata"]["group"] == "micro"
    pod = micro.runtime.pod(NS, "hello", repos["first"])
    assert pod is not None
    assert "GREETING" not in pod.env  # strings.Split("GREETING=a=b", "=") has three parts: dropped
    assert pod.env["PLAIN"] == "x" and pod.env["TOKEN"] == "k=v=="  # a secret arrives whole
    assert pod.env["MICRO_NAMESPACE"] == NS and pod.env["MICRO_SERVICE_VERSION"] == repos["first"]
    assert not (Path(pod.cwd) / "VERSION").exists()  # the first commit, not the branch's head
    address = micro.state()[NS]["services"][0]["address"]
    deadline = time.monotonic() + 10
    while True:
        try:
            answer = requests.get(address, timeout=2).json()
            break
        except requests.ConnectionError:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    assert answer["greeting"] == "hello"  # GREETING never reached the process
    recorded = micro.received("Create")[-1]
    assert recorded["body"]["options"]["secrets"] == {"TOKEN": "***"}


def test_a_second_create_of_a_version_rewrites_the_record_but_keeps_the_old_pod(
    micro: MicroStandIn, admin: dict[str, str], namespace: str, repos: dict[str, Any]
) -> None:
    before = micro.runtime.pod(NS, "hello", repos["first"])
    assert before is not None and before.process is not None
    body = service("hello", repos["first"], env=["PLAIN=changed"])
    body["resource"]["service"]["metadata"] = {"deployment_id": "second"}
    assert runtime(micro, "Create", body, admin).status_code == 200
    deadline = time.monotonic() + 20
    while True:
        svc = read(micro, admin, "hello")
        if svc["metadata"].get("error"):
            break
        assert time.monotonic() < deadline, svc
        time.sleep(0.05)
    assert svc["metadata"]["error"] == "Error creating service: already exists"
    assert svc["metadata"]["deployment_id"] == "second"  # the record was rewritten...
    assert svc["status"] == 4  # ...and the old pod answers for it, with its old environment
    after = micro.runtime.pod(NS, "hello", repos["first"])
    assert after is before and after.env["PLAIN"] == "x"


def test_a_source_micro_cannot_fetch_ends_in_error_saying_so(
    micro: MicroStandIn, admin: dict[str, str], namespace: str, repos: dict[str, Any]
) -> None:
    cases = {
        "nosuchrepo": ("github.com/acme/nope", {}, "Error fetching git source: zip: not a valid zip file"),
        "private": ("github.com/acme/secret", {}, "Error fetching git source: zip: not a valid zip file"),
        "badref": ("github.com/acme/hello", {}, "Error fetching git source: zip: not a valid zip file"),
        "scheme": ("https://github.com/acme/hello", {}, "Error fetching git source: zip: not a valid zip file"),
        "elsewhere": ("gitlab.example/acme/hello", {}, "Could not resolve host: gitlab.example"),
    }
    for name, (source, secrets, _) in cases.items():
        version = "0" * 40 if name == "badref" else repos["first"]
        assert runtime(micro, "Create", service(name, version, source, secrets=secrets), admin).status_code == 200
    for name, (_, _, error) in cases.items():
        svc = wait_status(micro, admin, name, 7)
        assert error in svc["metadata"]["error"], svc
    ok = service("private-ok", repos["second"], "github.com/acme/secret", secrets={"GIT_CREDENTIALS": "ghs_ok"})
    assert runtime(micro, "Create", ok, admin).status_code == 200
    wait_status(micro, admin, "private-ok", 4)


def test_logs_carry_no_time_and_come_in_the_gateway_s_stream_framing(
    micro: MicroStandIn, admin: dict[str, str], namespace: str, repos: dict[str, Any]
) -> None:
    micro.add_log(NS, "hello", "second line")
    r = runtime(micro, "Logs", {"service": "hello", "count": 2, "options": {"namespace": NS}}, admin)
    assert r.status_code == 200
    assert "\n" not in r.text and r.text.startswith('{"timestamp":"0","metadata":{},"message":')
    assert r.text.endswith('{"timestamp":"0","metadata":{},"message":"second line"}')
    missing = runtime(micro, "Logs", {"service": "nothing", "options": {"namespace": NS}}, admin)
    assert missing.status_code == 404
    assert missing.json() == {"id": "runtime.logs", "code": 404, "detail": "no such service", "status": "Not Found"}


def test_deleting_a_namespace_leaves_the_records_and_the_manager_starts_them_again(
    micro: MicroStandIn, admin: dict[str, str], repos: dict[str, Any]
) -> None:
    ns = {"resource": {"namespace": {"name": "temp"}}, "options": {"namespace": "temp"}}
    assert runtime(micro, "Create", ns, admin).status_code == 200
    body = service("again", repos["first"])
    body["options"]["namespace"] = "temp"
    assert runtime(micro, "Create", body, admin).status_code == 200
    micro.runtime.wait_for("temp", "again", repos["first"], 4)
    assert runtime(micro, "Delete", ns, admin).status_code == 200
    assert micro.runtime.pod("temp", "again", repos["first"]) is None
    micro.runtime.wait_for("temp", "again", repos["first"], 4)  # manager.go checkServices


# --------------------------------------------------------------------------- auth


def test_tokens_refresh_and_deletion(micro: MicroStandIn, admin: dict[str, str], namespace: str) -> None:
    opts = {"options": {"namespace": NS}}
    made = call(micro, "/auth/Auth/Generate", {"id": "grace-1", "scopes": ["admin"], "secret": "pw", **opts}, admin)
    assert made.status_code == 200
    twice = call(micro, "/auth/Auth/Generate", {"id": "grace-1", **opts}, admin)
    assert twice.status_code == 400 and twice.json()["detail"] == "Account with this ID already exists"
    token = call(
        micro, "/auth/Auth/Token", {"id": "grace-1", "secret": "pw", "token_expiry": 60, **opts}, admin
    ).json()["token"]
    assert set(token) == {"access_token", "refresh_token", "created", "expiry"}
    assert isinstance(token["expiry"], str) and int(token["expiry"]) - int(token["created"]) == 60
    inspected = call(micro, "/auth/Auth/Inspect", {"token": token["access_token"]}, {}).json()["account"]
    assert inspected["id"] == "grace-1" and inspected["issuer"] == NS and inspected["scopes"] == ["admin"]
    listed = call(micro, "/auth/Accounts/List", opts, admin).json()["accounts"]
    assert [a["id"] for a in listed] == ["grace-1", "viewer-1"]
    assert call(micro, "/auth/Accounts/Delete", {"id": "grace-1", **opts}, admin).status_code == 200
    again = call(micro, "/auth/Accounts/Delete", {"id": "grace-1", **opts}, admin)
    assert again.status_code == 400 and again.json() == {
        "id": "auth.Accounts.Delete",
        "code": 400,
        "detail": "Account not found with this ID",
        "status": "Bad Request",
    }
    refreshed = call(micro, "/auth/Auth/Token", {"refresh_token": token["refresh_token"], **opts}, admin)
    assert refreshed.status_code == 400 and refreshed.json()["detail"] == "invalid token provided"
    # a JWT stays valid after its account is deleted (jwt.go Inspect reads no store)...
    grace = {"Authorization": f"Bearer {token['access_token']}", "Micro-Namespace": "micro"}
    assert runtime(micro, "Read", {"options": {"namespace": NS}}, grace).status_code == 200
    # ...and is even renewed (auth.go's JWT workaround), until the gateway's blocklist has it
    renewed = call(micro, "/auth/Auth/Token", {"refresh_token": token["access_token"], "token_expiry": 60}, {})
    assert renewed.status_code == 200
    assert call(micro, "/api/Api/AddToBlockList", {"id": "grace-1", "namespace": NS}, admin).status_code == 200
    refused = runtime(micro, "Read", {"options": {"namespace": NS}}, grace)
    assert refused.status_code == 401 and refused.text == "unauthorized request\n"
    assert json.loads(call(micro, "/api/Api/ReadBlockList", {}, admin).text)["ids"] == [f"{NS}:grace-1"]
