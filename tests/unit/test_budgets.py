"""Budgets on the table (moto in-process): thresholds fire once per threshold and period, a hard cap
suspends deploys and a raised limit or a new period lifts it, each with its event in the same
transaction; an evaluation that read an older budget cannot undo a newer one."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib.adapters.catalog import load_catalog
from chalicelib.adapters.dynamodb.budgets import DynamoBudgetStore
from chalicelib.domain.errors import ConflictError, PaymentRequiredError, ValidationError
from chalicelib.domain.model import Namespace
from chalicelib.domain.rating import RatingService
from chalicelib.domain.services.budgets import BudgetService, validate_budget
from tests.unit.test_rating import Rollups, units

NS = "acme-backend"


def usage_costing(cents: int) -> dict[str, int]:
    """Team plan: service hours above the 1,000 included cost 0.8 c each, so 1.25 hours a cent."""
    return {"service_hours": units("1000") + cents * units("1.25")}


@pytest.fixture
def env(container: Any, clock: Any) -> Any:
    clock.set(datetime(2026, 11, 27, 12, tzinfo=UTC))
    container.stores.namespaces.create(
        Namespace(NS, "acme", 1, "backend", 2, "local", "team", "active", clock.now(), "user:ada"), []
    )
    ledger = Rollups({})
    store = DynamoBudgetStore()
    service = BudgetService(store, RatingService(ledger, load_catalog()), clock, "usd")  # type: ignore[arg-type]

    class Env:
        pass

    e = Env()
    e.container, e.clock, e.ledger, e.store, e.service = container, clock, ledger, store, service  # type: ignore[attr-defined]

    def spend(cents: int, period: str = "2026-11") -> None:
        ledger.quantities[f"{NS}:{period}"] = usage_costing(cents)

    e.spend = spend  # type: ignore[attr-defined]
    return e


def events(container: Any, kind: str | None = None) -> list[Any]:
    return [e for e in container.outbox.pending(100) if kind is None or e.type == kind]


def test_usage_costing_is_what_the_rating_says(env: Any) -> None:
    env.spend(2600)
    preview = env.service._rating.preview(NS, "team", env.clock.now())
    assert preview.rating.usage == 2600 and preview.rating.subtotal == 4600


def test_each_threshold_fires_once_per_period_with_its_event(env: Any) -> None:
    env.service.set(NS, 5000, [80, 50, 100], False, "user:ada")
    assert events(env.container) == []
    env.spend(2499)
    assert env.service.evaluate(NS, env.clock.now()).crossed == []
    env.spend(2500)  # 50 % exactly
    assert env.service.evaluate(NS, env.clock.now()).crossed == [50]
    assert env.service.evaluate(NS, env.clock.now()).crossed == []  # again: nothing new
    env.spend(4200)
    assert env.service.evaluate(NS, env.clock.now()).crossed == [80]
    crossed = events(env.container, "billing.threshold_crossed")
    assert [(e.data["threshold"], e.data["spent"]) for e in crossed] == [(50, 2500), (80, 4200)]
    assert crossed[0].namespace == NS
    assert crossed[0].data == {
        "period": "2026-11",
        "threshold": 50,
        "spent": 2500,
        "monthly_limit": 5000,
        "currency": "usd",
    }
    assert env.store.crossed(NS, "2026-11") == [50, 80]
    # no hard cap: 100 % is an alert, deploys go on
    env.spend(6000)
    assert env.service.evaluate(NS, env.clock.now()).crossed == [100]
    env.service.check_deploys(NS)
    assert events(env.container, "billing.suspended") == []


def test_a_new_period_arms_every_threshold_again(env: Any) -> None:
    env.service.set(NS, 1000, [50], False, "user:ada")
    env.spend(600)
    assert env.service.evaluate(NS, env.clock.now()).crossed == [50]
    env.clock.set(datetime(2026, 12, 20, tzinfo=UTC))
    env.spend(600, "2026-12")
    assert env.service.evaluate(NS, env.clock.now()).crossed == [50]
    assert [e.data["period"] for e in events(env.container, "billing.threshold_crossed")] == ["2026-11", "2026-12"]


def test_a_hard_cap_suspends_deploys_and_a_raised_limit_lifts_it_at_once(env: Any) -> None:
    env.service.set(NS, 5000, [50, 80, 100], True, "user:ada")
    env.spend(5000)
    result = env.service.evaluate(NS, env.clock.now())
    assert result.suspended and result.state == "suspended" and result.crossed == [50, 80, 100]
    with pytest.raises(PaymentRequiredError) as refused:
        env.service.check_deploys(NS)
    assert "budget" in refused.value.message and "2026-11" in refused.value.message
    assert refused.value.details["period"] == "2026-11" and refused.value.details["hard_cap"] is True
    suspended = events(env.container, "billing.suspended")
    assert [e.data for e in suspended] == [
        {"period": "2026-11", "spent": 5000, "monthly_limit": 5000, "currency": "usd"}
    ]
    assert not env.service.evaluate(NS, env.clock.now()).suspended  # once
    assert len(events(env.container, "billing.suspended")) == 1
    # raising the limit (PUT) evaluates at once: deploys resume
    status, evaluation = env.service.set(NS, 10000, [50, 80, 100], True, "user:ada")
    assert evaluation.resumed == "limit_raised" and status.state == "ok"
    env.service.check_deploys(NS)
    assert [e.data for e in events(env.container, "billing.resumed")] == [
        {"period": "2026-11", "reason": "limit_raised"}
    ]
    assert status.crossed == (50, 80, 100)  # once per threshold and period, whatever the limit becomes
    # reaching the new limit suspends again
    env.spend(10000)
    assert env.service.evaluate(NS, env.clock.now()).suspended
    assert len(events(env.container, "billing.suspended")) == 2


def test_turning_the_cap_off_lifts_the_suspension(env: Any) -> None:
    env.service.set(NS, 1000, [], True, "user:ada")
    env.spend(1500)
    assert env.service.evaluate(NS, env.clock.now()).suspended
    _, evaluation = env.service.set(NS, 1000, [], False, "user:ada")
    assert evaluation.resumed == "hard_cap_removed"
    env.service.check_deploys(NS)


def test_a_new_period_lifts_a_suspension_before_and_at_the_next_evaluation(env: Any) -> None:
    env.service.set(NS, 1000, [100], True, "user:ada")
    env.spend(1000)
    env.service.evaluate(NS, env.clock.now())
    with pytest.raises(PaymentRequiredError):
        env.service.check_deploys(NS)
    env.clock.set(datetime(2026, 12, 1, 0, 1, tzinfo=UTC))
    env.service.check_deploys(NS)  # the deploy check knows the period is over, before any evaluation
    result = env.service.evaluate(NS, env.clock.now())
    assert result.resumed == "new_period" and result.state == "ok"
    assert [e.data for e in events(env.container, "billing.resumed")] == [{"period": "2026-12", "reason": "new_period"}]
    assert env.store.billing_state(NS).state == "ok"


def test_an_evaluation_that_read_an_older_budget_cannot_undo_a_newer_one(env: Any) -> None:
    env.service.set(NS, 1000, [100], True, "user:ada")
    env.spend(1500)

    class RacingStore(DynamoBudgetStore):
        """The owner raises the limit between the evaluation's read and its write."""

        raced = False

        def load(self, ns: str) -> Any:
            loaded = super().load(ns)
            if not self.raced:
                self.raced = True
                other.set(NS, 100000, [100], True, "user:ada")
            return loaded

    other = env.service
    racing = BudgetService(RacingStore(), env.service._rating, env.clock, "usd")
    result = racing.evaluate(NS, env.clock.now())
    assert not result.suspended and result.state == "ok"  # judged again against the raised limit
    env.service.check_deploys(NS)
    assert events(env.container, "billing.suspended") == []
    assert events(env.container, "billing.threshold_crossed") == []
    # the store's own refusal: a transition written against an older budget writes nothing
    old = env.store.load(NS)[1]
    env.service.set(NS, 2000, [100], True, "user:ada")
    from chalicelib.domain.events import Event

    with pytest.raises(ConflictError):
        env.store.suspend(old, "2026-11", 1500, Event.create("billing.suspended", NS, env.clock.now(), {}))
    assert env.store.billing_state(NS).state == "ok" and events(env.container, "billing.suspended") == []


def test_evaluations_that_ran_at_once_send_each_threshold_and_the_suspension_once(env: Any) -> None:
    """Two evaluations that both read the crossings and the state before either wrote (as concurrent
    runs do): the claims' conditions let only one of each write through."""
    env.service.set(NS, 1000, [50, 100], True, "user:ada")
    env.spend(1200)
    state, budget = env.store.load(NS)

    class Stale(DynamoBudgetStore):
        def load(self, ns: str) -> Any:
            return state, budget  # what both read before either wrote

        def crossed(self, ns: str, period: str) -> list[int]:
            return []

    stale = BudgetService(Stale(), env.service._rating, env.clock, "usd")
    first, second = stale.evaluate(NS, env.clock.now()), stale.evaluate(NS, env.clock.now())
    assert first.crossed == [50, 100] and first.suspended
    assert second.crossed == [] and not second.suspended and second.state == "suspended"
    assert len(events(env.container, "billing.threshold_crossed")) == 2
    assert len(events(env.container, "billing.suspended")) == 1


def test_without_a_budget_nothing_happens_and_the_budget_answers_404(env: Any) -> None:
    from chalicelib.domain.errors import NotFoundError

    env.spend(999999)
    result = env.service.evaluate(NS, env.clock.now())
    assert result.crossed == [] and result.state == "ok"
    env.service.check_deploys(NS)
    with pytest.raises(NotFoundError):
        env.service.get(NS)
    assert events(env.container) == []


@pytest.mark.parametrize(
    ("limit", "thresholds", "hard_cap", "field"),
    [
        (0, [50], False, "monthly_limit"),
        (True, [50], False, "monthly_limit"),
        (12.5, [50], False, "monthly_limit"),
        (1000, [0], False, "thresholds.0"),
        (1000, [50, 101], False, "thresholds.1"),
        (1000, [50, 50], False, "thresholds"),
        (1000, list(range(1, 12)), False, "thresholds"),
        (1000, [True], False, "thresholds.0"),
        (1000, [50], 1, "hard_cap"),
    ],
)
def test_a_budget_is_validated_naming_the_field(limit: Any, thresholds: Any, hard_cap: Any, field: str) -> None:
    with pytest.raises(ValidationError) as e:
        validate_budget(limit, thresholds, hard_cap)
    assert field in [f["field"] for f in e.value.details["fields"]]
