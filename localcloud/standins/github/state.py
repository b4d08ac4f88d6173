"""The GitHub stand-in's model: users, organizations, teams and memberships, the App and its
installations and tokens, OAuth codes, webhook deliveries, repositories, deployments and statuses, all in
:class:`GitHubState` (guarded by :attr:`GitHubStandIn.lock`), built from ``seed.json`` (or a seed of the same
shape) by :meth:`GitHubState.from_seed`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from localcloud.standins.github.common import (
    CREATED_AT,
    DEFAULT_APP,
    DEVICE_INTERVAL,
    _node_id,
    _slugify,
    default_token,
)


@dataclass
class User:
    id: int
    login: str
    name: str | None = None
    email: str | None = None
    type: str = "User"
    site_admin: bool = False
    created_at: str = CREATED_AT


@dataclass
class OrgMembership:
    role: str  # "admin" | "member"
    state: str = "active"  # "active" | "pending"
    public: bool = False


@dataclass
class TeamMembership:
    role: str  # "member" | "maintainer"
    state: str = "active"  # "active" | "pending"


@dataclass
class Team:
    id: int
    org: str  # the organization's login
    slug: str
    name: str
    description: str | None = None
    privacy: str = "closed"  # "closed" | "secret"
    permission: str = "pull"
    members: dict[str, TeamMembership] = field(default_factory=dict)  # by lower-case login
    created_at: str = CREATED_AT


@dataclass
class Org:
    id: int
    login: str
    name: str | None = None
    description: str | None = None
    members: dict[str, OrgMembership] = field(default_factory=dict)  # by lower-case login
    teams: dict[str, Team] = field(default_factory=dict)  # by slug
    created_at: str = CREATED_AT
    default_repository_permission: str = "read"  # what every member may do on the org's repositories


@dataclass
class App:
    """The GitHub App the platform is: its ids, OAuth client credentials and webhook settings."""

    id: int
    slug: str
    name: str
    client_id: str
    client_secret: str
    webhook_secret: str
    owner: str | None = None  # the owning organization's login
    description: str = ""
    external_url: str = "http://127.0.0.1:8000"
    callback_url: str | None = None  # used when the authorize request names no redirect_uri
    permissions: dict[str, str] = field(default_factory=dict)
    events: list[str] = field(default_factory=list)
    hook_id: int = 424201
    bot_user_id: int = 9004242
    created_at: str = CREATED_AT

    @property
    def bot(self) -> User:
        """The app's bot user, the actor of what an installation token does."""
        return User(id=self.bot_user_id, login=f"{self.slug}[bot]", type="Bot")


class _Node:
    """A record GitHub gives a global ``node_id`` (of its kind and id)."""

    id: int
    node_kind: ClassVar[str]

    @property
    def node_id(self) -> str:
        return _node_id(self.node_kind, self.id)


@dataclass
class Installation(_Node):
    id: int
    account: str  # the organization's login
    permissions: dict[str, str]
    events: list[str]
    repository_selection: str = "all"
    created_at: str = CREATED_AT
    suspended_at: str | None = None
    repository_ids: list[int] = field(default_factory=list)  # when repository_selection is "selected"

    node_kind: ClassVar[str] = "IntegrationInstallation"


@dataclass
class InstallationToken:
    installation_id: int
    expires_at: datetime
    permissions: dict[str, str]


@dataclass
class DeviceCode:
    device_code: str
    user_code: str
    client_id: str
    scope: str
    expires_at: datetime
    interval: int = DEVICE_INTERVAL
    status: str = "pending"  # "pending" | "approved" | "denied"
    login: str | None = None
    last_poll: datetime | None = None


@dataclass
class AuthCode:
    code: str
    client_id: str
    login: str
    redirect_uri: str
    expires_at: datetime


@dataclass
class Delivery:
    """One webhook the stand-in sent (or tried to), for the app's deliveries API."""

    id: int
    guid: str
    event: str
    action: str | None
    installation_id: int | None
    url: str
    body: bytes
    redelivery: bool = False
    delivered_at: str = ""
    duration: float = 0.0
    status: str = "pending"
    status_code: int = 0
    request_headers: dict[str, str] = field(default_factory=dict)
    response_headers: dict[str, str] = field(default_factory=dict)
    response_body: str = ""
    repository_id: int | None = None

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "guid": self.guid,
            "delivered_at": self.delivered_at,
            "redelivery": self.redelivery,
            "duration": self.duration,
            "status": self.status,
            "status_code": self.status_code,
            "event": self.event,
            "action": self.action,
            "installation_id": self.installation_id,
            "repository_id": self.repository_id,
            "throttled_at": None,
        }


@dataclass
class Repo(_Node):
    """A repository: its metadata here, its git data in a bare repository under the stand-in's ``repos_dir``."""

    id: int
    owner: str  # the owning organization's or user's login
    name: str
    private: bool = True
    default_branch: str = "main"
    description: str | None = None
    collaborators: dict[str, str] = field(default_factory=dict)  # lower-case login -> admin|maintain|push|triage|pull
    teams: dict[str, str] = field(default_factory=dict)  # team slug -> permission
    created_at: str = CREATED_AT
    pushed_at: str = CREATED_AT

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    node_kind: ClassVar[str] = "Repository"


@dataclass
class Deployment:
    id: int
    repo_id: int
    sha: str
    ref: str
    task: str
    environment: str
    original_environment: str
    description: str | None
    payload: Any
    transient_environment: bool
    production_environment: bool
    creator: User
    via_app: bool
    created_at: str


@dataclass
class DeploymentStatus:
    id: int
    deployment_id: int
    state: str
    description: str
    environment: str
    log_url: str
    environment_url: str
    creator: User
    via_app: bool
    created_at: str


@dataclass
class CommitStatus:
    id: int
    repo_id: int
    sha: str
    state: str
    target_url: str | None
    description: str | None
    context: str
    creator: User
    created_at: str


@dataclass
class LoggedRequest:
    method: str
    path: str
    query: dict[str, str]
    status: int
    user: str | None
    at: str


@dataclass
class GitHubState:
    users: dict[str, User] = field(default_factory=dict)  # by lower-case login
    orgs: dict[str, Org] = field(default_factory=dict)  # by lower-case login
    tokens: dict[str, str] = field(default_factory=dict)  # token -> lower-case login
    requests: list[LoggedRequest] = field(default_factory=list)
    rate_used: dict[str, int] = field(default_factory=dict)  # identity -> calls this window
    app: App | None = None
    installations: dict[int, Installation] = field(default_factory=dict)
    installation_tokens: dict[str, InstallationToken] = field(default_factory=dict)
    device_codes: dict[str, DeviceCode] = field(default_factory=dict)  # by device_code
    auth_codes: dict[str, AuthCode] = field(default_factory=dict)
    deliveries: list[Delivery] = field(default_factory=list)
    repos: dict[int, Repo] = field(default_factory=dict)  # by id
    moved: dict[str, int] = field(default_factory=dict)  # an old lower-case full name -> the repository id
    deployments: dict[int, Deployment] = field(default_factory=dict)
    deployment_statuses: list[DeploymentStatus] = field(default_factory=list)
    commit_statuses: list[CommitStatus] = field(default_factory=list)

    @classmethod
    def from_seed(cls, seed: Mapping[str, Any]) -> GitHubState:
        state = cls()
        for u in seed.get("users", []):
            user = User(
                id=int(u["id"]),
                login=u["login"],
                name=u.get("name"),
                email=u.get("email"),
                type=u.get("type", "User"),
                site_admin=bool(u.get("site_admin", False)),
            )
            state.users[user.login.lower()] = user
            state.tokens[u.get("token") or default_token(user.login)] = user.login.lower()
        for o in seed.get("orgs", []):
            org = Org(
                id=int(o["id"]),
                login=o["login"],
                name=o.get("name"),
                description=o.get("description"),
                default_repository_permission=o.get("default_repository_permission", "read"),
            )
            for login, role in o.get("members", {}).items():
                state.user(login)  # must exist
                org.members[login.lower()] = OrgMembership(role=role, public=login in o.get("public_members", []))
            for t in o.get("teams", []):
                team = Team(
                    id=int(t["id"]),
                    org=org.login,
                    slug=t.get("slug") or _slugify(t["name"]),
                    name=t["name"],
                    description=t.get("description"),
                    privacy=t.get("privacy", "closed"),
                    permission=t.get("permission", "pull"),
                )
                for login, role in t.get("members", {}).items():
                    if login.lower() not in org.members:
                        raise ValueError(f"seed: {login} is in team {team.slug} but not in organization {org.login}")
                    team.members[login.lower()] = TeamMembership(role=role)
                org.teams[team.slug] = team
            state.orgs[org.login.lower()] = org
        a = {**DEFAULT_APP, **seed.get("app", {})}
        state.app = App(
            id=int(a["id"]),
            slug=a["slug"],
            name=a.get("name", a["slug"]),
            client_id=a["client_id"],
            client_secret=a["client_secret"],
            webhook_secret=a["webhook_secret"],
            owner=a.get("owner") or next((o.login for o in state.orgs.values()), None),
            description=a.get("description", ""),
            external_url=a.get("external_url", "http://127.0.0.1:8000"),
            callback_url=a.get("callback_url"),
            permissions=dict(a.get("permissions", {})),
            events=list(a.get("events", [])),
            hook_id=int(a.get("hook_id", 424201)),
            bot_user_id=int(a.get("bot_user_id", 9004242)),
        )
        for i in seed.get("installations", []):
            state.org(i["account"])  # must exist
            installation = Installation(
                id=int(i["id"]),
                account=state.org(i["account"]).login,
                permissions=dict(i.get("permissions", state.app.permissions)),
                events=list(i.get("events", state.app.events)),
                repository_selection=i.get("repository_selection", "all"),
            )
            state.installations[installation.id] = installation
        return state

    def user(self, login: str) -> User:
        try:
            return self.users[login.lower()]
        except KeyError:
            raise KeyError(f"no user {login!r}") from None

    def org(self, login: str) -> Org:
        try:
            return self.orgs[login.lower()]
        except KeyError:
            raise KeyError(f"no organization {login!r}") from None

    def team(self, org: str, slug: str) -> Team:
        try:
            return self.org(org).teams[slug.lower()]
        except KeyError:
            raise KeyError(f"no team {slug!r} in {org!r}") from None

    def team_by_id(self, team_id: int) -> Team | None:
        for org in self.orgs.values():
            for team in org.teams.values():
                if team.id == team_id:
                    return team
        return None

    def org_by_id(self, org_id: int) -> Org | None:
        return next((o for o in self.orgs.values() if o.id == org_id), None)

    def installation_for(self, org: str) -> Installation | None:
        return next((i for i in self.installations.values() if i.account.lower() == org.lower()), None)

    def repo(self, owner: str, name: str) -> Repo:
        wanted = f"{owner}/{name}".lower()
        found = next((r for r in self.repos.values() if r.full_name.lower() == wanted), None)
        if found is None:
            raise KeyError(f"no repository {owner}/{name}")
        return found
