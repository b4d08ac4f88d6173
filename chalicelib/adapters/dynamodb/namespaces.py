"""Namespaces on the single table, with their team claims, their billing customers, and the indexes of the
active and the unsettled ones (onboarding or offboarding running). Keys: docs/data-model.md."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from pynamodb.attributes import NumberAttribute, UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.exceptions import DeleteError

from chalicelib.adapters.dynamodb.base import BaseItem, condition_failed
from chalicelib.adapters.dynamodb.members import MemberItem
from chalicelib.adapters.dynamodb.outbox import write_with_events
from chalicelib.domain.errors import ConditionFailedError, ConflictError
from chalicelib.domain.events import Event
from chalicelib.domain.model import Member, Namespace, NamespaceStatus

ACTIVE_NAMESPACES = "NAMESPACES#ACTIVE"
# Namespaces whose onboarding or offboarding runs, by the time they took that status: the sweeper's.
UNSETTLED_NAMESPACES = "NAMESPACES#UNSETTLED"
UNSETTLED: tuple[NamespaceStatus, ...] = ("provisioning", "deleting")


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


if TYPE_CHECKING:  # the protocol it implements, checked by mypy
    from chalicelib.domain.stores import NamespaceStore

    _checked: NamespaceStore = DynamoNamespaceStore()
