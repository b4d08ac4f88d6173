"""The usage ledger on the single table (``UsageLedger``): dedup claims, hourly buckets, period
rollups, the sparse index of unreported buckets, the collectors' cursor; and the placement lookup
that ingestion authorises namespaces with. Keys live here only (docs/data-model.md charts them).

Exactly once, on DynamoDB itself (not only under the local cloud's serialised requests):

- an event is counted by one ``TransactWriteItems`` holding its claim ``Put`` (condition
  ``attribute_not_exists(PK) OR expires_at < :now``), the ``ADD`` to its bucket and the ``ADD`` to its
  period rollup. A transaction commits all or nothing, so a claim exists exactly when its count does;
- a transaction holds up to 100 items: the claims of one namespace's events plus one bucket update per
  bucket and one rollup update per period and meter they touch (DynamoDB refuses two operations on one
  item, so an event's value is summed into its bucket's single update);
- a cancelled transaction writes nothing. Its cancellation reasons are one per item, in PynamoDB's
  order (puts, then updates): a claim that failed its condition is an event already counted, a
  duplicate, and the chunk is sent again without it (its sums recomputed). ``TransactionConflict``
  (another writer on the same bucket, or the same claim, at that moment) and throttling are retried
  with backoff; a table that keeps refusing raises DependencyUnavailableError, and a retry of the
  whole batch by the caller finds the committed claims and counts only the rest;
- each attempt carries its own ``ClientRequestToken``, so a call retried by botocore after a lost
  answer is not applied twice and is answered as the success it was. Counting never depends on it:
  without it a lost answer would only turn those events into duplicates of themselves.

Claims expire 36 days after receipt while ingestion refuses events older than 35 days (plus 5 minutes
ahead), so no event can outlive its claim and be counted again."""

from __future__ import annotations

import random
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from pynamodb.attributes import BooleanAttribute, MapAttribute, NumberAttribute, UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.connection import Connection
from pynamodb.exceptions import TransactWriteError, UpdateError
from pynamodb.transactions import TransactWrite

from chalicelib.adapters.dynamodb.base import BaseItem, condition_failed, response_code
from chalicelib.adapters.dynamodb.namespaces import NamespaceItem
from chalicelib.domain.clock import epoch_seconds
from chalicelib.domain.errors import DependencyUnavailableError
from chalicelib.domain.metering import DEDUP_KEEP, Bucket, PendingReport, UsageEvent

MAX_ITEMS = 100  # DynamoDB's limit per TransactWriteItems
NO_SERVICE = "-"  # the service segment of a bucket of events without a service
PLACED_STATUSES = ("active", "deleting")
RETRY_REASONS = frozenset({"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"})
RETRY_CODES = frozenset(
    {
        "TransactionConflictException",
        "TransactionInProgressException",
        "ThrottlingException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "InternalServerError",
    }
)


def ledger_pk(ns: str) -> str:
    return f"USAGE#{ns}"


def unreported_pk(ns: str) -> str:
    return f"USAGE_UNREPORTED#{ns}"


def _svc(service: str) -> str:
    return service or NO_SERVICE


class UsageEventClaimItem(BaseItem, discriminator="UsageEventClaim"):
    """The dedup record of one event: written only in the transaction that counts it."""

    meter = UnicodeAttribute()
    service = UnicodeAttribute()
    hour = UnicodeAttribute()
    value = NumberAttribute()

    @staticmethod
    def key(ns: str, event_id: str) -> tuple[str, str]:
        return f"USAGE_EVENT#{ns}#{event_id}", "USAGE_EVENT"


class PendingAttribute(MapAttribute[str, Any]):
    seq = NumberAttribute()
    value = NumberAttribute()
    identifier = UnicodeAttribute()
    at = UTCDateTimeAttribute()


class UsageBucketItem(BaseItem, discriminator="UsageBucket"):
    ns = UnicodeAttribute()
    meter = UnicodeAttribute()
    service = UnicodeAttribute()
    hour = UnicodeAttribute()
    total = NumberAttribute(null=True)
    reported = NumberAttribute(null=True)
    reports = NumberAttribute(null=True)
    pending = PendingAttribute(null=True)
    refused = UnicodeAttribute(null=True)  # why billing last refused its report
    refused_at = UTCDateTimeAttribute(null=True)
    unbillable = BooleanAttribute(null=True)  # past what billing accepts: out of the unreported index

    @staticmethod
    def key(ns: str, hour: str, meter: str, service: str) -> tuple[str, str]:
        return ledger_pk(ns), f"H#{hour}#{meter}#{_svc(service)}"

    def to_domain(self) -> Bucket:
        pending = None
        if self.pending is not None:
            p = self.pending
            pending = PendingReport(seq=int(p.seq), value=int(p.value), identifier=p.identifier, at=p.at)
        return Bucket(
            namespace=self.ns,
            meter=self.meter,
            service="" if self.service == NO_SERVICE else self.service,
            hour=self.hour,
            total=int(self.total or 0),
            reported=int(self.reported or 0),
            reports=int(self.reports or 0),
            pending=pending,
            refused=self.refused,
            unbillable=bool(self.unbillable),
        )


class UsageRollupItem(BaseItem, discriminator="UsageRollup"):
    ns = UnicodeAttribute()
    meter = UnicodeAttribute()
    period = UnicodeAttribute()
    total = NumberAttribute(null=True)

    @staticmethod
    def key(ns: str, period: str, meter: str) -> tuple[str, str]:
        return ledger_pk(ns), f"P#{period}#{meter}"


class MeteringCursorItem(BaseItem, discriminator="MeteringCursor"):
    through = UnicodeAttribute()

    @staticmethod
    def key(ns: str) -> tuple[str, str]:
        return ledger_pk(ns), "COLLECTED"


# ============================================================================ the ledger


Commit = Callable[[Sequence[UsageEvent], str, datetime], None]


class DynamoUsageLedger:
    """``UsageLedger`` over the table. ``commit`` writes one chunk (its events' claims, bucket and
    rollup updates) in one transaction; tests wrap it to inject conflicts and lost answers."""

    def __init__(
        self,
        *,
        commit: Callable[[Commit, Sequence[UsageEvent], str, datetime], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        max_attempts: int = 8,
    ) -> None:
        self._wrap = commit
        self._sleep = sleep
        self._max_attempts = max_attempts

    # ------------------------------------------------------------------ ingestion

    def record(self, events: Sequence[UsageEvent], now: datetime) -> tuple[list[str], list[str]]:
        accepted: list[str] = []
        duplicates: list[str] = []
        by_namespace: dict[str, list[UsageEvent]] = defaultdict(list)
        seen: set[tuple[str, str]] = set()
        for event in events:
            if (event.namespace, event.id) in seen:
                duplicates.append(event.id)  # the same event twice in one batch: counted once
                continue
            seen.add((event.namespace, event.id))
            by_namespace[event.namespace].append(event)
        for ns_events in by_namespace.values():
            for chunk in pack(ns_events):
                ok, dup = self._write_chunk(chunk, now)
                accepted += ok
                duplicates += dup
        return accepted, duplicates

    def _write_chunk(self, chunk: list[UsageEvent], now: datetime) -> tuple[list[str], list[str]]:
        duplicates: list[str] = []
        attempt = 0
        while chunk:
            token = str(uuid.uuid4())
            try:
                if self._wrap is not None:
                    self._wrap(commit_chunk, chunk, token, now)
                else:
                    commit_chunk(chunk, token, now)
                return [e.id for e in chunk], duplicates
            except TransactWriteError as e:
                reasons = _reasons(e)
                counted = {i for i in range(len(chunk)) if i < len(reasons) and reasons[i] == "ConditionalCheckFailed"}
                if counted:  # claims that exist: those events are counted already
                    duplicates += [chunk[i].id for i in sorted(counted)]
                    chunk = [ev for i, ev in enumerate(chunk) if i not in counted]
                    continue
                code = response_code(e)
                if code is None:  # no answer (connection lost, timed out): the outcome is unknown
                    raise DependencyUnavailableError(
                        "the usage table did not answer; retry the batch (nothing is counted twice)",
                        {"dependency": "dynamodb", "reason": "no answer"},
                    ) from e
                if code not in RETRY_CODES and not any(r in RETRY_REASONS for r in reasons):
                    raise
                attempt += 1
                if attempt >= self._max_attempts:
                    raise DependencyUnavailableError(
                        "the usage table kept refusing the write; retry the batch (nothing is counted twice)",
                        {"dependency": "dynamodb", "reason": response_code(e) or "conflict"},
                    ) from e
                self._sleep(min(1.0, 0.02 * 2**attempt) * random.uniform(0.5, 1.0))
        return [], duplicates

    def record_max(self, namespace: str, meter: str, service: str, hour: str, value: int, now: datetime) -> bool:
        pk, sk = UsageBucketItem.key(namespace, hour, meter, service)
        raised = True
        try:
            UsageBucketItem(PK=pk, SK=sk).update(
                actions=[
                    UsageBucketItem.total.set(value),
                    *_bucket_fields(namespace, hour, meter, service),
                ],
                condition=UsageBucketItem.total.does_not_exist() | (UsageBucketItem.total < value),
            )
        except UpdateError as e:
            if not condition_failed(e):
                raise
            raised = False
        # The rollup on its own: a crash between the two leaves it to the next observation (or a rerun).
        rpk, rsk = UsageRollupItem.key(namespace, period_of_hour(hour), meter)
        try:
            UsageRollupItem(PK=rpk, SK=rsk).update(
                actions=[UsageRollupItem.total.set(value), *_rollup_fields(namespace, period_of_hour(hour), meter)],
                condition=UsageRollupItem.total.does_not_exist() | (UsageRollupItem.total < value),
            )
        except UpdateError as e:
            if not condition_failed(e):
                raise
        return raised

    # ------------------------------------------------------------------ reads

    def buckets(
        self, namespace: str, from_hour: str, to_hour: str, *, meter: str | None = None, service: str | None = None
    ) -> list[Bucket]:
        condition = None
        if meter is not None:
            condition = UsageBucketItem.meter == meter
        if service is not None:
            by_service = UsageBucketItem.service == _svc(service)
            condition = by_service if condition is None else condition & by_service
        # SK BETWEEN "H#<from>" AND "H#<to>": "H#<to>#..." sorts after "H#<to>", so the end is exclusive.
        items = UsageBucketItem.query(
            ledger_pk(namespace),
            UsageBucketItem.SK.between(f"H#{from_hour}", f"H#{to_hour}"),
            filter_condition=condition,
        )
        return [i.to_domain() for i in items if isinstance(i, UsageBucketItem)]

    def rollups(self, namespace: str, period: str) -> dict[str, int]:
        items = UsageRollupItem.query(
            ledger_pk(namespace), UsageRollupItem.SK.startswith(f"P#{period}#"), consistent_read=True
        )
        return {i.meter: int(i.total or 0) for i in items if isinstance(i, UsageRollupItem)}

    # ------------------------------------------------------------------ reporting

    def unreported(self, namespace: str) -> list[Bucket]:
        keys = [
            (i.PK, i.SK) for i in UsageBucketItem.gsi1.query(unreported_pk(namespace)) if isinstance(i, UsageBucketItem)
        ]
        if not keys:
            return []
        fresh = [i for i in UsageBucketItem.batch_get(keys, consistent_read=True) if isinstance(i, UsageBucketItem)]
        out = []
        for item in sorted(fresh, key=lambda i: i.SK):
            bucket = item.to_domain()
            if bucket.pending is None and bucket.total <= bucket.reported:
                self._leave_index(item.PK, item.SK)  # reported in full by a run that stopped short of this
                continue
            out.append(bucket)
        return out

    def begin_report(self, bucket: Bucket, value: int, identifier: str, now: datetime) -> PendingReport | None:
        pending = PendingReport(seq=bucket.reports + 1, value=value, identifier=identifier, at=now)
        pk, sk = UsageBucketItem.key(bucket.namespace, bucket.hour, bucket.meter, bucket.service)
        try:
            UsageBucketItem(PK=pk, SK=sk).update(
                actions=[
                    UsageBucketItem.pending.set(
                        PendingAttribute(seq=pending.seq, value=value, identifier=identifier, at=now)
                    )
                ],
                condition=(UsageBucketItem.reports == bucket.reports) & UsageBucketItem.pending.does_not_exist(),
            )
        except UpdateError as e:
            if condition_failed(e):
                return None
            raise
        return pending

    def finish_report(self, bucket: Bucket, pending: PendingReport, max_meter: bool) -> None:
        pk, sk = UsageBucketItem.key(bucket.namespace, bucket.hour, bucket.meter, bucket.service)
        record = (
            UsageBucketItem.reported.set(pending.value)
            if max_meter
            else UsageBucketItem.reported.set((UsageBucketItem.reported | 0) + pending.value)
        )
        try:
            UsageBucketItem(PK=pk, SK=sk).update(
                actions=[
                    record,
                    UsageBucketItem.reports.set(pending.seq),
                    UsageBucketItem.pending.remove(),
                    UsageBucketItem.refused.remove(),
                    UsageBucketItem.refused_at.remove(),
                ],
                condition=UsageBucketItem.pending["seq"] == pending.seq,
            )
        except UpdateError as e:
            if not condition_failed(e):
                raise
            # a lost condition: this report was recorded already (a re-run); nothing to do
        self._leave_index(pk, sk)

    def refuse_report(
        self, bucket: Bucket, pending: PendingReport | None, reason: str, now: datetime, *, final: bool = False
    ) -> None:
        pk, sk = UsageBucketItem.key(bucket.namespace, bucket.hour, bucket.meter, bucket.service)
        actions: list[Any] = [
            UsageBucketItem.pending.remove(),
            UsageBucketItem.refused.set(reason[:500]),
            UsageBucketItem.refused_at.set(now),
        ]
        if final:
            actions += [
                UsageBucketItem.unbillable.set(True),
                UsageBucketItem.GSI1PK.remove(),
                UsageBucketItem.GSI1SK.remove(),
            ]
        condition = (
            UsageBucketItem.pending["seq"] == pending.seq
            if pending is not None
            else UsageBucketItem.PK.exists() & UsageBucketItem.pending.does_not_exist()
        )
        try:
            UsageBucketItem(PK=pk, SK=sk).update(actions=actions, condition=condition)
        except UpdateError as e:
            if not condition_failed(e):
                raise  # a lost condition: recorded or refused meanwhile by another run

    def _leave_index(self, pk: str, sk: str) -> None:
        """Out of the unreported index when nothing is left to report. An increment that lands in
        between sets the index keys again (and raises total), so the condition keeps it in."""
        try:
            UsageBucketItem(PK=pk, SK=sk).update(
                actions=[UsageBucketItem.GSI1PK.remove(), UsageBucketItem.GSI1SK.remove()],
                condition=UsageBucketItem.PK.exists()
                & UsageBucketItem.pending.does_not_exist()
                & (UsageBucketItem.total <= UsageBucketItem.reported),
            )
        except UpdateError as e:
            if not condition_failed(e):
                raise

    # ------------------------------------------------------------------ the collectors' cursor

    def cursor(self, namespace: str) -> str | None:
        try:
            return MeteringCursorItem.get(*MeteringCursorItem.key(namespace), consistent_read=True).through
        except MeteringCursorItem.DoesNotExist:
            return None

    def advance_cursor(self, namespace: str, old: str | None, new: str) -> bool:
        pk, sk = MeteringCursorItem.key(namespace)
        condition = MeteringCursorItem.through.does_not_exist() if old is None else MeteringCursorItem.through == old
        try:
            MeteringCursorItem(PK=pk, SK=sk).update(
                actions=[MeteringCursorItem.through.set(new), MeteringCursorItem.entity.set(MeteringCursorItem)],
                condition=condition,
            )
        except UpdateError as e:
            if condition_failed(e):
                return False
            raise
        return True


# ============================================================================ one transaction


def pack(events: Sequence[UsageEvent]) -> list[list[UsageEvent]]:
    """One namespace's events -> chunks of at most ``MAX_ITEMS`` transaction items (claims plus one
    update per bucket and per period rollup), events of a bucket kept together so that a chunk
    touches few buckets: 1,000 events of one bucket make 11 chunks of up to 98 claims + 2 updates."""
    ordered = sorted(events, key=lambda e: (e.period, e.meter, e.hour, e.service))
    chunks: list[list[UsageEvent]] = []
    current: list[UsageEvent] = []
    buckets: set[tuple[str, str, str]] = set()
    rollups: set[tuple[str, str]] = set()
    for event in ordered:
        b, r = (event.hour, event.meter, event.service), (event.period, event.meter)
        extra = 1 + (b not in buckets) + (r not in rollups)
        if current and len(current) + len(buckets) + len(rollups) + extra > MAX_ITEMS:
            chunks.append(current)
            current, buckets, rollups = [], set(), set()
        current.append(event)
        buckets.add(b)
        rollups.add(r)
    if current:
        chunks.append(current)
    return chunks


def commit_chunk(chunk: Sequence[UsageEvent], token: str, now: datetime) -> None:
    """The chunk's claims (puts, first: their positions are the cancellation reasons' first
    positions), then one ``ADD`` per bucket and per rollup, in one TransactWriteItems."""
    expires = epoch_seconds(now + DEDUP_KEEP)
    sums: dict[tuple[str, str, str, str], int] = defaultdict(int)
    period_sums: dict[tuple[str, str, str], int] = defaultdict(int)
    connection: Connection = BaseItem._get_connection().connection
    with TransactWrite(connection=connection, client_request_token=token) as tx:
        for event in chunk:
            pk, sk = UsageEventClaimItem.key(event.namespace, event.id)
            claim = UsageEventClaimItem(
                PK=pk,
                SK=sk,
                meter=event.meter,
                service=_svc(event.service),
                hour=event.hour,
                value=event.value,
                expires_at=expires,
            )
            tx.save(claim, condition=UsageEventClaimItem.absent_or_expired(now))
            sums[(event.namespace, event.hour, event.meter, event.service)] += event.value
            period_sums[(event.namespace, event.period, event.meter)] += event.value
        for (ns, hour, meter, service), value in sums.items():
            pk, sk = UsageBucketItem.key(ns, hour, meter, service)
            tx.update(
                UsageBucketItem(PK=pk, SK=sk),
                actions=[UsageBucketItem.total.add(value), *_bucket_fields(ns, hour, meter, service)],
            )
        for (ns, period, meter), value in period_sums.items():
            pk, sk = UsageRollupItem.key(ns, period, meter)
            tx.update(
                UsageRollupItem(PK=pk, SK=sk),
                actions=[UsageRollupItem.total.add(value), *_rollup_fields(ns, period, meter)],
            )


def _bucket_fields(ns: str, hour: str, meter: str, service: str) -> list[Any]:
    """What every increment sets besides the total: the bucket's identity, zeroes where absent, and
    the unreported index (set again by every increment, so the reporter's conditional removal can
    never drop a bucket that a concurrent increment raised)."""
    return [
        UsageBucketItem.entity.set(UsageBucketItem),
        UsageBucketItem.ns.set(ns),
        UsageBucketItem.meter.set(meter),
        UsageBucketItem.service.set(_svc(service)),
        UsageBucketItem.hour.set(hour),
        UsageBucketItem.reported.set(UsageBucketItem.reported | 0),
        UsageBucketItem.reports.set(UsageBucketItem.reports | 0),
        UsageBucketItem.GSI1PK.set(unreported_pk(ns)),
        UsageBucketItem.GSI1SK.set(f"{hour}#{meter}#{_svc(service)}"),
    ]


def _rollup_fields(ns: str, period: str, meter: str) -> list[Any]:
    return [
        UsageRollupItem.entity.set(UsageRollupItem),
        UsageRollupItem.ns.set(ns),
        UsageRollupItem.meter.set(meter),
        UsageRollupItem.period.set(period),
    ]


def period_of_hour(hour: str) -> str:
    return hour[:7]  # "2026-12-01T13" -> "2026-12"


def _reasons(error: TransactWriteError) -> list[str | None]:
    if response_code(error) != "TransactionCanceledException":
        return []
    return [getattr(r, "code", None) if r is not None else None for r in (error.cancellation_reasons or [])]


# ============================================================================ placement lookup


class DynamoNamespacePlacements:
    """``NamespacePlacements``: which namespaces exist, are placed on a cluster, and where (consistent
    reads, as every authorisation is)."""

    def regions_of(self, ns_ids: Sequence[str]) -> dict[str, str]:
        if not ns_ids:
            return {}
        items: Iterable[Any] = NamespaceItem.batch_get([NamespaceItem.key(n) for n in ns_ids], consistent_read=True)
        return {
            i.ns: i.region
            for i in items
            if isinstance(i, NamespaceItem) and i.cluster_id and i.status in PLACED_STATUSES
        }
