"""On AWS the secrets live in one Secrets Manager secret per concern (infra/resources.json "secrets"), and a
function is given only the ones its role may read: PLATFORM_SECRETS_ID lists them, comma-separated."""

from __future__ import annotations

import json
from typing import Any

import boto3

from chalicelib.composition import Container
from chalicelib.config import Settings


def test_every_listed_secret_is_read_and_merged(aws: dict[str, Any], secret: Any, clock: Any) -> None:
    client = boto3.client("secretsmanager")
    github = client.create_secret(
        Name="platform-github-app-dev", SecretString=json.dumps({"GITHUB_CLIENT_SECRET": secret("gh-client-secret")})
    )["ARN"]
    micro = client.create_secret(
        Name="platform-micro-runtime-dev", SecretString=json.dumps({"MICRO_RUNTIME_TOKEN": secret("micro-token")})
    )["ARN"]
    settings = Settings.from_env({"PLATFORM_STAGE": "dev", "PLATFORM_SECRETS_ID": f"{github}, {micro}"})

    assert Container(settings, clock=clock).secrets == {
        "GITHUB_CLIENT_SECRET": "gh-client-secret",
        "MICRO_RUNTIME_TOKEN": "micro-token",
    }


def test_one_secret_id_still_works(aws: dict[str, Any], secret: Any, clock: Any) -> None:
    client = boto3.client("secretsmanager")
    client.create_secret(Name="platform-dev", SecretString=json.dumps({"GITHUB_WEBHOOK_SECRET": secret("whsec")}))
    settings = Settings.from_env({"PLATFORM_STAGE": "dev", "PLATFORM_SECRETS_ID": "platform-dev"})

    assert Container(settings, clock=clock).secrets == {"GITHUB_WEBHOOK_SECRET": "whsec"}
