"""micro v3's own CLI configuration, ``~/.micro/config.json``, written the way micro v3.19.0 writes it.

What micro reads, from github.com/micro/micro at tag v3.19.0:

- ``util/user/user.go``: at start-up every ``micro`` command runs ``os.MkdirAll(~/.micro, 0700)`` and
  exits fatally when that fails, so ``~/.micro`` must be a directory (the platform's own dotenv file
  lives in it, :mod:`cli.platform_cli.config`).
- ``util/config/config.go``: the configuration is ``~/.micro/config.json`` (``cmd/cmd.go``: the ``-c``
  flag, ``MICRO_CONFIG_FILE``, names another file). ``Get(path)``/``Set(path, value)`` take a dotted
  path that ``service/config/value.go`` (``JSONValues.Get``/``Set``) splits on ``.`` into nested objects
  through go-simplejson v0.5.0 (``GetPath``/``SetPath``: a missing or non-object step reads as nothing;
  ``SetPath`` replaces a non-object step by an object). ``Set`` stores strings only; ``Get`` answers a
  string as it is and anything else as its JSON text (``null`` as empty). The file is written as Go's
  ``json.Marshal`` writes a map: compact, keys sorted.
- ``client/cli/util/util.go``: ``env`` is the current environment's name (``local`` when empty); ``envs``
  is a JSON document *inside a string* (``setEnvs``: ``config.Set("envs", string(json.Marshal(envs)))``)
  mapping each name to ``{"Name", "ProxyAddress", "Description"}``. ``getEnvs`` merges the built-in
  environments **over** the file's, so an environment named ``local`` or ``platform`` (and ``dev`` in
  earlier v3 tags) is always micro's own: the platform's environment is named :data:`ENV_NAME`.
  ``CLIProxyAddress`` appends ``:443`` to a proxy address without a port.
- ``client/cli/namespace/namespace.go``: ``namespaces.<env>.current`` is the environment's namespace
  (``micro`` when empty) and ``namespaces.<env>.all`` the comma-separated others (``Set`` refuses a
  namespace that ``Add`` has not put there).
- ``client/cli/token/token.go``: the token is looked up first in ``~/.micro/tokens`` under
  ``<env>.current-user`` (what ``micro login`` saves), else in ``micro.auth.<env>.token``,
  ``micro.auth.<env>.refresh-token`` and ``micro.auth.<env>.expiry`` (Unix seconds, as a string).
- ``cmd/cmd.go`` (``setupAuthForCLI``): the CLI sends the token only when a refresh token is present:
  while ``expiry`` is more than a minute away it uses the token as it is, else it exchanges the refresh
  token for a new one (``auth.Token``) and saves that to ``~/.micro/tokens``. micro's auth service
  (``service/auth/handler/auth.go``, ``Token``) accepts a still-valid JWT access token as the refresh
  token; so when the platform gives no refresh token, the access token is written in its place.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cli.platform_cli.errors import UsageError

ENV_NAME = "maas"  # "Micro as a Service": not one of micro's built-in environments (see the module docstring)
CONFIG_NAME = "config.json"
DEFAULT_NAMESPACE = "micro"  # service/registry/registry.go: DefaultDomain

# client/cli/util/util.go: defaultEnvs, in the Env struct's field order (Name, ProxyAddress, Description).
BUILTIN_ENVS: dict[str, dict[str, str]] = {
    "local": {"Name": "local", "ProxyAddress": "127.0.0.1:8081", "Description": "Local running Micro Server"},
    "platform": {"Name": "platform", "ProxyAddress": "proxy.m3o.com", "Description": "Cloud hosted Micro Platform"},
}

# Go's json.Marshal escapes these inside strings (encoding/json: HTML-safe by default).
_GO_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_GO_ESCAPED = re.compile("[<>&\u2028\u2029]")


def config_path(environ: Mapping[str, str], home: Path) -> Path:
    """micro's config file: ``MICRO_CONFIG_FILE`` when set (cmd/cmd.go's ``-c`` flag), else ``~/.micro/config.json``."""
    named = environ.get("MICRO_CONFIG_FILE")
    return Path(named).expanduser() if named else home / ".micro" / CONFIG_NAME


def go_json(value: Any, *, sort_keys: bool = True) -> str:
    """``value`` as Go's ``json.Marshal`` writes it: compact, map keys sorted, ``<>&`` escaped."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=sort_keys)
    return _GO_ESCAPED.sub(lambda m: _GO_ESCAPES[m.group(0)], text)


def load(path: Path) -> dict[str, Any]:
    """The document in ``path`` (empty when there is none); a file micro could not use is refused, untouched."""
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):  # none yet, or ~/.micro still an earlier version's file
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}", "invalid_config") from exc
    if not text.strip():
        return {}
    try:
        document = json.loads(text)
    except ValueError:
        document = None
    if not isinstance(document, dict):
        raise UsageError(
            f"{path} is not a JSON object, so micro cannot read it either: fix it or move it away, then run init again",
            "invalid_config",
        )
    _envs(document, path)  # refuse an unreadable "envs" now, before anything is written
    return document


def dump(document: Mapping[str, Any]) -> str:
    return go_json(document)


def get(document: Mapping[str, Any], path: str) -> str:
    """util/config/config.go ``Get``: the value at the dotted ``path`` as micro's CLI reads it."""
    node: Any = document
    for step in path.split("."):
        node = node.get(step) if isinstance(node, dict) else None
    if isinstance(node, str):
        return node.strip()
    text = "" if node is None else go_json(node).strip()
    return "" if text == "null" else text


def set_path(document: dict[str, Any], path: str, value: str) -> None:
    """util/config/config.go ``Set`` (go-simplejson ``SetPath``): non-object steps become objects."""
    steps = path.split(".")
    node = document
    for step in steps[:-1]:
        child = node.get(step)
        if not isinstance(child, dict):
            child = {}
            node[step] = child
        node = child
    node[steps[-1]] = value


def _envs(document: Mapping[str, Any], path: Path) -> dict[str, Any]:
    """The file's environments (client/cli/util/util.go ``getEnvs``, before the built-ins are merged)."""
    raw = get(document, "envs")
    if not raw:
        return {}
    try:
        envs = json.loads(raw)
    except ValueError:
        envs = None
    if not isinstance(envs, dict) or not all(isinstance(v, dict) for v in envs.values()):
        raise UsageError(
            f'{path}: "envs" is not micro\'s list of environments, so micro cannot read it either: '
            "fix it (`micro env`) or remove the key, then run init again",
            "invalid_config",
        )
    return envs


def has_platform_env(path: Path) -> bool:
    """Whether micro's config file at ``path`` defines the platform's environment (:data:`ENV_NAME`)."""
    try:
        return ENV_NAME in _envs(load(path), path)
    except UsageError:
        return False


def proxy_host_port(address: str) -> str:
    """The gRPC proxy address micro dials (``host:port``): a URL's scheme and path dropped, ``:443`` when
    no port is given (client/cli/util/util.go ``CLIProxyAddress``; ``:80`` for an ``http://`` URL)."""
    address = address.strip()
    match = re.match(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://([^/?#]*)", address)
    scheme, hostport = (match.group(1).lower(), match.group(2)) if match else ("", address.rstrip("/"))
    hostport = hostport.rsplit("@", 1)[-1]
    has_port = re.search(r":\d+$", hostport) is not None
    if not has_port:
        hostport += ":80" if scheme == "http" else ":443"
    return hostport


@dataclass(frozen=True)
class RuntimeAccess:
    """What ``GET /v1/namespaces/{ns}/runtime`` answers, as micro's CLI needs it."""

    namespace: str
    proxy_address: str
    auth_token: str
    refresh_token: str | None = None
    expires_at: datetime | None = None


def configure(
    document: dict[str, Any],
    *,
    namespace: str,
    api_url: str,
    access: RuntimeAccess | None,
    path: Path,
) -> None:
    """Point micro's CLI at ``namespace`` in the :data:`ENV_NAME` environment, in place: with ``access``,
    the environment (proxy), made current, and the member's token; without (the namespace is not
    active yet), only the namespace, and any earlier token of the environment removed.

    Each step is the ``Set`` micro's own command would make; every other key is left as it is."""
    env = ENV_NAME
    if access is not None:
        # client/cli/util/util.go AddEnv: the file's environments, the built-ins merged over them, ours added.
        envs = {**_envs(document, path), **BUILTIN_ENVS}
        envs[env] = {
            "Name": env,
            "ProxyAddress": proxy_host_port(access.proxy_address),
            "Description": f"Micro as a Service ({api_url})",
        }
        # json.Marshal(map[string]Env): names sorted, each Env in its struct's field order.
        entries = ",".join(f"{go_json(name)}:{go_json(envs[name], sort_keys=False)}" for name in sorted(envs))
        set_path(document, "envs", "{" + entries + "}")
        set_path(document, "env", env)  # SetEnv
    # client/cli/namespace/namespace.go Add, then Set.
    known = get(document, f"namespaces.{env}.all")
    if namespace != DEFAULT_NAMESPACE and namespace not in known.split(","):
        set_path(document, f"namespaces.{env}.all", f"{known},{namespace}" if known else namespace)
    set_path(document, f"namespaces.{env}.current", namespace)
    # client/cli/token/token.go: the token micro reads when ~/.micro/tokens has none for
    # <env>.current-user; a user saved there by an earlier `micro login` would shadow the new token.
    if get(document, f"{env}.current-user"):
        set_path(document, f"{env}.current-user", "")
    token = access.auth_token if access else ""
    refresh = (access.refresh_token or access.auth_token) if access else ""
    expiry = str(int(access.expires_at.timestamp())) if access and access.expires_at else ""
    set_path(document, f"micro.auth.{env}.token", token)
    set_path(document, f"micro.auth.{env}.refresh-token", refresh)
    set_path(document, f"micro.auth.{env}.expiry", expiry)
