"""Every route, read from the route registry, called by every kind of caller: each role of the
namespace, someone outside it, a token of another namespace, a region's ingest token, an expired, a
revoked, a malformed and no token. A route added to the app is walked too, so none can escape; a
public route must be named in PUBLIC on purpose."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from chalicelib.api.registry import RouteSpec, registry
from chalicelib.api.security import NAMESPACE_TOKEN_ROUTES
from chalicelib.domain.clock import SystemClock
from chalicelib.domain.model import SCOPES_OF_ROLE, Role, role_at_least
from localcloud.cloud import LocalCloud
from tests.fixtures import start_platform

NS = "acme-backend"
PUBLIC = {
    ("GET", "/v1/health"),
    ("GET", "/openapi.json"),
    ("POST", "/v1/auth/device"),
    ("POST", "/v1/auth/device/token"),
    ("GET", "/v1/auth/github/login"),
    ("GET", "/v1/auth/github/callback"),
    ("POST", "/v1/auth/local-login"),
    ("POST", "/v1/auth/local-session"),
    ("POST", "/v1/webhooks/github"),
    ("POST", "/v1/webhooks/stripe"),  # authenticated by its Stripe-Signature (tests/functional/test_stripe_billing.py)
}
LAST = [("DELETE", "/v1/namespaces/{ns}"), ("POST", "/v1/auth/logout")]


def login(api: str, who: str) -> str:
    return str(requests.post(f"{api}/v1/auth/local-login", json={"login": who}, timeout=10).json()["token"])


def call(api: str, method: str, path: str, token: str | None, body: Any = None) -> requests.Response:
    headers = {} if token is None else {"Authorization": token if token.startswith("Bearer") else f"Bearer {token}"}
    return requests.request(method, f"{api}{path}", json=body, headers=headers, timeout=30, allow_redirects=False)


def onboard(cloud: LocalCloud, token: str, team: str) -> None:
    r = call(
        cloud.api_url, "POST", "/v1/namespaces", token, {"github_org": "acme", "github_team": team, "region": "local"}
    )
    assert r.status_code == 202, r.text
    arn = cloud.resources["state_machines"]["onboarding"].replace(":stateMachine:", ":execution:")
    assert cloud.wait_execution(f"{arn}:acme-{team}", timeout=60)["status"] == "SUCCEEDED"


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, env_restored: None) -> Iterator[tuple[LocalCloud, dict[str, Any]]]:
    from chalicelib.composition import set_container

    cloud = start_platform(tmp_path_factory.mktemp("matrix"), SystemClock())
    api = cloud.api_url
    ada, linus, grace, ops, ken = (login(api, w) for w in ("ada", "linus", "grace", "ops", "ken"))
    onboard(cloud, ada, "backend")
    onboard(cloud, ada, "frontend")
    assert call(api, "POST", f"/v1/namespaces/{NS}/members", ada, {"login": "ops"}).status_code == 201
    other = call(api, "POST", "/v1/tokens", ken, {"name": "fe", "namespace": "acme-frontend", "scopes": ["read"]})
    expiring = call(
        api, "POST", "/v1/tokens", linus, {"name": "short", "namespace": NS, "scopes": ["read"], "expires_in": 1}
    )
    revoked = call(api, "POST", "/v1/tokens", linus, {"name": "gone", "namespace": NS, "scopes": ["read"]})
    assert call(api, "DELETE", f"/v1/tokens/{revoked.json()['id']}", linus).status_code == 204
    ingest = call(api, "POST", "/v1/regions/local/ingest-tokens", ops, {"name": "matrix"})
    assert ingest.status_code == 201, ingest.text
    time.sleep(1.2)
    callers: dict[str, Any] = {
        "owner": (ada, "owner"),
        "admin": (linus, "admin"),
        "member": (grace, "member"),
        "viewer": (ops, "viewer"),
        "outsider": (ken, None),
        "other_namespace_token": (other.json()["token"], None),
        "ingest_token": (ingest.json()["token"], None),
        "expired": (expiring.json()["token"], None),
        "revoked": (revoked.json()["token"], None),
        "malformed": ("Bearer not-a-platform-token", None),
        "none": (None, None),
    }
    yield cloud, callers
    cloud.stop()
    set_container(None)


def expected(spec: RouteSpec, caller: str, role: Role | None) -> str:
    """``401``, ``403``, ``404`` (the namespace is hidden) or ``allowed``."""
    assert spec.auth is not None
    if caller in ("expired", "revoked", "malformed", "none"):
        return "401"
    # an ingest token reaches the ingest route only, and only it reaches that route
    if caller == "ingest_token":
        return "allowed" if spec.auth.role == "ingest" else "403"
    if spec.auth.role == "ingest":
        return "403"
    scoped = "{ns}" in spec.path
    if caller == "other_namespace_token":
        if scoped:
            return "404"
        # a namespace's token acts only in it: elsewhere only the routes that answer about it alone
        return "allowed" if (spec.method, spec.path) in NAMESPACE_TOKEN_ROUTES else "403"
    if scoped:
        if role is None:
            return "404"
        if spec.auth.role is not None and not role_at_least(role, spec.auth.role):  # type: ignore[arg-type]
            return "403"
        if spec.auth.scope is not None and spec.auth.scope not in SCOPES_OF_ROLE[role]:
            return "403"
    if spec.auth.role == "platform_admin":
        return "allowed" if caller == "viewer" else "403"  # the viewer is ops, a platform admin (PLATFORM_ADMINS)
    return "allowed"


def concrete(path: str) -> str:
    return (
        path.replace("{ns}", NS)
        .replace("{token_id}", "01NOTATOKEN0000000000000000")
        .replace("{login}", "nobody")
        .replace("{region}", "local")
    )


def ordered_specs() -> list[RouteSpec]:
    def key(s: RouteSpec) -> int:
        return LAST.index((s.method, s.path)) + 1 if (s.method, s.path) in LAST else 0

    return sorted(registry.specs, key=key)


def test_every_route_answers_every_caller_as_its_declaration_says(setup: tuple[LocalCloud, dict[str, Any]]) -> None:
    cloud, callers = setup
    walked = 0
    failures = []
    order = list(callers)
    for spec in ordered_specs():
        if spec.auth is None:
            assert (spec.method, spec.path) in PUBLIC, f"{spec.method} {spec.path} has no auth and is not PUBLIC"
            continue
        # the owner last, so that a route that really deletes runs after everyone else was checked
        for caller in sorted(order, key=lambda c: c == "owner"):
            token, role = callers[caller]
            want = expected(spec, caller, role)
            body = {} if spec.request is not None else None
            r = call(cloud.api_url, spec.method, concrete(spec.path), token, body)
            walked += 1
            err = (
                (r.json().get("error") or {})
                if r.headers.get("Content-Type", "").startswith("application/json") and r.content
                else {}
            )
            hidden = r.status_code == 404 and err.get("details", {}).get("namespace") == NS
            got = "401" if r.status_code == 401 else "403" if r.status_code == 403 else "404" if hidden else "allowed"
            if got != want:
                failures.append(
                    f"{spec.method} {spec.path} as {caller}: wanted {want}, got {r.status_code} {r.text[:150]}"
                )
            if r.status_code == 401:
                assert r.headers.get("WWW-Authenticate", "").startswith("Bearer"), (spec.path, caller)
            if r.status_code in (401, 403, 404):
                assert set(err) == {"code", "message", "details"}, (spec.path, caller, r.text)
            if r.status_code == 403:
                assert err["details"].get("needed_role") or err["details"].get("needed_scope"), (spec.path, caller)
                assert "token_namespace" not in err["details"] or caller == "other_namespace_token"
    assert not failures, "\n".join(failures)
    assert walked >= 10 * (len(registry.specs) - len(PUBLIC))


def test_the_registry_is_the_app(setup: tuple[LocalCloud, dict[str, Any]]) -> None:
    from app import app
    from chalicelib.pages.routes import routes as page_routes

    api = {(m, p) for p, ms in app.routes.items() for m in ms} - page_routes()
    assert api == {(s.method, s.path) for s in registry.specs}
