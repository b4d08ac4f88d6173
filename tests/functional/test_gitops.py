"""GitOps on the local cloud: link a repository of the GitHub stand-in, push to it, and the service
answers with the new commit while GitHub shows the deployment statuses; a broken push keeps the
previous version answering with GitHub showing failure; a replayed delivery deploys nothing; a
delivery the platform never got is redelivered by the schedule; an uninstall disables the link; and
the GitHub Action's script deploys against the API."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from chalicelib.domain.clock import SystemClock
from localcloud.standins.github_webhooks import deliver
from tests.conftest import USED_SECRETS
from tests.fixtures import start_platform
from tests.helpers import ROOT

NS = "acme-backend"
# The webhook secret of a person's own GitHub App, set in the environment: the local cloud uses it.
WEBHOOK_SECRET = "whsec-" + secrets.token_hex(16)


@pytest.fixture(scope="module")
def gitops(tmp_path_factory: pytest.TempPathFactory, env_restored: None) -> Iterator[dict[str, Any]]:
    from chalicelib.composition import set_container

    USED_SECRETS.add(WEBHOOK_SECRET)  # the log check looks for it
    os.environ["GITHUB_WEBHOOK_SECRET"] = WEBHOOK_SECRET
    cloud = start_platform(tmp_path_factory.mktemp("gitops"), SystemClock())
    api = cloud.api_url

    def token(login: str) -> str:
        return str(requests.post(f"{api}/v1/auth/local-login", json={"login": login}, timeout=10).json()["token"])

    ada = token("ada")
    h = {"Authorization": f"Bearer {ada}"}
    assert (
        requests.post(
            f"{api}/v1/namespaces",
            headers=h,
            timeout=10,
            json={"github_org": "acme", "github_team": "backend", "region": "local"},
        ).status_code
        == 202
    )
    arn = cloud.resources["state_machines"]["onboarding"].replace(":stateMachine:", ":execution:")
    assert cloud.wait_execution(f"{arn}:{NS}", timeout=60)["status"] == "SUCCEEDED"
    yield {"cloud": cloud, "api": api, "h": h, "token": token}
    cloud.stop()
    set_container(None)


def get(p: dict[str, Any], path: str) -> Any:
    return requests.get(f"{p['api']}{path}", headers=p["h"], timeout=10).json()


def wait_for(predicate: Any, timeout: float = 60, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def deployment_of(p: dict[str, Any], sha: str) -> dict[str, Any] | None:
    r = requests.get(f"{p['api']}/v1/namespaces/{NS}/services/hello/deployments", headers=p["h"], timeout=10)
    if r.status_code != 200:
        return None
    found = [d for d in r.json()["deployments"] if d["commit"] == sha or d["ref"] == sha]
    return found[0] if found and found[0]["status"] not in ("queued", "in_progress") else None


def github_statuses(p: dict[str, Any], sha: str) -> tuple[list[str], list[str]]:
    gh = p["cloud"].github
    headers = {"Authorization": f"token {gh.token_for('ada')}"}
    base = f"{gh.api_url}/repos/acme/hello"
    deployments = requests.get(f"{base}/deployments", params={"sha": sha}, headers=headers, timeout=10).json()
    states = []
    for d in deployments:
        states += [
            s["state"]
            for s in requests.get(f"{base}/deployments/{d['id']}/statuses", headers=headers, timeout=10).json()
        ]
    commit = [s["state"] for s in requests.get(f"{base}/commits/{sha}/statuses", headers=headers, timeout=10).json()]
    return states, commit


def test_the_local_cloud_uses_the_webhook_secret_set_in_the_environment(gitops: dict[str, Any]) -> None:
    cloud = gitops["cloud"]
    url, ping = f"{cloud.api_url}/v1/webhooks/github", {"zen": "Keep it logically awesome.", "hook_id": 1}
    assert cloud.github.app.webhook_secret == WEBHOOK_SECRET  # the GitHub stand-in signs with it
    assert deliver(url, "ping", ping, WEBHOOK_SECRET).status_code == 200
    assert deliver(url, "ping", ping, "local-webhook-secret").status_code == 401  # not the seed's any more


def test_linking_checks_installation_organization_and_push_access(gitops: dict[str, Any]) -> None:
    api, gh = gitops["api"], gitops["cloud"].github
    linus = {"Authorization": f"Bearer {gitops['token']('linus')}"}
    gh.create_repo("acme", "readonly", from_dir=ROOT / "examples" / "hello")  # no team grants: linus may only read
    gh.set_collaborator("acme", "readonly", "linus", "pull")
    r = requests.post(f"{api}/v1/namespaces/{NS}/repos", headers=linus, json={"repo": "acme/readonly"}, timeout=10)
    assert r.status_code == 403 and "push access" in r.json()["error"]["message"]
    r = requests.post(
        f"{api}/v1/namespaces/{NS}/repos", headers=gitops["h"], json={"repo": "other/elsewhere"}, timeout=10
    )
    assert r.status_code == 422
    r = requests.post(f"{api}/v1/namespaces/{NS}/repos", headers=gitops["h"], json={"repo": "acme/nosuch"}, timeout=10)
    assert r.status_code == 422
    grace = {"Authorization": f"Bearer {gitops['token']('grace')}"}
    assert (
        requests.post(
            f"{api}/v1/namespaces/{NS}/repos", headers=grace, json={"repo": "acme/hello"}, timeout=10
        ).status_code
        == 403
    )  # a member is not an admin of the namespace
    r = requests.post(f"{api}/v1/namespaces/{NS}/repos", headers=linus, json={"repo": "acme/hello"}, timeout=10)
    assert r.status_code == 201, r.text
    link = r.json()
    assert link["full_name"] == "acme/hello" and link["branch"] == "main" and link["status"] == "active"
    assert link["id"] >= 5001 and link["installation_id"] == 7001
    again = requests.post(
        f"{api}/v1/namespaces/{NS}/repos", headers=gitops["h"], json={"repo": "acme/hello"}, timeout=10
    )
    assert again.status_code == 409
    gitops["repo_id"] = link["id"]


def test_a_push_deploys_and_github_shows_the_statuses(gitops: dict[str, Any]) -> None:
    gh = gitops["cloud"].github
    sha = gh.commit("acme", "hello", {"VERSION": "1"}, "first push")
    dep = wait_for(lambda: deployment_of(gitops, sha), what="the push's deployment")
    assert dep["status"] == "succeeded", dep
    assert dep["trigger"]["kind"] == "push"
    service = get(gitops, f"/v1/namespaces/{NS}/services/hello")
    assert service["current_commit"] == sha
    assert requests.get(service["address"], timeout=10).json()["version"] == dep["id"]
    deployment_states, commit_states = wait_for(
        lambda: (lambda s: s if "success" in s[0] else None)(github_statuses(gitops, sha)), what="GitHub's statuses"
    )
    assert deployment_states[0] == "success" and "in_progress" in deployment_states
    assert commit_states[0] == "success"
    gitops["good"] = dep


def test_a_broken_push_keeps_the_previous_version_while_github_shows_failure(gitops: dict[str, Any]) -> None:
    gh = gitops["cloud"].github
    sha = gh.commit("acme", "hello", {"server.py": "import sys\nsys.exit(1)\n"}, "broken")
    dep = wait_for(lambda: deployment_of(gitops, sha), what="the broken push's deployment")
    assert dep["status"] == "rolled_back", dep
    service = get(gitops, f"/v1/namespaces/{NS}/services/hello")
    assert requests.get(service["address"], timeout=10).json()["version"] == gitops["good"]["id"]
    _, commit_states = wait_for(
        lambda: (lambda s: s if "failure" in s[1] else None)(github_statuses(gitops, sha)),
        what="GitHub's failure status",
    )
    assert commit_states[0] == "failure"
    fixed = gh.commit("acme", "hello", {"server.py": (ROOT / "examples" / "hello" / "server.py").read_text()}, "fixed")
    assert wait_for(lambda: deployment_of(gitops, fixed), what="the fix deployed")["status"] == "succeeded"


def test_replaying_a_delivery_deploys_nothing(gitops: dict[str, Any]) -> None:
    gh = gitops["cloud"].github
    gh.wait_for_deliveries()
    last_push = [d for d in gh.deliveries() if d["event"] == "push"][-1]
    count = len(get(gitops, f"/v1/namespaces/{NS}/services/hello/deployments")["deployments"])
    gh.redeliver(last_push["id"])
    gh.wait_for_deliveries()
    time.sleep(1.0)
    assert len(get(gitops, f"/v1/namespaces/{NS}/services/hello/deployments")["deployments"]) == count
    assert [d for d in gh.deliveries() if d["guid"] == last_push["guid"]][-1]["status_code"] == 200


def test_a_delivery_the_platform_never_got_is_redelivered_by_the_schedule(gitops: dict[str, Any]) -> None:
    cloud, gh = gitops["cloud"], gitops["cloud"].github
    gh.drop_next_delivery()
    sha = gh.commit("acme", "hello", {"VERSION": "missed"}, "a push whose webhook is lost")
    gh.wait_for_deliveries()
    time.sleep(1.0)
    assert deployment_of(gitops, sha) is None
    schedule = next(s for s in cloud.decl.list("schedules") if s["name"] == "github-redeliver")
    cloud.fire_schedule(schedule, datetime.now(UTC))
    dep = wait_for(lambda: deployment_of(gitops, sha), what="the redelivered push's deployment")
    assert dep["status"] == "succeeded"
    # GitHub still lists the original as failed; the schedule's next runs leave it alone: it arrived
    lost = [d for d in gh.deliveries() if d["event"] == "push"][-1]["guid"]
    for _ in range(2):
        cloud.fire_schedule(schedule, datetime.now(UTC))
    gh.wait_for_deliveries()
    assert len([d for d in gh.deliveries() if d["guid"] == lost]) == 2  # the lost one and one redelivery


def test_the_schedule_never_redelivers_a_delivery_the_endpoint_has(gitops: dict[str, Any]) -> None:
    """GitHub gave up waiting (10 s) on a delivery that did arrive: it is failed in GitHub's list only."""
    cloud, gh = gitops["cloud"], gitops["cloud"].github
    gh.drop_next_delivery()
    gh.commit("acme", "hello", {"NOTES": "late"}, "on a branch nobody deploys", branch="slow")
    gh.wait_for_deliveries()
    late = gh.delivery([d for d in gh.deliveries() if d["event"] == "push"][-1]["id"])
    assert late.status_code == 0  # recorded as timed out
    url = f"{cloud.api_url}/v1/webhooks/github"
    assert deliver(url, "push", late.body, gh.app.webhook_secret, delivery_id=late.guid).status_code == 202
    schedule = next(s for s in cloud.decl.list("schedules") if s["name"] == "github-redeliver")
    cloud.fire_schedule(schedule, datetime.now(UTC))
    gh.wait_for_deliveries()
    assert [d["redelivery"] for d in gh.deliveries() if d["guid"] == late.guid] == [False]


def test_a_push_of_400_kb_of_non_ascii_text_deploys(gitops: dict[str, Any]) -> None:
    """Escaped, this payload would not fit in an SQS message: it goes through the bucket (a claim check)."""
    gh = gitops["cloud"].github
    message = "Größenänderung ünd Übersetzung: 日本語のコミットメッセージ " * 1_700  # about 100 KB in UTF-8
    # four commits in one push (a git argument is at most 128 KiB): their messages, and the head's again
    sha, _ = gh.push("acme", "hello", [({"VERSION": f"unicode {i}"}, f"{i}: {message}") for i in range(4)])
    gh.wait_for_deliveries()
    push = [d for d in gh.deliveries() if d["event"] == "push"][-1]
    assert push["status_code"] == 202, push
    assert len(gh.delivery(push["id"]).body) > 400_000
    assert wait_for(lambda: deployment_of(gitops, sha), what="the large push's deployment")["status"] == "succeeded"
    bucket = os.environ["PLATFORM_BUCKET_QUEUE_PAYLOADS_NAME"]
    s3 = gitops["cloud"].client("s3")
    assert wait_for(lambda: not s3.list_objects_v2(Bucket=bucket).get("Contents"), what="the claim check deleted")


def deployments(p: dict[str, Any]) -> list[dict[str, Any]]:
    return list(get(p, f"/v1/namespaces/{NS}/services/hello/deployments")["deployments"])


def test_the_same_push_under_a_new_delivery_id_deploys_nothing(gitops: dict[str, Any]) -> None:
    """The delivery id is not signed: replaying a signed push body under another one is a replay still."""
    cloud, gh = gitops["cloud"], gitops["cloud"].github
    gh.wait_for_deliveries()
    last_push = gh.delivery([d for d in gh.deliveries() if d["event"] == "push"][-1]["id"])
    count = len(deployments(gitops))
    url = f"{cloud.api_url}/v1/webhooks/github"
    r = deliver(url, "push", last_push.body, gh.app.webhook_secret, delivery_id="replayed-under-a-new-id")
    assert (r.status_code, r.json()["status"]) == (202, "enqueued")  # the door cannot tell: the consumer does
    time.sleep(2.0)
    assert len(deployments(gitops)) == count


def test_a_force_push_back_to_an_earlier_commit_deploys_it(gitops: dict[str, Any]) -> None:
    """A genuinely new push to a commit the branch had before (another `before`, a later push time)."""
    gh = gitops["cloud"].github
    good = gitops["good"]["commit"]
    count = len(deployments(gitops))
    time.sleep(1.1)  # GitHub's push times are in seconds
    gh.move_branch("acme", "hello", good)

    def new_deployment_of_good() -> dict[str, Any] | None:
        now = deployments(gitops)
        return next((d for d in now[: len(now) - count] if good in (d["commit"], d["ref"])), None)

    dep = wait_for(new_deployment_of_good, what="the forced push's deployment")
    assert dep["trigger"]["kind"] == "push"


def test_tags_other_branches_and_unlinked_repositories_are_ignored(gitops: dict[str, Any]) -> None:
    gh = gitops["cloud"].github
    count = len(get(gitops, f"/v1/namespaces/{NS}/services/hello/deployments")["deployments"])
    gh.commit("acme", "hello", {"NOTES": "x"}, "on a branch", branch="feature")
    gh.wait_for_deliveries()
    time.sleep(1.0)
    assert len(get(gitops, f"/v1/namespaces/{NS}/services/hello/deployments")["deployments"]) == count


def test_the_github_action_deploys_and_fails_the_job_on_failure(gitops: dict[str, Any], tmp_path: Any) -> None:
    api = gitops["api"]
    token = requests.post(
        f"{api}/v1/tokens",
        headers=gitops["h"],
        timeout=10,
        json={"name": "action", "namespace": NS, "scopes": ["deploy"]},
    ).json()["token"]
    repo = tmp_path / "hello"
    subprocess.run(
        ["bash", str(ROOT / "examples" / "make-example-repo.sh"), str(repo)], check=True, capture_output=True
    )
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    outputs = tmp_path / "outputs"
    env = {
        "PATH": os.environ["PATH"],
        "PLATFORM_API_URL": api,
        "PLATFORM_TOKEN": token,
        "DEPLOY_NAMESPACE": NS,
        "DEPLOY_SERVICE": "hello",
        "DEPLOY_SOURCE": str(repo),
        "DEPLOY_REF": sha,
        "DEPLOY_POLL_SECONDS": "0.5",
        "GITHUB_OUTPUT": str(outputs),
    }
    ok = subprocess.run(
        [sys.executable, str(ROOT / "action" / "deploy.py")], env=env, capture_output=True, text=True, timeout=120
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "build: succeeded" in ok.stdout and "succeeded: commit" in ok.stdout
    assert "status=succeeded" in outputs.read_text()
    (repo / "server.py").write_text("raise SystemExit(1)\n")
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "break"], cwd=repo, check=True
    )
    bad = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    failed = subprocess.run(
        [sys.executable, str(ROOT / "action" / "deploy.py")],
        env={**env, "DEPLOY_REF": bad},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert failed.returncode == 1 and "::error::" in failed.stdout and "rolled_back" in failed.stdout


TWO_SERVICES = """services:
  - {name: alpha, path: alpha, command: ["python3", "../server.py"], port: 8080, health: /health, deadline: 60}
  - {name: beta, path: beta, command: ["python3", "../server.py"], port: 8080, health: /health, deadline: 60}
"""


def test_a_push_whose_compare_is_cut_at_300_files_deploys_every_service(gitops: dict[str, Any]) -> None:
    """GitHub's compare lists at most 300 files: a longer list may hide a service's change."""
    api, gh = gitops["api"], gitops["cloud"].github
    server = (ROOT / "examples" / "hello" / "server.py").read_text()
    gh.create_repo("acme", "two")
    gh.commit(
        "acme", "two", {"micro.yaml": TWO_SERVICES, "server.py": server, "alpha/.keep": "", "beta/.keep": ""}, "s"
    )
    r = requests.post(f"{api}/v1/namespaces/{NS}/repos", headers=gitops["h"], json={"repo": "acme/two"}, timeout=10)
    assert r.status_code == 201, r.text
    gh.commit("acme", "two", {"NOTES": "a"}, "outside every service: deploys nothing")
    # forced (compare is asked): 300 files under alpha/, and beta/'s change past GitHub's cut
    files = {f"alpha/f{i:03}": str(i) for i in range(300)} | {"beta/zz": "changed"}
    sha = gh.commit("acme", "two", files, "many files", force=True)
    gh.wait_for_deliveries()

    def deployed(svc: str) -> bool:
        r = requests.get(f"{api}/v1/namespaces/{NS}/services/{svc}/deployments", headers=gitops["h"], timeout=10)
        return r.status_code == 200 and any(sha in (d["commit"], d["ref"]) for d in r.json()["deployments"])

    wait_for(lambda: deployed("alpha") and deployed("beta"), what="both services deployed")


def link_status(p: dict[str, Any], status: str) -> dict[str, Any] | None:
    link = get(p, f"/v1/namespaces/{NS}/repos/{p['repo_id']}")
    return dict(link) if link["status"] == status else None


def test_undoing_a_suspension_or_a_removal_on_github_enables_the_link_again(gitops: dict[str, Any]) -> None:
    gh = gitops["cloud"].github
    gh.suspend(7001)
    link = wait_for(lambda: link_status(gitops, "disabled"), what="the link disabled by the suspension")
    assert link["disabled_reason"] == "the GitHub App's installation was suspended"
    gh.unsuspend(7001)
    wait_for(lambda: link_status(gitops, "active"), what="the link enabled by the unsuspension")
    gh.remove_repo_from_installation(7001, "acme/hello")
    link = wait_for(lambda: link_status(gitops, "disabled"), what="the link disabled by the removal")
    assert "removed" in link["disabled_reason"]
    gh.add_repo_to_installation(7001, "acme/hello")
    assert wait_for(lambda: link_status(gitops, "active"), what="the link enabled again")["disabled_reason"] is None
    audit = get(gitops, f"/v1/namespaces/{NS}/audit?action=repo.enabled")["entries"]
    mine = [(e["actor"], e["outcome"]) for e in audit if e["target"] == f"repo:{gitops['repo_id']}"]
    assert mine == [("github", "ok")] * 2  # once for the unsuspension, once for the addition


def test_an_uninstall_disables_the_link_and_pushes_are_ignored(gitops: dict[str, Any]) -> None:
    gh = gitops["cloud"].github
    gh.remove_repo_from_installation(7001, "acme/hello")
    link = wait_for(
        lambda: (lambda r: r if r["status"] == "disabled" else None)(
            get(gitops, f"/v1/namespaces/{NS}/repos/{gitops['repo_id']}")
        ),
        what="the link disabled",
    )
    assert "installation" in link["disabled_reason"]
    count = len(get(gitops, f"/v1/namespaces/{NS}/services/hello/deployments")["deployments"])
    gh.commit("acme", "hello", {"VERSION": "ignored"}, "after the removal")
    gh.wait_for_deliveries()
    time.sleep(1.0)
    assert len(get(gitops, f"/v1/namespaces/{NS}/services/hello/deployments")["deployments"]) == count
