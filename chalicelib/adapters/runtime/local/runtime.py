"""``LocalRuntime``: the local stage's ``RuntimePort`` and ``RuntimeUsagePort`` (see the package's
docstring for its files and rules). It keeps what runs and routes to it; the processes are the
``Supervisor``'s, the files the ``StateDir``'s, the usage the ``RequestMeter``'s and ``InstanceLog``'s."""

from __future__ import annotations

import atexit
import itertools
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from chalicelib.adapters.runtime.local.metering import InstanceLog, RequestMeter
from chalicelib.adapters.runtime.local.processes import Instance, Supervisor, memory_limit_mib
from chalicelib.adapters.runtime.local.state import NAME, StateDir, clean
from chalicelib.adapters.runtime.proxy import UNAVAILABLE, UNKNOWN, NamespaceProxy
from chalicelib.domain.clock import Clock
from chalicelib.domain.errors import ConflictError, DependencyUnavailableError, NotFoundError, ValidationError
from chalicelib.domain.ids import new_id
from chalicelib.domain.ports import (
    InstanceRecord,
    LogRecord,
    RequestCheckpoint,
    ResourceQuota,
    RuntimeService,
    ServiceSpec,
)

COUNTS_SAVE_SECONDS = 5.0
HEARTBEAT_SECONDS = 1.0

_shared: dict[str, LocalRuntime] = {}
_shared_lock = threading.Lock()
_atexit_registered = False


def _shutdown_shared() -> None:
    with _shared_lock:
        runtimes = list(_shared.values())
    for runtime in runtimes:
        runtime.shutdown()


def _check_name(kind: str, value: str) -> None:
    if not NAME.fullmatch(value):
        raise ValidationError(
            f"{kind} name must be letters, digits, '.', '_' or '-' (at most 128)", {kind: value[:140]}
        )


def _validate(namespace: str, spec: ServiceSpec) -> None:
    _check_name("namespace", namespace)
    _check_name("service", spec.name)
    if not spec.version or len(spec.version) > 128 or clean(spec.version) != spec.version:
        raise ValidationError("version must be 1-128 characters without tabs or newlines", {"service": spec.name})
    if not spec.command or not all(isinstance(a, str) and a for a in spec.command):
        raise ValidationError("a service needs a command", {"service": spec.name})
    memory_limit_mib(spec.metadata)
    sub = spec.metadata.get("path", ".") or "."
    if Path(sub).is_absolute() or ".." in Path(sub).parts:
        raise ValidationError("path must be a subdirectory of the source", {"path": sub})


class LocalRuntime:
    """``RuntimePort`` over local processes; see the package's docstring for the files and rules."""

    def __init__(self, clock: Clock, state_dir: Path, host: str = "127.0.0.1", *, poll_interval: float = 0.2) -> None:
        self._files = StateDir(state_dir)
        self._lock_file: IO[str] = self._files.lock()
        self._clock = clock
        self.state_dir = state_dir
        self.host = host
        self._state = threading.RLock()
        self._services: dict[tuple[str, str, str], Instance] = {}
        self._proxies: dict[str, NamespaceProxy] = {}
        self._seq = itertools.count()
        self._closed = False
        self._proxy_ports, self._pending = self._files.load_services()  # _pending: not yet restored
        self._meter = RequestMeter(self._files.counts_path, clock)
        self._instance_log = InstanceLog(self._files.instances_path)
        self._supervisor = Supervisor(clock, self._state, self._files, self._instance_log, poll_interval)
        self.orphans = self._stop_orphans()  # before anything of ours starts
        self._beat()
        self._supervisor.monitor(
            self._instances, [(HEARTBEAT_SECONDS, self._beat), (COUNTS_SAVE_SECONDS, self._meter.save)]
        )

    @classmethod
    def shared(cls, clock: Clock, state_dir: Path, host: str = "127.0.0.1") -> LocalRuntime:
        """The process's one runtime for ``state_dir`` (created on first use, again after ``shutdown``).
        Every shared runtime is shut down when the process exits (``services.json`` is kept)."""
        global _atexit_registered
        key = str(state_dir.resolve())
        with _shared_lock:
            runtime = _shared.get(key)
            if runtime is None or runtime._closed:
                runtime = cls(clock, state_dir, host)
                _shared[key] = runtime
            if not _atexit_registered:
                atexit.register(_shutdown_shared)
                _atexit_registered = True
            return runtime

    def _instances(self) -> list[Instance]:
        with self._state:
            return list(self._services.values())

    def _beat(self) -> None:
        self._files.beat(self._clock.now())

    def _stop_orphans(self) -> list[dict[str, Any]]:
        """Stops what a runtime that ended without ``shutdown`` left running, and records every stop;
        answers the records it closed. See "After a crash" in the package's docstring."""
        records = self._instance_log.open_starts()
        if records:
            detected = self._clock.now()
            self._supervisor.stop_orphans(records, self._files.last_beat() or detected)
        return records

    def _save_services(self) -> None:
        with self._state:
            records = [i.record() for i in sorted(self._services.values(), key=lambda i: i.seq)]
            self._files.save_services(self._proxy_ports, records + self._pending)

    def _require_namespace(self, namespace: str) -> None:
        if not self._files.namespaces.exists(namespace):
            raise NotFoundError(f"runtime namespace {namespace!r} does not exist", {"namespace": namespace})

    def _check_open(self) -> None:
        if self._closed:
            raise DependencyUnavailableError("the local runtime is shut down", {"state_dir": str(self.state_dir)})

    # ------------------------------------------------------------------ namespaces, quotas, policies

    def create_namespace(self, namespace: str) -> None:
        self._files.namespaces.create(namespace)

    def set_quota(self, namespace: str, name: str, requests: ResourceQuota, limits: ResourceQuota) -> None:
        self._files.namespaces.set_quota(namespace, name, requests, limits)

    def delete_quota(self, namespace: str, name: str) -> None:
        self._files.namespaces.delete_quota(namespace, name)

    def set_network_policy(self, namespace: str, name: str, allowed_labels: dict[str, str]) -> None:
        self._files.namespaces.set_policy(namespace, name, allowed_labels)

    def delete_network_policy(self, namespace: str, name: str) -> None:
        self._files.namespaces.delete_policy(namespace, name)

    def delete_namespace(self, namespace: str) -> None:
        """Stops the namespace's services and proxy and forgets them and their logs (instance records
        and request counts stay, for billing)."""
        with self._state:
            self._files.namespaces.delete(namespace)
            victims = [i for key, i in self._services.items() if key[0] == namespace]
            for inst in victims:
                del self._services[(inst.namespace, inst.name, inst.version)]
            self._pending = [r for r in self._pending if r.get("namespace") != namespace]
            proxy = self._proxies.pop(namespace, None)
            self._proxy_ports.pop(namespace, None)
            self._save_services()
        self._supervisor.stop_all(victims, "namespace_deleted")
        if proxy is not None:
            proxy.stop()
        self._files.forget_logs(namespace)

    # ------------------------------------------------------------------ services

    def _new_instance(self, namespace: str, spec: ServiceSpec) -> Instance:
        with self._state:
            now = self._clock.now()
            return Instance(
                namespace=namespace,
                name=spec.name,
                version=spec.version,
                source=spec.source,
                command=list(spec.command),
                env=dict(spec.env),
                secrets=dict(spec.secrets),
                metadata=dict(spec.metadata),
                seq=next(self._seq),
                instance_id=new_id(now),
                started_at=now,
                port=self._supervisor.free_port(self._proxy_ports.values()),
            )

    def _ensure_proxy(self, namespace: str) -> None:
        with self._state:
            if namespace not in self._proxies:
                proxy = NamespaceProxy.bind(namespace, self, self.host, self._proxy_ports.get(namespace))
                for _ in range(10):  # not on a port just handed to a service that has yet to bind it
                    if proxy.port not in self._supervisor.ports_in_use:
                        break
                    proxy.stop()
                    proxy = NamespaceProxy.bind(namespace, self, self.host, None)
                self._proxies[namespace] = proxy
                self._proxy_ports[namespace] = proxy.port

    def _put(self, namespace: str, spec: ServiceSpec, *, replacing: bool) -> tuple[Instance | None, Instance]:
        """Records a new instance of ``spec``: of a version that exists when ``replacing`` (else
        ``NotFoundError``), of a new one otherwise (else ``ConflictError``). Answers the old and the new."""
        _validate(namespace, spec)
        with self._state:
            self._check_open()
            self._require_namespace(namespace)
            key = (namespace, spec.name, spec.version)
            old = self._services.get(key)
            details = {"service": spec.name, "version": spec.version}
            if replacing and old is None:
                raise NotFoundError(f"service {spec.name}:{spec.version} does not exist", details)
            if not replacing and old is not None:
                raise ConflictError(f"service {spec.name}:{spec.version} exists", details)
            inst = self._services[key] = self._new_instance(namespace, spec)
            if not replacing:
                self._ensure_proxy(namespace)
            self._save_services()
        return old, inst

    def create_service(self, namespace: str, spec: ServiceSpec) -> None:
        """Starts ``spec.version`` of ``spec.name`` and returns at once (status ``starting``)."""
        _, inst = self._put(namespace, spec, replacing=False)
        self._supervisor.launch(inst)

    def update_service(self, namespace: str, spec: ServiceSpec) -> None:
        """Restarts that version with the new spec (stops the old process first)."""
        old, inst = self._put(namespace, spec, replacing=True)
        assert old is not None
        self._supervisor.stop(old, "updated")
        self._supervisor.launch(inst)

    def delete_service(self, namespace: str, name: str, version: str) -> None:
        """Stops that version (SIGTERM to its process group, SIGKILL after 5 s) and returns once it is gone."""
        with self._state:
            self._require_namespace(namespace)
            inst = self._services.pop((namespace, name, version), None)
            if inst is None:
                raise NotFoundError(f"service {name}:{version} does not exist", {"service": name, "version": version})
            self._save_services()
        self._supervisor.stop(inst, "deleted")

    def read_services(self, namespace: str, name: str | None = None) -> list[RuntimeService]:
        with self._state:
            self._require_namespace(namespace)
            found = sorted(
                (i for (ns, n, _), i in self._services.items() if ns == namespace and (name is None or n == name)),
                key=lambda i: (i.name, i.seq),
            )
            return [self._describe(i) for i in found]

    def _describe(self, inst: Instance) -> RuntimeService:
        metadata = dict(inst.metadata)
        if "port" in inst.metadata:
            metadata["manifest_port"] = inst.metadata["port"]
        proxy_port = self._proxy_ports.get(inst.namespace)
        metadata.update(
            {
                "address": f"http://{self.host}:{proxy_port}/{inst.name}" if proxy_port else "",
                "port": str(inst.port),
                "pid": str(inst.process.pid) if inst.process is not None else "",
                "instance_id": inst.instance_id,
                "started_at": inst.started_at.isoformat(),
                "deployment_id": inst.metadata.get("deployment_id", ""),
            }
        )
        limit = memory_limit_mib(inst.metadata)
        if limit is not None:
            metadata["memory_limit_mib"] = str(limit)
        if inst.status == "running":
            metadata["health_checked"] = "true"  # its health path answered (domain/services/deploys.py)
        if inst.error is not None:
            metadata["error"] = inst.error
        if inst.exit_code is not None:
            metadata["exit_code"] = str(inst.exit_code)
        if inst.status == "error":
            metadata["last_output"] = "\n".join(inst.last_output)
        return RuntimeService(inst.name, inst.version, inst.source, inst.status, metadata)

    # ------------------------------------------------------------------ proxy

    def route(self, namespace: str, service: str) -> int | str:
        """For the proxy: the port of the newest running version of ``service``; counts the request."""
        with self._state:
            versions = [i for (ns, n, _), i in self._services.items() if ns == namespace and n == service]
            if not versions:
                return UNKNOWN
            running = [i for i in versions if i.status == "running"]
            if not running:
                return UNAVAILABLE
            target = max(running, key=lambda i: i.seq)
            self._meter.count(namespace, service)
            return target.port

    def proxy_address(self, namespace: str) -> str | None:
        """``http://<host>:<port>`` of the namespace's proxy, once it has one."""
        with self._state:
            port = self._proxy_ports.get(namespace)
            return f"http://{self.host}:{port}" if port else None

    def request_counts(self, namespace: str) -> dict[str, int]:
        """Requests the proxy forwarded to each service and no checkpoint has taken yet."""
        return self._meter.counted(namespace)

    def consume_request_counts(self, namespace: str, counts: dict[str, int]) -> None:
        """Subtracts what a caller has reported, oldest hours first (so requests counted meanwhile are
        kept), and saves."""
        self._meter.consume(namespace, counts)

    # ------------------------------------------------------------------ usage (RuntimeUsagePort)

    def checkpoint_requests(self, namespace: str) -> RequestCheckpoint | None:
        """The namespace's pending checkpoint, or a new one holding every request counted so far
        (saved before it is answered); None when nothing was counted."""
        return self._meter.checkpoint(namespace)

    def ack_requests(self, namespace: str, checkpoint_id: str) -> None:
        """Drops the checkpoint once it is ingested (another id, or none pending: nothing happens)."""
        self._meter.ack(namespace, checkpoint_id)

    def instance_records(self, namespace: str, since: datetime) -> list[InstanceRecord]:
        """The namespace's instances that ran at or after ``since`` (from ``instances.jsonl``)."""
        return self._instance_log.usage(namespace, since)

    # ------------------------------------------------------------------ logs and records

    def logs(self, namespace: str, name: str, *, since: datetime | None = None, tail: int = 100) -> Iterator[LogRecord]:
        self._require_namespace(namespace)
        return iter(self._files.read_logs(namespace, name, since, tail))

    def instances(self, namespace: str) -> list[dict[str, Any]]:
        """Every instance of the namespace's services, in start order: the start record with
        ``stopped_at``, ``exit_reason`` and ``exit_code`` from its stop record (``None`` while running)."""
        return self._instance_log.instances(namespace)

    # ------------------------------------------------------------------ lifecycle

    def restore(self, secrets_for: Callable[[str, str], dict[str, str]] | None = None) -> list[tuple[str, str, str]]:
        """Relaunches every version recorded in ``services.json`` by an earlier runtime (once), getting
        secrets from ``secrets_for(namespace, service)``; answers the ``(namespace, service, version)``
        relaunched. A record whose namespace is gone is dropped; one whose secrets cannot be had is
        kept as ``error``."""
        with self._state:
            self._check_open()
            pending = list(self._pending)
        launched: list[tuple[str, str, str]] = []
        for record in pending:
            namespace, name, version = record["namespace"], record["name"], record["version"]
            secrets: dict[str, str] = {}
            failure: str | None = None
            if secrets_for is not None:
                try:
                    secrets = dict(secrets_for(namespace, name))
                except Exception as exc:
                    failure = f"secrets unavailable: {type(exc).__name__}"
            with self._state:
                if record not in self._pending:
                    continue  # its namespace was deleted meanwhile
                self._pending.remove(record)
                if not self._files.namespaces.exists(namespace) or (namespace, name, version) in self._services:
                    self._save_services()
                    continue
                spec = ServiceSpec(
                    name, version, record["source"], record["metadata"], record["command"], record["env"], secrets
                )
                inst = self._services[(namespace, name, version)] = self._new_instance(namespace, spec)
                self._ensure_proxy(namespace)
                self._save_services()
            if failure is not None:
                self._supervisor.fail_launch(inst, failure)
                continue
            self._supervisor.launch(inst)
            launched.append((namespace, name, version))
        return launched

    def shutdown(self) -> None:
        """Stops every process (``exit_reason`` ``shutdown``) and proxy, saves the request counts and
        keeps ``services.json`` for ``restore``. The runtime is unusable afterwards."""
        with self._state:
            if self._closed:
                return
            self._closed = True
            victims = list(self._services.values())
            proxies = list(self._proxies.values())
            self._proxies.clear()
        self._supervisor.close()
        self._supervisor.stop_all(victims, "shutdown")
        for proxy in proxies:
            proxy.stop()
        self._meter.save(force=True)
        self._lock_file.close()  # the next runtime may own the directory now
        with _shared_lock:
            for key, runtime in list(_shared.items()):
                if runtime is self:
                    del _shared[key]
