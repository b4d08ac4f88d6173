"""The platform's admin credential on each cluster, from where the cluster's configuration keeps it.

A cluster registered by the region state machine names its ``credentials_secret``: a reference, never the
secret. ``aws-secretsmanager:<arn or name>`` (what the cloud compositions write) is read from Secrets
Manager with the platform's role; ``file:<path>`` (the local "cloud"'s micro stand-in; the local stage
only) from a file of this machine. The value is micro's account credential ``{"id", "secret"}`` (an
admin of the ``micro`` issuer), exchanged for a short-lived token through ``Auth.Token``
(``service/auth/handler/auth.go``), or a ready ``{"token"}``. A cluster without a reference (seeded ones)
uses the platform's one ``MICRO_RUNTIME_TOKEN``.

Tokens are kept per cluster and credential until five minutes before they expire; a credential that
changed (the cluster made a new one) gets a new token."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chalicelib.domain.errors import DependencyUnavailableError
from chalicelib.domain.redaction import register_secret

TOKEN_SECONDS = 3600
RENEW_BEFORE = 300


class ClusterCredentials:
    def __init__(
        self,
        default_token: str,
        mint: Callable[[str, str, str], tuple[str, float]],
        *,
        allow_files: bool = False,
        secrets_client: Callable[[], Any] | None = None,
    ) -> None:
        """``mint(api, id, secret)`` -> (token, expires at, epoch seconds)."""
        self._default = default_token
        self._mint = mint
        self._allow_files = allow_files
        self._secrets_client = secrets_client
        self._tokens: dict[tuple[str, str], tuple[str, float]] = {}
        self._lock = threading.Lock()

    def token(self, api_address: str, reference: str) -> str:
        if not reference:
            return self._default
        value = self._read(reference)
        if "token" in value:
            return str(value["token"])
        key = (api_address, hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest())
        with self._lock:
            kept = self._tokens.get(key)
            if kept is not None and kept[1] - RENEW_BEFORE > time.time():
                return kept[0]
        try:
            account, secret = str(value["id"]), str(value["secret"])
        except KeyError:
            raise DependencyUnavailableError(
                "the cluster's credential is not {id, secret}", {"credentials_secret": reference}
            ) from None
        register_secret(secret)
        token, expires = self._mint(api_address, account, secret)
        with self._lock:
            self._tokens[key] = (token, expires)
        return token

    def _read(self, reference: str) -> dict[str, Any]:
        scheme, _, where = reference.partition(":")
        try:
            if scheme == "file" and self._allow_files:
                text = Path(where).read_text()
            elif scheme == "aws-secretsmanager" and self._secrets_client is not None:
                text = self._secrets_client().get_secret_value(SecretId=where)["SecretString"]
            else:
                raise DependencyUnavailableError(
                    f"the platform cannot read credentials kept as {scheme!r}", {"credentials_secret": reference}
                )
            value = json.loads(text)
        except DependencyUnavailableError:
            raise
        except Exception as e:  # a missing file or secret, a refusal, not JSON
            raise DependencyUnavailableError(
                f"the cluster's credential cannot be read ({type(e).__name__})", {"credentials_secret": reference}
            ) from e
        if not isinstance(value, dict):
            raise DependencyUnavailableError("the cluster's credential is not a JSON object", {})
        # only the secret is masked: the account's id ("platform") and issuer are names, and masking them
        # would hide the word wherever a log line holds it
        for key in ("secret", "token"):
            if isinstance(value.get(key), str):
                register_secret(value[key])
        return value
