"""Alerts: channels (email, SMS, Slack, signed webhooks), rules, and the alerts with each channel's status."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, StrictBool, StrictInt, model_validator

from chalicelib.api.schemas import ApiInput, ApiModel

Kind = Literal["email", "sms", "slack", "webhook"]
SeverityName = Literal["critical", "warning", "info"]


class ChannelIn(ApiInput):
    kind: Kind
    name: str = Field(min_length=1, max_length=100)
    target: str = Field(
        min_length=1,
        max_length=2048,
        description="email: an address; sms: an E.164 number (+14155550100); slack: an incoming webhook "
        "(https://hooks.slack.com/services/...); webhook: an https URL",
    )
    rate_limit: StrictInt | None = Field(default=None, ge=1, le=3600, description="messages per hour at most")


class ChannelPatchIn(ApiInput):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    target: str | None = Field(default=None, min_length=1, max_length=2048)
    enabled: StrictBool | None = None
    rate_limit: StrictInt | None = Field(default=None, ge=1, le=3600)

    @model_validator(mode="after")
    def something(self) -> ChannelPatchIn:
        if self.name is None and self.target is None and self.enabled is None and self.rate_limit is None:
            raise ValueError("give at least one of name, target, enabled, rate_limit")
        return self


class ChannelOut(ApiModel):
    id: str = Field(description="a ULID, or owners (built in: email to the namespace's owners)")
    kind: Kind
    name: str
    target: str = Field(description="as it may be shown: a Slack webhook's path (its credential) masked")
    enabled: bool
    rate_limit: int = Field(description="messages per hour at most")
    builtin: bool
    created_at: datetime
    created_by: str
    updated_at: datetime


class ChannelCreatedOut(ChannelOut):
    secret: str | None = Field(
        description="a webhook channel's signing secret (whsec_...), shown this once; null for other kinds"
    )


class ChannelsOut(ApiModel):
    channels: list[ChannelOut]


class SecretOut(ApiModel):
    channel: ChannelOut
    secret: str = Field(description="the new signing secret, shown this once; the previous one signs too for 24 h")


class SendOut(ApiModel):
    status: Literal["sending", "sent", "failed", "refused", "unknown"]
    target: str
    error: str | None
    message_id: str | None
    attempts: int


class TestOut(ApiModel):
    channel_id: str
    delivered: bool = Field(description="every message of the test was accepted by the provider or receiver")
    results: list[SendOut]


class RuleIn(ApiInput):
    id: str = Field(min_length=1, max_length=40, description="a-z, 0-9 and -")
    events: list[str] = Field(min_length=1, max_length=20, description="event types, or prefix.* (billing.*)")
    channels: list[str] = Field(min_length=1, max_length=10, description="channel ids, or owners")
    severity: SeverityName = "warning"
    repeat_interval: StrictInt = Field(
        default=14400, ge=60, le=604800, description="seconds: the same alert within them is delivered once"
    )
    group_window: StrictInt = Field(
        default=30, ge=0, le=900, description="seconds: alerts of one kind within them go out as one message"
    )
    enabled: StrictBool = True


class RulesIn(ApiInput):
    rules: list[RuleIn] = Field(max_length=20)


class RuleOut(ApiModel):
    id: str
    events: list[str]
    channels: list[str]
    severity: SeverityName
    repeat_interval: int
    group_window: int
    enabled: bool


class RulesOut(ApiModel):
    rules: list[RuleOut]
    default: bool = Field(description="true while the namespace has no rules of its own (these are the defaults)")
    version: int
    updated_at: datetime | None
    updated_by: str | None
    event_types: list[str] = Field(description="every event type a rule may name")


class ChannelStatusOut(ApiModel):
    channel_id: str
    kind: str
    status: str = Field(
        description="pending (the group is gathering), skipped (with why), or the delivery's: sending, sent, "
        "failed (tried again after a backoff while attempts remain), refused, unknown (it may have arrived: "
        "never sent again)"
    )
    target: str | None
    attempts: int
    last_error: str | None
    message_id: str | None
    updated_at: datetime | None


class AlertOut(ApiModel):
    id: str
    event_id: str
    event_type: str
    rule_id: str
    severity: SeverityName
    occurred_at: datetime
    title: str
    details: list[str]
    link: str | None
    occurrences: int = Field(description="how often the same alert came within its repeat interval")
    last_seen_at: datetime | None
    group_id: str
    group_status: str = Field(description="open while it gathers alerts, flushed once sent")
    flush_at: datetime | None
    channels: list[ChannelStatusOut]


class AlertsOut(ApiModel):
    alerts: list[AlertOut]
    next_before: str | None = Field(description="pass as ?before= for the next (older) page")


class OutboxMessageOut(ApiModel):
    kind: Kind
    at: datetime | None = Field(description="when it was sent or received (null: SNS keeps no time)")
    to: str = Field(description="an address, a number, a Slack webhook's path, a receiver's endpoint")
    summary: str = Field(description="an email's subject, a text, a Slack message's text, a webhook's first alert")
    id: str | None = Field(description="the provider's message id (a webhook's webhook-id)")
    file: str | None = Field(description="an email's .eml copy under the local data folder")
    verified: bool | None = Field(description="a webhook: whether the receiver verified its signature")
    error: str | None


class OutboxOut(ApiModel):
    messages: list[OutboxMessageOut]
