"""Platform events: one envelope for every event on the bus. docs/events.md lists every type with
its producer and its consumers; ``EVENT_TYPES`` is that list in code, and a test keeps them equal."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from chalicelib.domain.errors import ValidationError
from chalicelib.domain.ids import new_id

EVENT_SOURCE = "platform"

# type -> current schema version. Adding a type here without documenting it fails a test.
EVENT_TYPES: dict[str, int] = {
    "namespace.created": 1,
    "namespace.deleted": 1,
    "onboarding.failed": 1,
    "member.added": 1,
    "member.removed": 1,
    "member.role_changed": 1,
    "token.created": 1,
    "token.revoked": 1,
    "repo.linked": 1,
    "repo.unlinked": 1,
    "repo.disabled": 1,
    "repo.enabled": 1,
    "deployment.requested": 1,
    "deployment.started": 1,
    "deployment.succeeded": 1,
    "deployment.failed": 1,
    "deployment.rolled_back": 1,
    "service.deleted": 1,
    "config.changed": 1,
    "instance.started": 1,
    "instance.stopped": 1,
    "usage.recorded": 1,
    "usage.reported": 1,
    "invoice.created": 1,
    "invoice.paid": 1,
    "invoice.payment_failed": 1,
    "billing.threshold_crossed": 1,
    "billing.suspended": 1,
    "billing.resumed": 1,
    "billing.payment_failed": 1,
    "billing.reconciliation_mismatch": 1,
    "alert.fired": 1,
    "alert.delivery_failed": 1,
    "report.sent": 1,
    "region.created": 1,
    "region.failed": 1,
    "region.status_changed": 1,
    "region.unhealthy": 1,
    "region.recovered": 1,
    "region.deleted": 1,
}


@dataclass(frozen=True)
class Event:
    """The envelope ``{id, type, version, namespace, occurred_at, data}``."""

    type: str
    namespace: str | None
    occurred_at: datetime
    data: dict[str, Any] = field(default_factory=dict)
    id: str = ""
    version: int = 0

    @classmethod
    def create(cls, type: str, namespace: str | None, occurred_at: datetime, data: dict[str, Any]) -> Event:
        if type not in EVENT_TYPES:
            raise ValidationError(f"unknown event type {type!r}", {"type": type})
        if occurred_at.tzinfo is None:
            raise ValidationError("occurred_at must be timezone-aware", {"type": type})
        return cls(
            type=type,
            namespace=namespace,
            occurred_at=occurred_at,
            data=data,
            id=new_id(occurred_at),
            version=EVENT_TYPES[type],
        )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["occurred_at"] = self.occurred_at.isoformat()
        return {k: d[k] for k in ("id", "type", "version", "namespace", "occurred_at", "data")}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Event:
        try:
            return cls(
                id=str(d["id"]),
                type=str(d["type"]),
                version=int(d["version"]),
                namespace=d.get("namespace"),
                occurred_at=datetime.fromisoformat(str(d["occurred_at"])),
                data=dict(d.get("data") or {}),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise ValidationError("malformed event envelope", {"reason": str(e)}) from e
