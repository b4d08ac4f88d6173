"""The audit log: who did what, when, from where, with what outcome."""

from __future__ import annotations

from datetime import datetime

from chalicelib.domain.clock import Clock
from chalicelib.domain.ids import new_id
from chalicelib.domain.model import AuditEntry
from chalicelib.domain.stores import AuditStore


class AuditService:
    def __init__(self, store: AuditStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    def record(
        self,
        namespace: str,
        actor: str,
        action: str,
        target: str,
        outcome: str,
        *,
        source_ip: str | None = None,
        user_agent: str | None = None,
        entry_id: str | None = None,
        details: dict[str, str] | None = None,
    ) -> AuditEntry:
        now = self._clock.now()
        entry = AuditEntry(
            namespace,
            entry_id or new_id(now),
            now,
            actor,
            action,
            target,
            outcome,
            source_ip,
            user_agent,
            details or {},
        )
        self._store.append(entry)
        return entry

    def query(
        self,
        namespace: str,
        *,
        since: datetime | None = None,
        actor: str | None = None,
        action: str | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        return self._store.query(namespace, since=since, actor=actor, action=action, limit=max(1, min(limit, 500)))
