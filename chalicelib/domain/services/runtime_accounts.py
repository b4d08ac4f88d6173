"""Members' runtime accounts: one account per member in the namespace's issuer on its cluster's
runtime (micro's auth service), with scopes by role, kept in step with the membership.

- Scopes (micro v3.19.0, ``util/auth/namespace/namespace.go``): the runtime's writes and logs
  (``Runtime.Create/Update/Delete/Logs``) need ``AuthorizeAdmin``, a ``user`` with scope ``admin`` in its
  own issuer; ``Runtime.Read`` needs any user of the issuer. So owners, admins and members (who may
  deploy) get ``admin``; viewers get no scope: they read, nothing else.
- ``reconcile`` runs wherever membership is synced (onboarding, webhooks, the daily reconcile, viewers
  added or removed): an account whose member is gone, or whose role changed (micro cannot change an
  account's scopes), is deleted (and its outstanding tokens blocked, ``RuntimeAuthPort.delete_account``);
  a member without one gets a new one. User accounts in the issuer that the platform does not know
  (made by someone with ``admin`` scope, or left by a create whose record was never written) are
  deleted too: the issuer is the platform's.
- A member's secret is random, encrypted at rest (the encryption context names the namespace and the
  account) and never shown; ``token`` mints a short-lived token with it (``TOKEN_TTL_SECONDS``). An
  account id is ``<login>-<8 hex>``, new for every account made, so an id blocked at a removal never
  comes back to life.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from chalicelib.domain.clock import Clock
from chalicelib.domain.errors import ConflictError, NotFoundError, ValidationError
from chalicelib.domain.model import Member, Role
from chalicelib.domain.ports import EncryptorPort, RuntimeAuthPort, RuntimeToken
from chalicelib.domain.redaction import register_secret
from chalicelib.domain.stores import RuntimeAccountRecord, RuntimeAccountStore

SCOPES: dict[Role, tuple[str, ...]] = {"owner": ("admin",), "admin": ("admin",), "member": ("admin",), "viewer": ()}
TOKEN_TTL_SECONDS = 3600
PLATFORM_MARK = "member"  # metadata["platform"] of the accounts the platform makes


@dataclass(frozen=True)
class ReconcileResult:
    created: list[str]
    deleted: list[str]


class RuntimeAccountService:
    def __init__(
        self,
        store: RuntimeAccountStore,
        auth_of: Callable[[str], RuntimeAuthPort],
        encryptor: EncryptorPort,
        clock: Clock,
        ttl_seconds: int = TOKEN_TTL_SECONDS,
    ) -> None:
        self._store = store
        self._auth_of = auth_of
        self._encryptor = encryptor
        self._clock = clock
        self._ttl = ttl_seconds

    def reconcile(self, ns_id: str, members: Sequence[Member]) -> ReconcileResult:
        """One account per member, with its role's scopes; no other user account in the issuer."""
        auth = self._auth_of(ns_id)
        want = {m.uid: m for m in members}
        created: list[str] = []
        deleted: list[str] = []
        kept: dict[int, RuntimeAccountRecord] = {}
        for record in self._store.list(ns_id):
            member = want.get(record.uid)
            if member is not None and record.scopes == SCOPES[member.role]:
                kept[record.uid] = record
                continue
            auth.delete_account(ns_id, record.account_id)
            self._store.delete(ns_id, record.uid)
            deleted.append(record.account_id)
        known = {r.account_id for r in kept.values()}
        for account in auth.list_accounts(ns_id):
            if account.id not in known and account.type == "user":
                auth.delete_account(ns_id, account.id)
                deleted.append(account.id)
        for uid, member in sorted(want.items()):
            if uid not in kept:
                created.append(self._create(auth, ns_id, member).account_id)
        self._store.delete_legacy_credential(ns_id)
        return ReconcileResult(created, deleted)

    def remove_all(self, ns_id: str) -> list[str]:
        """Every member's account deleted (offboarding, a failed onboarding's compensation)."""
        auth = self._auth_of(ns_id)
        deleted = []
        for record in self._store.list(ns_id):
            auth.delete_account(ns_id, record.account_id)
            self._store.delete(ns_id, record.uid)
            deleted.append(record.account_id)
        self._store.delete_legacy_credential(ns_id)
        return deleted

    def forget_all(self, ns_id: str) -> None:
        """Drop the platform's records only (the runtime is gone with the namespace, or unreachable)."""
        for record in self._store.list(ns_id):
            self._store.delete(ns_id, record.uid)
        self._store.delete_legacy_credential(ns_id)

    def token(self, ns_id: str, member: Member) -> tuple[RuntimeAccountRecord, RuntimeToken]:
        """A short-lived token of the member's account (made now if the member has none yet, or one
        with other scopes; made again if the runtime no longer knows it)."""
        auth = self._auth_of(ns_id)
        record = self._store.get(ns_id, member.uid)
        if record is not None and record.scopes != SCOPES[member.role]:
            auth.delete_account(ns_id, record.account_id)
            self._store.delete(ns_id, member.uid)
            record = None
        if record is None:
            record = self._create(auth, ns_id, member)
        try:
            return record, auth.token(ns_id, record.account_id, self._secret(record), self._ttl)
        except (NotFoundError, ValidationError):  # deleted on the runtime behind the platform's back
            self._store.delete(ns_id, member.uid)
            record = self._create(auth, ns_id, member)
            return record, auth.token(ns_id, record.account_id, self._secret(record), self._ttl)

    def _secret(self, record: RuntimeAccountRecord) -> str:
        secret = self._encryptor.decrypt(record.ciphertext, _context(record.namespace, record.account_id))
        register_secret(secret)
        return secret

    def _create(self, auth: RuntimeAuthPort, ns_id: str, member: Member) -> RuntimeAccountRecord:
        secret = secrets.token_urlsafe(32)
        register_secret(secret)
        scopes = SCOPES[member.role]
        metadata = {"platform": PLATFORM_MARK, "login": member.login, "uid": str(member.uid), "role": member.role}
        for _ in range(3):
            account_id = f"{member.login.lower()}-{secrets.token_hex(4)}"
            try:
                auth.create_account(ns_id, account_id, secret, scopes, metadata)
                break
            except ConflictError:
                continue
        else:
            raise ConflictError(f"no free runtime account id for {member.login}", {"login": member.login})
        record = RuntimeAccountRecord(
            namespace=ns_id,
            uid=member.uid,
            login=member.login,
            account_id=account_id,
            scopes=scopes,
            ciphertext=self._encryptor.encrypt(secret, _context(ns_id, account_id)),
            created_at=self._clock.now(),
        )
        self._store.put(record)
        return record


def _context(ns_id: str, account_id: str) -> dict[str, str]:
    return {"namespace": ns_id, "runtime_account": account_id}
