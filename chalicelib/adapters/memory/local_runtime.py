"""The local stage's runtime until the deploys issue brings processes: namespaces, quotas and network
policies kept in a JSON file per cluster address, so that every process of the local cloud (and a
restart) sees the same runtime."""

from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict
from pathlib import Path
from typing import Any

from chalicelib.adapters.memory.runtime import InMemoryRuntime, _Namespace
from chalicelib.domain.clock import Clock
from chalicelib.domain.ports import ResourceQuota

_file_locks: dict[str, threading.Lock] = {}


class FileBackedRuntime(InMemoryRuntime):
    """``InMemoryRuntime`` whose namespaces, quotas and policies are reloaded from and saved to a file
    around every change (services and logs arrive with the deploys issue)."""

    def __init__(self, clock: Clock, path: Path) -> None:
        super().__init__(clock)
        self.path = path
        self._file_lock = _file_locks.setdefault(str(path), threading.Lock())

    def _load(self) -> None:
        self.namespaces = {}
        if self.path.exists():
            for name, ns in json.loads(self.path.read_text()).items():
                self.namespaces[name] = _Namespace(
                    quotas={k: (ResourceQuota(**r), ResourceQuota(**lim)) for k, (r, lim) in ns["quotas"].items()},
                    policies=ns["policies"],
                )

    def _save(self) -> None:
        data: dict[str, Any] = {
            name: {
                "quotas": {k: [asdict(r), asdict(lim)] for k, (r, lim) in ns.quotas.items()},
                "policies": ns.policies,
            }
            for name, ns in self.namespaces.items()
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(f".tmp{os.getpid()}")
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            f.write(json.dumps(data, indent=1, sort_keys=True))
        tmp.replace(self.path)

    def _mutate(self, name: str, *args: Any) -> Any:
        with self._file_lock:
            self._load()
            result = getattr(InMemoryRuntime, name)(self, *args)
            self._save()
            return result

    def create_namespace(self, namespace: str) -> None:
        self._mutate("create_namespace", namespace)

    def delete_namespace(self, namespace: str) -> None:
        self._mutate("delete_namespace", namespace)

    def set_quota(self, namespace: str, name: str, requests: ResourceQuota, limits: ResourceQuota) -> None:
        self._mutate("set_quota", namespace, name, requests, limits)

    def set_network_policy(self, namespace: str, name: str, allowed_labels: dict[str, str]) -> None:
        self._mutate("set_network_policy", namespace, name, allowed_labels)

    def describe(self) -> dict[str, Any]:
        """Everything the runtime holds (for tests and for people looking)."""
        with self._file_lock:
            self._load()
            return {
                name: {"quotas": {k: asdict(q[1]) for k, q in ns.quotas.items()}, "policies": ns.policies}
                for name, ns in self.namespaces.items()
            }
