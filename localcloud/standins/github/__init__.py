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

Repositories (seed ``"repos"``; :mod:`localcloud.standins.github.git`): each is a bare git repository at
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
(a :class:`chalicelib.domain.clock.Clock`; :class:`~chalicelib.domain.clock.SystemClock` by default).

The package, by concern (:class:`GitHubStandIn` combines the mixins; each module says what it mirrors):

- :mod:`.state`: the model (:class:`GitHubState` and its records), built from the seed;
- :mod:`.common`: constants and small helpers; :mod:`.api`: request, response, error and route types;
- :mod:`.server`: construction, the route table, dispatch, authentication, rate-limit headers, the request
  log; :mod:`.standin_routes`: the ``/_stand-in/`` routes;
- :mod:`.shapes`: the JSON shapes (users, organizations, teams, installations, repositories, commits, ...);
- :mod:`.orgs`, :mod:`.apps`, :mod:`.repo_api`, :mod:`.deployments`: the REST handlers by API area;
- :mod:`.oauth`: github.com's device and web flows;
- :mod:`.accounts`, :mod:`.repos`: the Python side for tests and the local cloud (memberships,
  installations, repositories, pushes); :mod:`.git`: bare repositories; :mod:`.webhooks`: sending webhooks
  (the payloads: :mod:`localcloud.standins.github_webhooks`).

To add endpoints: add state to :class:`GitHubState`, a handler method (in the mixin of its API area) taking an
:class:`ApiRequest` and returning an :class:`ApiResponse` (or raising :class:`ApiError`), and add a row to the
route table (``ROUTES`` in :mod:`.server`), or call :meth:`GitHubStandIn.route` on a stand-in.
"""

from __future__ import annotations

from localcloud.standins.github.api import ApiError, ApiRequest, ApiResponse
from localcloud.standins.github.common import API_PREFIX, DEVICE_GRANT, default_token
from localcloud.standins.github.server import GitHubStandIn
from localcloud.standins.github.state import App, GitHubState, Installation, Org, Repo, Team, User

__all__ = [
    "API_PREFIX",
    "DEVICE_GRANT",
    "ApiError",
    "ApiRequest",
    "ApiResponse",
    "App",
    "GitHubStandIn",
    "GitHubState",
    "Installation",
    "Org",
    "Repo",
    "Team",
    "User",
    "default_token",
]
