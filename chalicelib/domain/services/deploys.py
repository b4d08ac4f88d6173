"""Services and their deployments: the deploy flow's rules, shared by the API (request, rollback,
config changes) and the deploy state machine's tasks (statemachines/deploy.asl.json).

One deploy at a time per service: a deployment takes the service's lock, or waits as the one queued
deployment (a newer request supersedes an older queued one; the running one finishes first); the
lock's release starts the queued one. A deployment builds (checks out) its exact commit, starts it
next to the current version, polls health until a deadline, and then either becomes current (the old
version is stopped only now) or is rolled back (the new version stopped; the last good one keeps
answering, or is started again from its kept artifact). Every deployment ends terminal: the sweeper
(at the local cloud's start and on a schedule) ends any left past its deadline, and any whose
execution no longer runs: one that was running is rolled back, one that was queued is resumed once."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from chalicelib.domain.clock import Clock
from chalicelib.domain.errors import ConflictError, DependencyUnavailableError, NotFoundError, ValidationError
from chalicelib.domain.events import Event
from chalicelib.domain.ids import new_id
from chalicelib.domain.manifest import MAX_ENV_VARS, env_name_problem, env_value_problem
from chalicelib.domain.model import Namespace
from chalicelib.domain.ports import (
    BuildPort,
    EncryptorPort,
    ResourceQuota,
    RuntimePort,
    ServiceSpec,
    StatusReporter,
    WorkflowPort,
)
from chalicelib.domain.redaction import carries_credentials, redact, redact_optional
from chalicelib.domain.stores import DeployStore

DeploymentStatus = Literal["queued", "superseded", "in_progress", "succeeded", "failed", "rolled_back"]
# The one definition of a deployment's end: a terminal deployment changes no more. The API tells its
# clients (the CLI, the dashboard) with ``finished`` in every deployment it answers.
TERMINAL: tuple[DeploymentStatus, ...] = ("superseded", "succeeded", "failed", "rolled_back")
FAILED: tuple[DeploymentStatus, ...] = ("failed", "rolled_back")  # the terminal statuses that are failures
LIVE: tuple[DeploymentStatus, ...] = ("queued", "in_progress")
SERVICE_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
# A service's config vars together (each ``KEY=value`` in UTF-8): with the manifest's env (its file is
# at most 64 KiB) well within what one process's environment can hold (Linux: ARG_MAX, 2 MiB).
MAX_CONFIG_BYTES = 64 * 1024
LOCK_MARGIN = timedelta(minutes=5)
KEEP_ARTIFACTS = 5
RUN = "-run"  # the suffix of the execution that runs a deployment that was queued, or resumes one
# How long a deployment may go without progress and with no execution running before the sweeper
# takes it as interrupted: longer than the moment between writing it and starting its execution.
SWEEP_GRACE = timedelta(minutes=2)
SWEEP_BATCH = 100
INTERRUPTED = {
    "Error": "Interrupted",
    "Cause": "the deployment stopped before it finished (its execution no longer runs)",
}


UNTIMED = datetime.fromtimestamp(0, UTC)  # the time of a log record that carries none
# The first health check runs right after the start; while the version is still starting, it is checked
# again after these pauses (seconds) before the state machine falls back to its Wait loop (poll_seconds).
HEALTH_BACKOFF = (0.05, 0.1, 0.1, 0.15, 0.2, 0.3, 0.5, 0.6)
# What a runtime sets in a running service's metadata when "running" means its health path answered (the
# local runtime): only then does the first check's "running" make the deployment current at once.
HEALTH_CHECKED = "health_checked"


def _installation(dep: Deployment) -> str | None:
    """The linked repository's installation the deployment (or the one it redeploys) came from."""
    return dep.trigger.get("installation_id") or dep.trigger.get("source_installation_id") or None


def _fetch_refs(dep: Deployment) -> dict[str, str]:
    """The linked repository's installation, carried to a deployment of the same source (a rollback, a
    config change), so a runtime that fetches the commit itself can be given a credential for it."""
    installation = _installation(dep)
    return {"source_installation_id": installation} if installation else {}


def check_service_name(name: str) -> str:
    if not SERVICE_NAME.fullmatch(name):
        raise ValidationError(
            f"{name!r} is not a service name: a DNS label (a-z, 0-9, -; at most 63)",
            {"fields": [{"field": "service", "message": "must be a DNS label"}]},
        )
    return name


def check_source_credentials(source: str, namespace: str) -> None:
    """Refuse a source that carries credentials (a user or token in the URL, a token anywhere in it):
    a deployment's source is stored and shown to every member and viewer of the namespace."""
    if carries_credentials(source):
        raise ValidationError(
            "the source carries credentials (a user, password or token in it), which would be stored and "
            "shown with the deployment: give the repository's URL without them. A private GitHub repository "
            "is deployed through the platform's GitHub App: link it with "
            f"POST /v1/namespaces/{namespace}/repos and push (or deploy its clone URL)",
            {"fields": [{"field": "source", "message": "must not carry credentials"}]},
        )


def check_config_var(key: str, value: str) -> None:
    """A config var reaches its process as an environment variable: the manifest's ``env`` rule."""
    name_problem = env_name_problem(key)
    if name_problem is not None:
        raise ValidationError(name_problem, {"fields": [{"field": key, "message": name_problem}]})
    value_problem = env_value_problem(key, value)
    if value_problem is not None:
        raise ValidationError(
            f"config var {key}: {value_problem}", {"fields": [{"field": key, "message": value_problem}]}
        )


@dataclass
class Step:
    name: str
    status: str
    started_at: datetime
    ended_at: datetime | None = None
    detail: str | None = None


@dataclass
class Deployment:
    id: str
    namespace: str
    service: str
    status: DeploymentStatus
    source: str
    ref: str
    created_at: datetime
    trigger: dict[str, str]
    commit: str | None = None
    artifact: str | None = None
    reason: str | None = None
    deadline: datetime | None = None
    rollback_of: str | None = None
    spec: dict[str, Any] | None = None  # the manifest entry it runs
    steps: list[Step] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        """Terminal: it changes no more."""
        return self.status in TERMINAL


def redacted(dep: Deployment) -> Deployment:
    """The deployment with every credential-shaped value masked in what is stored and shown of it:
    its source, reason, trigger and steps' details (``chalicelib.domain.redaction``). Applied when a
    deployment is written and when it is read (deployments stored before the rule)."""
    return replace(
        dep,
        source=redact(dep.source),
        reason=redact_optional(dep.reason),
        trigger={k: redact(v) if isinstance(v, str) else v for k, v in dep.trigger.items()},
        steps=[replace(s, detail=redact_optional(s.detail)) for s in dep.steps],
    )


@dataclass
class Service:
    namespace: str
    name: str
    status: str = "new"
    source: str | None = None
    current_deployment_id: str | None = None
    current_commit: str | None = None
    last_good_deployment_id: str | None = None
    auto_deploy: bool = True
    auto_deploy_paused: bool = False
    address: str | None = None
    deleted: bool = False


@dataclass(frozen=True)
class ConfigVar:
    key: str
    secret: bool
    value: str | None = None  # plain vars only
    ciphertext: str | None = None  # secrets only


@dataclass(frozen=True)
class Run:
    """What one execution of the deploy state machine reads once, at ``Lock``, and carries in its state
    from step to step (``$.lock.run``), so that no later step reads the deployment, its service or its
    namespace again: where the namespace's services run and its plan, the service's current and last
    good deployments, and what the later steps need of the deployment itself."""

    runtime: str | None  # the namespace's cluster, as ``runtime_at`` takes it (None: not placed)
    plan: str | None  # None: the namespace is gone
    current: str | None
    last_good: str | None
    source: str
    installation: str | None  # a linked repository's installation: a credential to fetch it with
    rollback_of: str | None
    report: bool  # whether the trigger carries what a GitHub status needs

    def to_state(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_state(cls, state: Mapping[str, Any] | None) -> Run | None:
        if not state:
            return None
        values: dict[str, Any] = {name: state.get(name) for name in cls.__dataclass_fields__}
        return cls(**values)


@dataclass(frozen=True)
class Built:
    """What ``Build`` made, carried to ``Start``, ``Health`` and ``Succeed`` (``$.build``)."""

    artifact: str
    commit: str
    spec: dict[str, Any]
    deadline: datetime

    def to_state(self) -> dict[str, Any]:
        return {**asdict(self), "deadline": self.deadline.isoformat()}

    @classmethod
    def from_state(cls, state: Mapping[str, Any] | None) -> Built | None:
        if not state:
            return None
        return cls(state["artifact"], state["commit"], dict(state["spec"]), datetime.fromisoformat(state["deadline"]))


RuntimeOf = Callable[[str], RuntimePort]  # namespace -> its cluster's runtime


@dataclass(frozen=True)
class DeploySettings:
    poll_seconds: int = 10
    default_deadline_seconds: int = 600
    # Local paths and file:// sources only where the platform runs on the developer's own machine.
    allow_local_sources: bool = False
    health_backoff: tuple[float, ...] = HEALTH_BACKOFF


class DeployService:
    def __init__(
        self,
        store: DeployStore,
        builds: BuildPort,
        runtime_of: RuntimeOf,
        workflows: WorkflowPort,
        reporter: StatusReporter,
        encryptor: EncryptorPort,
        quota_of: Callable[[str], ResourceQuota | None],
        clock: Clock,
        settings: DeploySettings,
        admit: Callable[[str], None] | None = None,
        fetch_token: Callable[[int], str] | None = None,
        *,
        locate: Callable[[Namespace], str] | None = None,
        runtime_at: Callable[[str], RuntimePort] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        # ``admit(ns)`` raises PaymentRequiredError while a budget's hard cap suspends new deploys
        # (BudgetService.check_deploys): checked before anything is written.
        self._admit = admit or (lambda ns: None)
        self._store = store
        self._builds = builds
        # the runtime of a namespace (API calls); where a namespace's cluster's runtime is (read once per
        # execution, at Lock: ConflictError while it has none), and the runtime at such an address (without
        # them, every step asks ``runtime_of``)
        self._runtime_of = runtime_of
        self._locate = locate
        self._runtime_at = runtime_at
        self._sleep = sleep
        self._workflows = workflows
        self._reporter = reporter
        self._encryptor = encryptor
        self._quota_of = quota_of  # a plan -> its resource quota
        self._clock = clock
        self._settings = settings
        # a short-lived credential to fetch a linked repository with (a GitHub App installation token)
        self._fetch_token = fetch_token

    # ================================================================== API

    def request(
        self,
        ns: str,
        svc: str,
        source: str,
        ref: str,
        trigger: dict[str, str],
        *,
        rollback_of: str | None = None,
        artifact: str | None = None,
        commit: str | None = None,
        admitted: bool = False,
        service: Service | None = None,
    ) -> Deployment:
        """Record a deployment (queued) and start its execution. ``service``: the service as the caller
        read (and changed) it, written with the deployment; without it, the store records the service's
        source in the same write."""
        check_service_name(svc)
        if not admitted:
            self._admit(ns)
        if not source or not ref:
            raise ValidationError(
                "a deployment needs a source and a ref or commit",
                {"fields": [{"field": "source", "message": "required"}]},
            )
        if artifact is None:  # a rollback redeploys a kept artifact: its source is only recorded
            check_source_credentials(source, ns)
        if not self._settings.allow_local_sources and artifact is None and not source.startswith("https://"):
            raise ValidationError(
                "the source must be an https:// git URL", {"fields": [{"field": "source", "message": "https:// only"}]}
            )
        if artifact is None:  # (a rollback's artifact is the builder's own)
            self._builds.check_source(source)
        now = self._clock.now()
        dep = redacted(
            Deployment(
                id=new_id(now),
                namespace=ns,
                service=svc,
                status="queued",
                source=source,
                ref=ref,
                created_at=now,
                trigger=trigger,
                rollback_of=rollback_of,
                artifact=artifact,
                commit=commit,
                deadline=now + timedelta(seconds=self._settings.default_deadline_seconds) + LOCK_MARGIN,
            )
        )
        if service is not None:
            service = Service(ns, svc) if service.deleted else service
            service.source = dep.source
        event = Event.create(
            "deployment.requested",
            ns,
            now,
            {"service": svc, "deployment_id": dep.id, "ref": ref, "trigger": trigger.get("kind", "api")},
        )
        self._store.create_deployment(dep, [event], service)
        self._workflows.start(
            "deploy",
            dep.id,
            {"namespace": ns, "service": svc, "deployment_id": dep.id, "poll_seconds": self._settings.poll_seconds},
        )
        return dep

    def rollback(self, ns: str, svc: str, deployment_id: str | None, actor: str) -> Deployment:
        service = self.service(ns, svc)
        self._admit(ns)
        target_id = deployment_id
        if target_id is None:
            good = [
                d
                for d in self._store.list_deployments(ns, svc, 50)
                if d.status == "succeeded" and d.id != service.current_deployment_id
            ]
            if not good:
                raise ConflictError(f"{svc} has no earlier good deployment to roll back to", {"service": svc})
            target_id = good[0].id
        target = self.deployment(ns, svc, target_id)
        if target.status != "succeeded" or not target.commit:
            raise ConflictError(
                f"deployment {target_id} never succeeded; roll back to one that did",
                {"deployment_id": target_id, "status": target.status},
            )
        artifact = self._builds.kept(ns, svc, target_id)
        if artifact is None:
            raise ConflictError(
                f"the artifact of {target_id} is no longer kept (the last {KEEP_ARTIFACTS} are)",
                {"deployment_id": target_id},
            )
        service.auto_deploy_paused = True  # written with the deployment
        return self.request(
            ns,
            svc,
            target.source,
            target.commit,
            {"kind": "rollback", "actor": actor, **_fetch_refs(target)},
            rollback_of=target_id,
            artifact=artifact,
            commit=target.commit,
            admitted=True,
            service=service,
        )

    def set_auto_deploy(self, ns: str, svc: str, enabled: bool) -> Service:
        service = self.service(ns, svc)
        service.auto_deploy = enabled
        if enabled:
            service.auto_deploy_paused = False
        self._store.save_service(service)
        return service

    def service(self, ns: str, svc: str) -> Service:
        service = self._store.get_service(ns, svc)
        if service is None or service.deleted:
            raise NotFoundError(f"service {svc!r} not found", {"service": svc})
        return service

    def services(self, ns: str) -> list[Service]:
        return [s for s in self._store.list_services(ns) if not s.deleted]

    def deployment(self, ns: str, svc: str, dep_id: str) -> Deployment:
        dep = self._store.get_deployment(ns, svc, dep_id)
        if dep is None:
            raise NotFoundError(f"deployment {dep_id!r} not found", {"deployment_id": dep_id})
        return dep

    def deployments(self, ns: str, svc: str, limit: int = 50) -> list[Deployment]:
        self.service(ns, svc)
        return self._store.list_deployments(ns, svc, limit)

    def delete_service(self, ns: str, svc: str) -> None:
        service = self.service(ns, svc)
        runtime = self._runtime_of(ns)
        for running in runtime.read_services(ns, svc):
            try:
                runtime.delete_service(ns, svc, running.version)
            except NotFoundError:
                pass
        service.deleted = True
        service.status = "deleted"
        service.current_deployment_id = None
        service.address = None
        self._store.save_service(service)

    def logs(self, ns: str, svc: str, since: datetime | None, tail: int) -> list[Any]:
        self.service(ns, svc)
        return list(self._runtime_of(ns).logs(ns, svc, since=since, tail=tail))

    def logs_page(self, ns: str, svc: str, since: datetime | None, tail: int) -> tuple[list[Any], str | None]:
        """The records, and why ``since`` was not applied when it could not be: a runtime whose records
        carry no time (micro v3 never sets ``LogRecord.timestamp``) answers its last ``tail`` records."""
        records = self.logs(ns, svc, since, tail)
        if since is not None and records and all(r.timestamp == UNTIMED for r in records):
            return records, (
                f"since was not applied: the runtime's log records carry no time (micro v3 never sets it), "
                f"so these are its last {tail} lines"
            )
        return records, None

    def runtime_view(self, ns: str, svc: str) -> list[Any]:
        return self._runtime_of(ns).read_services(ns, svc)

    # ------------------------------------------------------------------ config vars

    def config(self, ns: str, svc: str) -> list[ConfigVar]:
        self.service(ns, svc)
        return sorted(self._store.config(ns, svc), key=lambda v: v.key)

    def set_config(self, ns: str, svc: str, values: dict[str, tuple[str, bool]], actor: str) -> Deployment | None:
        """Set vars (``key -> (value, secret)``); then redeploy the current commit, if there is one."""
        service = self.service(ns, svc)
        now = self._clock.now()
        for key, (value, _secret) in values.items():
            check_config_var(key, value)
        plain, secrets = self._environment(ns, svc)
        after = {**plain, **secrets, **{key: value for key, (value, _secret) in values.items()}}
        if len(after) > MAX_ENV_VARS:
            raise ValidationError(
                f"a service has at most {MAX_ENV_VARS} config vars ({len(after)} with these)",
                {"fields": [{"field": next(iter(values)), "message": "too many config vars"}]},
            )
        size = sum(len(f"{key}={value}".encode()) for key, value in after.items())
        if size > MAX_CONFIG_BYTES:
            raise ValidationError(
                f"a service's config vars hold at most {MAX_CONFIG_BYTES // 1024} KiB together "
                f"({size} bytes with these): they are passed to its process as its environment",
                {"fields": [{"field": key, "message": "too large together"} for key in values]},
            )
        self._check_redeploy(service, ns)
        for key, (value, secret) in values.items():
            var = (
                ConfigVar(key, True, ciphertext=self._encryptor.encrypt(value, self._context(ns, svc, key)))
                if secret
                else ConfigVar(key, False, value=value)
            )
            self._store.put_config(
                ns,
                svc,
                var,
                [
                    Event.create(
                        "config.changed", ns, now, {"service": svc, "key": key, "secret": secret, "actor": actor}
                    )
                ],
            )
        return self._redeploy_current(service, actor)

    def delete_config(self, ns: str, svc: str, key: str, actor: str) -> Deployment | None:
        service = self.service(ns, svc)
        self._check_redeploy(service, ns)
        event = Event.create(
            "config.changed", ns, self._clock.now(), {"service": svc, "key": key, "deleted": True, "actor": actor}
        )
        if not self._store.delete_config(ns, svc, key, [event]):
            raise NotFoundError(f"no config var {key!r}", {"key": key})
        return self._redeploy_current(service, actor)

    def _check_redeploy(self, service: Service, ns: str) -> None:
        """Refuse a config change before anything is written when its redeploy would be refused: a
        source stored (before credentials were refused) with credentials in it, masked since; or a
        namespace whose budget's hard cap is spent (402)."""
        if service.current_deployment_id and service.current_commit and service.source:
            check_source_credentials(service.source, ns)
            self._admit(ns)

    def _redeploy_current(self, service: Service, actor: str) -> Deployment | None:
        if not service.current_deployment_id or not service.current_commit or not service.source:
            return None
        current = self._store.get_deployment(service.namespace, service.name, service.current_deployment_id)
        refs = _fetch_refs(current) if current is not None else {}
        return self.request(
            service.namespace,
            service.name,
            service.source,
            service.current_commit,
            {"kind": "config", "actor": actor, **refs},
            admitted=True,
            service=service,
        )

    def _context(self, ns: str, svc: str, key: str) -> dict[str, str]:
        return {"namespace": ns, "service": svc, "key": key}

    def _runtime_spec(
        self,
        ns: str,
        svc: str,
        dep_id: str,
        *,
        source: str,
        installation: str | None,
        spec: Mapping[str, Any],
        commit: str | None,
        artifact: str,
    ) -> ServiceSpec:
        """What the runtime runs for a deployment: its manifest entry, artifact and the config vars now."""
        plain, secrets = self._environment(ns, svc)
        fetch = None
        if installation and installation.isdigit() and self._fetch_token is not None:
            fetch_token, installation_id = self._fetch_token, int(installation)

            def fetch() -> str:
                return fetch_token(installation_id)

        return ServiceSpec(
            name=svc,
            version=dep_id,
            source=artifact,
            remote=source,
            fetch_credential=fetch,
            metadata={
                "port": str(spec["port"]),
                "health_path": spec["health"],
                "memory_mib": str(spec["memory"]),
                "path": spec["path"],
                "deployment_id": dep_id,
                "commit": commit or "",
                "instances": str(spec["instances"]),
            },
            command=tuple(spec["command"]),
            env={**spec["env"], **plain},
            secrets=secrets,
        )

    def secrets_for(self, ns: str, svc: str) -> dict[str, str]:
        """The service's secret config vars, decrypted (for a runtime bringing a service back)."""
        return self._environment(ns, svc)[1]

    def _environment(self, ns: str, svc: str) -> tuple[dict[str, str], dict[str, str]]:
        plain: dict[str, str] = {}
        secrets: dict[str, str] = {}
        for var in self._store.config(ns, svc):
            if var.secret and var.ciphertext:
                secrets[var.key] = self._encryptor.decrypt(var.ciphertext, self._context(ns, svc, var.key))
            elif var.value is not None:
                plain[var.key] = var.value
        return plain, secrets

    # ================================================================== state machine steps
    #
    # ``Lock`` reads the deployment, its service and its namespace in one request and answers the ``Run``
    # that the later steps are given from the execution's state; ``Build`` answers what it ``Built``.
    # Steps are recorded one at a time (appended, or ended in place), never by rewriting the record.
    # Given no ``Run`` (a step called by the sweeper, or an execution started before runs were carried),
    # a step reads what it needs.

    def _load_run(self, ns: str, svc: str, dep_id: str) -> Run:
        dep, service, namespace = self._store.read_run(ns, svc, dep_id)
        if dep is None:
            raise NotFoundError(f"deployment {dep_id!r} not found", {"deployment_id": dep_id})
        return self._run_of(dep, service, namespace)

    def _run_of(self, dep: Deployment, service: Service | None, namespace: Namespace | None) -> Run:
        runtime = None
        if self._locate is not None and namespace is not None and namespace.cluster_id is not None:
            try:
                runtime = self._locate(namespace)
            except (ConflictError, NotFoundError):  # Start says so, and the deployment is rolled back
                runtime = None
        return Run(
            runtime=runtime,
            plan=namespace.plan if namespace is not None else None,
            current=service.current_deployment_id if service is not None else None,
            last_good=service.last_good_deployment_id if service is not None else None,
            source=dep.source,
            installation=_installation(dep),
            rollback_of=dep.rollback_of,
            report=self._reporter.reports(dep.trigger),
        )

    def _runtime(self, ns: str, run: Run | None) -> RuntimePort:
        if run is None or self._runtime_at is None:
            return self._runtime_of(ns)
        if run.runtime is None:
            raise ConflictError(f"the namespace {ns} has no cluster to run on", {"namespace": ns})
        return self._runtime_at(run.runtime)

    def _built(self, ns: str, svc: str, dep_id: str, built: Built | None) -> Built:
        if built is not None:
            return built
        dep = self.deployment(ns, svc, dep_id)
        if dep.spec is None or dep.artifact is None or dep.commit is None or dep.deadline is None:
            raise ConflictError(f"deployment {dep_id} was not built", {"deployment_id": dep_id})
        return Built(dep.artifact, dep.commit, dep.spec, dep.deadline)

    def step_lock(self, ns: str, svc: str, dep_id: str) -> dict[str, Any]:
        """``{"locked": true, "run": {...}}``, or false when the deployment now waits (queued) or was
        superseded. ``ended`` lists the statuses of the deployments this call ended (this one or an older
        one queued, superseded), each once however often the step is retried."""
        dep, service, namespace = self._store.read_run(ns, svc, dep_id)
        if dep is None:
            raise NotFoundError(f"deployment {dep_id!r} not found", {"deployment_id": dep_id})
        if dep.status in TERMINAL:
            return {"locked": False, "status": dep.status}
        now = self._clock.now()
        waiting = _open_step(dep, "lock")  # queued earlier: its waiting step ends now
        step = Step("lock", "succeeded", dep.steps[waiting].started_at if waiting is not None else now, now)
        try:
            holder = self._store.acquire_lock(
                ns, svc, dep_id, dep.deadline or now + LOCK_MARGIN, now, step=step, index=waiting
            )
        except ConflictError:  # it ended meanwhile (superseded): the lock was not kept
            return {"locked": False, "status": self.deployment(ns, svc, dep_id).status}
        if holder is None:
            return {"locked": True, "run": self._run_of(dep, service, namespace).to_state()}
        if holder > dep_id:  # a newer deployment is running: this one is out of date
            self._finish(dep, "superseded", f"superseded by {holder}", expect=("queued",))
            return {"locked": False, "status": "superseded", "ended": ["superseded"]}
        queued = self._store.queued(ns, svc)
        if queued is not None and queued > dep_id:
            self._finish(dep, "superseded", f"superseded by {queued}", expect=("queued",))
            return {"locked": False, "status": "superseded", "ended": ["superseded"]}
        ended: list[str] = []
        replaced = self._store.set_queued(ns, svc, dep_id)
        if replaced and replaced != dep_id:
            older = self._store.get_deployment(ns, svc, replaced)
            if older is not None and older.status == "queued":
                self._finish(older, "superseded", f"superseded by {dep_id}", expect=("queued",))
                ended.append("superseded")
        if waiting is None:
            self._store.add_step(ns, svc, dep_id, Step("lock", "waiting", now, None, f"queued behind {holder}"))
        return {"locked": False, "status": "queued", **({"ended": ended} if ended else {})}

    def step_report(self, ns: str, svc: str, dep_id: str, state: str, run: Run | None = None) -> None:
        if run is not None and not run.report:
            return  # nothing to report this deployment to
        dep = self.deployment(ns, svc, dep_id)
        description = {"pending": "deploying", "success": "deployed", "failure": dep.reason or "failed"}.get(
            state, state
        )
        try:
            refs = self._reporter.report(
                ns, svc, dep_id, dep.commit or dep.ref, state, description[:140], dict(dep.trigger)
            )
        except Exception:  # reporting never fails a deployment
            now = self._clock.now()
            self._store.add_step(
                ns,
                svc,
                dep_id,
                Step(f"report_{state}", "failed", now, now, "the status could not be reported"),
                expect=None,
            )
            return
        if refs:
            self._store.update_deployment(ns, svc, dep_id, {"trigger": {**dep.trigger, **refs}})

    def step_build(self, ns: str, svc: str, dep_id: str, run: Run | None = None) -> dict[str, Any]:
        """Check out the exact commit and read its manifest; answers what it ``Built``."""
        run = run or self._load_run(ns, svc, dep_id)
        started = self._clock.now()
        dep = self._store.add_step(ns, svc, dep_id, Step("build", "started", started))  # shows a long build
        index = len(dep.steps) - 1
        # an earlier try of this step that did not finish (its task was retried) ends as such
        retried = {
            i: replace(s, status="failed", ended_at=started, detail="retried")
            for i, s in enumerate(dep.steps[:index])
            if s.name == "build" and s.ended_at is None
        }
        if run.plan is None:
            raise NotFoundError(f"the namespace {ns} no longer exists", {"namespace": ns})
        protect = [d for d in (run.current, run.last_good) if d]
        build = self._builds.prepare(
            ns, svc, dep_id, dep.artifact or dep.source, dep.commit or dep.ref, self._quota_of(run.plan), protect
        )
        entry = next((m for m in build.manifest if m.name == svc), None)
        if entry is None:
            raise ValidationError(
                f"micro.yaml has no service named {svc!r} (it has: "
                f"{', '.join(m.name for m in build.manifest) or 'none'})",
                {"service": svc},
            )
        now = self._clock.now()
        built = Built(build.artifact, build.commit, entry.to_dict(), now + timedelta(seconds=entry.deadline_seconds))
        self._store.update_deployment(
            ns,
            svc,
            dep_id,
            {
                "artifact": built.artifact,
                "commit": built.commit,
                "spec": built.spec,
                "status": "in_progress",
                "deadline": built.deadline,
            },
            steps={**retried, index: Step("build", "succeeded", started, now, f"commit {build.commit[:12]}")},
            expect=LIVE,
            events=[
                Event.create(
                    "deployment.started", ns, now, {"service": svc, "deployment_id": dep_id, "commit": build.commit}
                )
            ],
        )
        return built.to_state()

    def step_start(self, ns: str, svc: str, dep_id: str, run: Run | None = None, built: Built | None = None) -> None:
        run = run or self._load_run(ns, svc, dep_id)
        built = self._built(ns, svc, dep_id, built)
        runtime = self._runtime(ns, run)
        if any(s.version == dep_id for s in runtime.read_services(ns, svc)):
            return  # started by an earlier try of this step
        started = self._clock.now()
        runtime.create_service(
            ns,
            self._runtime_spec(
                ns,
                svc,
                dep_id,
                source=run.source,
                installation=run.installation,
                spec=built.spec,
                commit=built.commit,
                artifact=built.artifact,
            ),
        )
        self._store.add_step(ns, svc, dep_id, Step("start", "succeeded", started, self._clock.now()))

    def step_health(
        self,
        ns: str,
        svc: str,
        dep_id: str,
        run: Run | None = None,
        built: Built | None = None,
        *,
        first: bool = False,
    ) -> dict[str, Any]:
        """``{"health": running | starting | error | deadline}`` (``"at"``: when it was found running). The
        first check (right after the start) checks again after short pauses while the version is still
        starting, within its deadline, before the state machine's Wait loop takes over; it takes
        "running" only from a runtime that checked the health path (``HEALTH_CHECKED``: the local runtime;
        on micro, "running" is the pod's phase, judged after the Wait as before). A version found running
        is recorded by ``step_succeed``, in the one write that makes it current."""
        runtime = self._runtime(ns, run)
        deadline = self._built(ns, svc, dep_id, built).deadline
        pauses = self._settings.health_backoff if first else ()
        for pause in (0.0, *pauses):
            if pause:
                if self._clock.now() + timedelta(seconds=pause) >= deadline:
                    break
                self._sleep(pause)
            mine = [s for s in runtime.read_services(ns, svc) if s.version == dep_id]
            status = mine[0].status if mine else "error"
            now = self._clock.now()
            if status == "running":
                if first and mine[0].metadata.get(HEALTH_CHECKED) != "true":
                    # "running" without the health path checked (micro: the pod's phase, the process
                    # merely started): judged after the Wait, as always, so a crash just after the
                    # start still fails the deployment
                    return {"health": "starting"}
                return {"health": "running", "at": now.isoformat()}
            if status in ("error", "stopped"):
                reason = (mine[0].metadata.get("error") if mine else None) or "the process is not running"
                self._health_failed(ns, svc, dep_id, f"unhealthy: {reason}", now)
                return {"health": "error"}
        now = self._clock.now()
        if now >= deadline:
            self._health_failed(ns, svc, dep_id, "not healthy before the deadline", now)
            return {"health": "deadline"}
        return {"health": "starting"}

    def _health_failed(self, ns: str, svc: str, dep_id: str, reason: str, now: datetime) -> None:
        self._store.add_step(ns, svc, dep_id, Step("health", "failed", now, now, reason), reason=reason)

    def step_succeed(
        self,
        ns: str,
        svc: str,
        dep_id: str,
        run: Run | None = None,
        built: Built | None = None,
        healthy_at: datetime | None = None,
    ) -> dict[str, Any]:
        """The new version becomes current: the others are stopped, then one write records the health
        step, the deployment's success, the service's new current deployment and address, the event,
        and releases the lock (``{"released": true}``, with ``"ended": ["succeeded"]`` when this call
        made it succeed: not when an earlier try of the step did)."""
        run = run or self._load_run(ns, svc, dep_id)
        built = self._built(ns, svc, dep_id, built)
        runtime = self._runtime(ns, run)
        running = runtime.read_services(ns, svc)
        mine = next((s for s in running if s.version == dep_id), None)
        for other in running:
            if other.version != dep_id:
                try:
                    runtime.delete_service(ns, svc, other.version)
                except NotFoundError:
                    pass
        service: dict[str, Any] = {
            "current_deployment_id": dep_id,
            "current_commit": built.commit,
            "last_good_deployment_id": dep_id,
            "status": "running",
        }
        if mine is not None and mine.metadata.get("address"):
            service["address"] = mine.metadata["address"]
        try:
            self._succeeded(ns, svc, dep_id, run, built, healthy_at, service)
        except ConflictError:
            if self.deployment(ns, svc, dep_id).status != "succeeded":
                raise
            return {"released": True}  # an earlier try of this step made it current and did not answer
        return {"released": True, "ended": ["succeeded"]}

    def _succeeded(
        self,
        ns: str,
        svc: str,
        dep_id: str,
        run: Run,
        built: Built,
        healthy_at: datetime | None,
        service: dict[str, Any],
    ) -> None:
        self._store.update_deployment(
            ns,
            svc,
            dep_id,
            {"status": "succeeded", "reason": None},
            append=[Step("health", "succeeded", healthy_at, healthy_at)] if healthy_at is not None else [],
            expect=LIVE,
            events=[
                Event.create(
                    "deployment.succeeded",
                    ns,
                    self._clock.now(),
                    {"service": svc, "deployment_id": dep_id, "commit": built.commit, "rollback_of": run.rollback_of},
                )
            ],
            service=service,
            release_lock=True,
        )

    def step_rollback(
        self,
        ns: str,
        svc: str,
        dep_id: str,
        error: dict[str, Any] | None = None,
        run: Run | None = None,
        healthy_at: datetime | None = None,
    ) -> dict[str, Any]:
        """The deployment failed: stop its version; the last good one keeps answering (started again
        from its kept artifact if it is not running). A runtime that cannot be reached still leaves the
        deployment terminal (``failed``, saying so). The lock is released in the same write. Answers the
        status it ended with (and ``ended``) only when this call ended it."""
        dep = self.deployment(ns, svc, dep_id)
        if dep.status in TERMINAL:
            return {"released": False}
        if error and not dep.reason:
            from chalicelib.domain.services.namespaces import failure_reason

            dep.reason = failure_reason(error)
        if run is None:
            service = self._store.get_service(ns, svc)
            good_id = service.last_good_deployment_id if service is not None else None
        else:
            good_id = run.last_good
        started = any(step.name == "start" for step in dep.steps)
        rolled_back = False
        try:
            runtime = self._runtime(ns, run)
            if started or self._runs(runtime, ns, svc, dep_id):
                rolled_back = self._restore_good(runtime, ns, svc, dep_id, good_id)
        except DependencyUnavailableError as e:
            dep.reason = f"{dep.reason or 'failed'}; the runtime could not be reached to roll back ({e.message})"
        except (ConflictError, NotFoundError):  # no runtime to roll back on (the namespace has no cluster)
            pass
        dep.reason = redact_optional(dep.reason)  # it goes into events and GitHub statuses too
        now = self._clock.now()
        events = [
            Event.create(
                "deployment.failed",
                ns,
                now,
                {"service": svc, "deployment_id": dep_id, "reason": dep.reason or "failed"},
            )
        ]
        if rolled_back:
            events.append(
                Event.create(
                    "deployment.rolled_back", ns, now, {"service": svc, "deployment_id": dep_id, "to": good_id}
                )
            )
        append = [Step("health", "succeeded", healthy_at, healthy_at)] if healthy_at is not None else []
        append.append(
            Step(
                "rollback",
                "succeeded" if rolled_back else "skipped",
                now,
                now,
                f"back to {good_id}" if rolled_back else "nothing to roll back to, or nothing was started",
            )
        )
        self._finish(
            dep,
            "rolled_back" if rolled_back else "failed",
            dep.reason or "failed",
            events=events,
            append=append,
            release_lock=True,
        )
        return {"released": True, "status": dep.status, "ended": [dep.status]}

    def _runs(self, runtime: RuntimePort, ns: str, svc: str, dep_id: str) -> bool:
        """Whether the runtime has the deployment's version (started, though an interruption kept the
        step from being recorded). A runtime that cannot answer has nothing to roll back here."""
        try:
            return any(s.version == dep_id for s in runtime.read_services(ns, svc))
        except (ConflictError, NotFoundError):
            return False

    def _restore_good(self, runtime: RuntimePort, ns: str, svc: str, dep_id: str, good_id: str | None) -> bool:
        if any(s.version == dep_id for s in runtime.read_services(ns, svc)):
            try:
                runtime.delete_service(ns, svc, dep_id)
            except NotFoundError:
                pass
        if not good_id or good_id == dep_id:
            return False
        running = {s.version: s.status for s in runtime.read_services(ns, svc)}
        if running.get(good_id) != "running":
            good = self._store.get_deployment(ns, svc, good_id)
            artifact = self._builds.kept(ns, svc, good_id)
            if good is None or good.spec is None or artifact is None:
                return False
            try:
                runtime.create_service(
                    ns,
                    self._runtime_spec(
                        ns,
                        svc,
                        good_id,
                        source=good.source,
                        installation=_installation(good),
                        spec=good.spec,
                        commit=good.commit,
                        artifact=artifact,
                    ),
                )
            except ConflictError:
                pass
        return True

    def step_release(self, ns: str, svc: str, dep_id: str, *, released: bool = False) -> dict[str, Any]:
        """Release the lock (if this deployment holds it, and its last write did not release it already);
        start the queued deployment, if any."""
        if not released:
            self._store.release_lock(ns, svc, dep_id)
        queued = self._store.queued(ns, svc)
        if queued is not None and self._store.take_queued(ns, svc, queued):
            try:
                self._workflows.start(
                    "deploy",
                    queued + RUN,
                    {
                        "namespace": ns,
                        "service": svc,
                        "deployment_id": queued,
                        "poll_seconds": self._settings.poll_seconds,
                    },
                )
            except ConflictError:
                pass
            return {"started": queued}
        return {"started": None}

    def sweep(self, grace: timedelta = SWEEP_GRACE) -> dict[str, list[str]]:
        """End or resume every deployment left unfinished: past its deadline, it fails; with no
        execution running and no progress for ``grace`` (0 at the local cloud's start, where no
        execution survives a restart), a running one is rolled back and a queued one resumed once.
        Each ended deployment's lock is released and the queued one started, as ``Release`` does."""
        done: dict[str, list[str]] = {}
        # Running ones first: their release starts the deployments queued behind them.
        found = sorted(self._store.active(SWEEP_BATCH), key=lambda d: d.status != "in_progress")
        for dep in found:
            entry = dep.id
            try:
                outcome = self._sweep_one(dep.namespace, dep.service, dep.id, grace)
            except Exception as e:  # one that cannot be ended now does not stop the others
                entry, outcome = f"{dep.id}: {type(e).__name__}", "errors"
            if outcome:
                done.setdefault(outcome, []).append(entry)
        return done

    def _sweep_one(self, ns: str, svc: str, dep_id: str, grace: timedelta) -> str | None:
        dep = self._store.get_deployment(ns, svc, dep_id)  # the index may lag: decide on the item
        if dep is None or dep.status in TERMINAL:
            return None
        now = self._clock.now()
        if dep.deadline is not None and now >= dep.deadline:
            return self._end(dep, "the deployment did not finish before its deadline (swept)", "swept")
        if any(self._workflows.status("deploy", name) == "RUNNING" for name in (dep_id, dep_id + RUN)):
            return None
        if now - _last_progress(dep) < grace:
            return None
        if dep.status == "in_progress":
            ended = self.step_rollback(ns, svc, dep_id, INTERRUPTED)
            self.step_release(ns, svc, dep_id, released=bool(ended.get("released")))
            return ended.get("status")  # rolled_back, or failed with nothing to roll back to
        queued, holder = self._store.queued(ns, svc), self._store.lock_holder(ns, svc, now)
        if queued == dep_id and holder not in (None, dep_id):
            return None  # it waits for the running deployment, whose release starts it
        if queued == dep_id and not self._store.take_queued(ns, svc, dep_id):
            return None  # a release took it meanwhile, and starts it
        try:
            self._workflows.start(
                "deploy",
                dep_id + RUN,
                {"namespace": ns, "service": svc, "deployment_id": dep_id, "poll_seconds": self._settings.poll_seconds},
            )
        except ConflictError:  # it was run or resumed once already, and stopped short again
            return self._end(
                dep, "the deployment stopped before it finished (its execution no longer runs)", "interrupted"
            )
        return "resumed"

    def _end(self, dep: Deployment, reason: str, short: str) -> str | None:
        try:
            self._finish(
                dep,
                "failed",
                reason,
                events=[
                    Event.create(
                        "deployment.failed",
                        dep.namespace,
                        self._clock.now(),
                        {"service": dep.service, "deployment_id": dep.id, "reason": short},
                    )
                ],
                release_lock=True,
            )
        except ConflictError:
            return None  # it moved on meanwhile
        self.step_release(dep.namespace, dep.service, dep.id, released=True)
        return "failed"

    # ------------------------------------------------------------------ helpers

    def _finish(
        self,
        dep: Deployment,
        status: DeploymentStatus,
        reason: str | None,
        *,
        expect: Sequence[DeploymentStatus] = LIVE,
        events: Sequence[Event] = (),
        append: Sequence[Step] = (),
        release_lock: bool = False,
    ) -> None:
        """End the deployment in one write: its status and reason, every step it began and did not end
        (whichever path ends it: a failed build, a rollback, a superseded wait, the sweeper) ended with
        the outcome the deployment's end gives it, ``append`` added, the events, and (``release_lock``)
        the lock released if it holds it."""
        now = self._clock.now()
        outcome = {"succeeded": "succeeded", "superseded": "superseded"}.get(status, "failed")
        ended = {
            i: replace(
                step,
                status=outcome,
                ended_at=now,
                detail=step.detail if outcome != "failed" else (reason or step.detail),
            )
            for i, step in enumerate(dep.steps)
            if step.ended_at is None
        }
        added = {len(dep.steps) + k: step for k, step in enumerate(append)}  # at their index: one update
        self._store.update_deployment(
            dep.namespace,
            dep.service,
            dep.id,
            {"status": status, "reason": reason},
            steps={**ended, **added},
            expect=expect,
            events=events,
            release_lock=release_lock,
        )
        dep.status, dep.reason = status, reason
        dep.steps = [ended.get(i, step) for i, step in enumerate(dep.steps)] + list(append)
        if status in FAILED:
            self._store.service_failed(dep.namespace, dep.service)


def _open_step(dep: Deployment, name: str) -> int | None:
    """The index of the deployment's step ``name`` that began and has not ended, if any."""
    return next((i for i, s in enumerate(dep.steps) if s.name == name and s.ended_at is None), None)


def _last_progress(dep: Deployment) -> datetime:
    """When the deployment last moved: its creation, or its latest step's start or end."""
    times = [dep.created_at] + [t for step in dep.steps for t in (step.started_at, step.ended_at) if t is not None]
    return max(times)
