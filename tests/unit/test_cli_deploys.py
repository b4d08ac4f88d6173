"""The CLI's service commands (services, deploy, deployments, rollback, auto-deploy, logs, config) against
an in-memory double of the platform API's service routes (unit tier: no network)."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from chalicelib.domain.services.deploys import TERMINAL
from cli.platform_cli.main import main, with_default_subcommand
from tests.unit.test_cli_commands import NOW, Cli, FakeApi, Result

DEP1 = "01HX0000000000000000000001"
DEP2 = "01HX0000000000000000000002"
SHA = "0123456789abcdef0123456789abcdef01234567"
SECRET = "s3cr3t-value=with=equals"


class DeployApi(FakeApi):
    """:class:`FakeApi` plus the service routes of ``chalicelib/api/services.py``, per the contract."""

    def __init__(self) -> None:
        super().__init__()
        self.services: dict[str, dict[str, Any]] = {}
        self.deployments: dict[str, dict[str, Any]] = {}
        self.config: dict[str, dict[str, tuple[str, bool]]] = {}
        self.log_lines: list[dict[str, Any]] = []
        self.log_script: list[list[dict[str, Any]]] = []  # successive answers of GET .../logs
        self.progress: dict[str, list[dict[str, Any]]] = {}  # deployment id -> updates its next GETs apply
        self.minted_deployments = 0

    def add_service(self, name: str, **fields: Any) -> dict[str, Any]:
        self.services[name] = {
            "name": name,
            "status": "running",
            "current_deployment_id": DEP1,
            "current_commit": SHA,
            "auto_deploy": True,
            "auto_deploy_paused": False,
            "address": f"127.0.0.1:4{len(self.services):04d}",
            "instances": [],
            **fields,
        }
        return self.services[name]

    def new_deployment(self, svc: str, **fields: Any) -> dict[str, Any]:
        self.minted_deployments += 1
        dep = {
            "id": f"01HX{self.minted_deployments + 100:022d}",
            "service": svc,
            "status": "queued",
            "source": "/src/repo",
            "ref": "main",
            "commit": None,
            "reason": None,
            "trigger": {"kind": "api", "actor": "user:ada"},
            "created_at": "2024-05-02T12:00:00Z",
            "deadline": None,
            "rollback_of": None,
            "logs": None,
            "steps": [],
            **fields,
        }
        dep["finished"] = dep["status"] in TERMINAL  # as the API answers it
        self.deployments[dep["id"]] = dep
        return dep

    def config_view(self, svc: str, redeploy: dict[str, Any] | None) -> dict[str, Any]:
        return {
            "vars": [
                {"key": k, "secret": secret, "value": None if secret else value}
                for k, (value, secret) in sorted(self.config.get(svc, {}).items())
            ],
            "redeploy": redeploy,
        }

    def handle(self, base_url: str, token: str | None, method: str, path: str, body: Any) -> Any:
        route = urlsplit(path).path
        match = re.fullmatch(r"/v1/namespaces/([^/]+)/services(?:/([^/]+)(/.*)?)?", route)
        if match is None:
            return super().handle(base_url, token, method, path, body)
        self.calls.append((base_url, token, method, path, body))
        if (method, route) in self.forced:
            status, code, message = self.forced[(method, route)]
            self.fail(status, code, message)
        login = self.sessions.get(token or "")
        if login is None:
            self.fail(401, "unauthorized", "the token is missing, expired or revoked")
        ns, svc, rest = match.group(1), match.group(2), match.group(3) or ""
        if ns not in self.namespaces or login not in self.roles[ns]:
            self.fail(404, "not_found", f"no namespace {ns}")
        if svc is None:
            return {"services": list(self.services.values())}
        if rest == "/deployments" and method == "POST":
            if ("ref" in body) == ("commit" in body) or not body.get("source"):
                self.fail(422, "validation_failed", "give either ref or commit")
            if svc not in self.services:
                self.add_service(svc, status="new", current_deployment_id=None, current_commit=None)
            return self.new_deployment(svc, source=body["source"], ref=body.get("ref") or body["commit"])
        if svc not in self.services:
            self.fail(404, "not_found", f"no service {svc}")
        service = self.services[svc]
        if rest == "" and method == "GET":
            return service
        if rest == "" and method == "DELETE":
            del self.services[svc]
            return None
        if rest == "/deployments" and method == "GET":
            return {"deployments": [d for d in reversed(self.deployments.values()) if d["service"] == svc]}
        dep_match = re.fullmatch(r"/deployments/([^/]+)", rest)
        if dep_match and method == "GET":
            dep = self.deployments.get(dep_match.group(1))
            if dep is None or dep["service"] != svc:
                self.fail(404, "not_found", "no such deployment")
            script = self.progress.get(dep["id"])
            if script:
                update = script.pop(0)
                dep.update(update)
                if "finished" not in update:
                    dep["finished"] = dep["status"] in TERMINAL
            return dep
        if rest == "/rollback" and method == "POST":
            target = body.get("deployment_id") or next(iter(self.deployments))
            if target not in self.deployments:
                self.fail(404, "not_found", f"no deployment {target}")
            service["auto_deploy_paused"] = True
            dep = self.new_deployment(svc, rollback_of=target, trigger={"kind": "rollback", "actor": "user:ada"})
            return {
                "deployment": dep,
                "auto_deploy_paused": True,
                "message": "auto-deploy is paused for this service until you resume it (POST .../auto-deploy)",
            }
        if rest == "/auto-deploy" and method == "POST":
            service["auto_deploy"] = body["enabled"]
            service["auto_deploy_paused"] = False
            return service
        if rest == "/config" and method == "GET":
            return self.config_view(svc, None)
        if rest == "/config" and method == "PUT":
            for key, var in body["vars"].items():
                self.config.setdefault(svc, {})[key] = (var["value"], var["secret"])
            return self.config_view(svc, self.new_deployment(svc, trigger={"kind": "config", "actor": "user:ada"}))
        key_match = re.fullmatch(r"/config/([^/]+)", rest)
        if key_match and method == "DELETE":
            if key_match.group(1) not in self.config.get(svc, {}):
                self.fail(404, "not_found", f"no config var {key_match.group(1)}")
            del self.config[svc][key_match.group(1)]
            return self.config_view(svc, self.new_deployment(svc, trigger={"kind": "config", "actor": "user:ada"}))
        if rest == "/logs" and method == "GET":
            return {"lines": self.log_script.pop(0) if self.log_script else self.log_lines}
        self.fail(404, "not_found", f"no route {method} {route}")

    def last(self) -> tuple[str, str, Any]:
        _, _, method, path, body = self.calls[-1]
        return method, path, body


class DeployCli(Cli):
    def __call__(self, *argv: str, stdin: io.StringIO | None = None, max_polls: int | None = None) -> Result:
        out, err = io.StringIO(), io.StringIO()
        code = main(
            list(argv),
            client_factory=self.api.factory,
            environ=self.environ,
            stdin=stdin if stdin is not None else io.StringIO(),
            stdout=out,
            stderr=err,
            sleep=self.sleeps.append,
            now=lambda: NOW,
            max_polls=max_polls,
        )
        return Result(code, out.getvalue(), err.getvalue())


SVC = "/v1/namespaces/acme-backend/services/api"


@pytest.fixture
def dapi() -> DeployApi:
    fake = DeployApi()
    fake.add_namespace("acme-backend", members={"ada": "owner", "grace": "member"})
    fake.add_namespace("acme-web", members={"ada": "owner"})
    fake.add_service("api")
    fake.new_deployment("api", status="succeeded", commit=SHA)
    return fake


@pytest.fixture
def dcli(tmp_path: Path, dapi: DeployApi) -> DeployCli:
    c = DeployCli(tmp_path, dapi)
    c.log_in("ada", namespace="acme-backend")
    return c


def first_dep(api: DeployApi) -> str:
    return next(iter(api.deployments))


# -- argv: the default subcommand ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["services"], ["services", "list"]),
        (["-o", "json", "services", "--namespace", "x"], ["-o", "json", "services", "list", "--namespace", "x"]),
        (["services", "show", "api"], ["services", "show", "api"]),
        (["services", "--help"], ["services", "--help"]),
        (["deployments", "api"], ["deployments", "list", "api"]),
        (["deployments", "-n", "x", "api"], ["deployments", "list", "-n", "x", "api"]),
        (["deployments", "show", "api", DEP1], ["deployments", "show", "api", DEP1]),
        (["config", "api"], ["config", "list", "api"]),
        (["config", "set", "api", "A=1"], ["config", "set", "api", "A=1"]),
        (["deployments"], ["deployments"]),
        (["logs", "api"], ["logs", "api"]),
        (["namespaces"], ["namespaces", "list"]),
        (["namespaces", "-o", "json"], ["namespaces", "list", "-o", "json"]),
        (["namespaces", "show", "acme-x"], ["namespaces", "show", "acme-x"]),
        (["namespaces", "--help"], ["namespaces", "--help"]),
        (["regions"], ["regions", "list"]),
    ],
)
def test_default_subcommand(argv: list[str], expected: list[str]) -> None:
    assert with_default_subcommand(argv) == expected


# -- services -------------------------------------------------------------------------------------------


def test_services_list_defaults_to_micro_namespace(dcli: DeployCli, dapi: DeployApi) -> None:
    r = dcli("services")
    assert r.code == 0, r.err
    assert dapi.last() == ("GET", "/v1/namespaces/acme-backend/services", None)
    header, row = r.out.splitlines()
    assert header.split() == ["NAME", "STATUS", "AUTO-DEPLOY", "COMMIT", "DEPLOYMENT", "ADDRESS"]
    assert row.split()[:4] == ["api", "running", "on", SHA[:12]]
    assert dcli("services", "list", "--namespace", "acme-web").code == 0
    assert dapi.last()[1] == "/v1/namespaces/acme-web/services"


def test_services_list_json_is_the_answer(dcli: DeployCli, dapi: DeployApi) -> None:
    r = dcli("services", "--output", "json")
    assert r.code == 0
    assert json.loads(r.out) == {"services": list(dapi.services.values())}


def test_services_without_a_namespace_exits_2(tmp_path: Path, dapi: DeployApi) -> None:
    c = DeployCli(tmp_path, dapi)
    c.log_in("ada")
    r = c("services")
    assert r.code == 2
    assert "--namespace" in r.err
    assert not dapi.calls


def test_services_show(dcli: DeployCli, dapi: DeployApi) -> None:
    dapi.services["api"]["instances"] = [
        {"version": DEP1, "status": "running", "address": "127.0.0.1:40000", "started_at": "2024-05-02T12:00:00Z"}
    ]
    r = dcli("services", "show", "api")
    assert r.code == 0
    assert dapi.last() == ("GET", SVC, None)
    assert re.search(r"^auto-deploy:\s+on$", r.out, re.M)
    assert re.search(rf"^commit:\s+{SHA}$", r.out, re.M)
    assert "VERSION" in r.out and "127.0.0.1:40000" in r.out


def test_services_show_unknown_exits_6(dcli: DeployCli) -> None:
    r = dcli("services", "show", "nope")
    assert r.code == 6
    assert r.err == "error: no service nope (not_found)\n"


def test_services_delete_needs_yes(dcli: DeployCli, dapi: DeployApi) -> None:
    r = dcli("services", "delete", "api")
    assert r.code == 2
    assert "--yes" in r.err
    assert "api" in dapi.services
    r = dcli("services", "delete", "api", "--yes")
    assert r.code == 0, r.err
    assert dapi.last() == ("DELETE", SVC, None)
    assert "api" not in dapi.services
    assert "Deleted service api" in r.out


# -- deploy ---------------------------------------------------------------------------------------------


def test_deploy_a_ref_makes_a_relative_source_absolute(
    dcli: DeployCli, dapi: DeployApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "repo").mkdir()
    monkeypatch.chdir(tmp_path)
    r = dcli("deploy", "api", "--source", "repo", "--ref", "main")
    assert r.code == 0, r.err
    assert dapi.last() == ("POST", SVC + "/deployments", {"source": str(tmp_path / "repo"), "ref": "main"})
    assert re.search(r"^status:\s+queued$", r.out, re.M)
    assert "platform deployments show api" in r.out
    assert "warning" not in r.err


def test_deploy_a_commit_of_a_url(dcli: DeployCli, dapi: DeployApi) -> None:
    for source in ("https://github.com/acme/api.git", "git@github.com:acme/api.git"):
        r = dcli("deploy", "api", "--source", source, "--commit", SHA, "-o", "json")
        assert r.code == 0, r.err
        assert dapi.last() == ("POST", SVC + "/deployments", {"source": source, "commit": SHA})
        assert r.json()["status"] == "queued"


def test_deploy_warns_of_a_relative_path_missing_here(
    dcli: DeployCli, dapi: DeployApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    r = dcli("deploy", "api", "--source", "missing", "--ref", "main")
    assert r.code == 0
    assert f"warning: {tmp_path / 'missing'} does not exist on this machine" in r.err


@pytest.mark.parametrize(
    "argv",
    [
        ["deploy", "api", "--source", "/r"],  # neither --ref nor --commit
        ["deploy", "api", "--source", "/r", "--ref", "main", "--commit", SHA],  # both
        ["deploy", "api", "--source", "/r", "--commit", "not-a-sha"],
        ["deploy", "api", "--ref", "main"],  # no --source
    ],
)
def test_deploy_usage_errors_exit_2(dcli: DeployCli, dapi: DeployApi, argv: list[str]) -> None:
    assert dcli(*argv).code == 2
    assert not dapi.calls


def test_deploy_wait_follows_the_steps_to_success(dcli: DeployCli, dapi: DeployApi) -> None:
    dep_id = f"01HX{dapi.minted_deployments + 101:022d}"
    step = {"started_at": "2024-05-02T12:00:01Z", "ended_at": None, "detail": None}
    dapi.progress[dep_id] = [
        {"status": "in_progress", "steps": [{**step, "name": "build", "status": "started"}]},
        {"status": "in_progress", "steps": [{**step, "name": "build", "status": "started"}]},
        {
            "status": "in_progress",
            "commit": SHA,
            "steps": [
                {**step, "name": "build", "status": "succeeded", "ended_at": "2024-05-02T12:00:05Z"},
                {**step, "name": "start", "status": "started"},
            ],
        },
        {
            "status": "succeeded",
            "steps": [
                {**step, "name": "build", "status": "succeeded", "ended_at": "2024-05-02T12:00:05Z"},
                {**step, "name": "start", "status": "succeeded", "detail": "healthy"},
            ],
        },
    ]
    r = dcli("deploy", "api", "--source", "/src/repo", "--ref", "main", "--wait")
    assert r.code == 0, r.err
    gets = [p for m, p in (c[2:4] for c in dapi.calls) if m == "GET"]
    assert gets == [f"{SVC}/deployments/{dep_id}"] * 4
    assert dcli.sleeps == [1.0] * 4
    assert r.err.splitlines() == [
        f"deployment {dep_id}: queued",
        "  build: started",
        f"deployment {dep_id}: in_progress",
        "  build: succeeded",
        "  start: started",
        "  start: succeeded (healthy)",
        f"deployment {dep_id}: succeeded",
    ]
    assert re.search(r"^status:\s+succeeded$", r.out, re.M)
    assert "STEP" in r.out and "2024-05-02T12:00:05Z" in r.out


def test_deploy_wait_ending_rolled_back_exits_1_with_the_reason(dcli: DeployCli, dapi: DeployApi) -> None:
    dep_id = f"01HX{dapi.minted_deployments + 101:022d}"
    dapi.progress[dep_id] = [
        {"status": "in_progress"},
        {"status": "rolled_back", "reason": "health check failed: exit status 1"},
    ]
    r = dcli("deploy", "api", "--source", "/src/repo", "--ref", "main", "--wait")
    assert r.code == 1
    assert r.err.splitlines()[-1] == (
        f"error: deployment {dep_id} rolled back: health check failed: exit status 1 (deployment_rolled_back)"
    )


@pytest.mark.parametrize("status", ["failed", "superseded"])
def test_deploy_wait_other_terminal_statuses_exit_1(dcli: DeployCli, dapi: DeployApi, status: str) -> None:
    dep_id = f"01HX{dapi.minted_deployments + 101:022d}"
    dapi.progress[dep_id] = [{"status": status, "reason": f"it was {status}"}]
    r = dcli("deploy", "api", "--source", "/src/repo", "--ref", "main", "--wait", "-o", "json")
    assert r.code == 1
    assert r.json()["status"] == status
    assert f"(deployment_{status})" in r.err


def test_deploy_wait_ends_when_the_api_says_finished_whatever_the_status(dcli: DeployCli, dapi: DeployApi) -> None:
    # The CLI knows no list of terminal statuses: a status it has never heard of ends the wait when the
    # API says the deployment is finished, and one the API says is not finished does not.
    dep_id = f"01HX{dapi.minted_deployments + 101:022d}"
    dapi.progress[dep_id] = [
        {"status": "succeeded", "finished": False},
        {"status": "archived", "finished": True, "reason": "archived by an operator"},
    ]
    r = dcli("deploy", "api", "--source", "/src/repo", "--ref", "main", "--wait", "-o", "json")
    assert r.code == 1
    assert r.json()["status"] == "archived"
    assert "(deployment_archived)" in r.err
    assert dapi.progress[dep_id] == []  # it read on past the unfinished "succeeded"


def test_deploy_wait_times_out(dcli: DeployCli, dapi: DeployApi) -> None:
    r = dcli("deploy", "api", "--source", "/src/repo", "--ref", "main", "--wait", "--timeout", "3")
    assert r.code == 1
    assert dcli.sleeps == [1.0, 1.0, 1.0]
    assert "still queued after 3s" in r.err and "(timeout)" in r.err


def test_deploy_to_an_unknown_namespace_exits_6(dcli: DeployCli) -> None:
    r = dcli("deploy", "api", "--namespace", "nope", "--source", "/r", "--ref", "main")
    assert r.code == 6


# -- deployments ----------------------------------------------------------------------------------------


def test_deployments_list_shows_a_short_trigger(dcli: DeployCli, dapi: DeployApi) -> None:
    push = {
        "kind": "push",
        "delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
        "actor": "github:ada",
        "branch": "main",
        "installation_id": "42",
        "repo_id": "1296269",
    }
    dapi.new_deployment("api", trigger=push)
    dapi.new_deployment("api", trigger={"kind": "rollback", "actor": "user:ada", "source_installation_id": "42"})
    r = dcli("deployments", "api")
    assert r.code == 0, r.err
    triggers = [line[r.out.index("TRIGGER") :].split("  ")[0].strip() for line in r.out.splitlines()[1:]]
    assert sorted(triggers) == ["api ada", "push ada main", "rollback"], r.out
    assert "installation" not in r.out and "delivery" not in r.out


def test_deployments_list_and_show(dcli: DeployCli, dapi: DeployApi) -> None:
    dep_id = first_dep(dapi)
    dep = dapi.deployments[dep_id]
    dep["reason"] = None
    dep["steps"] = [
        {
            "name": "build",
            "status": "succeeded",
            "started_at": "2024-05-02T12:00:01Z",
            "ended_at": "2024-05-02T12:00:09Z",
            "detail": None,
        }
    ]
    r = dcli("deployments", "api")
    assert r.code == 0, r.err
    assert dapi.last() == ("GET", SVC + "/deployments", None)
    assert r.out.splitlines()[0].split() == ["ID", "STATUS", "REF", "COMMIT", "TRIGGER", "CREATED", "REASON"]
    assert dep_id in r.out and " api ada " in r.out and "actor=" not in r.out  # the details: in show

    dapi.progress[dep_id] = [{"logs": [{"timestamp": "2024-05-02T12:00:10Z", "message": "listening on :40000"}]}]
    r = dcli("deployments", "show", "api", dep_id)
    assert r.code == 0, r.err
    assert dapi.last() == ("GET", f"{SVC}/deployments/{dep_id}", None)
    assert re.search(rf"^commit:\s+{SHA}$", r.out, re.M)
    assert re.search(r"^trigger:\s+api actor=user:ada$", r.out, re.M)
    assert re.search(r"^build\s+succeeded\s+2024-05-02T12:00:01Z\s+2024-05-02T12:00:09Z\s+-$", r.out, re.M)
    assert "2024-05-02T12:00:10Z  listening on :40000" in r.out


def test_deployments_show_unknown_exits_6(dcli: DeployCli) -> None:
    assert dcli("deployments", "show", "api", DEP2).code == 6


# -- rollback and auto-deploy ---------------------------------------------------------------------------


def test_rollback_says_auto_deploy_is_paused(dcli: DeployCli, dapi: DeployApi) -> None:
    r = dcli("rollback", "api")
    assert r.code == 0, r.err
    assert dapi.last() == ("POST", SVC + "/rollback", {})
    assert "auto-deploy is paused" in r.err
    assert re.search(r"^trigger:\s+rollback actor=user:ada$", r.out, re.M)

    target = first_dep(dapi)
    r = dcli("rollback", "api", "--to", target, "-o", "json")
    assert r.code == 0
    assert dapi.last() == ("POST", SVC + "/rollback", {"deployment_id": target})
    assert r.json()["auto_deploy_paused"] is True


def test_rollback_wait_follows_to_success(dcli: DeployCli, dapi: DeployApi) -> None:
    dep_id = f"01HX{dapi.minted_deployments + 101:022d}"
    dapi.progress[dep_id] = [{"status": "in_progress"}, {"status": "succeeded"}]
    r = dcli("rollback", "api", "--wait")
    assert r.code == 0, r.err
    assert r.err.splitlines()[-1] == f"deployment {dep_id}: succeeded"


def test_rollback_with_nothing_to_go_back_to_exits_7(dcli: DeployCli, dapi: DeployApi) -> None:
    dapi.forced[("POST", SVC + "/rollback")] = (409, "no_good_deployment", "no earlier good deployment")
    r = dcli("rollback", "api")
    assert r.code == 7
    assert r.err == "error: no earlier good deployment (no_good_deployment)\n"


def test_auto_deploy_on_and_off(dcli: DeployCli, dapi: DeployApi) -> None:
    r = dcli("auto-deploy", "api", "off")
    assert r.code == 0
    assert dapi.last() == ("POST", SVC + "/auto-deploy", {"enabled": False})
    assert r.out == "Auto-deploy of api: off\n"
    r = dcli("auto-deploy", "api", "on")
    assert dapi.last() == ("POST", SVC + "/auto-deploy", {"enabled": True})
    assert r.out == "Auto-deploy of api: on\n"
    assert dcli("auto-deploy", "api", "maybe").code == 2


# -- logs -----------------------------------------------------------------------------------------------


def line(ts: str, message: str) -> dict[str, Any]:
    return {"timestamp": ts, "message": message, "version": DEP1}


def query(path: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(path).query).items()}


def test_logs_with_since_as_a_duration_and_tail(dcli: DeployCli, dapi: DeployApi) -> None:
    dapi.log_lines = [line("2024-05-02T11:55:00Z", "started"), line("2024-05-02T11:56:00Z", "GET / 200")]
    r = dcli("logs", "api", "--since", "10m", "--tail", "50")
    assert r.code == 0, r.err
    method, path, _ = dapi.last()
    assert (method, urlsplit(path).path) == ("GET", SVC + "/logs")
    assert query(path) == {"since": "2024-05-02T11:50:00Z", "tail": "50"}
    assert r.out == "2024-05-02T11:55:00Z  started\n2024-05-02T11:56:00Z  GET / 200\n"


def test_logs_plain_json_and_errors(dcli: DeployCli, dapi: DeployApi) -> None:
    dapi.log_lines = [line("2024-05-02T11:55:00Z", "\x1b[31mred\x1b[0m")]
    r = dcli("logs", "api")
    assert dapi.last()[1] == SVC + "/logs"
    assert "\x1b" not in r.out
    assert dcli("logs", "api", "-o", "json").json() == {"lines": dapi.log_lines}
    assert dcli("logs", "api", "--since", "2024-05-01T00:00:00Z").code == 0
    assert query(dapi.last()[1]) == {"since": "2024-05-01T00:00:00Z"}
    calls = len(dapi.calls)
    assert dcli("logs", "api", "--since", "yesterday").code == 2
    assert dcli("logs", "api", "--tail", "0").code == 2
    assert len(dapi.calls) == calls


def test_logs_follow_prints_only_new_lines(dcli: DeployCli, dapi: DeployApi) -> None:
    dapi.log_script = [
        [line("2024-05-02T11:55:00Z", "one"), line("2024-05-02T11:56:00Z", "two")],
        [
            line("2024-05-02T11:56:00Z", "two"),
            line("2024-05-02T11:56:00Z", "two bis"),
            line("2024-05-02T11:57:00Z", "3"),
        ],
    ]
    r = dcli("logs", "api", "--follow", "--tail", "5", max_polls=2)
    assert r.code == 0, r.err
    assert r.out.splitlines() == [
        "2024-05-02T11:55:00Z  one",
        "2024-05-02T11:56:00Z  two",
        "2024-05-02T11:56:00Z  two bis",
        "2024-05-02T11:57:00Z  3",
    ]
    gets = [c[3] for c in dapi.calls if c[2] == "GET"]
    assert query(gets[0]) == {"tail": "5"}
    assert query(gets[1]) == {"since": "2024-05-02T11:56:00Z", "tail": "1000"}
    assert dcli.sleeps == [2.0]


def test_logs_follow_json_is_one_object_a_line(dcli: DeployCli, dapi: DeployApi) -> None:
    dapi.log_script = [[line("2024-05-02T11:55:00Z", "one")], [line("2024-05-02T11:55:00Z", "one")]]
    r = dcli("logs", "api", "-f", "-o", "json", max_polls=2)
    assert [json.loads(x) for x in r.out.splitlines()] == [line("2024-05-02T11:55:00Z", "one")]


def test_logs_follow_ends_with_exit_0_on_ctrl_c(dcli: DeployCli, dapi: DeployApi) -> None:
    dapi.log_lines = [line("2024-05-02T11:55:00Z", "one")]

    def interrupt(seconds: float) -> None:
        raise KeyboardInterrupt

    out, err = io.StringIO(), io.StringIO()
    code = main(
        ["logs", "api", "--follow"],
        client_factory=dapi.factory,
        environ=dcli.environ,
        stdin=io.StringIO(),
        stdout=out,
        stderr=err,
        sleep=interrupt,
        now=lambda: NOW,
    )
    assert code == 0
    assert out.getvalue() == "2024-05-02T11:55:00Z  one\n"
    assert err.getvalue() == ""


# -- config ---------------------------------------------------------------------------------------------


def test_config_set_plain_values_may_contain_equals(dcli: DeployCli, dapi: DeployApi) -> None:
    r = dcli("config", "set", "api", "DB_URL=postgres://h/db?sslmode=require", "LEVEL=debug")
    assert r.code == 0, r.err
    assert dapi.last() == (
        "PUT",
        SVC + "/config",
        {
            "vars": {
                "DB_URL": {"value": "postgres://h/db?sslmode=require", "secret": False},
                "LEVEL": {"value": "debug", "secret": False},
            }
        },
    )
    assert "api redeploys with the new config" in r.err
    assert re.search(r"^DB_URL\s+postgres://h/db\?sslmode=require$", r.out, re.M)


def test_config_secrets_are_never_printed(dcli: DeployCli, dapi: DeployApi) -> None:
    r = dcli("config", "set", "api", f"TOKEN={SECRET}", "--secret")
    assert r.code == 0, r.err
    assert dapi.last()[2] == {"vars": {"TOKEN": {"value": SECRET, "secret": True}}}
    assert "--stdin" in r.err  # the shell-history hint
    outputs = [r]
    outputs.append(dcli("config", "api"))
    outputs.append(dcli("config", "api", "-o", "json"))
    outputs.append(dcli("config", "list", "api", "-o", "json"))
    # Even an API that leaked a secret's value would not get it printed.
    dapi.config_view = lambda svc, redeploy: {  # type: ignore[method-assign]
        "vars": [{"key": "TOKEN", "secret": True, "value": SECRET}],
        "redeploy": redeploy,
    }
    outputs.append(dcli("config", "api"))
    outputs.append(dcli("config", "api", "-o", "json"))
    outputs.append(
        dcli("config", "set", "api", "TOKEN", "--secret", "--stdin", "-o", "json", stdin=io.StringIO(SECRET))
    )
    for result in outputs:
        assert result.code == 0, result.err
        assert SECRET not in result.out + result.err
    assert re.search(r"^TOKEN\s+\(secret\)$", outputs[1].out, re.M)
    assert outputs[2].json()["vars"] == [{"key": "TOKEN", "secret": True, "value": None}]


def test_config_set_secret_from_stdin(dcli: DeployCli, dapi: DeployApi) -> None:
    r = dcli("config", "set", "api", "API_KEY", "--secret", "--stdin", stdin=io.StringIO(SECRET + "\n"))
    assert r.code == 0, r.err
    assert dapi.last() == ("PUT", SVC + "/config", {"vars": {"API_KEY": {"value": SECRET, "secret": True}}})
    assert "shell history" not in r.err
    assert SECRET not in r.out + r.err


@pytest.mark.parametrize(
    ("argv", "stdin"),
    [
        (["config", "set", "api", "API_KEY", "--stdin"], ""),  # nothing on stdin
        (["config", "set", "api", "A", "B", "--stdin"], "x"),  # more than one key
        (["config", "set", "api", "A=1", "--stdin"], "x"),  # a value as well
        (["config", "set", "api", "NOEQUALS"], ""),
        (["config", "set", "api", "=value"], ""),
        (["config", "set", "api", "A=1", "A=2"], ""),
        (["config", "set", "api"], ""),
    ],
)
def test_config_set_usage_errors_exit_2(dcli: DeployCli, dapi: DeployApi, argv: list[str], stdin: str) -> None:
    assert dcli(*argv, stdin=io.StringIO(stdin)).code == 2
    assert not [c for c in dapi.calls if c[2] == "PUT"]


def test_config_unset(dcli: DeployCli, dapi: DeployApi) -> None:
    dapi.config["api"] = {"LEVEL": ("debug", False), "TOKEN": (SECRET, True)}
    r = dcli("config", "unset", "api", "LEVEL")
    assert r.code == 0, r.err
    assert dapi.last() == ("DELETE", SVC + "/config/LEVEL", None)
    assert r.out.startswith("Removed LEVEL\n")
    assert "redeploys" in r.err
    assert SECRET not in r.out
    assert dcli("config", "unset", "api", "LEVEL").code == 6


def test_config_of_another_namespace(dcli: DeployCli, dapi: DeployApi) -> None:
    dapi.forced[("GET", "/v1/namespaces/acme-web/services/api/config")] = (403, "forbidden", "members only")
    r = dcli("config", "--namespace", "acme-web", "api")
    assert r.code == 5
    assert dapi.last()[1] == "/v1/namespaces/acme-web/services/api/config"


def test_not_logged_in_exits_4(tmp_path: Path, dapi: DeployApi) -> None:
    c = DeployCli(tmp_path, dapi)
    c.environ["MICRO_NAMESPACE"] = "acme-backend"
    assert c("deploy", "api", "--source", "/r", "--ref", "main").code == 4
    assert not dapi.calls
