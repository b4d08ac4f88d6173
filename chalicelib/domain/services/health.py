"""Health of the platform: each dependency is checked; any failure makes the whole answer unhealthy
and names what is down."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from chalicelib.domain.errors import DependencyUnavailableError
from chalicelib.domain.ports import HealthCheck


@dataclass(frozen=True)
class HealthReport:
    version: str
    healthy: bool
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def down(self) -> list[str]:
        return [name for name, c in self.checks.items() if c.get("status") != "ok"]


class HealthService:
    def __init__(self, version: str, checks: list[HealthCheck]) -> None:
        self._version = version
        self._checks = checks

    def report(self) -> HealthReport:
        results: dict[str, dict[str, Any]] = {}
        for check in self._checks:
            try:
                results[check.name] = {"status": "ok", **check.check()}
            except DependencyUnavailableError as e:
                results[check.name] = {"status": "down", "reason": e.message}
        return HealthReport(self._version, all(c["status"] == "ok" for c in results.values()), results)
