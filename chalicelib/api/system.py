"""System routes: health and the OpenAPI document."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint
from pydantic import BaseModel, Field

from chalicelib.api.registry import Call, registry
from chalicelib.composition import get_container
from chalicelib.domain.errors import DependencyUnavailableError

bp = Blueprint(__name__)


class HealthOut(BaseModel):
    status: str = Field(description="`ok` when every check passes")
    version: str
    checks: dict[str, dict[str, Any]]


@registry.route(
    bp, "/v1/health", "GET", tag="system", response=HealthOut, errors=(DependencyUnavailableError,),
    summary="Health: the version, and whether the table answers (503 naming what is down)",
)
def health(call: Call) -> HealthOut:
    report = get_container().health.report()
    if not report.healthy:
        raise DependencyUnavailableError(
            f"unhealthy: {', '.join(report.down)} down", {"down": report.down, "checks": report.checks,
                                                         "version": report.version}
        )
    return HealthOut(status="ok", version=report.version, checks=report.checks)


@registry.route(bp, "/openapi.json", "GET", tag="system", summary="This API's OpenAPI 3.1 document")
def openapi(call: Call) -> dict[str, Any]:
    from chalicelib.api.openapi import build_document

    return build_document(registry.specs, version=get_container().settings.version)
