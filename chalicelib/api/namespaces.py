"""Namespaces, their members, their runtime access and their audit log; /v1/me and /v1/regions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalice.app import Blueprint

from chalicelib.api.registry import Auth, Call, registry
from chalicelib.composition import get_container
from chalicelib.domain.errors import ConflictError, ForbiddenError, NotFoundError, ValidationError

if TYPE_CHECKING:
    from chalicelib.domain.model import Namespace

bp = Blueprint(__name__)
route = registry.routes(bp, tag="namespaces")
S = "chalicelib.api.schemas.accounts"


def namespace_view(ns: Namespace) -> dict[str, Any]:
    return {
        "id": ns.id,
        "status": ns.status,
        "github_org": ns.github_org,
        "github_team": ns.github_team,
        "region": ns.region,
        "plan": ns.plan,
        "created_at": ns.created_at,
        "created_by": ns.created_by,
        "failure_reason": ns.failure_reason,
        "cluster_id": ns.cluster_id,
    }


@route(
    "/v1/me",
    "GET",
    tag="accounts",
    auth=Auth(scope="read"),
    response=f"{S}:MeOut",
    summary="The caller, their namespaces and their role in each",
)
def me(call: Call) -> dict[str, Any]:
    p = call.principal
    rows = get_container().namespaces.of_user(p.uid)
    if p.token_namespace is not None:
        rows = [(ns, role) for ns, role in rows if ns.id == p.token_namespace]
    return {
        "login": p.login,
        "id": p.uid,
        "platform_admin": p.platform_admin,
        "namespaces": [
            {
                "id": ns.id,
                "role": role,
                "github_org": ns.github_org,
                "github_team": ns.github_team,
                "status": ns.status,
                "region": ns.region,
            }
            for ns, role in rows
        ],
    }


@route(
    "/v1/regions",
    "GET",
    tag="accounts",
    auth=Auth(scope="read"),
    response=f"{S}:RegionsOut",
    summary="The regions a namespace can be placed in",
)
def list_regions(call: Call) -> dict[str, Any]:
    from chalicelib.domain.services.regions import region_health

    return {
        "regions": [
            {
                "name": r.name,
                "display_name": r.display_name,
                "cloud": r.cloud,
                "status": r.status,
                "health": region_health(r),
            }
            for r in get_container().regions.list()
        ]
    }


@route(
    "/v1/namespaces",
    "POST",
    status=202,
    auth=Auth(scope="admin"),
    request=f"{S}:NamespaceIn",
    response=f"{S}:NamespaceOut",
    errors=(ForbiddenError, ConflictError, ValidationError),
    summary="Onboard a GitHub team as a namespace (by an owner of the organization); 202, provisioning",
)
def create_namespace(call: Call) -> dict[str, Any]:
    b = call.body
    ns = get_container().namespaces.create(call.principal, b.github_org, b.github_team, b.region, b.plan)
    call.audit_namespace = ns.id
    call.audit_target = f"namespace:{ns.id}"
    return namespace_view(ns)


@route(
    "/v1/namespaces",
    "GET",
    auth=Auth(scope="read"),
    response=f"{S}:NamespacesOut",
    summary="The caller's namespaces",
)
def list_namespaces(call: Call) -> dict[str, Any]:
    rows = get_container().namespaces.of_user(call.principal.uid)
    return {"namespaces": [namespace_view(ns) for ns, _ in rows if call.principal.token_namespace in (None, ns.id)]}


@route(
    "/v1/namespaces/{ns}",
    "GET",
    auth=Auth(scope="read", role="viewer"),
    response=f"{S}:NamespaceOut",
    errors=(NotFoundError,),
    summary="A namespace: status, region, plan, created, failure reason",
)
def get_namespace(call: Call) -> dict[str, Any]:
    return namespace_view(get_container().namespaces.get(call.params["ns"]))


@route(
    "/v1/namespaces/{ns}",
    "DELETE",
    status=202,
    auth=Auth(scope="admin", role="owner"),
    response=f"{S}:NamespaceOut",
    errors=(NotFoundError, ConflictError),
    summary="Offboard: removes the runtime namespace, cancels the subscription at period end; "
    "keeps invoices and the audit log",
)
def delete_namespace(call: Call) -> dict[str, Any]:
    return namespace_view(get_container().namespaces.delete(call.params["ns"], call.principal))


@route(
    "/v1/namespaces/{ns}/members",
    "GET",
    auth=Auth(scope="read", role="viewer"),
    response=f"{S}:MembersOut",
    errors=(NotFoundError,),
    summary="Who may act in the namespace",
)
def list_members(call: Call) -> dict[str, Any]:
    return {
        "members": [
            {"login": m.login, "id": m.uid, "role": m.role, "source": m.source}
            for m in get_container().stores.members.list(call.params["ns"])
        ]
    }


@route(
    "/v1/namespaces/{ns}/members",
    "POST",
    status=201,
    auth=Auth(scope="admin", role="owner"),
    request=f"{S}:ViewerIn",
    response=f"{S}:MemberOut",
    errors=(NotFoundError, ConflictError),
    summary="Add an outside person as a viewer (owners only)",
)
def add_viewer(call: Call) -> dict[str, Any]:
    m = get_container().membership.add_viewer(call.params["ns"], call.body.login, actor=call.principal.actor)
    call.audit_target = f"member:{m.login}"
    return {"login": m.login, "id": m.uid, "role": m.role, "source": m.source}


@route(
    "/v1/namespaces/{ns}/members/{login}",
    "DELETE",
    status=204,
    auth=Auth(scope="admin", role="owner"),
    errors=(NotFoundError, ConflictError),
    response_content_type="text/plain",
    summary="Remove an outside viewer (team members are managed on GitHub)",
)
def remove_viewer(call: Call) -> Any:
    from chalice.app import Response

    get_container().membership.remove_viewer(call.params["ns"], call.params["login"], actor=call.principal.actor)
    call.audit_target = f"member:{call.params['login']}"
    return Response(body="", status_code=204, headers={"Content-Type": "text/plain"})


@route(
    "/v1/namespaces/{ns}/runtime",
    "GET",
    auth=Auth(scope="read", role="viewer"),
    response=f"{S}:RuntimeOut",
    errors=(NotFoundError, ConflictError, ForbiddenError),
    summary="The namespace's micro runtime for the caller: its addresses and a short-lived token of the caller's "
    "own runtime account (for ~/.micro); a token that may deploy needs the deploy scope",
)
def runtime_access(call: Call) -> dict[str, Any]:
    r = get_container().namespaces.runtime_access(call.params["ns"], call.principal)
    return {
        "namespace": r.namespace,
        "proxy_address": r.proxy_address,
        "api_address": r.api_address,
        "account": r.account,
        "scopes": list(r.scopes),
        "auth_token": r.auth_token,
        "refresh_token": r.refresh_token,
        "expires_at": r.expires_at,
        "refresh": r.refresh,
    }


@route(
    "/v1/namespaces/{ns}/audit",
    "GET",
    auth=Auth(scope="read", role="admin"),
    response=f"{S}:AuditOut",
    errors=(NotFoundError, ValidationError),
    query={
        "since": "ISO-8601 time",
        "actor": "e.g. user:ada or github",
        "action": "e.g. create_token",
        "limit": "at most 500 (default 100)",
    },
    summary="The audit log, newest first (owners and admins)",
)
def audit_log(call: Call) -> dict[str, Any]:
    q = call.query
    since = call.time_param("since")
    limit = call.int_param("limit", 100, 1, 500)
    entries = get_container().audit.query(
        call.params["ns"], since=since, actor=q.get("actor"), action=q.get("action"), limit=limit
    )
    return {
        "entries": [
            {
                "id": e.id,
                "at": e.at,
                "actor": e.actor,
                "action": e.action,
                "target": e.target,
                "outcome": e.outcome,
                "source_ip": e.source_ip,
                "user_agent": e.user_agent,
            }
            for e in entries
        ]
    }
