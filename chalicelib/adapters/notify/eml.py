"""The local stage's mailbox: every email SES accepted, also written as an ``.eml`` file (RFC 5322,
what any mail client opens) under the local data folder: ``<PLATFORM_DATA_DIR>/mail/``, the folder
0700 and each file 0600 (reports carry a namespace's figures).

File names sort by time: ``<UTC time>-<SES message id>.eml``. A file that cannot be written is
logged and skipped: the email was sent, and that is what the delivery record says."""

from __future__ import annotations

import os
import re
from datetime import UTC
from pathlib import Path

from chalicelib.domain.clock import Clock

SAFE = re.compile(r"[^A-Za-z0-9._-]")


class EmlMailbox:
    def __init__(self, directory: Path, clock: Clock) -> None:
        self.directory = directory
        self._clock = clock

    def keep(self, message_id: str, raw: bytes) -> Path | None:
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(self.directory, 0o700)
            stamp = self._clock.now().astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")
            path = self.directory / f"{stamp}-{SAFE.sub('_', message_id)[:100]}.eml"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(raw)
            return path
        except OSError:
            from chalicelib.logs import get_logger

            get_logger().exception("the local copy of an email could not be written")
            return None

    def messages(self) -> list[Path]:
        """The kept emails, oldest first."""
        if not self.directory.is_dir():
            return []
        return sorted(self.directory.glob("*.eml"), key=lambda p: p.name)
