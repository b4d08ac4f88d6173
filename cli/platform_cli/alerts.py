"""The commands for alerts: ``alerts channels [add|update|remove|rotate-secret]``, ``alerts rules [set]``,
``alerts history``, ``alerts test CHANNEL``; and ``outbox`` (the local stage: everything sent)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from cli.platform_cli.commands import _dict, _list, seg
from cli.platform_cli.context import Context
from cli.platform_cli.deploys import _ns
from cli.platform_cli.errors import EXIT_API, EXIT_OK, UsageError
from cli.platform_cli.output import key_values, table


def _alerts(ns: str) -> str:
    return f"/v1/namespaces/{seg(ns)}/alerts"


def _channel_pairs(c: dict[str, Any]) -> list[tuple[str, Any]]:
    return [
        ("id", c.get("id")),
        ("kind", c.get("kind")),
        ("name", c.get("name")),
        ("target", c.get("target")),
        ("enabled", c.get("enabled")),
        ("rate limit", f"{c.get('rate_limit')} messages an hour"),
    ]


def cmd_channels_list(ctx: Context, args: argparse.Namespace) -> int:
    answer = _dict(ctx.api().request("GET", f"{_alerts(_ns(ctx, args))}/channels"))
    rows = [
        [c.get("id"), c.get("kind"), c.get("name"), c.get("target"), c.get("enabled"), c.get("rate_limit")]
        for c in _list(answer, "channels")
    ]
    ctx.emit(answer, table(["id", "kind", "name", "target", "enabled", "per hour"], rows))
    return EXIT_OK


def cmd_channels_add(ctx: Context, args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"kind": args.kind, "name": args.name, "target": args.target}
    if args.rate_limit is not None:
        body["rate_limit"] = args.rate_limit
    c = _dict(ctx.api().request("POST", f"{_alerts(_ns(ctx, args))}/channels", json=body))
    pairs = _channel_pairs(c)
    if c.get("secret"):
        pairs.append(("secret", c["secret"]))
        ctx.note("note: keep the signing secret now (your receiver verifies with it): it is not shown again")
    ctx.emit(c, key_values(pairs))
    return EXIT_OK


def cmd_channels_update(ctx: Context, args: argparse.Namespace) -> int:
    body: dict[str, Any] = {}
    for name in ("name", "target", "rate_limit"):
        if getattr(args, name) is not None:
            body[name] = getattr(args, name)
    if args.enabled is not None:
        body["enabled"] = args.enabled
    if not body:
        raise UsageError("give at least one of --name, --target, --rate-limit, --enable, --disable")
    c = _dict(ctx.api().request("PATCH", f"{_alerts(_ns(ctx, args))}/channels/{seg(args.channel)}", json=body))
    ctx.emit(c, key_values(_channel_pairs(c)))
    return EXIT_OK


def cmd_channels_remove(ctx: Context, args: argparse.Namespace) -> int:
    ctx.api().request("DELETE", f"{_alerts(_ns(ctx, args))}/channels/{seg(args.channel)}")
    ctx.emit({"removed": args.channel}, f"removed {args.channel}\n")
    return EXIT_OK


def cmd_channels_rotate(ctx: Context, args: argparse.Namespace) -> int:
    a = _dict(ctx.api().request("POST", f"{_alerts(_ns(ctx, args))}/channels/{seg(args.channel)}/rotate-secret"))
    ctx.note("note: the previous secret keeps signing beside the new one for 24 hours; keep the new one now")
    ctx.emit(a, key_values([*_channel_pairs(_dict(a.get("channel"))), ("secret", a.get("secret"))]))
    return EXIT_OK


def _rules_text(answer: dict[str, Any]) -> str:
    rows = [
        [
            r.get("id"),
            ", ".join(r.get("events") or []),
            ", ".join(r.get("channels") or []),
            r.get("severity"),
            f"{r.get('repeat_interval')}s",
            f"{r.get('group_window')}s",
            r.get("enabled"),
        ]
        for r in _list(answer, "rules")
    ]
    head = "the defaults (no rules of this namespace's own yet)\n" if answer.get("default") else ""
    return head + table(["id", "events", "channels", "severity", "repeat", "group", "enabled"], rows)


def cmd_rules(ctx: Context, args: argparse.Namespace) -> int:
    answer = _dict(ctx.api().request("GET", f"{_alerts(_ns(ctx, args))}/rules"))
    ctx.emit(answer, _rules_text(answer))
    return EXIT_OK


def cmd_rules_set(ctx: Context, args: argparse.Namespace) -> int:
    text = ctx.stdin.read() if args.file == "-" else _read(args.file)
    try:
        data = json.loads(text)
    except ValueError as e:
        raise UsageError(f"{args.file}: not JSON ({e})") from None
    body = {"rules": data} if isinstance(data, list) else data
    if not isinstance(body, dict) or not isinstance(body.get("rules"), list):
        raise UsageError(f'{args.file}: a list of rules, or {{"rules": [...]}}')
    answer = _dict(ctx.api().request("PUT", f"{_alerts(_ns(ctx, args))}/rules", json={"rules": body["rules"]}))
    ctx.emit(answer, _rules_text(answer))
    return EXIT_OK


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError as e:
        raise UsageError(f"{path}: {e.strerror}") from None


def cmd_history(ctx: Context, args: argparse.Namespace) -> int:
    params = {"limit": str(args.limit)} if args.limit else {}
    path = _alerts(_ns(ctx, args)) + (f"?{urlencode(params)}" if params else "")
    answer = _dict(ctx.api().request("GET", path))
    rows = []
    for a in _list(answer, "alerts"):
        rows.append([a.get("occurred_at"), a.get("severity"), a.get("title"), "", "", "", ""])
        for c in _list(a, "channels"):
            rows.append(
                ["", "", "", c.get("kind") or c.get("channel_id"), c.get("target"), c.get("status"), c.get("attempts")]
            )
            if c.get("last_error"):
                rows.append(["", "", "", "", "", f"  {c.get('last_error')}", ""])
    text = table(["when", "severity", "alert", "channel", "to", "status", "attempts"], rows) if rows else "no alerts\n"
    ctx.emit(answer, text)
    return EXIT_OK


def cmd_test(ctx: Context, args: argparse.Namespace) -> int:
    answer = _dict(ctx.api().request("POST", f"{_alerts(_ns(ctx, args))}/channels/{seg(args.channel)}/test"))
    rows = [[r.get("target"), r.get("status"), r.get("error"), r.get("message_id")] for r in _list(answer, "results")]
    ctx.emit(answer, table(["to", "status", "error", "message id"], rows))
    return EXIT_OK if answer.get("delivered") else EXIT_API


def cmd_outbox(ctx: Context, args: argparse.Namespace) -> int:
    answer = _dict(ctx.api().request("GET", "/v1/local/outbox"))
    rows = []
    for m in _list(answer, "messages"):
        if args.kind and m.get("kind") != args.kind:
            continue
        note = m.get("file") or m.get("error") or ("signature verified" if m.get("verified") else None)
        rows.append([m.get("at"), m.get("kind"), m.get("to"), m.get("summary"), note])
    ctx.emit(answer, table(["at", "kind", "to", "what", "file / note"], rows) if rows else "nothing sent yet\n")
    return EXIT_OK


def add_commands(command: Any, group: Any, sub: Any) -> None:
    """``alerts ...`` and ``outbox`` (called by :func:`cli.platform_cli.main.build_parser`)."""
    alerts = group("alerts", "alert channels, rules, history and test messages", namespaced=True)
    p = command(alerts, "channels", cmd_channels_list, "the alert channels (add, update, remove them)", namespaced=True)
    channels = p.add_subparsers(dest="channels_command", metavar="SUBCOMMAND")
    p = command(channels, "add", cmd_channels_add, "add a channel (a webhook's secret is shown once)", namespaced=True)
    p.add_argument("--kind", required=True, choices=("email", "sms", "slack", "webhook"))
    p.add_argument("--name", required=True, help="a name to recognise it by")
    p.add_argument(
        "--target",
        required=True,
        help="an email address, an E.164 number (+14155550100), a Slack incoming webhook, an https URL",
    )
    p.add_argument("--rate-limit", type=int, metavar="N", help="messages an hour at most")
    p = command(channels, "update", cmd_channels_update, "change a channel", namespaced=True)
    p.add_argument("channel", metavar="CHANNEL_ID")
    p.add_argument("--name")
    p.add_argument("--target")
    p.add_argument("--rate-limit", type=int, metavar="N")
    state = p.add_mutually_exclusive_group()
    state.add_argument("--enable", dest="enabled", action="store_true", default=None)
    state.add_argument("--disable", dest="enabled", action="store_false")
    p = command(channels, "remove", cmd_channels_remove, "delete a channel (no rule may use it)", namespaced=True)
    p.add_argument("channel", metavar="CHANNEL_ID")
    p = command(channels, "rotate-secret", cmd_channels_rotate, "a new signing secret for a webhook", namespaced=True)
    p.add_argument("channel", metavar="CHANNEL_ID")
    p = command(alerts, "rules", cmd_rules, "which events go to which channels (set: replace them)", namespaced=True)
    rules = p.add_subparsers(dest="rules_command", metavar="SUBCOMMAND")
    p = command(rules, "set", cmd_rules_set, "replace the rules from a JSON file (- for stdin)", namespaced=True)
    p.add_argument("file", metavar="FILE")
    p = command(alerts, "history", cmd_history, "the alerts, newest first, with each channel's status", namespaced=True)
    p.add_argument("--limit", type=int, help="at most this many (API default 50, max 200)")
    what = "send a test message to a channel now (exit 1 if not delivered)"
    p = command(alerts, "test", cmd_test, what, namespaced=True)
    p.add_argument("channel", metavar="CHANNEL_ID", help="a channel id, or owners")
    p = command(sub, "outbox", cmd_outbox, "local stage: everything sent (emails, SMS, Slack, webhooks)")
    p.add_argument("--kind", choices=("email", "sms", "slack", "webhook"), help="one kind only")
