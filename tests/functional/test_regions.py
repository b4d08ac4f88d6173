"""Regions through the local cloud, end to end: `POST /v1/regions` for the local "cloud" goes planning ->
awaiting_approval -> applying -> active through the region state machine, the real terraform binary run
by the local cloud's task worker (infra/examples/local starts a micro stand-in cluster as a process of
its own), the cluster registered and probed; a namespace is placed there (the plan's quota counted) and
a push deploys on it; the region's delete is refused while the namespace lives there; stopping the
cluster's runtime makes it unhealthy after consecutive failed checks (the clock moved a minute each),
starting it again recovers it; the delete then drains and destroys (the cluster process stopped)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from chalicelib.domain.clock import SystemClock
from tests.fixtures import start_platform
from tests.helpers import ROOT

pytestmark = pytest.mark.slow
NS = "acme-backend"
REGION = "local-2"


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory, env_restored: None) -> Iterator[dict[str, Any]]:
    from chalicelib.composition import set_container

    tmp = tmp_path_factory.mktemp("regions")
    tf_config = tmp / "terraform.tfrc"
    tf_config.write_text("")  # the local configuration uses built-ins only: nothing to install
    os.environ.update(
        {
            "TF_CLI_CONFIG_FILE": str(tf_config),
            "PLATFORM_REGION_HEALTH_FAILURES": "2",
            "PLATFORM_RUNTIME_RETRIES": "1",
            "PLATFORM_RUNTIME_BACKOFF_SECONDS": "0.05",
        }
    )
    cloud = start_platform(tmp / "data", SystemClock())
    api = cloud.api_url

    def login(who: str) -> dict[str, str]:
        token = requests.post(f"{api}/v1/auth/local-login", json={"login": who}, timeout=10).json()["token"]
        return {"Authorization": f"Bearer {token}"}

    p = {"cloud": cloud, "api": api, "ops": login("ops"), "ada": login("ada"), "login": login, "data": tmp / "data"}
    yield p
    state = tmp / "data" / "regions" / REGION / "cluster"
    subprocess.run(
        [sys.executable, "-m", "localcloud.standins.micro.cluster", "stop", "--state-dir", str(state)],
        cwd=ROOT,
        check=False,
    )
    cloud.stop()
    set_container(None)


def wait_for(predicate: Any, timeout: float = 120, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def region(p: dict[str, Any], name: str = REGION) -> dict[str, Any]:
    r = requests.get(f"{p['api']}/v1/regions/{name}", headers=p["ops"], timeout=10)
    assert r.status_code == 200, r.text
    return dict(r.json())


def in_status(p: dict[str, Any], *statuses: str, name: str = REGION) -> dict[str, Any] | None:
    body = region(p, name)
    assert body["status"] != "failed" or "failed" in statuses, body
    return body if body["status"] in statuses else None


def cli(p: dict[str, Any], *args: str, who: str = "ops") -> subprocess.CompletedProcess[str]:
    """The ``platform`` CLI as a real subprocess, with the caller's token in the environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PLATFORM_", "MICRO_"))}
    token = p[who]["Authorization"].removeprefix("Bearer ")
    env.update(HOME=str(p["data"].parent / "home"), PLATFORM_API_URL=p["api"], PLATFORM_TOKEN=token)
    platform = Path(sys.executable).parent / "platform"
    return subprocess.run(
        [str(platform), *args], env=env, cwd=ROOT, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=180
    )


def cluster_state_dir(p: dict[str, Any]) -> Path:
    return Path(p["data"]) / "regions" / REGION / "cluster"


def advance(p: dict[str, Any], seconds: int = 60) -> None:
    """Move the local clock (what the handlers read) by a check interval."""
    from datetime import timedelta

    from chalicelib.adapters.local_clock import read_offset, write_offset

    path = p["cloud"].clock_file
    write_offset(path, read_offset(path) + timedelta(seconds=seconds))


def cluster(p: dict[str, Any], command: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "localcloud.standins.micro.cluster", command, "--state-dir", str(cluster_state_dir(p))],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )


def test_only_a_platform_admin_may_create_a_region(platform: dict[str, Any]) -> None:
    r = requests.post(
        f"{platform['api']}/v1/regions", headers=platform["ada"], json={"name": REGION, "cloud": "local"}, timeout=10
    )
    assert r.status_code == 403 and r.json()["error"]["details"]["needed_role"] == "platform_admin"
    bad = requests.post(
        f"{platform['api']}/v1/regions", headers=platform["ops"], json={"name": "Bad_Name", "cloud": "mars"}, timeout=10
    )
    assert bad.status_code == 422
    assert {f["field"] for f in bad.json()["error"]["details"]["fields"]} == {"name", "cloud"}


def test_a_local_region_is_planned_approved_applied_registered_and_active(platform: dict[str, Any]) -> None:
    p = platform
    created = cli(p, "regions", "create", REGION, "--cloud", "local", "--require-approval", "--wait", "-o", "json")
    assert created.returncode == 0, created.stderr
    waiting = json.loads(created.stdout)  # --wait stops where someone is needed
    assert waiting["status"] == "awaiting_approval"
    assert waiting["plan"] == {"add": 1, "change": 0, "destroy": 0}  # the summary shown before approving
    shown = cli(p, "regions", "show", REGION)
    assert shown.returncode == 0 and "1 to add, 0 to change, 0 to destroy" in shown.stdout
    assert f"platform regions approve {REGION}" in shown.stdout
    assert requests.post(f"{p['api']}/v1/regions/{REGION}/approve", headers=p["ada"], timeout=10).status_code == 403
    refused = cli(p, "regions", "approve", REGION)  # no TTY and no --yes: nothing approved
    assert refused.returncode == 2 and "--yes" in refused.stderr
    approved = cli(p, "regions", "approve", REGION, "--yes", "--wait", "-o", "json")
    assert approved.returncode == 0, approved.stderr
    assert "region local-2: applying" in approved.stderr or "region local-2: active" in approved.stderr
    again = requests.post(f"{p['api']}/v1/regions/{REGION}/approve", headers=p["ops"], timeout=10)
    assert again.status_code == 409  # nothing waits any more

    active = wait_for(lambda: in_status(p, "active"), what="the region to be active")
    [c] = active["clusters"]
    addresses = json.loads((cluster_state_dir(p) / "addresses.json").read_text())
    assert c["id"] == f"{REGION}-1" and c["status"] == "active"
    assert c["api_address"] == addresses["api"] and c["proxy_address"] == addresses["proxy"]
    assert active["capacity"] == {"cpu_millicores": 8000, "memory_mib": 8192}
    assert active["free"] == active["capacity"] and active["failure_reason"] is None
    # the real binary ran: its log is kept in the region's working directory
    log = (Path(p["data"]) / "regions" / REGION / "logs" / "1-apply.log").read_text()
    assert "Apply complete! Resources: 1 added" in log
    # the credential stays where the configuration keeps it: only its reference was registered
    assert "secret" not in json.dumps(active)
    listed = requests.get(f"{p['api']}/v1/regions", headers=p["ada"], timeout=10).json()["regions"]
    assert {"name": REGION, "status": "active", "health": "healthy"}.items() <= next(
        x for x in listed if x["name"] == REGION
    ).items()


def test_a_namespace_is_placed_there_and_a_push_deploys_on_it(platform: dict[str, Any]) -> None:
    p = platform
    r = requests.post(
        f"{p['api']}/v1/namespaces",
        headers=p["ada"],
        json={"github_org": "acme", "github_team": "backend", "region": REGION, "plan": "starter"},
        timeout=10,
    )
    assert r.status_code == 202, r.text
    arn = p["cloud"].resources["state_machines"]["onboarding"].replace(":stateMachine:", ":execution:")
    assert p["cloud"].wait_execution(f"{arn}:{NS}", timeout=90)["status"] == "SUCCEEDED"
    ns = requests.get(f"{p['api']}/v1/namespaces/{NS}", headers=p["ada"], timeout=10).json()
    assert ns["status"] == "active" and ns["cluster_id"] == f"{REGION}-1"
    body = region(p)
    assert body["used"] == {"cpu_millicores": 1000, "memory_mib": 1024}  # the starter plan's quota
    assert body["free"] == {"cpu_millicores": 7000, "memory_mib": 7168} and body["namespaces"] == 1

    linus = p["login"]("linus")
    r = requests.post(f"{p['api']}/v1/namespaces/{NS}/repos", headers=linus, json={"repo": "acme/hello"}, timeout=10)
    assert r.status_code == 201, r.text
    sha = p["cloud"].github.commit("acme", "hello", {"VERSION": "1"}, "first push to local-2")

    def deployed() -> dict[str, Any] | None:
        r = requests.get(f"{p['api']}/v1/namespaces/{NS}/services/hello/deployments", headers=p["ada"], timeout=10)
        found = [d for d in r.json().get("deployments", []) if d["commit"] == sha] if r.status_code == 200 else []
        return found[0] if found and found[0]["status"] not in ("queued", "in_progress") else None

    dep = wait_for(deployed, timeout=120, what="the push's deployment")
    assert dep["status"] == "succeeded", dep
    # it runs on the region's own cluster (the separate micro stand-in process), fetched from GitHub's archive
    api = region(p)["clusters"][0]["api_address"]
    [svc] = requests.get(f"{api}/_stand-in/state", timeout=10).json()[NS]["services"]
    assert svc["version"] == sha and svc["status"] == "running"
    assert requests.get(svc["address"], timeout=10).json()["greeting"] == "hi from micro.yaml"


def test_the_delete_is_refused_while_a_namespace_lives_there(platform: dict[str, Any]) -> None:
    r = requests.delete(f"{platform['api']}/v1/regions/{REGION}", headers=platform["ops"], timeout=10)
    assert r.status_code == 409, r.text
    assert r.json()["error"]["details"]["namespaces"] == [NS]
    refused = cli(platform, "regions", "delete", REGION, "--yes")
    assert refused.returncode == 7 and "1 namespace(s) live in local-2" in refused.stderr  # 7: conflict
    assert region(platform)["status"] == "active"
    seeded = requests.delete(f"{platform['api']}/v1/regions/local", headers=platform["ops"], timeout=10)
    assert seeded.status_code == 409 and "seeded" in seeded.json()["error"]["message"]


def test_a_stopped_runtime_is_unhealthy_after_consecutive_checks_and_recovers(platform: dict[str, Any]) -> None:
    p = platform
    router = p["cloud"].router
    cluster(p, "stop")
    results = []
    for _ in range(2):  # PLATFORM_REGION_HEALTH_FAILURES=2; a check counts once per interval
        advance(p)
        result, error = router.invoke("region-health-check", {})
        assert error is None, result
        results.append(result)
    assert f"{REGION}-1" in results[0].get("failing", []) + results[0].get("skipped", [])
    [c] = region(p)["clusters"]
    assert c["status"] == "unhealthy" and c["health_failures"] >= 2 and c["unhealthy_since"]
    assert "does not answer" in (c["last_check_error"] or "") or c["last_check_error"]
    # the region's admin state stays active; what it shows says it cannot take a namespace now
    assert (region(p)["status"], region(p)["health"]) == ("active", "unavailable")
    [row] = [line.split() for line in cli(p, "regions").stdout.splitlines() if line.startswith(f"{REGION} ")]
    assert row[-2:] == ["active", "unavailable"]
    # no new placements there: onboarding into the region finds no room
    from chalicelib.composition import get_container
    from chalicelib.domain.errors import NoCapacityError
    from chalicelib.domain.ports import ResourceQuota

    with pytest.raises(NoCapacityError):
        get_container().stores.placement.take_capacity(REGION, ResourceQuota(1024, 1000, 2048))

    cluster(p, "start")
    advance(p)
    result, error = router.invoke("region-health-check", {})
    assert error is None and f"{REGION}-1" in result.get("recovered", []), result
    assert region(p)["clusters"][0]["status"] == "active" and region(p)["health"] == "healthy"


def test_once_the_namespace_is_gone_the_delete_drains_and_destroys(platform: dict[str, Any]) -> None:
    p = platform
    r = requests.delete(f"{p['api']}/v1/namespaces/{NS}", headers=p["ada"], timeout=10)
    assert r.status_code == 202, r.text

    def offboarded() -> bool:
        r = requests.get(f"{p['api']}/v1/namespaces/{NS}", headers=p["ada"], timeout=10)
        return r.status_code == 404 or r.json().get("status") == "deleted"  # its members are gone with it

    wait_for(offboarded, what="the offboarding")
    assert region(p)["used"] == {"cpu_millicores": 0, "memory_mib": 0}
    deleted = cli(p, "regions", "delete", REGION, "--yes", "--wait", "-o", "json")
    assert deleted.returncode == 0, deleted.stderr
    assert "region local-2: draining" in deleted.stderr
    done = json.loads(deleted.stdout)
    assert done["status"] == "deleted"
    assert done["clusters"] == [] and done["plan"] is None
    status = subprocess.run(
        [sys.executable, "-m", "localcloud.standins.micro.cluster", "status", "--state-dir", str(cluster_state_dir(p))],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert status.stdout.strip() == "stopped"  # terraform destroy stopped the cluster's process
    log = (Path(p["data"]) / "regions" / REGION / "logs" / f"{done['attempt']}-destroy.log").read_text()
    assert "Destroy complete! Resources: 1 destroyed." in log
    listed = requests.get(f"{p['api']}/v1/regions", headers=p["ada"], timeout=10).json()["regions"]
    assert next(x for x in listed if x["name"] == REGION)["status"] == "deleted"


def test_a_failed_plan_leaves_failed_with_the_reason_and_the_log_excerpt_and_a_retry_runs_again(
    platform: dict[str, Any],
) -> None:
    """A cloud region on a machine without the regions' state bucket: Terraform's init refuses, the runner
    answers the task token with the failure, and the Fail step keeps Terraform's own words."""
    p = platform
    r = requests.post(
        f"{p['api']}/v1/regions",
        headers=p["ops"],
        json={"name": "gcp-1", "cloud": "gcp", "region": "europe-west1", "size": "small"},
        timeout=10,
    )
    assert r.status_code == 202, r.text
    failed = wait_for(lambda: in_status(p, "failed", name="gcp-1"), what="the failure")
    assert failed["failure_step"] == "Plan"
    assert failed["failure_reason"].startswith("TerraformFailedError: terraform init: Error: Missing Required Value")
    assert 'The attribute "bucket" is required by the backend.' in failed["log_excerpt"]
    assert failed["clusters"] == [] and failed["attempt"] == 1
    retried = requests.post(f"{p['api']}/v1/regions/gcp-1/retry", headers=p["ops"], timeout=10)
    assert retried.status_code == 202 and retried.json()["status"] == "planning"
    again = wait_for(lambda: in_status(p, "failed", name="gcp-1"), what="the second failure")
    assert again["attempt"] == 2 and again["failure_step"] == "Plan"
    assert (Path(p["data"]) / "regions" / "gcp-1" / "logs" / "2-plan.log").is_file()


def running(pid: int) -> bool:
    """Alive, not a zombie left for a parent that does not reap it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_make_reset_stops_the_local_regions_clusters_before_wiping_their_state(tmp_path: Path) -> None:
    """A local region's cluster outlives the local cloud (a cloud's cluster outlives the platform), so the
    reset that wipes its state stops it first: else nothing could stop it any more."""
    state = tmp_path / "data" / "regions" / "local-9" / "cluster"
    run = [sys.executable, "-m", "localcloud.standins.micro.cluster"]
    started = subprocess.run(
        [*run, "start", "--state-dir", str(state), "--github-url", "http://127.0.0.1:9"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert started.returncode == 0, started.stderr
    pid = json.loads(started.stdout)["pid"]
    try:
        reset = subprocess.run(
            ["make", "-s", "reset"],
            cwd=ROOT,
            env={**os.environ, "PLATFORM_DATA_DIR": str(tmp_path)},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert reset.returncode == 0, reset.stderr
        assert not (tmp_path / "data").exists()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and running(pid):
            time.sleep(0.1)
        assert not running(pid), "the cluster process still runs, its state wiped"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
