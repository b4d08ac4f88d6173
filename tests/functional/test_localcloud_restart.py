"""The local cloud keeps the table's items across a restart."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from chalicelib.domain.clock import ManualClock
from tests.fixtures import start_cloud


def test_data_is_there_after_a_restart(tmp_path: Path, env_restored: None) -> None:
    clock = ManualClock(datetime(2026, 11, 27, tzinfo=UTC))
    first = start_cloud(tmp_path, clock)
    try:
        first.client("dynamodb").put_item(
            TableName=first.decl.table_name, Item={"PK": {"S": "NOTE#1"}, "SK": {"S": "NOTE"}, "text": {"S": "kept"}}
        )
    finally:
        first.stop()
    second = start_cloud(tmp_path, clock)
    try:
        item = second.client("dynamodb").get_item(
            TableName=second.decl.table_name, Key={"PK": {"S": "NOTE#1"}, "SK": {"S": "NOTE"}}
        )
        assert item["Item"]["text"]["S"] == "kept"
        assert second.restored >= 2  # the note and the seeded region
    finally:
        second.stop()
