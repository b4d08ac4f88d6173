"""micro's runtime service as v3.19.0 runs it on Kubernetes: the handler (``service/runtime/handler``),
the manager that keeps services in its store and builds them (``service/runtime/manager/manager.go``),
and the Kubernetes runtime (``service/runtime/kubernetes``), with Kubernetes itself played by this
module: namespaces, resource quotas, network policies, secrets and deployments whose one pod is a real
local process.

Namespaces, quotas and policies (handler.go ``Create``/``Update``/``Delete``, kubernetes.go): the
options' namespace takes precedence over the resource's (manager.go: "Allow the options to take
precedence"). Errors are the Kubernetes client's, returned as they are: creating one that exists is a
409 ``Status`` (``{"id": "", "code": 409, "detail": "", "status": "Failure"}`` at the caller), and
updating or deleting one that does not exist (or creating a quota or policy in a namespace that does
not) is ``kubernetes: resource not found``, which the caller gets as 500 ``go.micro.client``.

Services (manager.go):

- ``Create`` writes the service to the store (status PENDING) *whether or not it exists*: a second
  Create of a name and version rewrites the record and builds again; it answers ``{}`` at once and
  builds in the background (``buildAndRun``): BUILDING, the source checked out at ``Service.Version``
  (``source.py``; a failure is ERROR ``Error fetching git source: ...``), STARTING, then the deployment
  created (kubernetes.go ``create``). A deployment of that name and version that exists already makes
  that ``runtime.ErrAlreadyExists``: the record says ERROR ``Error creating service: already exists``
  while the old pod keeps running, with its old environment.
- The pod's environment (manager.go ``runtimeEnv`` then kubernetes/client/client.go ``NewDeployment``):
  ``MICRO_PROFILE``, ``MICRO_SERVICE_NAME``, ``MICRO_SERVICE_VERSION``, ``MICRO_PROXY``,
  ``MICRO_SERVICE_ADDRESS=:8080``, the options' ``env`` (``runtimeEnv`` keeps an ``=`` in a value) and
  ``MICRO_NAMESPACE``; then ``NewDeployment`` keeps an entry only when ``strings.Split(e, "=")`` has
  exactly two parts, so **a value holding ``=`` is dropped**. The options' ``secrets`` (and the
  service's own ``MICRO_AUTH_ID``/``MICRO_AUTH_SECRET``) go into a Kubernetes Secret named
  ``<name>-<version>`` (util.go ``createCredentials``; one that exists is kept as it is) and reach the
  pod through ``secretKeyRef``: intact, ``=`` included.
- ``Read`` answers the store's records merged with the pods' state (manager.go ``Read``): a running
  process is RUNNING (the pod's phase), one that exited is restarted with a back-off and is PENDING
  meanwhile (a container waiting in CrashLoopBackOff, kubernetes/util.go ``getServices``); a build or
  creation error is in ``metadata.error``.
- ``Update`` of an unknown service, and ``Delete`` of one, are ``runtime.ErrNotFound``, wrapped by the
  handler: 500 ``runtime.Runtime.Update``/``runtime.Runtime.Delete`` ``not found``.
- ``Logs`` (handler.go, kubernetes/logs.go): the last ``count`` lines of each pod of the service, each a
  ``LogRecord`` with only its message: ``Timestamp`` is never set (the line is commented out in
  handler.go) and the metadata is empty. Through the gateway a stream is the messages as jsonpb writes
  them, one after the other with nothing between (rpc/stream.go ``fmt.Fprint``):
  ``{"timestamp":"0","metadata":{},"message":"..."}{"timestamp":"0",...}``. No pod: 404 ``runtime.logs``
  ``no such service``. ``since`` is not read by the handler.
- Every ``watch_interval`` seconds the manager starts again every stored service that is not running and
  not in ERROR, BUILDING or STOPPED (manager.go ``watchServices``/``checkServices``): deleting a
  namespace does not delete its services' records, so they come back unless they were deleted first.

Liberties (the stand-in has no Kubernetes and no Go builder): a pod is a local process running the
options' ``command`` and ``args`` in the checked-out source's entrypoint directory (micro would build
the Go service and run it in its cell image: without a command the build fails); all pods share this
machine's network, so each gets a free port in ``PORT`` and ``MICRO_SERVICE_ADDRESS`` instead of :8080,
and ``PATH``, ``HOME``, ``LANG`` from the stand-in (an image would provide them); resource limits are
not applied; a log stream is answered as one read (``stream`` is ignored); the back-off is 1 s doubling
to 30 s (Kubernetes: 10 s to 5 min).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from localcloud.standins import RawResponse
from localcloud.standins.micro.auth import Account, AuthService, authorize, authorize_admin
from localcloud.standins.micro.source import FetchError, GitHost, checkout, parse_source
from localcloud.standins.micro.wire import JSON_TYPE, MicroError, k8s_already_exists, k8s_not_found, ok

UNKNOWN, PENDING, BUILDING, STARTING, RUNNING, STOPPING, STOPPED, ERROR = range(8)
HUMAN = ("unknown", "pending", "building", "starting", "running", "stopping", "stopped", "error")
DEFAULT_NAMESPACE = "micro"
MAX_LOG_LINES = 2000
BACKOFF_START, BACKOFF_MAX = 1.0, 30.0


def fmt(value: str) -> str:
    """kubernetes/client/util.go ``Format``: lower case; ``/``, ``.`` and ``_`` become ``-``."""
    value = value.lower()
    for char in ("/", ".", "_"):
        value = value.replace(char, "-")
    return value[:253]


def resource_name(name: str, version: str) -> str:
    """kubernetes/util.go ``resourceName``: the deployment's and the secret's name."""
    return f"{fmt(name)}-{fmt(version)}"


@dataclass
class Record:
    """manager.go ``service``: what the manager keeps in its store (key ``service:<ns>:<name>:<version>``)."""

    namespace: str
    name: str
    version: str
    source: str
    metadata: dict[str, str]
    options: dict[str, Any]
    status: int = PENDING
    error: str = ""
    updated_at: float = field(default_factory=time.time)
    checkout: str = ""  # the stand-in's: where the build left the source
    generation: int = 0  # the stand-in's: which build of the record is current

    @property
    def key(self) -> str:
        return f"service:{self.namespace}:{self.name}:{self.version}"


@dataclass
class Pod:
    """A Kubernetes deployment of one replica, and its pod: a local process."""

    namespace: str  # formatted
    name: str  # resource_name(service, version)
    labels: dict[str, str]
    annotations: dict[str, str]
    env: dict[str, str]
    command: list[str]
    cwd: str
    port: int
    logs: deque[str] = field(default_factory=lambda: deque(maxlen=MAX_LOG_LINES))
    process: subprocess.Popen[bytes] | None = None
    waiting: bool = False  # exited, to be restarted (CrashLoopBackOff)
    deleted: bool = False
    restarts: int = 0
    status_override: int | None = None

    @property
    def status(self) -> int:
        if self.status_override is not None:
            return self.status_override
        return PENDING if self.waiting or self.process is None else RUNNING


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Kubernetes:
    """The cluster: namespaces, quotas, policies, secrets, deployments (processes). Lock held by callers."""

    def __init__(self) -> None:
        self.namespaces: set[str] = {"default", DEFAULT_NAMESPACE}
        self.quotas: dict[tuple[str, str], dict[str, Any]] = {}
        self.policies: dict[tuple[str, str], dict[str, str]] = {}
        self.secrets: dict[tuple[str, str], dict[str, str]] = {}
        self.pods: dict[tuple[str, str], Pod] = {}

    def create_namespace(self, name: str) -> None:
        ns = fmt(name)
        if ns in self.namespaces:
            raise k8s_already_exists("namespaces", ns)
        self.namespaces.add(ns)

    def delete_namespace(self, name: str) -> list[Pod]:
        ns = fmt(name)
        if ns not in self.namespaces:
            raise k8s_not_found()
        self.namespaces.discard(ns)
        for store in (self.quotas, self.policies, self.secrets):
            for key in [k for k in store if k[0] == ns]:
                del store[key]
        gone = [self.pods.pop(key) for key in [k for k in self.pods if k[0] == ns]]
        return gone

    def _in(self, namespace: str) -> str:
        ns = fmt(namespace)
        if ns not in self.namespaces:  # the API answers 404 for an object in a namespace that is not there
            raise k8s_not_found()
        return ns

    def put(self, kind: str, namespace: str, name: str, value: Any, *, create: bool) -> None:
        store: dict[tuple[str, str], Any] = self.quotas if kind == "resourcequota" else self.policies
        key = (self._in(namespace), name)
        if create and key in store:
            raise k8s_already_exists("resourcequotas" if kind == "resourcequota" else "networkpolicies", name)
        if not create and key not in store:
            raise k8s_not_found()
        store[key] = value

    def delete(self, kind: str, namespace: str, name: str) -> None:
        store: dict[tuple[str, str], Any] = self.quotas if kind == "resourcequota" else self.policies
        if store.pop((self._in(namespace), name), None) is None:
            raise k8s_not_found()


class RuntimeService:
    """The ``runtime`` service's handlers, the manager's store and builds, and the cluster."""

    def __init__(
        self,
        auth: AuthService,
        hosts: Mapping[str, GitHost],
        workdir: Path | None = None,
        *,
        watch_interval: float = 10.0,
    ) -> None:
        self.auth = auth
        self.hosts = dict(hosts)
        self._own_workdir = workdir is None
        self.workdir = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="micro-standin-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.watch_interval = watch_interval
        self.lock = threading.RLock()
        self.k8s = Kubernetes()
        self.records: dict[str, Record] = {}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._stop.clear()
        if self.watch_interval > 0:
            self._spawn(self._watch, "watch")

    def stop(self) -> None:
        self._stop.set()
        with self.lock:
            pods = list(self.k8s.pods.values())
            self.k8s.pods.clear()
        for pod in pods:
            self._kill(pod)
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _spawn(self, target: Any, name: str, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=f"micro-standin-{name}", daemon=True)
        thread.start()
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]

    # ------------------------------------------------------------------ handlers (handler.go)

    def create(self, caller: Account | None, req: dict[str, Any]) -> RawResponse:
        resource = req.get("resource") or {}
        if not any(resource.get(k) is not None for k in ("namespace", "networkpolicy", "resourcequota", "service")):
            raise MicroError(400, "blank resource", "runtime.Runtime.Create")
        options = dict(req.get("options") or {})
        namespace = options.get("namespace") or DEFAULT_NAMESPACE
        options["namespace"] = namespace
        authorize_admin(caller, namespace, "runtime.Runtime.Create")
        with self.lock:
            if resource.get("namespace") is not None:
                self.k8s.create_namespace(namespace)
            elif resource.get("networkpolicy") is not None:
                policy = resource["networkpolicy"]
                self.k8s.put(
                    "networkpolicy",
                    namespace,
                    policy.get("name", ""),
                    dict(policy.get("allowedlabels") or {}),
                    create=True,
                )
            elif resource.get("resourcequota") is not None:
                quota = resource["resourcequota"]
                self.k8s.put("resourcequota", namespace, quota.get("name", ""), _quota(quota), create=True)
            else:
                self._create_service(caller, resource["service"], options)
        return ok({})

    def update(self, caller: Account | None, req: dict[str, Any]) -> RawResponse:
        resource = req.get("resource") or {}
        if not any(resource.get(k) is not None for k in ("namespace", "networkpolicy", "resourcequota", "service")):
            raise MicroError(400, "blank resource", "runtime.Runtime.Update")
        options = dict(req.get("options") or {})
        namespace = options.get("namespace") or DEFAULT_NAMESPACE
        authorize_admin(caller, namespace, "runtime.Runtime.Update")
        with self.lock:
            if resource.get("namespace") is not None:
                return ok({})  # "No updates to namespace"
            if resource.get("networkpolicy") is not None:
                policy = resource["networkpolicy"]
                self.k8s.put(
                    "networkpolicy",
                    namespace,
                    policy.get("name", ""),
                    dict(policy.get("allowedlabels") or {}),
                    create=False,
                )
            elif resource.get("resourcequota") is not None:
                quota = resource["resourcequota"]
                self.k8s.put("resourcequota", namespace, quota.get("name", ""), _quota(quota), create=False)
            else:
                self._update_service(caller, resource["service"], namespace, options)
        return ok({})

    def delete(self, caller: Account | None, req: dict[str, Any]) -> RawResponse:
        resource = req.get("resource") or {}
        if not any(resource.get(k) is not None for k in ("namespace", "networkpolicy", "resourcequota", "service")):
            raise MicroError(400, "blank resource", "runtime.Runtime.Delete")
        options = req.get("options") or {}
        namespace = options.get("namespace") or DEFAULT_NAMESPACE
        authorize_admin(caller, namespace, "runtime.Runtime.Delete")
        gone: list[Pod] = []
        with self.lock:
            if resource.get("namespace") is not None:
                gone = self.k8s.delete_namespace(namespace)
            elif resource.get("networkpolicy") is not None:
                self.k8s.delete("networkpolicy", namespace, resource["networkpolicy"].get("name", ""))
            elif resource.get("resourcequota") is not None:
                self.k8s.delete("resourcequota", namespace, resource["resourcequota"].get("name", ""))
            else:
                service = resource["service"]
                name, version = service.get("name", ""), service.get("version") or "latest"
                records = self._records(namespace, name, version)
                if not records:
                    raise MicroError(500, "not found", "runtime.Runtime.Delete")
                pod = self.k8s.pods.pop((fmt(namespace), resource_name(name, version)), None)
                if pod is not None:
                    pod.deleted = True
                    gone = [pod]
                self.k8s.secrets.pop((fmt(namespace), resource_name(name, version)), None)
                del self.records[records[0].key]
        for pod in gone:
            self._kill(pod)
        return ok({})

    def read(self, caller: Account | None, req: dict[str, Any]) -> RawResponse:
        options = req.get("options") or {}
        namespace = options.get("namespace") or DEFAULT_NAMESPACE
        authorize(caller, namespace, "runtime.Runtime.Read")
        services = []
        with self.lock:
            for record in self._records(namespace, options.get("service") or "", options.get("version") or ""):
                metadata = dict(record.metadata)
                status = record.status
                if record.error:
                    metadata["error"] = record.error
                metadata["started"] = _rfc3339(record.updated_at)
                pod = self.k8s.pods.get((fmt(namespace), resource_name(record.name, record.version)))
                if pod is not None:
                    status = pod.status
                services.append(
                    {
                        "name": record.name,
                        "version": record.version,
                        "source": record.source,
                        "metadata": metadata,
                        "status": status,
                    }
                )
        return ok({"services": services})

    def logs(self, caller: Account | None, req: dict[str, Any]) -> RawResponse:
        options = req.get("options") or {}
        namespace = options.get("namespace") or DEFAULT_NAMESPACE
        authorize_admin(caller, namespace, "runtime.Runtime.Logs")
        name, version, count = req.get("service") or "", req.get("version") or "", int(req.get("count") or 0)
        with self.lock:
            pods = [
                pod
                for (ns, _), pod in sorted(self.k8s.pods.items())
                if ns == fmt(namespace)
                and pod.labels["name"] == fmt(name)
                and (not version or pod.labels["version"] == fmt(version))
            ]
            if not pods:
                raise MicroError(404, "no such service", "runtime.logs")
            lines: list[str] = []
            for pod in pods:
                mine = list(pod.logs)
                lines.extend(mine[-count:] if count > 0 else mine)
        body = "".join(
            json.dumps({"timestamp": "0", "metadata": {}, "message": line}, separators=(",", ":"), ensure_ascii=False)
            for line in lines
        )
        return RawResponse(200, body.encode(), {"Content-Type": JSON_TYPE})

    # ------------------------------------------------------------------ the manager (manager.go)

    def _records(self, namespace: str, name: str, version: str) -> list[Record]:
        """manager.go ``readServices``: by key prefix (name, then name and version)."""
        prefix = f"service:{namespace}:"
        if name:
            prefix += f"{name}:"
        if name and version:
            prefix += version
        return [r for key, r in sorted(self.records.items()) if key.startswith(prefix)]

    def _create_service(self, caller: Account | None, service: dict[str, Any], options: dict[str, Any]) -> None:
        metadata = dict(service.get("metadata") or {})
        requested = int(service.get("status") or 0)
        metadata["status"] = HUMAN[requested] if 0 <= requested < len(HUMAN) else "unknown"  # util.go toService
        if caller is not None:  # handler.go setupServiceMeta
            metadata["owner"] = caller.name or caller.id
            metadata["group"] = caller.issuer
        metadata["started"] = _rfc3339(time.time())
        record = Record(
            namespace=options["namespace"],
            name=service.get("name", ""),
            version=service.get("version") or "latest",
            source=service.get("source", ""),
            metadata=metadata,
            options=options,
        )
        previous = self.records.get(record.key)
        record.generation = (previous.generation + 1) if previous is not None else 0
        self.records[record.key] = record  # written whether or not it existed: a Create rewrites
        self._spawn(self._build_and_run, f"build-{record.name}", record, record.generation)

    def _update_service(
        self, caller: Account | None, service: dict[str, Any], namespace: str, options: dict[str, Any]
    ) -> None:
        version = service.get("version") or "latest"
        records = self._records(namespace, service.get("name", ""), version)
        if not records:
            raise MicroError(500, "not found", "runtime.Runtime.Update")
        record = records[0]
        record.source = service.get("source", "")
        record.updated_at = time.time()
        if int(options.get("instances") or 0) > 0:
            record.options["instances"] = int(options["instances"])
        if options.get("entrypoint"):
            record.options["entrypoint"] = options["entrypoint"]
        record.status = PENDING
        record.generation += 1
        metadata = dict(service.get("metadata") or {})
        self._spawn(self._build_and_update, f"update-{record.name}", record, record.generation, metadata)

    def _current(self, record: Record, generation: int) -> bool:
        return self.records.get(record.key) is record and record.generation == generation

    def _set(self, record: Record, generation: int, status: int, error: str = "") -> bool:
        with self.lock:
            if not self._current(record, generation):
                return False
            record.status = status
            if error:
                record.error = error
            return True

    def _build(self, record: Record, generation: int) -> bool:
        """manager.go ``build``: BUILDING, the source at the version, or ERROR saying why."""
        if not self._set(record, generation, BUILDING):
            return False
        with self.lock:
            source, secrets = record.source, dict(record.options.get("secrets") or {})
        if source.startswith("source://"):
            self._set(record, generation, ERROR, "Error loading source: the micro stand-in keeps no uploaded source")
            return False
        parsed = parse_source(source)
        try:
            directory = checkout(parsed, record.version, secrets, self.hosts, self.workdir)
        except FetchError as error:
            self._set(record, generation, ERROR, f"Error fetching git source: {error}")
            return False
        with self.lock:
            if not self._current(record, generation):
                return False
            if not record.options.get("entrypoint"):
                record.options["entrypoint"] = parsed.folder
            record.checkout = str(directory)
        return True

    def _build_and_run(self, record: Record, generation: int) -> None:
        if not self._build(record, generation) or not self._set(record, generation, STARTING):
            return
        try:
            with self.lock:
                if self._current(record, generation):
                    self._create_pod(record)
        except MicroError as error:
            self._set(record, generation, ERROR, f"Error creating service: {error.detail}")

    def _build_and_update(self, record: Record, generation: int, metadata: dict[str, str]) -> None:
        if not self._build(record, generation) or not self._set(record, generation, STARTING):
            return
        with self.lock:
            pod = self.k8s.pods.get((fmt(record.namespace), resource_name(record.name, record.version)))
            if pod is None:
                record.status, record.error = ERROR, "Error updating service: not found"
                return
            pod.annotations.update(metadata)
            pod.annotations["updated"] = str(int(time.time()))
            pod.cwd = self._workdir_of(record)
            old = pod.process
            pod.process = None
        if old is not None:  # the rollout: a new pod, the same spec
            self._stop_process(old)
        with self.lock:
            if not pod.deleted:
                self._run(pod)

    def _workdir_of(self, record: Record) -> str:
        entry = str(record.options.get("entrypoint") or "").strip("/")
        return str(Path(record.checkout) / entry) if entry else record.checkout

    def _create_pod(self, record: Record) -> None:
        """manager.go ``createServiceInRuntime`` + kubernetes.go ``create`` (lock held)."""
        options = record.options
        namespace = fmt(options["namespace"])
        name = resource_name(record.name, record.version)
        self.k8s.namespaces.add(namespace)  # ensureNamepaceExists creates it when missing
        # the service's own account (manager.go generateAccount), its credentials as secrets
        account = Account(name, "service", options["namespace"], ["service"], {}, name)
        token = self.auth.sign(account, 365 * 24 * 3600)[0]
        secrets = {**dict(options.get("secrets") or {}), "MICRO_AUTH_ID": name, "MICRO_AUTH_SECRET": token}
        self.k8s.secrets.setdefault((namespace, name), secrets)  # createCredentials: an existing one is kept
        if (namespace, name) in self.k8s.pods:
            raise MicroError(500, "already exists", "runtime")  # runtime.ErrAlreadyExists
        env: dict[str, str] = {}
        for entry in _runtime_env(record):
            parts = entry.split("=")
            if len(parts) == 2:  # client.go NewDeployment: exactly two parts, else dropped
                env[parts[0]] = parts[1]
        env.update(self.k8s.secrets[(namespace, name)])  # secretKeyRef: the values whole
        command = [*list(options.get("command") or []), *list(options.get("args") or [])]
        if not command:
            raise MicroError(
                500,
                "the micro stand-in runs the service's command and has no Go builder: options.command is empty",
                "runtime",
            )
        cwd = self._workdir_of(record)
        if not Path(cwd).is_dir():
            raise MicroError(
                500, f"entrypoint {options.get('entrypoint')!r} is not a directory of the source", "runtime"
            )
        port = _free_port()
        env.update({"PORT": str(port), "MICRO_SERVICE_ADDRESS": f":{port}"})
        for key in ("PATH", "HOME", "LANG", "TMPDIR"):  # what an image would provide
            if key in os.environ and key not in env:
                env[key] = os.environ[key]
        pod = Pod(
            namespace=namespace,
            name=name,
            labels={
                "name": fmt(record.name),
                "version": fmt(record.version),
                "micro": fmt(options.get("type") or "service"),
            },
            annotations={"name": record.name, "version": record.version, "source": record.source, **record.metadata},
            env=env,
            command=command,
            cwd=cwd,
            port=port,
        )
        self.k8s.pods[(namespace, name)] = pod
        self._run(pod)

    def _run(self, pod: Pod) -> None:
        """Start the pod's process (lock held) and a thread that reads its output and restarts it."""
        try:
            process = subprocess.Popen(  # noqa: S603 - the service's own command, as its pod would run it
                pod.command,
                cwd=pod.cwd,
                env=pod.env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        except OSError as error:
            pod.logs.append(f"exec: {error}")
            pod.waiting = True
            self._spawn(self._restart_later, f"restart-{pod.name}", pod, None)
            return
        pod.process, pod.waiting = process, False
        self._spawn(self._follow, f"pod-{pod.name}", pod, process)

    def _follow(self, pod: Pod, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        for raw in process.stdout:
            pod.logs.append(raw.decode("utf-8", "replace").rstrip("\r\n"))
        process.wait()
        self._restart_later(pod, process)

    def _restart_later(self, pod: Pod, process: subprocess.Popen[bytes] | None) -> None:
        with self.lock:
            if pod.deleted or self._stop.is_set() or (process is not None and pod.process is not process):
                return
            pod.waiting = True
            pod.restarts += 1
            delay = min(BACKOFF_MAX, BACKOFF_START * 2 ** (pod.restarts - 1))
        if self._stop.wait(delay):
            return
        with self.lock:
            if not pod.deleted and pod.waiting and (process is None or pod.process is process):
                self._run(pod)

    def _kill(self, pod: Pod) -> None:
        pod.deleted = True
        if pod.process is not None:
            self._stop_process(pod.process)

    @staticmethod
    def _stop_process(process: subprocess.Popen[bytes]) -> None:
        if process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)

    def _watch(self) -> None:
        """manager.go ``watchServices``/``checkServices``: start what the store has and nothing runs."""
        while not self._stop.wait(self.watch_interval):
            with self.lock:
                for record in list(self.records.values()):
                    if record.status in (ERROR, BUILDING, STOPPED, PENDING) or not record.checkout:
                        continue
                    if (fmt(record.namespace), resource_name(record.name, record.version)) in self.k8s.pods:
                        continue
                    with contextlib.suppress(MicroError):
                        self._create_pod(record)

    # ------------------------------------------------------------------ for tests and the state dump

    def state(self) -> dict[str, Any]:
        with self.lock:
            namespaces: dict[str, Any] = {}
            for ns in sorted(self.k8s.namespaces - {"default", DEFAULT_NAMESPACE}):
                namespaces[ns] = {"quotas": {}, "policies": {}, "services": []}
            for (ns, name), quota in self.k8s.quotas.items():
                namespaces.setdefault(ns, {"quotas": {}, "policies": {}, "services": []})["quotas"][name] = quota
            for (ns, name), policy in self.k8s.policies.items():
                namespaces.setdefault(ns, {"quotas": {}, "policies": {}, "services": []})["policies"][name] = policy
            for record in self.records.values():
                pod = self.k8s.pods.get((fmt(record.namespace), resource_name(record.name, record.version)))
                entry = {
                    "name": record.name,
                    "version": record.version,
                    "source": record.source,
                    "metadata": dict(record.metadata),
                    "status": HUMAN[pod.status if pod is not None else record.status],
                    "error": record.error,
                    "address": f"http://127.0.0.1:{pod.port}" if pod is not None else None,
                    "env": sorted(pod.env) if pod is not None else [],
                    "secrets": sorted((record.options.get("secrets") or {}).keys()),
                }
                namespaces.setdefault(fmt(record.namespace), {"quotas": {}, "policies": {}, "services": []})[
                    "services"
                ].append(entry)
            return namespaces

    def pod(self, namespace: str, name: str, version: str) -> Pod | None:
        with self.lock:
            return self.k8s.pods.get((fmt(namespace), resource_name(name, version)))

    def wait_for(self, namespace: str, name: str, version: str, status: int, timeout: float = 30.0) -> Record:
        """For tests: wait until the record (merged with its pod, as Read has it) shows ``status``."""
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                record = self.records.get(f"service:{namespace}:{name}:{version}")
                pod = self.k8s.pods.get((fmt(namespace), resource_name(name, version)))
                current = pod.status if pod is not None else (record.status if record else UNKNOWN)
                if record is not None and current == status:
                    return record
            if time.monotonic() > deadline:
                raise TimeoutError(f"{namespace}/{name}:{version} is {HUMAN[current]}, not {HUMAN[status]}")
            time.sleep(0.05)


def _quota(quota: dict[str, Any]) -> dict[str, Any]:
    return {"requests": dict(quota.get("requests") or {}), "limits": dict(quota.get("limits") or {})}


def _runtime_env(record: Record) -> list[str]:
    """manager.go ``runtimeEnv``: what the manager passes to the runtime as ``WithEnv``."""
    env = {
        "MICRO_PROFILE": "service",
        "MICRO_SERVICE_NAME": record.name,
        "MICRO_SERVICE_VERSION": record.version,
        "MICRO_PROXY": "",
        "MICRO_SERVICE_ADDRESS": ":8080",  # kubernetes
    }
    for entry in record.options.get("env") or []:
        parts = entry.split("=")
        if len(parts) <= 1:
            continue
        env[parts[0]] = "=".join(parts[1:])
    if record.options.get("namespace"):
        env["MICRO_NAMESPACE"] = record.options["namespace"]
    return [f"{key}={value}" for key, value in env.items()]


def _rfc3339(when: float) -> str:
    return datetime.fromtimestamp(int(when), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
