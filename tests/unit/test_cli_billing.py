"""The CLI's usage and money commands (usage, billing, budget set|show, plans) against an in-memory
double of the API's routes, whose answers are checked against the API's own response models (unit
tier: no network)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from cli.platform_cli.billing import dollars_arg, money, percent_arg, unit_price
from tests.unit.test_cli_commands import Cli, FakeApi

NS = "acme-backend"

BILLING = {
    "namespace": NS,
    "plan": "team",
    "currency": "usd",
    "period": {"id": "2026-11", "start": "2026-11-01T00:00:00Z", "end": "2026-12-01T00:00:00Z"},
    "line_items": [
        {
            "kind": "base",
            "meter": None,
            "description": "Team plan, 2026-11",
            "unit": None,
            "quantity": "1",
            "amount": 2000,
            "amount_exact": "2000",
            "tiers": [],
        },
        {
            "kind": "usage",
            "meter": "service_hours",
            "description": "Service hours",
            "unit": "hour",
            "quantity": "1234.5",
            "amount": 188,
            "amount_exact": "187.6",
            "tiers": [
                {"up_to": "1000", "unit_amount_decimal": "0", "flat_amount": 0, "quantity": "1000", "amount": "0"},
                {"up_to": None, "unit_amount_decimal": "0.8", "flat_amount": 0, "quantity": "234.5", "amount": "187.6"},
            ],
        },
    ],
    "subtotal": 2188,
    "usage": 188,
    "forecast": {
        "method": "run_rate",
        "subtotal": 2400,
        "usage": 400,
        "elapsed_hours": "216",
        "line_items": [{"meter": "service_hours", "quantity": "4115", "amount": 400}],
    },
    "budget": None,
    "state": "ok",
}

PLANS = {
    "currency": "usd",
    "meters": [
        {
            "name": "service_hours",
            "display_name": "Service hours",
            "unit": "hour",
            "aggregation": "sum",
            "ingest": True,
        },
        {"name": "seats", "display_name": "Seats", "unit": "seat", "aggregation": "max", "ingest": False},
    ],
    "plans": [
        {
            "name": "team",
            "display_name": "Team",
            "base_price": 2000,
            "quota": {"memory_mib": 4096, "cpu_millicores": 4000, "ephemeral_storage_mib": 8192},
            "prices": {
                "service_hours": [
                    {"up_to": "1000", "unit_amount_decimal": "0", "flat_amount": 0},
                    {"up_to": None, "unit_amount_decimal": "0.8", "flat_amount": 0},
                ],
                "seats": [
                    {"up_to": "10", "unit_amount_decimal": "0", "flat_amount": 0},
                    {"up_to": None, "unit_amount_decimal": "400", "flat_amount": 0},
                ],
            },
            "included": {"service_hours": "1000", "seats": "10"},
        }
    ],
}

USAGE = {
    "from": "2026-11-01T00:00:00Z",
    "to": "2026-11-10T00:00:00Z",
    "granularity": "day",
    "series": [
        {"meter": "requests", "service": "hello", "start": "2026-11-01T00:00:00Z", "quantity": "1200"},
        {"meter": "service_hours", "service": "hello", "start": "2026-11-01T00:00:00Z", "quantity": "24"},
    ],
    "totals": [{"meter": "requests", "quantity": "1200"}, {"meter": "service_hours", "quantity": "24"}],
}


class BillingApi(FakeApi):
    """:class:`FakeApi` plus the billing routes (chalicelib/api/billing.py) and the usage and plans
    routes, answering per the contract; the budget's answers are validated by the API's model."""

    def __init__(self) -> None:
        super().__init__()
        self.budget: dict[str, Any] | None = None
        self.billing = dict(BILLING)

    def budget_answer(self) -> dict[str, Any]:
        from chalicelib.api.schemas.billing import BudgetOut

        assert self.budget is not None
        spent = 188
        answer = {
            **self.budget,
            "updated_at": "2026-11-10T00:00:00Z",
            "updated_by": "user:ada",
            "period": "2026-11",
            "spent": spent,
            "percent": round(spent * 100 / self.budget["monthly_limit"], 2),
            "crossed": [t for t in self.budget["thresholds"] if spent * 100 >= self.budget["monthly_limit"] * t],
            "state": "suspended" if self.budget["hard_cap"] and spent >= self.budget["monthly_limit"] else "ok",
        }
        return BudgetOut.model_validate(answer).model_dump(mode="json")

    def handle(self, base_url: str, token: str | None, method: str, path: str, body: Any) -> Any:
        route = urlsplit(path).path
        if route == "/v1/plans" or re.fullmatch(r"/v1/namespaces/[^/]+/(usage|billing(/budget)?)", route):
            self.calls.append((base_url, token, method, path, body))
            if (method, route) in self.forced:
                status, code, message = self.forced[(method, route)]
                self.fail(status, code, message)
            if self.sessions.get(token or "") is None:
                self.fail(401, "unauthorized", "the token is missing, expired or revoked")
            if route == "/v1/plans":
                from chalicelib.api.schemas.usage import PlansOut

                return PlansOut.model_validate(PLANS).model_dump(mode="json")
            if route.endswith("/usage"):
                from chalicelib.api.schemas.usage import UsageOut

                return UsageOut.model_validate(USAGE).model_dump(mode="json", by_alias=True)
            if route.endswith("/billing"):
                from chalicelib.api.schemas.billing import BillingOut

                answer = {**self.billing, "budget": self.budget_answer() if self.budget else None}
                return BillingOut.model_validate(answer).model_dump(mode="json")
            if method == "GET":
                if self.budget is None:
                    self.fail(404, "not_found", f"no budget is set for {NS}")
                return self.budget_answer()
            from chalicelib.api.schemas.billing import BudgetIn

            self.budget = BudgetIn.model_validate(body).model_dump()
            return self.budget_answer()
        if re.fullmatch(r"/v1/namespaces/[^/]+/(invoices|billing/portal|billing/reconciliation)", route) or (
            method == "PATCH" and re.fullmatch(r"/v1/namespaces/[^/]+", route)
        ):
            self.calls.append((base_url, token, method, path, body))
            if (method, route) in self.forced:
                status, code, message = self.forced[(method, route)]
                self.fail(status, code, message)
            if self.sessions.get(token or "") is None:
                self.fail(401, "unauthorized", "the token is missing, expired or revoked")
            return self.stripe_answer(method, route, body)
        return super().handle(base_url, token, method, path, body)

    def stripe_answer(self, method: str, route: str, body: Any) -> Any:
        """The Stripe routes' answers, checked against the API's response models."""
        from chalicelib.api.schemas import billing

        if route.endswith("/invoices"):
            return billing.InvoicesOut.model_validate({"invoices": INVOICES}).model_dump(mode="json")
        if route.endswith("/portal"):
            return billing.PortalOut(url="https://billing.stripe.com/p/session/test_x").model_dump(mode="json")
        if route.endswith("/reconciliation"):
            fix = method == "POST" and billing.ReconcileIn.model_validate(body).fix
            answer = {**RECONCILIATION, "fixed": [FIXED] if fix else []}
            return billing.ReconciliationOut.model_validate(answer).model_dump(mode="json")
        from chalicelib.api.schemas.accounts import NamespaceOut

        ns = self.namespaces[route.rsplit("/", 1)[1]]
        ns["plan"] = billing.PlanIn.model_validate(body).plan
        return NamespaceOut.model_validate({**ns, "created_by": "user:ada"}).model_dump(mode="json")


INVOICE = {
    "id": "in_1",
    "status": "paid",
    "currency": "usd",
    "total": 2188,
    "amount_due": 2188,
    "amount_paid": 2188,
    "period": {"start": "2026-11-01T00:00:00Z", "end": "2026-12-01T00:00:00Z"},
    "created": "2026-12-01T01:00:00Z",
    "hosted_invoice_url": None,
    "attempt_count": 1,
    "billing_reason": "subscription_cycle",
    "lines": [{"description": "Service hours (Team)", "kind": "usage", "meter": "service_hours", "quantity": "1234.5",
               "amount": 188}],
    "ledger": {"period": "2026-11", "subtotal": 2188, "line_items": []},
}  # fmt: skip
INVOICES = [INVOICE, {**INVOICE, "id": "in_0", "total": 0, "amount_due": 0, "lines": [], "ledger": None}]
ROW = {"meter": "requests", "day": "2026-11-30", "ledger": "1200", "stripe": "950", "difference": "-250",
       "in_flight": False}  # fmt: skip
RECONCILIATION = {
    "namespace": NS,
    "start": "2026-10-27T00:00:00Z",
    "end": "2026-12-01T00:00:00Z",
    "rows": [ROW, {**ROW, "meter": "seats", "ledger": "3", "stripe": "3", "difference": "0"}],
    "mismatches": [ROW],
    "fixed": [],
    "notes": [],
}
FIXED = {
    "meter": "requests",
    "day": "2026-11-30",
    "identifier": "fix:acme-backend:requests:2026-11-30:950",
    "sent": "250",
}


@pytest.fixture
def bapi() -> BillingApi:
    fake = BillingApi()
    fake.add_namespace(NS, members={"ada": "owner"})
    return fake


@pytest.fixture
def cli(tmp_path: Path, bapi: BillingApi) -> Cli:
    c = Cli(tmp_path, bapi)
    c.log_in("ada", namespace=NS)
    return c


def test_billing_shows_the_line_items_in_dollars_the_forecast_and_no_budget(cli: Cli) -> None:
    result = cli("billing")
    assert result.code == 0, result.err
    out = result.out
    assert re.search(r"^plan:\s+team$", out, re.M) and "2026-11" in out
    assert re.search(r"^Team plan, 2026-11\s+-\s+base price\s+\$20\.00$", out, re.M)
    assert re.search(r"^Service hours\s+1234\.5 hour\s+first 1000: free, above 1000: \$0\.008\s+\$1\.88$", out, re.M)
    assert re.search(r"^subtotal:\s+\$21\.88$", out, re.M)
    assert re.search(r"^forecast:\s+\$24\.00 by the end of the period \(run rate over 216 hours\)$", out, re.M)
    assert "budget:  none (platform budget set --limit 50.00)" in out


def test_billing_json_is_the_api_s_answer(cli: Cli) -> None:
    assert cli("billing", "-o", "json").json()["subtotal"] == 2188


def test_budget_set_sends_cents_and_sorted_thresholds_and_shows_the_state(cli: Cli, bapi: BillingApi) -> None:
    result = cli("budget", "set", "--limit", "1.50", "--threshold", "80", "--threshold", "50", "--hard-cap")
    assert result.code == 0, result.err
    assert bapi.calls[-1][2:] == (
        "PUT",
        f"/v1/namespaces/{NS}/billing/budget",
        {"monthly_limit": 150, "hard_cap": True, "thresholds": [50, 80]},
    )
    assert re.search(r"^monthly limit:\s+\$1\.50$", result.out, re.M)
    assert re.search(r"^spent:\s+\$1\.88 \(125\.33%\) in 2026-11$", result.out, re.M)
    assert re.search(r"^state:\s+suspended$", result.out, re.M)
    assert "hard cap suspends new deploys" in result.err
    shown = cli("budget", "show")
    assert shown.code == 0 and re.search(r"^crossed:\s+50%, 80%$", shown.out, re.M)
    assert re.search(r"budget:\s*\n\s*monthly limit:", cli("billing").out)


def test_budget_set_without_thresholds_leaves_the_api_s_default(cli: Cli, bapi: BillingApi) -> None:
    assert cli("budget", "set", "--limit", "50").code == 0
    assert bapi.calls[-1][4] == {"monthly_limit": 5000, "hard_cap": False}
    assert bapi.budget is not None and bapi.budget["thresholds"] == [50, 80, 100]


@pytest.mark.parametrize(
    "argv",
    [
        ["--limit", "50.001"],
        ["--limit", "0"],
        ["--limit", "-5"],
        ["--limit", "abc"],
        ["--limit", "nan"],
        ["--limit", "50", "--threshold", "0"],
        ["--limit", "50", "--threshold", "101"],
        ["--limit", "50", "--threshold", "12.5"],
        ["--limit", "50", "--threshold", "50", "--threshold", "50"],
        [],
    ],
)
def test_budget_set_refuses_bad_input_with_exit_2_before_calling_the_api(
    cli: Cli, bapi: BillingApi, argv: list[str]
) -> None:
    before = len(bapi.calls)
    result = cli("budget", "set", *argv)
    assert result.code == 2
    assert len(bapi.calls) == before


def test_budget_show_without_a_budget_exits_6(cli: Cli) -> None:
    result = cli("budget", "show")
    assert result.code == 6 and "no budget is set" in result.err


def test_usage_passes_the_filters_and_lists_series_and_totals(cli: Cli, bapi: BillingApi) -> None:
    result = cli(
        "usage", "--meter", "requests", "--service", "hello", "--from", "7d", "--to", "2024-05-02T00:00:00Z",
        "--granularity", "day",
    )  # fmt: skip
    assert result.code == 0, result.err
    query = parse_qs(urlsplit(bapi.calls[-1][3]).query)
    assert query == {
        "meter": ["requests"],
        "service": ["hello"],
        "granularity": ["day"],
        "from": ["2024-04-25T12:00:00Z"],  # 7 days before the CLI's clock
        "to": ["2024-05-02T00:00:00Z"],
    }
    lines = result.out.splitlines()
    assert lines[1].split() == ["START", "METER", "SERVICE", "QUANTITY"]
    assert lines[2].split() == ["2026-11-01T00:00:00Z", "requests", "hello", "1200"]
    assert ["service_hours", "24"] in [line.split() for line in lines]
    assert cli("usage", "--from", "yesterday").code == 2


def test_plans_lists_base_prices_included_quantities_and_unit_prices(cli: Cli) -> None:
    result = cli("plans")
    assert result.code == 0, result.err
    assert "team (Team): $20.00 a month" in result.out
    assert re.search(r"^seats\s+seat\s+10\s+first 10: free, above 10: \$4$", result.out, re.M)
    assert cli("plans", "-o", "json").json()["plans"][0]["name"] == "team"


def test_a_refused_deploy_exits_8_saying_why(cli: Cli, bapi: BillingApi) -> None:
    bapi.forced[("GET", f"/v1/namespaces/{NS}/billing")] = (
        402,
        "payment_required",
        "deploys to acme-backend are suspended: the namespace's monthly budget (hard cap) is spent for 2026-11",
    )
    result = cli("billing")
    assert result.code == 8
    assert result.err.startswith("error: deploys to acme-backend are suspended") and "(payment_required)" in result.err


def test_amounts_are_exact() -> None:
    assert [money(c) for c in (0, 5, 7292, 123456789, -150)] == ["$0.00", "$0.05", "$72.92", "$1,234,567.89", "-$1.50"]
    assert money(150, "eur") == "1.50 EUR" and money(None) == "-" and money(True) == "-"
    assert [unit_price(x) for x in ("0", "0.8", "0.00005", "400")] == ["free", "$0.008", "$0.0000005", "$4"]
    assert dollars_arg("50") == 5000 and dollars_arg("$0.01") == 1 and dollars_arg("19.99") == 1999
    assert percent_arg("80%") == 80
    for bad in ("1e3x", "0.001", "inf"):
        with pytest.raises(argparse.ArgumentTypeError):
            dollars_arg(bad)


# ----------------------------------------------------------------------------- billing through Stripe


def test_invoices_lists_stripe_s_invoices_beside_the_ledger_and_clamps_the_limit(cli: Cli, bapi: BillingApi) -> None:
    result = cli("invoices", "--limit", "500")
    assert result.code == 0, result.err
    assert bapi.calls[-1][2:4] == ("GET", f"/v1/namespaces/{NS}/invoices?limit=100")
    assert re.search(r"^in_1\s+paid\s+2026-11-01 to 2026-12-01\s+\$21\.88\s+\$21\.88\s+\$21\.88$", result.out, re.M)
    assert re.search(r"^in_0\s+paid\s+.*\$0\.00\s+\$0\.00\s+-$", result.out, re.M)  # bills no usage: no ledger


def test_billing_portal_prints_the_address_alone(cli: Cli) -> None:
    result = cli("billing", "portal")
    assert (result.code, result.out) == (0, "https://billing.stripe.com/p/session/test_x\n")


def test_billing_reconcile_shows_the_differences_and_fix_asks_for_the_repair(cli: Cli, bapi: BillingApi) -> None:
    shown = cli("billing", "reconcile", "--namespace", NS)
    assert shown.code == 0, shown.err
    assert bapi.calls[-1][2:] == ("GET", f"/v1/namespaces/{NS}/billing/reconciliation", None)
    assert re.search(r"^2026-11-30\s+requests\s+1200\s+950\s+-250\s+-$", shown.out, re.M)
    assert "1 difference(s)" in shown.out and "re-sent" not in shown.out
    fixed = cli("billing", "reconcile", "--namespace", NS, "--fix")
    assert fixed.code == 0, fixed.err
    assert bapi.calls[-1][2:] == ("POST", f"/v1/namespaces/{NS}/billing/reconciliation", {"fix": True})
    assert "re-sent 250 requests of 2026-11-30 (fix:acme-backend:requests:2026-11-30:950)" in fixed.out


def test_plan_set_patches_the_namespace_and_a_refusal_keeps_the_api_s_message(cli: Cli, bapi: BillingApi) -> None:
    result = cli("plan", "set", "scale")
    assert (result.code, result.out) == (0, f"{NS}: plan scale\n")
    assert bapi.calls[-1][2:] == ("PATCH", f"/v1/namespaces/{NS}", {"plan": "scale"})
    bapi.forced[("PATCH", f"/v1/namespaces/{NS}")] = (502, "billing_rejected", "Stripe refused the plan change")
    refused = cli("plan", "set", "team")
    assert refused.code != 0 and "Stripe refused the plan change (billing_rejected)" in refused.err
    assert bapi.namespaces[NS]["plan"] == "scale"
