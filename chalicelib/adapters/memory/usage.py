"""An in-memory usage ledger: the ``UsageLedger`` contract with the conditions of the table's adapter
(chalicelib/adapters/dynamodb/usage.py, docs/data-model.md), so the metering run can be tested, crashes
and all, without DynamoDB:

- an event id is claimed once per namespace (until its claim expires); the claim and the bucket and
  rollup increments happen together or not at all;
- a bucket is in the unreported index while it has something billing has not been told; the reporter
  takes it out only when nothing is left (a concurrent increment keeps it in);
- a report's intent is written only when the bucket's ``reports`` is unchanged and none is pending;
  its result only while that same intent is pending;
- the collection cursor moves only from the value the caller read.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from chalicelib.domain.metering import DEDUP_KEEP, Bucket, PendingReport, UsageEvent, parse_hour_key, period_of

_Key = tuple[str, str, str, str]  # namespace, hour, meter, service


class InMemoryUsageLedger:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.claims: dict[tuple[str, str], datetime] = {}  # (namespace, event id) -> expires_at
        self.bucket_items: dict[_Key, Bucket] = {}
        self.unreported_index: set[_Key] = set()
        self.rollup_items: dict[tuple[str, str, str], int] = {}  # (namespace, period, meter) -> quantity
        self.cursors: dict[str, str] = {}

    @staticmethod
    def _key(b: Bucket) -> _Key:
        return (b.namespace, b.hour, b.meter, b.service)

    def _bucket(self, key: _Key) -> Bucket:
        ns, hour, meter, service = key
        return self.bucket_items.get(key) or Bucket(ns, meter, service, hour, total=0, reported=0, reports=0)

    # ------------------------------------------------------------------ ingestion

    def record(self, events: Sequence[UsageEvent], now: datetime) -> tuple[list[str], list[str]]:
        accepted: list[str] = []
        duplicates: list[str] = []
        with self._lock:
            for e in events:
                claim = (e.namespace, e.id)
                expires = self.claims.get(claim)
                if expires is not None and expires >= now:
                    duplicates.append(e.id)
                    continue
                self.claims[claim] = now + DEDUP_KEEP
                key = (e.namespace, e.hour, e.meter, e.service)
                b = self._bucket(key)
                self.bucket_items[key] = replace(b, total=b.total + e.value)
                self.unreported_index.add(key)
                rollup = (e.namespace, e.period, e.meter)
                self.rollup_items[rollup] = self.rollup_items.get(rollup, 0) + e.value
                accepted.append(e.id)
        return accepted, duplicates

    def record_max(self, namespace: str, meter: str, service: str, hour: str, value: int, now: datetime) -> bool:
        with self._lock:
            key = (namespace, hour, meter, service)
            b = self.bucket_items.get(key)
            raised = b is None or b.total < value
            if raised:
                self.bucket_items[key] = replace(self._bucket(key), total=value)
                self.unreported_index.add(key)
            rollup = (namespace, period_of(parse_hour_key(hour)), meter)
            self.rollup_items[rollup] = max(self.rollup_items.get(rollup, 0), value)
            return raised

    # ------------------------------------------------------------------ reads

    def buckets(
        self, namespace: str, from_hour: str, to_hour: str, *, meter: str | None = None, service: str | None = None
    ) -> list[Bucket]:
        with self._lock:
            found = [
                b
                for (ns, hour, m, s), b in self.bucket_items.items()
                if ns == namespace
                and from_hour <= hour < to_hour
                and (meter is None or m == meter)
                and (service is None or s == service)
            ]
        return sorted(found, key=lambda b: (b.hour, b.meter, b.service))

    def rollups(self, namespace: str, period: str) -> dict[str, int]:
        with self._lock:
            return {m: q for (ns, p, m), q in self.rollup_items.items() if ns == namespace and p == period}

    def unreported(self, namespace: str) -> list[Bucket]:
        with self._lock:
            found = []
            for key in sorted(k for k in self.unreported_index if k[0] == namespace):
                b = self.bucket_items[key]
                if b.pending is None and b.total <= b.reported:
                    self.unreported_index.discard(key)  # reported in full by a run that stopped short of this
                    continue
                found.append(b)
            return found

    # ------------------------------------------------------------------ reporting

    def begin_report(self, bucket: Bucket, value: int, identifier: str, now: datetime) -> PendingReport | None:
        with self._lock:
            key = self._key(bucket)
            current = self._bucket(key)
            if current.reports != bucket.reports or current.pending is not None:
                return None
            pending = PendingReport(seq=current.reports + 1, value=value, identifier=identifier, at=now)
            self.bucket_items[key] = replace(current, pending=pending)
            return pending

    def finish_report(self, bucket: Bucket, pending: PendingReport, max_meter: bool) -> None:
        with self._lock:
            key = self._key(bucket)
            current = self._bucket(key)
            if current.pending is not None and current.pending.seq == pending.seq:
                reported = pending.value if max_meter else current.reported + pending.value
                current = replace(current, reported=reported, reports=pending.seq, pending=None, refused=None)
                self.bucket_items[key] = current
            # else: recorded already (a re-run): nothing to do
            if current.pending is None and current.total <= current.reported:
                self.unreported_index.discard(key)

    def refuse_report(
        self, bucket: Bucket, pending: PendingReport | None, reason: str, now: datetime, *, final: bool = False
    ) -> None:
        with self._lock:
            key = self._key(bucket)
            current = self._bucket(key)
            if pending is not None and (current.pending is None or current.pending.seq != pending.seq):
                return  # recorded meanwhile
            self.bucket_items[key] = replace(current, pending=None, refused=reason, unbillable=final)
            if final:
                self.unreported_index.discard(key)

    # ------------------------------------------------------------------ the collection cursor

    def cursor(self, namespace: str) -> str | None:
        with self._lock:
            return self.cursors.get(namespace)

    def advance_cursor(self, namespace: str, old: str | None, new: str) -> bool:
        with self._lock:
            if self.cursors.get(namespace) != old:
                return False
            self.cursors[namespace] = new
            return True
