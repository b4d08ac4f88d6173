"""How micro v3.19.0's CLI reads ``~/.micro``, transcribed from its source for the tests.

Each function follows one Go function of github.com/micro/micro at tag v3.19.0 (named in its
docstring), step by step, so a test can read what ``platform init`` wrote as ``micro`` itself would.
It is written independently of :mod:`cli.platform_cli.micro_config` (which writes the file): the two
meet only in the file.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

DEFAULT_DOMAIN = "micro"  # service/registry/registry.go: DefaultDomain


@dataclass(frozen=True)
class Env:
    """client/cli/util/util.go ``Env`` (no json tags: the keys are the field names)."""

    name: str
    proxy_address: str
    description: str


# client/cli/util/util.go: defaultEnvs
DEFAULT_ENVS = {
    "local": Env("local", "127.0.0.1:8081", "Local running Micro Server"),
    "platform": Env("platform", "proxy.m3o.com", "Cloud hosted Micro Platform"),
}


@dataclass(frozen=True)
class AccountToken:
    """service/auth/auth.go ``AccountToken`` (``expiry`` ``None`` is Go's zero time)."""

    access_token: str
    refresh_token: str
    expiry: datetime | None


def read_config(path: Path) -> Any:
    """util/config/config.go ``newConfig`` -> service/config/value.go ``NewJSONValues``: go-simplejson's
    ``UnmarshalJSON`` (a ``json.Decoder``: the first JSON value, leading white space skipped); when it
    fails, the whole text becomes the root value."""
    text = path.read_text(encoding="utf-8")
    try:
        value, _ = json.JSONDecoder().raw_decode(text.lstrip(" \t\r\n"))
    except ValueError:
        return text
    return value


def config_get(document: Any, path: str) -> str:
    """util/config/config.go ``Get``: ``JSONValues.Get`` splits ``path`` on ``.`` and walks it with
    go-simplejson ``GetPath`` (a step into anything but an object gives nil); ``String("")`` when the
    value is a string, trimmed; else ``Bytes()`` (the value's JSON), trimmed, ``null`` read as empty."""
    node = document
    for step in path.split("."):
        node = node.get(step) if isinstance(node, dict) else None
    if isinstance(node, str) and node.strip():
        return node.strip()
    text = (node if isinstance(node, str) else json.dumps(node, separators=(",", ":"))).strip()
    return "" if text == "null" else text


def _go_field(obj: dict[str, Any], name: str) -> str:
    """encoding/json Unmarshal into a struct field: the exact key, else a case-insensitive match."""
    value = obj[name] if name in obj else next((v for k, v in obj.items() if k.lower() == name.lower()), "")
    if not isinstance(value, str):
        raise ValueError(f"json: cannot unmarshal into Go struct field Env.{name} of type string")
    return value


def get_envs(document: Any) -> dict[str, Env]:
    """client/cli/util/util.go ``getEnvs``: ``envs`` unmarshalled into ``map[string]Env``, then the
    built-in environments set over it."""
    raw = config_get(document, "envs")
    envs: dict[str, Env] = {}
    if raw:
        for key, obj in json.loads(raw).items():
            envs[key] = Env(_go_field(obj, "Name"), _go_field(obj, "ProxyAddress"), _go_field(obj, "Description"))
    envs.update(DEFAULT_ENVS)
    return envs


def get_env(document: Any, flag: str = "") -> Env:
    """client/cli/util/util.go ``GetEnv``: the ``--env`` flag (``MICRO_ENV``), else ``env``, else
    ``local``; then ``GetEnvByName`` (an unknown name is an error)."""
    name = flag or config_get(document, "env") or "local"
    envs = get_envs(document)
    if name not in envs:
        raise KeyError(f'Env "{name}" not found. See `micro env` for available environments.')
    return envs[name]


def cli_proxy_address(env: Env) -> str:
    """client/cli/util/util.go ``CLIProxyAddress``: ``:443`` appended to an address without a ``:``."""
    return env.proxy_address if ":" in env.proxy_address else f"{env.proxy_address}:443"


def namespace_list(document: Any, env: str) -> list[str]:
    """client/cli/namespace/namespace.go ``List``."""
    values = config_get(document, f"namespaces.{env}.all")
    return [DEFAULT_DOMAIN, *values.split(",")] if values else [DEFAULT_DOMAIN]


def namespace_get(document: Any, env: str) -> str:
    """client/cli/namespace/namespace.go ``Get``."""
    return config_get(document, f"namespaces.{env}.current") or DEFAULT_DOMAIN


def _get_from_file(document: Any, env: Env, tokens_file: Path) -> AccountToken | None:
    """client/cli/token/token.go ``getFromFile`` (``None`` where it returns an error)."""
    lines = tokens_file.read_text().split("\n") if tokens_file.exists() else []
    tokens: dict[str, dict[str, Any]] = {}
    for line in lines:  # getTokens
        parts = line.split(":")
        if len(parts) < 3:
            continue
        tokens[":".join(parts[:-1])] = json.loads(base64.b64decode(parts[-1]))
    user = config_get(document, f"{env.name}.current-user")
    key = f"micro://{env.proxy_address}/{namespace_get(document, env.name)}/{user}"  # tokenKey
    found = tokens.get(key)
    if found is None:
        return None
    return AccountToken(found["access_token"], found["refresh_token"], datetime.fromtimestamp(found["expiry"], UTC))


def _get_from_user_config(document: Any, env_name: str) -> AccountToken:
    """client/cli/token/token.go ``getFromUserConfig``."""
    access = config_get(document, f"micro.auth.{env_name}.token")
    refresh = config_get(document, f"micro.auth.{env_name}.refresh-token")
    expiry = config_get(document, f"micro.auth.{env_name}.expiry")
    if not expiry:
        return AccountToken(access, refresh, None)
    return AccountToken(access, refresh, datetime.fromtimestamp(int(expiry), UTC))  # strconv.ParseInt


def token_get(document: Any, env: Env, tokens_file: Path) -> AccountToken:
    """client/cli/token/token.go ``Get``: ``~/.micro/tokens`` first, else the user config."""
    return _get_from_file(document, env, tokens_file) or _get_from_user_config(document, env.name)


def sends_token_as_is(token: AccountToken, now: datetime) -> bool:
    """cmd/cmd.go ``setupAuthForCLI``: no refresh token, no token at all; the token as it is while its
    expiry is more than a minute away (else micro first exchanges the refresh token)."""
    if not token.refresh_token:
        return False
    return token.expiry is not None and now < token.expiry - timedelta(minutes=1)
