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
    auth = get_container().auth
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
