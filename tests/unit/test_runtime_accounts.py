"""Members' runtime accounts (RuntimeAccountService) over the local runtime's account registry: one
account per member with its role's scopes, recreated when a role changes, deleted with the member,
strangers deleted, tokens short-lived and refused once the account is gone."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from chalicelib.adapters.crypto import LocalKeyEncryptor
from chalicelib.adapters.runtime.local_accounts import LocalRuntimeAccounts
from chalicelib.domain.model import Member
from chalicelib.domain.services.runtime_accounts import RuntimeAccountService
from chalicelib.domain.stores import RuntimeAccountRecord

NS = "acme-backend"


class Records:
    """An in-memory RuntimeAccountStore (the DynamoDB one is exercised by the functional tests)."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, int], RuntimeAccountRecord] = {}
        self.legacy = {NS}

    def put(self, record: RuntimeAccountRecord) -> None:
        self.items[(record.namespace, record.uid)] = record

    def get(self, ns_id: str, uid: int) -> RuntimeAccountRecord | None:
        return self.items.get((ns_id, uid))

    def list(self, ns_id: str) -> list[RuntimeAccountRecord]:
        return [r for (ns, _), r in sorted(self.items.items()) if ns == ns_id]

    def delete(self, ns_id: str, uid: int) -> None:
        self.items.pop((ns_id, uid), None)

    def delete_legacy_credential(self, ns_id: str) -> bool:
        if ns_id in self.legacy:
            self.legacy.discard(ns_id)
            return True
        return False


def setup(tmp_path: Path, clock: Any) -> tuple[RuntimeAccountService, LocalRuntimeAccounts, Records]:
    registry = LocalRuntimeAccounts(tmp_path, clock)
    records = Records()
    service = RuntimeAccountService(records, lambda ns: registry, LocalKeyEncryptor("k" * 32), clock, ttl_seconds=600)
    return service, registry, records


ADA = Member(NS, 1, "ada", "owner", "org_owner")
GRACE = Member(NS, 3, "grace", "member", "team")
OPS = Member(NS, 5, "ops", "viewer", "outside")


def test_one_account_per_member_with_its_role_s_scopes(tmp_path: Path, clock: Any) -> None:
    service, registry, records = setup(tmp_path, clock)
    result = service.reconcile(NS, [ADA, GRACE, OPS])
    assert len(result.created) == 3 and result.deleted == []
    assert {r.login: r.scopes for r in records.list(NS)} == {"ada": ("admin",), "grace": ("admin",), "ops": ()}
    assert records.legacy == set()  # the shared credential of older versions goes
    accounts = {a.metadata["login"]: a for a in registry.list_accounts(NS)}
    assert accounts["grace"].id.startswith("grace-") and accounts["grace"].metadata["platform"] == "member"
    assert all(r.ciphertext and "grace" not in r.ciphertext for r in records.list(NS))  # the secret is encrypted
    assert service.reconcile(NS, [ADA, GRACE, OPS]).created == []  # in step: nothing to do


def test_a_removed_member_loses_the_account_and_its_tokens_at_once(tmp_path: Path, clock: Any) -> None:
    service, registry, records = setup(tmp_path, clock)
    service.reconcile(NS, [ADA, GRACE])
    record, token = service.token(NS, GRACE)
    assert registry.inspect(token.access_token) == (NS, record.account_id, ["admin"])
    assert token.expires_at == clock.now() + timedelta(seconds=600)
    service.reconcile(NS, [ADA])
    assert registry.inspect(token.access_token) is None
    assert [r.login for r in records.list(NS)] == ["ada"]


def test_a_role_change_makes_a_new_account_and_strangers_are_deleted(tmp_path: Path, clock: Any) -> None:
    service, registry, records = setup(tmp_path, clock)
    service.reconcile(NS, [GRACE])
    before = records.get(NS, GRACE.uid)
    registry.create_account(NS, "backdoor", "pw-backdoor", ["admin"], {})  # made by someone with admin scope
    service.reconcile(NS, [Member(NS, 3, "grace", "viewer", "outside")])
    after = records.get(NS, GRACE.uid)
    assert before is not None and after is not None and after.account_id != before.account_id
    assert after.scopes == ()
    assert [a.id for a in registry.list_accounts(NS)] == [after.account_id]


def test_a_token_makes_the_account_again_when_the_runtime_lost_it(tmp_path: Path, clock: Any) -> None:
    service, registry, records = setup(tmp_path, clock)
    service.reconcile(NS, [ADA])
    lost = records.get(NS, ADA.uid)
    assert lost is not None
    registry.delete_account(NS, lost.account_id)
    record, token = service.token(NS, ADA)
    assert record.account_id != lost.account_id
    assert registry.inspect(token.access_token) == (NS, record.account_id, ["admin"])
    clock.advance(timedelta(seconds=601))
    assert registry.inspect(token.access_token) is None  # short-lived
