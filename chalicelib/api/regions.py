"""Regions the platform provisions (platform admins): create, show, approve the plan, retry, delete."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalice.app import Blueprint

from chalicelib.api.registry import Auth, Call, registry
from chalicelib.composition import get_container
from chalicelib.domain.errors import ConflictError, ForbiddenError, NotFoundError, ValidationError

if TYPE_CHECKING:
    from collections.abc import Callable

    from chalicelib.domain.ports import Capacity, Region

bp = Blueprint(__name__)
S = "chalicelib.api.schemas.regions"
ADMIN = Auth(scope="admin", role="platform_admin")
route = registry.routes(bp, tag="regions", auth=ADMIN)


def _capacity(c: Capacity) -> dict[str, int]:
    return {"cpu_millicores": c.cpu_millicores, "memory_mib": c.memory_mib}


def region_view(region: Region) -> dict[str, Any]:
    totals = get_container().region_service.view(region)
    summary = region.plan_summary
    return {
        "name": region.name,
        "display_name": region.display_name,
        "cloud": region.cloud,
        "cloud_region": region.cloud_region,
        "size": region.size,
        "status": region.status,
        "health": totals["health"],
        "status_at": region.status_at,
        "managed": region.managed,
        "require_approval": region.require_approval,
        "attempt": region.attempt,
        "action": region.action,
        "created_by": region.created_by,
        "capacity": _capacity(totals["capacity"]),
        "used": _capacity(totals["used"]),
        "free": _capacity(totals["free"]),
        "namespaces": totals["namespaces"],
        "clusters": [
            {
                "id": c.id,
                "status": c.status,
                "api_address": c.api,
                "proxy_address": c.proxy_address,
                "capacity": _capacity(c.total),
                "used": _capacity(c.taken),
                "free": _capacity(c.free),
                "namespaces": c.used,
                "health_failures": c.health_failures,
                "last_check_at": c.last_check_at,
                "last_check_error": c.last_check_error,
                "unhealthy_since": c.unhealthy_since,
            }
            for c in region.clusters
        ],
        "plan": None if summary is None else {"add": summary.add, "change": summary.change, "destroy": summary.destroy},
        "failure_step": region.failure_step,
        "failure_reason": region.failure_reason,
        "log_excerpt": region.log_excerpt,
    }


@route(
    "/v1/regions",
    "POST",
    status=202,
    request=f"{S}:RegionIn",
    response=f"{S}:RegionDetailOut",
    errors=(ForbiddenError, ConflictError, ValidationError),
    summary="Provision a region: a cluster running micro on a cloud, through Terraform (202, planning)",
)
def create_region(call: Call) -> dict[str, Any]:
    b = call.body
    region = get_container().region_service.create(
        call.principal, b.name, b.cloud, b.region, b.size, b.require_approval
    )
    call.audit_target = f"region:{region.name}"
    return region_view(region)


@route(
    "/v1/regions/{region}",
    "GET",
    response=f"{S}:RegionDetailOut",
    errors=(ForbiddenError, NotFoundError),
    summary="A region: status, cloud, capacity used and free, the last plan's summary, the failure",
)
def get_region(call: Call) -> dict[str, Any]:
    return region_view(get_container().region_service.get(call.params["region"]))


# Approve and retry: a POST on the region that answers it (202) once the flow is on its way.
_ACTION: dict[str, Any] = {
    "status": 202,
    "response": f"{S}:RegionDetailOut",
    "errors": (ForbiddenError, NotFoundError, ConflictError),
}


def _acted(call: Call, action: Callable[[str, Any], Region]) -> dict[str, Any]:
    region = action(call.params["region"], call.principal)
    call.audit_target = f"region:{region.name}"
    return region_view(region)


@route(
    "/v1/regions/{region}/approve",
    "POST",
    **_ACTION,
    summary="Approve the plan a region waits on (GET it first to see the plan's summary): the apply starts",
)
def approve_region(call: Call) -> dict[str, Any]:
    return _acted(call, get_container().region_service.approve)


@route(
    "/v1/regions/{region}/retry",
    "POST",
    **_ACTION,
    summary="Run a failed region's create or delete again; Terraform's state makes it resume",
)
def retry_region(call: Call) -> dict[str, Any]:
    return _acted(call, get_container().region_service.retry)


@route(
    "/v1/regions/{region}",
    "DELETE",
    status=202,
    response=f"{S}:RegionDetailOut",
    query={"force": "true: offboard the namespaces that live there first (else 409 while any does)"},
    errors=(ForbiddenError, NotFoundError, ConflictError, ValidationError),
    summary="Drain a region (no new placements) and destroy it; 409 while namespaces live there unless force",
)
def delete_region(call: Call) -> dict[str, Any]:
    raw = (call.query.get("force") or "false").lower()
    if raw not in ("true", "false"):
        raise ValidationError(
            "force must be true or false", {"fields": [{"field": "force", "message": "true or false"}]}
        )
    region = get_container().region_service.delete(call.params["region"], call.principal, force=raw == "true")
    call.audit_target = f"region:{region.name}"
    return region_view(region)
