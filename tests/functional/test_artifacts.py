"""Deployment artifacts with real git: checkouts of exact commits from a path or a file:// URL, refs,
unknown commits, retention, and the example service repository end to end."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from chalicelib.adapters.artifacts import GitArtifacts, read_manifest
from chalicelib.adapters.manifest_yaml import load_manifest
from chalicelib.domain.errors import ConflictError, ValidationError
from chalicelib.domain.ids import new_id
from chalicelib.domain.ports import ResourceQuota
from tests.helpers import ROOT

QUOTA = ResourceQuota(memory_mib=1024, cpu_millicores=1000, ephemeral_storage_mib=1024)
GIT_ENV = {
    **{k: v for k, v in os.environ.items() if not k.startswith("GIT_")},
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@localhost",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@localhost",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(repo: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", "-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false", *args],
        cwd=repo,
        env=GIT_ENV,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> tuple[Path, str, str]:
    """A repository with two commits; tag v1 on the first, a branch `feature` with a third."""
    src = tmp_path / "src"
    src.mkdir()
    git(src, "init", "-q")
    (src / "micro.yaml").write_text("services:\n  - {name: app, command: x, port: 1}\n")
    (src / "a.txt").write_text("one\n")
    git(src, "add", "-A")
    git(src, "commit", "-qm", "first")
    first = git(src, "rev-parse", "HEAD")
    git(src, "tag", "-a", "v1", "-m", "version 1")
    (src / "a.txt").write_text("two\n")
    (src / "b.txt").write_text("new\n")
    git(src, "add", "-A")
    git(src, "commit", "-qm", "second")
    second = git(src, "rev-parse", "HEAD")
    git(src, "checkout", "-qb", "feature")
    (src / "c.txt").write_text("feature\n")
    git(src, "add", "-A")
    git(src, "commit", "-qm", "third")
    git(src, "checkout", "-q", "main")
    return src, first, second


def test_prepare_each_commit(tmp_path: Path, repo: tuple[Path, str, str]) -> None:
    src, first, second = repo
    artifacts = GitArtifacts(tmp_path / "artifacts")
    path1, sha1 = artifacts.prepare("ns1", "app", "d1", str(src), first)
    assert sha1 == first
    assert path1 == tmp_path / "artifacts" / "ns1" / "app" / "d1"
    assert (path1 / "a.txt").read_text() == "one\n"
    assert not (path1 / "b.txt").exists()
    assert not (path1 / ".git").exists()
    path2, sha2 = artifacts.prepare("ns1", "app", "d2", f"file://{src}", second)
    assert sha2 == second
    assert (path2 / "a.txt").read_text() == "two\n"
    assert (path2 / "b.txt").read_text() == "new\n"
    assert artifacts.exists("ns1", "app", "d2") == path2
    assert artifacts.exists("ns1", "app", "nope") is None
    assert artifacts.commit_of("ns1", "app", "d1") == first
    # The checkout left nothing behind but the artifacts and their sha files.
    assert sorted(p.name for p in path1.parent.iterdir()) == ["d1", "d1.sha", "d2", "d2.sha"]
    # The source repository is untouched.
    assert git(src, "status", "--porcelain") == ""


def test_refs_and_short_shas_resolve(tmp_path: Path, repo: tuple[Path, str, str]) -> None:
    src, first, second = repo
    artifacts = GitArtifacts(tmp_path / "artifacts")
    assert artifacts.prepare("ns", "app", "d1", str(src), "HEAD")[1] == second
    assert artifacts.prepare("ns", "app", "d2", str(src), "main")[1] == second
    assert artifacts.prepare("ns", "app", "d3", str(src), "v1")[1] == first  # annotated tag, peeled
    path, _ = artifacts.prepare("ns", "app", "d4", f"file://{src}", "refs/heads/feature")
    assert (path / "c.txt").exists()
    assert artifacts.prepare("ns", "app", "d5", str(src), first[:7])[1] == first
    assert artifacts.prepare("ns", "app", "d6", str(src), second.upper())[1] == second


def test_prepare_again_returns_the_same_artifact(tmp_path: Path, repo: tuple[Path, str, str]) -> None:
    src, first, second = repo
    artifacts = GitArtifacts(tmp_path / "artifacts")
    path, sha = artifacts.prepare("ns", "app", "d1", str(src), first)
    assert artifacts.prepare("ns", "app", "d1", str(src), first) == (path, sha)
    assert artifacts.prepare("ns", "app", "d1", str(src), "HEAD") == (path, sha)  # pinned already
    with pytest.raises(ConflictError):
        artifacts.prepare("ns", "app", "d1", str(src), second)


def test_unknown_commit_and_missing_source(tmp_path: Path, repo: tuple[Path, str, str]) -> None:
    src, _, _ = repo
    artifacts = GitArtifacts(tmp_path / "artifacts")
    for commit in ("0" * 40, "deadbee", "no-such-branch"):
        with pytest.raises(ValidationError) as info:
            artifacts.prepare("ns", "app", "d1", str(src), commit)
        assert commit in info.value.message
        assert str(src) in info.value.message
    with pytest.raises(ValidationError) as info:
        artifacts.prepare("ns", "app", "d1", str(tmp_path / "missing"), "HEAD")
    assert "missing" in info.value.message and "not found" in info.value.message
    not_a_repo = tmp_path / "plain"
    not_a_repo.mkdir()
    with pytest.raises(ValidationError, match="cannot be read"):
        artifacts.prepare("ns", "app", "d1", str(not_a_repo), "HEAD")
    with pytest.raises(ValidationError) as info:
        artifacts.prepare("ns", "app", "d1", "file:///nowhere/at/all", "HEAD")
    assert "file:///nowhere/at/all" in info.value.message
    assert artifacts.exists("ns", "app", "d1") is None
    assert artifacts.deployments("ns", "app") == []
    assert [p.name for p in (tmp_path / "artifacts" / "ns" / "app").iterdir()] == []  # no temporary leftovers


@pytest.mark.parametrize(
    ("source", "commit"),
    [
        ("ext::sh -c touch% /tmp/pwned", "HEAD"),
        ("ssh://host/repo", "HEAD"),
        ("host:repo", "HEAD"),
        ("--upload-pack=touch /tmp/pwned", "HEAD"),
        ("https://user:s3cret@example.invalid/repo.git", "-n"),
        ("SRC", "--upload-pack=x"),
        ("SRC", "a..b"),
        ("SRC", "main branch"),
        ("SRC", "x" * 300),
    ],
)
def test_arguments_are_validated(tmp_path: Path, repo: tuple[Path, str, str], source: str, commit: str) -> None:
    src, _, _ = repo
    artifacts = GitArtifacts(tmp_path / "artifacts")
    with pytest.raises(ValidationError) as info:
        artifacts.prepare("ns", "app", "d1", source.replace("SRC", str(src)), commit)
    assert "s3cret" not in info.value.message


def test_path_components_are_validated(tmp_path: Path, repo: tuple[Path, str, str]) -> None:
    src, first, _ = repo
    artifacts = GitArtifacts(tmp_path / "artifacts")
    for ns, svc, dep in (("..", "app", "d"), ("ns", "../x", "d"), ("ns", "app", ".hidden"), ("ns", "app", "a/b")):
        with pytest.raises(ValidationError):
            artifacts.prepare(ns, svc, dep, str(src), first)


def test_credentials_in_urls_are_not_echoed(tmp_path: Path) -> None:
    artifacts = GitArtifacts(tmp_path / "artifacts", timeout=20)
    with pytest.raises(ValidationError) as info:
        artifacts.prepare("ns", "app", "d1", "http://user:s3cret@127.0.0.1:9/repo.git", "HEAD")
    assert "s3cret" not in info.value.message
    assert "***@127.0.0.1:9" in info.value.message


def test_only_the_last_five_are_kept_except_protected(tmp_path: Path, repo: tuple[Path, str, str]) -> None:
    src, first, second = repo
    artifacts = GitArtifacts(tmp_path / "artifacts", keep=5)
    ids = [new_id() for _ in range(8)]
    ids.sort()
    for i, deployment_id in enumerate(ids):
        protect = [ids[0]] if i >= 1 else []  # the last good deployment, say
        artifacts.prepare("ns", "app", deployment_id, str(src), first if i % 2 else second, protect=protect)
    kept = artifacts.deployments("ns", "app")
    assert kept == [ids[0], *ids[-5:]]
    for gone in ids[1:3]:
        assert artifacts.exists("ns", "app", gone) is None
        assert not (tmp_path / "artifacts" / "ns" / "app" / f"{gone}.sha").exists()
    # Without protection, prune leaves the newest five.
    assert artifacts.prune("ns", "app") == [ids[0]]
    assert artifacts.deployments("ns", "app") == ids[-5:]
    # Other services are not affected.
    artifacts.prepare("ns", "other", ids[0], str(src), first)
    assert artifacts.deployments("ns", "other") == [ids[0]]


def test_another_services_artifact_is_never_built_from(tmp_path: Path, repo: tuple[Path, str, str]) -> None:
    """A kept artifact is reused only by its own service (a retried build, a rollback); another
    namespace's artifact given as a source is refused, naming the field."""
    from chalicelib.adapters.builds import LocalBuilds

    src, first, _ = repo
    builds = LocalBuilds(tmp_path / "artifacts", platform_dirs=(tmp_path / "data", tmp_path / "runtime"))
    theirs = Path(builds.prepare("other", "app", new_id(), str(src), first, QUOTA).artifact)
    rollback = builds.prepare("other", "app", new_id(), str(theirs), first, QUOTA)
    assert rollback.artifact == str(theirs) and rollback.commit == first

    with pytest.raises(ValidationError) as err:
        builds.prepare("acme", "app", new_id(), str(theirs), first, QUOTA)
    assert err.value.details["fields"][0]["field"] == "source"
    for inside in (tmp_path / "data" / "local.key", tmp_path / "runtime", theirs.parent / ".." / "app"):
        with pytest.raises(ValidationError):
            builds.check_source(str(inside))
    builds.check_source(str(src))  # a repository of one's own
    builds.check_source("https://github.com/acme/app.git")


def test_read_manifest(tmp_path: Path, repo: tuple[Path, str, str]) -> None:
    src, first, _ = repo
    artifacts = GitArtifacts(tmp_path / "artifacts")
    path, _ = artifacts.prepare("ns", "app", "d1", str(src), first)
    text = read_manifest(path)
    assert text is not None
    assert [s.name for s in load_manifest(text, QUOTA, root=path)] == ["app"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert read_manifest(empty) is None
    (empty / "micro.yaml").symlink_to("/etc/hostname")
    with pytest.raises(ValidationError, match="inside the repository"):
        read_manifest(empty)


# --------------------------------------------------------------------------- the example service


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_example_repository_deploys_and_serves(tmp_path: Path) -> None:
    target = tmp_path / "hello"
    made = subprocess.run(
        ["bash", str(ROOT / "examples" / "make-example-repo.sh"), str(target)],
        env=GIT_ENV,
        capture_output=True,
        text=True,
        check=True,
    )
    printed_path, printed_sha = made.stdout.split()
    assert Path(printed_path) == target
    assert git(target, "rev-parse", "HEAD") == printed_sha
    assert git(target, "status", "--porcelain") == ""
    # It refuses to overwrite.
    again = subprocess.run(
        ["bash", str(ROOT / "examples" / "make-example-repo.sh"), str(target)], capture_output=True, text=True
    )
    assert again.returncode != 0

    artifacts = GitArtifacts(tmp_path / "artifacts")
    path, sha = artifacts.prepare("acme", "hello", new_id(), str(target), "HEAD")
    assert sha == printed_sha
    text = read_manifest(path)
    assert text is not None
    [hello] = load_manifest(text, QUOTA, root=path)
    assert hello.name == "hello"
    assert hello.command == ("python3", "server.py")
    assert hello.health_path == "/health"

    port = free_port()
    env = {
        **os.environ,
        **hello.env,
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "MICRO_VERSION": sha[:12],
        "MICRO_NAMESPACE": "acme",
    }
    argv = [sys.executable if hello.command[0] == "python3" else hello.command[0], *hello.command[1:]]
    proc = subprocess.Popen(argv, cwd=path / hello.path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 15
        status = None
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{hello.health_path}", timeout=2) as response:
                    status, body = response.status, response.read()
                break
            except OSError:
                assert proc.poll() is None, "the example server exited"
                time.sleep(0.1)
        assert status == 200
        assert body == b"ok"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
            info = json.loads(response.read())
        assert info == {
            "service": "hello",
            "version": sha[:12],
            "namespace": "acme",
            "greeting": "hi from micro.yaml",
        }
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
