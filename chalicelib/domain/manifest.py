"""The service manifest (``micro.yaml`` at a repository's root): which services a repository holds and
how to run each. Pure validation: this module takes data already parsed (by the YAML adapter,
``chalicelib.adapters.manifest_yaml``) plus a map from field paths to line numbers, and never reads
files or YAML itself.

A manifest::

    services:
      - name: hello            # a DNS label (RFC 1123, <= 63 chars), unique in the file     (required)
        path: services/hello   # a directory of the repository, relative, no ".."          (default ".")
        command: ["python3", "server.py"]   # argv list, or a string split like a shell   (required)
        port: 8080             # 1-65535, passed to the process as $PORT                    (required)
        health: /health        # an absolute path, polled until it answers 2xx              (default "/health")
        env: {GREETING: hi}    # plain strings; names [A-Z_][A-Z0-9_]* (see env_var_problem)  (default {})
        instances: 1           # 1..10                                                      (default 1)
        cpu: 250               # millicores per instance, 10..quota                         (default 100)
        memory: 256            # MiB per instance, 32..quota                                (default 128)
        deadline: 600          # seconds to become healthy, 30..3600                        (default 600)

``env`` is for plain configuration only: secrets belong in the namespace's config vars, which the
platform stores encrypted and injects at deploy time; a manifest is committed to the repository. The
names ``PORT`` and ``MICRO_*`` are reserved (the platform sets them).

Field paths look like ``services[0].port``, ``services[1].env.GREETING`` or ``services[0].command[2]``.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from chalicelib.domain.errors import ValidationError
from chalicelib.domain.ports import ResourceQuota

MANIFEST_FILE = "micro.yaml"

MAX_SERVICES = 50
MAX_INSTANCES = 10
MIN_CPU_MILLICORES = 10
MIN_MEMORY_MIB = 32
MIN_DEADLINE_SECONDS = 30
MAX_DEADLINE_SECONDS = 3600
MAX_ENV_VARS = 100
MAX_ENV_NAME_CHARS = 128
# One value, in UTF-8 bytes: far below what Linux takes as one environment string (MAX_ARG_STRLEN,
# 128 KiB). Totals are bounded by the manifest's size (64 KiB) and the config vars' (MAX_CONFIG_BYTES).
MAX_ENV_VALUE_BYTES = 32 * 1024
MAX_COMMAND_ARGS = 64
MAX_PATH_CHARS = 255

DEFAULT_PATH = "."
DEFAULT_HEALTH = "/health"
DEFAULT_INSTANCES = 1
DEFAULT_CPU_MILLICORES = 100
DEFAULT_MEMORY_MIB = 128
DEFAULT_DEADLINE_SECONDS = 600

SERVICE_KEYS = (
    "name",
    "path",
    "command",
    "port",
    "health",
    "env",
    "instances",
    "cpu",
    "memory",
    "deadline",
)
REQUIRED_KEYS = ("name", "command", "port")

DNS_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")  # fullmatch: no NUL, no "=", nothing a shell cannot name
# A config var's name as a path parameter (``.../config/{key}``): ENV_NAME within MAX_ENV_NAME_CHARS.
CONFIG_KEY = re.compile(r"^[A-Z_][A-Z0-9_]{0,127}$")
RESERVED_ENV = re.compile(r"PORT|MICRO_.*")  # fullmatch
PATH_SEGMENT = re.compile(r"^[A-Za-z0-9._@+-]+$")
HEALTH_PATH = re.compile(r"^/[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*$")


class ManifestError(ValidationError):
    """An invalid manifest. The message names the first problem with its line; ``details`` holds
    ``{"field", "line", "problems": [{"field", "line", "message"}, ...]}`` with every problem found."""

    code = "invalid_manifest"


@dataclass(frozen=True)
class ServiceManifest:
    name: str
    path: str
    command: tuple[str, ...]
    port: int
    health_path: str = DEFAULT_HEALTH
    env: dict[str, str] = field(default_factory=dict)
    instances: int = DEFAULT_INSTANCES
    cpu_millicores: int = DEFAULT_CPU_MILLICORES
    memory_mib: int = DEFAULT_MEMORY_MIB
    deadline_seconds: int = DEFAULT_DEADLINE_SECONDS

    def __hash__(self) -> int:  # env is a dict: hash the rest
        return hash((self.name, self.path, self.command, self.port, self.health_path))

    def to_dict(self) -> dict[str, Any]:
        """The manifest entry in its file form (keys as in ``micro.yaml``)."""
        return {
            "name": self.name,
            "path": self.path,
            "command": list(self.command),
            "port": self.port,
            "health": self.health_path,
            "env": dict(self.env),
            "instances": self.instances,
            "cpu": self.cpu_millicores,
            "memory": self.memory_mib,
            "deadline": self.deadline_seconds,
        }


def manifest_error(
    message: str, *, field: str = "", line: int | None = None, filename: str = MANIFEST_FILE
) -> ManifestError:
    """A ManifestError with one problem (the YAML adapter uses it for syntax errors)."""
    return _Problems(filename, {}).add(field, message, line=line).error()


def env_var_problem(name: Any, value: Any) -> str | None:
    """What keeps ``name=value`` from being passed to a process as an environment variable, or None.
    The one rule for a manifest's ``env`` and for config vars (``chalicelib.domain.services.deploys``): a name
    ``[A-Z_][A-Z0-9_]*`` of at most 128 characters (so no NUL and no ``=``), not reserved (``PORT``,
    ``MICRO_*``); a value that is a string of valid UTF-8 text (no lone surrogates), without NUL (a C
    string ends there: ``execve`` cannot pass it, and the process would never start), of at most
    32 KiB. An ``=`` in a value is allowed: only the first ``=`` of an entry ends its name."""
    return env_name_problem(name) or env_value_problem(name, value)


def env_name_problem(name: Any) -> str | None:
    """The name's part of ``env_var_problem`` (the message names the name)."""
    if not isinstance(name, str) or len(name) > MAX_ENV_NAME_CHARS or not ENV_NAME.fullmatch(name):
        return (
            f"{_show(name)} is not an environment variable name ([A-Z_][A-Z0-9_]*, at most "
            f"{MAX_ENV_NAME_CHARS} characters)"
        )
    if RESERVED_ENV.fullmatch(name):
        return f"{name} is reserved: the platform sets PORT and MICRO_* itself"
    return None


def env_value_problem(name: str, value: Any) -> str | None:
    """The value's part of ``env_var_problem``."""
    if not isinstance(value, str):
        return f'must be a string, not {_show(value)} (quote it: {name}: "{value}")'
    if "\x00" in value:
        return "must not contain NUL characters: no environment can pass them"
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        return "must be valid UTF-8 text (it holds an unpaired surrogate)"
    if size > MAX_ENV_VALUE_BYTES:
        return f"must be at most {MAX_ENV_VALUE_BYTES // 1024} KiB (UTF-8), not {size} bytes"
    return None


def parse_manifest(
    data: Any,
    lines: Mapping[str, int],
    quota: ResourceQuota | None,
    *,
    directory_exists: Callable[[str], bool] | None = None,
    filename: str = MANIFEST_FILE,
) -> list[ServiceManifest]:
    """Validate a parsed manifest. ``lines`` maps field paths (``services[0].port``) to 1-based lines;
    a field without an entry takes its nearest parent's line. ``quota`` (the namespace's) bounds each
    service's cpu and memory and their totals over all instances. ``directory_exists`` (given the
    normalised relative path) checks each ``path`` against the checkout. Raises ManifestError listing
    every problem."""
    problems = _Problems(filename, lines)
    if not isinstance(data, Mapping):
        problems.add("", "must be a mapping with a 'services' list")
        raise problems.error()
    for key in data:
        if key != "services":
            problems.add(_child("", key), f"unknown key {_show(key)} (expected 'services')")
    services = data.get("services")
    result: list[ServiceManifest] = []
    if "services" not in data:
        problems.add("", "missing required key 'services'")
    elif not isinstance(services, list):
        problems.add("services", "must be a list of services")
    elif not services:
        problems.add("services", "must list at least one service")
    elif len(services) > MAX_SERVICES:
        problems.add("services", f"must list at most {MAX_SERVICES} services")
    else:
        seen: dict[str, int] = {}
        for index, entry in enumerate(services):
            service = _parse_service(entry, f"services[{index}]", quota, directory_exists, problems)
            if service is None:
                continue
            if service.name in seen:
                problems.add(
                    f"services[{index}].name",
                    f"duplicate service name {service.name!r} (also services[{seen[service.name]}])",
                )
                continue
            seen[service.name] = index
            result.append(service)
        if quota is not None and not problems:
            _check_totals(result, quota, problems)
    if problems:
        raise problems.error()
    return result


def changed_services(
    old: Sequence[ServiceManifest] | None, new: Sequence[ServiceManifest], changed_paths: Sequence[str]
) -> set[str]:
    """The names of the services of ``new`` that a push changes: every service with a changed path
    under its ``path`` (``.`` holds the whole repository), and every service whose manifest entry
    differs from ``old`` or is new there (all of them when ``old`` is None: nothing to compare with).
    Services of ``old`` missing from ``new`` are not in the result: see ``removed_services``."""
    paths = [_normalise_changed(p) for p in changed_paths]
    paths = [p for p in paths if p]
    before = {s.name: s for s in old} if old is not None else None
    result: set[str] = set()
    for service in new:
        if before is None or before.get(service.name) != service:
            result.add(service.name)
            continue
        if any(_under(p, service.path) for p in paths):
            result.add(service.name)
    return result


def removed_services(old: Sequence[ServiceManifest] | None, new: Sequence[ServiceManifest]) -> set[str]:
    """Names in ``old`` that ``new`` no longer lists."""
    if old is None:
        return set()
    return {s.name for s in old} - {s.name for s in new}


# --------------------------------------------------------------------------- internals


class _Problems:
    def __init__(self, filename: str, lines: Mapping[str, int]) -> None:
        self.filename = filename
        self.lines = lines
        self.items: list[dict[str, Any]] = []

    def __bool__(self) -> bool:
        return bool(self.items)

    def line_of(self, path: str) -> int | None:
        current = path
        while True:
            if current in self.lines:
                return self.lines[current]
            if not current:
                return None
            current = _parent(current)

    def add(self, path: str, message: str, *, line: int | None = None) -> _Problems:
        self.items.append({"field": path, "line": line if line is not None else self.line_of(path), "message": message})
        return self

    def error(self) -> ManifestError:
        first = self.items[0]
        where = self.filename if first["line"] is None else f"{self.filename} line {first['line']}"
        text = f"{where}: {first['field']}: {first['message']}" if first["field"] else f"{where}: {first['message']}"
        if len(self.items) > 1:
            text += f" (and {len(self.items) - 1} more)"
        return ManifestError(text, {"field": first["field"], "line": first["line"], "problems": list(self.items)})


def _parent(path: str) -> str:
    if path.endswith("]"):
        return path[: path.rindex("[")]
    if "." in path:
        return path[: path.rindex(".")]
    return ""


def _child(path: str, key: Any) -> str:
    name = str(key)
    return f"{path}.{name}" if path else name


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int_in(
    entry: Mapping[str, Any],
    key: str,
    path: str,
    low: int,
    high: int | None,
    default: int,
    problems: _Problems,
    hint: str = "",
) -> int:
    if key not in entry:
        return default
    value = entry[key]
    where = f"{path}.{key}"
    if not _is_int(value):
        problems.add(where, f"must be a whole number, not {_show(value)}")
        return default
    if value < low or (high is not None and value > high):
        problems.add(
            where, f"must be between {low} and {high}{hint}" if high is not None else f"must be at least {low}"
        )
        return default
    return int(value)


def _parse_service(
    entry: Any,
    path: str,
    quota: ResourceQuota | None,
    directory_exists: Callable[[str], bool] | None,
    problems: _Problems,
) -> ServiceManifest | None:
    if not isinstance(entry, Mapping):
        problems.add(path, "must be a mapping (name, command, port, ...)")
        return None
    before = len(problems.items)
    for key in entry:
        if key not in SERVICE_KEYS:
            problems.add(_child(path, key), f"unknown key {_show(key)} (expected one of {', '.join(SERVICE_KEYS)})")
    for key in REQUIRED_KEYS:
        if key not in entry:
            problems.add(path, f"missing required key {key!r}")

    name = _parse_name(entry, path, problems)
    rel = _parse_path(entry, path, directory_exists, problems)
    command = _parse_command(entry, path, problems)
    port = _int_in(entry, "port", path, 1, 65535, 0, problems)
    health = _parse_health(entry, path, problems)
    env = _parse_env(entry, path, problems)
    instances = _int_in(entry, "instances", path, 1, MAX_INSTANCES, DEFAULT_INSTANCES, problems)
    cpu_max = quota.cpu_millicores if quota is not None else None
    memory_max = quota.memory_mib if quota is not None else None
    cpu = _int_in(
        entry,
        "cpu",
        path,
        MIN_CPU_MILLICORES,
        cpu_max,
        DEFAULT_CPU_MILLICORES,
        problems,
        " (millicores, the namespace quota)",
    )
    memory = _int_in(
        entry, "memory", path, MIN_MEMORY_MIB, memory_max, DEFAULT_MEMORY_MIB, problems, " (MiB, the namespace quota)"
    )
    deadline = _int_in(
        entry,
        "deadline",
        path,
        MIN_DEADLINE_SECONDS,
        MAX_DEADLINE_SECONDS,
        DEFAULT_DEADLINE_SECONDS,
        problems,
        " seconds",
    )
    if len(problems.items) > before or name is None or command is None:
        return None
    return ServiceManifest(
        name=name,
        path=rel,
        command=command,
        port=port,
        health_path=health,
        env=env,
        instances=instances,
        cpu_millicores=cpu,
        memory_mib=memory,
        deadline_seconds=deadline,
    )


def _parse_name(entry: Mapping[str, Any], path: str, problems: _Problems) -> str | None:
    if "name" not in entry:
        return None
    value = entry["name"]
    if not isinstance(value, str):
        problems.add(f"{path}.name", f"must be a string, not {_show(value)}")
        return None
    if not DNS_LABEL.match(value):
        problems.add(
            f"{path}.name",
            f"{_show(value)} is not a DNS label: 1-63 lowercase letters, digits and '-', starting and ending "
            "with a letter or digit",
        )
        return None
    return value


def _parse_path(
    entry: Mapping[str, Any], path: str, directory_exists: Callable[[str], bool] | None, problems: _Problems
) -> str:
    if "path" not in entry:
        rel = DEFAULT_PATH
    else:
        value = entry["path"]
        where = f"{path}.path"
        if not isinstance(value, str) or not value.strip():
            problems.add(where, f"must be a directory of the repository, not {_show(value)}")
            return DEFAULT_PATH
        if len(value) > MAX_PATH_CHARS:
            problems.add(where, f"must be at most {MAX_PATH_CHARS} characters")
            return DEFAULT_PATH
        if value.startswith("/") or "\\" in value:
            problems.add(where, f"must be relative to the repository root (with '/'), not {_show(value)}")
            return DEFAULT_PATH
        parts = [p for p in value.split("/") if p not in ("", ".")]
        if ".." in parts:
            problems.add(where, "must not contain '..'")
            return DEFAULT_PATH
        if any(p == ".git" for p in parts) or not all(PATH_SEGMENT.match(p) for p in parts):
            problems.add(where, f"{_show(value)} is not an acceptable directory name (letters, digits, '._@+-')")
            return DEFAULT_PATH
        rel = "/".join(parts) or DEFAULT_PATH
    if directory_exists is not None and not directory_exists(rel):
        problems.add(f"{path}.path" if "path" in entry else path, f"directory {rel!r} does not exist in the repository")
    return rel


def _parse_command(entry: Mapping[str, Any], path: str, problems: _Problems) -> tuple[str, ...] | None:
    if "command" not in entry:
        return None
    value = entry["command"]
    where = f"{path}.command"
    if isinstance(value, str):
        try:
            argv = shlex.split(value)
        except ValueError as exc:
            problems.add(where, f"cannot be split into arguments: {exc}")
            return None
    elif isinstance(value, list):
        argv = []
        for index, arg in enumerate(value):
            if not isinstance(arg, str):
                problems.add(f"{where}[{index}]", f"must be a string, not {_show(arg)} (quote it)")
                return None
            argv.append(arg)
    else:
        problems.add(where, f"must be a list of arguments or a command line string, not {_show(value)}")
        return None
    if not argv or not argv[0].strip():
        problems.add(where, "must not be empty")
        return None
    if len(argv) > MAX_COMMAND_ARGS:
        problems.add(where, f"must have at most {MAX_COMMAND_ARGS} arguments")
        return None
    if any("\x00" in a for a in argv):
        problems.add(where, "must not contain NUL characters")
        return None
    return tuple(argv)


def _parse_health(entry: Mapping[str, Any], path: str, problems: _Problems) -> str:
    if "health" not in entry:
        return DEFAULT_HEALTH
    value = entry["health"]
    where = f"{path}.health"
    if not isinstance(value, str) or not value.startswith("/") or value.startswith("//"):
        problems.add(where, f"must be an absolute path such as /health, not {_show(value)}")
        return DEFAULT_HEALTH
    if len(value) > 1024 or not HEALTH_PATH.match(value):
        problems.add(where, f"{_show(value)} is not a valid URL path")
        return DEFAULT_HEALTH
    return value


def _parse_env(entry: Mapping[str, Any], path: str, problems: _Problems) -> dict[str, str]:
    if "env" not in entry or entry["env"] is None:
        return {}
    value = entry["env"]
    where = f"{path}.env"
    if not isinstance(value, Mapping):
        problems.add(where, "must be a mapping of NAME: value")
        return {}
    if len(value) > MAX_ENV_VARS:
        problems.add(where, f"must have at most {MAX_ENV_VARS} variables")
        return {}
    env: dict[str, str] = {}
    for key, item in value.items():
        problem = env_var_problem(key, item)
        if problem is not None:
            problems.add(_child(where, key), problem)
            continue
        env[key] = item
    return env


def _check_totals(services: Sequence[ServiceManifest], quota: ResourceQuota, problems: _Problems) -> None:
    cpu = sum(s.cpu_millicores * s.instances for s in services)
    memory = sum(s.memory_mib * s.instances for s in services)
    if cpu > quota.cpu_millicores:
        problems.add(
            "services",
            f"needs {cpu} millicores of CPU in total (cpu x instances) but the namespace quota is "
            f"{quota.cpu_millicores}",
        )
    if memory > quota.memory_mib:
        problems.add(
            "services",
            f"needs {memory} MiB of memory in total (memory x instances) but the namespace quota is {quota.memory_mib}",
        )


def _normalise_changed(path: str) -> str:
    parts = [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]
    return "/".join(parts)


def _under(changed: str, directory: str) -> bool:
    if directory in ("", "."):
        return True
    return changed == directory or changed.startswith(directory + "/")
