"""The reports' ``BlobStore`` over S3: the ``reports`` bucket of infra/resources.json
(``PLATFORM_BUCKET_REPORTS_NAME``), objects under ``reports/<ns>/<report id>/``."""

from __future__ import annotations

import os
from typing import Any


class S3Blobs:
    def __init__(
        self, bucket: str = "reports", client: Any = None, *, region: str | None = None, endpoint_url: str | None = None
    ) -> None:
        self._bucket_name = bucket
        self._client = client
        self._region = region
        self._endpoint_url = endpoint_url

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("s3", region_name=self._region, endpoint_url=self._endpoint_url)
        return self._client

    @property
    def bucket(self) -> str:
        return os.environ.get(f"PLATFORM_BUCKET_{self._bucket_name.upper().replace('-', '_')}_NAME", self._bucket_name)

    def put(self, key: str, body: bytes, content_type: str) -> None:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type)

    def get(self, key: str) -> bytes | None:
        try:
            return bytes(self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read())
        except self.client.exceptions.NoSuchKey:
            return None
