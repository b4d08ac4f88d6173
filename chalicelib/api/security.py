"""Authentication and authorisation of every route, from its declaration in the registry, and the
audit entry of every state-changing request. Installed on the registry by app.py."""

from __future__ import annotations

from http.cookies import SimpleCookie
from typing import TYPE_CHECKING

from chalicelib.api.registry import Call, RouteRegistry, RouteSpec
from chalicelib.composition import get_container
from chalicelib.domain.errors import ForbiddenError, UnauthenticatedError

if TYPE_CHECKING:
    from chalicelib.domain.model import Principal

SESSION_COOKIE = "platform_session"
# The routes without a namespace that a namespace's API token may call (they answer only about it).
NAMESPACE_TOKEN_ROUTES = frozenset(
    {
        ("GET", "/v1/me"),
        ("GET", "/v1/namespaces"),
        ("GET", "/v1/regions"),
        ("GET", "/v1/plans"),
        ("POST", "/v1/auth/logout"),
    }
)
CSRF_HEADER = "x-requested-with"


def cookie(call: Call, name: str) -> str | None:
    raw = call.header("cookie")
    if not raw:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(raw)
    except Exception:
        return None
    morsel = jar.get(name)
    return morsel.value if morsel is not None else None


def authenticate(call: Call) -> Principal:
    auth = get_container().auth
    header = call.header("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise UnauthenticatedError("use 'Authorization: Bearer <token>'", {"reason": "malformed"})
        return auth.authenticate_token(value.strip())
    session = cookie(call, SESSION_COOKIE)
    if session:
        return auth.authenticate_session(session)
    raise UnauthenticatedError("this needs a platform token (platform login) or a session", {"reason": "missing"})


def guard(spec: RouteSpec, call: Call) -> None:
    if spec.auth is None:
        return
    principal = authenticate(call)
    call.principal = principal
    if principal.via == "session" and spec.method not in ("GET", "HEAD") and not call.header(CSRF_HEADER):
        raise ForbiddenError("a browser session must send X-Requested-With on changes", {"needed_header": CSRF_HEADER})
    if ingest_guard(spec, principal):
        return
    auth = get_container().auth
    if (
        "ns" not in call.params
        and principal.token_namespace is not None
        and ((spec.method, spec.path) not in NAMESPACE_TOKEN_ROUTES)
    ):
        raise ForbiddenError(
            "a token of one namespace acts only in that namespace; log in for this",
            {"needed_scope": "a login token or a session", "token_namespace": principal.token_namespace},
        )
    if spec.auth.role == "platform_admin":
        if not principal.platform_admin:
            raise ForbiddenError("this needs a platform admin", {"needed_role": "platform_admin"})
        auth.require_scope(principal, spec.auth.scope)
        return
    if "ns" in call.params:
        call.access = auth.access(principal, call.params["ns"], scope=spec.auth.scope, role=spec.auth.role)  # type: ignore[arg-type]
        call.audit_namespace = call.params["ns"]
    else:
        auth.require_scope(principal, spec.auth.scope)


def ingest_guard(spec: RouteSpec, principal: Principal) -> bool:
    """Ingest tokens (a region's runtime side) reach the ingest route only, and only they reach it:
    no user can post their own billed usage. True when the caller is through (an ingest token on
    the ingest route)."""
    assert spec.auth is not None
    wants_ingest = spec.auth.role == "ingest"
    if principal.via == "ingest" and not wants_ingest:
        raise ForbiddenError(
            "an ingest token may only post usage events", {"needed_role": spec.auth.role or "user", "token": "ingest"}
        )
    if wants_ingest and principal.via != "ingest":
        raise ForbiddenError(
            "usage events are posted with a region's ingest token (mp_ing_...), not a user's credential",
            {"needed_role": "ingest"},
        )
    return wants_ingest


def audit(spec: RouteSpec, call: Call, status: int) -> None:
    """One entry per state-changing request, in the namespace it concerns (when it has one)."""
    if spec.method in ("GET", "HEAD") or call.audit_namespace is None:
        return
    actor = call.principal.actor if call.principal is not None else "anonymous"
    outcome = "ok" if status < 400 else f"error:{status}"
    get_container().audit.record(
        call.audit_namespace,
        actor,
        spec.operation_id,
        call.audit_target or f"{spec.method} {call.path}",
        outcome,
        source_ip=call.source_ip,
        user_agent=call.header("user-agent"),
        details={"request_id": call.request_id, "status": str(status)},
    )


def install(registry: RouteRegistry) -> None:
    from chalicelib.api import idempotency

    registry.guard = guard
    registry.after = audit
    registry.replay = idempotency.begin
    registry.remember = idempotency.finish
