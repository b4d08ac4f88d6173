"""The in-memory stand-ins keep the contracts of the ports they implement."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.adapters.memory.billing import InMemoryBilling
from chalicelib.adapters.memory.github import InMemoryGitHub
from chalicelib.adapters.memory.runtime import InMemoryRuntime
from chalicelib.domain.errors import ConflictError, NotFoundError, UnauthenticatedError
from chalicelib.domain.ports import MeterEvent, ResourceQuota, ServiceSpec


def test_runtime_namespaces_own_their_quotas_policies_and_services(clock: Any) -> None:
    rt = InMemoryRuntime(clock)
    rt.create_namespace("acme-backend")
    with pytest.raises(ConflictError):
        rt.create_namespace("acme-backend")
    q = ResourceQuota(memory_mib=1024, cpu_millicores=1000, ephemeral_storage_mib=2048)
    rt.set_quota("acme-backend", "default", q, q)
    rt.set_network_policy("acme-backend", "default", {"owner": "acme-backend"})
    rt.create_service("acme-backend", ServiceSpec(name="api", version="abc123", source="git@x"))
    assert [(s.name, s.version, s.status) for s in rt.read_services("acme-backend")] == [("api", "abc123", "running")]
    assert [r.message for r in rt.logs("acme-backend", "api")] == ["started api abc123"]
    with pytest.raises(NotFoundError):
        rt.read_services("acme-frontend")
    rt.delete_service("acme-backend", "api", "abc123")
    assert rt.read_services("acme-backend") == []
    rt.delete_namespace("acme-backend")
    with pytest.raises(NotFoundError):
        rt.create_service("acme-backend", ServiceSpec(name="api", version="1", source="x"))


def test_billing_idempotency_keys_answer_the_same_object_and_meter_events_dedupe(clock: Any) -> None:
    b = InMemoryBilling()
    c1 = b.create_customer("ns-1", None, idempotency_key="onboard-ns-1-customer")
    assert b.create_customer("ns-1", None, idempotency_key="onboard-ns-1-customer") == c1
    assert len(b.customers) == 1
    s1 = b.create_subscription(c1, "starter", idempotency_key="onboard-ns-1-sub")
    assert b.create_subscription(c1, "starter", idempotency_key="onboard-ns-1-sub") == s1
    ev = MeterEvent("ns-1:requests:2026112712", "requests", c1, 40, clock.now())
    b.report_meter_event(ev)
    b.report_meter_event(ev)
    assert list(b.meter_events) == ["ns-1:requests:2026112712"]
    b.cancel_subscription(s1, at_period_end=False)
    with pytest.raises(ConflictError):
        b.cancel_subscription(s1)
    with pytest.raises(NotFoundError):
        b.create_subscription("cus_missing", "starter", idempotency_key="k")


def test_github_teams_and_tokens() -> None:
    gh = InMemoryGitHub()
    gh.add_user("ada", token="gho_ada")
    gh.add_org_member("acme", "ada", "admin")
    gh.add_team_member("acme", "backend", "linus", "maintainer")
    assert gh.get_user("gho_ada").login == "ada"
    with pytest.raises(UnauthenticatedError):
        gh.get_user("gho_wrong")
    assert gh.org_role("acme", "ada") == "admin" and gh.org_role("acme", "linus") == "member"
    assert gh.team_exists("acme", "backend") and not gh.team_exists("acme", "frontend")
    assert [(m.login, m.role) for m in gh.team_members("acme", "backend")] == [("linus", "maintainer")]
    with pytest.raises(NotFoundError):
        gh.team_members("acme", "frontend")
