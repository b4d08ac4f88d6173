from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from chalicelib.api.schemas import ApiInput, ApiModel
from chalicelib.domain.services.regions import RegionHealth

DnsLabel = Field(pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", min_length=1, max_length=63)
GitHubName = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$", min_length=1, max_length=100)


class DeviceStartOut(ApiModel):
    device_code: str
    user_code: str
    verification_uri: str
    interval: int
    expires_in: int


class DeviceTokenIn(ApiInput):
    device_code: str = Field(min_length=1, max_length=200)


class LocalLoginIn(ApiInput):
    login: str = GitHubName


class LoginOut(ApiModel):
    token: str = Field(description="the platform token; shown once")
    token_id: str
    login: str
    expires_at: datetime


class SessionOut(ApiModel):
    login: str = Field(description="who the session is for; the session itself is the HttpOnly cookie")


class MeNamespace(ApiModel):
    id: str
    role: str
    github_org: str
    github_team: str
    status: str
    region: str


class MeOut(ApiModel):
    login: str
    id: int
    platform_admin: bool
    namespaces: list[MeNamespace]


class RegionOut(ApiModel):
    name: str
    display_name: str
    cloud: str
    status: str = Field(description="the admin state: active, draining, ...")
    health: RegionHealth = Field(
        description="derived from the clusters, apart from the admin `status`: healthy (every cluster in service is), "
        "degraded (some are unhealthy; the healthy ones take namespaces), unavailable (not active, or no healthy "
        "cluster: no namespace can be placed there)"
    )


class RegionsOut(ApiModel):
    regions: list[RegionOut]


class NamespaceIn(ApiInput):
    github_org: str = GitHubName
    github_team: str = GitHubName
    region: str = DnsLabel
    plan: str = Field(default="starter", min_length=1, max_length=40)


class NamespaceOut(ApiModel):
    id: str
    status: str
    github_org: str
    github_team: str
    region: str
    plan: str
    created_at: datetime
    created_by: str
    failure_reason: str | None = None
    cluster_id: str | None = None


class NamespacesOut(ApiModel):
    namespaces: list[NamespaceOut]


class MemberOut(ApiModel):
    login: str
    id: int
    role: str
    source: str


class MembersOut(ApiModel):
    members: list[MemberOut]


class ViewerIn(ApiInput):
    login: str = GitHubName
    role: Literal["viewer"] = "viewer"


class RuntimeOut(ApiModel):
    namespace: str
    proxy_address: str = Field(description="the cluster's gRPC proxy: what the micro CLI uses (MICRO_PROXY)")
    api_address: str = Field(description="the cluster's HTTP API gateway")
    account: str = Field(description="the caller's own account in the namespace's issuer on the runtime")
    scopes: list[str] = Field(description="its scopes: admin (deploy, logs) for members and up; none for viewers")
    auth_token: str = Field(description="a short-lived token of that account (MICRO_AUTH_TOKEN)")
    refresh_token: str = Field(description="renews it through micro's Auth.Token while the caller is a member")
    expires_at: datetime = Field(description="when auth_token expires")
    refresh: str = Field(description="how to get a new token before expires_at")


class TokenIn(ApiInput):
    name: str = Field(min_length=1, max_length=100)
    namespace: str = DnsLabel
    scopes: list[Literal["read", "deploy", "billing", "admin"]] = Field(min_length=1)
    expires_in: int | None = Field(
        default=None, ge=1, le=365 * 24 * 3600, description="seconds; default 90 days, at most 365"
    )


class TokenOut(ApiModel):
    id: str
    name: str
    namespace: str | None
    scopes: list[str]
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None = None


class TokenCreatedOut(TokenOut):
    token: str = Field(description="the secret; shown once, stored only as a hash")


class TokensOut(ApiModel):
    tokens: list[TokenOut]


class AuditEntryOut(ApiModel):
    id: str
    at: datetime
    actor: str
    action: str
    target: str
    outcome: str
    source_ip: str | None = None
    user_agent: str | None = None


class AuditOut(ApiModel):
    entries: list[AuditEntryOut]


class WebhookOut(ApiModel):
    status: str
    delivery: str | None = None
    event: str | None = None
    zen: str | None = None
