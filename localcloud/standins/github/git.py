"""The git side of the GitHub stand-in: bare repositories on disk, driven with the ``git`` CLI.

Every repository is a bare repository (``<repos_dir>/<owner>/<name>.git``). Commits are made the way a
person makes them: in a temporary clone, then ``git push`` into the bare repository (``--force`` to rewrite a
branch). Reads (``rev-parse``, ``rev-list``, ``diff --name-status``, ``cat-file``) run on the bare repository.

git runs with no system or global configuration (``GIT_CONFIG_NOSYSTEM``, ``GIT_CONFIG_GLOBAL=/dev/null``)
so a developer's settings (hooks, signing, default branch) change nothing. The bare repositories set
``uploadpack.allowAnySHA1InWant`` so ``git fetch <clone_url> <sha>`` works, as it does on GitHub.

Only the standard library is used; nothing here knows the stand-in.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "EMPTY_TREE",
    "ZERO_SHA",
    "BareRepo",
    "CommitInfo",
    "CommitSpec",
    "FileChange",
    "GitError",
]

ZERO_SHA = "0" * 40
EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
GIT_TIMEOUT = 60.0


class GitError(RuntimeError):
    """A git command failed; ``stderr`` says why."""

    def __init__(self, args: Sequence[str], returncode: int, stderr: str) -> None:
        super().__init__(f"git {' '.join(args)} failed ({returncode}): {stderr.strip()}")
        self.returncode = returncode
        self.stderr = stderr


def _env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        {
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_TERMINAL_PROMPT": "0",
            "LC_ALL": "C",
        }
    )
    env.update(extra or {})
    return env


def git(args: Sequence[str], cwd: Path | str | None = None, env: Mapping[str, str] | None = None) -> str:
    """Runs ``git args`` and returns its stdout; raises :class:`GitError` when it fails."""
    done = subprocess.run(  # noqa: S603 - a fixed executable, arguments as a list
        ["git", *args],  # noqa: S607 - git from the PATH, as the platform's own checkout uses it
        cwd=cwd,
        env=_env(env),
        capture_output=True,
        timeout=GIT_TIMEOUT,
        check=False,
    )
    if done.returncode != 0:
        raise GitError(args, done.returncode, done.stderr.decode("utf-8", "replace"))
    return done.stdout.decode("utf-8", "replace")


@dataclass
class CommitSpec:
    """One commit to make: ``files`` maps a path to its new content (``None`` deletes it)."""

    files: Mapping[str, str | bytes | None]
    message: str
    author_name: str
    author_email: str
    date: str  # ISO 8601, used for the author and committer dates
    from_dir: Path | None = None  # copy this directory's files in first (the initial commit of a repository)


@dataclass
class FileChange:
    filename: str
    status: str  # "added" | "modified" | "removed" | "renamed" | "changed"
    previous_filename: str | None = None
    additions: int = 0
    deletions: int = 0
    blob_sha: str | None = None  # the file's blob at the newer commit (None when removed)


@dataclass
class CommitInfo:
    sha: str
    tree: str
    parents: list[str]
    author_name: str
    author_email: str
    author_date: str
    committer_name: str
    committer_email: str
    committer_date: str
    message: str
    extra: dict[str, str] = field(default_factory=dict)


_STATUS = {"A": "added", "M": "modified", "D": "removed", "R": "renamed", "C": "added", "T": "changed"}


class BareRepo:
    """A bare repository at ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def url(self) -> str:
        """``file://`` URL of the repository (what ``git clone`` takes)."""
        return self.path.resolve().as_uri()

    @classmethod
    def init(cls, path: Path, default_branch: str = "main") -> BareRepo:
        path.parent.mkdir(parents=True, exist_ok=True)
        git(["init", "--quiet", "--bare", f"--initial-branch={default_branch}", str(path)])
        git(["config", "uploadpack.allowAnySHA1InWant", "true"], cwd=path)
        git(["config", "uploadpack.allowFilter", "true"], cwd=path)
        return cls(path)

    def git(self, *args: str) -> str:
        return git(list(args), cwd=self.path)

    # ------------------------------------------------ reading

    def resolve(self, ref: str) -> str | None:
        """The full sha of a branch, tag or (abbreviated) commit sha; None when there is none."""
        if not ref or ref.startswith("-") or ".." in ref:
            return None
        for candidate in (f"refs/heads/{ref}", f"refs/tags/{ref}", ref):
            try:
                return self.git(
                    "rev-parse", "--verify", "--quiet", "--end-of-options", f"{candidate}^{{commit}}"
                ).strip()
            except GitError:
                continue
        return None

    def branch_head(self, branch: str) -> str | None:
        try:
            return self.git("rev-parse", "--verify", "--quiet", f"refs/heads/{branch}").strip()
        except GitError:
            return None

    def branches(self) -> dict[str, str]:
        """``{branch: sha}``."""
        out = self.git("for-each-ref", "--format=%(refname:short) %(objectname)", "refs/heads")
        pairs = (line.split(" ", 1) for line in out.splitlines() if line)
        return {name: sha for name, sha in pairs}

    def commit_info(self, sha: str) -> CommitInfo:
        fmt = "%H%x00%T%x00%P%x00%an%x00%ae%x00%aI%x00%cn%x00%ce%x00%cI%x00%B"
        out = self.git("show", "-s", f"--format={fmt}", sha, "--")
        parts = out.split("\x00", 9)
        return CommitInfo(
            sha=parts[0],
            tree=parts[1],
            parents=parts[2].split(),
            author_name=parts[3],
            author_email=parts[4],
            author_date=parts[5],
            committer_name=parts[6],
            committer_email=parts[7],
            committer_date=parts[8],
            message=parts[9].rstrip("\n"),
        )

    def rev_list(self, head: str, exclude: Sequence[str] = ()) -> list[str]:
        """Commits reachable from ``head`` and from none of ``exclude``, oldest first."""
        args = ["rev-list", "--reverse", "--topo-order", head, *(f"^{e}" for e in exclude if e != ZERO_SHA), "--"]
        return self.git(*args).split()

    def merge_base(self, a: str, b: str) -> str | None:
        try:
            return self.git("merge-base", a, b).strip() or None
        except GitError:
            return None

    def diff(self, base: str | None, head: str, renames: bool = True) -> list[FileChange]:
        """Files changed from ``base`` (None: the empty tree) to ``head``."""
        old = base or EMPTY_TREE
        rename_flag = "-M" if renames else "--no-renames"
        status_out = self.git("diff", "--name-status", "-z", rename_flag, old, head, "--")
        tokens = status_out.split("\x00")
        changes: list[FileChange] = []
        i = 0
        while i < len(tokens) and tokens[i]:
            code = tokens[i][0]
            if code in ("R", "C"):
                previous, name = tokens[i + 1], tokens[i + 2]
                i += 3
                change = FileChange(name, _STATUS[code], previous if code == "R" else None)
            else:
                name = tokens[i + 1]
                i += 2
                change = FileChange(name, _STATUS.get(code, "changed"))
            changes.append(change)
        numstat = self.git("diff", "--numstat", "-z", rename_flag, old, head, "--").split("\x00")
        counts: dict[str, tuple[int, int]] = {}
        i = 0
        while i < len(numstat) and numstat[i]:
            added, deleted, path = numstat[i].split("\t", 2)
            if path == "":  # a rename: the old and new names follow
                path = numstat[i + 2]
                i += 3
            else:
                i += 1
            counts[path] = (int(added) if added.isdigit() else 0, int(deleted) if deleted.isdigit() else 0)
        for change in changes:
            change.additions, change.deletions = counts.get(change.filename, (0, 0))
            if change.status != "removed":
                change.blob_sha = self.object_sha(head, change.filename)
        return changes

    def object_sha(self, ref: str, path: str) -> str | None:
        try:
            return self.git("rev-parse", "--verify", "--quiet", f"{ref}:{path}").strip()
        except GitError:
            return None

    def object_type(self, ref: str, path: str) -> str | None:
        """``blob``, ``tree`` (or ``commit`` for a submodule) at ``ref:path``; None when absent."""
        try:
            return self.git("cat-file", "-t", f"{ref}:{path}").strip()
        except GitError:
            return None

    def read_blob(self, ref: str, path: str) -> bytes:
        done = subprocess.run(  # noqa: S603
            ["git", "cat-file", "blob", f"{ref}:{path}"],  # noqa: S607
            cwd=self.path,
            env=_env(),
            capture_output=True,
            timeout=GIT_TIMEOUT,
            check=False,
        )
        if done.returncode != 0:
            raise GitError(["cat-file", "blob", f"{ref}:{path}"], done.returncode, done.stderr.decode())
        return done.stdout

    def list_tree(self, ref: str, path: str) -> list[tuple[str, str, str, int]]:
        """``(type, sha, name, size)`` of a directory's entries at ``ref``."""
        spec = f"{ref}:{path}" if path else f"{ref}^{{tree}}"
        out = self.git("ls-tree", "-l", "-z", spec)
        entries = []
        for line in out.split("\x00"):
            if not line:
                continue
            meta, name = line.split("\t", 1)
            _mode, kind, sha, size = meta.split()
            entries.append((kind, sha, name, int(size) if size.isdigit() else 0))
        return entries

    # ------------------------------------------------ writing (through a clone and a push)

    def push_commits(
        self,
        branch: str,
        commits: Sequence[CommitSpec],
        *,
        force: bool = False,
        start_point: str | None = None,
    ) -> tuple[str, str]:
        """Makes ``commits`` on ``branch`` in a temporary clone and pushes them; returns ``(before, after)``
        (``before`` is :data:`ZERO_SHA` when the branch is new). A new branch starts at ``start_point``
        (a sha; None: an orphan branch). ``force`` first drops the branch's head commit (its changes stay in
        the next commit, as ``git commit --amend``), then pushes with ``--force``."""
        if not commits:
            raise ValueError("nothing to commit")
        before = self.branch_head(branch) or ZERO_SHA
        work = Path(tempfile.mkdtemp(prefix="github-standin-clone-"))
        try:
            git(["clone", "--quiet", "--no-checkout", self.url, str(work)])
            if before != ZERO_SHA:
                git(["checkout", "--quiet", "-B", branch, before], cwd=work)
                if force:
                    info = self.commit_info(before)
                    if info.parents:
                        git(["reset", "--quiet", "--soft", info.parents[0]], cwd=work)
                    else:
                        git(["update-ref", "-d", "HEAD"], cwd=work)
            elif start_point is not None:
                git(["checkout", "--quiet", "-B", branch, start_point], cwd=work)
            else:
                git(["symbolic-ref", "HEAD", f"refs/heads/{branch}"], cwd=work)
            for spec in commits:
                self._apply(work, spec)
                env = {
                    "GIT_AUTHOR_NAME": spec.author_name,
                    "GIT_AUTHOR_EMAIL": spec.author_email,
                    "GIT_AUTHOR_DATE": spec.date,
                    "GIT_COMMITTER_NAME": spec.author_name,
                    "GIT_COMMITTER_EMAIL": spec.author_email,
                    "GIT_COMMITTER_DATE": spec.date,
                }
                git(["add", "--all"], cwd=work)
                git(["commit", "--quiet", "--allow-empty", "--no-verify", "-m", spec.message], cwd=work, env=env)
            push = ["push", "--quiet", *(["--force"] if force else []), "origin", f"HEAD:refs/heads/{branch}"]
            git(push, cwd=work)
            after = git(["rev-parse", "HEAD"], cwd=work).strip()
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return before, after

    @staticmethod
    def _apply(work: Path, spec: CommitSpec) -> None:
        if spec.from_dir is not None:
            for source in sorted(spec.from_dir.rglob("*")):
                relative = source.relative_to(spec.from_dir)
                if any(part in (".git", "__pycache__") for part in relative.parts) or not source.is_file():
                    continue
                target = work / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, target)
        for name, content in spec.files.items():
            relative = Path(name)
            if relative.is_absolute() or ".." in relative.parts or relative.parts[:1] == (".git",):
                raise ValueError(f"not a path inside the repository: {name!r}")
            target = work / relative
            if content is None:
                if target.is_file():
                    target.unlink()
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                target.write_text(content, encoding="utf-8")

    def delete_branch(self, branch: str) -> str | None:
        """Deletes a branch (as ``git push origin :branch``); returns the sha it pointed at."""
        before = self.branch_head(branch)
        if before is not None:
            self.git("update-ref", "-d", f"refs/heads/{branch}", before)
        return before
