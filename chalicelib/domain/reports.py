"""Usage reports: schedules in the namespace's time zone, the periods they cover, and the figures a
report holds. (The service that stores, fans out and sends them is ``services/reports.py``; the
renderer, with its heavy imports, is an adapter.)

**When a report goes out.** A schedule says ``frequency`` (``daily``, ``weekly`` on ``weekday``,
``monthly`` on the 1st), ``timezone`` (IANA) and ``hour`` (local, 0-23). Its send instant is that
local hour on each matching local date, through ``zoneinfo``: a local hour that does not exist (the
spring-forward gap) is read with the offset before the switch (02:00 in Berlin on the switch day is
03:00 CEST, the first moment after the gap), a repeated one (fall back) is its first occurrence. The
platform's hourly fan-out runs at a fixed minute of every UTC hour (``FANOUT_MINUTE``) and takes what is
due in that UTC hour: a schedule is filed under the first UTC hour starting at or after its send
instant (``due_hour``), so in a zone offset by a fraction of an hour (Asia/Kolkata, +05:30) a 09:00
report goes out in the hour after 09:30 local, never before 09:00.

**What a report covers.** The last complete period before its send date, in the time zone: the
previous local day; the previous local week, Monday 00:00 to Monday 00:00 (167 or 169 hours across a
daylight-saving switch); the previous local month. The ledger's buckets are UTC hours: a bucket
belongs to the period its start falls in, so a period counts the UTC hours from the first hour
starting at or after its start up to the first starting at or after its end (``ledger_range``). In a
whole-hour zone that is exactly the period; in a half-hour zone the period's first half hour is counted
in the period before and the half hour after its end in this one (the report says so), so
consecutive reports never count an hour twice nor miss one.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from chalicelib.domain.errors import ValidationError

Frequency = Literal["daily", "weekly", "monthly"]
FREQUENCIES: tuple[Frequency, ...] = ("daily", "weekly", "monthly")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
FANOUT_MINUTE = 15  # the hourly fan-out's minute: after the metering run (:05) closed the last hour
MAX_CHANNELS = 10
OWNERS = "owners"  # an email channel to the namespace's owners, whoever they are when it is sent
DEFAULT_SCHEDULE = {"frequency": "weekly", "timezone": "UTC", "hour": 9, "weekday": "monday"}
REPORT_ID = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}(?:T[0-9]{2}Z)?-[a-z0-9-]{1,40}$")


@dataclass(frozen=True)
class Channel:
    """Where a report goes: ``email`` to an address or to ``owners``; ``slack`` to an incoming webhook
    (its URL a secret: stored encrypted, shown masked)."""

    type: Literal["email", "slack"]
    to: str | None = None  # email
    webhook_url: str | None = None  # slack, in the clear only in memory

    @property
    def id(self) -> str:
        target = self.to if self.type == "email" else self.webhook_url
        return f"{self.type}-{hashlib.sha256((target or '').encode()).hexdigest()[:10]}"


@dataclass(frozen=True)
class Schedule:
    namespace: str
    frequency: Frequency
    timezone: str
    hour: int
    weekday: str | None  # weekly only
    channels: tuple[Channel, ...]
    enabled: bool = True
    next_due: datetime | None = None  # the UTC hour it is filed under in the due index
    updated_at: datetime | None = None
    updated_by: str = "system"

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True)
class Period:
    """A report's period: local bounds, their UTC instants, and the UTC hours of the ledger it counts."""

    kind: str  # daily, weekly, monthly, custom
    timezone: str
    start: datetime  # local (aware)
    end: datetime
    ledger_from: datetime  # UTC hour
    ledger_to: datetime

    @property
    def id(self) -> str:
        if self.kind == "custom":
            hours = int((self.ledger_to - self.ledger_from).total_seconds() // 3600)
            return f"{self.ledger_from:%Y-%m-%dT%H}Z-custom-{hours}h"
        return f"{self.start:%Y-%m-%d}-{self.kind}"

    @property
    def hours(self) -> int:
        return int((self.end.astimezone(UTC) - self.start.astimezone(UTC)).total_seconds() // 3600)

    @property
    def note(self) -> str | None:
        """How the first and last hours were counted, when the period does not start on a UTC hour."""
        if self.ledger_from == self.start.astimezone(UTC):
            return None
        zone = ZoneInfo(self.timezone)
        return (
            "Usage is kept by UTC hour and each hour is counted in the period it starts in: this report "
            f"counts the hours from {self.ledger_from:%Y-%m-%d %H:%M} UTC "
            f"({self.ledger_from.astimezone(zone):%H:%M} local) to {self.ledger_to:%Y-%m-%d %H:%M} UTC "
            f"({self.ledger_to.astimezone(zone):%H:%M} local): the hour that began before "
            f"{self.start:%H:%M} on {self.start:%Y-%m-%d} is in the previous report, the one that began "
            f"before {self.end:%H:%M} on {self.end:%Y-%m-%d} is in this one."
        )

    def previous(self) -> Period:
        """The period before, of the same kind and length in local time."""
        zone = ZoneInfo(self.timezone)
        if self.kind == "daily":
            return local_period("daily", self.timezone, self.start.date() - timedelta(days=1), zone)
        if self.kind == "weekly":
            return local_period("weekly", self.timezone, self.start.date() - timedelta(days=7), zone)
        if self.kind == "monthly":
            first = self.start.date()
            prev = (first - timedelta(days=1)).replace(day=1)
            return local_period("monthly", self.timezone, prev, zone)
        length = self.ledger_to - self.ledger_from
        return custom_period(self.timezone, self.ledger_from - length, self.ledger_from)


# --------------------------------------------------------------------------- validation


def check_timezone(name: Any) -> str:
    if not isinstance(name, str) or name not in _zones():
        raise _invalid("timezone", "an IANA time zone, e.g. Europe/Berlin or UTC")
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise _invalid("timezone", "an IANA time zone, e.g. Europe/Berlin or UTC") from e
    return name


_ZONES: set[str] | None = None


def _zones() -> set[str]:
    global _ZONES
    if _ZONES is None:
        _ZONES = set(available_timezones()) | {"UTC"}
    return _ZONES


def validate_schedule(frequency: Any, timezone: Any, hour: Any, weekday: Any) -> tuple[Frequency, str, int, str | None]:
    """422 naming every failing field."""
    fields = []
    if frequency not in FREQUENCIES:
        fields.append({"field": "frequency", "message": "daily, weekly or monthly"})
    try:
        check_timezone(timezone)
    except ValidationError as e:
        fields.extend(e.details["fields"])
    if isinstance(hour, bool) or not isinstance(hour, int) or not 0 <= hour <= 23:
        fields.append({"field": "hour", "message": "a whole hour of the day, 0-23 (local time)"})
    if frequency == "weekly":
        if weekday is None:
            weekday = "monday"
        if weekday not in WEEKDAYS:
            fields.append({"field": "weekday", "message": f"one of {', '.join(WEEKDAYS)}"})
    elif weekday is not None:
        fields.append({"field": "weekday", "message": "only a weekly schedule has a weekday"})
    if fields:
        names = ", ".join(f"{f['field']}: {f['message']}" for f in fields)
        raise ValidationError(f"the schedule is not valid ({names})", {"fields": fields})
    return frequency, timezone, hour, weekday


# --------------------------------------------------------------------------- time


def send_instant(schedule: Schedule, on: date) -> datetime:
    """The UTC instant of the schedule's local hour on a local date (gaps read with the offset before
    the switch; repeated hours: the first)."""
    local = datetime.combine(on, time(schedule.hour), tzinfo=schedule.zone)  # fold=0
    return local.astimezone(UTC)


def _ceil_hour(when: datetime) -> datetime:
    floor = when.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return floor if floor == when else floor + timedelta(hours=1)


def _matches(schedule: Schedule, on: date) -> bool:
    if schedule.frequency == "daily":
        return True
    if schedule.frequency == "weekly":
        return WEEKDAYS[on.weekday()] == (schedule.weekday or "monday")
    return on.day == 1


def due_hour(schedule: Schedule, after: datetime) -> datetime:
    """The first UTC hour strictly after ``after`` under which the schedule is due (see the module)."""
    zone = schedule.zone
    day = after.astimezone(zone).date() - timedelta(days=1)
    for _ in range(400):
        if _matches(schedule, day):
            hour = _ceil_hour(send_instant(schedule, day))
            if hour > after:
                return hour
        day += timedelta(days=1)
    raise AssertionError("no send date within 400 days")


def local_period(kind: str, timezone: str, first_day: date, zone: ZoneInfo | None = None) -> Period:
    zone = zone or ZoneInfo(timezone)
    if kind == "daily":
        last = first_day + timedelta(days=1)
    elif kind == "weekly":
        last = first_day + timedelta(days=7)
    else:
        last = (first_day + timedelta(days=32)).replace(day=1)
    start = datetime.combine(first_day, time(0), tzinfo=zone)
    end = datetime.combine(last, time(0), tzinfo=zone)
    return Period(kind, timezone, start, end, _ceil_hour(start.astimezone(UTC)), _ceil_hour(end.astimezone(UTC)))


def period_due(schedule: Schedule, hour: datetime) -> Period:
    """The last complete period before the local date the schedule is due on (``hour``: its due hour)."""
    on = hour.astimezone(schedule.zone).date()
    return last_complete_period(schedule.frequency, schedule.timezone, on)


def last_complete_period(frequency: str, timezone: str, on: date) -> Period:
    """The last complete period before the local date ``on``."""
    if frequency == "daily":
        return local_period("daily", timezone, on - timedelta(days=1))
    if frequency == "weekly":
        monday = on - timedelta(days=on.weekday())
        return local_period("weekly", timezone, monday - timedelta(days=7))
    first = on.replace(day=1)
    return local_period("monthly", timezone, (first - timedelta(days=1)).replace(day=1))


def custom_period(timezone: str, start: datetime, end: datetime) -> Period:
    """``{from, to}``: rounded out to whole UTC hours, as the usage API rounds them."""
    zone = ZoneInfo(timezone)
    floor = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    ceil = _ceil_hour(end.astimezone(UTC))
    return Period("custom", timezone, floor.astimezone(zone), ceil.astimezone(zone), floor, ceil)


# --------------------------------------------------------------------------- figures


@dataclass(frozen=True)
class MeterFigure:
    meter: str
    display_name: str
    unit: str
    aggregation: str
    quantity: int  # millionths
    previous: int

    @property
    def change_percent(self) -> str | None:
        if self.previous == 0:
            return None
        return f"{(self.quantity - self.previous) * 100 / self.previous:+.1f}"


@dataclass(frozen=True)
class Figures:
    """Everything a report shows, gathered once (and kept as JSON with the report)."""

    namespace: str
    report_id: str
    period: Period
    generated_at: datetime
    plan: str
    meters: tuple[MeterFigure, ...]
    services: tuple[tuple[str, dict[str, int]], ...]  # (service or "", quantity per meter), top first
    days: tuple[tuple[str, dict[str, int]], ...]  # (local date, quantity per meter), in order
    cost: dict[str, Any]
    budget: dict[str, Any] | None
    dashboard_url: str
    hourly: tuple[tuple[str, str, str, int], ...] = field(default=())  # (UTC hour, meter, service, quantity)

    @property
    def nothing_ran(self) -> bool:
        return all(m.quantity == 0 for m in self.meters if m.aggregation == "sum")

    def to_json(self) -> dict[str, Any]:
        p = self.period
        return {
            "namespace": self.namespace,
            "report_id": self.report_id,
            "period": {
                "kind": p.kind,
                "timezone": p.timezone,
                "start": p.start.isoformat(),
                "end": p.end.isoformat(),
                "ledger_from": p.ledger_from.isoformat(),
                "ledger_to": p.ledger_to.isoformat(),
            },
            "generated_at": self.generated_at.isoformat(),
            "plan": self.plan,
            "meters": [
                {
                    "meter": m.meter,
                    "display_name": m.display_name,
                    "unit": m.unit,
                    "aggregation": m.aggregation,
                    "quantity": m.quantity,
                    "previous": m.previous,
                }
                for m in self.meters
            ],
            "services": [[s, q] for s, q in self.services],
            "days": [[d, q] for d, q in self.days],
            "cost": self.cost,
            "budget": self.budget,
            "dashboard_url": self.dashboard_url,
            "hourly": [list(h) for h in self.hourly],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Figures:
        p = data["period"]
        period = Period(
            p["kind"],
            p["timezone"],
            datetime.fromisoformat(p["start"]),
            datetime.fromisoformat(p["end"]),
            datetime.fromisoformat(p["ledger_from"]),
            datetime.fromisoformat(p["ledger_to"]),
        )
        return cls(
            namespace=data["namespace"],
            report_id=data["report_id"],
            period=period,
            generated_at=datetime.fromisoformat(data["generated_at"]),
            plan=data["plan"],
            meters=tuple(MeterFigure(**m) for m in data["meters"]),
            services=tuple((s, {k: int(v) for k, v in q.items()}) for s, q in data["services"]),
            days=tuple((d, {k: int(v) for k, v in q.items()}) for d, q in data["days"]),
            cost=data["cost"],
            budget=data["budget"],
            dashboard_url=data["dashboard_url"],
            hourly=tuple((h[0], h[1], h[2], int(h[3])) for h in data.get("hourly", [])),
        )


def top_services(
    per_service: dict[str, dict[str, int]], sum_meters: Sequence[str], limit: int = 10
) -> tuple[tuple[str, dict[str, int]], ...]:
    """Services ranked by their share of the namespace's usage, each ``sum`` meter weighing the same
    (a service with half the requests and none of the hours scores 0.5)."""
    totals = {m: sum(q.get(m, 0) for q in per_service.values()) for m in sum_meters}

    def score(item: tuple[str, dict[str, int]]) -> tuple[float, str]:
        service, q = item
        share = sum(q.get(m, 0) / totals[m] for m in sum_meters if totals[m])
        return (-share, service)

    ranked = sorted(((s, q) for s, q in per_service.items() if any(q.get(m, 0) for m in sum_meters)), key=score)
    return tuple(ranked[:limit])


def _invalid(field_name: str, message: str) -> ValidationError:
    return ValidationError(f"{field_name}: {message}", {"fields": [{"field": field_name, "message": message}]})
