"""Members' runtime accounts on the single table (one item per member in the namespace's partition), and
the shared runtime credential of older versions, deleted on sight. Keys: docs/data-model.md."""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import DeleteError

from chalicelib.adapters.dynamodb.base import BaseItem, condition_failed
from chalicelib.domain.stores import RuntimeAccountRecord


class RuntimeCredentialItem(BaseItem, discriminator="RuntimeCredential"):
    """The one runtime credential older versions minted per namespace and handed to every member: no
    longer made or read; deleted when its namespace is offboarded or its accounts are reconciled."""

    ciphertext = UnicodeAttribute()
    cluster_id = UnicodeAttribute()

    @staticmethod
    def key(ns: str) -> tuple[str, str]:
        return f"NS#{ns}", "RUNTIMECRED"


class RuntimeAccountItem(BaseItem, discriminator="RuntimeAccount"):
    ns = UnicodeAttribute()
    uid = NumberAttribute()
    login = UnicodeAttribute()
    account_id = UnicodeAttribute()
    scopes = UnicodeAttribute()  # space-separated
    ciphertext = UnicodeAttribute()

    @staticmethod
    def key(ns: str, uid: int) -> tuple[str, str]:
        return f"NS#{ns}", f"RUNTIMEACCT#{uid}"

    def to_domain(self) -> RuntimeAccountRecord:
        assert self.created_at is not None
        return RuntimeAccountRecord(
            namespace=self.ns,
            uid=int(self.uid),
            login=self.login,
            account_id=self.account_id,
            scopes=tuple(s for s in self.scopes.split(" ") if s),
            ciphertext=self.ciphertext,
            created_at=self.created_at,
        )


class DynamoRuntimeAccountStore:
    """Members' runtime accounts: one item per member in the namespace's partition."""

    def put(self, record: RuntimeAccountRecord) -> None:
        pk, sk = RuntimeAccountItem.key(record.namespace, record.uid)
        RuntimeAccountItem(
            PK=pk,
            SK=sk,
            ns=record.namespace,
            uid=record.uid,
            login=record.login,
            account_id=record.account_id,
            scopes=" ".join(record.scopes),
            ciphertext=record.ciphertext,
            created_at=record.created_at,
        ).save()

    def get(self, ns_id: str, uid: int) -> RuntimeAccountRecord | None:
        try:
            return RuntimeAccountItem.get(*RuntimeAccountItem.key(ns_id, uid), consistent_read=True).to_domain()
        except RuntimeAccountItem.DoesNotExist:
            return None

    def list(self, ns_id: str) -> builtins.list[RuntimeAccountRecord]:
        items = BaseItem.query(f"NS#{ns_id}", BaseItem.SK.startswith("RUNTIMEACCT#"), consistent_read=True)
        return sorted((i.to_domain() for i in items if isinstance(i, RuntimeAccountItem)), key=lambda r: r.uid)

    def delete(self, ns_id: str, uid: int) -> None:
        RuntimeAccountItem(*RuntimeAccountItem.key(ns_id, uid)).delete()

    def delete_legacy_credential(self, ns_id: str) -> bool:
        try:
            RuntimeCredentialItem(*RuntimeCredentialItem.key(ns_id)).delete(condition=RuntimeCredentialItem.PK.exists())
        except DeleteError as e:
            if condition_failed(e):
                return False
            raise
        return True


if TYPE_CHECKING:  # the protocol it implements, checked by mypy
    from chalicelib.domain.stores import RuntimeAccountStore

    _checked: RuntimeAccountStore = DynamoRuntimeAccountStore()
