"""The local cloud's journal of table writes (localcloud/journal.py): after-images of what each write
touched, replayed over the snapshot at start, idempotent, and a line a crash cut short ignored."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from localcloud.aws import create_table
from localcloud.journal import Journal, read, replay

KEY = {"PK": {"S": "NS#a"}, "SK": {"S": "NAMESPACE"}}


def items(ddb: Any, table: str) -> list[dict[str, Any]]:
    found = ddb.query(
        TableName=table, KeyConditionExpression="PK = :p", ExpressionAttributeValues={":p": {"S": "NS#a"}}
    )
    return sorted(found["Items"], key=lambda i: i["SK"]["S"])


def journalled_writes(ddb: Any, table: str, journal: Journal, lock: threading.RLock) -> None:
    """Writes as the middleware sees them: the request body, then ``record`` after it succeeded."""

    def write(operation: str, body: dict[str, Any]) -> None:
        method = {"PutItem": "put_item", "UpdateItem": "update_item", "DeleteItem": "delete_item"}.get(operation)
        if method:
            getattr(ddb, method)(**body)
        elif operation == "BatchWriteItem":
            ddb.batch_write_item(**body)
        else:
            ddb.transact_write_items(**body)
        journal.record(operation, json.loads(json.dumps(body)), lock)

    write("PutItem", {"TableName": table, "Item": {**KEY, "status": {"S": "provisioning"}, "n": {"N": "1"}}})
    write(
        "UpdateItem",
        {
            "TableName": table,
            "Key": KEY,
            "UpdateExpression": "SET #s = :s ADD n :one",
            "ExpressionAttributeNames": {"#s": "status"},
            "ExpressionAttributeValues": {":s": {"S": "active"}, ":one": {"N": "1"}},
        },
    )
    write(
        "BatchWriteItem",
        {
            "RequestItems": {
                table: [
                    {"PutRequest": {"Item": {"PK": {"S": "NS#a"}, "SK": {"S": "MEMBER#1"}}}},
                    {"PutRequest": {"Item": {"PK": {"S": "NS#a"}, "SK": {"S": "MEMBER#2"}}}},
                ]
            }
        },
    )
    write(
        "TransactWriteItems",
        {
            "TransactItems": [
                {"Delete": {"TableName": table, "Key": {"PK": {"S": "NS#a"}, "SK": {"S": "MEMBER#2"}}}},
                {"ConditionCheck": {"TableName": table, "Key": KEY, "ConditionExpression": "attribute_exists(PK)"}},
                {"Put": {"TableName": table, "Item": {"PK": {"S": "NS#a"}, "SK": {"S": "TEAM"}, "t": {"S": "x"}}}},
            ]
        },
    )
    write("DeleteItem", {"TableName": table, "Key": {"PK": {"S": "NS#a"}, "SK": {"S": "TEAM"}}})


def test_replaying_the_journal_over_an_empty_table_gives_back_every_acknowledged_write(
    aws: dict[str, Any], tmp_path: Path
) -> None:
    ddb, table = aws["dynamodb"], os.environ["PLATFORM_TABLE_NAME"]
    lock = threading.RLock()
    journal = Journal(tmp_path / "journal.jsonl", table, "us-east-1", ("PK", "SK"))
    journalled_writes(ddb, table, journal, lock)
    assert journal.appended == 5
    before = items(ddb, table)
    assert [i["SK"]["S"] for i in before] == ["MEMBER#1", "NAMESPACE"]

    ddb.delete_table(TableName=table)  # a new local cloud starts from an empty table
    create_table(ddb, table)
    assert replay(journal.path, ddb, table) == 4  # keys touched
    assert items(ddb, table) == before
    assert replay(journal.path, ddb, table) == 4  # after-images: replaying twice changes nothing
    assert items(ddb, table) == before
    assert (journal.path.stat().st_mode & 0o777) == 0o600

    journal.truncate()
    assert journal.appended == 0 and read(journal.path) == []


def test_a_line_cut_short_by_a_crash_is_ignored_and_damage_elsewhere_stops_the_start(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    whole = json.dumps({"items": [[KEY, {**KEY, "status": {"S": "active"}}]]})
    path.write_text(whole + "\n" + whole[: len(whole) // 2])  # the second append never finished
    assert read(path) == [(KEY, {**KEY, "status": {"S": "active"}})]
    path.write_text(whole + "\n" + whole[:10] + "\n" + whole + "\n")
    with pytest.raises(SystemExit, match="line 2"):
        read(path)
    assert read(tmp_path / "absent.jsonl") == []
