"""Usage reports: the schedule (frequency, time zone, local hour, channels), sending one now, and the
reports sent. A Slack channel's webhook URL is a credential: it is shown masked."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, StrictBool, StrictInt, StrictStr

from chalicelib.api.schemas import ApiInput, ApiModel


class EmailChannelIn(ApiInput):
    type: Literal["email"]
    to: StrictStr = Field(max_length=254, description="an email address, or `owners`: the namespace's owners when sent")


class SlackChannelIn(ApiInput):
    type: Literal["slack"]
    webhook_url: StrictStr = Field(max_length=2048, description="a Slack incoming-webhook URL (https, a public host)")


ChannelIn = Annotated[EmailChannelIn | SlackChannelIn, Field(discriminator="type")]


class ScheduleIn(ApiInput):
    frequency: Literal["daily", "weekly", "monthly"]
    timezone: StrictStr = Field(max_length=64, description="an IANA time zone (Europe/Berlin, UTC)")
    hour: StrictInt = Field(description="the local hour it goes out, 0-23")
    weekday: Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"] | None = Field(
        default=None, description="weekly only (default monday)"
    )
    channels: list[ChannelIn] = Field(max_length=10, description="where it goes (default: the owners by email)")
    enabled: StrictBool = Field(default=True, description="false: no scheduled report (sending one now still works)")


class ScheduleChannelOut(ApiModel):
    id: str
    type: Literal["email", "slack"]
    to: str | None = None
    webhook_url: str | None = Field(default=None, description="masked: scheme and host only")


class ScheduleOut(ApiModel):
    namespace: str
    frequency: str
    timezone: str
    hour: int
    weekday: str | None
    channels: list[ScheduleChannelOut]
    enabled: bool
    next_due: datetime | None = Field(description="the UTC hour the next report goes out in")
    updated_at: datetime | None
    updated_by: str


class SendIn(ApiInput):
    from_: StrictStr | None = Field(default=None, alias="from", description="ISO 8601 with a time zone")
    to: StrictStr | None = Field(default=None, description="ISO 8601 with a time zone; at most 35 days after from")


class ReportPeriodOut(ApiModel):
    kind: str
    timezone: str
    start: datetime
    end: datetime
    usage_from: datetime = Field(description="the first UTC hour counted (GET .../usage?from=)")
    usage_to: datetime = Field(description="the end of the last UTC hour counted (GET .../usage?to=)")
    note: str | None = None


class ReportChannelOut(ApiModel):
    channel: str
    type: str
    target: str
    status: str
    key: str | None = None


class ReportOut(ApiModel):
    id: str
    namespace: str
    period: ReportPeriodOut
    status: str
    trigger: str
    created_at: datetime
    channels: list[ReportChannelOut]
    summary: dict[str, Any] | None = None
    html_url: str
    csv_url: str


class ReportListOut(ApiModel):
    reports: list[ReportOut]
