"""Persistence ports of accounts, namespaces, members, tokens, login windows, the audit log and
webhook deliveries. The DynamoDB adapters (chalicelib/adapters/dynamodb/) implement them; key
formats live there, never here."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from chalicelib.domain.events import Event
from chalicelib.domain.model import (
    Account,
    ApiToken,
    AuditEntry,
    IngestToken,
    Member,
    Namespace,
    NamespaceStatus,
    Role,
)
from chalicelib.domain.ports import ResourceQuota


class AccountStore(Protocol):
    def upsert(self, account: Account, now: datetime) -> None: ...
    def get(self, uid: int) -> Account | None: ...


class NamespaceStore(Protocol):
    def create(self, ns: Namespace, events: Sequence[Event], creator: Member | None = None) -> None:
        """Claim the team and the namespace id with the namespace (and its creator's membership, so they
        can follow the onboarding), in one transaction. A team that is claimed raises ConflictError; an
        id taken by a live namespace raises ConflictError."""
        ...

    def get(self, ns_id: str, *, consistent: bool = True) -> Namespace | None: ...
    def get_many(self, ns_ids: Sequence[str]) -> list[Namespace]: ...
    def by_team(self, org_id: int, team_id: int) -> str | None: ...
    def by_org(self, org_id: int) -> list[str]: ...
    def active(self, limit: int, start: str | None = None) -> tuple[list[str], str | None]: ...
    def unsettled(self, before: datetime, limit: int) -> list[Namespace]:
        """Namespaces ``provisioning`` or ``deleting`` since before ``before`` (their ``status_at``)."""
        ...

    def on_cluster(self, cluster_id: str) -> list[str]:
        """The ids of the namespaces placed on the cluster (those whose ``cluster_id`` is it)."""
        ...

    def update(
        self,
        ns_id: str,
        changes: dict[str, Any],
        *,
        expect_status: Sequence[NamespaceStatus] | None = None,
        events: Sequence[Event] = (),
    ) -> None:
        """Set attributes (``status``, ``cluster_id``, ``customer_id``, ...), optionally only from the
        given statuses (else ConflictError), with its events in the same transaction. Becoming
        ``active`` adds it to the active index; ``provisioning`` or ``deleting`` (which need
        ``status_at``) to the unsettled one; any other status removes it from both."""
        ...

    def release_team(self, ns: Namespace) -> None: ...
    def set_billing_customer(self, ns_id: str, customer_id: str) -> None: ...
    def remove_billing_customer(self, customer_id: str) -> None: ...
    def by_billing_customer(self, customer_id: str) -> str | None:
        """The namespace of a billing customer (webhooks name the customer)."""
        ...


class MemberStore(Protocol):
    def get(self, ns_id: str, uid: int) -> Member | None: ...
    def list(self, ns_id: str) -> builtins.list[Member]: ...
    def namespaces_of(self, uid: int) -> builtins.list[tuple[str, Role]]: ...

    def apply(
        self,
        ns_id: str,
        put: Sequence[Member],
        remove: Sequence[Member],
        events: Sequence[Event],
        revoke_tokens_of: Sequence[int] = (),
        now: datetime | None = None,
    ) -> None:
        """Add or change ``put``, delete ``remove`` and revoke the namespace's tokens of the removed,
        with the events, all or nothing."""
        ...


class TokenStore(Protocol):
    def create(
        self,
        token: ApiToken,
        secret_hash: str,
        events: Sequence[Event],
        require_role: tuple[str, Sequence[Role]] | None = None,
    ) -> None:
        """Store the token (by its hash only). ``require_role = (namespace, roles)`` checks, in the same
        transaction, that the holder is still a member with one of those roles."""
        ...

    def by_hash(self, secret_hash: str) -> ApiToken | None: ...
    def list_for_user(self, uid: int) -> list[ApiToken]: ...
    def find_for_user(self, uid: int, token_id: str) -> tuple[ApiToken, str] | None: ...
    def revoke(self, secret_hash: str, now: datetime, events: Sequence[Event]) -> bool: ...
    def touch(self, secret_hash: str, now: datetime) -> None: ...


@dataclass(frozen=True)
class DeviceLogin:
    github_device_code: str
    interval: int
    expires_at: datetime
    last_polled_at: datetime | None


class LoginWindowStore(Protocol):
    def put_device(self, code_hash: str, github_device_code: str, interval: int, expires_at: datetime) -> None: ...

    def poll_device(
        self, code_hash: str, now: datetime
    ) -> tuple[Literal["ok", "expired", "slow_down"], DeviceLogin | None]:
        """Record a poll: ``expired`` when absent or past its window, ``slow_down`` when polled sooner than
        its interval (which then grows by 5 s), else ``ok`` with the record."""
        ...

    def slow_down_device(self, code_hash: str, interval: int) -> None:
        """GitHub asked for a longer interval: polls sooner than it answer ``slow_down`` here, without
        reaching GitHub (the interval never shrinks)."""
        ...

    def finish_device(self, code_hash: str) -> None: ...
    def put_state(self, state_hash: str, browser_hash: str, expires_at: datetime) -> None: ...
    def consume_state(self, state_hash: str, browser_hash: str, now: datetime) -> bool: ...
    def put_session(self, session_hash: str, uid: int, login: str, expires_at: datetime) -> None: ...
    def get_session(self, session_hash: str, now: datetime) -> tuple[int, str] | None: ...
    def delete_session(self, session_hash: str) -> None: ...


class AuditStore(Protocol):
    def append(self, entry: AuditEntry) -> None: ...

    def query(
        self, ns_id: str, *, since: datetime | None, actor: str | None, action: str | None, limit: int
    ) -> list[AuditEntry]: ...


DeliveryStatus = Literal["received", "enqueued"]


class DeliveryStore(Protocol):
    def claim(self, source: str, delivery_id: str, event: str, now: datetime) -> DeliveryStatus | None:
        """Claim a delivery as ``received``; None when this call claimed it, else the status it had."""
        ...

    def mark_enqueued(self, source: str, delivery_id: str) -> None: ...

    def status(self, source: str, delivery_id: str, now: datetime) -> DeliveryStatus | None:
        """The live claim's status, None when the delivery was never claimed (or its claim expired)."""
        ...

    def note_redelivery(self, source: str, delivery_id: str, now: datetime, max_attempts: int) -> bool:
        """Count one redelivery asked of the sender for ``delivery_id`` (the sender's own id of it), in a
        window: False, counting nothing, once ``max_attempts`` were asked."""
        ...


class PlacementStore(Protocol):
    def take_capacity(self, region: str, quota: ResourceQuota) -> str:
        """Take ``quota`` (the namespace's plan's) on the active cluster of the region with the most free
        capacity, atomically; answer its id. NoCapacityError when none has room for it."""
        ...

    def release_capacity(
        self, region: str, cluster_id: str, quota: ResourceQuota, placement: str | None = None
    ) -> None:
        """Give ``quota`` back to the cluster; with ``placement`` (``placement_id``), once however
        often it is called (a compensation or offboarding re-run after a crash)."""
        ...

    def api_address(self, region: str, cluster_id: str) -> str:
        """micro's HTTP API gateway of the cluster (what the runtime adapter calls)."""
        ...

    def proxy_address(self, region: str, cluster_id: str) -> str:
        """The cluster's gRPC proxy (what the ``micro`` CLI uses)."""
        ...


@dataclass(frozen=True)
class RuntimeAccountRecord:
    """A member's account in the namespace's issuer on its cluster's runtime: its id there, the scopes
    it was made with, and its secret encrypted (KMS or the local key): the platform mints the member's
    short-lived tokens with it and never shows it."""

    namespace: str
    uid: int
    login: str
    account_id: str
    scopes: tuple[str, ...]
    ciphertext: str
    created_at: datetime


class RuntimeAccountStore(Protocol):
    def put(self, record: RuntimeAccountRecord) -> None: ...
    def get(self, ns_id: str, uid: int) -> RuntimeAccountRecord | None: ...
    def list(self, ns_id: str) -> builtins.list[RuntimeAccountRecord]: ...
    def delete(self, ns_id: str, uid: int) -> None: ...
    def delete_legacy_credential(self, ns_id: str) -> bool:
        """Delete the namespace's shared runtime credential of older versions, if any; answer whether."""


class IngestTokenStore(Protocol):
    """Ingest tokens, found by the SHA-256 of their secret (the secret itself is never stored)."""

    def create(self, token: IngestToken, secret_hash: str) -> None: ...
    def by_hash(self, secret_hash: str) -> IngestToken | None: ...
    def list_for_region(self, region: str) -> builtins.list[IngestToken]: ...
    def find(self, region: str, token_id: str) -> tuple[IngestToken, str] | None:
        """The token with this id in this region and its secret's hash, or None."""
        ...

    def revoke(self, secret_hash: str, now: datetime) -> bool:
        """False when it was revoked already."""
        ...

    def touch(self, secret_hash: str, now: datetime) -> None:
        """Record the last use, at most once a minute."""
        ...
