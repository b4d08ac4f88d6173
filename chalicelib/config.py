"""Settings read from the environment, once, in one place.

Every variable the platform reads is listed here and in the README's configuration table.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from chalicelib import __version__

STAGES = ("local", "dev", "prod")


@dataclass(frozen=True)
class Settings:
    stage: str = "local"
    region: str = "us-east-1"
    table_name: str = "platform-local"
    event_bus_name: str = "platform"
    # Endpoint of the AWS API (the local cloud's moto server); None on AWS.
    aws_endpoint_url: str | None = None
    version: str = __version__
    platform_admins: tuple[str, ...] = field(default_factory=tuple)
    max_body_bytes: int = 1024 * 1024
    log_level: str = "INFO"
    # Local stage only: where the local runtime's proxy answers (the local region's one cluster).
    local_cluster_address: str = "http://127.0.0.1:8000"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        e = os.environ if env is None else env
        stage = e.get("PLATFORM_STAGE", "local")
        if stage not in STAGES:
            raise ValueError(f"PLATFORM_STAGE must be one of {', '.join(STAGES)}, not {stage!r}")
        admins = tuple(a.strip() for a in e.get("PLATFORM_ADMINS", "").split(",") if a.strip())
        return cls(
            stage=stage,
            region=e.get("AWS_DEFAULT_REGION", e.get("AWS_REGION", "us-east-1")),
            table_name=e.get("PLATFORM_TABLE_NAME", f"platform-{stage}"),
            event_bus_name=e.get("PLATFORM_EVENT_BUS", "platform"),
            aws_endpoint_url=e.get("AWS_ENDPOINT_URL") or None,
            version=e.get("PLATFORM_VERSION", __version__),
            platform_admins=admins,
            log_level=e.get("POWERTOOLS_LOG_LEVEL", e.get("PLATFORM_LOG_LEVEL", "INFO")),
            local_cluster_address=e.get("PLATFORM_LOCAL_CLUSTER_ADDRESS", "http://127.0.0.1:8000"),
        )
