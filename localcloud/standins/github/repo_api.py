"""REST handlers for repositories: access (a user's role, an installation's permissions), ``/repos`` and
``/repositories/{id}`` (301 after a rename or transfer), collaborators' permission, compare, contents,
commits, and ``/installation/repositories``.
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import quote, unquote

from localcloud.standins.github.api import ApiError, ApiRequest, ApiResponse, not_found
from localcloud.standins.github.common import (
    COMPARE_FILES_LIMIT,
    HTML_BASE,
    NOT_FOR_INTEGRATIONS,
    ORG_BASE_ROLES,
    PERMISSION_LEVELS,
    PERMISSION_NAMES,
    REPO_ROLES,
    ROLE_NAMES,
)
from localcloud.standins.github.state import Repo, User


class RepoApiMixin:
    """Mixed into :class:`~localcloud.standins.github.server.GitHubStandIn` (its ``state``, ``lock``, ``clock``)."""

    # ------------------------------------------------ handlers: repositories

    def repo_role(self, repo: Repo, login: str | None) -> str | None:
        """The user's role on the repository: the strongest of ownership, the organization's base
        permission for its members, direct collaboration and team grants (and ``pull`` on a public one)."""
        roles: list[str] = []
        key = (login or "").lower()
        owner = self._owner(repo.owner)
        if isinstance(owner, User):
            if owner.login.lower() == key:
                roles.append("admin")
        elif self.is_owner(owner, key):
            roles.append("admin")
        elif self.is_active_member(owner, key):
            base = ORG_BASE_ROLES.get(owner.default_repository_permission)
            if base is not None:
                roles.append(base)
            for slug, permission in repo.teams.items():
                team = owner.teams.get(slug)
                m = team.members.get(key) if team is not None else None
                if m is not None and m.state == "active":
                    roles.append(permission)
        if key in repo.collaborators:
            roles.append(repo.collaborators[key])
        if not repo.private and login:
            roles.append("pull")
        return max(roles, key=REPO_ROLES.index) if roles else None

    def _repo(self, req: ApiRequest, *, permission: str | None = None, level: str = "read") -> Repo:
        """The repository addressed by ``owner``/``repo`` or ``repository_id``, as the caller may see it
        (else 404; a renamed or transferred one answers 301 to ``/repositories/{id}``). ``permission``: the
        installation permission (``contents``, ``deployments``, ``statuses``) at ``level`` the call needs
        (403 ``Resource not accessible by integration``); a user then needs ``push`` for a write (403)."""
        repo: Repo | None
        if "repository_id" in req.params:
            repo = self.state.repos.get(int(req.params["repository_id"]))
        else:
            full = f"{req.params['owner']}/{req.params['repo']}".lower()
            repo = next((r for r in self.state.repos.values() if r.full_name.lower() == full), None)
            if repo is None and full in self.state.moved:
                moved = self.state.repos.get(self.state.moved[full])
                if moved is not None and self._sees_repo(req, moved):
                    rest = req.path.split("/", 4)[4:]  # what follows /repos/{owner}/{repo}
                    location = f"{req.api}/repositories/{moved.id}" + (f"/{rest[0]}" if rest else "")
                    raise ApiError(
                        301 if req.method == "GET" else 307,
                        "Moved Permanently",
                        url=location,
                        headers={"Location": location},
                    )
        if repo is None or not self._sees_repo(req, repo):
            raise not_found()
        if req.installation is not None:
            if (
                permission is not None
                and PERMISSION_LEVELS.get(req.permissions.get(permission, ""), 0) < (PERMISSION_LEVELS[level])
            ):
                raise ApiError(403, NOT_FOR_INTEGRATIONS)
        elif level != "read":
            role = self.repo_role(repo, req.caller.login if req.caller else None)
            if role is None or REPO_ROLES.index(role) < REPO_ROLES.index("push"):
                raise ApiError(403, "Must have push access to repository")
        return repo

    def _sees_repo(self, req: ApiRequest, repo: Repo) -> bool:
        if req.installation is not None:
            return self._covers(req.installation, repo)
        if not repo.private:
            return True
        return self.repo_role(repo, req.caller.login if req.caller else None) is not None

    def _resolve(self, repo: Repo, ref: str, status: int = 404) -> str:
        """The commit ``ref`` names, else GitHub's ``No commit found for SHA`` (404, or 422 where GitHub says so)."""
        sha = self.bare(repo).resolve(ref)
        if sha is None:
            raise ApiError(status, f"No commit found for SHA: {ref}")
        return sha

    def _repo_answer(self, req: ApiRequest, repo: Repo) -> ApiResponse:
        user = req.caller if req.installation is None else None
        role = self.repo_role(repo, user.login) if user is not None else None
        return ApiResponse(200, self.repo_body(repo, req.api, role, with_permissions=user is not None))

    def get_repo(self, req: ApiRequest) -> ApiResponse:
        return self._repo_answer(req, self._repo(req))

    def get_repo_installation(self, req: ApiRequest) -> ApiResponse:
        """``GET /repos/{owner}/{repo}/installation`` (app JWT): the installation that covers the repository."""
        full = f"{req.params['owner']}/{req.params['repo']}".lower()
        repo = next((r for r in self.state.repos.values() if r.full_name.lower() == full), None)
        installation = self.state.installation_for(repo.owner) if repo is not None else None
        if repo is None or installation is None or not self._covers(installation, repo):
            raise not_found()
        return ApiResponse(200, self.installation_body(installation, req.api))

    def get_collaborator_permission(self, req: ApiRequest) -> ApiResponse:
        repo = self._repo(req)
        user = self._user(req.params["login"])
        role = self.repo_role(repo, user.login)
        body = {
            "permission": PERMISSION_NAMES.get(role or "", "none"),
            "role_name": ROLE_NAMES.get(role or "", "none"),
            "user": {
                **self.user_simple(user, req.api),
                "permissions": self.repo_permissions(role),
                "role_name": ROLE_NAMES.get(role or "", "none"),
            },
        }
        return ApiResponse(200, body)

    def compare(self, req: ApiRequest) -> ApiResponse:
        repo = self._repo(req, permission="contents")
        spec = unquote(req.params["basehead"])
        base_ref, sep, head_ref = spec.partition("...")
        if not sep:
            base_ref, sep, head_ref = spec.partition("..")
        if not sep or not base_ref or not head_ref:
            raise not_found()
        base_ref, head_ref = base_ref.split(":")[-1], head_ref.split(":")[-1]  # "owner:branch" on one repository
        bare = self.bare(repo)
        base, head = bare.resolve(base_ref), bare.resolve(head_ref)
        if base is None or head is None:
            raise not_found()
        merge_base = bare.merge_base(base, head)
        if merge_base is None:
            raise ApiError(404, f"No common ancestor between {base_ref} and {head_ref}.")
        ahead = bare.rev_list(head, [merge_base])
        behind = bare.rev_list(base, [merge_base])
        status = "identical" if base == head else "ahead" if not behind else "behind" if not ahead else "diverged"
        html = f"{HTML_BASE}/{repo.full_name}"
        commits = [self.commit_body(repo, sha, req.api, with_files=False) for sha in ahead[:250]]
        body = {
            "url": f"{req.api}/repos/{repo.full_name}/compare/{base_ref}...{head_ref}",
            "html_url": f"{html}/compare/{base_ref}...{head_ref}",
            "permalink_url": f"{html}/compare/{repo.owner}:{base[:7]}...{repo.owner}:{head[:7]}",
            "diff_url": f"{html}/compare/{base_ref}...{head_ref}.diff",
            "patch_url": f"{html}/compare/{base_ref}...{head_ref}.patch",
            "base_commit": self.commit_body(repo, base, req.api, with_files=False),
            "merge_base_commit": self.commit_body(repo, merge_base, req.api, with_files=False),
            "status": status,
            "ahead_by": len(ahead),
            "behind_by": len(behind),
            "total_commits": len(ahead),
            "commits": commits,
            # GitHub's docs, "Compare two commits": the list of changed files "includes up to 300 changed files
            # for the entire comparison" (and nothing in the answer says it was cut).
            "files": self.files_body(repo, merge_base, head, req.api)[:COMPARE_FILES_LIMIT],
        }
        return ApiResponse(200, body)

    def get_contents(self, req: ApiRequest) -> ApiResponse:
        repo = self._repo(req, permission="contents")
        path = unquote(req.params.get("path") or "").strip("/")
        bare = self.bare(repo)
        ref = req.arg("ref") or repo.default_branch
        sha = bare.resolve(ref)
        if sha is None:
            raise ApiError(404, f"No commit found for the ref {ref}")
        kind = bare.object_type(sha, path) if path else "tree"
        r = f"{req.api}/repos/{repo.full_name}"
        html = f"{HTML_BASE}/{repo.full_name}"

        def entry(kind: str, blob: str, name: str, at: str, size: int) -> dict[str, Any]:
            shaped = "dir" if kind == "tree" else "file"
            self_url = f"{r}/contents/{quote(at)}?ref={quote(ref)}"
            git_url = f"{r}/git/{'trees' if kind == 'tree' else 'blobs'}/{blob}"
            html_url = f"{html}/{'tree' if kind == 'tree' else 'blob'}/{ref}/{quote(at)}"
            return {
                "type": shaped,
                "size": size if shaped == "file" else 0,
                "name": name,
                "path": at,
                "sha": blob,
                "url": self_url,
                "git_url": git_url,
                "html_url": html_url,
                "download_url": f"{html}/raw/{ref}/{quote(at)}" if shaped == "file" else None,
                "_links": {"self": self_url, "git": git_url, "html": html_url},
            }

        if kind == "blob":
            data = bare.read_blob(sha, path)
            blob = bare.object_sha(sha, path) or ""
            body = entry("blob", blob, path.rsplit("/", 1)[-1], path, len(data))
            body["encoding"] = "base64"
            body["content"] = base64.encodebytes(data).decode()  # GitHub's: base64 in lines of 60 with "\n"
            return ApiResponse(200, body)
        if kind == "tree":
            items = [
                entry(k, blob, name, f"{path}/{name}" if path else name, size)
                for k, blob, name, size in bare.list_tree(sha, path)
            ]
            return ApiResponse(200, sorted(items, key=lambda i: (i["type"] != "dir", i["name"])))
        raise not_found()

    def get_commit(self, req: ApiRequest) -> ApiResponse:
        repo = self._repo(req, permission="contents")
        sha = self._resolve(repo, unquote(req.params["ref"]), 422)
        return ApiResponse(200, self.commit_body(repo, sha, req.api))

    def list_commits(self, req: ApiRequest) -> ApiResponse:
        repo = self._repo(req, permission="contents")
        ref = req.arg("sha") or repo.default_branch
        sha = self.bare(repo).resolve(ref)
        if sha is None:
            raise not_found()
        shas = list(reversed(self.bare(repo).rev_list(sha)))  # newest first
        return self.paginate(req, [self.commit_body(repo, s, req.api, with_files=False) for s in shas])

    def list_installation_repositories(self, req: ApiRequest) -> ApiResponse:
        if req.installation is None:
            raise ApiError(
                403,
                "You must authenticate with an installation access token in order to list repositories for an "
                "installation.",
            )
        repos = self.installation_repos(req.installation)
        page = self.paginate(req, [self.repo_body(r, req.api) for r in repos])
        body = {
            "total_count": len(repos),
            "repository_selection": req.installation.repository_selection,
            "repositories": page.body,
        }
        return ApiResponse(200, body, page.headers)
