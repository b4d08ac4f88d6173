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

To add endpoints (repositories, app installations, ...): add state to :class:`GitHubState`, a handler
method taking an :class:`ApiRequest` and returning an :class:`ApiResponse` (or raising :class:`ApiError`),
and register it in :meth:`GitHubStandIn._register_routes` with :meth:`GitHubStandIn.route`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from localcloud.standins import RawRequest, RawResponse, StandIn

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
REDACTED_QUERY_KEYS = {"access_token", "client_secret", "token", "code"}


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
    caller: User | None
    params: dict[str, str] = field(default_factory=dict)

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


# ---------------------------------------------------------------- the stand-in


class GitHubStandIn(StandIn):
    name = "GitHub stand-in"

    def __init__(self, host: str = "127.0.0.1", port: int = 0, seed: Mapping[str, Any] | None = None) -> None:
        super().__init__(host, port)
        if seed is None:
            seed = json.loads(SEED_FILE.read_text())
        self.lock = threading.RLock()
        self.state = GitHubState.from_seed(seed)
        self.rate_window_reset = int(time.time()) + 3600
        self.routes: list[Route] = []
        self._register_routes()

    @property
    def api_url(self) -> str:
        return self.url + API_PREFIX

    # ------------------------------------------------ state access for tests and the local cloud

    def token_for(self, login: str) -> str:
        with self.lock:
            user = self.state.user(login)
            return next(t for t, who in self.state.tokens.items() if who == user.login.lower())

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

    def add_org_member(self, org: str, login: str, role: str = "member") -> None:
        with self.lock:
            self.state.user(login)
            self.state.org(org).members[login.lower()] = OrgMembership(role=role)

    def remove_org_member(self, org: str, login: str) -> None:
        """Removes the user from the organization and from all its teams, as GitHub does."""
        with self.lock:
            o = self.state.org(org)
            o.members.pop(login.lower(), None)
            for team in o.teams.values():
                team.members.pop(login.lower(), None)

    def add_team_member(self, org: str, team: str, login: str, role: str = "member") -> None:
        """Adds an active team member (and an active org member if they were not one)."""
        with self.lock:
            self.state.user(login)
            t = self.state.team(org, team)
            o = self.state.org(org)
            membership = o.members.get(login.lower())
            if membership is None:
                o.members[login.lower()] = OrgMembership(role="member")
            else:
                membership.state = "active"
            t.members[login.lower()] = TeamMembership(role=role)

    def remove_team_member(self, org: str, team: str, login: str) -> None:
        with self.lock:
            self.state.team(org, team).members.pop(login.lower(), None)

    def accept_invitation(self, org: str, login: str) -> None:
        """The invited user accepts: pending org and team memberships become active."""
        with self.lock:
            o = self.state.org(org)
            if login.lower() in o.members:
                o.members[login.lower()].state = "active"
            for team in o.teams.values():
                if login.lower() in team.members:
                    team.members[login.lower()].state = "active"

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

    # ------------------------------------------------ routing

    def route(self, method: str, pattern: str, handler: Handler, auth: bool = True) -> None:
        """Registers ``handler`` for ``method`` and a path regex (full match, under /api/v3)."""
        self.routes.append(Route(method.upper(), re.compile(pattern), handler, auth))

    def _register_routes(self) -> None:
        seg = r"[^/]+"
        r = self.route
        r("GET", r"/rate_limit", self.get_rate_limit, auth=False)
        r("GET", r"/user", self.get_authenticated_user)
        r("GET", r"/user/orgs", self.list_my_orgs)
        r("GET", r"/user/teams", self.list_my_teams)
        r("GET", r"/user/memberships/orgs", self.list_my_org_memberships)
        r("GET", rf"/user/memberships/orgs/(?P<org>{seg})", self.get_my_org_membership)
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

    # ------------------------------------------------ HTTP

    def handle(self, request: RawRequest) -> RawResponse:
        split = urlsplit(request.target)
        path = split.path
        query = parse_qsl(split.query, keep_blank_values=True)
        if path.startswith("/_stand-in/"):
            return self._handle_stand_in(request.method, path)
        with self.lock:
            caller: User | None = None
            status = 404
            headers: dict[str, str] = {}
            try:
                if path != API_PREFIX and not path.startswith(API_PREFIX + "/"):
                    raise not_found()
                api_path = path[len(API_PREFIX) :].rstrip("/") or "/"
                caller = self._authenticate(request.headers)
                headers.update(self._rate_headers(caller))
                method = "GET" if request.method == "HEAD" else request.method
                route, params = self._match(method, api_path)
                if route.auth and caller is None:
                    raise ApiError(401, "Requires authentication")
                api_request = ApiRequest(
                    method, api_path, query, request.headers, request.body, request.base, caller, params
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

    def _handle_stand_in(self, method: str, path: str) -> RawResponse:
        if path.rstrip("/") == "/_stand-in/requests":
            if method == "GET":
                body = json.dumps(self.requests_log()).encode()
                return RawResponse(200, body, {"Content-Type": JSON_TYPE})
            if method == "DELETE":
                self.clear_requests()
                return RawResponse(204)
        return RawResponse(404, json.dumps(not_found().body()).encode(), {"Content-Type": JSON_TYPE})

    def _authenticate(self, headers: Mapping[str, str]) -> User | None:
        value = headers.get("authorization")
        if not value:
            return None
        scheme, _, credential = value.strip().partition(" ")
        login = self.state.tokens.get(credential.strip()) if scheme.lower() in ("token", "bearer") else None
        if login is None:
            raise ApiError(401, "Bad credentials")
        return self.state.users[login]

    def _match(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        for route in self.routes:
            if route.method != method:
                continue
            m = route.pattern.fullmatch(path)
            if m:
                return route, m.groupdict()
        raise not_found()  # GitHub answers an unknown route and a wrong method alike

    def _rate_headers(self, caller: User | None) -> dict[str, str]:
        now = int(time.time())
        if now >= self.rate_window_reset:
            self.rate_window_reset = now + 3600
            self.state.rate_used.clear()
        identity = caller.login.lower() if caller else "anonymous"
        used = self.state.rate_used.get(identity, 0) + 1
        self.state.rate_used[identity] = used
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
                at=datetime.now(UTC).isoformat(),
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

    def _team(self, req: ApiRequest) -> Team:
        caller = req.caller.login if req.caller else None
        team: Team | None
        if "slug" in req.params:
            team = self._org(req).teams.get(req.params["slug"].lower())
        else:
            team = self.state.team_by_id(int(req.params["team_id"]))
            if team is not None and "org_id" in req.params and self.state.org(team.org).id != int(req.params["org_id"]):
                team = None
        if team is None or not self.can_see_team(team, caller):
            raise not_found()
        return team

    def _active_users(self, logins: Iterable[str]) -> list[User]:
        return sorted((self.state.user(login) for login in logins), key=lambda u: u.id)

    # ------------------------------------------------ handlers: users

    def get_rate_limit(self, req: ApiRequest) -> ApiResponse:
        limit = RATE_LIMIT_AUTHENTICATED if req.caller else RATE_LIMIT_ANONYMOUS
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
        caller = req.caller.login if req.caller else None
        insider = self.is_active_member(org, caller)  # outsiders see public members only
        logins = [
            login
            for login, m in org.members.items()
            if m.state == "active" and (insider or m.public) and role in ("all", m.role)
        ]
        return self.paginate(req, [self.user_simple(u, req.api) for u in self._active_users(logins)])

    def check_org_member(self, req: ApiRequest) -> ApiResponse:
        org = self._org(req)
        caller = req.caller.login if req.caller else None
        if not self.is_active_member(org, caller):
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
        if not (caller_is_subject or self.is_active_member(org, req.caller.login)):
            raise not_found()
        if login.lower() not in org.members:
            raise not_found()
        return ApiResponse(200, self.org_membership_body(org, login, req.api))

    def _require_owner(self, req: ApiRequest, org: Org) -> None:
        assert req.caller is not None
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
        self.remove_org_member(org.login, user.login)
        return ApiResponse(204)

    # ------------------------------------------------ handlers: teams

    def list_teams(self, req: ApiRequest) -> ApiResponse:
        assert req.caller is not None
        org = self._org(req)
        if not self.is_active_member(org, req.caller.login):
            raise not_found()
        teams = [t for t in sorted(org.teams.values(), key=lambda t: t.id) if self.can_see_team(t, req.caller.login)]
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
        login = req.caller.login.lower()
        m = team.members.get(login)
        maintainer = m is not None and m.state == "active" and m.role == "maintainer"
        if not (maintainer or self.is_owner(self.state.org(team.org), login)):
            raise ApiError(403, "You must be an organization owner or team maintainer to change team memberships.")

    def _add_to_team(self, team: Team, user: User, role: str | None) -> None:
        org = self.state.org(team.org)
        login = user.login.lower()
        if login not in org.members:  # an invitation to the organization
            org.members[login] = OrgMembership(role="member", state="pending")
        state = "active" if org.members[login].state == "active" else "pending"
        existing = team.members.get(login)
        if existing is None:
            team.members[login] = TeamMembership(role=role or "member", state=state)
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
        self._add_to_team(team, user, role)
        return ApiResponse(200, self.team_membership_body(team, user.login, req.api))

    def legacy_add_team_member(self, req: ApiRequest) -> ApiResponse:
        team = self._team(req)
        self._require_team_admin(req, team)
        user = self._user(req.params["login"])
        if not self.is_active_member(self.state.org(team.org), user.login):
            raise not_found()  # the legacy endpoint does not invite
        self._add_to_team(team, user, None)
        return ApiResponse(204)

    def delete_team_membership(self, req: ApiRequest) -> ApiResponse:
        team = self._team(req)
        self._require_team_admin(req, team)
        user = self._user(req.params["login"])
        team.members.pop(user.login.lower(), None)
        return ApiResponse(204)


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
