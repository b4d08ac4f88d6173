"""``platform reports schedule|send|list|show``: the namespace's usage reports.

``schedule`` shows the schedule, or changes what its options name (the rest is kept): ``--frequency``,
``--timezone``, ``--hour``, ``--weekday``, ``--email`` / ``--owners`` / ``--slack`` (channels, repeatable;
given, they replace the channels), ``--off`` / ``--on``. ``send`` sends the last complete period now (or
``--from``/``--to``) and, with ``--wait``, follows it until it is sent. ``show ID`` prints a report;
``--html FILE`` writes its rendered HTML, ``--csv`` prints its figures as CSV."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from cli.platform_cli.commands import _dict, _list, parse_since, seg
from cli.platform_cli.context import Context
from cli.platform_cli.deploys import _ns
from cli.platform_cli.errors import EXIT_OK, UsageError
from cli.platform_cli.output import key_values, table

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
PENDING = ("gathered", "rendered")


def _channels_text(channels: list[dict[str, Any]]) -> str:
    return ", ".join(f"{c.get('type')}: {c.get('to') or c.get('webhook_url')}" for c in channels) or "-"


def _schedule_text(s: dict[str, Any]) -> str:
    when = f"{s.get('frequency')}" + (f" on {s.get('weekday')}" if s.get("weekday") else "")
    return key_values(
        [
            ("namespace", s.get("namespace")),
            ("sends", f"{when} at {int(s.get('hour') or 0):02d}:00 {s.get('timezone')}"),
            ("channels", _channels_text(_list(s, "channels"))),
            ("enabled", "yes" if s.get("enabled") else "no (turned off)"),
            ("next", s.get("next_due") or "-"),
        ]
    )


def _report_text(r: dict[str, Any]) -> str:
    p = _dict(r.get("period"))
    summary = _dict(r.get("summary"))
    totals = ", ".join(f"{m} {q}" for m, q in _dict(summary.get("totals")).items()) or "-"
    pairs = [
        ("report", r.get("id")),
        ("status", r.get("status")),
        ("period", f"{p.get('start')} to {p.get('end')} ({p.get('timezone')})"),
        ("usage hours (UTC)", f"{p.get('usage_from')} to {p.get('usage_to')}"),
        ("totals", totals),
        ("sent to", "; ".join(f"{c.get('target')} ({c.get('status')})" for c in _list(r, "channels")) or "-"),
    ]
    if p.get("note"):
        pairs.append(("note", p.get("note")))
    return key_values(pairs)


def cmd_schedule(ctx: Context, args: argparse.Namespace) -> int:
    ns = _ns(ctx, args)
    path = f"/v1/namespaces/{seg(ns)}/reports/schedule"
    current = _dict(ctx.api().request("GET", path))
    changes = {
        k: getattr(args, k) for k in ("frequency", "timezone", "hour", "weekday") if getattr(args, k) is not None
    }
    channels: list[dict[str, Any]] = [{"type": "email", "to": "owners"}] if args.owners else []
    channels += [{"type": "email", "to": e} for e in args.email or []]
    channels += [{"type": "slack", "webhook_url": u} for u in args.slack or []]
    if not changes and not channels and args.enabled is None:
        ctx.emit(current, _schedule_text(current))
        return EXIT_OK
    if not channels:  # keep the current ones; a Slack URL is only shown masked, so it must be given again
        kept = _list(current, "channels")
        if any(c.get("type") == "slack" for c in kept):
            raise UsageError(
                "--slack: give the Slack webhook URLs again when changing the schedule (they are shown masked)"
            )
        channels = [{"type": "email", "to": c.get("to")} for c in kept]
    body = {
        "frequency": changes.get("frequency", current.get("frequency")),
        "timezone": changes.get("timezone", current.get("timezone")),
        "hour": changes.get("hour", current.get("hour")),
        "channels": channels,
        "enabled": current.get("enabled", True) if args.enabled is None else args.enabled,
    }
    if body["frequency"] == "weekly":
        body["weekday"] = changes.get("weekday", current.get("weekday") or "monday")
    s = _dict(ctx.api().request("PUT", path, json=body))
    ctx.emit(s, _schedule_text(s))
    return EXIT_OK


def cmd_send(ctx: Context, args: argparse.Namespace) -> int:
    ns = _ns(ctx, args)
    body: dict[str, Any] = {}
    if args.from_ or args.to:
        if not (args.from_ and args.to):
            raise UsageError("--from and --to go together")
        body = {"from": parse_since(args.from_, ctx.now()), "to": parse_since(args.to, ctx.now())}
    r = _dict(ctx.api().request("POST", f"/v1/namespaces/{seg(ns)}/reports/send", json=body))
    if args.wait:
        deadline = time.monotonic() + args.timeout
        while r.get("status") in PENDING and time.monotonic() < deadline:
            time.sleep(1)
            found = [
                x
                for x in _list(_dict(ctx.api().request("GET", f"/v1/namespaces/{seg(ns)}/reports")), "reports")
                if x.get("id") == r.get("id")
            ]
            r = found[0] if found else r
    ctx.emit(r, _report_text(r))
    return EXIT_OK if r.get("status") not in ("failed",) else 1


def cmd_list(ctx: Context, args: argparse.Namespace) -> int:
    ns = _ns(ctx, args)
    answer = _dict(ctx.api().request("GET", f"/v1/namespaces/{seg(ns)}/reports"))
    rows = []
    for r in _list(answer, "reports"):
        p = _dict(r.get("period"))
        sent = sum(1 for c in _list(r, "channels") if c.get("status") == "sent")
        rows.append(
            [r.get("id"), r.get("status"), p.get("timezone"), r.get("trigger"), f"{sent}/{len(_list(r, 'channels'))}"]
        )
    ctx.emit(answer, table(["report", "status", "time zone", "trigger", "sent"], rows) if rows else "no reports yet\n")
    return EXIT_OK


def cmd_show(ctx: Context, args: argparse.Namespace) -> int:
    ns = _ns(ctx, args)
    api = ctx.api()
    base = f"/v1/namespaces/{seg(ns)}/reports"
    if args.csv or args.html:
        text_of = getattr(api, "text", None)
        if text_of is None:
            raise UsageError("this client cannot read HTML or CSV")
        if args.html:
            Path(args.html).write_text(text_of(f"{base}/{seg(args.id)}", "text/html"))
            ctx.note(f"wrote {args.html}")
        if args.csv:
            ctx.stdout.write(text_of(f"{base}/{seg(args.id)}/csv", "text/csv"))
        return EXIT_OK
    found = [r for r in _list(_dict(api.request("GET", base)), "reports") if r.get("id") == args.id]
    if not found:
        api.request("GET", f"{base}/{seg(args.id)}/csv")  # the API's own 404
        raise UsageError(f"no report {args.id!r}")
    ctx.emit(found[0], _report_text(found[0]))
    return EXIT_OK


def add_commands(command: Any, group: Any, sub: Any) -> None:
    """``reports schedule|send|list|show`` (called by :func:`cli.platform_cli.main.build_parser`)."""
    reports = group("reports", "the namespace's usage reports, by email and Slack", namespaced=True)
    p = command(reports, "schedule", cmd_schedule, "show the report schedule, or change it", namespaced=True)
    p.add_argument("--frequency", choices=("daily", "weekly", "monthly"))
    p.add_argument("--timezone", metavar="IANA", help="e.g. Europe/Berlin")
    p.add_argument("--hour", type=int, metavar="0-23", help="the local hour it goes out")
    p.add_argument("--weekday", choices=WEEKDAYS, help="weekly reports only")
    p.add_argument("--owners", action="store_true", help="email the namespace's owners (a channel)")
    p.add_argument("--email", action="append", metavar="ADDRESS", help="email this address (repeat)")
    p.add_argument("--slack", action="append", metavar="WEBHOOK_URL", help="post to this Slack webhook (repeat)")
    p.add_argument("--off", dest="enabled", action="store_const", const=False, help="no scheduled reports")
    p.add_argument("--on", dest="enabled", action="store_const", const=True, help="scheduled reports again")
    p = command(reports, "send", cmd_send, "send a report now (the last complete period)", namespaced=True)
    p.add_argument("--from", dest="from_", metavar="TIME", help="an ISO 8601 time or a duration back (7d)")
    p.add_argument("--to", metavar="TIME", help="an ISO 8601 time or a duration back")
    p.add_argument("--wait", action="store_true", help="follow it until it is sent (exit 1 if it fails)")
    p.add_argument("--timeout", type=float, default=120, help=argparse.SUPPRESS)
    command(reports, "list", cmd_list, "the reports sent, newest period first", namespaced=True)
    p = command(reports, "show", cmd_show, "one report: its period, totals and deliveries", namespaced=True)
    p.add_argument("id", metavar="REPORT_ID")
    p.add_argument("--html", metavar="FILE", help="write its rendered HTML to FILE")
    p.add_argument("--csv", action="store_true", help="print its figures as CSV")
