"""API tokens on the single table, found by the SHA-256 of their secret (never the secret). Keys:
docs/data-model.md."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal, cast

from pynamodb.attributes import NumberAttribute, UnicodeAttribute, UnicodeSetAttribute, UTCDateTimeAttribute
from pynamodb.exceptions import UpdateError

from chalicelib.adapters.dynamodb.base import BaseItem, condition_failed
from chalicelib.adapters.dynamodb.outbox import write_with_events
from chalicelib.domain.clock import epoch_seconds
from chalicelib.domain.errors import ConditionFailedError, ConflictError
from chalicelib.domain.events import Event
from chalicelib.domain.model import ApiToken, Role, Scope


class TokenItem(BaseItem, discriminator="ApiToken"):
    token_id = UnicodeAttribute()
    name = UnicodeAttribute()
    uid = NumberAttribute()
    login = UnicodeAttribute()
    ns = UnicodeAttribute(null=True)
    scopes = UnicodeSetAttribute()
    kind = UnicodeAttribute(default="api")
    token_expires_at = UTCDateTimeAttribute()
    last_used_at = UTCDateTimeAttribute(null=True)
    revoked_at = UTCDateTimeAttribute(null=True)

    @staticmethod
    def key(secret_hash: str) -> tuple[str, str]:
        return f"TOKEN#{secret_hash}", "TOKEN"

    def to_domain(self) -> ApiToken:
        assert self.created_at is not None
        return ApiToken(
            id=self.token_id,
            name=self.name,
            uid=int(self.uid),
            login=self.login,
            namespace=self.ns,
            scopes=frozenset(cast(set[Scope], self.scopes)),
            created_at=self.created_at,
            expires_at=self.token_expires_at,
            kind=cast(Literal["login", "api"], self.kind),
            last_used_at=self.last_used_at,
            revoked_at=self.revoked_at,
        )


class DynamoTokenStore:
    def create(
        self,
        token: ApiToken,
        secret_hash: str,
        events: Sequence[Event],
        require_role: tuple[str, Sequence[Role]] | None = None,
    ) -> None:
        pk, sk = TokenItem.key(secret_hash)
        item = TokenItem(
            PK=pk,
            SK=sk,
            GSI1PK=f"USER#{token.uid}",
            GSI1SK=f"TOKEN#{token.id}",
            token_id=token.id,
            name=token.name,
            uid=token.uid,
            login=token.login,
            ns=token.namespace,
            scopes=set(token.scopes),
            kind=token.kind,
            token_expires_at=token.expires_at,
            created_at=token.created_at,
            # the window: an expired token counts as absent, whatever TTL has done
            expires_at=epoch_seconds(token.expires_at),
        )
        if token.namespace:
            item.GSI2PK, item.GSI2SK = f"NS#{token.namespace}#TOKENS", f"TOKEN#{token.id}"
        checks = []
        if require_role is not None:
            # imported here: members.py imports this module (removing a member revokes their tokens)
            from chalicelib.adapters.dynamodb.members import MemberItem

            ns, roles = require_role
            mpk, msk = MemberItem.key(ns, token.uid)
            checks.append((MemberItem, mpk, msk, MemberItem.role.is_in(*roles)))
        try:
            write_with_events([(item, TokenItem.PK.does_not_exist())], events, checks=checks)
        except ConditionFailedError as e:
            raise ConflictError("the token could not be created: the membership changed", {}) from e

    def by_hash(self, secret_hash: str) -> ApiToken | None:
        try:
            return TokenItem.get(*TokenItem.key(secret_hash), consistent_read=True).to_domain()
        except TokenItem.DoesNotExist:
            return None

    def list_for_user(self, uid: int) -> list[ApiToken]:
        items = TokenItem.gsi1.query(f"USER#{uid}", TokenItem.GSI1SK.startswith("TOKEN#"))
        return [i.to_domain() for i in items if isinstance(i, TokenItem)]

    def find_for_user(self, uid: int, token_id: str) -> tuple[ApiToken, str] | None:
        for i in TokenItem.gsi1.query(f"USER#{uid}", TokenItem.GSI1SK == f"TOKEN#{token_id}"):
            if isinstance(i, TokenItem):
                return i.to_domain(), i.PK.removeprefix("TOKEN#")
        return None

    def revoke(self, secret_hash: str, now: datetime, events: Sequence[Event]) -> bool:
        pk, sk = TokenItem.key(secret_hash)
        try:
            write_with_events(
                [],
                events,
                updates=[
                    (
                        TokenItem(PK=pk, SK=sk),
                        [TokenItem.revoked_at.set(now), TokenItem.expires_at.set(epoch_seconds(now))],
                        TokenItem.PK.exists() & TokenItem.revoked_at.does_not_exist(),
                    )
                ],
            )
        except ConditionFailedError:
            return False
        return True

    def touch(self, secret_hash: str, now: datetime) -> None:
        """Record the last use, at most once a minute (a lost condition is the common case)."""
        pk, sk = TokenItem.key(secret_hash)
        try:
            TokenItem(PK=pk, SK=sk).update(
                actions=[TokenItem.last_used_at.set(now)],
                condition=TokenItem.PK.exists()
                & (TokenItem.last_used_at.does_not_exist() | (TokenItem.last_used_at < now - timedelta(seconds=60))),
            )
        except UpdateError as e:
            if not condition_failed(e):
                raise


if TYPE_CHECKING:  # the protocol it implements, checked by mypy
    from chalicelib.domain.stores import TokenStore

    _checked: TokenStore = DynamoTokenStore()
