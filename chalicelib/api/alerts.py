"""Alerts: a namespace's channels and rules (admins change them, members read them), the alerts with
each channel's status, and a test message that says what really happened."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalice.app import Blueprint, Response

from chalicelib.api.registry import Auth, Call, registry
from chalicelib.composition import get_container
from chalicelib.domain.errors import ConflictError, NotFoundError, ValidationError

if TYPE_CHECKING:
    from chalicelib.domain.alerts import Channel, RuleSet
    from chalicelib.domain.services.alerts import AlertView
    from chalicelib.domain.services.delivery import Delivery

bp = Blueprint(__name__)
route = registry.routes(bp, tag="alerts")
S = "chalicelib.api.schemas.alerts"
ALERTS = "/v1/namespaces/{ns}/alerts"
CHANNELS = ALERTS + "/channels"
CHANNEL = CHANNELS + "/{channel}"
READ = Auth(scope="read", role="member")
CHANGE = Auth(scope="admin", role="admin")


def channel_view(c: Channel) -> dict[str, Any]:
    return {
        "id": c.id,
        "kind": c.kind,
        "name": c.name,
        "target": c.display,
        "enabled": c.enabled,
        "rate_limit": c.rate_limit,
        "builtin": c.builtin,
        "created_at": c.created_at,
        "created_by": c.created_by,
        "updated_at": c.updated_at,
    }


def rules_view(r: RuleSet) -> dict[str, Any]:
    from chalicelib.domain.alerts import ALERTABLE

    return {
        "rules": [
            {
                "id": rule.id,
                "events": list(rule.events),
                "channels": list(rule.channels),
                "severity": rule.severity,
                "repeat_interval": rule.repeat_interval,
                "group_window": rule.group_window,
                "enabled": rule.enabled,
            }
            for rule in r.rules
        ],
        "default": r.default,
        "version": r.version,
        "updated_at": r.updated_at,
        "updated_by": r.updated_by,
        "event_types": list(ALERTABLE),
    }


def alert_view(v: AlertView) -> dict[str, Any]:
    a = v.alert
    return {
        "id": a.id,
        "event_id": a.event_id,
        "event_type": a.event_type,
        "rule_id": a.rule_id,
        "severity": a.severity,
        "occurred_at": a.occurred_at,
        "title": v.described.title,
        "details": list(v.described.details),
        "link": v.described.link,
        "occurrences": a.occurrences,
        "last_seen_at": a.last_seen_at,
        "group_id": a.group_id,
        "group_status": v.group_status,
        "flush_at": v.flush_at,
        "channels": [
            {
                "channel_id": c.channel_id,
                "kind": c.kind,
                "status": c.status,
                "target": c.target,
                "attempts": c.attempts,
                "last_error": c.last_error,
                "message_id": c.provider_id,
                "updated_at": c.updated_at,
            }
            for c in v.channels
        ],
    }


def send_view(d: Delivery) -> dict[str, Any]:
    return {
        "status": d.status,
        "target": d.target,
        "error": d.error,
        "message_id": d.provider_id,
        "attempts": len(d.attempts),
    }


@route(
    ALERTS,
    "GET",
    auth=READ,
    response=f"{S}:AlertsOut",
    errors=(NotFoundError, ValidationError),
    query={"limit": "at most this many (1-200, default 50)", "before": "an alert id: the older ones"},
    summary="The namespace's alerts, newest first, each with every channel's status, attempts and last error",
)
def list_alerts(call: Call) -> dict[str, Any]:
    limit = call.int_param("limit", 50, 1, 200)
    before = call.query.get("before") or None
    if before is not None and not _alert_id_ok(before):
        raise ValidationError("before: an alert id", {"fields": [{"field": "before", "message": "an alert id"}]})
    views = get_container().alerts.list_alerts(call.params["ns"], limit, before)
    return {
        "alerts": [alert_view(v) for v in views],
        "next_before": views[-1].alert.id if len(views) == limit else None,
    }


def _alert_id_ok(value: str) -> bool:
    from chalicelib.domain.alerts import CHANNEL_ID, RULE_ID

    event_id, sep, rule_id = value.partition(":")
    return bool(sep) and bool(CHANNEL_ID.match(event_id)) and bool(RULE_ID.match(rule_id))


@route(
    CHANNELS,
    "GET",
    auth=READ,
    response=f"{S}:ChannelsOut",
    errors=(NotFoundError,),
    summary="The namespace's alert channels, the built-in owners channel first",
)
def list_alert_channels(call: Call) -> dict[str, Any]:
    return {"channels": [channel_view(c) for c in get_container().alerts.list_channels(call.params["ns"])]}


@route(
    CHANNELS,
    "POST",
    status=201,
    auth=CHANGE,
    request=f"{S}:ChannelIn",
    response=f"{S}:ChannelCreatedOut",
    errors=(NotFoundError, ValidationError),
    summary="Add a channel: email (SES), sms (SNS, E.164), slack (an incoming webhook) or webhook (signed as "
    "Standard Webhooks says: its secret is in this answer only)",
)
def create_alert_channel(call: Call) -> dict[str, Any]:
    b = call.body
    channel, secret = get_container().alerts.create_channel(
        call.params["ns"], b.kind, b.name, b.target, b.rate_limit, call.principal.actor
    )
    call.audit_target = f"alert-channel:{channel.id}"
    return {**channel_view(channel), "secret": secret}


@route(
    CHANNEL,
    "GET",
    auth=READ,
    response=f"{S}:ChannelOut",
    errors=(NotFoundError,),
    summary="One alert channel",
)
def get_alert_channel(call: Call) -> dict[str, Any]:
    return channel_view(get_container().alerts.get_channel(call.params["ns"], call.params["channel"]))


@route(
    CHANNEL,
    "PATCH",
    auth=CHANGE,
    request=f"{S}:ChannelPatchIn",
    response=f"{S}:ChannelOut",
    errors=(NotFoundError, ValidationError),
    summary="Rename a channel, change its target or rate limit, enable or disable it",
)
def patch_alert_channel(call: Call) -> dict[str, Any]:
    b = call.body
    channel = get_container().alerts.update_channel(
        call.params["ns"],
        call.params["channel"],
        name=b.name,
        target=b.target,
        enabled=b.enabled,
        rate_limit=b.rate_limit,
    )
    call.audit_target = f"alert-channel:{channel.id}"
    return channel_view(channel)


@route(
    CHANNEL,
    "DELETE",
    status=204,
    auth=CHANGE,
    errors=(NotFoundError, ConflictError, ValidationError),
    response_content_type="text/plain",
    summary="Delete a channel (409 while a rule uses it)",
)
def delete_alert_channel(call: Call) -> Response:
    get_container().alerts.delete_channel(call.params["ns"], call.params["channel"])
    call.audit_target = f"alert-channel:{call.params['channel']}"
    return Response(body="", status_code=204, headers={"Content-Type": "text/plain"})


@route(
    CHANNEL + "/rotate-secret",
    "POST",
    auth=CHANGE,
    response=f"{S}:SecretOut",
    errors=(NotFoundError, ValidationError),
    summary="A new signing secret for a webhook channel (in this answer only); the previous one keeps "
    "signing beside it for 24 hours",
)
def rotate_alert_secret(call: Call) -> dict[str, Any]:
    channel, secret = get_container().alerts.rotate_secret(call.params["ns"], call.params["channel"])
    call.audit_target = f"alert-channel:{channel.id}"
    return {"channel": channel_view(channel), "secret": secret}


@route(
    CHANNEL + "/test",
    "POST",
    auth=CHANGE,
    response=f"{S}:TestOut",
    errors=(NotFoundError, ValidationError),
    summary="Send a test message now and answer what really happened: delivered, or the error",
)
def test_alert_channel(call: Call) -> dict[str, Any]:
    results = get_container().alerts.test_channel(call.params["ns"], call.params["channel"], call.principal.actor)
    call.audit_target = f"alert-channel:{call.params['channel']}"
    return {
        "channel_id": call.params["channel"],
        "delivered": all(d.status == "sent" for d in results),
        "results": [send_view(d) for d in results],
    }


@route(
    ALERTS + "/rules",
    "GET",
    auth=READ,
    response=f"{S}:RulesOut",
    errors=(NotFoundError,),
    summary="Which event types go to which channels (the defaults while none are set)",
)
def get_alert_rules(call: Call) -> dict[str, Any]:
    return rules_view(get_container().alerts.rules(call.params["ns"]))


@route(
    ALERTS + "/rules",
    "PUT",
    auth=CHANGE,
    request=f"{S}:RulesIn",
    response=f"{S}:RulesOut",
    errors=(NotFoundError, ValidationError, ConflictError),
    summary="Replace the rules: event types, channels, severity, repeat interval, grouping window",
)
def put_alert_rules(call: Call) -> dict[str, Any]:
    rules = [r.model_dump() for r in call.body.rules]
    call.audit_target = "alert-rules"
    return rules_view(get_container().alerts.put_rules(call.params["ns"], rules, call.principal.actor))


@route(
    "/v1/local/outbox",
    "GET",
    auth=Auth(scope="read"),
    response=f"{S}:OutboxOut",
    stages=("local",),
    summary="Local stage only: everything sent, of every kind (emails with their .eml copies, texts, Slack "
    "posts, signed webhooks and whether the receiver verified them), oldest first",
)
def local_outbox(call: Call) -> dict[str, Any]:
    from chalicelib.adapters.local_outbox import read_outbox

    settings = get_container().settings
    sent = read_outbox(
        settings.aws_endpoint_url, settings.mail_dir, settings.slack_standin_url, settings.webhook_receiver_url
    )
    sent.sort(key=lambda m: (m.at is None, m.at.isoformat() if m.at else ""))
    return {
        "messages": [
            {
                "kind": m.kind,
                "at": m.at,
                "to": m.to,
                "summary": m.summary,
                "id": m.id,
                "file": m.file,
                "verified": m.verified,
                "error": m.error,
            }
            for m in sent
        ]
    }
