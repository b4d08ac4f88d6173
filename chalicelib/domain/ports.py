"""Ports: what the domain needs from the outside world, as Protocols. Adapters implement them
(chalicelib/adapters); the composition root picks which (docs/architecture.md)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from chalicelib.domain.events import Event

# --------------------------------------------------------------------------- runtime (micro)


@dataclass(frozen=True)
class ResourceQuota:
    """micro's ``resourcequota``: Memory MiB, CPU millicores, EphemeralStorage MiB."""

    memory_mib: int
    cpu_millicores: int
    ephemeral_storage_mib: int


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    version: str  # the deployment's id
    source: str  # the artifact (a local checkout) for a runtime that runs it as it is
    metadata: dict[str, str] = field(default_factory=dict)
    command: Sequence[str] = ()
    env: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    # For a runtime that fetches the commit itself (micro): the deployment's git remote, and a
    # short-lived credential to fetch it with (asked for only when needed; never stored).
    remote: str = ""
    fetch_credential: Callable[[], str | None] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class RuntimeService:
    name: str
    version: str
    source: str
    status: str
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LogRecord:
    timestamp: datetime
    message: str
    metadata: dict[str, str] = field(default_factory=dict)


class RuntimePort(Protocol):
    """The micro runtime of one cluster (``/runtime/Runtime/{Create,Read,Update,Delete,Logs}``)."""

    def create_namespace(self, namespace: str) -> None: ...
    def delete_namespace(self, namespace: str) -> None: ...
    def set_quota(self, namespace: str, name: str, requests: ResourceQuota, limits: ResourceQuota) -> None: ...
    def delete_quota(self, namespace: str, name: str) -> None: ...
    def set_network_policy(self, namespace: str, name: str, allowed_labels: dict[str, str]) -> None: ...
    def delete_network_policy(self, namespace: str, name: str) -> None: ...
    def create_service(self, namespace: str, spec: ServiceSpec) -> None: ...
    def update_service(self, namespace: str, spec: ServiceSpec) -> None: ...
    def delete_service(self, namespace: str, name: str, version: str) -> None: ...
    def read_services(self, namespace: str, name: str | None = None) -> list[RuntimeService]: ...
    def logs(
        self, namespace: str, name: str, *, since: datetime | None = None, tail: int = 100
    ) -> Iterator[LogRecord]: ...


# --------------------------------------------------------------------------- what a runtime records of usage


@dataclass(frozen=True)
class InstanceRecord:
    """One instance of a service: when it started and, once it has, when it stopped (the source of
    ``service_hours``: never sampled)."""

    instance_id: str
    service: str
    started_at: datetime
    stopped_at: datetime | None  # None while it runs


@dataclass(frozen=True)
class RequestCheckpoint:
    """Requests a runtime's proxy counted, set aside for one collection: ``counts`` maps
    ``(service, hour key)`` to requests. The same checkpoint (same id, same counts) is answered again
    until it is acknowledged, so a collector that crashed before acknowledging ingests it again under
    the same event ids (counted once) and nothing counted meanwhile is mixed into it."""

    id: str
    counts: Mapping[tuple[str, str], int]


class RuntimeUsagePort(Protocol):
    """Optional, beside ``RuntimePort``: the usage a runtime records itself. ``LocalRuntime`` implements
    it. ``MicroRuntime`` cannot: micro v3's ``Runtime.Read`` answers only the deployments that exist
    now, with one ``started`` time per deployment (``service/runtime/kubernetes/util.go``), no stop
    times and nothing once a service is deleted, so a real cluster's side posts ``service_hours`` and
    ``requests`` through the ingestion API with its per-cluster credential."""

    def instance_records(self, namespace: str, since: datetime) -> list[InstanceRecord]:
        """Every instance of the namespace that ran at or after ``since`` (running ones included)."""
        ...

    def checkpoint_requests(self, namespace: str) -> RequestCheckpoint | None:
        """The pending checkpoint, or a new one taking every request counted so far; None when
        there is nothing to take."""
        ...

    def ack_requests(self, namespace: str, checkpoint_id: str) -> None:
        """The checkpoint is ingested: forget it (a later ack of the same id does nothing)."""
        ...


@dataclass(frozen=True)
class RuntimeToken:
    """An access token of a runtime account (short-lived), the refresh token that renews it while the
    account exists, and when the access token expires."""

    access_token: str
    refresh_token: str
    expires_at: datetime


@dataclass(frozen=True)
class RuntimeAccount:
    id: str
    metadata: dict[str, str] = field(default_factory=dict)
    type: str = "user"


class RuntimeAuthPort(Protocol):
    """Accounts in a namespace's issuer on the runtime of one cluster (micro's auth service)."""

    def create_account(
        self, namespace: str, account_id: str, secret: str, scopes: Sequence[str], metadata: dict[str, str]
    ) -> None:
        """ConflictError when the id is taken."""
        ...

    def delete_account(self, namespace: str, account_id: str) -> None:
        """Delete it and refuse its outstanding tokens; one that is gone already is done."""
        ...

    def list_accounts(self, namespace: str) -> list[RuntimeAccount]: ...
    def token(self, namespace: str, account_id: str, secret: str, ttl_seconds: int) -> RuntimeToken: ...


# --------------------------------------------------------------------------- billing (Stripe)


@dataclass(frozen=True)
class MeterEvent:
    """One usage report. ``identifier`` is stable so a retry is deduplicated by the provider. ``value``
    is in millionths of the meter's unit (chalicelib/domain/metering.py); ``timestamp`` is the start of
    the hour it measures."""

    identifier: str
    event_name: str
    customer_id: str
    value: int
    timestamp: datetime


@dataclass(frozen=True)
class InvoiceSummary:
    id: str
    customer_id: str
    status: str
    amount_due: int
    currency: str
    period_start: datetime
    period_end: datetime


class BillingPort(Protocol):
    def create_customer(self, namespace: str, email: str | None, idempotency_key: str) -> str: ...
    def delete_customer(self, customer_id: str) -> None: ...
    def create_subscription(self, customer_id: str, plan: str, idempotency_key: str) -> str: ...
    def cancel_subscription(self, subscription_id: str, *, at_period_end: bool = True) -> None: ...
    def report_meter_event(self, event: MeterEvent) -> None: ...
    def list_invoices(self, customer_id: str) -> list[InvoiceSummary]: ...


# --------------------------------------------------------------------------- regions and clusters

RegionStatus = Literal["provisioning", "active", "draining", "failed", "retired"]


@dataclass(frozen=True)
class Cluster:
    """A runtime cluster: ``api_address`` is micro's HTTP API gateway (the platform calls it),
    ``proxy_address`` its gRPC proxy (the ``micro`` CLI's ``MICRO_PROXY``). A cluster stored before
    the two were told apart has only ``proxy_address``, which was the HTTP API's: ``api`` answers it."""

    id: str
    region: str
    cloud: str
    proxy_address: str
    status: RegionStatus
    capacity: int
    used: int = 0
    api_address: str = ""

    @property
    def api(self) -> str:
        return self.api_address or self.proxy_address


@dataclass(frozen=True)
class Region:
    name: str
    cloud: str
    display_name: str
    status: RegionStatus
    clusters: tuple[Cluster, ...] = ()


class RegionRegistry(Protocol):
    def get(self, name: str) -> Region: ...
    def list(self) -> list[Region]: ...
    def put(self, region: Region) -> None: ...
    def add_cluster(self, cluster: Cluster) -> None: ...
    def set_status(self, name: str, status: RegionStatus) -> None: ...
    def seed(self, region: Region) -> bool: ...


# --------------------------------------------------------------------------- GitHub


@dataclass(frozen=True)
class GitHubUser:
    id: int
    login: str
    name: str | None = None
    email: str | None = None


TeamRole = Literal["maintainer", "member"]


@dataclass(frozen=True)
class TeamMember:
    login: str
    id: int
    role: TeamRole


@dataclass(frozen=True)
class TeamRef:
    org: str
    org_id: int
    slug: str
    id: int
    name: str


class GitHubPort(Protocol):
    """GitHub as the platform's GitHub App sees it (installation tokens), plus user tokens for identity."""

    def get_user(self, user_token: str) -> GitHubUser: ...
    def get_user_by_login(self, login: str) -> GitHubUser | None: ...
    def org_role(self, org: str, login: str) -> Literal["admin", "member"] | None: ...
    def org_owners(self, org: str) -> list[GitHubUser]: ...
    def get_team(self, org: str, team_slug: str) -> TeamRef | None: ...
    def team_members(self, org: str, team_slug: str) -> list[TeamMember]: ...
    def set_commit_status(
        self, installation_id: int, repo_id: int, sha: str, state: str, context: str, description: str, target_url: str
    ) -> None: ...


@dataclass(frozen=True)
class FailedDelivery:
    """A webhook delivery GitHub records as failed: its id in the deliveries API, and its ``guid`` (the
    ``X-GitHub-Delivery`` the endpoint claims)."""

    id: str
    guid: str


@dataclass(frozen=True)
class RepoRef:
    """A repository as the App's installation sees it. The id is what the platform stores: a rename
    or a transfer changes the name, never the id."""

    id: int
    full_name: str
    owner: str
    owner_id: int
    installation_id: int
    clone_url: str
    default_branch: str


class GitHubReposPort(Protocol):
    """Repositories through the GitHub App: linking, push-to-deploy, statuses, missed deliveries."""

    def repo(self, full_name: str) -> RepoRef | None:
        """The repository, if the App is installed on it (else None)."""
        ...

    def repo_by_id(self, installation_id: int, repo_id: int) -> RepoRef | None: ...
    def permission(self, installation_id: int, full_name: str, login: str) -> str:
        """``admin``, ``write``, ``read`` or ``none``."""
        ...

    def changed_files(self, installation_id: int, repo_id: int, base: str, head: str) -> list[str] | None:
        """Every path changed from ``base`` to ``head``, or None when they cannot all be known (GitHub's
        compare lists at most 300 files): the caller is then unsure."""
        ...

    def file_at(self, installation_id: int, repo_id: int, path: str, ref: str) -> str | None: ...
    def create_deployment(
        self, installation_id: int, repo_id: int, sha: str, environment: str, description: str
    ) -> int: ...
    def deployment_status(
        self, installation_id: int, repo_id: int, deployment_id: int, state: str, description: str, log_url: str
    ) -> None: ...
    def commit_status(
        self, installation_id: int, repo_id: int, sha: str, state: str, context: str, description: str, target_url: str
    ) -> None: ...
    def fetch_token(self, installation_id: int) -> str:
        """A short-lived token (an installation token, about an hour) that may read the installation's
        repositories' contents: what a cluster fetches a private repository with."""
        ...

    def failed_deliveries(self, limit: int) -> list[FailedDelivery]:
        """The App's recent deliveries that failed (redelivery attempts left out), newest first."""
        ...

    def redeliver(self, delivery_id: str) -> None: ...


@dataclass(frozen=True)
class DeviceCodeGrant:
    device_code: str
    user_code: str
    verification_uri: str
    interval: int
    expires_in: int


@dataclass(frozen=True)
class DevicePoll:
    """One poll of GitHub's device flow: the user token once granted, else GitHub's error
    (``authorization_pending``, ``slow_down``, ``expired_token``, ``access_denied``, ...) and, with
    ``slow_down``, the new interval GitHub returns (5 s more each time)."""

    token: str | None = None
    error: str | None = None
    interval: int | None = None


class GitHubOAuthPort(Protocol):
    """GitHub's OAuth for the app's users: the device flow (CLI) and the web flow (dashboard)."""

    def request_device_code(self) -> DeviceCodeGrant: ...

    def poll_device_code(self, device_code: str) -> DevicePoll: ...

    def authorize_url(self, state: str, redirect_uri: str) -> str: ...
    def exchange_code(self, code: str, redirect_uri: str) -> str: ...


# --------------------------------------------------------------------------- builds (artifacts)


@dataclass(frozen=True)
class Build:
    """A deployment's artifact: the exact commit's files, and the manifest read from them."""

    artifact: str  # where the runtime finds it (a directory locally)
    commit: str  # the full sha
    manifest: tuple[Any, ...]  # chalicelib.domain.manifest.ServiceManifest entries


class BuildPort(Protocol):
    def prepare(
        self,
        namespace: str,
        service: str,
        deployment_id: str,
        source: str,
        ref: str,
        quota: ResourceQuota | None,
        protect: Sequence[str] = (),
    ) -> Build: ...

    def kept(self, namespace: str, service: str, deployment_id: str) -> str | None:
        """The artifact of an earlier deployment, if it is still kept (rollbacks need no rebuild)."""
        ...

    def check_source(self, source: str) -> None:
        """Raises ValidationError (field ``source``) for a source this builder never builds from."""
        ...


class StatusReporter(Protocol):
    """Reports a deployment's progress where its commit lives (GitHub deployment statuses and commit
    statuses); reporting never fails a deployment."""

    def report(
        self,
        namespace: str,
        service: str,
        deployment_id: str,
        commit: str,
        state: str,
        description: str,
        refs: dict[str, str],
    ) -> dict[str, str]:
        """``refs`` are what earlier reports answered (kept on the deployment's trigger); answer new ones."""
        ...

    def refused(self, namespace: str, service: str, commit: str, description: str, refs: dict[str, str]) -> None:
        """A push that was not deployed at all (a budget's hard cap): a failed status saying why."""
        ...

    def reports(self, refs: Mapping[str, str]) -> bool:
        """Whether a deployment with this trigger is reported at all (so that one that is not costs no read)."""
        ...


# --------------------------------------------------------------------------- platform plumbing


class WorkflowPort(Protocol):
    """Starts state machine executions (Step Functions), and says whether one still runs."""

    def start(self, machine: str, name: str, payload: dict[str, Any]) -> str:
        """Start the execution ``name``; ConflictError when an execution of that name exists."""
        ...

    def status(self, machine: str, name: str) -> str | None:
        """``RUNNING``, ``SUCCEEDED``, ``FAILED``, ``TIMED_OUT``, ``ABORTED`` (Step Functions' own
        words), or None when there is no such execution (a local cloud keeps none across a restart)."""
        ...


class QueuePort(Protocol):
    def send(self, queue: str, body: dict[str, Any], *, dedup_id: str | None = None) -> str: ...

    def send_batch(self, queue: str, bodies: Sequence[dict[str, Any]]) -> None:
        """Sends every body, ten a request; DependencyUnavailableError when some were not sent (a retry
        sends them all again: the consumers are idempotent)."""
        ...


class EncryptorPort(Protocol):
    """Encryption at rest for secrets the platform must read back (KMS on AWS, a local key locally)."""

    def encrypt(self, plaintext: str, context: dict[str, str]) -> str: ...
    def decrypt(self, ciphertext: str, context: dict[str, str]) -> str: ...


# --------------------------------------------------------------------------- notifications


@dataclass(frozen=True)
class Notification:
    channel: Literal["email", "sms", "slack", "webhook"]
    target: str
    subject: str
    text: str
    html: str | None = None
    attachments: tuple[tuple[str, bytes, str], ...] = ()  # (filename, content, mime type)
    idempotency_key: str = ""


class NotifierPort(Protocol):
    def send(self, notification: Notification) -> str:
        """Deliver; answer the provider's message id. Raises DependencyUnavailableError to be retried."""
        ...


# --------------------------------------------------------------------------- events


class EventBus(Protocol):
    """Where relayed events go (EventBridge on AWS and in the local cloud)."""

    def publish(self, events: Sequence[Event]) -> list[str]:
        """Publish; answer the ids of the events that failed (empty when all were accepted)."""
        ...


class Outbox(Protocol):
    """Pending events written in the same transaction as the state change they describe."""

    def pending(self, limit: int) -> list[Event]: ...
    def mark_sent(self, event_ids: Sequence[str]) -> None: ...


class HealthCheck(Protocol):
    name: str

    def check(self) -> dict[str, Any]:
        """Answer details when healthy; raise DependencyUnavailableError when not."""
        ...
