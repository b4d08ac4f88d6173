"""The local cloud's EventBridge Scheduler: expressions, next fire times and the scheduler, by a manual clock."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from chalicelib.domain.clock import ManualClock
from localcloud.schedules import CronSchedule, Scheduler, parse_expression

START = datetime(2026, 1, 1, tzinfo=UTC)  # a Thursday


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, micro: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)


def fires(expr: str, after: datetime, count: int, timezone: str | None = None) -> list[datetime]:
    schedule = parse_expression(expr, timezone)
    out: list[datetime] = []
    t: datetime | None = after
    for _ in range(count):
        assert t is not None
        t = schedule.next_after(t)
        assert t is not None
        out.append(t)
    return out


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, datetime]] = []

    def __call__(self, schedule: dict[str, Any], scheduled: datetime) -> None:
        self.calls.append((schedule["name"], scheduled))


def make(*declarations: dict[str, Any], start: datetime = START) -> tuple[Scheduler, ManualClock, Recorder]:
    clock = ManualClock(start)
    recorder = Recorder()
    return Scheduler(list(declarations), clock, recorder), clock, recorder


def decl(name: str, expression: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "expression": expression, "target": {"arn": f"arn:aws:lambda:::function:{name}"}, **extra}


# -- rate --


def test_rate_fires_after_the_interval_and_not_before() -> None:
    scheduler, clock, recorder = make(decl("r", "rate(5 minutes)"))
    assert scheduler.next_fires() == {"r": START + timedelta(minutes=5)}
    clock.advance(timedelta(minutes=4, seconds=59))
    assert scheduler.tick() == []
    clock.advance(1)
    assert scheduler.tick() == [("r", START + timedelta(minutes=5))]
    assert scheduler.tick() == []  # once per scheduled time
    clock.advance(timedelta(minutes=5))
    assert scheduler.tick() == [("r", START + timedelta(minutes=10))]
    assert recorder.calls == [("r", START + timedelta(minutes=5)), ("r", START + timedelta(minutes=10))]


@pytest.mark.parametrize(
    ("expr", "interval"),
    [
        ("rate(1 minute)", timedelta(minutes=1)),
        ("rate(2 hours)", timedelta(hours=2)),
        ("rate(1 day)", timedelta(days=1)),
    ],
)
def test_rate_units(expr: str, interval: timedelta) -> None:
    schedule = parse_expression(expr).anchored_at(START)
    assert schedule.next_after(START) == START + interval
    assert schedule.next_after(START + interval) == START + 2 * interval
    assert schedule.latest_at_or_before(START + interval - timedelta(seconds=1)) is None


def test_rate_anchors_at_the_given_start() -> None:
    clock = ManualClock(START + timedelta(minutes=7))
    scheduler = Scheduler([decl("r", "rate(5 minutes)")], clock, Recorder(), start=START)
    assert scheduler.next_fires() == {"r": START + timedelta(minutes=10)}


# -- cron --


def test_daily_cron_fires_at_0800_utc() -> None:
    assert fires("cron(0 8 * * ? *)", START, 3) == [utc(2026, 1, 1, 8), utc(2026, 1, 2, 8), utc(2026, 1, 3, 8)]
    scheduler, clock, _ = make(decl("daily", "cron(0 8 * * ? *)"))
    clock.set(utc(2026, 1, 1, 7, 59, 59))
    assert scheduler.tick() == []
    clock.set(utc(2026, 1, 1, 8))
    assert scheduler.tick() == [("daily", utc(2026, 1, 1, 8))]
    assert scheduler.next_fires() == {"daily": utc(2026, 1, 2, 8)}


def test_next_after_is_strict() -> None:
    schedule = parse_expression("cron(0 8 * * ? *)")
    assert schedule.next_after(utc(2026, 1, 1, 8)) == utc(2026, 1, 2, 8)
    assert schedule.next_after(utc(2026, 1, 1, 7, 59, 59, 999999)) == utc(2026, 1, 1, 8)


def test_day_of_week_numbering_starts_on_sunday() -> None:
    mondays = fires("cron(0 9 ? * 2 *)", START, 4)
    assert mondays == [utc(2026, 1, 5, 9), utc(2026, 1, 12, 9), utc(2026, 1, 19, 9), utc(2026, 1, 26, 9)]
    assert all(t.weekday() == 0 for t in mondays)
    assert fires("cron(0 9 ? * 1 *)", START, 1) == [utc(2026, 1, 4, 9)]  # 1 = Sunday
    assert fires("cron(0 9 ? * 7 *)", START, 1) == [utc(2026, 1, 3, 9)]  # 7 = Saturday
    assert fires("cron(0 9 ? * MON *)", START, 1) == mondays[:1]


def test_mon_fri() -> None:
    times = fires("cron(0 9 ? * MON-FRI *)", START, 10)
    assert times[:3] == [utc(2026, 1, 1, 9), utc(2026, 1, 2, 9), utc(2026, 1, 5, 9)]
    assert all(t.weekday() < 5 for t in times)
    assert fires("cron(0 9 ? * 2-6 *)", START, 10) == times
    assert fires("cron(0 9 ? * sat,SUN *)", START, 2) == [utc(2026, 1, 3, 9), utc(2026, 1, 4, 9)]


def test_steps() -> None:
    assert fires("cron(0/15 * * * ? *)", START, 5) == [START + timedelta(minutes=m) for m in (15, 30, 45, 60, 75)]
    assert fires("cron(*/5 * * * ? *)", START, 2) == [START + timedelta(minutes=5), START + timedelta(minutes=10)]
    assert fires("cron(10-40/10 9 * * ? *)", START, 5) == [
        utc(2026, 1, 1, 9, 10),
        utc(2026, 1, 1, 9, 20),
        utc(2026, 1, 1, 9, 30),
        utc(2026, 1, 1, 9, 40),
        utc(2026, 1, 2, 9, 10),
    ]
    assert fires("cron(0 6/8 * * ? *)", START, 3) == [utc(2026, 1, 1, 6), utc(2026, 1, 1, 14), utc(2026, 1, 1, 22)]


def test_day_of_month_list() -> None:
    assert fires("cron(30 12 1,15 * ? *)", START, 3) == [
        utc(2026, 1, 1, 12, 30),
        utc(2026, 1, 15, 12, 30),
        utc(2026, 2, 1, 12, 30),
    ]


def test_time_zone_follows_daylight_saving() -> None:
    winter = fires("cron(0 8 * * ? *)", utc(2026, 1, 15), 1, "Europe/Berlin")
    summer = fires("cron(0 8 * * ? *)", utc(2026, 7, 15), 1, "Europe/Berlin")
    assert winter == [utc(2026, 1, 15, 7)]
    assert summer == [utc(2026, 7, 15, 6)]
    scheduler, _, _ = make(decl("berlin", "cron(0 8 * * ? *)", timezone="Europe/Berlin"))
    assert scheduler.next_fires() == {"berlin": utc(2026, 1, 1, 7)}


def test_nonexistent_local_time_is_skipped() -> None:
    # Berlin springs forward on 2026-03-29 at 02:00 -> 03:00: 02:30 does not exist that day.
    times = fires("cron(30 2 * * ? *)", utc(2026, 3, 27, 12), 3, "Europe/Berlin")
    assert times == [utc(2026, 3, 28, 1, 30), utc(2026, 3, 30, 0, 30), utc(2026, 3, 31, 0, 30)]


def test_repeated_local_time_fires_once() -> None:
    # Berlin falls back on 2026-10-25 at 03:00 -> 02:00: 02:30 happens twice (00:30 and 01:30 UTC).
    times = fires("cron(30 2 * * ? *)", utc(2026, 10, 24, 12), 2, "Europe/Berlin")
    assert times == [utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)]
    schedule = parse_expression("cron(30 2 * * ? *)", "Europe/Berlin")
    assert schedule.next_after(utc(2026, 10, 25, 1)) == utc(2026, 10, 26, 1, 30)
    assert schedule.latest_at_or_before(utc(2026, 10, 25, 1, 45)) == utc(2026, 10, 25, 0, 30)


def _reference_fires(schedule: CronSchedule, begin: datetime, end: datetime) -> list[datetime]:
    """Every UTC minute whose local time matches and is the first occurrence of that wall time."""
    out = []
    t = begin
    while t <= end:
        local = t.astimezone(schedule.zone)
        day_ok = (
            local.day in schedule.days_of_month
            if schedule.days_of_month is not None
            else schedule.days_of_week is not None and (local.weekday() + 1) % 7 + 1 in schedule.days_of_week
        )
        if (
            local.fold == 0
            and local.minute in schedule.minutes
            and local.hour in schedule.hours
            and local.month in schedule.months
            and local.year in schedule.years
            and day_ok
        ):
            out.append(t)
        t += timedelta(minutes=1)
    return out


@pytest.mark.parametrize("expr", ["cron(*/20 * * * ? *)", "cron(15 1-3 * * ? *)", "cron(0,45 2 ? * SUN *)"])
@pytest.mark.parametrize(
    ("zone", "begin"),
    [
        ("Europe/Berlin", utc(2026, 3, 28, 18)),
        ("Europe/Berlin", utc(2026, 10, 24, 18)),
        ("America/New_York", utc(2026, 11, 1, 0)),
    ],
)
def test_cron_matches_a_brute_force_reference_across_dst(expr: str, zone: str, begin: datetime) -> None:
    schedule = parse_expression(expr, zone)
    assert isinstance(schedule, CronSchedule)
    end = begin + timedelta(hours=18)
    expected = _reference_fires(schedule, begin, end)  # empty for 02:xx on the day Berlin skips 02:xx
    t = begin - timedelta(seconds=1)
    got = []
    while (nxt := schedule.next_after(t)) is not None and nxt <= end:
        got.append(nxt)
        t = nxt
    assert got == expected
    for probe in (begin + timedelta(minutes=m, seconds=7) for m in range(0, 18 * 60, 11)):
        assert schedule.next_after(probe) == next((x for x in expected if x > probe), schedule.next_after(end))
        before = [x for x in expected if x <= probe]
        if before:
            assert schedule.latest_at_or_before(probe) == before[-1]


def test_month_names() -> None:
    assert fires("cron(0 0 1 JAN,JUL ? *)", START - timedelta(seconds=1), 3) == [
        utc(2026, 1, 1),
        utc(2026, 7, 1),
        utc(2027, 1, 1),
    ]
    assert fires("cron(0 12 ? mar-MAY MON *)", START, 1) == [utc(2026, 3, 2, 12)]
    assert fires("cron(0 12 ? 3-5 2 *)", START, 1) == [utc(2026, 3, 2, 12)]


def test_year_field() -> None:
    schedule = parse_expression("cron(0 0 1 1 ? 2027)")
    assert schedule.next_after(START) == utc(2027, 1, 1)
    assert schedule.next_after(utc(2027, 1, 1)) is None
    assert fires("cron(0 0 1 6 ? 2026-2028)", START, 3) == [utc(2026, 6, 1), utc(2027, 6, 1), utc(2028, 6, 1)]
    assert parse_expression("cron(0 0 1 6 ? 2026-2028)").next_after(utc(2028, 6, 1)) is None
    assert fires("cron(0 0 1 6 ? 2026,2030)", START, 2) == [utc(2026, 6, 1), utc(2030, 6, 1)]


def test_yearly_cron_is_fast() -> None:
    began = time.perf_counter()
    assert parse_expression("cron(0 0 1 1 ? *)").next_after(START) == utc(2027, 1, 1)
    assert parse_expression("cron(59 23 31 12 ? *)").next_after(START) == utc(2026, 12, 31, 23, 59)
    assert parse_expression("cron(0 0 29 2 ? *)").next_after(START) == utc(2028, 2, 29)
    assert parse_expression("cron(0 0 29 2 ? *)").latest_at_or_before(START) == utc(2024, 2, 29)
    assert parse_expression("cron(0 0 31 2 ? *)").next_after(START) is None  # never: scans to 2199
    assert parse_expression("cron(0 0 31 2 ? *)").latest_at_or_before(START) is None  # back to 1970
    assert time.perf_counter() - began < 0.5


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("cron(0 8 * * * *)", "exactly one of day-of-month and day-of-week"),
        ("cron(0 8 ? * ? *)", "exactly one of day-of-month and day-of-week"),
        ("cron(0 8 L * ? *)", "not supported"),
        ("cron(0 8 15W * ? *)", "not supported"),
        ("cron(0 8 ? * 6L *)", "not supported"),
        ("cron(0 8 ? * 6#3 *)", "not supported"),
        ("cron(0 8 ? * WED#2 *)", "not supported"),
        ("cron(0 8 * * ?)", "six fields"),
        ("cron(60 8 * * ? *)", "outside 0-59"),
        ("cron(0 24 * * ? *)", "outside 0-23"),
        ("cron(0 8 * FOO ? *)", "not a valid value"),
        ("cron(0 8 ? * 0 *)", "outside 1-7"),
        ("cron(0 8 ? * FRI-MON *)", "backwards"),
        ("cron(0/0 8 * * ? *)", "step"),
        ("cron(? 8 * * ? *)", "only allowed"),
        ("cron(0 8 * * ? 1969)", "outside"),
        ("rate(5 weeks)", "must be one of"),
        ("rate(5 seconds)", "must be one of"),
        ("rate(1 minutes)", "rate(1 minute)"),
        ("rate(5 minute)", "rate(5 minutes)"),
        ("rate(0 minutes)", "positive"),
        ("rate(five minutes)", "expected"),
        ("at(2026-13-01T00:00:00)", "month"),
        ("at(2026-01-01 00:00:00)", "expected"),
        ("every day", "expected"),
    ],
)
def test_invalid_expressions_raise(expr: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_expression(expr)


def test_unknown_time_zone_raises() -> None:
    with pytest.raises(ValueError, match="unknown time zone"):
        parse_expression("cron(0 8 * * ? *)", "Mars/Olympus")


def test_invalid_declaration_names_the_schedule() -> None:
    with pytest.raises(ValueError, match="'bad'"):
        make(decl("bad", "cron(0 8 * * * *)"))


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        parse_expression("cron(0 8 * * ? *)").next_after(datetime(2026, 1, 1))


# -- at --


def test_at_fires_once_then_never() -> None:
    scheduler, clock, recorder = make(decl("once", "at(2026-01-02T10:00:00)"))
    assert scheduler.next_fires() == {"once": utc(2026, 1, 2, 10)}
    clock.set(utc(2026, 1, 2, 9, 59))
    assert scheduler.tick() == []
    clock.set(utc(2026, 1, 3))
    assert scheduler.tick() == [("once", utc(2026, 1, 2, 10))]
    clock.advance(timedelta(days=400))
    assert scheduler.tick() == []
    assert scheduler.next_fires() == {"once": None}
    assert recorder.calls == [("once", utc(2026, 1, 2, 10))]


def test_at_in_a_time_zone_and_in_the_past() -> None:
    assert parse_expression("at(2026-07-01T08:00:00)", "Europe/Berlin").next_after(START) == utc(2026, 7, 1, 6)
    scheduler, _, _ = make(decl("past", "at(2025-06-01T00:00:00)"))
    assert scheduler.next_fires() == {"past": None}
    assert scheduler.tick() == []


# -- the scheduler's policies --


@pytest.mark.parametrize("expr", ["rate(1 hour)", "cron(0 * * * ? *)"])
def test_clock_jump_fires_once_with_the_latest_missed_time(expr: str, caplog: pytest.LogCaptureFixture) -> None:
    scheduler, clock, recorder = make(decl("hourly", expr))
    clock.advance(timedelta(hours=3, minutes=30))
    with caplog.at_level(logging.WARNING, logger="localcloud.schedules"):
        assert scheduler.tick() == [("hourly", utc(2026, 1, 1, 3))]
    assert "missed" in caplog.text
    assert recorder.calls == [("hourly", utc(2026, 1, 1, 3))]
    assert scheduler.next_fires() == {"hourly": utc(2026, 1, 1, 4)}
    assert scheduler.tick() == []


def test_a_failing_fire_does_not_stop_the_others(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[str] = []

    def fire(schedule: dict[str, Any], scheduled: datetime) -> None:
        calls.append(schedule["name"])
        if schedule["name"] == "broken":
            raise RuntimeError("target unreachable")

    clock = ManualClock(START)
    scheduler = Scheduler(
        [decl("a", "rate(1 minute)"), decl("broken", "rate(1 minute)"), decl("c", "rate(1 minute)")], clock, fire
    )
    clock.advance(60)
    with caplog.at_level(logging.ERROR, logger="localcloud.schedules"):
        fired = scheduler.tick()
    assert [name for name, _ in fired] == ["a", "broken", "c"]
    assert calls == ["a", "broken", "c"]
    assert scheduler.errors == [("broken", "RuntimeError('target unreachable')")]
    assert any(r.levelno == logging.ERROR and "broken" in r.getMessage() for r in caplog.records)
    # The failing schedule advanced (no retry) and fires again next time.
    assert scheduler.next_fires()["broken"] == START + timedelta(minutes=2)
    clock.advance(60)
    assert [name for name, _ in scheduler.tick()] == ["a", "broken", "c"]
    assert len(scheduler.errors) == 2


def test_disabled_schedules_never_fire() -> None:
    scheduler, clock, recorder = make(decl("off", "rate(1 minute)", enabled=False), decl("on", "rate(1 minute)"))
    assert scheduler.next_fires() == {"off": None, "on": START + timedelta(minutes=1)}
    for _ in range(5):
        clock.advance(60)
        scheduler.tick()
    assert [name for name, _ in recorder.calls] == ["on"] * 5


def test_fire_receives_the_declaration_unchanged() -> None:
    declaration = decl("r", "rate(1 minute)", timezone="Europe/Berlin")
    received: list[dict[str, Any]] = []
    clock = ManualClock(START)
    scheduler = Scheduler([declaration], clock, lambda schedule, _: received.append(schedule))
    clock.advance(60)
    scheduler.tick()
    assert received == [declaration]


def test_duplicate_names_are_refused() -> None:
    with pytest.raises(ValueError, match="declared twice"):
        make(decl("x", "rate(1 minute)"), decl("x", "rate(2 minutes)"))


def test_concurrent_ticks_fire_once() -> None:
    scheduler, clock, recorder = make(decl("r", "rate(1 minute)"))
    clock.advance(60)
    threads = [threading.Thread(target=scheduler.tick) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert recorder.calls == [("r", START + timedelta(minutes=1))]


def test_run_ticks_until_stopped() -> None:
    stop = threading.Event()
    clock = ManualClock(START + timedelta(minutes=1))
    calls: list[datetime] = []

    def fire(schedule: dict[str, Any], scheduled: datetime) -> None:
        calls.append(scheduled)
        stop.set()  # no sleeping: stop.wait returns at once once set

    scheduler = Scheduler([decl("r", "rate(1 minute)")], clock, fire, start=START)
    clock.advance(60)
    scheduler.run(stop, interval=3600)
    assert calls == [START + timedelta(minutes=2)]


def test_next_fires_for_display() -> None:
    scheduler, _, _ = make(
        decl("rate", "rate(1 day)"),
        decl("cron", "cron(0 9 ? * MON-FRI *)", timezone="America/New_York"),
        decl("at", "at(2026-02-01T00:00:00)"),
    )
    assert scheduler.next_fires() == {
        "rate": utc(2026, 1, 2),
        "cron": utc(2026, 1, 1, 14),
        "at": utc(2026, 2, 1),
    }
    assert ZoneInfo("America/New_York").utcoffset(datetime(2026, 1, 1)) == timedelta(hours=-5)
