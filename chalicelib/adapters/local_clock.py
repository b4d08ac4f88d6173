"""The local stage's movable clock: the system clock plus an offset kept in a file under the local data
directory (``.local/data/clock.json``: ``{"offset_seconds": 10800}``), so that ``make run`` can be
moved a few hours ahead to watch hourly work happen (``python -m localcloud.clock advance 3h``).

Both readers of the local stage's time use it: the composition root's clock (every handler and the API)
and the local cloud's scheduler, so a schedule fires by the same time the handlers see. Only the local
stage reads the file (``chalicelib/config.py`` refuses ``PLATFORM_CLOCK_FILE`` in ``dev`` and ``prod``).
The file is re-read when it changes (its inode, size or modification time), so a running process
follows ``advance`` and ``reset`` within a tick."""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from chalicelib.domain.clock import Clock, SystemClock


def read_offset(path: Path) -> timedelta:
    """The offset in ``path``; none (zero) when there is no file. A malformed file is an error."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return timedelta(0)
    except ValueError as e:
        raise ValueError(f"{path}: not a clock file ({e})") from None
    seconds = data.get("offset_seconds") if isinstance(data, dict) else None
    if not isinstance(seconds, int | float) or isinstance(seconds, bool):
        raise ValueError(f"{path}: offset_seconds must be a number")
    return timedelta(seconds=seconds)


def write_offset(path: Path, offset: timedelta) -> None:
    """Writes the offset atomically (a temporary file renamed over the old one); zero removes the file."""
    if not offset:
        path.unlink(missing_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    data = {"offset_seconds": offset.total_seconds(), "written_at": datetime.now(UTC).isoformat()}
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    tmp.replace(path)


class FileOffsetClock:
    """``base.now()`` plus the offset in ``path`` (re-read whenever the file changes)."""

    def __init__(self, path: Path, base: Clock | None = None) -> None:
        self.path = path
        self._base = base or SystemClock()
        self._lock = threading.Lock()
        self._seen: tuple[int, int, int] | None = None
        self._offset = timedelta(0)

    def offset(self) -> timedelta:
        try:
            st = os.stat(self.path)
            seen: tuple[int, int, int] | None = (st.st_ino, st.st_size, st.st_mtime_ns)
        except FileNotFoundError:
            seen = None
        with self._lock:
            if seen != self._seen:
                self._offset = read_offset(self.path) if seen is not None else timedelta(0)
                self._seen = seen
            return self._offset

    def now(self) -> datetime:
        return self._base.now() + self.offset()
