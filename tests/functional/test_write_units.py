"""The local cloud's count of DynamoDB write units (what bench/ingest.py reports), on a moto server
with the local cloud's patches: by item size, doubled for transactional items, conditional failures
and cancelled transactions counted, index writes kept apart; and a condition moto cannot parse still
fails after the local cloud caches the ones it can."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from localcloud import moto_patches
from localcloud.aws import MotoServer, create_table

TABLE = "units"


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[MotoServer, Any]]:
    s = MotoServer().start()
    moto_patches.install(lambda name, event: ({}, None))
    ddb = s.client("dynamodb")
    create_table(ddb, TABLE)
    s.app.count_write_units = True
    yield s, ddb
    moto_patches.uninstall()
    s.stop()


def counted(server: MotoServer, write: Any) -> tuple[int, int]:
    meter = server.app.write_units
    units, index = meter.units, sum(meter.index_units.values())
    write()
    return meter.units - units, sum(meter.index_units.values()) - index


def item(pk: str, **extra: Any) -> dict[str, Any]:
    return {"PK": {"S": pk}, "SK": {"S": "X"}, **{k: {"S": v} for k, v in extra.items()}}


def test_a_write_costs_a_unit_per_started_kilobyte(server: tuple[MotoServer, Any]) -> None:
    s, ddb = server
    assert counted(s, lambda: ddb.put_item(TableName=TABLE, Item=item("a", v="x"))) == (1, 0)
    assert counted(s, lambda: ddb.put_item(TableName=TABLE, Item=item("b", v="x" * 1500))) == (2, 0)
    # an update costs the larger of before and after; a delete the item deleted
    assert counted(
        s,
        lambda: ddb.update_item(
            TableName=TABLE,
            Key={"PK": {"S": "b"}, "SK": {"S": "X"}},
            UpdateExpression="SET v = :v",
            ExpressionAttributeValues={":v": {"S": "short"}},
        ),
    ) == (2, 0)
    assert counted(s, lambda: ddb.delete_item(TableName=TABLE, Key={"PK": {"S": "a"}, "SK": {"S": "X"}})) == (1, 0)


def test_a_failed_condition_still_costs_and_writes_nothing(server: tuple[MotoServer, Any]) -> None:
    s, ddb = server
    ddb.put_item(TableName=TABLE, Item=item("c"))

    def refused() -> None:
        with pytest.raises(ClientError):
            ddb.put_item(TableName=TABLE, Item=item("c", v="new"), ConditionExpression="attribute_not_exists(PK)")

    assert counted(s, refused) == (1, 0)


def test_transactional_items_count_twice_and_index_writes_apart(server: tuple[MotoServer, Any]) -> None:
    s, ddb = server
    items = [{"Put": {"TableName": TABLE, "Item": item(f"t{i}", GSI1PK="IDX", GSI1SK=str(i))}} for i in range(3)]
    assert counted(s, lambda: ddb.transact_write_items(TransactItems=items)) == (6, 3)
    # the same items again, each with a condition that fails: cancelled, counted as written, no index write
    cancelled = [
        {"Put": {**op["Put"], "ConditionExpression": "attribute_not_exists(PK)"}}  # type: ignore[dict-item]
        for op in items
    ]

    def cancel() -> None:
        with pytest.raises(ClientError) as e:
            ddb.transact_write_items(TransactItems=cancelled)
        assert e.value.response["Error"]["Code"] == "TransactionCanceledException"

    assert counted(s, cancel) == (6, 0)
    # leaving the index is one index write; a changed index key two
    remove = {
        "TableName": TABLE,
        "Key": {"PK": {"S": "t0"}, "SK": {"S": "X"}},
        "UpdateExpression": "REMOVE GSI1PK, GSI1SK",
    }
    assert counted(s, lambda: ddb.update_item(**remove)) == (1, 1)
    move = {
        "TableName": TABLE,
        "Key": {"PK": {"S": "t1"}, "SK": {"S": "X"}},
        "UpdateExpression": "SET GSI1SK = :k",
        "ExpressionAttributeValues": {":k": {"S": "moved"}},
    }
    assert counted(s, lambda: ddb.update_item(**move)) == (1, 2)


def test_a_condition_moto_cannot_parse_fails_every_time(server: tuple[MotoServer, Any]) -> None:
    _, ddb = server
    for _ in range(2):
        with pytest.raises(ClientError):
            ddb.transact_write_items(
                TransactItems=[
                    {"Put": {"TableName": TABLE, "Item": item("bad"), "ConditionExpression": "attribute_not_exists("}}
                ]
            )
