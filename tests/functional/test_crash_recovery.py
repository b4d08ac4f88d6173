"""`kill -9` of the local cloud (`make run`'s process) at several points of an onboarding and of a
deploy, then a restart: everything acknowledged is still there, no namespace stays provisioning or
deleting, no deployment stays unfinished, and the next deploy of the same service works.

The processes the local runtime started for the tenant's services outlive a `kill -9`; this test
stops them at the end (the local runtime's own handling of them is not what is checked here)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from chalicelib.domain.services.deploys import TERMINAL
from tests.functional.test_make_run import free_ports
from tests.helpers import ROOT

NS = "acme-backend"
SETTLED = ("active", "failed", "deleted")


class Run:
    """One `python -m localcloud` process on fixed data and ports, killed with SIGKILL on demand."""

    def __init__(self, data: Path, ports: list[int]) -> None:
        self.data, self.ports = data, ports
        self.api = f"http://127.0.0.1:{ports[0]}"
        self.proc: subprocess.Popen[str] | None = None
        self.token = ""

    def start(self) -> Run:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PLATFORM_"))}
        names = (
            "PLATFORM_API_PORT",
            "PLATFORM_AWS_PORT",
            "PLATFORM_GITHUB_PORT",
            "PLATFORM_SLACK_PORT",
            "PLATFORM_MICRO_PORT",
            "PLATFORM_MICRO_PROXY_PORT",
        )
        env.update({name: str(port) for name, port in zip(names, self.ports, strict=True)})
        env["PLATFORM_DATA_DIR"] = str(self.data)
        self.data.mkdir(parents=True, exist_ok=True)
        with (self.data / "run.log").open("a") as log:  # a pipe nobody reads would fill up and block it
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "localcloud"], cwd=ROOT, env=env, text=True, stdout=log, stderr=log
            )
        proc = self.proc
        wait_for(lambda: self._healthy(proc), "the local cloud to answer", timeout=90, every=0.2)
        r = requests.post(f"{self.api}/v1/auth/local-login", json={"login": "ada"}, timeout=10)
        assert r.status_code == 200, r.text
        self.token = r.json()["token"]
        return self

    def _healthy(self, proc: subprocess.Popen[str]) -> bool:
        assert proc.poll() is None, (self.data / "run.log").read_text()[-3000:]
        try:
            return requests.get(f"{self.api}/v1/health", timeout=10).status_code == 200
        except requests.RequestException:
            return False

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.communicate(timeout=30)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.communicate()
            self.proc = None

    def __call__(self, method: str, path: str, body: Any = None) -> requests.Response:
        return requests.request(
            method, f"{self.api}{path}", json=body, timeout=30, headers={"Authorization": f"Bearer {self.token}"}
        )

    def namespace(self, ns: str) -> dict[str, Any]:
        r = self("GET", f"/v1/namespaces/{ns}")
        assert r.status_code == 200, r.text
        return dict(r.json())

    def deployment(self, dep_id: str) -> dict[str, Any]:
        r = self("GET", f"/v1/namespaces/{NS}/services/hello/deployments/{dep_id}")
        assert r.status_code == 200, r.text
        return dict(r.json())


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = 30, every: float = 0.25) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


def leftover_processes(data: Path) -> list[int]:
    """The processes working in the test's data directory (tenant services started by the runtime)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if cwd.startswith(str(data)):
            found.append(int(entry.name))
    return found


@pytest.fixture
def run(tmp_path: Path) -> Iterator[Run]:
    r = Run(tmp_path / "local", free_ports(6))
    yield r
    if r.proc is not None:
        r.proc.kill()
        r.proc.communicate()
    for pid in leftover_processes(tmp_path):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def git(repo: Path, *args: str) -> str:
    out = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()


@pytest.mark.slow
def test_kill_9_during_onboarding_and_deploys_loses_nothing_acknowledged_and_leaves_nothing_stuck(
    run: Run, tmp_path: Path
) -> None:
    repo = tmp_path / "hello"
    subprocess.run(
        ["bash", str(ROOT / "examples" / "make-example-repo.sh"), str(repo)], check=True, capture_output=True
    )
    good = git(repo, "rev-parse", "HEAD")
    server = repo / "server.py"
    future = "from __future__ import annotations\n"
    server.write_text(
        server.read_text().replace(future, future + "import time\n\ntime.sleep(300)  # healthy long after\n")
    )
    git(repo, "commit", "-qam", "slow")
    slow = git(repo, "rev-parse", "HEAD")
    deployments = f"/v1/namespaces/{NS}/services/hello/deployments"

    # 1. Killed just after an onboarding's 202.
    run.start()
    r = run("POST", "/v1/namespaces", {"github_org": "acme", "github_team": "backend", "region": "local"})
    assert r.status_code == 202, r.text
    run.kill()
    run.start()
    assert run.namespace(NS)["status"] in ("provisioning", "active")  # acknowledged: still there
    assert wait_for(lambda: run.namespace(NS)["status"] in SETTLED, "the onboarding to end")
    assert run.namespace(NS)["status"] == "active"  # resumed

    # 2. Killed with a deploy mid-way (built, its version started, waiting to be healthy), another
    # deploy just answered 202 (queued behind it), and an onboarding mid-way (placed, not active).
    r = run("POST", deployments, {"source": str(repo), "ref": slow})
    assert r.status_code == 202, r.text
    interrupted = r.json()["id"]
    wait_for(lambda: run.deployment(interrupted)["status"] == "in_progress", "the build", every=0.1)
    r = run("POST", deployments, {"source": str(repo), "ref": good})
    assert r.status_code == 202, r.text
    queued = r.json()["id"]
    r = run("POST", "/v1/namespaces", {"github_org": "acme", "github_team": "frontend", "region": "local"})
    assert r.status_code == 202, r.text
    wait_for(lambda: run.namespace("acme-frontend")["cluster_id"], "the placement", every=0.02)
    run.kill()

    run.start()
    assert run.deployment(queued)["commit"] in (None, good)  # acknowledged: still there
    assert run.namespace("acme-frontend")["status"] in ("provisioning", "active")
    ended = wait_for(lambda: (d := run.deployment(interrupted))["status"] in TERMINAL and d, "the deploy to end")
    assert ended["status"] == "failed" and "Interrupted" in ended["reason"], ended  # nothing good to go back to
    done = wait_for(lambda: (d := run.deployment(queued))["status"] in TERMINAL and d, "the queued deploy", timeout=60)
    assert done["status"] == "succeeded", done  # resumed
    assert wait_for(lambda: run.namespace("acme-frontend")["status"] in SETTLED, "the onboarding to end")
    assert run.namespace("acme-frontend")["status"] == "active"

    # The next deploy of the same service works and answers.
    r = run("POST", deployments, {"source": str(repo), "ref": good})
    assert r.status_code == 202, r.text
    latest = r.json()["id"]
    done = wait_for(lambda: (d := run.deployment(latest))["status"] in TERMINAL and d, "the deployment", timeout=60)
    assert done["status"] == "succeeded", done
    service = run("GET", f"/v1/namespaces/{NS}/services/hello").json()
    assert requests.get(service["address"], timeout=10).json()["version"] == latest
    run.stop()
