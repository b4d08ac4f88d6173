"""Identifiers. ULIDs sort by creation time, so they make time-ordered sort keys."""

from __future__ import annotations

from datetime import datetime


def new_id(at: datetime | None = None) -> str:
    """A new ULID string; ``at`` fixes its time part (from the injected clock)."""
    from ulid import ULID  # imported on first use: python-ulid reads package metadata at import (cold starts)

    if at is None:
        return str(ULID())
    return str(ULID.from_timestamp(at.timestamp()))
