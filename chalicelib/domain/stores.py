"""Persistence ports (stores) of the platform's aggregates, one section each: accounts and namespaces,
members and tokens, login windows, the audit log, inbound webhook deliveries, GitOps links, services and
deployments, usage and billing, alerts and outbound deliveries, reports, runtime accounts and ingest
tokens. The DynamoDB adapters (chalicelib/adapters/dynamodb/) implement them; key formats live there,
never here. Ports to systems outside the platform (the runtime, billing, GitHub, notifiers, workflows)
are in ports.py.

The entities a store keeps are defined beside the flow that owns them (``Deployment`` in
services/deploys.py, ``Link`` in services/gitops.py, ...), imported here for type checking only, so that
reading this module loads no flow."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, Protocol

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

if TYPE_CHECKING:
    from collections.abc import Mapping

    from chalicelib.domain.alerts import Alert, AlertGroup, Channel, RuleSet
    from chalicelib.domain.metering import Bucket, PendingReport, UsageEvent
    from chalicelib.domain.reports import Schedule
    from chalicelib.domain.services.alerts import GroupChannel, OpenGroup
    from chalicelib.domain.services.budgets import BillingState, Budget
    from chalicelib.domain.services.delivery import Delivery
    from chalicelib.domain.services.delivery import DeliveryStatus as SendingStatus
    from chalicelib.domain.services.deploys import ConfigVar, Deployment, DeploymentStatus, Service, Step
    from chalicelib.domain.services.gitops import Link, PushKey
    from chalicelib.domain.services.reports import Report
    from chalicelib.domain.services.stripe_events import InvoiceState, SubscriptionState

# --- Accounts and namespaces ----------------------------------------------------------------------


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


class NamespacePlacements(Protocol):
    def regions_of(self, ns_ids: Sequence[str]) -> dict[str, str]:
        """Namespace id -> its region, for those of ``ns_ids`` that exist and are placed on a cluster
        (active, or deleting: offboarding still closes its last hours). Read consistently."""
        ...


# --- Members and API tokens -----------------------------------------------------------------------


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


# --- Login windows (device flow, OAuth state, browser sessions) -----------------------------------


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


# --- The audit log --------------------------------------------------------------------------------


class AuditStore(Protocol):
    def append(self, entry: AuditEntry) -> None: ...

    def query(
        self, ns_id: str, *, since: datetime | None, actor: str | None, action: str | None, limit: int
    ) -> list[AuditEntry]: ...


# --- Inbound webhook deliveries (GitHub, Stripe) --------------------------------------------------

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


# --- Clusters' capacity (placements) --------------------------------------------------------------


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


# --- GitOps: repository links and push claims -----------------------------------------------------


class LinkStore(Protocol):
    def create(self, link: Link, events: Sequence[Event]) -> None: ...
    def get(self, ns: str, repo_id: int) -> Link | None: ...
    def list(self, ns: str) -> builtins.list[Link]: ...
    def by_repo(self, repo_id: int) -> builtins.list[Link]: ...
    def by_installation(self, installation_id: int) -> builtins.list[Link]: ...
    def save(self, link: Link, events: Sequence[Event] = ()) -> None: ...
    def delete(self, ns: str, repo_id: int, events: Sequence[Event]) -> bool: ...


class PushClaims(Protocol):
    def claim(self, key: PushKey, delivery: str, now: datetime, window: timedelta) -> bool:
        """Claim the push for ``delivery``: True when no live claim of it exists or the live one is this
        delivery's (a retry), else False (a replay)."""
        ...


# --- Services, deployments, the deploy lock and queue, config vars --------------------------------


class DeployStore(Protocol):
    """Services, their deployments, the deploy lock and queue, config vars. A deployment's steps are
    recorded one at a time (appended, or one replaced at its index), never by rewriting the record."""

    def create_deployment(self, dep: Deployment, events: Sequence[Event], service: Service | None = None) -> None:
        """Record a new deployment and its events, in one write with its service: ``service`` as given;
        without it, the service's source set to the deployment's (the service made when it is new, and
        afresh when it was deleted)."""
        ...

    def get_deployment(self, ns: str, svc: str, dep_id: str) -> Deployment | None: ...
    def read_run(self, ns: str, svc: str, dep_id: str) -> tuple[Deployment | None, Service | None, Namespace | None]:
        """The deployment, its service and its namespace, read together (one request)."""
        ...

    def list_deployments(self, ns: str, svc: str, limit: int) -> builtins.list[Deployment]: ...
    def add_step(
        self,
        ns: str,
        svc: str,
        dep_id: str,
        step: Step,
        *,
        index: int | None = None,
        reason: str | None = None,
        expect: Sequence[DeploymentStatus] | None = ...,
    ) -> Deployment:
        """Record one step (appended, or replacing the step at ``index``), and ``reason`` when given, if
        the deployment's status is one of ``expect`` (ConflictError if not; by default ``LIVE``, the
        statuses not terminal; None: whatever it is), and
        answer the deployment as it is after (NotFoundError when there is none)."""
        ...

    def update_deployment(
        self,
        ns: str,
        svc: str,
        dep_id: str,
        fields: Mapping[str, Any],
        *,
        steps: Mapping[int, Step] | None = None,
        append: Sequence[Step] = (),
        expect: Sequence[DeploymentStatus] | None = None,
        events: Sequence[Event] = (),
        service: Mapping[str, Any] | None = None,
        release_lock: bool = False,
    ) -> None:
        """One write, all or nothing: the deployment's ``fields`` (any of status, reason, commit,
        artifact, spec, deadline, trigger) set, ``steps`` replaced at their index and ``append``
        appended, if its status is one of ``expect`` (ConflictError if not); with ``service``, those
        fields of the service set too (NotFoundError when it is gone or deleted); with ``release_lock``,
        the service's lock released if this deployment holds it; and the events."""
        ...

    def active(self, limit: int) -> builtins.list[Deployment]:
        """The deployments not terminal, soonest deadline first."""
        ...

    def get_service(self, ns: str, svc: str) -> Service | None: ...
    def list_services(self, ns: str) -> builtins.list[Service]: ...
    def save_service(self, service: Service) -> None: ...
    def service_failed(self, ns: str, svc: str) -> None:
        """Show the service as ``failed`` if none of its deployments ever succeeded."""
        ...

    def acquire_lock(
        self,
        ns: str,
        svc: str,
        dep_id: str,
        until: datetime,
        now: datetime,
        *,
        step: Step | None = None,
        index: int | None = None,
    ) -> str | None:
        """Take the service's lock for ``dep_id`` (or keep it, if it has it); answer None, or the holder.
        With ``step``, the step is recorded on the deployment in the same write (appended, or at
        ``index``), which is taken only while the deployment is queued or in progress (ConflictError)."""
        ...

    def lock_holder(self, ns: str, svc: str, now: datetime) -> str | None: ...
    def release_lock(self, ns: str, svc: str, dep_id: str) -> None: ...
    def queued(self, ns: str, svc: str) -> str | None: ...
    def set_queued(self, ns: str, svc: str, dep_id: str) -> str | None:
        """Make ``dep_id`` the queued deployment; answer the one it replaced."""
        ...

    def take_queued(self, ns: str, svc: str, dep_id: str) -> bool: ...
    def config(self, ns: str, svc: str) -> builtins.list[ConfigVar]: ...
    def put_config(self, ns: str, svc: str, var: ConfigVar, events: Sequence[Event]) -> None: ...
    def delete_config(self, ns: str, svc: str, key: str, events: Sequence[Event]) -> bool: ...


# --- Usage and billing: the usage ledger, budgets, the billing provider's state -------------------


class UsageLedger(Protocol):
    """The usage ledger on the table (chalicelib/adapters/dynamodb/usage.py)."""

    def record(self, events: Sequence[UsageEvent], now: datetime) -> tuple[list[str], list[str]]:
        """Count each event of a ``sum`` meter exactly once, however often and however concurrently it
        is recorded: its dedup claim (kept ``DEDUP_KEEP``) and its bucket and period-rollup increments
        are written in one transaction, and the bucket joins the unreported index. Events must be
        validated already. Answers (accepted ids, duplicate ids): an event whose claim exists, or whose
        (namespace, id) came earlier in the same call, is a duplicate and changes nothing. Raises
        DependencyUnavailableError when the table keeps refusing (what was written before stays
        written, exactly once: the caller retries the whole batch)."""
        ...

    def record_max(self, namespace: str, meter: str, service: str, hour: str, value: int, now: datetime) -> bool:
        """A ``max`` meter's observation: the bucket and the period rollup keep the maximum (each a
        conditional write, so a repeat changes nothing). True when the bucket's maximum rose."""
        ...

    def buckets(
        self, namespace: str, from_hour: str, to_hour: str, *, meter: str | None = None, service: str | None = None
    ) -> list[Bucket]:
        """The namespace's buckets with from_hour <= hour < to_hour, in hour order (``service`` "" is
        the bucket of events without a service)."""
        ...

    def rollups(self, namespace: str, period: str) -> dict[str, int]:
        """meter -> the period's quantity so far (one query)."""
        ...

    def unreported(self, namespace: str) -> list[Bucket]:
        """Buckets with something left to report or a report pending (the sparse index, each bucket
        re-read consistently; one found fully reported is taken out of the index on the way)."""
        ...

    def begin_report(self, bucket: Bucket, value: int, identifier: str, now: datetime) -> PendingReport | None:
        """Write the intent (condition: reports unchanged and none pending); None when another run won."""
        ...

    def finish_report(self, bucket: Bucket, pending: PendingReport, max_meter: bool) -> None:
        """Record the sent report, and leave the unreported index when nothing is left to report."""
        ...

    def refuse_report(
        self, bucket: Bucket, pending: PendingReport | None, reason: str, now: datetime, *, final: bool = False
    ) -> None:
        """Billing refused the report: drop the intent (nothing was counted) and record why on the
        bucket. ``final``: it never will be accepted (older than billing takes): the bucket is marked
        unbillable and leaves the unreported index, its unreported part staying in the ledger."""
        ...

    def cursor(self, namespace: str) -> str | None:
        """The last hour (``hour_key``) whose collected meters were ingested, or None."""
        ...

    def advance_cursor(self, namespace: str, old: str | None, new: str) -> bool:
        """Move the cursor from ``old`` to ``new``; False when it was not at ``old`` (another run moved it)."""
        ...


class BudgetStore(Protocol):
    """The budget, its crossings and the namespace's billing state on the table
    (chalicelib/adapters/dynamodb/budgets.py)."""

    def load(self, ns: str) -> tuple[BillingState, Budget | None]:
        """The namespace's billing state and its budget (one request). NotFoundError without the namespace."""
        ...

    def billing_state(self, ns: str) -> BillingState | None:
        """The billing state alone (one consistent read of the namespace item): the deploy check."""
        ...

    def put(self, budget: Budget) -> Budget:
        """Write the budget; answers it with its new version."""
        ...

    def crossed(self, ns: str, period: str) -> list[int]:
        """The thresholds claimed in the period (one query)."""
        ...

    def cross(self, budget: Budget, period: str, threshold: int, spent: int, event: Event) -> bool:
        """Claim the threshold for the period with its event, in one transaction, if the budget is still
        at ``budget.version``. False when it was claimed already; ConflictError when the budget changed."""
        ...

    def suspend(self, budget: Budget, period: str, spent: int, event: Event) -> bool:
        """``billing_state = suspended`` for the period with its event, if not suspended for it already
        (False) and the budget is unchanged (else ConflictError)."""
        ...

    def resume(self, ns: str, suspended_period: str, budget: Budget | None, event: Event) -> bool:
        """``billing_state = ok`` with its event, if still suspended for ``suspended_period`` (else False)
        and, when given, the budget is unchanged (else ConflictError)."""
        ...


class BillingStateStore(Protocol):
    """The provider's view of a namespace's invoices and subscription, as its webhooks told it."""

    def apply_invoice(self, ns: str, state: InvoiceState, events: list[Event]) -> bool:
        """Write ``state`` with ``events`` when it is newer (``order``) than what is stored; False when not."""
        ...

    def apply_subscription(self, ns: str, state: SubscriptionState, events: list[Event]) -> bool: ...
    def subscription(self, ns: str) -> SubscriptionState | None: ...
    def invoices(self, ns: str) -> list[InvoiceState]: ...


# --- Alerts and outbound deliveries (email, SMS, Slack, webhooks) ---------------------------------


class AlertStore(Protocol):
    """Channels, rules, alerts and groups on the table (chalicelib/adapters/dynamodb/alerts.py)."""

    def put_channel(self, channel: Channel, *, create: bool) -> None:
        """Write a channel: ``create`` when absent (else ConflictError), else when it exists (else NotFoundError)."""
        ...

    def get_channel(self, namespace: str, channel_id: str) -> Channel | None: ...
    def channels(self, namespace: str, channel_ids: Sequence[str]) -> dict[str, Channel]: ...
    def list_channels(self, namespace: str) -> list[Channel]: ...
    def delete_channel(self, namespace: str, channel_id: str) -> bool: ...
    def get_rules(self, namespace: str) -> RuleSet | None: ...

    def put_rules(self, rules: RuleSet, expected_version: int) -> RuleSet:
        """Replace the rules if they are still at ``expected_version`` (0: none stored); ConflictError if not."""
        ...

    def open_group(self, namespace: str, rule_id: str, event_type: str) -> OpenGroup | None:
        """The pointer to the group alerts of the rule and type join (consistent read), if any."""
        ...

    def add_alert(
        self,
        alert: Alert,
        dedup_until: datetime,
        *,
        join: OpenGroup | None,
        new_group: AlertGroup | None,
        replaces: str | None,
        events: Sequence[Event],
    ) -> None:
        """One transaction: the fingerprint's claim (absent or expired), the alert (absent), and either
        the alert added to the open group ``join`` (still open) or ``new_group`` written with the
        pointer to it (the pointer still at ``replaces``), with ``events``. DuplicateAlert or GroupMoved."""
        ...

    def seen_again(self, namespace: str, alert_id: str, now: datetime) -> None:
        """``occurrences + 1`` on the alert (a repeat within its repeat interval)."""
        ...

    def close_group(self, namespace: str, group_id: str, now: datetime) -> tuple[AlertGroup | None, bool]:
        """``open`` -> ``flushed`` (conditionally): the group, and whether this call flushed it (a group
        flushed before is answered as it is); (None, False) if unknown."""
        ...

    def group(self, namespace: str, group_id: str) -> AlertGroup | None: ...
    def groups(self, namespace: str, group_ids: Sequence[str]) -> list[AlertGroup]: ...
    def alerts(self, namespace: str, alert_ids: Sequence[str]) -> list[Alert]: ...
    def list_alerts(self, namespace: str, limit: int, before: str | None) -> list[Alert]: ...

    def group_channels(self, namespace: str, group_id: str) -> list[GroupChannel]: ...

    def start_channel(
        self, namespace: str, group_id: str, plan: GroupChannel, rate_limit: int, now: datetime
    ) -> GroupChannel:
        """Record what the group sends to the channel and take a slot of its rate limit (the hour
        ``now`` is in), once: answers the record as stored (a second call answers the first's). Over
        the limit, the record says ``skipped`` instead, with no keys."""
        ...

    def report_failure(self, namespace: str, group_id: str, channel_id: str, key: str, event: Event) -> bool:
        """Note that ``key``'s failure was reported, with its event, once (False when it was already)."""
        ...


class DeliveryLog(Protocol):
    """Delivery records on the table (chalicelib/adapters/dynamodb/deliveries.py)."""

    def get(self, namespace: str, key: str) -> Delivery | None:
        """Consistent read."""
        ...

    def claim(self, delivery: Delivery, previous_attempts: int) -> None:
        """Write ``delivery`` (status ``sending``, its new attempt last) if the stored record still has
        ``previous_attempts`` attempts and may be attempted (absent when 0; else ``failed``).
        ConditionFailedError when another caller changed it first."""
        ...

    def settle(self, delivery: Delivery, expected_status: SendingStatus = "sending") -> None:
        """Write the attempt's outcome if the stored record is still ``expected_status`` with as many
        attempts as ``delivery``. ConditionFailedError otherwise."""
        ...

    def list(self, namespace: str, limit: int = 50) -> list[Delivery]:
        """The namespace's deliveries, newest attempt first."""
        ...


# --- Usage reports --------------------------------------------------------------------------------


class ScheduleStore(Protocol):
    def get(self, ns: str) -> Schedule | None: ...
    def put(self, schedule: Schedule) -> None:
        """Write it, filed in the due index under ``next_due`` (out of it when disabled)."""
        ...

    def put_default(self, schedule: Schedule) -> bool:
        """Write it only if the namespace has no schedule yet."""
        ...

    def advance(self, ns: str, due: datetime, next_due: datetime) -> bool:
        """Move the schedule from ``due`` to ``next_due`` if it is still due at ``due``."""
        ...

    def due(self, hour: datetime, limit: int, start: str | None) -> tuple[list[str], str | None]:
        """A page of the namespaces due in the UTC hour (the index partition ``REPORT_DUE#<hour>``)."""
        ...

    def fan_out_cursor(self) -> datetime | None: ...
    def set_fan_out_cursor(self, hour: datetime) -> None: ...


class ReportStore(Protocol):
    def create(self, report: Report) -> bool:
        """Write it unless a live report of that id exists (False then)."""
        ...

    def get(self, ns: str, report_id: str) -> Report | None: ...
    def update(self, report: Report) -> None: ...
    def list(self, ns: str, limit: int) -> list[Report]: ...


class BlobStore(Protocol):
    """A report's files (figures, HTML, text, CSV, chart, Slack message): S3 on AWS and locally."""

    def put(self, key: str, body: bytes, content_type: str) -> None: ...
    def get(self, key: str) -> bytes | None: ...


# --- Runtime accounts and ingest tokens -----------------------------------------------------------


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
