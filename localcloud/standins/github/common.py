"""Constants and small helpers the GitHub stand-in's modules share: GitHub's limits and TTLs, token
and node-id formats, and the ISO dates GitHub writes.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import secrets
import string
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SEED_FILE = Path(__file__).with_name("seed.json")
API_PREFIX = "/api/v3"
# github.com/{owner}/{repo}/archive/{ref}.zip (micro's runtime fetches GitHub sources so)
ARCHIVE_PATH = re.compile(r"/([A-Za-z0-9][A-Za-z0-9-]*)/([A-Za-z0-9._-]+)/archive/([A-Za-z0-9._/-]+)\.zip")
DOCS_URL = "https://docs.github.com/rest"
HTML_BASE = "https://github.com"
CREATED_AT = "2024-01-01T00:00:00Z"
DEFAULT_PER_PAGE = 30
MAX_PER_PAGE = 100
RATE_LIMIT_AUTHENTICATED = 5000
RATE_LIMIT_ANONYMOUS = 60
JSON_TYPE = "application/json; charset=utf-8"
REDACTED_QUERY_KEYS = {"access_token", "client_secret", "token", "code", "device_code"}
FORM_TYPE = "application/x-www-form-urlencoded; charset=utf-8"
HTML_TYPE = "text/html; charset=utf-8"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
DEVICE_CODE_TTL = 900  # seconds, as GitHub's
DEVICE_INTERVAL = 5  # seconds between polls; +5 on every slow_down
AUTH_CODE_TTL = 600  # an OAuth code expires after 10 minutes
INSTALLATION_TOKEN_TTL = 3600
JWT_MAX_LIFETIME = 600  # GitHub refuses an app JWT whose exp is more than 10 minutes ahead
JWT_CLOCK_DRIFT = 60
JWT_UNDECODABLE = "A JSON web token could not be decoded"
NOT_FOR_INTEGRATIONS = "Resource not accessible by integration"
DEVICE_ERRORS_URI = "https://docs.github.com/developers/apps/authorizing-oauth-apps#error-codes-for-the-device-flow"
OAUTH_ERRORS_URI = (
    "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors"
)
OAUTH_ERRORS = {
    "authorization_pending": "The authorization request is still pending.",
    "slow_down": "Too many requests have been made in the same timeframe.",
    "expired_token": "The `device_code` has expired.",
    "access_denied": "The authorization request was denied.",
    "incorrect_client_credentials": "The client_id and/or client_secret passed are incorrect.",
    "incorrect_device_code": "The device_code provided is not valid.",
    "unsupported_grant_type": "The grant type is not supported.",
    "bad_verification_code": "The code passed is incorrect or expired.",
    "redirect_uri_mismatch": "The redirect_uri MUST match the registered callback URL for this application.",
}
USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ0123456789"  # no vowels: no words, no O/0 or I/1 confusion
TOKEN_ALPHABET = string.ascii_letters + string.digits
PERMISSION_LEVELS = {"read": 1, "write": 2, "admin": 3}
PROJECT_ROOT = Path(__file__).resolve().parents[3]  # seed "from_dir" paths are relative to it
REPO_ID_START = 5001
REPO_ROLES = ("pull", "triage", "push", "maintain", "admin")  # weakest first
ORG_BASE_ROLES = {"none": None, "read": "pull", "write": "push", "admin": "admin"}
PERMISSION_NAMES = {"admin": "admin", "maintain": "write", "push": "write", "triage": "read", "pull": "read"}
ROLE_NAMES = {"admin": "admin", "maintain": "maintain", "push": "write", "triage": "triage", "pull": "read"}
# GitHub's docs: the push payload's commits array "includes a maximum of 20 commits ... This limit is applied to
# timeline events only and isn't applied to webhook deliveries", whose cap is 2048 commits. Set
# ``push_commits_limit`` on a stand-in to 20 to see a timeline-style cut-off.
PUSH_COMMITS_LIMIT = 2048
COMPARE_FILES_LIMIT = 300  # the compare API's changed files ("Compare two commits")
DEPLOYMENT_STATES = ("error", "failure", "inactive", "in_progress", "queued", "pending", "success")
COMMIT_STATES = ("error", "failure", "pending", "success")
DEFAULT_APP: dict[str, Any] = {
    "id": 4242,
    "slug": "micro-platform",
    "name": "Micro Platform (local)",
    "client_id": "Iv1.localplatform",
    "client_secret": "0c1a1d5ec2e7f4b6a9d8c3b2a1f0e9d8c7b6a5f4",
    "webhook_secret": "local-webhook-secret",
}

log = logging.getLogger("localcloud.standins.github")


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _random_token(prefix: str) -> str:
    return prefix + "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(36))


def default_token(login: str) -> str:
    """The deterministic user access token of a seeded user: ``ghu_`` and 36 base-62 characters."""
    prefix = ("local" + "".join(c for c in login if c.isalnum()))[:20]
    digest = hashlib.sha256(login.lower().encode()).hexdigest()
    return "ghu_" + prefix + digest[: 36 - len(prefix)]


def _node_id(kind: str, number: int) -> str:
    return base64.b64encode(f"0{len(kind)}:{kind}{number}".encode()).decode()


def _slugify(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def _epoch(iso: str) -> int:
    return int(datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp())


def _utc(iso: str) -> str:
    """git's ``%aI`` (``2024-01-01T00:00:00+00:00``) as GitHub writes dates: UTC with ``Z``."""
    return _iso(datetime.fromisoformat(iso))
