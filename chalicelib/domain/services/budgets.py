"""Budgets: a monthly limit on a namespace's usage charges, threshold alerts, and an optional hard cap
that suspends new deploys.

- A budget caps the **usage charges** of the period (the metered line items of the rating), not the
  plan's base price, which is known in advance.
- ``evaluate(ns, now)`` rates the current period and compares: each threshold (a percentage of the
  limit) that the spend has reached is claimed once per period, with its ``billing.threshold_crossed``
  event in the same transaction, so it fires once however often (or concurrently) evaluation runs.
  Thresholds already crossed in a period stay crossed when the limit changes.
- With ``hard_cap``, a spend that reaches 100 % of the limit suspends new deploys (the namespace's
  ``billing_state`` becomes ``suspended`` for the period, with ``billing.suspended``): deploys, rollbacks,
  config changes that redeploy and pushes are refused with 402 ``payment_required``. Raising the limit
  (or turning the cap off) lifts it at once (the budget's PUT evaluates), and so does a new period
  (the deploy check already lets a suspension of a past period through; the next evaluation records
  it), each with ``billing.resumed``.
- Every transition is conditional on the budget's version that was read, so an evaluation that read
  an older budget than a concurrent change cannot undo it: it evaluates again.

The metering run calls ``evaluate`` hourly for each namespace with usage; the budget's PUT calls it
once the budget is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from chalicelib.domain.clock import Clock
from chalicelib.domain.errors import ConflictError, NotFoundError, PaymentRequiredError, ValidationError
from chalicelib.domain.events import Event
from chalicelib.domain.metering import period_bounds, period_of
from chalicelib.domain.rating import Preview, RatingService
from chalicelib.domain.stores import BudgetStore

BillingStateName = Literal["ok", "suspended"]
MAX_THRESHOLDS = 10
MAX_LIMIT = 10**11  # cents: a billion dollars, far above any real budget
EVALUATE_ATTEMPTS = 3


@dataclass(frozen=True)
class Budget:
    namespace: str
    monthly_limit: int  # cents
    thresholds: tuple[int, ...]  # percentages of the limit, rising
    hard_cap: bool
    updated_at: datetime
    updated_by: str
    version: int = 0


@dataclass(frozen=True)
class BillingState:
    """The namespace's billing attributes: its plan, and whether deploys are suspended (for which period)."""

    namespace: str
    plan: str
    state: BillingStateName = "ok"
    suspended_period: str | None = None

    def suspended_in(self, period: str) -> bool:
        return self.state == "suspended" and self.suspended_period == period


@dataclass(frozen=True)
class BudgetStatus:
    """A budget against the current period's spend."""

    budget: Budget
    period: str
    spent: int  # cents: the period's usage charges so far
    crossed: tuple[int, ...]
    state: BillingStateName

    @property
    def percent(self) -> float:
        return round(self.spent * 100 / self.budget.monthly_limit, 2)


@dataclass(frozen=True)
class Overview:
    namespace: str
    preview: Preview
    budget: BudgetStatus | None
    state: BillingStateName


@dataclass
class Evaluation:
    namespace: str
    period: str
    spent: int
    crossed: list[int] = field(default_factory=list)  # thresholds claimed by this evaluation
    suspended: bool = False
    resumed: str | None = None  # the reason, when this evaluation lifted a suspension
    state: BillingStateName = "ok"


def validate_budget(monthly_limit: int, thresholds: Sequence[int], hard_cap: bool) -> tuple[int, ...]:
    """422 naming the field: a positive whole number of cents; thresholds 1-100, unique, at most 10."""
    fields = []
    if isinstance(monthly_limit, bool) or not isinstance(monthly_limit, int) or not 0 < monthly_limit <= MAX_LIMIT:
        fields.append({"field": "monthly_limit", "message": f"a whole number of cents between 1 and {MAX_LIMIT}"})
    if len(thresholds) > MAX_THRESHOLDS:
        fields.append({"field": "thresholds", "message": f"at most {MAX_THRESHOLDS}"})
    for i, t in enumerate(thresholds):
        if isinstance(t, bool) or not isinstance(t, int) or not 1 <= t <= 100:
            fields.append({"field": f"thresholds.{i}", "message": "a whole percentage between 1 and 100"})
    if len(set(thresholds)) != len(thresholds):
        fields.append({"field": "thresholds", "message": "each threshold once"})
    if not isinstance(hard_cap, bool):
        fields.append({"field": "hard_cap", "message": "true or false"})
    if fields:
        raise ValidationError("the budget is not valid", {"fields": fields})
    return tuple(sorted(thresholds))


class BudgetService:
    def __init__(self, store: BudgetStore, rating: RatingService, clock: Clock, currency: str) -> None:
        self._store = store
        self._rating = rating
        self._clock = clock
        self._currency = currency

    # ------------------------------------------------------------------ the API

    def overview(self, ns: str) -> Overview:
        """The current period's invoice preview, forecast and budget (three requests: the namespace and
        its budget, the rollups, the period's crossings)."""
        state, budget = self._store.load(ns)
        preview = self._rating.preview(ns, state.plan, self._clock.now())
        status = self.status(budget, state, preview) if budget is not None else None
        return Overview(ns, preview, status, "suspended" if state.suspended_in(preview.rating.period) else "ok")

    def get(self, ns: str) -> BudgetStatus:
        state, budget = self._store.load(ns)
        if budget is None:
            raise NotFoundError(
                f"no budget is set for {ns}; set one with PUT /v1/namespaces/{ns}/billing/budget",
                {"resource": "budget"},
            )
        now = self._clock.now()
        return self.status(budget, state, self._rating.preview(ns, state.plan, now))

    def status(self, budget: Budget, state: BillingState, preview: Preview) -> BudgetStatus:
        period = preview.rating.period
        return BudgetStatus(
            budget=budget,
            period=period,
            spent=preview.rating.usage,
            crossed=tuple(sorted(self._store.crossed(budget.namespace, period))),
            state="suspended" if state.suspended_in(period) else "ok",
        )

    def set(
        self, ns: str, monthly_limit: int, thresholds: Sequence[int], hard_cap: bool, actor: str
    ) -> tuple[BudgetStatus, Evaluation]:
        """Write the budget, then evaluate it at once (a raised limit lifts a suspension now)."""
        clean = validate_budget(monthly_limit, thresholds, hard_cap)
        now = self._clock.now()
        budget = self._store.put(Budget(ns, monthly_limit, clean, hard_cap, now, actor))
        evaluation = self.evaluate(ns, now)
        return (
            BudgetStatus(
                budget=budget,
                period=evaluation.period,
                spent=evaluation.spent,
                crossed=tuple(sorted(self._store.crossed(ns, evaluation.period))),
                state=evaluation.state,
            ),
            evaluation,
        )

    # ------------------------------------------------------------------ the deploy check

    def check_deploys(self, ns: str) -> None:
        """PaymentRequiredError when the namespace's hard cap suspended deploys for the current period.
        One read of the namespace item; a suspension of a past period no longer counts."""
        state = self._store.billing_state(ns)
        if state is None:
            return
        period = period_of(self._clock.now())
        if state.suspended_in(period):
            _, end = period_bounds(period)
            raise PaymentRequiredError(
                f"deploys to {ns} are suspended: the namespace's monthly budget (hard cap) is spent for "
                f"{period}; an admin can raise its limit (platform budget set), or deploys resume on "
                f"{end.date().isoformat()}",
                {
                    "namespace": ns,
                    "budget": "monthly",
                    "hard_cap": True,
                    "period": period,
                    "resumes_at": end.isoformat(),
                },
            )

    # ------------------------------------------------------------------ evaluation

    def evaluate(self, ns: str, now: datetime) -> Evaluation:
        """Rate the current period and apply the budget: threshold events, suspension, resumption.
        Idempotent; safe to run concurrently."""
        for attempt in range(EVALUATE_ATTEMPTS):
            try:
                return self._evaluate(ns, now)
            except ConflictError:  # the budget changed while this ran: evaluate against the new one
                if attempt == EVALUATE_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    def _evaluate(self, ns: str, now: datetime) -> Evaluation:
        state, budget = self._store.load(ns)
        period = period_of(now)
        preview = self._rating.preview(ns, state.plan, now, period)
        spent = preview.rating.usage
        result = Evaluation(ns, period, spent, state="suspended" if state.suspended_in(period) else "ok")
        if state.state == "suspended" and state.suspended_period is not None and state.suspended_period != period:
            # a new period lifts a suspension: record it before judging the new period
            event = Event.create("billing.resumed", ns, now, {"period": period, "reason": "new_period"})
            if self._store.resume(ns, state.suspended_period, None, event):
                result.resumed = "new_period"
        if budget is None:
            return result
        claimed = set(self._store.crossed(ns, period))
        for threshold in budget.thresholds:
            if threshold in claimed or spent * 100 < budget.monthly_limit * threshold:
                continue
            event = Event.create(
                "billing.threshold_crossed",
                ns,
                now,
                {
                    "period": period,
                    "threshold": threshold,
                    "spent": spent,
                    "monthly_limit": budget.monthly_limit,
                    "currency": self._currency,
                },
            )
            if self._store.cross(budget, period, threshold, spent, event):
                result.crossed.append(threshold)
        over = budget.hard_cap and spent >= budget.monthly_limit
        if over and not state.suspended_in(period):
            event = Event.create(
                "billing.suspended",
                ns,
                now,
                {"period": period, "spent": spent, "monthly_limit": budget.monthly_limit, "currency": self._currency},
            )
            if self._store.suspend(budget, period, spent, event):
                result.suspended = True
            result.state = "suspended"
        elif not over and state.suspended_in(period):
            reason = "hard_cap_removed" if not budget.hard_cap else "limit_raised"
            event = Event.create("billing.resumed", ns, now, {"period": period, "reason": reason})
            if self._store.resume(ns, period, budget, event):
                result.resumed = reason
            result.state = "ok"
        return result
