"""GitHub accounts that signed in (one item per user) on the single table. Keys: docs/data-model.md."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from pynamodb.attributes import NumberAttribute, UnicodeAttribute, UTCDateTimeAttribute

from chalicelib.adapters.dynamodb.base import BaseItem
from chalicelib.domain.model import Account


class AccountItem(BaseItem, discriminator="Account"):
    uid = NumberAttribute()
    login = UnicodeAttribute()
    name = UnicodeAttribute(null=True)
    email = UnicodeAttribute(null=True)
    last_login_at = UTCDateTimeAttribute(null=True)

    @staticmethod
    def key(uid: int) -> tuple[str, str]:
        return f"USER#{uid}", "USER"


class DynamoAccountStore:
    def upsert(self, account: Account, now: datetime) -> None:
        pk, sk = AccountItem.key(account.uid)
        AccountItem(
            PK=pk,
            SK=sk,
            GSI1PK=f"LOGIN#{account.login.lower()}",
            GSI1SK="USER",
            uid=account.uid,
            login=account.login,
            name=account.name,
            email=account.email,
            last_login_at=now,
            created_at=now,
        ).save()

    def get(self, uid: int) -> Account | None:
        try:
            item = AccountItem.get(*AccountItem.key(uid), consistent_read=True)
        except AccountItem.DoesNotExist:
            return None
        return Account(uid=int(item.uid), login=item.login, name=item.name, email=item.email)


if TYPE_CHECKING:  # the protocol it implements, checked by mypy
    from chalicelib.domain.stores import AccountStore

    _checked: AccountStore = DynamoAccountStore()
