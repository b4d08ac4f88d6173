"""``platform init`` configures micro v3's own CLI (``~/.micro/config.json``), and ``platform env``.

What ``init`` writes is read back with :mod:`tests.micro_v3`, a transcription of how micro v3.19.0's
CLI reads ``~/.micro`` (util/config, client/cli/util, client/cli/namespace, client/cli/token, cmd).
"""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cli.platform_cli import micro_config
from cli.platform_cli.micro_config import go_json, proxy_host_port
from tests import micro_v3
from tests.unit.test_cli_commands import Cli, FakeApi

INIT = ("init", "--local", "--login", "ada", "--namespace", "acme-backend")


@pytest.fixture
def api() -> FakeApi:
    fake = FakeApi()
    fake.add_namespace("acme-backend", members={"ada": "owner", "grace": "member"})
    return fake


@pytest.fixture
def cli(tmp_path: Path, api: FakeApi) -> Cli:
    (tmp_path / "home").mkdir()
    return Cli(tmp_path / "home", api)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def micro_reads(cli: Cli, env_flag: str = "") -> tuple[micro_v3.Env, str, micro_v3.AccountToken]:
    """What micro v3's CLI takes from ``~/.micro``: the environment, its namespace, its token."""
    document = micro_v3.read_config(cli.home / ".micro" / "config.json")
    env = micro_v3.get_env(document, env_flag)
    token = micro_v3.token_get(document, env, cli.home / ".micro" / "tokens")
    return env, micro_v3.namespace_get(document, env.name), token


def in_minutes(minutes: int) -> datetime:
    return (datetime.now(UTC) + timedelta(minutes=minutes)).replace(microsecond=0)


# -- what micro reads ----------------------------------------------------------------------------------


def test_init_writes_a_config_json_that_micro_v3_reads(cli: Cli, api: FakeApi) -> None:
    expires = in_minutes(15)
    api.runtime_extra = {"expires_at": expires.strftime("%Y-%m-%dT%H:%M:%SZ")}
    result = cli(*INIT)
    assert result.code == 0, result.err
    env, namespace, token = micro_reads(cli)
    assert env.name == "maas" and env.name not in micro_v3.DEFAULT_ENVS  # not replaced by micro's built-ins
    assert micro_v3.cli_proxy_address(env) == "proxy.local.example.com:443"
    assert namespace == "acme-backend"
    document = micro_v3.read_config(cli.home / ".micro" / "config.json")
    assert "acme-backend" in micro_v3.namespace_list(document, "maas")  # `micro user namespace set` accepts it
    assert token.access_token == "rt_acme-backend"
    assert token.expiry == expires
    assert micro_v3.sends_token_as_is(token, datetime.now(UTC))  # micro's CLI sends this token
    assert mode(cli.home / ".micro") == 0o700
    assert mode(cli.home / ".micro" / "config.json") == 0o600
    assert "rt_acme-backend" not in result.out + result.err
    assert "micro env:" in result.out and "maas in ~/.micro/config.json" in result.out


def test_config_json_is_written_as_micro_s_go_code_writes_it(cli: Cli, api: FakeApi) -> None:
    api.runtime_extra = {"expires_at": "2031-01-01T00:00:00Z", "refresh_token": "rfr_1"}
    assert cli(*INIT).code == 0
    envs = (
        '{"local":{"Name":"local","ProxyAddress":"127.0.0.1:8081","Description":"Local running Micro Server"},'
        '"maas":{"Name":"maas","ProxyAddress":"proxy.local.example.com:443",'
        '"Description":"Micro as a Service (http://127.0.0.1:8000)"},'
        '"platform":{"Name":"platform","ProxyAddress":"proxy.m3o.com","Description":"Cloud hosted Micro Platform"}}'
    )
    assert (cli.home / ".micro" / "config.json").read_text() == (
        '{"env":"maas",'
        f'"envs":{json.dumps(envs)},'
        '"micro":{"auth":{"maas":{"expiry":"1924992000","refresh-token":"rfr_1","token":"rt_acme-backend"}}},'
        '"namespaces":{"maas":{"all":"acme-backend","current":"acme-backend"}}}'
    )


def test_without_a_refresh_token_the_access_token_stands_in_so_micro_sends_it(cli: Cli, api: FakeApi) -> None:
    # cmd/cmd.go setupAuthForCLI sends no token at all without a refresh token; micro's auth service
    # (service/auth/handler/auth.go Token) takes a valid JWT access token as a refresh token.
    api.runtime_extra = {"expires_at": in_minutes(15).isoformat()}
    assert cli(*INIT).code == 0
    _, _, token = micro_reads(cli)
    assert token.refresh_token == "rt_acme-backend"
    assert micro_v3.sends_token_as_is(token, datetime.now(UTC))


@pytest.mark.parametrize(
    ("given", "expiry"),
    [(1924992000, "1924992000"), ("2031-01-01T00:00:00", "1924992000"), ("2031-01-01T01:00:00+01:00", "1924992000")],
)
def test_expires_at_as_unix_seconds_or_iso_8601(cli: Cli, api: FakeApi, given: object, expiry: str) -> None:
    api.runtime_extra = {"expires_at": given}
    result = cli(*INIT, "-o", "json")
    assert result.code == 0, result.err
    document = micro_v3.read_config(cli.home / ".micro" / "config.json")
    assert micro_v3.config_get(document, "micro.auth.maas.expiry") == expiry
    assert result.json()["auth_token_expires_at"] == "2031-01-01T00:00:00Z"


def test_an_unreadable_expires_at_is_said_and_left_to_micro_s_refresh(cli: Cli, api: FakeApi) -> None:
    api.runtime_extra = {"expires_at": "soon"}
    result = cli(*INIT)
    assert result.code == 0, result.err
    assert "expires_at that is not a time" in result.err
    assert micro_reads(cli)[2].expiry is None


# -- merging with what is there ------------------------------------------------------------------------


def test_init_keeps_every_other_key_of_config_json(cli: Cli) -> None:
    micro = cli.home / ".micro"
    micro.mkdir()
    staging = {"Name": "staging", "ProxyAddress": "proxy.staging.example.com:8081", "Description": "ours"}
    before = {
        "env": "local",
        "envs": json.dumps({"staging": staging, "local": {"Name": "local", "ProxyAddress": "elsewhere"}}),
        "namespaces": {"staging": {"current": "team-a", "all": "team-a"}},
        "micro": {"auth": {"staging": {"token": "st", "refresh-token": "sr", "expiry": "1"}}},
        "git": {"credentials": {"url": "github.com", "token": "gh"}},
        "number": 12,
    }
    (micro / "config.json").write_text(json.dumps(before))
    assert cli(*INIT).code == 0
    after = json.loads((micro / "config.json").read_text())
    for key in ("git", "number"):
        assert after[key] == before[key]
    assert after["namespaces"]["staging"] == before["namespaces"]["staging"]
    assert after["micro"]["auth"]["staging"] == before["micro"]["auth"]["staging"]
    # micro reads the other environment as before, with its namespace and token ...
    env, namespace, token = micro_reads(cli, env_flag="staging")
    assert micro_v3.cli_proxy_address(env) == "proxy.staging.example.com:8081"
    assert (namespace, token.access_token) == ("team-a", "st")
    # ... and the platform's as the current one.
    env, namespace, token = micro_reads(cli)
    assert (env.name, namespace, token.access_token) == ("maas", "acme-backend", "rt_acme-backend")


def test_a_user_saved_by_micro_login_does_not_shadow_the_new_token(cli: Cli) -> None:
    # client/cli/token/token.go: a token in ~/.micro/tokens under <env>.current-user is read first.
    assert cli(*INIT).code == 0
    document = json.loads((cli.home / ".micro" / "config.json").read_text())
    document["maas"] = {"current-user": "ada@acme"}
    (cli.home / ".micro" / "config.json").write_text(json.dumps(document))
    old = json.dumps({"access_token": "old", "refresh_token": "old-r", "created": 1, "expiry": 2}).encode()
    (cli.home / ".micro" / "tokens").write_text(
        f"micro://proxy.local.example.com:443/acme-backend/ada@acme:{base64.b64encode(old).decode()}\n"
    )
    assert micro_reads(cli)[2].access_token == "old"
    assert cli(*INIT).code == 0
    assert micro_reads(cli)[2].access_token == "rt_acme-backend"


def test_init_for_a_namespace_not_active_sets_it_and_removes_the_old_token(cli: Cli, api: FakeApi) -> None:
    assert cli(*INIT).code == 0
    api.add_namespace("acme-frontend", status="provisioning", members={"ada": "owner"})
    result = cli("init", "--local", "--login", "ada", "--namespace", "acme-frontend")
    assert result.code == 0, result.err
    env, namespace, token = micro_reads(cli)
    assert (env.name, namespace, token.access_token, token.refresh_token) == ("maas", "acme-frontend", "", "")


@pytest.mark.parametrize(
    "text", ["not json", "[]", '{"envs": "{broken"}', '{"envs": "[1]"}'], ids=["text", "array", "envs", "envs-array"]
)
def test_a_config_json_micro_cannot_read_is_refused_and_nothing_is_written(cli: Cli, text: str) -> None:
    micro = cli.home / ".micro"
    micro.mkdir()
    (micro / "config.json").write_text(text)
    result = cli(*INIT)
    assert result.code == 2
    assert "config.json" in result.err and "(invalid_config)" in result.err
    assert (micro / "config.json").read_text() == text
    assert not (micro / "platform.env").exists()


def test_micro_config_file_names_micro_s_file_as_micro_s_c_flag_does(cli: Cli, tmp_path: Path) -> None:
    other = tmp_path / "elsewhere" / "micro.json"
    cli.environ["MICRO_CONFIG_FILE"] = str(other)
    assert cli(*INIT).code == 0
    assert micro_v3.config_get(micro_v3.read_config(other), "env") == "maas"
    assert not (cli.home / ".micro" / "config.json").exists()
    assert (cli.home / ".micro").is_dir()  # micro still MkdirAll's ~/.micro (util/user/user.go)


# -- an earlier version's ~/.micro file ----------------------------------------------------------------


def test_init_moves_a_micro_file_of_an_earlier_version_into_the_directory(cli: Cli) -> None:
    micro = cli.home / ".micro"
    token = cli.api.session_for("ada")
    # a ~/.micro file: what earlier versions wrote
    micro.write_text(f"# by hand\nMY_TOOL=on\nPLATFORM_API_URL=http://127.0.0.1:8000\nPLATFORM_TOKEN={token}\n")
    result = cli("init", "--namespace", "acme-backend", "--yes")
    assert result.code == 0, result.err
    assert "moved the ~/.micro file into ~/.micro/platform.env" in result.err
    assert micro.is_dir() and mode(micro) == 0o700
    text = (micro / "platform.env").read_text()
    assert text.startswith("# by hand\nMY_TOOL=on\nPLATFORM_API_URL=http://127.0.0.1:8000\n")
    assert cli.values()["PLATFORM_TOKEN"] == token  # the saved login, read from the old file, kept
    assert mode(micro / "platform.env") == 0o600
    assert micro_reads(cli)[1] == "acme-backend"


def test_a_read_only_command_leaves_a_micro_file_where_it_is(cli: Cli) -> None:
    (cli.home / ".micro").write_text(f"PLATFORM_TOKEN={cli.api.session_for('ada')}\n")
    assert cli("whoami").code == 0
    assert (cli.home / ".micro").is_file()


# -- platform env --------------------------------------------------------------------------------------


def bash(script: str, env: dict[str, str]) -> str:
    done = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=30, check=True)
    return done.stdout


NAMES = ("MICRO_ENV", "MICRO_PROXY", "MICRO_NAMESPACE", "MICRO_AUTH_TOKEN", "PLATFORM_API_URL", "PLATFORM_TOKEN")
SHOW = "".join(f'printf "%s=[%s]\\n" {n} "${{{n}-<unset>}}"; ' for n in (*NAMES, "MICRO_PROXY_ADDRESS"))


def test_platform_env_is_evaluated_by_bash_into_micro_s_variables(cli: Cli, api: FakeApi) -> None:
    tricky = 'rt_it\'s $HOME `id` "q"\nline'
    api.runtime_extra = {"auth_token": tricky}
    assert cli(*INIT).code == 0
    result = cli("env")
    assert result.code == 0, result.err
    assert result.out.startswith("export MICRO_ENV=maas\nexport MICRO_PROXY=proxy.local.example.com:443\n")
    out = bash(f'eval "$PLATFORM_ENV_OUTPUT"; {SHOW}', {"PATH": os.environ["PATH"], "PLATFORM_ENV_OUTPUT": result.out})
    assert out == (
        "MICRO_ENV=[maas]\n"
        "MICRO_PROXY=[proxy.local.example.com:443]\n"
        "MICRO_NAMESPACE=[acme-backend]\n"
        f"MICRO_AUTH_TOKEN=[{tricky}]\n"
        "PLATFORM_API_URL=[http://127.0.0.1:8000]\n"
        f"PLATFORM_TOKEN=[{cli.values()['PLATFORM_TOKEN']}]\n"
        # micro v3 reads MICRO_PROXY_ADDRESS as a `micro proxy` server's listen address: never exported
        "MICRO_PROXY_ADDRESS=[<unset>]\n"
    )


def test_platform_env_unsets_what_is_not_configured(cli: Cli, api: FakeApi) -> None:
    api.add_namespace("acme-frontend", status="provisioning", members={"ada": "owner"})
    assert cli("init", "--local", "--login", "ada", "--namespace", "acme-frontend").code == 0
    result = cli("env")
    stale = {n: "stale" for n in NAMES}
    out = bash(
        f'eval "$PLATFORM_ENV_OUTPUT"; {SHOW}', {"PATH": os.environ["PATH"], "PLATFORM_ENV_OUTPUT": result.out, **stale}
    )
    assert "MICRO_PROXY=[<unset>]" in out and "MICRO_ENV=[<unset>]" in out and "MICRO_AUTH_TOKEN=[<unset>]" in out
    assert "MICRO_NAMESPACE=[acme-frontend]" in out


def test_platform_env_sets_micro_env_only_when_micro_s_config_has_it(cli: Cli) -> None:
    # A login moved an earlier ~/.micro file in, but init has not written config.json yet: micro
    # would exit with 'Env "maas" not found' (client/cli/util/util.go GetEnvByName).
    (cli.home / ".micro").write_text(
        f"MICRO_PROXY_ADDRESS=proxy.example.com\nPLATFORM_TOKEN={cli.api.session_for('ada')}\n"
    )
    assert cli("login", "--local", "--login", "ada").code == 0
    result = cli("env")
    assert "unset MICRO_ENV\n" in result.out and "export MICRO_PROXY=proxy.example.com:443\n" in result.out
    assert "run `platform init` to add it" in result.err


def test_platform_env_prints_the_file_not_a_stale_exported_value(cli: Cli) -> None:
    cli.log_in("ada", namespace="acme-backend")
    cli.environ["MICRO_NAMESPACE"] = "from-an-earlier-eval"
    assert "export MICRO_NAMESPACE=acme-backend\n" in cli("env").out


def test_platform_env_json_and_nothing_configured(cli: Cli) -> None:
    result = cli("env", "-o", "json")
    assert result.code == 0
    assert result.json() == dict.fromkeys(NAMES)
    assert "run `platform init` first" in result.err


# -- the pieces ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "dialled"),
    [
        ("proxy.example.com", "proxy.example.com:443"),
        ("proxy.example.com:8081", "proxy.example.com:8081"),
        ("127.0.0.1:8081", "127.0.0.1:8081"),
        ("http://127.0.0.1:8000", "127.0.0.1:8000"),
        ("http://proxy.example.com/", "proxy.example.com:80"),
        ("https://proxy.example.com", "proxy.example.com:443"),
        ("grpc://[::1]:8081", "[::1]:8081"),
    ],
)
def test_the_proxy_micro_dials_is_host_and_port(address: str, dialled: str) -> None:
    assert proxy_host_port(address) == dialled


def test_go_json_escapes_as_go_s_encoder() -> None:
    assert go_json({"b": "<a&b>", "a": "é\u2028"}) == '{"a":"é\\u2028","b":"\\u003ca\\u0026b\\u003e"}'


def test_the_platform_s_environment_is_none_of_micro_s_built_ins() -> None:
    # client/cli/util/util.go merges its built-ins over the file's: local, platform (and dev before v3.x).
    assert micro_config.ENV_NAME not in {"local", "platform", "dev"}
