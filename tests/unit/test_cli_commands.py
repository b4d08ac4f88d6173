"""The platform CLI's commands against an in-memory double of the platform API (unit tier: no network).

The double answers per the API contract (bodies and error codes); the CLI reaches it through the
injectable ``client_factory`` of :func:`cli.platform_cli.main.main`, as it would reach the real API
through :class:`~cli.platform_cli.client.HttpClient`.
"""

from __future__ import annotations

import ast
import io
import json
import re
import stat
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import parse_qs, urlsplit

import pytest

from cli.platform_cli import __version__
from cli.platform_cli.errors import error_from_response
from cli.platform_cli.main import main
from cli.platform_cli.output import table

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2024, 5, 2, 12, 0, 0, tzinfo=UTC)


# -- the API double -------------------------------------------------------------------------------------


class FakeApi:
    """The platform API in memory, answering per the contract."""

    def __init__(self, *, local: bool = True) -> None:
        self.local = local
        self.users: dict[str, dict[str, Any]] = {
            "ada": {"login": "ada", "id": 1, "platform_admin": False},
            "grace": {"login": "grace", "id": 3, "platform_admin": False},
            "ken": {"login": "ken", "id": 4, "platform_admin": False},
        }
        self.sessions: dict[str, str] = {}  # token -> login
        self.namespaces: dict[str, dict[str, Any]] = {}
        self.roles: dict[str, dict[str, str]] = {}  # namespace -> login -> role
        self.api_tokens: dict[str, dict[str, Any]] = {}
        self.device_polls: list[str] = []  # error codes to answer before the token; "ok" or empty: success
        self.device_user = "grace"
        self.status_script: dict[str, list[str]] = {}  # namespace -> statuses its next GETs answer
        self.forced: dict[tuple[str, str], tuple[int, str, str]] = {}
        self.calls: list[tuple[str, str | None, str, str, Any]] = []
        self.minted = 0
        self.runtime_extra: dict[str, Any] = {}  # more fields of the runtime answer (expires_at, refresh_token)

    # set-up helpers
    def add_namespace(self, ns_id: str, *, status: str = "active", members: dict[str, str] | None = None) -> None:
        org, _, team = ns_id.partition("-")
        self.namespaces[ns_id] = {
            "id": ns_id,
            "status": status,
            "github_org": org,
            "github_team": team,
            "region": "local",
            "plan": "starter",
            "created_at": "2024-05-01T10:00:00Z",
            "failure_reason": None,
        }
        self.roles[ns_id] = dict(members or {"ada": "owner"})

    def session_for(self, login: str) -> str:
        self.minted += 1
        token = f"pt_{login}_{self.minted}"
        self.sessions[token] = login
        return token

    def factory(self, base_url: str, token: str | None) -> FakeClient:
        return FakeClient(self, base_url, token)

    # the API
    def handle(self, base_url: str, token: str | None, method: str, path: str, body: Any) -> Any:
        self.calls.append((base_url, token, method, path, body))
        route = urlsplit(path).path
        if (method, route) in self.forced:
            status, code, message = self.forced[(method, route)]
            raise error_from_response(status, {"error": {"code": code, "message": message, "details": {}}})
        if route == "/v1/auth/device" and method == "POST":
            return {
                "device_code": "dc_1",
                "user_code": "WDJB-MJHT",
                "verification_uri": "https://github.example/login/device",
                "interval": 5,
                "expires_in": 900,
            }
        if route == "/v1/auth/device/token" and method == "POST":
            assert body == {"device_code": "dc_1"}
            outcome = self.device_polls.pop(0) if self.device_polls else "ok"
            if ":" in outcome:  # "slow_down:30": the code with details.interval
                code, interval = outcome.split(":")
                self.fail(400, code, code.replace("_", " "), {"interval": int(interval)})
            if outcome != "ok":
                self.fail(400, outcome, outcome.replace("_", " "))
            return self.login_answer(self.device_user)
        if route == "/v1/auth/local-login" and method == "POST":
            if not self.local:
                self.fail(404, "not_found", "no such route")
            if body.get("login") not in self.users:
                self.fail(404, "not_found", f"no GitHub user {body.get('login')!r}", {"login": body.get("login")})
            return self.login_answer(body["login"])
        login = self.sessions.get(token or "")
        if login is None:
            self.fail(401, "unauthorized", "the token is missing, expired or revoked")
        if route == "/v1/auth/logout" and method == "POST":
            del self.sessions[token or ""]
            return None
        if route == "/v1/me":
            return {
                **self.users[login],
                "namespaces": [
                    {
                        "id": ns_id,
                        "role": roles[login],
                        "github_org": self.namespaces[ns_id]["github_org"],
                        "github_team": self.namespaces[ns_id]["github_team"],
                        "status": self.namespaces[ns_id]["status"],
                        "region": "local",
                    }
                    for ns_id, roles in self.roles.items()
                    if login in roles
                ],
            }
        if route == "/v1/regions":
            return {
                "regions": [
                    {
                        "name": "local",
                        "display_name": "Local",
                        "cloud": "local",
                        "status": "active",
                        "health": "healthy",
                    },
                    {"name": "eu", "display_name": "EU", "cloud": "aws", "status": "active", "health": "unavailable"},
                ]
            }
        if route == "/v1/namespaces" and method == "POST":
            missing = [k for k in ("github_org", "github_team", "region", "plan") if not body.get(k)]
            if missing:
                self.fail(422, "validation_failed", f"missing {missing}")
            ns_id = f"{body['github_org']}-{body['github_team']}"
            if ns_id in self.namespaces:
                self.fail(409, "namespace_exists", f"namespace {ns_id} already exists")
            self.add_namespace(ns_id, status="provisioning", members={login: "owner"})
            return self.namespaces[ns_id]
        if route == "/v1/namespaces" and method == "GET":
            return {"namespaces": [n for i, n in self.namespaces.items() if login in self.roles[i]]}
        match = re.fullmatch(r"/v1/namespaces/([^/]+)(/[a-z]+)?", route)
        if match:
            ns_id, rest = match.group(1), match.group(2)
            if ns_id not in self.namespaces or login not in self.roles[ns_id]:
                self.fail(404, "not_found", f"no namespace {ns_id}")
            ns = self.namespaces[ns_id]
            if rest is None and method == "GET":
                if self.status_script.get(ns_id):
                    new_status = self.status_script[ns_id].pop(0)
                    ns["status"] = new_status
                    if new_status == "failed":
                        ns["failure_reason"] = "no healthy cluster in region local"
                return ns
            if rest is None and method == "DELETE":
                ns["status"] = "deleting"
                return {"id": ns_id, "status": "deleting"}
            if rest == "/members":
                return {
                    "members": [
                        {"login": m, "id": self.users[m]["id"], "role": r, "source": "github_team"}
                        for m, r in self.roles[ns_id].items()
                    ]
                }
            if rest == "/runtime":
                if ns["status"] != "active":
                    self.fail(409, "namespace_not_active", f"namespace {ns_id} is {ns['status']}")
                return {
                    "namespace": ns_id,
                    "proxy_address": "proxy.local.example.com",
                    "auth_token": f"rt_{ns_id}",
                    **self.runtime_extra,
                }
            if rest == "/audit":
                query = {k: v[0] for k, v in parse_qs(urlsplit(path).query).items()}
                return {
                    "entries": [
                        {
                            "id": "a1",
                            "at": "2024-05-02T11:00:00Z",
                            "actor": query.get("actor", "ada"),
                            "action": query.get("action", "token.create"),
                            "target": "tok_1",
                            "outcome": "success",
                            "source_ip": "127.0.0.1",
                            "user_agent": "platform-cli",
                        }
                    ]
                }
        if route == "/v1/tokens" and method == "POST":
            token_id = f"tok_{len(self.api_tokens) + 1}"
            record = {
                "id": token_id,
                "name": body["name"],
                "namespace": body["namespace"],
                "scopes": body["scopes"],
                "created_at": "2024-05-02T12:00:00Z",
                "expires_at": "2024-06-01T12:00:00Z",
                "last_used_at": None,
            }
            self.api_tokens[token_id] = record
            return {**record, "token": f"pt_secret_{token_id}"}
        if route == "/v1/tokens" and method == "GET":
            return {"tokens": list(self.api_tokens.values())}
        match = re.fullmatch(r"/v1/tokens/([^/]+)", route)
        if match and method == "DELETE":
            if match.group(1) not in self.api_tokens:
                self.fail(404, "not_found", "no such token")
            del self.api_tokens[match.group(1)]
            return None
        self.fail(404, "not_found", f"no route {method} {route}")

    def login_answer(self, login: str) -> dict[str, Any]:
        token = self.session_for(login)
        return {"token": token, "token_id": f"tid_{self.minted}", "login": login, "expires_at": "2024-06-01T00:00:00Z"}

    @staticmethod
    def fail(status: int, code: str, message: str, details: Any = None) -> NoReturn:
        raise error_from_response(status, {"error": {"code": code, "message": message, "details": details or {}}})

    def paths(self) -> list[str]:
        return [f"{method} {path}" for _, _, method, path, _ in self.calls]


@dataclass
class FakeClient:
    api: FakeApi
    base_url: str
    token: str | None

    def request(self, method: str, path: str, json: Any = None) -> Any:
        return self.api.handle(self.base_url, self.token, method, path, json)


class Tty(io.StringIO):
    """Keyboard input: a terminal."""

    def isatty(self) -> bool:
        return True


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


class Cli:
    def __init__(self, home: Path, api: FakeApi) -> None:
        self.home = home
        self.api = api
        self.environ: dict[str, str] = {"HOME": str(home)}
        self.sleeps: list[float] = []

    @property
    def file(self) -> Path:
        """The platform's dotenv file: ``~/.micro/platform.env``, or an earlier version's ``~/.micro`` file."""
        micro = self.home / ".micro"
        return micro if micro.is_file() else micro / "platform.env"

    def values(self) -> dict[str, str]:
        from cli.platform_cli.config import DotEnv

        return DotEnv.parse(self.file.read_text()).values()

    def __call__(self, *argv: str, stdin: io.StringIO | None = None) -> Result:
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
        )
        return Result(code, out.getvalue(), err.getvalue())

    def log_in(self, login: str = "ada", namespace: str | None = None) -> str:
        token = self.api.session_for(login)
        lines = [f"PLATFORM_API_URL=http://127.0.0.1:8000\nPLATFORM_TOKEN={token}\n"]
        if namespace:
            lines.append(f"MICRO_NAMESPACE={namespace}\n")
        self.file.parent.mkdir(mode=0o700, exist_ok=True)
        self.file.write_text("".join(lines))
        return token


@pytest.fixture
def api() -> FakeApi:
    fake = FakeApi()
    fake.add_namespace("acme-backend", members={"ada": "owner", "grace": "member"})
    return fake


@pytest.fixture
def cli(tmp_path: Path, api: FakeApi) -> Cli:
    return Cli(tmp_path, api)


# -- the boundary ----------------------------------------------------------------------------------------


def test_the_cli_imports_no_server_code() -> None:
    forbidden = ("chalicelib", "localcloud", "functions", "app")
    for source in (ROOT / "cli").rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in forbidden, f"{source} imports {name}"


def test_version(capsys: pytest.CaptureFixture[str], cli: Cli) -> None:
    assert cli("--version").code == 0
    assert capsys.readouterr().out == f"platform {__version__}\n"


def test_help_documents_the_exit_codes(capsys: pytest.CaptureFixture[str], cli: Cli) -> None:
    assert cli("--help").code == 0
    out = capsys.readouterr().out
    for line in ("0  success", "3  cannot reach the API", "4  not logged in", "7  conflict (API 409)"):
        assert line in out


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], cli: Cli) -> None:
    assert cli("namespaces", "create", "--org", "acme").code == 2
    assert "--team" in capsys.readouterr().err
    assert cli("no-such-command").code == 2
    assert cli("tokens", "create", "--name", "ci", "--scope", "read", "--expires-in", "soon").code == 2
    assert "not a duration" in capsys.readouterr().err
    assert cli("tokens").code == 2  # a group without its subcommand (and no default list) prints its help


# -- init ------------------------------------------------------------------------------------------------


def test_init_non_interactive_with_flags_and_no_tty_writes_every_key(cli: Cli, api: FakeApi) -> None:
    result = cli("init", "--local", "--login", "ada", "--namespace", "acme-backend")
    assert result.code == 0, result.err
    values = cli.values()
    assert values == {
        "PLATFORM_API_URL": "http://127.0.0.1:8000",
        "PLATFORM_TOKEN": values["PLATFORM_TOKEN"],
        "MICRO_NAMESPACE": "acme-backend",
        "MICRO_PROXY_ADDRESS": "proxy.local.example.com",
        "MICRO_AUTH_TOKEN": "rt_acme-backend",
    }
    assert api.sessions[values["PLATFORM_TOKEN"]] == "ada"
    assert stat.S_IMODE(cli.file.stat().st_mode) == 0o600
    assert "POST /v1/auth/local-login" in api.paths()
    assert "GET /v1/namespaces/acme-backend/runtime" in api.paths()
    # Secrets are not echoed to the terminal.
    assert values["PLATFORM_TOKEN"] not in result.out + result.err
    assert "rt_acme-backend" not in result.out + result.err


def test_init_with_a_token_skips_the_login(cli: Cli, api: FakeApi) -> None:
    token = api.session_for("ada")
    result = cli("init", "--api-url", "https://api.example.com/", "--token", token, "--yes", "-o", "json")
    assert result.code == 0, result.err
    assert not [p for p in api.paths() if "/auth/" in p]
    assert cli.values()["PLATFORM_API_URL"] == "https://api.example.com"
    assert cli.values()["PLATFORM_TOKEN"] == token
    answer = result.json()
    assert answer["login"] == "ada"
    assert answer["namespace"] == "acme-backend"  # the only one: taken without asking
    assert "https://api.example.com" in {c[0] for c in api.calls}


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["init"], "--api-url"),
        (["init", "--local"], "--login"),
        (["init", "--api-url", "http://127.0.0.1:8000", "--local"], "--login"),
    ],
)
def test_init_missing_an_answer_without_a_tty_exits_2_naming_the_flag(cli: Cli, argv: list[str], flag: str) -> None:
    result = cli(*argv)
    assert result.code == 2
    assert flag in result.err
    assert result.err.startswith("error: ") and result.err.count("\n") == 1
    assert not cli.file.exists()


def test_init_with_several_namespaces_and_no_tty_exits_2_naming_namespace_but_keeps_the_login(
    cli: Cli, api: FakeApi
) -> None:
    api.add_namespace("acme-frontend", members={"ada": "admin"})
    result = cli("init", "--local", "--login", "ada")
    assert result.code == 2
    assert "--namespace" in result.err
    assert "acme-backend" in result.err and "acme-frontend" in result.err
    assert set(cli.values()) == {"PLATFORM_API_URL", "PLATFORM_TOKEN"}


def test_init_interactive_asks_for_each_answer(cli: Cli, api: FakeApi) -> None:
    api.add_namespace("acme-frontend", members={"ada": "admin"})
    answers = Tty("local\nada\n2\n")
    result = cli("init", stdin=answers)
    assert result.code == 0, result.err
    assert "Environment" in result.err
    assert "1) acme-backend" in result.err and "2) acme-frontend" in result.err
    assert cli.values()["MICRO_NAMESPACE"] == "acme-frontend"
    assert cli.values()["MICRO_AUTH_TOKEN"] == "rt_acme-frontend"


def test_init_interactive_on_end_of_input_exits_2_naming_the_flag(cli: Cli) -> None:
    result = cli("init", "--local", stdin=Tty(""))
    assert result.code == 2
    assert "--login" in result.err


def test_init_yes_never_prompts_even_on_a_tty(cli: Cli) -> None:
    result = cli("init", "--yes", stdin=Tty("local\nada\n"))
    assert result.code == 2
    assert "--api-url" in result.err


def test_init_with_the_device_flow(cli: Cli, api: FakeApi) -> None:
    api.local = False
    api.device_polls = ["authorization_pending"]
    result = cli("init", "--api-url", "https://api.example.com", "--namespace", "acme-backend")
    assert result.code == 0, result.err
    assert "https://github.example/login/device" in result.err and "WDJB-MJHT" in result.err
    assert api.sessions[cli.values()["PLATFORM_TOKEN"]] == "grace"
    assert cli.sleeps == [5, 5]


def test_init_reuses_the_saved_login_for_the_same_api(cli: Cli, api: FakeApi) -> None:
    token = cli.log_in("ada")
    result = cli("init", "--yes")
    assert result.code == 0, result.err
    assert not [p for p in api.paths() if "/auth/" in p]
    assert cli.values()["PLATFORM_TOKEN"] == token
    assert cli.values()["MICRO_NAMESPACE"] == "acme-backend"


def test_init_for_a_namespace_not_active_yet_writes_only_the_namespace(cli: Cli, api: FakeApi) -> None:
    api.add_namespace("acme-frontend", status="provisioning", members={"ada": "owner"})
    cli.file.parent.mkdir()
    cli.file.write_text("MICRO_PROXY_ADDRESS=stale\nMICRO_AUTH_TOKEN=stale\n")
    result = cli("init", "--local", "--login", "ada", "--namespace", "acme-frontend")
    assert result.code == 0, result.err
    values = cli.values()
    assert values["MICRO_NAMESPACE"] == "acme-frontend"
    assert "MICRO_PROXY_ADDRESS" not in values and "MICRO_AUTH_TOKEN" not in values
    assert "provisioning" in result.err
    assert "GET /v1/namespaces/acme-frontend/runtime" not in api.paths()


def test_init_with_no_namespaces_says_how_to_create_one(cli: Cli) -> None:
    result = cli("init", "--local", "--login", "ken")
    assert result.code == 0, result.err
    assert "platform namespaces create --org" in result.err
    assert set(cli.values()) == {"PLATFORM_API_URL", "PLATFORM_TOKEN"}


def test_init_for_a_namespace_the_user_cannot_see_exits_6(cli: Cli) -> None:
    result = cli("init", "--local", "--login", "ken", "--namespace", "acme-backend")
    assert result.code == 6
    assert result.err.endswith("\nerror: no namespace acme-backend (not_found)\n")


def test_init_into_a_micro_directory_writes_platform_env_and_says_so(cli: Cli) -> None:
    micro = cli.home / ".micro"
    micro.mkdir()
    (micro / "config.json").write_text('{"env": "local", "git": {"baseurl": "github.com/acme"}}')
    result = cli("init", "--local", "--login", "ada", "--namespace", "acme-backend")
    assert result.code == 0, result.err
    assert "to ~/.micro/platform.env (mode 0600)" in result.err
    assert "to ~/.micro/config.json (mode 0600)" in result.err
    assert cli.values()["MICRO_NAMESPACE"] == "acme-backend"
    assert stat.S_IMODE((micro / "platform.env").stat().st_mode) == 0o600
    # micro's own file now has the platform's environment, and keeps the rest.
    micro_config = json.loads((micro / "config.json").read_text())
    assert micro_config["env"] == "maas" and micro_config["git"] == {"baseurl": "github.com/acme"}


def test_init_keeps_other_keys_and_comments(cli: Cli) -> None:
    cli.file.parent.mkdir()
    cli.file.write_text("# written by hand\nMICRO_PROXY_ADDRESS=old\nMY_TOOL=on\n")
    assert cli("init", "--local", "--login", "ada", "--namespace", "acme-backend").code == 0
    text = cli.file.read_text()
    assert text.startswith("# written by hand\nMICRO_PROXY_ADDRESS=proxy.local.example.com\nMY_TOOL=on\n")


def test_local_login_on_an_api_that_is_not_local(cli: Cli, api: FakeApi) -> None:
    api.local = False
    result = cli("login", "--api-url", "https://api.example.com", "--local", "--login", "ada")
    assert result.code == 6
    assert "not a local-stage API" in result.err


def test_local_login_with_an_unknown_login_says_so(cli: Cli) -> None:
    result = cli("login", "--local", "--login", "nobody")
    assert result.code == 6
    assert result.err == "error: no GitHub user 'nobody' (not_found)\n"


# -- login, device flow, logout, whoami -------------------------------------------------------------------


def test_login_local_writes_the_token_and_prints_no_secret(cli: Cli, api: FakeApi) -> None:
    result = cli("login", "--local", "--login", "ada", "--output", "json")
    assert result.code == 0, result.err
    answer = result.json()
    assert answer["login"] == "ada"
    assert "token" not in answer
    token = cli.values()["PLATFORM_TOKEN"]
    assert api.sessions[token] == "ada"
    assert token not in result.out


def test_device_flow_polls_through_pending_and_slow_down(cli: Cli, api: FakeApi) -> None:
    api.device_polls = ["authorization_pending", "slow_down", "authorization_pending", "slow_down:30"]
    result = cli("login")
    assert result.code == 0, result.err
    # interval 5; pending; slow_down adds 5; pending; slow_down gives 30 explicitly; then the token.
    assert cli.sleeps == [5, 5, 10, 10, 30]
    assert "Logged in to http://127.0.0.1:8000 as grace" in result.out


def test_device_flow_keeps_to_the_interval_the_api_holds_it_to(cli: Cli, api: FakeApi) -> None:
    # the API holds polls to 15 s (GitHub said so to an earlier poll, perhaps of another CLI run)
    api.device_polls = ["authorization_pending:15", "authorization_pending:10"]
    result = cli("login")
    assert result.code == 0, result.err
    assert cli.sleeps == [5, 15, 15]  # and never back to a shorter interval


@pytest.mark.parametrize(
    ("outcome", "message"),
    [("expired_token", "expired before it was approved"), ("access_denied", "denied")],
)
def test_device_flow_stops_on_expired_or_denied(cli: Cli, api: FakeApi, outcome: str, message: str) -> None:
    api.device_polls = ["authorization_pending", outcome]
    result = cli("login")
    assert result.code == 4
    assert message in result.err
    assert result.err.endswith(f"({outcome})\n")
    assert not cli.file.exists()


def test_device_flow_gives_up_when_the_code_outlives_expires_in(cli: Cli, api: FakeApi) -> None:
    api.device_polls = ["authorization_pending"] * 1000
    result = cli("login")
    assert result.code == 4
    assert sum(cli.sleeps) == 900
    assert "(expired_token)" in result.err


def test_logout_revokes_and_removes_only_the_token(cli: Cli, api: FakeApi) -> None:
    token = cli.log_in("ada", namespace="acme-backend")
    result = cli("logout")
    assert result.code == 0, result.err
    assert token not in api.sessions
    assert cli.values() == {"PLATFORM_API_URL": "http://127.0.0.1:8000", "MICRO_NAMESPACE": "acme-backend"}
    assert cli("whoami").code == 4


def test_whoami_table_and_json(cli: Cli) -> None:
    cli.log_in("ada", namespace="acme-backend")
    result = cli("whoami")
    assert result.code == 0, result.err
    assert re.search(r"^login:\s+ada$", result.out, re.M)
    assert re.search(r"^acme-backend\s+owner\s+active\s+acme\s+backend\s+local$", result.out, re.M)
    answer = cli("whoami", "--output", "json").json()
    assert answer["login"] == "ada"
    assert answer["namespaces"][0]["id"] == "acme-backend"


def test_output_json_may_come_before_the_command(cli: Cli) -> None:
    cli.log_in("ada")
    assert cli("-o", "json", "whoami").json()["login"] == "ada"
    assert cli("--output", "json", "namespaces", "list").json()["namespaces"][0]["id"] == "acme-backend"


# -- exit codes -----------------------------------------------------------------------------------------


def test_not_logged_in_exits_4_without_calling_the_api(cli: Cli, api: FakeApi) -> None:
    result = cli("namespaces", "list")
    assert result.code == 4
    assert result.err == "error: not logged in: run `platform login` or `platform init` (not_logged_in)\n"
    assert api.calls == []


def test_a_revoked_token_exits_4(cli: Cli, api: FakeApi) -> None:
    token = cli.log_in("ada")
    del api.sessions[token]
    result = cli("whoami")
    assert result.code == 4
    assert "(unauthorized)" in result.err and "platform login" in result.err


@pytest.mark.parametrize(
    ("status", "exit_code"),
    [(400, 2), (401, 4), (403, 5), (404, 6), (409, 7), (422, 2), (429, 1), (500, 1), (503, 1)],
)
def test_exit_code_per_status(cli: Cli, api: FakeApi, status: int, exit_code: int) -> None:
    cli.log_in("ada")
    api.forced[("GET", "/v1/namespaces")] = (status, "some_code", "something\nwent wrong")
    result = cli("namespaces", "list")
    assert result.code == exit_code
    assert result.out == ""
    # One line on stderr (control characters in the message are flattened).
    assert result.err.startswith("error: something went wrong")
    assert result.err.endswith(" (some_code)\n") and result.err.count("\n") == 1


def test_the_environment_overrides_the_file(cli: Cli, api: FakeApi) -> None:
    cli.log_in("ada")
    env_token = api.session_for("grace")
    cli.environ.update({"PLATFORM_TOKEN": env_token, "PLATFORM_API_URL": "https://env.example.com"})
    assert cli("whoami", "-o", "json").json()["login"] == "grace"
    assert api.calls[-1][0] == "https://env.example.com"


def test_platform_config_names_the_file_used(cli: Cli, tmp_path: Path, api: FakeApi) -> None:
    other = tmp_path / "other.env"
    cli.environ["PLATFORM_CONFIG"] = str(other)
    assert cli("login", "--local", "--login", "ada").code == 0
    assert "PLATFORM_TOKEN=" in other.read_text()
    assert not (tmp_path / ".micro").exists()


# -- namespaces -----------------------------------------------------------------------------------------


def test_namespaces_list_is_an_aligned_table(cli: Cli, api: FakeApi) -> None:
    api.add_namespace("acme-frontend-web", status="provisioning", members={"ada": "admin"})
    cli.log_in("ada")
    result = cli("namespaces", "list")
    assert result.code == 0
    lines = result.out.splitlines()
    assert lines[0].split() == ["ID", "STATUS", "ORG", "TEAM", "REGION", "PLAN", "CREATED"]
    # Columns line up: each column starts at the same offset in every line.
    assert lines[0].index("STATUS") == lines[1].index("active") == lines[2].index("provisioning")


def test_namespaces_and_regions_without_a_subcommand_list(cli: Cli, api: FakeApi) -> None:
    """As ``platform services`` does; a mistyped subcommand is still named as such."""
    cli.log_in("ada")
    assert cli("namespaces").out == cli("namespaces", "list").out
    assert cli("namespaces", "-o", "json").json()["namespaces"][0]["id"] == "acme-backend"
    assert cli("regions", "-o", "json").json()["regions"][0]["name"] == "local"
    wrong = cli("namespaces", "lsit")
    assert wrong.code == 2  # argparse: invalid choice 'lsit'
    assert cli("namespaces", "--help").code == 0


def test_namespaces_create_without_wait_prints_the_answer(cli: Cli, api: FakeApi) -> None:
    cli.log_in("ada")
    result = cli("namespaces", "create", "--org", "acme", "--team", "data", "--region", "local", "--plan", "starter")
    assert result.code == 0, result.err
    assert re.search(r"^status:\s+provisioning$", result.out, re.M)
    assert api.calls[-1][4] == {"github_org": "acme", "github_team": "data", "region": "local", "plan": "starter"}


def test_namespaces_create_wait_polls_until_active(cli: Cli, api: FakeApi) -> None:
    cli.log_in("ada")
    api.status_script["acme-data"] = ["provisioning", "provisioning", "active"]
    argv = ["namespaces", "create", "--org", "acme", "--team", "data", "--region", "local", "--plan", "starter"]
    result = cli(*argv, "--wait", "-o", "json")
    assert result.code == 0, result.err
    assert result.json()["status"] == "active"
    assert result.err.count("namespace acme-data: provisioning") == 1
    assert "namespace acme-data: active" in result.err
    assert cli.sleeps == [2.0, 2.0]


def test_namespaces_create_wait_fails_with_the_reason(cli: Cli, api: FakeApi) -> None:
    cli.log_in("ada")
    api.status_script["acme-data"] = ["provisioning", "failed"]
    argv = ["namespaces", "create", "--org", "acme", "--team", "data", "--region", "local", "--plan", "starter"]
    result = cli(*argv, "--wait")
    assert result.code == 1
    assert "namespace acme-data failed: no healthy cluster in region local (provisioning_failed)" in result.err


def test_namespaces_create_conflict_exits_7(cli: Cli) -> None:
    cli.log_in("ada")
    argv = ["namespaces", "create", "--org", "acme", "--team", "backend", "--region", "local", "--plan", "starter"]
    result = cli(*argv)
    assert result.code == 7
    assert result.err == "error: namespace acme-backend already exists (namespace_exists)\n"


def test_namespaces_show_and_members_default_to_micro_namespace(cli: Cli) -> None:
    cli.log_in("ada", namespace="acme-backend")
    assert cli("namespaces", "show", "-o", "json").json()["id"] == "acme-backend"
    members = cli("namespaces", "members")
    assert members.code == 0
    assert members.out.splitlines()[0].split() == ["LOGIN", "ID", "ROLE", "SOURCE"]
    assert "grace" in members.out
    assert cli("namespaces", "show", "acme-nope").code == 6


def test_namespaces_delete_needs_yes_without_a_tty(cli: Cli, api: FakeApi) -> None:
    cli.log_in("ada")
    result = cli("namespaces", "delete", "acme-backend")
    assert result.code == 2
    assert "--yes" in result.err
    assert api.namespaces["acme-backend"]["status"] == "active"
    assert cli("namespaces", "delete", "acme-backend", stdin=Tty("n\n")).code == 1
    assert cli("namespaces", "delete", "acme-backend", "--yes", "-o", "json").json() == {
        "id": "acme-backend",
        "status": "deleting",
    }


# -- tokens and audit -----------------------------------------------------------------------------------


def test_tokens_create_shows_the_secret_once_with_a_warning(cli: Cli, api: FakeApi) -> None:
    cli.log_in("ada", namespace="acme-backend")
    result = cli("tokens", "create", "--name", "ci", "--scope", "read", "--scope", "deploy", "--expires-in", "30d")
    assert result.code == 0, result.err
    assert api.calls[-1][4] == {
        "name": "ci",
        "namespace": "acme-backend",
        "scopes": ["read", "deploy"],
        "expires_in": 2592000,
    }
    assert "pt_secret_tok_1" in result.out
    assert "only time" in result.err
    listing = cli("tokens", "list")
    assert "pt_secret" not in listing.out
    assert listing.out.splitlines()[1].split()[:4] == ["tok_1", "ci", "acme-backend", "read,deploy"]


@pytest.mark.parametrize(("given", "seconds"), [("12h", 43200), ("45m", 2700), ("3600", 3600), ("2w", 1209600)])
def test_tokens_expires_in_units(cli: Cli, api: FakeApi, given: str, seconds: int) -> None:
    cli.log_in("ada")
    argv = ["tokens", "create", "--name", "x", "--namespace", "acme-backend", "--scope", "read"]
    assert cli(*argv, "--expires-in", given).code == 0
    assert api.calls[-1][4]["expires_in"] == seconds


def test_tokens_create_without_a_namespace_exits_2(cli: Cli) -> None:
    cli.log_in("ada")
    result = cli("tokens", "create", "--name", "x", "--scope", "read")
    assert result.code == 2
    assert "--namespace" in result.err


def test_tokens_revoke(cli: Cli, api: FakeApi) -> None:
    cli.log_in("ada")
    cli("tokens", "create", "--name", "x", "--namespace", "acme-backend", "--scope", "admin")
    assert cli("tokens", "revoke", "tok_1", "-o", "json").json() == {"id": "tok_1", "revoked": True}
    assert api.api_tokens == {}
    assert cli("tokens", "revoke", "tok_1").code == 6


def test_audit_defaults_to_micro_namespace_and_passes_filters(cli: Cli, api: FakeApi) -> None:
    cli.log_in("ada", namespace="acme-backend")
    result = cli("audit", "--since", "24h", "--actor", "grace", "--action", "namespace.delete")
    assert result.code == 0, result.err
    path = api.calls[-1][3]
    assert urlsplit(path).path == "/v1/namespaces/acme-backend/audit"
    assert parse_qs(urlsplit(path).query) == {
        "since": ["2024-05-01T12:00:00Z"],
        "actor": ["grace"],
        "action": ["namespace.delete"],
    }
    assert result.out.splitlines()[0].split() == ["AT", "ACTOR", "ACTION", "TARGET", "OUTCOME", "SOURCE", "IP"]
    assert "namespace.delete" in result.out


def test_audit_passes_an_iso_since_as_given_and_rejects_garbage(cli: Cli, api: FakeApi) -> None:
    cli.log_in("ada")
    assert cli("audit", "--namespace", "acme-backend", "--since", "2024-05-01T00:00:00Z").code == 0
    assert parse_qs(urlsplit(api.calls[-1][3]).query) == {"since": ["2024-05-01T00:00:00Z"]}
    assert cli("audit", "--namespace", "acme-backend", "--since", "yesterday").code == 2


def test_audit_without_a_namespace_exits_2(cli: Cli) -> None:
    cli.log_in("ada")
    result = cli("audit")
    assert result.code == 2
    assert "--namespace" in result.err


def test_regions_list(cli: Cli) -> None:
    cli.log_in("ada")
    assert cli("regions", "list", "-o", "json").json()["regions"][0]["name"] == "local"
    rows = [line.split() for line in cli("regions", "list").out.splitlines()]
    assert rows[0][-2:] == ["STATUS", "HEALTH"]
    assert ["eu", "EU", "aws", "active", "unavailable"] in rows  # active, but no healthy cluster


# -- output ---------------------------------------------------------------------------------------------


def test_table_formatting() -> None:
    text = table(
        ["id", "scopes", "last used", "admin"], [["t1", ["read", "deploy"], None, True], ["t22", [], "x", False]]
    )
    assert text == (
        "ID   SCOPES       LAST USED  ADMIN\nt1   read,deploy  -          yes\nt22  -            x          no\n"
    )


def test_table_cells_cannot_carry_terminal_escapes() -> None:
    assert "\x1b" not in table(["name"], [["evil\x1b]0;pwned\x07"]])
