"""The GitHub stand-in's repositories: real git data in bare repositories, the REST endpoints the platform
calls for linking, push-to-deploy and statuses, and the repository webhooks (push, repository,
installation_repositories), over real HTTP on loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jwt
import pytest
import requests
from github import Auth, Github, GithubException

from localcloud import github_push
from localcloud.standins.github import GitHubStandIn
from localcloud.standins.github_webhooks import verify

APP_ID = 4242
INSTALLATION = 7001
SECRET = "local-webhook-secret"
ZERO = "0" * 40
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "hello"


class Receiver:
    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks/github"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def events(self, event: str | None = None) -> list[dict[str, Any]]:
        return [json.loads(b) for h, b in self.received if event in (None, h["x-github-event"])]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def gh(tmp_path: Path) -> Iterator[GitHubStandIn]:
    stand_in = GitHubStandIn(repos_dir=tmp_path / "repos").start()
    yield stand_in
    stand_in.stop()


@pytest.fixture
def receiver(gh: GitHubStandIn) -> Iterator[Receiver]:
    r = Receiver()
    gh.webhook_url = r.url
    yield r
    r.close()


def user(gh: GitHubStandIn, login: str = "ada") -> Github:
    return Github(base_url=gh.api_url, auth=Auth.Token(gh.token_for(login)), retry=None, seconds_between_requests=None)


def app_jwt(gh: GitHubStandIn) -> str:
    now = int(datetime.now(UTC).timestamp())
    return jwt.encode({"iat": now - 60, "exp": now + 300, "iss": str(APP_ID)}, gh.app_private_key_pem, "RS256")


def installation_token(gh: GitHubStandIn, permissions: dict[str, str] | None = None) -> str:
    url = f"{gh.api_url}/app/installations/{INSTALLATION}/access_tokens"
    body = {"permissions": permissions} if permissions else {}
    r = requests.post(url, json=body, headers={"Authorization": f"Bearer {app_jwt(gh)}"}, timeout=5)
    assert r.status_code == 201, r.text
    token: str = r.json()["token"]
    return token


def as_installation(gh: GitHubStandIn, permissions: dict[str, str] | None = None) -> Github:
    auth = Auth.Token(installation_token(gh, permissions))
    return Github(base_url=gh.api_url, auth=auth, retry=None, seconds_between_requests=None)


def get(gh: GitHubStandIn, path: str, token: str, **params: str) -> requests.Response:
    return requests.get(f"{gh.api_url}{path}", headers={"Authorization": f"token {token}"}, params=params, timeout=10)


def git(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


# ---------------------------------------------------------------- repositories and permissions


def test_a_repository_by_name_and_by_id_after_a_rename_and_a_transfer(gh: GitHubStandIn) -> None:
    repo = user(gh).get_repo("acme/hello")
    assert (repo.id, repo.full_name, repo.private, repo.default_branch) == (5001, "acme/hello", True, "main")
    assert repo.owner.login == "acme" and repo.clone_url.startswith("file://")
    assert repo.clone_url.endswith("/acme/hello.git")
    gh.rename_repo("acme", "hello", "greeter")
    assert user(gh).get_repo(5001).full_name == "acme/greeter"
    assert user(gh).get_repo("acme/hello").full_name == "acme/greeter"  # 301 to /repositories/5001
    r = get(gh, "/repos/acme/hello", gh.token_for("ada"))
    assert r.history[0].status_code == 301 and r.json()["id"] == 5001
    gh.add_user("solo")
    gh.transfer_repo("acme", "greeter", "solo")
    moved = Github(base_url=gh.api_url, auth=Auth.Token(gh.token_for("solo")), retry=None).get_repo(5001)
    assert moved.full_name == "solo/greeter" and moved.permissions.admin
    assert git("ls-remote", moved.clone_url, "refs/heads/main").strip()
    with pytest.raises(GithubException) as raised:
        user(gh).get_repo(5001)  # ada is no one on solo's repository
    assert raised.value.status == 404


def test_permissions_per_user(gh: GitHubStandIn) -> None:
    perms = {login: user(gh, login).get_repo("acme/hello").permissions for login in ("ada", "linus", "ken")}
    assert perms["ada"].admin and perms["linus"].push and not perms["linus"].admin
    assert perms["ken"].pull and not perms["ken"].push
    with pytest.raises(GithubException) as raised:
        user(gh, "ops").get_repo("acme/hello")
    assert raised.value.status == 404
    token = gh.token_for("ada")
    answers = {
        login: get(gh, f"/repos/acme/hello/collaborators/{login}/permission", token).json()
        for login in ("ada", "linus", "grace", "ken", "ops")
    }
    assert {k: v["permission"] for k, v in answers.items()} == {
        "ada": "admin",
        "linus": "write",
        "grace": "write",
        "ken": "read",
        "ops": "none",
    }
    assert answers["linus"]["role_name"] == "write" and answers["linus"]["user"]["login"] == "linus"
    assert user(gh).get_repo("acme/hello").get_collaborator_permission("linus") == "write"
    gh.set_collaborator("acme", "hello", "ken", "maintain")
    assert get(gh, "/repos/acme/hello/collaborators/ken/permission", token).json()["permission"] == "write"
    gh.set_collaborator("acme", "hello", "ken", None)
    assert get(gh, "/repos/acme/hello/collaborators/ken/permission", token).json()["permission"] == "read"


def test_the_installation_of_a_repository_and_of_the_installation_its_repositories(gh: GitHubStandIn) -> None:
    headers = {"Authorization": f"Bearer {app_jwt(gh)}"}
    r = requests.get(f"{gh.api_url}/repos/acme/hello/installation", headers=headers, timeout=5)
    assert r.status_code == 200 and r.json()["id"] == INSTALLATION
    r = requests.get(f"{gh.api_url}/repos/other/elsewhere/installation", headers=headers, timeout=5)
    assert r.status_code == 404
    token = installation_token(gh)
    listed = get(gh, "/installation/repositories", token).json()
    assert listed["total_count"] == 1 and [x["full_name"] for x in listed["repositories"]] == ["acme/hello"]
    assert get(gh, "/repos/other/elsewhere", token).status_code == 404
    assert get(gh, "/repos/acme/hello", token).json()["id"] == 5001


def test_clone_url_is_cloneable_and_has_the_example(gh: GitHubStandIn, tmp_path: Path) -> None:
    repo = user(gh).get_repo("acme/hello")
    git("clone", "--quiet", repo.clone_url, str(tmp_path / "checkout"))
    expected = sorted(p.name for p in EXAMPLE.iterdir() if p.is_file())
    assert sorted(p.name for p in (tmp_path / "checkout").iterdir() if p.is_file()) == expected
    assert (tmp_path / "checkout" / "server.py").read_text() == (EXAMPLE / "server.py").read_text()
    # the platform's checkout fetches one commit by sha
    sha = gh.branch_sha("acme", "hello")
    assert sha is not None
    git("init", "--quiet", str(tmp_path / "one"))
    git("fetch", "--quiet", "--depth", "1", repo.clone_url, sha, cwd=tmp_path / "one")


# ---------------------------------------------------------------- push webhooks


def test_a_commit_changes_the_repository_and_sends_a_signed_push(
    gh: GitHubStandIn, receiver: Receiver, tmp_path: Path
) -> None:
    before = gh.branch_sha("acme", "hello")
    assert before is not None
    after = gh.commit("acme", "hello", {"services/x.py": "x = 1\n", "README.md": None}, "Add x", author_login="linus")
    assert gh.branch_sha("acme", "hello") == after != before
    assert git("--git-dir", str(gh.repo_path(gh.repo("acme", "hello"))), "show", f"{after}:services/x.py") == "x = 1\n"
    assert gh.wait_for_deliveries(5)
    [(headers, body)] = receiver.received
    assert headers["x-github-event"] == "push"
    assert verify(SECRET, body, headers["x-hub-signature-256"])
    p = json.loads(body)
    assert list(p)[:5] == ["ref", "before", "after", "repository", "pusher"]
    assert (p["ref"], p["before"], p["after"]) == ("refs/heads/main", before, after)
    assert (p["created"], p["deleted"], p["forced"], p["base_ref"]) == (False, False, False, None)
    assert p["compare"].endswith(f"/acme/hello/compare/{before[:12]}...{after[:12]}")
    [c] = p["commits"]
    assert set(c) == {
        "id",
        "tree_id",
        "distinct",
        "message",
        "timestamp",
        "url",
        "author",
        "committer",
        "added",
        "removed",
        "modified",
    }
    assert (c["id"], c["message"], c["added"], c["removed"], c["modified"]) == (
        after,
        "Add x",
        ["services/x.py"],
        ["README.md"],
        [],
    )
    assert c["author"]["username"] == "linus" and c["distinct"] is True
    assert p["head_commit"]["id"] == after
    assert p["repository"]["id"] == 5001 and p["repository"]["full_name"] == "acme/hello"
    assert isinstance(p["repository"]["created_at"], int) and p["repository"]["master_branch"] == "main"
    assert p["installation"] == {"id": INSTALLATION, "node_id": p["installation"]["node_id"]}
    assert p["pusher"]["name"] == "linus" and p["sender"]["login"] == "linus"
    assert p["organization"]["login"] == "acme"
    second = gh.commit("acme", "hello", {"services/x.py": "x = 2\n"}, "Change x")
    assert gh.wait_for_deliveries(5)
    assert receiver.events("push")[-1]["commits"][0]["modified"] == ["services/x.py"]
    assert receiver.events("push")[-1]["before"] == after and second


def test_a_new_branch_a_forced_push_and_a_deleted_branch(gh: GitHubStandIn, receiver: Receiver) -> None:
    main = gh.branch_sha("acme", "hello")
    feature = gh.commit("acme", "hello", {"f.txt": "f"}, "Feature", branch="feature")
    rewritten = gh.commit("acme", "hello", {"g.txt": "g"}, "Rewrite", branch="feature", force=True)
    gh.delete_branch("acme", "hello", "feature")
    assert gh.wait_for_deliveries(5)
    created, forced, deleted = receiver.events("push")
    assert (created["before"], created["after"], created["created"], created["forced"]) == (ZERO, feature, True, False)
    assert created["ref"] == "refs/heads/feature" and [c["id"] for c in created["commits"]] == [feature]
    assert created["compare"].endswith("/compare/feature")
    assert (forced["before"], forced["after"], forced["forced"], forced["created"]) == (feature, rewritten, True, False)
    assert forced["head_commit"]["added"] == ["f.txt", "g.txt"]  # the head commit was replaced, as --amend
    assert gh.repo("acme", "hello") and main == gh.branch_sha("acme", "hello")
    assert (deleted["after"], deleted["deleted"], deleted["head_commit"], deleted["commits"]) == (
        ZERO,
        True,
        None,
        [],
    )


def test_a_push_of_many_commits_is_cut_at_the_limit(gh: GitHubStandIn, receiver: Receiver) -> None:
    commits: list[tuple[dict[str, str | None], str]] = [({f"n{i}.txt": str(i)}, f"Commit {i}") for i in range(25)]
    head, _ = gh.push("acme", "hello", commits)
    gh.push_commits_limit = 20  # the timeline's limit; webhooks carry up to 2048 (the default)
    head2, _ = gh.push("acme", "hello", commits)
    assert gh.wait_for_deliveries(5)
    full, cut = receiver.events("push")
    assert len(full["commits"]) == 25 and full["head_commit"]["id"] == head
    assert len(cut["commits"]) == 20 and cut["commits"][-1]["id"] == head2 == cut["head_commit"]["id"]
    assert cut["commits"][0]["message"] == "Commit 5"


def test_repository_and_installation_repositories_events(gh: GitHubStandIn, receiver: Receiver) -> None:
    gh.remove_repo_from_installation(INSTALLATION, "acme/hello")
    token = installation_token(gh)
    assert get(gh, "/installation/repositories", token).json()["repositories"] == []
    assert get(gh, "/repos/acme/hello", token).status_code == 404
    gh.commit("acme", "hello", {"a": "a"}, "Not covered: no push webhook")
    gh.add_repo_to_installation(INSTALLATION, "acme/hello")
    gh.rename_repo("acme", "hello", "greeter")
    gh.delete_repo("acme", "greeter")
    assert gh.wait_for_deliveries(5)
    events = [(h["x-github-event"], json.loads(b)) for h, b in receiver.received]
    assert [(e, p["action"]) for e, p in events] == [
        ("installation_repositories", "removed"),
        ("installation_repositories", "added"),
        ("repository", "renamed"),
        ("repository", "deleted"),
    ]
    removed = events[0][1]
    assert removed["repository_selection"] == "selected" and removed["repositories_added"] == []
    assert removed["repositories_removed"] == [
        {"id": 5001, "node_id": removed["repositories_removed"][0]["node_id"], "name": "hello",
         "full_name": "acme/hello", "private": True}
    ]  # fmt: skip
    renamed = events[2][1]
    assert renamed["changes"] == {"repository": {"name": {"from": "hello"}}} and renamed["repository"]["id"] == 5001
    assert renamed["installation"]["id"] == INSTALLATION
    assert [d["repository_id"] for d in gh.deliveries()][2:] == [5001, 5001]
    assert get(gh, "/repositories/5001", gh.token_for("ada")).status_code == 404


def test_a_dropped_delivery_is_failed_and_redelivered(gh: GitHubStandIn, receiver: Receiver) -> None:
    gh.drop_next_delivery()
    sha = gh.commit("acme", "hello", {"lost.txt": "lost"}, "Lost push")
    assert gh.wait_for_deliveries(5) and receiver.received == []
    headers = {"Authorization": f"Bearer {app_jwt(gh)}"}
    [failed] = requests.get(f"{gh.api_url}/app/hook/deliveries", headers=headers, timeout=5).json()
    assert (failed["event"], failed["status_code"], failed["status"]) == ("push", 0, "timed out")
    assert failed["repository_id"] == 5001
    url = f"{gh.api_url}/app/hook/deliveries/{failed['id']}/attempts"
    assert requests.post(url, headers=headers, timeout=5).status_code == 202
    assert gh.wait_for_deliveries(5)
    [(h, body)] = receiver.received
    assert json.loads(body)["after"] == sha and h["x-github-delivery"] == failed["guid"]
    newest = requests.get(f"{gh.api_url}/app/hook/deliveries", headers=headers, timeout=5).json()[0]
    assert (newest["redelivery"], newest["status_code"]) == (True, 202)


# ---------------------------------------------------------------- compare, contents, commits


def test_compare_contents_and_commits(gh: GitHubStandIn) -> None:
    base = gh.branch_sha("acme", "hello")
    assert base is not None
    head = gh.commit("acme", "hello", {"new.txt": "new\n", "server.py": "print('hi')\n", "README.md": None}, "Change")
    repo = user(gh).get_repo("acme/hello")
    cmp = repo.compare(base, head)
    assert (cmp.status, cmp.ahead_by, cmp.behind_by, cmp.total_commits) == ("ahead", 1, 0, 1)
    assert [c.sha for c in cmp.commits] == [head]
    assert {f.filename: f.status for f in cmp.files} == {
        "new.txt": "added",
        "server.py": "modified",
        "README.md": "removed",
    }
    assert repo.compare(head, base).status == "behind" and repo.compare(head, head).status == "identical"
    renamed = gh.commit("acme", "hello", {"renamed.txt": "new\n", "new.txt": None}, "Rename")
    [moved] = repo.compare(head, renamed).files
    assert (moved.status, moved.filename, moved.previous_filename) == ("renamed", "renamed.txt", "new.txt")
    with pytest.raises(GithubException) as raised:
        repo.compare(base, "0123456789abcdef0123456789abcdef01234567")
    assert raised.value.status == 404
    content = repo.get_contents("server.py", ref=head)
    assert not isinstance(content, list)
    assert (content.type, content.encoding, content.path, content.name) == ("file", "base64", "server.py", "server.py")
    assert content.decoded_content == b"print('hi')\n" and content.size == 12
    assert repo.get_contents("server.py", ref=base).decoded_content == (EXAMPLE / "server.py").read_bytes()  # type: ignore[union-attr]
    with pytest.raises(GithubException) as raised:
        repo.get_contents("README.md", ref=head)
    assert raised.value.status == 404
    commit = repo.get_commit(head)
    assert commit.sha == head and commit.commit.message == "Change" and commit.parents[0].sha == base
    assert sorted(f.filename for f in commit.files) == ["README.md", "new.txt", "server.py"]
    r = get(gh, f"/repos/acme/hello/commits/{head}", gh.token_for("ken")).json()
    assert r["commit"]["author"]["email"] == "ada@acme.example" and r["author"]["login"] == "ada"


# ---------------------------------------------------------------- deployments and statuses


def test_deployments_and_statuses_with_an_installation_token(gh: GitHubStandIn) -> None:
    sha = gh.branch_sha("acme", "hello")
    assert sha is not None
    repo = as_installation(gh).get_repo("acme/hello")
    commit = repo.get_commit(sha)
    status = commit.create_status("pending", target_url="http://127.0.0.1:8000/d/1", description="Deploying",
                                  context="platform/deploy")  # fmt: skip
    assert (status.state, status.context) == ("pending", "platform/deploy")
    assert commit.get_combined_status().state == "pending"
    commit.create_status("success", context="platform/deploy")
    combined = commit.get_combined_status()
    assert combined.state == "success" and [s.state for s in combined.statuses] == ["success"]
    assert [s.state for s in commit.get_statuses()] == ["success", "pending"]  # newest first
    deployment = repo.create_deployment(
        "main",
        environment="acme-backend",
        description="push to deploy",
        auto_merge=False,
        required_contexts=[],
        payload={"service": "hello"},
        transient_environment=False,
        production_environment=False,
    )
    assert (deployment.sha, deployment.ref, deployment.environment) == (sha, "main", "acme-backend")
    assert deployment.payload == {"service": "hello"} and deployment.creator.login == "micro-platform[bot]"
    deployment.create_status("in_progress", description="starting")
    deployment.create_status("success", environment_url="http://127.0.0.1:9000", description="healthy")
    assert [s.state for s in deployment.get_statuses()] == ["success", "in_progress"]
    assert [d.id for d in repo.get_deployments(sha=sha, environment="acme-backend")] == [deployment.id]
    assert list(repo.get_deployments(environment="elsewhere")) == []
    second = repo.create_deployment("main", environment="acme-backend", required_contexts=[], auto_merge=False)
    second.create_status("success")
    assert next(s.state for s in deployment.get_statuses()) == "inactive"  # auto_inactive


def test_writes_need_the_permission(gh: GitHubStandIn) -> None:
    sha = gh.branch_sha("acme", "hello")
    assert sha is not None
    repo = as_installation(gh, {"metadata": "read", "contents": "read"}).get_repo("acme/hello")
    with pytest.raises(GithubException) as raised:
        repo.create_deployment("main", required_contexts=[])
    assert raised.value.status == 403 and raised.value.data["message"] == "Resource not accessible by integration"
    with pytest.raises(GithubException) as raised:
        repo.get_commit(sha).create_status("success")
    assert raised.value.status == 403
    with pytest.raises(GithubException) as raised:
        user(gh, "ken").get_repo("acme/hello").create_deployment("main")  # ken reads only
    assert raised.value.status == 403
    linus = user(gh, "linus").get_repo("acme/hello")
    linus.get_commit(sha).create_status("failure", context="ci")
    with pytest.raises(GithubException) as raised:
        linus.create_deployment("main")  # required_contexts omitted: every context must be green
    assert raised.value.status == 409
    assert linus.create_deployment("main", required_contexts=[]).sha == sha


# ---------------------------------------------------------------- acting as GitHub over HTTP


def test_the_stand_in_commit_route_and_the_cli(gh: GitHubStandIn, receiver: Receiver, tmp_path: Path) -> None:
    r = requests.post(
        f"{gh.url}/_stand-in/repos/acme/hello/commits",
        json={"files": {"services/x.py": "x = 1\n"}, "message": "Over HTTP", "author": "grace"},
        timeout=30,
    )
    assert r.status_code == 201
    answer = r.json()
    assert answer["sha"] == gh.branch_sha("acme", "hello") and answer["delivery"]["id"]
    local = tmp_path / "y.py"
    local.write_text("y = 2\n")
    done = subprocess.run(
        [sys.executable, "-m", "localcloud.github_push", "--github", gh.url, "acme/hello",
         "--file", f"services/y.py=@{local}", "--file", "NOTES.md=hello", "--message", "From the CLI"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    sha = done.stdout.strip()
    assert sha == gh.branch_sha("acme", "hello") and "delivery" in done.stderr
    assert gh.wait_for_deliveries(5)
    pushes = receiver.events("push")
    assert [p["after"] for p in pushes] == [answer["sha"], sha]
    assert pushes[0]["sender"]["login"] == "grace"
    assert sorted(pushes[1]["head_commit"]["added"]) == ["NOTES.md", "services/y.py"]
    # without --github: the port make run was given (PLATFORM_GITHUB_PORT), as make run uses it
    env = {k: v for k, v in os.environ.items() if k != "PLATFORM_GITHUB_URL"}
    env["PLATFORM_GITHUB_PORT"] = str(urlsplit(gh.url).port)
    again = subprocess.run(
        [sys.executable, "-m", "localcloud.github_push", "acme/hello", "--file", "NOTES.md=again", "-m", "Port"],
        capture_output=True, text=True, timeout=60, check=False, env=env,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == gh.branch_sha("acme", "hello")
    created = github_push.create_repo(gh.url, "acme/svc", EXAMPLE)
    assert created["full_name"] == "acme/svc" and created["id"] > 5001
    assert github_push.main(["--github", gh.url, "nobody/none", "--file", "a=b"]) == 1
    url = f"{gh.url}/_stand-in/repos/acme/nope/commits"
    missing = requests.post(url, json={"files": {}, "message": "m"}, timeout=30)
    assert missing.status_code == 404


def test_a_temporary_repos_dir_is_removed_on_stop() -> None:
    stand_in = GitHubStandIn().start()
    stand_in.commit("acme", "hello", {"a": "a"}, "make the git data")
    assert stand_in.repos_dir.is_dir()
    stand_in.stop()
    assert not stand_in.repos_dir.exists()
