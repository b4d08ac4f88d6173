"""JSON shapes: how GitHub's REST API renders users, organizations, teams, memberships, the App and its
installations, repositories, commits, compare files, deployments and statuses (the fields PyGithub 2.10
reads, and GitHub's ``*_url`` templates).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from localcloud.standins.github.common import HTML_BASE, REPO_ROLES, _epoch, _node_id, _utc
from localcloud.standins.github.state import (
    CommitStatus,
    Deployment,
    DeploymentStatus,
    Installation,
    Org,
    Repo,
    Team,
    User,
)


class ShapesMixin:
    """Mixed into :class:`~localcloud.standins.github.server.GitHubStandIn` (its ``state``, ``lock``, ``clock``)."""

    # ------------------------------------------------ shapes

    def user_simple(self, user: User, api: str) -> dict[str, Any]:
        u = f"{api}/users/{user.login}"
        return {
            **_account_ids("User", user.login, user.id),
            "avatar_url": _avatar_url(user.id),
            "gravatar_id": "",
            "url": u,
            "html_url": f"{HTML_BASE}/{user.login}",
            "followers_url": f"{u}/followers",
            "following_url": f"{u}/following{{/other_user}}",
            "gists_url": f"{u}/gists{{/gist_id}}",
            "starred_url": f"{u}/starred{{/owner}}{{/repo}}",
            "subscriptions_url": f"{u}/subscriptions",
            "organizations_url": f"{u}/orgs",
            "repos_url": f"{u}/repos",
            "events_url": f"{u}/events{{/privacy}}",
            "received_events_url": f"{u}/received_events",
            "type": user.type,
            "user_view_type": "public",
            "site_admin": user.site_admin,
        }

    def user_full(self, user: User, api: str) -> dict[str, Any]:
        middle = {"hireable": None, "bio": None, "twitter_username": None}
        return {**self.user_simple(user, api), **_profile(user.name, user.email, user.created_at, middle)}

    def org_simple(self, org: Org, api: str) -> dict[str, Any]:
        o = f"{api}/orgs/{org.login}"
        return {
            **_account_ids("Organization", org.login, org.id),
            "url": o,
            "repos_url": f"{o}/repos",
            "events_url": f"{o}/events",
            "hooks_url": f"{o}/hooks",
            "issues_url": f"{o}/issues",
            "members_url": f"{o}/members{{/member}}",
            "public_members_url": f"{o}/public_members{{/member}}",
            "avatar_url": _avatar_url(org.id),
            "description": org.description,
        }

    def org_full(self, org: Org, api: str) -> dict[str, Any]:
        middle = {
            "twitter_username": None,
            "is_verified": False,
            "has_organization_projects": True,
            "has_repository_projects": True,
        }
        return {
            **self.org_simple(org, api),
            **_profile(org.name, None, org.created_at, middle, {"html_url": f"{HTML_BASE}/{org.login}"}),
            "archived_at": None,
            "type": "Organization",
        }

    def team_url(self, team: Team, api: str) -> str:
        return f"{api}/organizations/{self.state.org(team.org).id}/team/{team.id}"

    def team_simple(self, team: Team, api: str) -> dict[str, Any]:
        t = self.team_url(team, api)
        return {
            "name": team.name,
            "id": team.id,
            "node_id": _node_id("Team", team.id),
            "slug": team.slug,
            "description": team.description,
            "privacy": team.privacy,
            "notification_setting": "notifications_enabled",
            "url": t,
            "html_url": f"{HTML_BASE}/orgs/{team.org}/teams/{team.slug}",
            "members_url": f"{t}/members{{/member}}",
            "repositories_url": f"{t}/repos",
            "permission": team.permission,
            "parent": None,
        }

    def team_full(self, team: Team, api: str) -> dict[str, Any]:
        return {
            **self.team_simple(team, api),
            "members_count": sum(1 for m in team.members.values() if m.state == "active"),
            "repos_count": 0,
            "created_at": team.created_at,
            "updated_at": team.created_at,
            "organization": self.org_full(self.state.org(team.org), api),
        }

    def account_simple(self, org: Org, api: str) -> dict[str, Any]:
        """An organization as an installation's ``account`` or an app's ``owner``: the simple-user shape."""
        return self.user_simple(User(id=org.id, login=org.login, type="Organization"), api)

    def installation_body(self, installation: Installation, api: str) -> dict[str, Any]:
        org = self.state.org(installation.account)
        app = self.app
        return {
            "id": installation.id,
            "client_id": app.client_id,
            "account": self.account_simple(org, api),
            "repository_selection": installation.repository_selection,
            "access_tokens_url": f"{api}/app/installations/{installation.id}/access_tokens",
            "repositories_url": f"{api}/installation/repositories",
            "html_url": f"{HTML_BASE}/organizations/{org.login}/settings/installations/{installation.id}",
            "app_id": app.id,
            "app_slug": app.slug,
            "target_id": org.id,
            "target_type": "Organization",
            "permissions": dict(installation.permissions),
            "events": list(installation.events),
            "created_at": installation.created_at,
            "updated_at": installation.created_at,
            "single_file_name": None,
            "has_multiple_single_files": False,
            "single_file_paths": [],
            "suspended_by": None,
            "suspended_at": installation.suspended_at,
        }

    def app_body(self, api: str) -> dict[str, Any]:
        app = self.app
        owner = self.state.orgs.get(app.owner.lower()) if app.owner else None
        return {
            "id": app.id,
            "slug": app.slug,
            "node_id": _node_id("Integration", app.id),
            "client_id": app.client_id,
            "owner": self.account_simple(owner, api) if owner else None,
            "name": app.name,
            "description": app.description,
            "external_url": app.external_url,
            "html_url": f"{HTML_BASE}/apps/{app.slug}",
            "created_at": app.created_at,
            "updated_at": app.created_at,
            "permissions": dict(app.permissions),
            "events": list(app.events),
            "installations_count": len(self.state.installations),
        }

    def org_membership_body(self, org: Org, login: str, api: str) -> dict[str, Any]:
        membership = org.members[login.lower()]
        user = self.state.user(login)
        return {
            "url": f"{api}/orgs/{org.login}/memberships/{user.login}",
            "state": membership.state,
            "role": membership.role,
            "organization_url": f"{api}/orgs/{org.login}",
            "organization": self.org_simple(org, api),
            "user": self.user_simple(user, api),
        }

    def team_membership_body(self, team: Team, login: str, api: str) -> dict[str, Any]:
        membership = team.members[login.lower()]
        return {
            "url": f"{self.team_url(team, api)}/memberships/{self.state.user(login).login}",
            "role": membership.role,
            "state": membership.state,
        }

    # ------------------------------------------------ shapes: repositories

    def repo_owner(self, repo: Repo, api: str) -> dict[str, Any]:
        owner = self._owner(repo.owner)
        return self.account_simple(owner, api) if isinstance(owner, Org) else self.user_simple(owner, api)

    @staticmethod
    def repo_permissions(role: str | None) -> dict[str, bool]:
        rank = REPO_ROLES.index(role) if role in REPO_ROLES else -1
        return {
            "admin": rank >= REPO_ROLES.index("admin"),
            "maintain": rank >= REPO_ROLES.index("maintain"),
            "push": rank >= REPO_ROLES.index("push"),
            "triage": rank >= REPO_ROLES.index("triage"),
            "pull": rank >= 0,
        }

    def repo_mini(self, repo: Repo) -> dict[str, Any]:
        return {
            "id": repo.id,
            "node_id": repo.node_id,
            "name": repo.name,
            "full_name": repo.full_name,
            "private": repo.private,
        }

    def repo_body(
        self, repo: Repo, api: str, role: str | None = None, with_permissions: bool = False
    ) -> dict[str, Any]:
        """The full repository shape. Offline, ``clone_url``/``git_url``/``svn_url`` are ``file://`` URLs of
        the bare repository (GitHub's are https/git URLs): ``git clone`` and ``git fetch`` take them."""
        r = f"{api}/repos/{repo.full_name}"
        html = f"{HTML_BASE}/{repo.full_name}"
        file_url = self.bare(repo).url
        body: dict[str, Any] = {
            "id": repo.id,
            "node_id": repo.node_id,
            "name": repo.name,
            "full_name": repo.full_name,
            "private": repo.private,
            "owner": self.repo_owner(repo, api),
            "html_url": html,
            "description": repo.description,
            "fork": False,
            "url": r,
            "archive_url": f"{r}/{{archive_format}}{{/ref}}",
            "branches_url": f"{r}/branches{{/branch}}",
            "collaborators_url": f"{r}/collaborators{{/collaborator}}",
            "commits_url": f"{r}/commits{{/sha}}",
            "compare_url": f"{r}/compare/{{base}}...{{head}}",
            "contents_url": f"{r}/contents/{{+path}}",
            "deployments_url": f"{r}/deployments",
            "git_commits_url": f"{r}/git/commits{{/sha}}",
            "git_refs_url": f"{r}/git/refs{{/sha}}",
            "hooks_url": f"{r}/hooks",
            "statuses_url": f"{r}/statuses/{{sha}}",
            "teams_url": f"{r}/teams",
            "trees_url": f"{r}/git/trees{{/sha}}",
            "created_at": repo.created_at,
            "updated_at": repo.pushed_at,
            "pushed_at": repo.pushed_at,
            "git_url": file_url,
            "ssh_url": f"git@github.com:{repo.full_name}.git",
            "clone_url": file_url,
            "svn_url": file_url,
            "homepage": None,
            "size": 0,
            "stargazers_count": 0,
            "watchers_count": 0,
            "language": None,
            "has_issues": True,
            "has_projects": True,
            "has_downloads": True,
            "has_wiki": True,
            "has_pages": False,
            "has_discussions": False,
            "forks_count": 0,
            "mirror_url": None,
            "archived": False,
            "disabled": False,
            "open_issues_count": 0,
            "license": None,
            "allow_forking": True,
            "is_template": False,
            "web_commit_signoff_required": False,
            "topics": [],
            "visibility": "private" if repo.private else "public",
            "forks": 0,
            "open_issues": 0,
            "watchers": 0,
            "default_branch": repo.default_branch,
        }
        if with_permissions:
            body["permissions"] = self.repo_permissions(role)
        org = self.state.orgs.get(repo.owner.lower())
        if org is not None:
            body["organization"] = self.account_simple(org, api)
        return body

    def push_repository(self, repo: Repo, api: str) -> dict[str, Any]:
        """The repository as a ``push`` payload has it: integer ``created_at``/``pushed_at``, an owner with
        ``name`` and ``email``, ``master_branch``, ``stargazers`` and ``organization`` (a login)."""
        body = self.repo_body(repo, api)
        owner = self._owner(repo.owner)
        body["owner"] = {
            "name": owner.login,
            "email": owner.email if isinstance(owner, User) else None,
            **body["owner"],
        }
        body["created_at"] = _epoch(repo.created_at)
        body["pushed_at"] = _epoch(repo.pushed_at)
        body.pop("organization", None)
        body.update({"stargazers": 0, "master_branch": repo.default_branch, "custom_properties": {}})
        if isinstance(owner, Org):
            body["organization"] = owner.login
        return body

    def commit_body(self, repo: Repo, sha: str, api: str, with_files: bool = True) -> dict[str, Any]:
        bare = self.bare(repo)
        info = bare.commit_info(sha)
        r = f"{api}/repos/{repo.full_name}"
        html = f"{HTML_BASE}/{repo.full_name}"

        def account(email: str) -> dict[str, Any] | None:
            user = self._user_by_email(email)
            return self.user_simple(user, api) if user else None

        body: dict[str, Any] = {
            "url": f"{r}/commits/{sha}",
            "sha": sha,
            "node_id": _node_id("Commit", int(sha[:8], 16)),
            "html_url": f"{html}/commit/{sha}",
            "comments_url": f"{r}/commits/{sha}/comments",
            "commit": {
                "url": f"{r}/git/commits/{sha}",
                "author": {"name": info.author_name, "email": info.author_email, "date": _utc(info.author_date)},
                "committer": {
                    "name": info.committer_name,
                    "email": info.committer_email,
                    "date": _utc(info.committer_date),
                },
                "message": info.message,
                "tree": {"url": f"{r}/git/trees/{info.tree}", "sha": info.tree},
                "comment_count": 0,
                "verification": {"verified": False, "reason": "unsigned", "signature": None, "payload": None},
            },
            "author": account(info.author_email),
            "committer": account(info.committer_email),
            "parents": [{"url": f"{r}/commits/{p}", "html_url": f"{html}/commit/{p}", "sha": p} for p in info.parents],
        }
        if with_files:
            files = self.files_body(repo, info.parents[0] if info.parents else None, sha, api)
            additions = sum(f["additions"] for f in files)
            deletions = sum(f["deletions"] for f in files)
            body["stats"] = {"total": additions + deletions, "additions": additions, "deletions": deletions}
            body["files"] = files
        return body

    def files_body(self, repo: Repo, base: str | None, head: str, api: str) -> list[dict[str, Any]]:
        r = f"{api}/repos/{repo.full_name}"
        html = f"{HTML_BASE}/{repo.full_name}"
        files = []
        for change in self.bare(repo).diff(base, head):
            entry: dict[str, Any] = {
                "sha": change.blob_sha,
                "filename": change.filename,
                "status": change.status,
                "additions": change.additions,
                "deletions": change.deletions,
                "changes": change.additions + change.deletions,
                "blob_url": f"{html}/blob/{head}/{quote(change.filename)}",
                "raw_url": f"{html}/raw/{head}/{quote(change.filename)}",
                "contents_url": f"{r}/contents/{quote(change.filename)}?ref={head}",
            }
            if change.previous_filename is not None:
                entry["previous_filename"] = change.previous_filename
            files.append(entry)
        return files

    def _deployment_urls(self, d: Deployment, api: str) -> tuple[str, str]:
        """A deployment's repository URL and its own."""
        r = f"{api}/repos/{self.state.repos[d.repo_id].full_name}"
        return r, f"{r}/deployments/{d.id}"

    def deployment_body(self, d: Deployment, api: str) -> dict[str, Any]:
        r, url = self._deployment_urls(d, api)
        return {
            "url": url,
            "id": d.id,
            "node_id": _node_id("Deployment", d.id),
            "sha": d.sha,
            "ref": d.ref,
            "task": d.task,
            "payload": d.payload,
            "original_environment": d.original_environment,
            "environment": d.environment,
            "description": d.description,
            "creator": self.user_simple(d.creator, api),
            "created_at": d.created_at,
            "updated_at": d.created_at,
            "statuses_url": f"{url}/statuses",
            "repository_url": r,
            "transient_environment": d.transient_environment,
            "production_environment": d.production_environment,
            "performed_via_github_app": self.app_body(api) if d.via_app else None,
        }

    def deployment_status_body(self, s: DeploymentStatus, api: str) -> dict[str, Any]:
        r, deployment_url = self._deployment_urls(self.state.deployments[s.deployment_id], api)
        return {
            "url": f"{deployment_url}/statuses/{s.id}",
            "id": s.id,
            "node_id": _node_id("DeploymentStatus", s.id),
            "state": s.state,
            "creator": self.user_simple(s.creator, api),
            "description": s.description,
            "environment": s.environment,
            "target_url": s.log_url,
            "created_at": s.created_at,
            "updated_at": s.created_at,
            "deployment_url": deployment_url,
            "repository_url": r,
            "environment_url": s.environment_url,
            "log_url": s.log_url,
            "performed_via_github_app": self.app_body(api) if s.via_app else None,
        }

    def commit_status_body(self, s: CommitStatus, api: str) -> dict[str, Any]:
        repo = self.state.repos[s.repo_id]
        return {
            "url": f"{api}/repos/{repo.full_name}/statuses/{s.sha}",
            "avatar_url": _avatar_url(s.creator.id),
            "id": s.id,
            "node_id": _node_id("StatusContext", s.id),
            "state": s.state,
            "description": s.description,
            "target_url": s.target_url,
            "context": s.context,
            "created_at": s.created_at,
            "updated_at": s.created_at,
            "creator": self.user_simple(s.creator, api),
        }


def _profile(
    name: str | None, email: str | None, created_at: str, middle: dict[str, Any], late: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The profile fields a full user and a full organization share, in GitHub's order: the stand-in keeps no
    profile (no company, blog, location) and counts nothing (0 repositories, gists, followers)."""
    return {
        "name": name,
        "company": None,
        "blog": "",
        "location": None,
        "email": email,
        **middle,
        "public_repos": 0,
        "public_gists": 0,
        "followers": 0,
        "following": 0,
        **(late or {}),
        "created_at": created_at,
        "updated_at": created_at,
    }


def _account_ids(kind: str, login: str, account_id: int) -> dict[str, Any]:
    """The first fields of a user's or an organization's shape."""
    return {"login": login, "id": account_id, "node_id": _node_id(kind, account_id)}


def _avatar_url(account_id: int) -> str:
    return f"https://avatars.githubusercontent.com/u/{account_id}?v=4"
