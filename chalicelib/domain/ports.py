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
class InvoiceLine:
    """One line of a provider's invoice: ``meter`` names the catalog meter of a metered line, ``kind``
    says what it bills (``base``, ``usage``, ``proration``, ``other``); money in cents; ``quantity`` in
    the provider's units (millionths of a meter's unit for usage)."""

    description: str
    amount: int
    quantity: int
    kind: str = "other"
    meter: str | None = None
    period_start: datetime | None = None
    period_end: datetime | None = None


@dataclass(frozen=True)
class InvoiceSummary:
    id: str | None  # None for a preview (the provider made nothing yet)
    customer_id: str
    status: str
    amount_due: int
    currency: str
    period_start: datetime
    period_end: datetime
    total: int = 0
    amount_paid: int = 0
    created: datetime | None = None
    hosted_invoice_url: str | None = None
    attempt_count: int = 0
    billing_reason: str | None = None
    lines: tuple[InvoiceLine, ...] = ()


@dataclass(frozen=True)
class CatalogSync:
    """What syncing the catalog to the provider found and made (provider ids by our names)."""

    meters: dict[str, str]  # meter name -> provider meter id
    prices: dict[str, dict[str, str]]  # plan -> {"base" or meter name -> provider price id}
    created: list[str] = field(default_factory=list)  # what was made this time ("meter requests", ...)


class BillingPort(Protocol):
    """The billing provider (Stripe): customers, subscriptions to a plan's prices, meter events, invoices.

    Every write carries an idempotency key (a retry with it acts once). ``BillingRejectedError`` is a
    refusal that would be refused again (not retried); ``DependencyUnavailableError`` is an outage the
    adapter already retried (the caller may try again later); ``NotFoundError`` a customer or
    subscription the provider does not know."""

    def create_customer(self, namespace: str, email: str | None, idempotency_key: str) -> str: ...
    def delete_customer(self, customer_id: str) -> None: ...
    def create_subscription(
        self, customer_id: str, plan: str, idempotency_key: str, *, start: datetime | None = None
    ) -> str:
        """Subscribe to ``plan``'s prices; usage counts from ``start`` (the namespace's first hour)."""
        ...

    def change_plan(self, subscription_id: str, plan: str, idempotency_key: str) -> None:
        """Move the subscription to ``plan``'s prices now, prorating the base price."""
        ...

    def cancel_subscription(self, subscription_id: str, *, at_period_end: bool = True) -> None: ...
    def report_meter_event(self, event: MeterEvent) -> None:
        """Send one meter event; a repeat of an identifier the provider has seen is taken as delivered."""
        ...

    def list_invoices(self, customer_id: str, limit: int = 12) -> list[InvoiceSummary]: ...
    def upcoming_invoice(self, subscription_id: str) -> InvoiceSummary | None:
        """The provider's preview of the invoice that closes the current period (None: none coming)."""
        ...

    def portal_url(self, customer_id: str, return_url: str) -> str: ...
    def usage_totals(
        self, customer_id: str, meter: str, start: datetime, end: datetime, window: Literal["hour", "day"]
    ) -> dict[datetime, int]:
        """The provider's aggregated usage of ``meter`` (a catalog meter's name) per window start, in
        millionths, for windows in ``[start, end)`` that hold events."""
        ...

    def sync_catalog(self) -> CatalogSync:
        """Create what is missing of the catalog's meters and prices at the provider; idempotent."""
        ...


# --------------------------------------------------------------------------- regions and clusters

RegionStatus = Literal[
    "provisioning",  # seeded or legacy: being made outside the region state machine
    "planning",
    "awaiting_approval",
    "applying",
    "registering",
    "active",
    "unhealthy",  # a cluster's only: its runtime failed consecutive health checks
    "draining",
    "destroying",
    "failed",
    "retired",
    "deleted",
]


@dataclass(frozen=True)
class Capacity:
    """What placement counts on a cluster: the sum of the resource quotas (requests) of the namespaces
    placed there, against what the cluster accepts (its nodes' allocatable CPU and memory, times the
    overcommit the module declares)."""

    cpu_millicores: int
    memory_mib: int


@dataclass(frozen=True)
class Cluster:
    """A runtime cluster: ``api_address`` is micro's HTTP API gateway (the platform calls it),
    ``proxy_address`` its gRPC proxy (the ``micro`` CLI's ``MICRO_PROXY``). A cluster stored before
    the two were told apart has only ``proxy_address``, which was the HTTP API's: ``api`` answers it.
    ``capacity``/``used`` count namespaces (shown); ``room``/``taken`` are the quotas placement counts.
    ``credentials_secret`` names where the platform's admin credential for this cluster is kept (empty:
    the platform's one ``MICRO_RUNTIME_TOKEN``)."""

    id: str
    region: str
    cloud: str
    proxy_address: str
    status: RegionStatus
    capacity: int
    used: int = 0
    api_address: str = ""
    room: Capacity | None = None
    taken: Capacity = Capacity(0, 0)
    credentials_secret: str = ""
    health_failures: int = 0
    unhealthy_since: datetime | None = None
    last_check_at: datetime | None = None
    last_check_error: str | None = None

    @property
    def api(self) -> str:
        return self.api_address or self.proxy_address

    @property
    def total(self) -> Capacity:
        """What the cluster accepts: ``room``, or for a cluster registered by namespace count, that many
        namespaces of 1 CPU and 1 GiB (the smallest plan's quota)."""
        return self.room or Capacity(self.capacity * 1000, self.capacity * 1024)

    @property
    def free(self) -> Capacity:
        t = self.total
        return Capacity(
            max(0, t.cpu_millicores - self.taken.cpu_millicores), max(0, t.memory_mib - self.taken.memory_mib)
        )


@dataclass(frozen=True)
class PlanSummary:
    """What a Terraform plan would do (``terraform show -json``'s resource changes, counted)."""

    add: int
    change: int
    destroy: int


@dataclass(frozen=True)
class Region:
    name: str
    cloud: str
    display_name: str
    status: RegionStatus
    clusters: tuple[Cluster, ...] = ()
    # A region the platform provisions (``POST /v1/regions``); seeded ones have none of these.
    cloud_region: str = ""
    size: str = ""
    require_approval: bool = False
    managed: bool = False
    attempt: int = 0
    action: str = ""  # what the last execution did: create or delete
    plan_summary: PlanSummary | None = None
    failure_reason: str | None = None
    failure_step: str | None = None
    log_excerpt: str | None = None
    created_by: str | None = None
    status_at: datetime | None = None


class RegionRegistry(Protocol):
    def get(self, name: str) -> Region: ...
    def list(self) -> list[Region]: ...
    def put(self, region: Region) -> None: ...
    def add_cluster(self, cluster: Cluster) -> None: ...
    def set_status(self, name: str, status: RegionStatus) -> None: ...
    def seed(self, region: Region) -> bool: ...
    def create(self, region: Region) -> None:
        """Write a new region; ConflictError when one of that name exists (unless it is ``deleted``)."""
        ...

    def update(
        self,
        name: str,
        changes: dict[str, Any],
        *,
        expect_status: Sequence[RegionStatus] | None = None,
        events: Sequence[Event] = (),
    ) -> Region:
        """Change the region's fields (with its events, in one transaction); ConflictError when its status
        is not one of ``expect_status``; answer the region as it is now."""
        ...

    def put_cluster(self, cluster: Cluster, events: Sequence[Event] = ()) -> None:
        """Register (or re-register) a cluster: addresses, room, credentials reference, status."""
        ...

    def set_cluster_status(
        self,
        region: str,
        cluster_id: str,
        status: RegionStatus,
        *,
        expect_status: Sequence[RegionStatus] | None = None,
        events: Sequence[Event] = (),
    ) -> None: ...

    def record_check(
        self,
        cluster: Cluster,
        *,
        now: datetime,
        error: str | None,
        status: RegionStatus | None = None,
        events: Sequence[Event] = (),
    ) -> bool:
        """Record one health check of ``cluster`` as it was read: the failure count goes up by one on an
        error and back to 0 otherwise, ``status`` (when given) changes with ``events``. Answers False and
        writes nothing when the cluster changed since it was read (another check ran meanwhile)."""
        ...

    def delete_cluster(self, region: str, cluster_id: str) -> None: ...
    def approval_token(self, name: str) -> str | None:
        """The token of the execution waiting for this region's plan to be approved, if one waits."""
        ...


class TerraformPort(Protocol):
    """Terraform over one region's working directory and state (python-terraform, the real binary)."""

    def plan(self, run: TerraformRun) -> TerraformResult: ...
    def apply(self, run: TerraformRun) -> TerraformResult: ...
    def destroy(self, run: TerraformRun) -> TerraformResult: ...


@dataclass(frozen=True)
class TerraformRun:
    """One run for a region: the configuration of its cloud (``infra/examples/<cloud>``), its
    variables, and the attempt (the saved plan of an attempt is what that attempt applies)."""

    region: str
    cloud: str
    attempt: int
    variables: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TerraformResult:
    """``ok`` or not; the plan's summary (plan, apply), the outputs (apply), the reason it failed and
    the end of its log (secrets masked); ``log`` is where the whole log is kept."""

    ok: bool
    summary: PlanSummary | None = None
    outputs: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None
    log_excerpt: str = ""
    log: str = ""


class TaskTokenPort(Protocol):
    """Step Functions' task tokens: whoever finished the work of a ``.waitForTaskToken`` step answers."""

    def succeed(self, token: str, output: dict[str, Any]) -> None: ...
    def fail(self, token: str, error: str, cause: str) -> None:
        """``cause`` at most 32,768 characters (Step Functions' limit)."""
        ...


class ClusterProbe(Protocol):
    """A health check of a cluster's runtime through its API (micro's runtime service)."""

    def probe(self, cluster: Cluster) -> None:
        """Return when the runtime answers; raise DependencyUnavailableError saying why not."""
        ...


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
    def send(self, queue: str, body: dict[str, Any], *, dedup_id: str | None = None, delay_seconds: int = 0) -> str:
        """Send one message; ``delay_seconds`` (0-900, SQS's DelaySeconds) keeps it from its consumer that long."""
        ...

    def send_batch(self, queue: str, bodies: Sequence[dict[str, Any]]) -> None:
        """Sends every body, ten a request; DependencyUnavailableError when some were not sent (a retry
        sends them all again: the consumers are idempotent)."""
        ...


class EncryptorPort(Protocol):
    """Encryption at rest for secrets the platform must read back (KMS on AWS, a local key locally)."""

    def encrypt(self, plaintext: str, context: dict[str, str]) -> str: ...
    def decrypt(self, ciphertext: str, context: dict[str, str]) -> str: ...


# --------------------------------------------------------------------------- notifications

NotificationChannel = Literal["email", "sms", "slack", "webhook"]


@dataclass(frozen=True)
class Attachment:
    """A file sent with an email. ``content_id`` makes it inline: a part of the HTML's
    ``multipart/related`` that the HTML shows as ``<img src="cid:<content_id>">`` (a chart), rather
    than a file to download (a CSV)."""

    filename: str
    content: bytes
    mime_type: str
    content_id: str | None = None


@dataclass(frozen=True)
class Notification:
    """One message to one destination (reports and alerts build them; a notifier sends them).

    - ``target``: the destination, one per notification: an email address (``email``), a Slack
      incoming-webhook URL (``slack``, a secret: never stored or logged as it is), a phone number
      (``sms``), an https URL (``webhook``).
    - ``subject`` and ``text``: an email's subject and plain-text part; Slack's ``text`` is the
      message's fallback (notifications, clients without Block Kit).
    - ``html``: an email's HTML part; ``attachments``: an email's files, inline or not.
    - ``blocks``: a Slack message's Block Kit blocks (JSON objects).
    - ``signing_secrets``: a ``webhook``'s Standard Webhooks secrets (``whsec_...``), each signing the
      message (two during a rotation); secrets, never shown or logged.
    - ``key``: what makes two sends the same delivery (``DeliveryService`` claims it before sending, so
      a retried step does not send twice): ``<what>:<namespace>:<which one>:<channel id>``, at most 200
      characters of ``[A-Za-z0-9._:-]``.
    """

    channel: NotificationChannel
    target: str
    subject: str
    text: str
    html: str | None = None
    attachments: tuple[Attachment, ...] = ()
    blocks: tuple[dict[str, Any], ...] = ()
    key: str = ""
    signing_secrets: tuple[str, ...] = field(default=(), repr=False)


class NotifierPort(Protocol):
    """Sends one notification of one channel, once: a notifier never retries on its own (a retry is
    the delivery service's decision, made from what the last attempt is known to have done).

    Answers the provider's message id (SES's ``MessageId``; Slack gives none: the adapter answers a
    digest of what it sent). Raises, by what is known of the outcome:

    - ``DependencyUnavailableError``: surely not delivered (no connection was made, the provider
      answered that it did not take it: a throttle, a 5xx). Safe to send again.
    - ``DeliveryRefusedError``: the provider refused it for good (an unverified sender, a revoked
      Slack webhook, an address the platform does not send to). Sending it again would not help.
    - ``DeliveryOutcomeUnknownError``: the request left and no answer came back (a read timeout, a
      connection reset after sending): it may have been delivered. Never sent again blindly.
    """

    def send(self, notification: Notification) -> str: ...

    def describe(self, target: str) -> str:
        """What of a target may be stored and shown (delivery records, logs): an email address as it
        is; a Slack webhook's scheme and host with the rest masked (its path is its credential)."""
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
