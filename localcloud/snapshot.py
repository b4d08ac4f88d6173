"""The table's items kept across restarts: written to a file on shutdown and every few seconds,
loaded at start. Executions and messages in flight are not kept.

The snapshot reads moto's in-process table under the DynamoDB lock (no Scan request, and a
consistent copy); it is written to a temporary file and renamed, so a crash mid-write leaves the
previous snapshot whole."""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

from moto.dynamodb.models import dynamodb_backends

from localcloud.declaration import ACCOUNT

log = logging.getLogger("localcloud.snapshot")
BATCH = 25  # BatchWriteItem takes at most 25 items


def read_items(table_name: str, region: str, lock: threading.RLock) -> list[dict[str, Any]]:
    with lock:
        table = dynamodb_backends[ACCOUNT][region].get_table(table_name)
        return [item.to_json()["Attributes"] for item in table.all_items()]


def save(path: Path, table_name: str, region: str, lock: threading.RLock) -> int:
    items = read_items(table_name, region, lock)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        json.dump({"table": table_name, "items": items}, f)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)
    return len(items)


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
    def __init__(self, path: Path, table_name: str, region: str, lock: threading.RLock, every: float = 5.0) -> None:
        self.path = path
        self.table_name = table_name
        self.region = region
        self.lock = lock
        self.every = every
        self.saved = 0

    def save(self) -> int:
        self.saved = save(self.path, self.table_name, self.region, self.lock)
        return self.saved

    def run(self, stop: threading.Event) -> None:
        while not stop.wait(self.every):
            try:
                self.save()
            except Exception:
                log.exception("snapshot failed")
