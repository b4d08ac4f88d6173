"""`make run`'s process (python -m localcloud) as a newcomer meets it: it serves the API, keeps the
data across Ctrl-C and a second start, leaves no process behind (also after a kill -9 and a second
start), and says so clearly when a port is taken."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

import requests

from tests.helpers import ROOT


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [int(s.getsockname()[1]) for s in socks]
    for s in socks:
        s.close()
    return ports


def start(data_dir: Path, ports: list[int], out: IO[str] | None = None) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PLATFORM_"))}
    env.update(
        {
            "PLATFORM_DATA_DIR": str(data_dir),
            "PLATFORM_API_PORT": str(ports[0]),
            "PLATFORM_AWS_PORT": str(ports[1]),
            "PLATFORM_GITHUB_PORT": str(ports[2]),
            "PLATFORM_SLACK_PORT": str(ports[3]),
            "PLATFORM_MICRO_PORT": str(ports[4]),
            "PLATFORM_MICRO_PROXY_PORT": str(ports[5]),
        }
    )
    return subprocess.Popen(
        [sys.executable, "-m", "localcloud"],
        cwd=ROOT,
        env=env,
        text=True,
        stdout=out or subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def wait_healthy(url: str, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        try:
            if requests.get(f"{url}/v1/health", timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    raise AssertionError("the API did not answer 200 within 60 s")


def interrupt(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    return out


def test_run_serves_keeps_data_across_ctrl_c_and_leaves_nothing_behind(tmp_path: Path) -> None:
    ports = free_ports(6)
    api = f"http://127.0.0.1:{ports[0]}"
    first = start(tmp_path, ports)
    wait_healthy(api, first)
    assert requests.get(f"{api}/v1/nowhere", timeout=5).json()["error"]["code"] == "not_found"
    out = interrupt(first)
    assert "stopped;" in out and "items saved" in out
    assert (tmp_path / "data" / "table.json").exists()
    assert not (tmp_path / "run.pid").exists()
    for port in ports:  # every server it started is gone
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still answers"

    second = start(tmp_path, ports)
    try:
        wait_healthy(api, second)
    finally:
        out = interrupt(second)
    assert "(4 items restored)" in out  # the seeded regions (local, micro-local) and their clusters, kept


def test_a_port_in_use_is_named_with_the_variable_to_change(tmp_path: Path) -> None:
    ports = free_ports(6)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", ports[1]))
        taken.listen()
        proc = start(tmp_path, ports)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert f"port {ports[1]} (aws) is in use" in out
    assert "PLATFORM_AWS_PORT" in out


def service_processes(artifacts: Path) -> list[int]:
    """Live processes (not zombies) running in a deployment's artifact."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if not entry.name.isdigit() or (entry / "stat").read_text().rpartition(")")[2].split()[0] in "ZX":
                continue
            cwd = Path(os.readlink(entry / "cwd"))
        except OSError:
            continue
        if artifacts in cwd.parents:
            found.append(int(entry.name))
    return found


def test_kill_9_of_run_leaves_no_orphan_after_the_next_start(tmp_path: Path) -> None:
    """A deployed service outlives a kill -9 of `make run`; the next `make run` stops it, records the
    stop, and runs exactly one copy of it again."""
    ports = free_ports(6)
    artifacts = (tmp_path / "data" / "artifacts").resolve()
    repo = tmp_path / "hello"
    subprocess.run(
        ["bash", str(ROOT / "examples" / "make-example-repo.sh"), str(repo)], check=True, capture_output=True
    )
    try:
        kill_9_and_start_again(tmp_path, ports, repo, artifacts)
    finally:
        for pid in service_processes(artifacts):  # whatever a failure left
            os.kill(pid, signal.SIGKILL)


def kill_9_and_start_again(tmp_path: Path, ports: list[int], repo: Path, artifacts: Path) -> None:
    api = f"http://127.0.0.1:{ports[0]}"
    with (tmp_path / "run.out").open("w") as out:
        first = start(tmp_path, ports, out)
        try:
            wait_healthy(api, first)
            token = requests.post(f"{api}/v1/auth/local-login", json={"login": "ada"}, timeout=10).json()["token"]
            headers = {"Authorization": f"Bearer {token}"}

            def call(method: str, path: str, body: Any = None) -> Any:
                r = requests.request(method, f"{api}{path}", json=body, headers=headers, timeout=30)
                assert r.status_code < 300, r.text
                return r.json()

            call("POST", "/v1/namespaces", {"github_org": "acme", "github_team": "backend", "region": "local"})
            wait_until(lambda: call("GET", "/v1/namespaces/acme-backend")["status"] == "active", "onboarding")
            services = "/v1/namespaces/acme-backend/services/hello"
            dep = call("POST", f"{services}/deployments", {"source": str(repo), "ref": "HEAD"})
            wait_until(lambda: call("GET", f"{services}/deployments/{dep['id']}")["status"] == "succeeded", "deploy")
            [old] = service_processes(artifacts)
            address = call("GET", services)["address"]
            # the table's snapshot (every 5 s) has the service, so the API still knows its address
            wait_until(lambda: address in (tmp_path / "data" / "table.json").read_text(), "a snapshot", 15)
        finally:
            first.kill()  # SIGKILL: nothing of the shutdown runs
            first.wait(10)
        assert service_processes(artifacts) == [old]  # an orphan

        second = start(tmp_path, ports, out)
        try:
            wait_healthy(api, second)
            assert old not in service_processes(artifacts)
            wait_until(lambda: len(service_processes(artifacts)) == 1, "the service to run again")
            assert call("GET", services)["address"] == address
            wait_until(lambda: requests.get(address, timeout=5).status_code == 200, "the service to answer")
        finally:
            second.send_signal(signal.SIGINT)
            assert second.wait(30) == 0
    assert service_processes(artifacts) == []
    records = [
        json.loads(line) for line in (tmp_path / "data" / "runtime" / "instances.jsonl").read_text().splitlines()
    ]
    assert [(r["event"], r["exit_reason"]) for r in records] == [
        ("start", None),
        ("stop", "runtime_crashed"),
        ("start", None),
        ("stop", "shutdown"),
    ]
    assert records[1]["pid"] == old


def wait_until(predicate: Any, what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.3)
