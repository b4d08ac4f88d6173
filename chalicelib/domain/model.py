"""Entities of accounts, namespaces, members, tokens and the audit log."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

Role = Literal["viewer", "member", "admin", "owner"]
Scope = Literal["read", "deploy", "billing", "admin"]
NamespaceStatus = Literal["provisioning", "active", "failed", "deleting", "deleted"]
MemberSource = Literal["org_owner", "team", "outside"]

ROLES: tuple[Role, ...] = ("viewer", "member", "admin", "owner")
SCOPES: tuple[Scope, ...] = ("read", "deploy", "billing", "admin")
# What each role may do: a token never acts beyond its holder's role.
SCOPES_OF_ROLE: dict[Role, frozenset[Scope]] = {
    "viewer": frozenset({"read"}),
    "member": frozenset({"read", "deploy"}),
    "admin": frozenset({"read", "deploy", "billing", "admin"}),
    "owner": frozenset({"read", "deploy", "billing", "admin"}),
}

DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


def role_at_least(role: Role, needed: Role) -> bool:
    return ROLES.index(role) >= ROLES.index(needed)


def namespace_id(org: str, team: str) -> str:
    """``acme`` + ``backend`` -> ``acme-backend``: a DNS label (the runtime namespace's name too)."""
    raw = re.sub(r"[^a-z0-9-]+", "-", f"{org}-{team}".lower()).strip("-")
    return re.sub(r"-{2,}", "-", raw)[:63].strip("-")


@dataclass(frozen=True)
class Account:
    uid: int
    login: str
    name: str | None = None
    email: str | None = None


@dataclass(frozen=True)
class Principal:
    """Who is calling: a GitHub user, through a platform token or a dashboard session; or a region's
    runtime side, through an ingest token (``via == "ingest"``: no user, no namespace, no scope; it may
    only post usage events for namespaces placed in ``ingest_region``)."""

    uid: int
    login: str
    scopes: frozenset[Scope]
    token_id: str | None = None
    token_namespace: str | None = None  # an API token is bound to one namespace; login tokens are not
    platform_admin: bool = False
    via: Literal["token", "session", "ingest"] = "token"
    ingest_region: str | None = None  # an ingest token (via "ingest"): the region whose usage it may post

    @property
    def actor(self) -> str:
        if self.via == "ingest":
            return f"ingest:{self.token_id}"
        return f"user:{self.login}"


@dataclass
class Namespace:
    id: str
    github_org: str
    github_org_id: int
    github_team: str
    github_team_id: int
    region: str
    plan: str
    status: NamespaceStatus
    created_at: datetime
    created_by: str
    attempt: int = 1
    failure_reason: str | None = None
    cluster_id: str | None = None
    customer_id: str | None = None
    subscription_id: str | None = None


@dataclass(frozen=True)
class Member:
    namespace: str
    uid: int
    login: str
    role: Role
    source: MemberSource


@dataclass(frozen=True)
class ApiToken:
    id: str
    name: str
    uid: int
    login: str
    namespace: str | None
    scopes: frozenset[Scope]
    created_at: datetime
    expires_at: datetime
    kind: Literal["login", "api"] = "api"
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None


@dataclass(frozen=True)
class AuditEntry:
    namespace: str
    id: str
    at: datetime
    actor: str
    action: str
    target: str
    outcome: str
    source_ip: str | None = None
    user_agent: str | None = None
    details: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class IngestToken:
    """A region's usage-ingest credential, minted by a platform admin for the runtime side of that
    region's clusters (``POST /v1/usage/events``). Not a person's: it reaches no other route."""

    id: str
    region: str
    name: str
    created_by: str
    created_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None
