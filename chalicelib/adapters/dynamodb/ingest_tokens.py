"""Ingest tokens on the single table (``IngestTokenStore``): found by the SHA-256 of the secret,
listed per region through GSI1. Keys: docs/data-model.md."""

from __future__ import annotations

from datetime import datetime, timedelta

from pynamodb.attributes import UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.exceptions import PutError, UpdateError

from chalicelib.adapters.dynamodb.base import BaseItem, condition_failed
from chalicelib.domain.errors import ConflictError
from chalicelib.domain.model import IngestToken


def region_index(region: str) -> str:
    return f"REGION#{region}#INGEST_TOKENS"


class IngestTokenItem(BaseItem, discriminator="IngestToken"):
    token_id = UnicodeAttribute()
    region = UnicodeAttribute()
    name = UnicodeAttribute()
    created_by = UnicodeAttribute()
    last_used_at = UTCDateTimeAttribute(null=True)
    revoked_at = UTCDateTimeAttribute(null=True)

    @staticmethod
    def key(secret_hash: str) -> tuple[str, str]:
        return f"INGEST_TOKEN#{secret_hash}", "INGEST_TOKEN"

    def to_domain(self) -> IngestToken:
        assert self.created_at is not None
        return IngestToken(
            id=self.token_id,
            region=self.region,
            name=self.name,
            created_by=self.created_by,
            created_at=self.created_at,
            last_used_at=self.last_used_at,
            revoked_at=self.revoked_at,
        )


class DynamoIngestTokenStore:
    def create(self, token: IngestToken, secret_hash: str) -> None:
        pk, sk = IngestTokenItem.key(secret_hash)
        try:
            IngestTokenItem(
                PK=pk,
                SK=sk,
                GSI1PK=region_index(token.region),
                GSI1SK=token.id,
                token_id=token.id,
                region=token.region,
                name=token.name,
                created_by=token.created_by,
                created_at=token.created_at,
            ).save(condition=IngestTokenItem.PK.does_not_exist())
        except PutError as e:
            if condition_failed(e):
                raise ConflictError("the token could not be created; try again", {}) from e
            raise

    def by_hash(self, secret_hash: str) -> IngestToken | None:
        try:
            return IngestTokenItem.get(*IngestTokenItem.key(secret_hash), consistent_read=True).to_domain()
        except IngestTokenItem.DoesNotExist:
            return None

    def list_for_region(self, region: str) -> list[IngestToken]:
        items = IngestTokenItem.gsi1.query(region_index(region))
        return [i.to_domain() for i in items if isinstance(i, IngestTokenItem)]

    def find(self, region: str, token_id: str) -> tuple[IngestToken, str] | None:
        for i in IngestTokenItem.gsi1.query(region_index(region), IngestTokenItem.GSI1SK == token_id):
            if isinstance(i, IngestTokenItem):
                return i.to_domain(), i.PK.removeprefix("INGEST_TOKEN#")
        return None

    def revoke(self, secret_hash: str, now: datetime) -> bool:
        pk, sk = IngestTokenItem.key(secret_hash)
        try:
            IngestTokenItem(PK=pk, SK=sk).update(
                actions=[IngestTokenItem.revoked_at.set(now)],
                condition=IngestTokenItem.PK.exists() & IngestTokenItem.revoked_at.does_not_exist(),
            )
        except UpdateError as e:
            if condition_failed(e):
                return False
            raise
        return True

    def touch(self, secret_hash: str, now: datetime) -> None:
        pk, sk = IngestTokenItem.key(secret_hash)
        try:
            IngestTokenItem(PK=pk, SK=sk).update(
                actions=[IngestTokenItem.last_used_at.set(now)],
                condition=IngestTokenItem.PK.exists()
                & (
                    IngestTokenItem.last_used_at.does_not_exist()
                    | (IngestTokenItem.last_used_at < now - timedelta(seconds=60))
                ),
            )
        except UpdateError as e:
            if not condition_failed(e):
                raise
