"""The base item of the single table: generic keys, two generic indexes, a discriminator, and
time windows (``expires_at``) that every condition checks, because DynamoDB TTL only cleans up.

See docs/data-model.md for the entity chart and the access patterns."""

from __future__ import annotations

import os
from datetime import datetime
from typing import TypeVar

from pynamodb.attributes import DiscriminatorAttribute, NumberAttribute, UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.expressions.condition import Condition
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from chalicelib.domain.clock import epoch_seconds

T = TypeVar("T", bound="BaseItem")


class GSI1(GlobalSecondaryIndex["BaseItem"]):
    class Meta:
        index_name = "GSI1"
        projection = AllProjection()

    GSI1PK = UnicodeAttribute(hash_key=True)
    GSI1SK = UnicodeAttribute(range_key=True)


class GSI2(GlobalSecondaryIndex["BaseItem"]):
    class Meta:
        index_name = "GSI2"
        projection = AllProjection()

    GSI2PK = UnicodeAttribute(hash_key=True)
    GSI2SK = UnicodeAttribute(range_key=True)


class BaseItem(Model):
    """Every item of the table. Subclasses set ``discriminator=`` and build their keys."""

    class Meta:
        table_name = os.environ.get("PLATFORM_TABLE_NAME", "platform-local")
        region = os.environ.get("AWS_DEFAULT_REGION", os.environ.get("AWS_REGION", "us-east-1"))
        host = os.environ.get("AWS_ENDPOINT_URL") or None
        connect_timeout_seconds = 2
        read_timeout_seconds = 5
        max_retry_attempts = 3

    PK = UnicodeAttribute(hash_key=True)
    SK = UnicodeAttribute(range_key=True)
    GSI1PK = UnicodeAttribute(null=True)
    GSI1SK = UnicodeAttribute(null=True)
    GSI2PK = UnicodeAttribute(null=True)
    GSI2SK = UnicodeAttribute(null=True)
    entity = DiscriminatorAttribute(attr_name="entity")
    # Epoch seconds. Set on time-window items (claims, locks, sessions, codes); also the TTL attribute.
    expires_at = NumberAttribute(null=True)
    created_at = UTCDateTimeAttribute(null=True)

    gsi1 = GSI1()
    gsi2 = GSI2()

    # ------------------------------------------------------------------ time windows

    def is_live(self, now: datetime) -> bool:
        """An item whose window has passed counts as absent, whether or not TTL removed it yet."""
        return self.expires_at is None or self.expires_at >= epoch_seconds(now)

    @classmethod
    def absent_or_expired(cls, now: datetime) -> Condition:
        """``attribute_not_exists(PK) OR expires_at < :now``: the condition of every window claim."""
        condition: Condition = cls.PK.does_not_exist() | (cls.expires_at < epoch_seconds(now))
        return condition

    @classmethod
    def get_live(cls: type[T], pk: str, sk: str, now: datetime, *, consistent: bool = True) -> T | None:
        try:
            item = cls.get(pk, sk, consistent_read=consistent)
        except cls.DoesNotExist:
            return None
        return item if item.is_live(now) else None


def response_code(error: Exception) -> str | None:
    """The AWS error code of a PynamoDB error's cause; None when there was no answer. PynamoDB's own
    ``cause_response_code`` raises AttributeError for a read timeout (botocore's ``ReadTimeoutError``
    carries ``response=None``), the most common lost answer."""
    response = getattr(getattr(error, "cause", None), "response", None)
    code = ((response or {}).get("Error") or {}).get("Code") if isinstance(response, dict) else None
    return str(code) if code else None


def condition_failed(error: Exception) -> bool:
    """Whether a PynamoDB write failed on its condition (the expected race), not on anything else."""
    return response_code(error) == "ConditionalCheckFailedException"


def bind_table(table_name: str, region: str, host: str | None) -> None:
    """Point every model at a table (the composition root and the tests call this).

    PynamoDB reads Meta when it first connects and caches the connection per class, so the cached
    connections of the whole hierarchy are dropped too."""
    BaseItem.Meta.table_name = table_name
    BaseItem.Meta.region = region
    BaseItem.Meta.host = host
    stack: list[type[Model]] = [BaseItem]
    while stack:
        cls = stack.pop()
        cls._connection = None
        stack.extend(cls.__subclasses__())
    for index in (BaseItem.gsi1, BaseItem.gsi2):
        setattr(index, "_connection", None)  # noqa: B010 (private attribute of PynamoDB's Index)
