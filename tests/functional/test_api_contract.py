"""The API against its own OpenAPI document, on a running local cloud: refusals in the audit log,
strict request types, and schemathesis over every operation (0 server errors, 0 answers outside the
documented schema, 0 undocumented status codes).

The schemathesis stage runs the schemathesis CLI (pinned in requirements-dev.txt) against
``/openapi.json`` of a local cloud started here, logged in as ``ada`` (an owner of ``acme``), with
``acme-backend`` onboarded and a service ``hello`` recorded in it (a deployment whose source does not
exist: the service exists, nothing runs, so no config change redeploys anything). It is
deterministic (a fixed seed, ``generation.deterministic``, no example database) and bounded
(``MAX_EXAMPLES`` per operation, one worker) so that it stays well under 3 minutes on 2 cores.

What would make the run meaningless is handled on purpose, not by leaving operations out:

- ``POST /v1/auth/logout`` revokes the token that calls it: it is called with a token of its own
  (``logout``), so that every other operation keeps ada's token; after its first call that token is
  revoked and the next calls answer 401, which the document says.
- ``DELETE /v1/namespaces/{ns}`` offboards: it is pointed at ``acme-frontend``, onboarded for it,
  so that ``acme-backend`` stays active for everything else.
- ``DELETE .../services/{svc}`` is pointed at the service ``doomed``, recorded for it.
- ``DELETE /v1/tokens/{token_id}`` revokes any token of the caller's, and schemathesis learns ids
  from answers (``GET /v1/tokens`` lists the token in use): it is pointed at a token created for it
  (204 once, then 404), never at the one the run uses.

schemathesis leaves out the operation that serves the document it loads (``GET /openapi.json``); the
document itself is checked against OpenAPI 3.1 by tests/unit/test_system_routes.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from chalicelib.domain.clock import SystemClock
from localcloud.cloud import LocalCloud
from tests.conftest import read_log
from tests.fixtures import start_platform

NS = "acme-backend"
MAX_EXAMPLES = 10
SEED = 20261201
BUDGET_SECONDS = 180  # the stage's budget on 2 cores; the run is killed at twice that


def login(api: str, who: str) -> str:
    r = requests.post(f"{api}/v1/auth/local-login", json={"login": who}, timeout=10)
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


def call(api: str, method: str, path: str, token: str | None, body: Any = None, **kw: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.request(method, f"{api}{path}", json=body, headers=headers, timeout=30, **kw)


def onboard(cloud: LocalCloud, token: str, team: str) -> None:
    body = {"github_org": "acme", "github_team": team, "region": "local"}
    assert call(cloud.api_url, "POST", "/v1/namespaces", token, body).status_code == 202
    arn = cloud.resources["state_machines"]["onboarding"].replace(":stateMachine:", ":execution:")
    assert cloud.wait_execution(f"{arn}:acme-{team}", timeout=60)["status"] == "SUCCEEDED"


def record_service(api: str, token: str, svc: str) -> None:
    """A service record in acme-backend, from a deployment that fails at once (its source does not exist)."""
    path = f"/v1/namespaces/{NS}/services/{svc}/deployments"
    r = call(api, "POST", path, token, {"source": "/nonexistent/contract-test", "ref": "HEAD"})
    assert r.status_code == 202, r.text
    deadline = time.monotonic() + 60
    while call(api, "GET", f"{path}/{r.json()['id']}", token).json()["status"] not in ("failed", "rolled_back"):
        assert time.monotonic() < deadline, "the deployment did not fail"
        time.sleep(0.2)


def disposable_token_id(api: str, token: str) -> str:
    r = call(api, "POST", "/v1/tokens", token, {"name": "to-revoke", "namespace": NS, "scopes": ["read"]})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory, env_restored: None) -> Iterator[dict[str, Any]]:
    from chalicelib.composition import set_container

    cloud = start_platform(tmp_path_factory.mktemp("contract"), SystemClock())
    api = cloud.api_url
    tokens = {who: login(api, who) for who in ("ada", "linus", "grace", "ken")}
    onboard(cloud, tokens["ada"], "backend")
    onboard(cloud, tokens["ada"], "frontend")
    for svc in ("hello", "doomed"):
        record_service(api, tokens["ada"], svc)
    yield {"cloud": cloud, "api": api, "tokens": tokens, "tmp": tmp_path_factory.mktemp("schemathesis")}
    cloud.stop()
    set_container(None)


def audit_of(p: dict[str, Any], actor: str) -> list[dict[str, Any]]:
    r = call(p["api"], "GET", f"/v1/namespaces/{NS}/audit?actor={actor}", p["tokens"]["ada"])
    assert r.status_code == 200, r.text
    return list(r.json()["entries"])


def test_a_refused_change_is_in_the_audit_log_of_the_namespace_the_caller_can_see(platform: dict[str, Any]) -> None:
    api, t = platform["api"], platform["tokens"]
    r = call(api, "DELETE", f"/v1/namespaces/{NS}", t["grace"])  # a member; deleting needs the owner
    assert r.status_code == 403 and r.json()["error"]["details"]["needed_role"] == "owner"
    r = call(api, "POST", f"/v1/namespaces/{NS}/members", t["linus"], {"login": "ken"})  # an admin; needs the owner
    assert r.status_code == 403
    entries = audit_of(platform, "user:grace") + audit_of(platform, "user:linus")
    refused = {(e["actor"], e["action"], e["outcome"]) for e in entries}
    assert ("user:grace", "delete_namespace", "error:403") in refused
    assert ("user:linus", "add_viewer", "error:403") in refused
    grace = next(e for e in entries if e["action"] == "delete_namespace")
    assert grace["target"] == f"DELETE /v1/namespaces/{NS}" and grace["user_agent"].startswith("python-requests")


def test_a_namespace_token_refused_outside_its_namespace_is_recorded_in_its_own(platform: dict[str, Any]) -> None:
    api, t = platform["api"], platform["tokens"]
    r = call(api, "POST", "/v1/tokens", t["grace"], {"name": "ci", "namespace": NS, "scopes": ["read", "deploy"]})
    assert r.status_code == 201, r.text
    ci = r.json()["token"]
    r = call(api, "POST", "/v1/tokens", ci, {"name": "more", "namespace": NS, "scopes": ["read"]})
    assert r.status_code == 403
    assert any(e["action"] == "create_token" and e["outcome"] == "error:403" for e in audit_of(platform, "user:grace"))


def test_a_token_asked_beyond_the_role_is_recorded_as_refused(platform: dict[str, Any]) -> None:
    api, t = platform["api"], platform["tokens"]
    r = call(api, "POST", "/v1/tokens", t["grace"], {"name": "admin", "namespace": NS, "scopes": ["admin"]})
    assert r.status_code == 403, r.text
    refused = [e for e in audit_of(platform, "user:grace") if e["action"] == "create_token"]
    assert any(e["outcome"] == "error:403" and e["target"] == "POST /v1/tokens" for e in refused)


def test_a_namespace_the_caller_cannot_see_gets_nothing_written_into_its_log(platform: dict[str, Any]) -> None:
    api, t = platform["api"], platform["tokens"]
    for method, path, body in [
        ("DELETE", f"/v1/namespaces/{NS}", None),
        ("POST", f"/v1/namespaces/{NS}/members", {"login": "grace"}),
        ("POST", "/v1/tokens", {"name": "x", "namespace": NS, "scopes": ["read"]}),
    ]:
        assert call(api, method, path, t["ken"], body).status_code == 404  # ken is not in backend
    assert audit_of(platform, "user:ken") == []
    r = call(api, "POST", "/v1/namespaces", t["linus"], {"github_org": "acme", "github_team": "x", "region": "local"})
    assert r.status_code == 403  # not an organization owner: no namespace to write into; logged instead
    assert not [e for e in audit_of(platform, "user:linus") if e["action"] == "create_namespace"]
    assert any('"request refused"' in line and "user:linus" in line for line in read_log().splitlines())


def test_request_types_are_strict_and_an_empty_number_is_absent(platform: dict[str, Any]) -> None:
    api, ada = platform["api"], platform["tokens"]["ada"]
    r = call(api, "POST", f"/v1/namespaces/{NS}/services/hello/auto-deploy", ada, {"enabled": 0})
    assert r.status_code == 422 and r.json()["error"]["details"]["fields"][0]["field"] == "enabled"
    r = call(api, "POST", f"/v1/namespaces/{NS}/services/hello/auto-deploy", ada, {"enabled": False})
    assert r.status_code == 200 and r.json()["auto_deploy"] is False
    assert call(api, "GET", f"/v1/namespaces/{NS}/audit?limit=", ada).status_code == 200
    assert call(api, "GET", f"/v1/namespaces/{NS}/services/hello/logs?tail=&since=", ada).status_code == 200
    r = call(api, "GET", f"/v1/namespaces/{NS}/services/Not_A_Label/logs", ada)
    assert r.status_code == 422 and r.json()["error"]["details"]["fields"][0]["field"] == "svc"
    r = call(api, "GET", "/v1/namespaces/acme-nosuch/services/Not_A_Label/logs", ada)
    assert r.status_code == 404  # a namespace the caller cannot see is 404 before any path check


CONFIG = """
# Written by tests/functional/test_api_contract.py; ${{...}} is read from the environment.
headers = {{ Authorization = "Bearer ${{ST_TOKEN}}" }}
max-redirects = 0
request-timeout = 30
workers = 1
seed = {seed}

[generation]
mode = "all"
max-examples = {max_examples}
deterministic = true
database = "none"

[phases.examples]
enabled = true
[phases.coverage]
enabled = true
[phases.fuzzing]
enabled = true
[phases.stateful]
enabled = false

# The gate: no 5xx, every answer's status, content type and body as documented; and, as the
# document is the contract, invalid input refused, wrong methods answered 405 with Allow.
[checks]
enabled = false
not_a_server_error.enabled = true
status_code_conformance.enabled = true
response_schema_conformance.enabled = true
content_type_conformance.enabled = true
negative_data_rejection.enabled = true
# schemathesis' own list, plus 413: a body over the 1 MiB limit is refused before it is read.
negative_data_rejection.expected-statuses = [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429, "5XX"]
missing_required_header.enabled = true
unsupported_method.enabled = true
allow_header_conformance.enabled = true

[parameters]
"path.ns" = "{ns}"
"path.svc" = "hello"

# The one call that revokes the token it is made with gets a token of its own.
[[operations]]
include-operation-id = "logout"
headers = {{ Authorization = "Bearer ${{ST_LOGOUT_TOKEN}}" }}

# Offboarding is pointed at a namespace onboarded for it, deleting a service at a service recorded for it.
[[operations]]
include-operation-id = "delete_namespace"
parameters = {{ "path.ns" = "acme-frontend" }}

[[operations]]
include-operation-id = "delete_service"
parameters = {{ "path.svc" = "doomed" }}

# Revoking is pointed at a token created for it (ids learnt from answers would revoke the one in use).
[[operations]]
include-operation-id = "revoke_token"
parameters = {{ "path.token_id" = "${{ST_DISPOSABLE_TOKEN_ID}}" }}
"""


def test_schemathesis_finds_no_server_error_and_nothing_outside_the_document(platform: dict[str, Any]) -> None:
    api, tmp = platform["api"], Path(platform["tmp"])
    config = tmp / "schemathesis.toml"
    config.write_text(CONFIG.format(seed=SEED, max_examples=MAX_EXAMPLES, ns=NS))
    junit = tmp / "junit.xml"
    env = {
        **os.environ,
        "ST_TOKEN": platform["tokens"]["ada"],
        "ST_LOGOUT_TOKEN": login(api, "ada"),
        "ST_DISPOSABLE_TOKEN_ID": disposable_token_id(api, platform["tokens"]["ada"]),
        "SCHEMATHESIS_TELEMETRY": "false",
        "NO_COLOR": "1",
    }
    started = time.monotonic()
    run = subprocess.run(
        [
            str(Path(sys.executable).parent / "schemathesis"),
            "--config-file",
            str(config),
            "run",
            f"{api}/openapi.json",
            "--report",
            "junit",
            "--report-junit-path",
            str(junit),
            "--no-color",
        ],
        env=env,
        cwd=tmp,
        capture_output=True,
        text=True,
        timeout=2 * BUDGET_SECONDS,
        check=False,
    )
    took = time.monotonic() - started
    output = run.stdout + run.stderr
    (tmp / "schemathesis.log").write_text(output)
    readable = "\n".join(line[:400] for line in output.splitlines())  # a failing case may carry a 1 MiB body
    assert run.returncode == 0, readable[-15000:]
    root = ET.parse(junit).getroot()  # noqa: S314 (written by schemathesis in this test's own directory)
    tested = {case.get("name", "") for case in root.iter("testcase")}
    documented = requests.get(f"{api}/openapi.json", timeout=10).json()["paths"]
    every = {f"{method.upper()} {path}" for path, ops in documented.items() for method in ops}
    assert tested == every - {"GET /openapi.json"}
    assert call(api, "GET", "/v1/me", platform["tokens"]["ada"]).status_code == 200  # the run's token still works
    print(f"schemathesis: {len(tested)} operations in {took:.0f}s (budget {BUDGET_SECONDS}s)")
