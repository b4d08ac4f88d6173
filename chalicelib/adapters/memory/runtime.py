"""An in-memory micro runtime: the ``RuntimePort`` contract (namespaces own quotas, policies and
services; names are unique per namespace; reads answer what was created)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime

from chalicelib.domain.clock import Clock
from chalicelib.domain.errors import ConflictError, NotFoundError
from chalicelib.domain.ports import LogRecord, ResourceQuota, RuntimeService, ServiceSpec


@dataclass
class _Namespace:
    quotas: dict[str, tuple[ResourceQuota, ResourceQuota]] = field(default_factory=dict)
    policies: dict[str, dict[str, str]] = field(default_factory=dict)
    services: dict[tuple[str, str], RuntimeService] = field(default_factory=dict)
    logs: dict[str, list[LogRecord]] = field(default_factory=dict)


class InMemoryRuntime:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.namespaces: dict[str, _Namespace] = {}

    def _ns(self, namespace: str) -> _Namespace:
        try:
            return self.namespaces[namespace]
        except KeyError:
            raise NotFoundError(f"runtime namespace {namespace!r} does not exist", {"namespace": namespace}) from None

    def create_namespace(self, namespace: str) -> None:
        with self._lock:
            if namespace in self.namespaces:
                raise ConflictError(f"runtime namespace {namespace!r} exists", {"namespace": namespace})
            self.namespaces[namespace] = _Namespace()

    def delete_namespace(self, namespace: str) -> None:
        with self._lock:
            self._ns(namespace)
            del self.namespaces[namespace]

    def set_quota(self, namespace: str, name: str, requests: ResourceQuota, limits: ResourceQuota) -> None:
        with self._lock:
            self._ns(namespace).quotas[name] = (requests, limits)

    def delete_quota(self, namespace: str, name: str) -> None:
        with self._lock:
            self._ns(namespace).quotas.pop(name, None)

    def set_network_policy(self, namespace: str, name: str, allowed_labels: dict[str, str]) -> None:
        with self._lock:
            self._ns(namespace).policies[name] = dict(allowed_labels)

    def delete_network_policy(self, namespace: str, name: str) -> None:
        with self._lock:
            self._ns(namespace).policies.pop(name, None)

    def create_service(self, namespace: str, spec: ServiceSpec) -> None:
        with self._lock:
            ns = self._ns(namespace)
            key = (spec.name, spec.version)
            if key in ns.services:
                raise ConflictError(f"service {spec.name}:{spec.version} exists", {"service": spec.name})
            ns.services[key] = RuntimeService(spec.name, spec.version, spec.source, "running", dict(spec.metadata))
            ns.logs.setdefault(spec.name, []).append(
                LogRecord(self._clock.now(), f"started {spec.name} {spec.version}", {"service": spec.name})
            )

    def update_service(self, namespace: str, spec: ServiceSpec) -> None:
        with self._lock:
            ns = self._ns(namespace)
            key = (spec.name, spec.version)
            if key not in ns.services:
                raise NotFoundError(f"service {spec.name}:{spec.version} does not exist", {"service": spec.name})
            ns.services[key] = replace(ns.services[key], source=spec.source, metadata=dict(spec.metadata))

    def delete_service(self, namespace: str, name: str, version: str) -> None:
        with self._lock:
            ns = self._ns(namespace)
            if ns.services.pop((name, version), None) is None:
                raise NotFoundError(f"service {name}:{version} does not exist", {"service": name})

    def read_services(self, namespace: str, name: str | None = None) -> list[RuntimeService]:
        with self._lock:
            ns = self._ns(namespace)
            return [s for (n, _), s in sorted(ns.services.items()) if name is None or n == name]

    def logs(self, namespace: str, name: str, *, since: datetime | None = None, tail: int = 100) -> Iterator[LogRecord]:
        with self._lock:
            records = [r for r in self._ns(namespace).logs.get(name, []) if since is None or r.timestamp >= since]
        return iter(records[-tail:])
