"""System routes: health and the OpenAPI document."""

from __future__ import annotations

from typing import Any

from chalice.app import Blueprint

from chalicelib.api.registry import Call, registry
from chalicelib.composition import get_container
from chalicelib.domain.errors import DependencyUnavailableError

bp = Blueprint(__name__)
SCHEMAS = "chalicelib.api.schemas.system"


@registry.route(
    bp,
    "/v1/health",
    "GET",
    tag="system",
    response=f"{SCHEMAS}:HealthOut",
    errors=(DependencyUnavailableError,),
    summary="Health: the version, and whether the table answers (503 naming what is down)",
)
def health(call: Call) -> dict[str, Any]:
    report = get_container().health.report()
    if not report.healthy:
        raise DependencyUnavailableError(
            f"unhealthy: {', '.join(report.down)} down",
            {"down": report.down, "checks": report.checks, "version": report.version},
        )
    return {"status": "ok", "version": report.version, "checks": report.checks}


@registry.route(bp, "/openapi.json", "GET", tag="system", summary="This API's OpenAPI 3.1 document")
def openapi(call: Call) -> dict[str, Any]:
    from chalicelib.api.openapi import build_document

    return build_document(registry.specs, version=get_container().settings.version)
