"""An in-memory ``DeployStore`` (chalicelib/domain/stores.py) with the DynamoDB store's behaviour:
conditional writes refused with ConflictError when the deployment's status is not the one expected,
a service's lock that expires, the queued deployment replaced only as read, credential-shaped values
masked in what is stored. Every write is all or nothing, as the table's transactions are. Events are
kept in ``events`` (the outbox's place)."""

from __future__ import annotations

import builtins
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from chalicelib.domain.errors import ConflictError, NotFoundError
from chalicelib.domain.events import Event
from chalicelib.domain.model import Namespace
from chalicelib.domain.redaction import redact, redact_optional
from chalicelib.domain.services.deploys import (
    LIVE,
    ConfigVar,
    Deployment,
    DeploymentStatus,
    Service,
    Step,
    redacted,
)

FIELDS = frozenset({"status", "reason", "commit", "artifact", "spec", "deadline", "trigger"})


@dataclass
class _Lock:
    deployment_id: str
    until: datetime


class InMemoryDeployStore:
    def __init__(self, namespaces: Mapping[str, Namespace] | None = None) -> None:
        self.namespaces: dict[str, Namespace] = dict(namespaces or {})  # what read_run answers
        self.deployments: dict[tuple[str, str, str], Deployment] = {}
        self.services: dict[tuple[str, str], Service] = {}
        self.locks: dict[tuple[str, str], _Lock] = {}
        self.queue: dict[tuple[str, str], str] = {}
        self.vars: dict[tuple[str, str], dict[str, ConfigVar]] = {}
        self.events: list[Event] = []
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ deployments

    def create_deployment(self, dep: Deployment, events: Sequence[Event], service: Service | None = None) -> None:
        with self._lock:
            key = (dep.namespace, dep.service, dep.id)
            if key in self.deployments:
                raise ConflictError(f"deployment {dep.id} exists", {"deployment_id": dep.id})
            current = self.services.get((dep.namespace, dep.service))
            if service is None:
                if current is None or current.deleted:
                    service = Service(dep.namespace, dep.service)
                else:
                    service = replace(current)
                service.source = dep.source
            self.deployments[key] = redacted(_copy(dep))
            self.services[(dep.namespace, dep.service)] = replace(service, source=redact_optional(service.source))
            self.events.extend(events)

    def get_deployment(self, ns: str, svc: str, dep_id: str) -> Deployment | None:
        with self._lock:
            found = self.deployments.get((ns, svc, dep_id))
            return _copy(found) if found is not None else None

    def read_run(self, ns: str, svc: str, dep_id: str) -> tuple[Deployment | None, Service | None, Namespace | None]:
        return self.get_deployment(ns, svc, dep_id), self.get_service(ns, svc), self.namespaces.get(ns)

    def list_deployments(self, ns: str, svc: str, limit: int) -> builtins.list[Deployment]:
        with self._lock:
            mine = [d for (n, s, _), d in self.deployments.items() if (n, s) == (ns, svc)]
            return [_copy(d) for d in sorted(mine, key=lambda d: d.id, reverse=True)[:limit]]

    def _live(self, ns: str, svc: str, dep_id: str, expect: Sequence[DeploymentStatus] | None) -> Deployment:
        dep = self.deployments.get((ns, svc, dep_id))
        if dep is None:
            raise NotFoundError(f"deployment {dep_id!r} not found", {"deployment_id": dep_id})
        if expect is not None and dep.status not in expect:
            raise ConflictError(f"deployment {dep_id} changed meanwhile", {"deployment_id": dep_id})
        return dep

    def add_step(
        self,
        ns: str,
        svc: str,
        dep_id: str,
        step: Step,
        *,
        index: int | None = None,
        reason: str | None = None,
        expect: Sequence[DeploymentStatus] | None = LIVE,
    ) -> Deployment:
        with self._lock:
            dep = self._live(ns, svc, dep_id, expect)
            _put_step(dep, step, index)
            if reason is not None:
                dep.reason = redact(reason)
            return _copy(dep)

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
        unknown = set(fields) - FIELDS
        if unknown:
            raise ValueError(f"not a field a deployment update sets: {', '.join(sorted(unknown))}")
        with self._lock:
            dep = _copy(self._live(ns, svc, dep_id, expect))
            target = self.services.get((ns, svc))
            if service is not None and (target is None or target.deleted):
                raise NotFoundError(f"service {svc!r} not found", {"service": svc})
            for i, step in sorted((steps or {}).items()):
                _put_step(dep, step, i)
            for step in append:
                _put_step(dep, step, None)
            for name, value in fields.items():
                setattr(dep, name, value)
            self.deployments[(ns, svc, dep_id)] = redacted(dep)
            if service is not None and target is not None:
                self.services[(ns, svc)] = replace(target, **service)
            held = self.locks.get((ns, svc))
            if release_lock and held is not None and held.deployment_id == dep_id:
                del self.locks[(ns, svc)]
            self.events.extend(events)

    def active(self, limit: int) -> builtins.list[Deployment]:
        with self._lock:
            live = [d for d in self.deployments.values() if not d.finished and d.deadline is not None]
            return [_copy(d) for d in sorted(live, key=lambda d: d.deadline or d.created_at)[:limit]]

    # ------------------------------------------------------------------ services

    def get_service(self, ns: str, svc: str) -> Service | None:
        with self._lock:
            found = self.services.get((ns, svc))
            return replace(found) if found is not None else None

    def list_services(self, ns: str) -> builtins.list[Service]:
        with self._lock:
            return [replace(s) for (n, _), s in sorted(self.services.items()) if n == ns]

    def save_service(self, service: Service) -> None:
        with self._lock:
            self.services[(service.namespace, service.name)] = replace(service)

    def service_failed(self, ns: str, svc: str) -> None:
        with self._lock:
            found = self.services.get((ns, svc))
            if found is not None and found.current_deployment_id is None:
                found.status = "failed"

    # ------------------------------------------------------------------ lock and queue

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
        with self._lock:
            held = self.locks.get((ns, svc))
            if held is not None and held.until > now and held.deployment_id != dep_id:
                return held.deployment_id
            if step is not None:
                _put_step(self._live(ns, svc, dep_id, LIVE), step, index)
            self.locks[(ns, svc)] = _Lock(dep_id, until)
            return None

    def lock_holder(self, ns: str, svc: str, now: datetime) -> str | None:
        with self._lock:
            held = self.locks.get((ns, svc))
            return held.deployment_id if held is not None and held.until > now else None

    def release_lock(self, ns: str, svc: str, dep_id: str) -> None:
        with self._lock:
            held = self.locks.get((ns, svc))
            if held is not None and held.deployment_id == dep_id:
                del self.locks[(ns, svc)]

    def queued(self, ns: str, svc: str) -> str | None:
        return self.queue.get((ns, svc))

    def set_queued(self, ns: str, svc: str, dep_id: str) -> str | None:
        with self._lock:
            previous = self.queue.get((ns, svc))
            self.queue[(ns, svc)] = dep_id
            return previous

    def take_queued(self, ns: str, svc: str, dep_id: str) -> bool:
        with self._lock:
            if self.queue.get((ns, svc)) != dep_id:
                return False
            del self.queue[(ns, svc)]
            return True

    # ------------------------------------------------------------------ config vars

    def config(self, ns: str, svc: str) -> builtins.list[ConfigVar]:
        with self._lock:
            return list(self.vars.get((ns, svc), {}).values())

    def put_config(self, ns: str, svc: str, var: ConfigVar, events: Sequence[Event]) -> None:
        with self._lock:
            self.vars.setdefault((ns, svc), {})[var.key] = var
            self.events.extend(events)

    def delete_config(self, ns: str, svc: str, key: str, events: Sequence[Event]) -> bool:
        with self._lock:
            if self.vars.get((ns, svc), {}).pop(key, None) is None:
                return False
            self.events.extend(events)
            return True


def _copy(dep: Deployment) -> Deployment:
    """A copy the caller may change without changing what is stored (as a read from a table is)."""
    return replace(dep, steps=list(dep.steps), trigger=dict(dep.trigger))


def _put_step(dep: Deployment, step: Step, index: int | None) -> None:
    if index is None or index == len(dep.steps):
        dep.steps.append(replace(step, detail=redact_optional(step.detail)))
    else:
        dep.steps[index] = replace(step, detail=redact_optional(step.detail))


if TYPE_CHECKING:  # the protocol it implements, checked by mypy
    from chalicelib.domain.stores import DeployStore

    _checked: DeployStore = InMemoryDeployStore()
