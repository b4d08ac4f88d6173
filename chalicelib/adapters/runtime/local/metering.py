"""What the local runtime records of usage (``RuntimeUsagePort``): the requests its proxies forward,
counted per service and hour (``request_counts.json``), and every instance's start and stop
(``instances.jsonl``, the source of ``service_hours``). The files' formats are in the package's
docstring."""

from __future__ import annotations

import json
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from chalicelib.adapters.runtime.local.state import append_private, write_json
from chalicelib.domain.clock import Clock
from chalicelib.domain.ids import new_id
from chalicelib.domain.metering import hour_key
from chalicelib.domain.ports import InstanceRecord, RequestCheckpoint

COUNTS_FORMAT = 2


class RequestMeter:
    """Requests counted per namespace, service and hour of the clock, with one pending checkpoint per
    namespace; kept in ``request_counts.json`` (``save``: when something changed, or ``force``)."""

    def __init__(self, path: Path, clock: Clock) -> None:
        self._path = path
        self._clock = clock
        self._lock = threading.RLock()
        self._counts: dict[str, dict[str, dict[str, int]]] = {}  # namespace -> service -> hour -> requests
        self._checkpoints: dict[str, dict[str, Any]] = {}  # namespace -> {"id", "counts"}
        self._dirty = False
        if path.exists():
            self._load(json.loads(path.read_text()))

    def _load(self, data: dict[str, Any]) -> None:
        if data.get("format") == COUNTS_FORMAT:
            self._counts = data.get("counts", {})
            self._checkpoints = data.get("checkpoints", {})
        else:  # format 1, {namespace: {service: requests}}: counted before hours were kept
            hour = hour_key(self._clock.now())
            self._counts = {ns: {svc: {hour: int(n)} for svc, n in per_ns.items()} for ns, per_ns in data.items()}

    def save(self, force: bool = False) -> None:
        with self._lock:
            if force or self._dirty or not self._path.exists():
                data = {"format": COUNTS_FORMAT, "counts": self._counts, "checkpoints": self._checkpoints}
                write_json(self._path, data)
                self._dirty = False

    def count(self, namespace: str, service: str) -> None:
        """One request forwarded now (saved with the next ``save``)."""
        with self._lock:
            per_service = self._counts.setdefault(namespace, {}).setdefault(service, {})
            hour = hour_key(self._clock.now())
            per_service[hour] = per_service.get(hour, 0) + 1
            self._dirty = True

    def counted(self, namespace: str) -> dict[str, int]:
        """Requests counted for each service that no checkpoint has taken yet."""
        with self._lock:
            return {svc: sum(hours.values()) for svc, hours in self._counts.get(namespace, {}).items()}

    def consume(self, namespace: str, counts: dict[str, int]) -> None:
        """Subtracts what a caller has reported, oldest hours first (so requests counted meanwhile are
        kept), and saves."""
        with self._lock:
            per_ns = self._counts.get(namespace, {})
            for service, n in counts.items():
                hours = per_ns.get(service, {})
                for hour in sorted(hours):
                    taken = min(n, hours[hour])
                    hours[hour] -= taken
                    n -= taken
                    if hours[hour] <= 0:
                        del hours[hour]
                if not hours:
                    per_ns.pop(service, None)
            if not per_ns:
                self._counts.pop(namespace, None)
            self.save(force=True)

    def checkpoint(self, namespace: str) -> RequestCheckpoint | None:
        """The namespace's pending checkpoint, or a new one holding every request counted so far
        (saved before it is answered); None when nothing was counted."""
        with self._lock:
            checkpoint = self._checkpoints.get(namespace)
            if checkpoint is None:
                counted = self._counts.pop(namespace, None)
                if not counted:
                    return None
                checkpoint = {"id": new_id(self._clock.now()), "counts": counted}
                self._checkpoints[namespace] = checkpoint
                self.save(force=True)
            counts = {(svc, hour): int(n) for svc, hours in checkpoint["counts"].items() for hour, n in hours.items()}
            return RequestCheckpoint(str(checkpoint["id"]), counts)

    def ack(self, namespace: str, checkpoint_id: str) -> None:
        """Drops the checkpoint once it is ingested (another id, or none pending: nothing happens)."""
        with self._lock:
            checkpoint = self._checkpoints.get(namespace)
            if checkpoint is not None and checkpoint["id"] == checkpoint_id:
                del self._checkpoints[namespace]
                self.save(force=True)


class InstanceLog:
    """``instances.jsonl``: one start record per instance, and at most one stop record, appended."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()

    def append(self, record: dict[str, Any]) -> None:
        with self._lock:
            append_private(self._path, json.dumps(record, sort_keys=True) + "\n")

    def _records(self) -> list[dict[str, Any]]:
        with self._lock:
            if not self._path.exists():
                return []
            lines = self._path.read_text().splitlines()
        records = []
        for line in lines:
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
        return records

    def open_starts(self) -> list[dict[str, Any]]:
        """The start records without a stop record (the instances of a runtime that crashed)."""
        left: dict[Any, dict[str, Any]] = {}
        for record in self._records():
            if record.get("event") == "start":
                left[record["instance_id"]] = record
            elif record.get("event") == "stop":
                left.pop(record.get("instance_id"), None)
        return list(left.values())

    def instances(self, namespace: str) -> list[dict[str, Any]]:
        """Every instance of the namespace's services, in start order: the start record with
        ``stopped_at``, ``exit_reason`` and ``exit_code`` from its stop record (``None`` while running)."""
        merged: dict[str, dict[str, Any]] = {}
        for record in self._records():
            if record.get("namespace") != namespace:
                continue
            event = record.pop("event", None)
            current = merged.setdefault(record["instance_id"], record)
            if event == "stop":
                current.update(
                    stopped_at=record["stopped_at"], exit_reason=record["exit_reason"], exit_code=record["exit_code"]
                )
        return list(merged.values())

    def usage(self, namespace: str, since: datetime) -> list[InstanceRecord]:
        """The namespace's instances that ran at or after ``since``."""
        found = []
        for r in self.instances(namespace):
            stopped = datetime.fromisoformat(r["stopped_at"]) if r.get("stopped_at") else None
            if stopped is not None and stopped < since:
                continue
            found.append(
                InstanceRecord(r["instance_id"], r["service"], datetime.fromisoformat(r["started_at"]), stopped)
            )
        return found
