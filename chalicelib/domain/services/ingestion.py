"""Usage ingestion (``POST /v1/usage/events`` and the platform's own collectors) and the ingest
tokens that authenticate the runtime side of a region.

Every event is validated on its own; an invalid one is rejected by its index in the batch and the
valid ones are counted, each exactly once (the ledger's transaction: chalicelib/domain/metering.py
``UsageLedger.record``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from chalicelib.domain.clock import Clock
from chalicelib.domain.errors import ForbiddenError, NotFoundError, ValidationError
from chalicelib.domain.ids import new_id
from chalicelib.domain.metering import (
    MAX_EVENT_AGE,
    MAX_EVENT_AHEAD,
    MAX_EVENT_ID,
    MAX_VALUE_UNITS,
    MICROS,
    Catalog,
    IngestResult,
    Rejection,
    UsageEvent,
    to_micros,
)
from chalicelib.domain.model import DNS_LABEL, IngestToken, Principal
from chalicelib.domain.ports import RegionRegistry
from chalicelib.domain.services.auth import INGEST_PREFIX, hash_secret, new_secret
from chalicelib.domain.stores import IngestTokenStore, NamespacePlacements, UsageLedger

FIELDS = frozenset({"id", "namespace", "meter", "value", "timestamp", "service", "dimensions"})
REQUIRED = ("id", "namespace", "meter", "value", "timestamp")
MAX_DIMENSIONS = 10
MAX_DIMENSION_KEY = 64
MAX_DIMENSION_VALUE = 256
MAX_VALUE_MICROS = int(MAX_VALUE_UNITS) * MICROS


class _Invalid(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class IngestionService:
    """Counts usage events exactly once. Two entrances, one validation and one write path:

    - ``ingest(raw_events, region=...)``: the API's (``POST /v1/usage/events``, an ingest token of
      ``region``). Events are untrusted JSON objects (numbers already parsed as ``Decimal``, never
      float); each must name a meter that accepts ingestion and a namespace placed in ``region``.
    - ``ingest_internal(events)``: the platform's own collectors (the metering run: ``service_hours``
      from instance records, ``requests`` from the runtime's counters, ``seats`` from membership).
      They pass ``UsageEvent``s (values already in millionths) for namespaces they read from the
      platform's own records, so there is no region check; every other rule holds. ``max`` meters
      (``seats``) are accepted here and only here: each event is the hour's observation, recorded
      as the bucket's maximum (``UsageLedger.record_max``), idempotent without a dedup claim.

    Both answer ``IngestResult(accepted, duplicates, rejected=[Rejection(index, code, message)])``.
    Rejection codes: ``invalid_event``, ``invalid_id``, ``unknown_meter``, ``meter_not_ingestible``,
    ``namespace_not_allowed`` (unknown, or not in the token's region: one code, so it tells nothing),
    ``invalid_value``, ``timestamp_out_of_range``. A table that keeps refusing raises
    DependencyUnavailableError: what was counted stays counted, once, and a retry of the whole batch
    counts the rest."""

    def __init__(self, ledger: UsageLedger, catalog: Catalog, placements: NamespacePlacements, clock: Clock) -> None:
        self._ledger = ledger
        self._catalog = catalog
        self._placements = placements
        self._clock = clock

    # ------------------------------------------------------------------ entrances

    def ingest(self, raw_events: Sequence[Any], *, region: str) -> IngestResult:
        now = self._clock.now()
        result = IngestResult()
        valid: list[tuple[int, UsageEvent]] = []
        for index, raw in enumerate(raw_events):
            try:
                event = self._parse(raw)
                self._check(event, now, api=True)
            except _Invalid as e:
                result.rejected.append(Rejection(index, e.code, e.message))
                continue
            valid.append((index, event))
        placed = self._placements.regions_of(sorted({e.namespace for _, e in valid})) if valid else {}
        allowed = []
        for index, event in valid:
            if placed.get(event.namespace) != region:
                result.rejected.append(
                    Rejection(
                        index,
                        "namespace_not_allowed",
                        f"this token may not report usage for the namespace {event.namespace!r}",
                    )
                )
            else:
                allowed.append(event)
        self._record(allowed, now, result)
        result.rejected.sort(key=lambda r: r.index)
        return result

    def ingest_internal(self, events: Sequence[UsageEvent]) -> IngestResult:
        now = self._clock.now()
        result = IngestResult()
        valid = []
        for index, event in enumerate(events):
            try:
                self._check_internal(event, now)
            except _Invalid as e:
                result.rejected.append(Rejection(index, e.code, e.message))
                continue
            valid.append(event)
        self._record(valid, now, result)
        return result

    def _record(self, events: Sequence[UsageEvent], now: datetime, result: IngestResult) -> None:
        summed = []
        for event in events:
            meter = self._catalog.meters[event.meter]
            if meter.aggregation == "max":
                self._ledger.record_max(event.namespace, event.meter, event.service, event.hour, event.value, now)
                result.accepted += 1
            else:
                summed.append(event)
        if summed:
            accepted, duplicates = self._ledger.record(summed, now)
            result.accepted += len(accepted)
            result.duplicates += len(duplicates)

    # ------------------------------------------------------------------ validation

    def _parse(self, raw: Any) -> UsageEvent:
        """An untrusted JSON object -> an event (value in millionths); _Invalid names what is wrong."""
        if not isinstance(raw, Mapping):
            raise _Invalid("invalid_event", "an event is a JSON object")
        unknown = sorted(str(k) for k in raw if k not in FIELDS)
        if unknown:
            raise _Invalid("invalid_event", f"unknown fields: {', '.join(unknown)[:200]}")
        missing = [f for f in REQUIRED if raw.get(f) is None]
        if missing:
            raise _Invalid("invalid_event", f"missing: {', '.join(missing)}")
        event_id, namespace, meter = raw["id"], raw["namespace"], raw["meter"]
        if not isinstance(event_id, str):
            raise _Invalid("invalid_id", "id must be a string")
        if not isinstance(meter, str):
            raise _Invalid("unknown_meter", "meter must be a string naming a meter")
        if not isinstance(namespace, str):
            raise _Invalid("namespace_not_allowed", "namespace must be a namespace id")
        value = raw["value"]
        if isinstance(value, bool) or not isinstance(value, int | Decimal):
            raise _Invalid("invalid_value", "value must be a JSON number")
        timestamp = raw["timestamp"]
        if not isinstance(timestamp, str):
            raise _Invalid("invalid_event", "timestamp must be an ISO-8601 time with a time zone")
        try:
            when = datetime.fromisoformat(timestamp.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise _Invalid("invalid_event", "timestamp must be an ISO-8601 time with a time zone") from None
        if when.tzinfo is None:
            raise _Invalid("invalid_event", "timestamp needs a time zone (e.g. Z)")
        service = raw.get("service")
        if service is not None and not isinstance(service, str):
            raise _Invalid("invalid_event", "service must be a service name")
        dimensions = raw.get("dimensions")
        if dimensions is not None:
            _check_dimensions(dimensions)
        try:
            micros = to_micros(Decimal(value))
        except ValueError as e:
            raise _Invalid("invalid_value", f"value {_show(value)}: {e}") from None
        return UsageEvent(
            id=event_id,
            namespace=namespace,
            meter=meter,
            value=micros,
            timestamp=when,
            service=service or "",
            dimensions=dict(dimensions or {}),
        )

    def _check(self, event: UsageEvent, now: datetime, *, api: bool) -> None:
        """The rules both entrances apply (the API's also: the meter accepts ingestion)."""
        if not event.id or len(event.id) > MAX_EVENT_ID or not event.id.isprintable():
            raise _Invalid("invalid_id", f"id must be 1 to {MAX_EVENT_ID} printable characters")
        meter = self._catalog.meter(event.meter)
        if meter is None:
            raise _Invalid(
                "unknown_meter", f"unknown meter {event.meter[:64]!r}; one of {sorted(self._catalog.meters)}"
            )
        if api and not meter.ingest:
            raise _Invalid("meter_not_ingestible", f"the meter {meter.name!r} is measured by the platform itself")
        if not DNS_LABEL.match(event.namespace):
            raise _Invalid("namespace_not_allowed", f"this token may not report usage for {event.namespace[:64]!r}")
        if event.service and not DNS_LABEL.match(event.service):
            raise _Invalid("invalid_event", "service must be a service name (a DNS label)")
        oldest, latest = now - MAX_EVENT_AGE, now + MAX_EVENT_AHEAD
        if not oldest <= event.timestamp <= latest:
            raise _Invalid(
                "timestamp_out_of_range",
                f"timestamp must be at most {MAX_EVENT_AGE.days} days old and at most "
                f"{int(MAX_EVENT_AHEAD.total_seconds() // 60)} minutes ahead of the platform's clock",
            )

    def _check_internal(self, event: UsageEvent, now: datetime) -> None:
        if (
            isinstance(event.value, bool)
            or not isinstance(event.value, int)
            or not 0 <= event.value <= MAX_VALUE_MICROS
        ):
            raise _Invalid("invalid_value", "value must be a whole number of millionths between 0 and 10^18")
        if event.timestamp.tzinfo is None:
            raise _Invalid("invalid_event", "timestamp needs a time zone")
        self._check(event, now, api=False)


def _check_dimensions(dimensions: Any) -> None:
    if (
        not isinstance(dimensions, Mapping)
        or len(dimensions) > MAX_DIMENSIONS
        or not all(
            isinstance(k, str)
            and isinstance(v, str)
            and 0 < len(k) <= MAX_DIMENSION_KEY
            and len(v) <= MAX_DIMENSION_VALUE
            for k, v in dimensions.items()
        )
    ):
        raise _Invalid(
            "invalid_event",
            f"dimensions must be an object of at most {MAX_DIMENSIONS} strings "
            f"(keys up to {MAX_DIMENSION_KEY} characters, values up to {MAX_DIMENSION_VALUE})",
        )


def _show(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 40 else text[:37] + "..."


# ============================================================================ ingest tokens


class IngestTokenService:
    """A region's ingest tokens (``mp_ing_...``): minted by a platform admin for the runtime side of
    the region's clusters, shown once, stored as a SHA-256 hash, revocable. ``AuthService`` knows
    them on authentication; they reach ``POST /v1/usage/events`` only, for namespaces placed in their
    region."""

    def __init__(self, store: IngestTokenStore, regions: RegionRegistry, clock: Clock) -> None:
        self._store = store
        self._regions = regions
        self._clock = clock

    def create(self, principal: Principal, region: str, name: str) -> tuple[str, IngestToken]:
        if not principal.platform_admin:
            raise ForbiddenError("this needs a platform admin", {"needed_role": "platform_admin"})
        self._region(region)
        if not name or len(name) > 64 or not name.isprintable():
            raise ValidationError(
                "name must be 1 to 64 printable characters", {"fields": [{"field": "name", "message": "1-64"}]}
            )
        now = self._clock.now()
        secret = new_secret("ing")
        assert secret.startswith(INGEST_PREFIX)
        token = IngestToken(id=new_id(now), region=region, name=name, created_by=principal.actor, created_at=now)
        self._store.create(token, hash_secret(secret))
        return secret, token

    def list(self, region: str) -> list[IngestToken]:
        self._region(region)
        return sorted(
            (t for t in self._store.list_for_region(region) if t.revoked_at is None), key=lambda t: t.created_at
        )

    def revoke(self, region: str, token_id: str) -> IngestToken:
        self._region(region)
        found = self._store.find(region, token_id)
        if found is None or found[0].revoked_at is not None:
            raise NotFoundError(f"ingest token {token_id!r} not found", {"token_id": token_id})
        token, token_hash = found
        self._store.revoke(token_hash, self._clock.now())
        return token

    def _region(self, region: str) -> None:
        if not DNS_LABEL.match(region):
            raise NotFoundError(f"region {region!r} does not exist", {"region": region})
        self._regions.get(region)  # NotFoundError when there is no such region
