"""The table's items kept across restarts: written to a file at start, on shutdown and every few
seconds while there are writes, loaded at start, with the journal of the writes since replayed over
it (localcloud/journal.py). Executions and messages in flight are not kept.

The snapshot reads moto's in-process table under the DynamoDB lock (no Scan request, and a
consistent copy); it is written to a temporary file, fsync'd and renamed, so a crash mid-write leaves
the previous snapshot whole, and the journal is emptied only once the new snapshot is in place, still
under the lock, so no write falls between the two."""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from moto.dynamodb.models import dynamodb_backends

from localcloud.declaration import ACCOUNT

if TYPE_CHECKING:
    from localcloud.journal import Journal

log = logging.getLogger("localcloud.snapshot")
BATCH = 25  # BatchWriteItem takes at most 25 items


def read_items(table_name: str, region: str, lock: threading.RLock) -> list[dict[str, Any]]:
    with lock:
        table = dynamodb_backends[ACCOUNT][region].get_table(table_name)
        return [item.to_json()["Attributes"] for item in table.all_items()]


def read_item(table_name: str, region: str, key: dict[str, Any], lock: threading.RLock) -> dict[str, Any] | None:
    """One item as stored (wire format), or None: what the journal records after a write."""
    with lock:
        item = dynamodb_backends[ACCOUNT][region].get_item(table_name, key)
        return None if item is None else dict(item.to_json()["Attributes"])


def save(path: Path, table_name: str, region: str, lock: threading.RLock, journal: Journal | None = None) -> int:
    """Write the snapshot; then empty the journal. Both under the lock: a write acknowledged meanwhile
    would otherwise be in neither."""
    with lock:
        items = read_items(table_name, region, lock)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            json.dump({"table": table_name, "items": items}, f)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(path)
        fsync_dir(path.parent)
        if journal is not None:
            journal.truncate()
    return len(items)


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def restore(path: Path, dynamodb: Any, table_name: str) -> int:
    """Put the snapshot's items into the (new, empty) table; answer how many."""
    if not path.exists():
        return 0
    try:
        items = json.loads(path.read_text())["items"]
    except (ValueError, KeyError) as e:
        raise SystemExit(f"the local data in {path} is unreadable ({e}); `make reset` starts afresh") from e
    for start in range(0, len(items), BATCH):
        request = {table_name: [{"PutRequest": {"Item": item}} for item in items[start : start + BATCH]]}
        while request:
            request = dynamodb.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}
    return len(items)


class Snapshotter:
    def __init__(
        self,
        path: Path,
        table_name: str,
        region: str,
        lock: threading.RLock,
        every: float = 5.0,
        journal: Journal | None = None,
    ) -> None:
        self.path = path
        self.table_name = table_name
        self.region = region
        self.lock = lock
        self.every = every
        self.journal = journal
        self.saved = 0

    def save(self) -> int:
        self.saved = save(self.path, self.table_name, self.region, self.lock, self.journal)
        return self.saved

    def run(self, stop: threading.Event) -> None:
        while not stop.wait(self.every):
            if self.journal is not None and self.journal.appended == 0:
                continue  # nothing written since the last snapshot
            try:
                self.save()
            except Exception:
                log.exception("snapshot failed")
