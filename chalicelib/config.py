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
    # Local stage only: where the local runtime's proxy answers (the local region's one cluster).
    local_cluster_address: str = "http://127.0.0.1:8000"
    # Where the platform's API is reached from outside (OAuth redirects, links in statuses).
    public_url: str = "http://127.0.0.1:8000"
    github_api_url: str = "https://api.github.com"
    github_web_url: str = "https://github.com"
    github_app_id: str = ""
    github_client_id: str = ""
    # Secrets Manager secrets (JSON objects, comma-separated ids) holding the secrets below on AWS; locally they
    # come from the environment.
    secrets_id: str | None = None
    # How long the secrets read from Secrets Manager are kept (Powertools Parameters' cache): a rotated
    # secret is picked up within this, without a cold start.
    secrets_max_age_seconds: int = 300
    kms_key_id: str | None = None
    # Local stage: the local cloud's data directory (its key, the table's snapshot; the local cloud sets
    # it); no deploy source may lie in it, nor in the runtime or artifacts directories.
    data_dir: str = ".local"
    runtime_dir: str = ".local/runtime"
    artifacts_dir: str = ".local/artifacts"
    deploy_poll_seconds: int = 10
    runtime_retries: int = 3
    runtime_backoff_seconds: float = 0.5
    # Local stage only: the file holding the local clock's offset (python -m localcloud.clock).
    clock_file: str | None = None
    # Local stage only: the micro stand-in the local cloud runs, seeded as the region micro-local (its
    # HTTP API gateway, and where its gRPC proxy would be); empty when it runs none.
    micro_local_api_address: str = ""
    micro_local_proxy_address: str = ""
    # Local stage only: git remote prefixes a cluster knows by another name ("PREFIX=REPLACEMENT;..."):
    # the GitHub stand-in's file:// clone URLs stand for https://github.com/.
    git_remote_aliases: tuple[tuple[str, str], ...] = ()
    # Regions: where the Terraform runner keeps each region's working directory (and, locally, its
    # state); the S3 bucket of the regions' state on AWS (empty: the local backend); the binary.
    terraform_dir: str = ".local/regions"
    terraform_state_bucket: str = ""
    terraform_bin: str = "terraform"
    # The cluster health check: unhealthy after this many consecutive failed checks, run every interval.
    region_health_failures: int = 3
    region_health_interval_seconds: int = 60
    # The region state machine's wait between two looks at a draining region's namespaces.
    region_poll_seconds: int = 5
    # Notifications: the sender of every email (the SES identity of infra/resources.json), and, in
    # the local stage only, the folder every email sent is also written to as an .eml file.
    email_from: str = "no-reply@platform.local"
    mail_dir: str | None = None
    # Stripe: the API's address (unset: Stripe itself; the local cloud sets its stand-in's), and the
    # adapter's retries of 429/5xx answers (back-off doubling from the given seconds).
    stripe_api_base: str | None = None
    stripe_retries: int = 4
    stripe_backoff_seconds: float = 0.5
    # Alerts: where platform-wide events (a region unhealthy) are emailed (the platform admins).
    alert_emails: tuple[str, ...] = ()
    # Local stage only: the Slack and webhook receiver stand-ins, read back by GET /v1/local/outbox.
    slack_standin_url: str = ""
    webhook_receiver_url: str = ""

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        e = os.environ if env is None else env
        stage = e.get("PLATFORM_STAGE", "local")
        if stage not in STAGES:
            raise ValueError(f"PLATFORM_STAGE must be one of {', '.join(STAGES)}, not {stage!r}")
        clock_file = e.get("PLATFORM_CLOCK_FILE") or None
        if clock_file and stage != "local":
            raise ValueError(f"PLATFORM_CLOCK_FILE moves the clock of the local stage only, not of {stage!r}")
        admins = tuple(a.strip() for a in e.get("PLATFORM_ADMINS", "").split(",") if a.strip())
        return cls(
            stage=stage,
            region=e.get("AWS_DEFAULT_REGION", e.get("AWS_REGION", "us-east-1")),
            table_name=e.get("PLATFORM_TABLE_NAME", f"platform-{stage}"),
            event_bus_name=e.get("PLATFORM_EVENT_BUS", "platform"),
            aws_endpoint_url=e.get("AWS_ENDPOINT_URL") or None,
            version=e.get("PLATFORM_VERSION", __version__),
            platform_admins=admins,
            local_cluster_address=e.get("PLATFORM_LOCAL_CLUSTER_ADDRESS", "http://127.0.0.1:8000"),
            public_url=e.get("PLATFORM_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/"),
            github_api_url=e.get("GITHUB_API_URL", "https://api.github.com"),
            github_web_url=e.get("GITHUB_WEB_URL", "https://github.com"),
            github_app_id=e.get("GITHUB_APP_ID", ""),
            github_client_id=e.get("GITHUB_CLIENT_ID", ""),
            secrets_id=e.get("PLATFORM_SECRETS_ID") or None,
            secrets_max_age_seconds=int(e.get("PLATFORM_SECRETS_MAX_AGE_SECONDS", "300")),
            kms_key_id=e.get("PLATFORM_KMS_KEY_ID") or None,
            data_dir=e.get("PLATFORM_DATA_DIR", ".local"),
            runtime_dir=e.get("PLATFORM_RUNTIME_DIR", ".local/runtime"),
            artifacts_dir=e.get("PLATFORM_ARTIFACTS_DIR", ".local/artifacts"),
            deploy_poll_seconds=int(e.get("PLATFORM_DEPLOY_POLL_SECONDS", "10")),
            runtime_retries=int(e.get("PLATFORM_RUNTIME_RETRIES", "3")),
            runtime_backoff_seconds=float(e.get("PLATFORM_RUNTIME_BACKOFF_SECONDS", "0.5")),
            clock_file=clock_file,
            micro_local_api_address=e.get("PLATFORM_MICRO_LOCAL_API_ADDRESS", ""),
            micro_local_proxy_address=e.get("PLATFORM_MICRO_LOCAL_PROXY_ADDRESS", ""),
            git_remote_aliases=_aliases(e.get("PLATFORM_GIT_REMOTE_ALIASES", "")) if stage == "local" else (),
            terraform_dir=e.get("PLATFORM_TERRAFORM_DIR", ".local/regions"),
            terraform_state_bucket=e.get("PLATFORM_TERRAFORM_STATE_BUCKET", ""),
            terraform_bin=e.get("PLATFORM_TERRAFORM_BIN", "terraform"),
            region_health_failures=int(e.get("PLATFORM_REGION_HEALTH_FAILURES", "3")),
            region_health_interval_seconds=int(e.get("PLATFORM_REGION_HEALTH_INTERVAL_SECONDS", "60")),
            region_poll_seconds=int(e.get("PLATFORM_REGION_POLL_SECONDS", "5")),
            email_from=e.get("PLATFORM_EMAIL_FROM") or "no-reply@platform.local",
            mail_dir=(e.get("PLATFORM_MAIL_DIR") or None) if stage == "local" else None,
            stripe_api_base=e.get("STRIPE_API_BASE") or None,
            stripe_retries=int(e.get("PLATFORM_STRIPE_RETRIES", "4")),
            stripe_backoff_seconds=float(e.get("PLATFORM_STRIPE_BACKOFF_SECONDS", "0.5")),
            alert_emails=tuple(a.strip() for a in e.get("PLATFORM_ALERT_EMAILS", "").split(",") if a.strip()),
            slack_standin_url=e.get("PLATFORM_SLACK_STANDIN_URL", "") if stage == "local" else "",
            webhook_receiver_url=e.get("PLATFORM_WEBHOOK_RECEIVER_URL", "") if stage == "local" else "",
        )


def _aliases(text: str) -> tuple[tuple[str, str], ...]:
    pairs = []
    for part in text.split(";"):
        prefix, sep, replacement = part.strip().partition("=")
        if sep and prefix:
            pairs.append((prefix, replacement))
    return tuple(pairs)


# The secrets the platform reads: from the environment locally, from one Secrets Manager secret on AWS.
SECRET_NAMES = (
    "GITHUB_APP_PRIVATE_KEY",
    "GITHUB_CLIENT_SECRET",
    "GITHUB_WEBHOOK_SECRET",
    "PLATFORM_LOCAL_KEY",
    "MICRO_RUNTIME_TOKEN",
    "STRIPE_API_KEY",
    "STRIPE_WEBHOOK_SECRET",
)
