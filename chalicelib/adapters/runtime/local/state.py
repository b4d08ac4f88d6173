"""The local runtime's state directory: its lock, its private files and what they hold of namespaces,
services, the heartbeat and the services' output (the layout is in the package's docstring). Request
counts and instance records are in ``metering``."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from chalicelib.domain.errors import ConflictError, DependencyUnavailableError, NotFoundError
from chalicelib.domain.ports import LogRecord, ResourceQuota

STATE_FORMAT = 1
# what a namespace or service name may be: also what makes it safe as a file name under logs/
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")

_file_locks: dict[str, threading.Lock] = {}


def private_dir(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)


def write_private(path: Path, text: str) -> None:
    """Writes ``text`` to ``path`` through a temporary file (0600) renamed into place."""
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    tmp.replace(path)


def write_json(path: Path, data: Any) -> None:
    write_private(path, json.dumps(data, indent=1, sort_keys=True))


def append_private(path: Path, text: str) -> None:
    """Appends ``text`` to ``path`` (created 0600) in one write."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def clean(value: str) -> str:
    """``value`` on one line and without tabs (a field of a log line)."""
    return value.replace("\t", " ").replace("\n", " ").replace("\r", " ")


def take_lock(path: Path) -> IO[str]:
    """Holds ``flock`` on ``path`` for as long as the answered file is open (not inherited by children)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    lock = os.fdopen(fd, "r+")
    try:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        lock.close()
        raise DependencyUnavailableError(
            "another local runtime (another `make run`?) owns this state directory", {"state_dir": str(path.parent)}
        ) from None
    return lock


class NamespacesFile:
    """``namespaces.json``: ``{namespace: {"quotas": {name: [requests, limits]}, "policies": {name:
    labels}}}``, read and rewritten around every change (a quota is ``ResourceQuota``'s fields)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = _file_locks.setdefault(str(path), threading.Lock())

    def _read(self) -> dict[str, Any]:
        return json.loads(self.path.read_text()) if self.path.exists() else {}

    @contextlib.contextmanager
    def _namespace(self, namespace: str) -> Iterator[dict[str, Any]]:
        """The namespace's entry, saved afterwards unless the change raised."""
        with self._lock:
            data = self._read()
            if namespace not in data:
                raise NotFoundError(f"runtime namespace {namespace!r} does not exist", {"namespace": namespace})
            yield data[namespace]
            write_json(self.path, data)

    def exists(self, namespace: str) -> bool:
        with self._lock:
            return namespace in self._read()

    def create(self, namespace: str) -> None:
        with self._lock:
            data = self._read()
            if namespace in data:
                raise ConflictError(f"runtime namespace {namespace!r} exists", {"namespace": namespace})
            data[namespace] = {"quotas": {}, "policies": {}}
            write_json(self.path, data)

    def delete(self, namespace: str) -> None:
        with self._lock:
            data = self._read()
            if data.pop(namespace, None) is None:
                raise NotFoundError(f"runtime namespace {namespace!r} does not exist", {"namespace": namespace})
            write_json(self.path, data)

    def set_quota(self, namespace: str, name: str, requests: ResourceQuota, limits: ResourceQuota) -> None:
        with self._namespace(namespace) as ns:
            ns["quotas"][name] = [asdict(requests), asdict(limits)]

    def delete_quota(self, namespace: str, name: str) -> None:
        with self._namespace(namespace) as ns:
            ns["quotas"].pop(name, None)

    def set_policy(self, namespace: str, name: str, allowed_labels: dict[str, str]) -> None:
        with self._namespace(namespace) as ns:
            ns["policies"][name] = dict(allowed_labels)

    def delete_policy(self, namespace: str, name: str) -> None:
        with self._namespace(namespace) as ns:
            ns["policies"].pop(name, None)


class StateDir:
    """One runtime's state directory, created private; ``lock()`` makes this runtime its one owner."""

    def __init__(self, path: Path) -> None:
        private_dir(path)
        self.path = path
        self.namespaces = NamespacesFile(path / "namespaces.json")
        self.instances_path = path / "instances.jsonl"
        self.counts_path = path / "request_counts.json"
        self._services_path = path / "services.json"
        self._heartbeat_path = path / "heartbeat"

    def lock(self) -> IO[str]:
        """``runtime.lock``, held until the answered file is closed (or this process dies)."""
        return take_lock(self.path / "runtime.lock")

    # ------------------------------------------------------------------ services.json

    def load_services(self) -> tuple[dict[str, int], list[dict[str, Any]]]:
        """The proxies' ports and the service records an earlier runtime kept (none: empty)."""
        if not self._services_path.exists():
            return {}, []
        data = json.loads(self._services_path.read_text())
        return {ns: int(port) for ns, port in data.get("proxies", {}).items()}, list(data.get("services", []))

    def save_services(self, proxy_ports: dict[str, int], records: list[dict[str, Any]]) -> None:
        write_json(self._services_path, {"format": STATE_FORMAT, "proxies": proxy_ports, "services": records})

    # ------------------------------------------------------------------ heartbeat

    def beat(self, now: datetime) -> None:
        write_private(self._heartbeat_path, now.isoformat())

    def last_beat(self) -> datetime | None:
        """When the runtime that wrote the heartbeat was last known alive (None: never, or unreadable)."""
        try:
            return datetime.fromisoformat(self._heartbeat_path.read_text().strip())
        except (OSError, ValueError):
            return None

    # ------------------------------------------------------------------ logs/<namespace>/<service>.log

    def _log_path(self, namespace: str, name: str) -> Path:
        return self.path / "logs" / namespace / f"{name}.log"

    def append_log(self, namespace: str, name: str, version: str, message: str, now: datetime) -> None:
        path = self._log_path(namespace, name)
        if not path.parent.is_dir():
            private_dir(path.parent.parent)
            private_dir(path.parent)
        append_private(path, f"{now.isoformat()}\t{clean(version)}\t{message}\n")

    def read_logs(self, namespace: str, name: str, since: datetime | None, tail: int) -> list[LogRecord]:
        """The last ``tail`` lines of the service's log at or after ``since``."""
        if tail <= 0 or not NAME.fullmatch(namespace) or not NAME.fullmatch(name):
            return []
        path = self._log_path(namespace, name)
        if not path.exists():
            return []
        kept: deque[LogRecord] = deque(maxlen=tail)
        with path.open(encoding="utf-8", errors="replace") as f:
            for line in f:
                parts = line.rstrip("\n").split("\t", 2)
                if len(parts) != 3:
                    continue
                try:
                    when = datetime.fromisoformat(parts[0])
                except ValueError:
                    continue
                if since is not None and when < since:
                    continue
                kept.append(LogRecord(when, parts[2], {"version": parts[1]}))
        return list(kept)

    def forget_logs(self, namespace: str) -> None:
        logs = self.path / "logs" / namespace
        if NAME.fullmatch(namespace) and logs.is_dir():
            for path in logs.iterdir():
                path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                logs.rmdir()
