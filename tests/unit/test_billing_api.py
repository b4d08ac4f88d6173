"""The billing routes through the app (Chalice's test client, moto in-process): the invoice preview
to the cent, who may see it, the budget's strict validation, and a hard cap that makes deploys,
rollbacks and config changes that redeploy answer 402 with nothing written."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib.domain.model import Account, Member, Namespace
from tests.unit.test_rating import Rollups, units

NS = "acme-backend"
USERS = {"ada": (1, "owner"), "linus": (2, "admin"), "grace": (3, "member"), "ops": (4, "viewer")}


@pytest.fixture
def api(container: Any, client: Any, clock: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("PLATFORM_LOCAL_KEY", "a local key for the config vars")
    clock.set(datetime(2026, 11, 10, tzinfo=UTC))  # 216 of November's 720 hours
    s = container.stores
    s.namespaces.create(Namespace(NS, "acme", 1, "backend", 2, "local", "team", "active", clock.now(), "user:ada"), [])
    s.members.apply(NS, [Member(NS, uid, login, role, "team") for login, (uid, role) in USERS.items()], [], [])
    ledger = Rollups({})
    container.__dict__["usage_ledger"] = ledger  # the ledger's rollups, in memory
    tokens = {login: container.auth.mint_login_token(Account(uid, login))[0] for login, (uid, _) in USERS.items()}

    class Api:
        def __init__(self) -> None:
            self.ledger, self.container, self.clock = ledger, container, clock

        def __call__(self, method: str, path: str, body: Any = None, who: str = "ada") -> Any:
            headers = {"Authorization": f"Bearer {tokens[who]}"}
            if body is not None:
                headers["Content-Type"] = "application/json"
            r = client.http.request(method, path, headers=headers, body=json.dumps(body) if body is not None else b"")
            r.data = json.loads(r.body) if r.body else None
            return r

        def use(self, **quantities: str) -> None:
            ledger.quantities[f"{NS}:2026-11"] = {k: units(v) for k, v in quantities.items()}

    return Api()


def test_the_billing_view_is_the_hand_computed_invoice_preview(api: Any) -> None:
    api.use(service_hours="432", requests="6000000", seats="12")
    r = api("GET", f"/v1/namespaces/{NS}/billing")
    assert r.status_code == 200, r.body
    b = r.data
    assert (b["plan"], b["currency"], b["period"]["id"]) == ("team", "usd", "2026-11")
    assert b["period"]["start"].startswith("2026-11-01T00:00:00") and b["period"]["end"].startswith("2026-12-01")
    items = {(i["meter"] or "base"): i for i in b["line_items"]}
    assert {k: v["amount"] for k, v in items.items()} == {"base": 2000, "service_hours": 0, "requests": 0, "seats": 800}
    assert items["seats"]["quantity"] == "12" and items["seats"]["unit"] == "seat"
    assert items["seats"]["tiers"] == [
        {"up_to": "10", "unit_amount_decimal": "0", "flat_amount": 0, "quantity": "10", "amount": "0"},
        {"up_to": None, "unit_amount_decimal": "400", "flat_amount": 0, "quantity": "2", "amount": "800"},
    ]
    assert (b["subtotal"], b["usage"]) == (2800, 800)
    # forecast x 720/216: 1,440 h (440 over x 0.8 = 352), 20M requests (10M over x 0.00004 = 400), seats as is
    assert b["forecast"]["method"] == "run_rate" and b["forecast"]["elapsed_hours"] == "216"
    assert (b["forecast"]["subtotal"], b["forecast"]["usage"]) == (3552, 1552)
    assert {i["meter"]: i["quantity"] for i in b["forecast"]["line_items"]} == {
        "service_hours": "1440",
        "requests": "20000000",
        "seats": "12",
    }
    assert b["budget"] is None and b["state"] == "ok"


def test_money_is_for_admins_and_owners(api: Any) -> None:
    assert api("GET", f"/v1/namespaces/{NS}/billing", who="linus").status_code == 200
    for who in ("grace", "ops"):
        r = api("GET", f"/v1/namespaces/{NS}/billing", who=who)
        assert r.status_code == 403 and r.data["error"]["details"]["needed_role"] == "admin"
        assert api("PUT", f"/v1/namespaces/{NS}/billing/budget", {"monthly_limit": 100}, who=who).status_code == 403


INVALID_BUDGETS = [
    ({"monthly_limit": True}, "monthly_limit"),  # a boolean is not a number of cents
    ({"monthly_limit": 50.5}, "monthly_limit"),
    ({"monthly_limit": 50.0}, "monthly_limit"),  # nor is a float, even a whole one
    ({"monthly_limit": "5000"}, "monthly_limit"),
    ({"monthly_limit": 0}, "monthly_limit"),
    ({}, "monthly_limit"),
    ({"monthly_limit": 5000, "thresholds": [50, 50]}, "thresholds"),
    ({"monthly_limit": 5000, "thresholds": [0]}, "thresholds"),
    ({"monthly_limit": 5000, "thresholds": [True]}, "thresholds.0"),
    ({"monthly_limit": 5000, "thresholds": [50.0]}, "thresholds.0"),
    ({"monthly_limit": 5000, "thresholds": list(range(1, 12))}, "thresholds"),
    ({"monthly_limit": 5000, "hard_cap": "yes"}, "hard_cap"),
    ({"monthly_limit": 5000, "hard_cap": 1}, "hard_cap"),
    ({"monthly_limit": 5000, "currency": "eur"}, "currency"),
]


def test_a_budget_is_refused_naming_the_field_and_nothing_is_written(api: Any) -> None:
    for body, field in INVALID_BUDGETS:
        r = api("PUT", f"/v1/namespaces/{NS}/billing/budget", body)
        assert r.status_code == 422, (body, r.body)
        assert field in [f["field"] for f in r.data["error"]["details"]["fields"]], (body, r.data)
    missing = api("GET", f"/v1/namespaces/{NS}/billing/budget")
    assert missing.status_code == 404 and missing.data["error"]["details"] == {"resource": "budget"}


def test_a_budget_is_set_shown_and_audited(api: Any) -> None:
    api.use(service_hours="1100")  # 100 h over x 0.8 = 80 c of usage
    r = api("PUT", f"/v1/namespaces/{NS}/billing/budget", {"monthly_limit": 100, "thresholds": [80, 50]})
    assert r.status_code == 200, r.body
    assert r.data | {"updated_at": None} == {
        "monthly_limit": 100,
        "thresholds": [50, 80],
        "hard_cap": False,
        "updated_at": None,
        "updated_by": "user:ada",
        "period": "2026-11",
        "spent": 80,
        "percent": 80.0,
        "crossed": [50, 80],
        "state": "ok",
    }
    assert api("GET", f"/v1/namespaces/{NS}/billing/budget").data["crossed"] == [50, 80]
    assert api("GET", f"/v1/namespaces/{NS}/billing").data["budget"]["spent"] == 80
    crossed = [e.data["threshold"] for e in api.container.outbox.pending(100) if e.type == "billing.threshold_crossed"]
    assert crossed == [50, 80]
    audit = api.container.audit.query(NS, since=None, actor=None, action="put_budget", limit=10)
    assert [(a.actor, a.outcome) for a in audit] == [("user:ada", "ok")]


def test_a_hard_cap_makes_deploys_rollbacks_and_redeploying_config_changes_answer_402(api: Any) -> None:
    from chalicelib.adapters.dynamodb.deploys import DynamoDeployStore
    from chalicelib.domain.services.deploys import Service

    store = DynamoDeployStore()
    running = Service(
        NS, "hello", "running", "https://github.com/acme/hello.git", "01HX0000000000000000000001", "a" * 40
    )
    store.save_service(running)
    store.save_service(Service(NS, "fresh", "new", "https://github.com/acme/fresh.git"))  # never deployed
    api.use(service_hours="1200")  # 160 c of usage
    r = api("PUT", f"/v1/namespaces/{NS}/billing/budget", {"monthly_limit": 150, "hard_cap": True})
    assert r.status_code == 200 and r.data["state"] == "suspended"  # evaluated at once
    assert api("GET", f"/v1/namespaces/{NS}/billing").data["state"] == "suspended"

    def refused(r: Any) -> None:
        assert r.status_code == 402, r.body
        err = r.data["error"]
        assert err["code"] == "payment_required" and "budget (hard cap)" in err["message"]
        assert err["details"]["period"] == "2026-11" and err["details"]["budget"] == "monthly"

    svc = f"/v1/namespaces/{NS}/services"
    refused(
        api("POST", f"{svc}/api/deployments", {"source": "https://github.com/acme/api.git", "ref": "main"}, "grace")
    )
    assert store.get_service(NS, "api") is None  # nothing written
    refused(api("POST", f"{svc}/hello/rollback", {}, "grace"))
    assert store.get_service(NS, "hello").auto_deploy_paused is False
    refused(api("PUT", f"{svc}/hello/config", {"vars": {"GREETING": {"value": "hola"}}}, "grace"))
    refused(api("PUT", f"{svc}/hello/config/GREETING", {"value": "hola"}, "grace"))
    refused(api("DELETE", f"{svc}/hello/config/GREETING", None, "grace"))
    assert store.config(NS, "hello") == []  # the change was not kept
    # a config change that redeploys nothing is still allowed
    ok = api("PUT", f"{svc}/fresh/config", {"vars": {"GREETING": {"value": "hola"}}}, "grace")
    assert ok.status_code == 200 and ok.data["redeploy"] is None
    # raising the limit lifts it at once
    r = api("PUT", f"{svc.rsplit('/services', 1)[0]}/billing/budget", {"monthly_limit": 1000, "hard_cap": True})
    assert r.data["state"] == "ok"
    assert api.container.budgets.check_deploys(NS) is None
    types = [e.type for e in api.container.outbox.pending(100)]
    assert types.count("billing.suspended") == 1 and types.count("billing.resumed") == 1


def test_the_openapi_document_declares_402_on_the_routes_that_deploy(api: Any) -> None:
    doc = api("GET", "/openapi.json").data
    paths = doc["paths"]
    assert "402" in paths["/v1/namespaces/{ns}/services/{svc}/deployments"]["post"]["responses"]
    assert "402" in paths["/v1/namespaces/{ns}/services/{svc}/rollback"]["post"]["responses"]
    assert "/v1/namespaces/{ns}/billing/budget" in paths
