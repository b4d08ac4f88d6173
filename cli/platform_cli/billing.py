"""The commands for usage and money: ``usage``, ``billing [show|portal|reconcile]``, ``invoices``,
``plan set``, ``budget set|show`` and ``plans``.

Money comes from the API as whole cents and is shown as dollars (``$72.92``); ``--limit`` takes
dollars with at most two decimals and is sent as cents, so nothing is ever a float. Quantities are the
API's decimal strings, shown as they are.
"""

from __future__ import annotations

import argparse
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlencode

from cli.platform_cli.commands import _dict, _list, parse_since, seg
from cli.platform_cli.context import Context
from cli.platform_cli.deploys import _ns
from cli.platform_cli.errors import EXIT_OK, UsageError
from cli.platform_cli.output import key_values, table

MAX_LIMIT_CENTS = 10**11


# -- arguments ----------------------------------------------------------------------------------------


def dollars_arg(text: str) -> int:
    """``50``, ``50.5`` or ``50.00`` dollars -> cents (an int); at most two decimals, more than zero."""
    try:
        value = Decimal(text.strip().lstrip("$"))
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"not an amount of dollars: {text!r} (e.g. 50.00)") from None
    if not value.is_finite() or value <= 0 or value != value.quantize(Decimal("0.01")):
        raise argparse.ArgumentTypeError(f"not an amount of dollars: {text!r} (more than 0, at most two decimals)")
    cents = int(value * 100)
    if cents > MAX_LIMIT_CENTS:
        raise argparse.ArgumentTypeError(f"{text!r} is above the largest budget (${MAX_LIMIT_CENTS // 100:,})")
    return cents


def percent_arg(text: str) -> int:
    try:
        value = int(text.strip().rstrip("%"))
    except ValueError:
        value = 0
    if not 1 <= value <= 100:
        raise argparse.ArgumentTypeError(f"not a whole percentage between 1 and 100: {text!r}")
    return value


# -- formatting ---------------------------------------------------------------------------------------


def money(cents: Any, currency: str = "usd") -> str:
    """Whole cents as an amount: ``7292`` -> ``$72.92`` (other currencies: ``72.92 EUR``)."""
    if not isinstance(cents, int) or isinstance(cents, bool):
        return "-"
    sign = "-" if cents < 0 else ""
    amount = f"{abs(cents) // 100:,}.{abs(cents) % 100:02d}"
    return f"{sign}${amount}" if currency.lower() == "usd" else f"{sign}{amount} {currency.upper()}"


def unit_price(cents_decimal: Any) -> str:
    """A tier's ``unit_amount_decimal`` (cents, a decimal string) in dollars, exactly: ``"0.8"`` -> ``$0.008``."""
    try:
        value = Decimal(str(cents_decimal)) / 100
    except InvalidOperation:
        return "-"
    return "$" + format(value.normalize(), "f") if value else "free"


def _tiers_text(tiers: list[dict[str, Any]]) -> str:
    """``first 1000: free, above 1000: $0.008``: graduated tiers, each priced per unit."""
    parts = []
    lower: Any = None
    for t in tiers:
        price = unit_price(t.get("unit_amount_decimal"))
        flat = t.get("flat_amount") or 0
        if t.get("up_to") is None:
            span = "each" if lower is None else f"above {lower}"
        else:
            span = f"first {t['up_to']}" if lower is None else f"{lower}-{t['up_to']}"
        parts.append(f"{span}: {price}" + (f" + {money(flat)} flat" if flat else ""))
        lower = t.get("up_to")
    return ", ".join(parts)


def _budget_pairs(b: dict[str, Any], currency: str) -> list[tuple[str, Any]]:
    return [
        ("monthly limit", money(b.get("monthly_limit"), currency)),
        ("thresholds", ", ".join(f"{t}%" for t in b.get("thresholds") or []) or "-"),
        ("hard cap", "yes: deploys stop at 100%" if b.get("hard_cap") else "no"),
        ("spent", f"{money(b.get('spent'), currency)} ({b.get('percent')}%) in {b.get('period')}"),
        ("crossed", ", ".join(f"{t}%" for t in b.get("crossed") or []) or "-"),
        ("state", b.get("state")),
    ]


# -- commands -----------------------------------------------------------------------------------------


def cmd_usage(ctx: Context, args: argparse.Namespace) -> int:
    ns = _ns(ctx, args)
    params: dict[str, str] = {}
    for name in ("meter", "service", "granularity"):
        if getattr(args, name, None):
            params[name] = getattr(args, name)
    for flag, name in (("from_", "from"), ("to", "to")):
        value = getattr(args, flag, None)
        if value:
            try:
                params[name] = parse_since(value, ctx.now())
            except UsageError:
                raise UsageError(
                    f"--{name}: not an ISO 8601 time nor a duration: {value!r} (e.g. 2026-11-01T00:00:00Z or 7d)"
                ) from None
    path = f"/v1/namespaces/{seg(ns)}/usage" + (f"?{urlencode(params)}" if params else "")
    answer = _dict(ctx.api().request("GET", path))
    series = _list(answer, "series")
    rows = [[p.get("start"), p.get("meter"), p.get("service"), p.get("quantity")] for p in series]
    text = f"{ns}: {answer.get('granularity')} usage from {answer.get('from')} to {answer.get('to')}\n"
    text += table(["start", "meter", "service", "quantity"], rows) if rows else "no usage in this window\n"
    totals = _list(answer, "totals")
    if totals:
        text += "\n" + table(["meter", "total"], [[t.get("meter"), t.get("quantity")] for t in totals])
    ctx.emit(answer, text)
    return EXIT_OK


def cmd_billing(ctx: Context, args: argparse.Namespace) -> int:
    ns = _ns(ctx, args)
    b = _dict(ctx.api().request("GET", f"/v1/namespaces/{seg(ns)}/billing"))
    currency = str(b.get("currency") or "usd")
    period = _dict(b.get("period"))
    rows = []
    for item in _list(b, "line_items"):
        quantity = item.get("quantity") if item.get("kind") == "usage" else "-"
        unit = item.get("unit") or ""
        rows.append(
            [
                item.get("description"),
                f"{quantity} {unit}".strip() if quantity != "-" else "-",
                _tiers_text(_list(item, "tiers")) if item.get("tiers") else "base price",
                money(item.get("amount"), currency),
            ]
        )
    forecast = _dict(b.get("forecast"))
    text = key_values(
        [
            ("namespace", b.get("namespace")),
            ("plan", b.get("plan")),
            ("period", f"{period.get('id')} ({period.get('start')} to {period.get('end')})"),
            ("state", b.get("state")),
        ]
    )
    text += "\n" + table(["item", "quantity", "price", "amount"], rows)
    text += "\n" + key_values(
        [
            ("subtotal", money(b.get("subtotal"), currency)),
            ("usage", money(b.get("usage"), currency)),
            (
                "forecast",
                f"{money(forecast.get('subtotal'), currency)} by the end of the period "
                f"(run rate over {forecast.get('elapsed_hours')} hours)",
            ),
        ]
    )
    provider = _provider_text(b, currency)
    if provider:
        text += provider
    budget = b.get("budget")
    text += "\n" + (
        "budget:\n" + "".join(f"  {line}\n" for line in key_values(_budget_pairs(_dict(budget), currency)).splitlines())
        if isinstance(budget, dict)
        else "budget:  none (platform budget set --limit 50.00)\n"
    )
    ctx.emit(b, text)
    return EXIT_OK


def _provider_text(b: dict[str, Any], currency: str) -> str:
    provider = b.get("provider")
    if not isinstance(provider, dict):
        return ""
    sub = provider.get("subscription")
    pairs: list[tuple[str, Any]] = []
    if isinstance(sub, dict):
        state = str(sub.get("status"))
        if sub.get("cancel_at_period_end"):
            state += ", cancels at period end"
        pairs.append(("subscription", state))
    invoice = provider.get("invoice")
    if isinstance(invoice, dict):
        difference = provider.get("difference")
        same = "the same as the ledger" if difference == 0 else f"{money(difference, currency)} from the ledger"
        pairs.append(("stripe preview", f"{money(invoice.get('total'), currency)} ({same})"))
    elif provider.get("unavailable"):
        pairs.append(("stripe preview", f"unavailable: {provider['unavailable']}"))
    return key_values(pairs) if pairs else ""


def cmd_billing_portal(ctx: Context, args: argparse.Namespace) -> int:
    ns = _ns(ctx, args)
    answer = _dict(ctx.api().request("GET", f"/v1/namespaces/{seg(ns)}/billing/portal"))
    ctx.emit(answer, f"{answer.get('url')}\n")
    return EXIT_OK


def cmd_billing_reconcile(ctx: Context, args: argparse.Namespace) -> int:
    ns = _ns(ctx, args)
    path = f"/v1/namespaces/{seg(ns)}/billing/reconciliation"
    api = ctx.api()
    answer = _dict(api.request("POST", path, json={"fix": True}) if args.fix else api.request("GET", path))
    rows = [
        [
            r.get("day"),
            r.get("meter"),
            r.get("ledger"),
            r.get("stripe"),
            r.get("difference"),
            "in flight" if r.get("in_flight") else "",
        ]
        for r in _list(answer, "rows")
    ]
    mismatches = _list(answer, "mismatches")
    text = f"{ns}: the ledger against Stripe from {answer.get('start')} to {answer.get('end')}\n"
    text += table(["day", "meter", "ledger", "stripe", "difference", ""], rows) if rows else "no usage reported\n"
    text += f"\n{len(mismatches)} difference(s)\n" if mismatches else "\nno difference\n"
    for fixed in _list(answer, "fixed"):
        text += f"re-sent {fixed.get('sent')} {fixed.get('meter')} of {fixed.get('day')} ({fixed.get('identifier')})\n"
    for note in answer.get("notes") or []:
        text += f"note: {note}\n"
    ctx.emit(answer, text)
    return EXIT_OK


def cmd_invoices(ctx: Context, args: argparse.Namespace) -> int:
    ns = _ns(ctx, args)
    limit = max(1, min(int(args.limit), 100))
    answer = _dict(ctx.api().request("GET", f"/v1/namespaces/{seg(ns)}/invoices?limit={limit}"))
    rows = []
    for invoice in _list(answer, "invoices"):
        currency = str(invoice.get("currency") or "usd")
        period = _dict(invoice.get("period"))
        ledger = invoice.get("ledger")
        rows.append(
            [
                invoice.get("id"),
                invoice.get("status"),
                f"{str(period.get('start'))[:10]} to {str(period.get('end'))[:10]}",
                money(invoice.get("total"), currency),
                money(invoice.get("amount_due"), currency),
                money(_dict(ledger).get("subtotal"), currency) if isinstance(ledger, dict) else "-",
            ]
        )
    text = table(["invoice", "status", "period", "total", "due", "ledger"], rows) if rows else "no invoices yet\n"
    ctx.emit(answer, text)
    return EXIT_OK


def cmd_plan_set(ctx: Context, args: argparse.Namespace) -> int:
    ns = _ns(ctx, args)
    answer = _dict(ctx.api().request("PATCH", f"/v1/namespaces/{seg(ns)}", json={"plan": args.plan}))
    ctx.emit(answer, f"{answer.get('id')}: plan {answer.get('plan')}\n")
    return EXIT_OK


def cmd_budget_show(ctx: Context, args: argparse.Namespace) -> int:
    ns = _ns(ctx, args)
    b = _dict(ctx.api().request("GET", f"/v1/namespaces/{seg(ns)}/billing/budget"))
    ctx.emit(b, key_values(_budget_pairs(b, "usd")))
    return EXIT_OK


def cmd_budget_set(ctx: Context, args: argparse.Namespace) -> int:
    ns = _ns(ctx, args)
    body: dict[str, Any] = {"monthly_limit": args.limit, "hard_cap": bool(args.hard_cap)}
    if args.threshold:
        if len(set(args.threshold)) != len(args.threshold):
            raise UsageError("--threshold: give each percentage once")
        body["thresholds"] = sorted(args.threshold)
    b = _dict(ctx.api().request("PUT", f"/v1/namespaces/{seg(ns)}/billing/budget", json=body))
    if b.get("state") == "suspended":
        ctx.note("note: the spend has reached the limit and the hard cap suspends new deploys")
    ctx.emit(b, key_values(_budget_pairs(b, "usd")))
    return EXIT_OK


def cmd_plans(ctx: Context, args: argparse.Namespace) -> int:
    answer = _dict(ctx.api().request("GET", "/v1/plans"))
    currency = str(answer.get("currency") or "usd")
    units = {m.get("name"): m.get("unit") for m in _list(answer, "meters")}
    text = ""
    for plan in _list(answer, "plans"):
        text += f"{plan.get('name')} ({plan.get('display_name')}): {money(plan.get('base_price'), currency)} a month\n"
        prices = _dict(plan.get("prices"))
        rows = [
            [meter, units.get(meter), _dict(plan.get("included")).get(meter) or "0", _tiers_text(_tiers(tiers))]
            for meter, tiers in prices.items()
        ]
        text += table(["meter", "unit", "included", "price per unit"], rows) + "\n"
    ctx.emit(answer, text or "no plans\n")
    return EXIT_OK


def _tiers(value: Any) -> list[dict[str, Any]]:
    return [t for t in value if isinstance(t, dict)] if isinstance(value, list) else []


def add_commands(command: Any, group: Any, sub: Any) -> None:
    """``usage``, ``billing``, ``budget set|show``, ``plans`` (called by :func:`cli.platform_cli.main.build_parser`)."""
    p = command(sub, "usage", cmd_usage, "a namespace's usage per meter and service, by hour or day", namespaced=True)
    p.add_argument("--meter", help="one meter (service_hours, requests, seats; default: all)")
    p.add_argument("--service", help="one service (default: all)")
    p.add_argument(
        "--from",
        dest="from_",
        metavar="TIME",
        help="an ISO 8601 time or a duration back from now (7d); default: the start of the month",
    )
    p.add_argument("--to", metavar="TIME", help="an ISO 8601 time or a duration back from now; default: now")
    p.add_argument("--granularity", choices=("hour", "day"), help="hour (default) or day")
    billing = group(
        "billing",
        "the current period's invoice preview (`platform billing`), Stripe's portal, reconciliation",
        namespaced=True,
    )
    command(
        billing,
        "show",
        cmd_billing,
        "the current period's invoice preview, forecast and budget, and Stripe's preview beside it",
        namespaced=True,
    )
    command(
        billing, "portal", cmd_billing_portal, "the address of the namespace's Stripe billing portal", namespaced=True
    )
    p = command(
        billing,
        "reconcile",
        cmd_billing_reconcile,
        "the ledger's reported usage per meter and day against Stripe's (the last 35 days)",
        namespaced=True,
    )
    p.add_argument("--fix", action="store_true", help="re-send to Stripe what it is missing")
    p = command(
        sub, "invoices", cmd_invoices, "the namespace's Stripe invoices, with the ledger's figure", namespaced=True
    )
    p.add_argument("--limit", type=int, default=12, metavar="N", help="at most N, newest first (default 12)")
    plan = group("plan", "the namespace's plan", namespaced=True)
    p = command(plan, "set", cmd_plan_set, "change the plan now (Stripe prorates the base price)", namespaced=True)
    p.add_argument("plan", metavar="PLAN", help="starter, team or scale (platform plans)")
    budget = group("budget", "the namespace's monthly budget of usage charges", namespaced=True)
    command(budget, "show", cmd_budget_show, "the budget and this period's spend", namespaced=True)
    p = command(
        budget,
        "set",
        cmd_budget_set,
        "set (replace) the budget; it is evaluated at once",
        namespaced=True,
    )
    p.add_argument(
        "--limit", required=True, type=dollars_arg, metavar="DOLLARS", help="usage charges a month, e.g. 50.00"
    )
    p.add_argument(
        "--threshold",
        action="append",
        type=percent_arg,
        metavar="PERCENT",
        help="alert when spend reaches this percentage of the limit; repeat (default: 50, 80, 100)",
    )
    p.add_argument("--hard-cap", action="store_true", help="at 100%%, suspend new deploys until the limit is raised")
    command(sub, "plans", cmd_plans, "the plans: base price, included quantities, unit prices")
