"""A GitHub stand-in: a subset of the REST API v3 under ``/api/v3`` on loopback, shaped as GitHub answers
and as PyGithub 2.10 parses it (``Github(base_url=gh.api_url, auth=Auth.Token(gh.token_for("ada")))``).

Seeded state (``seed.json`` next to this file, or the ``seed`` argument in the same shape):

- organization ``acme`` (id 1000); teams ``backend`` (id 2001) and ``frontend`` (id 2002), both ``closed``;
- ``ada`` (id 1): organization owner (org membership role ``admin``), in no team;
- ``linus`` (id 2): org member, maintainer of ``backend``;
- ``grace`` (id 3): org member, member of ``backend``;
- ``ken`` (id 4): org member, member of ``frontend``;
- ``ops`` (id 5): in no organization.

Every user has a deterministic user access token (:func:`default_token`, or ``"token"`` in the seed):
``"ghu_" + ("local" + login)[:20]`` followed by the first hex digits of ``sha256(login)``, 36 characters after
``ghu_`` as GitHub's. ``gh.token_for(login)`` gives it. ``Authorization: token X`` and ``Bearer X`` are
accepted. A missing credential on an endpoint that needs one answers 401 ``Requires authentication``, a
credential that matches no user 401 ``Bad credentials`` (on every route, as GitHub does), which PyGithub
raises as ``BadCredentialsException``.

Endpoints (under ``/api/v3``; lists paginate with ``per_page``/``page`` and a ``Link`` header):

- ``GET /user``, ``/user/orgs``, ``/user/teams``, ``/user/memberships/orgs[/{org}]``, ``/users/{login}``,
  ``/users/{login}/orgs``, ``/rate_limit``;
- ``GET /orgs/{org}``, ``/orgs/{org}/members?role=all|admin|member``, ``/orgs/{org}/members/{login}``
  (204, 404, or 302 to ``public_members`` when the caller is not a member), ``/orgs/{org}/public_members[/{login}]``,
  ``GET/PUT/DELETE /orgs/{org}/memberships/{login}`` (PUT and DELETE by an owner; DELETE also leaves the teams);
- ``GET /orgs/{org}/teams``; a team is addressed as ``/orgs/{org}/teams/{slug}``, ``/teams/{id}`` (legacy) or
  ``/organizations/{org_id}/team/{id}`` (the ``url`` GitHub gives a team, which PyGithub then uses), each
  with ``GET``, ``GET .../members?role=all|member|maintainer``, ``GET/PUT/DELETE .../members/{login}`` (legacy)
  and ``GET/PUT/DELETE .../memberships/{login}``.

Writes to a team need an organization owner or a maintainer of the team (else 403). Adding someone who is
not in the organization invites them: the org and team memberships are ``pending`` and they are not listed
as members until :meth:`GitHubStandIn.accept_invitation`.

Stand-in-only routes (outside ``/api/v3``): ``GET /_stand-in/requests`` (the request log: method, path,
query, status, authenticated login; never a credential) and ``DELETE /_stand-in/requests``.

The platform is a GitHub App; the stand-in plays GitHub's side of it (seed ``"app"``: id 4242, slug
``micro-platform``, client id ``Iv1.localplatform``; one installation, id 7001, on ``acme``):

- OAuth device flow (outside ``/api/v3``, as on github.com): ``POST /login/device/code``, polling
  ``POST /login/oauth/access_token`` with ``grant_type=urn:ietf:params:oauth:grant-type:device_code``;
  both answer form-encoded unless ``Accept: application/json``, as GitHub. The user's part is
  ``GET/POST /login/device`` (a small page), ``POST /_stand-in/device/approve {"user_code", "login"}``,
  ``POST /_stand-in/device/deny {"user_code"}``, or :meth:`GitHubStandIn.approve_device` /
  :meth:`GitHubStandIn.deny_device`. The token given is the user's token (:meth:`GitHubStandIn.token_for`).
- OAuth web flow: ``GET /login/oauth/authorize`` signs in as the user named by the ``standin_login`` cookie
  or a ``login`` query parameter (else it answers a page to pick a seeded user), redirects to
  ``redirect_uri?code=&state=``; ``POST /login/oauth/access_token`` exchanges the single-use code.
- App authentication: a fresh RSA key pair per stand-in (:attr:`GitHubStandIn.app_private_key_pem`, or
  the ``app_private_key`` argument); an RS256 JWT with ``iss`` = the app id (or client id) authenticates
  ``GET /app``, ``/app/installations[/{id}]``, ``/orgs/{org}/installation``,
  ``POST /app/installations/{id}/access_tokens`` (``ghs_`` tokens valid 1 hour), ``GET /app/hook/config``,
  ``GET /app/hook/deliveries[/{id}]``, ``POST /app/hook/deliveries/{id}/attempts``. An installation token
  reads its organization as an owner's user token would (writes need ``members: write``; ``/user``
  answers 403 ``Resource not accessible by integration``); ``GET /installation/repositories`` and
  ``DELETE /installation/token``. ``GET /user/installations`` with a user token.
- Webhooks (:mod:`localcloud.standins.github_webhooks`): with :attr:`GitHubStandIn.webhook_url` set, team and
  organization membership changes (API or Python methods), organization renames
  (:meth:`GitHubStandIn.rename_org`) and installs/uninstalls are sent signed with the
  app's webhook secret from a background thread, once (never retried), and recorded for the deliveries
  API. :meth:`GitHubStandIn.wait_for_deliveries` waits for the outbox to drain.

Repositories (seed ``"repos"``; :mod:`localcloud.standins.github_git`): each is a bare git repository at
``repos_dir/<owner>/<name>.git`` (``repos_dir``: a constructor argument, else a temporary directory removed on
:meth:`GitHubStandIn.stop`). GitHub's ``clone_url`` is https; offline it is a ``file://`` URL of the bare
repository (as are ``git_url`` and ``svn_url``), which ``git clone`` / ``git fetch <url> <sha>`` take. Ids start
at 5001 and survive a rename or transfer (the old name answers 301 to ``/repositories/{id}``). Seeded:
``acme/hello`` (5001, from ``examples/hello``; ``backend`` team: push; org members: read, org owners: admin) and
``other/elsewhere`` (5002, org ``other`` id 1001, without the app). Python: :meth:`GitHubStandIn.create_repo`,
:meth:`~GitHubStandIn.commit` / :meth:`~GitHubStandIn.push` (temporary clone + ``git push``; ``push`` webhook),
:meth:`~GitHubStandIn.move_branch` (a force-push to an existing commit), :meth:`~GitHubStandIn.delete_branch`,
:meth:`~GitHubStandIn.rename_repo`, :meth:`~GitHubStandIn.transfer_repo`,
:meth:`~GitHubStandIn.delete_repo` (``repository`` webhooks), :meth:`~GitHubStandIn.set_collaborator`,
:meth:`~GitHubStandIn.add_repo_to_installation` / :meth:`~GitHubStandIn.remove_repo_from_installation`
(``installation_repositories``), :meth:`~GitHubStandIn.drop_next_delivery`. REST: ``GET /repos/{o}/{r}`` and
``/repositories/{id}`` (every route below also under the latter), ``.../installation`` (JWT),
``.../collaborators/{login}/permission``, ``.../compare/{base}...{head}`` (at most 300 files),
``.../contents/{path}?ref=``,
``.../commits[/{ref}]``, ``.../commits/{ref}/statuses``, ``.../commits/{ref}/status``, ``POST .../statuses/{sha}``
(``statuses: write``), ``GET/POST .../deployments``, ``.../deployments/{id}``,
``GET/POST .../deployments/{id}/statuses`` (``deployments: write``; ``auto_merge`` is accepted and never merges).
Stand-in only:
``POST /_stand-in/repos`` and ``POST /_stand-in/repos/{owner}/{repo}/commits`` (used by ``localcloud.github_push``).

Every expiry (device codes, authorization codes, JWTs, installation tokens) reads the injectable ``clock``
(an object with ``now() -> datetime``, UTC by default).

To add endpoints (repositories, ...): add state to :class:`GitHubState`, a handler
method taking an :class:`ApiRequest` and returning an :class:`ApiResponse` (or raising :class:`ApiError`),
and register it in :meth:`GitHubStandIn._register_routes` with :meth:`GitHubStandIn.route`.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import logging
import os
import queue
import re
import secrets
import shutil
import string
import subprocess
import tempfile
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

import jwt
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from localcloud.standins import RawRequest, RawResponse, StandIn
from localcloud.standins import github_webhooks as hooks
from localcloud.standins.github_git import ZERO_SHA, BareRepo, CommitSpec, GitError

SEED_FILE = Path(__file__).with_name("seed.json")
API_PREFIX = "/api/v3"
# github.com/{owner}/{repo}/archive/{ref}.zip (micro's runtime fetches GitHub sources so)
ARCHIVE_PATH = re.compile(r"/([A-Za-z0-9][A-Za-z0-9-]*)/([A-Za-z0-9._-]+)/archive/([A-Za-z0-9._/-]+)\.zip")
DOCS_URL = "https://docs.github.com/rest"
HTML_BASE = "https://github.com"
CREATED_AT = "2024-01-01T00:00:00Z"
DEFAULT_PER_PAGE = 30
MAX_PER_PAGE = 100
RATE_LIMIT_AUTHENTICATED = 5000
RATE_LIMIT_ANONYMOUS = 60
JSON_TYPE = "application/json; charset=utf-8"
REDACTED_QUERY_KEYS = {"access_token", "client_secret", "token", "code", "device_code"}
FORM_TYPE = "application/x-www-form-urlencoded; charset=utf-8"
HTML_TYPE = "text/html; charset=utf-8"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
DEVICE_CODE_TTL = 900  # seconds, as GitHub's
DEVICE_INTERVAL = 5  # seconds between polls; +5 on every slow_down
AUTH_CODE_TTL = 600  # an OAuth code expires after 10 minutes
INSTALLATION_TOKEN_TTL = 3600
JWT_MAX_LIFETIME = 600  # GitHub refuses an app JWT whose exp is more than 10 minutes ahead
JWT_CLOCK_DRIFT = 60
JWT_UNDECODABLE = "A JSON web token could not be decoded"
NOT_FOR_INTEGRATIONS = "Resource not accessible by integration"
DEVICE_ERRORS_URI = "https://docs.github.com/developers/apps/authorizing-oauth-apps#error-codes-for-the-device-flow"
OAUTH_ERRORS_URI = (
    "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors"
)
OAUTH_ERRORS = {
    "authorization_pending": "The authorization request is still pending.",
    "slow_down": "Too many requests have been made in the same timeframe.",
    "expired_token": "The `device_code` has expired.",
    "access_denied": "The authorization request was denied.",
    "incorrect_client_credentials": "The client_id and/or client_secret passed are incorrect.",
    "incorrect_device_code": "The device_code provided is not valid.",
    "unsupported_grant_type": "The grant type is not supported.",
    "bad_verification_code": "The code passed is incorrect or expired.",
    "redirect_uri_mismatch": "The redirect_uri MUST match the registered callback URL for this application.",
}
USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ0123456789"  # no vowels: no words, no O/0 or I/1 confusion
TOKEN_ALPHABET = string.ascii_letters + string.digits
PERMISSION_LEVELS = {"read": 1, "write": 2, "admin": 3}
PROJECT_ROOT = Path(__file__).resolve().parents[2]  # seed "from_dir" paths are relative to it
REPO_ID_START = 5001
REPO_ROLES = ("pull", "triage", "push", "maintain", "admin")  # weakest first
ORG_BASE_ROLES = {"none": None, "read": "pull", "write": "push", "admin": "admin"}
PERMISSION_NAMES = {"admin": "admin", "maintain": "write", "push": "write", "triage": "read", "pull": "read"}
ROLE_NAMES = {"admin": "admin", "maintain": "maintain", "push": "write", "triage": "triage", "pull": "read"}
# GitHub's docs: the push payload's commits array "includes a maximum of 20 commits ... This limit is applied to
# timeline events only and isn't applied to webhook deliveries", whose cap is 2048 commits. Set
# ``push_commits_limit`` on a stand-in to 20 to see a timeline-style cut-off.
PUSH_COMMITS_LIMIT = 2048
COMPARE_FILES_LIMIT = 300  # the compare API's changed files ("Compare two commits")
DEPLOYMENT_STATES = ("error", "failure", "inactive", "in_progress", "queued", "pending", "success")
COMMIT_STATES = ("error", "failure", "pending", "success")
DEFAULT_APP: dict[str, Any] = {
    "id": 4242,
    "slug": "micro-platform",
    "name": "Micro Platform (local)",
    "client_id": "Iv1.localplatform",
    "client_secret": "0c1a1d5ec2e7f4b6a9d8c3b2a1f0e9d8c7b6a5f4",
    "webhook_secret": "local-webhook-secret",
}

log = logging.getLogger("localcloud.standins.github")


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware."""
        ...


class UtcClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _random_token(prefix: str) -> str:
    return prefix + "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(36))


def default_token(login: str) -> str:
    """The deterministic user access token of a seeded user: ``ghu_`` and 36 base-62 characters."""
    prefix = ("local" + "".join(c for c in login if c.isalnum()))[:20]
    digest = hashlib.sha256(login.lower().encode()).hexdigest()
    return "ghu_" + prefix + digest[: 36 - len(prefix)]


def _node_id(kind: str, number: int) -> str:
    return base64.b64encode(f"0{len(kind)}:{kind}{number}".encode()).decode()


# ---------------------------------------------------------------- state


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


@dataclass
class Installation:
    id: int
    account: str  # the organization's login
    permissions: dict[str, str]
    events: list[str]
    repository_selection: str = "all"
    created_at: str = CREATED_AT
    suspended_at: str | None = None
    repository_ids: list[int] = field(default_factory=list)  # when repository_selection is "selected"

    @property
    def node_id(self) -> str:
        return _node_id("IntegrationInstallation", self.id)


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
class Repo:
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

    @property
    def node_id(self) -> str:
        return _node_id("Repository", self.id)


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


def _slugify(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


# ---------------------------------------------------------------- request / response


class ApiError(Exception):
    """An error answer in GitHub's shape: ``{"message", "documentation_url", "status"}``."""

    def __init__(self, status: int, message: str, *, headers: Mapping[str, str] | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return {"message": self.message, **self.extra, "documentation_url": DOCS_URL, "status": str(self.status)}


def not_found() -> ApiError:
    return ApiError(404, "Not Found")


@dataclass
class ApiRequest:
    method: str
    path: str  # under /api/v3, without the query
    query: list[tuple[str, str]]
    headers: Mapping[str, str]
    body: bytes
    base: str  # "http://host:port" as the client addressed us
    caller: User | None  # the user, or the app's bot for an installation token
    params: dict[str, str] = field(default_factory=dict)
    installation: Installation | None = None  # set when an installation token authenticated
    permissions: dict[str, str] = field(default_factory=dict)  # the installation token's

    @property
    def api(self) -> str:
        return self.base + API_PREFIX

    def arg(self, name: str, default: str | None = None) -> str | None:
        return next((v for k, v in self.query if k == name), default)

    def json(self) -> Any:
        if not self.body.strip():
            return {}
        try:
            return json.loads(self.body)
        except ValueError:
            raise ApiError(400, "Problems parsing JSON") from None


@dataclass
class ApiResponse:
    status: int = 200
    body: Any = None  # JSON-able; None sends no body
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[ApiRequest], ApiResponse]


@dataclass
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    auth: bool  # needs an authenticated caller
    app: bool = False  # needs an app JWT


@dataclass
class Identity:
    """Who a credential is: nobody, a user, an app installation (its bot user), or the app itself (JWT)."""

    user: User | None = None
    installation: Installation | None = None
    permissions: dict[str, str] = field(default_factory=dict)
    app: bool = False


@dataclass
class _Outgoing:
    url: str
    event: str
    action: str | None
    installation_id: int | None
    body: bytes
    guid: str
    redelivery: bool
    repository_id: int | None = None
    delivery_id: int = 0
    drop: bool = False  # record as timed out without sending (drop_next_delivery)


# ---------------------------------------------------------------- the stand-in


class GitHubStandIn(StandIn):
    name = "GitHub stand-in"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: Mapping[str, Any] | None = None,
        clock: Clock | None = None,
        app_private_key: bytes | str | None = None,
        webhook_url: str | None = None,
        repos_dir: Path | str | None = None,
        webhook_secret: str | None = None,
    ) -> None:
        super().__init__(host, port)
        if seed is None:
            seed = json.loads(SEED_FILE.read_text())
        self.lock = threading.RLock()
        self.clock: Clock = clock or UtcClock()
        self.state = GitHubState.from_seed(seed)
        if webhook_secret:  # the App's webhook secret, as its owner sets it (else the seed's)
            assert self.state.app is not None
            self.state.app.webhook_secret = webhook_secret
        self.rate_window_reset = int(time.time()) + 3600
        self.routes: list[Route] = []
        if app_private_key is None:
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        else:
            pem = app_private_key.encode() if isinstance(app_private_key, str) else app_private_key
            loaded = serialization.load_pem_private_key(pem, password=None)
            if not isinstance(loaded, rsa.RSAPrivateKey):
                raise ValueError("the app's private key must be an RSA key")
            key = loaded
        # PKCS#1 ("BEGIN RSA PRIVATE KEY"), as the .pem file GitHub lets an app owner download.
        self.app_private_key_pem: bytes = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        )
        self.app_public_key_pem: bytes = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self._app_public_key = key.public_key()
        self.webhook_url: str | None = webhook_url  # None: send no webhooks
        self.webhook_timeout: float = hooks.DEFAULT_TIMEOUT
        self._outbox: queue.Queue[_Outgoing | None] | None = None
        self._outbox_lock = threading.Lock()
        self._pending = 0
        self._pending_changed = threading.Condition()
        self._next_delivery_id = 100_000_001
        self._next_installation_id = max([7000, *self.state.installations]) + 1
        self._drop_next = 0
        self.push_commits_limit = PUSH_COMMITS_LIMIT
        self._next_repo_id = REPO_ID_START
        self._next_deployment_id = 1_000_000_001
        self._next_deployment_status_id = 2_000_000_001
        self._next_commit_status_id = 3_000_000_001
        self._own_repos_dir = repos_dir is None
        self.repos_dir = Path(repos_dir) if repos_dir is not None else Path(tempfile.mkdtemp(prefix="github-standin-"))
        self.repos_dir.mkdir(parents=True, exist_ok=True)
        self._cleanup = (
            weakref.finalize(self, shutil.rmtree, str(self.repos_dir), True) if self._own_repos_dir else None
        )
        self._unmade: dict[int, CommitSpec] = {}  # seeded repositories whose git data is not made yet
        self._seed_repos(seed.get("repos", []))
        self._register_routes()

    @property
    def api_url(self) -> str:
        return self.url + API_PREFIX

    @property
    def app(self) -> App:
        assert self.state.app is not None
        return self.state.app

    def stop(self) -> None:
        super().stop()
        with self._outbox_lock:
            outbox, self._outbox = self._outbox, None
        if outbox is not None:
            outbox.put(None)  # the worker sends what is queued, then ends
        if self._cleanup is not None:  # the temporary repos_dir this stand-in made
            self._cleanup()

    # ------------------------------------------------ state access for tests and the local cloud

    def token_for(self, login: str) -> str:
        with self.lock:
            user = self.state.user(login)
            token = next((t for t, who in self.state.tokens.items() if who == user.login.lower()), None)
            if token is None:  # revoked: signing in again gives a token again
                token = default_token(user.login)
                self.state.tokens[token] = user.login.lower()
            return token

    def add_user(self, login: str, user_id: int | None = None, name: str | None = None) -> str:
        """Creates a user (in no organization) and returns its token."""
        with self.lock:
            if login.lower() in self.state.users:
                raise ValueError(f"user {login!r} exists")
            uid = user_id if user_id is not None else max((u.id for u in self.state.users.values()), default=0) + 1
            self.state.users[login.lower()] = User(id=uid, login=login, name=name)
            token = default_token(login)
            self.state.tokens[token] = login.lower()
            return token

    def revoke_token(self, login: str) -> None:
        with self.lock:
            for token in [t for t, who in self.state.tokens.items() if who == login.lower()]:
                del self.state.tokens[token]

    def add_org_member(self, org: str, login: str, role: str = "member", *, actor: str | None = None) -> None:
        """Adds an active organization member (webhook ``organization`` ``member_added`` if they were not one)."""
        with self.lock:
            user = self.state.user(login)
            o = self.state.org(org)
            before = o.members.get(login.lower())
            o.members[login.lower()] = OrgMembership(role=role)
            if before is None or before.state != "active":
                self._emit_organization("member_added", o, user, self._sender(o, actor), role, "active")

    def remove_org_member(self, org: str, login: str, *, actor: str | None = None) -> None:
        """Removes the user from the organization and from all its teams, as GitHub does
        (webhook ``organization`` ``member_removed`` for an active member)."""
        with self.lock:
            self._remove_org_member(self.state.org(org), login, self._sender(self.state.org(org), actor))

    def _remove_org_member(self, o: Org, login: str, sender: User) -> None:
        membership = o.members.pop(login.lower(), None)
        for team in o.teams.values():
            team.members.pop(login.lower(), None)
        if membership is not None and membership.state == "active":
            user = self.state.user(login)
            self._emit_organization("member_removed", o, user, sender, membership.role, "active")

    def add_team_member(
        self, org: str, team: str, login: str, role: str = "member", *, actor: str | None = None
    ) -> None:
        """Adds an active team member (and an active org member if they were not one); webhooks
        ``organization`` ``member_added`` (if new to the organization) and ``membership`` ``added``."""
        with self.lock:
            user = self.state.user(login)
            t = self.state.team(org, team)
            o = self.state.org(org)
            sender = self._sender(o, actor)
            membership = o.members.get(login.lower())
            if membership is None:
                o.members[login.lower()] = OrgMembership(role="member")
            else:
                membership.state = "active"
            if membership is None or membership.state != "active":
                self._emit_organization("member_added", o, user, sender, o.members[login.lower()].role, "active")
            before = t.members.get(login.lower())
            t.members[login.lower()] = TeamMembership(role=role)
            if before is None or before.state != "active":
                self._emit_membership("added", o, t, user, sender)

    def remove_team_member(self, org: str, team: str, login: str, *, actor: str | None = None) -> None:
        """Removes the user from the team (webhook ``membership`` ``removed`` if they were an active member)."""
        with self.lock:
            o = self.state.org(org)
            self._remove_team_member(o, self.state.team(org, team), login, self._sender(o, actor))

    def _remove_team_member(self, o: Org, t: Team, login: str, sender: User) -> None:
        before = t.members.pop(login.lower(), None)
        if before is not None and before.state == "active":
            self._emit_membership("removed", o, t, self.state.user(login), sender)

    def accept_invitation(self, org: str, login: str) -> None:
        """The invited user accepts: pending org and team memberships become active."""
        with self.lock:
            o = self.state.org(org)
            user = self.state.user(login)
            membership = o.members.get(login.lower())
            if membership is None or membership.state == "active":
                return
            membership.state = "active"
            self._emit_organization("member_added", o, user, user, membership.role, "active")
            for team in o.teams.values():
                if login.lower() in team.members and team.members[login.lower()].state != "active":
                    team.members[login.lower()].state = "active"
                    self._emit_membership("added", o, team, user, user)

    def team_members(self, org: str, team: str) -> dict[str, str]:
        """``{login: role}`` of the team's active members."""
        with self.lock:
            t = self.state.team(org, team)
            return {self.state.user(k).login: m.role for k, m in t.members.items() if m.state == "active"}

    def requests_log(self) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(vars(r)) for r in self.state.requests]

    def clear_requests(self) -> None:
        with self.lock:
            self.state.requests.clear()

    # ------------------------------------------------ the app: installations, device codes

    def rename_org(self, login: str, new_login: str, *, actor: str | None = None) -> dict[str, Any]:
        """Renames an organization, as GitHub does (docs: "Renaming an organization"): the id stays; its
        teams, installation and repositories follow, the repositories' old names answer 301 (as after a
        repository rename) while the old login answers 404; webhook ``organization`` ``renamed`` with
        ``changes.login.from``. Returns the organization's REST shape."""
        with self.lock:
            org = self.state.org(login)
            if not re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,37}[A-Za-z0-9])?", new_login):
                raise ValueError(f"not an organization login: {new_login!r}")
            if new_login.lower() != org.login.lower() and (
                new_login.lower() in self.state.orgs or new_login.lower() in self.state.users
            ):
                raise ValueError(f"the login {new_login} is taken")
            old, sender = org.login, self._sender(org, actor)
            repos = self._account_repos(old)
            paths = {}
            for repo in repos:
                self.bare(repo)  # the git data exists before it moves
                paths[repo.id] = self.repo_path(repo)
            del self.state.orgs[old.lower()]
            org.login = new_login
            self.state.orgs[new_login.lower()] = org
            for team in org.teams.values():
                team.org = new_login
            for installation in self.state.installations.values():
                if installation.account.lower() == old.lower():
                    installation.account = new_login
            if self.state.app is not None and (self.state.app.owner or "").lower() == old.lower():
                self.state.app.owner = new_login
            for repo in repos:
                old_full = repo.full_name
                repo.owner = new_login
                self._move(paths[repo.id], self.repo_path(repo))
                self.state.moved[old_full.lower()] = repo.id
                self.state.moved.pop(repo.full_name.lower(), None)
            installation = self._subscribed(org, "organization")
            if installation is not None:
                payload = hooks.organization_renamed_payload(self, org, old, sender, installation)
                self._emit("organization", "renamed", payload, installation)
            return self.org_simple(org, self.api_url)

    def installation_id(self, org: str) -> int | None:
        with self.lock:
            installation = self.state.installation_for(org)
            return installation.id if installation else None

    def install(
        self,
        org: str,
        *,
        permissions: Mapping[str, str] | None = None,
        events: Iterable[str] | None = None,
        actor: str | None = None,
    ) -> int:
        """Installs the app on an organization (webhook ``installation`` ``created``); returns the id."""
        with self.lock:
            o = self.state.org(org)
            if self.state.installation_for(o.login) is not None:
                raise ValueError(f"the app is already installed on {o.login}")
            installation = Installation(
                id=self._next_installation_id,
                account=o.login,
                permissions=dict(permissions if permissions is not None else self.app.permissions),
                events=list(events if events is not None else self.app.events),
                created_at=_iso(self.clock.now()),
            )
            self.state.installations[installation.id] = installation
            self._next_installation_id += 1  # GitHub never gives an id twice
            self._emit_installation("created", installation, self._sender(o, actor))
            return installation.id

    def uninstall(self, installation_id: int, *, actor: str | None = None) -> None:
        """Removes an installation and revokes its tokens (webhook ``installation`` ``deleted``)."""
        with self.lock:
            installation = self.state.installations.pop(installation_id, None)
            if installation is None:
                raise KeyError(f"no installation {installation_id}")
            for token in [
                t for t, it in self.state.installation_tokens.items() if it.installation_id == installation_id
            ]:
                del self.state.installation_tokens[token]
            self._emit_installation("deleted", installation, self._sender(self.state.org(installation.account), actor))

    def suspend(self, installation_id: int, *, actor: str | None = None) -> None:
        """Suspends an installation: no new tokens, existing ones stop working (``installation`` ``suspend``)."""
        with self.lock:
            installation = self._installation(installation_id)
            installation.suspended_at = _iso(self.clock.now())
            self._emit_installation("suspend", installation, self._sender(self.state.org(installation.account), actor))

    def unsuspend(self, installation_id: int, *, actor: str | None = None) -> None:
        with self.lock:
            installation = self._installation(installation_id)
            installation.suspended_at = None
            sender = self._sender(self.state.org(installation.account), actor)
            self._emit_installation("unsuspend", installation, sender)

    def _installation(self, installation_id: int) -> Installation:
        try:
            return self.state.installations[installation_id]
        except KeyError:
            raise KeyError(f"no installation {installation_id}") from None

    def approve_device(self, user_code: str, login: str) -> None:
        """The user enters the code at /login/device and authorizes the app."""
        with self.lock:
            device = self._device_by_user_code(user_code)
            user = self.state.user(login)
            device.status, device.login = "approved", user.login

    def deny_device(self, user_code: str) -> None:
        """The user enters the code and cancels."""
        with self.lock:
            device = self._device_by_user_code(user_code)
            device.status, device.login = "denied", None

    def _device_by_user_code(self, user_code: str) -> DeviceCode:
        wanted = user_code.strip().upper().replace("-", "")
        for device in self.state.device_codes.values():
            if device.user_code.replace("-", "") == wanted:
                return device
        raise KeyError(f"no device code with user code {user_code!r}")

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

    def _repo_installation(self, repo: Repo, event: str) -> Installation | None:
        """The installation that gets ``event`` for the repository, when a webhook URL is set."""
        org = self.state.orgs.get(repo.owner.lower())
        if org is None:
            return None
        installation = self._subscribed(org, event)
        return installation if installation is not None and self._covers(installation, repo) else None

    def _emit_push(
        self, repo: Repo, branch: str, before: str, after: str, pusher: User, others: Mapping[str, str]
    ) -> _Outgoing | None:
        installation = self._repo_installation(repo, "push")
        if installation is None:
            return None
        bare = self.bare(repo)
        created, deleted = before == ZERO_SHA, after == ZERO_SHA
        forced = not created and not deleted and bare.merge_base(before, after) != before
        commits: list[dict[str, Any]] = []
        head_commit: dict[str, Any] | None = None
        base_ref: str | None = None
        if not deleted:
            # The pushed commits: new to the branch (a new branch: new to the repository). ``distinct``: on
            # no other branch before.
            fresh = set(bare.rev_list(after, list(others.values())))
            shas = bare.rev_list(after, list(others.values()) if created else [before])
            if created:
                base_ref = next((f"refs/heads/{b}" for b, sha in sorted(others.items()) if sha == after), None)
            payload_commits = [self._push_commit(repo, sha, sha in fresh) for sha in shas]
            commits = payload_commits[-self.push_commits_limit :] if self.push_commits_limit else []
            head_commit = self._push_commit(repo, after, after in fresh)
        html = f"{HTML_BASE}/{repo.full_name}"
        compare = f"{html}/compare/{branch}" if created else f"{html}/compare/{before[:12]}...{after[:12]}"
        api = self.api_url
        org = self.state.orgs.get(repo.owner.lower())
        payload = hooks.push_payload(
            ref=f"refs/heads/{branch}",
            before=before,
            after=after,
            repository=self.push_repository(repo, api),
            pusher={"name": pusher.login, "email": self._identity(pusher)[1]},
            organization=self.org_simple(org, api) if org is not None else None,
            sender=self.user_simple(pusher, api),
            installation=hooks.installation_ref(installation),
            created=created,
            deleted=deleted,
            forced=forced,
            base_ref=base_ref,
            compare=compare,
            commits=commits,
            head_commit=head_commit,
        )
        return self._emit("push", None, payload, installation, repo.id)

    def _push_commit(self, repo: Repo, sha: str, distinct: bool) -> dict[str, Any]:
        bare = self.bare(repo)
        info = bare.commit_info(sha)
        changes = bare.diff(info.parents[0] if info.parents else None, sha, renames=False)

        def person(name: str, email: str) -> dict[str, Any]:
            user = self._user_by_email(email)
            return {"name": name, "email": email, **({"username": user.login} if user else {})}

        return {
            "id": info.sha,
            "tree_id": info.tree,
            "distinct": distinct,
            "message": info.message,
            "timestamp": info.author_date,
            "url": f"{HTML_BASE}/{repo.full_name}/commit/{info.sha}",
            "author": person(info.author_name, info.author_email),
            "committer": person(info.committer_name, info.committer_email),
            "added": [c.filename for c in changes if c.status == "added"],
            "removed": [c.filename for c in changes if c.status == "removed"],
            "modified": [c.filename for c in changes if c.status not in ("added", "removed")],
        }

    def _user_by_email(self, email: str) -> User | None:
        for user in self.state.users.values():
            if email.lower() in ((user.email or "").lower(), self._identity(user)[1].lower()):
                return user
        return None

    def _emit_repository(self, action: str, repo: Repo, sender: User, changes: dict[str, Any] | None = None) -> None:
        installation = self._repo_installation(repo, "repository")
        if installation is None:
            return
        api = self.api_url
        org = self.state.orgs.get(repo.owner.lower())
        payload = hooks.repository_payload(
            action,
            self.repo_body(repo, api),
            self.user_simple(sender, api),
            hooks.installation_ref(installation),
            self.org_simple(org, api) if org is not None else None,
            changes,
        )
        self._emit("repository", action, payload, installation, repo.id)

    def _emit_installation_repositories(
        self, action: str, installation: Installation, added: list[Repo], removed: list[Repo], actor: str | None
    ) -> None:
        if self.webhook_url is None:  # an app always gets these, as its installation events
            return
        api = self.api_url
        sender = self._sender(self.state.org(installation.account), actor)
        payload = hooks.installation_repositories_payload(
            action,
            self.installation_body(installation, api),
            installation.repository_selection,
            [self.repo_mini(r) for r in added],
            [self.repo_mini(r) for r in removed],
            self.user_simple(sender, api),
        )
        self._emit("installation_repositories", action, payload, installation)

    # ------------------------------------------------ webhooks

    def deliveries(self) -> list[dict[str, Any]]:
        """The deliveries sent so far, oldest first, in the deliveries API's shape."""
        with self.lock:
            return [d.summary() for d in self.state.deliveries]

    def delivery(self, delivery_id: int) -> Delivery:
        with self.lock:
            found = next((d for d in self.state.deliveries if d.id == delivery_id), None)
            if found is None:
                raise KeyError(f"no delivery {delivery_id}")
            return found

    def redeliver(self, delivery_id: int) -> None:
        """Sends a recorded delivery again (same GUID and body, ``redelivery: true``), as GitHub's button."""
        with self.lock:
            original = self.delivery(delivery_id)
            url = self.webhook_url or original.url
            self._enqueue(
                _Outgoing(
                    url,
                    original.event,
                    original.action,
                    original.installation_id,
                    original.body,
                    original.guid,
                    True,
                    original.repository_id,
                )
            )

    def ping(self) -> None:
        """Sends a ``ping`` (GitHub sends one when the app's webhook is set up)."""
        with self.lock:
            if self.webhook_url is None:
                return
            payload = hooks.ping_payload(
                self, self.app.hook_id, self.app.id, self.app.events, self.webhook_url, self.app.created_at
            )
            self._emit("ping", None, payload, None)

    def wait_for_deliveries(self, timeout: float = 10.0) -> bool:
        """Waits until every queued webhook was sent (or failed); False on timeout."""
        with self._pending_changed:
            return self._pending_changed.wait_for(lambda: self._pending == 0, timeout)

    def _sender(self, org: Org, actor: str | User | None) -> User:
        if isinstance(actor, User):
            return actor
        if actor is not None:
            return self.state.user(actor)
        owners = [self.state.user(k) for k, m in org.members.items() if m.state == "active" and m.role == "admin"]
        if owners:
            return min(owners, key=lambda u: u.id)
        return self.app.bot

    def _subscribed(self, org: Org, event: str) -> Installation | None:
        """The org's installation if it is active and subscribed to ``event`` and a webhook URL is set."""
        if self.webhook_url is None:
            return None
        installation = self.state.installation_for(org.login)
        if installation is None or installation.suspended_at is not None or event not in installation.events:
            return None
        return installation

    def _emit_membership(self, action: str, org: Org, team: Team, member: User, sender: User) -> None:
        installation = self._subscribed(org, "membership")
        if installation is not None:
            payload = hooks.membership_payload(self, action, org, team, member, sender, installation)
            self._emit("membership", action, payload, installation)

    def _emit_organization(self, action: str, org: Org, member: User, sender: User, role: str, state: str) -> None:
        installation = self._subscribed(org, "organization")
        if installation is not None:
            payload = hooks.organization_payload(self, action, org, member, sender, installation, role, state)
            self._emit("organization", action, payload, installation)

    def _emit_installation(self, action: str, installation: Installation, sender: User) -> None:
        if self.webhook_url is not None:  # an app always gets its installation events
            self._emit(
                "installation", action, hooks.installation_payload(self, action, installation, sender), installation
            )

    def _emit(
        self,
        event: str,
        action: str | None,
        payload: Any,
        installation: Installation | None,
        repository_id: int | None = None,
    ) -> _Outgoing | None:
        if self.webhook_url is None:
            return None
        outgoing = _Outgoing(
            self.webhook_url,
            event,
            action,
            installation.id if installation else None,
            hooks.encode(payload),
            str(uuid.uuid4()),
            False,
            repository_id,
        )
        self._enqueue(outgoing)
        return outgoing

    def _enqueue(self, outgoing: _Outgoing) -> None:
        with self.lock:  # ids in the order the webhooks are queued (and sent: one worker, first in first out)
            outgoing.delivery_id = self._next_delivery_id
            self._next_delivery_id += 1
            if self._drop_next > 0 and not outgoing.redelivery:
                self._drop_next -= 1
                outgoing.drop = True
        with self._pending_changed:
            self._pending += 1
        with self._outbox_lock:
            if self._outbox is None:
                self._outbox = queue.Queue()
                worker = threading.Thread(
                    target=self._send_loop, args=(self._outbox,), name=f"{self.name} webhooks", daemon=True
                )
                worker.start()
            self._outbox.put(outgoing)

    def _send_loop(self, outbox: queue.Queue[_Outgoing | None]) -> None:
        while True:
            outgoing = outbox.get()
            if outgoing is None:
                return
            try:
                self._send(outgoing)
            except Exception:
                log.exception("%s: error sending a webhook", self.name)
            finally:
                with self._pending_changed:
                    self._pending -= 1
                    self._pending_changed.notify_all()

    def _send(self, outgoing: _Outgoing) -> None:
        app = self.app
        delivered_at = self.clock.now()
        request_headers = hooks.delivery_headers(
            outgoing.event, outgoing.body, app.webhook_secret, outgoing.guid, app.hook_id, app.id
        )
        response_headers: dict[str, str] = {}
        response_body = ""
        started = time.monotonic()
        try:
            if outgoing.drop:  # drop_next_delivery(): as if the receiver never answered
                raise requests.Timeout("dropped by drop_next_delivery()")
            response = hooks.deliver(
                outgoing.url,
                outgoing.event,
                outgoing.body,
                app.webhook_secret,
                outgoing.guid,
                hook_id=app.hook_id,
                app_id=app.id,
                timeout=self.webhook_timeout,
            )
            status_code = response.status_code
            status = "OK" if 200 <= status_code < 300 else f"Invalid HTTP Response: {status_code}"
            response_headers = dict(response.headers)
            response_body = response.text[:4096]
        except requests.Timeout:
            status_code, status = 0, "timed out"
        except requests.RequestException as error:
            status_code, status = 0, f"We couldn't deliver this payload: {type(error).__name__}: {error}"
        duration = round(time.monotonic() - started, 3)
        if outgoing.drop:
            duration = self.webhook_timeout
        with self.lock:
            self.state.deliveries.append(
                Delivery(
                    id=outgoing.delivery_id,
                    guid=outgoing.guid,
                    event=outgoing.event,
                    action=outgoing.action,
                    installation_id=outgoing.installation_id,
                    url=outgoing.url,
                    body=outgoing.body,
                    redelivery=outgoing.redelivery,
                    delivered_at=_iso(delivered_at),
                    duration=duration,
                    status=status,
                    status_code=status_code,
                    request_headers=request_headers,
                    response_headers=response_headers,
                    response_body=response_body,
                    repository_id=outgoing.repository_id,
                )
            )

    # ------------------------------------------------ routing

    def route(self, method: str, pattern: str, handler: Handler, auth: bool = True, app: bool = False) -> None:
        """Registers ``handler`` for ``method`` and a path regex (full match, under /api/v3); ``app``: the
        caller must authenticate with an app JWT."""
        self.routes.append(Route(method.upper(), re.compile(pattern), handler, auth, app))

    def _register_routes(self) -> None:
        seg = r"[^/]+"
        r = self.route
        r("GET", r"/rate_limit", self.get_rate_limit, auth=False)
        r("GET", r"/user", self.get_authenticated_user)
        r("GET", r"/user/orgs", self.list_my_orgs)
        r("GET", r"/user/teams", self.list_my_teams)
        r("GET", r"/user/memberships/orgs", self.list_my_org_memberships)
        r("GET", rf"/user/memberships/orgs/(?P<org>{seg})", self.get_my_org_membership)
        r("GET", r"/user/installations", self.list_my_installations)
        r("GET", rf"/users/(?P<login>{seg})", self.get_user, auth=False)
        r("GET", rf"/users/(?P<login>{seg})/orgs", self.list_user_public_orgs, auth=False)
        r("GET", rf"/orgs/(?P<org>{seg})", self.get_org, auth=False)
        r("GET", rf"/orgs/(?P<org>{seg})/members", self.list_org_members, auth=False)
        r("GET", rf"/orgs/(?P<org>{seg})/members/(?P<login>{seg})", self.check_org_member, auth=False)
        r("GET", rf"/orgs/(?P<org>{seg})/public_members", self.list_org_public_members, auth=False)
        r("GET", rf"/orgs/(?P<org>{seg})/public_members/(?P<login>{seg})", self.check_public_member, auth=False)
        r("GET", rf"/orgs/(?P<org>{seg})/memberships/(?P<login>{seg})", self.get_org_membership)
        r("PUT", rf"/orgs/(?P<org>{seg})/memberships/(?P<login>{seg})", self.put_org_membership)
        r("DELETE", rf"/orgs/(?P<org>{seg})/memberships/(?P<login>{seg})", self.delete_org_membership)
        r("GET", rf"/orgs/(?P<org>{seg})/teams", self.list_teams)
        # A team has three addresses; the same handlers serve each.
        for team in (
            rf"/orgs/(?P<org>{seg})/teams/(?P<slug>{seg})",
            r"/teams/(?P<team_id>\d+)",
            r"/organizations/(?P<org_id>\d+)/team/(?P<team_id>\d+)",
        ):
            r("GET", team, self.get_team)
            r("GET", team + "/members", self.list_team_members)
            r("GET", team + rf"/members/(?P<login>{seg})", self.check_team_member)
            r("PUT", team + rf"/members/(?P<login>{seg})", self.legacy_add_team_member)
            r("DELETE", team + rf"/members/(?P<login>{seg})", self.delete_team_membership)
            r("GET", team + rf"/memberships/(?P<login>{seg})", self.get_team_membership)
            r("PUT", team + rf"/memberships/(?P<login>{seg})", self.put_team_membership)
            r("DELETE", team + rf"/memberships/(?P<login>{seg})", self.delete_team_membership)
        # The app (JWT) and its installations (installation tokens).
        r("GET", r"/app", self.get_app, app=True)
        r("GET", r"/app/installations", self.list_app_installations, app=True)
        r("GET", r"/app/installations/(?P<installation_id>\d+)", self.get_app_installation, app=True)
        r("POST", r"/app/installations/(?P<installation_id>\d+)/access_tokens", self.create_access_token, app=True)
        r("GET", rf"/orgs/(?P<org>{seg})/installation", self.get_org_installation, app=True)
        r("GET", r"/app/hook/config", self.get_hook_config, app=True)
        r("GET", r"/app/hook/deliveries", self.list_deliveries, app=True)
        r("GET", r"/app/hook/deliveries/(?P<delivery_id>\d+)", self.get_delivery, app=True)
        r("POST", r"/app/hook/deliveries/(?P<delivery_id>\d+)/attempts", self.redeliver_delivery, app=True)
        r("GET", r"/installation/repositories", self.list_installation_repositories)
        r("GET", rf"/repos/(?P<owner>{seg})/(?P<repo>{seg})/installation", self.get_repo_installation, app=True)
        # A repository has two addresses: by name, and by id (which survives a rename or a transfer).
        for repo in (rf"/repos/(?P<owner>{seg})/(?P<repo>{seg})", r"/repositories/(?P<repository_id>\d+)"):
            r("GET", repo, self.get_repo)
            r("GET", repo + rf"/collaborators/(?P<login>{seg})/permission", self.get_collaborator_permission)
            r("GET", repo + r"/compare/(?P<basehead>.+)", self.compare)
            r("GET", repo + r"/contents", self.get_contents)
            r("GET", repo + r"/contents/(?P<path>.*)", self.get_contents)
            r("GET", repo + r"/commits", self.list_commits)
            r("GET", repo + r"/commits/(?P<ref>.+)/statuses", self.list_commit_statuses)
            r("GET", repo + r"/commits/(?P<ref>.+)/status", self.get_combined_status)
            r("GET", repo + r"/commits/(?P<ref>.+)", self.get_commit)
            r("GET", repo + r"/statuses/(?P<ref>.+)", self.list_commit_statuses)  # the legacy address
            r("POST", repo + r"/statuses/(?P<sha>[^/]+)", self.create_commit_status)
            r("GET", repo + r"/deployments", self.list_deployments)
            r("POST", repo + r"/deployments", self.create_deployment)
            r("GET", repo + r"/deployments/(?P<deployment_id>\d+)", self.get_deployment)
            r("GET", repo + r"/deployments/(?P<deployment_id>\d+)/statuses", self.list_deployment_statuses)
            r("POST", repo + r"/deployments/(?P<deployment_id>\d+)/statuses", self.create_deployment_status)
            r(
                "GET",
                repo + r"/deployments/(?P<deployment_id>\d+)/statuses/(?P<status_id>\d+)",
                self.get_deployment_status,
            )
        r("DELETE", r"/installation/token", self.revoke_installation_token)

    # ------------------------------------------------ HTTP

    def handle(self, request: RawRequest) -> RawResponse:
        split = urlsplit(request.target)
        path = split.path
        query = parse_qsl(split.query, keep_blank_values=True)
        if path.startswith("/_stand-in/"):
            return self._handle_stand_in(request, path)
        if path.startswith("/login/"):
            with self.lock:
                answer = self._handle_login(request, path.rstrip("/"), query)
                self._log(request.method, path, query, answer.status, None)
            return answer
        archive = ARCHIVE_PATH.fullmatch(path)
        if archive is not None and request.method in ("GET", "HEAD"):
            answer = self._archive(request, *archive.groups())
            self._log(request.method, path, query, answer.status, None)
            return answer
        with self.lock:
            caller: User | None = None
            status = 404
            headers: dict[str, str] = {}
            try:
                if path != API_PREFIX and not path.startswith(API_PREFIX + "/"):
                    raise not_found()
                api_path = path[len(API_PREFIX) :].rstrip("/") or "/"
                identity = self._authenticate(request.headers)
                caller = identity.user
                headers.update(self._rate_headers(identity))
                method = "GET" if request.method == "HEAD" else request.method
                route, params = self._match(method, api_path)
                if route.app and not identity.app:
                    raise ApiError(401, JWT_UNDECODABLE)
                if identity.app and not route.app:
                    raise ApiError(403, NOT_FOR_INTEGRATIONS)
                if identity.installation is not None and (api_path == "/user" or api_path.startswith("/user/")):
                    raise ApiError(403, NOT_FOR_INTEGRATIONS)
                if route.auth and not route.app and caller is None:
                    raise ApiError(401, "Requires authentication")
                api_request = ApiRequest(
                    method,
                    api_path,
                    query,
                    request.headers,
                    request.body,
                    request.base,
                    caller,
                    params,
                    identity.installation,
                    identity.permissions,
                )
                response = route.handler(api_request)
                status = response.status
                headers.update(response.headers)
                body = response.body
            except ApiError as error:
                status, body = error.status, error.body()
                headers.update(error.headers)
            self._log(request.method, path, query, status, caller)
        headers["X-GitHub-Request-Id"] = uuid.uuid4().hex[:8].upper() + ":" + uuid.uuid4().hex[:8].upper()
        headers["X-GitHub-Media-Type"] = "github.v3; format=json"
        headers["X-GitHub-Api-Version-Selected"] = "2022-11-28"
        if body is None:
            return RawResponse(status, b"", headers)
        headers["Content-Type"] = JSON_TYPE
        return RawResponse(status, json.dumps(body, indent=2).encode(), headers)

    def _handle_stand_in(self, request: RawRequest, path: str) -> RawResponse:
        path, method = path.rstrip("/"), request.method
        if path == "/_stand-in/repos" and method == "POST":
            return self._stand_in_create_repo(request)
        pushed = re.fullmatch(r"/_stand-in/repos/([^/]+)/([^/]+)/commits", path)
        if pushed and method == "POST":
            return self._stand_in_commit(request, unquote(pushed[1]), unquote(pushed[2]))
        if path == "/_stand-in/requests":
            if method == "GET":
                body = json.dumps(self.requests_log()).encode()
                return RawResponse(200, body, {"Content-Type": JSON_TYPE})
            if method == "DELETE":
                self.clear_requests()
                return RawResponse(204)
        if path in ("/_stand-in/device/approve", "/_stand-in/device/deny") and method == "POST":
            try:
                data = json.loads(request.body or b"{}")
            except ValueError:
                data = None
            if not isinstance(data, dict) or not isinstance(data.get("user_code"), str):
                return _json(422, {"message": "user_code is required"})
            try:
                if path.endswith("/approve"):
                    login = data.get("login")
                    if not isinstance(login, str) or login.lower() not in self.state.users:
                        return _json(422, {"message": f"no user {login!r}"})
                    self.approve_device(data["user_code"], login)
                else:
                    self.deny_device(data["user_code"])
            except KeyError:
                return _json(404, not_found().body())
            with self.lock:
                device = self._device_by_user_code(data["user_code"])
                return _json(200, {"user_code": device.user_code, "status": device.status, "login": device.login})
        return _json(404, not_found().body())

    def _stand_in_create_repo(self, request: RawRequest) -> RawResponse:
        """``POST /_stand-in/repos {owner, name, from_dir?, private?, default_branch?, description?}``."""
        data = _json_body(request)
        owner, name = data.get("owner"), data.get("name")
        if not isinstance(owner, str) or not isinstance(name, str):
            return _json(422, {"message": "owner and name are required"})
        from_dir = data.get("from_dir")
        if from_dir is not None and (not isinstance(from_dir, str) or not Path(from_dir).is_dir()):
            return _json(422, {"message": f"from_dir: no directory {from_dir!r}"})
        try:
            with self.lock:
                self.create_repo(
                    owner,
                    name,
                    private=bool(data.get("private", True)),
                    default_branch=str(data.get("default_branch") or "main"),
                    from_dir=Path(from_dir) if from_dir else None,
                    description=data.get("description"),
                    author_login=data.get("author"),
                )
                body = self.repo_body(self.state.repo(owner, name), request.base + API_PREFIX)
        except (KeyError, ValueError) as error:
            return _json(422, {"message": str(error).strip("'\"")})
        return _json(201, body)

    def _stand_in_commit(self, request: RawRequest, owner: str, name: str) -> RawResponse:
        """``POST /_stand-in/repos/{owner}/{repo}/commits {files: {path: content|null}, message, branch?,
        author?, force?}`` -> ``{sha, before, branch, delivery: {id, guid} | null}``: commits, pushes and sends
        the ``push`` webhook, as :meth:`push`."""
        data = _json_body(request)
        files, message = data.get("files"), data.get("message")
        if (
            not isinstance(files, dict)
            or not all(isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in files.items())
            or not isinstance(message, str)
            or not message.strip()
        ):
            return _json(422, {"message": "files ({path: content or null}) and message are required"})
        with self.lock:
            try:
                repo = self.state.repo(owner, name)
            except KeyError:
                return _json(404, not_found().body())
            branch = str(data.get("branch") or repo.default_branch)
            try:
                before = self.bare(repo).branch_head(branch) or ZERO_SHA
                sha, outgoing = self._push(
                    owner,
                    name,
                    [(files, message)],
                    branch,
                    str(data.get("author") or "ada"),
                    force=bool(data.get("force", False)),
                )
            except (KeyError, ValueError, GitError) as error:
                return _json(422, {"message": str(error).strip("'\"")})
            delivery = {"id": outgoing.delivery_id, "guid": outgoing.guid} if outgoing is not None else None
        return _json(201, {"sha": sha, "before": before, "branch": branch, "delivery": delivery})

    def _authenticate(self, headers: Mapping[str, str]) -> Identity:
        value = headers.get("authorization")
        if not value:
            return Identity()
        scheme, _, credential = value.strip().partition(" ")
        credential = credential.strip()
        if scheme.lower() not in ("token", "bearer"):
            raise ApiError(401, "Bad credentials")
        if credential.count(".") == 2 and credential.startswith("eyJ"):
            self._verify_app_jwt(credential)
            return Identity(user=self.app.bot, app=True)
        login = self.state.tokens.get(credential)
        if login is not None:
            return Identity(user=self.state.users[login])
        token = self.state.installation_tokens.get(credential)
        if token is not None:
            installation = self.state.installations.get(token.installation_id)
            if token.expires_at <= self.clock.now() or installation is None or installation.suspended_at:
                raise ApiError(401, "Bad credentials")
            return Identity(user=self.app.bot, installation=installation, permissions=token.permissions)
        raise ApiError(401, "Bad credentials")

    def _verify_app_jwt(self, credential: str) -> None:
        """GitHub's checks of an app JWT: RS256 signed by the app's key, ``iss`` the app id (or client id),
        ``iat`` not in the future (60 s drift allowed), ``exp`` in the future and at most 10 minutes ahead."""
        try:
            claims = jwt.decode(
                credential,
                self._app_public_key,
                algorithms=["RS256"],
                options={"require": ["iat", "exp", "iss"], "verify_exp": False, "verify_iat": False},
            )
        except jwt.PyJWTError:
            raise ApiError(401, JWT_UNDECODABLE) from None
        if str(claims["iss"]) not in (str(self.app.id), self.app.client_id):
            raise ApiError(401, JWT_UNDECODABLE)
        iat, exp = claims["iat"], claims["exp"]
        now = self.clock.now().timestamp()
        if not isinstance(iat, int | float) or iat > now + JWT_CLOCK_DRIFT:
            raise ApiError(
                401, "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued."
            )
        if not isinstance(exp, int | float) or exp <= now:
            raise ApiError(
                401,
                "'Expiration time' claim ('exp') must be a numeric value representing the future time at which "
                "the assertion expires.",
            )
        if exp > now + JWT_MAX_LIFETIME + JWT_CLOCK_DRIFT:
            raise ApiError(401, "'Expiration time' claim ('exp') is too far in the future.")

    def _match(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        for route in self.routes:
            if route.method != method:
                continue
            m = route.pattern.fullmatch(path)
            if m:
                return route, m.groupdict()
        raise not_found()  # GitHub answers an unknown route and a wrong method alike

    def _rate_headers(self, identity: Identity) -> dict[str, str]:
        now = int(time.time())
        if now >= self.rate_window_reset:
            self.rate_window_reset = now + 3600
            self.state.rate_used.clear()
        caller = identity.user
        if identity.installation is not None:
            key = f"installation:{identity.installation.id}"
        else:
            key = caller.login.lower() if caller else "anonymous"
        used = self.state.rate_used.get(key, 0) + 1
        self.state.rate_used[key] = used
        limit = RATE_LIMIT_AUTHENTICATED if caller else RATE_LIMIT_ANONYMOUS
        return {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": str(max(limit - used, 0)),
            "X-RateLimit-Reset": str(self.rate_window_reset),
            "X-RateLimit-Used": str(used),
            "X-RateLimit-Resource": "core",
        }

    def _log(self, method: str, path: str, query: list[tuple[str, str]], status: int, caller: User | None) -> None:
        self.state.requests.append(
            LoggedRequest(
                method=method,
                path=path,
                query={k: ("REDACTED" if k.lower() in REDACTED_QUERY_KEYS else v) for k, v in query},
                status=status,
                user=caller.login if caller else None,
                at=self.clock.now().isoformat(),
            )
        )

    # ------------------------------------------------ shapes

    def user_simple(self, user: User, api: str) -> dict[str, Any]:
        u = f"{api}/users/{user.login}"
        return {
            "login": user.login,
            "id": user.id,
            "node_id": _node_id("User", user.id),
            "avatar_url": f"https://avatars.githubusercontent.com/u/{user.id}?v=4",
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
        return {
            **self.user_simple(user, api),
            "name": user.name,
            "company": None,
            "blog": "",
            "location": None,
            "email": user.email,
            "hireable": None,
            "bio": None,
            "twitter_username": None,
            "public_repos": 0,
            "public_gists": 0,
            "followers": 0,
            "following": 0,
            "created_at": user.created_at,
            "updated_at": user.created_at,
        }

    def org_simple(self, org: Org, api: str) -> dict[str, Any]:
        o = f"{api}/orgs/{org.login}"
        return {
            "login": org.login,
            "id": org.id,
            "node_id": _node_id("Organization", org.id),
            "url": o,
            "repos_url": f"{o}/repos",
            "events_url": f"{o}/events",
            "hooks_url": f"{o}/hooks",
            "issues_url": f"{o}/issues",
            "members_url": f"{o}/members{{/member}}",
            "public_members_url": f"{o}/public_members{{/member}}",
            "avatar_url": f"https://avatars.githubusercontent.com/u/{org.id}?v=4",
            "description": org.description,
        }

    def org_full(self, org: Org, api: str) -> dict[str, Any]:
        return {
            **self.org_simple(org, api),
            "name": org.name,
            "company": None,
            "blog": "",
            "location": None,
            "email": None,
            "twitter_username": None,
            "is_verified": False,
            "has_organization_projects": True,
            "has_repository_projects": True,
            "public_repos": 0,
            "public_gists": 0,
            "followers": 0,
            "following": 0,
            "html_url": f"{HTML_BASE}/{org.login}",
            "created_at": org.created_at,
            "updated_at": org.created_at,
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

    # ------------------------------------------------ helpers for handlers

    def paginate(self, req: ApiRequest, items: list[Any]) -> ApiResponse:
        """GitHub's pagination: ``per_page`` (default 30, max 100), ``page`` (from 1), ``Link`` header."""
        per_page = _int_arg(req.arg("per_page"), DEFAULT_PER_PAGE)
        per_page = min(max(per_page, 1), MAX_PER_PAGE)
        page = max(_int_arg(req.arg("page"), 1), 1)
        last = max((len(items) + per_page - 1) // per_page, 1)
        body = items[(page - 1) * per_page : page * per_page]

        def link(p: int) -> str:
            query = [(k, v) for k, v in req.query if k != "page"] + [("page", str(p))]
            return f"<{req.api}{req.path}?{urlencode(query)}>"

        links = []
        if page > 1:
            links += [f'{link(min(page - 1, last))}; rel="prev"']
        if page < last:
            links += [f'{link(page + 1)}; rel="next"', f'{link(last)}; rel="last"']
        if page > 1:
            links += [f'{link(1)}; rel="first"']
        return ApiResponse(200, body, {"Link": ", ".join(links)} if links else {})

    def _org(self, req: ApiRequest) -> Org:
        org = self.state.orgs.get(req.params["org"].lower())
        if org is None:
            raise not_found()
        return org

    def _user(self, login: str) -> User:
        user = self.state.users.get(login.lower())
        if user is None:
            raise not_found()
        return user

    def is_active_member(self, org: Org, login: str | None) -> bool:
        m = org.members.get(login.lower()) if login else None
        return m is not None and m.state == "active"

    def is_owner(self, org: Org, login: str | None) -> bool:
        m = org.members.get(login.lower()) if login else None
        return m is not None and m.state == "active" and m.role == "admin"

    def can_see_team(self, team: Team, login: str | None) -> bool:
        org = self.state.org(team.org)
        if not self.is_active_member(org, login):
            return False
        if team.privacy != "secret":
            return True
        return self.is_owner(org, login) or (login or "").lower() in team.members

    def _insider(self, req: ApiRequest, org: Org) -> bool:
        """The caller sees the organization as a member: an active member, or an installation on it
        with the ``members`` permission (which reads as an owner would)."""
        if req.installation is not None:
            return req.installation.account.lower() == org.login.lower() and "members" in req.permissions
        return self.is_active_member(org, req.caller.login if req.caller else None)

    def _sees_team(self, req: ApiRequest, team: Team) -> bool:
        if req.installation is not None:
            return self._insider(req, self.state.org(team.org))
        return self.can_see_team(team, req.caller.login if req.caller else None)

    def _integration_may_write_members(self, req: ApiRequest, org: Org) -> None:
        assert req.installation is not None
        if not self._insider(req, org):
            raise not_found()
        if req.permissions.get("members") not in ("write", "admin"):
            raise ApiError(403, NOT_FOR_INTEGRATIONS)

    def _team(self, req: ApiRequest) -> Team:
        team: Team | None
        if "slug" in req.params:
            team = self._org(req).teams.get(req.params["slug"].lower())
        else:
            team = self.state.team_by_id(int(req.params["team_id"]))
            if team is not None and "org_id" in req.params and self.state.org(team.org).id != int(req.params["org_id"]):
                team = None
        if team is None or not self._sees_team(req, team):
            raise not_found()
        return team

    def _active_users(self, logins: Iterable[str]) -> list[User]:
        return sorted((self.state.user(login) for login in logins), key=lambda u: u.id)

    # ------------------------------------------------ handlers: users

    def get_rate_limit(self, req: ApiRequest) -> ApiResponse:
        limit = RATE_LIMIT_AUTHENTICATED if req.caller else RATE_LIMIT_ANONYMOUS
        if req.installation is not None:
            identity = f"installation:{req.installation.id}"
        else:
            identity = req.caller.login.lower() if req.caller else "anonymous"
        used = self.state.rate_used.get(identity, 0)
        core = {"limit": limit, "used": used, "remaining": max(limit - used, 0), "reset": self.rate_window_reset}
        return ApiResponse(200, {"resources": {"core": core}, "rate": core})

    def get_authenticated_user(self, req: ApiRequest) -> ApiResponse:
        assert req.caller is not None
        return ApiResponse(200, self.user_full(req.caller, req.api))

    def get_user(self, req: ApiRequest) -> ApiResponse:
        return ApiResponse(200, self.user_full(self._user(req.params["login"]), req.api))

    def list_my_orgs(self, req: ApiRequest) -> ApiResponse:
        assert req.caller is not None
        orgs = [o for o in self.state.orgs.values() if self.is_active_member(o, req.caller.login)]
        return self.paginate(req, [self.org_simple(o, req.api) for o in sorted(orgs, key=lambda o: o.id)])

    def list_user_public_orgs(self, req: ApiRequest) -> ApiResponse:
        user = self._user(req.params["login"])
        orgs = [
            o
            for o in self.state.orgs.values()
            if self.is_active_member(o, user.login) and o.members[user.login.lower()].public
        ]
        return self.paginate(req, [self.org_simple(o, req.api) for o in sorted(orgs, key=lambda o: o.id)])

    def list_my_teams(self, req: ApiRequest) -> ApiResponse:
        assert req.caller is not None
        login = req.caller.login.lower()
        teams = [
            t
            for o in self.state.orgs.values()
            if self.is_active_member(o, login)
            for t in o.teams.values()
            if login in t.members and t.members[login].state == "active"
        ]
        return self.paginate(req, [self.team_full(t, req.api) for t in sorted(teams, key=lambda t: t.id)])

    def list_my_org_memberships(self, req: ApiRequest) -> ApiResponse:
        assert req.caller is not None
        state = req.arg("state")
        if state not in (None, "active", "pending"):
            raise _validation_failed("state", state)
        login = req.caller.login.lower()
        orgs = [
            o
            for o in sorted(self.state.orgs.values(), key=lambda o: o.id)
            if login in o.members and state in (None, o.members[login].state)
        ]
        return self.paginate(req, [self.org_membership_body(o, login, req.api) for o in orgs])

    def get_my_org_membership(self, req: ApiRequest) -> ApiResponse:
        assert req.caller is not None
        org = self._org(req)
        if req.caller.login.lower() not in org.members:
            raise not_found()
        return ApiResponse(200, self.org_membership_body(org, req.caller.login, req.api))

    # ------------------------------------------------ handlers: organizations

    def get_org(self, req: ApiRequest) -> ApiResponse:
        return ApiResponse(200, self.org_full(self._org(req), req.api))

    def list_org_members(self, req: ApiRequest) -> ApiResponse:
        org = self._org(req)
        role = req.arg("role", "all")
        if role not in ("all", "admin", "member"):
            raise _validation_failed("role", role)
        insider = self._insider(req, org)  # outsiders see public members only
        logins = [
            login
            for login, m in org.members.items()
            if m.state == "active" and (insider or m.public) and role in ("all", m.role)
        ]
        return self.paginate(req, [self.user_simple(u, req.api) for u in self._active_users(logins)])

    def check_org_member(self, req: ApiRequest) -> ApiResponse:
        org = self._org(req)
        if not self._insider(req, org):
            location = f"{req.api}/orgs/{org.login}/public_members/{quote(req.params['login'])}"
            return ApiResponse(302, None, {"Location": location})
        if self.is_active_member(org, req.params["login"]):
            return ApiResponse(204)
        raise not_found()

    def list_org_public_members(self, req: ApiRequest) -> ApiResponse:
        org = self._org(req)
        logins = [login for login, m in org.members.items() if m.state == "active" and m.public]
        return self.paginate(req, [self.user_simple(u, req.api) for u in self._active_users(logins)])

    def check_public_member(self, req: ApiRequest) -> ApiResponse:
        org = self._org(req)
        m = org.members.get(req.params["login"].lower())
        if m is not None and m.state == "active" and m.public:
            return ApiResponse(204)
        raise not_found()

    def get_org_membership(self, req: ApiRequest) -> ApiResponse:
        assert req.caller is not None
        org = self._org(req)
        login = req.params["login"]
        caller_is_subject = req.caller.login.lower() == login.lower()
        if not (caller_is_subject or self._insider(req, org)):
            raise not_found()
        if login.lower() not in org.members:
            raise not_found()
        return ApiResponse(200, self.org_membership_body(org, login, req.api))

    def _require_owner(self, req: ApiRequest, org: Org) -> None:
        assert req.caller is not None
        if req.installation is not None:
            self._integration_may_write_members(req, org)
            return
        if not self.is_active_member(org, req.caller.login):
            raise not_found()
        if not self.is_owner(org, req.caller.login):
            raise ApiError(403, "You must be an admin to change organization memberships.")

    def put_org_membership(self, req: ApiRequest) -> ApiResponse:
        """Sets a member's role; someone outside the organization is invited (``pending``)."""
        org = self._org(req)
        self._require_owner(req, org)
        user = self._user(req.params["login"])
        body = req.json()
        role = body.get("role", "member") if isinstance(body, dict) else None
        if role not in ("admin", "member"):
            raise _validation_failed("role", role)
        membership = org.members.get(user.login.lower())
        if membership is None:
            org.members[user.login.lower()] = OrgMembership(role=role, state="pending")
            assert req.caller is not None
            self._emit_organization("member_invited", org, user, req.caller, role, "pending")
        else:
            membership.role = role
        return ApiResponse(200, self.org_membership_body(org, user.login, req.api))

    def delete_org_membership(self, req: ApiRequest) -> ApiResponse:
        """Removes the user from the organization and its teams (or cancels the invitation)."""
        org = self._org(req)
        self._require_owner(req, org)
        user = self._user(req.params["login"])
        if user.login.lower() not in org.members:
            raise not_found()
        assert req.caller is not None
        self._remove_org_member(org, user.login, req.caller)
        return ApiResponse(204)

    # ------------------------------------------------ handlers: teams

    def list_teams(self, req: ApiRequest) -> ApiResponse:
        assert req.caller is not None
        org = self._org(req)
        if not self._insider(req, org):
            raise not_found()
        teams = [t for t in sorted(org.teams.values(), key=lambda t: t.id) if self._sees_team(req, t)]
        return self.paginate(req, [self.team_simple(t, req.api) for t in teams])

    def get_team(self, req: ApiRequest) -> ApiResponse:
        return ApiResponse(200, self.team_full(self._team(req), req.api))

    def list_team_members(self, req: ApiRequest) -> ApiResponse:
        team = self._team(req)
        role = req.arg("role", "all")
        if role not in ("all", "member", "maintainer"):
            raise _validation_failed("role", role)
        logins = [k for k, m in team.members.items() if m.state == "active" and role in ("all", m.role)]
        return self.paginate(req, [self.user_simple(u, req.api) for u in self._active_users(logins)])

    def check_team_member(self, req: ApiRequest) -> ApiResponse:
        team = self._team(req)
        m = team.members.get(req.params["login"].lower())
        if m is not None and m.state == "active":
            return ApiResponse(204)
        raise not_found()

    def get_team_membership(self, req: ApiRequest) -> ApiResponse:
        team = self._team(req)
        login = req.params["login"]
        if login.lower() not in team.members:
            raise not_found()
        return ApiResponse(200, self.team_membership_body(team, login, req.api))

    def _require_team_admin(self, req: ApiRequest, team: Team) -> None:
        assert req.caller is not None
        if req.installation is not None:
            self._integration_may_write_members(req, self.state.org(team.org))
            return
        login = req.caller.login.lower()
        m = team.members.get(login)
        maintainer = m is not None and m.state == "active" and m.role == "maintainer"
        if not (maintainer or self.is_owner(self.state.org(team.org), login)):
            raise ApiError(403, "You must be an organization owner or team maintainer to change team memberships.")

    def _add_to_team(self, team: Team, user: User, role: str | None, sender: User) -> None:
        org = self.state.org(team.org)
        login = user.login.lower()
        if login not in org.members:  # an invitation to the organization
            org.members[login] = OrgMembership(role="member", state="pending")
            self._emit_organization("member_invited", org, user, sender, "member", "pending")
        state = "active" if org.members[login].state == "active" else "pending"
        existing = team.members.get(login)
        if existing is None:
            team.members[login] = TeamMembership(role=role or "member", state=state)
            if state == "active":
                self._emit_membership("added", org, team, user, sender)
        elif role is not None:
            existing.role = role

    def put_team_membership(self, req: ApiRequest) -> ApiResponse:
        team = self._team(req)
        self._require_team_admin(req, team)
        user = self._user(req.params["login"])
        body = req.json()
        role = body.get("role", "member") if isinstance(body, dict) else None
        if role not in ("member", "maintainer"):
            raise _validation_failed("role", role)
        assert req.caller is not None
        self._add_to_team(team, user, role, req.caller)
        return ApiResponse(200, self.team_membership_body(team, user.login, req.api))

    def legacy_add_team_member(self, req: ApiRequest) -> ApiResponse:
        team = self._team(req)
        self._require_team_admin(req, team)
        user = self._user(req.params["login"])
        if not self.is_active_member(self.state.org(team.org), user.login):
            raise not_found()  # the legacy endpoint does not invite
        assert req.caller is not None
        self._add_to_team(team, user, None, req.caller)
        return ApiResponse(204)

    def delete_team_membership(self, req: ApiRequest) -> ApiResponse:
        team = self._team(req)
        self._require_team_admin(req, team)
        user = self._user(req.params["login"])
        assert req.caller is not None
        self._remove_team_member(self.state.org(team.org), team, user.login, req.caller)
        return ApiResponse(204)

    # ------------------------------------------------ handlers: the app (JWT) and its installations

    def get_app(self, req: ApiRequest) -> ApiResponse:
        return ApiResponse(200, self.app_body(req.api))

    def list_app_installations(self, req: ApiRequest) -> ApiResponse:
        installations = sorted(self.state.installations.values(), key=lambda i: i.id)
        return self.paginate(req, [self.installation_body(i, req.api) for i in installations])

    def _installation_param(self, req: ApiRequest) -> Installation:
        installation = self.state.installations.get(int(req.params["installation_id"]))
        if installation is None:
            raise ApiError(404, "Not Found")
        return installation

    def get_app_installation(self, req: ApiRequest) -> ApiResponse:
        return ApiResponse(200, self.installation_body(self._installation_param(req), req.api))

    def get_org_installation(self, req: ApiRequest) -> ApiResponse:
        installation = self.state.installation_for(self._org(req).login)
        if installation is None:
            raise not_found()
        return ApiResponse(200, self.installation_body(installation, req.api))

    def create_access_token(self, req: ApiRequest) -> ApiResponse:
        """``POST /app/installations/{id}/access_tokens``: a ``ghs_`` token for 1 hour, optionally with fewer
        permissions than the installation's."""
        installation = self._installation_param(req)
        if installation.suspended_at is not None:
            raise ApiError(403, "This installation has been suspended")
        body = req.json()
        if not isinstance(body, dict):
            raise ApiError(400, "Problems parsing JSON")
        if body.get("repositories") or body.get("repository_ids"):
            raise ApiError(
                422,
                "There is at least one repository that does not exist or is not accessible to the parent installation.",
            )
        permissions = dict(installation.permissions)
        wanted = body.get("permissions")
        if wanted:  # absent or empty: all of the installation's
            if not isinstance(wanted, dict):
                raise _validation_failed("permissions", wanted)
            for name, level in wanted.items():
                granted = installation.permissions.get(name)
                if granted is None or PERMISSION_LEVELS.get(level, 99) > PERMISSION_LEVELS.get(granted, 0):
                    raise ApiError(422, "The permissions requested are not granted to this installation.")
            permissions = {str(k): str(v) for k, v in wanted.items()}
        expires_at = self.clock.now() + timedelta(seconds=INSTALLATION_TOKEN_TTL)
        token = _random_token("ghs_")
        self.state.installation_tokens[token] = InstallationToken(installation.id, expires_at, permissions)
        return ApiResponse(
            201,
            {
                "token": token,
                "expires_at": _iso(expires_at),
                "permissions": permissions,
                "repository_selection": installation.repository_selection,
            },
        )

    def revoke_installation_token(self, req: ApiRequest) -> ApiResponse:
        if req.installation is None:
            raise ApiError(403, NOT_FOR_INTEGRATIONS)
        credential = (req.headers.get("authorization") or "").partition(" ")[2].strip()
        self.state.installation_tokens.pop(credential, None)
        return ApiResponse(204)

    def list_my_installations(self, req: ApiRequest) -> ApiResponse:
        """``GET /user/installations``: the app's installations the user can reach (their organizations)."""
        assert req.caller is not None
        installations = [
            i
            for i in sorted(self.state.installations.values(), key=lambda i: i.id)
            if self.is_active_member(self.state.org(i.account), req.caller.login)
        ]
        page = self.paginate(req, [self.installation_body(i, req.api) for i in installations])
        return ApiResponse(200, {"total_count": len(installations), "installations": page.body}, page.headers)

    def get_hook_config(self, req: ApiRequest) -> ApiResponse:
        return ApiResponse(
            200, {"content_type": "json", "insecure_ssl": "0", "url": self.webhook_url or "", "secret": "********"}
        )

    def list_deliveries(self, req: ApiRequest) -> ApiResponse:
        """Newest first, cursor-paginated (``per_page``, ``cursor``) as GitHub's."""
        per_page = min(max(_int_arg(req.arg("per_page"), DEFAULT_PER_PAGE), 1), MAX_PER_PAGE)
        items = sorted(self.state.deliveries, key=lambda d: d.id, reverse=True)
        cursor = req.arg("cursor")
        if cursor:
            before = _int_arg(cursor.removeprefix("v1_"), 0)
            items = [d for d in items if d.id <= before]
        page, rest = items[:per_page], items[per_page:]
        headers = {}
        if rest:
            query = [(k, v) for k, v in req.query if k != "cursor"] + [("cursor", f"v1_{rest[0].id}")]
            headers["Link"] = f'<{req.api}{req.path}?{urlencode(query)}>; rel="next"'
        return ApiResponse(200, [d.summary() for d in page], headers)

    def _delivery_param(self, req: ApiRequest) -> Delivery:
        wanted = int(req.params["delivery_id"])
        found = next((d for d in self.state.deliveries if d.id == wanted), None)
        if found is None:
            raise not_found()
        return found

    def get_delivery(self, req: ApiRequest) -> ApiResponse:
        d = self._delivery_param(req)
        try:
            payload = json.loads(d.body)
        except ValueError:
            payload = None
        return ApiResponse(
            200,
            {
                **d.summary(),
                "url": d.url,
                "request": {"headers": d.request_headers, "payload": payload},
                "response": {"headers": d.response_headers, "payload": d.response_body},
            },
        )

    def redeliver_delivery(self, req: ApiRequest) -> ApiResponse:
        d = self._delivery_param(req)
        self.redeliver(d.id)
        return ApiResponse(202, {})

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

    def deployment_body(self, d: Deployment, api: str) -> dict[str, Any]:
        repo = self.state.repos[d.repo_id]
        r = f"{api}/repos/{repo.full_name}"
        return {
            "url": f"{r}/deployments/{d.id}",
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
            "statuses_url": f"{r}/deployments/{d.id}/statuses",
            "repository_url": r,
            "transient_environment": d.transient_environment,
            "production_environment": d.production_environment,
            "performed_via_github_app": self.app_body(api) if d.via_app else None,
        }

    def deployment_status_body(self, s: DeploymentStatus, api: str) -> dict[str, Any]:
        d = self.state.deployments[s.deployment_id]
        repo = self.state.repos[d.repo_id]
        r = f"{api}/repos/{repo.full_name}"
        return {
            "url": f"{r}/deployments/{d.id}/statuses/{s.id}",
            "id": s.id,
            "node_id": _node_id("DeploymentStatus", s.id),
            "state": s.state,
            "creator": self.user_simple(s.creator, api),
            "description": s.description,
            "environment": s.environment,
            "target_url": s.log_url,
            "created_at": s.created_at,
            "updated_at": s.created_at,
            "deployment_url": f"{r}/deployments/{d.id}",
            "repository_url": r,
            "environment_url": s.environment_url,
            "log_url": s.log_url,
            "performed_via_github_app": self.app_body(api) if s.via_app else None,
        }

    def commit_status_body(self, s: CommitStatus, api: str) -> dict[str, Any]:
        repo = self.state.repos[s.repo_id]
        return {
            "url": f"{api}/repos/{repo.full_name}/statuses/{s.sha}",
            "avatar_url": f"https://avatars.githubusercontent.com/u/{s.creator.id}?v=4",
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

    def _bare_for(self, repo: Repo) -> BareRepo:
        return self.bare(repo)

    def _resolve(self, repo: Repo, ref: str) -> str:
        sha = self.bare(repo).resolve(ref)
        if sha is None:
            raise ApiError(404, f"No commit found for SHA: {ref}")
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
        ref = unquote(req.params["ref"])
        sha = self.bare(repo).resolve(ref)
        if sha is None:
            raise ApiError(422, f"No commit found for SHA: {ref}")
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

    # ------------------------------------------------ handlers: deployments and statuses

    def create_deployment(self, req: ApiRequest) -> ApiResponse:
        repo = self._repo(req, permission="deployments", level="write")
        body = req.json()
        if not isinstance(body, dict):
            raise ApiError(400, "Problems parsing JSON")
        ref = body.get("ref")
        if not isinstance(ref, str) or not ref:
            raise _validation_failed("ref", ref)
        sha = self.bare(repo).resolve(ref)
        if sha is None:
            raise ApiError(422, f"No ref found for: {ref}")
        contexts = body.get("required_contexts")
        latest = self._latest_statuses(repo, sha)
        wanted = list(latest) if contexts is None else [str(c) for c in contexts]
        failing = [c for c in wanted if c not in latest or latest[c].state != "success"]
        if failing:
            raise ApiError(
                409,
                f"Conflict: Commit status checks failed for {ref}.",
                errors=[
                    {
                        "contexts": [
                            {"context": c, "state": latest[c].state if c in latest else "missing"} for c in failing
                        ],
                        "resource": "Deployment",
                        "field": "required_contexts",
                        "code": "invalid",
                    }
                ],
            )
        environment = str(body.get("environment") or "production")
        production = body.get("production_environment")
        payload = body.get("payload", {})
        if isinstance(payload, str) and payload:
            try:
                payload = json.loads(payload)
            except ValueError:
                pass
        assert req.caller is not None
        deployment = Deployment(
            id=self._next_deployment_id,
            repo_id=repo.id,
            sha=sha,
            ref=ref,
            task=str(body.get("task") or "deploy"),
            environment=environment,
            original_environment=environment,
            description=body.get("description"),
            payload=payload if payload is not None else {},
            transient_environment=bool(body.get("transient_environment", False)),
            production_environment=bool(production) if production is not None else environment == "production",
            creator=req.caller,
            via_app=req.installation is not None,
            created_at=_iso(self.clock.now()),
        )
        self._next_deployment_id += 1
        self.state.deployments[deployment.id] = deployment
        return ApiResponse(201, self.deployment_body(deployment, req.api))

    def list_deployments(self, req: ApiRequest) -> ApiResponse:
        repo = self._repo(req, permission="deployments")
        filters = {k: req.arg(k) for k in ("sha", "ref", "task", "environment")}
        items = [
            d
            for d in sorted(self.state.deployments.values(), key=lambda d: d.id, reverse=True)
            if d.repo_id == repo.id and all(v is None or getattr(d, k) == v for k, v in filters.items())
        ]
        return self.paginate(req, [self.deployment_body(d, req.api) for d in items])

    def _deployment(self, req: ApiRequest, repo: Repo) -> Deployment:
        d = self.state.deployments.get(int(req.params["deployment_id"]))
        if d is None or d.repo_id != repo.id:
            raise not_found()
        return d

    def get_deployment(self, req: ApiRequest) -> ApiResponse:
        repo = self._repo(req, permission="deployments")
        return ApiResponse(200, self.deployment_body(self._deployment(req, repo), req.api))

    def create_deployment_status(self, req: ApiRequest) -> ApiResponse:
        repo = self._repo(req, permission="deployments", level="write")
        d = self._deployment(req, repo)
        body = req.json()
        if not isinstance(body, dict):
            raise ApiError(400, "Problems parsing JSON")
        state = body.get("state")
        if state not in DEPLOYMENT_STATES:
            raise _validation_failed("state", state)
        if body.get("environment"):
            d.environment = str(body["environment"])
        assert req.caller is not None
        status = DeploymentStatus(
            id=self._next_deployment_status_id,
            deployment_id=d.id,
            state=state,
            description=str(body.get("description") or ""),
            environment=d.environment,
            log_url=str(body.get("log_url") or body.get("target_url") or ""),
            environment_url=str(body.get("environment_url") or ""),
            creator=req.caller,
            via_app=req.installation is not None,
            created_at=_iso(self.clock.now()),
        )
        self._next_deployment_status_id += 1
        self.state.deployment_statuses.append(status)
        if state == "success" and body.get("auto_inactive", True):
            self._inactivate_previous(d, req)
        return ApiResponse(201, self.deployment_status_body(status, req.api))

    def _inactivate_previous(self, current: Deployment, req: ApiRequest) -> None:
        """GitHub's ``auto_inactive``: earlier successful deployments to the same non-transient,
        non-production environment get an ``inactive`` status."""
        assert req.caller is not None
        for d in self.state.deployments.values():
            if d.id >= current.id or d.repo_id != current.repo_id or d.environment != current.environment:
                continue
            if d.transient_environment or d.production_environment:
                continue
            latest = [s for s in self.state.deployment_statuses if s.deployment_id == d.id]
            if latest and latest[-1].state == "success":
                self.state.deployment_statuses.append(
                    DeploymentStatus(
                        id=self._next_deployment_status_id,
                        deployment_id=d.id,
                        state="inactive",
                        description="",
                        environment=d.environment,
                        log_url="",
                        environment_url="",
                        creator=req.caller,
                        via_app=req.installation is not None,
                        created_at=_iso(self.clock.now()),
                    )
                )
                self._next_deployment_status_id += 1

    def list_deployment_statuses(self, req: ApiRequest) -> ApiResponse:
        repo = self._repo(req, permission="deployments")
        d = self._deployment(req, repo)
        items = sorted((s for s in self.state.deployment_statuses if s.deployment_id == d.id), key=lambda s: -s.id)
        return self.paginate(req, [self.deployment_status_body(s, req.api) for s in items])

    def get_deployment_status(self, req: ApiRequest) -> ApiResponse:
        repo = self._repo(req, permission="deployments")
        d = self._deployment(req, repo)
        wanted = int(req.params["status_id"])
        found = next((s for s in self.state.deployment_statuses if s.id == wanted and s.deployment_id == d.id), None)
        if found is None:
            raise not_found()
        return ApiResponse(200, self.deployment_status_body(found, req.api))

    def create_commit_status(self, req: ApiRequest) -> ApiResponse:
        repo = self._repo(req, permission="statuses", level="write")
        ref = unquote(req.params["sha"])
        sha = self.bare(repo).resolve(ref)
        if sha is None or not sha.startswith(ref.lower()):
            raise ApiError(422, f"No commit found for SHA: {ref}")
        body = req.json()
        if not isinstance(body, dict):
            raise ApiError(400, "Problems parsing JSON")
        state = body.get("state")
        if state not in COMMIT_STATES:
            raise _validation_failed("state", state)
        assert req.caller is not None
        status = CommitStatus(
            id=self._next_commit_status_id,
            repo_id=repo.id,
            sha=sha,
            state=state,
            target_url=body.get("target_url"),
            description=body.get("description"),
            context=str(body.get("context") or "default"),
            creator=req.caller,
            created_at=_iso(self.clock.now()),
        )
        self._next_commit_status_id += 1
        self.state.commit_statuses.append(status)
        return ApiResponse(201, self.commit_status_body(status, req.api))

    def _latest_statuses(self, repo: Repo, sha: str) -> dict[str, CommitStatus]:
        latest: dict[str, CommitStatus] = {}
        for s in self.state.commit_statuses:
            if s.repo_id == repo.id and s.sha == sha:
                latest[s.context] = s  # appended in time order: the last one wins
        return latest

    def list_commit_statuses(self, req: ApiRequest) -> ApiResponse:
        repo = self._repo(req, permission="statuses")
        sha = self.bare(repo).resolve(unquote(req.params["ref"]))
        items = [
            s for s in reversed(self.state.commit_statuses) if sha is not None and s.repo_id == repo.id and s.sha == sha
        ]
        return self.paginate(req, [self.commit_status_body(s, req.api) for s in items])

    def get_combined_status(self, req: ApiRequest) -> ApiResponse:
        repo = self._repo(req, permission="statuses")
        ref = unquote(req.params["ref"])
        sha = self.bare(repo).resolve(ref)
        if sha is None:
            raise ApiError(404, f"No commit found for SHA: {ref}")
        latest = sorted(self._latest_statuses(repo, sha).values(), key=lambda s: -s.id)
        states = {s.state for s in latest}
        if states & {"error", "failure"}:
            state = "failure"
        elif not latest or "pending" in states:
            state = "pending"
        else:
            state = "success"
        page = self.paginate(req, [self.commit_status_body(s, req.api) for s in latest])
        r = f"{req.api}/repos/{repo.full_name}"
        body = {
            "state": state,
            "statuses": page.body,
            "sha": sha,
            "total_count": len(latest),
            "repository": self.repo_body(repo, req.api),
            "commit_url": f"{r}/commits/{sha}",
            "url": f"{r}/commits/{sha}/status",
        }
        return ApiResponse(200, body, page.headers)

    # ------------------------------------------------ github.com: OAuth (device flow, web flow)

    def _handle_login(self, request: RawRequest, path: str, query: list[tuple[str, str]]) -> RawResponse:
        params = _oauth_params(request, query)
        if path == "/login/device/code" and request.method == "POST":
            return self._device_code(request, params)
        if path == "/login/oauth/access_token" and request.method == "POST":
            return self._access_token(request, params)
        if path == "/login/oauth/authorize" and request.method in ("GET", "POST"):
            return self._authorize(request, params)
        if path == "/login/device" and request.method in ("GET", "POST"):
            return self._device_page(request, params)
        return RawResponse(404, b"Not Found", {"Content-Type": "text/plain; charset=utf-8"})

    def _device_code(self, request: RawRequest, params: dict[str, str]) -> RawResponse:
        if params.get("client_id") != self.app.client_id:
            return RawResponse(404, b"Not Found", {"Content-Type": "text/plain; charset=utf-8"})
        now = self.clock.now()
        while True:
            raw = "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(8))
            user_code = f"{raw[:4]}-{raw[4:]}"
            if all(d.user_code != user_code for d in self.state.device_codes.values()):
                break
        device = DeviceCode(
            device_code=secrets.token_hex(20),
            user_code=user_code,
            client_id=params["client_id"],
            scope=params.get("scope", ""),
            expires_at=now + timedelta(seconds=DEVICE_CODE_TTL),
        )
        self.state.device_codes[device.device_code] = device
        body = {
            "device_code": device.device_code,
            "user_code": device.user_code,
            "verification_uri": f"{request.base}/login/device",
            "expires_in": DEVICE_CODE_TTL,
            "interval": device.interval,
        }
        return _oauth_answer(request, body)

    def _access_token(self, request: RawRequest, params: dict[str, str]) -> RawResponse:
        grant_type = params.get("grant_type") or "authorization_code"
        if grant_type == DEVICE_GRANT:
            return self._poll_device(request, params)
        if grant_type != "authorization_code":
            return _oauth_error(request, "unsupported_grant_type")
        app = self.app
        if params.get("client_id") != app.client_id or params.get("client_secret") != app.client_secret:
            return _oauth_error(request, "incorrect_client_credentials")
        code = self.state.auth_codes.pop(params.get("code", ""), None)  # single use, even when it fails
        if code is None or code.client_id != app.client_id or code.expires_at <= self.clock.now():
            return _oauth_error(request, "bad_verification_code")
        if params.get("redirect_uri") and params["redirect_uri"] != code.redirect_uri:
            return _oauth_error(request, "redirect_uri_mismatch")
        return _oauth_answer(request, {"access_token": self.token_for(code.login), "token_type": "bearer", "scope": ""})

    def _poll_device(self, request: RawRequest, params: dict[str, str]) -> RawResponse:
        if params.get("client_id") != self.app.client_id:
            return _oauth_error(request, "incorrect_client_credentials")
        device = self.state.device_codes.get(params.get("device_code", ""))
        if device is None or device.client_id != params["client_id"]:
            return _oauth_error(request, "incorrect_device_code")
        now = self.clock.now()
        if device.expires_at <= now:
            return _oauth_error(request, "expired_token")
        last, device.last_poll = device.last_poll, now
        if last is not None and (now - last).total_seconds() < device.interval:
            # GitHub's docs, "Authorizing OAuth apps", error codes for the device flow: "When you receive the
            # slow_down error, 5 extra seconds are added to the minimum interval ... The error response
            # includes the new interval that you must use."
            device.interval += 5
            return _oauth_error(request, "slow_down", interval=device.interval)
        if device.status == "denied":
            return _oauth_error(request, "access_denied")
        if device.status == "approved" and device.login is not None:
            del self.state.device_codes[device.device_code]  # a device code gives one token
            body = {"access_token": self.token_for(device.login), "token_type": "bearer", "scope": ""}
            return _oauth_answer(request, body)
        return _oauth_error(request, "authorization_pending")

    def _signed_in(self, request: RawRequest, params: dict[str, str]) -> User | None:
        login = params.get("login")
        if not login:
            cookie = SimpleCookie()
            try:
                cookie.load(request.headers.get("cookie", ""))
            except Exception:  # a malformed cookie header: signed out
                return None
            morsel = cookie.get("standin_login")
            login = morsel.value if morsel is not None else None
        return self.state.users.get(login.lower()) if login else None

    def _authorize(self, request: RawRequest, params: dict[str, str]) -> RawResponse:
        app = self.app
        if params.get("client_id") != app.client_id:
            return _html(404, "<h1>404</h1><p>This is not the web page you are looking for.</p>")
        redirect_uri = params.get("redirect_uri") or app.callback_url
        if not redirect_uri or urlsplit(redirect_uri).scheme not in ("http", "https"):
            return _html(400, "<h1>The redirect_uri is missing or not an http(s) URL.</h1>")
        user = self._signed_in(request, params)
        if user is None:
            rest = [(k, v) for k, v in params.items() if k != "login"]
            links = "".join(
                f'<li><a href="/login/oauth/authorize?{html.escape(urlencode([*rest, ("login", u.login)]))}">'
                f"{html.escape(u.login)}</a> {html.escape(u.name or '')}</li>"
                for u in sorted(self.state.users.values(), key=lambda u: u.id)
            )
            return _html(
                200,
                f"<h1>Sign in to authorize {html.escape(app.name)}</h1>"
                f"<p>GitHub stand-in: pick the user you are.</p><ul>{links}</ul>",
            )
        code = AuthCode(
            code=secrets.token_hex(10),
            client_id=app.client_id,
            login=user.login,
            redirect_uri=redirect_uri,
            expires_at=self.clock.now() + timedelta(seconds=AUTH_CODE_TTL),
        )
        self.state.auth_codes[code.code] = code
        answer = [("code", code.code)] + ([("state", params["state"])] if "state" in params else [])
        location = redirect_uri + ("&" if "?" in redirect_uri else "?") + urlencode(answer)
        cookie = f"standin_login={quote(user.login)}; Path=/; HttpOnly; SameSite=Lax"
        return RawResponse(302, b"", {"Location": location, "Set-Cookie": cookie, "Cache-Control": "no-store"})

    def _device_page(self, request: RawRequest, params: dict[str, str]) -> RawResponse:
        """github.com/login/device: enter the code shown by the CLI, then authorize (or cancel)."""
        message = ""
        if request.method == "POST":
            user = self._signed_in(request, params)
            try:
                device = self._device_by_user_code(params.get("user_code", ""))
            except KeyError:
                return _html(404, "<h1>Incorrect code</h1><p>Check the code and try again.</p>")
            if device.expires_at <= self.clock.now():
                return _html(410, "<h1>This code has expired</h1>")
            if params.get("action") == "deny":
                self.deny_device(device.user_code)
                return _html(200, "<h1>Authorization cancelled</h1>")
            if user is None:
                message = "<p>Pick a user.</p>"
            else:
                self.approve_device(device.user_code, user.login)
                return _html(
                    200, f"<h1>Congratulations, you're all set!</h1><p>Signed in as {html.escape(user.login)}.</p>"
                )
        options = "".join(
            f'<option value="{html.escape(u.login)}">{html.escape(u.login)}</option>'
            for u in sorted(self.state.users.values(), key=lambda u: u.id)
        )
        return _html(
            200,
            f"<h1>Device activation</h1>{message}"
            '<form method="post" action="/login/device">'
            '<label>Code <input name="user_code" placeholder="XXXX-XXXX"></label> '
            f'<label>User <select name="login">{options}</select></label> '
            '<button name="action" value="approve">Authorize</button> '
            '<button name="action" value="deny">Cancel</button></form>',
        )


def _json(status: int, body: Any) -> RawResponse:
    return RawResponse(status, json.dumps(body).encode(), {"Content-Type": JSON_TYPE})


def _json_body(request: RawRequest) -> dict[str, Any]:
    try:
        data = json.loads(request.body or b"{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _html(status: int, content: str) -> RawResponse:
    page = f"<!doctype html><html><head><title>GitHub stand-in</title></head><body>{content}</body></html>"
    return RawResponse(status, page.encode(), {"Content-Type": HTML_TYPE})


def _oauth_params(request: RawRequest, query: list[tuple[str, str]]) -> dict[str, str]:
    """github.com's OAuth endpoints read the query string and a form or JSON body."""
    params = dict(query)
    if request.body.strip():
        if "json" in request.headers.get("content-type", ""):
            try:
                data = json.loads(request.body)
            except ValueError:
                data = None
            if isinstance(data, dict):
                params.update({str(k): str(v) for k, v in data.items() if v is not None})
        else:
            params.update(parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True))
    return params


def _oauth_answer(request: RawRequest, body: Mapping[str, Any], status: int = 200) -> RawResponse:
    """JSON when the client accepts it, else form-encoded: github.com's default."""
    if "application/json" in request.headers.get("accept", ""):
        return RawResponse(status, json.dumps(body).encode(), {"Content-Type": JSON_TYPE, "Cache-Control": "no-store"})
    form = urlencode([(k, str(v)) for k, v in body.items()])
    return RawResponse(status, form.encode(), {"Content-Type": FORM_TYPE, "Cache-Control": "no-store"})


def _oauth_error(request: RawRequest, error: str, **extra: Any) -> RawResponse:
    uri = DEVICE_ERRORS_URI if error not in ("bad_verification_code", "redirect_uri_mismatch") else OAUTH_ERRORS_URI
    body = {"error": error, "error_description": OAUTH_ERRORS[error], "error_uri": uri, **extra}
    return _oauth_answer(request, body)


def _epoch(iso: str) -> int:
    return int(datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp())


def _utc(iso: str) -> str:
    """git's ``%aI`` (``2024-01-01T00:00:00+00:00``) as GitHub writes dates: UTC with ``Z``."""
    return _iso(datetime.fromisoformat(iso))


def _int_arg(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


def _validation_failed(name: str, value: Any) -> ApiError:
    return ApiError(
        422,
        "Validation Failed",
        errors=[{"resource": "Request", "field": name, "code": "invalid", "value": value}],
    )
