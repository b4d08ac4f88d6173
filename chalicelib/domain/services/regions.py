"""Regions and their clusters: the seeded local ones, and those the platform provisions with Terraform.

A provisioned region's life is the region state machine (``statemachines/regions.asl.json``), whose
steps are the methods below (each idempotent, so a retried step is safe):

    create: planning -> [awaiting_approval] -> applying -> registering -> active     (region.created)
    delete: draining -> destroying -> deleted                                        (region.deleted)
    any step failing: failed, with the step, the reason and the end of Terraform's log (region.failed)

The Terraform runs (plan, apply, destroy) outlive a Lambda: the state machine sends them to a queue with
a task token, and a container task (a worker process of the local cloud) runs the real binary and
answers through the token (``run_terraform``). A retry starts a new execution of the failed action;
Terraform's state, kept per region, makes it resume where the last run stopped.

Health: ``check_health`` (a schedule) probes every registered cluster's runtime API; after
``health_failures`` consecutive failed checks a cluster is ``unhealthy`` (no placements there;
``region.unhealthy``), and the first check that passes makes it ``active`` again (``region.recovered``).
A check sooner than half the interval after the last one is not counted (two schedulers, a retry).

A region's ``status`` is its stored admin state (``active``, ``draining``, ...); ``region_health`` is
derived from its clusters, and says whether it can take a namespace now: ``healthy`` (every cluster
in service is), ``degraded`` (some are unhealthy, the healthy ones take placements), ``unavailable``
(not ``active``, or no healthy cluster: placement refuses it)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from chalicelib.domain.clock import Clock
from chalicelib.domain.errors import (
    ConflictError,
    DependencyUnavailableError,
    NotFoundError,
    PlatformError,
    ValidationError,
)
from chalicelib.domain.events import Event
from chalicelib.domain.model import Principal
from chalicelib.domain.ports import (
    Capacity,
    Cluster,
    ClusterProbe,
    PlanSummary,
    Region,
    RegionRegistry,
    RegionStatus,
    TaskTokenPort,
    TerraformPort,
    TerraformResult,
    TerraformRun,
    WorkflowPort,
)
from chalicelib.domain.redaction import redact as mask
from chalicelib.domain.stores import NamespaceStore

LOCAL_REGION = "local"
MICRO_LOCAL_REGION = "micro-local"
SEEDED = (LOCAL_REGION, MICRO_LOCAL_REGION)

CLOUDS = ("aws", "gcp", "azure", "digitalocean", "local")
SIZES = ("small", "medium", "large")
REGION_NAME = re.compile(r"[a-z]([a-z0-9-]{0,38}[a-z0-9])?")
# The cloud's own region names: us-east-1, europe-west1, westeurope, fra1; "local" for this machine.
CLOUD_REGION = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")
OUTPUTS = ("api_address", "proxy_address", "credentials_secret", "capacity")
LOG_EXCERPT_CHARS = 4000
REASON_CHARS = 500
WORKING = ("planning", "awaiting_approval", "applying", "registering", "draining", "destroying")


class ClusterUnreachableError(DependencyUnavailableError):
    """The new cluster's runtime does not answer yet (the Health step retries on it)."""

    code = "cluster_unreachable"


class TerraformFailedError(PlatformError):
    """A Terraform run failed (the runner answers the task token with this error's name)."""

    code = "terraform_failed"


class DrainTimeoutError(PlatformError):
    """Namespaces still live on a region being deleted after the drain's deadline."""

    code = "drain_timeout"


def local_region(cluster_address: str, capacity: int = 100) -> Region:
    """The local stage's own region: this machine, with one cluster (the local runtime, whose one
    address serves both as its API and as what ``~/.micro`` is given)."""
    return Region(
        name=LOCAL_REGION,
        cloud="local",
        display_name="This machine",
        status="active",
        clusters=(
            Cluster("local-1", LOCAL_REGION, "local", cluster_address, "active", capacity, api_address=cluster_address),
        ),
    )


def micro_local_region(api_address: str, proxy_address: str, capacity: int = 100) -> Region:
    """The local stage's second region: one cluster that is the micro stand-in (micro v3's HTTP API
    gateway at ``api_address``; ``proxy_address`` where its gRPC proxy would be), driven through
    ``MicroRuntime`` as a real cluster is."""
    return Region(
        name=MICRO_LOCAL_REGION,
        cloud="local",
        display_name="This machine, through micro's runtime API (the micro stand-in)",
        status="active",
        clusters=(
            Cluster(
                "micro-local-1", MICRO_LOCAL_REGION, "local", proxy_address, "active", capacity, api_address=api_address
            ),
        ),
    )


@dataclass(frozen=True)
class HealthSettings:
    failures: int = 3  # consecutive failed checks before a cluster is unhealthy
    interval: timedelta = timedelta(minutes=1)  # the schedule's rate


RegionHealth = Literal["healthy", "degraded", "unavailable"]


def region_health(region: Region) -> RegionHealth:
    """Whether the region can take a namespace now, from its clusters in service (``active`` or
    ``unhealthy``; placement takes only ``active`` ones), apart from its stored admin ``status``."""
    in_service = [c for c in region.clusters if c.status in ("active", "unhealthy")]
    healthy = [c for c in in_service if c.status == "active"]
    if region.status != "active" or not healthy:
        return "unavailable"
    return "degraded" if len(healthy) < len(in_service) else "healthy"


def cluster_id_of(region: str) -> str:
    return f"{region}-1"


def execution_name(region: str, action: str, attempt: int) -> str:
    return f"{region}-{action}-{attempt}"


def error_of(error: Mapping[str, Any] | None) -> tuple[str, str | None]:
    """(reason, log excerpt) from a Catch's ``{"Error", "Cause"}``: the runner's cause is JSON with
    ``reason`` and ``log_excerpt``; a Lambda's has ``errorMessage``; a timeout has only its name."""
    if not error:
        return "unknown failure", None
    name = str(error.get("Error") or "Error")
    cause = error.get("Cause")
    parsed: Any = None
    if isinstance(cause, str):
        try:
            parsed = json.loads(cause)
        except ValueError:
            parsed = None
    if isinstance(parsed, dict):
        message = parsed.get("reason") or parsed.get("errorMessage") or ""
        excerpt = parsed.get("log_excerpt")
    else:
        message, excerpt = (cause or ""), None
    if name == "States.Timeout":
        message = message or "the step did not finish in time (a Terraform run that never reported back?)"
    reason = f"{name}: {message}" if message else name
    return mask(reason)[:REASON_CHARS], (mask(str(excerpt))[-LOG_EXCERPT_CHARS:] if excerpt else None)


class RegionService:
    def __init__(
        self,
        registry: RegionRegistry,
        clock: Clock,
        *,
        namespaces: NamespaceStore | None = None,
        workflows: WorkflowPort | None = None,
        tokens: TaskTokenPort | None = None,
        probe: ClusterProbe | None = None,
        offboard: Callable[[str, str], object] | None = None,
        variables: Callable[[Region], dict[str, Any]] | None = None,
        health: HealthSettings = HealthSettings(),
        poll_seconds: int = 5,
        drain_timeout: timedelta = timedelta(hours=1),
    ) -> None:
        """``offboard(ns, actor)`` starts a namespace's offboarding (a forced delete); ``variables(region)``
        are the Terraform variables of the region's cloud configuration (the composition root knows the
        machine's: paths, the state backend)."""
        self._registry = registry
        self._clock = clock
        self._namespaces = namespaces
        self._workflows = workflows
        self._tokens = tokens
        self._probe = probe
        self._offboard = offboard
        self._variables = variables or (lambda region: {})
        self._health = health
        self._poll_seconds = poll_seconds
        self._drain_timeout = drain_timeout

    # ------------------------------------------------------------------ seeded regions

    def seed_local(self, cluster_address: str, micro: tuple[str, str] | None = None) -> dict[str, bool]:
        """Create the local region, and ``micro-local`` when the micro stand-in's addresses (api, proxy)
        are given, unless they exist (idempotent: every start of the local cloud); answer which were made.
        The addresses of existing ones follow the configuration."""
        made = {LOCAL_REGION: self._registry.seed(local_region(cluster_address))}
        if micro is not None:
            made[MICRO_LOCAL_REGION] = self._registry.seed(micro_local_region(*micro))
        return made

    # ------------------------------------------------------------------ API

    def get(self, name: str) -> Region:
        return self._registry.get(name)

    def create(
        self, principal: Principal, name: str, cloud: str, cloud_region: str, size: str, require_approval: bool
    ) -> Region:
        fields = []
        if not REGION_NAME.fullmatch(name):
            fields.append(
                {"field": "name", "message": "a DNS label: a-z, 0-9 and -, at most 40, starting with a letter"}
            )
        if cloud not in CLOUDS:
            fields.append({"field": "cloud", "message": f"one of {', '.join(CLOUDS)}"})
        if not CLOUD_REGION.fullmatch(cloud_region):
            fields.append({"field": "region", "message": "the cloud's region name (a-z, 0-9 and -)"})
        elif cloud in CLOUDS and (cloud == "local") != (cloud_region == "local"):
            # "local" (the default) is no AWS, GCP, Azure or DigitalOcean region: Terraform would fail late
            fields.append(
                {"field": "region", "message": "local for the local cloud only"}
                if cloud == "local"
                else {"field": "region", "message": f"the {cloud} region to create the cluster in (not local)"}
            )
        if size not in SIZES:
            fields.append({"field": "size", "message": f"one of {', '.join(SIZES)}"})
        if fields:
            raise ValidationError("the region cannot be created", {"fields": fields})
        if name in SEEDED:
            raise ConflictError(f"the region {name!r} exists", {"region": name})
        try:
            previous: Region | None = self._registry.get(name)
        except NotFoundError:
            previous = None
        if previous is not None and previous.status != "deleted":
            raise ConflictError(
                f"the region {name!r} exists ({previous.status})"
                + ("; retry it with POST /v1/regions/{name}/retry" if previous.status == "failed" else ""),
                {"region": name, "status": previous.status},
            )
        attempt = (previous.attempt if previous is not None else 0) + 1
        now = self._clock.now()
        region = Region(
            name=name,
            cloud=cloud,
            display_name=f"{name} ({cloud} {cloud_region})",
            status="planning",
            cloud_region=cloud_region,
            size=size,
            require_approval=require_approval,
            managed=True,
            attempt=attempt,
            action="create",
            created_by=principal.login,
            status_at=now,
        )
        self._registry.create(region)
        self._start(region, "create", {"actor": principal.actor})
        return self._registry.get(name)

    def retry(self, name: str, principal: Principal) -> Region:
        """A failed region's action again, with a new execution: Terraform's state makes it resume."""
        region = self._managed(name)
        if region.status != "failed":
            raise ConflictError(
                f"only a failed region can be retried; {name} is {region.status}",
                {"region": name, "status": region.status},
            )
        action = region.action or "create"
        attempt = region.attempt + 1
        status = "planning" if action == "create" else "draining"
        region = self._registry.update(
            name,
            {"status": status, "status_at": self._clock.now(), "attempt": attempt, "approval_token": None},
            expect_status=["failed"],
        )
        self._start(region, action, {"actor": principal.actor, "force": False})
        return region

    def approve(self, name: str, principal: Principal) -> Region:
        """The plan is approved: the execution waiting at AwaitApproval goes on to Apply."""
        region = self._managed(name)
        token = self._registry.approval_token(name) if region.status == "awaiting_approval" else None
        if token is None:
            raise ConflictError(
                f"the region {name} is {region.status}: there is no plan waiting for approval"
                + (" yet" if region.status == "planning" else ""),
                {"region": name, "status": region.status},
            )
        region = self._registry.update(
            name,
            {"status": "applying", "status_at": self._clock.now(), "approval_token": None},
            expect_status=["awaiting_approval"],
        )
        assert self._tokens is not None
        try:
            self._tokens.succeed(token, {"approved_by": principal.actor})
        except NotFoundError as e:  # the token expired or its execution ended
            reason = "the approval came after the plan's execution had ended; retry the region"
            self._registry.update(
                name,
                {
                    "status": "failed",
                    "status_at": self._clock.now(),
                    "failure_reason": reason,
                    "failure_step": "AwaitApproval",
                },
            )
            raise ConflictError(reason, {"region": name}) from e
        return region

    def delete(self, name: str, principal: Principal, *, force: bool = False) -> Region:
        """Drain (no new placements) and destroy. Refused while namespaces live there, unless ``force``,
        which offboards them first."""
        region = self._managed(name)
        if region.status in ("draining", "destroying", "deleted"):
            raise ConflictError(f"the region {name} is {region.status}", {"region": name, "status": region.status})
        if region.status in WORKING:
            raise ConflictError(
                f"the region {name} is {region.status}; delete it once that ends (or it fails)",
                {"region": name, "status": region.status},
            )
        living = self.namespaces_on(region)
        if living and not force:
            raise ConflictError(
                f"{len(living)} namespace(s) live in {name}: delete them first, or delete the region with force "
                "(which offboards them)",
                {"region": name, "namespaces": living[:100]},
            )
        now = self._clock.now()
        event = Event.create(
            "region.status_changed",
            None,
            now,
            {"region": name, "old_status": region.status, "new_status": "draining", "actor": principal.actor},
        )
        region = self._registry.update(
            name,
            {"status": "draining", "status_at": now, "attempt": region.attempt + 1, "action": "delete"},
            expect_status=["active", "failed"],
            events=[event],
        )
        for cluster in region.clusters:
            if cluster.status in ("active", "unhealthy", "provisioning"):
                self._registry.set_cluster_status(name, cluster.id, "draining")
        self._start(region, "delete", {"actor": principal.actor, "force": force})
        return self._registry.get(name)

    def namespaces_on(self, region: Region) -> list[str]:
        assert self._namespaces is not None
        return sorted({ns for c in region.clusters for ns in self._namespaces.on_cluster(c.id)})

    def view(self, region: Region) -> dict[str, Any]:
        """What ``GET /v1/regions/{region}`` shows: status, health, capacity used and free, the plan, the failure."""
        total = [c.total for c in region.clusters if c.status not in ("retired",)]
        taken = [c.taken for c in region.clusters if c.status not in ("retired",)]
        used = Capacity(sum(t.cpu_millicores for t in taken), sum(t.memory_mib for t in taken))
        cap = Capacity(sum(t.cpu_millicores for t in total), sum(t.memory_mib for t in total))
        return {
            "region": region,
            "capacity": cap,
            "used": used,
            "free": Capacity(
                max(0, cap.cpu_millicores - used.cpu_millicores), max(0, cap.memory_mib - used.memory_mib)
            ),
            "namespaces": sum(c.used for c in region.clusters),
            "health": region_health(region),
        }

    # ------------------------------------------------------------------ the state machine's steps

    def step_planned(self, name: str, plan: Mapping[str, Any]) -> dict[str, Any]:
        """Plan's result recorded; answer whether the plan waits for an approval."""
        summary = _summary(plan.get("summary"))
        region = self._registry.get(name)
        approval = region.require_approval
        changes: dict[str, Any] = {
            "plan_summary": summary,
            "failure_reason": None,
            "failure_step": None,
            "log_excerpt": None,
        }
        if not approval:  # else it stays planning until its approval token is kept (step_await_approval)
            changes.update({"status": "applying", "status_at": self._clock.now()})
        self._registry.update(name, changes, expect_status=["planning"])
        return {"approval": approval}

    def step_await_approval(self, name: str, token: str) -> None:
        """The AwaitApproval step's token kept for ``POST /v1/regions/{name}/approve``, and the region
        ``awaiting_approval`` with it (so a region awaiting approval always has its token)."""
        self._registry.update(
            name,
            {"status": "awaiting_approval", "status_at": self._clock.now(), "approval_token": token},
            expect_status=["planning"],
        )

    def step_register(self, name: str, outputs: Mapping[str, Any]) -> dict[str, Any]:
        """The cluster the apply made, registered with its addresses, room and credentials reference."""
        missing = [o for o in OUTPUTS if outputs.get(o) in (None, "")]
        if missing:
            raise ValidationError(f"the configuration's outputs lack {', '.join(missing)}", {"missing": missing})
        room = outputs["capacity"]
        try:
            capacity = Capacity(int(room["cpu_millicores"]), int(room["memory_mib"]))
        except (KeyError, TypeError, ValueError) as e:
            raise ValidationError(
                "the capacity output must be {cpu_millicores, memory_mib}", {"capacity": str(room)[:200]}
            ) from e
        region = self._registry.update(
            name, {"status": "registering", "status_at": self._clock.now()}, expect_status=["applying", "registering"]
        )
        cluster = Cluster(
            id=cluster_id_of(name),
            region=name,
            cloud=region.cloud,
            proxy_address=str(outputs["proxy_address"]),
            api_address=str(outputs["api_address"]),
            status="provisioning",
            capacity=capacity.cpu_millicores // 1000,  # in namespaces of the smallest plan (shown)
            room=capacity,
            credentials_secret=str(outputs["credentials_secret"]),
        )
        self._registry.put_cluster(cluster)
        return {"cluster_id": cluster.id, "api_address": cluster.api}

    def step_health(self, name: str) -> None:
        """The new cluster's runtime answers through its API (ClusterUnreachableError to retry)."""
        region = self._registry.get(name)
        assert self._probe is not None
        for cluster in region.clusters:
            try:
                self._probe.probe(cluster)
            except DependencyUnavailableError as e:
                raise ClusterUnreachableError(
                    f"the runtime of {cluster.id} does not answer at {cluster.api}: {e.message}",
                    {"cluster": cluster.id},
                ) from e

    def step_activate(self, name: str, actor: str = "system:regions") -> None:
        region = self._registry.get(name)
        if region.status == "active":
            return
        now = self._clock.now()
        for c in region.clusters:
            if c.status != "active":
                self._registry.set_cluster_status(name, c.id, "active")
        cluster = region.clusters[0] if region.clusters else None
        event = Event.create(
            "region.created",
            None,
            now,
            {
                "region": name,
                "cloud": region.cloud,
                "cloud_region": region.cloud_region,
                "cluster_id": cluster.id if cluster else None,
                "api_address": cluster.api if cluster else None,
                "proxy_address": cluster.proxy_address if cluster else None,
                "capacity": _capacity_data(cluster.total) if cluster else None,
                "actor": actor,
            },
        )
        self._registry.update(
            name,
            {"status": "active", "status_at": now, "failure_reason": None, "failure_step": None},
            expect_status=["registering"],
            events=[event],
        )

    def step_fail(self, name: str, step: str, error: Mapping[str, Any] | None) -> dict[str, Any]:
        """Any step's Catch: ``failed`` with the step, the reason and the end of the log."""
        reason, excerpt = error_of(error)
        region = self._registry.get(name)
        if region.status in ("failed", "deleted"):
            return {"region": name, "status": region.status}
        event = Event.create(
            "region.failed",
            None,
            self._clock.now(),
            {"region": name, "cloud": region.cloud, "action": region.action, "step": step, "reason": reason},
        )
        self._registry.update(
            name,
            {
                "status": "failed",
                "status_at": self._clock.now(),
                "failure_reason": reason,
                "failure_step": step,
                "log_excerpt": excerpt,
                "approval_token": None,
            },
            events=[event],
        )
        return {"region": name, "status": "failed", "reason": reason}

    def step_drain(self, name: str, force: bool, actor: str) -> dict[str, Any]:
        """The namespaces still placed there; with ``force``, each one's offboarding started (once)."""
        region = self._registry.get(name)
        living = self.namespaces_on(region)
        if living and force and self._offboard is not None:
            for ns_id in living:
                try:
                    self._offboard(ns_id, actor)
                except ConflictError:
                    pass  # being offboarded already (or onboarding: the next round tries again)
        if living and not force:
            raise ConflictError(f"{len(living)} namespace(s) live in {name}", {"namespaces": living[:100]})
        if living and region.status_at and self._clock.now() - region.status_at > self._drain_timeout:
            raise DrainTimeoutError(
                f"{len(living)} namespace(s) still live in {name} after {self._drain_timeout}",
                {"namespaces": living[:100]},
            )
        return {"remaining": len(living)}

    def step_destroying(self, name: str) -> None:
        self._registry.update(
            name, {"status": "destroying", "status_at": self._clock.now()}, expect_status=["draining", "destroying"]
        )

    def step_retire(self, name: str, actor: str) -> None:
        region = self._registry.get(name)
        if region.status == "deleted":
            return
        for cluster in region.clusters:
            self._registry.delete_cluster(name, cluster.id)
        event = Event.create(
            "region.deleted", None, self._clock.now(), {"region": name, "cloud": region.cloud, "actor": actor}
        )
        self._registry.update(
            name,
            {"status": "deleted", "status_at": self._clock.now(), "plan_summary": None, "failure_reason": None},
            expect_status=["destroying"],
            events=[event],
        )

    # ------------------------------------------------------------------ the Terraform runner's side

    def run_terraform(self, terraform: TerraformPort, message: Mapping[str, Any]) -> TerraformResult:
        """One message of the runner's queue: ``{action: plan|apply|destroy, region, attempt}``."""
        action = str(message.get("action"))
        region = self._registry.get(str(message["region"]))
        run = TerraformRun(
            region=region.name,
            cloud=region.cloud,
            attempt=int(message.get("attempt") or region.attempt),
            variables={
                "name": region.name,
                "region": region.cloud_region,
                "size": region.size,
                **self._variables(region),
            },
        )
        if action == "plan":
            return terraform.plan(run)
        if action == "apply":
            return terraform.apply(run)
        if action == "destroy":
            return terraform.destroy(run)
        raise ValidationError(f"unknown terraform action {action!r}", {"action": action})

    # ------------------------------------------------------------------ health

    def check_health(self) -> dict[str, list[str]]:
        """Probe every registered cluster once (see the module's docstring); answer what changed."""
        assert self._probe is not None
        changed: dict[str, list[str]] = {"unhealthy": [], "recovered": [], "failing": [], "skipped": []}
        now = self._clock.now()
        for region in self._registry.list():
            for cluster in region.clusters:
                if cluster.status not in ("active", "unhealthy"):
                    continue
                if cluster.last_check_at is not None and now - cluster.last_check_at < self._health.interval / 2:
                    changed["skipped"].append(cluster.id)
                    continue
                try:
                    self._probe.probe(cluster)
                    error = None
                except DependencyUnavailableError as e:
                    error = mask(e.message)
                self._record(region, cluster, error, changed)
        return {k: v for k, v in changed.items() if v}

    def _record(self, region: Region, cluster: Cluster, error: str | None, changed: dict[str, list[str]]) -> None:
        now = self._clock.now()
        status: RegionStatus | None = None
        events: list[Event] = []
        if error is None and cluster.status == "unhealthy":
            status = "active"
            since = cluster.unhealthy_since or now
            events.append(
                Event.create(
                    "region.recovered",
                    None,
                    now,
                    {
                        "region": region.name,
                        "cluster_id": cluster.id,
                        "unhealthy_since": since.isoformat(),
                        "down_seconds": int((now - since).total_seconds()),
                    },
                )
            )
        elif error is not None and cluster.status == "active" and cluster.health_failures + 1 >= self._health.failures:
            status = "unhealthy"
            since = cluster.unhealthy_since or now
            events.append(
                Event.create(
                    "region.unhealthy",
                    None,
                    now,
                    {
                        "region": region.name,
                        "cluster_id": cluster.id,
                        "check": "runtime_api",
                        "reason": error[:REASON_CHARS],
                        "failures": cluster.health_failures + 1,
                        "since": since.isoformat(),
                    },
                )
            )
        written = self._registry.record_check(cluster, now=now, error=error, status=status, events=events)
        if not written:
            changed["skipped"].append(cluster.id)
        elif status == "unhealthy":
            changed["unhealthy"].append(cluster.id)
        elif status == "active":
            changed["recovered"].append(cluster.id)
        elif error is not None:
            changed["failing"].append(cluster.id)

    # ------------------------------------------------------------------ helpers

    def _managed(self, name: str) -> Region:
        region = self._registry.get(name)
        if not region.managed:
            raise ConflictError(
                f"the region {name} was not provisioned by the platform (it is seeded): it cannot be changed here",
                {"region": name},
            )
        return region

    def _start(self, region: Region, action: str, extra: dict[str, Any]) -> None:
        assert self._workflows is not None
        payload = {
            "action": action,
            "region": region.name,
            "attempt": region.attempt,
            "poll_seconds": self._poll_seconds,
            "force": False,
            **extra,
        }
        try:
            self._workflows.start("regions", execution_name(region.name, action, region.attempt), payload)
        except Exception as e:
            self._registry.update(
                region.name,
                {
                    "status": "failed",
                    "status_at": self._clock.now(),
                    "failure_reason": f"the {action} could not start; retry it",
                    "failure_step": "Start",
                },
            )
            raise PlatformError(f"the region's {action} could not start; retry it", {"region": region.name}) from e


def _summary(raw: Any) -> PlanSummary | None:
    if not isinstance(raw, Mapping):
        return None
    try:
        return PlanSummary(int(raw["add"]), int(raw["change"]), int(raw["destroy"]))
    except (KeyError, TypeError, ValueError):
        return None


def _capacity_data(c: Capacity) -> dict[str, int]:
    return {"cpu_millicores": c.cpu_millicores, "memory_mib": c.memory_mib}
