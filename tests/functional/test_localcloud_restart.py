"""The local cloud keeps the table's items across a restart, readable by its user only."""

from __future__ import annotations

import json
import os
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


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_the_key_and_the_table_are_readable_by_this_user_only(tmp_path: Path, env_restored: None) -> None:
    """Another user of the machine can read neither the key (which decrypts every namespace's secrets)
    nor the table: 0600 files in a 0700 directory, also when an older version left them readable."""
    clock = ManualClock(datetime(2026, 11, 27, tzinfo=UTC))
    older = tmp_path / "older"
    older.mkdir()
    (older / "local.key").write_text("a-key-an-older-version-made")
    (older / "table.json").write_text(json.dumps({"table": "platform-test", "items": []}))
    for path in (older, older / "local.key", older / "table.json"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    umask = os.umask(0o022)
    try:
        for data in (older, tmp_path / "fresh"):
            cloud = start_cloud(data, clock)
            try:
                assert mode(data) == 0o700
                assert mode(data / "local.key") == 0o600
            finally:
                cloud.stop()
            assert mode(data / "table.json") == 0o600
            assert {p.name: mode(p) for p in data.iterdir() if mode(p) & 0o077} == {}
    finally:
        os.umask(umask)
