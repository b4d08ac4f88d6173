"""The ``RuntimeAuthPort`` of the local runtime: a simple account registry in its state directory.

``accounts.json`` (0600, rewritten whole through a temporary file): ``{"accounts": {namespace: {id:
{"scopes", "metadata", "secret": <sha256>, "refresh": <sha256>}}}, "tokens": {<sha256 of a token>:
{"namespace", "account", "expires_at"}}}``. Secrets and tokens are kept as hashes only. Tokens look like
``mp_lrt_<hex>`` (the log redaction masks that shape) and expire; deleting an account drops its tokens
at once. Nothing on this machine checks them (the local runtime's proxy asks for no credential):
``inspect`` answers what a cluster's gateway would, for tests and tools."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import tempfile
import threading
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from chalicelib.domain.clock import Clock
from chalicelib.domain.errors import ConflictError, NotFoundError
from chalicelib.domain.ports import RuntimeAccount, RuntimeToken

_LOCK = threading.Lock()  # one process (the local cloud) writes the file


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class LocalRuntimeAccounts:
    def __init__(self, state_dir: Path, clock: Clock) -> None:
        self._path = Path(state_dir) / "accounts.json"
        self._clock = clock

    def _load(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads(self._path.read_text())
        except FileNotFoundError:
            data = {}
        data.setdefault("accounts", {})
        data.setdefault("tokens", {})
        return data

    def _save(self, data: dict[str, Any]) -> None:
        self._path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        now = self._clock.now().timestamp()
        data["tokens"] = {k: v for k, v in data["tokens"].items() if v["expires_at"] > now}
        fd, tmp = tempfile.mkstemp(dir=self._path.parent, prefix=".accounts-")
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, sort_keys=True)
        os.chmod(tmp, 0o600)
        os.replace(tmp, self._path)

    def create_account(
        self, namespace: str, account_id: str, secret: str, scopes: Sequence[str], metadata: dict[str, str]
    ) -> None:
        with _LOCK:
            data = self._load()
            accounts = data["accounts"].setdefault(namespace, {})
            if account_id in accounts:
                raise ConflictError(f"runtime account {account_id!r} exists", {"account": account_id})
            accounts[account_id] = {
                "scopes": list(scopes),
                "metadata": dict(metadata),
                "secret": _digest(secret),
                "refresh": "",
            }
            self._save(data)

    def delete_account(self, namespace: str, account_id: str) -> None:
        with _LOCK:
            data = self._load()
            data["accounts"].get(namespace, {}).pop(account_id, None)
            data["tokens"] = {
                k: v for k, v in data["tokens"].items() if (v["namespace"], v["account"]) != (namespace, account_id)
            }
            self._save(data)

    def list_accounts(self, namespace: str) -> list[RuntimeAccount]:
        with _LOCK:
            accounts = self._load()["accounts"].get(namespace, {})
        return [RuntimeAccount(account_id, dict(a["metadata"])) for account_id, a in sorted(accounts.items())]

    def token(self, namespace: str, account_id: str, secret: str, ttl_seconds: int) -> RuntimeToken:
        with _LOCK:
            data = self._load()
            account = data["accounts"].get(namespace, {}).get(account_id)
            if account is None or not hmac.compare_digest(account["secret"], _digest(secret)):
                raise NotFoundError(f"no runtime account {account_id!r} with that secret", {"account": account_id})
            access, refresh = f"mp_lrt_{secrets.token_hex(24)}", f"mp_lrr_{secrets.token_hex(24)}"
            expires_at: datetime = self._clock.now() + timedelta(seconds=ttl_seconds)
            data["tokens"][_digest(access)] = {
                "namespace": namespace,
                "account": account_id,
                "expires_at": expires_at.timestamp(),
            }
            account["refresh"] = _digest(refresh)
            self._save(data)
        return RuntimeToken(access, refresh, expires_at)

    def inspect(self, token: str) -> tuple[str, str, list[str]] | None:
        """``(namespace, account id, scopes)`` of a live token, else None."""
        with _LOCK:
            data = self._load()
        found = data["tokens"].get(_digest(token))
        if found is None or found["expires_at"] <= self._clock.now().timestamp():
            return None
        account = data["accounts"].get(found["namespace"], {}).get(found["account"])
        return None if account is None else (found["namespace"], found["account"], list(account["scopes"]))
