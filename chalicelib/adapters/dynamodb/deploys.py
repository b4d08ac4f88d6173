"""Services, deployments, the deploy lock and queue, and config vars on the single table.

A deployment's steps are a list attribute (``step_list``, one map per step): a step is appended with
``list_append`` or replaced at its index with ``SET step_list[i]``, in the same request as whatever else
changes, never by rewriting the item. Items written before that kept their steps as one JSON string
(``steps``); they are read as they are, and rewritten once in the new shape by their first partial
update (whose condition ``attribute_not_exists(steps)`` tells them apart)."""

from __future__ import annotations

import builtins
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from pynamodb.attributes import BooleanAttribute, ListAttribute, MapAttribute, UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.exceptions import DeleteError, PutError, UpdateError
from pynamodb.expressions.condition import Condition

from chalicelib.adapters.dynamodb.base import BaseItem, condition_failed
from chalicelib.adapters.dynamodb.namespaces import NamespaceItem
from chalicelib.adapters.dynamodb.outbox import write_with_events
from chalicelib.domain.clock import epoch_seconds
from chalicelib.domain.errors import ConditionFailedError, ConflictError, NotFoundError
from chalicelib.domain.events import Event
from chalicelib.domain.model import Namespace
from chalicelib.domain.redaction import redact, redact_optional
from chalicelib.domain.services.deploys import (
    LIVE,
    TERMINAL,
    ConfigVar,
    Deployment,
    DeploymentStatus,
    Service,
    Step,
    redacted,
)

ACTIVE = "DEPLOYMENTS#ACTIVE"
# the fields of a deployment a partial update may set
FIELDS = frozenset({"status", "reason", "commit", "artifact", "spec", "deadline", "trigger"})


def _pk(ns: str, svc: str) -> str:
    return f"NS#{ns}#SVC#{svc}"


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


class ServiceItem(BaseItem, discriminator="Service"):
    ns = UnicodeAttribute()
    name = UnicodeAttribute()
    status = UnicodeAttribute()
    source = UnicodeAttribute(null=True)
    current_deployment_id = UnicodeAttribute(null=True)
    current_commit = UnicodeAttribute(null=True)
    last_good_deployment_id = UnicodeAttribute(null=True)
    auto_deploy = BooleanAttribute(default=True)
    auto_deploy_paused = BooleanAttribute(default=False)
    address = UnicodeAttribute(null=True)
    deleted = BooleanAttribute(default=False)

    @staticmethod
    def key(ns: str, svc: str) -> tuple[str, str]:
        return f"NS#{ns}", f"SVC#{svc}"


class StepMap(MapAttribute[str, Any]):
    step = UnicodeAttribute(attr_name="name")
    status = UnicodeAttribute()
    started_at = UnicodeAttribute()
    ended_at = UnicodeAttribute(null=True)
    detail = UnicodeAttribute(null=True)

    @classmethod
    def of(cls, s: Step) -> StepMap:
        return cls(
            step=s.name,
            status=s.status,
            started_at=s.started_at.isoformat(),
            ended_at=s.ended_at.isoformat() if s.ended_at else None,
            detail=redact_optional(s.detail),
        )

    def to_domain(self) -> Step:
        return Step(self.step, self.status, datetime.fromisoformat(self.started_at), _dt(self.ended_at), self.detail)


class DeploymentItem(BaseItem, discriminator="Deployment"):
    ns = UnicodeAttribute()
    service = UnicodeAttribute()
    deployment_id = UnicodeAttribute()
    status = UnicodeAttribute()
    source = UnicodeAttribute()
    ref = UnicodeAttribute()
    trigger = UnicodeAttribute()
    commit = UnicodeAttribute(null=True)
    artifact = UnicodeAttribute(null=True)
    reason = UnicodeAttribute(null=True)
    deadline = UTCDateTimeAttribute(null=True)
    rollback_of = UnicodeAttribute(null=True)
    spec = UnicodeAttribute(null=True)
    steps = UnicodeAttribute(null=True)  # items written before step_list: their steps as one JSON string
    step_list = ListAttribute(of=StepMap, null=True)

    @staticmethod
    def key(ns: str, svc: str, dep_id: str) -> tuple[str, str]:
        return _pk(ns, svc), f"DEP#{dep_id}"

    @classmethod
    def of(cls, d: Deployment) -> DeploymentItem:
        d = redacted(d)  # nothing credential-shaped is stored (nor, through to_domain, shown)
        pk, sk = cls.key(d.namespace, d.service, d.id)
        item = cls(
            PK=pk,
            SK=sk,
            GSI1PK=f"NS#{d.namespace}#DEPLOYMENTS",
            GSI1SK=f"DEP#{d.id}",
            ns=d.namespace,
            service=d.service,
            deployment_id=d.id,
            status=d.status,
            source=d.source,
            ref=d.ref,
            trigger=json.dumps(d.trigger),
            commit=d.commit,
            artifact=d.artifact,
            reason=d.reason,
            deadline=d.deadline,
            rollback_of=d.rollback_of,
            spec=json.dumps(d.spec) if d.spec is not None else None,
            step_list=[StepMap.of(s) for s in d.steps],
            created_at=d.created_at,
        )
        if d.status not in TERMINAL and d.deadline is not None:
            item.GSI2PK = ACTIVE
            item.GSI2SK = _active_sk(d.namespace, d.service, d.id, d.deadline)
        return item

    def to_domain(self) -> Deployment:
        assert self.created_at is not None
        return redacted(  # items written before credentials were masked are masked when read
            Deployment(
                id=self.deployment_id,
                namespace=self.ns,
                service=self.service,
                status=cast(DeploymentStatus, self.status),
                source=self.source,
                ref=self.ref,
                created_at=self.created_at,
                trigger=json.loads(self.trigger),
                commit=self.commit,
                artifact=self.artifact,
                reason=self.reason,
                deadline=self.deadline,
                rollback_of=self.rollback_of,
                spec=json.loads(self.spec) if self.spec else None,
                steps=[
                    Step(
                        s["name"],
                        s["status"],
                        datetime.fromisoformat(s["started_at"]),
                        _dt(s["ended_at"]),
                        s.get("detail"),
                    )
                    for s in json.loads(self.steps or "[]")
                ]
                + [s.to_domain() for s in self.step_list or []],
            )
        )


def _active_sk(ns: str, svc: str, dep_id: str, deadline: datetime) -> str:
    """The sort key in the index of deployments not terminal: soonest deadline first."""
    return f"{deadline.isoformat()}#{ns}#{svc}#{dep_id}"


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _redact_value(v) for k, v in value.items()}
    return value


def _expect(expect: Sequence[DeploymentStatus] | None) -> Condition:
    """The condition of every partial update: the deployment exists, in today's shape (see the module's
    docstring), with one of the ``expect``ed statuses."""
    condition: Condition = DeploymentItem.PK.exists() & DeploymentItem.steps.does_not_exist()
    if expect:
        condition &= DeploymentItem.status.is_in(*expect)
    return condition


def _step_actions(steps: Mapping[int, Step], append: Sequence[Step]) -> list[Any]:
    """Steps replaced at their index (an index at the end appends), or appended with list_append: not
    both in one update, whose paths would overlap (DynamoDB refuses that)."""
    if steps and append:
        raise ValueError("steps set at an index and appended overlap: give the appended ones their index")
    actions: list[Any] = [DeploymentItem.step_list[i].set(StepMap.of(step)) for i, step in sorted(steps.items())]
    if append:
        new = [StepMap.of(step) for step in append]
        actions.append(DeploymentItem.step_list.set((DeploymentItem.step_list | []).append(new)))
    return actions


def _field_actions(ns: str, svc: str, dep_id: str, fields: Mapping[str, Any]) -> list[Any]:
    actions: list[Any] = []
    for name, value in fields.items():
        attribute = getattr(DeploymentItem, name)
        if name == "spec":
            value = json.dumps(value) if value is not None else None
        elif name == "trigger":
            value = json.dumps(_redact_value(dict(value)))
        elif name == "reason":
            value = redact_optional(value)
        actions.append(attribute.remove() if value is None else attribute.set(value))
    status = fields.get("status")
    if status in TERMINAL:  # out of the index of deployments not terminal
        actions += [DeploymentItem.GSI2PK.remove(), DeploymentItem.GSI2SK.remove()]
    elif fields.get("deadline") is not None:
        actions += [
            DeploymentItem.GSI2PK.set(ACTIVE),
            DeploymentItem.GSI2SK.set(_active_sk(ns, svc, dep_id, fields["deadline"])),
        ]
    return actions


def _service(i: ServiceItem) -> Service:
    return Service(
        namespace=i.ns,
        name=i.name,
        status=i.status,
        source=redact_optional(i.source),
        current_deployment_id=i.current_deployment_id,
        current_commit=i.current_commit,
        last_good_deployment_id=i.last_good_deployment_id,
        auto_deploy=bool(i.auto_deploy),
        auto_deploy_paused=bool(i.auto_deploy_paused),
        address=i.address,
        deleted=bool(i.deleted),
    )


def _service_item(s: Service) -> ServiceItem:
    pk, sk = ServiceItem.key(s.namespace, s.name)
    return ServiceItem(
        PK=pk,
        SK=sk,
        ns=s.namespace,
        name=s.name,
        status=s.status,
        source=redact_optional(s.source),
        current_deployment_id=s.current_deployment_id,
        current_commit=s.current_commit,
        last_good_deployment_id=s.last_good_deployment_id,
        auto_deploy=s.auto_deploy,
        auto_deploy_paused=s.auto_deploy_paused,
        address=s.address,
        deleted=s.deleted,
    )


class DeployLockItem(BaseItem, discriminator="DeployLock"):
    deployment_id = UnicodeAttribute()


class QueuedDeployItem(BaseItem, discriminator="QueuedDeploy"):
    deployment_id = UnicodeAttribute()


class ConfigVarItem(BaseItem, discriminator="ConfigVar"):
    var_key = UnicodeAttribute()
    secret = BooleanAttribute(default=False)
    value = UnicodeAttribute(null=True)
    ciphertext = UnicodeAttribute(null=True)


class DynamoDeployStore:
    # ------------------------------------------------------------------ deployments

    def create_deployment(self, dep: Deployment, events: Sequence[Event], service: Service | None = None) -> None:
        puts: list[tuple[Any, Any]] = [(DeploymentItem.of(dep), DeploymentItem.PK.does_not_exist())]
        if service is not None:
            write_with_events([*puts, (_service_item(service), None)], events)
            return
        # without reading it: the source set, and what a new service starts with where nothing is yet
        item = ServiceItem(*ServiceItem.key(dep.namespace, dep.service))
        actions: list[Any] = [
            ServiceItem.entity.set(ServiceItem),  # the discriminator, as a new item needs it
            ServiceItem.ns.set(dep.namespace),
            ServiceItem.name.set(dep.service),
            ServiceItem.source.set(redact(dep.source)),
            ServiceItem.status.set(ServiceItem.status | "new"),
            ServiceItem.auto_deploy.set(ServiceItem.auto_deploy | True),
            ServiceItem.auto_deploy_paused.set(ServiceItem.auto_deploy_paused | False),
            ServiceItem.deleted.set(ServiceItem.deleted | False),
        ]
        live = ServiceItem.PK.does_not_exist() | (ServiceItem.deleted == False)  # noqa: E712 (a condition)
        try:
            write_with_events(puts, events, updates=[(item, actions, live)])
        except ConditionFailedError as e:
            if 1 not in e.details.get("failed", []):  # the service's position, after the deployment's
                raise
            # a deleted service comes back afresh
            fresh = _service_item(Service(dep.namespace, dep.service, source=dep.source))
            write_with_events([*puts, (fresh, ServiceItem.deleted == True)], events)  # noqa: E712

    def get_deployment(self, ns: str, svc: str, dep_id: str) -> Deployment | None:
        try:
            return DeploymentItem.get(*DeploymentItem.key(ns, svc, dep_id), consistent_read=True).to_domain()
        except DeploymentItem.DoesNotExist:
            return None

    def read_run(self, ns: str, svc: str, dep_id: str) -> tuple[Deployment | None, Service | None, Namespace | None]:
        keys = [DeploymentItem.key(ns, svc, dep_id), ServiceItem.key(ns, svc), NamespaceItem.key(ns)]
        dep, service, namespace = None, None, None
        for item in BaseItem.batch_get(keys, consistent_read=True):
            if isinstance(item, DeploymentItem):
                dep = item.to_domain()
            elif isinstance(item, ServiceItem):
                service = _service(item)
            elif isinstance(item, NamespaceItem):
                namespace = item.to_domain()
        return dep, service, namespace

    def list_deployments(self, ns: str, svc: str, limit: int) -> builtins.list[Deployment]:
        items = DeploymentItem.query(
            _pk(ns, svc),
            DeploymentItem.SK.startswith("DEP#"),
            scan_index_forward=False,
            limit=limit,
            consistent_read=True,
        )
        return [i.to_domain() for i in items if isinstance(i, DeploymentItem)]

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
        item = DeploymentItem(*DeploymentItem.key(ns, svc, dep_id))
        actions = _step_actions({index: step} if index is not None else {}, [] if index is not None else [step])
        if reason is not None:
            actions.append(DeploymentItem.reason.set(redact(reason)))
        try:
            item.update(actions=actions, condition=_expect(expect))
        except UpdateError as e:
            if not condition_failed(e):
                raise
            self._migrate_or_refuse(ns, svc, dep_id, expect)
            return self.add_step(ns, svc, dep_id, step, index=index, reason=reason, expect=expect)
        return item.to_domain()

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
        actions = _step_actions(steps or {}, append) + _field_actions(ns, svc, dep_id, fields)
        item = DeploymentItem(*DeploymentItem.key(ns, svc, dep_id))
        deletes: list[tuple[Any, Any]] = []
        if release_lock:
            lock = DeployLockItem(_pk(ns, svc), "LOCK")
            deletes.append((lock, DeployLockItem.PK.does_not_exist() | (DeployLockItem.deployment_id == dep_id)))
        updates: list[tuple[Any, list[Any], Any]] = [(item, actions, _expect(expect))]
        if service is not None:
            updates.append(
                (
                    ServiceItem(*ServiceItem.key(ns, svc)),
                    [getattr(ServiceItem, name).set(value) for name, value in service.items()],
                    ServiceItem.PK.exists() & (ServiceItem.deleted == False),  # noqa: E712 (a condition)
                )
            )
        try:
            write_with_events([], events, updates=updates, deletes=deletes)
        except ConditionFailedError as e:
            failed = set(e.details.get("failed", []))
            position = len(deletes)  # the deployment's, after the lock's
            if position in failed:  # refused, or rewritten in today's shape: then again
                self._migrate_or_refuse(ns, svc, dep_id, expect)
            elif service is not None and position + 1 in failed:
                raise NotFoundError(f"service {svc!r} not found", {"service": svc}) from e
            elif not (release_lock and 0 in failed):
                raise
            # (a lock another deployment holds now is not this one's to release)
            self.update_deployment(
                ns,
                svc,
                dep_id,
                fields,
                steps=steps,
                append=append,
                expect=expect,
                events=events,
                service=service,
                release_lock=release_lock and 0 not in failed,
            )

    def _migrate_or_refuse(self, ns: str, svc: str, dep_id: str, expect: Sequence[DeploymentStatus] | None) -> None:
        """A partial update's condition failed: rewrite a deployment stored with its steps as one JSON
        string in today's shape (then the caller tries again), or refuse (ConflictError)."""
        try:
            found = DeploymentItem.get(*DeploymentItem.key(ns, svc, dep_id), consistent_read=True)
        except DeploymentItem.DoesNotExist:
            raise NotFoundError(f"deployment {dep_id!r} not found", {"deployment_id": dep_id}) from None
        if found.steps is None or (expect is not None and found.status not in expect):
            raise ConflictError(f"deployment {dep_id} changed meanwhile", {"deployment_id": dep_id})
        try:
            DeploymentItem.of(found.to_domain()).save(condition=DeploymentItem.steps == found.steps)
        except PutError as e:
            if not condition_failed(e):
                raise

    def active(self, limit: int) -> builtins.list[Deployment]:
        items = DeploymentItem.gsi2.query(ACTIVE, limit=limit)
        return [i.to_domain() for i in items if isinstance(i, DeploymentItem)]

    # ------------------------------------------------------------------ services

    def get_service(self, ns: str, svc: str) -> Service | None:
        try:
            return _service(ServiceItem.get(*ServiceItem.key(ns, svc), consistent_read=True))
        except ServiceItem.DoesNotExist:
            return None

    def list_services(self, ns: str) -> builtins.list[Service]:
        items = ServiceItem.query(f"NS#{ns}", ServiceItem.SK.startswith("SVC#"), consistent_read=True)
        return [_service(i) for i in items if isinstance(i, ServiceItem)]

    def save_service(self, s: Service) -> None:
        _service_item(s).save()

    def service_failed(self, ns: str, svc: str) -> None:
        try:
            ServiceItem(*ServiceItem.key(ns, svc)).update(
                actions=[ServiceItem.status.set("failed")],
                condition=ServiceItem.PK.exists() & ServiceItem.current_deployment_id.does_not_exist(),
            )
        except UpdateError as e:
            if not condition_failed(e):
                raise

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
        item = DeployLockItem(PK=_pk(ns, svc), SK="LOCK", deployment_id=dep_id, expires_at=epoch_seconds(until))
        condition = DeployLockItem.absent_or_expired(now) | (DeployLockItem.deployment_id == dep_id)
        try:
            if step is None:
                item.save(condition=condition)
            else:  # the lock and the step in one write: the step only while the deployment is live
                actions = _step_actions({index: step} if index is not None else {}, [] if index is not None else [step])
                deployment = DeploymentItem(*DeploymentItem.key(ns, svc, dep_id))
                write_with_events([(item, condition)], [], updates=[(deployment, actions, _expect(LIVE))])
            return None
        except PutError as e:
            if not condition_failed(e):
                raise
        except ConditionFailedError as e:
            if 1 in e.details.get("failed", []):  # the deployment's position, after the lock's
                self._migrate_or_refuse(ns, svc, dep_id, LIVE)
                return self.acquire_lock(ns, svc, dep_id, until, now, step=step, index=index)
        holder = DeployLockItem.get_live(_pk(ns, svc), "LOCK", now)
        if holder is not None:
            return holder.deployment_id
        return self.acquire_lock(ns, svc, dep_id, until, now, step=step, index=index)

    def lock_holder(self, ns: str, svc: str, now: datetime) -> str | None:
        holder = DeployLockItem.get_live(_pk(ns, svc), "LOCK", now)
        return holder.deployment_id if holder is not None else None

    def release_lock(self, ns: str, svc: str, dep_id: str) -> None:
        try:
            DeployLockItem(_pk(ns, svc), "LOCK").delete(condition=DeployLockItem.deployment_id == dep_id)
        except DeleteError as e:
            if not condition_failed(e):
                raise

    def queued(self, ns: str, svc: str) -> str | None:
        try:
            return QueuedDeployItem.get(_pk(ns, svc), "QUEUED", consistent_read=True).deployment_id
        except QueuedDeployItem.DoesNotExist:
            return None

    def set_queued(self, ns: str, svc: str, dep_id: str) -> str | None:
        previous = self.queued(ns, svc)
        condition = (
            QueuedDeployItem.PK.does_not_exist() if previous is None else QueuedDeployItem.deployment_id == previous
        )
        try:
            QueuedDeployItem(PK=_pk(ns, svc), SK="QUEUED", deployment_id=dep_id).save(condition=condition)
        except PutError as e:
            if not condition_failed(e):
                raise
            return self.set_queued(ns, svc, dep_id)
        return previous

    def take_queued(self, ns: str, svc: str, dep_id: str) -> bool:
        try:
            QueuedDeployItem(_pk(ns, svc), "QUEUED").delete(condition=QueuedDeployItem.deployment_id == dep_id)
        except DeleteError as e:
            if condition_failed(e):
                return False
            raise
        return True

    # ------------------------------------------------------------------ config vars

    def config(self, ns: str, svc: str) -> builtins.list[ConfigVar]:
        items = ConfigVarItem.query(_pk(ns, svc), ConfigVarItem.SK.startswith("CONFIG#"), consistent_read=True)
        return [
            ConfigVar(i.var_key, bool(i.secret), i.value, i.ciphertext) for i in items if isinstance(i, ConfigVarItem)
        ]

    def put_config(self, ns: str, svc: str, var: ConfigVar, events: Sequence[Event]) -> None:
        item = ConfigVarItem(
            PK=_pk(ns, svc),
            SK=f"CONFIG#{var.key}",
            var_key=var.key,
            secret=var.secret,
            value=var.value,
            ciphertext=var.ciphertext,
        )
        write_with_events([(item, None)], events)

    def delete_config(self, ns: str, svc: str, key: str, events: Sequence[Event]) -> bool:
        try:
            write_with_events(
                [], events, deletes=[(ConfigVarItem(_pk(ns, svc), f"CONFIG#{key}"), ConfigVarItem.PK.exists())]
            )
        except ConditionFailedError:
            return False
        return True
