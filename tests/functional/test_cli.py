"""The ``platform`` CLI end to end: a real subprocess against the real API of the local cloud.

Each test runs the console script with its own ``HOME`` (so its own ``~/.micro``), stdin not a
terminal, and an environment stripped of every ``PLATFORM_*`` / ``MICRO_*`` variable (the local
cloud sets some in this process) except those the test gives.
"""

from __future__ import annotations

import json
import os
import re
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from chalicelib.domain.clock import SystemClock
from localcloud.cloud import LocalCloud
from tests import micro_v3
from tests.fixtures import start_platform
from tests.helpers import ROOT

PLATFORM = Path(sys.executable).parent / "platform"
NS = "acme-backend"


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory, env_restored: None) -> Iterator[LocalCloud]:
    from chalicelib.composition import set_container

    c = start_platform(tmp_path_factory.mktemp("platform"), SystemClock())
    yield c
    c.stop()
    set_container(None)


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def cli_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PLATFORM_", "MICRO_"))}
    env["HOME"] = str(home)
    env.update(extra)
    return env


def run(home: Path, *args: str, timeout: float = 60, **env: str) -> Result:
    p = subprocess.run(
        [str(PLATFORM), *args],
        env=cli_env(home, **env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )
    return Result(p.returncode, p.stdout, p.stderr)


def ok(result: Result) -> Result:
    assert result.code == 0, f"exit {result.code}\nstdout: {result.out}\nstderr: {result.err}"
    return result


def dotenv(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, value = line.split("=", 1)
            out[key.strip()] = value.strip().strip("'\"")
    return out


def home_as(cloud: LocalCloud, base: Path, login: str) -> Path:
    """A HOME whose ~/.micro is logged in as ``login`` (no namespace)."""
    home = base / login
    home.mkdir()
    ok(run(home, "init", "--local", "--api-url", cloud.api_url, "--login", login, "--yes"))
    return home


@pytest.fixture(scope="module")
def ada(cloud: LocalCloud, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ada's HOME, after ``init`` with no namespace and ``namespaces create --wait`` of acme/backend."""
    home = tmp_path_factory.mktemp("ada")
    r = ok(run(home, "init", "--local", "--api-url", cloud.api_url, "--login", "ada", "--yes"))
    assert "no namespaces yet" in r.err
    micro = home / ".micro" / "platform.env"
    assert stat.S_IMODE(micro.stat().st_mode) == 0o600
    assert stat.S_IMODE(micro.parent.stat().st_mode) == 0o700
    values = dotenv(micro)
    assert values["PLATFORM_API_URL"] == cloud.api_url and values["PLATFORM_TOKEN"]
    assert "MICRO_NAMESPACE" not in values and "MICRO_AUTH_TOKEN" not in values
    r = ok(run(home, "namespaces", "create", "--org", "acme", "--team", "backend", "--region", "local",
               "--plan", "starter", "--wait", "--interval", "0.5", "--output", "json", timeout=120))  # fmt: skip
    ns = r.json()
    assert ns["id"] == NS and ns["status"] == "active", r
    assert f"namespace {NS}: active" in r.err
    return home


def test_init_without_a_namespace_then_whoami(cloud: LocalCloud, ada: Path) -> None:
    r = ok(run(ada, "whoami", "--output", "json"))
    assert r.json()["login"] == "ada"
    r = ok(run(ada, "whoami"))
    assert re.search(r"^login:\s+ada$", r.out, re.M) and cloud.api_url in r.out


def test_init_with_the_namespace_keeps_foreign_keys(cloud: LocalCloud, ada: Path) -> None:
    micro = ada / ".micro" / "platform.env"
    micro.write_text("# mine\nFOREIGN_KEY=keep-me\n" + micro.read_text())
    micro.chmod(0o644)  # init rewrites it 0600 all the same
    r = ok(run(ada, "init", "--local", "--api-url", cloud.api_url, "--login", "ada", "--namespace", NS, "--yes"))
    assert "(set, hidden)" in r.out and "mp_lrt_" not in r.out  # secrets are not printed
    assert stat.S_IMODE(micro.stat().st_mode) == 0o600
    text = micro.read_text()
    assert text.startswith("# mine\nFOREIGN_KEY=keep-me\n")
    values = dotenv(micro)
    assert values["MICRO_NAMESPACE"] == NS
    assert values["MICRO_PROXY_ADDRESS"] == cloud.api_url  # the local cluster's proxy address
    assert values["MICRO_AUTH_TOKEN"].startswith("mp_lrt_")  # the member's own runtime token
    assert values["PLATFORM_API_URL"] == cloud.api_url and values["PLATFORM_TOKEN"]


def test_init_configures_micro_v3_and_platform_env_exports_it(cloud: LocalCloud, ada: Path, tmp_path: Path) -> None:
    """A ~/.micro file of an earlier version is moved into the directory; micro v3 reads config.json;
    ``eval "$(platform env)"`` sets micro's variables in a shell."""
    home = tmp_path / "newcomer"
    home.mkdir()
    (home / ".micro").write_text("# from an earlier version\nMY_TOOL=on\n")
    (home / ".micro").chmod(0o644)
    r = ok(run(home, "init", "--local", "--api-url", cloud.api_url, "--login", "ada",
               "--namespace", NS, "--yes", timeout=60))  # fmt: skip
    assert "moved the ~/.micro file into ~/.micro/platform.env" in r.err
    micro = home / ".micro"
    assert micro.is_dir() and stat.S_IMODE(micro.stat().st_mode) == 0o700
    assert (micro / "platform.env").read_text().startswith("# from an earlier version\nMY_TOOL=on\n")
    assert stat.S_IMODE((micro / "platform.env").stat().st_mode) == 0o600
    assert stat.S_IMODE((micro / "config.json").stat().st_mode) == 0o600
    values = dotenv(micro / "platform.env")
    # what micro v3 reads (tests/micro_v3.py follows its source)
    document = micro_v3.read_config(micro / "config.json")
    env = micro_v3.get_env(document)
    token = micro_v3.token_get(document, env, micro / "tokens")
    assert env.name == "maas"
    assert micro_v3.cli_proxy_address(env) == re.sub(r"^https?://", "", values["MICRO_PROXY_ADDRESS"])
    assert micro_v3.namespace_get(document, env.name) == NS
    assert token.access_token == values["MICRO_AUTH_TOKEN"] and token.refresh_token
    # platform env, evaluated by a shell
    exports = ok(run(home, "env")).out
    show = 'printf "%s|%s|%s|%s\n" "$MICRO_ENV" "$MICRO_PROXY" "$MICRO_NAMESPACE" "$PLATFORM_API_URL"'
    shell = subprocess.run(
        ["bash", "-c", f'eval "$1"; {show}', "sh", exports],
        env={"PATH": os.environ["PATH"]}, capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    assert shell.stdout == f"maas|{micro_v3.cli_proxy_address(env)}|{NS}|{cloud.api_url}\n"


def test_the_written_file_drives_the_cli(cloud: LocalCloud, ada: Path) -> None:
    if dotenv(ada / ".micro" / "platform.env").get("MICRO_NAMESPACE") != NS:  # when run on its own
        ok(run(ada, "init", "--local", "--api-url", cloud.api_url, "--login", "ada", "--namespace", NS, "--yes"))
    shown = ok(run(ada, "namespaces", "show", NS, "--output", "json")).json()
    assert shown["id"] == NS and shown["status"] == "active" and shown["github_team"] == "backend"
    assert re.search(r"^status:\s+active$", ok(run(ada, "namespaces", "show")).out, re.M)  # MICRO_NAMESPACE
    members = ok(run(ada, "namespaces", "members", "--output", "json")).json()["members"]
    assert {m["login"]: m["role"] for m in members} == {"ada": "owner", "linus": "admin", "grace": "member"}
    assert "LOGIN" in ok(run(ada, "namespaces", "members", NS)).out
    listed = ok(run(ada, "namespaces", "list", "--output", "json")).json()["namespaces"]
    assert [n["id"] for n in listed] == [NS]

    r = ok(run(ada, "tokens", "create", "--name", "ci", "--namespace", NS, "--scope", "read",
               "--expires-in", "1h", "--output", "json"))  # fmt: skip
    created = r.json()
    secret = created["token"]
    assert created["scopes"] == ["read"] and created["namespace"] == NS and secret
    assert "only time the token is shown" in r.err
    tokens = ok(run(ada, "tokens", "list", "--output", "json")).json()["tokens"]
    assert created["id"] in [t["id"] for t in tokens] and all("token" not in t for t in tokens)
    table = ok(run(ada, "tokens", "list")).out
    assert created["id"] in table and secret not in table
    # the token works, on its own, until revoked
    assert ok(run(ada, "namespaces", "show", NS, PLATFORM_TOKEN=secret)).code == 0
    ok(run(ada, "tokens", "revoke", created["id"]))
    r = run(ada, "namespaces", "show", NS, PLATFORM_TOKEN=secret)
    assert r.code == 4 and "platform login" in r.err, r

    entries = ok(run(ada, "audit", "--namespace", NS, "--output", "json")).json()["entries"]
    actions = [e["action"] for e in entries]
    assert "create_namespace" in actions
    r = ok(run(ada, "audit", "--action", "create_namespace", "--since", "1h"))
    assert "create_namespace" in r.out and "user:ada" in r.out


def test_exit_codes_against_the_real_api(cloud: LocalCloud, ada: Path, tmp_path: Path) -> None:
    ken = home_as(cloud, tmp_path, "ken")
    r = run(ken, "namespaces", "show", NS)
    assert r.code == 6 and "(not_found)" in r.err, r
    grace = home_as(cloud, tmp_path, "grace")
    r = run(grace, "namespaces", "delete", NS, "--yes")
    assert r.code == 5 and "(forbidden)" in r.err, r
    r = run(grace, "namespaces", "delete", NS)  # no TTY, no --yes
    assert r.code == 2 and "--yes" in r.err, r
    # invalid input: refused by the CLI, and by the API (422)
    r = run(ada, "tokens", "create", "--name", "x", "--namespace", NS, "--scope", "root")
    assert r.code == 2 and "invalid choice" in r.err, r
    r = run(ada, "namespaces", "create", "--org", "acme", "--team", "nosuchteam", "--region", "local",
            "--plan", "starter")  # fmt: skip
    assert r.code == 2 and r.err.startswith("error: "), r
    # creating the same team again
    r = run(ada, "namespaces", "create", "--org", "acme", "--team", "backend", "--region", "local",
            "--plan", "starter")  # fmt: skip
    assert r.code == 7 and "(conflict)" in r.err, r
    # an address nobody listens on
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    r = run(ada, "whoami", PLATFORM_API_URL=dead)
    assert r.code == 3 and dead in r.err and "(unreachable)" in r.err, r
    # no token at all
    nobody = tmp_path / "nobody"
    nobody.mkdir()
    r = run(nobody, "whoami", PLATFORM_API_URL=cloud.api_url)
    assert r.code == 4 and "(not_logged_in)" in r.err, r
    # a token that is not one
    r = run(nobody, "whoami", PLATFORM_API_URL=cloud.api_url, PLATFORM_TOKEN="pat_not-a-real-token")
    assert r.code == 4, r
    # init without anything to go on and no TTY
    r = run(nobody, "init")
    assert r.code == 2 and "--api-url" in r.err, r


def test_device_flow_login(cloud: LocalCloud, tmp_path: Path) -> None:
    started = time.monotonic()
    proc = subprocess.Popen(
        [str(PLATFORM), "login", "--api-url", cloud.api_url],
        env=cli_env(tmp_path),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        match = re.search(r"open (\S+) and enter the code (\S+)", line)
        assert match, line
        assert match.group(1).startswith(cloud.github.url)
        cloud.github.approve_device(match.group(2), "linus")
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "Logged in to" in out and "as linus" in out
    assert time.monotonic() - started < 20
    values = dotenv(tmp_path / ".micro" / "platform.env")
    assert values["PLATFORM_API_URL"] == cloud.api_url and values["PLATFORM_TOKEN"]
    assert ok(run(tmp_path, "whoami", "--output", "json")).json()["login"] == "linus"
    # logout revokes the token and forgets it
    ok(run(tmp_path, "logout"))
    assert "PLATFORM_TOKEN" not in dotenv(tmp_path / ".micro" / "platform.env")
    assert run(tmp_path, "whoami").code == 4
