"""Budgets on the single table: the budget (``NS#<ns>`` / ``BUDGET``), one claim per threshold crossed
in a period (``NS#<ns>`` / ``BUDGET#<YYYY-MM>#<threshold>``), and the namespace item's billing state
(``billing_state``, ``suspended_period``, ``suspended_at``). Every transition is one transaction with
its outbox event and a condition on the budget's version. Keys: docs/data-model.md."""

from __future__ import annotations

from typing import Any, cast

from pynamodb.attributes import BooleanAttribute, ListAttribute, NumberAttribute, UnicodeAttribute, UTCDateTimeAttribute

from chalicelib.adapters.dynamodb.base import BaseItem
from chalicelib.adapters.dynamodb.namespaces import NamespaceItem
from chalicelib.adapters.dynamodb.outbox import write_with_events
from chalicelib.domain.errors import ConditionFailedError, ConflictError, NotFoundError
from chalicelib.domain.events import Event
from chalicelib.domain.services.budgets import BillingState, BillingStateName, Budget

SUSPENDED = "suspended"


class BudgetItem(BaseItem, discriminator="Budget"):
    ns = UnicodeAttribute()
    monthly_limit = NumberAttribute()
    thresholds = ListAttribute(of=NumberAttribute, default=list)
    hard_cap = BooleanAttribute(default=False)
    updated_by = UnicodeAttribute()
    updated_at = UTCDateTimeAttribute()
    version = NumberAttribute(default=0)

    @staticmethod
    def key(ns: str) -> tuple[str, str]:
        return f"NS#{ns}", "BUDGET"

    def to_domain(self) -> Budget:
        return Budget(
            namespace=self.ns,
            monthly_limit=int(self.monthly_limit),
            thresholds=tuple(int(t) for t in cast(list[Any], self.thresholds or [])),
            hard_cap=bool(self.hard_cap),
            updated_at=self.updated_at,
            updated_by=self.updated_by,
            version=int(self.version),
        )


class BudgetCrossingItem(BaseItem, discriminator="BudgetCrossing"):
    ns = UnicodeAttribute()
    period = UnicodeAttribute()
    threshold = NumberAttribute()
    spent = NumberAttribute()
    monthly_limit = NumberAttribute()

    @staticmethod
    def prefix(period: str) -> str:
        return f"BUDGET#{period}#"

    @classmethod
    def key(cls, ns: str, period: str, threshold: int) -> tuple[str, str]:
        return f"NS#{ns}", f"{cls.prefix(period)}{threshold:03d}"


def _state(item: NamespaceItem) -> BillingState:
    state = cast(BillingStateName, item.billing_state or "ok")
    return BillingState(item.ns, item.plan, state, item.suspended_period if state == SUSPENDED else None)


class DynamoBudgetStore:
    def load(self, ns: str) -> tuple[BillingState, Budget | None]:
        namespace: NamespaceItem | None = None
        budget: BudgetItem | None = None
        for item in BaseItem.batch_get([NamespaceItem.key(ns), BudgetItem.key(ns)], consistent_read=True):
            if isinstance(item, NamespaceItem):
                namespace = item
            elif isinstance(item, BudgetItem):
                budget = item
        if namespace is None:
            raise NotFoundError(f"namespace {ns!r} not found", {"namespace": ns})
        return _state(namespace), budget.to_domain() if budget is not None else None

    def billing_state(self, ns: str) -> BillingState | None:
        try:
            item = NamespaceItem.get(
                *NamespaceItem.key(ns),
                consistent_read=True,
                attributes_to_get=["entity", "ns", "plan", "billing_state", "suspended_period"],
            )
        except NamespaceItem.DoesNotExist:
            return None
        return _state(item)

    def put(self, budget: Budget) -> Budget:
        pk, sk = BudgetItem.key(budget.namespace)
        item = BudgetItem(PK=pk, SK=sk)
        item.update(
            actions=[
                BudgetItem.entity.set(BudgetItem),
                BudgetItem.ns.set(budget.namespace),
                BudgetItem.monthly_limit.set(budget.monthly_limit),
                BudgetItem.thresholds.set(cast(Any, list(budget.thresholds))),
                BudgetItem.hard_cap.set(budget.hard_cap),
                BudgetItem.updated_by.set(budget.updated_by),
                BudgetItem.updated_at.set(budget.updated_at),
                BudgetItem.version.add(1),
            ]
        )
        return item.to_domain()

    def crossed(self, ns: str, period: str) -> list[int]:
        pk = f"NS#{ns}"
        return [
            int(i.threshold)
            for i in BaseItem.query(pk, BaseItem.SK.startswith(BudgetCrossingItem.prefix(period)), consistent_read=True)
            if isinstance(i, BudgetCrossingItem)
        ]

    def cross(self, budget: Budget, period: str, threshold: int, spent: int, event: Event) -> bool:
        pk, sk = BudgetCrossingItem.key(budget.namespace, period, threshold)
        claim = BudgetCrossingItem(
            PK=pk,
            SK=sk,
            ns=budget.namespace,
            period=period,
            threshold=threshold,
            spent=spent,
            monthly_limit=budget.monthly_limit,
            created_at=event.occurred_at,
        )
        return self._transition(
            budget, [event], puts=[(claim, BudgetCrossingItem.PK.does_not_exist())], what="the threshold's claim"
        )

    def suspend(self, budget: Budget, period: str, spent: int, event: Event) -> bool:
        pk, sk = NamespaceItem.key(budget.namespace)
        condition = NamespaceItem.PK.exists() & (
            NamespaceItem.billing_state.does_not_exist()
            | (NamespaceItem.billing_state != SUSPENDED)
            | (NamespaceItem.suspended_period != period)
        )
        actions = [
            NamespaceItem.billing_state.set(SUSPENDED),
            NamespaceItem.suspended_period.set(period),
            NamespaceItem.suspended_at.set(event.occurred_at),
        ]
        return self._transition(
            budget, [event], updates=[(NamespaceItem(PK=pk, SK=sk), actions, condition)], what="the suspension"
        )

    def resume(self, ns: str, suspended_period: str, budget: Budget | None, event: Event) -> bool:
        pk, sk = NamespaceItem.key(ns)
        condition = (NamespaceItem.billing_state == SUSPENDED) & (NamespaceItem.suspended_period == suspended_period)
        actions = [
            NamespaceItem.billing_state.set("ok"),
            NamespaceItem.suspended_period.remove(),
            NamespaceItem.suspended_at.remove(),
        ]
        return self._transition(
            budget, [event], updates=[(NamespaceItem(PK=pk, SK=sk), actions, condition)], what="the resumption"
        )

    def _transition(
        self,
        budget: Budget | None,
        events: list[Event],
        *,
        puts: list[tuple[Any, Any]] | None = None,
        updates: list[tuple[Any, list[Any], Any]] | None = None,
        what: str,
    ) -> bool:
        """One write with its events, and a check that the budget is still the one read. False when the
        write's own condition failed (done already). DynamoDB names failed items by position: PynamoDB
        sends the condition checks first, then deletes, puts, updates."""
        checks = []
        if budget is not None:
            pk, sk = BudgetItem.key(budget.namespace)
            checks.append((BudgetItem, pk, sk, BudgetItem.version == budget.version))
        try:
            write_with_events(puts or [], events, updates=updates or [], checks=checks)
        except ConditionFailedError as e:
            failed = e.details.get("failed", [])
            # the write's position: after the check; an update after the puts (the outbox items too)
            position = len(checks) if puts else len(checks) + len(events)
            if position in failed:
                return False
            raise ConflictError(
                f"the budget of {budget.namespace if budget else '?'} changed while {what} was written",
                {"namespace": budget.namespace if budget else None},
            ) from e
        return True
