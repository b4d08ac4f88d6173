"""Alert messages people want to read, rendered from a group's alerts (``AlertRenderer``):

- email: a subject, a plain-text part and an HTML part (Jinja2 templates in
  ``chalicelib/templates/alerts/``; the HTML autoescaped);
- Slack: Block Kit (a header, a context line, one section per alert with its link), and the
  headline as the fallback text;
- SMS: one short line and the first alert's link;
- webhook: a JSON document as the Standard Webhooks specification suggests (``type``, ``timestamp``,
  ``data``), listing the alerts with their event's data.

Each alert says what happened, to which service or namespace, when, and links to the deployment,
invoice or page concerned (``chalicelib.domain.alerts.describe``).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from chalicelib.domain.alerts import ChannelKind
from chalicelib.domain.ports import Notification
from chalicelib.domain.services.alerts import AlertMessage

TEMPLATES = Path(__file__).resolve().parent.parent.parent / "templates" / "alerts"
COLOURS = {"critical": "#cf222e", "warning": "#bf8700", "info": "#0969da"}
MAX_HEADER = 150  # Block Kit: a header's text
MAX_SECTION = 3000  # Block Kit: a section's text


@cache
def _environment() -> Any:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape  # on first use: cold starts

    return Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )


def headline(message: AlertMessage) -> str:
    first = message.alerts[0].described.title if message.alerts else message.event_type
    if message.total <= 1:
        return first
    return f"{message.total} alerts: {first}, and {message.total - 1} more like it"


def _items(message: AlertMessage) -> list[dict[str, Any]]:
    return [
        {
            "title": a.described.title,
            "details": list(a.described.details),
            "link": a.described.link,
            "link_text": a.described.link_text,
            "when": a.alert.occurred_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
            "occurrences": a.alert.occurrences,
        }
        for a in message.alerts
    ]


def _context(message: AlertMessage) -> dict[str, Any]:
    return {
        "headline": headline(message),
        "items": _items(message),
        "more": max(0, message.total - len(message.alerts)),
        "namespace": message.namespace or "the platform",
        "rule": message.rule_id,
        "severity": message.severity,
        "event_type": message.event_type,
        "colour": COLOURS.get(message.severity, "#59636e"),
        "test": message.test,
    }


def _slack_escape(text: str) -> str:
    """Slack's mrkdwn control characters (docs.slack.dev, "Formatting text for app surfaces": escaping)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_blocks(message: AlertMessage) -> tuple[dict[str, Any], ...]:
    ctx = _context(message)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": ctx["headline"][:MAX_HEADER], "emoji": False}},
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": _slack_escape(f"{message.severity} · {ctx['namespace']} · rule {message.rule_id} · ")
                    + f"`{_slack_escape(message.event_type)}`",
                }
            ],
        },
    ]
    for item in ctx["items"]:
        lines = [f"*{_slack_escape(item['title'])}*", *(_slack_escape(d) for d in item["details"])]
        lines.append(
            _slack_escape(item["when"]) + (f" · seen {item['occurrences']} times" if item["occurrences"] > 1 else "")
        )
        if item["link"]:
            lines.append(f"<{item['link']}|{_slack_escape(item['link_text'])}>")
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)[:MAX_SECTION]}})
    if ctx["more"]:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"… and {ctx['more']} more."}]})
    if message.test:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": "This is a test message."}]})
    return tuple(blocks)


def webhook_body(message: AlertMessage) -> str:
    latest = max((a.alert.occurred_at for a in message.alerts), default=None)
    return json.dumps(
        {
            "type": "alert.test" if message.test else "alert.fired",
            "timestamp": latest.isoformat() if latest else None,
            "data": {
                "namespace": message.namespace,
                "rule": message.rule_id,
                "severity": message.severity,
                "event_type": message.event_type,
                "group_id": message.group_id,
                "total": message.total,
                "alerts": [
                    {
                        "id": a.alert.id,
                        "event_id": a.alert.event_id,
                        "event_type": a.alert.event_type,
                        "occurred_at": a.alert.occurred_at.isoformat(),
                        "title": a.described.title,
                        "details": list(a.described.details),
                        "link": a.described.link,
                        "occurrences": a.alert.occurrences,
                        "data": a.alert.data,
                    }
                    for a in message.alerts
                ],
            },
        },
        separators=(",", ":"),
        default=str,
    )


class JinjaAlertRenderer:
    def render(self, kind: ChannelKind, message: AlertMessage) -> Notification:
        ctx = _context(message)
        subject = f"[{ctx['namespace']}] {ctx['headline']}"
        env = _environment()
        if kind == "email":
            return Notification(
                channel="email",
                target="",
                subject=subject,
                text=env.get_template("alert.txt.j2").render(ctx),
                html=env.get_template("alert.html.j2").render(ctx),
            )
        if kind == "slack":
            return Notification(channel="slack", target="", subject=subject, text=subject, blocks=slack_blocks(message))
        if kind == "sms":
            return Notification(
                channel="sms", target="", subject=subject, text=env.get_template("alert.sms.j2").render(ctx).strip()
            )
        return Notification(channel="webhook", target="", subject=subject, text=webhook_body(message))
