"""EventBridge Scheduler schedules, fired by the local cloud itself.

moto stores EventBridge Scheduler schedules but never fires them, so the local cloud does: a
:class:`Scheduler` holds the schedules of the resource declaration and, on every :meth:`Scheduler.tick`,
calls ``fire(schedule, scheduled_time)`` for each one that is due by an injectable clock
(``chalicelib.domain.clock.Clock``). Tests move a ``ManualClock``; the real process runs
:meth:`Scheduler.run` against the ``SystemClock``.

Expressions (:func:`parse_expression`), as EventBridge Scheduler writes them:

- ``rate(N unit)``: unit ``minute``/``hour``/``day`` for N = 1, ``minutes``/``hours``/``days`` for N > 1.
  A rate is anchored at the scheduler's start: the first fire is ``start + rate``, then every ``rate``.
- ``cron(minutes hours day-of-month month day-of-week year)``: AWS's six fields, with ``*``, ``?``,
  lists ``,``, ranges ``-`` and steps ``/`` (``0/15``, ``*/5``, ``10-40/10``); months 1-12 or JAN-DEC;
  days of the week 1-7 **with 1 = SUNDAY** or SUN-SAT; years 1970-2199. Exactly one of day-of-month
  and day-of-week must be ``?``. ``L``, ``W`` and ``#`` are not supported here (ValueError).
- ``at(yyyy-mm-ddThh:mm:ss)``: one fire, then never again.

Time zones: cron and at fields are read in the schedule's time zone (``ScheduleExpressionTimezone``,
an IANA name, default UTC), in local wall time. At a daylight-saving change, as EventBridge Scheduler
documents: a local time that does not exist (the clock jumps forward over it) is skipped, no fire; a
local time that happens twice (the clock falls back) fires once, at its first occurrence. An ``at``
time that does not exist is read with the offset in force before the jump (so it fires at the instant
the clock would have shown it, i.e. shifted forward by the gap); an ambiguous one fires at its first
occurrence. Rates ignore the time zone.

Policies of :class:`Scheduler` (documented differences from AWS):

- Missed fires: when the clock jumps over several scheduled times, a schedule fires ONCE in that tick,
  with the LATEST missed scheduled time, and a warning names the first missed time. AWS would fire
  each one (it never misses); locally a laptop sleeping or a test moving the clock should not unleash
  a burst.
- The clock going back (the local clock's ``reset``, python -m localcloud.clock): every schedule is
  planned afresh from the new time, rates anchored at it, and a warning says so; nothing fires for the
  time that is now in the future again until the clock reaches it.
- Failures: an exception from ``fire`` is caught, logged (logger ``localcloud.schedules``, error
  level) and recorded in :attr:`Scheduler.errors` as ``(name, repr(exc))``; other schedules still fire
  and the failing schedule still advances. EventBridge Scheduler would retry and then send the event
  to a dead-letter queue; here there is no retry and no DLQ.
"""

from __future__ import annotations

import bisect
import logging
import re
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from chalicelib.domain.clock import Clock

logger = logging.getLogger("localcloud.schedules")

MIN_YEAR = 1970
MAX_YEAR = 2199
_MINUTE = timedelta(minutes=1)

_MONTH_NAMES = {
    name: number
    for number, name in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), start=1
    )
}
# AWS numbers the days of the week 1-7 with 1 = SUNDAY.
_DAY_NAMES = {name: number for number, name in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"), start=1)}
_DAY_NAME_RE = re.compile("|".join(_DAY_NAMES))

_RATE_RE = re.compile(r"rate\(\s*(\d+)\s+([A-Za-z]+)\s*\)")
_CRON_RE = re.compile(r"cron\((.*)\)")
_AT_RE = re.compile(r"at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)")
_RATE_UNITS: dict[str, tuple[str, str, timedelta]] = {
    "minute": ("minute", "minutes", timedelta(minutes=1)),
    "hour": ("hour", "hours", timedelta(hours=1)),
    "day": ("day", "days", timedelta(days=1)),
}


def _zone(name: str | None) -> ZoneInfo:
    if name is None or name == "":
        return ZoneInfo("UTC")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}: expected an IANA name such as 'Europe/Berlin'") from exc


def _require_aware(t: datetime) -> None:
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError("schedules need a timezone-aware datetime")


class Schedule(ABC):
    """A parsed schedule expression."""

    expression: str

    @abstractmethod
    def next_after(self, t: datetime) -> datetime | None:
        """The first fire time strictly after ``t`` (UTC), or None when there is none."""

    @abstractmethod
    def latest_at_or_before(self, t: datetime) -> datetime | None:
        """The last fire time at or before ``t`` (UTC), or None when there is none."""

    def anchored_at(self, start: datetime) -> Schedule:
        """This schedule started at ``start``: only rates care (their first fire is ``start + rate``)."""
        return self


@dataclass(frozen=True)
class RateSchedule(Schedule):
    """``rate(N unit)``: every ``interval`` from ``anchor``, the first fire at ``anchor + interval``.

    Without an anchor, ``next_after(t)`` is ``t + interval`` (as if started at ``t``) and there is no
    past fire.
    """

    expression: str
    interval: timedelta
    anchor: datetime | None = None

    def anchored_at(self, start: datetime) -> RateSchedule:
        _require_aware(start)
        return replace(self, anchor=start.astimezone(UTC))

    def next_after(self, t: datetime) -> datetime | None:
        _require_aware(t)
        t = t.astimezone(UTC)
        if self.anchor is None:
            return t + self.interval
        if t < self.anchor + self.interval:
            return self.anchor + self.interval
        k = (t - self.anchor) // self.interval + 1
        return self.anchor + k * self.interval

    def latest_at_or_before(self, t: datetime) -> datetime | None:
        _require_aware(t)
        if self.anchor is None:
            return None
        k = (t.astimezone(UTC) - self.anchor) // self.interval
        return self.anchor + k * self.interval if k >= 1 else None


@dataclass(frozen=True)
class AtSchedule(Schedule):
    """``at(...)``: one fire at ``when`` (UTC)."""

    expression: str
    when: datetime

    def next_after(self, t: datetime) -> datetime | None:
        _require_aware(t)
        return self.when if self.when > t else None

    def latest_at_or_before(self, t: datetime) -> datetime | None:
        _require_aware(t)
        return self.when if self.when <= t else None


@dataclass(frozen=True)
class CronSchedule(Schedule):
    """``cron(...)``: the fields as sets of allowed values, read in ``zone``'s local wall time.

    Exactly one of ``days_of_month`` / ``days_of_week`` is None (the field written ``?``).
    """

    expression: str
    zone: ZoneInfo
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days_of_month: frozenset[int] | None
    months: frozenset[int]
    days_of_week: frozenset[int] | None  # 1 = SUNDAY ... 7 = SATURDAY
    years: tuple[int, ...]
    _year_set: frozenset[int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_year_set", frozenset(self.years))

    # -- matching on local wall times (naive datetimes, minute precision) --

    def _day_matches(self, wall: datetime) -> bool:
        if self.days_of_week is None:
            return self.days_of_month is None or wall.day in self.days_of_month
        aws_weekday = (wall.weekday() + 1) % 7 + 1  # Python: Monday = 0; AWS: Sunday = 1
        return aws_weekday in self.days_of_week

    def _next_wall(self, wall: datetime) -> datetime | None:
        """The first matching wall time at or after ``wall``."""
        while True:
            if wall.year not in self._year_set:
                i = bisect.bisect_right(self.years, wall.year)
                if i == len(self.years):
                    return None
                wall = datetime(self.years[i], 1, 1)
                continue
            if wall.month not in self.months:
                wall = datetime(wall.year + 1, 1, 1) if wall.month == 12 else datetime(wall.year, wall.month + 1, 1)
                continue
            if not self._day_matches(wall):
                wall = datetime(wall.year, wall.month, wall.day) + timedelta(days=1)
                continue
            if wall.hour not in self.hours:
                i = bisect.bisect_left(self.hours, wall.hour)
                if i == len(self.hours):
                    wall = datetime(wall.year, wall.month, wall.day) + timedelta(days=1)
                else:
                    wall = wall.replace(hour=self.hours[i], minute=0)
                continue
            i = bisect.bisect_left(self.minutes, wall.minute)
            if i == len(self.minutes):
                wall = wall.replace(minute=0) + timedelta(hours=1)
                continue
            return wall.replace(minute=self.minutes[i])

    def _previous_wall(self, wall: datetime) -> datetime | None:
        """The last matching wall time at or before ``wall``."""
        while True:
            if wall.year not in self._year_set:
                i = bisect.bisect_left(self.years, wall.year)
                if i == 0:
                    return None
                wall = datetime(self.years[i - 1], 12, 31, 23, 59)
                continue
            if wall.month not in self.months:
                if wall.year <= MIN_YEAR and wall.month == 1:
                    return None
                wall = datetime(wall.year, wall.month, 1) - _MINUTE
                continue
            if not self._day_matches(wall):
                if (wall.year, wall.month, wall.day) == (MIN_YEAR, 1, 1):
                    return None
                wall = datetime(wall.year, wall.month, wall.day) - _MINUTE
                continue
            if wall.hour not in self.hours:
                i = bisect.bisect_left(self.hours, wall.hour)
                if i == 0:
                    if (wall.year, wall.month, wall.day) == (MIN_YEAR, 1, 1):
                        return None
                    wall = datetime(wall.year, wall.month, wall.day) - _MINUTE
                else:
                    wall = wall.replace(hour=self.hours[i - 1], minute=59)
                continue
            i = bisect.bisect_right(self.minutes, wall.minute)
            if i == 0:
                if (wall.year, wall.month, wall.day, wall.hour) == (MIN_YEAR, 1, 1, 0):
                    return None
                wall = wall.replace(minute=0) - _MINUTE
                continue
            return wall.replace(minute=self.minutes[i - 1])

    def _instant(self, wall: datetime) -> datetime | None:
        """The first UTC instant whose local wall time is ``wall``; None when it does not exist (a gap)."""
        utc = wall.replace(tzinfo=self.zone).astimezone(UTC)  # fold=0: the first occurrence in an overlap
        if utc.astimezone(self.zone).replace(tzinfo=None) != wall:
            return None
        return utc

    # The map wall time -> first instant showing it is increasing, so searching wall times in order
    # finds fire instants in order; only the overlap needs the explicit comparison with ``t``.

    def next_after(self, t: datetime) -> datetime | None:
        _require_aware(t)
        local = t.astimezone(self.zone).replace(tzinfo=None, second=0, microsecond=0)
        wall: datetime | None = local + _MINUTE
        while wall is not None:
            wall = self._next_wall(wall)
            if wall is None:
                return None
            instant = self._instant(wall)
            if instant is not None and instant > t:
                return instant
            wall += _MINUTE
        return None

    def latest_at_or_before(self, t: datetime) -> datetime | None:
        _require_aware(t)
        aware_local = t.astimezone(self.zone)
        local = aware_local.replace(tzinfo=None, second=0, microsecond=0)
        if aware_local.fold == 1:
            # ``t`` is in the second pass of an overlap: the first pass's later wall times are before it.
            first_offset = aware_local.replace(fold=0).utcoffset()
            second_offset = aware_local.utcoffset()
            if first_offset is not None and second_offset is not None:
                local += first_offset - second_offset
        wall: datetime | None = local
        while wall is not None:
            wall = self._previous_wall(wall)
            if wall is None:
                return None
            instant = self._instant(wall)
            if instant is not None and instant <= t:
                return instant
            wall -= _MINUTE
        return None


# -- parsing --


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: dict[str, int] = field(default_factory=dict)


_FIELDS = (
    _Field("minutes", 0, 59),
    _Field("hours", 0, 23),
    _Field("day-of-month", 1, 31),
    _Field("month", 1, 12, _MONTH_NAMES),
    _Field("day-of-week", 1, 7, _DAY_NAMES),
    _Field("year", MIN_YEAR, MAX_YEAR),
)


def _value(token: str, spec: _Field, expr: str) -> int:
    if token.isdigit():
        number = int(token)
    elif token.upper() in spec.names:
        number = spec.names[token.upper()]
    else:
        raise ValueError(f"{expr}: {spec.name} field: {token!r} is not a valid value")
    if not spec.low <= number <= spec.high:
        raise ValueError(f"{expr}: {spec.name} field: {number} is outside {spec.low}-{spec.high}")
    return number


def _parse_field(text: str, spec: _Field, expr: str) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        base, slash, step_text = part.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) == 0:
                raise ValueError(f"{expr}: {spec.name} field: step {step_text!r} must be a positive integer")
            step = int(step_text)
        if base == "*":
            low, high = spec.low, spec.high
        elif "-" in base:
            first, _, last = base.partition("-")
            low, high = _value(first, spec, expr), _value(last, spec, expr)
            if low > high:
                raise ValueError(f"{expr}: {spec.name} field: range {base!r} runs backwards")
        elif base:
            low = _value(base, spec, expr)
            high = spec.high if slash else low
        else:
            raise ValueError(f"{expr}: {spec.name} field: empty value in {text!r}")
        values.update(range(low, high + 1, step))
    return frozenset(values)


def _unsupported_special(text: str, spec: _Field) -> bool:
    """``L``, ``W`` and ``#`` in the day fields (day names such as WED are not specials)."""
    if spec.name == "day-of-month":
        return any(c in text.upper() for c in "LW#")
    if spec.name == "day-of-week":
        return any(c in _DAY_NAME_RE.sub("", text.upper()) for c in "LW#")
    return False


def _parse_cron(body: str, expr: str, zone: ZoneInfo) -> CronSchedule:
    texts = body.split()
    if len(texts) != 6:
        raise ValueError(
            f"{expr}: a cron expression has six fields (minutes hours day-of-month month day-of-week year), "
            f"got {len(texts)}"
        )
    parsed: list[frozenset[int] | None] = []
    for text, spec in zip(texts, _FIELDS, strict=True):
        if _unsupported_special(text, spec):
            raise ValueError(f"{expr}: {spec.name} field {text!r}: L, W and # are not supported by the local cloud")
        if text == "?":
            if spec.name not in ("day-of-month", "day-of-week"):
                raise ValueError(f"{expr}: '?' is only allowed in day-of-month or day-of-week, not in {spec.name}")
            parsed.append(None)
        elif "?" in text:
            raise ValueError(f"{expr}: {spec.name} field {text!r}: '?' must stand alone")
        else:
            parsed.append(_parse_field(text, spec, expr))
    minutes, hours, days_of_month, months, days_of_week, years = parsed
    if (days_of_month is None) == (days_of_week is None):
        raise ValueError(f"{expr}: exactly one of day-of-month and day-of-week must be '?'")
    assert minutes is not None and hours is not None and months is not None and years is not None
    return CronSchedule(
        expression=expr,
        zone=zone,
        minutes=tuple(sorted(minutes)),
        hours=tuple(sorted(hours)),
        days_of_month=days_of_month,
        months=months,
        days_of_week=days_of_week,
        years=tuple(sorted(years)),
    )


def _parse_rate(value_text: str, unit: str, expr: str) -> RateSchedule:
    value = int(value_text)
    if value < 1:
        raise ValueError(f"{expr}: the rate value must be a positive integer")
    for singular, plural, size in _RATE_UNITS.values():
        if unit in (singular, plural):
            expected = singular if value == 1 else plural
            if unit != expected:
                raise ValueError(f"{expr}: write 'rate({value} {expected})' ({singular!r} for 1, {plural!r} for more)")
            return RateSchedule(expression=expr, interval=value * size)
    raise ValueError(f"{expr}: rate unit {unit!r} must be one of minute(s), hour(s), day(s)")


def parse_expression(expr: str, timezone: str | None = None) -> Schedule:
    """Parse an EventBridge Scheduler expression; ``timezone`` is ``ScheduleExpressionTimezone`` (default UTC).

    Raises ValueError, with the reason, for anything AWS would reject or this emulator does not support.
    """
    text = expr.strip()
    zone = _zone(timezone)
    if match := _RATE_RE.fullmatch(text):
        return _parse_rate(match.group(1), match.group(2), text)
    if match := _CRON_RE.fullmatch(text):
        return _parse_cron(match.group(1), text, zone)
    if match := _AT_RE.fullmatch(text):
        try:
            local = datetime.fromisoformat(match.group(1))
        except ValueError as exc:
            raise ValueError(f"{text}: {exc}") from exc
        return AtSchedule(expression=text, when=local.replace(tzinfo=zone).astimezone(UTC))
    raise ValueError(f"{expr!r}: expected rate(N unit), cron(6 fields) or at(yyyy-mm-ddThh:mm:ss)")


# -- the scheduler --


@dataclass
class _Entry:
    declaration: dict[str, Any]
    schedule: Schedule
    enabled: bool
    next_time: datetime | None

    @property
    def name(self) -> str:
        return str(self.declaration["name"])


class Scheduler:
    """Fires the declared schedules by ``clock``; see the module's docstring for the policies.

    Each declaration is ``{"name", "expression", "timezone"?, "target", "enabled"? (default True)}``;
    ``fire(declaration, scheduled_time)`` receives it unchanged. Rates are anchored at ``start``
    (default ``clock.now()`` at construction). An invalid expression raises ValueError here.
    """

    def __init__(
        self,
        schedules: Sequence[dict[str, Any]],
        clock: Clock,
        fire: Callable[[dict[str, Any], datetime], None],
        *,
        start: datetime | None = None,
    ) -> None:
        self._clock = clock
        self._fire = fire
        self._lock = threading.RLock()  # re-entrant: ``fire`` may call next_fires()
        self.errors: list[tuple[str, str]] = []
        now = clock.now()
        _require_aware(now)
        anchor = start if start is not None else now
        self._entries: list[_Entry] = []
        seen: set[str] = set()
        for declaration in schedules:
            name = str(declaration["name"])
            if name in seen:
                raise ValueError(f"schedule {name!r} is declared twice")
            seen.add(name)
            try:
                schedule = parse_expression(declaration["expression"], declaration.get("timezone"))
            except ValueError as exc:
                raise ValueError(f"schedule {name!r}: {exc}") from exc
            schedule = schedule.anchored_at(anchor)
            enabled = bool(declaration.get("enabled", True))
            next_time = schedule.next_after(now) if enabled else None
            self._entries.append(_Entry(declaration, schedule, enabled, next_time))
        self._last_now = now

    def next_fires(self) -> dict[str, datetime | None]:
        """Each schedule's next fire time (None: disabled, or an ``at`` that has passed)."""
        with self._lock:
            return {entry.name: entry.next_time for entry in self._entries}

    def tick(self) -> list[tuple[str, datetime]]:
        """Fire every schedule that is due by the clock; returns ``(name, scheduled_time)`` of each fire
        attempted (failed ones included: they are also in :attr:`errors`)."""
        with self._lock:
            now = self._clock.now()
            if now < self._last_now:
                self._replan(now)
            self._last_now = now
            fired: list[tuple[str, datetime]] = []
            for entry in self._entries:
                if entry.next_time is None or entry.next_time > now:
                    continue
                scheduled = entry.schedule.latest_at_or_before(now) or entry.next_time
                if scheduled != entry.next_time:
                    logger.warning(
                        "schedule %s: missed fires from %s to %s, firing once for %s",
                        entry.name,
                        entry.next_time.isoformat(),
                        scheduled.isoformat(),
                        scheduled.isoformat(),
                    )
                try:
                    self._fire(entry.declaration, scheduled)
                except Exception as exc:
                    self.errors.append((entry.name, repr(exc)))
                    logger.error(
                        "schedule %s: fire for %s failed (not retried): %r",
                        entry.name,
                        scheduled.isoformat(),
                        exc,
                        exc_info=True,
                    )
                else:
                    logger.info("schedule %s fired for %s", entry.name, scheduled.isoformat())
                fired.append((entry.name, scheduled))
                entry.next_time = entry.schedule.next_after(now)
            return fired

    def _replan(self, now: datetime) -> None:
        logger.warning("the clock went back from %s to %s: schedules planned afresh", self._last_now, now)
        for entry in self._entries:
            entry.schedule = entry.schedule.anchored_at(now)
            entry.next_time = entry.schedule.next_after(now) if entry.enabled else None

    def run(self, stop: threading.Event, interval: float = 1.0) -> None:
        """Tick every ``interval`` seconds until ``stop`` is set: the real process's loop."""
        while not stop.is_set():
            try:
                self.tick()
            except Exception:
                logger.exception("scheduler tick failed")
            stop.wait(interval)
