"""Models of the regions routes (platform admins)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from chalicelib.api.schemas import ApiInput, ApiModel
from chalicelib.domain.services.regions import RegionHealth


class RegionIn(ApiInput):
    name: str = Field(
        pattern=r"^[a-z]([a-z0-9-]{0,38}[a-z0-9])?$",
        description="the region's name on the platform (a DNS label, at most 40)",
    )
    cloud: Literal["aws", "gcp", "azure", "digitalocean", "local"]
    region: str = Field(
        default="local",
        pattern=r"^[a-z0-9][a-z0-9-]{0,39}$",
        description="the cloud's own region (us-east-1, europe-west1, westeurope, fra1; local)",
    )
    size: Literal["small", "medium", "large"] = "small"
    require_approval: bool = Field(default=False, description="the plan waits for POST .../approve before the apply")


class CapacityOut(ApiModel):
    cpu_millicores: int
    memory_mib: int


class PlanSummaryOut(ApiModel):
    add: int
    change: int
    destroy: int


class ClusterOut(ApiModel):
    id: str
    status: str
    api_address: str
    proxy_address: str
    capacity: CapacityOut
    used: CapacityOut
    free: CapacityOut
    namespaces: int
    health_failures: int
    last_check_at: datetime | None
    last_check_error: str | None
    unhealthy_since: datetime | None


class RegionDetailOut(ApiModel):
    name: str
    display_name: str
    cloud: str
    cloud_region: str
    size: str
    status: str
    health: RegionHealth = Field(
        description="derived from the clusters, apart from the admin `status`: healthy (every cluster in service is), "
        "degraded (some are unhealthy; the healthy ones take namespaces), unavailable (not active, or no healthy "
        "cluster: no namespace can be placed there)"
    )
    status_at: datetime | None
    managed: bool
    require_approval: bool
    attempt: int
    action: str
    created_by: str | None
    capacity: CapacityOut
    used: CapacityOut
    free: CapacityOut
    namespaces: int
    clusters: list[ClusterOut]
    plan: PlanSummaryOut | None = Field(description="the last plan's summary: what the apply does (or did)")
    failure_step: str | None
    failure_reason: str | None
    log_excerpt: str | None = Field(description="the end of the failed Terraform run's log, secrets masked")
