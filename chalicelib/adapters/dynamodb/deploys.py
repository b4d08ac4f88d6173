"""Services, deployments, the deploy lock and queue, and config vars on the single table."""

from __future__ import annotations

import builtins
import json
from collections.abc import Sequence
from datetime import datetime
from typing import cast

from pynamodb.attributes import BooleanAttribute, UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.exceptions import DeleteError, PutError

from chalicelib.adapters.dynamodb.base import BaseItem, condition_failed
from chalicelib.adapters.dynamodb.outbox import write_with_events
from chalicelib.domain.clock import epoch_seconds
from chalicelib.domain.deploys import ConfigVar, Deployment, DeploymentStatus, Service, Step, redacted
from chalicelib.domain.errors import ConditionFailedError, ConflictError
from chalicelib.domain.events import Event
from chalicelib.domain.redaction import redact_optional

ACTIVE = "DEPLOYMENTS#ACTIVE"
TERMINAL = ("superseded", "succeeded", "failed", "rolled_back")


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
    steps = UnicodeAttribute(default="[]")

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
            steps=json.dumps(
                [
                    {
                        "name": s.name,
                        "status": s.status,
                        "started_at": s.started_at.isoformat(),
                        "ended_at": s.ended_at.isoformat() if s.ended_at else None,
                        "detail": s.detail,
                    }
                    for s in d.steps
                ]
            ),
            created_at=d.created_at,
        )
        if d.status not in TERMINAL and d.deadline is not None:
            item.GSI2PK = ACTIVE
            item.GSI2SK = f"{d.deadline.isoformat()}#{d.namespace}#{d.service}#{d.id}"
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
                ],
            )
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

    def create_deployment(self, dep: Deployment, events: Sequence[Event]) -> None:
        write_with_events([(DeploymentItem.of(dep), DeploymentItem.PK.does_not_exist())], events)

    def get_deployment(self, ns: str, svc: str, dep_id: str) -> Deployment | None:
        try:
            return DeploymentItem.get(*DeploymentItem.key(ns, svc, dep_id), consistent_read=True).to_domain()
        except DeploymentItem.DoesNotExist:
            return None

    def list_deployments(self, ns: str, svc: str, limit: int) -> builtins.list[Deployment]:
        items = DeploymentItem.query(
            _pk(ns, svc),
            DeploymentItem.SK.startswith("DEP#"),
            scan_index_forward=False,
            limit=limit,
            consistent_read=True,
        )
        return [i.to_domain() for i in items if isinstance(i, DeploymentItem)]

    def save_deployment(
        self, dep: Deployment, *, expect: Sequence[DeploymentStatus] | None = None, events: Sequence[Event] = ()
    ) -> None:
        condition = DeploymentItem.status.is_in(*expect) if expect else None
        try:
            write_with_events([(DeploymentItem.of(dep), condition)], events)
        except ConditionFailedError as e:
            raise ConflictError(f"deployment {dep.id} changed meanwhile", {"deployment_id": dep.id}) from e

    def active(self, limit: int) -> builtins.list[Deployment]:
        items = DeploymentItem.gsi2.query(ACTIVE, limit=limit)
        return [i.to_domain() for i in items if isinstance(i, DeploymentItem)]

    # ------------------------------------------------------------------ services

    def get_service(self, ns: str, svc: str) -> Service | None:
        try:
            i = ServiceItem.get(*ServiceItem.key(ns, svc), consistent_read=True)
        except ServiceItem.DoesNotExist:
            return None
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

    def list_services(self, ns: str) -> builtins.list[Service]:
        items = ServiceItem.query(f"NS#{ns}", ServiceItem.SK.startswith("SVC#"), consistent_read=True)
        found = [self.get_service(ns, i.name) for i in items if isinstance(i, ServiceItem)]
        return [s for s in found if s is not None]

    def save_service(self, s: Service) -> None:
        pk, sk = ServiceItem.key(s.namespace, s.name)
        ServiceItem(
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
        ).save()

    # ------------------------------------------------------------------ lock and queue

    def acquire_lock(self, ns: str, svc: str, dep_id: str, until: datetime, now: datetime) -> str | None:
        item = DeployLockItem(PK=_pk(ns, svc), SK="LOCK", deployment_id=dep_id, expires_at=epoch_seconds(until))
        try:
            item.save(condition=DeployLockItem.absent_or_expired(now) | (DeployLockItem.deployment_id == dep_id))
            return None
        except PutError as e:
            if not condition_failed(e):
                raise
        holder = DeployLockItem.get_live(_pk(ns, svc), "LOCK", now)
        return holder.deployment_id if holder is not None else self.acquire_lock(ns, svc, dep_id, until, now)

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
