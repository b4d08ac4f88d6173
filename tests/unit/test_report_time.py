"""Report schedules in the namespace's time zone: send hours on both sides of daylight-saving switches,
weeks of 167 and 169 hours covered exactly, half-hour zones assembled from UTC hours and saying how,
by moving a clock."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.domain.clock import ManualClock
from chalicelib.domain.errors import ValidationError
from chalicelib.domain.reports import (
    Channel,
    Schedule,
    custom_period,
    due_hour,
    last_complete_period,
    period_due,
    validate_schedule,
)


def schedule(
    frequency: str = "daily", tz: str = "Europe/Berlin", hour: int = 9, weekday: str | None = None
) -> Schedule:
    return Schedule("acme-backend", frequency, tz, hour, weekday, (Channel("email", to="owners"),))  # type: ignore[arg-type]


def fire_times(s: Schedule, clock: ManualClock, until: datetime) -> list[datetime]:
    """What the hourly fan-out sends, moving the clock hour by hour: each due hour once."""
    sent = []
    due = due_hour(s, clock.now())
    while clock.now() < until:
        clock.advance(timedelta(hours=1))
        now = clock.now().replace(minute=15, second=0, microsecond=0)
        hour = now.replace(minute=0)
        if hour == due:
            sent.append(hour)
            due = due_hour(s, hour)  # recomputed after each send
    return sent


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (datetime(2026, 3, 27, 0, tzinfo=UTC), datetime(2026, 4, 1, 0, tzinfo=UTC)),  # spring forward (29 March)
        (datetime(2026, 10, 23, 0, tzinfo=UTC), datetime(2026, 10, 28, 0, tzinfo=UTC)),  # fall back (25 October)
    ],
)
def test_a_daily_0900_berlin_report_goes_out_at_0900_local_once_a_day_across_a_switch(
    start: datetime, end: datetime
) -> None:
    from zoneinfo import ZoneInfo

    s = schedule()
    sent = fire_times(s, ManualClock(start), end)
    local = [h.astimezone(ZoneInfo("Europe/Berlin")) for h in sent]
    assert [t.hour for t in local] == [9] * len(local)
    days = [t.date() for t in local]
    assert days == sorted(set(days)) and len(days) == (end - start).days
    # each covers the local day before, 23 or 25 hours around the switch, whole
    hours = [period_due(s, h).hours for h in sent]
    assert sorted(set(hours)) in ([23, 24], [24, 25])
    for a, b in itertools.pairwise(sent):
        assert period_due(s, a).ledger_to == period_due(s, b).ledger_from  # back to back: nothing twice or missed


def test_a_weekly_report_covers_a_week_with_a_23_or_25_hour_day_exactly() -> None:
    s = schedule("weekly", weekday="monday")
    spring = period_due(s, due_hour(s, datetime(2026, 3, 30, 0, tzinfo=UTC)))
    assert (
        spring.start.isoformat() == "2026-03-23T00:00:00+01:00"
        and spring.end.isoformat() == "2026-03-30T00:00:00+02:00"
    )
    assert spring.hours == 167 and (spring.ledger_to - spring.ledger_from) == timedelta(hours=167)
    autumn = period_due(s, due_hour(s, datetime(2026, 10, 26, 0, tzinfo=UTC)))
    assert autumn.hours == 169 and autumn.start.date().isoformat() == "2026-10-19"
    assert due_hour(s, datetime(2026, 10, 26, 0, tzinfo=UTC)) == datetime(2026, 10, 26, 8, tzinfo=UTC)  # 09:00 CET


def test_a_half_hour_zone_is_assembled_from_utc_hours_and_says_how() -> None:
    s = schedule("daily", tz="Asia/Kolkata")
    hour = due_hour(s, datetime(2026, 11, 27, 0, tzinfo=UTC))
    assert hour == datetime(2026, 11, 27, 4, tzinfo=UTC)  # 09:00 IST is 03:30 UTC: the fan-out of 04:15 takes it
    p = period_due(s, hour)
    assert p.start.isoformat() == "2026-11-26T00:00:00+05:30"
    assert p.ledger_from == datetime(2026, 11, 25, 19, tzinfo=UTC) and p.ledger_to == datetime(
        2026, 11, 26, 19, tzinfo=UTC
    )
    assert p.note and "18:30" not in p.note.split("local")[0] and "previous report" in p.note
    assert schedule().zone and period_due(schedule(), due_hour(schedule(), hour)).note is None


def test_monthly_reports_cover_the_local_month() -> None:
    s = schedule("monthly", tz="America/New_York", hour=6)
    hour = due_hour(s, datetime(2026, 11, 15, tzinfo=UTC))
    assert hour == datetime(2026, 12, 1, 11, tzinfo=UTC)  # 06:00 EST
    p = period_due(s, hour)
    assert p.start.isoformat() == "2026-11-01T00:00:00-04:00" and p.end.isoformat() == "2026-12-01T00:00:00-05:00"
    assert p.hours == 30 * 24 + 1 and p.id == "2026-11-01-monthly"


def test_a_gap_hour_goes_out_right_after_the_gap_once() -> None:
    s = schedule(hour=2)  # 02:00 does not exist in Berlin on 29 March 2026
    hour = due_hour(s, datetime(2026, 3, 28, 12, tzinfo=UTC))
    assert hour == datetime(2026, 3, 29, 1, tzinfo=UTC)  # 03:00 CEST
    assert due_hour(s, hour) == datetime(2026, 3, 30, 0, tzinfo=UTC)


def test_custom_periods_round_out_to_utc_hours_like_the_usage_api() -> None:
    p = custom_period("UTC", datetime(2026, 11, 1, 5, 30, tzinfo=UTC), datetime(2026, 11, 8, 5, 10, tzinfo=UTC))
    assert (p.ledger_from, p.ledger_to) == (datetime(2026, 11, 1, 5, tzinfo=UTC), datetime(2026, 11, 8, 6, tzinfo=UTC))
    assert p.id == "2026-11-01T05Z-custom-169h"
    assert last_complete_period("weekly", "UTC", datetime(2026, 11, 27).date()).id == "2026-11-16-weekly"


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("hourly", "UTC", 9, None), "frequency"),
        (("daily", "Mars/Olympus", 9, None), "timezone"),
        (("daily", "UTC", 24, None), "hour"),
        (("daily", "UTC", True, None), "hour"),
        (("weekly", "UTC", 9, "funday"), "weekday"),
        (("daily", "UTC", 9, "monday"), "weekday"),
    ],
)
def test_a_bad_schedule_names_its_field(args: tuple, field: str) -> None:
    with pytest.raises(ValidationError) as info:
        validate_schedule(*args)
    assert [f["field"] for f in info.value.details["fields"]] == [field]
