"""Accounts, namespaces (with their team claims), members, API tokens, login windows and members'
runtime accounts on the single table. Keys: docs/data-model.md."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, cast

from pynamodb.attributes import NumberAttribute, UnicodeAttribute, UnicodeSetAttribute, UTCDateTimeAttribute
from pynamodb.exceptions import DeleteError, UpdateError

from chalicelib.adapters.dynamodb.base import BaseItem, condition_failed
from chalicelib.adapters.dynamodb.outbox import write_with_events
from chalicelib.domain.clock import epoch_seconds
from chalicelib.domain.errors import ConditionFailedError, ConflictError
from chalicelib.domain.events import Event
from chalicelib.domain.model import (
    Account,
    ApiToken,
    Member,
    MemberSource,
    Namespace,
    NamespaceStatus,
    Role,
    Scope,
)
from chalicelib.domain.stores import DeviceLogin, RuntimeAccountRecord

ACTIVE_NAMESPACES = "NAMESPACES#ACTIVE"
# Namespaces whose onboarding or offboarding runs, by the time they took that status: the sweeper's.
UNSETTLED_NAMESPACES = "NAMESPACES#UNSETTLED"
UNSETTLED: tuple[NamespaceStatus, ...] = ("provisioning", "deleting")


# ============================================================================ accounts


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


# ============================================================================ namespaces


class NamespaceItem(BaseItem, discriminator="Namespace"):
    ns = UnicodeAttribute()
    github_org = UnicodeAttribute()
    github_org_id = NumberAttribute()
    github_team = UnicodeAttribute()
    github_team_id = NumberAttribute()
    region = UnicodeAttribute()
    plan = UnicodeAttribute()
    status = UnicodeAttribute()
    created_by = UnicodeAttribute()
    attempt = NumberAttribute(default=1)
    failure_reason = UnicodeAttribute(null=True)
    cluster_id = UnicodeAttribute(null=True)
    customer_id = UnicodeAttribute(null=True)
    subscription_id = UnicodeAttribute(null=True)
    status_at = UTCDateTimeAttribute(null=True)
    # budgets (chalicelib/adapters/dynamodb/budgets.py): ok / suspended by a hard cap, for which period
    billing_state = UnicodeAttribute(null=True)
    suspended_period = UnicodeAttribute(null=True)
    suspended_at = UTCDateTimeAttribute(null=True)

    @staticmethod
    def key(ns: str) -> tuple[str, str]:
        return f"NS#{ns}", "NAMESPACE"

    @staticmethod
    def unsettled_sk(ns: str, since: datetime) -> str:
        return f"{since.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%S.%fZ')}#{ns}"

    def to_domain(self) -> Namespace:
        assert self.created_at is not None
        return Namespace(
            id=self.ns,
            github_org=self.github_org,
            github_org_id=int(self.github_org_id),
            github_team=self.github_team,
            github_team_id=int(self.github_team_id),
            region=self.region,
            plan=self.plan,
            status=cast(NamespaceStatus, self.status),
            created_at=self.created_at,
            created_by=self.created_by,
            attempt=int(self.attempt),
            failure_reason=self.failure_reason,
            cluster_id=self.cluster_id,
            customer_id=self.customer_id,
            subscription_id=self.subscription_id,
            status_at=self.status_at,
        )


class TeamClaimItem(BaseItem, discriminator="TeamClaim"):
    ns = UnicodeAttribute()

    @staticmethod
    def key(org_id: int, team_id: int) -> tuple[str, str]:
        return f"TEAM#{org_id}#{team_id}", "TEAM"


class BillingCustomerItem(BaseItem, discriminator="BillingCustomer"):
    ns = UnicodeAttribute()

    @staticmethod
    def key(customer_id: str) -> tuple[str, str]:
        return f"CUSTOMER#{customer_id}", "CUSTOMER"


# github_org and github_team are the login and slug GitHub is called with: refreshed on a rename (the
# namespace is found by the organization's and team's ids, which never change).
NAMESPACE_FIELDS = {
    "status",
    "status_at",
    "failure_reason",
    "cluster_id",
    "customer_id",
    "subscription_id",
    "attempt",
    "github_org",
    "github_team",
    "plan",
}


class DynamoNamespaceStore:
    def create(self, ns: Namespace, events: Sequence[Event], creator: Member | None = None) -> None:
        pk, sk = NamespaceItem.key(ns.id)
        item = NamespaceItem(
            PK=pk,
            SK=sk,
            ns=ns.id,
            github_org=ns.github_org,
            github_org_id=ns.github_org_id,
            github_team=ns.github_team,
            github_team_id=ns.github_team_id,
            region=ns.region,
            plan=ns.plan,
            status=ns.status,
            status_at=ns.status_at or ns.created_at,
            created_by=ns.created_by,
            attempt=ns.attempt,
            created_at=ns.created_at,
        )
        if ns.status in UNSETTLED:
            item.GSI1PK = UNSETTLED_NAMESPACES
            item.GSI1SK = NamespaceItem.unsettled_sk(ns.id, ns.status_at or ns.created_at)
        tpk, tsk = TeamClaimItem.key(ns.github_org_id, ns.github_team_id)
        claim = TeamClaimItem(
            PK=tpk,
            SK=tsk,
            GSI1PK=f"ORG#{ns.github_org_id}",
            GSI1SK=f"TEAM#{ns.github_team_id}",
            ns=ns.id,
            created_at=ns.created_at,
        )
        # The id is free when no namespace has it, or when the one that had it failed or was deleted.
        id_free = NamespaceItem.PK.does_not_exist() | NamespaceItem.status.is_in("failed", "deleted")
        try:
            puts: list[tuple[Any, Any]] = [(claim, TeamClaimItem.PK.does_not_exist()), (item, id_free)]
            if creator is not None:
                puts.append((MemberItem.of(creator), None))
            write_with_events(puts, events)
        except ConditionFailedError as e:
            if 0 in e.details.get("failed", []):
                raise ConflictError(
                    f"the team {ns.github_org}/{ns.github_team} is onboarded already",
                    {"github_org": ns.github_org, "github_team": ns.github_team},
                ) from e
            raise ConflictError(f"the namespace {ns.id} exists", {"namespace": ns.id}) from e

    def get(self, ns_id: str, *, consistent: bool = True) -> Namespace | None:
        try:
            return NamespaceItem.get(*NamespaceItem.key(ns_id), consistent_read=consistent).to_domain()
        except NamespaceItem.DoesNotExist:
            return None

    def get_many(self, ns_ids: Sequence[str]) -> list[Namespace]:
        if not ns_ids:
            return []
        items = NamespaceItem.batch_get([NamespaceItem.key(n) for n in ns_ids])
        return sorted((i.to_domain() for i in items), key=lambda n: n.id)

    def by_team(self, org_id: int, team_id: int) -> str | None:
        try:
            return TeamClaimItem.get(*TeamClaimItem.key(org_id, team_id), consistent_read=True).ns
        except TeamClaimItem.DoesNotExist:
            return None

    def by_org(self, org_id: int) -> list[str]:
        return sorted({i.ns for i in TeamClaimItem.gsi1.query(f"ORG#{org_id}") if isinstance(i, TeamClaimItem)})

    def active(self, limit: int, start: str | None = None) -> tuple[list[str], str | None]:
        last = None
        if start:
            pk, sk = NamespaceItem.key(start)
            last = {"PK": {"S": pk}, "SK": {"S": sk}, "GSI1PK": {"S": ACTIVE_NAMESPACES}, "GSI1SK": {"S": start}}
        result = NamespaceItem.gsi1.query(ACTIVE_NAMESPACES, limit=limit, last_evaluated_key=last)
        ids = [i.ns for i in result if isinstance(i, NamespaceItem)]
        more = result.last_evaluated_key
        return ids, (more["GSI1SK"]["S"] if more else None)

    def unsettled(self, before: datetime, limit: int) -> list[Namespace]:
        result = NamespaceItem.gsi1.query(
            UNSETTLED_NAMESPACES, NamespaceItem.GSI1SK < NamespaceItem.unsettled_sk("", before), limit=limit
        )
        return [i.to_domain() for i in result if isinstance(i, NamespaceItem)]

    def on_cluster(self, cluster_id: str) -> list[str]:
        """GSI2 ``CLUSTER#<cluster id>``: set with the namespace's ``cluster_id`` (and removed with it)."""
        return [
            i.ns
            for i in NamespaceItem.gsi2.query(f"CLUSTER#{cluster_id}", NamespaceItem.GSI2SK.startswith("NS#"))
            if isinstance(i, NamespaceItem)
        ]

    def update(
        self,
        ns_id: str,
        changes: dict[str, Any],
        *,
        expect_status: Sequence[NamespaceStatus] | None = None,
        events: Sequence[Event] = (),
    ) -> None:
        unknown = set(changes) - NAMESPACE_FIELDS
        if unknown:
            raise ValueError(f"not namespace fields: {sorted(unknown)}")
        pk, sk = NamespaceItem.key(ns_id)
        actions: list[Any] = []
        for name, value in changes.items():
            attr = getattr(NamespaceItem, name)
            actions.append(attr.remove() if value is None else attr.set(value))
        if changes.get("status") == "active":
            actions += [NamespaceItem.GSI1PK.set(ACTIVE_NAMESPACES), NamespaceItem.GSI1SK.set(ns_id)]
        elif changes.get("status") in UNSETTLED:
            if not changes.get("status_at"):
                raise ValueError(f"a namespace becoming {changes['status']} needs its status_at")
            actions += [
                NamespaceItem.GSI1PK.set(UNSETTLED_NAMESPACES),
                NamespaceItem.GSI1SK.set(NamespaceItem.unsettled_sk(ns_id, changes["status_at"])),
            ]
        elif "status" in changes:
            actions += [NamespaceItem.GSI1PK.remove(), NamespaceItem.GSI1SK.remove()]
        if "cluster_id" in changes:
            cid = changes["cluster_id"]
            actions += (
                [NamespaceItem.GSI2PK.set(f"CLUSTER#{cid}"), NamespaceItem.GSI2SK.set(f"NS#{ns_id}")]
                if cid
                else [NamespaceItem.GSI2PK.remove(), NamespaceItem.GSI2SK.remove()]
            )
        condition = NamespaceItem.PK.exists()
        if expect_status:
            condition &= NamespaceItem.status.is_in(*expect_status)
        try:
            write_with_events([], events, updates=[(NamespaceItem(PK=pk, SK=sk), actions, condition)])
        except ConditionFailedError as e:
            raise ConflictError(
                f"the namespace {ns_id} is not in a state that allows this",
                {"namespace": ns_id, "expected": list(expect_status or [])},
            ) from e

    def release_team(self, ns: Namespace) -> None:
        tpk, tsk = TeamClaimItem.key(ns.github_org_id, ns.github_team_id)
        try:
            TeamClaimItem(PK=tpk, SK=tsk).delete(condition=TeamClaimItem.ns == ns.id)
        except DeleteError as e:
            if not condition_failed(e):
                raise

    def set_billing_customer(self, ns_id: str, customer_id: str) -> None:
        pk, sk = BillingCustomerItem.key(customer_id)
        BillingCustomerItem(PK=pk, SK=sk, ns=ns_id, created_at=datetime.now(UTC)).save()

    def remove_billing_customer(self, customer_id: str) -> None:
        BillingCustomerItem(*BillingCustomerItem.key(customer_id)).delete()

    def by_billing_customer(self, customer_id: str) -> str | None:
        try:
            return str(BillingCustomerItem.get(*BillingCustomerItem.key(customer_id), consistent_read=True).ns)
        except BillingCustomerItem.DoesNotExist:
            return None


# ============================================================================ members


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


# ============================================================================ tokens


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


# ============================================================================ login windows


class DeviceCodeItem(BaseItem, discriminator="DeviceCode"):
    github_device_code = UnicodeAttribute()
    interval = NumberAttribute()
    last_polled_at = UTCDateTimeAttribute(null=True)

    @staticmethod
    def key(code_hash: str) -> tuple[str, str]:
        return f"DEVICE#{code_hash}", "DEVICE"


class OAuthStateItem(BaseItem, discriminator="OAuthState"):
    browser = UnicodeAttribute()

    @staticmethod
    def key(state_hash: str) -> tuple[str, str]:
        return f"OAUTHSTATE#{state_hash}", "OAUTHSTATE"


class SessionItem(BaseItem, discriminator="Session"):
    uid = NumberAttribute()
    login = UnicodeAttribute()

    @staticmethod
    def key(session_hash: str) -> tuple[str, str]:
        return f"SESSION#{session_hash}", "SESSION"


class DynamoLoginWindowStore:
    def put_device(self, code_hash: str, github_device_code: str, interval: int, expires_at: datetime) -> None:
        pk, sk = DeviceCodeItem.key(code_hash)
        DeviceCodeItem(
            PK=pk, SK=sk, github_device_code=github_device_code, interval=interval, expires_at=epoch_seconds(expires_at)
        ).save(condition=DeviceCodeItem.PK.does_not_exist())

    def poll_device(
        self, code_hash: str, now: datetime
    ) -> tuple[Literal["ok", "expired", "slow_down"], DeviceLogin | None]:
        item = DeviceCodeItem.get_live(*DeviceCodeItem.key(code_hash), now)
        if item is None:
            return "expired", None
        too_soon = item.last_polled_at is not None and now < item.last_polled_at + timedelta(seconds=int(item.interval))
        try:
            actions: list[Any] = [DeviceCodeItem.last_polled_at.set(now)]
            if too_soon:
                actions.append(DeviceCodeItem.interval.set(int(item.interval) + 5))
            condition = DeviceCodeItem.expires_at >= epoch_seconds(now)
            if item.last_polled_at is None:
                condition &= DeviceCodeItem.last_polled_at.does_not_exist()
            else:
                condition &= DeviceCodeItem.last_polled_at == item.last_polled_at
            item.update(actions=actions, condition=condition)
        except UpdateError as e:
            if condition_failed(e):
                return "slow_down", None  # a concurrent poll won
            raise
        login = DeviceLogin(
            item.github_device_code,
            int(item.interval),
            datetime.fromtimestamp(int(item.expires_at or 0), UTC),
            item.last_polled_at,
        )
        return ("slow_down" if too_soon else "ok"), login

    def slow_down_device(self, code_hash: str, interval: int) -> None:
        try:
            DeviceCodeItem(*DeviceCodeItem.key(code_hash)).update(
                actions=[DeviceCodeItem.interval.set(interval)],
                condition=DeviceCodeItem.PK.exists() & (DeviceCodeItem.interval < interval),
            )
        except UpdateError as e:
            if not condition_failed(e):
                raise

    def finish_device(self, code_hash: str) -> None:
        DeviceCodeItem(*DeviceCodeItem.key(code_hash)).delete()

    def put_state(self, state_hash: str, browser_hash: str, expires_at: datetime) -> None:
        pk, sk = OAuthStateItem.key(state_hash)
        OAuthStateItem(PK=pk, SK=sk, browser=browser_hash, expires_at=epoch_seconds(expires_at)).save(
            condition=OAuthStateItem.PK.does_not_exist()
        )

    def consume_state(self, state_hash: str, browser_hash: str, now: datetime) -> bool:
        try:
            OAuthStateItem(*OAuthStateItem.key(state_hash)).delete(
                condition=OAuthStateItem.PK.exists()
                & (OAuthStateItem.expires_at >= epoch_seconds(now))
                & (OAuthStateItem.browser == browser_hash)
            )
        except DeleteError as e:
            if condition_failed(e):
                return False
            raise
        return True

    def put_session(self, session_hash: str, uid: int, login: str, expires_at: datetime) -> None:
        pk, sk = SessionItem.key(session_hash)
        SessionItem(
            PK=pk,
            SK=sk,
            GSI1PK=f"USER#{uid}",
            GSI1SK=f"SESSION#{session_hash[:16]}",
            uid=uid,
            login=login,
            expires_at=epoch_seconds(expires_at),
        ).save(condition=SessionItem.PK.does_not_exist())

    def get_session(self, session_hash: str, now: datetime) -> tuple[int, str] | None:
        item = SessionItem.get_live(*SessionItem.key(session_hash), now)
        return None if item is None else (int(item.uid), item.login)

    def delete_session(self, session_hash: str) -> None:
        SessionItem(*SessionItem.key(session_hash)).delete()


# ============================================================================ runtime accounts


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
