"""Move the local stage's clock: ``python -m localcloud.clock advance 3h | show | reset``.

``make run`` reads the time as the system clock plus an offset kept in ``<data dir>/data/clock.json``
(``PLATFORM_DATA_DIR``, default ``.local``); the handlers and the scheduler both read it
(chalicelib/adapters/local_clock.py), and a running ``make run`` follows a change within a second. So
``advance 3h`` makes three hours pass at once: the schedules due meanwhile fire once, for their latest
time (the hourly metering run then catches up every hour in between). ``reset`` goes back to the
system clock; hours already closed stay closed. ``make reset`` wipes the offset with the rest of the
local data. Only the local stage has this clock."""

from __future__ import annotations

import argparse
import os
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from chalicelib.adapters.local_clock import read_offset, write_offset
from localcloud.declaration import ROOT

_PART = re.compile(r"(\d+)([dhms])")
_UNITS = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}


def clock_file() -> Path:
    return Path(os.environ.get("PLATFORM_DATA_DIR", ROOT / ".local")) / "data" / "clock.json"


def parse_duration(text: str) -> timedelta:
    """``3h``, ``90m``, ``1d12h``, ``45s`` -> a positive timedelta; ValueError otherwise."""
    compact = text.strip().lower().replace(" ", "")
    parts = _PART.findall(compact)
    if not compact or "".join(n + u for n, u in parts) != compact:
        raise ValueError(f"{text!r} is not a duration: write e.g. 3h, 90m, 1d12h or 45s")
    duration = timedelta(0)
    for number, unit in parts:
        duration += timedelta(**{_UNITS[unit]: int(number)})
    if duration <= timedelta(0):
        raise ValueError("the clock only moves forward: give a positive duration (or use reset)")
    return duration


def describe(offset: timedelta) -> str:
    now = datetime.now(UTC)
    return f"local clock {(now + offset).isoformat(timespec='seconds')} (system clock + {offset})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localcloud.clock", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    advance = commands.add_parser("advance", help="move the local clock forward, e.g. 3h, 90m, 1d12h")
    advance.add_argument("duration")
    commands.add_parser("show", help="the local clock and its offset")
    commands.add_parser("reset", help="back to the system clock")
    args = parser.parse_args(argv)
    path = clock_file()
    try:
        offset = read_offset(path)
        if args.command == "advance":
            offset += parse_duration(args.duration)
            write_offset(path, offset)
        elif args.command == "reset":
            offset = timedelta(0)
            write_offset(path, offset)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(describe(offset))
    return 0


if __name__ == "__main__":
    sys.exit(main())
