"""What the local cloud acknowledges survives a crash: a journal of the table's writes.

Every successful DynamoDB write request (PutItem, UpdateItem, DeleteItem, BatchWriteItem,
TransactWriteItems) on the table appends one line, under the DynamoDB lock and fsync'd before the
answer goes back: the *after-image* of every item the request touched (the item as stored, read from
moto under the same lock, or null when it is gone). Replaying after-images is idempotent and needs no
condition expression: at start, the snapshot is loaded and each key journalled since takes its last
after-image. A snapshot empties the journal under the same lock (localcloud/snapshot.py), so nothing
falls between the two. A line cut short by a crash mid-append was never acknowledged and is ignored.

    {"items": [[{"PK": {"S": "NS#a"}, "SK": {"S": "NAMESPACE"}}, {"PK": ..., "status": {"S": "..."}}],
               [{"PK": ..., "SK": ...}, null]]}
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from localcloud.snapshot import fsync_dir, read_item

WRITES = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems")
BATCH = 25  # BatchWriteItem takes at most 25 items
Key = dict[str, Any]


def touched_keys(operation: str, body: dict[str, Any], table_name: str, key_of: Callable[[Key], Key]) -> list[Key]:
    """The keys of the table's items a write request names (``key_of`` picks a key out of an item)."""
    keys: list[Key] = []
    if operation in ("PutItem", "UpdateItem", "DeleteItem"):
        if body.get("TableName") == table_name:
            keys.append(key_of(body["Item"]) if operation == "PutItem" else body["Key"])
    elif operation == "BatchWriteItem":
        for request in (body.get("RequestItems") or {}).get(table_name, []):
            if "PutRequest" in request:
                keys.append(key_of(request["PutRequest"]["Item"]))
            elif "DeleteRequest" in request:
                keys.append(request["DeleteRequest"]["Key"])
    elif operation == "TransactWriteItems":
        for entry in body.get("TransactItems", []):
            for kind, op in entry.items():
                if kind == "ConditionCheck" or op.get("TableName") != table_name:
                    continue
                keys.append(key_of(op["Item"]) if kind == "Put" else op["Key"])
    return keys


class Journal:
    def __init__(self, path: Path, table_name: str, region: str, key_names: tuple[str, ...]) -> None:
        self.path = path
        self.table_name = table_name
        self.region = region
        self.key_names = key_names
        self.appended = 0  # lines since the last truncate
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._file = os.fdopen(fd, "ab")
        fsync_dir(path.parent)

    def key_of(self, item: Key) -> Key:
        return {name: item[name] for name in self.key_names}

    def record(self, operation: str, body: dict[str, Any], lock: threading.RLock) -> None:
        """Append the after-images of what a successful write touched. Call it holding ``lock``, the
        DynamoDB lock, right after the write and before its answer goes back."""
        keys = touched_keys(operation, body, self.table_name, self.key_of)
        if not keys:
            return
        images = [[key, read_item(self.table_name, self.region, key, lock)] for key in keys]
        self._file.write(json.dumps({"items": images}, separators=(",", ":")).encode() + b"\n")
        self._file.flush()
        os.fsync(self._file.fileno())
        self.appended += 1

    def truncate(self) -> None:
        """Empty the journal (the snapshot just written holds everything in it)."""
        self._file.truncate(0)
        self._file.flush()
        os.fsync(self._file.fileno())
        self.appended = 0

    def close(self) -> None:
        self._file.close()


def read(path: Path) -> list[tuple[Key, Key | None]]:
    """Every ``(key, after-image)`` of the journal, in order. A last line cut short by a crash is
    ignored (its write was never acknowledged); damage anywhere else stops the start."""
    if not path.exists():
        return []
    lines = path.read_bytes().split(b"\n")
    entries: list[tuple[Key, Key | None]] = []
    for number, line in enumerate(lines, 1):
        if number == len(lines):
            break  # after the last newline: empty, or an append a crash cut short
        if not line.strip():
            continue
        try:
            images = json.loads(line)["items"]
            entries.extend((key, image) for key, image in images)
        except (ValueError, KeyError, TypeError) as e:
            raise SystemExit(
                f"the local data's journal {path} is damaged at line {number} ({e}); `make reset` starts afresh"
            ) from e
    return entries


def replay(path: Path, dynamodb: Any, table_name: str) -> int:
    """Write the journal's last after-image of each key into the table; answer how many keys."""
    latest: dict[str, tuple[Key, Key | None]] = {}
    for key, image in read(path):
        latest[json.dumps(key, sort_keys=True)] = (key, image)
    requests = [
        {"PutRequest": {"Item": image}} if image is not None else {"DeleteRequest": {"Key": key}}
        for key, image in latest.values()
    ]
    for start in range(0, len(requests), BATCH):
        batch: dict[str, Any] = {table_name: requests[start : start + BATCH]}
        while batch:
            batch = dynamodb.batch_write_item(RequestItems=batch).get("UnprocessedItems") or {}
    return len(latest)
