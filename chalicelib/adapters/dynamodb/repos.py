"""Linked repositories and push claims on the single table (keys: docs/data-model.md, ``LinkedRepo``,
``PushClaim``)."""

from __future__ import annotations

import builtins
import hashlib
from collections.abc import Sequence
from datetime import datetime, timedelta

from pynamodb.attributes import BooleanAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import PutError

from chalicelib.adapters.dynamodb.base import BaseItem, condition_failed
from chalicelib.adapters.dynamodb.outbox import write_with_events
from chalicelib.domain.clock import epoch_seconds
from chalicelib.domain.errors import ConditionFailedError, ConflictError
from chalicelib.domain.events import Event
from chalicelib.domain.services.gitops import Link, PushKey


class LinkedRepoItem(BaseItem, discriminator="LinkedRepo"):
    ns = UnicodeAttribute()
    repo_id = NumberAttribute()
    installation_id = NumberAttribute()
    full_name = UnicodeAttribute()
    branch = UnicodeAttribute()
    auto_deploy = BooleanAttribute(default=True)
    status = UnicodeAttribute(default="active")
    clone_url = UnicodeAttribute()
    disabled_reason = UnicodeAttribute(null=True)

    @staticmethod
    def key(ns: str, repo_id: int) -> tuple[str, str]:
        return f"NS#{ns}", f"REPO#{repo_id}"

    @classmethod
    def of(cls, link: Link) -> LinkedRepoItem:
        pk, sk = cls.key(link.namespace, link.repo_id)
        return cls(
            PK=pk,
            SK=sk,
            GSI1PK=f"GHREPO#{link.repo_id}",
            GSI1SK=f"NS#{link.namespace}",
            GSI2PK=f"INSTALL#{link.installation_id}",
            GSI2SK=f"GHREPO#{link.repo_id}#NS#{link.namespace}",
            ns=link.namespace,
            repo_id=link.repo_id,
            installation_id=link.installation_id,
            full_name=link.full_name,
            branch=link.branch,
            auto_deploy=link.auto_deploy,
            status=link.status,
            clone_url=link.clone_url,
            disabled_reason=link.disabled_reason,
            created_at=link.created_at,
        )

    def to_domain(self) -> Link:
        assert self.created_at is not None
        return Link(
            namespace=self.ns,
            repo_id=int(self.repo_id),
            installation_id=int(self.installation_id),
            full_name=self.full_name,
            branch=self.branch,
            auto_deploy=bool(self.auto_deploy),
            status=self.status,
            created_at=self.created_at,
            clone_url=self.clone_url,
            disabled_reason=self.disabled_reason,
        )


class DynamoLinkStore:
    def create(self, link: Link, events: Sequence[Event]) -> None:
        try:
            write_with_events([(LinkedRepoItem.of(link), LinkedRepoItem.PK.does_not_exist())], events)
        except ConditionFailedError as e:
            raise ConflictError(
                f"{link.full_name} is linked to {link.namespace} already", {"repo_id": link.repo_id}
            ) from e

    def get(self, ns: str, repo_id: int) -> Link | None:
        try:
            return LinkedRepoItem.get(*LinkedRepoItem.key(ns, repo_id), consistent_read=True).to_domain()
        except LinkedRepoItem.DoesNotExist:
            return None

    def list(self, ns: str) -> builtins.list[Link]:
        items = LinkedRepoItem.query(f"NS#{ns}", LinkedRepoItem.SK.startswith("REPO#"), consistent_read=True)
        return [i.to_domain() for i in items if isinstance(i, LinkedRepoItem)]

    def by_repo(self, repo_id: int) -> builtins.list[Link]:
        return [i.to_domain() for i in LinkedRepoItem.gsi1.query(f"GHREPO#{repo_id}") if isinstance(i, LinkedRepoItem)]

    def by_installation(self, installation_id: int) -> builtins.list[Link]:
        return [
            i.to_domain()
            for i in LinkedRepoItem.gsi2.query(f"INSTALL#{installation_id}")
            if isinstance(i, LinkedRepoItem)
        ]

    def save(self, link: Link, events: Sequence[Event] = ()) -> None:
        write_with_events([(LinkedRepoItem.of(link), LinkedRepoItem.PK.exists())], events)

    def delete(self, ns: str, repo_id: int, events: Sequence[Event]) -> bool:
        try:
            write_with_events(
                [], events, deletes=[(LinkedRepoItem(*LinkedRepoItem.key(ns, repo_id)), LinkedRepoItem.PK.exists())]
            )
        except ConditionFailedError:
            return False
        return True


class PushClaimItem(BaseItem, discriminator="PushClaim"):
    delivery = UnicodeAttribute()
    ref = UnicodeAttribute()

    @staticmethod
    def key(push: PushKey) -> tuple[str, str]:
        ref = hashlib.sha256(push.ref.encode()).hexdigest()[:32]  # a ref may hold any character but NUL
        return f"PUSH#{push.repo_id}#{ref}#{push.after}", f"BEFORE#{push.before}#AT#{push.pushed_at or 0}"


class DynamoPushClaims:
    def claim(self, key: PushKey, delivery: str, now: datetime, window: timedelta) -> bool:
        pk, sk = PushClaimItem.key(key)
        item = PushClaimItem(
            PK=pk,
            SK=sk,
            delivery=delivery,
            ref=key.ref,
            created_at=now,
            expires_at=epoch_seconds(now + window),
        )
        try:
            item.save(condition=PushClaimItem.absent_or_expired(now) | (PushClaimItem.delivery == delivery))
        except PutError as e:
            if condition_failed(e):
                return False
            raise
        return True
