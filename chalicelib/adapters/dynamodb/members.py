"""Namespace members on the single table; removing one revokes their tokens of the namespace in the same
transaction. Keys: docs/data-model.md."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from pynamodb.attributes import NumberAttribute, UnicodeAttribute

from chalicelib.adapters.dynamodb.base import BaseItem
from chalicelib.adapters.dynamodb.outbox import write_with_events
from chalicelib.adapters.dynamodb.tokens import TokenItem
from chalicelib.domain.clock import epoch_seconds
from chalicelib.domain.events import Event
from chalicelib.domain.model import Member, MemberSource, Role


class MemberItem(BaseItem, discriminator="Member"):
    ns = UnicodeAttribute()
    uid = NumberAttribute()
    login = UnicodeAttribute()
    role = UnicodeAttribute()
    source = UnicodeAttribute()

    @staticmethod
    def key(ns: str, uid: int) -> tuple[str, str]:
        return f"NS#{ns}", f"MEMBER#{uid}"

    @classmethod
    def of(cls, m: Member) -> MemberItem:
        pk, sk = cls.key(m.namespace, m.uid)
        return cls(
            PK=pk,
            SK=sk,
            GSI1PK=f"USER#{m.uid}",
            GSI1SK=f"NS#{m.namespace}",
            ns=m.namespace,
            uid=m.uid,
            login=m.login,
            role=m.role,
            source=m.source,
        )

    def to_domain(self) -> Member:
        return Member(
            namespace=self.ns,
            uid=int(self.uid),
            login=self.login,
            role=cast(Role, self.role),
            source=cast(MemberSource, self.source),
        )


class DynamoMemberStore:
    def get(self, ns_id: str, uid: int) -> Member | None:
        try:
            return MemberItem.get(*MemberItem.key(ns_id, uid), consistent_read=True).to_domain()
        except MemberItem.DoesNotExist:
            return None

    def list(self, ns_id: str) -> list[Member]:
        items = BaseItem.query(f"NS#{ns_id}", BaseItem.SK.startswith("MEMBER#"), consistent_read=True)
        return sorted((i.to_domain() for i in items if isinstance(i, MemberItem)), key=lambda m: m.login)

    def namespaces_of(self, uid: int) -> builtins.list[tuple[str, Role]]:
        items = BaseItem.gsi1.query(f"USER#{uid}", BaseItem.GSI1SK.startswith("NS#"))
        return sorted((i.ns, cast(Role, i.role)) for i in items if isinstance(i, MemberItem))

    def apply(
        self,
        ns_id: str,
        put: Sequence[Member],
        remove: Sequence[Member],
        events: Sequence[Event],
        revoke_tokens_of: Sequence[int] = (),
        now: datetime | None = None,
    ) -> None:
        updates: list[tuple[Any, list[Any], Any]] = []
        for uid in revoke_tokens_of:
            assert now is not None
            for token in TokenItem.gsi2.query(f"NS#{ns_id}#TOKENS"):
                if isinstance(token, TokenItem) and int(token.uid) == uid and token.revoked_at is None:
                    updates.append(
                        (
                            TokenItem(PK=token.PK, SK=token.SK),
                            [TokenItem.revoked_at.set(now), TokenItem.expires_at.set(epoch_seconds(now))],
                            TokenItem.PK.exists(),
                        )
                    )
        write_with_events(
            [(MemberItem.of(m), None) for m in put],
            events,
            updates=updates,
            deletes=[(MemberItem(*MemberItem.key(m.namespace, m.uid)), None) for m in remove],
        )


if TYPE_CHECKING:  # the protocol it implements, checked by mypy
    from chalicelib.domain.stores import MemberStore

    _checked: MemberStore = DynamoMemberStore()
