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
  answers 403 ``Resource not accessible by integration``); ``GET /installation/repositories`` (none) and
  ``DELETE /installation/token``. ``GET /user/installations`` with a user token.
- Webhooks (:mod:`localcloud.standins.github_webhooks`): with :attr:`GitHubStandIn.webhook_url` set, team and
  organization membership changes (API or Python methods) and installs/uninstalls are sent signed with the
  app's webhook secret from a background thread, once (never retried), and recorded for the deliveries
  API. :meth:`GitHubStandIn.wait_for_deliveries` waits for the outbox to drain.

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
import queue
import re
import secrets
import string
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import jwt
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from localcloud.standins import RawRequest, RawResponse, StandIn
from localcloud.standins import github_webhooks as hooks

SEED_FILE = Path(__file__).with_name("seed.json")
API_PREFIX = "/api/v3"
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
            org = Org(id=int(o["id"]), login=o["login"], name=o.get("name"), description=o.get("description"))
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


def _slugify(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


# ---------------------------------------------------------------- request / response


class ApiError(Exception):
    """An error answer in GitHub's shape: ``{"message", "documentation_url", "status"}``."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra

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
    ) -> None:
        super().__init__(host, port)
        if seed is None:
            seed = json.loads(SEED_FILE.read_text())
        self.lock = threading.RLock()
        self.clock: Clock = clock or UtcClock()
        self.state = GitHubState.from_seed(seed)
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
                    url, original.event, original.action, original.installation_id, original.body, original.guid, True
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

    def _emit(self, event: str, action: str | None, payload: Any, installation: Installation | None) -> None:
        if self.webhook_url is None:
            return
        outgoing = _Outgoing(
            self.webhook_url,
            event,
            action,
            installation.id if installation else None,
            hooks.encode(payload),
            str(uuid.uuid4()),
            False,
        )
        self._enqueue(outgoing)

    def _enqueue(self, outgoing: _Outgoing) -> None:
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
        with self.lock:
            self.state.deliveries.append(
                Delivery(
                    id=self._next_delivery_id,
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
                )
            )
            self._next_delivery_id += 1

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

    def list_installation_repositories(self, req: ApiRequest) -> ApiResponse:
        if req.installation is None:
            raise ApiError(
                403,
                "You must authenticate with an installation access token in order to list repositories for an "
                "installation.",
            )
        selection = req.installation.repository_selection
        return ApiResponse(200, {"total_count": 0, "repository_selection": selection, "repositories": []})

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
