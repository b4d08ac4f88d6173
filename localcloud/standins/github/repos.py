"""Repositories, the Python side (tests, the local cloud and ``localcloud.github_push``): creating,
committing, pushing, moving and deleting branches, renaming, transferring and deleting repositories, and the
installation's repository selection. Git data lives in bare repositories (:mod:`.git`); the
``github.com/{owner}/{repo}/archive/{ref}.zip`` download micro's runtime fetches is answered here too.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from localcloud.standins import RawRequest, RawResponse
from localcloud.standins.github.common import CREATED_AT, PERMISSION_LEVELS, PROJECT_ROOT, REPO_ROLES, _iso, log
from localcloud.standins.github.git import ZERO_SHA, BareRepo, CommitSpec
from localcloud.standins.github.state import Installation, Org, Repo, User
from localcloud.standins.github.webhooks import _Outgoing


class ReposMixin:
    """Mixed into :class:`~localcloud.standins.github.server.GitHubStandIn` (its ``state``, ``lock``, ``clock``)."""

    # ------------------------------------------------ repositories (git data in bare repositories)

    def _seed_repos(self, entries: Iterable[Mapping[str, Any]]) -> None:
        for entry in entries:
            from_dir = entry.get("from_dir")
            source = (PROJECT_ROOT / from_dir) if from_dir else None
            if source is not None and not source.is_dir():
                log.warning("%s: seed repository %s: no directory %s", self.name, entry.get("name"), source)
                source = None
            repo = self._create_repo(
                entry["owner"],
                entry["name"],
                private=bool(entry.get("private", True)),
                default_branch=entry.get("default_branch", "main"),
                from_dir=source,
                author_login=entry.get("author"),
                description=entry.get("description"),
                created_at=CREATED_AT,
                lazy=True,  # the git data is made when first used: a stand-in starts as fast as before
            )
            for login, permission in entry.get("collaborators", {}).items():
                self._set_collaborator(repo, login, permission)
            for slug, permission in entry.get("teams", {}).items():
                self.state.team(repo.owner, slug)  # must exist
                if permission not in REPO_ROLES:
                    raise ValueError(f"seed: team permission {permission!r} on {repo.full_name}")
                repo.teams[slug.lower()] = permission

    def repo_path(self, repo: Repo) -> Path:
        """The bare repository: ``repos_dir/<owner>/<name>.git``."""
        return self.repos_dir / repo.owner.lower() / f"{repo.name.lower()}.git"

    def _archive(self, request: RawRequest, owner: str, name: str, ref: str) -> RawResponse:
        """``GET https://github.com/{owner}/{repo}/archive/{ref}.zip``, with ``Authorization: token ...``
        for a private repository: the tree at ``ref`` as a zip whose one top directory is
        ``{repo}-{ref}/`` (what micro's runtime fetches: service/runtime/source/git/git.go
        ``checkoutGithub``). GitHub answers 302 to codeload.github.com; the stand-in answers the zip itself.
        Unknown, unreadable or no such ref: 404 ``Not Found``, as GitHub."""
        header = request.headers.get("authorization", "")
        credential = header.split(" ", 1)[1].strip() if " " in header else None
        bare = self.readable_repo(f"{owner}/{name}", credential or None)
        not_found = RawResponse(404, b"Not Found", {"Content-Type": "text/plain; charset=utf-8"})
        if bare is None:
            return not_found
        env = {
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        }
        made = subprocess.run(  # noqa: S603 - a fixed executable, arguments as a list
            ["git", "-C", str(bare), "archive", "--format=zip", f"--prefix={name}-{ref}/", f"{ref}^{{tree}}"],  # noqa: S607
            capture_output=True,
            env=env,
            timeout=120,
            check=False,
        )
        if made.returncode != 0:
            return not_found
        return RawResponse(200, made.stdout, {"Content-Type": "application/zip"})

    def readable_repo(self, full_name: str, credential: str | None) -> Path | None:
        """The bare repository of ``full_name`` when GitHub would give its contents to ``credential`` (as
        ``https://github.com/<full_name>/archive/<ref>.zip`` with ``Authorization: token <credential>``, the
        way micro's runtime fetches a source): to anyone when it is public; when private, to an unexpired
        installation token whose installation covers it with ``contents`` read, or to a user token with
        access to it. Else None (GitHub answers 404)."""
        with self.lock:
            repo = next((r for r in self.state.repos.values() if r.full_name.lower() == full_name.lower()), None)
            if repo is None:
                return None
            allowed = not repo.private
            if not allowed and credential:
                token = self.state.installation_tokens.get(credential)
                installation = self.state.installations.get(token.installation_id) if token is not None else None
                if token is not None and installation is not None:
                    allowed = (
                        token.expires_at > self.clock.now()
                        and installation.suspended_at is None
                        and self._covers(installation, repo)
                        and PERMISSION_LEVELS.get(token.permissions.get("contents", ""), 0) >= PERMISSION_LEVELS["read"]
                    )
                login = self.state.tokens.get(credential)
                if login is not None:
                    allowed = self.repo_role(repo, login) is not None
        return self.bare(repo).path if allowed else None

    def bare(self, repo: Repo) -> BareRepo:
        """The repository's git data (made now if the seeded repository was not used yet)."""
        with self.lock:
            pending = self._unmade.pop(repo.id, None)
            if pending is not None:
                self._make_git(repo, pending)
        return BareRepo(self.repo_path(repo))

    def _make_git(self, repo: Repo, spec: CommitSpec) -> None:
        path = self.repo_path(repo)
        if path.exists():  # left over in a given repos_dir: replaced
            shutil.rmtree(path)
        BareRepo.init(path, repo.default_branch).push_commits(repo.default_branch, [spec])

    def _owner(self, login: str) -> Org | User:
        org = self.state.orgs.get(login.lower())
        if org is not None:
            return org
        user = self.state.users.get(login.lower())
        if user is None:
            raise KeyError(f"no organization or user {login!r}")
        return user

    def _author(self, repo: Repo, login: str | None) -> User:
        if login is not None:
            return self.state.user(login)
        owner = self._owner(repo.owner)
        return owner if isinstance(owner, User) else self._sender(owner, None)

    @staticmethod
    def _identity(user: User) -> tuple[str, str]:
        """The git author name and e-mail of a user (GitHub's noreply address when it has none)."""
        return user.name or user.login, user.email or f"{user.id}+{user.login}@users.noreply.github.com"

    def create_repo(
        self,
        owner: str,
        name: str,
        *,
        private: bool = True,
        default_branch: str = "main",
        from_dir: Path | None = None,
        description: str | None = None,
        author_login: str | None = None,
    ) -> dict[str, Any]:
        """Creates a repository (bare git repository on disk) with one initial commit: ``from_dir``'s files
        (``.git`` and ``__pycache__`` left out), or a README. Webhook ``repository`` ``created``. Returns the
        REST shape of the repository."""
        with self.lock:
            repo = self._create_repo(
                owner,
                name,
                private=private,
                default_branch=default_branch,
                from_dir=from_dir,
                author_login=author_login,
                description=description,
                created_at=_iso(self.clock.now()),
            )
            sender = self._author(repo, author_login)
            self._emit_repository("created", repo, sender)
            return self.repo_body(repo, self.api_url)

    def _create_repo(
        self,
        owner: str,
        name: str,
        *,
        private: bool,
        default_branch: str,
        from_dir: Path | None,
        author_login: str | None,
        description: str | None,
        created_at: str,
        lazy: bool = False,
    ) -> Repo:
        account = self._owner(owner)
        if not re.fullmatch(r"[A-Za-z0-9._-]+", name) or name in (".", ".."):
            raise ValueError(f"not a repository name: {name!r}")
        if any(r.full_name.lower() == f"{account.login}/{name}".lower() for r in self.state.repos.values()):
            raise ValueError(f"repository {account.login}/{name} exists")
        repo = Repo(
            id=self._next_repo_id,
            owner=account.login,
            name=name,
            private=private,
            default_branch=default_branch,
            description=description,
            created_at=created_at,
            pushed_at=created_at,
        )
        self._next_repo_id += 1  # ids are never given twice and never change
        author = self._author(repo, author_login)
        author_name, author_email = self._identity(author)
        files: dict[str, str | bytes | None] = {} if from_dir else {"README.md": f"# {name}\n"}
        spec = CommitSpec(files, "Initial commit", author_name, author_email, created_at, from_dir=from_dir)
        if lazy:
            self._unmade[repo.id] = spec
        else:
            self._make_git(repo, spec)
        self.state.repos[repo.id] = repo
        return repo

    def repo(self, owner: str, name: str) -> Repo:
        with self.lock:
            return self.state.repo(owner, name)

    def set_collaborator(self, owner: str, name: str, login: str, permission: str | None) -> None:
        """Gives ``login`` a role on the repository (admin, maintain, push, triage, pull), or takes it (None)."""
        with self.lock:
            self._set_collaborator(self.state.repo(owner, name), login, permission)

    def _set_collaborator(self, repo: Repo, login: str, permission: str | None) -> None:
        user = self.state.user(login)
        if permission is None:
            repo.collaborators.pop(user.login.lower(), None)
            return
        if permission not in REPO_ROLES:
            raise ValueError(f"unknown repository permission {permission!r}")
        repo.collaborators[user.login.lower()] = permission

    def rename_repo(self, owner: str, name: str, new_name: str, *, actor: str | None = None) -> dict[str, Any]:
        """Renames a repository (same id; the old name answers 301 to ``/repositories/{id}``); webhook
        ``repository`` ``renamed``."""
        with self.lock:
            repo = self.state.repo(owner, name)
            if not re.fullmatch(r"[A-Za-z0-9._-]+", new_name):
                raise ValueError(f"not a repository name: {new_name!r}")
            if any(r.full_name.lower() == f"{repo.owner}/{new_name}".lower() for r in self.state.repos.values()):
                raise ValueError(f"repository {repo.owner}/{new_name} exists")
            self.bare(repo)  # the git data exists before it moves
            old_path, old_name, old_full = self.repo_path(repo), repo.name, repo.full_name
            repo.name = new_name
            self._move(old_path, self.repo_path(repo))
            self.state.moved[old_full.lower()] = repo.id
            self.state.moved.pop(repo.full_name.lower(), None)
            changes = {"repository": {"name": {"from": old_name}}}
            self._emit_repository("renamed", repo, self._author(repo, actor), changes)
            return self.repo_body(repo, self.api_url)

    def transfer_repo(self, owner: str, name: str, new_owner: str, *, actor: str | None = None) -> dict[str, Any]:
        """Moves a repository to another organization or user (same id); webhook ``repository``
        ``transferred`` (to the new owner's installation). Collaborators stay; team grants do not follow."""
        with self.lock:
            repo = self.state.repo(owner, name)
            account = self._owner(new_owner)
            if any(r.full_name.lower() == f"{account.login}/{repo.name}".lower() for r in self.state.repos.values()):
                raise ValueError(f"repository {account.login}/{repo.name} exists")
            old_account = self._owner(repo.owner)
            self.bare(repo)
            old_path, old_full = self.repo_path(repo), repo.full_name
            sender = self._author(repo, actor)
            for installation in self.state.installations.values():
                if repo.id in installation.repository_ids:
                    installation.repository_ids.remove(repo.id)
            repo.owner, repo.teams = account.login, {}
            self._move(old_path, self.repo_path(repo))
            self.state.moved[old_full.lower()] = repo.id
            self.state.moved.pop(repo.full_name.lower(), None)
            api = self.api_url
            if isinstance(old_account, Org):
                was: dict[str, Any] = {"organization": self.org_simple(old_account, api)}
            else:
                was = {"user": self.user_simple(old_account, api)}
            self._emit_repository("transferred", repo, sender, {"owner": {"from": was}})
            return self.repo_body(repo, api)

    def delete_repo(self, owner: str, name: str, *, actor: str | None = None) -> None:
        """Deletes a repository, its git data, deployments and statuses; webhook ``repository`` ``deleted``."""
        with self.lock:
            repo = self.state.repo(owner, name)
            sender = self._author(repo, actor)
            self._emit_repository("deleted", repo, sender)
            del self.state.repos[repo.id]
            self._unmade.pop(repo.id, None)
            shutil.rmtree(self.repo_path(repo), ignore_errors=True)
            self.state.moved = {k: v for k, v in self.state.moved.items() if v != repo.id}
            for installation in self.state.installations.values():
                if repo.id in installation.repository_ids:
                    installation.repository_ids.remove(repo.id)
            gone = {d.id for d in self.state.deployments.values() if d.repo_id == repo.id}
            self.state.deployments = {k: d for k, d in self.state.deployments.items() if k not in gone}
            self.state.deployment_statuses = [s for s in self.state.deployment_statuses if s.deployment_id not in gone]
            self.state.commit_statuses = [s for s in self.state.commit_statuses if s.repo_id != repo.id]

    @staticmethod
    def _move(old: Path, new: Path) -> None:
        if old == new:
            return
        new.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(old), str(new))

    def commit(
        self,
        owner: str,
        name: str,
        files: Mapping[str, str | None],
        message: str,
        branch: str | None = None,
        author_login: str = "ada",
        *,
        force: bool = False,
    ) -> str:
        """Commits ``files`` (``{path: content}``, None deletes) on ``branch`` (None: the default branch) as
        ``author_login`` and pushes, through a temporary clone and ``git push``; returns the new sha and sends
        the ``push`` webhook. A new branch starts at the default branch's head (``before`` all zeros,
        ``created: true``). ``force`` rewrites the branch: the head commit is replaced (``forced: true``)."""
        return self.push(owner, name, [(files, message)], branch, author_login, force=force)[0]

    def push(
        self,
        owner: str,
        name: str,
        commits: Iterable[tuple[Mapping[str, str | None], str]],
        branch: str | None = None,
        author_login: str = "ada",
        *,
        force: bool = False,
    ) -> tuple[str, int | None]:
        """Several commits (``[(files, message), ...]``) in one push, one ``push`` webhook. Returns the new
        head and the webhook's delivery id (None when none is sent)."""
        sha, outgoing = self._push(owner, name, commits, branch, author_login, force=force)
        return sha, outgoing.delivery_id if outgoing is not None else None

    def _push(
        self,
        owner: str,
        name: str,
        commits: Iterable[tuple[Mapping[str, str | None], str]],
        branch: str | None,
        author_login: str,
        *,
        force: bool,
    ) -> tuple[str, _Outgoing | None]:
        with self.lock:
            repo = self.state.repo(owner, name)
            branch = branch or repo.default_branch
            pusher = self.state.user(author_login)
            author_name, author_email = self._identity(pusher)
            bare = self.bare(repo)
            others = {b: sha for b, sha in bare.branches().items() if b != branch}
            start = others.get(repo.default_branch)
            date = _iso(self.clock.now())
            specs = [CommitSpec(dict(files), message, author_name, author_email, date) for files, message in commits]
            before, after = bare.push_commits(branch, specs, force=force, start_point=start)
            repo.pushed_at = date
            return after, self._emit_push(repo, branch, before, after, pusher, others)

    def move_branch(
        self, owner: str, name: str, sha: str, branch: str | None = None, author_login: str = "ada"
    ) -> int | None:
        """Points a branch at an existing commit, as ``git push --force origin <sha>:<branch>`` (a force-push
        back to an earlier commit): a ``push`` webhook with ``forced: true`` and no new ``commits``. Returns
        its delivery id (None when none is sent)."""
        with self.lock:
            repo = self.state.repo(owner, name)
            branch = branch or repo.default_branch
            pusher = self.state.user(author_login)
            bare = self.bare(repo)
            before = bare.branch_head(branch)
            if before is None:
                raise KeyError(f"no branch {branch!r} in {repo.full_name}")
            full = bare.resolve(sha)
            if full is None:
                raise KeyError(f"no commit {sha!r} in {repo.full_name}")
            others = {b: head for b, head in bare.branches().items() if b != branch}
            bare.git("update-ref", f"refs/heads/{branch}", full, before)
            repo.pushed_at = _iso(self.clock.now())
            outgoing = self._emit_push(repo, branch, before, full, pusher, others)
            return outgoing.delivery_id if outgoing is not None else None

    def delete_branch(self, owner: str, name: str, branch: str, author_login: str = "ada") -> int | None:
        """Deletes a branch (``git push origin :branch``): a ``push`` webhook with ``deleted: true``."""
        with self.lock:
            repo = self.state.repo(owner, name)
            if branch == repo.default_branch:
                raise ValueError("the default branch cannot be deleted")
            pusher = self.state.user(author_login)
            bare = self.bare(repo)
            others = {b: sha for b, sha in bare.branches().items() if b != branch}
            before = bare.delete_branch(branch)
            if before is None:
                raise KeyError(f"no branch {branch!r} in {repo.full_name}")
            outgoing = self._emit_push(repo, branch, before, ZERO_SHA, pusher, others)
            return outgoing.delivery_id if outgoing is not None else None

    def branch_sha(self, owner: str, name: str, branch: str | None = None) -> str | None:
        with self.lock:
            repo = self.state.repo(owner, name)
            return self.bare(repo).branch_head(branch or repo.default_branch)

    def add_repo_to_installation(self, installation_id: int, full_name: str, *, actor: str | None = None) -> None:
        """Selects a repository for an installation (webhook ``installation_repositories`` ``added``); nothing
        happens when the installation has all the account's repositories."""
        with self.lock:
            installation = self._installation(installation_id)
            repo = self.state.repo(*full_name.split("/", 1))
            if repo.owner.lower() != installation.account.lower():
                raise ValueError(f"{repo.full_name} is not a repository of {installation.account}")
            if self._covers(installation, repo):
                return
            installation.repository_ids.append(repo.id)
            self._emit_installation_repositories("added", installation, [repo], [], actor)

    def remove_repo_from_installation(self, installation_id: int, full_name: str, *, actor: str | None = None) -> None:
        """Deselects a repository (an ``all`` installation becomes ``selected`` with the others); webhook
        ``installation_repositories`` ``removed``. Its tokens no longer see the repository."""
        with self.lock:
            installation = self._installation(installation_id)
            repo = self.state.repo(*full_name.split("/", 1))
            if not self._covers(installation, repo):
                return
            if installation.repository_selection == "all":
                installation.repository_selection = "selected"
                installation.repository_ids = [r.id for r in self._account_repos(installation.account)]
            installation.repository_ids.remove(repo.id)
            self._emit_installation_repositories("removed", installation, [], [repo], actor)

    def drop_next_delivery(self, count: int = 1) -> None:
        """The next ``count`` webhooks are recorded as failed (``status_code`` 0, ``timed out``) and not sent,
        as when the receiver is down; ``POST /app/hook/deliveries/{id}/attempts`` (or :meth:`redeliver`)
        sends them for real."""
        with self.lock:
            self._drop_next += count

    def _account_repos(self, account: str) -> list[Repo]:
        return sorted((r for r in self.state.repos.values() if r.owner.lower() == account.lower()), key=lambda r: r.id)

    def _covers(self, installation: Installation, repo: Repo) -> bool:
        if installation.account.lower() != repo.owner.lower():
            return False
        return installation.repository_selection == "all" or repo.id in installation.repository_ids

    def installation_repos(self, installation: Installation) -> list[Repo]:
        return [r for r in self._account_repos(installation.account) if self._covers(installation, r)]
