"""The report renderer (``RendererPort``): Jinja2 templates (``templates/``, HTML with inline CSS and
tables, readable with images off: every figure is in the text, the chart only repeats them), the daily
usage chart as a PNG (matplotlib, Agg backend, imported here only), the plain-text part, the CSV and
the Slack Block Kit message.

The CSV holds exact decimal strings (the usage API's): ``kind,date,service,meter,quantity,unit`` with
``total`` rows (the usage API's ``totals`` for the same UTC hours), ``hour`` rows (its hourly ``series``),
``day`` rows (local days) and ``service`` rows."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from chalicelib.domain.metering import MICROS, format_micros
from chalicelib.domain.reports import Figures
from chalicelib.domain.services.reports import CHART_CID, Rendered

TEMPLATES = Path(__file__).parent / "templates"
KIND_LABELS = {"daily": "Daily", "weekly": "Weekly", "monthly": "Monthly", "custom": "Custom"}


def human(micros: int) -> str:
    """For people: thousands separated, at most two decimals (the CSV keeps the exact value)."""
    value = Decimal(micros) / MICROS
    text = f"{value:,.2f}"
    return text[:-3] if text.endswith(".00") else text


def money(cents: int, currency: str) -> str:
    symbol = "$" if currency.lower() == "usd" else ""
    return f"{symbol}{Decimal(cents) / 100:,.2f}" + ("" if symbol else f" {currency.upper()}")


class ReportRenderer:
    def render(self, f: Figures) -> Rendered:
        import jinja2  # on first use: only the Render step pays for it

        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(TEMPLATES)),
            autoescape=jinja2.select_autoescape(["html"]),
            trim_blocks=True,
            lstrip_blocks=True,
            undefined=jinja2.StrictUndefined,
        )
        context = self.context(f)
        html = env.get_template("report.html").render(**context)
        text = env.get_template("report.txt").render(**context)
        return Rendered(
            subject=context["subject"],
            html=html,
            text=text,
            csv=to_csv(f),
            png=chart(f),
            slack_blocks=slack_blocks(f, context),
            slack_text=f"{context['subject']}: {context['headline']}",
        )

    def context(self, f: Figures) -> dict[str, Any]:
        p = f.period
        zone = ZoneInfo(p.timezone)
        end_day = p.end.astimezone(zone)
        if p.kind == "daily":
            label = f"{p.start:%A %d %B %Y}"
        elif p.kind == "monthly":
            label = f"{p.start:%B %Y}"
        else:
            label = f"{p.start:%d %b %Y %H:%M} to {end_day:%d %b %Y %H:%M}"
        meters = []
        for m in f.meters:
            change = m.change_percent
            meters.append(
                {
                    "display_name": m.display_name,
                    "unit": m.unit,
                    "aggregation": m.aggregation,
                    "quantity": human(m.quantity),
                    "previous": human(m.previous),
                    "change": f"{change} %" if change is not None else ("new" if m.quantity else "no change"),
                    "color": "#1a7f37" if change is not None and change.startswith("-") else "#57606a",
                }
            )
        sum_meters = [m for m in f.meters if m.aggregation == "sum"]
        services = [
            {"name": s or "(no service)", "quantities": [human(q.get(m.meter, 0)) for m in sum_meters]}
            for s, q in f.services
        ]
        currency = str(f.cost["currency"])
        budget = None
        if f.budget:
            budget = {
                "period": f.budget["period"],
                "spent": money(int(f.budget["spent"]), currency),
                "limit": money(int(f.budget["monthly_limit"]), currency),
                "percent": f.budget["percent"],
                "state": f.budget["state"],
            }
        subject = f"{KIND_LABELS.get(p.kind, 'Usage')} usage report for {f.namespace}: {label}"
        headline = (
            "nothing ran"
            if f.nothing_ran
            else ", ".join(f"{m['quantity']} {m['unit']}s" for m in meters if m["aggregation"] == "sum")
        )
        return {
            "subject": subject,
            "headline": headline,
            "namespace": f.namespace,
            "kind_label": KIND_LABELS.get(p.kind, "Usage"),
            "period_label": label,
            "timezone": p.timezone,
            "hours": p.hours,
            "nothing_ran": f.nothing_ran,
            "meters": meters,
            "sum_meters": sum_meters,
            "services": services,
            "chart_cid": CHART_CID,
            "chart_alt": "; ".join(
                f"{d}: " + ", ".join(human(q.get(m.meter, 0)) for m in sum_meters) for d, q in f.days
            ),
            "cost_period": f.cost["period"],
            "currency": currency.upper(),
            "cost_so_far": money(int(f.cost["subtotal"]), currency),
            "cost_forecast": money(int(f.cost["forecast_subtotal"]), currency),
            "cost_complete": bool(f.cost.get("complete")),
            "budget": budget,
            "note": p.note,
            "dashboard_url": f.dashboard_url,
            "ledger_from": f"{p.ledger_from:%Y-%m-%d %H:%M} UTC",
            "ledger_to": f"{p.ledger_to:%Y-%m-%d %H:%M} UTC",
        }


def to_csv(f: Figures) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["kind", "date", "service", "meter", "quantity", "unit"])
    units = {m.meter: m.unit for m in f.meters}
    for m in f.meters:
        w.writerow(["total", "", "", m.meter, format_micros(m.quantity), m.unit])
    for day, q in f.days:
        for meter in units:
            w.writerow(["day", day, "", meter, format_micros(q.get(meter, 0)), units[meter]])
    for service, q in f.services:
        for meter, quantity in q.items():
            w.writerow(["service", "", service, meter, format_micros(quantity), units.get(meter, "")])
    for hour, meter, service, quantity in f.hourly:
        w.writerow(["hour", hour, service, meter, format_micros(quantity), units.get(meter, "")])
    return out.getvalue()


def chart(f: Figures) -> bytes:
    """Daily usage, one panel per ``sum`` meter, as a PNG (matplotlib's Agg backend, no display)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure  # the object API: no pyplot state, safe in a Lambda

    sum_meters = [m for m in f.meters if m.aggregation == "sum"] or list(f.meters[:1])
    days = [d for d, _ in f.days]
    labels = [d[5:] for d in days]
    fig = Figure(figsize=(6.4, 1.6 + 1.4 * len(sum_meters)), dpi=100)
    axes = fig.subplots(len(sum_meters), 1, squeeze=False)
    for ax, meter in zip((a[0] for a in axes), sum_meters, strict=False):
        values = [float(Decimal(q.get(meter.meter, 0)) / MICROS) for _, q in f.days]
        ax.bar(range(len(values)), values, color="#0969da", width=0.7)
        ax.set_title(f"{meter.display_name} per day ({meter.unit})", fontsize=9, loc="left")
        ax.set_xticks(range(len(labels)))
        ax.set_xticklabels(labels, fontsize=7, rotation=45 if len(labels) > 10 else 0)
        ax.tick_params(axis="y", labelsize=7)
        ax.spines[["top", "right"]].set_visible(False)
        ax.grid(axis="y", color="#eaeef2")
        ax.set_axisbelow(True)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def slack_blocks(f: Figures, c: dict[str, Any]) -> list[dict[str, Any]]:
    fields = [
        {"type": "mrkdwn", "text": f"*{m['display_name']}*\n{m['quantity']} {m['unit']} ({m['change']})"}
        for m in c["meters"]
    ][:10]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": f"{c['kind_label']} usage: {f.namespace}"[:150]}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": f"{c['period_label']} ({c['timezone']})"}]},
    ]
    if f.nothing_ran:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": "*Nothing ran in this period.*"}})
    blocks.append({"type": "section", "fields": fields})
    if c["services"]:
        top = "\n".join(
            f"• {s['name']}: "
            + ", ".join(f"{q} {m.unit}s" for q, m in zip(s["quantities"], c["sum_meters"], strict=False))
            for s in c["services"][:5]
        )
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"*Top services*\n{top}"}})
    cost = f"*Cost ({c['cost_period']})*: {c['cost_so_far']}"
    if not c["cost_complete"]:
        cost += f", forecast {c['cost_forecast']}"
    if c["budget"]:
        b = c["budget"]
        cost += f"\n*Budget*: {b['spent']} of {b['limit']} ({b['percent']}%)"
        if b["state"] == "suspended":
            cost += ", deploys suspended"
    blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": cost}})
    if c["note"]:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": c["note"][:3000]}]})
    blocks.append(
        {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "text": {"type": "plain_text", "text": "Open the usage page"},
                    "url": c["dashboard_url"],
                }
            ],
        }
    )
    return blocks
