"""`make run`'s process (python -m localcloud) as a newcomer meets it: it serves the API, keeps the
data across Ctrl-C and a second start, leaves no process behind, and says so clearly when a port is
taken."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

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


def start(data_dir: Path, ports: list[int]) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PLATFORM_"))}
    env.update(
        {
            "PLATFORM_DATA_DIR": str(data_dir),
            "PLATFORM_API_PORT": str(ports[0]),
            "PLATFORM_AWS_PORT": str(ports[1]),
            "PLATFORM_GITHUB_PORT": str(ports[2]),
            "PLATFORM_SLACK_PORT": str(ports[3]),
        }
    )
    return subprocess.Popen(
        [sys.executable, "-m", "localcloud"],
        cwd=ROOT,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
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
    ports = free_ports(4)
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
    assert "(2 items restored)" in out  # the seeded region, kept across the restart


def test_a_port_in_use_is_named_with_the_variable_to_change(tmp_path: Path) -> None:
    ports = free_ports(4)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", ports[1]))
        taken.listen()
        proc = start(tmp_path, ports)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert f"port {ports[1]} (aws) is in use" in out
    assert "PLATFORM_AWS_PORT" in out
