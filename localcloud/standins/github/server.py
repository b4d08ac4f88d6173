"""The GitHub stand-in's server: construction (seed, App key, repositories directory), the route table,
dispatch under ``/api/v3`` (authentication by user token, installation token or App JWT; rate-limit headers;
the request log), and the stand-in-only ``/_stand-in/`` routes. The handlers live in the mixins it combines.
"""

from __future__ import annotations

import json
import queue
import re
import shutil
import tempfile
import threading
import time
import uuid
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from chalicelib.domain.clock import Clock, SystemClock
from localcloud.standins import RawRequest, RawResponse, StandIn
from localcloud.standins import github_webhooks as hooks
from localcloud.standins.github.accounts import AccountsMixin
from localcloud.standins.github.api import ApiError, ApiRequest, Handler, Identity, Route, not_found
from localcloud.standins.github.apps import AppsMixin
from localcloud.standins.github.common import (
    API_PREFIX,
    ARCHIVE_PATH,
    JSON_TYPE,
    JWT_CLOCK_DRIFT,
    JWT_MAX_LIFETIME,
    JWT_UNDECODABLE,
    NOT_FOR_INTEGRATIONS,
    PUSH_COMMITS_LIMIT,
    RATE_LIMIT_ANONYMOUS,
    RATE_LIMIT_AUTHENTICATED,
    REDACTED_QUERY_KEYS,
    REPO_ID_START,
    SEED_FILE,
)
from localcloud.standins.github.deployments import DeploymentsMixin
from localcloud.standins.github.git import CommitSpec
from localcloud.standins.github.oauth import OAuthMixin
from localcloud.standins.github.orgs import OrgsMixin
from localcloud.standins.github.repo_api import RepoApiMixin
from localcloud.standins.github.repos import ReposMixin
from localcloud.standins.github.shapes import ShapesMixin
from localcloud.standins.github.standin_routes import StandInRoutesMixin
from localcloud.standins.github.state import App, GitHubState, LoggedRequest, User
from localcloud.standins.github.webhooks import WebhooksMixin, _Outgoing

# The REST routes under /api/v3, in the order they are tried (the first full match wins; GitHub answers an unknown
# route and a wrong method alike, 404): method, path (``{name}``: a parameter; ``<team>``, ``<repo>``: each of
# the addresses in ADDRESSES), handler method, and ``public`` (no credential needed) or ``app`` (an app JWT).
ROUTES = """
GET     /rate_limit                                         get_rate_limit                  public
GET     /user                                               get_authenticated_user
GET     /user/orgs                                          list_my_orgs
GET     /user/teams                                         list_my_teams
GET     /user/memberships/orgs                              list_my_org_memberships
GET     /user/memberships/orgs/{org}                        get_my_org_membership
GET     /user/installations                                 list_my_installations
GET     /users/{login}                                      get_user                        public
GET     /users/{login}/orgs                                 list_user_public_orgs           public
GET     /orgs/{org}                                         get_org                         public
GET     /orgs/{org}/members                                 list_org_members                public
GET     /orgs/{org}/members/{login}                         check_org_member                public
GET     /orgs/{org}/public_members                          list_org_public_members         public
GET     /orgs/{org}/public_members/{login}                  check_public_member             public
GET     /orgs/{org}/memberships/{login}                     get_org_membership
PUT     /orgs/{org}/memberships/{login}                     put_org_membership
DELETE  /orgs/{org}/memberships/{login}                     delete_org_membership
GET     /orgs/{org}/teams                                   list_teams
GET     <team>                                              get_team
GET     <team>/members                                      list_team_members
GET     <team>/members/{login}                              check_team_member
PUT     <team>/members/{login}                              legacy_add_team_member
DELETE  <team>/members/{login}                              delete_team_membership
GET     <team>/memberships/{login}                          get_team_membership
PUT     <team>/memberships/{login}                          put_team_membership
DELETE  <team>/memberships/{login}                          delete_team_membership
# The app (JWT) and its installations (installation tokens).
GET     /app                                                get_app                         app
GET     /app/installations                                  list_app_installations          app
GET     /app/installations/{installation_id}                get_app_installation            app
POST    /app/installations/{installation_id}/access_tokens  create_access_token             app
GET     /orgs/{org}/installation                            get_org_installation            app
GET     /app/hook/config                                    get_hook_config                 app
GET     /app/hook/deliveries                                list_deliveries                 app
GET     /app/hook/deliveries/{delivery_id}                  get_delivery                    app
POST    /app/hook/deliveries/{delivery_id}/attempts         redeliver_delivery              app
GET     /installation/repositories                          list_installation_repositories
GET     /repos/{owner}/{repo}/installation                  get_repo_installation           app
GET     <repo>                                              get_repo
GET     <repo>/collaborators/{login}/permission             get_collaborator_permission
GET     <repo>/compare/{basehead}                           compare
GET     <repo>/contents                                     get_contents
GET     <repo>/contents/{path}                              get_contents
GET     <repo>/commits                                      list_commits
GET     <repo>/commits/{ref}/statuses                       list_commit_statuses
GET     <repo>/commits/{ref}/status                         get_combined_status
GET     <repo>/commits/{ref}                                get_commit
GET     <repo>/statuses/{ref}                               list_commit_statuses            # the legacy address
POST    <repo>/statuses/{sha}                               create_commit_status
GET     <repo>/deployments                                  list_deployments
POST    <repo>/deployments                                  create_deployment
GET     <repo>/deployments/{deployment_id}                  get_deployment
GET     <repo>/deployments/{deployment_id}/statuses         list_deployment_statuses
POST    <repo>/deployments/{deployment_id}/statuses         create_deployment_status
GET     <repo>/deployments/{deployment_id}/statuses/{status_id}  get_deployment_status
DELETE  /installation/token                                 revoke_installation_token
"""
# A team has three addresses and a repository two (by name, and by id, which survives a rename or a transfer);
# the same handlers serve each.
ADDRESSES = {
    "team": ("/orgs/{org}/teams/{slug}", "/teams/{team_id}", "/organizations/{org_id}/team/{team_id}"),
    "repo": ("/repos/{owner}/{repo}", "/repositories/{repository_id}"),
}
# A parameter matches one path segment, but for these.
PARAM_PATTERNS = {"basehead": ".+", "ref": ".+", "path": ".*"} | {
    name: r"\d+"
    for name in ("team_id", "org_id", "installation_id", "delivery_id", "repository_id", "deployment_id", "status_id")
}


def _route_pattern(path: str) -> str:
    """``/orgs/{org}/teams`` as the regex :meth:`GitHubStandIn.route` takes: ``/orgs/(?P<org>[^/]+)/teams``."""
    return re.sub(r"\{(\w+)\}", lambda m: f"(?P<{m[1]}>{PARAM_PATTERNS.get(m[1], '[^/]+')})", path)


class GitHubStandIn(
    AccountsMixin,
    ReposMixin,
    WebhooksMixin,
    ShapesMixin,
    OrgsMixin,
    AppsMixin,
    RepoApiMixin,
    DeploymentsMixin,
    OAuthMixin,
    StandInRoutesMixin,
    StandIn,
):
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
        self.clock: Clock = clock or SystemClock()
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

    # ------------------------------------------------ routing

    def route(self, method: str, pattern: str, handler: Handler, auth: bool = True, app: bool = False) -> None:
        """Registers ``handler`` for ``method`` and a path regex (full match, under /api/v3); ``app``: the
        caller must authenticate with an app JWT."""
        self.routes.append(Route(method.upper(), re.compile(pattern), handler, auth, app))

    def _register_routes(self) -> None:
        for line in ROUTES.splitlines():
            row = line.split("#", 1)[0].split()
            if not row:
                continue
            method, path, handler, *flags = row
            address = re.match(r"<(\w+)>", path)
            for prefix in ADDRESSES[address[1]] if address else ("",):
                pattern = _route_pattern(prefix + path.removeprefix(address[0] if address else ""))
                self.route(method, pattern, getattr(self, handler), auth="public" not in flags, app="app" in flags)

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
