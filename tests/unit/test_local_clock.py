"""The local stage's movable clock (chalicelib/adapters/local_clock.py, ``python -m localcloud.clock``):
an offset in a file that the handlers' clock and the local cloud's scheduler both follow, and that the
dev and prod stages refuse."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from chalicelib.adapters.local_clock import FileOffsetClock, read_offset, write_offset
from chalicelib.composition import default_clock
from chalicelib.config import Settings
from chalicelib.domain.clock import ManualClock, SystemClock
from localcloud import clock as clock_cli
from localcloud.schedules import Scheduler

T0 = datetime(2026, 12, 1, 10, 30, tzinfo=UTC)


def test_the_clock_follows_the_offset_file_as_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "data" / "clock.json"
    clock = FileOffsetClock(path, ManualClock(T0))
    assert clock.now() == T0  # no file: the system clock
    write_offset(path, timedelta(hours=3))
    assert clock.now() == T0 + timedelta(hours=3)
    write_offset(path, timedelta(hours=5, minutes=30))
    assert clock.now() == T0 + timedelta(hours=5, minutes=30)
    write_offset(path, timedelta(0))
    assert not path.exists() and clock.now() == T0


def test_a_malformed_clock_file_is_an_error_not_a_silent_zero(tmp_path: Path) -> None:
    path = tmp_path / "clock.json"
    path.write_text('{"offset_seconds": "3h"}')
    with pytest.raises(ValueError, match="offset_seconds must be a number"):
        read_offset(path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("3h", timedelta(hours=3)), ("90m", timedelta(minutes=90)), ("1d12h", timedelta(days=1, hours=12)),
     ("45s", timedelta(seconds=45)), (" 2H ", timedelta(hours=2))],
)  # fmt: skip
def test_durations(text: str, expected: timedelta) -> None:
    assert clock_cli.parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "3", "h", "3x", "-3h", "0h", "3h-", "three hours"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        clock_cli.parse_duration(text)


def test_the_cli_advances_shows_and_resets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PLATFORM_DATA_DIR", str(tmp_path))
    assert clock_cli.main(["advance", "3h"]) == 0
    assert clock_cli.main(["advance", "30m"]) == 0
    assert "system clock + 3:30:00" in capsys.readouterr().out
    saved = json.loads((tmp_path / "data" / "clock.json").read_text())
    assert saved["offset_seconds"] == 3.5 * 3600
    assert clock_cli.main(["show"]) == 0 and "+ 3:30:00" in capsys.readouterr().out
    assert clock_cli.main(["advance", "0h"]) == 2
    assert "only moves forward" in capsys.readouterr().err
    assert clock_cli.main(["reset"]) == 0
    assert "+ 0:00:00" in capsys.readouterr().out and not (tmp_path / "data" / "clock.json").exists()


def test_only_the_local_stage_has_a_movable_clock(tmp_path: Path) -> None:
    path = str(tmp_path / "clock.json")
    local = Settings.from_env({"PLATFORM_STAGE": "local", "PLATFORM_CLOCK_FILE": path})
    assert isinstance(default_clock(local), FileOffsetClock)
    assert isinstance(default_clock(Settings.from_env({"PLATFORM_STAGE": "local"})), SystemClock)
    for stage in ("dev", "prod"):
        with pytest.raises(ValueError, match="local stage only"):
            Settings.from_env({"PLATFORM_STAGE": stage, "PLATFORM_CLOCK_FILE": path})
        assert isinstance(default_clock(Settings(stage=stage, clock_file=path)), SystemClock)


def test_the_scheduler_fires_the_hourly_run_once_for_the_latest_hour_after_an_advance(tmp_path: Path) -> None:
    path = tmp_path / "clock.json"
    clock = FileOffsetClock(path, ManualClock(T0))
    fired: list[tuple[str, datetime]] = []
    decl = {"name": "metering-hourly", "expression": "cron(5 * * * ? *)", "target": {"state_machine": "metering"}}
    scheduler = Scheduler([decl], clock, lambda s, at: fired.append((s["name"], at)))
    write_offset(path, timedelta(hours=3))
    scheduler.tick()
    assert fired == [("metering-hourly", datetime(2026, 12, 1, 13, 5, tzinfo=UTC))]


def test_after_a_reset_the_schedules_fire_again_by_the_earlier_time(tmp_path: Path) -> None:
    path = tmp_path / "clock.json"
    base = ManualClock(T0)
    clock = FileOffsetClock(path, base)
    fired: list[Any] = []
    decls = [
        {"name": "relay", "expression": "rate(1 minute)", "target": {"function": "outbox-relay"}},
        {"name": "hourly", "expression": "cron(5 * * * ? *)", "target": {"state_machine": "metering"}},
    ]
    scheduler = Scheduler(decls, clock, lambda s, at: fired.append((s["name"], at)))
    write_offset(path, timedelta(hours=3))
    scheduler.tick()
    fired.clear()
    write_offset(path, timedelta(0))  # python -m localcloud.clock reset
    base.advance(timedelta(minutes=1))
    scheduler.tick()  # the clock went back: planned afresh from here
    base.advance(timedelta(minutes=1))
    scheduler.tick()
    assert fired == [("relay", T0 + timedelta(minutes=2))]  # not three hours from now
    base.advance(timedelta(minutes=33))
    scheduler.tick()
    assert ("hourly", datetime(2026, 12, 1, 11, 5, tzinfo=UTC)) in fired
