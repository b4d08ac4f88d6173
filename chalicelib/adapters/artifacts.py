"""Deployment artifacts: the files of a service repository at exactly one commit, on local disk.

``GitArtifacts(root).prepare(namespace, service, deployment_id, source, commit)`` leaves a checkout at
``root/<namespace>/<service>/<deployment_id>/`` (files only, no ``.git``) and returns it with the full
commit sha; the sha is also recorded next to it, in ``<deployment_id>.sha``.

How the checkout is made (one way for a local path, a ``file://`` URL and an ``http(s)://`` URL):

1. ``git ls-remote <source>``: is the repository there at all (a missing one is a ValidationError naming
   the source), and, for a ref name, which sha it points at;
2. in a fresh ``git init`` directory, ``git fetch --depth 1 <source> <full sha>``: with protocol v2 (forced
   here) a server serves any commit by sha, and for local sources ``uploadpack.allowAnySHA1InWant`` is
   passed down to the spawned ``upload-pack``;
3. if that fails (an abbreviated sha, an old v0-only server), a full fetch of the branches and tags, then
   ``git rev-parse <commit>^{commit}`` (an unknown commit is a ValidationError naming it);
4. ``git checkout --detach``, then ``.git`` is removed and the directory renamed into place atomically.

git runs without a shell, with a timeout, with ``GIT_TERMINAL_PROMPT=0`` and no inherited ``GIT_*``
variables, and only over the file, http and https transports (``GIT_ALLOW_PROTOCOL``: no ``ext::``, no
ssh). Error messages carry no git output beyond a short, credential-free excerpt.

After each prepare the service keeps its newest ``keep`` artifacts (deployment ids are ULIDs, so their
lexical order is their time order) plus any ids in ``protect`` (the current and last good deployments).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Collection, Iterable, Sequence
from pathlib import Path
from urllib.parse import unquote, urlsplit

from chalicelib.adapters.manifest_yaml import MAX_MANIFEST_BYTES, load_manifest
from chalicelib.domain.errors import ConflictError, DependencyUnavailableError, ValidationError
from chalicelib.domain.manifest import MANIFEST_FILE
from chalicelib.domain.redaction import redact

__all__ = ["GitArtifacts", "load_manifest", "read_manifest", "refuse_platform_paths"]

FULL_SHA = re.compile(r"^[0-9a-fA-F]{40}$")
SHORT_SHA = re.compile(r"^[0-9a-fA-F]{7,40}$")
REF_NAME = re.compile(r"^[A-Za-z0-9._/-]+$")
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
ALLOWED_SCHEMES = ("file", "http", "https")
MAX_ERROR_CHARS = 200


class GitArtifacts:
    def __init__(self, root: Path, keep: int = 5, *, timeout: float = 120.0, git: str = "git") -> None:
        if keep < 1:
            raise ValueError("keep must be at least 1")
        self.root = Path(root)
        self.keep = keep
        self.timeout = timeout
        self.git = git

    # ------------------------------------------------------------------ public

    def prepare(
        self,
        namespace: str,
        service: str,
        deployment_id: str,
        source: str,
        commit: str,
        *,
        protect: Collection[str] = (),
    ) -> tuple[Path, str]:
        """Check ``commit`` (a 7-40 hex sha or a ref name such as ``HEAD``, ``main``, ``v1.2``) of
        ``source`` out into this deployment's directory; returns ``(path, full sha)``. Calling it again
        for the same deployment returns the artifact already made (a retried deploy step)."""
        directory = self._directory(namespace, service, deployment_id)
        commit = _check_commit(commit)
        source_arg, shown = _check_source(source)
        existing = self._existing(directory, deployment_id, commit)
        if existing is not None:
            return directory, existing
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.root.chmod(0o700)  # every namespace's code: this user's only
        directory.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{deployment_id}.", suffix=".tmp", dir=directory.parent))
        try:
            sha = self._checkout(work, source_arg, shown, commit)
            shutil.rmtree(work / ".git")
            try:
                work.rename(directory)
            except OSError:  # made meanwhile by a concurrent call for the same deployment
                existing = self._existing(directory, deployment_id, commit)
                if existing is None:
                    raise
                return directory, existing
            _sha_file(directory).write_text(sha + "\n")
        finally:
            if work.exists():
                shutil.rmtree(work, ignore_errors=True)
        self.prune(namespace, service, protect=(*protect, deployment_id))
        return directory, sha

    def exists(self, namespace: str, service: str, deployment_id: str) -> Path | None:
        """The artifact's directory when it is complete, else None."""
        directory = self._directory(namespace, service, deployment_id)
        return directory if directory.is_dir() and _sha_file(directory).is_file() else None

    def commit_of(self, namespace: str, service: str, deployment_id: str) -> str | None:
        """The full sha an artifact was made from."""
        directory = self.exists(namespace, service, deployment_id)
        return _sha_file(directory).read_text().strip() if directory is not None else None

    def deployments(self, namespace: str, service: str) -> list[str]:
        """Deployment ids with an artifact, oldest first."""
        base = self.root / _check_name(namespace, "namespace") / _check_name(service, "service")
        if not base.is_dir():
            return []
        return sorted(p.name for p in base.iterdir() if p.is_dir() and not p.name.startswith("."))

    def prune(self, namespace: str, service: str, *, protect: Collection[str] = ()) -> list[str]:
        """Remove all but the newest ``keep`` artifacts of a service, never those in ``protect``, and
        leftovers of interrupted prepares. Returns the removed deployment ids."""
        base = self.root / _check_name(namespace, "namespace") / _check_name(service, "service")
        if not base.is_dir():
            return []
        for leftover in base.glob(".*.tmp"):
            if leftover.is_dir() and not _is_recent(leftover):
                shutil.rmtree(leftover, ignore_errors=True)
        ids = self.deployments(namespace, service)
        removed: list[str] = []
        for deployment_id in ids[: max(0, len(ids) - self.keep)]:
            if deployment_id in protect:
                continue
            directory = base / deployment_id
            _sha_file(directory).unlink(missing_ok=True)
            shutil.rmtree(directory, ignore_errors=True)
            removed.append(deployment_id)
        for orphan in base.glob("*.sha"):  # a sha file whose directory is gone
            if not (base / orphan.name[: -len(".sha")]).is_dir():
                orphan.unlink(missing_ok=True)
        return removed

    # ------------------------------------------------------------------ internals

    def _directory(self, namespace: str, service: str, deployment_id: str) -> Path:
        return (
            self.root
            / _check_name(namespace, "namespace")
            / _check_name(service, "service")
            / _check_name(deployment_id, "deployment id")
        )

    def _existing(self, directory: Path, deployment_id: str, commit: str) -> str | None:
        if not (directory.is_dir() and _sha_file(directory).is_file()):
            if directory.exists():  # half made (no sha recorded): start again
                shutil.rmtree(directory, ignore_errors=True)
            return None
        sha = _sha_file(directory).read_text().strip()
        if SHORT_SHA.match(commit) and not sha.startswith(commit.lower()):
            raise ConflictError(
                f"deployment {deployment_id} already has an artifact of commit {sha[:12]}, not {commit}",
                {"deployment_id": deployment_id, "commit": sha},
            )
        return sha

    def _checkout(self, work: Path, source: str, shown: str, commit: str) -> str:
        listed = self._run(["ls-remote", "--", source], cwd=work, what=f"source repository {shown}")
        if listed.returncode != 0:
            raise ValidationError(
                f"source repository {shown} cannot be read: {_excerpt(listed.stderr)}",
                {"source": shown},
            )
        refs = _parse_ls_remote(listed.stdout)
        resolved = None if FULL_SHA.match(commit) else _resolve_ref(refs, commit)
        wanted = resolved or commit
        self._git(["init", "--quiet"], cwd=work, what="git init")
        fetched = False
        if FULL_SHA.match(wanted):
            shallow = self._run(
                ["fetch", "--quiet", "--no-tags", "--depth", "1", "--", source, wanted],
                cwd=work,
                what=f"fetch of {commit} from {shown}",
            )
            fetched = shallow.returncode == 0
        if not fetched:
            full = self._run(
                ["fetch", "--quiet", "--", source, "+refs/heads/*:refs/remotes/source/*", "+refs/tags/*:refs/tags/*"],
                cwd=work,
                what=f"fetch from {shown}",
            )
            if full.returncode != 0:
                raise ValidationError(
                    f"cannot fetch commit {commit} from {shown}: {_excerpt(full.stderr)}",
                    {"source": shown, "commit": commit},
                )
        target = "FETCH_HEAD" if fetched else wanted
        resolved_sha = self._run(
            ["rev-parse", "--verify", "--quiet", "--end-of-options", f"{target}^{{commit}}"],
            cwd=work,
            what="rev-parse",
        )
        sha = resolved_sha.stdout.strip()
        if resolved_sha.returncode != 0 or not FULL_SHA.match(sha):
            raise ValidationError(
                f"commit {commit} was not found in {shown}",
                {"source": shown, "commit": commit},
            )
        if resolved is None and SHORT_SHA.match(commit) and not sha.lower().startswith(commit.lower()):
            raise ValidationError(f"commit {commit} was not found in {shown}", {"source": shown, "commit": commit})
        self._git(["checkout", "--quiet", "--detach", sha], cwd=work, what=f"checkout of {sha[:12]}")
        return sha.lower()

    def _git(self, args: Sequence[str], *, cwd: Path, what: str) -> subprocess.CompletedProcess[str]:
        result = self._run(args, cwd=cwd, what=what)
        if result.returncode != 0:
            raise DependencyUnavailableError(f"{what} failed: {_excerpt(result.stderr)}")
        return result

    def _run(self, args: Sequence[str], *, cwd: Path, what: str) -> subprocess.CompletedProcess[str]:
        command = [
            self.git,
            "-c",
            "protocol.version=2",
            "-c",
            "uploadpack.allowAnySHA1InWant=true",
            "-c",
            "advice.detachedHead=false",
            "-c",
            "core.hooksPath=/dev/null",
            "-c",
            "init.defaultBranch=main",
            *args,
        ]
        try:
            return subprocess.run(  # noqa: S603 - fixed argv, validated arguments, no shell
                command,
                cwd=cwd,
                env=_git_env(),
                capture_output=True,
                text=True,
                timeout=self.timeout,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            raise DependencyUnavailableError(f"{what} timed out after {self.timeout:g}s") from None
        except FileNotFoundError:
            raise DependencyUnavailableError("git is not installed") from None


def read_manifest(path: Path) -> str | None:
    """The text of ``micro.yaml`` at an artifact's root, or None when there is none. A manifest that
    is a symlink leading out of the artifact, too large or not UTF-8 is a ValidationError."""
    base = Path(path).resolve()
    candidate = base / MANIFEST_FILE
    if not candidate.exists() and not candidate.is_symlink():
        return None
    target = candidate.resolve()
    if base not in target.parents or not target.is_file():
        raise ValidationError(f"{MANIFEST_FILE} must be a file inside the repository", {"field": MANIFEST_FILE})
    data = target.read_bytes()
    if len(data) > MAX_MANIFEST_BYTES:
        raise ValidationError(
            f"{MANIFEST_FILE} is larger than {MAX_MANIFEST_BYTES // 1024} KiB", {"field": MANIFEST_FILE}
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationError(f"{MANIFEST_FILE} is not UTF-8 text", {"field": MANIFEST_FILE}) from None


# ---------------------------------------------------------------------- helpers


def _sha_file(directory: Path) -> Path:
    return directory.with_name(directory.name + ".sha")


def _is_recent(path: Path, seconds: float = 3600.0) -> bool:
    try:
        return time.time() - path.stat().st_mtime < seconds
    except OSError:
        return False


def _check_name(value: str, what: str) -> str:
    if not isinstance(value, str) or not SAFE_NAME.match(value) or ".." in value:
        raise ValidationError(f"invalid {what} {value!r}", {"field": what.replace(" ", "_")})
    return value


def _check_commit(commit: str) -> str:
    if not isinstance(commit, str) or not commit:
        raise ValidationError("a commit or ref is required", {"field": "commit"})
    if SHORT_SHA.match(commit):
        return commit
    if (
        len(commit) > 255
        or not REF_NAME.match(commit)
        or commit.startswith(("-", "/"))
        or commit.endswith(("/", ".", ".lock"))
        or ".." in commit
        or "//" in commit
    ):
        raise ValidationError(
            f"invalid commit {commit[:60]!r}: expected a 7-40 character hex sha or a ref name", {"field": "commit"}
        )
    return commit


def _check_source(source: str) -> tuple[str, str]:
    """The argument to give git, and a form safe to show (no credentials)."""
    if not isinstance(source, str) or not source.strip() or source.startswith("-") or "\x00" in source:
        raise ValidationError("a source repository (a local path or a git URL) is required", {"field": "source"})
    if "://" in source:
        parts = urlsplit(source)
        shown = redact(source)[:200]
        if parts.scheme.lower() not in ALLOWED_SCHEMES:
            raise ValidationError(
                f"source {shown} must be a local path or a file://, http:// or https:// URL", {"field": "source"}
            )
        if parts.scheme.lower() != "file" and not parts.hostname:
            raise ValidationError(f"source {shown} has no host", {"field": "source"})
        return source, shown
    if "::" in source or re.match(r"^[^/]+:", source):  # ext::cmd, host:path (ssh) transports
        raise ValidationError(
            f"source {redact(source)[:80]!r} must be a local path or a file://, http:// or https:// URL",
            {"field": "source"},
        )
    path = Path(source).expanduser()
    shown = redact(source)[:200]
    if not path.is_dir():
        raise ValidationError(f"source repository {shown} was not found", {"source": shown})
    return str(path.resolve()), shown


def refuse_platform_paths(source: str, platform_dirs: Iterable[Path | str]) -> None:
    """Refuses (ValidationError naming the field ``source``) a local source, a path or a ``file://`` URL,
    that lies inside one of the platform's own directories: its data directory (the local stage's key
    and table), the runtime's state and the artifacts of every namespace. Symlinks and ``..`` are
    resolved first, so neither leads around the check. Git URLs of other schemes are not local."""
    if not isinstance(source, str) or "\x00" in source:
        return  # refused as malformed by _check_source
    if "://" in source:
        parts = urlsplit(source)
        if parts.scheme.lower() != "file":
            return
        raw = unquote(parts.path)
    else:
        raw = source
    try:
        target = Path(raw).expanduser().resolve()
    except (OSError, RuntimeError, ValueError):
        return
    for directory in platform_dirs:
        try:
            root = Path(directory).expanduser().resolve()
        except (OSError, RuntimeError, ValueError):
            continue
        if target == root or root in target.parents:
            raise ValidationError(
                "the source lies inside the platform's own data (its data, runtime or artifacts directory): "
                "deploy a repository of your own",
                {"fields": [{"field": "source", "message": "inside the platform's data directory"}]},
            )


def _excerpt(stderr: str) -> str:
    text = redact(" ".join(stderr.split()))
    if not text:
        return "no detail"
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 3] + "..."


def _git_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        {
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_ASKPASS": "",
            "SSH_ASKPASS": "",
            "GIT_ALLOW_PROTOCOL": "file:http:https",
            "GIT_CONFIG_NOSYSTEM": "1",
            "LC_ALL": "C",
        }
    )
    return env


def _parse_ls_remote(output: str) -> dict[str, str]:
    refs: dict[str, str] = {}
    for line in output.splitlines():
        sha, _, name = line.partition("\t")
        if FULL_SHA.match(sha) and name:
            refs.setdefault(name, sha.lower())
    return refs


def _resolve_ref(refs: dict[str, str], ref: str) -> str | None:
    """A ref name as git would resolve it against the remote's advertised refs (annotated tags peeled)."""
    for candidate in (ref, f"refs/tags/{ref}", f"refs/heads/{ref}", f"refs/{ref}"):
        if candidate in refs:
            return refs.get(candidate + "^{}", refs[candidate])
    return None
